//! Stimulus periods: cutting recordings to the frames before, during or after a
//! stimulus presentation.
//!
//! A presentation `[onset, offset)` in seconds becomes frames `k` with
//! `onset ≤ k·dt < offset` (frame 0 at time 0). The `pre` window is the same length
//! before the onset, `[onset − d, onset)`, and `post` the same length after the
//! offset, `[offset, offset + d)`, with `d = offset − onset` unless a length is given;
//! both are clipped to the recording. Each cut is a separate recording, so windows
//! never span the cut.

use std::fmt;
use std::str::FromStr;

use super::Recording;
use crate::{Error, Result};

/// One presentation of a stimulus, in seconds from the recording's first frame.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Stimulus {
    pub name: String,
    pub onset_s: f64,
    pub offset_s: f64,
}

/// Which part of a presentation to keep.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum StimulusWindow {
    Pre,
    During,
    Post,
}

impl FromStr for StimulusWindow {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "pre" => Ok(StimulusWindow::Pre),
            "during" => Ok(StimulusWindow::During),
            "post" => Ok(StimulusWindow::Post),
            other => Err(format!("`{other}`: expected pre, during or post")),
        }
    }
}

impl fmt::Display for StimulusWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StimulusWindow::Pre => "pre",
            StimulusWindow::During => "during",
            StimulusWindow::Post => "post",
        })
    }
}

/// Frame range `[start, end)` of the window `[a, b)` seconds at interval `dt`,
/// clipped to `frames`. A frame exactly at `a` is included; one at `b` is not.
pub fn frame_range(a: f64, b: f64, dt: f64, frames: usize) -> (usize, usize) {
    // Tolerance for times that are whole frames up to rounding (60.5 s × 4 fps).
    let first = |s: f64| {
        let k = (s / dt - 1e-9).ceil();
        k.clamp(0.0, frames as f64) as usize
    };
    (first(a), first(b))
}

/// Cuts each recording to the frames of `window` around every presentation of
/// `stimulus`. `seconds` overrides the length of the `pre` and `post` windows.
/// Recordings without that stimulus are left out; it is an error if none has it.
pub fn select_stimulus(
    recordings: &[Recording],
    stimulus: &str,
    window: StimulusWindow,
    seconds: Option<f64>,
) -> Result<Vec<Recording>> {
    if let Some(s) = seconds {
        if !(s.is_finite() && s > 0.0) {
            return Err(Error::param(
                "window-seconds",
                format!("{s}: give a positive number of seconds"),
            ));
        }
    }
    if recordings.iter().all(|r| r.stimuli.is_empty()) {
        return Err(Error::Data(format!(
            "`--stimulus {stimulus}`: these recordings carry no stimulus periods; \
             only NeuroPAL .mat files (stim_names, stims, stim_times) have them"
        )));
    }
    let mut out = Vec::new();
    for rec in recordings {
        let shows: Vec<&super::Stimulus> = rec
            .stimuli
            .iter()
            .filter(|s| s.name.eq_ignore_ascii_case(stimulus))
            .collect();
        for (k, s) in shows.iter().enumerate() {
            let d = seconds.unwrap_or(s.offset_s - s.onset_s);
            let (a, b) = match window {
                StimulusWindow::Pre => (s.onset_s - d, s.onset_s),
                StimulusWindow::During => (s.onset_s, s.offset_s),
                StimulusWindow::Post => (s.offset_s, s.offset_s + d),
            };
            let (start, end) = frame_range(a, b, rec.dt, rec.frames());
            if end < start + 2 {
                continue;
            }
            let name = if shows.len() == 1 {
                rec.name.clone()
            } else {
                format!("{}#{}", rec.name, k + 1)
            };
            let values = rec.values.slice(ndarray::s![start..end, ..]).to_owned();
            // Neurons with no sample in the cut are dropped from it.
            let keep: Vec<usize> = (0..values.ncols())
                .filter(|&j| values.column(j).iter().any(|v| !v.is_nan()))
                .collect();
            let mut cut = Recording::from_file(
                &rec.path,
                name,
                keep.iter().map(|&j| rec.neurons[j].clone()).collect(),
                rec.dt,
                values.select(ndarray::Axis(1), &keep),
            )?;
            cut.times = rec.times[start..end].to_vec();
            cut.cut_from = Some(rec.cut_from.clone().unwrap_or_else(|| rec.name.clone()));
            cut.stimuli = vec![(*s).clone()];
            out.push(cut);
        }
    }
    if out.is_empty() {
        let mut known: Vec<&str> = recordings
            .iter()
            .flat_map(|r| r.stimuli.iter().map(|s| s.name.as_str()))
            .collect();
        known.sort();
        known.dedup();
        return Err(Error::Data(format!(
            "no recording has frames {window} stimulus `{stimulus}`; the stimuli in these files are: {}",
            known.join(", ")
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_become_frames_with_the_rate() {
        // 60.5–70.5 s at 4 fps: frames 242 (60.5 s) to 281 (70.25 s).
        assert_eq!(frame_range(60.5, 70.5, 0.25, 960), (242, 282));
        // Clipped at both ends.
        assert_eq!(frame_range(-3.0, 1.0, 0.25, 10), (0, 4));
        assert_eq!(frame_range(2.0, 9.0, 0.25, 10), (8, 10));
        // A boundary a hair off a whole frame because of rounding still lands on it.
        assert_eq!(frame_range(0.1 * 3.0, 0.6, 0.1, 100), (3, 6));
    }
}
