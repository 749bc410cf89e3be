//! The Gaussian window model in closed form: the quadratic energy `U(z) = ½ zᵀLz`,
//! whose score is `s(z) = −Lz`.
//!
//! **Its DSM optimum.** For windows with second moment `S = E[zzᵀ]` and noise `y = z + σε`,
//! the expected denoising loss of `s(y) = −Ly` is (per coordinate, `d` coordinates)
//!
//! ```text
//! ℓ(L) = [ tr(L S L) + σ² tr(L²) − 2 tr(L) + d/σ² ] / d,
//! ```
//!
//! minimised by `L = (S + σ²I)⁻¹`, the precision of the smoothed data.
//!
//! **Shrinkage.** A window of `L` blocks of `n` neurons has `L²n²` second moments, and
//! a recording at 1–2 Hz gives few effectively independent windows, so `S` is shrunk
//! before it is inverted:
//!
//! ```text
//! Σ(λ, c) = (1 − c)·S + c·T + (σ² + λ)I,     T_ab = S_ab if a and b are the same neuron, else 0,
//! ```
//!
//! a ridge `λ` and a shrinkage `c ∈ [0, 1)` of every covariance between two different
//! neurons towards zero. `T` is the window model of independent neurons, each keeping
//! its own autocovariance across the window's blocks (a Schäfer–Strimmer-type target
//! for time series; `T` is positive semi-definite, being `S`'s neuron-by-neuron block
//! diagonal, so `Σ` is positive definite). The ridge alone (`c = 0`) shrinks each
//! neuron's own autocorrelation as much as the couplings, and the predictions from
//! its own past with them. `(λ, c)` is chosen by the held-out likelihood on validation
//! windows ([`select_shrinkage`]; never by a connectome), by default that of the future
//! block given the past blocks, the conditional the edge tests read
//! ([`ShrinkageCriterion`]), and `L = Σ(λ, c)⁻¹`.
//!
//! **As an energy.** `½ zᵀLz` is the linear-coupling energy with `A_P = L_PP`,
//! `A_F = L_FF`, `W = L_FP` and MLPs whose output is zero; [`gaussian_energy`] builds it,
//! as the `gaussian` coupling's fitted model and as the warm start of the trained
//! energies (training can then only move away from it where the held-out loss improves).
//!
//! **Missing coordinates** are 0 in the standardised windows (their mean), so `S` is the
//! zero-filled second moment `ZᵀZ/N`, the same convention the trained models see
//! (`--missing impute` completes them with a draw first). The held-out likelihood that
//! chooses the shrinkage scores only what each validation window observed, given the
//! window as the model reads it (missing coordinates at their fill value), as the DSM
//! loss leaves missing coordinates out ([`ValidationWindows`]).

use ndarray::{s, Array2, ArrayView2, Axis};

use super::energy::{CouplingParams, EnergyModel};
use crate::stats::linalg::{spd_inverse, trace_of_product, SpdFactor};
use crate::{Error, Result};

/// The ridge grid searched by [`select_shrinkage`] (in units of the standardised
/// variance).
pub const RIDGE_GRID: [f64; 8] = [0.0, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0];

/// The grid of cross-neuron shrinkage `c` searched by [`select_shrinkage`] with
/// [`ShrinkageTarget::IndependentNeurons`].
pub const CROSS_GRID: [f64; 7] = [0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9];

/// What the Gaussian window model is shrunk towards (`--shrinkage`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum ShrinkageTarget {
    /// The ridge only, `c = 0` (`S + (σ² + λ)I`; runs saved before the target existed).
    Identity,
    /// The ridge and a shrinkage `c` of the covariances between different neurons
    /// towards zero, both chosen by the held-out likelihood ([module docs](self)).
    #[default]
    IndependentNeurons,
}

impl ShrinkageTarget {
    /// The target of runs saved before it existed.
    pub fn identity() -> Self {
        ShrinkageTarget::Identity
    }

    pub fn is_identity(&self) -> bool {
        *self == ShrinkageTarget::Identity
    }

    pub fn name(self) -> &'static str {
        match self {
            ShrinkageTarget::Identity => "identity",
            ShrinkageTarget::IndependentNeurons => "independent-neurons",
        }
    }

    /// The cross-neuron shrinkages searched.
    fn cross_grid(self) -> &'static [f64] {
        match self {
            ShrinkageTarget::Identity => &CROSS_GRID[..1],
            ShrinkageTarget::IndependentNeurons => &CROSS_GRID,
        }
    }
}

/// Which held-out likelihood chooses the shrinkage (`--shrinkage-criterion`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum ShrinkageCriterion {
    /// The whole window's likelihood `p(z)` (runs saved before the criterion existed).
    Window,
    /// The likelihood of the future block given the past blocks, `p(x_F | x_P)`
    /// (default): the edge tests read only this conditional (the mixed derivatives
    /// between the future block and a past block, and within the future block), not
    /// the past blocks' own distribution, which the window likelihood also scores.
    #[default]
    Future,
}

impl ShrinkageCriterion {
    /// The criterion of runs saved before it existed.
    pub fn window() -> Self {
        ShrinkageCriterion::Window
    }

    pub fn is_window(&self) -> bool {
        *self == ShrinkageCriterion::Window
    }

    /// What the criterion scores, in words.
    pub fn scored(self) -> &'static str {
        match self {
            ShrinkageCriterion::Window => "the whole window",
            ShrinkageCriterion::Future => "the future frame given the past",
        }
    }
}

/// How much a Gaussian window model is shrunk: the ridge `λ`, the cross-neuron
/// shrinkage `c` and the neurons per block `n` that say which coordinates are the same
/// neuron (coordinate `a` is neuron `a mod n`; [module docs](self)).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Shrinkage {
    pub ridge: f64,
    pub cross: f64,
    pub neurons: usize,
}

impl Shrinkage {
    /// The ridge alone.
    pub fn ridge(ridge: f64) -> Self {
        Shrinkage {
            ridge,
            cross: 0.0,
            neurons: 1,
        }
    }

    /// `(1 − c)·S + c·T`: the covariances between different neurons scaled by `1 − c`
    /// (the ridge is added where the matrix is inverted).
    pub fn shrink(&self, second_moment: &Array2<f64>) -> Array2<f64> {
        let mut s = second_moment.clone();
        if self.cross > 0.0 {
            let keep = 1.0 - self.cross;
            let n = self.neurons.max(1);
            for ((a, b), v) in s.indexed_iter_mut() {
                if a % n != b % n {
                    *v *= keep;
                }
            }
        }
        s
    }
}

/// Zero-filled second moment `ZᵀZ / N` of standardised windows (rows).
pub fn second_moment(z: ArrayView2<f64>) -> Array2<f64> {
    z.t().dot(&z) / (z.nrows().max(1) as f64)
}

/// `L = (S + (σ² + λ)I)⁻¹`, the precision of a quadratic energy fitted to the windows
/// of second moment `S` (already shrunk across neurons, [`Shrinkage::shrink`]); at
/// `λ = 0` and no shrinkage, the DSM optimum.
pub fn window_precision(
    second_moment: &Array2<f64>,
    sigma: f64,
    ridge: f64,
) -> Result<Array2<f64>> {
    spd_inverse(
        second_moment,
        sigma * sigma + ridge,
        "second moment of the training windows",
    )
}

/// Expected DSM loss per coordinate of `s(y) = −Ly` on windows of second moment `s_h`
/// at noise `σ` ([module docs](self)).
pub fn expected_dsm_loss(l: &Array2<f64>, s_h: &Array2<f64>, sigma: f64) -> f64 {
    let d = l.nrows() as f64;
    let ls = l.dot(s_h);
    // tr(L S L) = tr((LS) L); tr(L²) = Σ_ab L_ab² (L symmetric).
    let tr_lsl = trace_of_product(ls.view(), l.view());
    let tr_l2: f64 = l.iter().map(|v| v * v).sum();
    let tr_l: f64 = l.diag().sum();
    (tr_lsl + sigma * sigma * tr_l2 - 2.0 * tr_l + d / (sigma * sigma)) / d
}

/// The held-out DSM loss of the future block of `s(y) = −Ly` on windows `(z, m)`, in
/// expectation over the noise draw instead of one draw of it: with the noise on the
/// observed coordinates, `y = z + σ(ε ⊙ m)`, each observed future coordinate `j` of a
/// window contributes
///
/// ```text
/// E[(−(Ly)_j + ε_j/σ)²] = (Lz)_j² + σ² Σ_k L_jk² m_k − 2 L_jj + 1/σ²,
/// ```
///
/// averaged over the observed future coordinates (as [`crate::model::dsm_loss_future`]
/// averages one draw). At DSM's small `σ` one draw's loss varies by about as much as
/// window models of different depths differ; this one does not, so it compares them
/// (`--past`, docs/method.md).
pub fn expected_dsm_future_loss(
    l: &Array2<f64>,
    z: ArrayView2<f64>,
    m: ArrayView2<f64>,
    n_past: usize,
    sigma: f64,
) -> f64 {
    let lf = l.slice(s![n_past.., ..]);
    let mean = z.dot(&lf.t());
    let l2 = lf.mapv(|v| v * v);
    let noise = m.dot(&l2.t());
    let mf = m.slice(s![.., n_past..]);
    let mut sum = 0.0;
    for ((t, j), &w) in mf.indexed_iter() {
        if w > 0.0 {
            let jj = n_past + j;
            sum += mean[[t, j]].powi(2) + sigma * sigma * noise[[t, j]] - 2.0 * l[[jj, jj]]
                + 1.0 / (sigma * sigma);
        }
    }
    sum / mf.sum().max(1.0)
}

/// The Gaussian window model a trained energy starts from: its precision and the
/// shrinkage chosen on held-out windows (the ridge is kept as a penalty during
/// training; the cross-neuron shrinkage is the start's only, and training moves away
/// from it only as far as early stopping's held-out loss allows).
#[derive(Clone, Debug)]
pub struct GaussianStart {
    pub precision: Array2<f64>,
    pub shrinkage: Shrinkage,
}

impl GaussianStart {
    /// The start fitted on windows `z` with a given shrinkage: the precision of
    /// [`window_precision`] of their shrunk second moment.
    pub fn fit(z: ArrayView2<f64>, sigma: f64, shrinkage: Shrinkage) -> Result<Self> {
        let precision =
            window_precision(&shrinkage.shrink(&second_moment(z)), sigma, shrinkage.ridge)?;
        Ok(GaussianStart {
            precision,
            shrinkage,
        })
    }
}

/// One point of a shrinkage path: the ridge, the cross-neuron shrinkage and the
/// validation loss they reached.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RidgePoint {
    pub ridge: f64,
    /// Absent in runs saved before the cross-neuron shrinkage existed: 0.
    #[serde(default)]
    pub cross: f64,
    pub loss: f64,
}

/// The ridge of [`RIDGE_GRID`] and (for [`ShrinkageTarget::IndependentNeurons`]) the
/// cross-neuron shrinkage of [`CROSS_GRID`] whose Gaussian window model, fitted on
/// `train`, gives the validation windows `valid` (observation mask `valid_mask`) the
/// highest likelihood, with the whole path (per window, the negative log-likelihood up to
/// a constant of its observed coordinates given its missing ones: of the whole window or
/// of its future block given the past blocks, [`ShrinkageCriterion`],
/// [`ValidationWindows`]; `L` includes the DSM noise `σ²`). Ties go to the larger
/// ridge, then to the larger shrinkage. `neurons` is the number of neurons per block
/// (the future block is the last `neurons` coordinates).
///
/// The likelihood, not the DSM loss, chooses: both are proper scoring rules, but at the
/// DSM's small `σ` the loss differences between ridges are a small part of a large,
/// noisy total, and on slowly varying recordings (few effective samples per window
/// dimension) the DSM choice shrinks too little, which leaves the edge tests a second-
/// order bias from the fitted precision's sampling noise.
pub fn select_shrinkage(
    train: ArrayView2<f64>,
    (valid, valid_mask): (ArrayView2<f64>, ArrayView2<f64>),
    sigma: f64,
    (target, criterion): (ShrinkageTarget, ShrinkageCriterion),
    neurons: usize,
) -> Result<(Shrinkage, Vec<RidgePoint>)> {
    if train.nrows() == 0 || valid.nrows() == 0 {
        return Err(Error::param(
            "folds",
            format!(
                "the Gaussian window model's shrinkage is chosen on held-out windows, and this \
                 fold leaves {} training and {} validation windows (its training recordings are \
                 too short to hold any out); use longer recordings or fewer folds (--folds)",
                train.nrows(),
                valid.nrows()
            ),
        ));
    }
    if valid.ncols() != train.ncols() || valid_mask.dim() != valid.dim() {
        return Err(Error::param(
            "windows",
            format!(
                "training windows of {} coordinates, validation windows of {} and a mask of \
                 {:?}: they must have the same coordinates",
                train.ncols(),
                valid.ncols(),
                valid_mask.dim()
            ),
        ));
    }
    let split = MomentSplit {
        train: second_moment(train),
        valid: ValidationWindows::new(valid, valid_mask, neurons),
    };
    select_shrinkage_over(
        std::slice::from_ref(&split),
        sigma,
        (target, criterion),
        neurons,
    )
}

/// The validation windows of one split, as the shrinkage path scores them: zero-filled,
/// with their second moment, and grouped by the coordinates they miss.
///
/// Each window is scored per window, so the cost does not grow with the number of
/// patterns of missing samples (scattered gaps make nearly every window's pattern its
/// own): per point of the path, one product of the windows with the future block's rows
/// of the precision and, per pattern, a factorisation of its missing block only.
#[derive(Clone, Debug)]
pub struct ValidationWindows {
    /// Zero-filled windows (rows) and their second moment `ZᵀZ/N`.
    z: Array2<f64>,
    second_moment: Array2<f64>,
    /// Observation mask of the future block (`1` observed).
    future_mask: Array2<f64>,
    /// The coordinates each pattern of windows misses (ascending) and its windows
    /// (patterns that miss nothing are left out).
    missing: Vec<(Vec<usize>, Vec<usize>)>,
    /// The future block's coordinates (within the block) each pattern of windows misses,
    /// and its windows (patterns that miss none of them are left out).
    future_missing: Vec<(Vec<usize>, Vec<usize>)>,
}

impl ValidationWindows {
    /// Windows `z` (zero where missing) with observation mask `m` (`> 0` = observed);
    /// the future block is the last `neurons` coordinates.
    pub fn new(z: ArrayView2<f64>, m: ArrayView2<f64>, neurons: usize) -> Self {
        let d = z.ncols();
        let p = d.saturating_sub(neurons);
        let missing_of =
            |t: usize| -> Vec<usize> { (0..d).filter(|&a| m[[t, a]] <= 0.0).collect() };
        let missing = group_rows((0..m.nrows()).map(|t| (missing_of(t), t)));
        let future_missing = group_rows((0..m.nrows()).map(|t| {
            let r = missing_of(t);
            (r.iter().filter(|&&a| a >= p).map(|&a| a - p).collect(), t)
        }));
        let future_mask = m
            .slice(s![.., p..])
            .mapv(|v| if v > 0.0 { 1.0 } else { 0.0 });
        ValidationWindows {
            z: z.to_owned(),
            second_moment: second_moment(z),
            future_mask,
            missing,
            future_missing,
        }
    }

    /// Number of windows.
    pub fn len(&self) -> usize {
        self.z.nrows()
    }

    /// Whether there are no windows.
    pub fn is_empty(&self) -> bool {
        self.z.nrows() == 0
    }

    /// The windows' negative log-likelihood per window under the model of covariance
    /// `Σ = S + cI` (`s` the shrunk second moment, `factor` its factorisation, `l` the
    /// precision `L = Σ⁻¹`), scoring only the observed coordinates `o` of each window given
    /// the window as the model reads it (the missing ones `r` at their fill value, 0 or
    /// the draw of `--missing impute`, as the trained models, the DSM loss and the edge
    /// tests see them): `x_o | x_r` has precision `L_oo`, and
    /// `log det L_oo = log det L + log det Σ_rr`. Scoring the zero-filled window instead
    /// adds `−log p(x_r = 0)`, which rewards a small variance for whatever is missing.
    ///
    /// - whole window: `−log p(x_o | x_r) = −log p(z) + log p(z_r)`, that is
    ///   `½[tr(L S_v) + log det Σ − mean(z_rᵀ Σ_rr⁻¹ z_r + log det Σ_rr)]` with `S_v` the
    ///   windows' second moment (`z_r = 0` when zero-filled);
    /// - future block: `−log p(x_Fo | rest) = ½[uᵀ(L_FoFo)⁻¹u − log det L_FoFo]` with
    ///   `u = (Lz)_Fo`; with `C = L_FF⁻¹` (the full future block), `(L_FoFo)⁻¹ =
    ///   C_oo − C_or C_rr⁻¹ C_ro` and `log det L_FoFo = log det L_FF + log det C_rr`, so
    ///   with `u'` = `(Lz)_F` zero at the missing future coordinates and `v = Cu'`,
    ///   `uᵀ(L_FoFo)⁻¹u = u'ᵀv − v_rᵀ C_rr⁻¹ v_r`.
    ///
    /// ∞ if a factorisation fails.
    fn nll(
        &self,
        (s, factor, l): (&Array2<f64>, &SpdFactor, &Array2<f64>),
        c: f64,
        criterion: ShrinkageCriterion,
    ) -> f64 {
        let d = l.nrows();
        let n = self.future_mask.ncols();
        let rows_total = self.len().max(1) as f64;
        match criterion {
            ShrinkageCriterion::Window => {
                let tr = trace_of_product(l.view(), self.second_moment.view());
                let mut missing = 0.0;
                for (r, rows) in &self.missing {
                    let s_rr = s.select(Axis(0), r).select(Axis(1), r);
                    let Some(f) = SpdFactor::new(&s_rr, c) else {
                        return f64::INFINITY;
                    };
                    // Zero-filled windows have `z_r = 0`; imputed ones score `z_r`'s
                    // marginal out of the window's, `½[z_rᵀ Σ_rr⁻¹ z_r + log det Σ_rr]`.
                    let z_r = self.z.select(Axis(0), rows).select(Axis(1), r);
                    let quad: f64 = if z_r.iter().any(|&v| v != 0.0) {
                        let w = f.inverse();
                        z_r.outer_iter().map(|x| x.dot(&w.dot(&x))).sum()
                    } else {
                        0.0
                    };
                    missing += (quad + rows.len() as f64 * f.log_det()) / rows_total;
                }
                0.5 * (tr + factor.log_det() - missing)
            }
            ShrinkageCriterion::Future => {
                if n == 0 || self.is_empty() {
                    return 0.0;
                }
                let p = d - n;
                let Some(future) = SpdFactor::new(&l.slice(s![p.., p..]).to_owned(), 0.0) else {
                    return f64::INFINITY;
                };
                let cf = future.inverse();
                let u = self.z.dot(&l.slice(s![p.., ..]).t()) * &self.future_mask;
                let v = u.dot(&cf);
                let mut sum = (&u * &v).sum() - self.len() as f64 * future.log_det();
                for (r, rows) in &self.future_missing {
                    let c_rr = cf.select(Axis(0), r).select(Axis(1), r);
                    let Some(f) = SpdFactor::new(&c_rr, 0.0) else {
                        return f64::INFINITY;
                    };
                    let v_r = v.select(Axis(0), rows).select(Axis(1), r);
                    let w = f.inverse();
                    let quad: f64 = v_r.outer_iter().map(|x| x.dot(&w.dot(&x))).sum();
                    sum -= quad + rows.len() as f64 * f.log_det();
                }
                0.5 * sum / self.len() as f64
            }
        }
    }
}

/// Rows grouped by their key, in the order each key first occurs; rows whose key is
/// empty (nothing missing) are left out.
fn group_rows(keyed: impl Iterator<Item = (Vec<usize>, usize)>) -> Vec<(Vec<usize>, Vec<usize>)> {
    let mut groups: Vec<(Vec<usize>, Vec<usize>)> = Vec::new();
    let mut index: std::collections::HashMap<Vec<usize>, usize> = Default::default();
    for (key, row) in keyed.filter(|(key, _)| !key.is_empty()) {
        let k = *index.entry(key.clone()).or_insert_with(|| {
            groups.push((key, Vec::new()));
            groups.len() - 1
        });
        groups[k].1.push(row);
    }
    groups
}

/// The second moment of the windows one validation split fits (zero-filled, as the model
/// is fitted) and the windows it scores.
#[derive(Clone, Debug)]
pub struct MomentSplit {
    pub train: Array2<f64>,
    pub valid: ValidationWindows,
}

/// Leave-one-group-out splits of windows `z` (observation mask `m`, `neurons` per block)
/// whose rows belong to `group[t]` (worms): each group in turn is scored by a model of
/// the others. Groups of no window are skipped; fewer than two groups give no split.
pub fn leave_one_group_out(
    z: ArrayView2<f64>,
    m: ArrayView2<f64>,
    group: &[usize],
    neurons: usize,
) -> Vec<MomentSplit> {
    let groups = group.iter().copied().max().map_or(0, |g| g + 1);
    let d = z.ncols();
    let mut sums = vec![Array2::<f64>::zeros((d, d)); groups];
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); groups];
    for (t, &g) in group.iter().enumerate() {
        members[g].push(t);
    }
    for (sum, rows) in sums.iter_mut().zip(&members) {
        if !rows.is_empty() {
            let zg = z.select(Axis(0), rows);
            *sum = zg.t().dot(&zg);
        }
    }
    let total: Array2<f64> = sums.iter().fold(Array2::zeros((d, d)), |a, s| a + s);
    let n: usize = members.iter().map(Vec::len).sum();
    if members.iter().filter(|r| !r.is_empty()).count() < 2 {
        return Vec::new();
    }
    (0..groups)
        .filter(|&g| !members[g].is_empty())
        .map(|g| MomentSplit {
            train: (&total - &sums[g]) / (n - members[g].len()) as f64,
            valid: ValidationWindows::new(
                z.select(Axis(0), &members[g]).view(),
                m.select(Axis(0), &members[g]).view(),
                neurons,
            ),
        })
        .collect()
}

/// [`select_shrinkage`] over several validation splits: the loss of each shrinkage is
/// the mean over the splits of the validation windows' negative log-likelihood per
/// window (each split weighted equally, so each held-out worm counts once).
pub fn select_shrinkage_over(
    splits: &[MomentSplit],
    sigma: f64,
    (target, criterion): (ShrinkageTarget, ShrinkageCriterion),
    neurons: usize,
) -> Result<(Shrinkage, Vec<RidgePoint>)> {
    let crosses = target.cross_grid();
    let mut path: Vec<RidgePoint> = RIDGE_GRID
        .iter()
        .flat_map(|&ridge| {
            crosses.iter().map(move |&cross| RidgePoint {
                ridge,
                cross,
                loss: 0.0,
            })
        })
        .collect();
    if splits.is_empty() {
        return Err(Error::param(
            "folds",
            "the Gaussian window model's shrinkage needs at least one validation split",
        ));
    }
    if neurons == 0 || splits.iter().any(|s| s.train.nrows() % neurons != 0) {
        return Err(Error::param(
            "neurons",
            format!("{neurons} neurons per block do not divide the window"),
        ));
    }
    for split in splits {
        let shrunk: Vec<Array2<f64>> = crosses
            .iter()
            .map(|&cross| {
                Shrinkage {
                    ridge: 0.0,
                    cross,
                    neurons,
                }
                .shrink(&split.train)
            })
            .collect();
        for (k, p) in path.iter_mut().enumerate() {
            let s = &shrunk[k % crosses.len()];
            let c = sigma * sigma + p.ridge;
            let nll = match SpdFactor::new(s, c) {
                None => f64::INFINITY,
                Some(factor) => {
                    let l = factor.inverse();
                    split.valid.nll((s, &factor, &l), c, criterion)
                }
            };
            p.loss += nll / splits.len() as f64;
        }
    }
    let best =
        path.iter()
            .copied()
            .filter(|p| p.loss.is_finite())
            .fold(None::<RidgePoint>, |best, p| match best {
                Some(b) if b.loss < p.loss => Some(b),
                _ => Some(p),
            });
    let Some(best) = best else {
        return Err(Error::param(
            "windows",
            "no shrinkage of the Gaussian window model gives the validation windows a finite \
             likelihood (non-finite values in the windows, or far more coordinates than \
             windows); check the recordings for infinities and use more frames",
        ));
    };
    Ok((
        Shrinkage {
            ridge: best.ridge,
            cross: best.cross,
            neurons,
        },
        path,
    ))
}

/// The linear-coupling energy equal to `½ zᵀLz` (`L` over `[x_P, x_F]`), with the MLPs
/// of `template` kept but their output layers set to zero.
pub fn gaussian_energy(l: &Array2<f64>, template: &EnergyModel) -> EnergyModel {
    let np = template.n_past;
    let mut m = template.clone();
    m.past.a = l.slice(s![..np, ..np]).to_owned();
    m.future.a = l.slice(s![np.., np..]).to_owned();
    m.coupling = CouplingParams::Linear {
        w: l.slice(s![np.., ..np]).to_owned(),
    };
    for g in [&mut m.past, &mut m.future] {
        let last = g.mlp.weights.len() - 1;
        g.mlp.weights[last].fill(0.0);
        g.mlp.biases[last].fill(0.0);
    }
    m
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::energy::{Coupling, EnergyModel};
    use crate::rng::stream;
    use rand_distr::{Distribution, StandardNormal};

    /// Gaussian windows `z = C ξ` with a known covariance `C Cᵀ`.
    pub(crate) fn gaussian_windows(
        n_rows: usize,
        d: usize,
        seed: u64,
    ) -> (Array2<f64>, Array2<f64>) {
        let mut rng = stream(seed, 1);
        let c = Array2::from_shape_fn((d, d), |(a, b)| {
            if a == b {
                1.0
            } else if a == b + 2 {
                0.6
            } else {
                0.0
            }
        });
        let xi = Array2::from_shape_fn((n_rows, d), |_| StandardNormal.sample(&mut rng));
        (xi.dot(&c.t()), c.dot(&c.t()))
    }

    /// The Gaussian window model of 6-coordinate windows `z` (3 past, 3 future) at noise
    /// `sigma` with ridge 0.1: its precision `L` and the energy `½ zᵀLz`.
    fn gaussian_model(z: &Array2<f64>, sigma: f64) -> (Array2<f64>, EnergyModel) {
        let l = window_precision(&second_moment(z.view()), sigma, 0.1).unwrap();
        let template = EnergyModel::init(3, 3, Coupling::Linear, 8, 2, &mut stream(1, 1));
        let m = gaussian_energy(&l, &template);
        (l, m)
    }

    #[test]
    fn expected_loss_matches_a_monte_carlo_dsm_loss_and_is_minimal_at_the_closed_form() {
        let (z, _) = gaussian_windows(4000, 6, 2);
        let sigma = 0.3;
        let s = second_moment(z.view());
        let l = window_precision(&s, sigma, 0.0).unwrap();
        // Monte Carlo DSM loss on the same windows, 50 noise draws each.
        let mut rng = stream(9, 2);
        let (mut sum, mut count) = (0.0, 0.0);
        for _ in 0..50 {
            let eps = Array2::from_shape_fn(z.dim(), |_| {
                let e: f64 = StandardNormal.sample(&mut rng);
                e
            });
            let y = &z + &(&eps * sigma);
            let r = -y.dot(&l) + &eps / sigma;
            sum += r.iter().map(|v| v * v).sum::<f64>();
            count += r.len() as f64;
        }
        let mc = sum / count;
        let exact = expected_dsm_loss(&l, &s, sigma);
        assert!((mc - exact).abs() < 0.01 * exact, "mc {mc} exact {exact}");
        // Any perturbation of the closed form raises the loss on its own data.
        for (a, b, delta) in [(0, 0, 0.05), (1, 3, 0.05), (2, 5, -0.05)] {
            let mut p = l.clone();
            p[[a, b]] += delta;
            p[[b, a]] = p[[a, b]];
            assert!(expected_dsm_loss(&p, &s, sigma) > exact);
        }
    }

    /// The future-block loss in expectation over the noise is the mean of the one-draw
    /// loss over draws: 400 draws of `dsm_loss_future` on the Gaussian energy average to
    /// it within 0.5%, with missing coordinates in the past and future blocks.
    #[test]
    fn expected_future_loss_is_the_mean_of_the_one_draw_loss() {
        use crate::model::dsm_loss_future;
        let (mut z, _) = gaussian_windows(300, 6, 31);
        let (l, m) = gaussian_model(&z, 0.3);
        let mut mask = Array2::<f64>::ones(z.dim());
        for t in 0..60 {
            mask[[t, 4]] = 0.0;
            mask[[t + 100, 1]] = 0.0;
            z[[t, 4]] = 0.0;
            z[[t + 100, 1]] = 0.0;
        }
        let exact = expected_dsm_future_loss(&l, z.view(), mask.view(), 3, 0.3);
        let draws = 400;
        let mc: f64 = (0..draws)
            .map(|k| dsm_loss_future(&m, z.view(), mask.view(), 0.3, k as u64))
            .sum::<f64>()
            / draws as f64;
        assert!((mc - exact).abs() < 0.005 * exact, "mc {mc} exact {exact}");
    }

    #[test]
    fn the_gaussian_energy_scores_minus_l_z_and_its_same_frame_curvature_is_l_ff() {
        let (z, _) = gaussian_windows(200, 6, 3);
        let (l, m) = gaussian_model(&z, 0.1);
        let score = m.score(z.view());
        let expect = -z.dot(&l);
        let err = (&score - &expect)
            .iter()
            .fold(0.0f64, |a, v| a.max(v.abs()));
        assert!(err < 1e-12, "{err}");
        // Its same-frame curvature is the future block of L: the innovations' precision.
        let same = m.same_frame_hessian_mean(z.view());
        let err = (&same - &l.slice(s![3.., 3..]))
            .iter()
            .fold(0.0f64, |a, v| a.max(v.abs()));
        assert!(err < 1e-12, "{err}");
    }

    /// The innovation view of the same frame against its float64 reference: for a
    /// Gaussian window, `H̄⁻¹ ŝ_F` is minus the residual of the least-squares regression
    /// of the future block on the past, `x_F − Σ_FP Σ_PP⁻¹ x_P` (`Σ = L⁻¹`, derived here
    /// from the covariance, not the precision), zero where a future neuron is missing,
    /// scaled to unit root mean square; the tested series is `−ũ_j ũ_i`.
    #[test]
    fn the_same_frame_innovations_of_a_gaussian_window_are_its_regression_residuals() {
        use crate::stats::{EdgeStatistic, HeldOutScores};
        let (z, _) = gaussian_windows(300, 6, 8);
        let (l, m) = gaussian_model(&z, 0.1);
        // Neuron 1 missing from the future block of the first 40 windows, neuron 2 from
        // the past block of windows 100..140 (at its fill value 0, as the panel gives it).
        let mut mask = Array2::<f64>::ones(z.dim());
        let mut z = z;
        for t in 0..40 {
            mask[[t, 4]] = 0.0;
            z[[t, 4]] = 0.0;
        }
        for t in 100..140 {
            mask[[t, 2]] = 0.0;
            z[[t, 2]] = 0.0;
        }
        let raw = m.score(z.view());
        let held = HeldOutScores {
            scores: &raw * &mask,
            mask: mask.clone(),
            hessian: Vec::new(),
            segments: std::iter::once(0..z.nrows()).collect(),
            source: 0..3,
            future: 3..6,
            future_scale: None,
            innovations: false,
        };
        let view = held
            .same_frame_innovations(
                &raw.slice(s![.., 3..]).to_owned(),
                &m.same_frame_hessian_mean(z.view()),
            )
            .unwrap();
        let cov = spd_inverse(&l, 0.0, "L").unwrap();
        let beta = spd_inverse(&cov.slice(s![..3, ..3]).to_owned(), 0.0, "Σ_PP")
            .unwrap()
            .dot(&cov.slice(s![..3, 3..]));
        let resid =
            (&z.slice(s![.., 3..]) - &z.slice(s![.., ..3]).dot(&beta)) * mask.slice(s![.., 3..]);
        for j in 0..3 {
            let col = resid.column(j);
            let rms = (col.iter().map(|v| v * v).sum::<f64>() / mask.column(3 + j).sum()).sqrt();
            for t in 0..z.nrows() {
                let expect = -col[t] / rms;
                let got = view.scores[[t, 3 + j]];
                // 1e-8: the inverse of H̄ carries a ridge of 1e-9 of its mean diagonal.
                assert!(
                    (got - expect).abs() < 1e-8,
                    "t {t} neuron {j}: {got} vs {expect}"
                );
            }
        }
        let series = view.mean_series(EdgeStatistic::Product);
        let u = view.scores.slice(s![.., 3..]).to_owned();
        for t in [0, 50, 120] {
            let term = &series.terms[0];
            for (j, i) in [(0, 1), (1, 2), (2, 0)] {
                let got = term.target[[t, j]] * term.source[[t, i]];
                assert!((got + u[[t, j]] * u[[t, i]]).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn ridge_is_chosen_by_held_out_loss_and_shrinks_with_few_windows() {
        // Plenty of data: little shrinkage. Few windows of many dimensions: more.
        let (big, _) = gaussian_windows(8000, 6, 4);
        let (valid, _) = gaussian_windows(4000, 6, 5);
        let select = |z: &Array2<f64>| {
            select_shrinkage(
                z.view(),
                (valid.view(), all_observed(&valid).view()),
                0.1,
                (ShrinkageTarget::Identity, ShrinkageCriterion::Window),
                3,
            )
            .unwrap()
        };
        let (big_fit, path) = select(&big);
        assert_eq!(path.len(), RIDGE_GRID.len());
        assert!(path.iter().all(|p| p.cross == 0.0));
        assert_eq!(big_fit.cross, 0.0);
        let best = path.iter().map(|p| p.loss).fold(f64::INFINITY, f64::min);
        assert_eq!(
            path.iter().find(|p| p.ridge == big_fit.ridge).unwrap().loss,
            best
        );
        assert!(big_fit.ridge <= 0.03, "{}", big_fit.ridge);
        let (small, _) = gaussian_windows(12, 6, 6);
        let (small_fit, _) = select(&small);
        assert!(
            small_fit.ridge > big_fit.ridge,
            "{} vs {}",
            small_fit.ridge,
            big_fit.ridge
        );
    }

    /// `(1 − c)S + cT` by hand: with 2 neurons per block, coordinates 0 and 2 are
    /// neuron 0, 1 and 3 neuron 1; entries between different neurons are scaled by
    /// `1 − c`, the rest kept.
    #[test]
    fn cross_neuron_shrinkage_scales_only_the_covariances_of_different_neurons() {
        let s = Array2::from_shape_fn((4, 4), |(a, b)| 1.0 + (a * 4 + b) as f64);
        let shrunk = Shrinkage {
            ridge: 0.0,
            cross: 0.25,
            neurons: 2,
        }
        .shrink(&s);
        for a in 0..4 {
            for b in 0..4 {
                let expect = if a % 2 == b % 2 {
                    s[[a, b]]
                } else {
                    0.75 * s[[a, b]]
                };
                assert_eq!(shrunk[[a, b]], expect, "({a}, {b})");
            }
        }
        assert_eq!(shrunk[[0, 2]], 3.0);
        assert_eq!(shrunk[[0, 1]], 1.5);
        assert_eq!(Shrinkage::ridge(0.1).shrink(&s), s);
    }

    fn all_observed(z: &Array2<f64>) -> Array2<f64> {
        Array2::ones(z.dim())
    }

    /// Each leave-one-worm-out split's moments are those of the other worms' windows
    /// and of the held-out worm's, computed directly; a worm of no window gives no
    /// split, and one worm gives none at all.
    #[test]
    fn leave_one_group_out_moments_are_those_of_the_other_groups() {
        let (z, _) = gaussian_windows(50, 4, 21);
        let group: Vec<usize> = (0..50).map(|t| if t < 20 { 0 } else { 2 }).collect();
        let splits = leave_one_group_out(z.view(), all_observed(&z).view(), &group, 2);
        assert_eq!(splits.len(), 2);
        let rows = |f: &dyn Fn(usize) -> bool| {
            let r: Vec<usize> = (0..50).filter(|&t| f(t)).collect();
            second_moment(z.select(ndarray::Axis(0), &r).view())
        };
        let close =
            |a: &Array2<f64>, b: &Array2<f64>| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-12);
        assert!(close(&splits[0].train, &rows(&|t| t >= 20)));
        assert!(close(&splits[1].train, &rows(&|t| t < 20)));
        for (split, held, windows) in [
            (&splits[0], rows(&|t| t < 20), 20),
            (&splits[1], rows(&|t| t >= 20), 30),
        ] {
            assert_eq!(split.valid.len(), windows);
            assert!(split.valid.missing.is_empty() && split.valid.future_missing.is_empty());
            assert!(close(&split.valid.second_moment, &held));
        }
        assert!(leave_one_group_out(z.view(), all_observed(&z).view(), &[1; 50], 2).is_empty());
        // Over several splits the loss is their unweighted mean (each worm counts once,
        // whatever its number of windows).
        let search = (
            ShrinkageTarget::IndependentNeurons,
            ShrinkageCriterion::Future,
        );
        let first = select_shrinkage_over(&splits[..1], 0.1, search, 2)
            .unwrap()
            .1;
        let second = select_shrinkage_over(&splits[1..], 0.1, search, 2)
            .unwrap()
            .1;
        let both = select_shrinkage_over(&splits, 0.1, search, 2).unwrap().1;
        for ((a, b), m) in first.iter().zip(&second).zip(&both) {
            let want = 0.5 * (a.loss + b.loss);
            assert!((m.loss - want).abs() < 1e-12 * want.abs().max(1.0), "{m:?}");
        }
    }

    /// A validation split with no windows cannot choose a shrinkage: an error that names
    /// the fix, not the least-shrunk model (an empty second moment is best fitted by the
    /// least shrinkage).
    #[test]
    fn an_empty_validation_split_is_an_error() {
        let (z, _) = gaussian_windows(50, 4, 22);
        let empty = Array2::<f64>::zeros((0, 4));
        let err = select_shrinkage(
            z.view(),
            (empty.view(), empty.view()),
            0.1,
            (
                ShrinkageTarget::IndependentNeurons,
                ShrinkageCriterion::Future,
            ),
            2,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("0 validation windows") && err.contains("--folds"),
            "{err}"
        );
        assert!(select_shrinkage_over(
            &[],
            0.1,
            (ShrinkageTarget::Identity, ShrinkageCriterion::Window),
            2
        )
        .is_err());
    }

    /// Validation windows are scored on what they observed, window by window, against a
    /// float64 reference through the covariance: each window's observed coordinates `o`
    /// given the missing ones `r` at their fill value `z_r` are
    /// `N(Σ_or Σ_rr⁻¹ z_r, Σ_oo − Σ_or Σ_rr⁻¹ Σ_ro)`; the future block's loss is that of
    /// the observed window less that of its observed past (the past part of the same
    /// Gaussian). Zero-filled (`z_r = 0`, the zeros not scored: the loss is the
    /// zero-filled windows' less `−log p(x_r = 0)`) and imputed (`z_r` a draw). Windows
    /// miss a future coordinate, a past one, both, or a whole block's.
    #[test]
    fn validation_windows_are_scored_on_their_observed_coordinates() {
        let (train, _) = gaussian_windows(400, 6, 41);
        let (observed, _) = gaussian_windows(90, 6, 42);
        let (draws, _) = gaussian_windows(90, 6, 43);
        let mut mask = Array2::<f64>::ones(observed.dim());
        for (rows, coords) in [
            (0..20, vec![4]),
            (20..35, vec![1]),
            (35..45, vec![1, 5]),
            (45..50, vec![3, 4, 5]),
        ] {
            for t in rows {
                for &a in &coords {
                    mask[[t, a]] = 0.0;
                }
            }
        }
        let s_train = second_moment(train.view());
        let c = 0.01;
        let sigma = &s_train + &(Array2::<f64>::eye(6) * c);
        let factor = SpdFactor::new(&s_train, c).unwrap();
        let l = factor.inverse();
        // `½[xᵀ C⁻¹ x + log det C]` of one centred window under `N(0, C)`.
        let nll = |cov: &Array2<f64>, x: &ndarray::Array1<f64>| {
            if x.is_empty() {
                return 0.0;
            }
            let f = SpdFactor::new(cov, 0.0).unwrap();
            0.5 * (x.dot(&f.inverse().dot(x)) + f.log_det())
        };
        let block =
            |m: &Array2<f64>, a: &[usize], b: &[usize]| m.select(Axis(0), a).select(Axis(1), b);
        for imputed in [false, true] {
            // Missing coordinates at 0, or at a draw.
            let valid = Array2::from_shape_fn(observed.dim(), |(t, a)| {
                if mask[[t, a]] > 0.0 {
                    observed[[t, a]]
                } else if imputed {
                    draws[[t, a]]
                } else {
                    0.0
                }
            });
            let windows = ValidationWindows::new(valid.view(), mask.view(), 3);
            assert_eq!(windows.missing.len(), 4);
            let future: Vec<(Vec<usize>, usize)> = windows
                .future_missing
                .iter()
                .map(|(r, rows)| (r.clone(), rows.len()))
                .collect();
            assert_eq!(
                future,
                vec![(vec![1], 20), (vec![2], 10), (vec![0, 1, 2], 5)]
            );
            let (mut want_window, mut want_future, mut zeros) = (0.0, 0.0, 0.0);
            for t in 0..valid.nrows() {
                let o: Vec<usize> = (0..6).filter(|&a| mask[[t, a]] > 0.0).collect();
                let r: Vec<usize> = (0..6).filter(|&a| mask[[t, a]] <= 0.0).collect();
                let x = valid.row(t).select(Axis(0), &o);
                let (mean, cov) = if r.is_empty() {
                    (ndarray::Array1::zeros(6), sigma.clone())
                } else {
                    let s_ro = block(&sigma, &r, &o);
                    let s_rr_inv = spd_inverse(&block(&sigma, &r, &r), 0.0, "Σ_rr").unwrap();
                    zeros += 0.5
                        * SpdFactor::new(&block(&sigma, &r, &r), 0.0)
                            .unwrap()
                            .log_det();
                    let z_r = valid.row(t).select(Axis(0), &r);
                    (
                        s_ro.t().dot(&s_rr_inv.dot(&z_r)),
                        block(&sigma, &o, &o) - s_ro.t().dot(&s_rr_inv).dot(&s_ro),
                    )
                };
                let centred = &x - &mean;
                let whole = nll(&cov, &centred);
                let past: Vec<usize> = (0..o.len()).filter(|&k| o[k] < 3).collect();
                want_window += whole;
                want_future +=
                    whole - nll(&block(&cov, &past, &past), &centred.select(Axis(0), &past));
            }
            let n = valid.nrows() as f64;
            let got_window = windows.nll((&s_train, &factor, &l), c, ShrinkageCriterion::Window);
            let got_future = windows.nll((&s_train, &factor, &l), c, ShrinkageCriterion::Future);
            assert!(
                (got_window - want_window / n).abs() < 1e-9,
                "imputed {imputed}: {got_window} vs {}",
                want_window / n
            );
            assert!(
                (got_future - want_future / n).abs() < 1e-9,
                "imputed {imputed}: {got_future} vs {}",
                want_future / n
            );
            if !imputed {
                // The zero-filled windows' loss scores the zeros too: ½ log det Σ_rr more.
                let zero_filled = 0.5
                    * (trace_of_product(l.view(), second_moment(valid.view()).view())
                        + factor.log_det());
                assert!((zero_filled - (got_window + zeros / n)).abs() < 1e-9);
            }
        }
    }

    /// Windows of `blocks` blocks of `n` neurons, each neuron an AR(1) with coefficient
    /// 0.9, and neuron 0 driving neuron 1 at lag 1 with weight `coupling`.
    fn ar_windows(frames: usize, n: usize, coupling: f64, seed: u64) -> Array2<f64> {
        let blocks = 3;
        let mut rng = stream(seed, 3);
        let mut x = Array2::<f64>::zeros((frames, n));
        for t in 1..frames {
            for i in 0..n {
                let e: f64 = StandardNormal.sample(&mut rng);
                let drive = if i == 1 {
                    coupling * x[[t - 1, 0]]
                } else {
                    0.0
                };
                x[[t, i]] = 0.9 * x[[t - 1, i]] + drive + 0.44 * e;
            }
        }
        let rows = frames - blocks + 1;
        Array2::from_shape_fn((rows, blocks * n), |(t, c)| x[[t + c / n, c % n]])
    }

    /// The held-out likelihood shrinks the covariances between independent neurons
    /// (short recordings of many neurons, whose sample cross-covariances are noise), and
    /// keeps them when long recordings carry a strong coupling; the chosen point is the
    /// path's minimum.
    #[test]
    fn cross_neuron_shrinkage_is_chosen_by_held_out_loss() {
        for criterion in [ShrinkageCriterion::Window, ShrinkageCriterion::Future] {
            cross_neuron_shrinkage_is_chosen_by(criterion);
        }
    }

    fn cross_neuron_shrinkage_is_chosen_by(criterion: ShrinkageCriterion) {
        let pick = |frames, coupling, seed| {
            let train = ar_windows(frames, 12, coupling, seed);
            let valid = ar_windows(frames, 12, coupling, seed + 100);
            let (fit, path) = select_shrinkage(
                train.view(),
                (valid.view(), all_observed(&valid).view()),
                0.1,
                (ShrinkageTarget::IndependentNeurons, criterion),
                12,
            )
            .unwrap();
            assert_eq!(path.len(), RIDGE_GRID.len() * CROSS_GRID.len());
            // The chosen point is the path's minimum.
            let best = path.iter().map(|p| p.loss).fold(f64::INFINITY, f64::min);
            let chosen = path
                .iter()
                .find(|p| p.ridge == fit.ridge && p.cross == fit.cross)
                .unwrap();
            assert_eq!(chosen.loss, best);
            fit
        };
        let independent = pick(150, 0.0, 11);
        assert!(independent.cross >= 0.5, "{criterion:?}: {independent:?}");
        let coupled = pick(20_000, 0.5, 12);
        assert!(coupled.cross <= 0.1, "{criterion:?}: {coupled:?}");
        assert_eq!(coupled.neurons, 12);
    }

    /// The validation loss of windows that observe every coordinate, with the model
    /// `L = (S_train + cI)⁻¹`.
    fn complete_nll(
        s_train: &Array2<f64>,
        s_valid: &Array2<f64>,
        c: f64,
        criterion: ShrinkageCriterion,
        neurons: usize,
    ) -> f64 {
        // Windows with the second moment `s_valid`: its symmetric square root's rows,
        // scaled so that `ZᵀZ/N = s_valid`.
        let d = s_valid.nrows();
        let (vals, vecs) = {
            let m = nalgebra::DMatrix::from_fn(d, d, |a, b| s_valid[[a, b]]);
            let e = m.symmetric_eigen();
            (e.eigenvalues, e.eigenvectors)
        };
        let z = Array2::from_shape_fn((d, d), |(t, a)| {
            (0..d)
                .map(|k| vecs[(a, k)] * vals[k].max(0.0).sqrt() * vecs[(t, k)])
                .sum::<f64>()
                * (d as f64).sqrt()
        });
        let windows = ValidationWindows::new(z.view(), Array2::ones((d, d)).view(), neurons);
        let f = SpdFactor::new(s_train, c).unwrap();
        windows.nll((s_train, &f, &f.inverse()), c, criterion)
    }

    /// `−log p(x_F | x_P) = −log p(z) + log p(x_P)`: the future block's loss is the
    /// window's minus that of the past blocks' marginal, whose covariance is the past
    /// block of the window's (`S_PP + cI`), for every shrinkage of a path; and with
    /// independent windows the future criterion scores only the future block's fit.
    #[test]
    fn the_future_criterion_is_the_window_likelihood_less_the_past_blocks() {
        let train = ar_windows(400, 4, 0.4, 31);
        let valid = ar_windows(300, 4, 0.4, 32);
        let (st, sv) = (second_moment(train.view()), second_moment(valid.view()));
        let p = 8; // 3 blocks of 4 neurons: the first 8 coordinates are the past
        for cross in [0.0, 0.3, 0.9] {
            let shrunk = Shrinkage {
                ridge: 0.0,
                cross,
                neurons: 4,
            }
            .shrink(&st);
            for c in [0.01, 0.1, 1.0] {
                let past = |m: &Array2<f64>| m.slice(s![..p, ..p]).to_owned();
                let want = complete_nll(&shrunk, &sv, c, ShrinkageCriterion::Window, 4)
                    - complete_nll(&past(&shrunk), &past(&sv), c, ShrinkageCriterion::Window, 4);
                let got = complete_nll(&shrunk, &sv, c, ShrinkageCriterion::Future, 4);
                assert!(
                    (got - want).abs() < 1e-10 * want.abs().max(1.0),
                    "{got} vs {want}"
                );
            }
        }
        // One coordinate per block and a diagonal model: the conditional is the future
        // coordinate's own Gaussian, ½[S_FF/(s + c) + log(s + c)].
        let diag = Array2::from_diag(&ndarray::array![2.0, 3.0]);
        let sv = ndarray::array![[1.0, 0.5], [0.5, 4.0]];
        let got = complete_nll(&diag, &sv, 0.5, ShrinkageCriterion::Future, 1);
        let want = 0.5 * (4.0 / 3.5 + 3.5f64.ln());
        assert!((got - want).abs() < 1e-14, "{got} vs {want}");
    }
}
