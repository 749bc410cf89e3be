//! An inferred circuit: the edge table written by `sbtg infer` (`edges.csv`, with the
//! per-recording mean tests of `recording_edges.csv` and the run summary
//! `summary.json`), read back for comparison and plotting ([`CircuitTable`]); the
//! circuit as a petgraph graph ([`Circuit`]) and its exports ([`export`]: GraphML, DOT,
//! node-link JSON).

pub mod export;
mod graph;

pub use graph::{Circuit, CircuitEdge, CircuitNode};

use std::path::{Path, PathBuf};

use ndarray::Array2;

use crate::connectome::normalise_name;
use crate::infer::{EdgeRow, RecordingTest, TestKind};
use crate::{Error, Result};

/// The circuit folder, at one lag or all of them.
#[derive(Clone, Debug)]
pub struct CircuitTable {
    pub dir: PathBuf,
    /// `method_id` of `summary.json` (`sbtg`, `lagged-correlation`, …).
    pub method: String,
    /// Neuron names as written (normalised: upper case, no zero-padding).
    pub neurons: Vec<String>,
    /// The lag read (`None` = every lag of the folder).
    pub lag: Option<usize>,
    pub edges: Vec<EdgeRow>,
    /// Empty when the folder has no `recording_edges.csv`.
    pub recordings: Vec<RecordingTest>,
}

fn csv_error(path: &Path, e: csv::Error) -> Error {
    let field = e
        .position()
        .map_or("contents".to_string(), |p| format!("line {}", p.line()));
    Error::format(path, field, e.to_string())
}

impl CircuitTable {
    /// Reads `dir/edges.csv` (required), `dir/summary.json` and
    /// `dir/recording_edges.csv` (optional) at lag `lag`, or at every lag if `None`.
    pub fn read(dir: &Path, lag: Option<usize>) -> Result<CircuitTable> {
        let edges_path = dir.join("edges.csv");
        if !edges_path.exists() {
            return Err(Error::format(
                dir,
                "edges.csv",
                "missing: pass the output folder of `sbtg infer` (it holds edges.csv)",
            ));
        }
        let mut rdr = csv::Reader::from_path(&edges_path).map_err(|e| csv_error(&edges_path, e))?;
        let mut edges = Vec::new();
        for rec in rdr.deserialize::<EdgeRow>() {
            let mut e = rec.map_err(|e| csv_error(&edges_path, e))?;
            if lag.is_some_and(|l| l != e.lag) {
                continue;
            }
            e.source = normalise_name(&e.source);
            e.target = normalise_name(&e.target);
            edges.push(e);
        }
        if edges.is_empty() {
            return Err(Error::format(
                &edges_path,
                "lag",
                match lag {
                    Some(l) => {
                        format!("no edges at lag {l}; pick a lag the circuit was inferred at")
                    }
                    None => "no edges below the header".to_string(),
                },
            ));
        }
        let summary: Option<serde_json::Value> = std::fs::read(dir.join("summary.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let method = summary
            .as_ref()
            .and_then(|s| s.get("method_id"))
            .and_then(|m| m.as_str())
            .unwrap_or("sbtg")
            .to_string();
        // Neuron order: the summary's panel order, else first appearance.
        let mut neurons: Vec<String> = summary
            .as_ref()
            .and_then(|s| s.get("neurons"))
            .and_then(|n| n.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(normalise_name))
                    .collect()
            })
            .unwrap_or_default();
        for e in &edges {
            for name in [&e.source, &e.target] {
                if !neurons.contains(name) {
                    neurons.push(name.clone());
                }
            }
        }
        let mut table = CircuitTable {
            dir: dir.to_path_buf(),
            method,
            neurons,
            lag,
            edges,
            recordings: Vec::new(),
        };
        let rec_path = dir.join("recording_edges.csv");
        // Per-recording tests are per lag: read them only for a single lag.
        if rec_path.exists() && lag.is_some() {
            table.recordings = table.read_recordings(&rec_path)?;
        }
        Ok(table)
    }

    /// The lags present, ascending.
    pub fn lags(&self) -> Vec<usize> {
        let mut l: Vec<usize> = self.edges.iter().map(|e| e.lag).collect();
        l.sort_unstable();
        l.dedup();
        l
    }

    fn index(&self, name: &str) -> Option<usize> {
        self.neurons.iter().position(|n| n == name)
    }

    fn read_recordings(&self, path: &Path) -> Result<Vec<RecordingTest>> {
        #[derive(serde::Deserialize)]
        struct Row {
            recording: String,
            source: String,
            target: String,
            lag: usize,
            windows: f64,
            mu: f64,
            se: f64,
        }
        let n = self.neurons.len();
        let mut out: Vec<RecordingTest> = Vec::new();
        let mut rdr = csv::Reader::from_path(path).map_err(|e| csv_error(path, e))?;
        for rec in rdr.deserialize::<Row>() {
            let r = rec.map_err(|e| csv_error(path, e))?;
            if self.lag.is_some_and(|l| l != r.lag) {
                continue;
            }
            let (Some(i), Some(j)) = (
                self.index(&normalise_name(&r.source)),
                self.index(&normalise_name(&r.target)),
            ) else {
                return Err(Error::format(
                    path,
                    "source/target",
                    format!(
                        "{} → {} is not a neuron of edges.csv; the two files come from different runs",
                        r.source, r.target
                    ),
                ));
            };
            let k = match out.iter().position(|m| m.recording == r.recording) {
                Some(k) => k,
                None => {
                    out.push(RecordingTest {
                        recording: r.recording.clone(),
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

    /// `[target, source]` matrix of `f` over the rows of one test (NaN elsewhere).
    pub fn matrix(&self, test: TestKind, f: impl Fn(&EdgeRow) -> f64) -> Array2<f64> {
        let n = self.neurons.len();
        let mut m = Array2::from_elem((n, n), f64::NAN);
        for e in self.edges.iter().filter(|e| e.test == test) {
            if let (Some(i), Some(j)) = (self.index(&e.source), self.index(&e.target)) {
                m[[j, i]] = f(e);
            }
        }
        m
    }

    /// `[target, source]`: true where any test selected the edge.
    pub fn selected(&self) -> Array2<bool> {
        let n = self.neurons.len();
        let mut m = Array2::from_elem((n, n), false);
        for e in self.edges.iter().filter(|e| e.selected) {
            if let (Some(i), Some(j)) = (self.index(&e.source), self.index(&e.target)) {
                m[[j, i]] = true;
            }
        }
        m
    }
}
