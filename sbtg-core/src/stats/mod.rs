//! **Statistics layer**: per-edge product series and their GEMM sums, Newey–West HAC
//! t-tests, false discovery rate control, and the ranking metrics (AUROC, AUPRC,
//! Spearman, permutation p-values). Depends on the data layer only.
//!
//! Every per-edge time series the tests use has the form
//! `Y_t(j, i) = Σ_m W_m(j, i) · p_{m,t}(j) · q_{m,t}(i)` (j = target, i = source), a
//! short sum of weighted outer products ([`ProductTerm`]); every sum over time is then a
//! GEMM ([`series`]). All matrices are `[target, source]`.

pub mod empirical_null;
pub mod fdr;
pub mod hac;
pub mod hac_reference;
pub mod linalg;
pub mod metrics;
pub mod missing;
pub mod random_effects;
pub mod series;
pub mod statistic;
pub mod test_kind;

pub use fdr::{benjamini_hochberg, benjamini_yekutieli, FdrMethod};
pub use hac::{hac_test, hac_test_blocks, Bandwidth, HacResult, TargetBlock};
pub use missing::MissingNeurons;
pub use series::{subsegments, ProductSeries, ProductTerm};
pub use statistic::{EdgeStatistic, EffectScale, HeldOutScores, SameFrame};
pub use test_kind::TestKind;
