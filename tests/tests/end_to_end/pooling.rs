//! Random-effects pooling (`--pooling random-effects`): recordings whose means differ
//! (worm-specific loadings of a common mode) are not read as edges, and an edge shared
//! by every recording still is.

use ndarray::Array2;
use rand_distr::{Distribution, StandardNormal};
use sbtg_core::data::panel::{Panel, PanelConfig};
use sbtg_core::data::Recording;
use sbtg_core::estimate::{FitContext, InferConfig, Method};
use sbtg_core::infer;
use sbtg_core::stats::random_effects::Pooling;
use sbtg_core::stats::TestKind;

const NEURONS: usize = 10;

/// 8 recordings of 600 frames: `x_t = λ_r c_t + e_t`, a slow common mode `c` (AR(1),
/// φ = 0.9) with loadings `λ_r ~ N(0, 1)` drawn anew for every recording, independent
/// AR(1) noise `e` (φ = 0.5), and, with `edge`, `x_{t+1,1} += 0.8 x_{t,0}` in every
/// recording. Within a recording neurons `i` and `j` have a lag-1 correlation of sign
/// `λ_{r,i} λ_{r,j}`; across worms it averages to zero.
fn worms(seed: u64, edge: bool) -> Panel {
    Panel::build(
        &mode_recordings(seed, edge, NEURONS),
        &PanelConfig::default(),
    )
    .unwrap()
}

/// The recordings of [`worms`], with `neurons` neurons.
pub(crate) fn mode_recordings(seed: u64, edge: bool, neurons: usize) -> Vec<Recording> {
    let mut rng = sbtg_core::rng::stream(seed, 0);
    let mut normal = move || -> f64 { StandardNormal.sample(&mut rng) };
    let names: Vec<String> = (0..neurons).map(|k| format!("N{k}")).collect();
    (0..8)
        .map(|r| {
            let frames = 600;
            let load: Vec<f64> = (0..neurons).map(|_| normal()).collect();
            let mut x = Array2::<f64>::zeros((frames, neurons));
            let (mut c, mut e) = (0.0, vec![0.0; neurons]);
            for t in 0..frames {
                c = 0.9 * c + (1.0f64 - 0.81).sqrt() * normal();
                for j in 0..neurons {
                    e[j] = 0.5 * e[j] + normal();
                    x[[t, j]] = load[j] * c + e[j];
                }
                if edge && t > 0 {
                    x[[t, 1]] += 0.8 * x[[t - 1, 0]];
                }
            }
            Recording::new(format!("worm{r}"), names.clone(), 0.6, x).unwrap()
        })
        .collect()
}

pub(crate) fn lag1_mean_p(panel: &Panel, pooling: Pooling) -> Vec<(String, String, f64, bool)> {
    let mut cfg = InferConfig {
        lags: vec![1],
        ..InferConfig::of(Method::LaggedCorrelation)
    };
    cfg.tests.pooling = pooling;
    infer(panel, &cfg, &FitContext::quiet())
        .unwrap()
        .rows
        .iter()
        .filter(|e| e.lag == 1 && e.test == TestKind::Mean)
        .map(|e| (e.source.clone(), e.target.clone(), e.p, e.selected))
        .collect()
}

#[test]
fn worm_specific_means_are_not_edges_under_random_effects() {
    let (mut fixed, mut random, mut pairs, mut random_selected) = (0, 0, 0, 0);
    for seed in 0..4 {
        let panel = worms(seed, false);
        let f = lag1_mean_p(&panel, Pooling::Fixed);
        let r = lag1_mean_p(&panel, Pooling::RandomEffects);
        assert_eq!(f.len(), NEURONS * (NEURONS - 1));
        fixed += f.iter().filter(|e| e.2 < 0.05).count();
        random += r.iter().filter(|e| e.2 < 0.05).count();
        random_selected += r.iter().filter(|e| e.3).count();
        pairs += f.len();
    }
    let (fixed, random) = (fixed as f64 / pairs as f64, random as f64 / pairs as f64);
    eprintln!(
        "P(p < 0.05): fixed {fixed:.3}, random effects {random:.3}; random-effects selections {random_selected} in 4 runs"
    );
    // The pooled test reads each worm's own correlations as a shared mean.
    assert!(fixed > 0.3, "fixed pooling: P(p < 0.05) = {fixed}");
    // Random effects over 8 worms (modified Hartung–Knapp): at or under the level.
    assert!(random < 0.07, "random effects: P(p < 0.05) = {random}");
    assert!(
        random_selected <= 4,
        "{random_selected} selections in 4 null runs"
    );
}

#[test]
fn an_edge_shared_by_every_worm_is_found_under_random_effects() {
    let panel = worms(7, true);
    let r = lag1_mean_p(&panel, Pooling::RandomEffects);
    let edge = r.iter().find(|e| e.0 == "N0" && e.1 == "N1").unwrap();
    assert!(edge.3, "N0 → N1 not selected: p = {}", edge.2);
    eprintln!("N0 → N1: p = {:.2e}", edge.2);
    let others = r
        .iter()
        .filter(|e| e.3 && !(e.0 == "N0" && e.1 == "N1"))
        .count();
    assert!(others <= 2, "{others} other selections");
}
