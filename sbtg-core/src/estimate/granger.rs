//! Conditional Granger causality: the multivariate VAR(p)
//!
//! `x_{t+p} = Σ_{r=1}^{p} A_r x_{t+p−r} + c_recording + e_{t+p}`
//!
//! fitted by (ridge) least squares on the windows `[x_t, …, x_{t+p}]` of every
//! recording, one regression per target neuron. The edge `i → j` at lag r is the
//! coefficient `A_r[j, i]`: the effect of `x_i` r frames earlier with every other
//! neuron's past (all p lags) held fixed.
//!
//! **HAC errors.** With the design `X` (rows = windows, centred per recording),
//! `G = XᵀX + λN·I` and `Z = X G⁻¹`, the estimate is `β̂_j = Zᵀy_j` and
//! `β̂_j − β_j ≈ Σ_t Z_tᵀ e_{t,j}`. Its variance is the long-run variance of the
//! per-window influence `h_t(j, k) = N · Z_{t,k} e_{t,j}` divided by N (the
//! Newey–West sandwich `G⁻¹ S G⁻¹` restricted to its diagonal), which the HAC machinery
//! of [`crate::stats`] computes for every edge at once as a product series with
//! target factor `N·e` and source factor `Z`.

use ndarray::{s, Array2, Axis};

use super::design::{column, spd_inverse, target_groups};
use super::evidence::{LagEvidence, MeanEvidence, SeriesBlock};
use super::{joint_lag_evidence, validate_ridge, Estimator, FitContext, Method};
use crate::data::{Panel, Windows};
use crate::stats::{subsegments, ProductSeries, ProductTerm};
use crate::{Error, Result};

/// Conditional Granger causality (module docs).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Granger {
    /// Ridge `λ`: `λN` is added to the diagonal of the Gram matrix of N standardised
    /// windows.
    pub ridge: f64,
}

impl Default for Granger {
    fn default() -> Self {
        Granger { ridge: 1e-3 }
    }
}

impl Estimator for Granger {
    fn method(&self) -> Method {
        Method::Granger
    }
    fn validate(&self) -> Result<()> {
        validate_ridge(self.ridge)
    }
    fn window_rule(&self) -> String {
        super::JOINT_WINDOW_RULE.into()
    }
    fn fit(&self, panel: &Panel, lags: &[usize], _ctx: &FitContext) -> Result<Vec<LagEvidence>> {
        joint_lag_evidence(panel, lags, 1, |w| fit(w, lags, self.ridge))
    }
}

/// Fits the VAR(p), `p = windows.blocks − 1`, and returns for each lag of `lags` the
/// coefficients `A_r` (`[target, source]`) with their influence series. Targets
/// observed in too few windows are left untested (NaN).
pub fn fit(windows: &Windows, lags: &[usize], ridge: f64) -> Result<Vec<MeanEvidence>> {
    let n = windows.n;
    let p = windows.blocks - 1;
    assert!(lags.iter().all(|&r| r >= 1 && r <= p), "lags within 1..=p");
    let d = p * n;
    let groups = target_groups(windows, d + 10);
    if groups.is_empty() {
        return Err(Error::Data(format!(
            "a VAR({p}) of {n} neurons needs more than {} windows per neuron, the recordings give {}; use fewer lags or more frames",
            d + 10,
            windows.len()
        )));
    }
    let mut estimates = vec![Array2::from_elem((n, n), f64::NAN); lags.len()];
    let mut series = vec![Vec::new(); lags.len()];
    let mut rows = Vec::new();
    let mut targets = Vec::new();
    for g in &groups {
        let dof = g.residual_dof();
        let inv = spd_inverse(
            &g.gram.slice(s![..d, ..d]).to_owned(),
            ridge * dof,
            "Gram matrix of the VAR's lagged design",
        )?;
        let ycols: Vec<usize> = g.targets.iter().map(|&j| column(n, p, j)).collect();
        let past = g.x.slice(s![.., ..d]);
        let y = g.x.select(Axis(1), &ycols);
        let beta = inv.dot(&g.gram.slice(s![..d, ..]).select(Axis(1), &ycols));
        let resid = &y - &past.dot(&beta);
        let z = past.dot(&inv);
        let m = g.rows.len();
        // Only the group's targets: column c is target g.targets[c].
        let target = &resid * m as f64;
        let target_mask = Array2::ones(target.raw_dim());
        let segments = subsegments(&windows.segments, &g.rows);
        for (li, &r) in lags.iter().enumerate() {
            let block = p - r;
            let cols = block * n..(block + 1) * n;
            for (c, &j) in g.targets.iter().enumerate() {
                for i in 0..n {
                    estimates[li][[j, i]] = beta[[column(n, block, i), c]];
                }
            }
            series[li].push(ProductSeries::new(
                vec![ProductTerm {
                    weight: None,
                    target: target.clone(),
                    source: z.slice(s![.., cols]).to_owned(),
                }],
                target_mask.clone(),
                Array2::ones((m, n)),
                segments.clone(),
            ));
        }
        rows.push(g.rows.clone());
        targets.push(g.targets.clone());
    }
    Ok(estimates
        .into_iter()
        .zip(series)
        .map(|(estimate, series)| MeanEvidence::Influence {
            effect_sign: 1.0,
            estimate,
            blocks: series
                .into_iter()
                .zip(&rows)
                .zip(&targets)
                .map(|((s, r), t)| SeriesBlock {
                    targets: t.clone(),
                    folds: vec![s],
                    rows: vec![r.clone()],
                })
                .collect(),
        })
        .collect())
}
