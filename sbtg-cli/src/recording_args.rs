//! Command-line options for reading recordings, shared by the commands that read them.

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;
use sbtg_core::data::{select_stimulus, Recording, StimulusWindow};
use sbtg_core::io::recording::{load, LoadOptions, NameCheck};

#[derive(Args, Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct RecordingArgs {
    /// Labels CSV for lab HDF5 files (`trace_column,label[,confidence]`): a file, or a
    /// folder of `<recording>.labels.csv` (default: beside each .h5 file).
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// Names file for .npy/.npz arrays, one neuron per line in column order (default:
    /// `<stem>.names.txt` beside the array).
    #[arg(long)]
    pub names: Option<PathBuf>,
    /// Frame rate (frames per second) for arrays that carry no time stamps, and for a
    /// CSV whose time column counts frames (`frame`).
    #[arg(long)]
    pub fps: Option<f64>,
    /// The time column of a wide CSV (seconds, or frames with --fps), if it is not the
    /// first column or has another name than time_s/time/t/frame.
    #[arg(long)]
    pub time_column: Option<String>,
    /// In a folder, read only the files whose name matches this pattern (e.g.
    /// '*.traces.csv'); other files are left alone.
    #[arg(long)]
    pub glob: Option<String>,
    /// Refuse a column whose name is no C. elegans neuron (instead of a warning).
    #[arg(long, conflicts_with = "any_names")]
    #[serde(default)]
    pub strict_names: bool,
    /// Take neuron names as written, unchecked and unnormalised (recordings of another
    /// animal).
    #[arg(long)]
    #[serde(default)]
    pub any_names: bool,
    /// NWB: the RoiResponseSeries to read, where the file has several.
    #[arg(long)]
    pub series: Option<String>,
    /// Analyse only the frames around presentations of this stimulus (NeuroPAL
    /// `stim_names`, e.g. `nacl`); needs `--window`.
    #[arg(long, requires = "window")]
    pub stimulus: Option<String>,
    /// Which frames of each presentation: `pre` (the same length before the onset),
    /// `during` or `post` (the same length after the offset).
    #[arg(long, requires = "stimulus")]
    pub window: Option<StimulusWindow>,
    /// Length of the `pre` and `post` windows in seconds (default: the presentation's).
    #[arg(long, requires = "stimulus")]
    pub window_seconds: Option<f64>,
}

impl RecordingArgs {
    /// Reads the recordings at `input` and applies the stimulus selection; prints what
    /// the readers resolved.
    pub fn load(&self, input: &Path) -> Result<Vec<Recording>> {
        let opts = LoadOptions {
            labels: self.labels.clone(),
            names: self.names.clone(),
            fps: self.fps,
            series: self.series.clone(),
            time_column: self.time_column.clone(),
            name_check: if self.any_names {
                NameCheck::Any
            } else if self.strict_names {
                NameCheck::Strict
            } else {
                NameCheck::Worm
            },
            glob: self.glob.clone(),
        };
        let loaded = load(input, &opts)?;
        for note in &loaded.notes {
            eprintln!("{note}");
        }
        let recs = loaded.recordings;
        for r in &recs {
            for note in &r.notes {
                eprintln!("{}: {note}", r.name);
            }
        }
        Ok(match (&self.stimulus, self.window) {
            (Some(s), Some(w)) => {
                let cut = select_stimulus(&recs, s, w, self.window_seconds)?;
                eprintln!(
                    "stimulus {s}, {w}: {} cuts of {}–{} frames from {} recordings",
                    cut.len(),
                    cut.iter().map(|r| r.frames()).min().unwrap_or(0),
                    cut.iter().map(|r| r.frames()).max().unwrap_or(0),
                    recs.len()
                );
                cut
            }
            _ => recs,
        })
    }
}

/// `n` and the noun, plural when `n` is not 1 (`1 recording`, `7 recordings`).
pub fn count(n: usize, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}

/// The recordings long enough for windows of `window_frames` frames (printing a note
/// for each one left out); an error if none is.
pub fn long_enough(recs: Vec<Recording>, window_frames: usize) -> Result<Vec<Recording>> {
    let total = recs.len();
    let (kept, notes) = sbtg_core::data::long_enough(recs, window_frames);
    for n in &notes {
        eprintln!("note: {n}");
    }
    if kept.is_empty() {
        return Err(sbtg_core::Error::Data(format!(
            "none of the {} is long enough to test ({}); use fewer lags or more frames",
            count(total, "recording"),
            notes.join("; ")
        ))
        .into());
    }
    Ok(kept)
}

/// Prints what building the panel resolved (constant traces left out of a recording).
pub fn print_panel_notes(panel: &sbtg_core::data::Panel) {
    for r in &panel.recordings {
        for note in &r.panel_notes {
            eprintln!("{}: {note}", r.name);
        }
    }
}
