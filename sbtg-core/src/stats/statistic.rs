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

use ndarray::{s, Array2, Axis};

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
}

impl HeldOutScores {
    fn block(&self, a: &Array2<f64>, r: &Range<usize>) -> Array2<f64> {
        a.slice(s![.., r.clone()]).to_owned()
    }

    /// The series of the mean (Jacobian) test.
    pub fn mean_series(&self, statistic: EdgeStatistic) -> ProductSeries {
        let sf = self.block(&self.scores, &self.future);
        let ss = self.block(&self.scores, &self.source);
        let mut terms = Vec::new();
        match statistic {
            EdgeStatistic::Product => terms.push(ProductTerm {
                weight: None,
                target: sf,
                source: ss,
            }),
            EdgeStatistic::Orthogonal => {
                for h in &self.hessian {
                    terms.push(ProductTerm {
                        weight: h.weight.clone(),
                        target: &h.target * 2.0,
                        source: h.source.clone(),
                    });
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
