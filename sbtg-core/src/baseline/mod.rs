//! The methods people run today, on the same input (recordings, windows inside each
//! recording, per-recording z-scored traces) and with the same output table and
//! `[target, source]` orientation as SBTG; [`crate::infer`] runs them with
//! `sbtg infer --method …` and applies the same BH/BY step to their p-values.
//!
//! | method | statistic (edge `i → j` at lag r) | test |
//! |---|---|---|
//! | [`correlation`] | `mean_t x_{t+r,j} x_{t,i}` | HAC t-test |
//! | [`partial`] | partial correlation of `x_{t+p,j}` and `x_{t+p−r,i}` given every other coordinate of the lagged design (ridge precision matrix) | Fisher z |
//! | [`granger`] | VAR(p) coefficient `A_r[j,i]` (least squares, ridge option) | HAC (sandwich) t-test |
//! | [`pairwise_granger`] | the same coefficient in the bivariate model of `x_j` on its own and `x_i`'s lags | F(1, dof) test |
//! | [`pcmci`] | MCI partial correlation given the PC1-selected parents of both ends | partial-correlation t-test |
//!
//! p = the largest tested lag. The regression baselines share [`design`].

pub mod correlation;
pub mod design;
pub mod granger;
pub mod pairwise_granger;
pub mod partial;
pub mod pcmci;

pub use correlation::lagged_correlation_series;

use ndarray::Array2;

use crate::edge_test::ProductSeries;
use crate::{Error, Result};

/// Settings of the regression baselines.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BaselineConfig {
    /// Ridge `λ`, in units of the standardised variance: `λ·N·I` is added to a Gram
    /// matrix of `N` windows (partial correlation, Granger, PCMCI's conditions).
    pub ridge: f64,
    /// PCMCI's significance level for keeping a parent in the PC1 condition-selection
    /// step (tigramite's `pc_alpha`).
    pub pc_alpha: f64,
}

impl Default for BaselineConfig {
    fn default() -> Self {
        BaselineConfig {
            ridge: 1e-3,
            pc_alpha: 0.2,
        }
    }
}

impl BaselineConfig {
    pub fn validate(&self) -> Result<()> {
        if !(self.ridge >= 0.0 && self.ridge.is_finite()) {
            return Err(Error::param(
                "ridge",
                format!("must be a finite number ≥ 0, got {}", self.ridge),
            ));
        }
        if !(self.pc_alpha > 0.0 && self.pc_alpha <= 1.0) {
            return Err(Error::param(
                "pc_alpha",
                format!("must lie in (0, 1], got {}", self.pc_alpha),
            ));
        }
        Ok(())
    }
}

/// A test with a closed-form null distribution, for every edge at one lag
/// (`[target, source]`; NaN where the edge could not be tested).
#[derive(Clone, Debug)]
pub struct ClassicTest {
    /// The method's signed effect (coefficient or partial correlation).
    pub effect: Array2<f64>,
    pub t: Array2<f64>,
    pub p: Array2<f64>,
    /// Windows used for each edge.
    pub count: Array2<f64>,
}

impl ClassicTest {
    fn nan(n: usize) -> Self {
        let f = || Array2::from_elem((n, n), f64::NAN);
        ClassicTest {
            effect: f(),
            t: f(),
            p: f(),
            count: Array2::zeros((n, n)),
        }
    }
}

/// Stores target j's `[effect, t, p]` of every (source i, lag), listed source-major
/// (all lags of source 0, then of source 1, …), into the per-lag tests `out`; the
/// diagonal is skipped.
fn store_target(out: &mut [ClassicTest], j: usize, values: Vec<[f64; 3]>, count: f64) {
    let lags = out.len();
    for (k, [effect, t, p]) in values.into_iter().enumerate() {
        let (i, li) = (k / lags, k % lags);
        if i == j {
            continue;
        }
        let o = &mut out[li];
        o.effect[[j, i]] = effect;
        o.t[[j, i]] = t;
        o.p[[j, i]] = p;
        o.count[[j, i]] = count;
    }
}

/// What one baseline gives at one lag.
#[derive(Clone, Debug)]
pub enum LagEstimate {
    /// A closed-form test.
    Classic(ClassicTest),
    /// An estimate `θ̂` with per-window influence series `h_t` whose mean is 0 and whose
    /// long-run variance gives `Var(θ̂) = Ω̂_h / N` (tested by the HAC machinery).
    Influence {
        estimate: Array2<f64>,
        series: Vec<ProductSeries>,
        /// The window index of every row of each series.
        rows: Vec<Vec<usize>>,
        /// The targets of each series' columns (one group of targets per series).
        targets: Vec<Vec<usize>>,
    },
}
