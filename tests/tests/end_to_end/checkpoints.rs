//! Saved score models: a resumed run equals an uninterrupted one, and saved models test
//! new recordings of the same network.

use sbtg_core::data::simulate::{tanh_network, NetworkSpec};
use sbtg_core::data::{Panel, PanelConfig};
use sbtg_core::estimate::{FitContext, FoldModel, InferConfig, Progress};
use sbtg_core::io::checkpoint::{self, CheckpointDir};
use sbtg_core::results::score_with_models;
use sbtg_core::{infer, EdgeTable};
use sbtg_tests::recovery;

fn tmp(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("sbtg-ck-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// Four recordings of one tanh network (n = 10): the first two train, the last two
/// are new data.
fn data() -> (sbtg_core::data::simulate::Simulation, InferConfig) {
    let spec = NetworkSpec {
        neurons: 10,
        density: 0.2,
        frames: 1500,
        recordings: 4,
        ..NetworkSpec::default()
    };
    let mut cfg = sbtg_tests::config_with_epochs(20);
    cfg.lags = vec![1, 2];
    // One past frame: lags 1 and 2 train models of their own (two window groups).
    cfg.sbtg_mut().unwrap().past = 1;
    (tanh_network(&spec).unwrap(), cfg)
}

/// Runs with `store` and counts the fold models loaded instead of trained.
fn infer_counting_loads(
    panel: &Panel,
    cfg: &InferConfig,
    store: &CheckpointDir,
) -> (EdgeTable, usize) {
    let count = std::sync::atomic::AtomicUsize::new(0);
    let progress = |p| {
        if let Progress::Resumed { .. } = p {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    };
    let ctx = FitContext {
        progress: &progress,
        models: Some(store),
    };
    let inf = infer(panel, cfg, &ctx).unwrap();
    (inf, count.into_inner())
}

/// Runs with fold models saved to (and, with `reuse`, loaded from) `dir`.
fn infer_with_store(
    panel: &Panel,
    cfg: &InferConfig,
    dir: &std::path::Path,
    reuse: bool,
) -> EdgeTable {
    let store = CheckpointDir {
        dir: dir.to_path_buf(),
        reuse,
    };
    let ctx = FitContext {
        models: Some(&store),
        ..FitContext::quiet()
    };
    infer(panel, cfg, &ctx).unwrap()
}

/// Deleting some checkpoints and reusing the rest gives bit-identical edges to a run
/// that trained everything, and to a run without checkpoints at all.
#[test]
fn partial_checkpoints_resume_to_the_same_result() {
    let (sim, cfg) = data();
    let panel = Panel::build(&sim.recordings[..2], &PanelConfig::default()).unwrap();
    let dir = tmp("resume");
    let full = infer_with_store(&panel, &cfg, &dir, false);
    let plain = infer(&panel, &cfg, &FitContext::quiet()).unwrap();
    assert_eq!(full.rows, plain.rows);
    // Interrupted after lag 1 fold 1: only that model survives.
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 2 * 5, "2 lags × 5 block folds: {files:?}");
    for f in &files {
        if f.file_name().unwrap() != "lag1-fold1.safetensors" {
            std::fs::remove_file(f).unwrap();
        }
    }
    let store = CheckpointDir {
        dir: dir.clone(),
        reuse: true,
    };
    let (resumed, loaded) = infer_counting_loads(&panel, &cfg, &store);
    assert_eq!(loaded, 1);
    assert_eq!(resumed.rows, full.rows);
    let folds = &resumed.summary.per_lag[0].folds;
    assert!(folds[0].loaded_from_checkpoint && !folds[1].loaded_from_checkpoint);
    // A checkpoint of another configuration is not reused (its fingerprint differs).
    let mut other = cfg.clone();
    other.sbtg_mut().unwrap().model.sigma = 0.2;
    assert_eq!(infer_counting_loads(&panel, &other, &store).1, 0);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Models trained on two recordings test two new recordings of the same network: the
/// known graph is ranked at AUROC ≥ 0.9 and every neuron keeps its identity (a
/// neuron missing from the new data is untested, not shifted onto another column).
#[test]
fn saved_models_test_new_recordings() {
    let (sim, mut cfg) = data();
    cfg.lags = vec![1];
    let panel = Panel::build(&sim.recordings[..2], &PanelConfig::default()).unwrap();
    let dir = tmp("score");
    infer_with_store(&panel, &cfg, &dir, false);
    let models: Vec<FoldModel> = (0..2)
        .map(|k| FoldModel::load(&checkpoint::path(&dir, 1, k)).unwrap())
        .collect();
    assert_eq!(models[0].neurons, panel.neurons);
    let new = Panel::on_neurons(&sim.recordings[2..], &panel.neurons, false, 0).unwrap();
    let scored = score_with_models(
        &new,
        &cfg,
        std::slice::from_ref(&models),
        &FitContext::quiet(),
    )
    .unwrap();
    let r = recovery(&scored, &sim.coupling);
    eprintln!(
        "new recordings: AUROC {:.3}, selected true {} false {}",
        r.auroc, r.true_selected, r.false_selected
    );
    assert!(r.auroc >= 0.9, "AUROC {}", r.auroc);
    assert!(r.true_selected > 0);
    // Drop the third neuron from the new recordings.
    let mut cut: Vec<_> = sim.recordings[2..].to_vec();
    for rec in &mut cut {
        rec.values.remove_index(ndarray::Axis(1), 2);
        rec.neurons.remove(2);
    }
    let partial = Panel::on_neurons(&cut, &panel.neurons, false, 0).unwrap();
    assert_eq!(partial.neurons, panel.neurons);
    let scored = score_with_models(&partial, &cfg, &[models], &FitContext::quiet()).unwrap();
    let third = &panel.neurons[2];
    for e in scored
        .rows
        .iter()
        .filter(|e| &e.source == third || &e.target == third)
    {
        assert!(e.p.is_nan() && !e.selected, "{e:?}");
    }
    assert!(scored.rows.iter().any(|e| e.selected));
    std::fs::remove_dir_all(&dir).unwrap();
}
