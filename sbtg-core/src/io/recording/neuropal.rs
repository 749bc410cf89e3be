//! NeuroPAL whole-brain recordings in the layout of Yemini et al. (2021),
//! `Head_Activity_*.mat` (MATLAB Level 5):
//!
//! - `neurons`: n class names (left/right not split; D/V sub-classes kept);
//! - `norm_traces`: a cell per neuron holding one entry per worm, or 2·W entries for a
//!   bilateral neuron with the two sides at `w` and `w + W`; an entry is empty where the
//!   neuron was not identified in that worm, and may contain NaN;
//! - `fps`: frames per second (a scalar, or one per worm);
//! - `files`: the worm ids;
//! - `stim_names`, `stims` (W × S: the stimulus presented in each slot, as **1-based**
//!   codes into `stim_names`), `stim_times` (S × 2: onset and offset of each slot, in
//!   **seconds**).
//!
//! One [`Recording`] per worm. A bilateral neuron's trace is the mean of its two sides
//! at every frame where either is observed (the side that is observed alone otherwise).
//! Frame `k` is at time `k / fps`.

use std::path::Path;

use ndarray::Array2;

use super::mat::{MatArray, MatFile};
use crate::data::{Recording, Stimulus};
use crate::{Error, Result};

/// Whether a MAT-file has the NeuroPAL layout (`neurons` and `norm_traces`).
pub fn is_neuropal(mat: &MatFile) -> bool {
    mat.get("norm_traces").is_some() || mat.get("neurons").is_some()
}

fn field_err(path: &Path, field: impl Into<String>, msg: impl Into<String>) -> Error {
    Error::format(path, field, msg)
}

/// Strings held by a cell of char arrays or by a char matrix (one per row).
fn strings(path: &Path, field: &str, a: &MatArray) -> Result<Vec<String>> {
    match a {
        MatArray::Char { rows, .. } => Ok(rows.clone()),
        MatArray::Cell { items, .. } => items
            .iter()
            .enumerate()
            .map(|(k, item)| match item {
                MatArray::Char { rows, .. } if rows.len() <= 1 => {
                    Ok(rows.first().cloned().unwrap_or_default())
                }
                other => Err(field_err(
                    path,
                    format!("{field}{{{}}}", k + 1),
                    format!("is a {}; expected a text (char) entry", other.describe()),
                )),
            })
            .collect(),
        other => Err(field_err(
            path,
            field,
            format!("is a {}; expected a cell array of names", other.describe()),
        )),
    }
}

fn numeric<'a>(path: &Path, field: &str, a: &'a MatArray) -> Result<(&'a [usize], &'a [f64])> {
    match a {
        MatArray::Numeric { dims, data } => Ok((dims, data)),
        other => Err(field_err(
            path,
            field,
            format!("is a {}; expected a numeric array", other.describe()),
        )),
    }
}

fn required<'a>(mat: &'a MatFile, field: &str, what: &str) -> Result<&'a MatArray> {
    mat.get(field).ok_or_else(|| {
        let have: Vec<&str> = mat.variables.iter().map(|(n, _)| n.as_str()).collect();
        field_err(
            &mat.path,
            field,
            format!(
                "missing; a NeuroPAL Head_Activity file holds {what}. Variables found: {}",
                have.join(", ")
            ),
        )
    })
}

/// `neurons` (unique, non-empty names) and, per neuron, its `norm_traces` entries.
fn neurons_and_entries(mat: &MatFile) -> Result<(Vec<String>, Vec<&[MatArray]>)> {
    let path = mat.path.as_path();
    let neurons = strings(
        path,
        "neurons",
        required(mat, "neurons", "`neurons`, the class names")?,
    )?;
    let MatArray::Cell { items: traces, .. } = required(
        mat,
        "norm_traces",
        "`norm_traces`, a cell of traces per neuron",
    )?
    else {
        return Err(field_err(
            path,
            "norm_traces",
            "is not a cell array; expected one cell per neuron",
        ));
    };
    if traces.len() != neurons.len() {
        return Err(field_err(
            path,
            "norm_traces",
            format!(
                "{} entries for {} names in `neurons`; expected one per neuron",
                traces.len(),
                neurons.len()
            ),
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for (k, n) in neurons.iter().enumerate() {
        if n.trim().is_empty() {
            return Err(field_err(
                path,
                format!("neurons{{{}}}", k + 1),
                "empty name; every neuron needs a class name",
            ));
        }
        if !seen.insert(n.as_str()) {
            return Err(field_err(
                path,
                format!("neurons{{{}}}", k + 1),
                format!("`{n}` appears twice; each neuron class must be listed once"),
            ));
        }
    }
    // Per neuron: the entries (one per worm, or both sides).
    let entries: Vec<&[MatArray]> = traces
        .iter()
        .enumerate()
        .map(|(k, t)| match t {
            MatArray::Cell { items, .. } => Ok(items.as_slice()),
            other => Err(field_err(
                path,
                format!("norm_traces{{{}}} ({})", k + 1, neurons[k]),
                format!(
                    "is a {}; expected a cell with one trace per worm",
                    other.describe()
                ),
            )),
        })
        .collect::<Result<_>>()?;
    Ok((neurons, entries))
}

/// The number of worms (from `files`, else `stims`, else the entries), checked
/// against every neuron's entries (W, or 2W for bilateral neurons).
fn worm_count(
    mat: &MatFile,
    files: Option<&[String]>,
    neurons: &[String],
    entries: &[&[MatArray]],
) -> Result<usize> {
    let path = mat.path.as_path();
    let stims = mat
        .get("stims")
        .map(|s| numeric(path, "stims", s))
        .transpose()?;
    let worms = match (files, &stims) {
        (Some(f), _) => f.len(),
        (None, Some((dims, _))) => dims.first().copied().unwrap_or(0),
        (None, None) => entries.iter().map(|e| e.len()).min().unwrap_or(0),
    };
    if worms == 0 {
        return Err(field_err(
            path,
            "files",
            "no worms: `files` is empty; expected one id per worm",
        ));
    }
    for (k, e) in entries.iter().enumerate() {
        if e.len() != worms && e.len() != 2 * worms {
            return Err(field_err(
                path,
                format!("norm_traces{{{}}} ({})", k + 1, neurons[k]),
                format!(
                    "{} entries for {worms} worms; expected {worms} (one per worm) or {} (left and right sides)",
                    e.len(),
                    2 * worms
                ),
            ));
        }
    }
    Ok(worms)
}

/// The mean of the observed sides at every frame (NaN where neither is observed).
fn side_mean(sides: &[&[f64]]) -> Vec<f64> {
    (0..sides[0].len())
        .map(|i| {
            let (sum, n) = sides
                .iter()
                .map(|s| s[i])
                .filter(|v| !v.is_nan())
                .fold((0.0, 0usize), |(a, n), v| (a + v, n + 1));
            if n == 0 {
                f64::NAN
            } else {
                sum / n as f64
            }
        })
        .collect()
}

/// The traces of worm `w`: the identified neurons, one column each (the mean of the
/// two sides of a bilateral neuron), and the number of frames.
fn worm_traces(
    path: &Path,
    w: usize,
    worms: usize,
    worm_name: &str,
    neurons: &[String],
    entries: &[&[MatArray]],
) -> Result<(Vec<String>, Vec<Vec<f64>>, usize)> {
    let mut names = Vec::new();
    let mut columns: Vec<Vec<f64>> = Vec::new();
    let mut frames: Option<(usize, String)> = None;
    for (k, e) in entries.iter().enumerate() {
        let sides: Vec<usize> = if e.len() == 2 * worms {
            vec![w, w + worms]
        } else {
            vec![w]
        };
        let mut side_traces: Vec<&[f64]> = Vec::new();
        for &s in &sides {
            let field = format!("norm_traces{{{}}}{{{}}} ({})", k + 1, s + 1, neurons[k]);
            let (dims, data) = numeric(path, &field, &e[s])?;
            if data.is_empty() {
                continue;
            }
            if dims.iter().filter(|&&d| d > 1).count() > 1 {
                return Err(field_err(
                    path,
                    field,
                    format!(
                        "is a {} array; expected a vector (one value per frame)",
                        dims.iter()
                            .map(|d| d.to_string())
                            .collect::<Vec<_>>()
                            .join("×")
                    ),
                ));
            }
            match &frames {
                None => frames = Some((data.len(), field.clone())),
                Some((t, first)) if *t != data.len() => {
                    return Err(field_err(
                        path,
                        field,
                        format!(
                            "{} frames, but {first} has {t} in the same worm ({worm_name}); \
                             every trace of a worm must cover the same frames",
                            data.len()
                        ),
                    ))
                }
                _ => {}
            }
            if data.iter().any(|v| v.is_infinite()) {
                return Err(field_err(
                    path,
                    field,
                    "contains an infinite value; replace it with NaN (missing)",
                ));
            }
            side_traces.push(data);
        }
        if side_traces.is_empty() {
            continue;
        }
        let col = side_mean(&side_traces);
        if col.iter().all(|v| v.is_nan()) {
            return Err(field_err(
                path,
                format!(
                    "norm_traces{{{}}} ({}), worm {worm_name}",
                    k + 1,
                    neurons[k]
                ),
                "every sample is NaN; leave the entry empty where the neuron was not identified",
            ));
        }
        names.push(neurons[k].clone());
        columns.push(col);
    }
    let Some((t, _)) = frames else {
        return Err(field_err(
            path,
            "norm_traces",
            format!("worm {worm_name} has no identified neuron; remove it from `files`"),
        ));
    };
    Ok((names, columns, t))
}

/// Builds one recording per worm from a parsed MAT-file.
pub fn from_mat(mat: &MatFile) -> Result<Vec<Recording>> {
    let path = mat.path.as_path();
    let (neurons, entries) = neurons_and_entries(mat)?;
    let files = mat
        .get("files")
        .map(|f| strings(path, "files", f))
        .transpose()?;
    let worms = worm_count(mat, files.as_deref(), &neurons, &entries)?;
    let fps = frame_rates(path, mat.get("fps"), worms)?;
    let stimuli = stimulus_table(mat, worms)?;
    let mut out = Vec::with_capacity(worms);
    for w in 0..worms {
        let worm_name = files
            .as_ref()
            .map(|f| f[w].clone())
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| format!("worm{}", w + 1));
        let (names, columns, t) = worm_traces(path, w, worms, &worm_name, &neurons, &entries)?;
        let mut values = Array2::from_elem((t, names.len()), f64::NAN);
        for (j, col) in columns.iter().enumerate() {
            values.column_mut(j).assign(&ndarray::ArrayView1::from(col));
        }
        let mut rec = Recording::from_file(path, worm_name, names, 1.0 / fps[w], values)?;
        rec.stimuli = stimuli[w].clone();
        out.push(rec);
    }
    Ok(out)
}

/// `fps`: a positive scalar or one positive value per worm.
fn frame_rates(path: &Path, fps: Option<&MatArray>, worms: usize) -> Result<Vec<f64>> {
    let fps = fps.ok_or_else(|| {
        field_err(
            path,
            "fps",
            "missing; the sampling rate (frames per second) is needed to turn stimulus times into frames",
        )
    })?;
    let (_, data) = numeric(path, "fps", fps)?;
    let rates = match data.len() {
        1 => vec![data[0]; worms],
        n if n == worms => data.to_vec(),
        0 => return Err(field_err(
            path,
            "fps",
            "empty; store the frame rate in frames per second (4 for the Yemini et al. recordings)",
        )),
        n => {
            return Err(field_err(
                path,
                "fps",
                format!("{n} values for {worms} worms; give one rate, or one per worm"),
            ))
        }
    };
    if let Some(r) = rates.iter().find(|r| !(r.is_finite() && **r > 0.0)) {
        return Err(field_err(
            path,
            "fps",
            format!("{r} is not a positive frame rate; store frames per second"),
        ));
    }
    Ok(rates)
}

/// Per worm, the stimulus presentations from `stim_names`, `stims` and `stim_times`.
fn stimulus_table(mat: &MatFile, worms: usize) -> Result<Vec<Vec<Stimulus>>> {
    let path = mat.path.as_path();
    let (names, stims, times) = match (
        mat.get("stim_names"),
        mat.get("stims"),
        mat.get("stim_times"),
    ) {
        (None, None, None) => return Ok(vec![Vec::new(); worms]),
        (Some(n), Some(s), Some(t)) => (n, s, t),
        _ => {
            return Err(field_err(
                path,
                "stim_names/stims/stim_times",
                "only some of the three stimulus fields are present; store all three or none",
            ))
        }
    };
    let names = strings(path, "stim_names", names)?;
    let (sdims, codes) = numeric(path, "stims", stims)?;
    let (tdims, times) = numeric(path, "stim_times", times)?;
    if sdims.len() != 2 || sdims[0] != worms {
        return Err(field_err(
            path,
            "stims",
            format!(
                "shape {:?}; expected worms × slots ({worms} rows), each entry a 1-based code into stim_names",
                sdims
            ),
        ));
    }
    let slots = sdims[1];
    if tdims.len() != 2 || tdims[0] != slots || tdims[1] != 2 {
        return Err(field_err(
            path,
            "stim_times",
            format!(
                "shape {:?}; expected slots × 2 ({slots} rows of onset and offset, in seconds)",
                tdims
            ),
        ));
    }
    let mut out = vec![Vec::new(); worms];
    for s in 0..slots {
        let (on, off) = (times[s], times[s + slots]);
        if !(on.is_finite() && off.is_finite() && on >= 0.0 && off > on) {
            return Err(field_err(
                path,
                format!("stim_times({}, :)", s + 1),
                format!("onset {on} s, offset {off} s; expected 0 ≤ onset < offset, in seconds"),
            ));
        }
        for (w, list) in out.iter_mut().enumerate() {
            let code = codes[w + s * worms];
            if code.is_nan() {
                continue; // slot not presented to this worm
            }
            if code.fract() != 0.0 || code < 1.0 || code > names.len() as f64 {
                return Err(field_err(
                    path,
                    format!("stims({}, {})", w + 1, s + 1),
                    format!(
                        "code {code}; codes are 1-based indices into stim_names (1 to {})",
                        names.len()
                    ),
                ));
            }
            list.push(Stimulus {
                name: names[code as usize - 1].clone(),
                onset_s: on,
                offset_s: off,
            });
        }
    }
    Ok(out)
}
