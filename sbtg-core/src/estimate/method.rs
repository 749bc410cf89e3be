//! The catalogue of estimators and the configuration of a whole inference run.

use super::{
    Estimator, Granger, LaggedCorrelation, PairwiseGranger, PartialCorrelation, Pcmci,
    PrewhitenedCorrelation, Sbtg,
};
use crate::stats::empirical_null::NullDistribution;
use crate::stats::random_effects::Pooling;
use crate::stats::{Bandwidth, FdrMethod};
use crate::{Error, Result};

/// Which estimator produces the edge statistics (`--method`).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// Score-Block Time Graphs (the default).
    #[default]
    Sbtg,
    /// Lagged cross-correlation of the z-scored traces, same HAC test and FDR.
    LaggedCorrelation,
    /// Lagged cross-correlation of each neuron's own-autoregression residuals
    /// (prewhitening), same HAC test and FDR.
    PrewhitenedCorrelation,
    /// Partial correlation of the lagged design (ridge precision matrix, Fisher z).
    PartialCorrelation,
    /// Conditional Granger: VAR(p) coefficients with Newey–West errors.
    Granger,
    /// Bivariate Granger F-tests (conditions on the target's own past only).
    PairwiseGranger,
    /// PCMCI with partial-correlation tests (tigramite's ParCorr).
    Pcmci,
}

impl Method {
    /// Every method, SBTG first.
    pub const ALL: [Method; 7] = [
        Method::Sbtg,
        Method::LaggedCorrelation,
        Method::PrewhitenedCorrelation,
        Method::PartialCorrelation,
        Method::Granger,
        Method::PairwiseGranger,
        Method::Pcmci,
    ];

    /// The command-line name (`--method`).
    pub fn name(self) -> &'static str {
        match self {
            Method::Sbtg => "sbtg",
            Method::LaggedCorrelation => "lagged-correlation",
            Method::PrewhitenedCorrelation => "prewhitened-correlation",
            Method::PartialCorrelation => "partial-correlation",
            Method::Granger => "granger",
            Method::PairwiseGranger => "pairwise-granger",
            Method::Pcmci => "pcmci",
        }
    }

    /// The method with its default settings.
    pub fn default_config(self) -> MethodConfig {
        match self {
            Method::Sbtg => MethodConfig::Sbtg(Sbtg::default()),
            Method::LaggedCorrelation => MethodConfig::LaggedCorrelation(LaggedCorrelation {}),
            Method::PrewhitenedCorrelation => {
                MethodConfig::PrewhitenedCorrelation(PrewhitenedCorrelation::default())
            }
            Method::PartialCorrelation => {
                MethodConfig::PartialCorrelation(PartialCorrelation::default())
            }
            Method::Granger => MethodConfig::Granger(Granger::default()),
            Method::PairwiseGranger => MethodConfig::PairwiseGranger(PairwiseGranger::default()),
            Method::Pcmci => MethodConfig::Pcmci(Pcmci::default()),
        }
    }

    /// What the method computes, for `summary.json` and reports.
    pub fn describe(self) -> &'static str {
        match self {
            Method::Sbtg => "Score-Block Time Graphs (Kinger, Bertram, Dyballa, Yemini, Zucker, arXiv 2605.02852)",
            Method::LaggedCorrelation => "lagged correlation: mean of x_{t+lag,target} x_{t,source} over windows (traces z-scored per recording), HAC t-test",
            Method::PrewhitenedCorrelation => "prewhitened correlation: each neuron's trace replaced, per recording, by the unit-variance residual of its own autoregression (order by BIC); mean of e_{t+lag,target} e_{t,source} over windows, HAC t-test",
            Method::PartialCorrelation => "partial correlation of x_{t+p,target} and x_{t+p-lag,source} given every other coordinate of the windows [x_t, ..., x_{t+p}] (ridge precision matrix, intercept per recording), Fisher z test",
            Method::Granger => "conditional Granger causality: coefficient A_lag[target, source] of the VAR(p) of all neurons (least squares, ridge option, intercept per recording), Newey-West sandwich t-test",
            Method::PairwiseGranger => "pairwise Granger causality: coefficient of x_source at the lag in the regression of x_target on the p past values of itself and of x_source, F(1, dof) test",
            Method::Pcmci => "PCMCI (Runge et al. 2019) with partial-correlation tests: PC1 condition selection, then the MCI partial correlation given the parents of both ends",
        }
    }

    /// What the reported `effect` of the mean test is.
    pub fn effect_meaning(self) -> &'static str {
        match self {
            Method::Sbtg => "effect = -mu for the mean test: signed like the Jacobian dx_{t+lag,target}/dx_{t,source} (positive = excitatory)",
            Method::LaggedCorrelation => "effect = mu, the lagged correlation (positive = positively correlated)",
            Method::PrewhitenedCorrelation => "effect = mu, the lagged correlation of the neurons' own-past innovations (positive = positively correlated)",
            Method::PartialCorrelation | Method::Pcmci => "effect = the partial correlation (positive = excitatory); t is its test statistic (Fisher z or Student t)",
            Method::Granger | Method::PairwiseGranger => "effect = the regression coefficient of x_{t,source} for x_{t+lag,target} in standardised units (positive = excitatory)",
        }
    }

    /// Whether the method's mean tests are HAC t-tests (their summary records the
    /// bandwidth rule).
    pub fn hac_tested(self) -> bool {
        matches!(
            self,
            Method::Sbtg
                | Method::LaggedCorrelation
                | Method::PrewhitenedCorrelation
                | Method::Granger
        )
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One estimator with its own settings.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "method", rename_all = "kebab-case")]
pub enum MethodConfig {
    Sbtg(Sbtg),
    LaggedCorrelation(LaggedCorrelation),
    PrewhitenedCorrelation(PrewhitenedCorrelation),
    PartialCorrelation(PartialCorrelation),
    Granger(Granger),
    PairwiseGranger(PairwiseGranger),
    Pcmci(Pcmci),
}

impl Default for MethodConfig {
    fn default() -> Self {
        MethodConfig::Sbtg(Sbtg::default())
    }
}

impl MethodConfig {
    /// The estimator behind these settings.
    pub fn estimator(&self) -> &dyn Estimator {
        match self {
            MethodConfig::Sbtg(e) => e,
            MethodConfig::LaggedCorrelation(e) => e,
            MethodConfig::PrewhitenedCorrelation(e) => e,
            MethodConfig::PartialCorrelation(e) => e,
            MethodConfig::Granger(e) => e,
            MethodConfig::PairwiseGranger(e) => e,
            MethodConfig::Pcmci(e) => e,
        }
    }

    pub fn method(&self) -> Method {
        self.estimator().method()
    }

    /// The SBTG settings, if this is SBTG.
    pub fn sbtg(&self) -> Option<&Sbtg> {
        match self {
            MethodConfig::Sbtg(s) => Some(s),
            _ => None,
        }
    }
}

/// Settings of the shared test stage and of the FDR step.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TestConfig {
    pub fdr: FdrMethod,
    /// FDR level α.
    pub alpha: f64,
    /// HAC bandwidth rule of every HAC t-test.
    pub bandwidth: Bandwidth,
    /// How the mean tests pool the recordings (absent in runs saved before it existed:
    /// fixed).
    #[serde(default)]
    pub pooling: Pooling,
    /// The null distribution of the p-values (absent in runs saved before it existed:
    /// theoretical).
    #[serde(default)]
    pub null: NullDistribution,
}

impl Default for TestConfig {
    fn default() -> Self {
        TestConfig {
            fdr: FdrMethod::Bh,
            alpha: 0.1,
            bandwidth: Bandwidth::NeweyWest,
            pooling: Pooling::Fixed,
            null: NullDistribution::Theoretical,
        }
    }
}

impl TestConfig {
    /// The default tests of `method`: SBTG's p-values against the empirical null (its
    /// cross-fitted means of one edge are correlated across folds when the model sits
    /// near the closed form, which the theoretical null does not see; docs/method.md §6),
    /// the baselines' against their theoretical null.
    pub fn of(method: Method) -> Self {
        TestConfig {
            null: match method {
                Method::Sbtg => NullDistribution::Empirical,
                _ => NullDistribution::Theoretical,
            },
            ..TestConfig::default()
        }
    }

    pub fn validate(&self) -> Result<()> {
        if !(self.alpha > 0.0 && self.alpha < 1.0) {
            return Err(Error::param(
                "alpha",
                format!("the FDR level must lie in (0, 1), got {}", self.alpha),
            ));
        }
        if let Bandwidth::Fixed(b) = self.bandwidth {
            if b.is_nan() || b < 1.0 {
                return Err(Error::param("bandwidth", format!("must be ≥ 1, got {b}")));
            }
        }
        Ok(())
    }
}

/// Everything an inference run needs besides the data: the estimator, the lags, the
/// tests.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct InferConfig {
    pub estimator: MethodConfig,
    /// Lags tested (frames), all in one FDR family.
    pub lags: Vec<usize>,
    pub tests: TestConfig,
}

impl Default for InferConfig {
    fn default() -> Self {
        InferConfig::of(Method::Sbtg)
    }
}

impl InferConfig {
    /// The default configuration of `method`, at its default lags
    /// ([`Self::default_lags`]).
    pub fn of(method: Method) -> Self {
        let estimator = method.default_config();
        InferConfig {
            lags: Self::default_lags(&estimator),
            estimator,
            tests: TestConfig::of(method),
        }
    }

    /// Same-frame pairs and lag 1 (`[0, 1]`) for the methods that test lag 0, lag 1
    /// for the others.
    pub fn default_lags(estimator: &MethodConfig) -> Vec<usize> {
        if estimator.estimator().tests_same_frame() {
            vec![0, 1]
        } else {
            vec![1]
        }
    }

    pub fn method(&self) -> Method {
        self.estimator.method()
    }

    /// Frames one window spans (the largest lag plus one, or more for PCMCI).
    pub fn window_frames(&self) -> usize {
        let max_lag = self.lags.iter().copied().max().unwrap_or(1);
        self.estimator.estimator().window_frames(max_lag)
    }

    /// The SBTG settings, if the estimator is SBTG.
    pub fn sbtg_mut(&mut self) -> Option<&mut Sbtg> {
        match &mut self.estimator {
            MethodConfig::Sbtg(s) => Some(s),
            _ => None,
        }
    }

    /// Checks the lags, the tests and the estimator's own settings.
    pub fn validate(&self) -> Result<()> {
        self.estimator.estimator().validate()?;
        self.tests.validate()?;
        if self.lags.is_empty() {
            return Err(Error::param("lags", "need one or more lags"));
        }
        if self.lags.contains(&0) && !self.estimator.estimator().tests_same_frame() {
            return Err(Error::param(
                "lags",
                format!(
                    "lag 0 (same-frame edges) is tested by sbtg, lagged-correlation, prewhitened-correlation and partial-correlation, not by {}; drop 0 from --lags",
                    self.estimator.estimator().method().name()
                ),
            ));
        }
        let mut sorted = self.lags.clone();
        sorted.sort_unstable();
        sorted.dedup();
        if sorted.len() != self.lags.len() {
            return Err(Error::param(
                "lags",
                format!("each lag once, got {:?}", self.lags),
            ));
        }
        Ok(())
    }
}
