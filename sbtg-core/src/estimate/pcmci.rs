//! PCMCI (Runge et al. 2019, *Science Advances* 5:eaau4996) with partial-correlation
//! tests, for lagged links `x_{i, t−τ} → x_{j, t}`, `1 ≤ τ ≤ τ_max` (τ_max = the
//! largest tested lag), as tigramite's `run_pcmci` with `ParCorr`:
//!
//! 1. **PC1 condition selection**, per target j: start from every lagged candidate
//!    `(i, τ)` (own past included, ordered i then τ). For condition-set sizes
//!    `k = 0, 1, …` while at least k+1 candidates remain, test each candidate given the
//!    k strongest other candidates; drop (after the pass) those with
//!    `p > pc_alpha`; re-sort the rest by their smallest `|ρ|` so far (ties keep the
//!    original order).
//! 2. **MCI test** of every `(i, τ) → j`: the partial correlation of `x_{j,t}` and
//!    `x_{i,t−τ}` given `P(j) \ {(i, τ)}` and the parents of i shifted by τ,
//!    `{(k, τ + τ_k) : (k, τ_k) ∈ P(i)}`.
//!
//! Every test is `ρ = partial correlation` with `t = ρ√(dof/(1−ρ²))`,
//! `dof = N − R − |Z| − 1` (N windows, R recording intercepts; tigramite's
//! `T − |Z| − 2` with its one mean), on the windows `[x_{t−2τ_max}, …, x_t]` (so the shifted
//! parents exist for every window; tigramite's `2xtau_max` cut-off) and computed from
//! the Gram matrix of the centred windows. With one recording (R = 1) the numbers equal
//! tigramite's.

use rayon::prelude::*;

use super::design::{
    column, partial_correlation, partial_correlation_test, target_groups, TargetGroup,
};
use super::evidence::{ClosedFormTest, EdgeEstimate, LagEvidence, MeanEvidence};
use super::{joint_lag_evidence, Estimator, FitContext, Method};
use crate::data::{Panel, Windows};
use crate::{Error, Result};

/// PCMCI with partial-correlation tests (module docs).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Pcmci {
    /// Significance level for keeping a parent in the PC1 condition-selection step
    /// (tigramite's `pc_alpha`).
    pub pc_alpha: f64,
}

impl Default for Pcmci {
    fn default() -> Self {
        Pcmci { pc_alpha: 0.2 }
    }
}

impl Estimator for Pcmci {
    fn method(&self) -> Method {
        Method::Pcmci
    }
    fn validate(&self) -> Result<()> {
        if !(self.pc_alpha > 0.0 && self.pc_alpha <= 1.0) {
            return Err(Error::param(
                "pc_alpha",
                format!("must lie in (0, 1], got {}", self.pc_alpha),
            ));
        }
        Ok(())
    }
    fn window_frames(&self, max_lag: usize) -> usize {
        2 * max_lag + 1
    }
    fn window_rule(&self) -> String {
        "one window [x_t, ..., x_{t+2p}] inside each recording for every lag (p = the largest lag), so the shifted parents of the MCI test exist".into()
    }
    fn fit(&self, panel: &Panel, lags: &[usize], _ctx: &FitContext) -> Result<Vec<LagEvidence>> {
        joint_lag_evidence(panel, lags, 2, |w| {
            Ok(fit(w, lags, self.pc_alpha)?
                .into_iter()
                .map(|t| MeanEvidence::ClosedForm(Box::new(t)))
                .collect())
        })
    }
}

/// A lagged variable `(neuron, τ)`: neuron `i` τ frames before the target time.
type Node = (usize, usize);

/// Runs PC1 and MCI on windows of `2τ_max + 1` blocks (`τ_max = (blocks − 1) / 2`);
/// one [`ClosedFormTest`] per lag of `lags`.
pub fn fit(windows: &Windows, lags: &[usize], pc_alpha: f64) -> Result<Vec<ClosedFormTest>> {
    let n = windows.n;
    assert!(
        windows.blocks % 2 == 1,
        "PCMCI windows have 2τ_max + 1 blocks"
    );
    let tau_max = (windows.blocks - 1) / 2;
    assert!(
        lags.iter().all(|&r| r >= 1 && r <= tau_max),
        "lags within 1..=τ_max"
    );
    let groups = target_groups(windows, n * tau_max * 2 + 10);
    if groups.is_empty() {
        return Err(Error::Data(format!(
            "PCMCI with τ_max = {tau_max} needs more than {} windows per neuron, the recordings give {}; use fewer lags or more frames",
            n * tau_max * 2 + 10,
            windows.len()
        )));
    }
    let group_of: Vec<Option<&TargetGroup>> = (0..n)
        .map(|j| groups.iter().find(|g| g.targets.contains(&j)))
        .collect();
    let last = windows.blocks - 1;
    // Column of (i, τ) relative to a target at the last block.
    let col = move |(i, tau): Node| column(n, last - tau, i);
    let test =
        move |g: &TargetGroup, j: usize, x: Node, cond: &[Node]| -> Option<(f64, f64, f64)> {
            let cols: Vec<usize> = cond.iter().map(|&c| col(c)).collect();
            let rho = partial_correlation(&g.gram, col((j, 0)), col(x), &cols)?;
            let (t, p) = partial_correlation_test(rho, g.residual_dof() - cond.len() as f64 - 1.0);
            Some((rho, t, p))
        };
    let parents: Vec<Vec<Node>> = (0..n)
        .into_par_iter()
        .map(|j| match group_of[j] {
            Some(g) => pc1(tau_max, n, pc_alpha, |x, cond| test(g, j, x, cond)),
            None => Vec::new(),
        })
        .collect();
    let mut out: Vec<ClosedFormTest> = lags.iter().map(|_| ClosedFormTest::untested(n)).collect();
    let rows: Vec<Vec<EdgeEstimate>> = (0..n)
        .into_par_iter()
        .map(|j| {
            let Some(g) = group_of[j] else {
                return Vec::new();
            };
            (0..n)
                .flat_map(|i| lags.iter().map(move |&tau| (i, tau)))
                .map(|(i, tau)| {
                    if i == j {
                        return EdgeEstimate::UNTESTED;
                    }
                    let mut cond: Vec<Node> = parents[j]
                        .iter()
                        .copied()
                        .filter(|&c| c != (i, tau))
                        .collect();
                    for &(k, tk) in &parents[i] {
                        let shifted = (k, tau + tk);
                        if !cond.contains(&shifted) {
                            cond.push(shifted);
                        }
                    }
                    // The t-test has `dof` degrees of freedom; Fisher's z one fewer.
                    let dof = g.residual_dof() - cond.len() as f64 - 1.0;
                    test(g, j, (i, tau), &cond).map_or(EdgeEstimate::UNTESTED, |(r, t, p)| {
                        EdgeEstimate::correlation(r, t, p, dof - 1.0)
                    })
                })
                .collect()
        })
        .collect();
    for (j, tests) in rows.into_iter().enumerate() {
        if let Some(g) = group_of[j] {
            ClosedFormTest::store_target(&mut out, j, tests, g.rows.len() as f64);
        }
    }
    Ok(out)
}

/// PC1 (the PC-stable variant with one condition set per size) for one target;
/// `test(x, cond)` returns `(ρ, t, p)` of `x ⟂ target | cond`, `None` if it cannot be
/// computed (treated as independent). Returns the parents, strongest first.
fn pc1(
    tau_max: usize,
    n: usize,
    pc_alpha: f64,
    test: impl Fn(Node, &[Node]) -> Option<(f64, f64, f64)>,
) -> Vec<Node> {
    let candidates: Vec<Node> = (0..n)
        .flat_map(|i| (1..=tau_max).map(move |tau| (i, tau)))
        .collect();
    let mut val_min = vec![f64::INFINITY; candidates.len()];
    let mut parents: Vec<usize> = (0..candidates.len()).collect();
    let mut k = 0;
    while parents.len() > k {
        let mut dropped = Vec::new();
        for &c in &parents {
            let cond: Vec<Node> = parents
                .iter()
                .filter(|&&o| o != c)
                .take(k)
                .map(|&o| candidates[o])
                .collect();
            let (rho, p) = test(candidates[c], &cond).map_or((0.0, 1.0), |(r, _, p)| (r, p));
            val_min[c] = val_min[c].min(rho.abs());
            if p > pc_alpha {
                dropped.push(c);
            }
        }
        parents.retain(|c| !dropped.contains(c));
        // Stable sort: ties keep the original candidate order (as tigramite).
        parents.sort_by_key(|&c| c);
        parents.sort_by(|&a, &b| val_min[b].total_cmp(&val_min[a]));
        k += 1;
    }
    parents.into_iter().map(|c| candidates[c]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// PC1 on an oracle: node (0, 1) is dependent unless conditioned on (1, 1); node
    /// (1, 1) is always dependent; everything else is independent.
    #[test]
    fn pc1_drops_screened_off_candidates() {
        let parents = pc1(1, 3, 0.2, |x, cond| {
            let dep = match x {
                (1, 1) => true,
                (0, 1) => !cond.contains(&(1, 1)),
                _ => false,
            };
            let strength = if x == (1, 1) { 0.5 } else { 0.3 };
            Some(if dep {
                (strength, 5.0, 1e-6)
            } else {
                (0.01, 0.1, 0.9)
            })
        });
        assert_eq!(parents, vec![(1, 1)]);
    }
}
