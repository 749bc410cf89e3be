//! The whole lag-1 SBTG estimator: panel → windows → cross-fitted score models →
//! held-out edge tests → FDR; and the lagged-correlation baseline through the same
//! testing stage (HAC t-test, FDR, per-recording summaries), so both produce the same
//! tables.

use std::time::Instant;

use ndarray::{Array2, Axis};
use rayon::prelude::*;

use crate::edge_test::{
    hac_test, Bandwidth, EdgeStatistic, FdrMethod, HacResult, HeldOutScores, ProductSeries,
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
        }
    }
}

impl InferConfig {
    pub fn validate(&self) -> Result<()> {
        self.model.validate()?;
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
}

/// Progress reports from [`infer`].
#[derive(Clone, Debug)]
pub enum Progress {
    /// Training is about to start: total number of epochs over all folds.
    Training { folds: usize, total_epochs: usize },
    /// One epoch of one fold finished.
    Epoch {
        fold: usize,
        epoch: usize,
        loss: f64,
    },
    /// A named stage started.
    Stage(&'static str),
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

/// The result of one run.
#[derive(Clone, Debug)]
pub struct Inference {
    pub method: Method,
    pub neurons: Vec<String>,
    pub edges: Vec<EdgeRow>,
    pub folds: Vec<FoldReport>,
    /// `None` for methods without cross-fitting.
    pub fold_scheme: Option<FoldScheme>,
    /// Per-recording summaries of the mean test.
    pub recording_tests: Vec<RecordingTest>,
    pub windows: usize,
    pub mean_test: HacResult,
    pub volatility_test: Option<HacResult>,
    /// Size of the FDR family.
    pub family_size: usize,
    /// Seconds spent training and testing.
    pub train_seconds: f64,
    pub test_seconds: f64,
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

/// Runs the configured method at lag 1 on a panel.
pub fn infer(
    panel: &Panel,
    cfg: &InferConfig,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<Inference> {
    cfg.validate()?;
    let windows = Windows::build(panel, 2)?;
    match cfg.method {
        Method::Sbtg => infer_sbtg(panel, &windows, cfg, progress),
        Method::LaggedCorrelation => {
            progress(Progress::Stage("edge tests"));
            let t1 = Instant::now();
            let series = vec![crate::baseline::lagged_correlation_series(&windows)];
            let rows = vec![(0..windows.len()).collect()];
            let tested = test_edges(panel, &windows, cfg, &series, None, &rows, 1.0);
            Ok(Inference {
                method: cfg.method,
                neurons: panel.neurons.clone(),
                family_size: tested.edges.len(),
                edges: tested.edges,
                folds: Vec::new(),
                fold_scheme: None,
                recording_tests: tested.recording_tests,
                windows: windows.len(),
                mean_test: tested.mean_test,
                volatility_test: None,
                train_seconds: 0.0,
                test_seconds: t1.elapsed().as_secs_f64(),
            })
        }
    }
}

/// What the shared testing stage returns.
struct Tested {
    edges: Vec<EdgeRow>,
    mean_test: HacResult,
    volatility_test: Option<HacResult>,
    recording_tests: Vec<RecordingTest>,
}

/// The testing stage shared by every method: pooled HAC t-tests of the mean series
/// (and of the volatility series when given), one FDR family over all off-diagonal
/// ordered pairs of every test, and the per-recording mean tests. `rows[k]` gives the
/// window index of every row of fold `k`'s series; `effect_sign` maps `μ̂` to the
/// reported mean-test effect.
fn test_edges(
    panel: &Panel,
    windows: &Windows,
    cfg: &InferConfig,
    mean_series: &[ProductSeries],
    volatility_series: Option<&[ProductSeries]>,
    rows: &[Vec<usize>],
    effect_sign: f64,
) -> Tested {
    let n = panel.neurons.len();
    let mean_test = hac_test(mean_series, cfg.bandwidth);
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
                    lag: 1,
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
                });
            }
        }
    };
    push(&mean_test, TestKind::Mean);
    if let Some(v) = &volatility_test {
        push(v, TestKind::Volatility);
    }
    let p: Vec<f64> = edges.iter().map(|r| r.p).collect();
    let q = cfg.fdr.adjust(&p);
    for (r, q) in edges.iter_mut().zip(q) {
        r.q = q;
        r.selected = q <= cfg.alpha;
    }
    let recording_tests = (0..panel.recordings.len())
        .into_par_iter()
        .filter_map(|r| {
            let pieces: Vec<ProductSeries> = mean_series
                .iter()
                .zip(rows)
                .filter_map(|(series, fold_rows)| {
                    let mine: Vec<usize> = (0..fold_rows.len())
                        .filter(|&k| windows.recording[fold_rows[k]] == r)
                        .collect();
                    (!mine.is_empty()).then(|| series.select_rows(&mine))
                })
                .collect();
            if pieces.is_empty() {
                return None;
            }
            let res = hac_test(&pieces, Bandwidth::Fixed(mean_test.bandwidth));
            let variance_of_mean = ndarray::Zip::from(&res.long_run_variance)
                .and(&res.count)
                .map_collect(|&v, &c| if c > 0.0 { v / c } else { f64::NAN });
            Some(RecordingTest {
                recording: panel.recordings[r].name.clone(),
                mean: res.mean,
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
    }
}

/// SBTG at lag 1: cross-fitted score models, held-out statistics, shared testing stage.
fn infer_sbtg(
    panel: &Panel,
    windows: &Windows,
    cfg: &InferConfig,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<Inference> {
    let scheme = cfg
        .folds
        .unwrap_or_else(|| FoldScheme::default_for(panel.recordings.len()));
    let folds = make_folds(windows, scheme)?;
    let n = windows.n;
    let n_past = n;
    progress(Progress::Training {
        folds: folds.len(),
        total_epochs: folds.len() * cfg.model.epochs,
    });
    let t0 = Instant::now();
    let fitted: Vec<(HeldOutScores, FoldReport)> = folds
        .par_iter()
        .enumerate()
        .map(|(k, fold)| -> Result<_> {
            let st = Standardiser::fit(windows.z.view(), windows.mask.view(), &fold.train);
            let (ztr, mtr) = st.apply(windows.z.view(), windows.mask.view(), &fold.train);
            let trained = train(ztr.view(), mtr.view(), n_past, &cfg.model, cfg.seed, k as u64, &|epoch, loss| {
                progress(Progress::Epoch { fold: k, epoch, loss })
            })?;
            let (zte, mte) = st.apply(windows.z.view(), windows.mask.view(), &fold.test);
            let scores = trained.model.score(zte.view()) * &mte;
            if scores.iter().any(|v| !v.is_finite()) {
                return Err(Error::Training(format!(
                    "fold {} produced non-finite held-out scores; lower --learning-rate or --epochs",
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
                heldout_loss: heldout_loss(&trained.model, &zte, &mte, cfg.model.sigma, cfg.seed + k as u64),
                epoch_loss: trained.epoch_loss,
            };
            Ok((
                HeldOutScores {
                    scores,
                    mask: mte,
                    hessian,
                    segments: fold.test_segments.clone(),
                    source: 0..n,
                    future: n..2 * n,
                },
                report,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    let train_seconds = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    progress(Progress::Stage("edge tests"));
    let (held, reports): (Vec<_>, Vec<_>) = fitted.into_iter().unzip();
    let mean_series: Vec<_> = held.iter().map(|h| h.mean_series(cfg.statistic)).collect();
    let volatility_series: Option<Vec<_>> = cfg
        .volatility
        .then(|| held.iter().map(|h| h.volatility_series()).collect());
    let rows: Vec<Vec<usize>> = folds.iter().map(|f| f.test.clone()).collect();
    // Stein's identity: μ = −I·E[J], so the Jacobian-signed effect is −μ̂.
    let tested = test_edges(
        panel,
        windows,
        cfg,
        &mean_series,
        volatility_series.as_deref(),
        &rows,
        -1.0,
    );
    let test_seconds = t1.elapsed().as_secs_f64();
    Ok(Inference {
        method: cfg.method,
        neurons: panel.neurons.clone(),
        family_size: tested.edges.len(),
        edges: tested.edges,
        folds: reports,
        fold_scheme: Some(scheme),
        recording_tests: tested.recording_tests,
        windows: windows.len(),
        mean_test: tested.mean_test,
        volatility_test: tested.volatility_test,
        train_seconds,
        test_seconds,
    })
}

impl Inference {
    /// The mean-test effect matrix `−μ̂` (`[target, source]`, diagonal included).
    pub fn effect_matrix(&self) -> Array2<f64> {
        -&self.mean_test.mean
    }

    /// Number of selected rows of each test kind.
    pub fn selected_count(&self, kind: TestKind) -> usize {
        self.edges
            .iter()
            .filter(|e| e.test == kind && e.selected)
            .count()
    }

    /// Mean DSM training loss of the last epoch over folds.
    pub fn final_loss(&self) -> f64 {
        let v: Vec<f64> = self
            .folds
            .iter()
            .filter_map(|f| f.epoch_loss.last().copied())
            .collect();
        ndarray::Array1::from(v)
            .mean_axis(Axis(0))
            .map_or(f64::NAN, |a| a.into_scalar())
    }
}
