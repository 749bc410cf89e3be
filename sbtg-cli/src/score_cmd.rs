//! `sbtg score`: edge tests of new recordings with saved score models.

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;
use sbtg_core::data::Panel;
use sbtg_core::estimate::FitContext;
use sbtg_core::io::checkpoint::{self, read_models};
use sbtg_core::io::manifest::{digest_files, Manifest, StageTimer};
use sbtg_core::io::run_folder::{Overwrite, RunFolder};
use sbtg_core::results::summary::{ScoredWith, Summary};
use sbtg_core::Error;
use serde::Serialize;

#[derive(Args, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct ScoreArgs {
    /// New recordings (any format `sbtg infer` reads).
    input: PathBuf,
    #[command(flatten)]
    #[serde(flatten)]
    recording: crate::recording_args::RecordingArgs,
    /// Result folder of a finished SBTG `sbtg infer` run (holds summary.json, run.json
    /// and checkpoints/): its score models, lags, tests and FDR settings are used.
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

/// The summary of the finished run in `dir`.
fn read_summary(dir: &Path) -> Result<Summary> {
    let path = dir.join("summary.json");
    if !dir.join("run.json").exists() || !path.exists() {
        return Err(Error::format(
            dir.join("run.json"),
            "--model",
            "missing: pass the output folder of a finished `sbtg infer` run",
        )
        .into());
    }
    let bytes = std::fs::read(&path).map_err(|e| Error::read(&path, e))?;
    Ok(serde_json::from_slice(&bytes).map_err(|e| {
        Error::format(
            &path,
            "summary",
            format!("{e}; the run was made by another sbtg version: rerun `sbtg infer`"),
        )
    })?)
}

pub fn run(args: ScoreArgs) -> Result<()> {
    let mut timer = StageTimer::default();
    let folder = RunFolder::open(&args.out, Overwrite::new_run(args.force))?;
    let trained = read_summary(&args.model)?;
    let manifest_path = args.model.join("run.json");
    let run_manifest = Manifest::read(&manifest_path)?;
    let mut cfg = trained.config.clone();
    if cfg.estimator.sbtg().is_none() {
        return Err(Error::format(
            args.model.join("summary.json"),
            "method",
            format!(
                "the run used `{}`, which has no score models; score with an SBTG run",
                cfg.method()
            ),
        )
        .into());
    }
    if let Some(a) = args.alpha {
        cfg.tests.alpha = a;
    }
    cfg.validate()?;
    let ck_dir = args.model.join("checkpoints");
    let sbtg = cfg.estimator.sbtg().expect("checked above: an SBTG run");
    let spans: Vec<usize> = cfg.lags.iter().map(|&l| sbtg.span_of(l)).collect();
    let models = read_models(&ck_dir, &spans)?;
    let neurons = models[0][0].neurons.clone();
    let recs = args.recording.load(&args.input)?;
    let recs = crate::recording_args::long_enough(recs, cfg.window_frames())?;
    timer.lap("read");
    let panel = Panel::on_neurons(
        &recs,
        &neurons,
        trained.panel.keep_uncertain,
        trained.panel.global_factors,
    )?;
    crate::recording_args::print_panel_notes(&panel);
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
        "scoring {} from {} with the {} score models of {} ({} neurons{})",
        crate::recording_args::count(recs.len(), "recording"),
        args.input.display(),
        // Lags that share a window span share its models: count each span once.
        {
            let mut seen = Vec::new();
            spans
                .iter()
                .zip(&models)
                .filter(|(s, _)| {
                    let new = !seen.contains(*s);
                    seen.push(**s);
                    new
                })
                .map(|(_, m)| m.len())
                .sum::<usize>()
        },
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
    let summary_path = args.model.join("summary.json");
    sources.push(&manifest_path);
    sources.push(&summary_path);
    let mut ck_paths: Vec<PathBuf> = spans
        .iter()
        .zip(&models)
        .flat_map(|(&span, m)| {
            (0..m.len())
                .map(|k| checkpoint::path(&ck_dir, span, k))
                .collect::<Vec<_>>()
        })
        .collect();
    // Lags sharing one model's windows share its files.
    ck_paths.sort();
    ck_paths.dedup();
    sources.extend(ck_paths.iter().map(PathBuf::as_path));
    let seed = cfg.estimator.sbtg().map(|s| s.seed);
    let mut manifest = Manifest::start(
        "score",
        serde_json::to_value(&args)?,
        digest_files(sources)?,
        seed,
    );
    folder.start(&manifest)?;
    let mut table =
        sbtg_core::results::score_with_models(&panel, &cfg, &models, &FitContext::quiet())?;
    timer.lap("edge_tests");
    table.summary.seconds.total = timer.total();
    table.summary.scored_with = Some(ScoredWith {
        model_run: args.model.clone(),
        model_git_commit: Some(run_manifest.git_commit.clone()),
        rule: "every window is held out for every saved fold model; the tested series is the average of the K fold models' series".into(),
    });
    let written = sbtg_core::io::write_outputs(&args.out, &table)?;
    timer.lap("write");
    folder.finish(&mut manifest, written, timer.to_json())?;
    eprintln!(
        "{} selected at q ≤ {} (family of {} tests run); wrote {}",
        crate::infer_cmd::selected_counts(&table),
        cfg.tests.alpha,
        table.family_size(),
        args.out.display()
    );
    Ok(())
}
