//! Width and L1 chosen by held-out loss inside each fold (`--grid-hidden`, `--grid-l1`):
//! every candidate's validation loss is recorded, the chosen one is their minimum, and the
//! fold's model is the chosen configuration trained as usual.

use sbtg_core::estimate::{FitContext, InferConfig};
use sbtg_core::infer;
use sbtg_core::model::ModelGrid;

#[test]
fn the_chosen_candidate_minimises_the_validation_loss_and_is_the_folds_model() {
    let panel = sbtg_tests::small_tanh_panel(3);
    let mut cfg = sbtg_tests::config_with_epochs(8);
    cfg.sbtg_mut().unwrap().model.grid = ModelGrid {
        hidden: vec![4, 16],
        l1: vec![0.0, 0.05],
    };
    let run = infer(&panel, &cfg, &FitContext::quiet()).unwrap();
    let folds = &run.summary.per_lag[0].folds;
    assert_eq!(folds.len(), 5);
    let mut chosen = Vec::new();
    for (k, f) in folds.iter().enumerate() {
        let grid: Vec<(usize, f64)> = f.model_grid.iter().map(|g| (g.hidden, g.l1)).collect();
        assert_eq!(
            grid,
            [(4, 0.0), (4, 0.05), (16, 0.0), (16, 0.05)],
            "fold {k}"
        );
        let min = f
            .model_grid
            .iter()
            .map(|g| g.loss)
            .fold(f64::INFINITY, f64::min);
        let picked: Vec<_> = f.model_grid.iter().filter(|g| g.chosen).collect();
        assert_eq!(picked.len(), 1, "fold {k}: one chosen");
        assert_eq!(picked[0].loss, min, "fold {k}: the chosen is the minimum");
        eprintln!("fold {k}: {:?}", f.model_grid);
        chosen.push((picked[0].hidden, picked[0].l1, f.heldout_loss));
    }
    // Each fold's model is the chosen configuration trained as without a grid (the same
    // random stream): the same held-out loss, bit for bit.
    for (k, &(hidden, l1, heldout)) in chosen.iter().enumerate() {
        let mut direct = sbtg_tests::config_with_epochs(8);
        let model = &mut direct.sbtg_mut().unwrap().model;
        (model.hidden, model.l1) = (hidden, l1);
        let run = infer(&panel, &direct, &FitContext::quiet()).unwrap();
        let loss = run.summary.per_lag[0].folds[k].heldout_loss;
        assert_eq!(
            loss.to_bits(),
            heldout.to_bits(),
            "fold {k}: {loss} vs {heldout}"
        );
    }
}

/// A known limitation, measured: on the slow AR(1) null of the calibration tests the grid
/// (the default recipe, widths 16, 32 and 64, L1 0, 0.001 and 0.01) chooses narrow,
/// L1-penalised models (width 16, L1 0.001 in most folds), and their mean tests
/// over-reject (P(p < .05) about 0.07 and 1.75 BH selections per run, against 0.05 and 1
/// for the default on the same seeds;
/// docs/method.md, "Width and L1 by held-out loss"). Ignored in the suite (about 20 s);
/// run with `--ignored --nocapture` for the figures. It fails once the limitation is
/// gone, so that the docs change.
#[test]
#[ignore]
fn model_grid_is_anticonservative_on_the_slow_null() {
    let mut cfg = sbtg_tests::random_start_theoretical_null(InferConfig::default());
    cfg.sbtg_mut().unwrap().model.grid = ModelGrid {
        hidden: vec![16, 32, 64],
        l1: vec![0.0, 0.001, 0.01],
    };
    let seeds = 4usize;
    let (mut pooled, mut selected) = (Vec::new(), 0usize);
    for (seed, inf) in sbtg_tests::slow_null_runs(&cfg, 0..seeds as u64)
        .iter()
        .enumerate()
    {
        let chosen: Vec<(usize, f64)> = inf
            .summary
            .per_lag
            .iter()
            .flat_map(|l| &l.folds)
            .flat_map(|f| f.model_grid.iter().filter(|g| g.chosen))
            .map(|g| (g.hidden, g.l1))
            .collect();
        let sel = sbtg_tests::selected(inf);
        eprintln!("seed {seed}: chosen {chosen:?}, {sel} selected");
        selected += sel;
        pooled.extend(sbtg_tests::mean_test_p(inf));
    }
    let below = sbtg_tests::share_below(&pooled, 0.05);
    eprintln!("pooled: P(p < .05) = {below:.4}, {selected} selected in {seeds} runs");
    assert!(
        below > 0.065 && selected > seeds,
        "nominal 5% test rejects {below}, {selected} selected in {seeds} runs: update docs/method.md"
    );
}
