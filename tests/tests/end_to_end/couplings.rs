//! Every coupling (linear, feature-bilinear, regime-gated) end to end: trained with
//! candle, scored on held-out windows, and tested by the GEMM path in agreement with the
//! per-edge float64 reference.

use sbtg_core::data::fold::{make_folds, FoldScheme};
use sbtg_core::data::panel::{Panel, PanelConfig};
use sbtg_core::data::simulate::{tanh_network, NetworkSpec};
use sbtg_core::data::window::{Standardiser, Windows};
use sbtg_core::estimate::{FitContext, InferConfig};
use sbtg_core::infer;
use sbtg_core::model::{train, Coupling, ScoreModelConfig, Start};
use sbtg_core::stats::hac_reference::hac_test_per_edge;
use sbtg_core::stats::{hac_test, Bandwidth, EdgeStatistic, HeldOutScores};
use sbtg_tests::recovery;

const COUPLINGS: [Coupling; 3] = [
    Coupling::Linear,
    Coupling::FeatureBilinear { rank: 4 },
    Coupling::RegimeGated { regimes: 2 },
];

/// The Gaussian start for the linear energy; the nonlinear couplings have none and start
/// random (as `sbtg infer --coupling` does).
fn start_of(coupling: Coupling) -> Start {
    match coupling {
        Coupling::Linear | Coupling::Gaussian => Start::Gaussian,
        Coupling::FeatureBilinear { .. } | Coupling::RegimeGated { .. } => Start::Random,
    }
}

fn small_network() -> (sbtg_core::data::simulate::Simulation, Panel) {
    let spec = NetworkSpec {
        neurons: 8,
        density: 0.2,
        frames: 800,
        recordings: 2,
        seed: 3,
        ..NetworkSpec::default()
    };
    let sim = tanh_network(&spec).unwrap();
    let panel = Panel::build(&sim.recordings, &PanelConfig::default()).unwrap();
    (sim, panel)
}

#[test]
fn gemm_tests_agree_with_per_edge_reference_on_trained_models() {
    let (_, panel) = small_network();
    let w = Windows::build(&panel, 2).unwrap();
    let folds = make_folds(&w, FoldScheme::Recordings(2)).unwrap();
    for coupling in COUPLINGS {
        let cfg = ScoreModelConfig {
            coupling,
            epochs: 3,
            hidden: 16,
            start: start_of(coupling),
            ..ScoreModelConfig::default()
        };
        let held: Vec<HeldOutScores> = folds
            .iter()
            .enumerate()
            .map(|(k, f)| {
                let st = Standardiser::fit(w.z.view(), w.mask.view(), &f.train);
                let (ztr, mtr) = st.apply(w.z.view(), w.mask.view(), &f.train);
                let model = train(
                    sbtg_core::model::Engine::Fastest,
                    ztr.view(),
                    mtr.view(),
                    w.n,
                    &cfg,
                    0,
                    k as u64,
                    None,
                    None,
                    &|_, _| {},
                )
                .unwrap()
                .model;
                let (zte, mte) = st.apply(w.z.view(), w.mask.view(), &f.test);
                HeldOutScores {
                    scores: model.score(zte.view()) * &mte,
                    hessian: model.mixed_hessian_terms(zte.view(), 0..w.n),
                    mask: mte,
                    segments: f.test_segments.clone(),
                    source: 0..w.n,
                    future: w.n..2 * w.n,
                    future_scale: None,
                    innovations: false,
                }
            })
            .collect();
        for series in [
            held.iter()
                .map(|h| h.mean_series(EdgeStatistic::Orthogonal))
                .collect::<Vec<_>>(),
            held.iter().map(|h| h.volatility_series()).collect(),
        ] {
            let fast = hac_test(&series, Bandwidth::Andrews);
            let slow = hac_test_per_edge(&series, fast.bandwidth);
            for (a, b) in fast
                .t
                .iter()
                .zip(slow.t.iter())
                .chain(fast.mean.iter().zip(slow.mean.iter()))
            {
                assert!(
                    (a - b).abs() <= 1e-9 * b.abs().max(1e-12),
                    "{coupling:?}: {a} vs {b}"
                );
            }
        }
    }
}

#[test]
fn every_coupling_recovers_a_small_network() {
    let (sim, panel) = small_network();
    for coupling in COUPLINGS {
        let mut cfg = InferConfig::default();
        let sbtg = cfg.sbtg_mut().unwrap();
        sbtg.volatility = false;
        sbtg.model = ScoreModelConfig {
            coupling,
            epochs: 30,
            hidden: 32,
            start: start_of(coupling),
            ..ScoreModelConfig::default()
        };
        let r = recovery(
            &infer(&panel, &cfg, &FitContext::quiet()).unwrap(),
            &sim.coupling,
        );
        eprintln!(
            "{coupling:?}: AUROC {:.3}, sign agreement {:.3}",
            r.auroc, r.sign_agreement
        );
        assert!(r.auroc >= 0.9, "{coupling:?}: AUROC {}", r.auroc);
        assert!(
            r.sign_agreement >= 0.9,
            "{coupling:?}: sign agreement {}",
            r.sign_agreement
        );
    }
}
