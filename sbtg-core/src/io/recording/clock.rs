//! Time stamps to frames: the sampling interval of a recording and the frame each time
//! stamp falls on, with the frames a gap in the stamps leaves out.
//!
//! The interval is the median step between consecutive stamps. Frame indices follow the
//! steps, `k_{i+1} = k_i + max(1, round((t_{i+1} − t_i)/dt))`, so a step of about two or
//! more intervals (a dropped frame, a paused acquisition) leaves that many frames out,
//! and those frames enter the recording as missing samples (`nan`) instead of joining
//! the frames either side of the gap as neighbours. Indices follow the steps rather than
//! `round((t − t₀)/dt)` because real acquisition clocks jitter and drift: in the shipped
//! recordings the median step is 0.600 s and the mean 0.6016 s, so rounding the elapsed
//! time would open spurious one-frame gaps after a few hundred frames.

use std::path::Path;

use ndarray::Array2;

use crate::data::Recording;
use crate::{Error, Result};

/// The frame grid of a recording read with time stamps (or at a fixed rate).
#[derive(Clone, Debug)]
pub struct FrameClock {
    /// Sampling interval in seconds (the median step).
    pub dt: f64,
    /// Frame index of every stamp, increasing, starting at 0.
    pub frame_of: Vec<usize>,
    /// Time in seconds of every frame on the file's clock: the stamp where there is one,
    /// the stamp before plus whole intervals inside a gap.
    pub times: Vec<f64>,
    /// The gaps: `(stamp before, stamp after, frames left out)`.
    pub gaps: Vec<(f64, f64, usize)>,
}

impl FrameClock {
    /// A clock without stamps: `frames` frames every `dt` seconds from 0.
    pub fn regular(frames: usize, dt: f64) -> Self {
        FrameClock {
            dt,
            frame_of: (0..frames).collect(),
            times: (0..frames).map(|k| k as f64 * dt).collect(),
            gaps: Vec::new(),
        }
    }

    /// The same grid with its first frame at `t0` seconds.
    pub fn starting_at(mut self, t0: f64) -> Self {
        let shift = t0 - self.times.first().copied().unwrap_or(0.0);
        for t in &mut self.times {
            *t += shift;
        }
        self
    }

    /// Frames on the grid.
    pub fn frames(&self) -> usize {
        self.times.len()
    }

    /// Builds the recording from one row of `values` per stamp: the rows go to their
    /// frames, the frames of a gap stay `nan`, the frame times are kept for state tables,
    /// and a note says where the gaps are.
    pub fn recording(
        &self,
        path: &Path,
        name: String,
        neurons: Vec<String>,
        values: Array2<f64>,
    ) -> Result<Recording> {
        debug_assert_eq!(values.nrows(), self.frame_of.len());
        let values = if self.gaps.is_empty() {
            values
        } else {
            let mut grid = Array2::from_elem((self.frames(), values.ncols()), f64::NAN);
            for (row, &k) in values.rows().into_iter().zip(&self.frame_of) {
                grid.row_mut(k).assign(&row);
            }
            grid
        };
        let mut rec = Recording::from_file(path, name, neurons, self.dt, values)?;
        rec.times = self.times.clone();
        if !self.gaps.is_empty() {
            let missing: usize = self.gaps.iter().map(|g| g.2).sum();
            let listed: Vec<String> = self
                .gaps
                .iter()
                .take(5)
                .map(|(a, b, k)| format!("{k} between {a} s and {b} s"))
                .collect();
            rec.notes.push(format!(
                "{missing} frame{} missing from the time stamps ({}{}); they enter as missing samples (nan), so no lag joins the frames either side of a gap",
                if missing == 1 { " is" } else { "s are" },
                listed.join(", "),
                if self.gaps.len() > 5 {
                    format!(" and {} more gaps", self.gaps.len() - 5)
                } else {
                    String::new()
                }
            ));
        }
        Ok(rec)
    }
}

/// The frame grid of strictly increasing, finite time stamps, shared by every reader with
/// stamps. `field` names the times in errors and `at(k)` the k-th of them (a line of a
/// CSV, an index into a dataset).
pub(crate) fn frame_clock(
    path: &Path,
    field: &str,
    times: &[f64],
    at: impl Fn(usize) -> String,
) -> Result<FrameClock> {
    if times.len() < 2 {
        return Err(Error::format(
            path,
            field,
            format!(
                "{} time points; a recording needs at least two",
                times.len()
            ),
        ));
    }
    if let Some(k) = times.iter().position(|t| !t.is_finite()) {
        return Err(Error::format(
            path,
            at(k),
            "not a finite time; every frame needs a time in seconds",
        ));
    }
    let diffs: Vec<f64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    if let Some(k) = diffs.iter().position(|d| *d <= 0.0) {
        return Err(Error::format(
            path,
            at(k + 1),
            format!(
                "time {} follows {}; times must increase strictly",
                times[k + 1],
                times[k]
            ),
        ));
    }
    let mut sorted = diffs.clone();
    sorted.sort_by(f64::total_cmp);
    let dt = sorted[sorted.len() / 2];
    let mut frame_of = Vec::with_capacity(times.len());
    let mut grid = Vec::with_capacity(times.len());
    let mut gaps = Vec::new();
    frame_of.push(0);
    grid.push(times[0]);
    for (k, d) in diffs.iter().enumerate() {
        let steps = ((d / dt).round() as usize).max(1);
        if steps > 1 {
            gaps.push((times[k], times[k + 1], steps - 1));
            grid.extend((1..steps).map(|m| times[k] + m as f64 * dt));
        }
        frame_of.push(frame_of[k] + steps);
        grid.push(times[k + 1]);
    }
    let missing: usize = gaps.iter().map(|g| g.2).sum();
    if missing > times.len() {
        let (a, b, _) = gaps.iter().max_by_key(|g| g.2).expect("a gap");
        return Err(Error::format(
            path,
            field,
            format!(
                "the stamps leave out {missing} frames of {dt} s, more than the {} they hold (the longest gap is from {a} s to {b} s); a pause that long makes two recordings: split the file there",
                times.len()
            ),
        ));
    }
    Ok(FrameClock {
        dt,
        frame_of,
        times: grid,
        gaps,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn clock(times: &[f64]) -> FrameClock {
        frame_clock(Path::new("x.csv"), "time", times, |k| format!("time[{k}]")).unwrap()
    }

    #[test]
    fn jitter_keeps_frames_consecutive_and_a_gap_leaves_frames_out() {
        // Jittered steps around 0.6 s never open a gap, even when they drift.
        let jitter: Vec<f64> = (0..400)
            .map(|k| k as f64 * 0.6016 + 0.03 * ((k % 3) as f64 - 1.0))
            .collect();
        let c = clock(&jitter);
        assert!(c.gaps.is_empty());
        assert_eq!(c.frame_of, (0..400).collect::<Vec<_>>());
        assert_eq!(c.times, jitter);
        // 0, 0.5, 1.0, then 2.5 (two frames left out at 1.5 and 2.0), 3.0.
        let c = clock(&[0.0, 0.5, 1.0, 2.5, 3.0]);
        assert_eq!(c.dt, 0.5);
        assert_eq!(c.frame_of, vec![0, 1, 2, 5, 6]);
        assert_eq!(c.times, vec![0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0]);
        assert_eq!(c.gaps, vec![(1.0, 2.5, 2)]);
        // A step of 1.4 intervals is a late frame, not a gap.
        assert!(clock(&[0.0, 1.0, 2.4, 3.4]).gaps.is_empty());
        // A gap longer than the recording is refused with the fix.
        let err = frame_clock(Path::new("x.csv"), "time", &[0.0, 0.5, 1.0, 1e9], |k| {
            format!("time[{k}]")
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("split the file"), "{err}");
    }

    #[test]
    fn the_frames_of_a_gap_are_missing_samples_with_a_note() {
        let c = clock(&[10.0, 10.5, 11.0, 12.5, 13.0]);
        let values = array![[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0], [9.0, 10.0]];
        let rec = c
            .recording(
                Path::new("w.traces.csv"),
                "w".into(),
                vec!["A".into(), "B".into()],
                values,
            )
            .unwrap();
        assert_eq!(rec.frames(), 7);
        assert_eq!(rec.values.row(2).to_vec(), vec![5.0, 6.0]);
        assert!(rec.values.row(3).iter().all(|v| v.is_nan()));
        assert!(rec.values.row(4).iter().all(|v| v.is_nan()));
        assert_eq!(rec.values.row(5).to_vec(), vec![7.0, 8.0]);
        assert_eq!(rec.times[0], 10.0);
        assert_eq!(rec.times[3], 11.5);
        assert!(
            rec.notes[0].contains("2 frames are missing")
                && rec.notes[0].contains("between 11 s and 12.5 s"),
            "{}",
            rec.notes[0]
        );
    }
}
