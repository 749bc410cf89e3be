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

/// How neuron names are read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum NameCheck {
    /// C. elegans names: normalised (upper case, inner spaces removed, no
    /// zero-padding: `aval` → `AVAL`, `AVA L` → `AVAL`, `VB02` → `VB2`); a column that is
    /// no C. elegans cell or class (Cook et al. 2019 cell lists) is kept with a warning.
    #[default]
    Worm,
    /// As `worm`, but a column that is no C. elegans name is an error.
    Strict,
    /// Names as written, unchecked (recordings of other animals).
    Any,
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
    /// The time column of a wide CSV (default: the first column).
    pub time_column: Option<String>,
    /// How neuron names are normalised and checked.
    pub name_check: NameCheck,
    /// In a folder, read only the files whose name matches this pattern (`*`, `?`).
    pub glob: Option<String>,
}

/// Recordings read from a file or folder, with what the loader did on the user's
/// behalf (files skipped, names normalised, names that are no C. elegans neuron).
#[derive(Clone, Debug, Default)]
pub struct Loaded {
    pub recordings: Vec<Recording>,
    pub notes: Vec<String>,
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
        Format::WideCsv => Ok(vec![csv::read_wide_csv_with(path, &table_options(opts))?]),
        Format::LongCsv => csv::read_long_csv(path),
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

fn table_options(opts: &LoadOptions) -> csv::TableOptions {
    csv::TableOptions {
        time_column: opts.time_column.clone(),
        fps: opts.fps,
    }
}

/// Loads recordings with default options; see [`load`].
pub fn load_recordings(path: &Path) -> Result<Vec<Recording>> {
    load_recordings_with(path, &LoadOptions::default())
}

/// The recordings of [`load`], without its notes.
pub fn load_recordings_with(path: &Path, opts: &LoadOptions) -> Result<Vec<Recording>> {
    Ok(load(path, opts)?.recordings)
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

/// The files of a folder that may hold recordings: the `*.traces.csv` files if there
/// are any, otherwise every file with a recording extension that is not a labels,
/// behaviour, names or metadata file; with `glob`, the files matching it.
fn recording_files(path: &Path, glob: Option<&str>) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(path).map_err(|e| Error::read(path, e))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let name = |p: &PathBuf| {
        p.file_name()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string()
    };
    if let Some(g) = glob {
        let pattern = ::glob::Pattern::new(g)
            .map_err(|e| Error::param("glob", format!("`{g}` is not a file pattern: {e}")))?;
        return Ok(files
            .into_iter()
            .filter(|p| pattern.matches(&name(p)))
            .collect());
    }
    let traces: Vec<PathBuf> = files
        .iter()
        .filter(|p| name(p).ends_with(".traces.csv"))
        .cloned()
        .collect();
    if !traces.is_empty() {
        return Ok(traces);
    }
    Ok(files
        .into_iter()
        .filter(|p| {
            let ext = p
                .extension()
                .and_then(|e| e.to_str())
                .unwrap_or_default()
                .to_ascii_lowercase();
            RECORDING_EXTENSIONS.contains(&ext.as_str()) && !is_sidecar(&name(p))
        })
        .collect())
}

/// Loads recordings from one file, or from every recording file of a folder
/// ([`recording_files`]). In a folder, a CSV file whose header is no recording (no
/// time or frame column, not a long table) is skipped with a note; a file that is a
/// recording with a defect is an error. Neuron names are normalised and checked as
/// `opts.name_check` says. Recordings are returned sorted by file, then in file order;
/// two recordings with the same name are an error.
pub fn load(path: &Path, opts: &LoadOptions) -> Result<Loaded> {
    if !path.exists() {
        return Err(Error::read(
            path,
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no such file or folder; check the path",
            ),
        ));
    }
    let mut notes = Vec::new();
    let mut recordings = if path.is_file() {
        read_file(path, opts)?
    } else {
        let files = recording_files(path, opts.glob.as_deref())?;
        if files.is_empty() {
            return Err(Error::format(
                path,
                "folder",
                match &opts.glob {
                    Some(g) => format!("no file matches --glob `{g}`"),
                    None => "no recording files found (*.traces.csv, .csv, .mat, .h5, .nwb, .npy, .npz, .parquet); \
                             point to a folder of recordings or to one file".to_string(),
                },
            ));
        }
        let mut out = Vec::new();
        for f in &files {
            let is_csv = matches!(Format::detect(f)?, Format::WideCsv);
            if is_csv
                && f.metadata().map_or(0, |m| m.len()) > 0
                && !csv::looks_like_recording(f, &table_options(opts))?
            {
                let first = csv::csv_header(f)?.into_iter().next().unwrap_or_default();
                notes.push(format!(
                    "{}: not a recording (its first column is `{first}`, not a time or frame column); skipped. Pass --glob PATTERN to choose the files, or --time-column NAME if it is one",
                    f.display()
                ));
                continue;
            }
            out.extend(read_file(f, opts)?);
        }
        if out.is_empty() {
            return Err(Error::format(
                path,
                "folder",
                format!("none of its files is a recording ({})", notes.join("; ")),
            ));
        }
        out
    };
    for r in &mut recordings {
        notes.extend(super::names::check_names(r, opts.name_check)?);
    }
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
    Ok(Loaded { recordings, notes })
}
