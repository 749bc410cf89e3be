//! The whole lag-1 SBTG estimator: panel → windows → cross-fitted score models →
//! held-out edge tests → FDR; and the lagged-correlation baseline through the same
//! testing stage (HAC t-test, FDR, per-recording summaries), so both produce the same
//! tables.

use std::time::Instant;

use ndarray::{Array2, Axis};
use rayon::prelude::*;

use crate::baseline::{BaselineConfig, ClassicTest, LagEstimate};
use crate::edge_test::{
    hac_test, hac_test_blocks, Bandwidth, EdgeStatistic, FdrMethod, HacResult, HeldOutScores,
    ProductSeries, TargetBlock,
};
use crate::fold::{make_folds, FoldScheme};
use crate::panel::Panel;
use crate::score::{train, ScoreModelConfig};
use crate::window::{Standardiser, Windows};
use crate::{Error, Result};

/// Which estimator produces the edge statistics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// Score-Block Time Graphs (the default).
    #[default]
    Sbtg,
    /// Lag-1 cross-correlation of the per-recording z-scored traces,
    /// `μ̂(j,i) = mean_t x_{t+1,j} x_{t,i}` over windows where both are observed, tested
    /// with the same HAC t-test; `effect = μ̂` (positive = positively correlated).
    LaggedCorrelation,
    /// Partial correlation of the lagged design (ridge precision matrix, Fisher z):
    /// [`crate::baseline::partial`].
    PartialCorrelation,
    /// Conditional Granger causality, VAR(p) coefficients with HAC errors:
    /// [`crate::baseline::granger`].
    Granger,
    /// Bivariate Granger F-tests: [`crate::baseline::pairwise_granger`].
    PairwiseGranger,
    /// PCMCI with partial-correlation tests: [`crate::baseline::pcmci`].
    Pcmci,
}

impl Method {
    /// Every method, SBTG first.
    pub const ALL: [Method; 6] = [
        Method::Sbtg,
        Method::LaggedCorrelation,
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
            Method::PartialCorrelation => "partial-correlation",
            Method::Granger => "granger",
            Method::PairwiseGranger => "pairwise-granger",
            Method::Pcmci => "pcmci",
        }
    }

    /// What the method computes, for `summary.json` and reports.
    pub fn describe(self) -> &'static str {
        match self {
            Method::Sbtg => "Score-Block Time Graphs (Kinger, Bertram, Dyballa, Yemini, Zucker, arXiv 2605.02852)",
            Method::LaggedCorrelation => "lagged correlation: mean of x_{t+lag,target} x_{t,source} over windows (traces z-scored per recording), HAC t-test",
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
            Method::PartialCorrelation | Method::Pcmci => "effect = the partial correlation (positive = excitatory); t is its test statistic (Fisher z or Student t)",
            Method::Granger | Method::PairwiseGranger => "effect = the regression coefficient of x_{t,source} for x_{t+lag,target} in standardised units (positive = excitatory)",
        }
    }

    /// Whether the method fits one model over all lags (p = the largest lag).
    fn joint_lags(self) -> bool {
        !matches!(self, Method::Sbtg | Method::LaggedCorrelation)
    }
}

/// Everything `infer` needs besides the data.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct InferConfig {
    #[serde(default)]
    pub method: Method,
    pub model: ScoreModelConfig,
    /// Cross-fitting scheme; `None` = [`FoldScheme::default_for`] the number of recordings.
    pub folds: Option<FoldScheme>,
    pub statistic: EdgeStatistic,
    /// Also run the volatility-transfer test (its p-values join the same FDR family).
    pub volatility: bool,
    pub fdr: FdrMethod,
    /// FDR level α.
    pub alpha: f64,
    pub bandwidth: Bandwidth,
    pub seed: u64,
    /// Lags tested (frames), each with its own windows and score models.
    #[serde(default = "default_lags")]
    pub lags: Vec<usize>,
    /// Windows of lags above 1.
    #[serde(default)]
    pub lag_windows: LagWindows,
    /// Settings of the regression baselines.
    #[serde(default)]
    pub baseline: BaselineConfig,
}

fn default_lags() -> Vec<usize> {
    vec![1]
}

/// How a lag `r > 1` is windowed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LagWindows {
    /// `z_t = [x_t, x_{t+1}, …, x_{t+r}]`: the test of block r against block 0
    /// conditions on the snapshots in between, so it measures the direct lag-r effect
    /// (default; SBTG only).
    #[default]
    Minimal,
    /// `z_t = [x_t, x_{t+r}]`: the plain lagged pair, which also picks up paths through
    /// the intermediate snapshots (for comparison; always used by lagged correlation).
    Pairwise,
}

impl Default for InferConfig {
    fn default() -> Self {
        InferConfig {
            method: Method::Sbtg,
            model: ScoreModelConfig::default(),
            folds: None,
            statistic: EdgeStatistic::Orthogonal,
            volatility: true,
            fdr: FdrMethod::Bh,
            alpha: 0.1,
            bandwidth: Bandwidth::NeweyWest,
            seed: 0,
            lags: default_lags(),
            lag_windows: LagWindows::Minimal,
            baseline: BaselineConfig::default(),
        }
    }
}

impl InferConfig {
    pub fn validate(&self) -> Result<()> {
        self.model.validate()?;
        self.baseline.validate()?;
        if !(self.alpha > 0.0 && self.alpha < 1.0) {
            return Err(Error::param(
                "alpha",
                format!("the FDR level must lie in (0, 1), got {}", self.alpha),
            ));
        }
        if self.lags.is_empty() || self.lags.contains(&0) {
            return Err(Error::param(
                "lags",
                format!("need one or more lags ≥ 1, got {:?}", self.lags),
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
        if let Bandwidth::Fixed(b) = self.bandwidth {
            if b.is_nan() || b < 1.0 {
                return Err(Error::param("bandwidth", format!("must be ≥ 1, got {b}")));
            }
        }
        Ok(())
    }
}

/// Which test produced an edge row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TestKind {
    /// `E[Y] = 0` for the cross-block score statistic (Jacobian test).
    Mean,
    /// `E[V] = 0` for centred squared scores (volatility transfer).
    Volatility,
}

/// One tested directed edge `source → target` at a lag.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EdgeRow {
    pub source: String,
    pub target: String,
    pub lag: usize,
    /// `μ̂`, the mean of the tested series (standardised units).
    pub mu: f64,
    /// Mean test: `−μ̂`, signed like the Jacobian (positive = excitatory).
    /// Volatility test: `μ̂` (positive = the source's and target's variances rise together).
    pub effect: f64,
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
}

/// Progress reports from [`infer`].
#[derive(Clone, Debug)]
pub enum Progress {
    /// Training of one lag's score models is about to start: total number of epochs
    /// over its folds.
    Training {
        lag: usize,
        folds: usize,
        total_epochs: usize,
    },
    /// One epoch of one fold of one lag finished.
    Epoch {
        lag: usize,
        fold: usize,
        epoch: usize,
        loss: f64,
    },
    /// A fold's score model was loaded from its checkpoint instead of trained.
    Resumed {
        lag: usize,
        fold: usize,
        epochs: usize,
    },
    /// A named stage started.
    Stage(&'static str),
}

/// Where trained score models are saved ([`crate::checkpoint`]), and whether models
/// already there are reused.
#[derive(Clone, Debug)]
pub struct CheckpointStore {
    pub dir: std::path::PathBuf,
    /// Load a fold's model from `dir` when its fingerprint matches instead of training
    /// it again (`sbtg infer --resume`).
    pub reuse: bool,
}

/// Per-fold diagnostics.
#[derive(Clone, Debug, serde::Serialize)]
pub struct FoldReport {
    pub train_windows: usize,
    pub test_windows: usize,
    pub test_recordings: Vec<String>,
    pub epoch_loss: Vec<f64>,
    /// Held-out DSM loss (fixed noise draw) of the final model.
    pub heldout_loss: f64,
    /// The model was loaded from a checkpoint, not trained in this run.
    pub resumed: bool,
}

/// The mean test restricted to one recording's held-out windows, with the pooled
/// bandwidth: what a bootstrap over recordings resamples. Pooling recordings `r` gives
/// back `μ̂ = Σ n_r μ̂_r / Σ n_r` and `Var(μ̂) ≈ Σ n_r² Var(μ̂_r) / (Σ n_r)²`.
#[derive(Clone, Debug)]
pub struct RecordingTest {
    pub recording: String,
    /// `μ̂_r` (`[target, source]`).
    pub mean: Array2<f64>,
    /// Observed windows `n_r`.
    pub count: Array2<f64>,
    /// `Var(μ̂_r) = Ω̂_r / n_r`.
    pub variance_of_mean: Array2<f64>,
}

/// Everything one lag produced.
#[derive(Clone, Debug)]
pub struct LagResult {
    pub lag: usize,
    /// Windows tested at this lag.
    pub windows: usize,
    /// Per-fold diagnostics (empty for methods without training).
    pub folds: Vec<FoldReport>,
    pub mean_test: HacResult,
    pub volatility_test: Option<HacResult>,
    /// Per-recording summaries of the mean test.
    pub recording_tests: Vec<RecordingTest>,
    pub train_seconds: f64,
    /// Edge-test seconds; a baseline that fits all lags in one model counts the fit at
    /// its first lag.
    pub test_seconds: f64,
}

/// The result of one run.
#[derive(Clone, Debug)]
pub struct Inference {
    pub method: Method,
    pub neurons: Vec<String>,
    /// Every tested (source, target, lag, test), FDR-adjusted over all of them.
    pub edges: Vec<EdgeRow>,
    /// `None` for methods without cross-fitting.
    pub fold_scheme: Option<FoldScheme>,
    pub lag_windows: LagWindows,
    /// One entry per lag, in the order of [`InferConfig::lags`].
    pub lags: Vec<LagResult>,
    /// Size of the FDR family.
    pub family_size: usize,
}

/// Held-out DSM loss with a fixed noise draw.
fn heldout_loss(
    model: &crate::score::EnergyModel,
    z: &Array2<f64>,
    m: &Array2<f64>,
    sigma: f64,
    seed: u64,
) -> f64 {
    use rand_distr::{Distribution, StandardNormal};
    let mut rng = crate::rng::stream(seed, 999);
    let eps = Array2::from_shape_fn(z.dim(), |_| {
        let e: f64 = StandardNormal.sample(&mut rng);
        e
    }) * m;
    let y = z + &(&eps * sigma);
    let r = (model.score(y.view()) + &eps / sigma) * m;
    (&r * &r).sum() / m.sum().max(1.0)
}

/// The windows of one lag `r`: minimal `[x_t, …, x_{t+r}]` (SBTG with
/// [`LagWindows::Minimal`]) or the plain pair `[x_t, x_{t+r}]`.
fn lag_windows(panel: &Panel, cfg: &InferConfig, lag: usize) -> Result<Windows> {
    match (cfg.method, cfg.lag_windows) {
        (Method::Sbtg, LagWindows::Minimal) => Windows::build(panel, lag + 1),
        _ => Windows::build_offsets(panel, &[0, lag]),
    }
}

/// Runs the configured method at every lag of `cfg.lags` on a panel; one FDR family
/// over every (source, target, lag, test).
pub fn infer(
    panel: &Panel,
    cfg: &InferConfig,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<Inference> {
    infer_with_checkpoints(panel, cfg, progress, None)
}

/// [`infer`], saving every trained score model into `store` (and, with
/// `store.reuse`, loading the ones already there whose fingerprints match).
pub fn infer_with_checkpoints(
    panel: &Panel,
    cfg: &InferConfig,
    progress: &(dyn Fn(Progress) + Sync),
    store: Option<&CheckpointStore>,
) -> Result<Inference> {
    cfg.validate()?;
    let scheme = cfg
        .folds
        .unwrap_or_else(|| FoldScheme::default_for(panel.recordings.len()));
    let mut lags = Vec::new();
    let mut edges = Vec::new();
    // Baselines that fit all lags in one model (p = the largest lag).
    let mut joint = if cfg.method.joint_lags() {
        progress(Progress::Stage("edge tests"));
        let t0 = Instant::now();
        let (windows, estimates) = fit_baseline(panel, cfg)?;
        Some((windows, estimates.into_iter(), t0.elapsed().as_secs_f64()))
    } else {
        None
    };
    for (li, &lag) in cfg.lags.iter().enumerate() {
        if let Some((windows, estimates, seconds)) = joint.as_mut() {
            let mut tested = match estimates.next().expect("one estimate per lag") {
                LagEstimate::Classic(c) => classic_tested(panel, lag, c),
                LagEstimate::Influence {
                    estimate,
                    series,
                    rows,
                    targets,
                } => {
                    let blocks: Vec<MeanBlock> = series
                        .into_iter()
                        .zip(rows)
                        .zip(targets)
                        .map(|((s, r), t)| MeanBlock {
                            targets: t,
                            series: vec![s],
                            rows: vec![r],
                        })
                        .collect();
                    test_lag(
                        panel,
                        windows,
                        cfg,
                        lag,
                        &blocks,
                        None,
                        1.0,
                        Some(&estimate),
                    )
                }
            };
            tested.seconds += std::mem::take(seconds);
            edges.append(&mut tested.edges);
            lags.push(LagResult {
                lag,
                windows: windows.len(),
                folds: Vec::new(),
                mean_test: tested.mean_test,
                volatility_test: None,
                recording_tests: tested.recording_tests,
                train_seconds: 0.0,
                test_seconds: tested.seconds,
            });
            continue;
        }
        let windows = lag_windows(panel, cfg, lag)?;
        let (mut tested, folds, train_seconds) = match cfg.method {
            Method::Sbtg => {
                progress(Progress::Training {
                    lag,
                    folds: scheme.k(),
                    total_epochs: scheme.k() * cfg.model.epochs,
                });
                let t0 = Instant::now();
                let (held, reports, rows) =
                    fit_heldout(panel, &windows, cfg, scheme, (li, lag), progress, store)?;
                let train_seconds = t0.elapsed().as_secs_f64();
                progress(Progress::Stage("edge tests"));
                let mean_series: Vec<_> =
                    held.iter().map(|h| h.mean_series(cfg.statistic)).collect();
                let volatility_series: Option<Vec<_>> = cfg
                    .volatility
                    .then(|| held.iter().map(|h| h.volatility_series()).collect());
                // Stein's identity: μ = −I·E[J], so the Jacobian-signed effect is −μ̂.
                let tested = test_lag(
                    panel,
                    &windows,
                    cfg,
                    lag,
                    &[MeanBlock::all(panel.neurons.len(), mean_series, rows)],
                    volatility_series.as_deref(),
                    -1.0,
                    None,
                );
                (tested, reports, train_seconds)
            }
            _ => {
                progress(Progress::Stage("edge tests"));
                let series = vec![crate::baseline::lagged_correlation_series(&windows)];
                let rows = vec![(0..windows.len()).collect()];
                let block = MeanBlock::all(panel.neurons.len(), series, rows);
                let tested = test_lag(panel, &windows, cfg, lag, &[block], None, 1.0, None);
                (tested, Vec::new(), 0.0)
            }
        };
        edges.append(&mut tested.edges);
        lags.push(LagResult {
            lag,
            windows: windows.len(),
            folds,
            mean_test: tested.mean_test,
            volatility_test: tested.volatility_test,
            recording_tests: tested.recording_tests,
            train_seconds,
            test_seconds: tested.seconds,
        });
    }
    Ok(finish(
        panel,
        cfg,
        edges,
        lags,
        (cfg.method == Method::Sbtg).then_some(scheme),
    ))
}

/// FDR adjustment over the whole family and assembly of the result.
fn finish(
    panel: &Panel,
    cfg: &InferConfig,
    mut edges: Vec<EdgeRow>,
    lags: Vec<LagResult>,
    fold_scheme: Option<FoldScheme>,
) -> Inference {
    let p: Vec<f64> = edges.iter().map(|r| r.p).collect();
    let q = cfg.fdr.adjust(&p);
    for (r, q) in edges.iter_mut().zip(q) {
        r.q = q;
        r.selected = q <= cfg.alpha;
    }
    Inference {
        method: cfg.method,
        neurons: panel.neurons.clone(),
        family_size: edges.len(),
        edges,
        fold_scheme,
        lag_windows: cfg.lag_windows,
        lags,
    }
}

/// SBTG edge tests of new recordings with saved score models: `models[l]` holds the
/// fold models of lag `cfg.lags[l]`. No window of `panel` was used to train any of
/// them, so every window is held out for every model; the tested series is the
/// average over the K models, `Y_t = (1/K) Σ_k Y_t^{(k)}` (each term an unbiased
/// held-out estimate of the same `−I·E[J]`), with the same HAC tests and FDR family
/// as [`infer`]. The panel must be on the models' neurons, in their order.
pub fn score_with_models(
    panel: &Panel,
    cfg: &InferConfig,
    models: &[Vec<crate::checkpoint::Checkpoint>],
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<Inference> {
    cfg.validate()?;
    if cfg.method != Method::Sbtg {
        return Err(Error::param(
            "method",
            "only SBTG runs have score models to re-use",
        ));
    }
    if models.len() != cfg.lags.len() {
        return Err(Error::Data(format!(
            "{} lags configured but models for {} given",
            cfg.lags.len(),
            models.len()
        )));
    }
    let n = panel.neurons.len();
    let mut lags = Vec::new();
    let mut edges = Vec::new();
    for (&lag, fold_models) in cfg.lags.iter().zip(models) {
        let windows = lag_windows(panel, cfg, lag)?;
        progress(Progress::Stage("edge tests"));
        let t0 = Instant::now();
        let k = fold_models.len().max(1) as f64;
        let all: Vec<usize> = (0..windows.len()).collect();
        let n_past = (windows.blocks - 1) * n;
        let mut mean_terms = Vec::new();
        let mut vol_terms = Vec::new();
        let mut reports = Vec::new();
        let mut masks = None;
        for ck in fold_models {
            if ck.neurons != panel.neurons || ck.offsets != windows.offsets {
                return Err(Error::Data(format!(
                    "the lag-{lag} model of fold {} was trained on other neurons or windows than the ones being scored",
                    ck.fold + 1
                )));
            }
            let (z, m) = ck
                .standardiser
                .apply(windows.z.view(), windows.mask.view(), &all);
            let scores = ck.model.score(z.view()) * &m;
            if scores.iter().any(|v| !v.is_finite()) {
                return Err(Error::Training(format!(
                    "the saved lag-{lag} model of fold {} gives non-finite scores on the new recordings",
                    ck.fold + 1
                )));
            }
            let held = HeldOutScores {
                hessian: ck.model.mixed_hessian_terms(z.view(), 0..n),
                scores,
                mask: m.clone(),
                segments: windows.segments.clone(),
                source: 0..n,
                future: n_past..n_past + n,
            };
            let scale = |s: ProductSeries| {
                s.terms.into_iter().map(|mut t| {
                    t.target /= k;
                    t
                })
            };
            let ms = held.mean_series(cfg.statistic);
            masks = Some((ms.target_mask.clone(), ms.source_mask.clone()));
            mean_terms.extend(scale(ms));
            if cfg.volatility {
                vol_terms.extend(scale(held.volatility_series()));
            }
            reports.push(FoldReport {
                train_windows: 0,
                test_windows: windows.len(),
                test_recordings: panel.recordings.iter().map(|r| r.name.clone()).collect(),
                heldout_loss: heldout_loss(&ck.model, &z, &m, ck.config.sigma, ck.seed + 7919),
                epoch_loss: ck.epoch_loss.clone(),
                resumed: true,
            });
        }
        let Some((target_mask, source_mask)) = masks else {
            return Err(Error::Data(format!("no saved model for lag {lag}")));
        };
        let mean = ProductSeries::new(
            mean_terms,
            target_mask.clone(),
            source_mask.clone(),
            windows.segments.clone(),
        );
        let vol = cfg.volatility.then(|| {
            vec![ProductSeries::new(
                vol_terms,
                target_mask,
                source_mask,
                windows.segments.clone(),
            )]
        });
        let mut tested = test_lag(
            panel,
            &windows,
            cfg,
            lag,
            &[MeanBlock::all(n, vec![mean], vec![all])],
            vol.as_deref(),
            -1.0,
            None,
        );
        tested.seconds = t0.elapsed().as_secs_f64();
        edges.append(&mut tested.edges);
        lags.push(LagResult {
            lag,
            windows: windows.len(),
            folds: reports,
            mean_test: tested.mean_test,
            volatility_test: tested.volatility_test,
            recording_tests: tested.recording_tests,
            train_seconds: 0.0,
            test_seconds: tested.seconds,
        });
    }
    Ok(finish(panel, cfg, edges, lags, None))
}

/// What the testing stage of one lag returns (edges not yet FDR-adjusted).
struct Tested {
    edges: Vec<EdgeRow>,
    mean_test: HacResult,
    volatility_test: Option<HacResult>,
    recording_tests: Vec<RecordingTest>,
    seconds: f64,
}

/// Mean-test series of a group of targets (column k of each series is target
/// `targets[k]`): its folds, and for each fold the window index of every row.
struct MeanBlock {
    targets: Vec<usize>,
    series: Vec<ProductSeries>,
    rows: Vec<Vec<usize>>,
}

impl MeanBlock {
    /// All n targets in one block.
    fn all(n: usize, series: Vec<ProductSeries>, rows: Vec<Vec<usize>>) -> Self {
        MeanBlock {
            targets: (0..n).collect(),
            series,
            rows,
        }
    }
}

/// HAC t-tests of target blocks, pooled into one family.
fn hac_blocks<'a>(
    blocks: impl Iterator<Item = (&'a [usize], &'a [ProductSeries])>,
    n: usize,
    bandwidth: Bandwidth,
) -> HacResult {
    let blocks: Vec<TargetBlock> = blocks
        .map(|(targets, folds)| TargetBlock { targets, folds })
        .collect();
    hac_test_blocks(&blocks, n, bandwidth)
}

/// The testing stage shared by every method, at one lag: pooled HAC t-tests of the
/// mean series (and of the volatility series when given) for all off-diagonal ordered
/// pairs, and the per-recording mean tests. `effect_sign` maps `μ̂` to the reported
/// mean-test effect.
///
/// With `estimate = Some(θ̂)` the mean series are influence series of an estimator
/// (mean ≈ 0, [`LagEstimate::Influence`]): the test is `t = θ̂ / √(Ω̂/N)` and each
/// recording's mean is `θ̂ + (h̄_r − h̄)`, its one-step (linearised) contribution.
#[allow(clippy::too_many_arguments)]
fn test_lag(
    panel: &Panel,
    windows: &Windows,
    cfg: &InferConfig,
    lag: usize,
    mean: &[MeanBlock],
    volatility_series: Option<&[ProductSeries]>,
    effect_sign: f64,
    estimate: Option<&Array2<f64>>,
) -> Tested {
    let t0 = Instant::now();
    let n = panel.neurons.len();
    let mut mean_test = hac_blocks(
        mean.iter()
            .map(|b| (b.targets.as_slice(), b.series.as_slice())),
        n,
        cfg.bandwidth,
    );
    let shift = estimate.map(|est| {
        let shift = est - &mean_test.mean;
        ndarray::Zip::from(&mut mean_test.t)
            .and(&mut mean_test.p)
            .and(est)
            .and(&mean_test.long_run_variance)
            .and(&mean_test.count)
            .for_each(|t, p, &e, &v, &c| {
                *t = e / (v / c).sqrt();
                *p = crate::edge_test::hac::two_sided_p(*t, c - 1.0);
            });
        mean_test.mean = est.clone();
        shift
    });
    let volatility_test = volatility_series.map(|vs| hac_test(vs, cfg.bandwidth));
    let mut edges = Vec::new();
    let mut push = |res: &HacResult, kind: TestKind| {
        for j in 0..n {
            for i in 0..n {
                if i == j {
                    continue;
                }
                let mu = res.mean[[j, i]];
                edges.push(EdgeRow {
                    source: panel.neurons[i].clone(),
                    target: panel.neurons[j].clone(),
                    lag,
                    mu,
                    effect: if kind == TestKind::Mean {
                        effect_sign * mu
                    } else {
                        mu
                    },
                    t: res.t[[j, i]],
                    p: res.p[[j, i]],
                    q: f64::NAN,
                    test: kind,
                    selected: false,
                    variance_floored: res.floored[[j, i]],
                });
            }
        }
    };
    push(&mean_test, TestKind::Mean);
    if let Some(v) = &volatility_test {
        push(v, TestKind::Volatility);
    }
    let recording_tests = (0..panel.recordings.len())
        .into_par_iter()
        .filter_map(|r| {
            let pieces: Vec<(&[usize], Vec<ProductSeries>)> = mean
                .iter()
                .map(|b| {
                    let folds = b
                        .series
                        .iter()
                        .zip(&b.rows)
                        .filter_map(|(series, fold_rows)| {
                            let mine: Vec<usize> = (0..fold_rows.len())
                                .filter(|&k| windows.recording[fold_rows[k]] == r)
                                .collect();
                            (!mine.is_empty()).then(|| series.select_rows(&mine))
                        })
                        .collect::<Vec<_>>();
                    (b.targets.as_slice(), folds)
                })
                .filter(|(_, folds)| !folds.is_empty())
                .collect();
            if pieces.is_empty() {
                return None;
            }
            let res = hac_blocks(
                pieces.iter().map(|(t, f)| (*t, f.as_slice())),
                n,
                Bandwidth::Fixed(mean_test.bandwidth),
            );
            let variance_of_mean = ndarray::Zip::from(&res.long_run_variance)
                .and(&res.count)
                .map_collect(|&v, &c| if c > 0.0 { v / c } else { f64::NAN });
            Some(RecordingTest {
                recording: panel.recordings[r].name.clone(),
                mean: match &shift {
                    Some(shift) => res.mean + shift,
                    None => res.mean,
                },
                count: res.count,
                variance_of_mean,
            })
        })
        .collect();
    Tested {
        edges,
        mean_test,
        volatility_test,
        recording_tests,
        seconds: t0.elapsed().as_secs_f64(),
    }
}

/// The edges of a closed-form baseline test at one lag (no per-recording tests).
fn classic_tested(panel: &Panel, lag: usize, c: ClassicTest) -> Tested {
    let n = panel.neurons.len();
    let mut edges = Vec::new();
    for j in 0..n {
        for i in (0..n).filter(|&i| i != j) {
            edges.push(EdgeRow {
                source: panel.neurons[i].clone(),
                target: panel.neurons[j].clone(),
                lag,
                mu: c.effect[[j, i]],
                effect: c.effect[[j, i]],
                t: c.t[[j, i]],
                p: c.p[[j, i]],
                q: f64::NAN,
                test: TestKind::Mean,
                selected: false,
                variance_floored: false,
            });
        }
    }
    Tested {
        edges,
        mean_test: HacResult {
            long_run_variance: Array2::from_elem((n, n), f64::NAN),
            floored: Array2::from_elem((n, n), false),
            bandwidth: f64::NAN,
            mean: c.effect,
            count: c.count,
            t: c.t,
            p: c.p,
        },
        volatility_test: None,
        recording_tests: Vec::new(),
        seconds: 0.0,
    }
}

/// Fits a baseline that models all lags at once: its windows and one estimate per lag
/// of `cfg.lags`.
fn fit_baseline(panel: &Panel, cfg: &InferConfig) -> Result<(Windows, Vec<LagEstimate>)> {
    use crate::baseline::{granger, pairwise_granger, partial, pcmci};
    let p = *cfg.lags.iter().max().expect("validated: lags not empty");
    let classic = |v: Vec<ClassicTest>| v.into_iter().map(LagEstimate::Classic).collect();
    let ridge = cfg.baseline.ridge;
    Ok(match cfg.method {
        Method::Pcmci => {
            let w = Windows::build(panel, 2 * p + 1)?;
            let est = classic(pcmci::fit(&w, &cfg.lags, cfg.baseline.pc_alpha)?);
            (w, est)
        }
        method => {
            let w = Windows::build(panel, p + 1)?;
            let est = match method {
                Method::PartialCorrelation => classic(partial::fit(&w, &cfg.lags, ridge)?),
                Method::PairwiseGranger => classic(pairwise_granger::fit(&w, &cfg.lags, ridge)?),
                Method::Granger => granger::fit(&w, &cfg.lags, ridge)?,
                _ => unreachable!("joint-lag baselines only"),
            };
            (w, est)
        }
    })
}

/// Held-out scores of one lag's windows: cross-fitted score models (folds in
/// parallel), each scoring the windows it was not trained on. The tested source block
/// is block 0 (`x_t`) and the target block the last one (`x_{t+r}`); with minimal
/// windows the energy's joint past block conditions on the snapshots in between.
type Heldout = (Vec<HeldOutScores>, Vec<FoldReport>, Vec<Vec<usize>>);

fn fit_heldout(
    panel: &Panel,
    windows: &Windows,
    cfg: &InferConfig,
    scheme: FoldScheme,
    (lag_index, lag): (usize, usize),
    progress: &(dyn Fn(Progress) + Sync),
    store: Option<&CheckpointStore>,
) -> Result<Heldout> {
    use crate::checkpoint::{self, Checkpoint};
    let folds = make_folds(windows, scheme)?;
    let n = windows.n;
    let n_past = (windows.blocks - 1) * n;
    let future = n_past..n_past + n;
    let fitted: Vec<(HeldOutScores, FoldReport)> = folds
        .par_iter()
        .enumerate()
        .map(|(k, fold)| -> Result<_> {
            let st = Standardiser::fit(windows.z.view(), windows.mask.view(), &fold.train);
            let (ztr, mtr) = st.apply(windows.z.view(), windows.mask.view(), &fold.train);
            // One independent random stream per (lag, fold).
            let stream_id = (lag_index * folds.len() + k) as u64;
            let fingerprint =
                checkpoint::fingerprint(&ztr, &mtr, n_past, &cfg.model, cfg.seed, stream_id);
            let saved = store
                .filter(|s| s.reuse)
                .map(|s| checkpoint::path(&s.dir, lag, k))
                .filter(|p| p.exists())
                .and_then(|p| Checkpoint::load(&p).ok())
                .filter(|c| c.fingerprint == fingerprint);
            let resumed = saved.is_some();
            let trained = match saved {
                Some(c) => {
                    progress(Progress::Resumed { lag, fold: k, epochs: c.epoch_loss.len() });
                    crate::score::TrainedModel { model: c.model, epoch_loss: c.epoch_loss }
                }
                None => {
                    let trained = train(ztr.view(), mtr.view(), n_past, &cfg.model, cfg.seed, stream_id, &|epoch, loss| {
                        progress(Progress::Epoch { lag, fold: k, epoch, loss })
                    })?;
                    if let Some(s) = store {
                        Checkpoint {
                            lag,
                            fold: k,
                            fingerprint,
                            neurons: panel.neurons.clone(),
                            offsets: windows.offsets.clone(),
                            config: cfg.model.clone(),
                            seed: cfg.seed,
                            standardiser: st.clone(),
                            model: trained.model.clone(),
                            epoch_loss: trained.epoch_loss.clone(),
                        }
                        .save(&checkpoint::path(&s.dir, lag, k))?;
                    }
                    trained
                }
            };
            let (zte, mte) = st.apply(windows.z.view(), windows.mask.view(), &fold.test);
            let scores = trained.model.score(zte.view()) * &mte;
            if scores.iter().any(|v| !v.is_finite()) {
                return Err(Error::Training(format!(
                    "lag {}, fold {} produced non-finite held-out scores; lower --learning-rate or --epochs",
                    windows.span(),
                    k + 1
                )));
            }
            let hessian = trained.model.mixed_hessian_terms(zte.view(), 0..n);
            let mut recs: Vec<usize> = fold.test.iter().map(|&t| windows.recording[t]).collect();
            recs.dedup();
            let report = FoldReport {
                train_windows: fold.train.len(),
                test_windows: fold.test.len(),
                test_recordings: recs.iter().map(|&r| panel.recordings[r].name.clone()).collect(),
                heldout_loss: heldout_loss(&trained.model, &zte, &mte, cfg.model.sigma, cfg.seed + stream_id),
                epoch_loss: trained.epoch_loss,
                resumed,
            };
            Ok((
                HeldOutScores {
                    scores,
                    mask: mte,
                    hessian,
                    segments: fold.test_segments.clone(),
                    source: 0..n,
                    future: future.clone(),
                },
                report,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    let (held, reports) = fitted.into_iter().unzip();
    Ok((
        held,
        reports,
        folds.iter().map(|f| f.test.clone()).collect(),
    ))
}

impl Inference {
    /// The result of lag `r`, if it was tested.
    pub fn lag(&self, r: usize) -> Option<&LagResult> {
        self.lags.iter().find(|l| l.lag == r)
    }

    /// The mean-test effect matrix of the first lag (`[target, source]`, diagonal
    /// included): `−μ̂` for SBTG, the method's estimate for the baselines.
    pub fn effect_matrix(&self) -> Array2<f64> {
        let m = &self.lags[0].mean_test.mean;
        match self.method {
            Method::Sbtg => -m,
            _ => m.clone(),
        }
    }

    /// Seconds spent training, summed over lags.
    pub fn train_seconds(&self) -> f64 {
        self.lags.iter().map(|l| l.train_seconds).sum()
    }

    /// Seconds spent in edge tests, summed over lags.
    pub fn test_seconds(&self) -> f64 {
        self.lags.iter().map(|l| l.test_seconds).sum()
    }

    /// Number of selected rows of each test kind.
    pub fn selected_count(&self, kind: TestKind) -> usize {
        self.edges
            .iter()
            .filter(|e| e.test == kind && e.selected)
            .count()
    }

    /// Mean DSM training loss of the last epoch over the folds of every lag.
    pub fn final_loss(&self) -> f64 {
        let v: Vec<f64> = self
            .lags
            .iter()
            .flat_map(|l| &l.folds)
            .filter_map(|f| f.epoch_loss.last().copied())
            .collect();
        ndarray::Array1::from(v)
            .mean_axis(Axis(0))
            .map_or(f64::NAN, |a| a.into_scalar())
    }
}
