//! Picking the reader for a file, and loading a folder of recordings.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::{csv, mat, neuropal, npy, parquet};
use crate::data::Recording;
use crate::{Error, Result};

/// The recording formats sbtg reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `time_s` then one column per neuron.
    WideCsv,
    /// `time, neuron, value`, one row per sample.
    LongCsv,
    /// NeuroPAL `Head_Activity_*.mat` (MATLAB Level 5).
    NeuroPalMat,
    /// The lab pipeline's HDF5 (`gcamp/traces_array_F_F20`, `timing/timestamp_confocal`).
    LabHdf5,
    /// Neurodata Without Borders, optical physiology.
    Nwb,
    /// A T × n NumPy array.
    Npy,
    /// A NumPy archive with `traces` and optionally `names`, `time`, `fps` or `dt`.
    Npz,
    /// Apache Parquet, wide or long.
    Parquet,
}

impl Format {
    /// Short name for messages.
    pub fn name(self) -> &'static str {
        match self {
            Format::WideCsv => "wide CSV",
            Format::LongCsv => "long CSV",
            Format::NeuroPalMat => "NeuroPAL .mat",
            Format::LabHdf5 => "lab HDF5",
            Format::Nwb => "NWB",
            Format::Npy => "NPY",
            Format::Npz => "NPZ",
            Format::Parquet => "Parquet",
        }
    }

    /// Detects the format from the file's first bytes, then its name and header.
    pub fn detect(path: &Path) -> Result<Format> {
        let mut head = [0u8; 128];
        let n = std::fs::File::open(path)
            .and_then(|mut f| read_up_to(&mut f, &mut head))
            .map_err(|e| Error::read(path, e))?;
        let head = &head[..n];
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or_default()
            .to_ascii_lowercase();
        if head.starts_with(b"MATLAB") || ext == "mat" {
            return Ok(Format::NeuroPalMat);
        }
        if head.starts_with(b"\x89HDF\r\n\x1a\n") {
            return hdf5_kind(path, &ext);
        }
        if head.starts_with(b"\x93NUMPY") {
            return Ok(Format::Npy);
        }
        if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
            return Ok(Format::Npz);
        }
        if head.starts_with(b"PAR1") {
            return Ok(Format::Parquet);
        }
        match ext.as_str() {
            "npy" | "npz" | "parquet" | "h5" | "hdf5" | "nwb" => Err(Error::format(
                path,
                "file",
                format!("named .{ext} but its first bytes are not that format; the file is truncated or mislabelled"),
            )),
            _ => {
                if n == 0 {
                    return Ok(Format::WideCsv); // the CSV reader says "empty"
                }
                let header = csv::csv_header(path)?;
                Ok(if csv::is_long_header(&header) {
                    Format::LongCsv
                } else {
                    Format::WideCsv
                })
            }
        }
    }
}

fn read_up_to(f: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        let k = f.read(&mut buf[n..])?;
        if k == 0 {
            break;
        }
        n += k;
    }
    Ok(n)
}

#[cfg(feature = "hdf5")]
fn hdf5_kind(path: &Path, ext: &str) -> Result<Format> {
    if ext == "nwb" || super::nwb::is_nwb(path)? {
        Ok(Format::Nwb)
    } else {
        Ok(Format::LabHdf5)
    }
}

#[cfg(not(feature = "hdf5"))]
fn hdf5_kind(path: &Path, _ext: &str) -> Result<Format> {
    Err(Error::format(
        path,
        "file",
        "an HDF5 (or NWB) file, but this sbtg was built without HDF5 support; \
         install the HDF5 library (Debian: apt-get install libhdf5-dev) and rebuild with default features",
    ))
}

/// Options the readers need from the user for some formats.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// Labels CSV (`trace_column,label[,confidence]`) for lab HDF5 files: a file, or a
    /// folder holding `<recording>.labels.csv`. Default: beside the HDF5 file.
    pub labels: Option<PathBuf>,
    /// Names file (one neuron name per line) for NPY/NPZ files. Default:
    /// `<stem>.names.txt` beside the array.
    pub names: Option<PathBuf>,
    /// Frames per second, for arrays that carry no time stamps or rate.
    pub fps: Option<f64>,
    /// Which `RoiResponseSeries` of an NWB file to read (name or path), where it has several.
    pub series: Option<String>,
}

/// Reads one file with the reader its format needs. A NeuroPAL file gives one
/// recording per worm; every other format gives one.
pub fn read_file(path: &Path, opts: &LoadOptions) -> Result<Vec<Recording>> {
    if let Some(fps) = opts.fps {
        if !(fps.is_finite() && fps > 0.0) {
            return Err(Error::param(
                "fps",
                format!("{fps}: give the frame rate as a positive number of frames per second"),
            ));
        }
    }
    match Format::detect(path)? {
        Format::WideCsv => Ok(vec![csv::read_wide_csv(path)?]),
        Format::LongCsv => Ok(vec![csv::read_long_csv(path)?]),
        Format::NeuroPalMat => {
            let m = mat::MatFile::open(path)?;
            if !neuropal::is_neuropal(&m) {
                let have: Vec<&str> = m.variables.iter().map(|(n, _)| n.as_str()).collect();
                return Err(Error::format(
                    path,
                    "variables",
                    format!(
                        "no `neurons` or `norm_traces`; sbtg reads NeuroPAL Head_Activity files. Variables found: {}",
                        have.join(", ")
                    ),
                ));
            }
            neuropal::from_mat(&m)
        }
        #[cfg(feature = "hdf5")]
        Format::LabHdf5 => Ok(vec![super::lab_hdf5::read_lab_hdf5(
            path,
            opts.labels.as_deref(),
        )?]),
        #[cfg(feature = "hdf5")]
        Format::Nwb => Ok(vec![super::nwb::read_nwb(path, opts.series.as_deref())?]),
        #[cfg(not(feature = "hdf5"))]
        Format::LabHdf5 | Format::Nwb => hdf5_kind(path, "").map(|_| vec![]),
        Format::Npy => Ok(vec![npy::read_npy(path, opts.names.as_deref(), opts.fps)?]),
        Format::Npz => Ok(vec![npy::read_npz(path, opts.names.as_deref(), opts.fps)?]),
        Format::Parquet => Ok(vec![parquet::read_parquet(path)?]),
    }
}

/// Loads recordings with default options; see [`load_recordings_with`].
pub fn load_recordings(path: &Path) -> Result<Vec<Recording>> {
    load_recordings_with(path, &LoadOptions::default())
}

/// Files in a folder that hold something other than traces.
fn is_sidecar(name: &str) -> bool {
    [
        ".labels.csv",
        ".behavior.csv",
        ".names.txt",
        ".json",
        ".md",
        ".txt",
        ".toml",
    ]
    .iter()
    .any(|s| name.ends_with(s))
        || name.starts_with('.')
}

const RECORDING_EXTENSIONS: [&str; 9] = [
    "csv", "mat", "h5", "hdf5", "nwb", "npy", "npz", "parquet", "pq",
];

/// Loads recordings from one file, or from every recording file of a folder: the
/// `*.traces.csv` files if there are any, otherwise every file with a recording
/// extension (`csv mat h5 hdf5 nwb npy npz parquet`) that is not a labels, behaviour,
/// names or metadata file. Recordings are returned sorted by file, then in file order;
/// two recordings with the same name are an error.
pub fn load_recordings_with(path: &Path, opts: &LoadOptions) -> Result<Vec<Recording>> {
    if !path.exists() {
        return Err(Error::read(
            path,
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no such file or folder; check the path",
            ),
        ));
    }
    let recordings = if path.is_file() {
        read_file(path, opts)?
    } else {
        let entries = std::fs::read_dir(path).map_err(|e| Error::read(path, e))?;
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        let traces: Vec<PathBuf> = files
            .iter()
            .filter(|p| p.to_string_lossy().ends_with(".traces.csv"))
            .cloned()
            .collect();
        let files: Vec<PathBuf> = if traces.is_empty() {
            files
                .into_iter()
                .filter(|p| {
                    let name = p.file_name().and_then(|s| s.to_str()).unwrap_or_default();
                    let ext = p
                        .extension()
                        .and_then(|e| e.to_str())
                        .unwrap_or_default()
                        .to_ascii_lowercase();
                    RECORDING_EXTENSIONS.contains(&ext.as_str()) && !is_sidecar(name)
                })
                .collect()
        } else {
            traces
        };
        if files.is_empty() {
            return Err(Error::format(
                path,
                "folder",
                "no recording files found (*.traces.csv, .csv, .mat, .h5, .nwb, .npy, .npz, .parquet); \
                 point to a folder of recordings or to one file",
            ));
        }
        let mut out = Vec::new();
        for f in &files {
            out.extend(read_file(f, opts)?);
        }
        out
    };
    let mut seen: HashMap<&str, &Path> = HashMap::new();
    for r in &recordings {
        if let Some(first) = seen.insert(r.name.as_str(), r.path.as_path()) {
            return Err(Error::Data(format!(
                "two recordings are called `{}` ({} and {}); rename one file so that every recording has its own name",
                r.name,
                first.display(),
                r.path.display()
            )));
        }
    }
    Ok(recordings)
}
