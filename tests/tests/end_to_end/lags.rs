//! Lag-specific circuits: minimal multi-block windows separate direct lag-r effects from
//! paths through the snapshots in between; plain lagged pairs do not.

use ndarray::Array2;
use sbtg_core::data::simulate::{random_coupling, var1_with, var2_with, NetworkSpec, Simulation};
use sbtg_core::data::{Panel, PanelConfig};
use sbtg_core::estimate::{FitContext, LagWindows};
use sbtg_core::stats::metrics::auroc;
use sbtg_core::stats::TestKind;
use sbtg_core::{infer, EdgeTable};

/// Training epochs of the minimal-window models. At 20 epochs the minimal lag-2 test
/// still selects 3 direct lag-1 edges of the VAR(1) network (the past-block energy has
/// not yet learnt the conditioning on x_{t+1}); at 60 it selects none.
const EPOCHS: usize = 60;

fn spec() -> NetworkSpec {
    NetworkSpec {
        neurons: 10,
        density: 0.15,
        frames: 2000,
        recordings: 3,
        weight: (0.3, 0.5),
        ..NetworkSpec::default()
    }
}

fn run(sim: &Simulation, lags: &[usize], windows: LagWindows, epochs: usize) -> EdgeTable {
    let panel = Panel::build(&sim.recordings, &PanelConfig::default()).unwrap();
    let mut cfg = sbtg_tests::config_with_epochs(epochs);
    cfg.lags = lags.to_vec();
    cfg.sbtg_mut().unwrap().lag_windows = windows;
    infer(&panel, &cfg, &FitContext::quiet()).unwrap()
}

/// Selected mean-test edges at `lag` as `[target, source]` booleans.
fn selected(inf: &EdgeTable, lag: usize) -> Array2<bool> {
    let n = inf.neurons().len();
    let idx = |s: &str| inf.neurons().iter().position(|x| x == s).unwrap();
    let mut m = Array2::from_elem((n, n), false);
    for e in inf
        .rows
        .iter()
        .filter(|e| e.lag == lag && e.test == TestKind::Mean && e.selected)
    {
        m[[idx(&e.target), idx(&e.source)]] = true;
    }
    m
}

/// AUROC of `|effect|` at `lag` against the off-diagonal support of `truth`.
fn lag_auroc(inf: &EdgeTable, lag: usize, truth: &Array2<bool>) -> f64 {
    let n = inf.neurons().len();
    let idx = |s: &str| inf.neurons().iter().position(|x| x == s).unwrap();
    let mut eff = Array2::from_elem((n, n), f64::NAN);
    for e in inf
        .rows
        .iter()
        .filter(|e| e.lag == lag && e.test == TestKind::Mean)
    {
        eff[[idx(&e.target), idx(&e.source)]] = e.effect.abs();
    }
    let (mut s, mut l) = (Vec::new(), Vec::new());
    for j in 0..n {
        for i in 0..n {
            if i != j {
                s.push(eff[[j, i]]);
                l.push(truth[[j, i]]);
            }
        }
    }
    auroc(&s, &l)
}

fn count(m: &Array2<bool>) -> usize {
    m.iter().filter(|&&b| b).count()
}

#[test]
fn var1_two_step_paths_appear_in_plain_lag2_pairs_but_not_in_minimal_windows() {
    let spec = spec();
    let a = random_coupling(&spec, &mut sbtg_core::rng::stream(3, 1));
    let sim = var1_with(&spec, a.clone()).unwrap();
    // Two-step paths i → k → j through a third neuron, with no direct edge i → j.
    let n = spec.neurons;
    let mut off = a.clone();
    for k in 0..n {
        off[[k, k]] = 0.0;
    }
    let two = off.dot(&off);
    let two_step = Array2::from_shape_fn((n, n), |(j, i)| {
        i != j && off[[j, i]] == 0.0 && two[[j, i]].abs() > 0.05
    });
    assert!(count(&two_step) >= 3, "the network needs two-step paths");
    let pairwise = run(&sim, &[2], LagWindows::Pairwise, 20);
    let minimal = run(&sim, &[2], LagWindows::Minimal, EPOCHS);
    let (sp, sm) = (selected(&pairwise, 2), selected(&minimal, 2));
    let found = |s: &Array2<bool>| {
        two_step
            .iter()
            .zip(s.iter())
            .filter(|(t, s)| **t && **s)
            .count()
    };
    eprintln!(
        "two-step paths {}: pairwise selects {} ({} on two-step paths), minimal selects {} ({})",
        count(&two_step),
        count(&sp),
        found(&sp),
        count(&sm),
        found(&sm)
    );
    assert!(
        found(&sp) * 2 >= count(&two_step),
        "plain lag-2 pairs find the two-step paths"
    );
    // The minimal windows see x_{t+2} ⫫ x_t | x_{t+1}: the null rate (BH at 0.1 over
    // 180 tests selects about nothing).
    let direct = off.mapv(|v| v != 0.0);
    let on_direct = direct
        .iter()
        .zip(sm.iter())
        .filter(|(d, s)| **d && **s)
        .count();
    eprintln!("minimal: {on_direct} of its selections are direct lag-1 edges");
    assert!(count(&sm) <= 2, "minimal lag-2 selected {}", count(&sm));
    assert_eq!(found(&sm), 0);
}

#[test]
fn var2_lag2_only_couplings_are_found_at_lag_2_and_lag_1_stays_null() {
    let spec = spec();
    let a2 = random_coupling(&spec, &mut sbtg_core::rng::stream(5, 1));
    let n = spec.neurons;
    let sim = var2_with(&spec, Array2::zeros((n, n)), a2.clone()).unwrap();
    let inf = run(&sim, &[1, 2], LagWindows::Minimal, EPOCHS);
    let truth = Array2::from_shape_fn((n, n), |(j, i)| i != j && a2[[j, i]] != 0.0);
    let au2 = lag_auroc(&inf, 2, &truth);
    let (s1, s2) = (selected(&inf, 1), selected(&inf, 2));
    let true_selected = truth
        .iter()
        .zip(s2.iter())
        .filter(|(t, s)| **t && **s)
        .count();
    eprintln!(
        "lag-2 AUROC {au2:.3}; selected lag 1: {}, lag 2: {} ({true_selected} of {} true edges)",
        count(&s1),
        count(&s2),
        count(&truth)
    );
    assert!(au2 >= 0.9, "lag-2 AUROC {au2}");
    assert!(count(&s1) <= 2, "lag-1 selected {}", count(&s1));
    assert!(
        true_selected * 4 >= count(&truth) * 3,
        "lag 2 finds most true edges"
    );
    // One FDR family over both lags, declared by the size.
    assert_eq!(inf.family_size(), 2 * 2 * n * (n - 1));
}

/// The benchmark's VAR(2) (self-coupling 0.5 at lag 1, couplings at lag 2 only; 30
/// neurons, 3 × 600 frames). Windows of one past frame cannot condition on `x_{t−1}`,
/// so its lag-2 influence, partly predictable from `x_t`, leaks into their lag-1 test;
/// `--past 2` tests lag 1 in `[x_{t−1}, x_t, x_{t+1}]` and the leak goes, down to the
/// conditional baseline's level (partial correlation at lags 1 and 2).
#[test]
fn conditioning_on_two_past_frames_removes_the_var2_leak_into_lag_1() {
    use sbtg_core::report::benchmark::{Family, FamilySize};
    let sim = Family::Var2.simulate(&FamilySize::full(), 0).unwrap();
    let panel = Panel::build(&sim.simulation.recordings, &PanelConfig::default()).unwrap();
    let false_lag1 = |cfg: &sbtg_core::estimate::InferConfig| {
        count(&selected(
            &infer(&panel, cfg, &FitContext::quiet()).unwrap(),
            1,
        ))
    };
    let sbtg = |past: usize| {
        let mut cfg = sbtg_tests::config_with_epochs(EPOCHS);
        cfg.lags = vec![1, 2];
        cfg.sbtg_mut().unwrap().past = past;
        false_lag1(&cfg)
    };
    let baseline = false_lag1(&sbtg_core::estimate::InferConfig {
        lags: vec![1, 2],
        ..sbtg_core::estimate::InferConfig::of(sbtg_core::estimate::Method::PartialCorrelation)
    });
    let (one, two) = (sbtg(1), sbtg(2));
    eprintln!("false lag-1 edges: past 1 {one}, past 2 {two}, partial correlation {baseline}");
    assert!(
        one >= 10,
        "the one-frame windows should show the leak ({one})"
    );
    assert!(
        two <= baseline + 3,
        "past 2 selects {two}, the baseline {baseline}"
    );
}
