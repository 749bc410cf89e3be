//! Recording files: [`load_recordings_with`] reads a file or a folder, picking the
//! reader from each file's first bytes and name ([`Format::detect`]):
//!
//! | format | reader |
//! |---|---|
//! | wide CSV (`time_s`, then one column per neuron) | [`csv::read_wide_csv`] |
//! | long CSV (`time, neuron, value`) | [`csv::read_long_csv`] |
//! | NeuroPAL `Head_Activity_*.mat` (MATLAB v5) | [`neuropal`] |
//! | lab HDF5 (`gcamp/traces_array_F_F20`) + labels CSV | `lab_hdf5::read_lab_hdf5` |
//! | NWB optical physiology (`RoiResponseSeries`) | `nwb::read_nwb` |
//! | NPY (T × n) + names file, NPZ (`traces`, `names`, `time`/`fps`) | [`npy`] |
//! | Parquet, wide or long | [`parquet::read_parquet`] |
//!
//! Every reader ends in [`Recording::from_file`](crate::data::Recording::from_file),
//! which checks names, shapes and values; readers of time stamps go through
//! [`clock::FrameClock`], which puts each stamp on its frame and leaves the frames of a
//! gap missing.

use std::path::Path;

mod clock;
pub mod csv;
mod format;
#[cfg(feature = "hdf5")]
pub mod lab_hdf5;
pub mod mat;
pub mod names;
pub mod neuropal;
pub mod npy;
#[cfg(feature = "hdf5")]
pub mod nwb;
pub mod parquet;

pub use self::csv::{read_long_csv, read_wide_csv, read_wide_csv_with, TableOptions};
pub use clock::FrameClock;
pub use format::{
    load, load_recordings, load_recordings_with, read_file, Format, LoadOptions, Loaded, NameCheck,
};

/// Recording id from a file name: the name without its extension and without the
/// suffixes `.traces`, `.long` and `-data` that the shipped layouts add.
pub fn recording_name(path: &Path) -> String {
    let file = path
        .file_name()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    let mut stem = match file.rfind('.') {
        Some(k) if k > 0 => &file[..k],
        _ => file,
    };
    for suffix in [".traces", ".long", "-data"] {
        stem = stem.strip_suffix(suffix).unwrap_or(stem);
    }
    stem.to_string()
}
