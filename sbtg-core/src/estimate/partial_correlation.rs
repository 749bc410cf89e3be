//! Partial correlation of the lagged design: with the windows
//! `[x_t, …, x_{t+p}]` (all `(p+1)·n` coordinates, centred per recording) and their
//! covariance `Ĉ`, the ridge-regularised precision matrix `Θ = (Ĉ + λI)⁻¹` gives
//!
//! `ρ(i → j, r) = −Θ_ab / √(Θ_aa Θ_bb)`,  a = `x_{t+p, j}`, b = `x_{t+p−r, i}`,
//!
//! the correlation of the two after removing every other coordinate (the other
//! neurons at every lag and at time `t+p`). Lag 0 pairs two neurons of the last frame
//! given everything else: the partial correlation of their innovations given the past
//! (undirected; `p ≥ 1`). Tested with Fisher's z:
//! `z = atanh(ρ) √(N − R − |S| − 2)`, `|S| = (p+1)n − 2` conditions, R recording
//! intercepts, two-sided normal p-value.

use super::design::{column, spd_inverse, target_groups};
use super::evidence::{ClosedFormTest, EdgeEstimate, LagEvidence, MeanEvidence};
use super::{joint_lag_evidence, validate_ridge, Estimator, FitContext, Method};
use crate::data::{Panel, Windows};
use crate::{Error, Result};

/// Partial correlation of the lagged design (module docs).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PartialCorrelation {
    /// Ridge `λ`, in units of the standardised variance: `λI` is added to the
    /// covariance of the lagged design before it is inverted.
    pub ridge: f64,
}

impl Default for PartialCorrelation {
    fn default() -> Self {
        PartialCorrelation { ridge: 1e-3 }
    }
}

impl Estimator for PartialCorrelation {
    fn method(&self) -> Method {
        Method::PartialCorrelation
    }
    fn validate(&self) -> Result<()> {
        validate_ridge(self.ridge)
    }
    fn window_rule(&self) -> String {
        super::JOINT_WINDOW_RULE.into()
    }
    fn tests_same_frame(&self) -> bool {
        true
    }
    fn window_frames(&self, max_lag: usize) -> usize {
        max_lag.max(1) + 1
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

/// Partial correlations of every lag of `lags` (each `≤ windows.blocks − 1`).
pub fn fit(windows: &Windows, lags: &[usize], ridge: f64) -> Result<Vec<ClosedFormTest>> {
    let n = windows.n;
    let p = windows.blocks - 1;
    assert!(lags.iter().all(|&r| r <= p), "lags within 0..=p");
    let d = windows.blocks * n;
    let groups = target_groups(windows, d + 10);
    if groups.is_empty() {
        return Err(Error::Data(format!(
            "partial correlation of {d} lagged coordinates needs more than {} windows per neuron, the recordings give {}; use fewer lags or more frames",
            d + 10,
            windows.len()
        )));
    }
    let mut out: Vec<ClosedFormTest> = lags.iter().map(|_| ClosedFormTest::untested(n)).collect();
    for g in &groups {
        let dof = g.residual_dof();
        let cov = &g.gram / dof;
        let theta = spd_inverse(&cov, ridge, "covariance of the lagged design")?;
        let z_dof = dof - (d as f64 - 2.0) - 2.0;
        for &j in &g.targets {
            let a = column(n, p, j);
            for i in (0..n).filter(|&i| i != j) {
                for (li, &r) in lags.iter().enumerate() {
                    let b = column(n, p - r, i);
                    let rho = -theta[[a, b]] / (theta[[a, a]] * theta[[b, b]]).sqrt();
                    let (z, pv) = fisher_z_test(rho, z_dof);
                    let e = EdgeEstimate::correlation(rho, z, pv, z_dof);
                    out[li].set(j, i, e, g.rows.len() as f64);
                }
            }
        }
    }
    Ok(out)
}

/// Fisher's z test of a (partial) correlation: `z = atanh(ρ)·√dof`, two-sided
/// `p = erfc(|z|/√2)` (the normal survival function, never exactly 0). Returns `(z, p)`.
pub fn fisher_z_test(rho: f64, dof: f64) -> (f64, f64) {
    if !rho.is_finite() || dof <= 0.0 {
        return (f64::NAN, f64::NAN);
    }
    let z = rho.clamp(-1.0 + 1e-15, 1.0 - 1e-15).atanh() * dof.sqrt();
    let p = statrs::function::erf::erfc(z.abs() / std::f64::consts::SQRT_2);
    (z, p.clamp(f64::MIN_POSITIVE, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fisher_z_by_hand() {
        // ρ = 0.3, dof = 100: z = atanh(0.3)·10 = 3.0951…, p = 0.001967…
        let (z, p) = fisher_z_test(0.3, 100.0);
        assert!((z - 3.095_196_042_031_118).abs() < 1e-12, "{z}");
        assert!((p - 0.001_966_828_505_979_921).abs() < 1e-12, "{p}");
    }
}
