//! What an estimator hands to the shared test stage at one lag: the evidence behind
//! every edge statistic, in one of three forms.
//!
//! - [`MeanEvidence::Series`]: the statistic is the mean `μ̂ = Σ_t Y_t / N` of a
//!   per-window series (SBTG's held-out score products, lagged correlation); tested by
//!   the Newey–West HAC t-test of `E[Y] = 0`, with `effect = effect_sign · μ̂`.
//! - [`MeanEvidence::Influence`]: an estimate `θ̂` with mean-zero influence series
//!   `h_t` such that `θ̂ − θ ≈ Σ_t h_t / N` (conditional Granger); tested by
//!   `t = θ̂ / √(Ω̂_h / N)` with the same HAC machinery.
//! - [`MeanEvidence::ClosedForm`]: a test with a closed-form null distribution
//!   (partial correlation, pairwise Granger, PCMCI); the test stage takes it as it is.
//!
//! All matrices are `[target, source]`.

use ndarray::Array2;

use crate::stats::ProductSeries;

/// Per-edge series of a group of targets: column k of every fold's series is target
/// `targets[k]`; `rows[f]` is the window index of every row of fold f's series.
#[derive(Clone, Debug)]
pub struct SeriesBlock {
    pub targets: Vec<usize>,
    pub folds: Vec<ProductSeries>,
    pub rows: Vec<Vec<usize>>,
}

impl SeriesBlock {
    /// All `n` targets in one block.
    pub fn all(n: usize, folds: Vec<ProductSeries>, rows: Vec<Vec<usize>>) -> Self {
        SeriesBlock {
            targets: (0..n).collect(),
            folds,
            rows,
        }
    }
}

/// One edge's closed-form test: the effect, its test statistic and p-value, its
/// standard error and 95% interval.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EdgeEstimate {
    pub effect: f64,
    pub t: f64,
    pub p: f64,
    pub se: f64,
    pub ci: (f64, f64),
}

impl EdgeEstimate {
    /// An edge that could not be tested.
    pub const UNTESTED: EdgeEstimate = EdgeEstimate {
        effect: f64::NAN,
        t: f64::NAN,
        p: f64::NAN,
        se: f64::NAN,
        ci: (f64::NAN, f64::NAN),
    };

    /// A (partial) correlation `ρ` tested by `t`, `p`, with the Fisher-z interval
    /// `tanh(atanh ρ ± 1.96/√dof_z)` and the delta-method standard error
    /// `(1 − ρ²)/√dof_z` (`dof_z`: the degrees of freedom of Fisher's z).
    pub fn correlation(rho: f64, t: f64, p: f64, dof_z: f64) -> Self {
        if !rho.is_finite() || dof_z.is_nan() || dof_z <= 0.0 {
            return EdgeEstimate::UNTESTED;
        }
        let z = rho.clamp(-1.0 + 1e-15, 1.0 - 1e-15).atanh();
        let h = 1.959963984540054 / dof_z.sqrt();
        EdgeEstimate {
            effect: rho,
            t,
            p,
            se: (1.0 - rho * rho) / dof_z.sqrt(),
            ci: ((z - h).tanh(), (z + h).tanh()),
        }
    }

    /// A regression coefficient `β` with standard error `se` and a Student-t test with
    /// `df` degrees of freedom: `t = β/se`, interval `β ± t_{0.975, df}·se`.
    pub fn coefficient(beta: f64, se: f64, df: f64) -> Self {
        let t = beta / se;
        let q = crate::stats::hac::t_quantile_975(df);
        EdgeEstimate {
            effect: beta,
            t,
            p: crate::stats::hac::two_sided_p(t, df),
            se,
            ci: (beta - q * se, beta + q * se),
        }
    }
}

/// A test with a closed-form null distribution, for every edge at one lag (NaN where
/// the edge could not be tested).
#[derive(Clone, Debug)]
pub struct ClosedFormTest {
    /// The method's signed effect (coefficient or partial correlation).
    pub effect: Array2<f64>,
    pub t: Array2<f64>,
    pub p: Array2<f64>,
    /// Standard error of the effect and its 95% interval.
    pub se: Array2<f64>,
    pub ci_low: Array2<f64>,
    pub ci_high: Array2<f64>,
    /// Windows used for each edge.
    pub count: Array2<f64>,
}

impl ClosedFormTest {
    /// Every edge untested.
    pub fn untested(n: usize) -> Self {
        let f = || Array2::from_elem((n, n), f64::NAN);
        ClosedFormTest {
            effect: f(),
            t: f(),
            p: f(),
            se: f(),
            ci_low: f(),
            ci_high: f(),
            count: Array2::zeros((n, n)),
        }
    }

    /// Stores the test of edge `source i → target j`.
    pub fn set(&mut self, j: usize, i: usize, e: EdgeEstimate, count: f64) {
        self.effect[[j, i]] = e.effect;
        self.t[[j, i]] = e.t;
        self.p[[j, i]] = e.p;
        self.se[[j, i]] = e.se;
        self.ci_low[[j, i]] = e.ci.0;
        self.ci_high[[j, i]] = e.ci.1;
        self.count[[j, i]] = count;
    }

    /// Stores target j's tests of every (source i, lag), listed source-major (all lags
    /// of source 0, then of source 1, …), into the per-lag tests `out`; the diagonal is
    /// skipped.
    pub(crate) fn store_target(out: &mut [Self], j: usize, values: Vec<EdgeEstimate>, count: f64) {
        let lags = out.len();
        for (k, e) in values.into_iter().enumerate() {
            let (i, li) = (k / lags, k % lags);
            if i != j {
                out[li].set(j, i, e, count);
            }
        }
    }
}

/// The evidence behind the mean (Jacobian) test of one lag (module docs).
#[derive(Clone, Debug)]
pub enum MeanEvidence {
    Series {
        blocks: Vec<SeriesBlock>,
        /// Maps `μ̂` to the reported effect (−1 for SBTG: `μ = −I_ε E[J]`).
        effect_sign: f64,
    },
    Influence {
        estimate: Array2<f64>,
        blocks: Vec<SeriesBlock>,
        /// Maps the estimate (and the per-recording values) to the reported effect.
        effect_sign: f64,
    },
    ClosedForm(Box<ClosedFormTest>),
}

/// One candidate of a fold's model grid ([`crate::model::ModelGrid`]).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GridPoint {
    pub hidden: usize,
    pub l1: f64,
    /// DSM loss on the last fifths of the fold's training recordings: after the last
    /// epoch, or with early stopping after the best one.
    pub loss: f64,
    pub chosen: bool,
}

/// Diagnostics of one cross-fitted score model.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FoldReport {
    pub test_recordings: Vec<String>,
    pub train_windows: usize,
    pub test_windows: usize,
    /// Mean DSM training loss of the last epoch.
    pub final_train_loss: Option<f64>,
    /// Held-out DSM loss (fixed noise draw) of the final model.
    pub heldout_loss: f64,
    /// The same loss over the future block's coordinates only: the conditional model
    /// `p(x_{t+1} | past)`, comparable across conditioning depths (`--past`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heldout_future_loss: Option<f64>,
    /// The same held-out loss of the fold's Gaussian window model (closed form, ridge
    /// chosen on the inner split) and of a standard normal score `s(z) = −z`: the
    /// references a trained model has to beat. Absent for saved models.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gaussian_heldout_loss: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub normal_heldout_loss: Option<f64>,
    /// The Gaussian window model's held-out DSM loss of the future block in expectation
    /// over the noise draw ([`crate::model::gaussian::expected_dsm_future_loss`]): free of
    /// the draw's noise, it compares window models of different depths (`--past`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gaussian_expected_future_loss: Option<f64>,
    /// The Gaussian model's ridge and cross-neuron shrinkage
    /// ([`crate::model::gaussian`]), and the inner-split validation loss of every pair
    /// tried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gaussian_ridge: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gaussian_cross_shrinkage: Option<f64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ridge_path: Vec<crate::model::gaussian::RidgePoint>,
    /// With early stopping: the epoch whose parameters were kept (0 = the start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best_epoch: Option<usize>,
    /// With `--grid-hidden`/`--grid-l1`: every candidate's validation loss on the
    /// early-stopping split, the chosen one marked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub model_grid: Vec<GridPoint>,
    /// The model was loaded from a checkpoint, not trained in this run.
    pub loaded_from_checkpoint: bool,
    /// Mean DSM loss of every epoch (written to `loss.csv`, not to the summary).
    #[serde(skip)]
    pub epoch_loss: Vec<f64>,
    /// Inner-split validation loss after every epoch, with early stopping (`loss.csv`).
    #[serde(skip)]
    pub validation_loss: Vec<f64>,
    /// Every test window's future-block DSM terms `(window, Σ residual², observed
    /// coordinates)`, so that the held-out loss of any subset of windows (a behavioural
    /// state's) can be compared between models.
    #[serde(skip)]
    pub heldout_window_terms: Vec<(usize, f64, f64)>,
}

/// Everything an estimator found at one lag, before the shared test stage.
#[derive(Clone, Debug)]
pub struct LagEvidence {
    pub lag: usize,
    /// Windows at this lag.
    pub windows: usize,
    /// Recording index of every window (for the per-recording tests).
    pub window_recording: Vec<usize>,
    /// First frame of every window within its recording; the window spans frames
    /// `start ..= start + window_span` (for the state of a window, [`crate::data::state`]).
    pub window_start: Vec<usize>,
    pub window_span: usize,
    pub mean: MeanEvidence,
    /// Series of the volatility-transfer test (SBTG), in the same FDR family.
    pub volatility: Option<Vec<ProductSeries>>,
    /// Per-fold diagnostics of trained models (empty for methods without training).
    pub folds: Vec<FoldReport>,
    /// Seconds spent training models for this lag.
    pub train_seconds: f64,
    /// Seconds spent on the method's own statistics (a baseline that fits all lags in
    /// one model counts the fit at its first lag).
    pub fit_seconds: f64,
}
