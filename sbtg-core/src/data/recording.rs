//! A recording: a T×n matrix of traces with neuron names, a sampling interval, a
//! missing-value mask and, where the file had them, stimulus periods. Every reader in
//! [`crate::io::recording`] ends in [`Recording::from_file`], which rejects mismatched
//! names and columns, duplicate names, neurons without a single observed sample,
//! infinite values and sampling intervals that are not positive.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use ndarray::Array2;

use super::stimulus::Stimulus;
use crate::{Error, Result};

/// The recordings with at least `window_frames + MIN_WINDOWS_PER_RECORDING − 1`
/// frames (so that each gives [`MIN_WINDOWS_PER_RECORDING`] windows), and a note for
/// every recording left out.
///
/// [`MIN_WINDOWS_PER_RECORDING`]: crate::data::window::MIN_WINDOWS_PER_RECORDING
pub fn long_enough(
    recordings: Vec<Recording>,
    window_frames: usize,
) -> (Vec<Recording>, Vec<String>) {
    let need = window_frames + crate::data::window::MIN_WINDOWS_PER_RECORDING - 1;
    let mut notes = Vec::new();
    let kept = recordings
        .into_iter()
        .filter(|r| {
            let ok = r.frames() >= need;
            if !ok {
                notes.push(format!(
                    "{}: {} frames, fewer than the {need} needed for {} windows of {window_frames} frames; left out (a file with neurons as rows and frames as columns looks like this: transpose it)",
                    r.name,
                    r.frames(),
                    crate::data::window::MIN_WINDOWS_PER_RECORDING,
                ));
            }
            ok
        })
        .collect();
    (kept, notes)
}

/// One recording (one worm).
#[derive(Clone, Debug)]
pub struct Recording {
    /// Recording id (file stem without `.traces`, or the worm id inside the file).
    pub name: String,
    /// The file it came from (empty for simulated data).
    pub path: PathBuf,
    /// Neuron label of every column.
    pub neurons: Vec<String>,
    /// Sampling interval in seconds.
    pub dt: f64,
    /// Time of every frame in seconds on the file's clock: its time stamps where the file
    /// has them (with whole intervals filled in across a gap), `k·dt` where it gives a
    /// rate. State tables (`--states file:SUFFIX`) are read on this clock.
    pub times: Vec<f64>,
    /// `T × n`; NaN where a sample is missing.
    pub values: Array2<f64>,
    /// Stimulus presentations, in seconds from the first frame (empty if the file has none).
    pub stimuli: Vec<Stimulus>,
    /// What the reader resolved on the user's behalf (duplicate labels, dropped ROIs),
    /// one sentence each, for the command line to print.
    pub notes: Vec<String>,
    /// Every file the recording was read from (the recording file, then side files
    /// such as labels or names), for the run manifest.
    pub sources: Vec<PathBuf>,
    /// The recording this one was cut from (the cuts around the presentations of a
    /// stimulus), so that they count as one worm; `None`: a worm of its own.
    pub cut_from: Option<String>,
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
        let mut r = Self::from_file(&PathBuf::from(&name), name, neurons, dt, values)?;
        r.sources.clear();
        Ok(r)
    }

    /// Builds a recording read from `path`, checking shapes, names and values; errors
    /// name the file.
    pub fn from_file(
        path: &Path,
        name: impl Into<String>,
        neurons: Vec<String>,
        dt: f64,
        values: Array2<f64>,
    ) -> Result<Self> {
        let r = Recording {
            path: path.to_path_buf(),
            name: name.into(),
            neurons,
            dt,
            times: (0..values.nrows()).map(|k| k as f64 * dt).collect(),
            values,
            stimuli: Vec::new(),
            notes: Vec::new(),
            sources: vec![path.to_path_buf()],
            cut_from: None,
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
        if self.values.nrows() > 0 {
            if let Some(j) =
                (0..self.values.ncols()).find(|&j| self.values.column(j).iter().all(|v| v.is_nan()))
            {
                return Err(Error::format(
                    path,
                    format!("column {}", self.neurons[j]),
                    "no observed sample (every value is nan); drop the neuron from the file",
                ));
            }
        }
        Ok(())
    }

    /// Number of frames `T`.
    pub fn frames(&self) -> usize {
        self.values.nrows()
    }

    /// Whether sample `(t, j)` is observed.
    pub fn observed(&self, t: usize, j: usize) -> bool {
        !self.values[[t, j]].is_nan()
    }
}
