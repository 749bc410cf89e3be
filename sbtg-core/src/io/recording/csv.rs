//! Text tables: the wide CSV layout (`time_s` then one column per neuron; `nan` or an
//! empty cell marks a missing sample), as in the Dag et al. (2023) conversion shipped
//! in `datasets/dag2023`, and the long layout (`time, neuron, value`, one row per
//! sample, any order).

use std::path::Path;

use ndarray::Array2;

use super::recording_name;
use crate::data::Recording;
use crate::{Error, Result};

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
    let dt = interval_from_times(path, &header[0], &times, |k| {
        format!("line {}, column {}", k + 2, &header[0])
    })?;
    let values = Array2::from_shape_vec((times.len(), neurons.len()), data).expect("rows checked");
    Recording::from_file(path, recording_name(path), neurons, dt, values)
}

/// Whether a CSV header is the long layout `time, neuron, value` (in any order).
pub fn is_long_header(header: &[String]) -> bool {
    long_columns(header).is_some()
}

/// Positions of the time, neuron and value columns of a long table.
pub(crate) fn long_columns(header: &[String]) -> Option<(usize, usize, usize)> {
    if header.len() != 3 {
        return None;
    }
    let find = |names: &[&str]| {
        header
            .iter()
            .position(|h| names.contains(&h.trim().to_ascii_lowercase().as_str()))
    };
    Some((
        find(&["time", "time_s", "t", "timestamp"])?,
        find(&["neuron", "name", "label", "roi"])?,
        find(&["value", "trace", "activity", "signal", "dff"])?,
    ))
}

/// First line of a CSV file, split at commas.
pub(crate) fn csv_header(path: &Path) -> Result<Vec<String>> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_path(path)
        .map_err(|e| csv_error(path, e))?;
    Ok(rdr
        .headers()
        .map_err(|e| csv_error(path, e))?
        .iter()
        .map(|s| s.to_string())
        .collect())
}

/// Reads a long CSV: `time, neuron, value`, one row per sample in any order.
pub fn read_long_csv(path: &Path) -> Result<Recording> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_path(path)
        .map_err(|e| csv_error(path, e))?;
    let header: Vec<String> = rdr
        .headers()
        .map_err(|e| csv_error(path, e))?
        .iter()
        .map(|s| s.to_string())
        .collect();
    let (ti, ni, vi) = long_columns(&header).ok_or_else(|| {
        Error::format(
            path,
            "header",
            format!(
                "`{}`; a long table has exactly the columns time, neuron, value",
                header.join(",")
            ),
        )
    })?;
    let mut samples = LongSamples::default();
    for (row, rec) in rdr.records().enumerate() {
        let rec = rec.map_err(|e| csv_error(path, e))?;
        let line = row + 2;
        let cell = |c: usize| rec.get(c).unwrap_or("").trim();
        let number = |c: usize, missing_ok: bool| -> Result<f64> {
            let s = cell(c);
            if missing_ok && (s.is_empty() || s.eq_ignore_ascii_case("nan")) {
                return Ok(f64::NAN);
            }
            s.parse::<f64>().map_err(|_| {
                Error::format(
                    path,
                    format!("line {line}, column {}", header[c]),
                    format!("`{s}` is not a number"),
                )
            })
        };
        samples.push(
            path,
            &format!("line {line}"),
            number(ti, false)?,
            cell(ni),
            number(vi, true)?,
        )?;
    }
    samples.into_recording(path)
}

/// Samples of a long table, assembled into a frames × neurons grid.
#[derive(Default)]
pub(crate) struct LongSamples {
    times: Vec<f64>,
    neurons: Vec<String>,
    values: Vec<f64>,
}

impl LongSamples {
    /// Adds one sample; `at` names its row for error messages.
    pub(crate) fn push(
        &mut self,
        path: &Path,
        at: &str,
        time: f64,
        neuron: &str,
        value: f64,
    ) -> Result<()> {
        if !time.is_finite() {
            return Err(Error::format(
                path,
                format!("{at}, time"),
                "every sample needs a finite time",
            ));
        }
        if neuron.is_empty() {
            return Err(Error::format(
                path,
                format!("{at}, neuron"),
                "empty neuron name",
            ));
        }
        if value.is_infinite() {
            return Err(Error::format(
                path,
                format!("{at}, value"),
                format!("{value}; replace infinities with nan (missing)"),
            ));
        }
        // `-0` and `0` are one time: the grid is deduplicated with `==` and searched
        // with a total order, which tells them apart.
        self.times.push(if time == 0.0 { 0.0 } else { time });
        self.neurons.push(neuron.to_string());
        self.values.push(value);
        Ok(())
    }

    /// Builds the recording: frames are the distinct times, neurons sorted by name,
    /// absent samples missing. Every time must be shared by the grid: two distinct
    /// times closer than half the median interval mean the neurons were sampled on
    /// different clocks, which a long table cannot represent.
    pub(crate) fn into_recording(self, path: &Path) -> Result<Recording> {
        let mut grid = self.times.clone();
        grid.sort_by(f64::total_cmp);
        grid.dedup();
        if grid.len() < 2 {
            return Err(Error::format(
                path,
                "time",
                format!(
                    "{} distinct times; a recording needs at least two",
                    grid.len()
                ),
            ));
        }
        let dt = interval_from_times(path, "time", &grid, |k| format!("time {}", grid[k]))?;
        let diffs: Vec<f64> = grid.windows(2).map(|w| w[1] - w[0]).collect();
        if let Some(k) = diffs.iter().position(|&d| d < 0.5 * dt) {
            return Err(Error::format(
                path,
                "time",
                format!(
                    "times {} and {} are {:.4} s apart, under half the sampling interval ({dt:.4} s); \
                     every neuron must be sampled at the same times (one row per neuron per frame)",
                    grid[k],
                    grid[k + 1],
                    diffs[k]
                ),
            ));
        }
        let mut names = self.neurons.clone();
        names.sort();
        names.dedup();
        let mut values = Array2::from_elem((grid.len(), names.len()), f64::NAN);
        let mut filled = Array2::from_elem((grid.len(), names.len()), false);
        for ((t, n), v) in self.times.iter().zip(&self.neurons).zip(&self.values) {
            let r = grid.binary_search_by(|g| g.total_cmp(t)).map_err(|_| {
                Error::format(
                    path,
                    format!("time {t}"),
                    "not a number of seconds; fix the time column",
                )
            })?;
            let c = names.binary_search(n).expect("known name");
            if filled[[r, c]] {
                return Err(Error::format(
                    path,
                    format!("time {t}, neuron {n}"),
                    "two samples for the same neuron and time; keep one row per neuron per frame",
                ));
            }
            filled[[r, c]] = true;
            values[[r, c]] = *v;
        }
        Recording::from_file(path, recording_name(path), names, dt, values)
    }
}

/// Median sampling interval of strictly increasing, finite times, shared by every
/// reader. `field` names the times in errors and `at(k)` the k-th of them (a line of a
/// CSV, an index into a dataset).
pub(crate) fn interval_from_times(
    path: &Path,
    field: &str,
    times: &[f64],
    at: impl Fn(usize) -> String,
) -> Result<f64> {
    if times.len() < 2 {
        return Err(Error::format(
            path,
            field,
            format!(
                "{} time points; a recording needs at least two",
                times.len()
            ),
        ));
    }
    if let Some(k) = times.iter().position(|t| !t.is_finite()) {
        return Err(Error::format(
            path,
            at(k),
            "not a finite time; every frame needs a time in seconds",
        ));
    }
    let diffs: Vec<f64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    if let Some(k) = diffs.iter().position(|d| *d <= 0.0) {
        return Err(Error::format(
            path,
            at(k + 1),
            format!(
                "time {} follows {}; times must increase strictly",
                times[k + 1],
                times[k]
            ),
        ));
    }
    let mut sorted = diffs;
    sorted.sort_by(f64::total_cmp);
    Ok(sorted[sorted.len() / 2])
}

pub(crate) fn csv_error(path: &Path, e: csv::Error) -> Error {
    match e.into_kind() {
        csv::ErrorKind::Io(io) => Error::read(path, io),
        other => Error::format(path, "csv", format!("{other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

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
            (
                "nan.csv",
                "time_s,AVAL,AVAR\n0,1,nan\n1,2,\n",
                "no observed sample",
            ),
            ("first.csv", "AVAL,AVAR\n0,1\n1,2\n", "time_s"),
        ];
        for (name, text, needle) in cases {
            let err = read_wide_csv(&write(name, text)).unwrap_err().to_string();
            assert!(err.contains(name), "{err}");
            assert!(err.contains(needle), "{name}: {err}");
        }
    }
}

#[cfg(test)]
mod long_tests {
    use super::*;

    #[test]
    fn long_rows_in_any_order_fill_a_grid() {
        let dir = std::env::temp_dir().join(format!("sbtg-long-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("w.long.csv");
        std::fs::write(
            &p,
            "neuron,time,value\nRIS,0.5,2\nAVAL,0,1\nAVAL,0.5,3\nRIS,0,nan\nAVAL,1.0,4\n",
        )
        .unwrap();
        let r = read_long_csv(&p).unwrap();
        assert_eq!(r.name, "w");
        assert_eq!(r.neurons, ["AVAL", "RIS"]);
        assert_eq!(r.dt, 0.5);
        assert_eq!(r.values[[2, 0]], 4.0);
        assert!(r.values[[0, 1]].is_nan() && r.values[[2, 1]].is_nan());
        assert_eq!(r.values[[1, 1]], 2.0);
    }
}
