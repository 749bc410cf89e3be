//! Prewhitened correlation (Box & Jenkins): the lagged correlation of each neuron's
//! innovations instead of its trace.
//!
//! In every recording each neuron's trace is replaced by the residual of its own
//! autoregression, `e_t = x_t − Σ_{k=1..p} a_k x_{t−k}` (least squares on the frames where
//! `x_t, …, x_{t−p}` are observed; the order `p ≤ max_order` by BIC on a common sample),
//! scaled to unit variance. The lagged-correlation test then runs unchanged on the
//! residuals: `μ̂(j, i) = mean_t e_{t+r, j} e_{t, i}`, HAC t-test, `effect = μ̂`. At lag 0 it
//! is the correlation of two neurons' innovations given **each neuron's own past**, the
//! same-frame statistic SBTG's default compares with (which conditions on every neuron's
//! past); at lag r ≥ 1 the classical prewhitened cross-correlation, which removes the
//! slow autocorrelation that inflates plain lagged correlation.

use ndarray::{Array1, Array2};

use super::{Estimator, FitContext, LagEvidence, LaggedCorrelation, Method, Progress};
use crate::data::Panel;
use crate::stats::linalg::spd_inverse;
use crate::{Error, Result};

/// The prewhitened-correlation baseline.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PrewhitenedCorrelation {
    /// Largest autoregressive order BIC may choose for a neuron (`--ar-order`).
    pub max_order: usize,
}

impl Default for PrewhitenedCorrelation {
    fn default() -> Self {
        PrewhitenedCorrelation { max_order: 5 }
    }
}

impl Estimator for PrewhitenedCorrelation {
    fn method(&self) -> Method {
        Method::PrewhitenedCorrelation
    }
    fn validate(&self) -> Result<()> {
        if !(1..=20).contains(&self.max_order) {
            return Err(Error::param(
                "ar-order",
                format!(
                    "the largest autoregressive order must lie in 1..=20, got {}",
                    self.max_order
                ),
            ));
        }
        Ok(())
    }
    fn window_rule(&self) -> String {
        format!(
            "each neuron's trace replaced, per recording, by the unit-variance residual of its own AR(p), p ≤ {} by BIC; then lag r: [e_t, e_{{t+r}}] inside each recording; lag 0: every frame",
            self.max_order
        )
    }
    fn tests_same_frame(&self) -> bool {
        true
    }
    fn fit(&self, panel: &Panel, lags: &[usize], ctx: &FitContext) -> Result<Vec<LagEvidence>> {
        (ctx.progress)(Progress::Stage("prewhitening"));
        let whitened = self.prewhiten(panel)?;
        LaggedCorrelation {}.fit(&whitened, lags, ctx)
    }
}

/// One neuron's autoregression in one recording.
#[derive(Clone, Debug, PartialEq)]
pub struct ArFit {
    /// `a_1, …, a_p` (`p` = the order BIC chose).
    pub coefficients: Vec<f64>,
    /// `σ²` of the residuals of the chosen order on the common sample.
    pub residual_variance: f64,
}

impl PrewhitenedCorrelation {
    /// The panel with every recording's traces replaced by their unit-variance AR
    /// residuals; a frame whose residual is undefined (one of its `p` past frames is
    /// missing) is marked unobserved.
    pub fn prewhiten(&self, panel: &Panel) -> Result<Panel> {
        let mut out = panel.clone();
        for (r, rec) in out.recordings.iter_mut().enumerate() {
            let (t_len, n) = rec.x.dim();
            let mut x = Array2::zeros((t_len, n));
            let mut observed = Array2::zeros((t_len, n));
            for j in 0..n {
                let trace = rec.x.column(j).to_owned();
                let seen = rec.observed.column(j).mapv(|v| v > 0.0);
                let Some(fit) = fit_ar(&trace, &seen, self.max_order).map_err(|e| {
                    Error::Data(format!(
                        "prewhitening {} in recording {} ({}): {e}",
                        panel.neurons[j],
                        panel.recordings[r].name,
                        panel.recordings[r].file.display()
                    ))
                })?
                else {
                    continue;
                };
                let p = fit.coefficients.len();
                let mut residuals = Vec::new();
                for t in p..t_len {
                    if (0..=p).all(|k| seen[t - k]) {
                        let e = trace[t]
                            - (1..=p)
                                .map(|k| fit.coefficients[k - 1] * trace[t - k])
                                .sum::<f64>();
                        residuals.push((t, e));
                    }
                }
                let m2 = residuals.iter().map(|(_, e)| e * e).sum::<f64>()
                    / residuals.len().max(1) as f64;
                let mean =
                    residuals.iter().map(|(_, e)| e).sum::<f64>() / residuals.len().max(1) as f64;
                let sd = (m2 - mean * mean).max(0.0).sqrt();
                if sd > 0.0 {
                    for (t, e) in residuals {
                        x[[t, j]] = (e - mean) / sd;
                        observed[[t, j]] = 1.0;
                    }
                }
            }
            rec.x = x;
            rec.observed = observed;
        }
        Ok(out)
    }
}

/// Least-squares AR(p) fits of `x` for `p = 1..=max_order` on the common sample of
/// frames `t ≥ max_order` with `x_t, …, x_{t−max_order}` observed, the order with the
/// smallest `BIC = m log σ̂²_p + p log m` (`m` frames), refitted on every frame whose
/// own `p` past frames are observed. `None` when fewer than `10 (max_order + 1)` frames
/// qualify (a neuron barely seen in this recording) or the trace is flat there: it is
/// left unobserved.
pub fn fit_ar(x: &Array1<f64>, seen: &Array1<bool>, max_order: usize) -> Result<Option<ArFit>> {
    let t_len = x.len();
    let rows = |p: usize| -> Vec<usize> {
        (p..t_len)
            .filter(|&t| (0..=p).all(|k| seen[t - k]))
            .collect()
    };
    let common = rows(max_order);
    // Too few frames, or a flat trace: no innovations to correlate.
    let flat = common.iter().all(|&t| x[t] == x[common[0]]);
    if common.len() < 10 * (max_order + 1) || flat {
        return Ok(None);
    }
    let solve = |p: usize, sample: &[usize]| -> Result<(Vec<f64>, f64)> {
        let mut xtx = Array2::<f64>::zeros((p, p));
        let mut xty = Array1::<f64>::zeros(p);
        for &t in sample {
            for a in 0..p {
                xty[a] += x[t - 1 - a] * x[t];
                for b in 0..p {
                    xtx[[a, b]] += x[t - 1 - a] * x[t - 1 - b];
                }
            }
        }
        let ridge = 1e-10 * (0..p).map(|a| xtx[[a, a]]).sum::<f64>().max(1e-300) / p as f64;
        let coef = spd_inverse(&xtx, ridge, "lagged second moment of a trace")?.dot(&xty);
        let sse: f64 = sample
            .iter()
            .map(|&t| {
                let pred: f64 = (0..p).map(|a| coef[a] * x[t - 1 - a]).sum();
                (x[t] - pred).powi(2)
            })
            .sum();
        Ok((coef.to_vec(), sse / sample.len() as f64))
    };
    let m = common.len() as f64;
    let mut best: Option<(f64, usize)> = None;
    for p in 1..=max_order {
        let (_, s2) = solve(p, &common)?;
        let bic = m * s2.max(1e-300).ln() + p as f64 * m.ln();
        if best.is_none_or(|(b, _)| bic < b) {
            best = Some((bic, p));
        }
    }
    let p = best.expect("max_order ≥ 1").1;
    let (coefficients, residual_variance) = solve(p, &rows(p))?;
    Ok(Some(ArFit {
        coefficients,
        residual_variance,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::stream;
    use rand_distr::{Distribution, StandardNormal};

    fn ar2(t_len: usize, seed: u64) -> (Array1<f64>, Array1<f64>) {
        let mut rng = stream(seed, 0);
        let e = Array1::from_shape_fn(t_len + 200, |_| StandardNormal.sample(&mut rng));
        let mut x = Array1::<f64>::zeros(t_len + 200);
        for t in 2..t_len + 200 {
            x[t] = 1.2 * x[t - 1] - 0.5 * x[t - 2] + e[t];
        }
        (
            x.slice(ndarray::s![200..]).to_owned(),
            e.slice(ndarray::s![200..]).to_owned(),
        )
    }

    /// On a simulated AR(2), BIC picks order 2 among 1..=5, the coefficients are within
    /// sampling error of (1.2, −0.5), and the residuals are the innovations up to that
    /// error.
    #[test]
    fn bic_finds_the_order_of_an_ar2_and_its_residuals_are_the_innovations() {
        let (x, e) = ar2(5000, 3);
        let seen = Array1::from_elem(x.len(), true);
        let fit = fit_ar(&x, &seen, 5).unwrap().unwrap();
        assert_eq!(fit.coefficients.len(), 2, "{fit:?}");
        // 0.05: about four standard errors, √((1 − a₂²)/n) ≈ 0.012.
        assert!((fit.coefficients[0] - 1.2).abs() < 0.05, "{fit:?}");
        assert!((fit.coefficients[1] + 0.5).abs() < 0.05, "{fit:?}");
        assert!((fit.residual_variance - 1.0).abs() < 0.05, "{fit:?}");
        let resid: Vec<f64> = (2..x.len())
            .map(|t| x[t] - fit.coefficients[0] * x[t - 1] - fit.coefficients[1] * x[t - 2])
            .collect();
        let err = resid
            .iter()
            .zip(e.iter().skip(2))
            .map(|(r, e)| (r - e).powi(2))
            .sum::<f64>()
            / resid.len() as f64;
        assert!(err < 0.01, "mean squared distance to the innovations {err}");
    }

    /// The coefficients by hand: for AR(1) without missing frames the least-squares
    /// coefficient is `Σ x_t x_{t−1} / Σ x_{t−1}²` over `t ≥ 1`.
    #[test]
    fn ar1_coefficient_is_the_lag_one_regression() {
        let x = Array1::from(vec![1.0, 0.5, -0.2, 0.3, 0.9, -1.1, 0.4, 0.0, 0.7, -0.3]);
        let x = ndarray::concatenate![ndarray::Axis(0), x, x.mapv(|v| -v), x, x.mapv(|v| 0.5 * v)];
        let seen = Array1::from_elem(x.len(), true);
        let fit = fit_ar(&x, &seen, 1).unwrap().unwrap();
        let num: f64 = (1..x.len()).map(|t| x[t] * x[t - 1]).sum();
        let den: f64 = (1..x.len()).map(|t| x[t - 1] * x[t - 1]).sum();
        assert!((fit.coefficients[0] - num / den).abs() < 1e-9);
    }

    /// Frames whose past is missing give no residual; too few frames or a flat trace give
    /// no fit.
    #[test]
    fn missing_frames_are_skipped_and_short_traces_left_out() {
        let (x, _) = ar2(400, 5);
        let mut seen = Array1::from_elem(x.len(), true);
        for t in 100..150 {
            seen[t] = false;
        }
        let fit = fit_ar(&x, &seen, 3).unwrap().unwrap();
        assert!(!fit.coefficients.is_empty());
        let short = Array1::from_elem(x.len(), false);
        assert!(fit_ar(&x, &short, 3).unwrap().is_none());
        let flat = Array1::from_elem(x.len(), 0.0);
        assert!(fit_ar(&flat, &Array1::from_elem(x.len(), true), 3)
            .unwrap()
            .is_none());
    }
}
