//! Per-edge series as short sums of weighted outer products, and their sums over
//! time as GEMMs.
//!
//! `Y_t(j, i) = Σ_m W_m(j, i) · p_{m,t}(j) · q_{m,t}(i)` ([`ProductTerm`]). The plain
//! score product `s_{F,j} s_{P,i}` is one term; the model's mixed Hessian adds a few
//! more; the mean correction is one more. Then every sum over time is a GEMM:
//! `Σ_t Y_t = Σ_m W_m ⊙ (P_mᵀ Q_m)` and the lag-h autocovariance sums are
//! `Σ_{a,b} (W_a ⊙ W_b) ⊙ ((P_a ⊙ S_h P_b)ᵀ (Q_a ⊙ S_h Q_b))` with `S_h` the shift by h
//! inside each contiguous segment. No loop over time runs per edge.

use std::ops::Range;

use ndarray::Array2;

/// One weighted outer-product term `W ⊙ (p_t ⊗ q_t)` of a per-edge series.
#[derive(Clone, Debug)]
pub struct ProductTerm {
    /// `n_target × n_source` weight; `None` means all ones.
    pub weight: Option<Array2<f64>>,
    /// `T × n_target`: the target-side factor of every time point.
    pub target: Array2<f64>,
    /// `T × n_source`: the source-side factor of every time point.
    pub source: Array2<f64>,
}

/// The per-edge series `Y_t(j,i)` of one held-out fold, with its observation masks and
/// its contiguous segments (the autocovariance never pairs points of different segments).
#[derive(Clone, Debug)]
pub struct ProductSeries {
    pub terms: Vec<ProductTerm>,
    /// `T × n_target`, 1 where the target coordinate is observed.
    pub target_mask: Array2<f64>,
    /// `T × n_source`, 1 where the source coordinate is observed.
    pub source_mask: Array2<f64>,
    /// Row ranges of time-contiguous windows (one per recording or block).
    pub segments: Vec<Range<usize>>,
}

impl ProductSeries {
    /// Builds a series, zeroing every term where its target or source is unobserved, so
    /// that `Y_t(j,i) = 0` wherever the pair is not observed.
    pub fn new(
        mut terms: Vec<ProductTerm>,
        target_mask: Array2<f64>,
        source_mask: Array2<f64>,
        segments: Vec<Range<usize>>,
    ) -> Self {
        for t in &mut terms {
            assert_eq!(t.target.dim(), target_mask.dim(), "target factor shape");
            assert_eq!(t.source.dim(), source_mask.dim(), "source factor shape");
            t.target *= &target_mask;
            t.source *= &source_mask;
        }
        let rows = target_mask.nrows();
        assert!(
            segments.iter().all(|s| s.end <= rows && s.start <= s.end),
            "segments must lie inside the series"
        );
        ProductSeries {
            terms,
            target_mask,
            source_mask,
            segments,
        }
    }

    pub fn n_target(&self) -> usize {
        self.target_mask.ncols()
    }
    pub fn n_source(&self) -> usize {
        self.source_mask.ncols()
    }
    pub fn len(&self) -> usize {
        self.target_mask.nrows()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `Y_t(j, i)` for one edge and one time point (slow; for references and tests).
    pub fn value(&self, t: usize, j: usize, i: usize) -> f64 {
        self.terms
            .iter()
            .map(|m| {
                m.weight.as_ref().map_or(1.0, |w| w[[j, i]]) * m.target[[t, j]] * m.source[[t, i]]
            })
            .sum()
    }

    /// The sub-series of the given rows (ascending). Segments are split wherever the
    /// selection skips a row or crosses a segment boundary, so the autocovariances of
    /// the sub-series never pair points that were not adjacent in the original.
    pub fn select_rows(&self, rows: &[usize]) -> ProductSeries {
        let sel = |a: &Array2<f64>| a.select(ndarray::Axis(0), rows);
        let segments = subsegments(&self.segments, rows);
        ProductSeries {
            terms: self
                .terms
                .iter()
                .map(|m| ProductTerm {
                    weight: m.weight.clone(),
                    target: sel(&m.target),
                    source: sel(&m.source),
                })
                .collect(),
            target_mask: sel(&self.target_mask),
            source_mask: sel(&self.source_mask),
            segments,
        }
    }

    /// The direction series `D_t(j, i) = Y_t(j, i) − Y_t(i, j)`: the statistic of the
    /// edge `i → j` minus that of `j → i`, on the same windows. Every term
    /// `W ⊙ (p_t ⊗ q_t)` gains its mirror `−Wᵀ ⊙ (q_t ⊗ p_t)`; both neurons must be
    /// observed in both blocks. Needs as many targets as sources.
    pub fn antisymmetric(&self) -> ProductSeries {
        assert_eq!(self.n_target(), self.n_source(), "a square series");
        let mut terms = self.terms.clone();
        for m in &self.terms {
            terms.push(ProductTerm {
                weight: m.weight.as_ref().map(|w| w.t().to_owned()),
                target: -&m.source,
                source: m.target.clone(),
            });
        }
        let both = &self.target_mask * &self.source_mask;
        ProductSeries::new(terms, both.clone(), both, self.segments.clone())
    }

    /// Whether edge `(j, i)` is observed at time `t`.
    pub fn observed(&self, t: usize, j: usize, i: usize) -> bool {
        self.target_mask[[t, j]] * self.source_mask[[t, i]] > 0.0
    }
}

/// The contiguous segments of a row selection (ascending rows): a segment is split
/// wherever the selection skips a row or crosses a boundary of `segments`, so that
/// autocovariances of the selection never pair points that were not adjacent.
pub fn subsegments(segments: &[Range<usize>], rows: &[usize]) -> Vec<Range<usize>> {
    let segment_of = |r: usize| segments.iter().position(|s| s.contains(&r));
    let mut out: Vec<Range<usize>> = Vec::new();
    for (k, &r) in rows.iter().enumerate() {
        let continues = k > 0
            && rows[k - 1] + 1 == r
            && segment_of(r).is_some()
            && segment_of(rows[k - 1]) == segment_of(r);
        match out.last_mut() {
            Some(last) if continues => last.end = k + 1,
            _ => out.push(k..k + 1),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::stream;
    use crate::stats::hac::{self, hac_test, Bandwidth, TargetBlock};
    use crate::stats::hac_reference as reference;
    use rand::Rng;

    /// Two folds with masked entries, a weighted term, an autocorrelated factor and
    /// uneven segments: the GEMM path must equal the per-edge loop to 1e-9 relative.
    fn random_folds(seed: u64) -> Vec<ProductSeries> {
        let mut rng = stream(seed, 0);
        let (nt, ns) = (5, 4);
        [
            (37, vec![0..20, 20..37]),
            (25, std::iter::once(0..25).collect()),
        ]
        .into_iter()
        .map(|(t_len, segs)| {
            let mut g = |r, c| Array2::from_shape_fn((r, c), |_| rng.random_range(-1.0..1.0));
            let mut ar = g(t_len, nt);
            for t in 1..t_len {
                for j in 0..nt {
                    ar[[t, j]] += 0.8 * ar[[t - 1, j]];
                }
            }
            let terms = vec![
                ProductTerm {
                    weight: None,
                    target: ar,
                    source: g(t_len, ns) + 0.3,
                },
                ProductTerm {
                    weight: Some(g(nt, ns)),
                    target: g(t_len, nt),
                    source: g(t_len, ns),
                },
            ];
            let tm = Array2::from_shape_fn((t_len, nt), |_| f64::from(rng.random::<f64>() > 0.1));
            let sm = Array2::from_shape_fn((t_len, ns), |_| f64::from(rng.random::<f64>() > 0.1));
            ProductSeries::new(terms, tm, sm, segs)
        })
        .collect()
    }

    /// The series restricted to some target columns.
    fn target_columns(f: &ProductSeries, cols: &[usize]) -> ProductSeries {
        let a = ndarray::Axis(1);
        ProductSeries::new(
            f.terms
                .iter()
                .map(|m| ProductTerm {
                    weight: m.weight.as_ref().map(|w| w.select(ndarray::Axis(0), cols)),
                    target: m.target.select(a, cols),
                    source: m.source.clone(),
                })
                .collect(),
            f.target_mask.select(a, cols),
            f.source_mask.clone(),
            f.segments.clone(),
        )
    }

    #[test]
    fn target_blocks_give_the_pooled_test() {
        for seed in 0..3 {
            let folds = random_folds(seed);
            for bw in [Bandwidth::NeweyWest, Bandwidth::Andrews] {
                let whole = hac_test(&folds, bw);
                let (a, b) = (vec![3, 0], vec![1, 2, 4]);
                let fa: Vec<_> = folds.iter().map(|f| target_columns(f, &a)).collect();
                let fb: Vec<_> = folds.iter().map(|f| target_columns(f, &b)).collect();
                let blocks = hac::hac_test_blocks(
                    &[
                        TargetBlock {
                            targets: &a,
                            folds: &fa,
                        },
                        TargetBlock {
                            targets: &b,
                            folds: &fb,
                        },
                    ],
                    5,
                    bw,
                );
                assert!((blocks.bandwidth - whole.bandwidth).abs() < 1e-12);
                for (x, y) in blocks.t.iter().zip(whole.t.iter()) {
                    assert!((x - y).abs() <= 1e-12 * y.abs().max(1.0), "{x} vs {y}");
                }
                assert_eq!(blocks.count, whole.count);
                // A target in no block is untested; at the same bandwidth the others
                // keep their tests.
                let fixed = Bandwidth::Fixed(whole.bandwidth);
                let only_a = hac::hac_test_blocks(
                    &[TargetBlock {
                        targets: &a,
                        folds: &fa,
                    }],
                    5,
                    fixed,
                );
                assert!(only_a.t.row(1).iter().all(|v| v.is_nan()));
                for (x, y) in only_a.t.row(3).iter().zip(whole.t.row(3).iter()) {
                    assert!((x - y).abs() <= 1e-12 * y.abs().max(1.0), "{x} vs {y}");
                }
            }
        }
    }

    /// The dense and the GEMM evaluations of the autocovariance sums are the same sums
    /// (lags beyond a segment's length included).
    #[test]
    fn dense_and_gemm_autocovariances_agree() {
        for seed in 0..3 {
            for f in random_folds(seed) {
                let lags: Vec<usize> = vec![0, 1, 2, 5, 19, 24, 30];
                let shape = (f.n_target(), f.n_source());
                let dense = hac::autocov_sums_dense(&f.terms, &f.segments, &lags, shape);
                let gemm = hac::autocov_sums_gemm(&f.terms, &f.segments, &lags, shape);
                for (d, g) in dense.iter().zip(&gemm) {
                    for (x, y) in d.iter().zip(g.iter()) {
                        assert!((x - y).abs() <= 1e-12 * y.abs().max(1.0), "{x} vs {y}");
                    }
                }
                // Beyond every segment: no pairs at all.
                assert!(dense[6].iter().all(|&v| v == 0.0));
            }
            // A square series' direction series (mirrored, transposed weights).
            let f = &random_folds(seed)[0];
            let sq = target_columns(f, &[0, 1, 2, 3]).antisymmetric();
            let lags = [0, 1, 3];
            let d = hac::autocov_sums_dense(&sq.terms, &sq.segments, &lags, (4, 4));
            let g = hac::autocov_sums_gemm(&sq.terms, &sq.segments, &lags, (4, 4));
            for (d, g) in d.iter().zip(&g) {
                for (x, y) in d.iter().zip(g.iter()) {
                    assert!((x - y).abs() <= 1e-12 * y.abs().max(1.0), "{x} vs {y}");
                }
            }
        }
    }

    /// A direction series is zero on its diagonal; whatever its computed diagonal
    /// holds (rounding residue of cancelling terms) neither is tested nor moves the
    /// pooled bandwidth.
    #[test]
    fn direction_diagonal_is_untested_and_out_of_the_bandwidth() {
        for seed in 0..3 {
            let folds: Vec<ProductSeries> = random_folds(seed)
                .iter()
                .map(|f| target_columns(f, &[0, 1, 2, 3]).antisymmetric())
                .collect();
            let clean = hac::hac_test_off_diagonal(&folds, Bandwidth::NeweyWest);
            // Add autocorrelated noise on the diagonal only.
            let noisy: Vec<ProductSeries> = folds
                .iter()
                .map(|f| {
                    let mut terms = f.terms.clone();
                    let t_len = f.len();
                    let wave = Array2::from_shape_fn((t_len, 4), |(t, j)| {
                        ((t as f64) * 0.05 + j as f64).sin()
                    });
                    terms.push(ProductTerm {
                        weight: Some(Array2::eye(4) * 1e3),
                        target: wave.clone(),
                        source: wave,
                    });
                    ProductSeries::new(
                        terms,
                        f.target_mask.clone(),
                        f.source_mask.clone(),
                        f.segments.clone(),
                    )
                })
                .collect();
            let r = hac::hac_test_off_diagonal(&noisy, Bandwidth::NeweyWest);
            assert!((r.bandwidth - clean.bandwidth).abs() < 1e-9 * clean.bandwidth);
            for j in 0..4 {
                assert!(r.t[[j, j]].is_nan() && r.p[[j, j]].is_nan());
                for i in (0..4).filter(|&i| i != j) {
                    let (a, b) = (r.t[[j, i]], clean.t[[j, i]]);
                    assert!((a - b).abs() <= 1e-9 * b.abs().max(1.0), "{a} vs {b}");
                    // Antisymmetric: t(j, i) = −t(i, j).
                    assert!((a + r.t[[i, j]]).abs() <= 1e-9 * a.abs().max(1.0));
                }
            }
        }
    }

    #[test]
    fn gemm_hac_agrees_with_per_edge_reference() {
        for seed in 0..3 {
            let folds = random_folds(seed);
            let fast = hac_test(&folds, Bandwidth::Andrews);
            assert!(fast.bandwidth > 1.0, "autocorrelated series need b > 1");
            let slow = reference::hac_test_per_edge(&folds, fast.bandwidth);
            for (name, a, b) in [
                ("mean", &fast.mean, &slow.mean),
                ("count", &fast.count, &slow.count),
                ("lrv", &fast.long_run_variance, &slow.long_run_variance),
                ("t", &fast.t, &slow.t),
                ("p", &fast.p, &slow.p),
            ] {
                for (x, y) in a.iter().zip(b.iter()) {
                    assert!(
                        (x - y).abs() <= 1e-9 * y.abs().max(1e-12),
                        "{name}: {x} vs {y}"
                    );
                }
            }
        }
    }

    #[test]
    fn selected_rows_keep_values_and_split_segments() {
        let folds = random_folds(7);
        let f = &folds[0]; // segments 0..20, 20..37
        let rows: Vec<usize> = (15..25).chain(30..33).collect();
        let sub = f.select_rows(&rows);
        assert_eq!(sub.segments, vec![0..5, 5..10, 10..13]);
        for (k, &r) in rows.iter().enumerate() {
            assert_eq!(sub.value(k, 2, 1), f.value(r, 2, 1));
            assert_eq!(sub.observed(k, 3, 0), f.observed(r, 3, 0));
        }
    }

    #[test]
    fn fixed_bandwidth_one_is_the_iid_t_test() {
        // b = 1 keeps only Γ_0: t = mean / (sd/√N) with the N−1 variance.
        let y = [1.0, 2.0, 4.0, 7.0];
        let s = ProductSeries::new(
            vec![ProductTerm {
                weight: None,
                target: Array2::from_shape_vec((4, 1), y.to_vec()).unwrap(),
                source: Array2::ones((4, 1)),
            }],
            Array2::ones((4, 1)),
            Array2::ones((4, 1)),
            std::iter::once(0..4).collect(),
        );
        let r = hac_test(&[s], Bandwidth::Fixed(1.0));
        // mean 3.5, sample variance (6.25+2.25+.25+12.25)/3 = 7, t = 3.5/√(7/4)
        assert!((r.mean[[0, 0]] - 3.5).abs() < 1e-15);
        assert!((r.t[[0, 0]] - 3.5 / (7.0f64 / 4.0).sqrt()).abs() < 1e-12);
    }

    /// The direction series by hand: `D_t(j, i) = Y_t(j, i) − Y_t(i, j)` where both
    /// neurons are observed in both blocks, 0 elsewhere; antisymmetric.
    #[test]
    fn antisymmetric_series_is_the_edge_minus_its_reverse() {
        let mut rng = stream(9, 0);
        let (t_len, n) = (7, 4);
        let mut g = |r, c| Array2::from_shape_fn((r, c), |_| rng.random_range(-1.0..1.0));
        let terms = vec![
            ProductTerm {
                weight: None,
                target: g(t_len, n),
                source: g(t_len, n),
            },
            ProductTerm {
                weight: Some(g(n, n)),
                target: g(t_len, n),
                source: g(t_len, n),
            },
        ];
        let mut tm = Array2::ones((t_len, n));
        tm[[3, 1]] = 0.0;
        let mut sm = Array2::ones((t_len, n));
        sm[[5, 2]] = 0.0;
        let y = ProductSeries::new(
            terms,
            tm.clone(),
            sm.clone(),
            std::iter::once(0..t_len).collect(),
        );
        let d = y.antisymmetric();
        for t in 0..t_len {
            for j in 0..n {
                for i in 0..n {
                    let both = tm[[t, i]] * tm[[t, j]] * sm[[t, i]] * sm[[t, j]];
                    let expect = both * (y.value(t, j, i) - y.value(t, i, j));
                    assert!(
                        (d.value(t, j, i) - expect).abs() < 1e-12,
                        "t {t} ({j}, {i})"
                    );
                    assert!((d.value(t, j, i) + d.value(t, i, j)).abs() < 1e-12);
                }
            }
        }
    }
}
