//! Command-line options for reading recordings, shared by the commands that read them.

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;
use sbtg_core::data::{select_stimulus, Recording, StimulusWindow};
use sbtg_core::io::recording::{load_recordings_with, LoadOptions};

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
    /// Frame rate (frames per second) for arrays that carry no time stamps.
    #[arg(long)]
    pub fps: Option<f64>,
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
        };
        let recs = load_recordings_with(input, &opts)?;
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
