//! Neurodata Without Borders (NWB 2.x) optical physiology files.
//!
//! The traces are a `RoiResponseSeries` (frames × ROIs) inside a `DfOverF` or
//! `Fluorescence` container of a processing module (`processing/ophys` in most files;
//! any module is searched, as C. elegans files use their own module names). `DfOverF`
//! is preferred over `Fluorescence`; a file with several series of the preferred kind
//! needs `--series NAME`. Values are `data · conversion + offset` (NWB's rule). Frame
//! times are the `timestamps` dataset, or `starting_time` with its `rate` attribute.
//!
//! ROI names come from the ROI table the series' `rois` region points to (normally a
//! `PlaneSegmentation`): the first of its columns `neuron_name`, `roi_name`, `label`,
//! `labels`, `ID_labels`, `name`, `neuron`, in that order. ROIs with an empty name are
//! left out (unidentified); a table without a name column gives `roi<id>`.

use std::path::Path;

use hdf5::types::{VarLenAscii, VarLenUnicode};
use hdf5::{Dataset, Group, ObjectReference};
use ndarray::{Array2, Axis};

use super::clock::{frame_clock, FrameClock};
use super::recording_name;
use crate::data::Recording;
use crate::{Error, Result};

const NAME_COLUMNS: [&str; 7] = [
    "neuron_name",
    "roi_name",
    "label",
    "labels",
    "ID_labels",
    "name",
    "neuron",
];

/// Whether an HDF5 file is an NWB file (root attribute `nwb_version`, or `neurodata_type`
/// `NWBFile`).
pub fn is_nwb(path: &Path) -> Result<bool> {
    let file = hdf5::File::open(path).map_err(|e| h5err(path, "file", e))?;
    let names = file.attr_names().unwrap_or_default();
    Ok(names.iter().any(|n| n == "nwb_version")
        || text_attr(&file, "neurodata_type").as_deref() == Some("NWBFile"))
}

fn h5err(path: &Path, field: &str, e: hdf5::Error) -> Error {
    Error::format(path, field, format!("{e}; the HDF5 file cannot be read"))
}

/// A text attribute, stored as variable- or fixed-length string.
fn text_attr(loc: &hdf5::Location, name: &str) -> Option<String> {
    let a = loc.attr(name).ok()?;
    if let Ok(s) = a.read_scalar::<VarLenUnicode>() {
        return Some(s.as_str().to_string());
    }
    if let Ok(s) = a.read_scalar::<VarLenAscii>() {
        return Some(s.as_str().to_string());
    }
    a.read_scalar::<hdf5::types::FixedAscii<256>>()
        .ok()
        .map(|s| s.as_str().to_string())
}

/// A 1-D text dataset.
fn text_column(ds: &Dataset) -> Option<Vec<String>> {
    // A damaged header can claim a huge column; it is no usable names column.
    if super::lab_hdf5::element_count(ds).is_none_or(|c| c > 10_000_000) {
        return None;
    }
    if let Ok(v) = ds.read_raw::<VarLenUnicode>() {
        return Some(v.iter().map(|s| s.as_str().to_string()).collect());
    }
    if let Ok(v) = ds.read_raw::<VarLenAscii>() {
        return Some(v.iter().map(|s| s.as_str().to_string()).collect());
    }
    ds.read_raw::<hdf5::types::FixedAscii<256>>()
        .ok()
        .map(|v| v.iter().map(|s| s.as_str().to_string()).collect())
}

fn neurodata_type(g: &Group) -> String {
    text_attr(g, "neurodata_type").unwrap_or_default()
}

/// A `RoiResponseSeries` found in the file, with its container's type.
struct Series {
    group: Group,
    container: String,
}

fn find_series(file: &hdf5::File) -> Vec<Series> {
    let mut out = Vec::new();
    let Ok(processing) = file.group("processing") else {
        return out;
    };
    for module in processing.groups().unwrap_or_default() {
        for container in module.groups().unwrap_or_default() {
            let ctype = neurodata_type(&container);
            if ctype == "RoiResponseSeries" {
                out.push(Series {
                    group: container,
                    container: String::new(),
                });
                continue;
            }
            if ctype != "DfOverF" && ctype != "Fluorescence" {
                continue;
            }
            for s in container.groups().unwrap_or_default() {
                if neurodata_type(&s) == "RoiResponseSeries" {
                    out.push(Series {
                        group: s,
                        container: ctype.clone(),
                    });
                }
            }
        }
    }
    out
}

/// Reads the traces of an NWB file; `series` picks one `RoiResponseSeries` by name or
/// path where the file has several.
pub fn read_nwb(path: &Path, series: Option<&str>) -> Result<Recording> {
    let file = hdf5::File::open(path).map_err(|e| h5err(path, "file", e))?;
    let found = find_series(&file);
    if found.is_empty() {
        return Err(Error::format(
            path,
            "processing",
            "no RoiResponseSeries in a DfOverF or Fluorescence container under processing/; \
             sbtg reads processed optical-physiology traces (raw imaging data is not traces)",
        ));
    }
    let s = choose_series(path, &found, series)?;
    let sname = s.group.name();
    let field = |f: &str| format!("{sname}/{f}");
    let values = series_values(path, s)?;
    let clock = series_clock(path, s, values.nrows())?;
    let (names, notes) = roi_names(path, &file, &s.group, values.ncols())?;
    let keep: Vec<usize> = (0..names.len()).filter(|&k| !names[k].is_empty()).collect();
    if keep.is_empty() {
        return Err(Error::format(
            path,
            field("rois"),
            "every ROI has an empty name; no identified neuron to analyse",
        ));
    }
    let mut rec = clock.recording(
        path,
        recording_name(path),
        keep.iter().map(|&k| names[k].clone()).collect(),
        values.select(Axis(1), &keep),
    )?;
    let mut notes = notes;
    notes.append(&mut rec.notes);
    rec.notes = notes;
    let dropped = names.len() - keep.len();
    if dropped > 0 {
        rec.notes.push(format!(
            "{dropped} of {} ROIs have no name (unidentified) and were left out",
            names.len()
        ));
    }
    Ok(rec)
}

/// The series asked for by name, else the only one (a `DfOverF` series preferred).
fn choose_series<'a>(path: &Path, found: &'a [Series], series: Option<&str>) -> Result<&'a Series> {
    let listing = || {
        found
            .iter()
            .map(|s| s.group.name())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let chosen: Vec<&Series> = match series {
        Some(want) => found
            .iter()
            .filter(|s| {
                let name = s.group.name();
                name == want
                    || name.trim_start_matches('/') == want.trim_start_matches('/')
                    || name.rsplit('/').next() == Some(want)
            })
            .collect(),
        None => {
            let dff: Vec<&Series> = found.iter().filter(|s| s.container == "DfOverF").collect();
            if dff.is_empty() {
                found.iter().collect()
            } else {
                dff
            }
        }
    };
    match chosen.as_slice() {
        [one] => Ok(*one),
        [] => Err(Error::format(
            path,
            "series",
            format!(
                "no RoiResponseSeries called `{}`; the file has: {}",
                series.unwrap_or_default(),
                listing()
            ),
        )),
        _ => Err(Error::format(
            path,
            "series",
            format!(
                "several RoiResponseSeries ({}); choose one with --series NAME",
                listing()
            ),
        )),
    }
}

/// The series' `data` as frames × ROIs, with its `conversion` and `offset` applied.
fn series_values(path: &Path, s: &Series) -> Result<Array2<f64>> {
    let sname = s.group.name();
    let field = |f: &str| format!("{sname}/{f}");
    let data_ds = s
        .group
        .dataset("data")
        .map_err(|e| h5err(path, &field("data"), e))?;
    super::lab_hdf5::plausible_size(path, &field("data"), &data_ds)?;
    let raw: ndarray::ArrayD<f64> = data_ds
        .read_dyn::<f64>()
        .map_err(|e| h5err(path, &field("data"), e))?;
    let values: Array2<f64> = match raw.ndim() {
        1 => raw.insert_axis(Axis(1)).into_dimensionality().expect("2-D"),
        2 => raw.into_dimensionality().expect("2-D"),
        _ => {
            return Err(Error::format(
                path,
                field("data"),
                format!("shape {:?}; expected frames × ROIs", raw.shape()),
            ))
        }
    };
    let num_attr = |name: &str, default: f64| -> f64 {
        data_ds
            .attr(name)
            .and_then(|a| a.read_scalar::<f64>())
            .unwrap_or(default)
    };
    let (conversion, offset) = (num_attr("conversion", 1.0), num_attr("offset", 0.0));
    let values = values.mapv(|v| v * conversion + offset);
    Ok(values)
}

/// The frame clock from `timestamps` (one per frame) or from `starting_time` and its rate.
fn series_clock(path: &Path, s: &Series, t: usize) -> Result<FrameClock> {
    let sname = s.group.name();
    let field = |f: &str| format!("{sname}/{f}");
    let clock = if s.group.link_exists("timestamps") {
        let ts: Vec<f64> = s
            .group
            .dataset("timestamps")
            .map_err(|e| h5err(path, &field("timestamps"), e))
            .and_then(|d| {
                super::lab_hdf5::plausible_size(path, &field("timestamps"), &d)?;
                Ok(d)
            })?
            .read_raw::<f64>()
            .map_err(|e| h5err(path, &field("timestamps"), e))?;
        if ts.len() != t {
            return Err(Error::format(
                path,
                field("timestamps"),
                format!(
                    "{} times for {t} frames of data; every frame needs one time",
                    ts.len()
                ),
            ));
        }
        frame_clock(path, &field("timestamps"), &ts, |k| {
            field(&format!("timestamps[{k}]"))
        })?
    } else if s.group.link_exists("starting_time") {
        let start = s
            .group
            .dataset("starting_time")
            .map_err(|e| h5err(path, &field("starting_time"), e))?;
        let rate = start
            .attr("rate")
            .and_then(|a| a.read_scalar::<f64>())
            .map_err(|e| h5err(path, &field("starting_time.rate"), e))?;
        if !(rate.is_finite() && rate > 0.0) {
            return Err(Error::format(
                path,
                field("starting_time.rate"),
                format!("{rate} is not a positive sampling rate (Hz)"),
            ));
        }
        let t0 = start
            .read_scalar::<f64>()
            .map_err(|e| h5err(path, &field("starting_time"), e))?;
        FrameClock::regular(t, 1.0 / rate).starting_at(t0)
    } else {
        return Err(Error::format(
            path,
            sname.as_str(),
            "neither timestamps nor starting_time with a rate; the sampling rate is missing",
        ));
    };
    Ok(clock)
}

/// Names of the series' ROIs from the table its `rois` region points to.
fn roi_names(
    path: &Path,
    file: &hdf5::File,
    series: &Group,
    n: usize,
) -> Result<(Vec<String>, Vec<String>)> {
    let sname = series.name();
    let fallback = |why: &str| {
        (
            (0..n).map(|k| format!("roi{k}")).collect::<Vec<_>>(),
            vec![format!("ROI names: {why}; named roi0 … roi{}", n - 1)],
        )
    };
    let Ok(rois) = series.dataset("rois") else {
        return Ok(fallback("the series has no rois region"));
    };
    super::lab_hdf5::plausible_size(path, &format!("{sname}/rois"), &rois)?;
    let rows: Vec<i64> = rois
        .read_raw::<i64>()
        .map_err(|e| h5err(path, &format!("{sname}/rois"), e))?;
    if rows.len() != n {
        return Err(Error::format(
            path,
            format!("{sname}/rois"),
            format!(
                "{} ROIs for {n} columns of data; the region must list one row per column",
                rows.len()
            ),
        ));
    }
    let table = rois
        .attr("table")
        .and_then(|a| a.read_scalar::<hdf5::ObjectReference1>())
        .and_then(|r| r.dereference(file))
        .ok();
    let Some(hdf5::ReferencedObject::Group(table)) = table else {
        return Ok(fallback("the rois region does not point to a table"));
    };
    let column = NAME_COLUMNS
        .iter()
        .find(|c| table.link_exists(c) && table.dataset(c).is_ok());
    let (labels, from) = match column {
        Some(c) => {
            let ds = table.dataset(c).expect("checked");
            let Some(v) = text_column(&ds) else {
                return Ok(fallback(&format!("{}/{c} is not text", table.name())));
            };
            (v, format!("{}/{c}", table.name()))
        }
        None => {
            let ids: Vec<i64> = table
                .dataset("id")
                .and_then(|d| d.read_raw::<i64>())
                .unwrap_or_else(|_| (0..n as i64).collect());
            (
                ids.iter().map(|i| format!("roi{i}")).collect(),
                String::new(),
            )
        }
    };
    let names = rows
        .iter()
        .map(|&r| {
            usize::try_from(r)
                .ok()
                .and_then(|r| labels.get(r))
                .map(|s| s.trim().to_string())
                .ok_or_else(|| {
                    Error::format(
                        path,
                        format!("{sname}/rois"),
                        format!("row {r} is outside the ROI table ({} rows)", labels.len()),
                    )
                })
        })
        .collect::<Result<Vec<_>>>()?;
    let notes = if from.is_empty() {
        vec![format!(
            "ROI names: the table {} has no name column ({}); ROIs are named by id",
            table.name(),
            NAME_COLUMNS.join(", ")
        )]
    } else {
        Vec::new()
    };
    Ok((names, notes))
}
