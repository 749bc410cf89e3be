//! The Flavell lab pipeline's HDF5 files (Dag et al. 2023, `<uid>-data.h5`):
//! `gcamp/traces_array_F_F20` (frames × ROIs, F/F20), `timing/timestamp_confocal`
//! (seconds, one per frame). Identities come from a labels CSV with columns
//! `trace_column` (0-based ROI column), `label` and optionally `confidence`, as shipped
//! in `datasets/dag2023/<uid>.labels.csv`.
//!
//! Times are relative to the first frame; the interval is the median frame spacing.
//! Names are normalised as everywhere in sbtg (upper case, `VB02` → `VB2`). Two ROIs
//! with the same label: the one with the higher confidence is kept; if they tie, the
//! identity is ambiguous and both are left out. Each such decision is recorded in
//! [`Recording::notes`].

use std::path::{Path, PathBuf};

use ndarray::{Array2, Axis};

use super::clock::frame_clock;
use super::recording_name;
use crate::data::Recording;
use crate::io::connectome::normalise_name;
use crate::{Error, Result};

/// Dataset holding the traces.
pub const TRACES: &str = "gcamp/traces_array_F_F20";
/// Dataset holding the frame times.
pub const TIMES: &str = "timing/timestamp_confocal";

/// Reads a lab HDF5 file with its labels (`labels`: a CSV file, or a folder holding
/// `<recording>.labels.csv`; default: beside the HDF5 file).
pub fn read_lab_hdf5(path: &Path, labels: Option<&Path>) -> Result<Recording> {
    let name = recording_name(path);
    let labels_path = labels_file(path, &name, labels)?;
    let h5 = |field: &str, e: hdf5::Error| {
        Error::format(path, field, format!("{e}; the HDF5 file cannot be read"))
    };
    let file = hdf5::File::open(path).map_err(|e| h5("file", e))?;
    for (ds, what) in [
        (TRACES, "the frames × ROIs traces"),
        (TIMES, "the frame times"),
    ] {
        if !dataset_exists(&file, ds) {
            return Err(Error::format(
                path,
                ds,
                format!("missing; a lab HDF5 recording holds {what} there"),
            ));
        }
    }
    for ds in [TRACES, TIMES] {
        let d = file.dataset(ds).map_err(|e| h5(ds, e))?;
        plausible_size(path, ds, &d)?;
    }
    let traces: Array2<f64> = file
        .dataset(TRACES)
        .and_then(|d| d.read_2d::<f64>())
        .map_err(|e| h5(TRACES, e))?;
    let stamps: Vec<f64> = file
        .dataset(TIMES)
        .and_then(|d| d.read_raw::<f64>())
        .map_err(|e| h5(TIMES, e))?;
    let t = stamps.len();
    // Frames × ROIs; a file written the other way round is transposed.
    let traces = if traces.nrows() == t {
        traces
    } else if traces.ncols() == t {
        traces.reversed_axes()
    } else {
        return Err(Error::format(
            path,
            TRACES,
            format!(
                "shape {:?} does not match the {t} frame times in {TIMES}; every frame needs one time",
                traces.shape()
            ),
        ));
    };
    let clock = frame_clock(path, TIMES, &stamps, |k| format!("{TIMES}[{k}]"))?;
    let labels = read_labels(&labels_path)?;
    let mut notes = Vec::new();
    let mut keep: Vec<(usize, String)> = Vec::new();
    // Resolve duplicate labels by confidence.
    let mut by_name: std::collections::BTreeMap<String, Vec<&Label>> = Default::default();
    for l in &labels {
        if l.column >= traces.ncols() {
            return Err(Error::format(
                &labels_path,
                format!("line {}, trace_column", l.line),
                format!(
                    "column {} but {} has {} ROI columns (0-based: 0 to {}); is this the labels file of {}?",
                    l.column,
                    TRACES,
                    traces.ncols(),
                    traces.ncols() - 1,
                    path.display()
                ),
            ));
        }
        by_name.entry(l.name.clone()).or_default().push(l);
    }
    for (name, ls) in &by_name {
        if ls.len() == 1 {
            keep.push((ls[0].column, name.clone()));
            continue;
        }
        let best = ls
            .iter()
            .map(|l| l.confidence)
            .fold(f64::NEG_INFINITY, f64::max);
        let top: Vec<&&Label> = ls.iter().filter(|l| l.confidence == best).collect();
        let cols = |v: &[&&Label]| {
            v.iter()
                .map(|l| l.column.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        if top.len() == 1 {
            keep.push((top[0].column, name.clone()));
            notes.push(format!(
                "{name}: {} ROIs carry this label (columns {}); kept column {}, the most confident",
                ls.len(),
                cols(&ls.iter().collect::<Vec<_>>()),
                top[0].column
            ));
        } else {
            notes.push(format!(
                "{name}: {} ROIs carry this label with equal confidence (columns {}); the identity is ambiguous, so all are left out",
                ls.len(),
                cols(&ls.iter().collect::<Vec<_>>())
            ));
        }
    }
    keep.sort();
    let columns: Vec<usize> = keep.iter().map(|(c, _)| *c).collect();
    let names: Vec<String> = keep.into_iter().map(|(_, n)| n).collect();
    if names.is_empty() {
        return Err(Error::format(
            &labels_path,
            "label",
            "no labelled ROI; the labels file names no neuron",
        ));
    }
    let values = traces.select(Axis(1), &columns);
    let mut rec = clock.recording(path, name, names, values)?;
    notes.append(&mut rec.notes);
    rec.notes = notes;
    rec.sources.push(labels_path);
    Ok(rec)
}

fn dataset_exists(file: &hdf5::File, path: &str) -> bool {
    let mut group = file.as_group().ok();
    let parts: Vec<&str> = path.split('/').collect();
    for (k, p) in parts.iter().enumerate() {
        let Some(g) = group.take() else { return false };
        if !g.link_exists(p) {
            return false;
        }
        if k + 1 < parts.len() {
            group = g.group(p).ok();
        }
    }
    true
}

/// One row of a labels CSV.
struct Label {
    line: usize,
    column: usize,
    name: String,
    confidence: f64,
}

fn labels_file(path: &Path, name: &str, given: Option<&Path>) -> Result<PathBuf> {
    let candidates: Vec<PathBuf> = match given {
        Some(p) if p.is_file() => vec![p.to_path_buf()],
        Some(dir) => vec![dir.join(format!("{name}.labels.csv"))],
        None => {
            let stem = path
                .file_name()
                .and_then(|s| s.to_str())
                .and_then(|s| s.rsplit_once('.').map(|(a, _)| a.to_string()))
                .unwrap_or_default();
            vec![
                path.with_file_name(format!("{name}.labels.csv")),
                path.with_file_name(format!("{stem}.labels.csv")),
            ]
        }
    };
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| {
            Error::format(
                path,
                "labels",
                format!(
                    "no neuron identities: expected {} (columns trace_column,label[,confidence]); \
                     pass --labels FILE or a folder of <recording>.labels.csv",
                    candidates[0].display()
                ),
            )
        })
}

fn read_labels(path: &Path) -> Result<Vec<Label>> {
    let mut rdr = csv::ReaderBuilder::new()
        .from_path(path)
        .map_err(|e| super::csv::csv_error(path, e))?;
    let header: Vec<String> = rdr
        .headers()
        .map_err(|e| super::csv::csv_error(path, e))?
        .iter()
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();
    let col = |n: &str| header.iter().position(|h| h == n);
    let (Some(ci), Some(li)) = (col("trace_column"), col("label")) else {
        return Err(Error::format(
            path,
            "header",
            format!(
                "`{}`; a labels file needs the columns trace_column (0-based ROI column) and label",
                header.join(",")
            ),
        ));
    };
    let conf = col("confidence");
    let mut out = Vec::new();
    for (r, rec) in rdr.records().enumerate() {
        let rec = rec.map_err(|e| super::csv::csv_error(path, e))?;
        let line = r + 2;
        let label = rec.get(li).unwrap_or("").trim();
        if label.is_empty() {
            continue;
        }
        let raw = rec.get(ci).unwrap_or("").trim();
        let column = raw
            .parse::<f64>()
            .ok()
            .filter(|c| *c >= 0.0 && c.fract() == 0.0)
            .ok_or_else(|| {
                Error::format(
                    path,
                    format!("line {line}, trace_column"),
                    format!("`{raw}` is not a 0-based column number"),
                )
            })? as usize;
        let confidence = match conf.and_then(|c| rec.get(c)).map(str::trim) {
            None | Some("") => 0.0,
            Some(s) => s.parse::<f64>().map_err(|_| {
                Error::format(
                    path,
                    format!("line {line}, confidence"),
                    format!("`{s}` is not a number"),
                )
            })?,
        };
        out.push(Label {
            line,
            column,
            name: normalise_name(label),
            confidence,
        });
    }
    Ok(out)
}

/// Refuses a dataset that claims more data than the file could hold even at a
/// compression ratio of 1000 (a damaged header): reading it would ask for an
/// allocation of that size and abort the process. Found by the reader property tests.
pub(crate) fn plausible_size(path: &Path, field: &str, d: &hdf5::Dataset) -> Result<()> {
    let file_len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(u64::MAX);
    let elem = d.dtype().map(|t| t.size()).unwrap_or(8).max(1) as u128;
    // The product of the dimensions, without overflow (`Dataset::size` overflows on a
    // damaged shape).
    let count = element_count(d);
    let bytes = count.and_then(|c| c.checked_mul(elem));
    if bytes.is_none_or(|b| b > file_len as u128 * 1000 + (1 << 24)) {
        return Err(Error::format(
            path,
            field,
            format!(
                "the dataset claims {} elements of shape {:?}, more than a {file_len}-byte file can hold; the file is damaged: export it again",
                count.map_or("too many".to_string(), |c| c.to_string()),
                d.shape()
            ),
        ));
    }
    Ok(())
}

/// Number of elements of a dataset, `None` if the product overflows.
pub(crate) fn element_count(d: &hdf5::Dataset) -> Option<u128> {
    d.shape()
        .iter()
        .try_fold(1u128, |a, &x| a.checked_mul(x as u128))
}
