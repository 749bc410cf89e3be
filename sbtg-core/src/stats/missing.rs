//! Neurons missing from a recording, under a Gaussian window model.
//!
//! A NeuroPAL recording lacks some of the panel's neurons, so its windows `z` have
//! observed coordinates `O` and missing ones `M` (the same for every window of the
//! recording). [`em_covariance`] estimates the second moment `Σ` of the complete
//! windows by expectation–maximisation for a zero-mean Gaussian with missing blocks
//! (Little & Rubin 2002, ch. 11), and [`impute`] replaces each window's missing
//! coordinates by a draw from their conditional distribution given its observed ones,
//! `z_M | z_O ~ N(B z_O, Σ_MM − B Σ_OM)`, `B = Σ_MO Σ_OO⁻¹`.
//!
//! Why a draw and not the conditional mean: a completed window `(z_O, z_M)` then has
//! (under the Gaussian model) the distribution of a complete window, so a score model
//! trained on such windows and its Stein products at the observed coordinates have the
//! expectations of complete data, `E[s_j s_i] = E[∂²U/∂z_j∂z_i]`. Zero-filling instead
//! conditions every score on the missing neurons sitting at their mean, and the
//! conditional mean makes `z_M` an exact function of `z_O`, a degenerate direction that
//! a trained model learns.
//!
//! Written by hand: EM for a multivariate normal with a few block-missing patterns is
//! a few lines of linear algebra on top of nalgebra, and no maintained crate does it.

use std::collections::BTreeMap;

use nalgebra::DMatrix;
use ndarray::{Array2, ArrayView2};
use rand::Rng;
use rand_distr::StandardNormal;

use crate::{Error, Result};

/// How the score models see the neurons missing from a recording.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum MissingNeurons {
    /// At 0, their mean (every score is then conditioned on them sitting there).
    #[default]
    Zero,
    /// Drawn from their conditional distribution given the window's observed neurons
    /// under the EM estimate of the training windows' Gaussian model ([`impute`]).
    Impute,
}

/// Rows of `mask` grouped by their pattern of observed coordinates (`mask > 0`).
pub(crate) fn patterns(mask: ArrayView2<f64>) -> BTreeMap<Vec<bool>, Vec<usize>> {
    let mut groups: BTreeMap<Vec<bool>, Vec<usize>> = BTreeMap::new();
    for (t, row) in mask.outer_iter().enumerate() {
        groups
            .entry(row.iter().map(|&m| m > 0.0).collect())
            .or_default()
            .push(t);
    }
    groups
}

fn split(pattern: &[bool]) -> (Vec<usize>, Vec<usize>) {
    (0..pattern.len()).partition(|&k| pattern[k])
}

fn sub(a: &DMatrix<f64>, rows: &[usize], cols: &[usize]) -> DMatrix<f64> {
    DMatrix::from_fn(rows.len(), cols.len(), |r, c| a[(rows[r], cols[c])])
}

/// `B = Σ_MO Σ_OO⁻¹` and the conditional covariance `Σ_MM − B Σ_OM`.
fn conditional(
    sigma: &DMatrix<f64>,
    obs: &[usize],
    mis: &[usize],
) -> Result<(DMatrix<f64>, DMatrix<f64>)> {
    let chol = sub(sigma, obs, obs).cholesky().ok_or_else(|| {
        Error::Training(
            "the window covariance of the observed neurons is singular; drop neurons seen in few recordings (--min-recordings)".into(),
        )
    })?;
    let s_om = sub(sigma, obs, mis);
    // B = Σ_MO Σ_OO⁻¹ = (Σ_OO⁻¹ Σ_OM)ᵀ.
    let b = chol.solve(&s_om).transpose();
    let cond = sub(sigma, mis, mis) - &b * &s_om;
    Ok((b, cond))
}

/// One pattern of observed coordinates: its observed and missing coordinates, the
/// observed sum of squares `Σ_t z_O z_Oᵀ` and its number of rows.
struct Pattern {
    obs: Vec<usize>,
    mis: Vec<usize>,
    gram: DMatrix<f64>,
    rows: f64,
}

/// EM estimate of the second moment `Σ` of zero-mean windows `z` (rows) whose
/// coordinates with `mask = 0` are missing, plus `ridge · I`.
///
/// E-step, for each pattern with observed `O`, missing `M` and observed sum of squares
/// `C = Σ_t z_O z_Oᵀ` over its `n` rows: `Σ_t E[z_M z_Oᵀ] = B C`,
/// `Σ_t E[z_M z_Mᵀ] = B C Bᵀ + n (Σ_MM − B Σ_OM)`. M-step: `Σ` = the average of the
/// completed sums. Starts from the identity (standardised coordinates) and stops when
/// no entry moves by more than `1e-6` or after `iterations`. Windows without a missing
/// coordinate enter with their plain second moment. The entry of a pair never observed
/// together is not identified by the data (the likelihood is flat along it); EM leaves
/// it where its path from the identity ends, and the edge tests leave such pairs
/// untested.
pub fn em_covariance(
    z: ArrayView2<f64>,
    mask: ArrayView2<f64>,
    ridge: f64,
    iterations: usize,
) -> Result<Array2<f64>> {
    let (rows, d) = z.dim();
    if rows == 0 {
        return Err(Error::Data(
            "no windows to estimate the window covariance from".into(),
        ));
    }
    let groups: Vec<Pattern> = patterns(mask)
        .into_iter()
        .map(|(pattern, ts)| {
            let (obs, mis) = split(&pattern);
            let zo = DMatrix::from_fn(ts.len(), obs.len(), |r, c| z[[ts[r], obs[c]]]);
            Pattern {
                gram: zo.transpose() * &zo,
                rows: ts.len() as f64,
                obs,
                mis,
            }
        })
        .collect();
    let mut sigma = DMatrix::<f64>::identity(d, d);
    for _ in 0..iterations.max(1) {
        let mut acc = DMatrix::<f64>::zeros(d, d);
        for Pattern {
            obs,
            mis,
            gram: c,
            rows: n,
        } in &groups
        {
            for (r, &i) in obs.iter().enumerate() {
                for (s, &j) in obs.iter().enumerate() {
                    acc[(i, j)] += c[(r, s)];
                }
            }
            if mis.is_empty() {
                continue;
            }
            let (b, cond) = conditional(&sigma, obs, mis)?;
            let mo = &b * c;
            let mm = &mo * b.transpose() + cond * *n;
            for (r, &i) in mis.iter().enumerate() {
                for (s, &j) in obs.iter().enumerate() {
                    acc[(i, j)] += mo[(r, s)];
                    acc[(j, i)] += mo[(r, s)];
                }
                for (s, &j) in mis.iter().enumerate() {
                    acc[(i, j)] += mm[(r, s)];
                }
            }
        }
        acc /= rows as f64;
        let moved = (&acc - &sigma).amax();
        sigma = acc;
        if moved < 1e-6 {
            break;
        }
    }
    Ok(Array2::from_shape_fn((d, d), |(i, j)| {
        sigma[(i, j)] + if i == j { ridge } else { 0.0 }
    }))
}

/// Replaces the missing coordinates (`mask = 0`) of every row of `z` by a draw from
/// `N(B z_O, Σ_MM − B Σ_OM)` under the window second moment `sigma`; observed
/// coordinates are left as they are. Rows are drawn in order from `rng`, so the draws
/// are reproducible. Returns the number of coordinates imputed.
pub fn impute(
    z: &mut Array2<f64>,
    mask: ArrayView2<f64>,
    sigma: &Array2<f64>,
    rng: &mut impl Rng,
) -> Result<usize> {
    let d = sigma.nrows();
    let s = DMatrix::from_fn(d, d, |i, j| sigma[[i, j]]);
    let mut imputed = 0;
    let mut plans = BTreeMap::new();
    for (pattern, ts) in patterns(mask) {
        let (obs, mis) = split(&pattern);
        if mis.is_empty() {
            continue;
        }
        let (b, cond) = conditional(&s, &obs, &mis)?;
        // A conditional covariance is positive semi-definite; a tiny jitter keeps its
        // Cholesky factor defined when a missing coordinate is (nearly) determined.
        let jitter = 1e-9 * (1.0 + cond.diagonal().amax());
        let l = (cond + DMatrix::identity(mis.len(), mis.len()) * jitter)
            .cholesky()
            .ok_or_else(|| {
                Error::Training(
                    "the conditional covariance of the missing neurons is not positive definite"
                        .into(),
                )
            })?
            .l();
        plans.insert(ts[0], (obs, mis, b, l, ts));
    }
    // Rows in order of their first window, so the draws do not depend on the patterns'
    // sort order.
    for (_, (obs, mis, b, l, ts)) in plans {
        for t in ts {
            let zo = nalgebra::DVector::from_iterator(obs.len(), obs.iter().map(|&k| z[[t, k]]));
            let xi = nalgebra::DVector::from_iterator(
                mis.len(),
                (0..mis.len()).map(|_| rng.sample::<f64, _>(StandardNormal)),
            );
            let draw = &b * zo + &l * xi;
            for (r, &k) in mis.iter().enumerate() {
                z[[t, k]] = draw[r];
            }
            imputed += mis.len();
        }
    }
    Ok(imputed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::stream;

    /// Draws `rows` windows of a known 3-dimensional Gaussian (correlations 0.8, 0.5,
    /// 0.4). Of every `thirds` rows in turn, one hides coordinate 2, one hides
    /// coordinate 0 and (with `thirds = 3`) one is complete.
    fn block_missing(rows: usize, thirds: usize) -> (Array2<f64>, Array2<f64>, Array2<f64>) {
        let truth = ndarray::array![[1.0, 0.8, 0.5], [0.8, 1.0, 0.4], [0.5, 0.4, 1.0]];
        let t = DMatrix::from_fn(3, 3, |i, j| truth[[i, j]]);
        let l = t.cholesky().unwrap().l();
        let mut rng = stream(7, 0);
        let mut z = Array2::zeros((rows, 3));
        for r in 0..rows {
            let xi = nalgebra::DVector::from_iterator(
                3,
                (0..3).map(|_| rng.sample::<f64, _>(StandardNormal)),
            );
            let x = &l * xi;
            for k in 0..3 {
                z[[r, k]] = x[k];
            }
        }
        let mut mask = Array2::ones((rows, 3));
        for r in 0..rows {
            let hidden = match r % thirds {
                0 => 2,
                1 => 0,
                _ => continue,
            };
            mask[[r, hidden]] = 0.0;
            z[[r, hidden]] = 0.0;
        }
        (z, mask, truth)
    }

    /// EM recovers every entry of a known covariance from windows of three missingness
    /// patterns, where zero-filling shrinks each pair towards 0 by the share of windows
    /// that lack it.
    #[test]
    fn em_recovers_a_covariance_from_block_missing_windows() {
        let (z, mask, truth) = block_missing(60_000, 3);
        let sigma = em_covariance(z.view(), mask.view(), 0.0, 500).unwrap();
        for i in 0..3 {
            for j in 0..3 {
                assert!(
                    (sigma[[i, j]] - truth[[i, j]]).abs() < 0.02,
                    "({i}, {j}): {} against {}",
                    sigma[[i, j]],
                    truth[[i, j]]
                );
            }
        }
        let zf = z.t().dot(&z) / z.nrows() as f64;
        assert!((zf[[0, 2]] - 0.5 / 3.0).abs() < 0.02, "{}", zf[[0, 2]]);
    }

    /// Imputed windows have the complete windows' second moment (a draw, not the
    /// conditional mean, whose variance would be too small); observed coordinates are
    /// untouched; the same stream gives the same draws.
    #[test]
    fn imputed_windows_have_the_complete_second_moment() {
        let (z, mask, truth) = block_missing(60_000, 3);
        let sigma = em_covariance(z.view(), mask.view(), 0.0, 500).unwrap();
        let mut a = z.clone();
        let count = impute(&mut a, mask.view(), &sigma, &mut stream(1, 2)).unwrap();
        assert_eq!(count, 40_000);
        let m = a.t().dot(&a) / a.nrows() as f64;
        for i in 0..3 {
            for j in 0..3 {
                assert!(
                    (m[[i, j]] - truth[[i, j]]).abs() < 0.04,
                    "({i}, {j}): {}",
                    m[[i, j]]
                );
            }
        }
        for ((x, y), o) in z.iter().zip(a.iter()).zip(mask.iter()) {
            if *o > 0.0 {
                assert_eq!(x, y);
            }
        }
        let mut b = z.clone();
        impute(&mut b, mask.view(), &sigma, &mut stream(1, 2)).unwrap();
        assert_eq!(a, b);
    }
}
