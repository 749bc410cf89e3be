//! Writing results: `edges.csv`, `recording_edges.csv`, circuit exports, `summary.json`,
//! `loss.csv`. Every file is written to a
//! temporary file in the output folder and renamed into place, so a reader never sees
//! a half-written file and a failed run leaves earlier files intact.

use std::io::Write;
use std::path::{Path, PathBuf};

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

/// The columns of `edges.csv` and `edges.parquet`, in order.
pub const EDGE_COLUMNS: [&str; 11] = [
    "source",
    "target",
    "lag",
    "mu",
    "effect",
    "t",
    "p",
    "q",
    "test",
    "selected",
    "variance_floored",
];

/// `edges.csv`: `source,target,lag,mu,effect,t,p,q,test,selected,variance_floored`, one
/// row per tested (source → target, test). `effect` of a mean test is `−mu` (positive =
/// excitatory); `variance_floored` flags a HAC variance that was floored.
pub fn edges_csv(inf: &Inference) -> Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let csv_err = |e: csv::Error| Error::Data(format!("writing edges.csv: {e}"));
    w.write_record(EDGE_COLUMNS).map_err(csv_err)?;
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
            e.variance_floored.to_string(),
        ])
        .map_err(csv_err)?;
    }
    w.into_inner()
        .map_err(|e| Error::Data(format!("writing edges.csv: {e}")))
}

/// `recording_edges.csv`: `recording,source,target,lag,windows,mu,se`, the mean test
/// restricted to each recording's held-out windows (`se = √Var(μ̂_r)`, HAC with the
/// pooled bandwidth); what `sbtg compare` resamples for its bootstrap over recordings.
pub fn recording_edges_csv(inf: &Inference) -> Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let csv_err = |e: csv::Error| Error::Data(format!("writing recording_edges.csv: {e}"));
    w.write_record([
        "recording",
        "source",
        "target",
        "lag",
        "windows",
        "mu",
        "se",
    ])
    .map_err(csv_err)?;
    let n = inf.neurons.len();
    for (lag, r) in inf
        .lags
        .iter()
        .flat_map(|l| l.recording_tests.iter().map(move |r| (l.lag, r)))
    {
        for j in 0..n {
            for i in 0..n {
                if i == j || r.count[[j, i]] == 0.0 {
                    continue;
                }
                w.write_record([
                    r.recording.clone(),
                    inf.neurons[i].clone(),
                    inf.neurons[j].clone(),
                    lag.to_string(),
                    r.count[[j, i]].to_string(),
                    fmt(r.mean[[j, i]]),
                    fmt(r.variance_of_mean[[j, i]].sqrt()),
                ])
                .map_err(csv_err)?;
            }
        }
    }
    w.into_inner()
        .map_err(|e| Error::Data(format!("writing recording_edges.csv: {e}")))
}

/// `loss.csv`: `lag,fold,epoch,loss` (mean DSM training loss per epoch).
pub fn loss_csv(inf: &Inference) -> Vec<u8> {
    let mut s = String::from("lag,fold,epoch,loss\n");
    for lag in &inf.lags {
        for (k, f) in lag.folds.iter().enumerate() {
            for (e, l) in f.epoch_loss.iter().enumerate() {
                s.push_str(&format!("{},{},{},{}\n", lag.lag, k + 1, e + 1, fmt(*l)));
            }
        }
    }
    s.into_bytes()
}

/// `edges.parquet`: the same columns as `edges.csv` (typed: strings, u32 lag, f64
/// statistics, bool `selected`).
#[cfg(feature = "parquet")]
pub fn edges_parquet(inf: &Inference) -> Result<Vec<u8>> {
    use polars::prelude::*;
    let e = &inf.edges;
    let col = |f: fn(&crate::infer::EdgeRow) -> f64| e.iter().map(f).collect::<Vec<f64>>();
    let mut df = df!(
        "source" => e.iter().map(|r| r.source.as_str()).collect::<Vec<_>>(),
        "target" => e.iter().map(|r| r.target.as_str()).collect::<Vec<_>>(),
        "lag" => e.iter().map(|r| r.lag as u32).collect::<Vec<_>>(),
        "mu" => col(|r| r.mu),
        "effect" => col(|r| r.effect),
        "t" => col(|r| r.t),
        "p" => col(|r| r.p),
        "q" => col(|r| r.q),
        "test" => e.iter().map(|r| match r.test {
            crate::infer::TestKind::Mean => "mean",
            crate::infer::TestKind::Volatility => "volatility",
        }).collect::<Vec<_>>(),
        "selected" => e.iter().map(|r| r.selected).collect::<Vec<_>>(),
        "variance_floored" => e.iter().map(|r| r.variance_floored).collect::<Vec<_>>(),
    )
    .map_err(|err| Error::Data(format!("building edges.parquet: {err}")))?;
    let mut buf = Vec::new();
    ParquetWriter::new(&mut buf)
        .finish(&mut df)
        .map_err(|err| Error::Data(format!("writing edges.parquet: {err}")))?;
    Ok(buf)
}

/// Writes `edges.csv` (and `edges.parquet` with the `parquet` feature),
/// `recording_edges.csv`, the selected circuit as `circuit.graphml`, `circuit.dot` and
/// `circuit.json`, `loss.csv` (methods that train) and `summary.json` into `dir`.
/// Returns the paths written.
pub fn write_outputs(
    dir: &Path,
    inf: &Inference,
    summary: &serde_json::Value,
) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut written = Vec::new();
    let mut put = |name: &str, bytes: &[u8]| -> Result<()> {
        let p = dir.join(name);
        write_atomic(&p, bytes)?;
        written.push(p);
        Ok(())
    };
    put("edges.csv", &edges_csv(inf)?)?;
    #[cfg(feature = "parquet")]
    put("edges.parquet", &edges_parquet(inf)?)?;
    put("recording_edges.csv", &recording_edges_csv(inf)?)?;
    let method = inf.method.name();
    let atlas = crate::connectome::CellAtlas::cook2019()?;
    let circuit = crate::circuit::Circuit::from_edges(&inf.neurons, &inf.edges, method, &atlas);
    crate::circuit::export::write_all(dir, &circuit)?;
    for f in ["circuit.graphml", "circuit.dot", "circuit.json"] {
        written.push(dir.join(f));
    }
    let mut put = |name: &str, bytes: &[u8]| -> Result<()> {
        let p = dir.join(name);
        write_atomic(&p, bytes)?;
        written.push(p);
        Ok(())
    };
    if inf.lags.iter().any(|l| !l.folds.is_empty()) {
        put("loss.csv", &loss_csv(inf))?;
    }
    let json = serde_json::to_vec_pretty(summary)
        .map_err(|e| Error::Data(format!("summary.json: {e}")))?;
    put("summary.json", &json)?;
    Ok(written)
}

#[cfg(all(test, feature = "parquet"))]
mod parquet_tests {
    use super::*;
    use crate::infer::{infer, InferConfig};
    use crate::panel::{Panel, PanelConfig};
    use crate::simulate::{var1, NetworkSpec};
    use polars::prelude::*;

    #[test]
    fn edges_parquet_round_trips() {
        let spec = NetworkSpec {
            neurons: 4,
            frames: 200,
            recordings: 2,
            ..NetworkSpec::default()
        };
        let sim = var1(&spec).unwrap();
        let panel = Panel::build(&sim.recordings, &PanelConfig::default()).unwrap();
        let mut cfg = InferConfig::default();
        cfg.model.epochs = 1;
        let inf = infer(&panel, &cfg, &|_| {}).unwrap();
        let bytes = edges_parquet(&inf).unwrap();
        let df = ParquetReader::new(std::io::Cursor::new(bytes))
            .finish()
            .unwrap();
        assert_eq!(df.height(), inf.edges.len());
        let names: Vec<String> = df
            .get_column_names()
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(names, EDGE_COLUMNS);
        let mu = df.column("mu").unwrap().f64().unwrap();
        for (k, e) in inf.edges.iter().enumerate() {
            assert_eq!(mu.get(k), Some(e.mu));
        }
        let src = df.column("source").unwrap().str().unwrap();
        assert_eq!(src.get(0), Some(inf.edges[0].source.as_str()));
    }
}
