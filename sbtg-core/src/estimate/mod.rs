//! **Estimate layer**: every estimator behind one seam, [`Estimator`], and the test
//! stage they share. Depends on the data, statistics and model layers.
//!
//! An estimator is a validated settings struct (as in linfa) whose [`Estimator::fit`]
//! takes a [`Panel`] and the lags to test and returns the [`LagEvidence`] of each lag:
//! per-window series to be HAC-tested, influence series of an estimate, or a
//! closed-form test ([`evidence`]). The shared [`test_stage`] then runs once on that
//! evidence, and [`crate::results`] puts every test of every lag into one FDR family.
//!
//! | method | settings | statistic (edge `i → j` at lag r) | test |
//! |---|---|---|---|
//! | [`sbtg`] | [`Sbtg`] | held-out cross-block score products `ŝ_{F,j} ŝ_{P,i}` (orthogonalised) | HAC t-test (+ volatility transfer) |
//! | [`lagged_correlation`] | [`LaggedCorrelation`] | `mean_t x_{t+r,j} x_{t,i}` | HAC t-test |
//! | [`partial_correlation`] | [`PartialCorrelation`] | partial correlation given every other coordinate of the lagged design | Fisher z |
//! | [`granger`] | [`Granger`] | VAR(p) coefficient `A_r[j,i]` | HAC (sandwich) t-test |
//! | [`pairwise_granger`] | [`PairwiseGranger`] | the coefficient in the bivariate model of `x_j` on its own and `x_i`'s lags | F(1, dof) test |
//! | [`pcmci`] | [`Pcmci`] | MCI partial correlation given the PC1-selected parents of both ends | partial-correlation t-test |
//!
//! **Adding a method**: write its settings struct and `impl Estimator` in one file,
//! and list it in [`Method`] and [`MethodConfig`] ([`method`], the catalogue).

mod design;
pub mod evidence;
pub mod granger;
pub mod lagged_correlation;
pub mod method;
pub mod pairwise_granger;
pub mod partial_correlation;
pub mod pcmci;
pub mod prewhitened_correlation;
pub mod sbtg;
pub mod states;
pub mod test_stage;

use std::time::Instant;

pub use evidence::{ClosedFormTest, FoldReport, GridPoint, LagEvidence, MeanEvidence, SeriesBlock};
pub use granger::Granger;
pub use lagged_correlation::LaggedCorrelation;
pub use method::{InferConfig, Method, MethodConfig, TestConfig};
pub use pairwise_granger::PairwiseGranger;
pub use partial_correlation::PartialCorrelation;
pub use pcmci::Pcmci;
pub use prewhitened_correlation::PrewhitenedCorrelation;
pub use sbtg::{FoldModel, FoldProblem, LagWindows, ModelStore, Sbtg};
pub use test_stage::{LagTests, RecordingTest, TestMatrices};

use crate::data::{Panel, Windows};
use crate::{Error, Result};

/// One estimator: validated settings that fit a panel at a set of lags.
pub trait Estimator: Sync {
    /// The catalogue entry of this estimator.
    fn method(&self) -> Method;
    /// Checks every setting's range (called once, before any data is touched).
    fn validate(&self) -> Result<()>;
    /// How the windows are built, for `summary.json`.
    fn window_rule(&self) -> String;
    /// Frames one window spans when the largest tested lag is `max_lag`.
    fn window_frames(&self, max_lag: usize) -> usize {
        max_lag + 1
    }
    /// Whether lag 0 (same-frame, undirected edges) can be tested.
    fn tests_same_frame(&self) -> bool {
        false
    }
    /// The evidence of every lag of `lags` (in that order).
    fn fit(&self, panel: &Panel, lags: &[usize], ctx: &FitContext) -> Result<Vec<LagEvidence>>;
}

/// Progress reports of a fit.
#[derive(Clone, Debug)]
pub enum Progress {
    /// Training of the score models of one window span (that test `lags`) is about to
    /// start: total number of epochs over its folds.
    Training {
        lags: Vec<usize>,
        /// Frames − 1 of the windows.
        span: usize,
        folds: usize,
        total_epochs: usize,
    },
    /// One epoch of one fold of one lag finished.
    Epoch {
        lag: usize,
        fold: usize,
        epoch: usize,
        loss: f64,
    },
    /// A fold's score model was loaded from its store instead of trained.
    Resumed {
        lag: usize,
        fold: usize,
        epochs: usize,
    },
    /// A named stage started.
    Stage(&'static str),
}

/// What a fit may report to and where it may keep trained models.
#[derive(Clone, Copy)]
pub struct FitContext<'a> {
    pub progress: &'a (dyn Fn(Progress) + Sync),
    /// Where trained score models are saved, and loaded from when their fingerprint
    /// matches (`sbtg infer --resume`).
    pub models: Option<&'a dyn ModelStore>,
}

impl FitContext<'_> {
    /// No progress reports and no model store.
    pub fn quiet() -> FitContext<'static> {
        FitContext {
            progress: &|_| {},
            models: None,
        }
    }
}

/// Window rule of the baselines that fit one model for all lags.
pub(crate) const JOINT_WINDOW_RULE: &str = "one window [x_t, ..., x_{t+p}] inside each recording for every lag (p = the largest lag); a target's regression uses the windows where it is observed, missing regressors enter as 0";

/// A ridge `λ` must be a finite number ≥ 0.
pub(crate) fn validate_ridge(ridge: f64) -> Result<()> {
    if !(ridge >= 0.0 && ridge.is_finite()) {
        return Err(Error::param(
            "ridge",
            format!("must be a finite number ≥ 0, got {ridge}"),
        ));
    }
    Ok(())
}

/// Evidence of a method that fits one model over all lags: windows of
/// `span · p + 1` blocks (p = the largest lag), one [`MeanEvidence`] per lag from
/// `fit`; the fit's seconds are counted at the first lag.
pub(crate) fn joint_lag_evidence(
    panel: &Panel,
    lags: &[usize],
    span: usize,
    fit: impl FnOnce(&Windows) -> Result<Vec<MeanEvidence>>,
) -> Result<Vec<LagEvidence>> {
    // Lag 0 (same frame) is tested in the last block given at least one past block.
    let p = (*lags.iter().max().expect("validated: lags not empty")).max(1);
    let t0 = Instant::now();
    let windows = Windows::build(panel, span * p + 1)?;
    let evidence = fit(&windows)?;
    let mut seconds = t0.elapsed().as_secs_f64();
    Ok(lags
        .iter()
        .zip(evidence)
        .map(|(&lag, mean)| LagEvidence {
            lag,
            windows: windows.len(),
            window_recording: windows.recording.clone(),
            window_start: windows.start.clone(),
            window_span: windows.span(),
            mean,
            volatility: None,
            folds: Vec::new(),
            train_seconds: 0.0,
            fit_seconds: std::mem::take(&mut seconds),
        })
        .collect())
}
