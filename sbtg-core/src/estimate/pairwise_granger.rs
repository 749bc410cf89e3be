//! Pairwise (bivariate) Granger causality: for every ordered pair `i → j`, the model
//!
//! `x_{t+p, j} = Σ_{r=1}^{p} a_r x_{t+p−r, j} + Σ_{r=1}^{p} b_r x_{t+p−r, i} + c_recording + e`
//!
//! fitted by least squares; the edge at lag r is `b_r`, tested with the classical
//! `F(1, dof) = t²` test, `dof = N − R − 2p` (N windows, R recording intercepts). With
//! p = 1 this is the usual `ssr` F-test of "i Granger-causes j" (statsmodels'
//! `grangercausalitytests`). Only the target's own past is conditioned on, which is
//! what [`super::granger`] (all neurons' pasts) improves on.

use nalgebra::DVector;
use ndarray::Array2;
use rayon::prelude::*;

use super::design::{column, submatrix, target_groups};
use super::evidence::{ClosedFormTest, EdgeEstimate, LagEvidence, MeanEvidence};
use super::{joint_lag_evidence, validate_ridge, Estimator, FitContext, Method};
use crate::data::{Panel, Windows};
use crate::{Error, Result};

/// Bivariate Granger F-tests (module docs).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PairwiseGranger {
    /// Ridge `λ`: `λN` is added to the diagonal of each 2p × 2p Gram matrix of N
    /// standardised windows.
    pub ridge: f64,
}

impl Default for PairwiseGranger {
    fn default() -> Self {
        PairwiseGranger { ridge: 1e-3 }
    }
}

impl Estimator for PairwiseGranger {
    fn method(&self) -> Method {
        Method::PairwiseGranger
    }
    fn validate(&self) -> Result<()> {
        validate_ridge(self.ridge)
    }
    fn window_rule(&self) -> String {
        super::JOINT_WINDOW_RULE.into()
    }
    fn fit(&self, panel: &Panel, lags: &[usize], _ctx: &FitContext) -> Result<Vec<LagEvidence>> {
        joint_lag_evidence(panel, lags, 1, |w| {
            Ok(fit(w, lags, self.ridge)?
                .into_iter()
                .map(|t| MeanEvidence::ClosedForm(Box::new(t)))
                .collect())
        })
    }
}

/// Runs every pairwise regression, p = `windows.blocks − 1`; one [`ClosedFormTest`] per
/// lag of `lags`. `ridge` adds `λN` to the diagonal of each 2p × 2p Gram matrix.
pub fn fit(windows: &Windows, lags: &[usize], ridge: f64) -> Result<Vec<ClosedFormTest>> {
    let n = windows.n;
    let p = windows.blocks - 1;
    assert!(lags.iter().all(|&r| r >= 1 && r <= p), "lags within 1..=p");
    let groups = target_groups(windows, 2 * p + 10);
    if groups.is_empty() {
        return Err(Error::Data(format!(
            "pairwise Granger at lag order {p} needs more than {} windows per neuron, the recordings give {}; use fewer lags or more frames",
            2 * p + 10,
            windows.len()
        )));
    }
    let mut out: Vec<ClosedFormTest> = lags.iter().map(|_| ClosedFormTest::untested(n)).collect();
    for g in &groups {
        let dof = g.residual_dof();
        let rows: Vec<(usize, Vec<EdgeEstimate>)> = g
            .targets
            .par_iter()
            .map(|&j| {
                let y = column(n, p, j);
                let tests = (0..n)
                    .flat_map(|i| {
                        let regressors: Vec<usize> = (0..p)
                            .map(|b| column(n, b, j))
                            .chain((0..p).map(|b| column(n, b, i)))
                            .collect();
                        let stats = if i == j {
                            None
                        } else {
                            pair_regression(&g.gram, &regressors, y, ridge * dof, dof)
                        };
                        lags.iter().map(move |&r| match &stats {
                            // Coefficient of x_i at block p − r.
                            Some((beta, se, df)) => {
                                let k = p + (p - r);
                                EdgeEstimate::coefficient(beta[k], se[k], *df)
                            }
                            None => EdgeEstimate::UNTESTED,
                        })
                    })
                    .collect();
                (j, tests)
            })
            .collect();
        for (j, tests) in rows {
            ClosedFormTest::store_target(&mut out, j, tests, g.rows.len() as f64);
        }
    }
    Ok(out)
}

/// Least squares of column `y` on `regressors` from the Gram matrix: coefficients,
/// their standard errors `√(σ̂² [(XᵀX + λI)⁻¹]_kk)` with `σ̂² = RSS / (dof − k)`, and
/// the residual degrees of freedom.
fn pair_regression(
    gram: &Array2<f64>,
    regressors: &[usize],
    y: usize,
    ridge: f64,
    dof: f64,
) -> Option<(DVector<f64>, DVector<f64>, f64)> {
    let plain = submatrix(gram, regressors, regressors);
    let mut m = plain.clone();
    for k in 0..m.nrows() {
        m[(k, k)] += ridge;
    }
    let chol = m.cholesky()?;
    let gy = DVector::from_iterator(regressors.len(), regressors.iter().map(|&s| gram[[s, y]]));
    let beta = chol.solve(&gy);
    // RSS = yᵀy − 2βᵀXᵀy + βᵀXᵀXβ (exact also with a ridge).
    let rss = gram[[y, y]] - 2.0 * beta.dot(&gy) + beta.dot(&(&plain * &beta));
    let df = dof - regressors.len() as f64;
    if df <= 0.0 || rss <= 0.0 {
        return None;
    }
    let inv = chol.inverse();
    let se = DVector::from_iterator(
        regressors.len(),
        (0..regressors.len()).map(|k| (rss / df * inv[(k, k)]).sqrt()),
    );
    Some((beta, se, df))
}
