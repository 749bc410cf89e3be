//! `sbtg score`: edge tests of new recordings with saved score models.

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;
use sbtg_core::checkpoint::{self, Checkpoint};
use sbtg_core::infer::{score_with_models, Method, TestKind};
use sbtg_core::manifest::{digest_files, Manifest, StageTimer};
use sbtg_core::panel::Panel;
use sbtg_core::run_folder::{Overwrite, RunFolder};
use sbtg_core::Error;
use serde::Serialize;
use serde_json::json;

use crate::infer_cmd::InferArgs;

#[derive(Args, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct ScoreArgs {
    /// New recordings (any format `sbtg infer` reads).
    input: PathBuf,
    #[command(flatten)]
    #[serde(flatten)]
    recording: crate::recording_args::RecordingArgs,
    /// Result folder of a finished SBTG `sbtg infer` run (holds run.json and
    /// checkpoints/): its score models, lags, tests and FDR settings are used.
    #[arg(long)]
    model: PathBuf,
    /// Output folder.
    #[arg(long, short)]
    out: PathBuf,
    /// FDR level (default: the model run's).
    #[arg(long)]
    alpha: Option<f64>,
    /// Replace the results already in --out (kept until the new run has succeeded).
    #[arg(long)]
    #[serde(skip)]
    force: bool,
}

/// The fold models of every lag of the run in `dir`.
fn read_models(dir: &Path, lags: &[usize]) -> Result<Vec<Vec<Checkpoint>>> {
    let ck_dir = dir.join("checkpoints");
    lags.iter()
        .map(|&lag| {
            let mut models = Vec::new();
            while checkpoint::path(&ck_dir, lag, models.len()).exists() {
                models.push(Checkpoint::load(&checkpoint::path(&ck_dir, lag, models.len()))?);
            }
            if models.is_empty() {
                return Err(Error::format(
                    &ck_dir,
                    checkpoint::file_name(lag, 0),
                    "missing: the run saved no score model for this lag; rerun `sbtg infer` with this sbtg version",
                )
                .into());
            }
            Ok(models)
        })
        .collect()
}

pub fn run(args: ScoreArgs) -> Result<()> {
    let mut timer = StageTimer::default();
    let folder = RunFolder::open(&args.out, Overwrite::new_run(args.force))?;
    let manifest_path = args.model.join("run.json");
    if !manifest_path.exists() {
        return Err(Error::format(
            &manifest_path,
            "--model",
            "missing: pass the output folder of a finished `sbtg infer` run",
        )
        .into());
    }
    let trained = Manifest::read(&manifest_path)?;
    let infer_args: InferArgs = serde_json::from_value(trained.config.clone()).map_err(|e| {
        Error::format(
            &manifest_path,
            "config",
            format!("{e}; the run was made by another sbtg version"),
        )
    })?;
    let mut cfg = infer_args.config(1)?;
    if cfg.method != Method::Sbtg {
        return Err(Error::format(
            &manifest_path,
            "method",
            format!(
                "the run used `{}`, which has no score models; score with an SBTG run",
                cfg.method.name()
            ),
        )
        .into());
    }
    if let Some(a) = args.alpha {
        cfg.alpha = a;
    }
    cfg.validate()?;
    let models = read_models(&args.model, &cfg.lags)?;
    let neurons = models[0][0].neurons.clone();
    let recs = args.recording.load(&args.input)?;
    timer.lap("read");
    let panel = Panel::on_neurons(&recs, &neurons, infer_args.panel_config().keep_uncertain)?;
    let missing: Vec<&str> = neurons
        .iter()
        .enumerate()
        .filter(|&(k, _)| {
            panel
                .recordings
                .iter()
                .all(|r| r.observed.column(k).sum() == 0.0)
        })
        .map(|(_, n)| n.as_str())
        .collect();
    eprintln!(
        "scoring {} recordings from {} with the {} score models of {} ({} neurons{})",
        recs.len(),
        args.input.display(),
        models.iter().map(Vec::len).sum::<usize>(),
        args.model.display(),
        neurons.len(),
        if missing.is_empty() {
            String::new()
        } else {
            format!(
                "; not in the new recordings, left untested: {}",
                missing.join(", ")
            )
        }
    );
    let mut sources: Vec<&Path> = recs
        .iter()
        .flat_map(|r| r.sources.iter().map(PathBuf::as_path))
        .collect();
    sources.push(&manifest_path);
    let ck_dir = args.model.join("checkpoints");
    let ck_paths: Vec<PathBuf> = cfg
        .lags
        .iter()
        .zip(&models)
        .flat_map(|(&lag, m)| {
            (0..m.len())
                .map(|k| checkpoint::path(&ck_dir, lag, k))
                .collect::<Vec<_>>()
        })
        .collect();
    sources.extend(ck_paths.iter().map(PathBuf::as_path));
    let mut manifest = Manifest::start(
        "score",
        serde_json::to_value(&args)?,
        digest_files(sources)?,
        Some(cfg.seed),
    );
    folder.start(&manifest)?;
    let inf = score_with_models(&panel, &cfg, &models, &|_| {})?;
    timer.lap("edge_tests");
    let mut summary = crate::infer_cmd::summary(&recs, &panel, &cfg, &inf, timer.total());
    summary["scored_with"] = json!({
        "model_run": args.model,
        "model_git_commit": trained.git_commit,
        "rule": "every window is held out for every saved fold model; the tested series is the average of the K fold models' series",
    });
    let written = sbtg_core::output::write_outputs(&args.out, &inf, &summary)?;
    timer.lap("write");
    folder.finish(&mut manifest, written, timer.to_json())?;
    eprintln!(
        "{} mean-test and {} volatility edges selected at q ≤ {} (family of {}); wrote {}",
        inf.selected_count(TestKind::Mean),
        inf.selected_count(TestKind::Volatility),
        cfg.alpha,
        inf.family_size,
        args.out.display()
    );
    Ok(())
}
