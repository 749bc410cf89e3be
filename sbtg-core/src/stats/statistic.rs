//! From held-out scores to the per-edge series that are tested.
//!
//! **Mean (Jacobian) test.** Stein's identity gives, for the true score,
//! `μ_ji = E[s_{F,j} s_{S,i}] = E[H_ji]` with `H = ∂²U/∂x_F∂x_S` the cross-block mixed
//! Hessian of the energy `U = −log p`, and `μ = −I_ε E[J]`.
//!
//! - [`EdgeStatistic::Product`] tests the plain product `Y_t = s_{F,j} s_{S,i}` of the
//!   fitted score ŝ, as in the paper. Its mean is biased to first order by the model's
//!   error: integrating by parts, `E[ŝ_F ŝ_S] = 2E[Ĥ] − μ + O(‖ŝ − s‖²)`. With cross-fitting
//!   the bias is independent of the test fold's noise but of the same order, which
//!   inflates the false-positive rate.
//! - [`EdgeStatistic::Orthogonal`] (default) tests `Y_t = 2Ĥ_t − ŝ_{F,j} ŝ_{S,i}`, whose mean
//!   is `μ + O(‖ŝ − s‖²)`: the first-order model error cancels (a Neyman-orthogonal,
//!   doubly robust form of the same identity). For the linear coupling `Ĥ = Ŵ` is constant.
//!
//! **Volatility-transfer test.** `V_t = (ŝ_{F,j}² − m_{F,j})(ŝ_{S,i}² − m_{S,i})` with the
//! fold's means; `E[V] ≠ 0` when the source drives the target's variance (couplings
//! whose sign flips average out of the mean test but not out of this one).

use std::ops::Range;

use ndarray::{s, Array1, Array2, Axis};

use super::missing::patterns;
use super::{ProductSeries, ProductTerm};

/// Which mean statistic is tested.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum EdgeStatistic {
    /// `2Ĥ − ŝ_F ŝ_S`: first-order insensitive to score-model error (default).
    Orthogonal,
    /// `ŝ_F ŝ_S`: the plain cross-block score product.
    Product,
}

/// Scores of one held-out fold in window layout `[past blocks | future block]`.
#[derive(Clone, Debug)]
pub struct HeldOutScores {
    /// `T × width` scores `−∇U` (standardised coordinates).
    pub scores: Array2<f64>,
    /// `T × width`, 1 where the window coordinate is observed.
    pub mask: Array2<f64>,
    /// Terms of the mixed Hessian between the future block and the source block.
    pub hessian: Vec<ProductTerm>,
    /// Contiguous runs of windows.
    pub segments: Vec<Range<usize>>,
    /// Columns of the source block (a past block).
    pub source: Range<usize>,
    /// Columns of the future block.
    pub future: Range<usize>,
    /// `Q̂` (`n × n`): test the mean on the Jacobian's scale, `Σ_k Q̂_jk Y_t(k, i)`
    /// ([`EffectScale::Jacobian`]); `None`: the precision-weighted `Y_t(j, i)`.
    pub future_scale: Option<Array2<f64>>,
    /// The future block holds the scaled innovations `ũ` of
    /// [`HeldOutScores::same_frame_innovations`]: the mean series is `−ũ_j ũ_i` whatever
    /// the [`EdgeStatistic`] (a product of residuals needs no Stein correction).
    pub innovations: bool,
}

/// `diag(m) A` for a 0/1 pattern `m`: the rows of unobserved coordinates zeroed.
fn rows_observed(a: &Array2<f64>, pattern: &[bool]) -> Array2<f64> {
    let mut out = a.clone();
    for (mut row, &seen) in out.rows_mut().into_iter().zip(pattern) {
        if !seen {
            row.fill(0.0);
        }
    }
    out
}

/// One Hessian term `W ⊙ (p_t ⊗ q_t)` deconvolved on the target side over the future
/// coordinates observed in each window (`mask_f`, `T × n_F`), as the score part of the
/// statistic is: `Σ_k Q_jk m_tk W_ki p_tk q_ti`. Without a weight the target factor
/// becomes `(p_t ⊙ m_t) Qᵀ`, one term. With a weight, the target factor of every energy
/// here is the same for all targets at each `t` (constant for the linear coupling, a
/// regime's gate for the regime-gated one), so each pattern `m` of observed future
/// coordinates gets a term of weight `Q diag(m) W` whose target factor is `p_t` on that
/// pattern's windows and 0 elsewhere (one pattern per recording's panel of neurons,
/// more where single samples are missing).
///
/// # Panics
/// If a weighted term's target factor differs between targets at some `t` (no energy
/// of this crate has one).
fn jacobian_scaled(h: &ProductTerm, q: &Array2<f64>, mask_f: &Array2<f64>) -> Vec<ProductTerm> {
    match &h.weight {
        None => vec![ProductTerm {
            weight: None,
            target: (&h.target * mask_f).dot(&q.t()),
            source: h.source.clone(),
        }],
        Some(w) => {
            let row_constant = h
                .target
                .rows()
                .into_iter()
                .all(|r| r.iter().all(|&v| v == r[0]));
            assert!(
                row_constant,
                "a weighted Hessian term whose target factor varies across targets cannot be deconvolved term by term"
            );
            let groups = patterns(mask_f.view());
            let missing = ever_missing(mask_f);
            if groups.len() <= 1 + missing.len() {
                return groups
                    .into_iter()
                    .map(|(pattern, rows)| {
                        let mut target = Array2::zeros(h.target.raw_dim());
                        for &t in &rows {
                            target.row_mut(t).assign(&h.target.row(t));
                        }
                        ProductTerm {
                            weight: Some(q.dot(&rows_observed(w, &pattern))),
                            target,
                            source: h.source.clone(),
                        }
                    })
                    .collect();
            }
            // Many patterns (single missing samples): `Q diag(m_t) W = QW − Σ_k Q_{·k}
            // W_{k·} (1 − m_tk)` over the neurons ever missing, one unweighted term each.
            let mut terms = vec![ProductTerm {
                weight: Some(q.dot(w)),
                target: h.target.clone(),
                source: h.source.clone(),
            }];
            for k in missing {
                terms.push(ProductTerm {
                    weight: None,
                    target: Array2::from_shape_fn(h.target.raw_dim(), |(t, j)| {
                        -q[[j, k]] * h.target[[t, j]] * (1.0 - mask_f[[t, k]])
                    }),
                    source: Array2::from_shape_fn(h.source.raw_dim(), |(t, i)| {
                        w[[k, i]] * h.source[[t, i]]
                    }),
                });
            }
            terms
        }
    }
}

/// Coordinates (columns of `mask`) unobserved in at least one row.
fn ever_missing(mask: &Array2<f64>) -> Vec<usize> {
    (0..mask.ncols())
        .filter(|&k| mask.column(k).iter().any(|&m| m <= 0.0))
        .collect()
}

/// The same-frame Hessian term on the Jacobian scale, `(Q diag(m_t) H̄ diag(m_t) Qᵀ)_ji`
/// for each window's observed neurons `m_t` (rows of `mask_f`): one weighted term per
/// pattern of observed neurons, or, where there are more patterns than neurons (single
/// missing samples), one unweighted term per eigenpair `H̄ = Σ_r λ_r v_r v_rᵀ`,
/// `λ_r a_{t,r} a_{t,r}ᵀ` with `a_{t,r} = Q (m_t ⊙ v_r)`.
fn same_frame_jacobian_terms(
    hessian_mean: &Array2<f64>,
    q: &Array2<f64>,
    mask_f: &Array2<f64>,
) -> Vec<ProductTerm> {
    let (t, n) = mask_f.dim();
    let groups = patterns(mask_f.view());
    if groups.len() <= n {
        return groups
            .into_iter()
            .map(|(pattern, rows)| {
                let inner = Array2::from_shape_fn((n, n), |(k, l)| {
                    if pattern[k] && pattern[l] {
                        hessian_mean[[k, l]]
                    } else {
                        0.0
                    }
                });
                let mut target = Array2::zeros((t, n));
                for &r in &rows {
                    target.row_mut(r).fill(1.0);
                }
                ProductTerm {
                    weight: Some(q.dot(&inner).dot(&q.t())),
                    target,
                    source: Array2::ones((t, n)),
                }
            })
            .collect();
    }
    let sym = nalgebra::DMatrix::from_fn(n, n, |k, l| {
        0.5 * (hessian_mean[[k, l]] + hessian_mean[[l, k]])
    });
    let eig = sym.symmetric_eigen();
    (0..n)
        .map(|r| {
            let v = Array1::from_shape_fn(n, |k| eig.eigenvectors[(k, r)]);
            // a_t = Q (m_t ⊙ v) for every window: rows of (mask ⊙ v) Qᵀ.
            let a = (mask_f * &v).dot(&q.t());
            ProductTerm {
                weight: None,
                target: &a * eig.eigenvalues[r],
                source: a,
            }
        })
        .collect()
}

/// Which scale the mean test's effect is on (`--effect-scale`).
///
/// Stein gives `μ = E[s_F s_Sᵀ] = −I_ε E[J]`, the Jacobian mixed by the innovations'
/// precision `I_ε`: with correlated innovations (bilateral pairs correlate at 0.93–0.99
/// in NeuroPAL recordings) ranking `μ` ranks mixtures of the rows of `J`. On the Jacobian
/// scale the future scores are deconvolved by `Q̂ = (E[ŝ_F ŝ_Fᵀ])⁻¹` (estimated on the
/// fold's training windows, so cross-fitted): `E[Q̂ ŝ_F ŝ_Sᵀ] = −E[J]` when
/// `E[s_F s_Fᵀ] = I_ε` (exact for a Gaussian window, where `Q̂ = L_FF⁻¹` and the
/// statistic's mean is `L_FF⁻¹ L_FS = −J`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum EffectScale {
    /// `effect = E[J]`, the transition map's Jacobian.
    Jacobian,
    /// `effect = I_ε E[J]`, the precision-weighted Jacobian (the paper's product).
    #[default]
    Precision,
}

/// What the same-frame (lag-0) test measures (`--same-frame`).
///
/// Both are tests of "the two neurons' next frames are independent given the past" on
/// held-out windows; they differ in what else is held fixed: `Innovation` is
/// [`HeldOutScores::same_frame_innovations`] (Shah & Peters 2020), `Precision`
/// [`HeldOutScores::same_frame`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum SameFrame {
    /// The correlation of the two neurons' innovations `x_{t+1} − E[x_{t+1} | past]`
    /// (default): read from the score by one Newton step within the last block, tested as
    /// a generalised covariance measure (first-order insensitive to the model's error in
    /// the conditional mean).
    #[default]
    Innovation,
    /// The innovations' precision `E[∂²U/∂x_{F,j}∂x_{F,i}]`: minus their partial
    /// covariance given the past and every other neuron of the frame.
    Precision,
}

impl HeldOutScores {
    fn block(&self, a: &Array2<f64>, r: &Range<usize>) -> Array2<f64> {
        a.slice(s![.., r.clone()]).to_owned()
    }

    /// The series of the mean (Jacobian) test.
    pub fn mean_series(&self, statistic: EdgeStatistic) -> ProductSeries {
        let mut sf = self.block(&self.scores, &self.future);
        if let Some(q) = &self.future_scale {
            sf = sf.dot(&q.t()) * &self.block(&self.mask, &self.future);
        }
        let ss = self.block(&self.scores, &self.source);
        let mut terms = Vec::new();
        let statistic = if self.innovations {
            EdgeStatistic::Orthogonal
        } else {
            statistic
        };
        match statistic {
            EdgeStatistic::Product => terms.push(ProductTerm {
                weight: None,
                target: sf,
                source: ss,
            }),
            EdgeStatistic::Orthogonal => {
                let mask_f = self
                    .future_scale
                    .as_ref()
                    .map(|_| self.block(&self.mask, &self.future));
                for h in &self.hessian {
                    let scaled = match (&self.future_scale, &mask_f) {
                        (Some(q), Some(mask_f)) => jacobian_scaled(h, q, mask_f),
                        _ => vec![h.clone()],
                    };
                    terms.extend(scaled.into_iter().map(|term| ProductTerm {
                        target: term.target * 2.0,
                        ..term
                    }));
                }
                terms.push(ProductTerm {
                    weight: None,
                    target: -sf,
                    source: ss,
                });
            }
        }
        ProductSeries::new(
            terms,
            self.block(&self.mask, &self.future),
            self.block(&self.mask, &self.source),
            self.segments.clone(),
        )
    }

    /// The same-frame (lag-0) view of these scores: source and target both the future
    /// block, with the within-block Hessian `H̄ = mean_t ∂²U/∂x_F∂x_F` (from
    /// [`crate::model::EnergyModel::same_frame_hessian_mean`]) as the Hessian term. Stein's
    /// identity within the block gives `E[s_{F,j} s_{F,i}] = E[∂²U/∂x_{F,j}∂x_{F,i}]`, for
    /// the joint window density the curvature of `−log p(x_F | past)`: the precision of
    /// the innovations, whose off-diagonal entries are minus their partial covariances
    /// given the past. The orthogonal statistic is then `2H̄_ji − ŝ_{F,j} ŝ_{F,i}`; `H̄`
    /// enters as its mean over the scored windows, so the HAC variance is that of the
    /// score products (the Hessian's variation over windows is left out of it).
    ///
    /// With `Q̂ = (E[ŝ_F ŝ_Fᵀ])⁻¹` ([`EffectScale::Jacobian`]) both sides are deconvolved:
    /// `u_t = Q̂ ŝ_F(z_t)` is minus the innovation `x_F − E[x_F | past]` (exact for a
    /// Gaussian window), and the statistic `2(Q̂H̄Q̂ᵀ)_ji − u_j u_i` has mean the
    /// innovations' covariance given the past instead of their precision. Both sums run
    /// over the window's observed neurons (`ŝ_F` is 0 at the others, and `H̄` is
    /// restricted to them window by window).
    pub fn same_frame(&self, hessian_mean: Array2<f64>) -> HeldOutScores {
        let (t, n) = (self.scores.nrows(), self.future.len());
        let mut scores = self.scores.clone();
        let hessian = match &self.future_scale {
            None => vec![ProductTerm {
                weight: Some(hessian_mean),
                target: Array2::ones((t, n)),
                source: Array2::ones((t, n)),
            }],
            Some(q) => {
                let mask_f = self.block(&self.mask, &self.future);
                let sf = self.block(&self.scores, &self.future).dot(&q.t()) * &mask_f;
                scores.slice_mut(s![.., self.future.clone()]).assign(&sf);
                // `u = Q̂ ŝ_F` runs over the window's observed neurons, and so does
                // `Q̂ H̄ Q̂ᵀ`.
                same_frame_jacobian_terms(&hessian_mean, q, &mask_f)
            }
        };
        HeldOutScores {
            scores,
            mask: self.mask.clone(),
            hessian,
            segments: self.segments.clone(),
            source: self.future.clone(),
            future: self.future.clone(),
            future_scale: None,
            innovations: false,
        }
    }

    /// The same-frame (lag-0) view on the innovations' scale. With `H̄` the fold model's
    /// within-block Hessian averaged over the windows and `ŝ_F` its future-block score
    /// **at the observed window as given** (missing coordinates at their fill value, not
    /// masked: the Newton step must see the score the model actually has there),
    /// `u_t = H̄⁻¹ ŝ_F(z_t)` is one Newton step of `x_F ↦ U` from `x_{t+1}` towards the
    /// mode of `p(x_F | past)`; for a Gaussian window it is exactly
    /// `−(x_{t+1} − E[x_{t+1} | past])`, minus the innovation (the future block enters
    /// `u_i` only through `x_{t+1,i}`, so a missing neuron does not leak into the others).
    /// Each neuron's `u` is scaled by its root mean square over the windows where it is
    /// observed, `ũ_i = u_i / (Σ_t m_ti u_ti² / Σ_t m_ti)^{1/2}`, and the statistic is
    /// `−ũ_j ũ_i`, so `effect = −μ̂` is the innovations' correlation given the past.
    /// It is the generalised covariance measure of `x_{t+1,i} ⊥ x_{t+1,j} | past`: an
    /// error `δ` in the model's conditional mean enters the product's mean only as
    /// `E[δ_j δ_i]`, second order. The rescaling does not change `t`.
    pub fn same_frame_innovations(
        &self,
        raw_future: &Array2<f64>,
        hessian_mean: &Array2<f64>,
    ) -> crate::Result<HeldOutScores> {
        let ridge = 1e-9
            * hessian_mean
                .diag()
                .mapv(f64::abs)
                .mean()
                .unwrap_or(1.0)
                .max(1e-12);
        let inv = super::linalg::spd_inverse(
            hessian_mean,
            ridge,
            "the same-frame Hessian of the score model (use --same-frame precision)",
        )?;
        let m = self.block(&self.mask, &self.future);
        let mut u = raw_future.dot(&inv) * &m;
        for (mut col, mc) in u.columns_mut().into_iter().zip(m.columns()) {
            let n = mc.sum();
            let ss: f64 = col.iter().map(|v| v * v).sum();
            if n > 0.0 && ss > 0.0 {
                col /= (ss / n).sqrt();
            }
        }
        let mut scores = self.scores.clone();
        scores.slice_mut(s![.., self.future.clone()]).assign(&u);
        Ok(HeldOutScores {
            scores,
            mask: self.mask.clone(),
            hessian: Vec::new(),
            segments: self.segments.clone(),
            source: self.future.clone(),
            future: self.future.clone(),
            future_scale: None,
            innovations: true,
        })
    }

    /// The series of the volatility-transfer test.
    pub fn volatility_series(&self) -> ProductSeries {
        let centred_square = |r: &Range<usize>| {
            let s = self.block(&self.scores, r);
            let m = self.block(&self.mask, r);
            let sq = &s * &s * &m;
            let n = m.sum_axis(Axis(0)).mapv(|v| v.max(1.0));
            let mean = sq.sum_axis(Axis(0)) / n;
            (sq - &mean.insert_axis(Axis(0))) * &m
        };
        ProductSeries::new(
            vec![ProductTerm {
                weight: None,
                target: centred_square(&self.future),
                source: centred_square(&self.source),
            }],
            self.block(&self.mask, &self.future),
            self.block(&self.mask, &self.source),
            self.segments.clone(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::stream;
    use rand::Rng;

    /// `Y_t(j, i)` of every term at time `t`.
    fn value(series: &ProductSeries, t: usize, n: usize) -> Array2<f64> {
        let mut y = Array2::zeros((n, n));
        for term in &series.terms {
            for j in 0..n {
                for i in 0..n {
                    let w = term.weight.as_ref().map_or(1.0, |w| w[[j, i]]);
                    y[[j, i]] += w * term.target[[t, j]] * term.source[[t, i]];
                }
            }
        }
        y
    }

    /// On the Jacobian scale every time point's statistic is `Q̂ Y_t` of the precision
    /// scale over the window's observed future neurons, `Σ_k Q̂_jk m_tk Y_t(k, i)`, for
    /// the three Hessian term forms of the energies (constant weight, gated weight,
    /// unweighted outer product): the Hessian part runs over the same neurons as the
    /// score part, also where a future neuron is missing in some windows (two patterns,
    /// and single missing samples).
    #[test]
    fn jacobian_scale_is_q_times_the_precision_scale_statistic() {
        jacobian_scale_with(false);
        jacobian_scale_with(true);
    }

    /// Missing future coordinates: in a few patterns (one weight per pattern), or
    /// scattered so that there are more patterns than neurons ever missing (one term
    /// per missing neuron).
    fn jacobian_scale_with(scattered: bool) {
        let (t_len, n) = (12, 3);
        let mut rng = stream(2, 0);
        let mut r =
            |rows, cols| Array2::from_shape_fn((rows, cols), |_| rng.random_range(-1.0..1.0));
        let gate = r(t_len, 1);
        let hessian = vec![
            ProductTerm {
                weight: Some(r(n, n)),
                target: Array2::ones((t_len, n)),
                source: Array2::ones((t_len, n)),
            },
            ProductTerm {
                weight: Some(r(n, n)),
                target: Array2::from_shape_fn((t_len, n), |(t, _)| gate[[t, 0]]),
                source: r(t_len, n),
            },
            ProductTerm {
                weight: None,
                target: r(t_len, n),
                source: r(t_len, n),
            },
        ];
        let q = r(n, n);
        let mut mask = Array2::ones((t_len, 2 * n));
        if scattered {
            for (t, k) in [
                (0, 0),
                (1, 1),
                (2, 2),
                (3, 0),
                (3, 1),
                (4, 1),
                (4, 2),
                (5, 0),
                (5, 2),
            ] {
                mask[[t, n + k]] = 0.0;
            }
        } else {
            for t in 0..3 {
                mask[[t, n + 1]] = 0.0;
            }
            mask[[4, n + 2]] = 0.0;
        }
        mask[[3, 0]] = 0.0;
        let future_mask = mask.slice(s![.., n..]).to_owned();
        assert_eq!(
            patterns(future_mask.view()).len() > 1 + ever_missing(&future_mask).len(),
            scattered
        );
        let mut held = HeldOutScores {
            scores: r(t_len, 2 * n) * &mask,
            mask: mask.clone(),
            hessian,
            segments: std::iter::once(0..t_len).collect(),
            source: 0..n,
            future: n..2 * n,
            future_scale: None,
            innovations: false,
        };
        for statistic in [EdgeStatistic::Orthogonal, EdgeStatistic::Product] {
            held.future_scale = None;
            let plain = held.mean_series(statistic);
            held.future_scale = Some(q.clone());
            let scaled = held.mean_series(statistic);
            for t in 0..t_len {
                // value() is masked by m_tk m_ti; the target j is masked after Q̂.
                let target_seen = mask.slice(s![t, n..]).to_owned().insert_axis(Axis(1));
                let expect = q.dot(&value(&plain, t, n)) * &target_seen;
                let got = value(&scaled, t, n);
                let err = (&got - &expect).iter().fold(0.0f64, |a, v| a.max(v.abs()));
                assert!(
                    err < 1e-12,
                    "{statistic:?} scattered {scattered} t {t}: {err}"
                );
            }
        }
    }

    /// The same-frame series by hand: `2H̄_ji − s_{F,j} s_{F,i}` on the precision scale,
    /// `2(Q diag(m) H̄ diag(m) Qᵀ)_ji − (Q s_F)_j (Q s_F)_i` on the Jacobian (covariance)
    /// scale (`m` the window's observed neurons), zero where either neuron is unobserved;
    /// symmetric in (j, i).
    #[test]
    fn same_frame_series_matches_its_definition() {
        same_frame_series_with(false);
        same_frame_series_with(true);
    }

    /// Missing future coordinates in a few patterns, or scattered into more patterns
    /// than neurons (the eigen-decomposed form of the Jacobian scale).
    fn same_frame_series_with(scattered: bool) {
        let (t_len, n) = (8, 3);
        let mut rng = stream(4, 0);
        let mut r =
            |rows, cols| Array2::from_shape_fn((rows, cols), |_| rng.random_range(-1.0..1.0));
        let h = {
            let a = r(n, n);
            &a + &a.t()
        };
        let q = {
            let a = r(n, n);
            a.t().dot(&a) + Array2::<f64>::eye(n)
        };
        let mut mask = Array2::ones((t_len, 2 * n));
        mask[[2, n + 1]] = 0.0;
        mask[[3, n + 1]] = 0.0;
        mask[[5, n]] = 0.0;
        if scattered {
            for (t, k) in [(0, 2), (6, 0), (6, 2), (7, 1), (7, 2)] {
                mask[[t, n + k]] = 0.0;
            }
        }
        let future_mask = mask.slice(s![.., n..]).to_owned();
        assert_eq!(patterns(future_mask.view()).len() > n, scattered);
        let scores = r(t_len, 2 * n) * &mask;
        let base = HeldOutScores {
            scores: scores.clone(),
            mask: mask.clone(),
            hessian: Vec::new(),
            segments: std::iter::once(0..t_len).collect(),
            source: 0..n,
            future: n..2 * n,
            future_scale: None,
            innovations: false,
        };
        for scale in [None, Some(q.clone())] {
            let held = HeldOutScores {
                future_scale: scale.clone(),
                ..base.clone()
            };
            let series = held
                .same_frame(h.clone())
                .mean_series(EdgeStatistic::Orthogonal);
            let qm = scale.clone().unwrap_or_else(|| Array2::eye(n));
            for t in 0..t_len {
                // On the Jacobian scale H̄ is restricted to the window's observed neurons.
                let m = mask.slice(s![t, n..]).to_owned();
                let hm = if scale.is_some() {
                    Array2::from_shape_fn((n, n), |(k, l)| h[[k, l]] * m[k] * m[l])
                } else {
                    h.clone()
                };
                let w = qm.dot(&hm).dot(&qm.t());
                let sf = scores.slice(s![t, n..]).to_owned();
                let u = qm.dot(&sf);
                let got = value(&series, t, n);
                for j in 0..n {
                    for i in 0..n {
                        let seen = mask[[t, n + j]] * mask[[t, n + i]];
                        let expect = seen * (2.0 * w[[j, i]] - u[j] * u[i]);
                        assert!(
                            (got[[j, i]] - expect).abs() < 1e-12,
                            "scale {:?} scattered {scattered} t {t} ({j}, {i}): {} vs {expect}",
                            scale.is_some(),
                            got[[j, i]]
                        );
                        assert!((got[[j, i]] - got[[i, j]]).abs() < 1e-12);
                    }
                }
            }
        }
    }
}
