//! Same-frame (lag-0) edges: coupling of the innovations given the past, tested within
//! the last block of the lag-1 windows.

use ndarray::Array2;
use sbtg_core::data::panel::{Panel, PanelConfig};
use sbtg_core::data::simulate::{null_ar1, var1_correlated, NetworkSpec};
use sbtg_core::estimate::{FitContext, InferConfig, Method};
use sbtg_core::infer;
use sbtg_core::results::EdgeTable;
use sbtg_core::stats::{SameFrame, TestKind};

/// 12 neurons, a sparse VAR(1) with self-coupling 0.6, and innovations correlated
/// within four pairs (ρ = ±0.6, ±0.5): the lag-0 truth is the support of the
/// innovations' precision, the four pairs, with the sign of ρ.
fn paired_innovations(seed: u64) -> (Panel, Vec<(usize, usize, f64)>) {
    let spec = NetworkSpec {
        neurons: 12,
        density: 0.1,
        frames: 1500,
        recordings: 3,
        seed,
        ..NetworkSpec::default()
    };
    let a = sbtg_core::data::simulate::var1(&spec).unwrap().coupling;
    let pairs = [(0, 1, 0.6), (2, 3, -0.6), (4, 5, 0.5), (6, 7, -0.5)];
    let mut b = Array2::<f64>::eye(12);
    for &(i, j, rho) in &pairs {
        // x_j's innovation = ρ η_i + √(1 − ρ²) η_j: unit variance, correlation ρ with x_i's.
        b[[j, i]] = rho;
        b[[j, j]] = (1.0f64 - rho * rho).sqrt();
    }
    let sim = var1_correlated(&spec, a, &b).unwrap();
    let panel = Panel::build(&sim.recordings, &PanelConfig::default()).unwrap();
    (panel, pairs.to_vec())
}

fn lag0_rows(t: &EdgeTable) -> Vec<&sbtg_core::results::EdgeRow> {
    t.rows
        .iter()
        .filter(|e| e.lag == 0 && e.test == TestKind::Mean)
        .collect()
}

/// Every method that tests lag 0 writes one undirected row per unordered pair, and
/// finds exactly the four coupled pairs with the sign of their correlation.
#[test]
fn same_frame_edges_recover_the_coupled_innovations() {
    let (panel, pairs) = paired_innovations(3);
    let mut lagged_false = None;
    for method in [
        Method::Sbtg,
        Method::LaggedCorrelation,
        Method::PrewhitenedCorrelation,
        Method::PartialCorrelation,
    ] {
        let cfg = InferConfig {
            lags: vec![0, 1],
            ..InferConfig::of(method)
        };
        let t = infer(&panel, &cfg, &FitContext::quiet()).unwrap();
        let rows = lag0_rows(&t);
        assert_eq!(
            rows.len(),
            12 * 11 / 2,
            "{method:?}: one row per unordered pair"
        );
        assert!(rows.iter().all(|e| !e.directed() && e.source < e.target));
        let name = |k: usize| panel.neurons[k].clone();
        for &(i, j, rho) in &pairs {
            let e = rows
                .iter()
                .find(|e| e.source == name(i) && e.target == name(j))
                .unwrap();
            assert!(
                e.selected,
                "{method:?}: {} – {} not selected: {e:?}",
                e.source, e.target
            );
            assert_eq!(e.effect.signum(), rho.signum(), "{method:?}: sign of {e:?}");
        }
        // Lagged correlation also sees the correlation that the shared dynamics put
        // between unpaired neurons, and so does prewhitened correlation to a lesser
        // degree (it removes each neuron's own past, not the other neurons'); the tests
        // conditional on every neuron's past must not.
        let false_pairs = rows
            .iter()
            .filter(|e| e.selected)
            .filter(|e| {
                !pairs
                    .iter()
                    .any(|&(i, j, _)| e.source == name(i) && e.target == name(j))
            })
            .count();
        eprintln!("{method:?}: {false_pairs} false same-frame pairs selected");

        match method {
            Method::LaggedCorrelation => lagged_false = Some(false_pairs),
            Method::PrewhitenedCorrelation => {
                let lagged = lagged_false.expect("lagged correlation runs first");
                assert!(
                    2 * false_pairs < lagged,
                    "prewhitening keeps {false_pairs} of lagged correlation's {lagged} false pairs"
                );
            }
            _ => {}
        }
        if ![Method::LaggedCorrelation, Method::PrewhitenedCorrelation].contains(&method) {
            // The four coupled pairs are the four largest |t|: the ranking is exact.
            let mut by_t = rows.clone();
            by_t.sort_by(|a, b| b.t.abs().total_cmp(&a.t.abs()));
            for e in &by_t[..4] {
                assert!(
                    pairs
                        .iter()
                        .any(|&(i, j, _)| e.source == name(i) && e.target == name(j)),
                    "{method:?}: {} – {} ranks among the top four",
                    e.source,
                    e.target
                );
            }
            // Every conditional test keeps the unpaired neurons apart: SBTG's default
            // (the innovations' correlation given the past) selects 2 false pairs here,
            // partial correlation 3.
            let bound = 5;
            assert!(
                false_pairs <= bound,
                "{method:?}: {false_pairs} false same-frame pairs"
            );
        }
    }
}

/// Independent latents: no same-frame coupling given the past. Over three seeds BH
/// selects at most one lag-0 pair per run on average, and the lag-0 p-values reject at
/// about the nominal rate: with the defaults (the innovations' correlation against the
/// empirical null) and with the precision statistic in the random-start recipe (against
/// the theoretical null). Read against the theoretical null the innovation test rejects
/// 6.1% here with two past frames (7.9% with the ridge as the Gaussian model's only
/// shrinkage): the model's
/// error in the conditional mean enters its mean at second order, `E[δ_j δ_i]`, which the
/// theoretical null does not know (docs/method.md).
#[test]
fn same_frame_tests_are_calibrated_under_the_null() {
    let defaults = InferConfig {
        lags: vec![0, 1],
        ..InferConfig::default()
    };
    let mut precision = sbtg_tests::random_start_theoretical_null(defaults.clone());
    precision.sbtg_mut().unwrap().same_frame = SameFrame::Precision;
    for (name, mut cfg) in [("defaults", defaults), ("precision", precision)] {
        let (mut selected, mut below, mut total) = (0usize, 0usize, 0usize);
        for seed in 0..3 {
            let sim = null_ar1(20, 1000, 3, 0.95, 0.5, seed).unwrap();
            let panel = Panel::build(&sim.recordings, &PanelConfig::default()).unwrap();
            cfg.sbtg_mut().unwrap().seed = seed;
            let t = infer(&panel, &cfg, &FitContext::quiet()).unwrap();
            let rows = lag0_rows(&t);
            let s = rows.iter().filter(|e| e.selected).count();
            let b = rows.iter().filter(|e| e.p < 0.05).count();
            eprintln!(
                "{name}, seed {seed}: {s} lag-0 pairs selected, {b} of {} with p < 0.05",
                rows.len()
            );
            selected += s;
            below += b;
            total += rows.len();
        }
        let rate = below as f64 / total as f64;
        eprintln!("{name}: {selected} selected in 3 runs, P(p < .05) = {rate:.4}");
        assert!(
            selected <= 3,
            "{name}: {selected} false same-frame selections in 3 runs"
        );
        assert!(rate < 0.08, "{name}: nominal 5% test rejects {rate}");
    }
}

/// Baselines that cannot test lag 0 say so before any data is touched.
#[test]
fn lag_zero_is_refused_by_methods_that_cannot_test_it() {
    let cfg = InferConfig {
        lags: vec![0, 1],
        ..InferConfig::of(Method::Granger)
    };
    let err = cfg.validate().unwrap_err().to_string();
    assert!(err.contains("lag 0") && err.contains("drop 0"), "{err}");
}
