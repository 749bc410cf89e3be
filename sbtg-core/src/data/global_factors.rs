//! Global factors: conditioning every neuron on the slow whole-brain modes of its
//! recording, estimated from the other neurons.
//!
//! Whole-brain recordings share a few slow modes (arousal, locomotor state) that drive most
//! neurons at once. They are common causes: every test that does not condition on them
//! sees coupling between any two neurons they load on, and when the loadings differ from
//! worm to worm, a model cross-fitted on other worms is wrong about them in a held-out worm
//! and its held-out statistics have a mean that is not zero.
//!
//! With `K` factors, neuron `i`'s z-scored trace `x_i` in a recording is replaced by its
//! residual on the `K` leading principal components of the recording's **other** neurons:
//!
//! ```text
//! C = XᵀX / T                                  (the recording's neuron covariance, 0 where missing)
//! C₋ᵢ = V Λ Vᵀ                                 (eigen-decomposition without row and column i)
//! F = X₋ᵢ V_K                                   (the K leading factor series, T × K)
//! β = (FᵀF)⁻¹ Fᵀ xᵢ = Λ_K⁻¹ V_Kᵀ C₋ᵢ,ᵢ          (FᵀF = T Λ_K: the components are orthogonal)
//! rᵢ = xᵢ − F β,  then z-scored over the frames where i is observed
//! ```
//!
//! Leaving neuron `i` out of its own factors keeps its own signal from defining the mode
//! it is adjusted for. Each recording's factors come from that recording alone, so a
//! held-out worm is adjusted with nothing learnt from the other worms, and no edge,
//! label or connectome enters.
//!
//! What it costs: a coupling that runs through many neurons at once is part of a mode and
//! is removed with it; with `K` much smaller than the number of neurons a pair's own
//! coupling barely moves the leading components.

use nalgebra::{DMatrix, SymmetricEigen};
use ndarray::{Array2, Axis};
use rayon::prelude::*;

use super::PanelRecording;
use crate::{Error, Result};

/// Replaces each recording's traces by their residuals on `k` leave-one-neuron-out
/// global factors (module docs). `k = 0` leaves the recordings unchanged.
pub fn condition_on_global_factors(recordings: &mut [PanelRecording], k: usize) -> Result<()> {
    if k == 0 {
        return Ok(());
    }
    recordings.par_iter_mut().try_for_each(|r| {
        r.x = residuals(&r.x, &r.observed, k).map_err(|why| {
            let source = if r.file.as_os_str().is_empty() {
                format!("recording `{}`", r.name)
            } else {
                r.file.display().to_string()
            };
            Error::param("global_factors", format!("{source}: {why}"))
        })?;
        Ok(())
    })
}

/// The residuals of `x` (`T × n`, z-scored, 0 where `observed` is 0) on `k` factors of
/// the other present neurons, z-scored over each neuron's observed frames.
fn residuals(
    x: &Array2<f64>,
    observed: &Array2<f64>,
    k: usize,
) -> std::result::Result<Array2<f64>, String> {
    let (t_len, n) = x.dim();
    // Neurons present in this recording (an absent neuron is all zero and stays so).
    let present: Vec<usize> = (0..n)
        .filter(|&j| observed.column(j).iter().any(|&o| o > 0.0))
        .collect();
    let m = present.len();
    if k + 1 >= m {
        return Err(format!(
            "{k} factors asked for but only {m} neurons are present; use fewer factors (at most {})",
            m.saturating_sub(2)
        ));
    }
    let xp = x.select(Axis(1), &present);
    let c = xp.t().dot(&xp) / t_len as f64;
    let mut out = Array2::zeros((t_len, n));
    let columns: Vec<(usize, Vec<f64>)> = (0..m)
        .into_par_iter()
        .map(|a| {
            let others: Vec<usize> = (0..m).filter(|&b| b != a).collect();
            let c_minus = DMatrix::from_fn(m - 1, m - 1, |p, q| c[[others[p], others[q]]]);
            let eig = SymmetricEigen::new(c_minus);
            let mut order: Vec<usize> = (0..m - 1).collect();
            order.sort_by(|&p, &q| eig.eigenvalues[q].total_cmp(&eig.eigenvalues[p]));
            let mut resid: Vec<f64> = xp.column(a).to_vec();
            for &e in order.iter().take(k) {
                let lambda = eig.eigenvalues[e];
                if lambda <= 1e-12 {
                    continue;
                }
                let v = eig.eigenvectors.column(e);
                // β = vᵀ C₋ᵢ,ᵢ / λ; the factor series f = X₋ᵢ v.
                let beta: f64 = others
                    .iter()
                    .enumerate()
                    .map(|(p, &b)| v[p] * c[[b, a]])
                    .sum::<f64>()
                    / lambda;
                for (t, r) in resid.iter_mut().enumerate() {
                    let f: f64 = others
                        .iter()
                        .enumerate()
                        .map(|(p, &b)| v[p] * xp[[t, b]])
                        .sum();
                    *r -= beta * f;
                }
            }
            (present[a], resid)
        })
        .collect();
    for (j, resid) in columns {
        let obs = observed.column(j);
        let frames: Vec<usize> = (0..t_len).filter(|&t| obs[t] > 0.0).collect();
        let count = frames.len() as f64;
        let mean = frames.iter().map(|&t| resid[t]).sum::<f64>() / count;
        let var = frames
            .iter()
            .map(|&t| (resid[t] - mean).powi(2))
            .sum::<f64>()
            / (count - 1.0).max(1.0);
        // NaN (no observed frame) or a residual of zero variance.
        if var.is_nan() || var <= 1e-12 {
            return Err(format!(
                "neuron {} of the panel is entirely explained by {k} factors of the others; use fewer factors",
                j + 1
            ));
        }
        let sd = var.sqrt();
        for &t in &frames {
            out[[t, j]] = (resid[t] - mean) / sd;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::stream;
    use rand_distr::{Distribution, StandardNormal};

    /// Two neurons' residuals on one factor, against the regression written out by hand:
    /// three neurons driven by one mode; the residual of neuron 0 on the leading component
    /// of neurons 1 and 2 is uncorrelated with that component.
    #[test]
    fn residual_is_orthogonal_to_the_other_neurons_leading_component() {
        let mut rng = stream(3, 0);
        let t_len = 400;
        let mut x = Array2::zeros((t_len, 4));
        for t in 0..t_len {
            let g: f64 = StandardNormal.sample(&mut rng);
            for j in 0..4 {
                let e: f64 = StandardNormal.sample(&mut rng);
                x[[t, j]] = (0.5 + 0.3 * j as f64) * g + e;
            }
        }
        // z-score as the panel does.
        for mut col in x.columns_mut() {
            let mean = col.mean().unwrap();
            let sd = col.std(1.0);
            col.mapv_inplace(|v| (v - mean) / sd);
        }
        let obs = Array2::ones((t_len, 4));
        let r = residuals(&x, &obs, 1).unwrap();
        // Neuron 0's factor: the leading eigenvector of the covariance of neurons 1..3.
        let others = x.slice(ndarray::s![.., 1..]).to_owned();
        let c = others.t().dot(&others) / t_len as f64;
        let eig = SymmetricEigen::new(DMatrix::from_fn(3, 3, |p, q| c[[p, q]]));
        let lead = eig.eigenvalues.imax();
        let v = eig.eigenvectors.column(lead);
        let f: Vec<f64> = (0..t_len)
            .map(|t| (0..3).map(|p| v[p] * others[[t, p]]).sum())
            .collect();
        let dot: f64 = (0..t_len).map(|t| r[[t, 0]] * f[t]).sum();
        assert!(dot.abs() < 1e-8, "residual·factor = {dot}");
        // Z-scored, and the mode's share is gone: the residuals barely correlate.
        let col = r.column(0);
        assert!(col.mean().unwrap().abs() < 1e-12);
        assert!((col.std(1.0) - 1.0).abs() < 1e-12);
        let corr = |a: usize, b: usize| {
            (0..t_len).map(|t| r[[t, a]] * r[[t, b]]).sum::<f64>() / (t_len as f64 - 1.0)
        };
        let raw = |a: usize, b: usize| {
            (0..t_len).map(|t| x[[t, a]] * x[[t, b]]).sum::<f64>() / (t_len as f64 - 1.0)
        };
        assert!(
            raw(2, 3) > 0.4,
            "the mode couples the raw traces: {}",
            raw(2, 3)
        );
        assert!(
            corr(2, 3).abs() < 0.15,
            "residual correlation {}",
            corr(2, 3)
        );
    }

    /// An absent neuron stays absent (zero), observed frames only are z-scored, and asking
    /// for as many factors as there are other neurons is refused.
    #[test]
    fn missing_neurons_stay_missing_and_too_many_factors_are_refused() {
        let mut rng = stream(4, 0);
        let t_len = 50;
        let mut x = Array2::from_shape_fn((t_len, 4), |_| StandardNormal.sample(&mut rng));
        let mut obs = Array2::ones((t_len, 4));
        x.column_mut(3).fill(0.0);
        obs.column_mut(3).fill(0.0);
        x[[7, 1]] = 0.0;
        obs[[7, 1]] = 0.0;
        let r = residuals(&x, &obs, 1).unwrap();
        assert!(r.column(3).iter().all(|&v| v == 0.0));
        assert_eq!(r[[7, 1]], 0.0);
        let err = residuals(&x, &obs, 2).unwrap_err().to_string();
        assert!(err.contains("only 3 neurons are present"), "{err}");
    }
}
