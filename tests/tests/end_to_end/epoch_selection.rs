//! Epoch selection by leave-one-worm-out cross-validation (`--select-epochs`): the
//! chosen count is the minimum of the worms' mean validation curve, and the fold's model
//! is exactly that many epochs trained on all its training windows.

use sbtg_core::estimate::{InferConfig, MethodConfig, Sbtg};
use sbtg_core::model::{Engine, Start};

fn selecting(start: Start) -> Sbtg {
    let MethodConfig::Sbtg(mut est) = InferConfig::default().estimator else {
        unreachable!("the default method is SBTG")
    };
    est.model.select_epochs = true;
    est.model.patience = 0;
    est.model.epochs = 12;
    est.model.start = start;
    est
}

#[test]
fn chosen_epochs_minimise_the_worms_mean_curve_and_are_refitted_on_all_windows() {
    let panel = sbtg_tests::small_tanh_panel(4);
    for start in [Start::Random, Start::Gaussian] {
        let est = selecting(start);
        let p = est.fold_problem(&panel, 1, 0).unwrap();
        let chosen = est.train_problem(&p, Engine::Fastest).unwrap();
        let best = chosen.best_epoch.expect("a chosen epoch count");
        let curve = &chosen.validation_loss;
        assert_eq!(curve.len(), 12, "{start:?}: the mean curve of epochs 1…12");
        let min = curve.iter().copied().fold(f64::INFINITY, f64::min);
        match (start, best) {
            // The Gaussian start itself is a candidate (epoch 0).
            (Start::Gaussian, 0) => {}
            (_, 0) => panic!("a random start trains at least one epoch"),
            (_, e) => assert_eq!(curve[e - 1], min, "{start:?}: epoch {e} is not the minimum"),
        }
        // The same count trained directly on the fold's training windows: the same model.
        let mut direct = est.clone();
        direct.model.select_epochs = false;
        direct.model.epochs = best.max(1);
        let reference = direct.train_problem(&p, Engine::Fastest).unwrap();
        let (a, b) = (
            est.heldout_loss(&p, &chosen.model),
            est.heldout_loss(&p, &reference.model),
        );
        eprintln!("{start:?}: {best} epochs chosen, held-out loss {a:.4}");
        if best > 0 {
            assert_eq!(
                a.to_bits(),
                b.to_bits(),
                "{start:?}: refit {a} vs direct {b}"
            );
        }
    }
}

/// Folds of time blocks of a single worm leave no worm to hold out.
#[test]
fn one_worm_is_refused() {
    let est = selecting(Start::Gaussian);
    let Err(err) = est
        .fold_problem(&sbtg_tests::small_tanh_panel(1), 1, 0)
        .and_then(|p| est.train_problem(&p, Engine::Fastest))
    else {
        panic!("one worm was not refused")
    };
    let err = err.to_string();
    assert!(
        err.contains("needs 2 or more") && err.contains("--select-epochs"),
        "{err}"
    );
}
