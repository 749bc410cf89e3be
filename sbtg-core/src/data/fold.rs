//! Cross-fitting folds: edge tests only ever use windows the model was not trained on.
//!
//! - [`FoldScheme::Blocks`] (the default, [`FoldScheme::DEFAULT`]): each recording is cut
//!   into k contiguous blocks of windows; fold f tests block f of every recording and
//!   trains on the rest, minus the windows that share a frame with a test window (an
//!   (L−1)-window purge on each side), so every fold's model has seen every worm.
//! - [`FoldScheme::Recordings`]: whole recordings are held out (recording r goes to fold
//!   `r mod k`); no frame is shared between training and test windows.
//!   Alternating windows are never used: neighbouring windows share frames.

use std::ops::Range;

use crate::data::window::Windows;
use crate::{Error, Result};

/// How windows are split for cross-fitting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "by", content = "k")]
pub enum FoldScheme {
    Recordings(usize),
    Blocks(usize),
}

/// What a fold holds out (`--fold-by`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum FoldBy {
    /// Whole recordings (a model of other worms tests each worm).
    Recordings,
    /// Contiguous blocks of every recording (the default).
    Blocks,
}

impl FoldScheme {
    /// The scheme holding out `by`, with `k` folds (default: 5 blocks, or
    /// `min(recordings, 5)` whole recordings).
    pub fn new(by: FoldBy, k: Option<usize>, recordings: usize) -> Self {
        match by {
            FoldBy::Recordings => FoldScheme::Recordings(k.unwrap_or(recordings.min(5))),
            FoldBy::Blocks => FoldScheme::Blocks(k.unwrap_or(5)),
        }
    }

    /// What the scheme holds out.
    pub fn by(&self) -> FoldBy {
        match self {
            FoldScheme::Recordings(_) => FoldBy::Recordings,
            FoldScheme::Blocks(_) => FoldBy::Blocks,
        }
    }

    /// Number of folds.
    pub fn k(&self) -> usize {
        match *self {
            FoldScheme::Recordings(k) | FoldScheme::Blocks(k) => k,
        }
    }

    /// The default: 5 contiguous blocks of every recording. Stein's identity holds for the
    /// density whose score is used, so a fold's model must be a model of the windows it
    /// tests: a model fitted on other worms is not one of a held-out worm whose global modes
    /// and innovations differ from theirs, and its held-out products then have a mean that
    /// is not zero where nothing is coupled (docs/method.md §4 has the measurements).
    pub const DEFAULT: FoldScheme = FoldScheme::Blocks(5);

    /// Whole worms when there are at least two (k = min(worms, 5)), else 5 blocks: the
    /// folds of a model per state, whose runs are too short to cut into blocks.
    pub fn by_worm(worms: usize) -> Self {
        if worms >= 2 {
            FoldScheme::Recordings(worms.min(5))
        } else {
            FoldScheme::Blocks(5)
        }
    }
}

/// One fold: training rows, test rows, and the contiguous runs of the test rows
/// (as ranges into the test-row list).
#[derive(Clone, Debug)]
pub struct Fold {
    pub train: Vec<usize>,
    pub test: Vec<usize>,
    pub test_segments: Vec<Range<usize>>,
}

/// Splits the windows into folds.
pub fn make_folds(w: &Windows, scheme: FoldScheme) -> Result<Vec<Fold>> {
    // Whole worms are held out: the pieces of one recording cut by state stay together.
    let mut worms: Vec<usize> = Vec::new();
    for &g in &w.worms {
        if !worms.contains(&g) {
            worms.push(g);
        }
    }
    let rank = |r: usize| worms.iter().position(|&g| g == w.worms[r]).expect("listed");
    let n_rec = worms.len();
    let folds = match scheme {
        FoldScheme::Recordings(k) => {
            if k < 2 || k > n_rec {
                return Err(Error::param("folds", format!(
                    "{k} folds of whole recordings need 2 ≤ k ≤ {n_rec} recordings; use block folds for fewer recordings"
                )));
            }
            (0..k)
                .map(|f| {
                    let mut test = Vec::new();
                    let mut segs = Vec::new();
                    let mut train = Vec::new();
                    for (r, seg) in w.segments.iter().enumerate() {
                        if rank(r) % k == f {
                            let s0 = test.len();
                            test.extend(seg.clone());
                            segs.push(s0..test.len());
                        } else {
                            train.extend(seg.clone());
                        }
                    }
                    Fold {
                        train,
                        test,
                        test_segments: segs,
                    }
                })
                .collect::<Vec<_>>()
        }
        FoldScheme::Blocks(k) => {
            if k < 2 {
                return Err(Error::param("folds", "need at least 2 block folds"));
            }
            // Windows closer than the span share a frame with a test window.
            let purge = w.span();
            (0..k)
                .map(|f| {
                    let mut test = Vec::new();
                    let mut segs = Vec::new();
                    let mut train = Vec::new();
                    for seg in &w.segments {
                        let len = seg.len();
                        let a = seg.start + f * len / k;
                        let b = seg.start + (f + 1) * len / k;
                        let s0 = test.len();
                        test.extend(a..b);
                        segs.push(s0..test.len());
                        for t in seg.clone() {
                            // Window t covers frames t..t+L−1; keep it only if it shares
                            // no frame with the test windows a..b.
                            if t + purge < a || t >= b + purge {
                                train.push(t);
                            }
                        }
                    }
                    Fold {
                        train,
                        test,
                        test_segments: segs,
                    }
                })
                .collect()
        }
    };
    for (i, f) in folds.iter().enumerate() {
        if f.train.len() < 10 || f.test.len() < 3 {
            return Err(Error::Data(format!(
                "fold {} has {} training and {} test windows; use fewer folds or longer recordings",
                i + 1,
                f.train.len(),
                f.test.len()
            )));
        }
    }
    Ok(folds)
}

/// An inner split of a fold's training rows for model selection (ridge, early
/// stopping), so that nothing is chosen on the fold's test windows: with training
/// windows from two or more recordings, the last of those recordings is the validation
/// set; within one recording, its last fifth, after a purge of the windows that share
/// a frame with it. Returns `(inner training rows, validation rows)`.
pub fn inner_split(w: &Windows, train: &[usize]) -> (Vec<usize>, Vec<usize>) {
    let mut recordings: Vec<usize> = train.iter().map(|&t| w.recording[t]).collect();
    recordings.sort_unstable();
    recordings.dedup();
    if let [.., _, last] = recordings[..] {
        return train.iter().partition(|&&t| w.recording[t] != last);
    }
    let cut = train.len() - train.len() / 5;
    let first_valid = train.get(cut).map_or(usize::MAX, |&t| w.start[t]);
    let span = w.offsets.last().copied().unwrap_or(0);
    let inner = train[..cut]
        .iter()
        .copied()
        .filter(|&t| w.start[t] + span < first_valid)
        .collect();
    (inner, train[cut..].to_vec())
}

/// The early-stopping split of a fold's training rows: the last `fraction` of every
/// training recording (by start frame) is the validation set, the rest the inner
/// training set after a purge of the windows that share a frame with the recording's
/// first validation window. A recording with fewer than 10 training windows stays whole
/// in the inner training set. Returns `(inner training rows, validation rows)`.
///
/// Every training worm is seen in both parts, so the validation loss after each epoch
/// averages over the worms; one held-out recording ([`inner_split`]) judges by one worm,
/// and on the shipped recordings single worms disagree about when to stop (docs/method.md).
pub fn stopping_split(w: &Windows, train: &[usize], fraction: f64) -> (Vec<usize>, Vec<usize>) {
    let span = w.offsets.last().copied().unwrap_or(0);
    let mut by_recording: Vec<Vec<usize>> = Vec::new();
    for &t in train {
        let r = w.recording[t];
        if by_recording.len() <= r {
            by_recording.resize(r + 1, Vec::new());
        }
        by_recording[r].push(t);
    }
    let (mut inner, mut valid) = (Vec::new(), Vec::new());
    for mut rows in by_recording.into_iter().filter(|r| !r.is_empty()) {
        rows.sort_by_key(|&t| (w.start[t], t));
        let held = (rows.len() as f64 * fraction).floor() as usize;
        if rows.len() < 10 || held == 0 {
            inner.extend(rows);
            continue;
        }
        let cut = rows.len() - held;
        let first_valid = w.start[rows[cut]];
        inner.extend(
            rows[..cut]
                .iter()
                .copied()
                .filter(|&t| w.start[t] + span < first_valid),
        );
        valid.extend_from_slice(&rows[cut..]);
    }
    inner.sort_unstable();
    valid.sort_unstable();
    (inner, valid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    fn windows(lens: &[usize], blocks: usize) -> Windows {
        let mut segs = Vec::new();
        let mut row = 0;
        let mut start = Vec::new();
        let mut rec = Vec::new();
        for (r, &l) in lens.iter().enumerate() {
            segs.push(row..row + l);
            start.extend(0..l);
            rec.extend(std::iter::repeat_n(r, l));
            row += l;
        }
        Windows {
            blocks,
            offsets: (0..blocks).collect(),
            n: 1,
            z: Array2::zeros((row, blocks)),
            mask: Array2::ones((row, blocks)),
            recording: rec,
            start,
            worms: (0..segs.len()).collect(),
            segments: segs,
        }
    }

    #[test]
    fn pieces_of_one_worm_share_a_fold() {
        let mut w = windows(&[10, 10, 10, 10], 2);
        w.worms = vec![0, 0, 1, 1];
        let folds = make_folds(&w, FoldScheme::Recordings(2)).unwrap();
        assert_eq!(folds[0].test, (0..20).collect::<Vec<_>>());
        assert_eq!(folds[1].test, (20..40).collect::<Vec<_>>());
        assert!(
            make_folds(&w, FoldScheme::Recordings(3)).is_err(),
            "two worms, three folds"
        );
    }

    #[test]
    fn recording_folds_partition_and_never_mix() {
        let w = windows(&[20, 20, 20], 2);
        let folds = make_folds(&w, FoldScheme::Recordings(3)).unwrap();
        let mut all: Vec<usize> = folds.iter().flat_map(|f| f.test.clone()).collect();
        all.sort();
        assert_eq!(all, (0..60).collect::<Vec<_>>());
        for f in &folds {
            for &t in &f.train {
                assert!(!f.test.contains(&t));
                assert!(f.test.iter().all(|&u| w.recording[u] != w.recording[t]));
            }
        }
    }

    #[test]
    fn block_folds_purge_windows_sharing_frames() {
        let w = windows(&[50], 3);
        let folds = make_folds(&w, FoldScheme::Blocks(5)).unwrap();
        let f = &folds[2]; // test windows 20..30 cover frames 20..31
        assert_eq!(f.test, (20..30).collect::<Vec<_>>());
        for &t in &f.train {
            // frames t..t+2 must not meet 20..31
            assert!(t + 2 < 20 || t > 31, "window {t} shares a frame");
        }
        assert!(f.train.contains(&17) && f.train.contains(&32));
    }

    /// The early-stopping split takes the last fifth of every training recording, purges
    /// the windows that share a frame with it, and leaves short recordings whole.
    #[test]
    fn stopping_split_holds_out_the_end_of_every_recording() {
        // Three recordings of 50, 50 and 8 windows of 3 frames; the fold trains on all.
        let w = windows(&[50, 50, 8], 3);
        let train: Vec<usize> = (0..108).collect();
        let (inner, valid) = stopping_split(&w, &train, 0.2);
        // Windows 40..50 of each long recording are validation (rows 40..50, 90..100).
        let want: Vec<usize> = (40..50).chain(90..100).collect();
        assert_eq!(valid, want);
        // Windows 38 and 39 (frames 38..40 and 39..41) share frames with window 40.
        let inner_want: Vec<usize> = (0..38).chain(50..88).chain(100..108).collect();
        assert_eq!(inner, inner_want);
        for (&a, &b) in inner.iter().zip(&valid) {
            assert_ne!(a, b);
        }
        // Only rows of the fold are used.
        let part: Vec<usize> = (50..108).collect();
        let (inner, valid) = stopping_split(&w, &part, 0.2);
        assert_eq!(valid, (90..100).collect::<Vec<_>>());
        assert_eq!(inner, (50..88).chain(100..108).collect::<Vec<_>>());
    }
}
