//! Why the folds hold out blocks of every recording: Stein's identity holds for the density
//! whose score is used, so a fold's model must be a model of the windows it tests. Where
//! worms differ (slow global modes that load differently in every worm), a model fitted on
//! other worms is not one of the held-out worm, and its held-out products have a mean that
//! is not zero even where nothing is coupled.

use ndarray::Array2;
use sbtg_core::data::fold::FoldScheme;
use sbtg_core::data::simulate::{worm_like, WormSpec};
use sbtg_core::data::{Panel, PanelConfig};
use sbtg_core::estimate::FitContext;
use sbtg_core::infer;

/// The worm-like null twin, small: 40 unpaired neurons, no coupling, 2 slow global modes
/// carrying 40% of the variance with loadings of their own in each of 5 recordings of 800
/// frames; lags 0 and 1, the energy trained 100 epochs from the random start. The modes are common causes, which no test of
/// the observed neurons fully removes, so both fold schemes select some rows (measured on
/// seed 1: 81 of 3900 with block folds); holding out whole worms selects several times
/// more (452), the worms' differences counted as coupling.
#[test]
fn held_out_worms_select_their_differences_where_block_folds_do_not() {
    let n = 40;
    let names: Vec<String> = (0..n).map(|i| format!("N{i}")).collect();
    let spec = WormSpec {
        recordings: 5,
        frames: 800,
        modes: 2,
        missing: (0.0, 0.0),
        ..WormSpec::new(names, Array2::zeros((n, n)), false, 1)
    };
    let sim = worm_like(&spec).unwrap();
    let panel = Panel::build(&sim.recordings, &PanelConfig::default()).unwrap();
    let mut cfg = sbtg_tests::config_with_epochs(100);
    cfg.lags = vec![0, 1];
    // The energy trained from the random start, whose tests are calibrated against their
    // theoretical null on slow nulls, so that what differs is the folds alone (the
    // empirical null would rescale the worms' differences away with everything else).
    cfg.tests.null = sbtg_core::stats::empirical_null::NullDistribution::Theoretical;
    let model = &mut cfg.sbtg_mut().unwrap().model;
    (model.start, model.patience) = (sbtg_core::model::Start::Random, 0);
    let blocks = infer(&panel, &cfg, &FitContext::quiet()).unwrap();
    cfg.sbtg_mut().unwrap().folds = Some(FoldScheme::Recordings(5));
    let worms = infer(&panel, &cfg, &FitContext::quiet()).unwrap();
    let (b, w) = (sbtg_tests::selected(&blocks), sbtg_tests::selected(&worms));
    let tests = blocks.summary.fdr.family_size;
    eprintln!("selected on the null: block folds {b}, held-out worms {w} (of {tests})");
    let folds = &blocks.summary.per_lag[1].folds;
    assert_eq!(folds.len(), 5, "5 block folds by default");
    assert!(b * 30 <= tests, "block folds select {b} of {tests} rows");
    assert!(
        w >= 3 * b,
        "held-out worms select {w} rows, block folds {b}"
    );
}
