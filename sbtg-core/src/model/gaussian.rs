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
//! minimised by `L = (S + σ²I)⁻¹`, the precision of the smoothed data. Shrinking adds a
//! ridge `λ`: `L = (S + (σ² + λ)I)⁻¹`, with `λ` chosen by the held-out loss `ℓ` on
//! validation windows (never by a connectome).
//!
//! **As an energy.** `½ zᵀLz` is the linear-coupling energy with `A_P = L_PP`,
//! `A_F = L_FF`, `W = L_FP` and MLPs whose output is zero; [`gaussian_energy`] builds it,
//! as the `gaussian` coupling's fitted model and as the warm start of the trained
//! energies (training can then only move away from it where the held-out loss improves).
//!
//! **Missing coordinates** are 0 in the standardised windows (their mean), so `S` is the
//! zero-filled second moment `ZᵀZ/N`, the same convention the trained models see.

use ndarray::{s, Array2, ArrayView2};

use super::energy::{CouplingParams, EnergyModel};
use crate::stats::linalg::spd_inverse;
use crate::Result;

/// The ridge grid searched by [`select_ridge`] (in units of the standardised variance).
pub const RIDGE_GRID: [f64; 8] = [0.0, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0];

/// Zero-filled second moment `ZᵀZ / N` of standardised windows (rows).
pub fn second_moment(z: ArrayView2<f64>) -> Array2<f64> {
    z.t().dot(&z) / (z.nrows().max(1) as f64)
}

/// `L = (S + (σ² + λ)I)⁻¹`, the DSM-optimal precision of a quadratic energy.
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
    // tr(L S L) = Σ_ab (LS)_ab L_ba; tr(L²) = Σ_ab L_ab² (L symmetric).
    let tr_lsl: f64 = ls.iter().zip(l.t().iter()).map(|(a, b)| a * b).sum();
    let tr_l2: f64 = l.iter().map(|v| v * v).sum();
    let tr_l: f64 = l.diag().sum();
    (tr_lsl + sigma * sigma * tr_l2 - 2.0 * tr_l + d / (sigma * sigma)) / d
}

/// The Gaussian window model a trained energy starts from: its precision and the ridge
/// chosen on held-out windows (kept as a penalty during training).
#[derive(Clone, Debug)]
pub struct GaussianStart {
    pub precision: Array2<f64>,
    pub ridge: f64,
}

impl GaussianStart {
    /// The start fitted on windows `z` with a given `ridge`: the precision of
    /// [`window_precision`] of their second moment.
    pub fn fit(z: ArrayView2<f64>, sigma: f64, ridge: f64) -> Result<Self> {
        let precision = window_precision(&second_moment(z), sigma, ridge)?;
        Ok(GaussianStart { precision, ridge })
    }
}

/// One point of a ridge path: the ridge and the validation loss it reached.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RidgePoint {
    pub ridge: f64,
    pub loss: f64,
}

/// The ridge of [`RIDGE_GRID`] whose Gaussian window model, fitted on `train`, gives
/// the validation windows the highest likelihood, with the whole path (per window,
/// `½[tr(L S_valid) − log det L]`, the negative log-likelihood up to a constant; `L`
/// includes the DSM noise `σ²`). Ties go to the larger ridge.
///
/// The likelihood, not the DSM loss, chooses: both are proper scoring rules, but at the
/// DSM's small `σ` the loss differences between ridges are a small part of a large,
/// noisy total, and on slowly varying recordings (few effective samples per window
/// dimension) the DSM choice shrinks too little, which leaves the edge tests a second-
/// order bias from the fitted precision's sampling noise.
pub fn select_ridge(
    train: ArrayView2<f64>,
    valid: ArrayView2<f64>,
    sigma: f64,
) -> Result<(f64, Vec<RidgePoint>)> {
    let s_train = second_moment(train);
    let s_valid = second_moment(valid);
    let mut path = Vec::with_capacity(RIDGE_GRID.len());
    for &ridge in &RIDGE_GRID {
        let loss = gaussian_nll(&s_train, &s_valid, sigma * sigma + ridge);
        path.push(RidgePoint { ridge, loss });
    }
    let best = path
        .iter()
        .copied()
        .filter(|p| p.loss.is_finite())
        .fold(None::<RidgePoint>, |best, p| match best {
            Some(b) if b.loss < p.loss => Some(b),
            _ => Some(p),
        })
        .map_or(RIDGE_GRID[RIDGE_GRID.len() - 1], |p| p.ridge);
    Ok((best, path))
}

/// `½[tr(L S_valid) − log det L]` with `L = (S_train + cI)⁻¹` (∞ if not positive definite).
fn gaussian_nll(s_train: &Array2<f64>, s_valid: &Array2<f64>, c: f64) -> f64 {
    let mut m = crate::stats::linalg::to_dmatrix(s_train);
    for k in 0..m.nrows() {
        m[(k, k)] += c;
    }
    let Some(chol) = m.cholesky() else {
        return f64::INFINITY;
    };
    let log_det_cov: f64 = 2.0 * chol.l().diagonal().iter().map(|v| v.ln()).sum::<f64>();
    let l = crate::stats::linalg::to_array(&chol.inverse());
    let tr: f64 = l.iter().zip(s_valid.iter()).map(|(a, b)| a * b).sum();
    0.5 * (tr + log_det_cov)
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

    #[test]
    fn the_gaussian_energy_scores_minus_l_z_and_its_same_frame_curvature_is_l_ff() {
        let (z, _) = gaussian_windows(200, 6, 3);
        let l = window_precision(&second_moment(z.view()), 0.1, 0.1).unwrap();
        let template = EnergyModel::init(3, 3, Coupling::Linear, 8, 2, &mut stream(1, 1));
        let m = gaussian_energy(&l, &template);
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
        let l = window_precision(&second_moment(z.view()), 0.1, 0.1).unwrap();
        let template = EnergyModel::init(3, 3, Coupling::Linear, 8, 2, &mut stream(1, 1));
        let m = gaussian_energy(&l, &template);
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
        let (ridge_big, path) = select_ridge(big.view(), valid.view(), 0.1).unwrap();
        assert_eq!(path.len(), RIDGE_GRID.len());
        let best = path.iter().map(|p| p.loss).fold(f64::INFINITY, f64::min);
        assert_eq!(
            path.iter().find(|p| p.ridge == ridge_big).unwrap().loss,
            best
        );
        assert!(ridge_big <= 0.03, "{ridge_big}");
        let (small, _) = gaussian_windows(12, 6, 6);
        let (ridge_small, _) = select_ridge(small.view(), valid.view(), 0.1).unwrap();
        assert!(ridge_small > ridge_big, "{ridge_small} vs {ridge_big}");
    }
}
