//! One tested edge: a row of `edges.csv`.

use crate::stats::TestKind;

/// One tested edge `source → target` at a lag ≥ 1, or one unordered same-frame pair at
/// lag 0 (`source` before `target` in panel order).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EdgeRow {
    pub source: String,
    pub target: String,
    pub lag: usize,
    /// `μ̂`, the mean of the tested series (standardised units), or the method's estimate.
    pub mu: f64,
    /// Mean test: signed like the Jacobian for SBTG (`−μ̂`, positive = excitatory), the
    /// method's estimate for the baselines. Volatility test: `μ̂` (positive = the
    /// source's and target's variances rise together).
    pub effect: f64,
    /// Standard error of `effect`.
    pub se: f64,
    /// 95% interval of `effect` (Student t with N − 1 degrees of freedom for HAC
    /// tests; Fisher z for correlations; the regression's t for coefficients).
    pub ci_low: f64,
    pub ci_high: f64,
    pub t: f64,
    pub p: f64,
    pub q: f64,
    pub test: TestKind,
    pub selected: bool,
    /// The HAC long-run variance was non-positive or tiny and was floored: `t` and `p`
    /// of this edge are unreliable (the series is degenerate, e.g. almost never
    /// observed). Always false for tests that are not HAC t-tests.
    #[serde(default)]
    pub variance_floored: bool,
    /// `all` for the tests over every window; a state's name for its per-state test;
    /// `A-B` for the differential test of state A against state B (`--states`).
    #[serde(default = "all_states")]
    pub state: String,
}

fn all_states() -> String {
    crate::data::state::ALL_STATES.to_string()
}

impl EdgeRow {
    /// Lagged edges are directed; same-frame (lag-0) pairs and direction tests (which
    /// compare the two directions of a pair) are not.
    pub fn directed(&self) -> bool {
        self.lag > 0 && self.test != TestKind::Direction
    }
}
