//! The kinds of test in one FDR family.

/// Which test produced an edge row.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum TestKind {
    /// `E[Y] = 0` for the cross-block score statistic (Jacobian test), or the
    /// method's own test of its estimate.
    Mean,
    /// `E[V] = 0` for centred squared scores (volatility transfer).
    Volatility,
    /// `E[Y(i→j) − Y(j→i)] = 0`: which way a lagged coupling runs, one row per
    /// unordered pair and lag, in an FDR family of its own.
    Direction,
}

impl TestKind {
    /// The name used in every table and export (`mean`, `volatility`).
    pub fn name(self) -> &'static str {
        match self {
            TestKind::Mean => "mean",
            TestKind::Volatility => "volatility",
            TestKind::Direction => "direction",
        }
    }
}

impl std::fmt::Display for TestKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
