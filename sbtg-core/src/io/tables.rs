//! The run folder's tables, written from an [`EdgeTable`] and read back into one:
//! `edges.csv` (and `edges.parquet` with the `parquet` feature), `recording_edges.csv`,
//! `loss.csv`, `summary.json`, and the circuit exports ([`crate::io::circuit`]). The
//! files are written all or none ([`write_all_atomic`]).

use std::path::{Path, PathBuf};

use ndarray::Array2;

use super::atomic::write_all_atomic;
use crate::estimate::RecordingTest;
use crate::results::{EdgeRow, EdgeTable, Summary};
use crate::stats::TestKind;
use crate::{Error, Result};

fn fmt(v: f64) -> String {
    if v.is_nan() {
        "nan".into()
    } else {
        format!("{v:.10e}")
    }
}

fn csv_encode(what: &'static str) -> impl Fn(csv::Error) -> Error {
    move |e| Error::encode(what, e)
}

/// The columns of `edges.csv` and `edges.parquet`, in order.
pub const EDGE_COLUMNS: [&str; 16] = [
    "source",
    "target",
    "lag",
    "mu",
    "effect",
    "se",
    "ci_low",
    "ci_high",
    "t",
    "p",
    "q",
    "test",
    "selected",
    "variance_floored",
    "directed",
    "state",
];

/// `edges.csv`: `source,target,lag,mu,effect,se,ci_low,ci_high,t,p,q,test,selected,
/// variance_floored,directed`, one row per tested (source → target, lag, test). `effect`
/// of an SBTG mean test is `−mu` (positive = excitatory), with its standard error and
/// 95% interval; `variance_floored` flags a HAC variance that was floored; `directed`
/// is false for the same-frame (lag-0) rows, one per unordered pair; `state` is `all`
/// for the tests over every window, then (with `--states`) a state's name for its
/// per-state tests and `A-B` for the differential tests.
pub fn edges_csv(table: &EdgeTable) -> Result<Vec<u8>> {
    let err = csv_encode("edges.csv");
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(EDGE_COLUMNS).map_err(&err)?;
    for e in table.rows.iter().chain(&table.state_rows) {
        w.write_record([
            e.source.clone(),
            e.target.clone(),
            e.lag.to_string(),
            fmt(e.mu),
            fmt(e.effect),
            fmt(e.se),
            fmt(e.ci_low),
            fmt(e.ci_high),
            fmt(e.t),
            fmt(e.p),
            fmt(e.q),
            e.test.name().to_string(),
            e.selected.to_string(),
            e.variance_floored.to_string(),
            e.directed().to_string(),
            e.state.clone(),
        ])
        .map_err(&err)?;
    }
    w.into_inner()
        .map_err(|e| Error::encode("edges.csv", e.into_error()))
}

/// `recording_edges.csv`: `recording,source,target,lag,windows,mu,se,state`, the mean
/// test restricted to each recording's held-out windows (`se = √Var(μ̂_r)`, HAC with the
/// pooled bandwidth); what `sbtg compare` resamples for its bootstrap over recordings.
/// Per-state tests (`state` other than `all`) give each recording its linearised share
/// of the state's mean.
pub fn recording_edges_csv(table: &EdgeTable) -> Result<Vec<u8>> {
    let err = csv_encode("recording_edges.csv");
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "recording",
        "source",
        "target",
        "lag",
        "windows",
        "mu",
        "se",
        "state",
    ])
    .map_err(&err)?;
    let neurons = table.neurons();
    let n = neurons.len();
    for r in &table.recording_tests {
        for j in 0..n {
            for i in 0..n {
                // Same-frame (lag-0) pairs are symmetric: one row per unordered pair.
                if i == j || (r.lag == 0 && i > j) || r.count[[j, i]] == 0.0 {
                    continue;
                }
                w.write_record([
                    r.recording.clone(),
                    neurons[i].clone(),
                    neurons[j].clone(),
                    r.lag.to_string(),
                    r.count[[j, i]].to_string(),
                    fmt(r.mean[[j, i]]),
                    fmt(r.variance_of_mean[[j, i]].sqrt()),
                    r.state.clone(),
                ])
                .map_err(&err)?;
            }
        }
    }
    w.into_inner()
        .map_err(|e| Error::encode("recording_edges.csv", e.into_error()))
}

/// `loss.csv`: `lag,fold,epoch,loss` (mean DSM training loss per epoch), plus
/// `validation_loss` (the inner-split loss after the epoch) when early stopping ran, or
/// the held-out worms' mean loss when the epochs were selected (`loss` is then NaN: the
/// selection trains one model per held-out worm, not one curve).
pub fn loss_csv(table: &EdgeTable) -> Vec<u8> {
    let folds = || table.summary.per_lag.iter().flat_map(|l| l.folds.iter());
    let validated = folds().any(|f| !f.validation_loss.is_empty());
    let mut s = String::from("lag,fold,epoch,loss");
    s.push_str(if validated {
        ",validation_loss\n"
    } else {
        "\n"
    });
    for lag in &table.summary.per_lag {
        for (k, f) in lag.folds.iter().enumerate() {
            let epochs = f.epoch_loss.len().max(f.validation_loss.len());
            for e in 0..epochs {
                let l = f.epoch_loss.get(e).copied().unwrap_or(f64::NAN);
                s.push_str(&format!("{},{},{},{}", lag.lag, k + 1, e + 1, fmt(l)));
                if validated {
                    let v = f.validation_loss.get(e).copied().unwrap_or(f64::NAN);
                    s.push_str(&format!(",{}", fmt(v)));
                }
                s.push('\n');
            }
        }
    }
    s.into_bytes()
}

/// `edges.parquet`: the same columns as `edges.csv` (typed: strings, u32 lag, f64
/// statistics, bool `selected`).
#[cfg(feature = "parquet")]
pub fn edges_parquet(table: &EdgeTable) -> Result<Vec<u8>> {
    use polars::prelude::*;
    let e: Vec<&EdgeRow> = table.rows.iter().chain(&table.state_rows).collect();
    let col = |f: fn(&EdgeRow) -> f64| e.iter().map(f).collect::<Vec<f64>>();
    let mut df = df!(
        "source" => e.iter().map(|r| r.source.as_str()).collect::<Vec<_>>(),
        "target" => e.iter().map(|r| r.target.as_str()).collect::<Vec<_>>(),
        "lag" => e.iter().map(|r| r.lag as u32).collect::<Vec<_>>(),
        "mu" => col(|r| r.mu),
        "effect" => col(|r| r.effect),
        "se" => col(|r| r.se),
        "ci_low" => col(|r| r.ci_low),
        "ci_high" => col(|r| r.ci_high),
        "t" => col(|r| r.t),
        "p" => col(|r| r.p),
        "q" => col(|r| r.q),
        "test" => e.iter().map(|r| r.test.name()).collect::<Vec<_>>(),
        "selected" => e.iter().map(|r| r.selected).collect::<Vec<_>>(),
        "variance_floored" => e.iter().map(|r| r.variance_floored).collect::<Vec<_>>(),
        "directed" => e.iter().map(|r| r.directed()).collect::<Vec<_>>(),
        "state" => e.iter().map(|r| r.state.as_str()).collect::<Vec<_>>(),
    )
    .map_err(|err| Error::encode("edges.parquet", err))?;
    let mut buf = Vec::new();
    ParquetWriter::new(&mut buf)
        .finish(&mut df)
        .map_err(|err| Error::encode("edges.parquet", err))?;
    Ok(buf)
}

/// Writes `edges.csv` (and `edges.parquet` with the `parquet` feature),
/// `recording_edges.csv`, the selected circuit as `circuit.graphml`, `circuit.dot` and
/// `circuit.json` (and `volatility.graphml`/`.json`), `arrays.npz`, `loss.csv` (methods
/// that train) and `summary.json` into `dir`.
/// Returns the paths written.
pub fn write_outputs(dir: &Path, table: &EdgeTable) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|e| Error::write(dir, e))?;
    // The encoders are independent: they run side by side (the files keep their order).
    let atlas = super::connectome::CellAtlas::cook2019()?;
    let volatility = table.rows.iter().any(|r| r.test == TestKind::Volatility);
    let ((edges, recordings), (circuit, arrays)) = rayon::join(
        || rayon::join(|| edges_csv(table), || recording_edges_csv(table)),
        || {
            rayon::join(
                || {
                    let circuit = super::circuit::Circuit::from_table(table, &atlas);
                    super::circuit::export::files(&circuit, volatility)
                },
                || super::arrays::arrays_npz(table),
            )
        },
    );
    let mut files: Vec<(&str, Vec<u8>)> = vec![("edges.csv", edges?)];
    #[cfg(feature = "parquet")]
    files.push(("edges.parquet", edges_parquet(table)?));
    files.push(("recording_edges.csv", recordings?));
    files.extend(circuit);
    files.push(("arrays.npz", arrays?));
    if table.summary.per_lag.iter().any(|l| !l.folds.is_empty()) {
        files.push(("loss.csv", loss_csv(table)));
    }
    let json =
        serde_json::to_vec_pretty(&table.summary).map_err(|e| Error::encode("summary.json", e))?;
    files.push(("summary.json", json));
    // All or none: a failure while writing leaves the earlier run's files as they were.
    let files: Vec<(PathBuf, Vec<u8>)> = files
        .into_iter()
        .map(|(name, bytes)| (dir.join(name), bytes))
        .collect();
    write_all_atomic(&files)?;
    Ok(files.into_iter().map(|(p, _)| p).collect())
}

fn csv_error(path: &Path, e: csv::Error) -> Error {
    let field = e
        .position()
        .map_or("contents".to_string(), |p| format!("line {}", p.line()));
    Error::format(path, field, e.to_string())
}

/// Reads the edge table of a run folder: `dir/edges.csv` and `dir/summary.json`
/// (required) and `dir/recording_edges.csv` (optional), at lag `lag` or at every lag
/// if `None`. Neuron names are read as `infer` wrote them (it has already normalised
/// the names it recognises; `--any-names` runs keep theirs as written), so figures and
/// reports name neurons as `edges.csv` does.
pub fn read_table(dir: &Path, lag: Option<usize>) -> Result<EdgeTable> {
    let edges_path = dir.join("edges.csv");
    if !edges_path.exists() {
        let fix = if dir.join("summary.json").exists() {
            "the edge table is absent from this run folder (it was left out, as large tables \
             of shipped runs are); regenerate it with the command in the folder's run.json \
             (`sbtg infer --config RUN/run.json --out RUN --force`)"
        } else {
            "missing: pass the output folder of `sbtg infer` (it holds edges.csv)"
        };
        return Err(Error::format(dir, "edges.csv", fix));
    }
    let summary_path = dir.join("summary.json");
    let summary_bytes = std::fs::read(&summary_path).map_err(|e| {
        Error::format(
            &summary_path,
            "summary.json",
            format!(
                "{e}: the run folder's summary is missing; rerun `sbtg infer` with this version"
            ),
        )
    })?;
    let mut summary: Summary = serde_json::from_slice(&summary_bytes).map_err(|e| {
        Error::format(
            &summary_path,
            "summary",
            format!("{e}; the folder was written by another sbtg version: rerun `sbtg infer`"),
        )
    })?;
    let mut rdr = csv::Reader::from_path(&edges_path).map_err(|e| csv_error(&edges_path, e))?;
    let mut rows = Vec::new();
    let mut state_rows = Vec::new();
    for rec in rdr.deserialize::<EdgeRow>() {
        let e = rec.map_err(|e| csv_error(&edges_path, e))?;
        if lag.is_some_and(|l| l != e.lag) {
            continue;
        }
        if e.state == crate::data::state::ALL_STATES {
            rows.push(e);
        } else {
            state_rows.push(e);
        }
    }
    if rows.is_empty() {
        return Err(Error::format(
            &edges_path,
            "lag",
            match lag {
                Some(l) => format!("no edges at lag {l}; pick a lag the circuit was inferred at"),
                None => "no edges below the header".to_string(),
            },
        ));
    }
    // Neuron order: the summary's panel order, then any other name in the rows.
    let mut neurons: Vec<String> = summary.neurons.clone();
    for e in &rows {
        for name in [&e.source, &e.target] {
            if !neurons.contains(name) {
                neurons.push(name.clone());
            }
        }
    }
    summary.neurons = neurons;
    let mut table = EdgeTable {
        summary,
        rows,
        state_rows,
        recording_tests: Vec::new(),
        origin: Some(dir.to_path_buf()),
    };
    let rec_path = dir.join("recording_edges.csv");
    // Per-recording tests are per lag: read them only for a single lag.
    if let (true, Some(lag)) = (rec_path.exists(), lag) {
        table.recording_tests = read_recording_tests(&rec_path, table.neurons(), lag)?;
    }
    Ok(table)
}

/// The per-recording mean tests of one lag in `recording_edges.csv`.
fn read_recording_tests(path: &Path, neurons: &[String], lag: usize) -> Result<Vec<RecordingTest>> {
    #[derive(serde::Deserialize)]
    struct Row {
        recording: String,
        source: String,
        target: String,
        lag: usize,
        windows: f64,
        mu: f64,
        se: f64,
        #[serde(default = "all_states")]
        state: String,
    }
    fn all_states() -> String {
        crate::data::state::ALL_STATES.to_string()
    }
    let n = neurons.len();
    let index = |name: &str| neurons.iter().position(|n| n == name);
    let mut out: Vec<RecordingTest> = Vec::new();
    let mut rdr = csv::Reader::from_path(path).map_err(|e| csv_error(path, e))?;
    for rec in rdr.deserialize::<Row>() {
        let r = rec.map_err(|e| csv_error(path, e))?;
        if r.lag != lag {
            continue;
        }
        let (Some(i), Some(j)) = (index(&r.source), index(&r.target)) else {
            return Err(Error::format(
                path,
                "source/target",
                format!(
                    "{} → {} is not a neuron of edges.csv; the two files come from different runs",
                    r.source, r.target
                ),
            ));
        };
        let k = match out
            .iter()
            .position(|m| m.recording == r.recording && m.state == r.state)
        {
            Some(k) => k,
            None => {
                out.push(RecordingTest {
                    recording: r.recording.clone(),
                    lag,
                    state: r.state.clone(),
                    count: Array2::zeros((n, n)),
                    mean: Array2::from_elem((n, n), f64::NAN),
                    variance_of_mean: Array2::from_elem((n, n), f64::NAN),
                });
                out.len() - 1
            }
        };
        out[k].count[[j, i]] = r.windows;
        out[k].mean[[j, i]] = r.mu;
        out[k].variance_of_mean[[j, i]] = r.se * r.se;
    }
    Ok(out)
}

#[cfg(all(test, feature = "parquet"))]
mod parquet_tests {
    use super::*;
    use crate::data::panel::{Panel, PanelConfig};
    use crate::data::simulate::{var1, NetworkSpec};
    use crate::estimate::{FitContext, InferConfig, MethodConfig, Sbtg};
    use crate::results::infer;
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
        let mut sbtg = Sbtg::default();
        sbtg.model.epochs = 1;
        let cfg = InferConfig {
            estimator: MethodConfig::Sbtg(sbtg),
            ..InferConfig::default()
        };
        let table = infer(&panel, &cfg, &FitContext::quiet()).unwrap();
        let bytes = edges_parquet(&table).unwrap();
        let df = ParquetReader::new(std::io::Cursor::new(bytes))
            .finish()
            .unwrap();
        assert_eq!(df.height(), table.rows.len());
        let names: Vec<String> = df
            .get_column_names()
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(names, EDGE_COLUMNS);
        let mu = df.column("mu").unwrap().f64().unwrap();
        for (k, e) in table.rows.iter().enumerate() {
            assert_eq!(mu.get(k), Some(e.mu));
        }
        let src = df.column("source").unwrap().str().unwrap();
        assert_eq!(src.get(0), Some(table.rows[0].source.as_str()));
    }
}
