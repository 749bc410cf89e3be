//! Score-Block Time Graphs: windows → cross-fitted score models → held-out score
//! products.
//!
//! For each lag r the windows are `z_t = [x_t, …, x_{t+r}]` ([`LagWindows::Minimal`])
//! or `[x_t, x_{t+r}]` ([`LagWindows::Pairwise`]). K score models are trained on the
//! windows of K folds' training sets ([`crate::data::fold`]); each scores the windows
//! it was not trained on. The tested source block is block 0 (`x_t`) and the target
//! block the last one (`x_{t+r}`); with minimal windows the energy's joint past block
//! conditions on the snapshots in between. Stein's identity gives
//! `μ = E[s_F s_Pᵀ] = −I_ε E[J]`, so the Jacobian-signed effect is `−μ̂`.

use std::ops::Range;
use std::time::Instant;

use ndarray::Array2;
use rayon::prelude::*;

use super::evidence::{FoldReport, GridPoint, LagEvidence, MeanEvidence, SeriesBlock};
use super::{Estimator, FitContext, Method, Progress};
use crate::data::{
    inner_split, make_folds, stopping_split, Fold, FoldBy, FoldScheme, Panel, Standardiser, Windows,
};
use crate::model::gaussian::{
    expected_dsm_future_loss, gaussian_energy, leave_one_group_out, second_moment,
    select_shrinkage, select_shrinkage_over, GaussianStart, MomentSplit, RidgePoint, Shrinkage,
    ShrinkageCriterion, ShrinkageTarget, ValidationWindows,
};
use crate::model::turns::{self, run_in_turns};
use crate::model::{
    dsm_loss, dsm_loss_future, dsm_terms, train, Coupling, DsmTerms, EnergyModel, Engine,
    ScoreModelConfig, Start, TrainedModel, Validation,
};
use crate::rng::stream;
use crate::stats::linalg::spd_inverse;
use crate::stats::missing::{em_covariance, impute};
use crate::stats::{
    EdgeStatistic, EffectScale, HeldOutScores, MissingNeurons, ProductSeries, SameFrame,
};
use crate::{Error, Result};

/// The format tag of a trained fold model, hashed into its fingerprint.
pub const MODEL_FORMAT: &str = "sbtg-score-model/1";

/// How a lag `r > 1` is windowed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum LagWindows {
    /// `z_t = [x_t, x_{t+1}, …, x_{t+r}]`: the test of block r against block 0
    /// conditions on the snapshots in between, so it measures the direct lag-r effect
    /// (default).
    #[default]
    Minimal,
    /// `z_t = [x_t, x_{t+r}]`: the plain lagged pair, which also picks up paths through
    /// the intermediate snapshots (for comparison).
    Pairwise,
}

/// The SBTG estimator's settings.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Sbtg {
    pub model: ScoreModelConfig,
    /// Cross-fitting scheme; `None` = [`FoldScheme::DEFAULT`] (5 blocks of every
    /// recording).
    pub folds: Option<FoldScheme>,
    pub statistic: EdgeStatistic,
    /// The scale of the mean test's effect (absent in runs saved before it existed:
    /// precision-weighted).
    #[serde(default)]
    pub effect_scale: EffectScale,
    /// What the same-frame (lag-0) test measures (absent in runs saved before it: the
    /// innovations' precision).
    #[serde(default = "precision_same_frame")]
    pub same_frame: SameFrame,
    /// Also run the volatility-transfer test (its p-values join the same FDR family).
    pub volatility: bool,
    /// Windows of lags above 1.
    pub lag_windows: LagWindows,
    /// Conditioning depth K: lags 0..=K are tested in the windows
    /// `[x_{t−K+1}, …, x_t, x_{t+1}]` of one model, so every lag-r and same-frame test
    /// conditions on the other K − 1 past frames (absent in runs saved before it: 1).
    #[serde(default = "default_past")]
    pub past: usize,
    /// How the score models see neurons missing from a recording (absent in runs saved
    /// before it: at 0).
    #[serde(default)]
    pub missing: MissingNeurons,
    /// Seed of every random stream (initial weights, batch order, noise).
    pub seed: u64,
}

/// Ridge added to the EM window covariance before it completes missing neurons.
const MISSING_RIDGE: f64 = 1e-3;
/// Most EM iterations (it stops earlier once no entry moves by 1e-6).
const MISSING_EM_ITERATIONS: usize = 200;
/// First random stream of the imputation draws (two per fold: training and test).
const IMPUTE_STREAM: u64 = 7_000;
/// First random stream of the inner splits' imputation draws (`2²²` per fold,
/// [`Completion`]).
const INNER_IMPUTE_STREAM: u64 = 1 << 40;
/// How the inner splits of imputed folds are completed, hashed into the fingerprint of
/// their models ([`Completion`]: each split from its own fitted windows), so that models
/// trained under an earlier scheme are not reused.
const INNER_COMPLETION: &str = "inner-splits-completed-on-their-own";
/// Share of every training recording (its last frames) that early stopping validates on.
const STOPPING_FRACTION: f64 = 0.2;

fn default_past() -> usize {
    1
}

fn precision_same_frame() -> SameFrame {
    SameFrame::Precision
}

impl Default for Sbtg {
    fn default() -> Self {
        Sbtg {
            model: ScoreModelConfig::default(),
            folds: None,
            statistic: EdgeStatistic::Orthogonal,
            effect_scale: EffectScale::Precision,
            same_frame: SameFrame::Innovation,
            volatility: true,
            lag_windows: LagWindows::Minimal,
            // Chosen by the held-out loss of the future block, in expectation over the
            // noise draw, on datasets/dag2023 (docs/method.md §7).
            past: 3,
            missing: MissingNeurons::Zero,
            seed: 0,
        }
    }
}

/// A trained score model of one (lag, fold), with everything needed to score new
/// windows and to recognise its training problem ([`fingerprint`]).
#[derive(Clone, Debug)]
pub struct FoldModel {
    pub lag: usize,
    /// 0-based fold index.
    pub fold: usize,
    pub fingerprint: String,
    /// The panel's neurons, in the model's coordinate order.
    pub neurons: Vec<String>,
    /// Snapshot offsets of the window (`[0, 1, …, r]` or `[0, r]`).
    pub offsets: Vec<usize>,
    pub config: ScoreModelConfig,
    pub seed: u64,
    pub standardiser: Standardiser,
    pub model: EnergyModel,
    /// Mean DSM loss per training epoch.
    pub epoch_loss: Vec<f64>,
    /// With early stopping: the validation loss per epoch and the epoch kept (with
    /// epoch selection: the held-out worms' mean loss and the chosen count).
    pub validation_loss: Vec<f64>,
    pub best_epoch: Option<usize>,
}

/// Where trained fold models are kept ([`crate::io::checkpoint`] keeps them as
/// safetensors files).
pub trait ModelStore: Sync {
    /// The stored model of (lag, fold), if there is one that can be read.
    fn load(&self, lag: usize, fold: usize) -> Option<FoldModel>;
    /// Whether stored models may be reused instead of trained again.
    fn reuse(&self) -> bool;
    /// Stores a freshly trained model.
    fn save(&self, model: &FoldModel) -> Result<()>;
}

/// The fingerprint of a training problem: SHA-256 of the standardised training
/// windows and their mask (f64 bytes), the model configuration, the seed, the random
/// stream and, where the training windows were completed (`--missing impute`), how
/// the inner splits were (`completion`). Two runs train the same model exactly when
/// their fingerprints agree.
pub fn fingerprint(
    z: &Array2<f64>,
    mask: &Array2<f64>,
    n_past: usize,
    config: &ScoreModelConfig,
    (seed, stream): (u64, u64),
    completion: Option<&str>,
) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(MODEL_FORMAT.as_bytes());
    if let Some(c) = completion {
        h.update(c.as_bytes());
    }
    h.update(serde_json::to_vec(config).expect("plain data"));
    for v in [
        seed,
        stream,
        n_past as u64,
        z.nrows() as u64,
        z.ncols() as u64,
    ] {
        h.update(v.to_le_bytes());
    }
    for a in [z, mask] {
        for x in a.iter() {
            h.update(x.to_le_bytes());
        }
    }
    crate::digest::hex(&h.finalize())
}

impl Sbtg {
    /// The span (in frames) of the windows whose model tests `lag`: every lag up to
    /// `past` is tested in the windows `[x_t, …, x_{t+past}]` (lag 0 within their last
    /// block); a longer lag `r` needs `[x_t, …, x_{t+r}]`. Pairwise windows
    /// `[x_t, x_{t+r}]` have no frames in between to condition on: `past` does not apply.
    pub fn span_of(&self, lag: usize) -> usize {
        match self.lag_windows {
            LagWindows::Minimal => lag.max(self.past.max(1)),
            LagWindows::Pairwise => lag.max(1),
        }
    }

    /// The lags of `lags` grouped by the windows (span) that test them, in order of
    /// first appearance: one cross-fitted model per group.
    fn window_groups(&self, lags: &[usize]) -> Vec<(usize, Vec<usize>)> {
        let mut groups: Vec<(usize, Vec<usize>)> = Vec::new();
        for &lag in lags {
            let span = self.span_of(lag);
            match groups.iter_mut().find(|g| g.0 == span) {
                Some(g) => g.1.push(lag),
                None => groups.push((span, vec![lag])),
            }
        }
        groups
    }

    /// The windows of one span.
    fn windows(&self, panel: &Panel, span: usize) -> Result<Windows> {
        match self.lag_windows {
            LagWindows::Minimal => Windows::build(panel, span + 1),
            LagWindows::Pairwise => Windows::build_offsets(panel, &[0, span]),
        }
    }

    /// The tested series of one lag's held-out scores (folds), as evidence.
    fn evidence(
        &self,
        n: usize,
        held: &[HeldOutScores],
        rows: Vec<Vec<usize>>,
        volatility: bool,
    ) -> (MeanEvidence, Option<Vec<ProductSeries>>) {
        // Each fold's series are its own (in parallel, collected in fold order).
        let mean: Vec<_> = held
            .par_iter()
            .map(|h| h.mean_series(self.statistic))
            .collect();
        let volatility =
            volatility.then(|| held.par_iter().map(|h| h.volatility_series()).collect());
        (
            MeanEvidence::Series {
                blocks: vec![SeriesBlock::all(n, mean, rows)],
                effect_sign: -1.0,
            },
            volatility,
        )
    }
}

impl Estimator for Sbtg {
    fn method(&self) -> Method {
        Method::Sbtg
    }

    fn validate(&self) -> Result<()> {
        self.model.validate()?;
        if self.past == 0 {
            return Err(Error::param(
                "past",
                "the conditioning depth is at least 1 past frame",
            ));
        }
        Ok(())
    }

    fn tests_same_frame(&self) -> bool {
        true
    }

    fn window_frames(&self, max_lag: usize) -> usize {
        self.span_of(max_lag) + 1
    }

    fn window_rule(&self) -> String {
        match self.lag_windows {
            LagWindows::Minimal => format!(
                "z_t = [x_t, ..., x_{{t+K}}] inside each recording with K = max({}, r) (--past); lag r tests the last block against the block r frames before it, conditioning on every other block; lag 0 tests pairs within the last block given the past blocks; coordinates standardised with training-fold statistics",
                self.past
            ),
            LagWindows::Pairwise => "lag r: z_t = [x_t, x_{t+r}] inside each recording (plain lagged pairs); lag 0: pairs within x_{t+1} of [x_t, x_{t+1}]".into(),
        }
    }

    fn fit(&self, panel: &Panel, lags: &[usize], ctx: &FitContext) -> Result<Vec<LagEvidence>> {
        let scheme = self.fold_scheme();
        let n = panel.neurons.len();
        let mut out: Vec<Option<LagEvidence>> = vec![None; lags.len()];
        let groups = self.window_groups(lags);
        let windows: Vec<Windows> = groups
            .iter()
            .map(|(span, _)| self.windows(panel, *span))
            .collect::<Result<_>>()?;
        for (span, tested) in &groups {
            (ctx.progress)(Progress::Training {
                lags: tested.clone(),
                span: *span,
                folds: scheme.k(),
                total_epochs: self.progress_epochs(panel, scheme),
            });
        }
        let t0 = Instant::now();
        let fitted = self.fit_heldout(panel, &windows, scheme, &groups, ctx)?;
        let train_wall = t0.elapsed().as_secs_f64();
        (ctx.progress)(Progress::Stage("edge tests"));
        let cpu_total: f64 = fitted.iter().map(|f| f.cpu_seconds).sum();
        for (((_, tested), windows), fitted) in groups.into_iter().zip(&windows).zip(fitted) {
            // Groups train together: each reports the training wall time in proportion
            // to its folds' fitting time.
            let train_seconds = if cpu_total > 0.0 {
                train_wall * fitted.cpu_seconds / cpu_total
            } else {
                0.0
            };
            // The group's models are reported once, with its largest lag.
            let reported = *tested.iter().max().expect("a group tests some lag");
            let mut reports = Some(fitted.reports);
            for (k, &lag) in tested.iter().enumerate() {
                let t1 = Instant::now();
                let own = lag == reported;
                let volatility = self.volatility && lag > 0;
                let (mean, volatility) =
                    self.evidence(n, &fitted.held[k], fitted.rows.clone(), volatility);
                let position = lags.iter().position(|&l| l == lag).expect("lag requested");
                out[position] = Some(LagEvidence {
                    lag,
                    windows: windows.len(),
                    window_recording: windows.recording.clone(),
                    window_start: windows.start.clone(),
                    window_span: windows.span(),
                    mean,
                    volatility,
                    folds: if own {
                        reports.take().unwrap_or_default()
                    } else {
                        Vec::new()
                    },
                    train_seconds: if own { train_seconds } else { 0.0 },
                    fit_seconds: t1.elapsed().as_secs_f64(),
                });
            }
        }
        Ok(out
            .into_iter()
            .map(|e| e.expect("every lag fitted"))
            .collect())
    }
}

/// Whether `jobs` fits on `cores` cores finish sooner taking turns than run to
/// completion. Run to completion, `cores + 1 … 2·cores + 1` fits (5 folds on 2 cores)
/// leave a core idle while the last fit runs alone, up to a whole fit's time; taking
/// turns on `cores + 1` workers, the largest fits first, ends them together (the default
/// run on `datasets/dag2023`: 0.35–0.7 s less in every alternated measurement, 9.9–11.2 s
/// against 10.5–11.7 s as the machine's speed drifted).
/// That needs the fits' lengths in advance (`sized`: a fixed number of epochs, no early
/// stopping, epoch selection or model grid, whose fits end when the validation loss
/// says; with early stopping taking turns was slower, 6.8–7.1 s against 6.7–6.8 s).
/// With more fits the idle end is a small share of the run, and a fit that starts only
/// when another ends can be left alone at the end instead (`--lags 1,2,3`, ten fits:
/// 26.5–28.4 s taking turns against 25.4–25.6 s), so they run to completion.
fn turns_pay(jobs: usize, cores: usize, sized: bool) -> bool {
    sized && cores > 1 && jobs > cores && jobs <= 2 * cores + 1
}

/// One fold of one lag's cross-fitting.
struct FoldJob<'a> {
    panel: &'a Panel,
    windows: &'a Windows,
    fold: &'a Fold,
    /// 0-based fold index.
    k: usize,
    lag: usize,
    /// The fold's random stream (one per lag and fold).
    stream_id: u64,
    /// The lags tested with this fold's model.
    tested: &'a [usize],
}

/// Held-out scores of one window group, the fold reports, and each fold's test rows.
struct Heldout {
    /// `held[k][f]`: held-out scores of tested lag k under fold f's model.
    held: Vec<Vec<HeldOutScores>>,
    reports: Vec<FoldReport>,
    rows: Vec<Vec<usize>>,
    /// Seconds its folds took to fit, summed over folds.
    cpu_seconds: f64,
}

/// The Gaussian window model of one fold: the shrinkage (ridge and cross-neuron
/// shrinkage) chosen on held-out training windows ([`InnerSplit::gaussian`]), its path,
/// and the precision refitted on all training windows with that shrinkage.
struct GaussianReference {
    path: Vec<RidgePoint>,
    start: GaussianStart,
}

/// A fold's windows ([`Sbtg::fold_windows`]): its standardiser, training and held-out
/// windows, and inner split.
struct FoldWindows {
    st: Standardiser,
    train: Masked,
    test: Masked,
    inner: InnerSplit,
}

/// One fold's training problem, set up as [`Estimator::fit`] sets it up: the fold's
/// standardised training and test windows, its inner split and its Gaussian window
/// model. For benchmarks and checks of training ([`Sbtg::train_problem`]).
pub struct FoldProblem {
    /// Coordinates of the past blocks (the rest are the future block's).
    pub n_past: usize,
    /// The fold's random stream, as `fit` numbers it.
    pub stream_id: u64,
    /// Standardised training windows and their observation mask.
    pub train: (Array2<f64>, Array2<f64>),
    /// Standardised held-out windows and their observation mask.
    pub test: (Array2<f64>, Array2<f64>),
    /// Seconds to choose the shrinkage and fit the Gaussian model.
    pub gaussian_seconds: f64,
    inner: InnerSplit,
    reference: GaussianReference,
}

impl FoldProblem {
    /// The Gaussian window model on all training windows (its shrinkage chosen on
    /// held-out training windows): the start of `--start gaussian`.
    pub fn gaussian_start(&self) -> &GaussianStart {
        &self.reference.start
    }

    /// Windows of the inner training split (what early stopping trains on).
    pub fn inner_windows(&self) -> usize {
        self.inner.stop_train.0.nrows()
    }
}

/// Whether windows of these worms come from two worms or more (then the Gaussian
/// model's shrinkage can be validated leave-one-worm-out).
fn several_worms(worm: &[usize]) -> bool {
    worm.first().is_some_and(|&w| worm.iter().any(|&v| v != w))
}

/// Windows `z` (rows, standardised) and their observation mask.
type Masked = (Array2<f64>, Array2<f64>);

/// How a fold's inner splits complete the neurons missing from a recording under
/// `--missing impute`: as the fold completes its own windows, from the EM window
/// covariance of the windows the split fits, and of those alone. A covariance fitted
/// on the fold's whole training part would let each split's validation windows inform
/// the draws of the windows they are scored against, and of their own.
struct Completion {
    /// The fold's standardised training windows before completion (zero at missing
    /// coordinates), in the order of the fold's training rows.
    zero_filled: Array2<f64>,
    seed: u64,
    /// First random stream of the fold's inner draws: split `s` draws its fitted
    /// windows from stream `stream + 2s` and its validation windows from the next.
    stream: u64,
}

impl Completion {
    /// Completes split `s`: one EM covariance of `fit`, one draw for each window of
    /// `fit` and of `valid` ([`impute`]); an empty `fit` leaves both as they are.
    fn complete(&self, fit: &mut Masked, valid: &mut Masked, s: u64) -> Result<()> {
        if fit.0.nrows() == 0 {
            // Nothing to estimate the covariance from: the split stays as zero-filled
            // windows are, and whatever uses it reports the empty split.
            return Ok(());
        }
        let cov = em_covariance(
            fit.0.view(),
            fit.1.view(),
            MISSING_RIDGE,
            MISSING_EM_ITERATIONS,
        )?;
        impute(
            &mut fit.0,
            fit.1.view(),
            &cov,
            &mut stream(self.seed, self.stream + 2 * s),
        )?;
        impute(
            &mut valid.0,
            valid.1.view(),
            &cov,
            &mut stream(self.seed, self.stream + 2 * s + 1),
        )?;
        Ok(())
    }
}

/// The inner split of a fold's training windows, standardised with the fold's
/// statistics and, under `--missing impute`, each split completed on its own
/// ([`Completion`]).
struct InnerSplit {
    /// The shrinkage's validation split (block folds, or one worm's windows): the
    /// windows fitted and the windows scored. Empty when the shrinkage is validated on
    /// each training worm in turn, and once the Gaussian reference is fitted.
    ridge: Option<(Masked, Masked)>,
    /// The early-stopping split ([`stopping_split`]): inner training and validation
    /// windows.
    stop_train: Masked,
    stop_valid: Masked,
    /// The worm of every training window, in the order of the fold's training rows
    /// (epoch selection holds each worm out in turn).
    train_worm: Vec<usize>,
    /// Neurons per block (which window coordinates are the same neuron).
    neurons: usize,
    /// `--missing impute`: how the inner splits are completed.
    completion: Option<Completion>,
}

/// Split indices of a fold's completed inner splits: the early-stopping split, and the
/// held-out recording of a fold whose training windows are of one worm; a held-out
/// worm `w` is split `1 + w`.
const STOPPING_SPLIT: u64 = 0;
const LONE_WORM_SPLIT: u64 = 1 << 20;

impl InnerSplit {
    /// The split of the fold's training rows `train`; the early-stopping split only if
    /// `stopping` (early stopping or the model grid use it; otherwise it stays empty
    /// and takes no memory while the fit trains). The shrinkage is validated as the
    /// folds test ([`Self::gaussian`]): on each training worm in turn when the folds hold
    /// out recordings (a held-out recording, [`inner_split`], only where the training
    /// windows are of one worm), on the last fifth of every training recording
    /// ([`stopping_split`]) when they hold out blocks of every recording. With
    /// `completion`, each split is completed from its own fitted windows.
    fn new(
        windows: &Windows,
        st: &Standardiser,
        train: &[usize],
        stopping: bool,
        by: FoldBy,
        completion: Option<Completion>,
    ) -> Result<Self> {
        let train_worm: Vec<usize> = train
            .iter()
            .map(|&t| windows.worms[windows.recording[t]])
            .collect();
        let apply = |rows: &[usize]| st.apply(windows.z.view(), windows.mask.view(), rows);
        let split = |(fit, valid): (Vec<usize>, Vec<usize>), s: u64| -> Result<(Masked, Masked)> {
            let (mut fit, mut valid) = (apply(&fit), apply(&valid));
            if let Some(c) = &completion {
                c.complete(&mut fit, &mut valid, s)?;
            }
            Ok((fit, valid))
        };
        let stop = if stopping || by == FoldBy::Blocks {
            split(
                stopping_split(windows, train, STOPPING_FRACTION),
                STOPPING_SPLIT,
            )?
        } else {
            Default::default()
        };
        let (ridge, (stop_train, stop_valid)) = match by {
            // Validated on each training worm in turn ([`Self::gaussian`]): no inner
            // split to hold.
            FoldBy::Recordings if several_worms(&train_worm) => (None, stop),
            FoldBy::Recordings => (
                Some(split(inner_split(windows, train), LONE_WORM_SPLIT)?),
                stop,
            ),
            // The early-stopping split's windows (and draws): the same rows.
            FoldBy::Blocks if stopping => (Some(stop.clone()), stop),
            FoldBy::Blocks => (Some(stop), Default::default()),
        };
        Ok(InnerSplit {
            ridge,
            stop_train,
            stop_valid,
            train_worm,
            neurons: windows.n,
            completion,
        })
    }

    /// Training worm `w` held out of the fold's training windows `(ztr, mtr)` (the
    /// order of the fold's training rows): the other worms' windows and `w`'s, as the
    /// fold's model reads windows. Under `--missing impute` both are completed from
    /// the other worms' windows alone; the draws of worm `w` are the same wherever it
    /// is held out (the shrinkage and epoch selection).
    fn worm_split(
        &self,
        (ztr, mtr): (&Array2<f64>, &Array2<f64>),
        w: usize,
    ) -> Result<(Masked, Masked)> {
        let (fit, held): (Vec<usize>, Vec<usize>) =
            (0..ztr.nrows()).partition(|&t| self.train_worm[t] != w);
        let source = self.completion.as_ref().map_or(ztr, |c| &c.zero_filled);
        let pick = |a: &Array2<f64>, rows: &[usize]| a.select(ndarray::Axis(0), rows);
        let mut fit_windows = (pick(source, &fit), pick(mtr, &fit));
        let mut held_windows = (pick(source, &held), pick(mtr, &held));
        if let Some(c) = &self.completion {
            c.complete(&mut fit_windows, &mut held_windows, 1 + w as u64)?;
        }
        Ok((fit_windows, held_windows))
    }

    /// The shrinkage's validation splits with whole worms held out: each training worm
    /// in turn, scored by the second moment of the others ([`Self::worm_split`]).
    fn held_out_worms(&self, (ztr, mtr): (&Array2<f64>, &Array2<f64>)) -> Result<Vec<MomentSplit>> {
        if self.completion.is_none() {
            return Ok(leave_one_group_out(
                ztr.view(),
                mtr.view(),
                &self.train_worm,
                self.neurons,
            ));
        }
        let mut worms = self.train_worm.clone();
        worms.sort_unstable();
        worms.dedup();
        worms
            .into_iter()
            .map(|w| {
                let ((zf, _), (zv, mv)) = self.worm_split((ztr, mtr), w)?;
                Ok(MomentSplit {
                    train: second_moment(zf.view()),
                    valid: ValidationWindows::new(zv.view(), mv.view(), self.neurons),
                })
            })
            .collect()
    }

    /// Frees the ridge's split once the Gaussian reference is fitted (nothing else reads
    /// it), so that a fold holds less memory while it trains.
    fn release_ridge_split(&mut self) {
        self.ridge = None;
    }

    /// The Gaussian start fitted on the early-stopping split's training windows with
    /// the fold's `shrinkage`.
    fn stopping_start(&self, shrinkage: Shrinkage, sigma: f64) -> Result<GaussianStart> {
        GaussianStart::fit(self.stop_train.0.view(), sigma, shrinkage)
    }

    /// The early-stopping split's validation windows with the fold's noise draw (`seed`
    /// is the run's seed plus the fold's stream).
    fn stopping_validation(&self, seed: u64) -> Validation<'_> {
        Validation {
            z: self.stop_valid.0.view(),
            mask: self.stop_valid.1.view(),
            seed: seed + 17,
        }
    }

    /// Shrinkage towards `target` by the likelihood of held-out windows
    /// ([`select_shrinkage`]), validated as the folds test: with block folds on the
    /// inner split (the last fifth of every training recording); with whole recordings
    /// held out, on each training worm in turn, scored by the model of the others
    /// ([`leave_one_group_out`]; one validation recording is a poor judge of how far a
    /// model of other worms carries). Both are taken from the fold's training windows
    /// `(ztr, mtr)` as the model is fitted (imputed with `--missing impute`), and the
    /// validation windows scored on their observed coordinates. The precision is refitted
    /// on all training windows `ztr`.
    fn gaussian(
        &self,
        (ztr, mtr): (&Array2<f64>, &Array2<f64>),
        sigma: f64,
        search: (ShrinkageTarget, ShrinkageCriterion),
    ) -> Result<GaussianReference> {
        let (shrinkage, path) = match &self.ridge {
            Some(((zf, _), (zv, mv))) => select_shrinkage(
                zf.view(),
                (zv.view(), mv.view()),
                sigma,
                search,
                self.neurons,
            )?,
            None => select_shrinkage_over(
                &self.held_out_worms((ztr, mtr))?,
                sigma,
                search,
                self.neurons,
            )?,
        };
        Ok(GaussianReference {
            path,
            start: GaussianStart::fit(ztr.view(), sigma, shrinkage)?,
        })
    }
}

/// Held-out scores of windows `(z, m)` (standardised) under a fold model, for each
/// tested lag: lag r ≥ 1 with the mixed Hessian between the future block and the block
/// r frames before it; lag 0 as the within-block view of `same_frame`
/// ([`HeldOutScores::same_frame_innovations`] or [`HeldOutScores::same_frame`]).
/// `Ok(None)` when the model's scores are not finite.
fn held_out_scores(
    model: &EnergyModel,
    (z, m): (&Array2<f64>, &Array2<f64>),
    segments: &[Range<usize>],
    n: usize,
    (future_scale, same_frame): (Option<&Array2<f64>>, SameFrame),
    tested: &[usize],
) -> Result<Option<Vec<HeldOutScores>>> {
    let raw = model.score(z.view());
    if raw.iter().any(|v| !v.is_finite()) {
        return Ok(None);
    }
    let scores = &raw * m;
    let n_past = model.n_past;
    let past_blocks = n_past / n;
    tested
        .iter()
        .map(|&lag| {
            // The source block sits `lag` blocks before the future block (lag 0 takes
            // the lag-1 form and turns it into its within-block view).
            let b = past_blocks - lag.clamp(1, past_blocks);
            let source = b * n..(b + 1) * n;
            let held = HeldOutScores {
                hessian: if lag == 0 {
                    Vec::new()
                } else {
                    model.mixed_hessian_terms(z.view(), source.clone())
                },
                scores: scores.clone(),
                mask: m.clone(),
                segments: segments.to_vec(),
                source,
                future: n_past..n_past + n,
                future_scale: future_scale.cloned(),
                innovations: false,
            };
            match (lag, same_frame) {
                (0, SameFrame::Innovation) => held.same_frame_innovations(
                    &raw.slice(ndarray::s![.., n_past..n_past + n]).to_owned(),
                    &model.same_frame_hessian_mean(z.view()),
                ),
                (0, SameFrame::Precision) => {
                    Ok(held.same_frame(model.same_frame_hessian_mean(z.view())))
                }
                _ => Ok(held),
            }
        })
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

/// `Q̂ = (E[ŝ_F(y) ŝ_F(y)ᵀ])⁻¹` over windows `(z, m)` perturbed as in training,
/// `y = z + σε` on observed coordinates (fixed draw from `seed`; each entry scaled by the
/// neurons' observed shares, `/√(π_j π_k)`): the deconvolution of
/// the innovations' precision for [`EffectScale::Jacobian`]. On the smoothed data the
/// fitted score's second moment is the smoothed precision itself (for a Gaussian,
/// `E[ŝŝᵀ] = L(Σ + σ²I)L = L`), so `Q̂ ŵ = L_FF⁻¹ L_FS = −J`; on clean windows it would be
/// `L − σ²L²`, biased where innovations are strongly correlated.
fn innovation_deconvolution(
    model: &EnergyModel,
    z: &Array2<f64>,
    m: &Array2<f64>,
    sigma: f64,
    seed: u64,
) -> Result<Array2<f64>> {
    use rand_distr::{Distribution, StandardNormal};
    let mut rng = crate::rng::stream(seed, 998);
    let y = Array2::from_shape_fn(z.dim(), |(t, c)| {
        let e: f64 = StandardNormal.sample(&mut rng);
        z[[t, c]] + sigma * e * m[[t, c]]
    });
    let np = model.n_past;
    let sf = (model.score(y.view()) * m).slice_move(ndarray::s![.., np..]);
    // Scores are 0 where a neuron is missing, which shrinks its row and column of the
    // mean by its observed share `π_j`. Dividing by `√(π_j π_k)` restores the diagonal
    // exactly and keeps the matrix positive semi-definite (pairwise counts would not; a
    // pair seldom observed together keeps a shrunk covariance).
    let rows = sf.nrows().max(1) as f64;
    let share = m
        .slice(ndarray::s![.., np..])
        .sum_axis(ndarray::Axis(0))
        .mapv(|c| (c / rows).sqrt());
    let raw = sf.t().dot(&sf) / rows;
    let second = Array2::from_shape_fn(raw.raw_dim(), |(j, k)| {
        let (a, b) = (share[j], share[k]);
        if a > 0.0 && b > 0.0 {
            raw[[j, k]] / (a * b)
        } else {
            raw[[j, k]]
        }
    });
    // A ridge of 10⁻⁶ of the mean diagonal keeps never-observed neurons invertible.
    let ridge = 1e-6 * second.diag().mean().unwrap_or(1.0).max(1e-12);
    spd_inverse(&second, ridge, "second moment of the future-block scores")
}

impl Sbtg {
    /// Early stopping's second pass: the number of epochs chosen on the inner split,
    /// trained again on all of the fold's training windows (from the start refitted on
    /// them); with 0 epochs chosen, the start itself. The selection run's loss
    /// curves and best epoch are kept for the report.
    fn refit(
        &self,
        (ztr, mtr, n_past): (&Array2<f64>, &Array2<f64>, usize),
        stream_id: u64,
        start: Option<&GaussianStart>,
        best: usize,
        selection: TrainedModel,
        engine: Engine,
    ) -> Result<TrainedModel> {
        let model = match (best, start) {
            (0, Some(g)) => gaussian_energy(&g.precision, &selection.model),
            // Zero epochs from a random start: the initial model, which does not depend
            // on the training windows (the selection run kept it as its best).
            (0, None) => selection.model.clone(),
            _ => {
                let cfg = ScoreModelConfig {
                    epochs: best.max(1),
                    patience: 0,
                    ..self.model.clone()
                };
                let quiet = |_, _| {};
                train(
                    engine,
                    ztr.view(),
                    mtr.view(),
                    n_past,
                    &cfg,
                    self.seed,
                    stream_id,
                    start,
                    None,
                    &quiet,
                )?
                .model
            }
        };
        Ok(TrainedModel { model, ..selection })
    }

    /// Epochs the progress bar counts: every fold's, or with epoch selection every
    /// held-out worm's selection fit in every fold (each worm is in the training part of
    /// k − 1 folds of whole worms, of all k folds of time blocks).
    fn progress_epochs(&self, panel: &Panel, scheme: FoldScheme) -> usize {
        let k = scheme.k();
        if !self.model.grid.is_empty() {
            // Every candidate on the early-stopping split, then the chosen one.
            let candidates = self.model.grid.candidates(&self.model).len();
            return k * (candidates + 1) * self.model.epochs;
        }
        if !self.model.select_epochs || self.model.coupling == Coupling::Gaussian {
            return k * self.model.epochs;
        }
        let worms = panel.worms();
        let fits = match scheme.by() {
            FoldBy::Recordings => worms * (k - 1),
            FoldBy::Blocks => worms * k,
        };
        fits * self.model.epochs
    }

    /// Chooses the MLP width and the coupling's L1 penalty of one fold
    /// ([`crate::model::ModelGrid`]): every candidate is trained as configured (start,
    /// epochs, early stopping) on the first four fifths of every training recording,
    /// from the same random stream, and scored by its DSM loss on the last fifths
    /// (one noise draw for all), after its last epoch or, with early stopping, its best
    /// one. Returns the configuration of the lowest loss (the first in grid order on a
    /// tie) and the whole path; the caller then trains it as usual.
    fn select_grid(
        &self,
        inner: &InnerSplit,
        reference: &GaussianReference,
        (_, _, n_past): (&Array2<f64>, &Array2<f64>, usize),
        (stream_id, engine): (u64, Engine),
        on_epoch: &(dyn Fn(usize, f64) + Sync),
    ) -> Result<(ScoreModelConfig, Vec<GridPoint>)> {
        let start = (self.model.start == Start::Gaussian)
            .then(|| inner.stopping_start(reference.start.shrinkage, self.model.sigma))
            .transpose()?;
        let valid = inner.stopping_validation(self.seed + stream_id);
        let (zfit, mfit) = (inner.stop_train.0.view(), inner.stop_train.1.view());
        let candidate = |hidden, l1| ScoreModelConfig {
            hidden,
            l1,
            grid: Default::default(),
            ..self.model.clone()
        };
        let mut path: Vec<GridPoint> = self
            .model
            .grid
            .candidates(&self.model)
            .par_iter()
            .map(|&(hidden, l1)| -> Result<GridPoint> {
                let cfg = candidate(hidden, l1);
                let trained = train(
                    engine,
                    zfit,
                    mfit,
                    n_past,
                    &cfg,
                    self.seed,
                    stream_id,
                    start.as_ref(),
                    Some(&valid),
                    on_epoch,
                )?;
                let curve = trained
                    .validation_start
                    .iter()
                    .chain(&trained.validation_loss);
                let loss = if cfg.patience > 0 {
                    curve.copied().fold(f64::INFINITY, f64::min)
                } else {
                    trained.validation_loss.last().copied().unwrap_or(f64::NAN)
                };
                Ok(GridPoint {
                    hidden,
                    l1,
                    loss,
                    chosen: false,
                })
            })
            .collect::<Result<_>>()?;
        let best = (0..path.len())
            .filter(|&c| path[c].loss.is_finite())
            .min_by(|&a, &b| path[a].loss.total_cmp(&path[b].loss))
            .ok_or_else(|| {
                Error::Training(
                    "every candidate of the model grid diverged; lower --learning-rate".into(),
                )
            })?;
        path[best].chosen = true;
        Ok((candidate(path[best].hidden, path[best].l1), path))
    }

    /// Epoch selection by leave-one-worm-out cross-validation inside a fold
    /// (`select_epochs`). For each training worm `w` in turn, a model is trained on the
    /// fold's other training worms (from the start refitted on them, with the fold's
    /// ridge, or at random) for `epochs` epochs, and its DSM loss on `w`'s windows
    /// (a fixed noise draw) is recorded after every epoch, `ℓ_w(e)`. The chosen epoch
    /// count is `ê = argmin_e (1/W) Σ_w ℓ_w(e)`, each worm weighted equally (the start,
    /// `e = 0`, is a candidate with the Gaussian start). Returns the record: the mean
    /// curve (epochs 1…) as `validation_loss` and `ê` as `best_epoch`.
    ///
    /// One held-out worm per inner fit, rather than the single last recording of the
    /// early-stopping split: on the shipped recordings the worms disagree about when to
    /// stop (some are best after 2 epochs, others after 50), so a single one picks at
    /// random between the two (docs/method.md).
    fn select_epochs(
        &self,
        inner: &InnerSplit,
        reference: &GaussianReference,
        (ztr, mtr, n_past): (&Array2<f64>, &Array2<f64>, usize),
        (stream_id, engine): (u64, Engine),
        on_epoch: &(dyn Fn(usize, f64) + Sync),
    ) -> Result<TrainedModel> {
        let mut worms = inner.train_worm.clone();
        worms.sort_unstable();
        worms.dedup();
        if worms.len() < 2 {
            return Err(Error::param(
                "select_epochs",
                format!(
                    "epoch selection holds out one training worm at a time and needs 2 or more per fold, got {}; drop --select-epochs or use more recordings",
                    worms.len()
                ),
            ));
        }
        let gaussian_start = self.model.start == Start::Gaussian;
        let cfg = ScoreModelConfig {
            patience: 0,
            select_epochs: false,
            ..self.model.clone()
        };
        let curves: Vec<(Vec<f64>, EnergyModel)> = worms
            .par_iter()
            .enumerate()
            .map(|(k, &w)| -> Result<(Vec<f64>, EnergyModel)> {
                let ((zf, mf), (zv, mv)) = inner.worm_split((ztr, mtr), w)?;
                let start = gaussian_start
                    .then(|| {
                        GaussianStart::fit(zf.view(), self.model.sigma, reference.start.shrinkage)
                    })
                    .transpose()?;
                let valid = Validation {
                    z: zv.view(),
                    mask: mv.view(),
                    seed: self.seed + stream_id + 17 + k as u64,
                };
                let trained = train(
                    engine,
                    zf.view(),
                    mf.view(),
                    n_past,
                    &cfg,
                    self.seed,
                    stream_id + 10_000 * (k as u64 + 1),
                    start.as_ref(),
                    Some(&valid),
                    on_epoch,
                )?;
                let mut curve = Vec::with_capacity(cfg.epochs + 1);
                if start.is_some() {
                    curve.extend(trained.validation_start);
                }
                curve.extend(trained.validation_loss);
                Ok((curve, trained.model))
            })
            .collect::<Result<_>>()?;
        let epochs = curves.iter().map(|c| c.0.len()).min().unwrap_or(0);
        let mean: Vec<f64> = (0..epochs)
            .map(|e| curves.iter().map(|c| c.0[e]).sum::<f64>() / curves.len() as f64)
            .collect();
        let first = usize::from(!gaussian_start);
        let best = mean
            .iter()
            .enumerate()
            .min_by(|a, b| a.1.total_cmp(b.1))
            .map_or(first, |(e, _)| e + first);
        let validation_start = gaussian_start.then(|| mean[0]);
        let validation_loss = if gaussian_start {
            mean[1..].to_vec()
        } else {
            mean
        };
        let model = curves.into_iter().next().expect("two or more worms").1;
        Ok(TrainedModel {
            model,
            epoch_loss: Vec::new(),
            validation_loss,
            validation_start,
            best_epoch: Some(best),
            epoch_seconds: Vec::new(),
        })
    }

    /// A fold's standardised windows as its model reads them: the training and
    /// held-out windows, under `--missing impute` completed by draws from the EM
    /// covariance of the training windows (each window's draw uses only its own observed
    /// neurons), and the fold's inner split ([`InnerSplit::new`]; `stopping`: with the
    /// early-stopping split). `stream_id` numbers the fold's random streams.
    fn fold_windows(
        &self,
        windows: &Windows,
        fold: &Fold,
        stream_id: u64,
        stopping: bool,
    ) -> Result<FoldWindows> {
        let st = Standardiser::fit(windows.z.view(), windows.mask.view(), &fold.train);
        let (mut ztr, mtr) = st.apply(windows.z.view(), windows.mask.view(), &fold.train);
        let (mut zte, mte) = st.apply(windows.z.view(), windows.mask.view(), &fold.test);
        let completion = (self.missing == MissingNeurons::Impute).then(|| Completion {
            zero_filled: ztr.clone(),
            seed: self.seed,
            stream: INNER_IMPUTE_STREAM + (stream_id << 22),
        });
        if completion.is_some() {
            let cov = em_covariance(ztr.view(), mtr.view(), MISSING_RIDGE, MISSING_EM_ITERATIONS)?;
            impute(
                &mut ztr,
                mtr.view(),
                &cov,
                &mut stream(self.seed, IMPUTE_STREAM + 2 * stream_id),
            )?;
            impute(
                &mut zte,
                mte.view(),
                &cov,
                &mut stream(self.seed, IMPUTE_STREAM + 2 * stream_id + 1),
            )?;
        }
        let inner = InnerSplit::new(
            windows,
            &st,
            &fold.train,
            stopping,
            self.fold_scheme().by(),
            completion,
        )?;
        Ok(FoldWindows {
            st,
            train: (ztr, mtr),
            test: (zte, mte),
            inner,
        })
    }

    /// Fold `fold` (0-based) of the windows that test `lag`, set up as `fit` sets it up
    /// when `lag`'s windows are the first group fitted (stream `fold`).
    pub fn fold_problem(&self, panel: &Panel, lag: usize, fold: usize) -> Result<FoldProblem> {
        let windows = self.windows(panel, self.span_of(lag))?;
        let folds = make_folds(&windows, self.fold_scheme())?;
        let f = folds.get(fold).ok_or_else(|| {
            Error::param(
                "fold",
                format!("fold {} asked for; there are {}", fold + 1, folds.len()),
            )
        })?;
        let FoldWindows {
            train, test, inner, ..
        } = self.fold_windows(&windows, f, fold as u64, true)?;
        let t0 = Instant::now();
        let reference = inner.gaussian(
            (&train.0, &train.1),
            self.model.sigma,
            self.model.shrinkage_search(),
        )?;
        Ok(FoldProblem {
            n_past: (windows.blocks - 1) * windows.n,
            stream_id: fold as u64,
            train,
            test,
            gaussian_seconds: t0.elapsed().as_secs_f64(),
            inner,
            reference,
        })
    }

    /// Trains the problem's energy as `fit` does (start, early stopping on the inner
    /// split and refit), with `engine`.
    pub fn train_problem(&self, p: &FoldProblem, engine: Engine) -> Result<TrainedModel> {
        self.train_fold(
            &p.inner,
            &p.reference,
            (&p.train.0, &p.train.1, p.n_past),
            (p.stream_id, engine),
            &|_, _| {},
        )
    }

    /// DSM loss of `model` on the problem's held-out windows, with the noise draw `fit`
    /// reports `heldout_loss` with.
    pub fn heldout_loss(&self, p: &FoldProblem, model: &EnergyModel) -> f64 {
        dsm_loss(
            model,
            p.test.0.view(),
            p.test.1.view(),
            self.model.sigma,
            self.seed + p.stream_id,
        )
    }

    /// Folds of the cross-fitting.
    pub fn fold_count(&self) -> usize {
        self.fold_scheme().k()
    }

    fn fold_scheme(&self) -> FoldScheme {
        self.folds.unwrap_or(FoldScheme::DEFAULT)
    }

    /// Cross-fitted score models of every window group, each scoring the windows it was
    /// not trained on. The (group, fold) fits run as one parallel loop, so that the
    /// folds of one group do not wait for the last fold of the one before; each fit has
    /// its own random stream (`group · folds + fold`), so the models do not depend on the
    /// order in which they run.
    fn fit_heldout(
        &self,
        panel: &Panel,
        windows: &[Windows],
        scheme: FoldScheme,
        groups: &[(usize, Vec<usize>)],
        ctx: &FitContext,
    ) -> Result<Vec<Heldout>> {
        let folds: Vec<Vec<Fold>> = windows
            .iter()
            .map(|w| make_folds(w, scheme))
            .collect::<Result<_>>()?;
        let jobs: Vec<(usize, usize)> = folds
            .iter()
            .enumerate()
            .flat_map(|(g, f)| (0..f.len()).map(move |k| (g, k)))
            .collect();
        let fit = |&(g, k): &(usize, usize)| {
            let job = FoldJob {
                panel,
                windows: &windows[g],
                fold: &folds[g][k],
                k,
                lag: groups[g].0,
                // One independent random stream per (window group, fold).
                stream_id: (g * folds[g].len() + k) as u64,
                tested: &groups[g].1,
            };
            self.fit_fold(&job, ctx)
        };
        let cores = rayon::current_num_threads();
        let m = &self.model;
        let sized = m.patience == 0
            && !m.select_epochs
            && m.grid.is_empty()
            && m.coupling != Coupling::Gaussian;
        let fitted: Vec<(Vec<HeldOutScores>, FoldReport, f64)> =
            if turns_pay(jobs.len(), cores, sized) {
                // The fits take turns on the cores (model::turns), the largest first (training
                // windows × window width², the step's quadratic product), so that the fits
                // started last are the short ones. Each fit's arithmetic is its own, whatever
                // runs when: the same bits as run to completion.
                let cost = |&(g, k): &(usize, usize)| {
                    folds[g][k].train.len() * windows[g].z.ncols().pow(2)
                };
                let mut order: Vec<usize> = (0..jobs.len()).collect();
                order.sort_by_key(|&j| std::cmp::Reverse(cost(&jobs[j])));
                let sorted: Vec<(usize, usize)> = order.iter().map(|&j| jobs[j]).collect();
                let ran = run_in_turns(&sorted, (cores, cores + 1), turns::QUANTUM, fit);
                let mut done: Vec<Option<_>> = jobs.iter().map(|_| None).collect();
                for (j, (out, seconds)) in order.into_iter().zip(ran) {
                    done[j] = Some(out.map(|(held, report)| (held, report, seconds)));
                }
                done.into_iter()
                    .map(|d| d.expect("every fit ran"))
                    .collect::<Result<Vec<_>>>()?
            } else {
                jobs.par_iter()
                    .map(|job| {
                        let t0 = Instant::now();
                        let (held, report) = fit(job)?;
                        Ok((held, report, t0.elapsed().as_secs_f64()))
                    })
                    .collect::<Result<Vec<_>>>()?
            };
        let mut out: Vec<Heldout> = groups
            .iter()
            .zip(&folds)
            .map(|((_, tested), f)| Heldout {
                held: tested.iter().map(|_| Vec::new()).collect(),
                reports: Vec::new(),
                rows: f.iter().map(|f| f.test.clone()).collect(),
                cpu_seconds: 0.0,
            })
            .collect();
        for (&(g, _), (fold_held, report, seconds)) in jobs.iter().zip(fitted) {
            let h = &mut out[g];
            for (k, scores) in fold_held.into_iter().enumerate() {
                h.held[k].push(scores);
            }
            h.reports.push(report);
            h.cpu_seconds += seconds;
        }
        Ok(out)
    }

    /// One fold: its model (saved, or trained and saved), held-out scores and report.
    fn fit_fold(
        &self,
        job: &FoldJob,
        ctx: &FitContext,
    ) -> Result<(Vec<HeldOutScores>, FoldReport)> {
        let (windows, fold, k, lag) = (job.windows, job.fold, job.k, job.lag);
        let n = windows.n;
        let n_past = (windows.blocks - 1) * n;
        let stopping = self.model.patience > 0 || !self.model.grid.is_empty();
        let FoldWindows {
            st,
            train: (ztr, mtr),
            test: (zte, mte),
            mut inner,
        } = self.fold_windows(windows, fold, job.stream_id, stopping)?;
        let print = fingerprint(
            &ztr,
            &mtr,
            n_past,
            &self.model,
            (self.seed, job.stream_id),
            inner.completion.as_ref().map(|_| INNER_COMPLETION),
        );
        let reference = inner.gaussian(
            (&ztr, &mtr),
            self.model.sigma,
            self.model.shrinkage_search(),
        )?;
        inner.release_ridge_split();
        let saved = ctx
            .models
            .filter(|s| s.reuse())
            .and_then(|s| s.load(lag, k))
            .filter(|c| c.fingerprint == print);
        let resumed = saved.is_some();
        let mut grid_path = Vec::new();
        let trained = match saved {
            Some(c) => {
                (ctx.progress)(Progress::Resumed {
                    lag,
                    fold: k,
                    epochs: c.epoch_loss.len(),
                });
                TrainedModel {
                    model: c.model,
                    epoch_loss: c.epoch_loss,
                    validation_loss: c.validation_loss,
                    validation_start: None,
                    best_epoch: c.best_epoch,
                    epoch_seconds: Vec::new(),
                }
            }
            None => {
                let on_epoch = |epoch, loss| {
                    (ctx.progress)(Progress::Epoch {
                        lag,
                        fold: k,
                        epoch,
                        loss,
                    })
                };
                let data = (&ztr, &mtr, n_past);
                let stream = (job.stream_id, Engine::Fastest);
                let chosen = if self.model.grid.is_empty() {
                    None
                } else {
                    let (cfg, path) =
                        self.select_grid(&inner, &reference, data, stream, &on_epoch)?;
                    grid_path = path;
                    Some(Sbtg {
                        model: cfg,
                        ..self.clone()
                    })
                };
                let fitter = chosen.as_ref().unwrap_or(self);
                let trained = fitter.train_fold(&inner, &reference, data, stream, &on_epoch)?;
                if let Some(store) = ctx.models {
                    store.save(&FoldModel {
                        lag,
                        fold: k,
                        fingerprint: print,
                        neurons: job.panel.neurons.clone(),
                        offsets: windows.offsets.clone(),
                        config: fitter.model.clone(),
                        seed: self.seed,
                        standardiser: st.clone(),
                        model: trained.model.clone(),
                        epoch_loss: trained.epoch_loss.clone(),
                        validation_loss: trained.validation_loss.clone(),
                        best_epoch: trained.best_epoch,
                    })?;
                }
                trained
            }
        };
        let seed = self.seed + job.stream_id;
        // The model's held-out loss beside the Gaussian model's and a standard normal
        // score's (the quadratic energies of the precision and of I), on one noise draw.
        let precision = &reference.start.precision;
        let references = [
            gaussian_energy(precision, &trained.model),
            gaussian_energy(&Array2::eye(precision.nrows()), &trained.model),
        ];
        let [model_terms, gaussian_terms, normal_terms]: [DsmTerms; 3] = dsm_terms(
            &[&trained.model, &references[0], &references[1]],
            zte.view(),
            mte.view(),
            self.model.sigma,
            seed,
        )
        .try_into()
        .expect("three models");
        let loss = model_terms.loss;
        let future_scale = (self.effect_scale == EffectScale::Jacobian)
            .then(|| innovation_deconvolution(&trained.model, &ztr, &mtr, self.model.sigma, seed))
            .transpose()?;
        let held = held_out_scores(
            &trained.model,
            (&zte, &mte),
            &fold.test_segments,
            n,
            (future_scale.as_ref(), self.same_frame),
            job.tested,
        )?
        .ok_or_else(|| {
                Error::Training(format!(
                    "lag {}, fold {} produced non-finite held-out scores; lower --learning-rate or --epochs",
                    windows.span(),
                    k + 1
                ))
            })?;
        let mut recs: Vec<usize> = fold.test.iter().map(|&t| windows.recording[t]).collect();
        recs.dedup();
        let (sq, count) = model_terms.future;
        let report = FoldReport {
            heldout_window_terms: fold
                .test
                .iter()
                .zip(sq.iter().zip(&count))
                .map(|(&w, (&s, &c))| (w, s, c))
                .collect(),
            test_recordings: recs
                .iter()
                .map(|&r| job.panel.recordings[r].name.clone())
                .collect(),
            train_windows: fold.train.len(),
            test_windows: fold.test.len(),
            final_train_loss: trained.epoch_loss.last().copied(),
            heldout_loss: loss,
            heldout_future_loss: Some(sq.sum() / count.sum().max(1.0)),
            gaussian_heldout_loss: Some(gaussian_terms.loss),
            gaussian_expected_future_loss: Some(expected_dsm_future_loss(
                precision,
                zte.view(),
                mte.view(),
                n_past,
                self.model.sigma,
            )),
            normal_heldout_loss: Some(normal_terms.loss),
            gaussian_ridge: Some(reference.start.shrinkage.ridge),
            gaussian_cross_shrinkage: Some(reference.start.shrinkage.cross),
            ridge_path: reference.path,
            best_epoch: trained.best_epoch,
            model_grid: grid_path,
            loaded_from_checkpoint: resumed,
            epoch_loss: trained.epoch_loss,
            validation_loss: trained.validation_loss,
        };
        Ok((held, report))
    }

    /// Trains one fold's energy: from the Gaussian start or at random, on all training
    /// windows, or with its number of epochs chosen first (early stopping on the inner
    /// split, or held-out worms with [`Self::select_epochs`]) and a second pass on all of
    /// them ([`Self::refit`]).
    fn train_fold(
        &self,
        inner: &InnerSplit,
        reference: &GaussianReference,
        (ztr, mtr, n_past): (&Array2<f64>, &Array2<f64>, usize),
        (stream_id, engine): (u64, Engine),
        on_epoch: &(dyn Fn(usize, f64) + Sync),
    ) -> Result<TrainedModel> {
        let gaussian = self.model.coupling == Coupling::Gaussian;
        if self.model.select_epochs && !gaussian {
            let selection = self.select_epochs(
                inner,
                reference,
                (ztr, mtr, n_past),
                (stream_id, engine),
                on_epoch,
            )?;
            let best = selection.best_epoch.unwrap_or(0);
            let start = (self.model.start == Start::Gaussian).then_some(&reference.start);
            return self.refit(
                (ztr, mtr, n_past),
                stream_id,
                start,
                best,
                selection,
                engine,
            );
        }
        let early = self.model.patience > 0 && !gaussian;
        // With early stopping the model trains on the inner split only, so its start is
        // refitted there: a start fitted with the validation windows would make epoch 0
        // look better than it is.
        let inner_start = early
            .then(|| inner.stopping_start(reference.start.shrinkage, self.model.sigma))
            .transpose()?;
        let warm = (self.model.start == Start::Gaussian || gaussian)
            .then(|| inner_start.as_ref().unwrap_or(&reference.start));
        let validation = early.then(|| inner.stopping_validation(self.seed + stream_id));
        let (zfit, mfit) = if early {
            (inner.stop_train.0.view(), inner.stop_train.1.view())
        } else {
            (ztr.view(), mtr.view())
        };
        let trained = train(
            engine,
            zfit,
            mfit,
            n_past,
            &self.model,
            self.seed,
            stream_id,
            warm,
            validation.as_ref(),
            on_epoch,
        )?;
        match trained.best_epoch {
            Some(best) if early => self.refit(
                (ztr, mtr, n_past),
                stream_id,
                (self.model.start == Start::Gaussian).then_some(&reference.start),
                best,
                trained,
                engine,
            ),
            _ => Ok(trained),
        }
    }

    /// Edge-test evidence of new recordings with saved fold models: `models[l]` holds
    /// the fold models of lag `lags[l]`. No window of `panel` was used to train any of
    /// them, so every window is held out for every model; the tested series is the
    /// average over the K models, `Y_t = (1/K) Σ_k Y_t^{(k)}` (each term an unbiased
    /// held-out estimate of the same `−I·E[J]`). The panel must be on the models'
    /// neurons, in their order.
    pub fn score_with_models(
        &self,
        panel: &Panel,
        lags: &[usize],
        models: &[Vec<FoldModel>],
        ctx: &FitContext,
    ) -> Result<Vec<LagEvidence>> {
        if models.len() != lags.len() {
            return Err(Error::Data(format!(
                "{} lags configured but models for {} given",
                lags.len(),
                models.len()
            )));
        }
        let n = panel.neurons.len();
        lags.iter()
            .zip(models)
            .map(|(&lag, fold_models)| {
                let windows = self.windows(panel, self.span_of(lag))?;
                (ctx.progress)(Progress::Stage("edge tests"));
                let t0 = Instant::now();
                let k = fold_models.len().max(1) as f64;
                let all: Vec<usize> = (0..windows.len()).collect();
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
                    let (mut z, m) = ck
                        .standardiser
                        .apply(windows.z.view(), windows.mask.view(), &all);
                    if self.missing == MissingNeurons::Impute {
                        // The saved models kept no training windows: the Gaussian model
                        // that completes the new recordings is estimated on them.
                        let cov = em_covariance(z.view(), m.view(), MISSING_RIDGE, MISSING_EM_ITERATIONS)?;
                        impute(&mut z, m.view(), &cov, &mut stream(self.seed, IMPUTE_STREAM + 1_000 + ck.fold as u64))?;
                    }
                    // The saved models kept no training windows: Q̂ comes from the new
                    // recordings' scores (none of which trained the model).
                    let future_scale = (self.effect_scale == EffectScale::Jacobian)
                        .then(|| innovation_deconvolution(&ck.model, &z, &m, ck.config.sigma, ck.seed))
                        .transpose()?;
                    let held = held_out_scores(&ck.model, (&z, &m), &windows.segments, n, (future_scale.as_ref(), self.same_frame), &[lag])?
                        .and_then(|mut h| h.pop())
                        .ok_or_else(|| {
                            Error::Training(format!(
                                "the saved lag-{lag} model of fold {} gives non-finite scores on the new recordings",
                                ck.fold + 1
                            ))
                        })?;
                    let scale = |s: ProductSeries| {
                        s.terms.into_iter().map(|mut t| {
                            t.target /= k;
                            t
                        })
                    };
                    let ms = held.mean_series(self.statistic);
                    masks = Some((ms.target_mask.clone(), ms.source_mask.clone()));
                    mean_terms.extend(scale(ms));
                    if self.volatility && lag > 0 {
                        vol_terms.extend(scale(held.volatility_series()));
                    }
                    reports.push(FoldReport {
                        test_recordings: panel.recordings.iter().map(|r| r.name.clone()).collect(),
                        train_windows: 0,
                        test_windows: windows.len(),
                        final_train_loss: ck.epoch_loss.last().copied(),
                        heldout_loss: dsm_loss(&ck.model, z.view(), m.view(), ck.config.sigma, ck.seed + 7919),
                        heldout_future_loss: Some(dsm_loss_future(&ck.model, z.view(), m.view(), ck.config.sigma, ck.seed + 7919)),
                        gaussian_heldout_loss: None,
                        normal_heldout_loss: None,
                        gaussian_ridge: None,
                        gaussian_cross_shrinkage: None,
                        gaussian_expected_future_loss: None,
                        ridge_path: Vec::new(),
                        best_epoch: None,
                        model_grid: Vec::new(),
                        loaded_from_checkpoint: true,
                        epoch_loss: ck.epoch_loss.clone(),
                        validation_loss: Vec::new(),
                        heldout_window_terms: Vec::new(),
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
                let volatility = (self.volatility && lag > 0).then(|| {
                    vec![ProductSeries::new(
                        vol_terms,
                        target_mask,
                        source_mask,
                        windows.segments.clone(),
                    )]
                });
                Ok(LagEvidence {
                    lag,
                    windows: windows.len(),
                    mean: MeanEvidence::Series {
                        blocks: vec![SeriesBlock::all(n, vec![mean], vec![all])],
                        effect_sign: -1.0,
                    },
                    window_start: windows.start.clone(),
                    window_span: windows.span(),
                    window_recording: windows.recording,
                    volatility,
                    folds: reports,
                    train_seconds: 0.0,
                    fit_seconds: t0.elapsed().as_secs_f64(),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::simulate::null_ar1;
    use crate::data::PanelConfig;

    /// The Gaussian model's shrinkage of a block fold is chosen on the fold's own training
    /// windows: the inner split's rows, taken by position from the fold's training
    /// matrix, are the windows `stopping_split` names (the fold's training rows are not
    /// `0..N` for a later fold), so the path equals `select_shrinkage` on those windows
    /// standardised directly. A neuron missing from one recording makes the masks matter.
    #[test]
    fn the_block_folds_shrinkage_is_chosen_on_the_folds_inner_split() {
        let mut sim = null_ar1(4, 300, 3, 0.9, 0.3, 5).unwrap();
        sim.recordings[1].values.column_mut(2).fill(f64::NAN);
        let panel = Panel::build(&sim.recordings, &PanelConfig::default()).unwrap();
        let est = Sbtg::default();
        let windows = est.windows(&panel, est.span_of(1)).unwrap();
        let folds = make_folds(&windows, est.fold_scheme()).unwrap();
        let fold = &folds[2];
        assert_ne!(fold.train, (0..fold.train.len()).collect::<Vec<_>>());
        let problem = est.fold_problem(&panel, 1, 2).unwrap();
        let st = Standardiser::fit(windows.z.view(), windows.mask.view(), &fold.train);
        let (inner, valid) = stopping_split(&windows, &fold.train, STOPPING_FRACTION);
        let (zi, _) = st.apply(windows.z.view(), windows.mask.view(), &inner);
        let (zv, mv) = st.apply(windows.z.view(), windows.mask.view(), &valid);
        assert!(
            mv.iter().any(|&v| v == 0.0),
            "some validation windows miss a neuron"
        );
        let (shrinkage, path) = select_shrinkage(
            zi.view(),
            (zv.view(), mv.view()),
            est.model.sigma,
            est.model.shrinkage_search(),
            windows.n,
        )
        .unwrap();
        assert_eq!(problem.gaussian_start().shrinkage, shrinkage);
        assert_eq!(problem.reference.path, path);
    }
}

#[cfg(test)]
mod completion_tests {
    use super::*;
    use crate::data::simulate::null_ar1;
    use crate::data::PanelConfig;

    /// Three worms, each missing a different neuron, imputed, folds of whole worms.
    fn imputed_worms() -> (Sbtg, Panel) {
        let mut sim = null_ar1(4, 200, 3, 0.9, 0.3, 11).unwrap();
        sim.recordings[0].values.column_mut(1).fill(f64::NAN);
        sim.recordings[1].values.column_mut(2).fill(f64::NAN);
        sim.recordings[2].values.column_mut(3).fill(f64::NAN);
        let panel = Panel::build(&sim.recordings, &PanelConfig::default()).unwrap();
        let est = Sbtg {
            missing: MissingNeurons::Impute,
            folds: Some(FoldScheme::Recordings(3)),
            ..Sbtg::default()
        };
        (est, panel)
    }

    /// A held-out worm's windows do not inform the draws that complete the windows it
    /// is scored against: changing its observed values leaves the other worms' completed
    /// windows as they were (a covariance of all training worms would move them), and
    /// changes its own. Changing another worm's values moves them.
    #[test]
    fn a_held_out_worm_does_not_inform_the_completion_of_the_others() {
        let (est, panel) = imputed_worms();
        let windows = est.windows(&panel, est.span_of(1)).unwrap();
        let folds = make_folds(&windows, est.fold_scheme()).unwrap();
        let fold = &folds[0];
        let fw = est.fold_windows(&windows, fold, 0, true).unwrap();
        let mut worms = fw.inner.train_worm.clone();
        worms.dedup();
        assert_eq!(worms.len(), 2, "two training worms");
        let (held, other) = (worms[0], worms[1]);
        let data = (&fw.train.0, &fw.train.1);
        let (fit, valid) = fw.inner.worm_split(data, held).unwrap();
        let mut inner = fw.inner;
        let scaled = |inner: &mut InnerSplit, w: usize| {
            let c = inner.completion.as_mut().expect("imputed");
            for (t, mut row) in c.zero_filled.outer_iter_mut().enumerate() {
                if inner.train_worm[t] == w {
                    row *= 3.0;
                }
            }
        };
        scaled(&mut inner, held);
        let (fit_after, valid_after) = inner.worm_split(data, held).unwrap();
        assert_eq!(
            fit.0, fit_after.0,
            "the other worm's completed windows moved"
        );
        assert_ne!(valid.0, valid_after.0);
        scaled(&mut inner, other);
        let (fit_other, _) = inner.worm_split(data, held).unwrap();
        assert_ne!(fit_after.0, fit_other.0);
        // Missing coordinates carry draws.
        let (z, m) = &fit_other;
        assert!(z.iter().zip(m).any(|(&v, &o)| o == 0.0 && v != 0.0));
        assert!(z.iter().all(|v| v.is_finite()));
    }

    /// The early-stopping split (and the block folds' shrinkage split, the same rows) is
    /// completed from its own training windows: changing the validation windows'
    /// values leaves the completed training windows unchanged.
    #[test]
    fn the_stopping_split_is_completed_from_its_own_training_windows() {
        let (mut est, panel) = imputed_worms();
        est.folds = Some(FoldScheme::Blocks(5));
        let windows = est.windows(&panel, est.span_of(1)).unwrap();
        let folds = make_folds(&windows, est.fold_scheme()).unwrap();
        let fold = &folds[1];
        let st = Standardiser::fit(windows.z.view(), windows.mask.view(), &fold.train);
        let completion = |zero_filled| Completion {
            zero_filled,
            seed: est.seed,
            stream: INNER_IMPUTE_STREAM,
        };
        let zero_filled = st
            .apply(windows.z.view(), windows.mask.view(), &fold.train)
            .0;
        let split = |w: &Windows| {
            InnerSplit::new(
                w,
                &st,
                &fold.train,
                true,
                FoldBy::Blocks,
                Some(completion(zero_filled.clone())),
            )
            .unwrap()
        };
        let before = split(&windows);
        let (_, valid_rows) = stopping_split(&windows, &fold.train, STOPPING_FRACTION);
        let mut changed = windows.clone();
        for &t in &valid_rows {
            changed.z.row_mut(t).mapv_inplace(|v| 3.0 * v + 1.0);
        }
        let after = split(&changed);
        assert_eq!(before.stop_train.0, after.stop_train.0);
        assert_ne!(before.stop_valid.0, after.stop_valid.0);
        let ridge = |s: &InnerSplit| s.ridge.clone().expect("block folds hold a ridge split");
        assert_eq!(ridge(&before).0 .0, before.stop_train.0);
        assert_eq!(ridge(&before).1 .0, before.stop_valid.0);
        // The training windows are completed: draws at the missing coordinates.
        let (z, m) = &before.stop_train;
        assert!(z.iter().zip(m).any(|(&v, &o)| o == 0.0 && v != 0.0));
    }
}

#[cfg(test)]
mod deconvolution_tests {
    use super::*;
    use crate::model::EnergyModel;

    /// `Q̂` of the Jacobian scale is not diluted by missing neurons: for the energy
    /// `½|z|²` (score `−y`) on standard normal windows, `E[ŝ_F ŝ_Fᵀ] = (1 + σ²) I` on
    /// observed coordinates. A neuron observed in half of the windows has its diagonal
    /// restored (`Q̂_jj ≈ 1/(1 + σ²)` as for the others, not twice it), and the
    /// off-diagonal entries stay near 0.
    #[test]
    fn the_innovation_deconvolution_is_not_diluted_by_missing_neurons() {
        let (rows, n, sigma) = (40_000, 3, 0.1);
        let template = EnergyModel::init(n, n, Coupling::Linear, 8, 2, &mut stream(1, 1));
        let model = gaussian_energy(&Array2::eye(2 * n), &template);
        let mut rng = stream(5, 0);
        let z = Array2::from_shape_fn((rows, 2 * n), |_| {
            rand_distr::Distribution::<f64>::sample(&rand_distr::StandardNormal, &mut rng)
        });
        let mut m = Array2::ones((rows, 2 * n));
        for t in (0..rows).step_by(2) {
            m[[t, n + 1]] = 0.0;
        }
        let zm = &z * &m;
        let q = innovation_deconvolution(&model, &zm, &m, sigma, 3).unwrap();
        let expect = 1.0 / (1.0 + sigma * sigma);
        for j in 0..n {
            assert!(
                (q[[j, j]] - expect).abs() < 0.03,
                "Q̂_{j}{j} = {} against {expect}",
                q[[j, j]]
            );
        }
        for j in 0..n {
            for k in 0..n {
                if j != k {
                    assert!(q[[j, k]].abs() < 0.03, "Q̂_{j}{k} = {}", q[[j, k]]);
                }
            }
        }
    }
}
