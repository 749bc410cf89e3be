//! NumPy arrays: a `.npy` file holding a T × n array (frames × neurons, float or
//! integer), or a `.npz` archive holding `traces` (T × n) and optionally `names`
//! (n strings), `time` (T seconds), `fps` or `dt` (scalars). Neuron names come from a
//! names file given by the user, else the archive's `names`, else `<stem>.names.txt`
//! beside the array (one name per line). Without `time`, `fps` or `dt` in the file,
//! the frame rate must be given (`--fps`).

use std::path::{Path, PathBuf};

use ndarray::{Array1, Array2, ArrayD, Ix2};
use ndarray_npy::{NpzReader, ReadNpyError, ReadNpzError};

use super::clock::FrameClock;
use super::recording_name;
use crate::data::Recording;
use crate::{Error, Result};

/// Reads a `.npy` T × n array with its names file.
pub fn read_npy(path: &Path, names: Option<&Path>, fps: Option<f64>) -> Result<Recording> {
    let values = npy_array(path)?;
    let values = two_dims(path, "array", values)?;
    let names_file = names_path(path, names);
    let names = read_names(path, names)?;
    let clock = FrameClock::regular(values.nrows(), rate(path, "--fps", None, fps)?);
    let mut rec = build(path, names, &clock, values)?;
    rec.sources.push(names_file);
    Ok(rec)
}

/// Reads a `.npz` archive (`traces`, optional `time`, `fps`, `dt`) with its names file.
pub fn read_npz(path: &Path, names: Option<&Path>, fps: Option<f64>) -> Result<Recording> {
    let file = std::fs::File::open(path).map_err(|e| Error::read(path, e))?;
    let mut npz = NpzReader::new(file).map_err(|e| npz_error(path, "archive", e))?;
    let keys = npz.names().map_err(|e| npz_error(path, "archive", e))?;
    let has = |k: &str| keys.iter().any(|n| n == k);
    if !has("traces") {
        return Err(Error::format(
            path,
            "traces",
            format!(
                "no `traces` array; save the T × n traces as `np.savez(file, traces=x, ...)`. Arrays found: {}",
                keys.join(", ")
            ),
        ));
    }
    let values = two_dims(path, "traces", numeric_entry(&mut npz, path, "traces")?)?;
    let scalar = |npz: &mut NpzReader<std::fs::File>, k: &str| -> Result<Option<f64>> {
        if !has(k) {
            return Ok(None);
        }
        let a = numeric_entry(npz, path, k)?;
        if a.len() != 1 {
            return Err(Error::format(
                path,
                k,
                format!("{} values; store one number", a.len()),
            ));
        }
        Ok(a.iter().next().copied())
    };
    let file_fps = scalar(&mut npz, "fps")?;
    let file_dt = scalar(&mut npz, "dt")?;
    let clock = if has("time") {
        let t: Array1<f64> = numeric_entry(&mut npz, path, "time")?
            .into_dimensionality()
            .map_err(|_| Error::format(path, "time", "must be a 1-D array of seconds"))?;
        if t.len() != values.nrows() {
            return Err(Error::format(
                path,
                "time",
                format!(
                    "{} times for {} frames of traces; give one time per frame",
                    t.len(),
                    values.nrows()
                ),
            ));
        }
        super::clock::frame_clock(path, "time", t.as_slice().expect("contiguous"), |k| {
            format!("time[{k}]")
        })?
    } else if let Some(dt) = file_dt {
        if !(dt.is_finite() && dt > 0.0) {
            return Err(Error::format(
                path,
                "dt",
                format!("{dt} is not a positive sampling interval in seconds"),
            ));
        }
        FrameClock::regular(values.nrows(), dt)
    } else {
        FrameClock::regular(values.nrows(), rate(path, "fps", file_fps, fps)?)
    };
    let (names, names_file) = match names {
        None if has("names") => (npz_text(path, "names")?, None),
        _ => (read_names(path, names)?, Some(names_path(path, names))),
    };
    let mut rec = build(path, names, &clock, values)?;
    rec.sources.extend(names_file);
    Ok(rec)
}

fn build(
    path: &Path,
    names: Vec<String>,
    clock: &FrameClock,
    values: Array2<f64>,
) -> Result<Recording> {
    if names.len() != values.ncols() {
        return Err(Error::format(
            path,
            "names",
            format!(
                "{} names for {} columns; the array must be frames × neurons with one name per column{}",
                names.len(),
                values.ncols(),
                if names.len() == values.nrows() {
                    " (it looks transposed: save x.T)"
                } else {
                    ""
                }
            ),
        ));
    }
    clock.recording(path, recording_name(path), names, values)
}

/// Sampling interval from a rate stored in the file or given by the user.
fn rate(path: &Path, field: &str, in_file: Option<f64>, given: Option<f64>) -> Result<f64> {
    // A rate stored in the file must be valid even when the user gives one.
    if let Some(f) = in_file.filter(|f| !(f.is_finite() && *f > 0.0)) {
        return Err(Error::format(
            path,
            field,
            format!("{f} is not a positive frame rate (frames per second); fix the file"),
        ));
    }
    match given.or(in_file) {
        Some(f) if f.is_finite() && f > 0.0 => Ok(1.0 / f),
        Some(f) => Err(Error::format(
            path,
            field,
            format!("{f} is not a positive frame rate (frames per second)"),
        )),
        None => Err(Error::format(
            path,
            "sampling rate",
            "the file has no time stamps or rate; give the frame rate with --fps (frames per second)",
        )),
    }
}

fn two_dims(path: &Path, field: &str, a: ArrayD<f64>) -> Result<Array2<f64>> {
    let shape = a.shape().to_vec();
    a.into_dimensionality::<Ix2>().map_err(|_| {
        Error::format(
            path,
            field,
            format!("shape {shape:?}; expected a 2-D frames × neurons array"),
        )
    })
}

/// Reads a `.npy` array of any real dtype as `f64`.
fn npy_array(path: &Path) -> Result<ArrayD<f64>> {
    macro_rules! attempt {
        ($($t:ty),*) => {{
            $(
                match ndarray_npy::read_npy::<_, ArrayD<$t>>(path) {
                    Ok(a) => return Ok(a.mapv(|v| v as f64)),
                    Err(ReadNpyError::WrongDescriptor(_)) => {}
                    Err(e) => return Err(npy_error(path, e)),
                }
            )*
        }};
    }
    attempt!(f64, f32, i64, i32, i16, u16, u8);
    Err(Error::format(
        path,
        "dtype",
        "not a real-valued array; save floats (x.astype('float64'))",
    ))
}

fn numeric_entry(
    npz: &mut NpzReader<std::fs::File>,
    path: &Path,
    name: &str,
) -> Result<ArrayD<f64>> {
    macro_rules! attempt {
        ($($t:ty),*) => {{
            $(
                match npz.by_name::<ndarray::OwnedRepr<$t>, ndarray::IxDyn>(name) {
                    Ok(a) => return Ok(a.mapv(|v| v as f64)),
                    Err(ReadNpzError::Npy(ReadNpyError::WrongDescriptor(_))) => {}
                    Err(e) => return Err(npz_error(path, name, e)),
                }
            )*
        }};
    }
    attempt!(f64, f32, i64, i32, i16, u16, u8);
    Err(Error::format(
        path,
        name,
        "not a real-valued array; store floats",
    ))
}

fn npy_error(path: &Path, e: ReadNpyError) -> Error {
    match e {
        ReadNpyError::Io(io) => Error::read(path, io),
        other => Error::format(
            path,
            "array",
            format!("{other}; the file is not a readable .npy array"),
        ),
    }
}

fn npz_error(path: &Path, field: &str, e: ReadNpzError) -> Error {
    Error::format(path, field, format!("{e}; the archive is not readable"))
}

/// The names file: `names` if given, else `<stem>.names.txt` beside `path`.
fn names_path(path: &Path, names: Option<&Path>) -> PathBuf {
    names.map(Path::to_path_buf).unwrap_or_else(|| {
        let file = path
            .file_name()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        let stem = file
            .strip_suffix(".npy")
            .or_else(|| file.strip_suffix(".npz"))
            .unwrap_or(file);
        path.with_file_name(format!("{stem}.names.txt"))
    })
}

/// One neuron name per line; blank lines and `#` comments are skipped.
fn read_names(path: &Path, names: Option<&Path>) -> Result<Vec<String>> {
    let np = names_path(path, names);
    if !np.exists() {
        return Err(Error::format(
            path,
            "names",
            format!(
                "no names file at {}; write the neuron names there, one per line in column order, or pass --names FILE",
                np.display()
            ),
        ));
    }
    let text = std::fs::read_to_string(&np).map_err(|e| Error::read(&np, e))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect())
}

/// Text arrays (`names`) in an `.npz` archive, which ndarray-npy does not read: NumPy
/// stores them as `<U{k}` (UTF-32, `k` code points per item, NUL-padded) or `|S{k}`
/// (bytes). Only these two dtypes and 1-D C-order arrays are decoded here; the NPY
/// header is NumPy's documented format (magic, version, header length, dict literal).
fn npz_text(path: &Path, entry: &str) -> Result<Vec<String>> {
    let file = std::fs::File::open(path).map_err(|e| Error::read(path, e))?;
    let bad = |msg: String| Error::format(path, entry, msg);
    let mut zip =
        zip::ZipArchive::new(file).map_err(|e| bad(format!("{e}; the archive is not readable")))?;
    let mut bytes = Vec::new();
    {
        use std::io::Read;
        let member = if zip.index_for_name(&format!("{entry}.npy")).is_some() {
            format!("{entry}.npy")
        } else {
            entry.to_string()
        };
        let mut f = zip.by_name(&member).map_err(|e| bad(format!("{e}")))?;
        f.read_to_end(&mut bytes)
            .map_err(|e| bad(format!("{e}; the archive is not readable")))?;
    }
    let not_text = || {
        bad("not an array of names; store `names=np.array(list_of_str)` or use a names file".into())
    };
    if bytes.len() < 10 || !bytes.starts_with(b"\x93NUMPY") {
        return Err(not_text());
    }
    let (hlen, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        _ if bytes.len() >= 12 => (
            u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes")) as usize,
            12,
        ),
        _ => return Err(not_text()),
    };
    let header = bytes
        .get(start..start + hlen)
        .map(String::from_utf8_lossy)
        .ok_or_else(not_text)?;
    let field = |key: &str| -> Option<String> {
        let k = header.find(&format!("'{key}':"))? + key.len() + 3;
        Some(header[k..].trim_start().to_string())
    };
    let descr = field("descr").ok_or_else(not_text)?;
    let descr = descr.trim_start_matches('\'');
    let descr = &descr[..descr.find('\'').ok_or_else(not_text)?];
    if field("fortran_order").is_some_and(|f| f.starts_with("True")) {
        return Err(not_text());
    }
    let (unit, width) = match descr.as_bytes().first() {
        Some(b'<') if descr[1..].starts_with('U') => (4usize, &descr[2..]),
        Some(b'|') if descr[1..].starts_with('S') => (1usize, &descr[2..]),
        Some(b'|') if descr[1..].starts_with('O') => {
            return Err(bad(
                "an array of Python objects (dtype object, as np.array(df.columns) gives), which NumPy stores pickled; save the names as text: np.savez(..., names=np.array(df.columns).astype(str))".into(),
            ))
        }
        _ => return Err(not_text()),
    };
    let width: usize = width.parse().map_err(|_| not_text())?;
    let item = width
        .checked_mul(unit)
        .filter(|&b| b > 0)
        .ok_or_else(not_text)?;
    let data = &bytes[start + hlen..];
    if data.len() % item != 0 {
        return Err(bad("the names array is truncated".into()));
    }
    Ok(data
        .chunks_exact(item)
        .map(|c| {
            let s: String = if unit == 4 {
                c.chunks_exact(4)
                    .map(|u| u32::from_le_bytes(u.try_into().expect("4 bytes")))
                    .take_while(|&u| u != 0)
                    .filter_map(char::from_u32)
                    .collect()
            } else {
                String::from_utf8_lossy(c)
                    .trim_end_matches('\0')
                    .to_string()
            };
            s.trim().to_string()
        })
        .collect())
}
