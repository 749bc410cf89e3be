//! `sbtg infer`: flags in, [`InferConfig`] out, the core's engine in between.

use std::path::PathBuf;
use std::sync::Mutex;

use anyhow::Result;
use clap::parser::ValueSource;
use clap::{ArgMatches, Args};
use indicatif::{ProgressBar, ProgressStyle};
use sbtg_core::data::{FoldBy, FoldScheme, Panel, PanelConfig, StimulusWindow};
use sbtg_core::estimate::{
    FitContext, Granger, InferConfig, LagWindows, LaggedCorrelation, Method, MethodConfig,
    PairwiseGranger, PartialCorrelation, Pcmci, PrewhitenedCorrelation, Progress, Sbtg, TestConfig,
};
use sbtg_core::io::checkpoint::CheckpointDir;
use sbtg_core::io::manifest::{digest_files, Manifest, StageTimer};
use sbtg_core::io::recording::names::normalise_label;
use sbtg_core::io::run_folder::{Overwrite, RunFolder};
use sbtg_core::model::gaussian::{ShrinkageCriterion, ShrinkageTarget};
use sbtg_core::model::{CouplingKind, ModelGrid, ScoreModelConfig, Start};
use sbtg_core::results::summary::StimulusCut;
use sbtg_core::stats::empirical_null::NullDistribution;
use sbtg_core::stats::random_effects::Pooling;
use sbtg_core::stats::{
    Bandwidth, EdgeStatistic, EffectScale, FdrMethod, MissingNeurons, SameFrame, TestKind,
};
use sbtg_core::EdgeTable;
use serde::{Deserialize, Serialize};

/// Every setting of `sbtg infer`; serialised (kebab-case keys, like the flags) into
/// `run.json` and read back from `--config`.
#[derive(Args, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct InferArgs {
    /// A recording file or a folder of them: wide or long CSV, NeuroPAL .mat, lab
    /// HDF5 (.h5), NWB, NPY/NPZ or Parquet (see the README's formats section).
    pub(crate) input: Option<PathBuf>,
    #[command(flatten)]
    #[serde(flatten)]
    pub(crate) recording: crate::recording_args::RecordingArgs,
    /// Output folder (created if needed; an existing one with results needs --force).
    #[arg(long, short)]
    pub(crate) out: Option<PathBuf>,
    /// Settings file: `sbtg.toml` (keys are the flag names) or the `run.json` of an
    /// earlier run, to reproduce it. Flags typed on the command line override it.
    #[arg(long)]
    #[serde(skip)]
    config: Option<PathBuf>,
    /// Replace the results already in --out (kept until the new run has succeeded).
    #[arg(long)]
    #[serde(skip)]
    force: bool,
    /// Continue an interrupted run in --out: its settings are read from
    /// OUT/.partial/run.json and score models already trained are not trained again.
    #[arg(long, conflicts_with = "force")]
    #[serde(skip)]
    resume: bool,
    /// Estimator: SBTG, or one of the baselines (same windows, table and FDR step).
    #[arg(long, value_enum, default_value = "sbtg")]
    method: Method,
    /// Lags to test, in frames (comma-separated), all in one FDR family; 0 = same-frame
    /// pairs given the past (undirected). Default: 0,1 for sbtg, lagged-correlation,
    /// prewhitened-correlation and partial-correlation, 1 for the others.
    #[arg(long, value_delimiter = ',')]
    #[serde(default)]
    lags: Option<Vec<usize>>,
    /// Windows of lags above 1: `minimal` [x_t, …, x_{t+r}] (direct effects) or
    /// `pairwise` [x_t, x_{t+r}] (plain lagged pairs, for comparison).
    #[arg(long, value_enum, default_value = "minimal")]
    lag_windows: LagWindows,
    /// Conditioning depth K (SBTG): lags 0..=K are tested in the windows
    /// [x_{t-K+1}, …, x_t, x_{t+1}] of one model, so each lag's test conditions on the
    /// other K − 1 past frames.
    /// Chosen by the held-out DSM loss of the future block (in expectation over the
    /// noise draw) on datasets/dag2023: 3 of 1–5 (docs/method.md).
    #[arg(long, default_value_t = 3)]
    past: usize,
    /// Coupling term of the energy (`gaussian`: the Gaussian window model in closed
    /// form, no training: fast, a held-out loss close to the default's, and tests that
    /// need the empirical null on slowly varying data; see docs/method.md).
    #[arg(long, value_enum, default_value = "linear")]
    coupling: CouplingKind,
    /// Where training starts: `gaussian` (the closed-form Gaussian window model, ridge
    /// chosen on an inner split of the training recordings, MLP outputs at zero; the
    /// default, with the lowest held-out loss) or `random` (a standard normal score and
    /// random MLPs, as in the paper's code; see docs/method.md). The feature-bilinear and
    /// regime-gated couplings have no Gaussian start and default to `random`.
    #[arg(long, value_enum)]
    start: Option<Start>,
    /// What the Gaussian window model (the start, and `--coupling gaussian`) is shrunk
    /// towards: `independent-neurons` (the covariances between different neurons are
    /// shrunk towards zero, each neuron keeping its own autocovariance; default) or
    /// `identity` (the ridge only). The amount, and the ridge, are chosen by the held-out
    /// likelihood of every fold's inner split (see docs/method.md).
    #[arg(long, value_enum, default_value = "independent-neurons")]
    shrinkage: ShrinkageTarget,
    /// Which held-out likelihood chooses the shrinkage: `future` (of the last frame given
    /// the past frames, the conditional the edge tests read; default) or `window` (of the
    /// whole window, as runs before this option; see docs/method.md).
    #[arg(long, value_enum, default_value = "future")]
    shrinkage_criterion: ShrinkageCriterion,
    /// Early stopping: train on the first four fifths of every training recording, keep
    /// the epoch with the lowest DSM loss on the last fifth, stop after this many epochs
    /// without improvement, then train that many epochs on all training windows (default
    /// 10; 0: train every epoch on all training windows; `--select-epochs` sets it to 0).
    /// Models stopped near the Gaussian start need the empirical null (SBTG's default)
    /// for calibrated tests on slowly varying data (see docs/method.md).
    #[arg(long)]
    patience: Option<usize>,
    /// Choose the number of epochs (up to --epochs) by cross-validation inside each fold:
    /// every training worm is held out in turn, a model trained on the others records
    /// its DSM loss on it after each epoch, and the epoch with the lowest mean loss is
    /// trained on all training worms. About (training worms + 1) times the training
    /// work; see docs/method.md.
    #[arg(long)]
    select_epochs: bool,
    /// Feature rank r of the feature-bilinear coupling.
    #[arg(long, default_value_t = 16)]
    rank: usize,
    /// Number of regimes K of the regime-gated coupling.
    #[arg(long, default_value_t = 2)]
    regimes: usize,
    /// Training epochs per fold.
    #[arg(long, default_value_t = 100)]
    epochs: usize,
    /// DSM noise level σ (standardised units).
    #[arg(long, default_value_t = 0.1)]
    sigma: f64,
    /// Adam step size of the score-model training.
    #[arg(long, default_value_t = 1e-3)]
    learning_rate: f64,
    /// Windows per training step (each used twice, with antithetic noise).
    #[arg(long, default_value_t = 128)]
    batch_size: usize,
    /// Hidden width of every MLP.
    #[arg(long, default_value_t = 64)]
    hidden: usize,
    /// L1 penalty on the coupling matrices.
    #[arg(long, default_value_t = 0.0)]
    l1: f64,
    /// MLP widths to choose from by held-out loss inside each fold (for example
    /// 16,32,64): every candidate (with every --grid-l1 value) is trained on the first
    /// four fifths of every training recording and scored on the last fifth; the best
    /// is then trained as usual. summary.json records every candidate's loss. Costs
    /// about (candidates + 1) times the training.
    #[arg(long, value_delimiter = ',')]
    grid_hidden: Vec<usize>,
    /// L1 penalties on the coupling to choose from, as --grid-hidden (for example
    /// 0,0.001,0.01).
    #[arg(long, value_delimiter = ',')]
    grid_l1: Vec<f64>,
    /// Ridge λ of the regression baselines (`λ·N` added to each Gram matrix of N
    /// standardised windows).
    #[arg(long, default_value_t = 1e-3)]
    ridge: f64,
    /// prewhitened-correlation: largest order of each neuron's own autoregression (BIC
    /// chooses the order up to it, per recording and neuron).
    #[arg(long, default_value_t = 5, value_name = "P")]
    ar_order: usize,
    /// PCMCI: significance level for keeping a condition in the PC1 step.
    #[arg(long, default_value_t = 0.2)]
    pc_alpha: f64,
    /// Number of cross-fitting folds (default: 5; with `--fold-by recordings`,
    /// min(recordings, 5)).
    #[arg(long)]
    folds: Option<usize>,
    /// Hold out contiguous blocks of every recording (default: every fold's model sees
    /// every worm, as Stein's identity needs) or whole recordings (a model of other worms).
    #[arg(long, value_enum)]
    fold_by: Option<FoldBy>,
    /// Tested statistic: `orthogonal` (2Ĥ − s_F s_P, default) or `product` (s_F s_P).
    #[arg(long, value_enum, default_value = "orthogonal")]
    statistic: EdgeStatistic,
    /// Scale of the mean test's effect: `precision` (I_ε·E[J], the paper's cross-block
    /// product, default) or `jacobian` (E[J]: the future scores deconvolved by the inverse
    /// of their training second moment; separates rows of J mixed by correlated
    /// innovations, but its estimate's noise leaks strong edges onto their neighbours;
    /// see docs/method.md).
    #[arg(long, value_enum, default_value = "precision")]
    effect_scale: EffectScale,
    /// What the same-frame (lag-0) test measures: `innovation` (the correlation of the two
    /// neurons' innovations given the past, default) or `precision` (the innovations'
    /// precision: their partial covariance given the past and every other neuron of the
    /// frame). See docs/method.md.
    #[arg(long, value_enum, default_value = "innovation")]
    same_frame: SameFrame,
    /// What the score models see for a neuron missing from a recording: `zero` (its
    /// mean, default) or `impute` (a draw from its conditional distribution given the
    /// window's observed neurons under an EM Gaussian model of the training windows;
    /// tests and losses stay on observed neurons; see docs/reliability.md).
    #[arg(long, value_enum, default_value = "zero")]
    missing: MissingNeurons,
    /// Skip the volatility-transfer test.
    #[arg(long)]
    no_volatility: bool,
    /// FDR procedure over the family of all tests.
    #[arg(long, value_enum, default_value = "bh")]
    fdr: FdrMethod,
    /// FDR level.
    #[arg(long, default_value_t = 0.1)]
    alpha: f64,
    /// HAC bandwidth: a number, `auto` (Newey–West 1994 plug-in) or `andrews` (Andrews 1991 AR(1) plug-in).
    #[arg(long, default_value = "auto")]
    bandwidth: String,
    /// How the mean and direction tests pool the recordings: `fixed` (one HAC test over all windows)
    /// or `random-effects` (per-recording tests pooled with a between-worm variance,
    /// DerSimonian–Laird; needs 3 or more recordings).
    #[arg(long, value_enum, default_value = "fixed")]
    pooling: Pooling,
    /// Null distribution of the p-values: `theoretical` (each test's own) or `empirical`
    /// (Efron's empirical null: every family's z-values rescaled by the spread of its
    /// bulk when wider than N(0, 1); calibrated on slow nulls where the theoretical
    /// null over-rejects, at the cost of power where most pairs have effects; see
    /// docs/method.md). Default: empirical for sbtg, theoretical for the baselines.
    #[arg(long, value_enum)]
    null: Option<NullDistribution>,
    /// Random seed (training order, noise and initial weights).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Keep neurons present in at least this many recordings (default: a majority); a
    /// constant trace counts as absent.
    #[arg(long)]
    min_recordings: Option<usize>,
    /// Keep uncertain labels (ending in `?`), with the `?` stripped.
    #[arg(long)]
    keep_uncertain: bool,
    /// Condition every neuron on K global factors of its recording: its trace becomes
    /// the residual on the K leading principal components of the recording's other
    /// neurons (slow whole-brain modes; see docs/method.md). 0 = off.
    #[arg(long, default_value_t = 0, value_name = "K")]
    global_factors: usize,
    /// Analyse only these neurons (comma-separated).
    #[arg(long, value_delimiter = ',')]
    neurons: Option<Vec<String>>,
    /// Behavioural states: also test every edge within each state and the difference
    /// between states. `COLUMN>VALUE` (or < >= <= == !=) on the behaviour file beside
    /// each recording (`<name>.behavior.csv`, e.g. `reversal_vec>0`), `COLUMN:qK` (K
    /// quantile bins), `file:SUFFIX` (a `time_s,state` CSV per recording) or
    /// `stimulus:NAME` (on/off). A window's state is that of its last frame t+1.
    #[arg(long)]
    #[serde(default)]
    states: Option<String>,
    /// Names of the states, in order (e.g. `reversal,forward` for `reversal_vec>0`).
    #[arg(long, value_delimiter = ',', requires = "states")]
    #[serde(default)]
    state_names: Option<Vec<String>>,
    /// Keep windows whose frames are not all in the state of their last frame
    /// (dropped by default).
    #[arg(long, requires = "states")]
    #[serde(default)]
    keep_straddling: bool,
    /// Score model of the per-state tests: `pooled` (one model on all windows, its
    /// held-out series averaged per state) or `separate` (a model per state, fitted on
    /// that state's runs; SBTG). summary.json gives both models' held-out loss on each
    /// state's windows with `separate`.
    #[arg(long, value_enum, default_value = "pooled", requires = "states")]
    #[serde(default)]
    state_model: sbtg_core::data::state::StateModel,
    /// Calibrate the differential tests against this many circular shifts of the state
    /// labels within each recording (bouts kept, link to the neurons broken): each
    /// differential p-value becomes the fraction of shifted |t| at or above its own.
    /// Default 19 with `--state-model pooled`; 0: HAC p-values (the only choice with
    /// `separate`). Seeded by --seed.
    #[arg(long, requires = "states")]
    #[serde(default)]
    state_shifts: Option<usize>,
}

/// Circular shifts of the state labels behind the differential p-values by default
/// (about 2 × 10⁵ shifted |t| per difference and lag on the shipped recordings).
const DEFAULT_STATE_SHIFTS: usize = 19;

/// The flags that only some methods use, and which methods use them.
const METHOD_FLAGS: &[(&str, &[Method])] = &[
    ("lag_windows", &[Method::Sbtg]),
    ("past", &[Method::Sbtg]),
    ("coupling", &[Method::Sbtg]),
    ("start", &[Method::Sbtg]),
    ("patience", &[Method::Sbtg]),
    ("select_epochs", &[Method::Sbtg]),
    ("rank", &[Method::Sbtg]),
    ("regimes", &[Method::Sbtg]),
    ("epochs", &[Method::Sbtg]),
    ("sigma", &[Method::Sbtg]),
    ("learning_rate", &[Method::Sbtg]),
    ("batch_size", &[Method::Sbtg]),
    ("hidden", &[Method::Sbtg]),
    ("l1", &[Method::Sbtg]),
    ("grid_hidden", &[Method::Sbtg]),
    ("grid_l1", &[Method::Sbtg]),
    ("folds", &[Method::Sbtg]),
    ("fold_by", &[Method::Sbtg]),
    ("statistic", &[Method::Sbtg]),
    ("effect_scale", &[Method::Sbtg]),
    ("same_frame", &[Method::Sbtg]),
    ("shrinkage", &[Method::Sbtg]),
    ("shrinkage_criterion", &[Method::Sbtg]),
    ("missing", &[Method::Sbtg]),
    ("no_volatility", &[Method::Sbtg]),
    ("seed", &[Method::Sbtg]),
    (
        "ridge",
        &[
            Method::PartialCorrelation,
            Method::Granger,
            Method::PairwiseGranger,
        ],
    ),
    ("pc_alpha", &[Method::Pcmci]),
    ("ar_order", &[Method::PrewhitenedCorrelation]),
    (
        "bandwidth",
        &[
            Method::Sbtg,
            Method::LaggedCorrelation,
            Method::PrewhitenedCorrelation,
            Method::Granger,
        ],
    ),
    (
        "pooling",
        &[
            Method::Sbtg,
            Method::LaggedCorrelation,
            Method::PrewhitenedCorrelation,
            Method::Granger,
        ],
    ),
];

impl InferArgs {
    /// Refuses a flag typed on the command line that the chosen method does not use
    /// (it would otherwise be silently ignored).
    pub(crate) fn check_method_flags(&self, matches: &ArgMatches) -> Result<()> {
        for (id, methods) in METHOD_FLAGS {
            let typed = matches.try_get_raw(id).is_ok()
                && matches.value_source(id) == Some(ValueSource::CommandLine);
            if typed && !methods.contains(&self.method) {
                let users: Vec<&str> = methods.iter().map(|m| m.name()).collect();
                return Err(sbtg_core::Error::param(
                    "method",
                    format!(
                        "--{} is a setting of --method {}; --method {} does not use it: drop the flag",
                        id.replace('_', "-"),
                        users.join(" or "),
                        self.method
                    ),
                )
                .into());
            }
        }
        Ok(())
    }

    /// The settings of the chosen estimator.
    fn estimator(&self, n_recordings: usize) -> MethodConfig {
        match self.method {
            Method::Sbtg => MethodConfig::Sbtg(Sbtg {
                model: ScoreModelConfig {
                    coupling: self.coupling.with(self.rank, self.regimes),
                    hidden: self.hidden,
                    depth: 2,
                    sigma: self.sigma,
                    epochs: self.epochs,
                    batch_size: self.batch_size,
                    learning_rate: self.learning_rate,
                    l1: self.l1,
                    start: self.start(),
                    shrinkage: self.shrinkage,
                    shrinkage_criterion: self.shrinkage_criterion,
                    // Epoch selection replaces early stopping unless both are asked
                    // for (which validation refuses).
                    patience: self.patience.unwrap_or(if self.select_epochs {
                        0
                    } else {
                        ScoreModelConfig::default().patience
                    }),
                    select_epochs: self.select_epochs,
                    grid: ModelGrid {
                        hidden: self.grid_hidden.clone(),
                        l1: self.grid_l1.clone(),
                    },
                },
                folds: match (self.fold_by, self.folds) {
                    (None, None) => None,
                    (by, k) => Some(FoldScheme::new(
                        by.unwrap_or(FoldScheme::DEFAULT.by()),
                        k,
                        n_recordings,
                    )),
                },
                statistic: self.statistic,
                effect_scale: self.effect_scale,
                same_frame: self.same_frame,
                volatility: !self.no_volatility,
                lag_windows: self.lag_windows,
                past: self.past,
                missing: self.missing,
                seed: self.seed,
            }),
            Method::LaggedCorrelation => MethodConfig::LaggedCorrelation(LaggedCorrelation {}),
            Method::PrewhitenedCorrelation => {
                MethodConfig::PrewhitenedCorrelation(PrewhitenedCorrelation {
                    max_order: self.ar_order,
                })
            }
            Method::PartialCorrelation => {
                MethodConfig::PartialCorrelation(PartialCorrelation { ridge: self.ridge })
            }
            Method::Granger => MethodConfig::Granger(Granger { ridge: self.ridge }),
            Method::PairwiseGranger => {
                MethodConfig::PairwiseGranger(PairwiseGranger { ridge: self.ridge })
            }
            Method::Pcmci => MethodConfig::Pcmci(Pcmci {
                pc_alpha: self.pc_alpha,
            }),
        }
    }

    pub(crate) fn config(&self, n_recordings: usize) -> Result<InferConfig> {
        let bandwidth = match self.bandwidth.as_str() {
            "auto" => Bandwidth::NeweyWest,
            "andrews" => Bandwidth::Andrews,
            b => Bandwidth::Fixed(b.parse().map_err(|_| {
                sbtg_core::Error::param(
                    "bandwidth",
                    format!("`{b}` is not `auto`, `andrews` or a number"),
                )
            })?),
        };
        let estimator = self.estimator(n_recordings);
        let cfg = InferConfig {
            lags: self
                .lags
                .clone()
                .unwrap_or_else(|| InferConfig::default_lags(&estimator)),
            estimator,
            tests: TestConfig {
                fdr: self.fdr,
                alpha: self.alpha,
                bandwidth,
                pooling: self.pooling,
                null: self.null.unwrap_or(TestConfig::of(self.method).null),
            },
        };

        cfg.validate()?;
        Ok(cfg)
    }

    /// The neuron selection; `--neurons` names are trimmed and, unless
    /// `--any-names`, spelt as the readers spell them (`aval` → AVAL).
    /// `--start`, or its default for the coupling: the Gaussian window model, except for
    /// the couplings it cannot start (feature-bilinear, regime-gated), which start random.
    fn start(&self) -> Start {
        self.start.unwrap_or(match self.coupling {
            CouplingKind::FeatureBilinear | CouplingKind::RegimeGated => Start::Random,
            CouplingKind::Linear | CouplingKind::Gaussian => Start::Gaussian,
        })
    }

    pub(crate) fn panel_config(&self) -> PanelConfig {
        let any = self.recording.any_names;
        PanelConfig {
            min_recordings: self.min_recordings,
            keep_uncertain: self.keep_uncertain,
            global_factors: self.global_factors,
            neurons: self.neurons.as_ref().map(|list| {
                list.iter()
                    .map(|n| n.trim())
                    .filter(|n| !n.is_empty())
                    .map(|n| {
                        if any {
                            n.to_string()
                        } else {
                            normalise_label(n)
                        }
                    })
                    .collect()
            }),
        }
    }
}

/// Runs the engine with a progress bar on stderr.
pub fn run_inference(
    panel: &Panel,
    cfg: &InferConfig,
    quiet: bool,
    store: Option<&CheckpointDir>,
) -> Result<EdgeTable> {
    let bar = Mutex::new(None::<ProgressBar>);
    let progress = |p: Progress| match p {
        Progress::Training {
            lags,
            span,
            folds,
            total_epochs,
        } => {
            if let (false, Some(s)) = (quiet, cfg.estimator.sbtg()) {
                let lags: Vec<String> = lags.iter().map(usize::to_string).collect();
                let epochs = match (s.model.select_epochs, s.model.epochs) {
                    (true, e) => format!("epochs chosen by held-out worms, at most {e}"),
                    (false, e) if !s.model.grid.is_empty() => format!(
                        "{e} epochs each, width and L1 chosen from {} candidates",
                        s.model.grid.candidates(&s.model).len()
                    ),
                    (false, 1) => "1 epoch each".to_string(),
                    (false, e) => format!("{e} epochs each"),
                };
                eprintln!(
                    "lag{} {} (windows of {} frames): training {folds} score models ({} coupling, {epochs}) on {} recordings, {} neurons",
                    if lags.len() > 1 { "s" } else { "" },
                    lags.join(", "),
                    span + 1,
                    s.model.coupling.name(),
                    panel.recordings.len(),
                    panel.neurons.len()
                );
            }
            let mut held = bar.lock().expect("progress lock");
            // Window groups train together: a later group adds its epochs to the bar.
            if let Some(pb) = held.as_ref() {
                pb.inc_length(total_epochs as u64);
                return;
            }
            let pb = if quiet {
                ProgressBar::hidden()
            } else {
                ProgressBar::new(total_epochs as u64)
            };
            pb.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} epochs  {msg}",
                )
                .expect("valid template"),
            );
            *held = Some(pb);
        }
        Progress::Epoch {
            lag,
            fold,
            epoch,
            loss,
        } => {
            if let Some(pb) = bar.lock().expect("progress lock").as_ref() {
                pb.inc(1);
                pb.set_message(format!(
                    "lag {lag} fold {} epoch {} loss {loss:.3}",
                    fold + 1,
                    epoch + 1
                ));
            }
        }
        Progress::Resumed { lag, fold, epochs } => {
            if let Some(pb) = bar.lock().expect("progress lock").as_ref() {
                pb.inc(epochs as u64);
                if !quiet {
                    pb.suspend(|| {
                        eprintln!(
                            "lag {lag} fold {}: score model loaded from its checkpoint",
                            fold + 1
                        )
                    });
                }
            }
        }
        Progress::Stage(s) => {
            if let Some(pb) = bar.lock().expect("progress lock").take() {
                pb.finish_and_clear();
            }
            if !quiet {
                eprintln!("{s}…");
            }
        }
    };
    let ctx = FitContext {
        progress: &progress,
        models: store.map(|s| s as &dyn sbtg_core::estimate::ModelStore),
    };
    Ok(sbtg_core::infer(panel, cfg, &ctx)?)
}

/// Checks `--out` and prepares the worker threads before anything is read.
pub(crate) fn set_threads(threads: Option<usize>) -> Result<()> {
    if let Some(t) = threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(t)
            .build_global()
            .map_err(|e| {
                sbtg_core::Error::param("threads", format!("could not start {t} threads: {e}"))
            })?;
    }
    Ok(())
}

pub fn run(mut args: InferArgs, threads: Option<usize>, matches: &ArgMatches) -> Result<()> {
    let mut timer = StageTimer::default();
    let (force, resume, config) = (args.force, args.resume, args.config.clone());
    let config = match (&config, resume, &args.out) {
        (Some(c), _, _) => Some(c.clone()),
        (None, true, Some(out)) => Some(RunFolder { dir: out.clone() }.partial_manifest()),
        (None, true, None) => {
            return Err(sbtg_core::Error::param(
                "out",
                "--resume needs --out FOLDER, the folder of the interrupted run",
            )
            .into())
        }
        _ => None,
    };
    let mut threads = threads;
    if let Some(file) = &config {
        if resume && !file.exists() {
            RunFolder::open(
                args.out.as_deref().unwrap_or(file),
                Overwrite { force, resume },
            )?;
        }
        let settings = crate::config::read(file, "infer")?;
        if threads.is_none() {
            threads = settings.threads;
        }
        args = crate::config::layer(args, matches, file, settings)?;
        (args.force, args.resume, args.config) = (force, resume, Some(file.clone()));
        eprintln!(
            "settings from {} (command-line flags override them)",
            file.display()
        );
    }
    set_threads(threads)?;
    let input = args.input.clone().ok_or_else(|| {
        sbtg_core::Error::param(
            "input",
            "give a recording file or folder, or `input = \"…\"` in the --config file",
        )
    })?;
    let out = args.out.clone().ok_or_else(|| {
        sbtg_core::Error::param(
            "out",
            "give --out FOLDER, or `out = \"…\"` in the --config file",
        )
    })?;
    let folder = RunFolder::open(&out, Overwrite { force, resume })?;
    let recs = args.recording.load(&input)?;
    timer.lap("read");
    args.check_method_flags(matches)?;
    let recs = crate::recording_args::long_enough(recs, args.config(1)?.window_frames())?;
    let mut panel = Panel::build(&recs, &args.panel_config())?;
    crate::recording_args::print_panel_notes(&panel);
    // Whole-worm folds count worms (the cuts of one worm around a stimulus are one).
    let cfg = args.config(panel.worms())?;
    timer.lap("panel");
    eprintln!(
        "read {} from {}; {} neurons kept{}",
        crate::recording_args::count(recs.len(), "recording"),
        input.display(),
        panel.neurons.len(),
        match panel.config.global_factors {
            0 => String::new(),
            k => format!(
                ", each conditioned on {k} global factor{} of its recording",
                if k == 1 { "" } else { "s" }
            ),
        }
    );
    if let Some(spec) = &args.states {
        panel.states = Some(resolve_states(&args, spec, &panel)?);
    }
    let state_files = panel
        .states
        .as_ref()
        .map(|s| sbtg_core::data::FrameStates::input_files(&s.spec, &panel))
        .unwrap_or_default();
    let mut sources: Vec<&std::path::Path> = recs
        .iter()
        .flat_map(|r| r.sources.iter().map(PathBuf::as_path))
        .chain(state_files.iter().map(PathBuf::as_path))
        .collect();
    // The manifest of an interrupted run is deleted when it finishes: not an input.
    sources.extend(config.as_deref().filter(|_| !resume));
    let inputs = digest_files(sources)?;
    let seed = cfg.estimator.sbtg().map(|s| s.seed);
    // run.json records the lags the run tested, defaults resolved.
    let mut settings = serde_json::to_value(&args)?;
    settings["lags"] = serde_json::to_value(&cfg.lags)?;
    let mut manifest = Manifest::start("infer", settings, inputs, seed);
    if resume {
        if let Ok(old) = Manifest::read(&folder.partial_manifest()) {
            if old.inputs != manifest.inputs {
                eprintln!("note: the input files differ from the interrupted run's; score models trained on other data are trained again");
            }
        }
    }
    folder.start(&manifest)?;
    let store = (cfg.method() == Method::Sbtg).then(|| CheckpointDir {
        dir: folder.partial_checkpoints(),
        reuse: resume,
    });
    let mut table = match run_inference(&panel, &cfg, false, store.as_ref()) {
        Ok(table) => table,
        Err(e) => {
            let saved = std::fs::read_dir(folder.partial_checkpoints())
                .map(|d| d.filter_map(|e| e.ok()).count())
                .unwrap_or(0);
            if saved > 0 {
                eprintln!(
                    "note: {saved} score model(s) trained before the failure are kept in {}; once the cause is fixed, `sbtg infer --resume --out {}` continues without training them again (models of changed settings are retrained)",
                    folder.partial_checkpoints().display(),
                    out.display()
                );
            }
            return Err(e);
        }
    };
    timer.lap("inference");
    timer.record("train", table.summary.seconds.train);
    timer.record("edge_tests", table.summary.seconds.edge_tests);
    table.summary.seconds.total = timer.total();
    table.summary.stimulus_window = stimulus_cut(&args);
    let written = sbtg_core::io::write_outputs(&out, &table)?;
    timer.lap("write");
    folder.finish(&mut manifest, written, timer.to_json())?;
    let stale = folder.derived_folders();
    if !stale.is_empty() {
        eprintln!(
            "note: {} in {} were made from the earlier run's edges; run sbtg plot and sbtg compare on this folder again (with --force) to replace them",
            stale.join(", "),
            out.display()
        );
    }
    if let Some(s) = &table.summary.states {
        let counts: Vec<String> = s
            .selected
            .iter()
            .map(|c| format!("{} lag {}: {}", c.state, c.lag, c.selected))
            .collect();
        eprintln!(
            "per-state tests (FDR family of {}) and differential tests (family of {}): selected {}",
            s.family_size,
            s.differential_family_size,
            counts.join("; ")
        );
        for l in &s.heldout_future_loss {
            eprintln!(
                "held-out future-block loss on the {} windows of `{}` (lag {}): all-window model {:.3}{}",
                l.windows,
                l.state,
                l.lag,
                l.pooled,
                l.separate
                    .map_or(String::new(), |v| format!(", the state's own model {v:.3}"))
            );
        }
        for c in &s.shift_null {
            eprintln!(
                "{} lag {}: {} circular shifts of the labels ({} null |t|); the HAC test rejects {:.1}% of the shifted tests at 0.05, the shifted |t| are {:.2}x as wide as its reference; the differential p-values are the shifts' tail fractions",
                c.state,
                c.lag,
                c.shifts,
                c.null_values,
                100.0 * c.hac_level_05,
                c.null_scale
            );
        }
        let own: Vec<(f64, f64)> = s
            .heldout_future_loss
            .iter()
            .filter_map(|l| l.separate.map(|v| (l.pooled, v)))
            .collect();
        if !own.is_empty() && own.iter().all(|(p, v)| p < v) {
            eprintln!("note: the all-window model has the lower held-out loss on every state; its per-state tests (--state-model pooled, the default) are the ones to read");
        }
    }
    for (l, h) in table
        .summary
        .per_lag
        .iter()
        .filter_map(|l| Some((l, l.heldout_losses()?)))
    {
        eprintln!(
            "held-out DSM loss per coordinate of the models of lag {}'s windows (mean of {} folds): score model {:.2}, Gaussian window model {:.2}, standard normal score {:.2}; below the Gaussian in {} of {} folds",
            l.lag, h.folds, h.model, h.gaussian, h.normal, h.below_gaussian, h.folds
        );
    }
    if let Some(m) = table.summary.fdr.direction_family_size {
        eprintln!(
            "direction tests: {} of {m} pairs have a significant direction (their own FDR family)",
            table.selected_count(TestKind::Direction)
        );
    }
    eprintln!(
        "{} selected at {} q ≤ {} (family of {} tests); wrote {}/edges.csv, recording_edges.csv, arrays.npz, summary.json, run.json in {:.1} s",
        selected_counts(&table),
        match cfg.tests.fdr {
            FdrMethod::Bh => "Benjamini-Hochberg",
            FdrMethod::By => "Benjamini-Yekutieli",
        },
        cfg.tests.alpha,
        table.family_size(),
        out.display(),
        timer.total()
    );
    Ok(())
}

/// The per-frame states of `--states`, with a line per state on stderr.
fn resolve_states(
    args: &InferArgs,
    spec: &str,
    panel: &Panel,
) -> Result<sbtg_core::data::FrameStates> {
    if args.recording.stimulus.is_some() {
        return Err(sbtg_core::Error::param(
            "states",
            "--states needs whole recordings (frame k of the traces is row k of the behaviour file); leave out --stimulus, or use --states stimulus:NAME to split by the stimulus instead",
        )
        .into());
    }
    let spec: sbtg_core::data::StateSpec = spec.parse()?;
    let mut states = sbtg_core::data::FrameStates::resolve(
        &spec,
        panel,
        args.state_names.as_deref(),
        args.keep_straddling,
    )?;
    states.model = args.state_model;
    states.shift_null = sbtg_core::data::state::ShiftNull {
        shifts: args.state_shifts.unwrap_or(match args.state_model {
            sbtg_core::data::state::StateModel::Pooled => DEFAULT_STATE_SHIFTS,
            sbtg_core::data::state::StateModel::Separate => 0,
        }),
        seed: args.seed,
    };
    for (k, name) in states.names.iter().enumerate() {
        let f = states.frames(panel);
        let mine = f.iter().filter(|s| s.state == *name);
        let (frames, bouts) = mine.fold((0, 0), |(a, b), s| (a + s.frames, b + s.bouts));
        let total: usize = panel.recordings.iter().map(|r| r.x.nrows()).sum();
        eprintln!(
            "state {} `{name}`: {frames} of {total} frames ({:.0}%) in {bouts} bouts",
            k + 1,
            100.0 * frames as f64 / total.max(1) as f64
        );
    }
    Ok(states)
}

/// `12 mean-test edges` and, when the volatility test ran, `and 3 volatility edges`.
pub(crate) fn selected_counts(table: &EdgeTable) -> String {
    let mean = crate::recording_args::count(table.selected_count(TestKind::Mean), "mean-test edge");
    if table.rows.iter().any(|r| r.test == TestKind::Volatility) {
        format!(
            "{mean} and {}",
            crate::recording_args::count(
                table.selected_count(TestKind::Volatility),
                "volatility edge"
            )
        )
    } else {
        mean
    }
}

/// The stimulus cut of `--stimulus` and `--window`, for the summary.
pub(crate) fn stimulus_cut(args: &InferArgs) -> Option<StimulusCut> {
    let r = &args.recording;
    let (s, w): (&String, StimulusWindow) = (r.stimulus.as_ref()?, r.window?);
    Some(StimulusCut {
        stimulus: s.clone(),
        window: w.to_string(),
        seconds: r.window_seconds,
        rule: "frames k with a <= k*dt < b; during = [onset, offset), pre = [onset - d, onset), post = [offset, offset + d), d = --window-seconds or offset - onset; each cut is its own recording".into(),
    })
}
