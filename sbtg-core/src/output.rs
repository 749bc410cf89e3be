//! Writing results: `edges.csv`, `summary.json`, `loss.csv`. Every file is written to a
//! temporary file in the output folder and renamed into place, so a reader never sees
//! a half-written file and a failed run leaves earlier files intact.

use std::io::Write;
use std::path::Path;

use crate::infer::Inference;
use crate::{Error, Result};

/// Writes `bytes` to `path` atomically (temp file in the same folder, fsync, rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let name = path.file_name().and_then(|s| s.to_str()).unwrap_or("out");
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let res = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = res {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io(path, e));
    }
    Ok(())
}

fn fmt(v: f64) -> String {
    if v.is_nan() {
        "nan".into()
    } else {
        format!("{v:.10e}")
    }
}

/// `edges.csv`: `source,target,lag,mu,effect,t,p,q,test,selected`, one row per tested
/// (source → target, test). `effect` of a mean test is `−mu` (positive = excitatory).
pub fn edges_csv(inf: &Inference) -> Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let csv_err = |e: csv::Error| Error::Data(format!("writing edges.csv: {e}"));
    w.write_record([
        "source", "target", "lag", "mu", "effect", "t", "p", "q", "test", "selected",
    ])
    .map_err(csv_err)?;
    for e in &inf.edges {
        let test = match e.test {
            crate::infer::TestKind::Mean => "mean",
            crate::infer::TestKind::Volatility => "volatility",
        };
        w.write_record([
            e.source.clone(),
            e.target.clone(),
            e.lag.to_string(),
            fmt(e.mu),
            fmt(e.effect),
            fmt(e.t),
            fmt(e.p),
            fmt(e.q),
            test.to_string(),
            e.selected.to_string(),
        ])
        .map_err(csv_err)?;
    }
    w.into_inner()
        .map_err(|e| Error::Data(format!("writing edges.csv: {e}")))
}

/// `loss.csv`: `fold,epoch,loss` (mean DSM training loss per epoch).
pub fn loss_csv(inf: &Inference) -> Vec<u8> {
    let mut s = String::from("fold,epoch,loss\n");
    for (k, f) in inf.folds.iter().enumerate() {
        for (e, l) in f.epoch_loss.iter().enumerate() {
            s.push_str(&format!("{},{},{}\n", k + 1, e + 1, fmt(*l)));
        }
    }
    s.into_bytes()
}

/// Writes `edges.csv`, `loss.csv` and `summary.json` into `dir`.
pub fn write_outputs(dir: &Path, inf: &Inference, summary: &serde_json::Value) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    write_atomic(&dir.join("edges.csv"), &edges_csv(inf)?)?;
    write_atomic(&dir.join("loss.csv"), &loss_csv(inf))?;
    let json = serde_json::to_vec_pretty(summary)
        .map_err(|e| Error::Data(format!("summary.json: {e}")))?;
    write_atomic(&dir.join("summary.json"), &json)?;
    Ok(())
}
