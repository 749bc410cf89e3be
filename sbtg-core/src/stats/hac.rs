//! Newey–West (Bartlett kernel) t-tests of `E[Y(j,i)] = 0` for every edge at once.
//!
//! For each edge, with `N` observed windows and mean `μ̂ = Σ_t Y_t / N`:
//!
//! - autocovariance sums `Γ_h = Σ_{t, t+h in one segment, both observed} (Y_t − μ̂)(Y_{t+h} − μ̂)`;
//! - long-run variance `Ω̂ = [Γ_0 + 2 Σ_{h ≥ 1} k(h/b) Γ_h] / (N − 1)`, Bartlett
//!   `k(x) = max(0, 1 − x)`; dividing by `N − 1` instead of `N` is the small-sample
//!   (degrees-of-freedom) correction for the estimated mean;
//! - `t = μ̂ / √(Ω̂ / N)`, two-sided `p = 2·S_{t(N−1)}(|t|)` from the Student-t survival
//!   function (never `1 − cdf`), floored at the smallest normal f64 so it is never 0.
//!
//! **Bandwidth rule** (default [`Bandwidth::NeweyWest`]): the Newey & West (1994)
//! nonparametric plug-in for the Bartlett kernel, pooled over the family of edges. With
//! the pilot lag `m = ⌊4 (N/100)^{2/9}⌋` and each edge's autocorrelations `r_h = Γ_h/Γ_0`,
//! `ŝ⁽¹⁾ = 2 Σ_{h=1}^{m} h r_h`, `ŝ⁽⁰⁾ = 1 + 2 Σ_{h=1}^{m} r_h`, pooled
//! `α̂ = Σ_e (ŝ⁽¹⁾_e)² / Σ_e (ŝ⁽⁰⁾_e)²` and `b = 1.1447 (α̂ N)^{1/3}`, `N` the median
//! number of windows per edge, `b` capped at a quarter of the longest segment. Held-out
//! score products have small lag-1 but slowly decaying autocorrelation (the slow calcium
//! dynamics the model does not whiten completely); the AR(1) plug-in of Andrews (1991)
//! ([`Bandwidth::Andrews`]), which sees only lag 1, then picks too short a bandwidth and
//! the test over-rejects. One bandwidth for the family keeps every edge on one footing.
//!
//! The sums run as GEMMs over the [`ProductTerm`](super::ProductTerm)s, in parallel
//! over lags and term pairs (rayon). Series of several folds are pooled: the mean is
//! global and each fold adds its own autocovariance sums.

use std::borrow::{Borrow, Cow};
use std::ops::Range;

use ndarray::{Array2, Axis, CowArray, Ix2, Zip};
use rayon::prelude::*;
use statrs::distribution::{ContinuousCDF, StudentsT};

use super::{ProductSeries, ProductTerm};

/// How the HAC bandwidth `b` is chosen.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "rule", content = "value")]
pub enum Bandwidth {
    /// Newey–West (1994) nonparametric plug-in pooled over the family (module docs).
    NeweyWest,
    /// Andrews (1991) AR(1) plug-in pooled over the family (module docs).
    Andrews,
    /// A fixed bandwidth `b` (lags `h < b` get weight `1 − h/b`).
    Fixed(f64),
}

/// Per-edge results of the HAC t-test (`[target, source]` matrices).
#[derive(Clone, Debug)]
pub struct HacResult {
    pub mean: Array2<f64>,
    /// Number of observed windows per edge.
    pub count: Array2<f64>,
    /// Long-run variance `Ω̂` of the series (after flooring).
    pub long_run_variance: Array2<f64>,
    pub t: Array2<f64>,
    pub p: Array2<f64>,
    /// True where `Ω̂` was non-positive or tiny and was floored (the test is then unreliable).
    pub floored: Array2<bool>,
    /// The bandwidth `b` used.
    pub bandwidth: f64,
}

/// Rows `t` such that `t` and `t + h` lie in the same segment.
pub(crate) fn lag_rows(segments: &[Range<usize>], h: usize) -> Vec<usize> {
    segments
        .iter()
        .flat_map(|s| s.start..s.end.saturating_sub(h).max(s.start))
        .collect()
}

/// `Σ_t Y_t` and the observed count of every edge, as GEMMs.
pub fn sums(series: &ProductSeries) -> (Array2<f64>, Array2<f64>) {
    let count = series.target_mask.t().dot(&series.source_mask);
    let mut total = Array2::zeros(count.raw_dim());
    for m in &series.terms {
        let g = m.target.t().dot(&m.source);
        match &m.weight {
            Some(w) => total += &(&g * w),
            None => total += &g,
        }
    }
    (total, count)
}

/// The centred series `Y_t − μ̂·1[observed]` as a term list (the series' own terms
/// borrowed, the centring term owned).
fn centred_terms<'a>(series: &'a ProductSeries, mean: &Array2<f64>) -> Vec<Cow<'a, ProductTerm>> {
    let mut terms: Vec<Cow<ProductTerm>> = series.terms.iter().map(Cow::Borrowed).collect();
    terms.push(Cow::Owned(ProductTerm {
        weight: Some(-mean),
        target: series.target_mask.clone(),
        source: series.source_mask.clone(),
    }));
    terms
}

/// `Γ_h` sums of one fold for every lag in `lags`, by whichever of the two exact
/// evaluations does less work: the GEMM expansion over term pairs
/// ([`autocov_sums_gemm`], about `P²·L` GEMMs for `P` terms and `L` lags) or the dense
/// per-target series ([`autocov_sums_dense`], about `P + L` passes over the
/// `T × n_source` values of each target). Per-state and differential influence series
/// carry several terms each, where the dense path is many times faster.
fn autocov_sums<T: Borrow<ProductTerm> + Sync>(
    terms: &[T],
    segments: &[Range<usize>],
    lags: &[usize],
    shape: (usize, usize),
) -> Vec<Array2<f64>> {
    // Work of each path in multiply-adds per (t, j, i) point: GEMM `P²·L` at about
    // DENSE_COST times the dense loop's throughput per operation (`sbtg bench
    // --edge-tests` measures both).
    let p = terms.len() as f64;
    let l = lags.len() as f64;
    if p * p * l > DENSE_COST * (p + l) {
        autocov_sums_dense(terms, segments, lags, shape)
    } else {
        autocov_sums_gemm(terms, segments, lags, shape)
    }
}

/// Starting rows per block of the dense path.
const CHUNK: usize = 128;

/// Targets that share each block's reads of the source factors in the dense path.
const TARGET_GROUP: usize = 4;

/// How many GEMM multiply-adds cost as much as one multiply-add of the dense loop
/// (measured on this project's reference machine with `sbtg bench --edge-tests`: 16
/// lags of a 3-term series, GEMM 0.31 s for `P²L = 144` units, dense 0.088 s for
/// `P + L = 19`, so one dense unit costs about 2.2 GEMM units).
const DENSE_COST: f64 = 2.0;

/// Sources of one register tile of [`lag_sums`]; the rows of the dense path's buffer
/// are padded with zeros to a multiple of it.
const LANES: usize = 16;

/// Lags of one register tile of [`lag_sums`].
const LAG_TILE: usize = 4;

/// One term of the dense path in the layout its loops read: the target factor
/// transposed (`n_target × T`, so one target's values over time are contiguous), the
/// source factor and the weight row-major.
struct DenseTerm<'a> {
    weight: Option<CowArray<'a, f64, Ix2>>,
    target_t: Array2<f64>,
    source: CowArray<'a, f64, Ix2>,
}

/// Dense evaluation of `Γ_h(j, i) = Σ_{t, t+h in one segment} Y_t(j,i) Y_{t+h}(j,i)`:
/// for each target `j` (in parallel) and each segment, the segment's `T_s × n_source`
/// values `Y_t(j, ·) = Σ_m W_m(j, ·) ⊙ p_{m,t}(j) q_{m,t}(·)` are materialised once and
/// every lag is a sum of row products. Unobserved points are 0 in every term
/// ([`ProductSeries::new`]), as in the GEMM path.
///
/// Written by hand: no crate offers a batched lagged dot product of this shape, and
/// the loop over contiguous rows vectorises.
pub fn autocov_sums_dense<T: Borrow<ProductTerm> + Sync>(
    terms: &[T],
    segments: &[Range<usize>],
    lags: &[usize],
    shape: (usize, usize),
) -> Vec<Array2<f64>> {
    let (n_target, n_source) = shape;
    let stride = n_source.div_ceil(LANES) * LANES;
    let dense: Vec<DenseTerm> = terms
        .iter()
        .map(|m| {
            let m = m.borrow();
            DenseTerm {
                weight: m.weight.as_ref().map(|w| w.as_standard_layout()),
                target_t: m.target.t().as_standard_layout().into_owned(),
                source: m.source.as_standard_layout(),
            }
        })
        .collect();
    // Targets in groups (in parallel), every group walking the windows block by block:
    // a block's source factors are read from memory once per group, not once per target.
    let groups: Vec<Vec<usize>> = (0..n_target)
        .collect::<Vec<_>>()
        .chunks(TARGET_GROUP)
        .map(<[usize]>::to_vec)
        .collect();
    let max_lag = lags.iter().copied().max().unwrap_or(0);
    let per_group: Vec<Vec<Vec<f64>>> = groups
        .par_iter()
        .map(|group| {
            let mut acc = vec![vec![0.0f64; lags.len() * stride]; group.len()];
            // Padding columns are never written, so they stay 0.
            let mut y = vec![0.0f64; (CHUNK + max_lag) * stride];
            let mut scratch = Scratch::default();
            for seg in segments {
                // Blocks of CHUNK starting rows, each with the max_lag rows after it, so
                // that the block's values stay in cache between the terms and the lags.
                for c0 in (0..seg.len()).step_by(CHUNK) {
                    let starts = CHUNK.min(seg.len() - c0);
                    let rows = (starts + max_lag).min(seg.len() - c0);
                    let block = Block {
                        first: seg.start + c0,
                        rows,
                        starts,
                        n: n_source,
                        stride,
                    };
                    for (&j, acc) in group.iter().zip(acc.iter_mut()) {
                        block_sums(&mut y, &dense, j, block, lags, &mut scratch, acc);
                    }
                }
            }
            acc
        })
        .collect();
    let per_target: Vec<Vec<f64>> = per_group.into_iter().flatten().collect();
    lags.iter()
        .enumerate()
        .map(|(li, _)| Array2::from_shape_fn(shape, |(j, i)| per_target[j][li * stride + i]))
        .collect()
}

/// One block of windows of the dense path: rows `first .. first + rows` of a segment, of
/// which the first `starts` begin a lagged pair; `n` sources, stored `stride` apart.
#[derive(Clone, Copy)]
struct Block {
    first: usize,
    rows: usize,
    starts: usize,
    n: usize,
    stride: usize,
}

/// Reused buffers of [`block_sums`].
#[derive(Default)]
struct Scratch {
    /// Rows of the block already written by a term.
    written: Vec<bool>,
    /// One column panel of the block (see [`lag_sums`]).
    panel: Vec<[f64; LANES]>,
}

/// One target's share of one block: its series into the row-major `rows × stride`
/// buffer `y`, `y[k, ·] = Σ_m p_{m,t}(j) · W_m(j, ·) ⊙ q_{m,t}(·)` (`t = first + k`),
/// then `acc[l·stride + i] += Σ_{k < starts, k + lags[l] < rows} y[k, i] y[k + lags[l], i]`
/// ([`lag_sums`]). With AVX-512 or AVX2 the same code is compiled for wider vectors; no
/// fused multiply-add is used and every sum runs in the same order, so all paths give
/// the same bits.
fn block_sums(
    y: &mut [f64],
    terms: &[DenseTerm],
    j: usize,
    block: Block,
    lags: &[usize],
    scratch: &mut Scratch,
    acc: &mut [f64],
) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU supports AVX-512F (checked just above).
        unsafe { block_sums_avx512(y, terms, j, block, lags, scratch, acc) };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above).
        unsafe { block_sums_avx2(y, terms, j, block, lags, scratch, acc) };
        return;
    }
    block_sums_portable(y, terms, j, block, lags, scratch, acc);
}

/// `block_sums_portable` compiled with a CPU feature, for run-time dispatch.
macro_rules! block_sums_with {
    ($name:ident, $feature:literal) => {
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $feature)]
        fn $name(
            y: &mut [f64],
            terms: &[DenseTerm],
            j: usize,
            block: Block,
            lags: &[usize],
            scratch: &mut Scratch,
            acc: &mut [f64],
        ) {
            block_sums_portable(y, terms, j, block, lags, scratch, acc);
        }
    };
}

block_sums_with!(block_sums_avx512, "avx512f");
block_sums_with!(block_sums_avx2, "avx2");

#[inline(always)]
fn block_sums_portable(
    y: &mut [f64],
    terms: &[DenseTerm],
    j: usize,
    Block {
        first,
        rows,
        starts,
        n,
        stride,
    }: Block,
    lags: &[usize],
    scratch: &mut Scratch,
    acc: &mut [f64],
) {
    // Each row is written by its first term with a nonzero target factor and added to
    // by the others (the sum `0 + Σ_m` in term order, as a zero-filled buffer would
    // give); rows of no such term are zeroed.
    let written = &mut scratch.written;
    written.clear();
    written.resize(rows, false);
    for m in terms {
        let src = m.source.as_slice().expect("standard layout");
        let w_row = m.weight.as_ref().map(|w| w.row(j));
        let w_row = w_row
            .as_ref()
            .map(|r| r.as_slice().expect("standard layout"));
        let p = m.target_t.row(j);
        let p = &p.as_slice().expect("standard layout")[first..first + rows];
        for ((k, &a), seen) in p.iter().enumerate().zip(written.iter_mut()) {
            if a == 0.0 {
                continue;
            }
            let t = first + k;
            let out = &mut y[k * stride..k * stride + n];
            let q = &src[t * n..(t + 1) * n];
            match (w_row, *seen) {
                (Some(w), true) => {
                    for ((o, &q), &w) in out.iter_mut().zip(q).zip(w) {
                        *o += a * q * w;
                    }
                }
                (Some(w), false) => {
                    for ((o, &q), &w) in out.iter_mut().zip(q).zip(w) {
                        *o = a * q * w;
                    }
                }
                (None, true) => {
                    for (o, &q) in out.iter_mut().zip(q) {
                        *o += a * q;
                    }
                }
                (None, false) => {
                    for (o, &q) in out.iter_mut().zip(q) {
                        *o = a * q;
                    }
                }
            }
            *seen = true;
        }
    }
    for (k, _) in written.iter().enumerate().filter(|(_, &seen)| !seen) {
        y[k * stride..k * stride + n].fill(0.0);
    }
    lag_sums(&y[..rows * stride], starts, lags, &mut scratch.panel, acc);
}

/// `acc[l·stride + i] += Σ_{k < starts, k + lags[l] < rows} y[k, i] · y[k + lags[l], i]`
/// for the row-major `rows × stride` buffer `y` (`stride = acc.len() / lags.len()`, a
/// multiple of [`LANES`]).
///
/// Tiled for registers: `LANES` sources (copied into the contiguous `panel`, so that the
/// loop over rows reads consecutive memory without bounds checks) times `LAG_TILE` lags
/// accumulate in registers while the rows stream past, so each multiply-add loads only
/// its lagged row (the current row is shared by the tile's lags) instead of also reading
/// and writing its accumulator. Every `acc` entry still sums its products in increasing
/// `k`, so the result is bit-identical to the plain loop over rows and lags.
#[inline(always)]
fn lag_sums(
    y: &[f64],
    starts: usize,
    lags: &[usize],
    panel: &mut Vec<[f64; LANES]>,
    acc: &mut [f64],
) {
    if lags.is_empty() {
        return;
    }
    let stride = acc.len() / lags.len();
    for i0 in (0..stride).step_by(LANES) {
        panel.clear();
        panel.extend(
            y.chunks_exact(stride)
                .map(|row| <[f64; LANES]>::try_from(&row[i0..i0 + LANES]).expect("lanes")),
        );
        for (g, tile) in lags.chunks(LAG_TILE).enumerate() {
            let acc = &mut acc[g * LAG_TILE * stride + i0..];
            match tile.len() {
                4 => lag_tile::<4>(panel, starts, stride, tile, acc),
                3 => lag_tile::<3>(panel, starts, stride, tile, acc),
                2 => lag_tile::<2>(panel, starts, stride, tile, acc),
                _ => lag_tile::<1>(panel, starts, stride, tile, acc),
            }
        }
    }
}

/// One tile of `G` lags of [`lag_sums`] on one panel: `acc[g·stride + x] += Σ_k
/// panel[k][x] · panel[k + tile[g]][x]` over `k < starts`, `k + tile[g] < panel.len()`.
#[inline(always)]
fn lag_tile<const G: usize>(
    panel: &[[f64; LANES]],
    starts: usize,
    stride: usize,
    tile: &[usize],
    acc: &mut [f64],
) {
    let h: [usize; G] = std::array::from_fn(|g| tile[g]);
    let rows = panel.len();
    // Rows every lag of the tile pairs, then each lag's own last rows.
    let end = |h: usize| starts.min(rows.saturating_sub(h));
    let common = h.iter().map(|&h| end(h)).min().unwrap_or(0);
    let mut a = [[0.0f64; LANES]; G];
    for (g, a) in a.iter_mut().enumerate() {
        a.copy_from_slice(&acc[g * stride..][..LANES]);
    }
    // Each lag's rows as its own slice of exactly `common` rows, so the loop needs no
    // bounds checks.
    // (A lag beyond the block has `common = 0`.)
    let later: [&[[f64; LANES]]; G] = std::array::from_fn(|g| &panel[h[g].min(rows)..][..common]);
    for (k, now) in panel[..common].iter().enumerate() {
        for (a, later) in a.iter_mut().zip(&later) {
            let later = &later[k];
            for x in 0..LANES {
                a[x] += now[x] * later[x];
            }
        }
    }
    for (g, a) in a.iter().enumerate() {
        acc[g * stride..][..LANES].copy_from_slice(a);
    }
    for (g, &h) in h.iter().enumerate() {
        let a = &mut acc[g * stride..][..LANES];
        for k in common..end(h) {
            for ((a, &x), &z) in a.iter_mut().zip(&panel[k]).zip(&panel[k + h]) {
                *a += x * z;
            }
        }
    }
}

/// GEMM evaluation of the `Γ_h` sums: the module-level expansion over term pairs.
pub fn autocov_sums_gemm<T: Borrow<ProductTerm> + Sync>(
    terms: &[T],
    segments: &[Range<usize>],
    lags: &[usize],
    shape: (usize, usize),
) -> Vec<Array2<f64>> {
    lags.par_iter()
        .map(|&h| {
            let rows = lag_rows(segments, h);
            if rows.is_empty() {
                return Array2::zeros(shape);
            }
            let lead: Vec<usize> = rows.iter().map(|t| t + h).collect();
            let sel = |a: &Array2<f64>, r: &[usize]| a.select(Axis(0), r);
            let now: Vec<(Array2<f64>, Array2<f64>)> = terms
                .iter()
                .map(Borrow::borrow)
                .map(|m: &ProductTerm| (sel(&m.target, &rows), sel(&m.source, &rows)))
                .collect();
            let later: Vec<(Array2<f64>, Array2<f64>)> = terms
                .iter()
                .map(Borrow::borrow)
                .map(|m: &ProductTerm| (sel(&m.target, &lead), sel(&m.source, &lead)))
                .collect();
            let pairs: Vec<(usize, usize)> = (0..terms.len())
                .flat_map(|a| (0..terms.len()).map(move |b| (a, b)))
                .collect();
            // Term pairs in parallel, summed in a fixed order afterwards: a parallel
            // reduce would associate the floating-point sums differently from run to
            // run (work stealing), and the tables would not be bit-identical.
            let products: Vec<Array2<f64>> = pairs
                .par_iter()
                .map(|&(a, b)| {
                    let p = &now[a].0 * &later[b].0;
                    let q = &now[a].1 * &later[b].1;
                    let mut g = p.t().dot(&q);
                    if let Some(w) = &terms[a].borrow().weight {
                        g *= w;
                    }
                    if let Some(w) = &terms[b].borrow().weight {
                        g *= w;
                    }
                    g
                })
                .collect();
            products
                .into_iter()
                .fold(Array2::zeros(shape), |acc, g| acc + g)
        })
        .collect()
}

/// Andrews (1991) pooled AR(1) plug-in bandwidth from `Γ_0`, `Γ_1` and the counts.
pub fn andrews_bandwidth(g0: &Array2<f64>, g1: &Array2<f64>, count: &Array2<f64>) -> f64 {
    let (mut num, mut den) = (0.0, 0.0);
    let mut counts: Vec<f64> = Vec::new();
    Zip::from(g0).and(g1).and(count).for_each(|&a, &b, &n| {
        if n > 2.0 && a > 0.0 {
            let rho = (b / a).clamp(-0.97, 0.97);
            let s2 = a / n * (1.0 - rho * rho);
            let s4 = s2 * s2;
            num += 4.0 * rho * rho * s4 / ((1.0 - rho).powi(6) * (1.0 + rho).powi(2));
            den += s4 / (1.0 - rho).powi(4);
            counts.push(n);
        }
    });
    if den <= 0.0 || counts.is_empty() {
        return 1.0;
    }
    counts.sort_by(f64::total_cmp);
    let n = counts[counts.len() / 2];
    (1.1447 * (num / den * n).cbrt()).max(1.0)
}

/// Pilot lag `m = ⌊4 (N/100)^{2/9}⌋` (at least 1) of the Newey–West (1994) rule.
pub fn newey_west_pilot_lag(n: f64) -> usize {
    ((4.0 * (n / 100.0).powf(2.0 / 9.0)).floor() as usize).max(1)
}

fn median_count(count: &Array2<f64>) -> f64 {
    let mut c: Vec<f64> = count.iter().copied().filter(|&n| n > 2.0).collect();
    if c.is_empty() {
        return 0.0;
    }
    c.sort_by(f64::total_cmp);
    c[c.len() / 2]
}

/// Newey–West (1994) pooled plug-in bandwidth from `Γ_0 … Γ_m` (module docs).
pub fn newey_west_bandwidth(gamma: &[Array2<f64>], count: &Array2<f64>) -> f64 {
    let (mut num, mut den) = (0.0, 0.0);
    Zip::indexed(count).for_each(|(j, i), &n| {
        let g0 = gamma[0][[j, i]];
        if n > 2.0 && g0 > 0.0 {
            let (mut s1, mut s0) = (0.0, 1.0);
            for (h, g) in gamma.iter().enumerate().skip(1) {
                let r = g[[j, i]] / g0;
                s1 += 2.0 * h as f64 * r;
                s0 += 2.0 * r;
            }
            num += s1 * s1;
            den += s0 * s0;
        }
    });
    let n = median_count(count);
    if den <= 0.0 || n == 0.0 {
        return 1.0;
    }
    (1.1447 * (num / den * n).cbrt()).max(1.0)
}

/// The t-test of one edge from its mean, `Γ_0` and the Bartlett-weighted sum
/// `Γ_0 + 2Σ k(h/b) Γ_h`, with `N` observations (shared by the GEMM path and the
/// per-edge reference).
pub(crate) struct EdgeTTest {
    pub long_run_variance: f64,
    pub t: f64,
    pub p: f64,
    pub floored: bool,
}

impl EdgeTTest {
    pub(crate) fn from_sums(mean: f64, gamma0: f64, weighted: f64, n: f64) -> Self {
        let mut o = weighted / (n - 1.0);
        // Floor: Bartlett keeps Ω̂ ≥ 0 in exact arithmetic; guard rounding and degenerate
        // (constant) series, and flag the edge.
        let floor = (gamma0 / (n - 1.0) * 1e-8).max(1e-300);
        let floored = o.is_nan() || o <= floor;
        if floored {
            o = floor;
        }
        let t = mean / (o / n).sqrt();
        EdgeTTest {
            long_run_variance: o,
            t,
            p: two_sided_p(t, n - 1.0),
            floored,
        }
    }
}

/// The 97.5% quantile of Student's t with `df` degrees of freedom (the normal 1.959964
/// for `df` ≥ 1e6 or non-finite), for 95% intervals; values are cached per `df`.
pub fn t_quantile_975(df: f64) -> f64 {
    use std::cell::RefCell;
    use std::collections::HashMap;
    thread_local! {
        static CACHE: RefCell<HashMap<u64, f64>> = RefCell::new(HashMap::new());
    }
    if df.is_nan() || df <= 0.0 {
        return f64::NAN;
    }
    if !df.is_finite() || df >= 1e6 {
        return 1.959963984540054;
    }
    CACHE.with(|c| {
        *c.borrow_mut().entry(df.to_bits()).or_insert_with(|| {
            StudentsT::new(0.0, 1.0, df)
                .expect("df > 0")
                .inverse_cdf(0.975)
        })
    })
}

/// Two-sided Student-t p-value from the survival function, never exactly 0.
pub fn two_sided_p(t: f64, df: f64) -> f64 {
    if !t.is_finite() || df.is_nan() || df <= 0.0 {
        return if t.is_infinite() {
            f64::MIN_POSITIVE
        } else {
            f64::NAN
        };
    }
    let dist = StudentsT::new(0.0, 1.0, df).expect("df > 0");
    (2.0 * dist.sf(t.abs())).clamp(f64::MIN_POSITIVE, 1.0)
}

/// HAC t-tests of `E[Y(j,i)] = 0` over the pooled folds.
pub fn hac_test(folds: &[ProductSeries], bandwidth: Bandwidth) -> HacResult {
    hac_test_all_targets(folds, bandwidth, false)
}

/// [`hac_test`] with every target in one block (`off_diagonal`: the diagonal untested).
fn hac_test_all_targets(
    folds: &[ProductSeries],
    bandwidth: Bandwidth,
    off_diagonal: bool,
) -> HacResult {
    assert!(!folds.is_empty(), "at least one fold");
    let targets: Vec<usize> = (0..folds[0].n_target()).collect();
    hac_test_blocks_in(
        &[TargetBlock {
            targets: &targets,
            folds,
        }],
        folds[0].n_target(),
        bandwidth,
        off_diagonal,
    )
}

/// The series of some of the targets: column k of every fold's target factor is
/// target `targets[k]` of the full `[target, source]` matrices.
#[derive(Clone, Copy, Debug)]
pub struct TargetBlock<'a> {
    pub targets: &'a [usize],
    pub folds: &'a [ProductSeries],
}

/// Adds the rows of a block's `m × n_source` matrix into the full matrix.
fn scatter(full: &mut Array2<f64>, targets: &[usize], block: &Array2<f64>) {
    for (k, &j) in targets.iter().enumerate() {
        let mut row = full.row_mut(j);
        row += &block.row(k);
    }
}

/// [`hac_test`] for series given in blocks of targets (each target in at most one
/// block), as when each group of targets has its own source factor: the GEMMs run per
/// block on its own columns only, and the results are assembled into one family with
/// one bandwidth. Targets in no block get NaN.
pub fn hac_test_blocks(blocks: &[TargetBlock], n_target: usize, bandwidth: Bandwidth) -> HacResult {
    hac_test_blocks_in(blocks, n_target, bandwidth, false)
}

/// [`hac_test`] of a square series that is identically zero on its diagonal, such as
/// the direction series `Y_t(j,i) − Y_t(i,j)`: the diagonal is untested and left out
/// of the pooled bandwidth rule. (Its computed autocovariances are rounding residue of
/// cancelling terms, and their ratios `Γ_h/Γ_0` would be noise in the pooled `α̂`.)
pub fn hac_test_off_diagonal(folds: &[ProductSeries], bandwidth: Bandwidth) -> HacResult {
    assert!(!folds.is_empty(), "at least one fold");
    assert_eq!(folds[0].n_target(), folds[0].n_source(), "a square series");
    hac_test_all_targets(folds, bandwidth, true)
}

fn hac_test_blocks_in(
    blocks: &[TargetBlock],
    n_target: usize,
    bandwidth: Bandwidth,
    off_diagonal: bool,
) -> HacResult {
    let n_source = blocks
        .iter()
        .flat_map(|b| b.folds.first())
        .map(|f| f.n_source())
        .next()
        .expect("at least one fold");
    let shape = (n_target, n_source);
    // Pass 1: global mean.
    let (mut total, mut count) = (Array2::zeros(shape), Array2::zeros(shape));
    for b in blocks {
        for f in b.folds {
            assert_eq!(f.n_target(), b.targets.len(), "block target columns");
            let (s, c) = sums(f);
            scatter(&mut total, b.targets, &s);
            scatter(&mut count, b.targets, &c);
        }
    }
    if off_diagonal {
        // Untested edges have no observations as far as the tests are concerned.
        for k in 0..count.nrows().min(count.ncols()) {
            count[[k, k]] = 0.0;
        }
    }
    let mean = Zip::from(&total)
        .and(&count)
        .map_collect(|&s, &n| if n > 0.0 { s / n } else { f64::NAN });
    let mean_filled = mean.mapv(|v| if v.is_nan() { 0.0 } else { v });
    let centred: Vec<Vec<Vec<Cow<ProductTerm>>>> = blocks
        .iter()
        .map(|b| {
            let block_mean = mean_filled.select(Axis(0), b.targets);
            b.folds
                .iter()
                .map(|f| centred_terms(f, &block_mean))
                .collect()
        })
        .collect();
    let max_seg = blocks
        .iter()
        .flat_map(|b| b.folds.iter())
        .flat_map(|f| f.segments.iter().map(|s| s.len()))
        .max()
        .unwrap_or(1);
    let gamma = |lags: &[usize]| -> Vec<Array2<f64>> {
        let mut acc = vec![Array2::<f64>::zeros(shape); lags.len()];
        for (b, terms_b) in blocks.iter().zip(&centred) {
            let block_shape = (b.targets.len(), n_source);
            for (f, terms) in b.folds.iter().zip(terms_b) {
                for (a, g) in
                    acc.iter_mut()
                        .zip(autocov_sums(terms, &f.segments, lags, block_shape))
                {
                    scatter(a, b.targets, &g);
                }
            }
        }
        acc
    };
    // Pass 2: the lags the bandwidth rule needs, and as many again (the dense path
    // pays once per pass for materialising the series, and a bandwidth under twice the
    // pilot lag then needs no third pass); pass 3: the remaining lags. Each lag's sums
    // are computed alone, so which pass computes them does not change a bit.
    let pilot = match bandwidth {
        Bandwidth::NeweyWest => newey_west_pilot_lag(median_count(&count)),
        _ => 1,
    };
    let cap = (max_seg as f64 / 4.0).max(1.0);
    let speculative = (2 * pilot + 1).min((cap.ceil() as usize).saturating_sub(1).max(pilot));
    let first_lags: Vec<usize> = (0..=speculative).collect();
    let first = gamma(&first_lags);
    let b = match bandwidth {
        Bandwidth::NeweyWest => newey_west_bandwidth(&first[..=pilot], &count),
        Bandwidth::Andrews => andrews_bandwidth(&first[0], &first[1], &count),
        Bandwidth::Fixed(b) => b.max(1.0),
    }
    .min(cap);
    let max_lag = (b.ceil() as usize).saturating_sub(1);
    let more: Vec<usize> = (speculative + 1..=max_lag).collect();
    let rest = gamma(&more);
    let mut omega = first[0].clone();
    for (h, g) in first_lags
        .iter()
        .copied()
        .zip(first.iter())
        .skip(1)
        .chain(more.iter().copied().zip(rest.iter()))
    {
        let w = 1.0 - h as f64 / b;
        if w > 0.0 {
            omega.scaled_add(2.0 * w, g);
        }
    }
    let mut floored = Array2::from_elem(shape, false);
    let mut lrv = Array2::zeros(shape);
    let mut t = Array2::zeros(shape);
    let mut p = Array2::zeros(shape);
    Zip::indexed(&mut lrv).for_each(|(j, i), v| {
        let n = count[[j, i]];
        if n < 3.0 {
            *v = f64::NAN;
            t[[j, i]] = f64::NAN;
            p[[j, i]] = f64::NAN;
            return;
        }
        let e = EdgeTTest::from_sums(mean[[j, i]], first[0][[j, i]], omega[[j, i]], n);
        *v = e.long_run_variance;
        t[[j, i]] = e.t;
        p[[j, i]] = e.p;
        floored[[j, i]] = e.floored;
    });
    HacResult {
        mean,
        count,
        long_run_variance: lrv,
        t,
        p,
        floored,
        bandwidth: b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::ProductTerm;

    #[test]
    fn p_values_do_not_underflow_and_match_known_values() {
        // Two-sided normal-limit value at t = 1.959964 is 0.05.
        assert!((two_sided_p(1.959963984540054, 1e7) - 0.05).abs() < 1e-6);
        // t(10): P(|T| > 2.228138852) = 0.05.
        assert!((two_sided_p(2.228138851986, 10.0) - 0.05).abs() < 1e-9);
        let tiny = two_sided_p(80.0, 5000.0);
        assert!(tiny > 0.0 && tiny < 1e-100, "{tiny}");
        assert_eq!(two_sided_p(1e6, 5000.0), f64::MIN_POSITIVE);
    }

    /// A constant series has zero long-run variance: it is floored, flagged, and its p
    /// is the smallest positive normal, not 0 or NaN; its neighbours are untouched.
    #[test]
    fn degenerate_variance_is_floored_and_flagged() {
        use crate::stats::{ProductSeries, ProductTerm};
        let t_len = 200;
        let wave = |k: usize| {
            Array2::from_shape_fn((t_len, 2), |(t, j)| ((t * (j + 2) + k) as f64 * 0.77).sin())
        };
        let mut target = wave(1);
        let mut source = wave(5);
        target.column_mut(0).fill(1.0);
        source.column_mut(1).fill(0.5);
        let ones = Array2::ones((t_len, 2));
        let series = ProductSeries::new(
            vec![ProductTerm {
                weight: None,
                target,
                source,
            }],
            ones.clone(),
            ones,
            std::iter::once(0..t_len).collect(),
        );
        let r = hac_test(&[series], Bandwidth::Fixed(3.0));
        // Y(0, 1) = 1 · 0.5 for every t.
        assert!(r.floored[[0, 1]]);
        assert_eq!(r.p[[0, 1]], f64::MIN_POSITIVE);
        assert!((r.mean[[0, 1]] - 0.5).abs() < 1e-15);
        assert!(!r.floored[[1, 0]] && !r.floored[[1, 1]] && !r.floored[[0, 0]]);
        assert!(r.p.iter().all(|&p| p > 0.0 && p <= 1.0));
    }

    /// The dense path's register tiles (sources in panels of `LANES`, lags in tiles of
    /// `LAG_TILE`, each lag's last rows apart, blocks of `CHUNK` rows) add every product
    /// in the order of the plain loop over time, so they agree with it bit for bit: with
    /// source counts off the panel width, lag counts off the tile width, segments shorter
    /// than some lags, lags longer than a block, zero target factors and rows where every
    /// term is zero.
    #[test]
    fn dense_sums_match_the_plain_loop_bit_for_bit() {
        let (t_len, n_t, n_s) = (700, 3, 21);
        let value = |seed: f64, a: usize, b: usize| {
            ((a as f64 * 0.731 + b as f64 * 1.37 + seed) * 12.9898).sin()
        };
        let term = |seed: f64, weighted: bool| ProductTerm {
            weight: weighted
                .then(|| Array2::from_shape_fn((n_t, n_s), |(j, i)| value(seed + 0.5, j, i))),
            target: Array2::from_shape_fn((t_len, n_t), |(t, j)| {
                // Zero factors: a few scattered points, and every term at t % 97 == 5.
                if (t + j) % 11 == 0 || t % 97 == 5 {
                    0.0
                } else {
                    value(seed, t, j)
                }
            }),
            source: Array2::from_shape_fn((t_len, n_s), |(t, i)| value(seed + 0.25, t, i)),
        };
        let terms = vec![term(1.0, true), term(2.0, false), term(3.0, true)];
        let segments = vec![0..300, 300..305, 305..700];
        let lags = [0, 1, 2, 3, 4, 6, 9, 13, 200];
        let dense = autocov_sums_dense(&terms, &segments, &lags, (n_t, n_s));
        let y = |t: usize, j: usize, i: usize| {
            let mut v = 0.0;
            for m in &terms {
                let a = m.target[[t, j]];
                if a != 0.0 {
                    v += a * m.source[[t, i]] * m.weight.as_ref().map_or(1.0, |w| w[[j, i]]);
                }
            }
            v
        };
        for (l, &h) in lags.iter().enumerate() {
            for j in 0..n_t {
                for i in 0..n_s {
                    let mut plain = 0.0;
                    for seg in &segments {
                        for t in seg.start..seg.end.saturating_sub(h).max(seg.start) {
                            plain += y(t, j, i) * y(t + h, j, i);
                        }
                    }
                    assert_eq!(dense[l][[j, i]], plain, "lag {h}, edge ({j}, {i})");
                }
            }
        }
    }

    #[test]
    fn lag_rows_stay_inside_segments() {
        let rows = lag_rows(&[0..4, 4..6, 6..7], 2);
        assert_eq!(rows, vec![0, 1]);
        let rows = lag_rows(&[0..4, 4..6], 1);
        assert_eq!(rows, vec![0, 1, 2, 4]);
    }

    #[test]
    fn newey_west_bandwidth_by_hand() {
        // r_1 = 0.5, r_2 = 0.25: ŝ1 = 2(0.5 + 2·0.25) = 2, ŝ0 = 1 + 2(0.75) = 2.5,
        // α = 0.64, N = 1000 → b = 1.1447 · 640^{1/3}
        let n = Array2::from_elem((2, 2), 1000.0);
        let g = [2.0, 1.0, 0.5].map(|v| Array2::from_elem((2, 2), v));
        let b = newey_west_bandwidth(&g, &n);
        assert!((b - 1.1447 * 640f64.cbrt()).abs() < 1e-9, "{b}");
        assert_eq!(newey_west_pilot_lag(3000.0), 8);
        assert_eq!(newey_west_pilot_lag(100.0), 4);
    }

    #[test]
    fn andrews_bandwidth_grows_with_autocorrelation() {
        let g0 = Array2::from_elem((2, 2), 1000.0);
        let n = Array2::from_elem((2, 2), 1000.0);
        let low = andrews_bandwidth(&g0, &Array2::from_elem((2, 2), 100.0), &n);
        let high = andrews_bandwidth(&g0, &Array2::from_elem((2, 2), 800.0), &n);
        assert!(high > 3.0 * low, "{low} {high}");
        // ρ = 0.5: α = 4·.25/(.5⁶·1.5²)·.5⁴ = 1.7778 → b = 1.1447 (1777.8)^{1/3}
        let b = andrews_bandwidth(&g0, &Array2::from_elem((2, 2), 500.0), &n);
        let expect =
            1.1447 * (4.0 * 0.25 / (0.5f64.powi(6) * 2.25) * 0.5f64.powi(4) * 1000.0).cbrt();
        assert!((b - expect).abs() < 1e-9, "{b} vs {expect}");
    }
}
