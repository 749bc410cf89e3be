//! Joint windows `z_t = [x_t, x_{t+1}, …, x_{t+L−1}]` of L consecutive snapshots
//! (blocks), built inside each recording only — never across recordings — and their
//! per-coordinate standardisation with training statistics only.

use std::ops::Range;

use ndarray::{s, Array1, Array2, ArrayView2, Axis};

use crate::data::panel::Panel;
use crate::{Error, Result};

/// Windows a recording must give for its tests to mean anything: shorter recordings
/// are left out of a run with a note ([`crate::data::recording::long_enough`]).
pub const MIN_WINDOWS_PER_RECORDING: usize = 10;

/// All windows of a panel, stacked recording after recording.
#[derive(Clone, Debug)]
pub struct Windows {
    /// Number of blocks L.
    pub blocks: usize,
    /// Frame offset of each block within the window (`0, 1, …, L−1` for consecutive
    /// snapshots; `0, r` for a plain lag-r pair).
    pub offsets: Vec<usize>,
    /// Neurons per block n.
    pub n: usize,
    /// `N × L·n`; block k occupies columns `k·n .. (k+1)·n`. 0 where missing.
    pub z: Array2<f64>,
    /// `N × L·n`, 1.0 where observed.
    pub mask: Array2<f64>,
    /// Recording index of every window.
    pub recording: Vec<usize>,
    /// First frame of every window.
    pub start: Vec<usize>,
    /// Rows of each recording (contiguous in time).
    pub segments: Vec<Range<usize>>,
    /// The worm of each segment ([`crate::data::PanelRecording::worm`]).
    pub worms: Vec<usize>,
}

impl Windows {
    /// Stacks L-block windows of consecutive snapshots inside every recording.
    pub fn build(panel: &Panel, blocks: usize) -> Result<Windows> {
        if blocks < 2 {
            return Err(Error::param("blocks", "a window needs at least two blocks"));
        }
        Self::build_offsets(panel, &(0..blocks).collect::<Vec<_>>())
    }

    /// Stacks windows `[x_{t+o_0}, x_{t+o_1}, …]` for increasing frame offsets `o_k`
    /// starting at 0, inside every recording.
    pub fn build_offsets(panel: &Panel, offsets: &[usize]) -> Result<Windows> {
        if offsets.is_empty() || offsets[0] != 0 || offsets.windows(2).any(|w| w[1] <= w[0]) {
            return Err(Error::param(
                "blocks",
                format!("block offsets must start at 0 and increase, got {offsets:?}"),
            ));
        }
        let blocks = offsets.len();
        let frames = offsets[blocks - 1] + 1;
        let n = panel.neurons.len();
        let mut rows = 0;
        for r in &panel.recordings {
            if r.x.nrows() < frames {
                return Err(Error::Data(format!(
                    "recording {} has {} frames, fewer than the {frames}-frame window (a lag-r window spans r + 1 frames, or more for the baselines that fit all lags at once); lower the largest of --lags or leave the recording out",
                    r.name,
                    r.x.nrows()
                )));
            }
            rows += r.x.nrows() + 1 - frames;
        }
        let mut z = Array2::zeros((rows, blocks * n));
        let mut mask = Array2::zeros((rows, blocks * n));
        let mut recording = Vec::with_capacity(rows);
        let mut start = Vec::with_capacity(rows);
        let mut segments = Vec::new();
        let mut worms = Vec::new();
        let mut row = 0;
        for (ri, r) in panel.recordings.iter().enumerate() {
            let count = r.x.nrows() + 1 - frames;
            for t in 0..count {
                for (k, &o) in offsets.iter().enumerate() {
                    z.slice_mut(s![row + t, k * n..(k + 1) * n])
                        .assign(&r.x.row(t + o));
                    mask.slice_mut(s![row + t, k * n..(k + 1) * n])
                        .assign(&r.observed.row(t + o));
                }
                recording.push(ri);
                start.push(t);
            }
            segments.push(row..row + count);
            worms.push(r.worm);
            row += count;
        }
        Ok(Windows {
            blocks,
            offsets: offsets.to_vec(),
            n,
            z,
            mask,
            recording,
            start,
            segments,
            worms,
        })
    }

    pub fn len(&self) -> usize {
        self.z.nrows()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Frames spanned after the first: the lag between the first and last block.
    pub fn span(&self) -> usize {
        self.offsets.last().copied().unwrap_or(0)
    }

    /// Columns of block k.
    pub fn block(&self, k: usize) -> Range<usize> {
        k * self.n..(k + 1) * self.n
    }
}

/// Per-coordinate mean and standard deviation of training windows (observed entries only).
#[derive(Clone, Debug)]
pub struct Standardiser {
    pub mean: Array1<f64>,
    pub sd: Array1<f64>,
}

impl Standardiser {
    /// Fits on the rows `rows` of `z` with mask `mask`.
    pub fn fit(z: ArrayView2<f64>, mask: ArrayView2<f64>, rows: &[usize]) -> Standardiser {
        let zs = z.select(Axis(0), rows);
        let ms = mask.select(Axis(0), rows);
        let n = ms.sum_axis(Axis(0));
        let mean = (&zs * &ms).sum_axis(Axis(0)) / n.mapv(|v| v.max(1.0));
        let dev = (&zs - &mean.view().insert_axis(Axis(0))) * &ms;
        let var = (&dev * &dev).sum_axis(Axis(0)) / n.mapv(|v| (v - 1.0).max(1.0));
        let sd = var.mapv(|v| if v > 1e-12 { v.sqrt() } else { 1.0 });
        Standardiser { mean, sd }
    }

    /// `(z − mean)/sd` on observed entries, 0 elsewhere, for the rows `rows`.
    pub fn apply(
        &self,
        z: ArrayView2<f64>,
        mask: ArrayView2<f64>,
        rows: &[usize],
    ) -> (Array2<f64>, Array2<f64>) {
        let zs = z.select(Axis(0), rows);
        let ms = mask.select(Axis(0), rows);
        let out = (&zs - &self.mean.view().insert_axis(Axis(0)))
            / self.sd.view().insert_axis(Axis(0))
            * &ms;
        (out, ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::panel::PanelRecording;
    use ndarray::array;

    #[test]
    fn windows_never_cross_recordings() {
        let rec = |name: &str, x: Array2<f64>| PanelRecording {
            name: name.into(),
            file: Default::default(),
            dt: 1.0,
            times: (0..x.nrows()).map(|k| k as f64).collect(),
            stimuli: Vec::new(),
            notes: Vec::new(),
            panel_notes: Vec::new(),
            observed: Array2::ones(x.raw_dim()),
            x,
            worm: 0,
        };
        let panel = Panel {
            neurons: vec!["A".into(), "B".into()],
            recordings: vec![
                rec("r0", array![[0., 10.], [1., 11.], [2., 12.]]),
                rec("r1", array![[100., 110.], [101., 111.]]),
            ],
            config: Default::default(),
            states: None,
        };
        let w = Windows::build(&panel, 2).unwrap();
        assert_eq!(w.len(), 3);
        assert_eq!(w.z.row(1).to_vec(), vec![1., 11., 2., 12.]);
        assert_eq!(w.z.row(2).to_vec(), vec![100., 110., 101., 111.]);
        assert_eq!(w.segments, vec![0..2, 2..3]);
        assert!(Windows::build(&panel, 3)
            .unwrap_err()
            .to_string()
            .contains("recording r1"));
    }

    #[test]
    fn standardiser_uses_training_rows_only() {
        let z = array![[1.0], [3.0], [100.0]];
        let m = array![[1.0], [1.0], [1.0]];
        let s = Standardiser::fit(z.view(), m.view(), &[0, 1]);
        assert_eq!(s.mean[0], 2.0);
        assert!((s.sd[0] - 2f64.sqrt()).abs() < 1e-15);
        let (out, _) = s.apply(z.view(), m.view(), &[2]);
        assert!((out[[0, 0]] - 98.0 / 2f64.sqrt()).abs() < 1e-12);
    }
}
