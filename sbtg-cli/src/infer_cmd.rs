//! `sbtg infer`.

use std::path::PathBuf;
use std::sync::Mutex;

use anyhow::Result;
use clap::{ArgMatches, Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use sbtg_core::baseline::BaselineConfig;
use sbtg_core::edge_test::{Bandwidth, EdgeStatistic, FdrMethod};
use sbtg_core::fold::FoldScheme;
use sbtg_core::infer::{
    infer_with_checkpoints, CheckpointStore, InferConfig, Inference, LagWindows, Method, Progress,
    TestKind,
};
use sbtg_core::manifest::{digest_files, Manifest, StageTimer};
use sbtg_core::panel::{Panel, PanelConfig};
use sbtg_core::recording::Recording;
use sbtg_core::run_folder::{Overwrite, RunFolder};
use sbtg_core::score::{Coupling, ScoreModelConfig};
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Clone, Copy, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum CouplingArg {
    Linear,
    FeatureBilinear,
    RegimeGated,
}

#[derive(Clone, Copy, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum MethodArg {
    /// Score-Block Time Graphs.
    Sbtg,
    /// Lagged cross-correlation of the z-scored traces, same HAC test and FDR.
    LaggedCorrelation,
    /// Partial correlation of the lagged design (ridge precision matrix, Fisher z).
    PartialCorrelation,
    /// Conditional Granger: VAR(p) coefficients with Newey–West errors.
    Granger,
    /// Bivariate Granger F-tests (conditions on the target's own past only).
    PairwiseGranger,
    /// PCMCI with partial-correlation tests (tigramite's ParCorr).
    Pcmci,
}

#[derive(Clone, Copy, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum LagWindowsArg {
    Minimal,
    Pairwise,
}

#[derive(Clone, Copy, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum FoldBy {
    Recordings,
    Blocks,
}

#[derive(Clone, Copy, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum StatisticArg {
    Orthogonal,
    Product,
}

#[derive(Clone, Copy, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum FdrArg {
    Bh,
    By,
}

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
    method: MethodArg,
    /// Lags to test, in frames (comma-separated), all in one FDR family.
    #[arg(long, value_delimiter = ',', default_value = "1")]
    lags: Vec<usize>,
    /// Windows of lags above 1: `minimal` [x_t, …, x_{t+r}] (direct effects) or
    /// `pairwise` [x_t, x_{t+r}] (plain lagged pairs, for comparison).
    #[arg(long, value_enum, default_value = "minimal")]
    lag_windows: LagWindowsArg,
    /// Coupling term of the energy.
    #[arg(long, value_enum, default_value = "linear")]
    coupling: CouplingArg,
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
    #[arg(long, default_value_t = 1e-3)]
    learning_rate: f64,
    #[arg(long, default_value_t = 128)]
    batch_size: usize,
    /// Hidden width of every MLP.
    #[arg(long, default_value_t = 64)]
    hidden: usize,
    /// L1 penalty on the coupling matrices.
    #[arg(long, default_value_t = 0.0)]
    l1: f64,
    /// Ridge λ of the regression baselines (`λ·N` added to each Gram matrix of N
    /// standardised windows).
    #[arg(long, default_value_t = 1e-3)]
    ridge: f64,
    /// PCMCI: significance level for keeping a condition in the PC1 step.
    #[arg(long, default_value_t = 0.2)]
    pc_alpha: f64,
    /// Number of cross-fitting folds (default: min(recordings, 5), or 5 blocks for one recording).
    #[arg(long)]
    folds: Option<usize>,
    /// Hold out whole recordings or contiguous blocks of every recording.
    #[arg(long, value_enum)]
    fold_by: Option<FoldBy>,
    /// Tested statistic: `orthogonal` (2Ĥ − s_F s_P, default) or `product` (s_F s_P).
    #[arg(long, value_enum, default_value = "orthogonal")]
    statistic: StatisticArg,
    /// Skip the volatility-transfer test.
    #[arg(long)]
    no_volatility: bool,
    /// FDR procedure over the family of all tests.
    #[arg(long, value_enum, default_value = "bh")]
    fdr: FdrArg,
    /// FDR level.
    #[arg(long, default_value_t = 0.1)]
    alpha: f64,
    /// HAC bandwidth: a number, `auto` (Newey–West 1994 plug-in) or `andrews` (Andrews 1991 AR(1) plug-in).
    #[arg(long, default_value = "auto")]
    bandwidth: String,
    /// Random seed (training order, noise and initial weights).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Keep neurons present in at least this many recordings (default: a majority).
    #[arg(long)]
    min_recordings: Option<usize>,
    /// Keep uncertain labels (ending in `?`), with the `?` stripped.
    #[arg(long)]
    keep_uncertain: bool,
    /// Analyse only these neurons (comma-separated).
    #[arg(long, value_delimiter = ',')]
    neurons: Option<Vec<String>>,
}

impl InferArgs {
    pub(crate) fn config(&self, n_recordings: usize) -> Result<InferConfig> {
        let coupling = match self.coupling {
            CouplingArg::Linear => Coupling::Linear,
            CouplingArg::FeatureBilinear => Coupling::FeatureBilinear { rank: self.rank },
            CouplingArg::RegimeGated => Coupling::RegimeGated {
                regimes: self.regimes,
            },
        };
        let bandwidth = if self.bandwidth == "auto" {
            Bandwidth::NeweyWest
        } else if self.bandwidth == "andrews" {
            Bandwidth::Andrews
        } else {
            let b: f64 = self
                .bandwidth
                .parse()
                .map_err(|_| sbtg_core::Error::Param {
                    name: "bandwidth",
                    message: format!("`{}` is not `auto`, `andrews` or a number", self.bandwidth),
                })?;
            Bandwidth::Fixed(b)
        };
        let folds = match (self.fold_by, self.folds) {
            (None, None) => None,
            (by, k) => {
                let default = FoldScheme::default_for(n_recordings);
                let by = by.unwrap_or(match default {
                    FoldScheme::Recordings(_) => FoldBy::Recordings,
                    FoldScheme::Blocks(_) => FoldBy::Blocks,
                });
                Some(match by {
                    FoldBy::Recordings => FoldScheme::Recordings(k.unwrap_or(n_recordings.min(5))),
                    FoldBy::Blocks => FoldScheme::Blocks(k.unwrap_or(5)),
                })
            }
        };
        let cfg = InferConfig {
            method: match self.method {
                MethodArg::Sbtg => Method::Sbtg,
                MethodArg::LaggedCorrelation => Method::LaggedCorrelation,
                MethodArg::PartialCorrelation => Method::PartialCorrelation,
                MethodArg::Granger => Method::Granger,
                MethodArg::PairwiseGranger => Method::PairwiseGranger,
                MethodArg::Pcmci => Method::Pcmci,
            },
            baseline: BaselineConfig {
                ridge: self.ridge,
                pc_alpha: self.pc_alpha,
            },
            model: ScoreModelConfig {
                coupling,
                hidden: self.hidden,
                depth: 2,
                sigma: self.sigma,
                epochs: self.epochs,
                batch_size: self.batch_size,
                learning_rate: self.learning_rate,
                l1: self.l1,
            },
            folds,
            statistic: match self.statistic {
                StatisticArg::Orthogonal => EdgeStatistic::Orthogonal,
                StatisticArg::Product => EdgeStatistic::Product,
            },
            volatility: !self.no_volatility,
            fdr: match self.fdr {
                FdrArg::Bh => FdrMethod::Bh,
                FdrArg::By => FdrMethod::By,
            },
            alpha: self.alpha,
            bandwidth,
            seed: self.seed,
            lags: self.lags.clone(),
            lag_windows: match self.lag_windows {
                LagWindowsArg::Minimal => LagWindows::Minimal,
                LagWindowsArg::Pairwise => LagWindows::Pairwise,
            },
        };
        cfg.validate()?;
        Ok(cfg)
    }

    pub(crate) fn panel_config(&self) -> PanelConfig {
        PanelConfig {
            min_recordings: self.min_recordings,
            keep_uncertain: self.keep_uncertain,
            neurons: self.neurons.clone(),
        }
    }
}

/// Runs the estimator with a progress bar on stderr.
pub fn run_inference(
    recs: &[Recording],
    panel: &Panel,
    cfg: &InferConfig,
    quiet: bool,
    store: Option<&CheckpointStore>,
) -> Result<Inference> {
    let bar = Mutex::new(None::<ProgressBar>);
    let progress = |p: Progress| match p {
        Progress::Training {
            lag,
            folds,
            total_epochs,
        } => {
            if !quiet {
                eprintln!(
                    "lag {lag}: training {folds} score models ({} coupling, {} epochs each) on {} recordings, {} neurons",
                    cfg.model.coupling.name(),
                    cfg.model.epochs,
                    recs.len(),
                    panel.neurons.len()
                );
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
            *bar.lock().expect("progress lock") = Some(pb);
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
    Ok(infer_with_checkpoints(panel, cfg, &progress, store)?)
}

/// `summary.json`: what was analysed, how, and what was found.
pub fn summary(
    recs: &[Recording],
    panel: &Panel,
    cfg: &InferConfig,
    inf: &Inference,
    seconds: f64,
) -> serde_json::Value {
    json!({
        "sbtg_version": env!("CARGO_PKG_VERSION"),
        "method": cfg.method.describe(),
        "method_id": cfg.method,
        "lags": cfg.lags,
        "lag_windows": inf.lag_windows,
        "window": match (cfg.method, cfg.lag_windows) {
            (Method::Sbtg, LagWindows::Minimal) => "lag r: z_t = [x_t, x_{t+1}, ..., x_{t+r}] inside each recording; the test of block r against block 0 conditions on the blocks in between; coordinates standardised with training-fold statistics",
            (Method::Sbtg | Method::LaggedCorrelation, _) => "lag r: z_t = [x_t, x_{t+r}] inside each recording (plain lagged pairs)",
            (Method::Pcmci, _) => "one window [x_t, ..., x_{t+2p}] inside each recording for every lag (p = the largest lag), so the shifted parents of the MCI test exist",
            _ => "one window [x_t, ..., x_{t+p}] inside each recording for every lag (p = the largest lag); a target's regression uses the windows where it is observed, missing regressors enter as 0",
        },
        "sign_convention": format!("{}. Matrices are [target, source].", cfg.method.effect_meaning()),
        "baseline": (!matches!(cfg.method, Method::Sbtg | Method::LaggedCorrelation)).then_some(&cfg.baseline),
        "columns": {
            "source": "presynaptic / causing neuron (block x_t)",
            "target": "postsynaptic / affected neuron (block x_{t+lag})",
            "lag": "lag in frames",
            "mu": "mean of the tested series (standardised units; held-out windows for SBTG)",
            "effect": "SBTG mean test: -mu (Jacobian sign); volatility test and baselines: mu, the method's estimate",
            "t": "test statistic: HAC t of mu (SBTG, lagged correlation, granger), Fisher z (partial-correlation), t (pairwise-granger, pcmci)",
            "p": "two-sided p-value (Student t, survival function)",
            "q": "FDR-adjusted p-value over the declared family",
            "test": "mean (Jacobian) or volatility (volatility transfer)",
            "selected": "q <= alpha",
            "variance_floored": "the HAC long-run variance was non-positive or below 1e-8 of the lag-0 variance and was floored; t and p are unreliable"
        },
        "neurons": panel.neurons,
        "recordings": recs.iter().map(|r| json!({
            "name": r.name, "file": r.path, "frames": r.frames(), "dt_s": r.dt,
            "stimuli": r.stimuli.iter().map(|s| json!({"name": s.name, "onset_s": s.onset_s, "offset_s": s.offset_s})).collect::<Vec<_>>(),
            "reader_notes": r.notes,
        })).collect::<Vec<_>>(),
        "model": (cfg.method == Method::Sbtg).then_some(&cfg.model),
        "statistic": (cfg.method == Method::Sbtg).then_some(cfg.statistic),
        "seed": cfg.seed,
        "fold_scheme": inf.fold_scheme,
        // Only the methods whose tests are HAC t-tests.
        "hac": matches!(cfg.method, Method::Sbtg | Method::LaggedCorrelation | Method::Granger).then(|| json!({
            "kernel": "Bartlett (Newey-West)",
            "bandwidth_rule": match cfg.bandwidth { Bandwidth::NeweyWest => "Newey-West (1994) nonparametric plug-in pooled over the family of each lag and test".to_string(), Bandwidth::Andrews => "Andrews (1991) AR(1) plug-in pooled over the family of each lag and test".to_string(), Bandwidth::Fixed(b) => format!("fixed {b}") },
            "small_sample_correction": "variance divided by N-1; Student t with N-1 degrees of freedom",
        })),
        "per_lag": inf.lags.iter().map(|l| {
            let selected = |k: TestKind| inf.edges.iter().filter(|e| e.lag == l.lag && e.test == k && e.selected).count();
            json!({
                "lag": l.lag,
                "windows": l.windows,
                "folds": l.folds.iter().map(|f| json!({
                    "test_recordings": f.test_recordings,
                    "train_windows": f.train_windows,
                    "test_windows": f.test_windows,
                    "final_train_loss": f.epoch_loss.last(),
                    "heldout_loss": f.heldout_loss,
                    "loaded_from_checkpoint": f.resumed,
                })).collect::<Vec<_>>(),
                "bandwidth_mean_test": l.mean_test.bandwidth,
                "bandwidth_volatility_test": l.volatility_test.as_ref().map(|v| v.bandwidth),
                "floored_variances": l.mean_test.floored.iter().filter(|&&f| f).count()
                    + l.volatility_test.as_ref().map_or(0, |v| v.floored.iter().filter(|&&f| f).count()),
                "edges_selected": { "mean": selected(TestKind::Mean), "volatility": selected(TestKind::Volatility) },
                "seconds": { "train": l.train_seconds, "edge_tests": l.test_seconds },
            })
        }).collect::<Vec<_>>(),
        "fdr": {
            "method": cfg.fdr,
            "alpha": cfg.alpha,
            "family": format!(
                "all ordered pairs source != target at every lag ({}), {}",
                cfg.lags.iter().map(|l| l.to_string()).collect::<Vec<_>>().join(", "),
                if cfg.volatility && cfg.method == Method::Sbtg { "mean and volatility tests together" } else { "mean test" }
            ),
            "family_size": inf.family_size,
        },
        "edges_selected": {
            "mean": inf.selected_count(TestKind::Mean),
            "volatility": inf.selected_count(TestKind::Volatility),
        },
        "seconds": { "train": inf.train_seconds(), "edge_tests": inf.test_seconds(), "total": seconds },
    })
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
    let cfg = args.config(recs.len())?;
    let panel = Panel::build(&recs, &args.panel_config())?;
    timer.lap("panel");
    eprintln!(
        "read {} recordings from {}; {} neurons kept",
        recs.len(),
        input.display(),
        panel.neurons.len()
    );
    let mut sources: Vec<&std::path::Path> = recs
        .iter()
        .flat_map(|r| r.sources.iter().map(PathBuf::as_path))
        .collect();
    // The manifest of an interrupted run is deleted when it finishes: not an input.
    sources.extend(config.as_deref().filter(|_| !resume));
    let inputs = digest_files(sources)?;
    let mut manifest = Manifest::start(
        "infer",
        serde_json::to_value(&args)?,
        inputs,
        Some(cfg.seed),
    );
    if resume {
        if let Ok(old) = Manifest::read(&folder.partial_manifest()) {
            if old.inputs != manifest.inputs {
                eprintln!("note: the input files differ from the interrupted run's; score models trained on other data are trained again");
            }
        }
    }
    folder.start(&manifest)?;
    let store = (cfg.method == Method::Sbtg).then(|| CheckpointStore {
        dir: folder.partial_checkpoints(),
        reuse: resume,
    });
    let inf = match run_inference(&recs, &panel, &cfg, false, store.as_ref()) {
        Ok(inf) => inf,
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
    timer.record("train", inf.train_seconds());
    timer.record("edge_tests", inf.test_seconds());
    let seconds = timer.total();
    let mut summary = summary(&recs, &panel, &cfg, &inf, seconds);
    if let (Some(s), Some(w)) = (&args.recording.stimulus, args.recording.window) {
        summary["stimulus_window"] = json!({
            "stimulus": s,
            "window": w.to_string(),
            "seconds": args.recording.window_seconds,
            "rule": "frames k with a <= k*dt < b; during = [onset, offset), pre = [onset - d, onset), post = [offset, offset + d), d = --window-seconds or offset - onset; each cut is its own recording",
        });
    }
    let written = sbtg_core::output::write_outputs(&out, &inf, &summary)?;
    timer.lap("write");
    folder.finish(&mut manifest, written, timer.to_json())?;
    eprintln!(
        "{} mean-test and {} volatility edges selected at {} q ≤ {} (family of {}); wrote {}/edges.csv, recording_edges.csv, summary.json, run.json in {:.1} s",
        inf.selected_count(TestKind::Mean),
        inf.selected_count(TestKind::Volatility),
        match cfg.fdr {
            FdrMethod::Bh => "Benjamini-Hochberg",
            FdrMethod::By => "Benjamini-Yekutieli",
        },
        cfg.alpha,
        inf.family_size,
        out.display(),
        timer.total()
    );
    Ok(())
}
