//! The lagged design shared by the regression baselines: the blocks of the windows
//! `[x_t, x_{t+1}, …, x_{t+B−1}]` as columns, one row per window, grouped by which
//! targets (last-block neurons) are observed.
//!
//! **Missing values.** A regression of target `j` uses the windows where `j` is
//! observed; a regressor that is missing in a window enters as 0, its mean in the
//! per-recording z-scored traces (the same convention as SBTG's windows). Targets with
//! the same observed windows share one [`TargetGroup`], so one Gram matrix serves them
//! all; on real recordings a neuron is usually missing in whole recordings, so there are
//! few groups.
//!
//! **Intercepts.** Every column is centred within each recording of the group's rows:
//! that is one intercept per recording (recordings differ in baseline fluorescence), and
//! costs one degree of freedom each ([`TargetGroup::residual_dof`]).

use std::collections::HashMap;

use nalgebra::DVector;
use ndarray::{Array2, Axis};

use crate::data::window::Windows;
pub use crate::stats::linalg::{spd_inverse, submatrix};

/// Targets that are observed in exactly the same windows, with the centred design on
/// those windows and its Gram matrix.
#[derive(Clone, Debug)]
pub struct TargetGroup {
    /// Target neurons (indices into the panel).
    pub targets: Vec<usize>,
    /// Window rows used (ascending).
    pub rows: Vec<usize>,
    /// Recordings among the rows.
    pub recordings: usize,
    /// `rows × B·n`: the windows, centred within each recording.
    pub x: Array2<f64>,
    /// `XᵀX`, `B·n × B·n`.
    pub gram: Array2<f64>,
}

impl TargetGroup {
    /// Observations minus the per-recording intercepts.
    pub fn residual_dof(&self) -> f64 {
        self.rows.len() as f64 - self.recordings as f64
    }
}

/// Column of neuron `i` in block `b` of an n-neuron window.
pub fn column(n: usize, block: usize, neuron: usize) -> usize {
    block * n + neuron
}

/// Groups the targets of the last block by their observed rows and builds each
/// group's centred design and Gram matrix. Targets observed in fewer than
/// `min_rows` windows are left out (their edges get no test).
pub fn target_groups(windows: &Windows, min_rows: usize) -> Vec<TargetGroup> {
    let n = windows.n;
    let last = windows.blocks - 1;
    let mut index: HashMap<Vec<bool>, usize> = HashMap::new();
    let mut groups: Vec<(Vec<usize>, Vec<usize>)> = Vec::new();
    for j in 0..n {
        let observed: Vec<bool> = windows
            .mask
            .column(column(n, last, j))
            .iter()
            .map(|&m| m > 0.0)
            .collect();
        let rows: Vec<usize> = (0..observed.len()).filter(|&t| observed[t]).collect();
        if rows.len() < min_rows {
            continue;
        }
        let k = *index.entry(observed).or_insert_with(|| {
            groups.push((Vec::new(), rows));
            groups.len() - 1
        });
        groups[k].0.push(j);
    }
    groups
        .into_iter()
        .map(|(targets, rows)| {
            let mut x = windows.z.select(Axis(0), &rows);
            let recording: Vec<usize> = rows.iter().map(|&t| windows.recording[t]).collect();
            let mut recordings = 0;
            let mut start = 0;
            while start < rows.len() {
                let mut end = start;
                while end < rows.len() && recording[end] == recording[start] {
                    end += 1;
                }
                let mut block = x.slice_mut(ndarray::s![start..end, ..]);
                let mean = block.mean_axis(Axis(0)).expect("non-empty block");
                block -= &mean;
                recordings += 1;
                start = end;
            }
            let gram = x.t().dot(&x);
            TargetGroup {
                targets,
                rows,
                recordings,
                x,
                gram,
            }
        })
        .collect()
}

/// The partial correlation of columns `a` and `b` given the columns `cond`, from a
/// Gram (or covariance) matrix `g` of centred data: with the Schur complement
/// `C = G_{ab,ab} − G_{ab,S} G_{S,S}⁻¹ G_{S,ab}` (the residual cross-products after
/// regressing both on S), `ρ = C_ab / √(C_aa C_bb)`. `None` when `G_{S,S}` is singular
/// or a residual variance is zero.
pub fn partial_correlation(g: &Array2<f64>, a: usize, b: usize, cond: &[usize]) -> Option<f64> {
    let (mut caa, mut cbb, mut cab) = (g[[a, a]], g[[b, b]], g[[a, b]]);
    if !cond.is_empty() {
        let chol = submatrix(g, cond, cond).cholesky()?;
        let ga = DVector::from_iterator(cond.len(), cond.iter().map(|&s| g[[s, a]]));
        let gb = DVector::from_iterator(cond.len(), cond.iter().map(|&s| g[[s, b]]));
        let sa = chol.solve(&ga);
        let sb = chol.solve(&gb);
        caa -= ga.dot(&sa);
        cbb -= gb.dot(&sb);
        cab -= ga.dot(&sb);
    }
    let den = (caa * cbb).sqrt();
    (den > 1e-12 * (g[[a, a]] * g[[b, b]]).sqrt() && den.is_finite()).then(|| cab / den)
}

/// Two-sided p-value of a partial correlation `ρ` with `dof` residual degrees of
/// freedom, by its exact Student-t transform `t = ρ √(dof / (1 − ρ²))` (the t-statistic
/// of the regression coefficient). Returns `(t, p)`.
pub fn partial_correlation_test(rho: f64, dof: f64) -> (f64, f64) {
    let t = rho * (dof / (1.0 - rho * rho).max(f64::MIN_POSITIVE)).sqrt();
    (t, crate::stats::hac::two_sided_p(t, dof))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_correlation_matches_residual_regression_by_hand() {
        // Three centred variables; ρ(a, b | c) from residuals of a and b on c.
        let x: Array2<f64> = ndarray::array![
            [1.0, 2.0, 0.5],
            [-1.0, 0.5, -0.5],
            [2.0, 1.0, 1.0],
            [-2.0, -3.5, 0.0],
            [0.0, 0.0, -1.0]
        ];
        let g = x.t().dot(&x);
        let c = x.column(2);
        let resid = |k: usize| {
            let v = x.column(k);
            let beta = v.dot(&c) / c.dot(&c);
            &v - &(&c * beta)
        };
        let (ra, rb) = (resid(0), resid(1));
        let by_hand = ra.dot(&rb) / (ra.dot(&ra) * rb.dot(&rb)).sqrt();
        let rho = partial_correlation(&g, 0, 1, &[2]).unwrap();
        assert!((rho - by_hand).abs() < 1e-12, "{rho} {by_hand}");
        // No conditions: the plain correlation of centred data.
        let plain = x.column(0).dot(&x.column(1))
            / (x.column(0).dot(&x.column(0)) * x.column(1).dot(&x.column(1))).sqrt();
        assert!((partial_correlation(&g, 0, 1, &[]).unwrap() - plain).abs() < 1e-12);
    }

    #[test]
    fn singular_gram_asks_for_a_ridge() {
        let a = ndarray::array![[1.0, 1.0], [1.0, 1.0]];
        let e = spd_inverse(&a, 0.0, "VAR design").unwrap_err().to_string();
        assert!(e.contains("--ridge"), "{e}");
        let inv = spd_inverse(&a, 1.0, "VAR design").unwrap();
        // (A + I)⁻¹ = [[2, −1], [−1, 2]] / 3.
        assert!((inv[[0, 0]] - 2.0 / 3.0).abs() < 1e-12 && (inv[[0, 1]] + 1.0 / 3.0).abs() < 1e-12);
    }
}
