//! Recordings: a T×n matrix of traces with neuron names, a sampling interval and a
//! missing-value mask.
//!
//! Reader for the wide-CSV layout (`time_s` then one column per neuron; `nan` or an
//! empty cell marks a missing sample), as in the Dag et al. (2023) conversion shipped
//! in `datasets/dag2023`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use ndarray::Array2;

use crate::{Error, Result};

/// One recording (one worm).
#[derive(Clone, Debug)]
pub struct Recording {
    /// Recording id (file stem without `.traces`).
    pub name: String,
    /// The file it came from (empty for simulated data).
    pub path: PathBuf,
    /// Neuron label of every column.
    pub neurons: Vec<String>,
    /// Sampling interval in seconds.
    pub dt: f64,
    /// `T × n`; NaN where a sample is missing.
    pub values: Array2<f64>,
}

impl Recording {
    /// Builds a recording, checking shapes, names and values.
    pub fn new(
        name: impl Into<String>,
        neurons: Vec<String>,
        dt: f64,
        values: Array2<f64>,
    ) -> Result<Self> {
        let name = name.into();
        let r = Recording {
            path: PathBuf::from(&name),
            name,
            neurons,
            dt,
            values,
        };
        r.check()?;
        Ok(r)
    }

    fn check(&self) -> Result<()> {
        let path = &self.path;
        if self.values.ncols() != self.neurons.len() {
            return Err(Error::format(
                path,
                "columns",
                format!(
                    "{} neuron names for {} columns of values",
                    self.neurons.len(),
                    self.values.ncols()
                ),
            ));
        }
        if !(self.dt.is_finite() && self.dt > 0.0) {
            return Err(Error::format(
                path,
                "sampling interval",
                format!(
                    "must be a positive number of seconds, got {}; check the time column",
                    self.dt
                ),
            ));
        }
        let mut seen = HashSet::new();
        for n in &self.neurons {
            if n.trim().is_empty() {
                return Err(Error::format(
                    path,
                    "header",
                    "a neuron column has an empty name; name every column",
                ));
            }
            if !seen.insert(n.as_str()) {
                return Err(Error::format(
                    path,
                    format!("column {n}"),
                    "duplicate neuron name; keep one column per neuron",
                ));
            }
        }
        if let Some(((t, j), v)) = self.values.indexed_iter().find(|(_, v)| v.is_infinite()) {
            return Err(Error::format(
                path,
                format!("column {}", self.neurons[j]),
                format!(
                "value {v} at frame {t}; replace infinities with nan (missing) or fix the export"
            ),
            ));
        }
        Ok(())
    }

    pub fn frames(&self) -> usize {
        self.values.nrows()
    }

    /// Whether sample `(t, j)` is observed.
    pub fn observed(&self, t: usize, j: usize) -> bool {
        !self.values[[t, j]].is_nan()
    }
}

/// Reads one wide CSV: a time column (`time_s`, `time` or `t`, seconds), then one
/// column per neuron.
pub fn read_wide_csv(path: &Path) -> Result<Recording> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_path(path)
        .map_err(|e| csv_error(path, e))?;
    let header = rdr.headers().map_err(|e| csv_error(path, e))?.clone();
    if header.is_empty() || (header.len() == 1 && header[0].trim().is_empty()) {
        return Err(Error::format(
            path,
            "header",
            "the file is empty; expected `time_s,<neuron>,<neuron>,…`",
        ));
    }
    let time_col = header[0].trim().to_ascii_lowercase();
    if !matches!(time_col.as_str(), "time_s" | "time" | "t") {
        return Err(Error::format(path, "header", format!(
            "first column is `{}`; expected the time in seconds as `time_s` (then one column per neuron)",
            &header[0]
        )));
    }
    let neurons: Vec<String> = header
        .iter()
        .skip(1)
        .map(|s| s.trim().to_string())
        .collect();
    if neurons.is_empty() {
        return Err(Error::format(
            path,
            "header",
            "no neuron columns after the time column",
        ));
    }
    let mut times = Vec::new();
    let mut data = Vec::new();
    for (row, rec) in rdr.records().enumerate() {
        let rec = rec.map_err(|e| csv_error(path, e))?;
        let line = row + 2;
        if rec.len() != header.len() {
            return Err(Error::format(
                path,
                format!("line {line}"),
                format!(
                "{} cells where the header has {}; every row needs a time and one value per neuron",
                rec.len(),
                header.len()
            ),
            ));
        }
        for (c, cell) in rec.iter().enumerate() {
            let cell = cell.trim();
            let v = if cell.is_empty()
                || cell.eq_ignore_ascii_case("nan")
                || cell.eq_ignore_ascii_case("na")
            {
                f64::NAN
            } else {
                cell.parse::<f64>().map_err(|_| {
                    Error::format(path, format!("line {line}, column {}", &header[c]), format!(
                        "`{cell}` is not a number; use a decimal number, or nan for a missing sample"
                    ))
                })?
            };
            if c == 0 {
                if !v.is_finite() {
                    return Err(Error::format(
                        path,
                        format!("line {line}, column {}", &header[0]),
                        "every row needs a finite time",
                    ));
                }
                times.push(v);
            } else {
                data.push(v);
            }
        }
    }
    if times.len() < 2 {
        return Err(Error::format(
            path,
            "rows",
            format!(
                "{} data rows; a recording needs at least two time points",
                times.len()
            ),
        ));
    }
    let diffs: Vec<f64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    if let Some(k) = diffs.iter().position(|d| d.is_nan() || *d <= 0.0) {
        return Err(Error::format(
            path,
            format!("line {}, column {}", k + 3, &header[0]),
            "times must increase strictly",
        ));
    }
    let mut sorted = diffs.clone();
    sorted.sort_by(f64::total_cmp);
    let dt = sorted[sorted.len() / 2];
    let values = Array2::from_shape_vec((times.len(), neurons.len()), data).expect("rows checked");
    let name = path
        .file_name()
        .and_then(|s| s.to_str())
        .map(|s| {
            s.trim_end_matches(".csv")
                .trim_end_matches(".traces")
                .to_string()
        })
        .unwrap_or_default();
    let rec = Recording {
        name,
        path: path.to_path_buf(),
        neurons,
        dt,
        values,
    };
    rec.check()?;
    Ok(rec)
}

fn csv_error(path: &Path, e: csv::Error) -> Error {
    match e.into_kind() {
        csv::ErrorKind::Io(io) => Error::io(path, io),
        other => Error::format(path, "csv", format!("{other:?}")),
    }
}

/// Loads recordings from a folder (every `*.traces.csv`, or every `*.csv` if there
/// are none) or from one CSV file. Recordings are returned sorted by name.
pub fn load_recordings(path: &Path) -> Result<Vec<Recording>> {
    if path.is_file() {
        return Ok(vec![read_wide_csv(path)?]);
    }
    let entries = std::fs::read_dir(path).map_err(|e| Error::io(path, e))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "csv"))
        .collect();
    let traces: Vec<PathBuf> = files
        .iter()
        .filter(|p| p.to_string_lossy().ends_with(".traces.csv"))
        .cloned()
        .collect();
    if !traces.is_empty() {
        files = traces;
    }
    files.sort();
    if files.is_empty() {
        return Err(Error::format(path, "folder", "no *.traces.csv or *.csv recordings found; point to a folder of wide CSV traces or to one file"));
    }
    files.iter().map(|f| read_wide_csv(f)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, text: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("sbtg-rec-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn reads_values_missing_samples_and_dt() {
        let p = write(
            "a.traces.csv",
            "time_s,AVAL,AVAR\n0.0,1.5,nan\n0.5,2.0,3\n1.0,,4\n",
        );
        let r = read_wide_csv(&p).unwrap();
        assert_eq!(r.name, "a");
        assert_eq!(r.neurons, ["AVAL", "AVAR"]);
        assert_eq!(r.dt, 0.5);
        assert_eq!(r.values[[1, 1]], 3.0);
        assert!(!r.observed(0, 1) && !r.observed(2, 0) && r.observed(0, 0));
    }

    #[test]
    fn bad_files_name_the_field_and_the_fix() {
        let cases = [
            ("empty.csv", "", "empty"),
            ("hdr.csv", "time_s,AVAL\n", "at least two time points"),
            (
                "num.csv",
                "time_s,AVAL\n0,1\n1,abc\n",
                "line 3, column AVAL",
            ),
            (
                "dup.csv",
                "time_s,AVAL,AVAL\n0,1,2\n1,1,2\n",
                "duplicate neuron name",
            ),
            ("inf.csv", "time_s,AVAL\n0,1\n1,inf\n", "infinities"),
            ("time.csv", "time_s,AVAL\n0,1\n0,2\n", "increase strictly"),
            ("first.csv", "AVAL,AVAR\n0,1\n1,2\n", "time_s"),
        ];
        for (name, text, needle) in cases {
            let err = read_wide_csv(&write(name, text)).unwrap_err().to_string();
            assert!(err.contains(name), "{err}");
            assert!(err.contains(needle), "{name}: {err}");
        }
    }
}
