//! `summary.json`: what was analysed, how, and what was found, as one typed structure
//! that the library writes and reads back.

use std::path::PathBuf;

use crate::data::{FoldScheme, Panel, PanelConfig, Stimulus};
use crate::estimate::{FoldReport, InferConfig, LagTests, Method};
use crate::stats::{Bandwidth, FdrMethod, TestKind};

use super::EdgeRow;

/// One column of `edges.csv` and what it holds.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ColumnDoc {
    pub column: String,
    pub meaning: String,
}

/// A recording that entered the panel.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RecordingSummary {
    pub name: String,
    pub file: PathBuf,
    pub frames: usize,
    pub dt_s: f64,
    pub stimuli: Vec<Stimulus>,
    pub reader_notes: Vec<String>,
}

/// How the HAC tests were made.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HacSummary {
    pub kernel: String,
    pub bandwidth_rule: String,
    pub small_sample_correction: String,
}

/// Selected rows per test.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SelectedCounts {
    pub mean: usize,
    pub volatility: usize,
    /// Pairs whose direction test is significant in its own FDR family (absent in runs
    /// saved before it existed).
    #[serde(default)]
    pub direction: usize,
}

impl SelectedCounts {
    pub(crate) fn of<'a>(rows: impl Iterator<Item = &'a EdgeRow>) -> Self {
        let mut c = SelectedCounts::default();
        for r in rows.filter(|r| r.selected) {
            match r.test {
                TestKind::Mean => c.mean += 1,
                TestKind::Volatility => c.volatility += 1,
                TestKind::Direction => c.direction += 1,
            }
        }
        c
    }
}

/// Seconds spent in one lag.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LagSeconds {
    pub train: f64,
    pub edge_tests: f64,
}

/// The held-out DSM loss of a lag's trained models next to its references, averaged
/// over the folds that report all three ([`LagSummary::heldout_losses`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HeldoutLosses {
    pub folds: usize,
    /// Mean held-out loss of the trained score models.
    pub model: f64,
    /// Mean held-out loss of the folds' Gaussian window models (closed form).
    pub gaussian: f64,
    /// Mean held-out loss of a standard normal score `s(z) = −z`.
    pub normal: f64,
    /// Folds whose model's loss is below its Gaussian model's.
    pub below_gaussian: usize,
}

/// What one lag found.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LagSummary {
    pub lag: usize,
    pub windows: usize,
    /// Per-fold diagnostics of the trained models (empty for methods without training).
    pub folds: Vec<FoldReport>,
    /// HAC bandwidth of the mean test (`null` for closed-form tests).
    pub bandwidth_mean_test: Option<f64>,
    pub bandwidth_volatility_test: Option<f64>,
    /// Edges whose HAC variance was floored (their t and p are unreliable).
    pub floored_variances: usize,
    pub edges_selected: SelectedCounts,
    pub seconds: LagSeconds,
    /// How much the recordings' mean tests differ beyond their own standard errors
    /// (absent with fewer than two recordings or a closed-form test).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heterogeneity: Option<crate::stats::random_effects::Heterogeneity>,
    /// With `--null empirical`: the spread of each family's empirical null.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub empirical_null: Option<crate::estimate::test_stage::NullSpreads>,
    /// How the recordings' own mean tests agree: each one's spread and their mean
    /// correlation (absent with fewer than two recordings or a closed-form test).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording_agreement: Option<crate::stats::random_effects::RecordingAgreement>,
}

/// The declared FDR family.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FdrSummary {
    pub method: FdrMethod,
    pub alpha: f64,
    pub family: String,
    /// Tests run (rows with a p-value): the m of the FDR procedure.
    pub family_size: usize,
    /// Rows that could not be tested (no p-value), left out of the family.
    pub untested: usize,
    /// The direction tests' own family (absent when none ran).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction_family: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction_family_size: Option<usize>,
}

/// Seconds of the whole run.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Seconds {
    pub train: f64,
    pub edge_tests: f64,
    pub total: f64,
}

/// The stimulus cut the recordings were restricted to (`--stimulus`, `--window`).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StimulusCut {
    pub stimulus: String,
    pub window: String,
    pub seconds: Option<f64>,
    pub rule: String,
}

/// Where the score models of an `sbtg score` run came from.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ScoredWith {
    pub model_run: PathBuf,
    pub model_git_commit: Option<String>,
    pub rule: String,
}

/// `summary.json`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Summary {
    pub sbtg_version: String,
    /// The estimator (`sbtg`, `lagged-correlation`, …).
    pub method: Method,
    pub method_description: String,
    /// Every setting of the run.
    pub config: InferConfig,
    pub window: String,
    pub sign_convention: String,
    pub columns: Vec<ColumnDoc>,
    /// How the neurons were selected.
    pub panel: PanelConfig,
    pub neurons: Vec<String>,
    pub recordings: Vec<RecordingSummary>,
    pub fold_scheme: Option<FoldScheme>,
    /// Only for methods whose tests are HAC t-tests.
    pub hac: Option<HacSummary>,
    pub per_lag: Vec<LagSummary>,
    pub fdr: FdrSummary,
    pub edges_selected: SelectedCounts,
    pub seconds: Seconds,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stimulus_window: Option<StimulusCut>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scored_with: Option<ScoredWith>,
    /// The per-state and differential tests (`--states`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub states: Option<StatesSummary>,
}

/// Windows of one state at one lag.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StateWindows {
    pub lag: usize,
    pub state: String,
    pub windows: usize,
}

/// Selected rows of one state (or difference) at one lag.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StateSelected {
    pub state: String,
    pub lag: usize,
    pub tested: usize,
    pub selected: usize,
}

/// What the per-state and differential tests were and found (`--states`).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StatesSummary {
    /// The state specification, as given.
    pub spec: String,
    pub states: Vec<String>,
    /// Differential tests `A-B` (state A's effect minus state B's).
    pub differences: Vec<String>,
    pub window_rule: String,
    pub keep_straddling: bool,
    pub statistic: String,
    /// Frames and bouts of every state in every recording.
    pub frames: Vec<crate::data::state::StateFrames>,
    pub windows: Vec<StateWindows>,
    pub family: String,
    /// Per-state tests run (rows with a p-value).
    pub family_size: usize,
    /// Differential tests run.
    #[serde(default)]
    pub differential_family_size: usize,
    pub selected: Vec<StateSelected>,
    /// `pooled` or `separate` (`--state-model`).
    #[serde(default)]
    pub model: crate::data::state::StateModel,
    /// Held-out DSM loss of the future block on each state's windows, for the model
    /// fitted on all windows and (with `--state-model separate`) the state's own model.
    #[serde(default)]
    pub heldout_future_loss: Vec<crate::estimate::states::StateLoss>,
    /// With `--state-shifts`: the circular-shift null behind the differential p-values,
    /// per difference and lag (empty: HAC p-values).
    #[serde(default)]
    pub shift_null: Vec<crate::estimate::states::ShiftCalibration>,
}

impl StatesSummary {
    pub(crate) fn new(
        states: &crate::data::FrameStates,
        panel: &Panel,
        tests: &[super::StateTests],
        rows: &[EdgeRow],
    ) -> Self {
        let mut windows = Vec::new();
        let mut selected = Vec::new();
        for t in tests {
            if !windows.iter().any(|w: &StateWindows| w.lag == t.tests.lag) {
                for (name, &w) in states.names.iter().zip(&t.windows) {
                    windows.push(StateWindows {
                        lag: t.tests.lag,
                        state: name.clone(),
                        windows: w,
                    });
                }
            }
            let mine = || {
                rows.iter()
                    .filter(|r| r.lag == t.tests.lag && r.state == t.label)
            };
            selected.push(StateSelected {
                state: t.label.clone(),
                lag: t.tests.lag,
                tested: mine().filter(|r| !r.p.is_nan()).count(),
                selected: mine().filter(|r| r.selected).count(),
            });
        }
        let names = &states.names;
        StatesSummary {
            spec: states.spec.to_string(),
            states: names.clone(),
            differences: (0..names.len())
                .flat_map(|a| (a + 1..names.len()).map(move |b| (a, b)))
                .map(|(a, b)| crate::data::state::difference_label(&names[a], &names[b]))
                .collect(),
            window_rule: format!(
                "the state of a window is the state of its last frame t+1; windows whose frames are not all in that state {}",
                if states.keep_straddling { "are kept (--keep-straddling)" } else { "are dropped" }
            ),
            keep_straddling: states.keep_straddling,
            statistic: match states.model {
                crate::data::state::StateModel::Pooled => "the mean test's held-out series of the model fitted on all windows, averaged over the windows of each state; differences A-B of two states' means; HAC (Newey-West) variance of their influence series on the full time axis, so bouts and the autocorrelation between neighbouring bouts are accounted for",
                crate::data::state::StateModel::Separate => "the mean test's held-out series of a model per state, each fitted (cross-fitted by worm) on the windows of its state's runs only; HAC (Newey-West) tests within runs; differences A-B tested as (effect_A - effect_B) / sqrt(se_A^2 + se_B^2), Student t with min(N_A, N_B) - 1 degrees of freedom",
            }
            .to_string()
                + &if states.shift_null.shifts > 0 {
                    format!(
                        "; differential p-values from {} circular shifts of the state labels within each recording (bouts kept, link to the neurons broken): the fraction of the shifted |t| of every tested pair of the same difference and lag at or above the row's |t| (shift_null)",
                        states.shift_null.shifts
                    )
                } else {
                    String::new()
                },
            model: states.model,
            heldout_future_loss: Vec::new(),
            shift_null: Vec::new(),
            frames: states.frames(panel),
            windows,
            family: "every per-state mean test at every lag, BH/BY on its own; every differential test at every lag, BH/BY on its own (the all-window tests keep their family)".into(),
            family_size: rows
                .iter()
                .filter(|r| !r.p.is_nan() && states.names.contains(&r.state))
                .count(),
            differential_family_size: rows
                .iter()
                .filter(|r| !r.p.is_nan() && !states.names.contains(&r.state))
                .count(),
            selected,
        }
    }
}

/// The columns of `edges.csv` with their meaning.
pub fn column_docs() -> Vec<ColumnDoc> {
    [
        ("source", "presynaptic / causing neuron (block x_t)"),
        ("target", "postsynaptic / affected neuron (block x_{t+lag})"),
        ("lag", "lag in frames; 0 = same-frame pair (coupling of the innovations given the past, undirected, source first in panel order)"),
        ("mu", "mean of the tested series (standardised units; held-out windows for SBTG)"),
        ("effect", "SBTG mean test: -mu (Jacobian sign); volatility test and baselines: mu, the method's estimate"),
        ("se", "standard error of effect (HAC: sqrt(long-run variance / N))"),
        ("ci_low", "lower end of the 95% interval of effect (Student t with N-1 df for HAC tests, Fisher z for correlations, the regression's t for coefficients)"),
        ("ci_high", "upper end of the 95% interval of effect"),
        ("t", "test statistic, with the sign of effect: HAC t = effect / se (SBTG, lagged correlation, granger), Fisher z (partial-correlation), t (pairwise-granger, pcmci)"),
        ("p", "two-sided p-value (Student t, survival function)"),
        ("q", "FDR-adjusted p-value over the declared family"),
        ("test", "mean (Jacobian), volatility (volatility transfer) or direction (effect(source -> target) - effect(target -> source), one row per unordered pair, its own FDR family)"),
        ("selected", "q <= alpha"),
        ("variance_floored", "the HAC long-run variance was non-positive or below 1e-8 of the lag-0 variance and was floored; t and p are unreliable"),
        ("directed", "true for lagged edges (mean and volatility tests); false for same-frame (lag-0) pairs and for direction-test rows (one row per unordered pair): select same-frame pairs by lag == 0"),
        ("state", "all for the tests over every window; with --states, a state's name for its per-state mean test and A-B for the differential test of state A against state B"),
    ]
    .into_iter()
    .map(|(c, m)| ColumnDoc {
        column: c.into(),
        meaning: m.into(),
    })
    .collect()
}

impl LagSummary {
    /// Mean held-out losses of the lag's folds (model, Gaussian, standard normal), or
    /// `None` where no fold reports all three (baselines, saved models).
    pub fn heldout_losses(&self) -> Option<HeldoutLosses> {
        let full: Vec<(f64, f64, f64)> = self
            .folds
            .iter()
            .filter_map(|f| {
                Some((
                    f.heldout_loss,
                    f.gaussian_heldout_loss?,
                    f.normal_heldout_loss?,
                ))
            })
            .collect();
        if full.is_empty() {
            return None;
        }
        let k = full.len() as f64;
        let mean = |pick: fn(&(f64, f64, f64)) -> f64| full.iter().map(pick).sum::<f64>() / k;
        Some(HeldoutLosses {
            folds: full.len(),
            model: mean(|f| f.0),
            gaussian: mean(|f| f.1),
            normal: mean(|f| f.2),
            below_gaussian: full.iter().filter(|f| f.0 < f.1).count(),
        })
    }
}

impl Summary {
    /// The summary of a run of `cfg` on `panel` whose tests are `tests` and whose
    /// FDR-adjusted rows are `rows`.
    pub fn new(panel: &Panel, cfg: &InferConfig, tests: &[LagTests], rows: &[EdgeRow]) -> Self {
        let method = cfg.method();
        let estimator = cfg.estimator.estimator();
        let sbtg = cfg.estimator.sbtg();
        let volatility = tests.iter().any(|t| t.volatility.is_some());
        let directions = tests.iter().any(|t| t.direction.is_some());
        let edge_rows = || rows.iter().filter(|r| r.test != TestKind::Direction);
        let per_lag: Vec<LagSummary> = tests
            .iter()
            .map(|t| LagSummary {
                lag: t.lag,
                windows: t.windows,
                folds: t.folds.clone(),
                bandwidth_mean_test: t.mean.hac.as_ref().map(|h| h.bandwidth),
                bandwidth_volatility_test: t
                    .volatility
                    .as_ref()
                    .and_then(|v| v.hac.as_ref().map(|h| h.bandwidth)),
                floored_variances: t.mean.floored_count()
                    + t.volatility.as_ref().map_or(0, |v| v.floored_count()),
                edges_selected: SelectedCounts::of(rows.iter().filter(|r| r.lag == t.lag)),
                seconds: LagSeconds {
                    train: t.train_seconds,
                    edge_tests: t.test_seconds,
                },
                heterogeneity: t.heterogeneity(),
                empirical_null: t.null_spread,
                recording_agreement: t.recording_agreement(),
            })
            .collect();
        let seconds = Seconds {
            train: per_lag.iter().map(|l| l.seconds.train).sum(),
            edge_tests: per_lag.iter().map(|l| l.seconds.edge_tests).sum(),
            total: 0.0,
        };
        Summary {
            sbtg_version: env!("CARGO_PKG_VERSION").to_string(),
            method,
            method_description: method.describe().to_string(),
            config: cfg.clone(),
            window: estimator.window_rule(),
            sign_convention: format!("{}. Matrices are [target, source].", method.effect_meaning()),
            columns: column_docs(),
            panel: panel.config.clone(),
            neurons: panel.neurons.clone(),
            recordings: panel
                .recordings
                .iter()
                .map(|r| RecordingSummary {
                    name: r.name.clone(),
                    file: r.file.clone(),
                    frames: r.x.nrows(),
                    dt_s: r.dt,
                    stimuli: r.stimuli.clone(),
                    reader_notes: r.notes.iter().chain(&r.panel_notes).cloned().collect(),
                })
                .collect(),
            fold_scheme: sbtg.map(|s| s.folds.unwrap_or(FoldScheme::DEFAULT)),
            hac: method.hac_tested().then(|| HacSummary {
                kernel: "Bartlett (Newey-West)".into(),
                bandwidth_rule: match cfg.tests.bandwidth {
                    Bandwidth::NeweyWest => "Newey-West (1994) nonparametric plug-in pooled over the family of each lag and test".to_string(),
                    Bandwidth::Andrews => "Andrews (1991) AR(1) plug-in pooled over the family of each lag and test".to_string(),
                    Bandwidth::Fixed(b) => format!("fixed {b}"),
                },
                small_sample_correction: "variance divided by N-1; Student t with N-1 degrees of freedom".into(),
            }),
            fdr: FdrSummary {
                method: cfg.tests.fdr,
                alpha: cfg.tests.alpha,
                family: format!(
                    "every pair source != target that could be tested (ordered at lags >= 1, unordered at lag 0), at every lag ({}), {}",
                    cfg.lags
                        .iter()
                        .map(|l| l.to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                    if volatility {
                        "mean and volatility tests together"
                    } else {
                        "mean test"
                    }
                ),
                family_size: edge_rows().filter(|r| !r.p.is_nan()).count(),
                untested: edge_rows().filter(|r| r.p.is_nan()).count(),
                direction_family: directions.then(|| {
                    "every unordered pair at every lag >= 1 with a mean-test series: effect(source -> target) - effect(target -> source), BH/BY on its own".to_string()
                }),
                direction_family_size: directions.then(|| {
                    rows.iter()
                        .filter(|r| r.test == TestKind::Direction && !r.p.is_nan())
                        .count()
                }),
            },
            edges_selected: SelectedCounts::of(rows.iter()),
            per_lag,
            seconds,
            stimulus_window: None,
            scored_with: None,
            states: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two folds with references and one saved model without them: means of the two,
    /// by hand.
    #[test]
    fn heldout_losses_average_the_folds_that_report_their_references() {
        let fold = |model: f64, refs: Option<(f64, f64)>| {
            let mut f = serde_json::json!({
                "test_recordings": ["a"], "train_windows": 10, "test_windows": 5,
                "heldout_loss": model, "loaded_from_checkpoint": false,
            });
            if let Some((g, n)) = refs {
                f["gaussian_heldout_loss"] = g.into();
                f["normal_heldout_loss"] = n.into();
            }
            f
        };
        let lag = |folds: Vec<serde_json::Value>| -> LagSummary {
            serde_json::from_value(serde_json::json!({
                "lag": 1, "windows": 15, "folds": folds,
                "bandwidth_mean_test": null, "bandwidth_volatility_test": null,
                "floored_variances": 0,
                "edges_selected": SelectedCounts::default(),
                "seconds": LagSeconds::default(),
            }))
            .unwrap()
        };
        let h = lag(vec![
            fold(94.0, Some((95.0, 99.0))),
            fold(98.0, Some((97.0, 99.5))),
            fold(90.0, None),
        ])
        .heldout_losses()
        .unwrap();
        assert_eq!(h.folds, 2);
        assert_eq!((h.model, h.gaussian, h.normal), (96.0, 96.0, 99.25));
        assert_eq!(h.below_gaussian, 1);
        assert_eq!(lag(vec![fold(90.0, None)]).heldout_losses(), None);
    }
}
