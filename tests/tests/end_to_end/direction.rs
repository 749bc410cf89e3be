//! Direction tests: `effect(i → j) − effect(j → i)` on the same held-out windows, in an
//! FDR family of its own.

use ndarray::Array2;
use sbtg_core::data::panel::{Panel, PanelConfig};
use sbtg_core::data::simulate::{random_coupling, stabilise, var1_with, NetworkSpec};
use sbtg_core::estimate::FitContext;
use sbtg_core::infer;
use sbtg_core::results::EdgeRow;
use sbtg_core::stats::TestKind;

fn spec(seed: u64) -> NetworkSpec {
    NetworkSpec {
        neurons: 10,
        density: 0.2,
        frames: 2000,
        recordings: 3,
        seed,
        ..NetworkSpec::default()
    }
}

fn direction_rows(t: &sbtg_core::EdgeTable) -> Vec<&EdgeRow> {
    t.rows
        .iter()
        .filter(|e| e.test == TestKind::Direction)
        .collect()
}

/// Couplings that run both ways with equal weight: no pair has a direction. Over two
/// seeds the direction family selects at most one pair per run and the nominal 5% test
/// rejects near 5%.
#[test]
fn direction_test_is_calibrated_on_a_symmetric_network() {
    let (mut selected, mut below, mut total) = (0, 0, 0);
    for seed in 0..2 {
        let spec = spec(seed);
        let a = random_coupling(&spec, &mut sbtg_core::rng::stream(seed, 1));
        let sym = stabilise((&a + &a.t()) * 0.5, 0.9);
        let sim = var1_with(&spec, sym).unwrap();
        let panel = Panel::build(&sim.recordings, &PanelConfig::default()).unwrap();
        let cfg = sbtg_tests::config_with_epochs(60);
        let t = infer(&panel, &cfg, &FitContext::quiet()).unwrap();
        let rows = direction_rows(&t);
        assert_eq!(
            rows.len(),
            10 * 9 / 2,
            "one direction row per unordered pair"
        );
        assert!(rows.iter().all(|e| e.lag == 1 && !e.directed()));
        let s = rows.iter().filter(|e| e.selected).count();
        let b = rows.iter().filter(|e| e.p < 0.05).count();
        eprintln!(
            "seed {seed}: {s} directions selected, {b} of {} with p < 0.05",
            rows.len()
        );
        selected += s;
        below += b;
        total += rows.len();
        // The edge family is unchanged by the direction tests.
        assert_eq!(t.family_size(), 10 * 9 * 2);
    }
    let rate = below as f64 / total as f64;
    eprintln!("{selected} selected in 2 runs, P(p < .05) = {rate:.3}");
    assert!(selected <= 2, "{selected} false directions in 2 runs");
    assert!(rate < 0.1, "nominal 5% test rejects {rate}");
}

/// One-way couplings: the direction of most one-way edges is identified, with the sign
/// of the coupling (`effect(i → j) − effect(j → i) ≈ effect(i → j)`). Pairs without any
/// coupling get a direction only where the edge test itself selects a false edge (this
/// dense network, 10 neurons at density 0.2, gives the edge test 11 false lag-1 edges:
/// the model's bias under strong dynamics, which the direction test inherits).
#[test]
fn direction_test_finds_one_way_edges() {
    let spec = spec(4);
    let a = stabilise(
        random_coupling(&spec, &mut sbtg_core::rng::stream(4, 1)),
        0.9,
    );
    let sim = var1_with(&spec, a.clone()).unwrap();
    let panel = Panel::build(&sim.recordings, &PanelConfig::default()).unwrap();
    let cfg = sbtg_tests::config_with_epochs(100);
    let t = infer(&panel, &cfg, &FitContext::quiet()).unwrap();
    let idx = |s: &str| panel.neurons.iter().position(|x| x == s).unwrap();
    let n = panel.neurons.len();
    let one_way = Array2::from_shape_fn((n, n), |(j, i)| {
        i != j && a[[j, i]] != 0.0 && a[[i, j]] == 0.0
    });
    let (mut found, mut right_sign, mut spurious, mut ways) = (0, 0, 0, 0);
    for e in direction_rows(&t) {
        let (i, j) = (idx(&e.source), idx(&e.target));
        if one_way[[j, i]] || one_way[[i, j]] {
            ways += 1;
            if e.selected {
                found += 1;
                // Positive: source → target is the stronger (more excitatory) direction.
                let true_diff = a[[j, i]] - a[[i, j]];
                right_sign += usize::from(e.effect.signum() == true_diff.signum());
            }
        } else if a[[j, i]] == 0.0 && a[[i, j]] == 0.0 && e.selected {
            spurious += 1;
        }
    }
    let false_edges = t
        .rows
        .iter()
        .filter(|e| e.test == TestKind::Mean && e.lag == 1 && e.selected)
        .filter(|e| a[[idx(&e.target), idx(&e.source)]] == 0.0)
        .count();
    eprintln!("one-way pairs {ways}: direction found {found} ({right_sign} with the right sign), uncoupled pairs with a direction {spurious}; false lag-1 edges {false_edges}");
    assert!(ways >= 5, "the network needs one-way edges");
    assert!(found * 4 >= ways * 3, "found {found} of {ways}");
    assert_eq!(right_sign, found);
    assert!(
        spurious <= false_edges,
        "{spurious} uncoupled pairs with a direction, {false_edges} false edges"
    );
}

/// Worm-specific directions: in each of 8 worms every pair of a fixed set is coupled
/// one way, forward in 5 worms and backward in 3, so the worms share no direction
/// beyond what 8 of them can show (a one-sample t of 5 against 3 is about 0.7).
/// Pooling every window reads the windows' average as a shared direction; with
/// `--pooling random-effects` the direction tests pool the worms as the mean test does
/// and find none.
#[test]
fn worm_specific_directions_are_not_shared_under_random_effects() {
    use sbtg_core::data::Recording;
    use sbtg_core::stats::random_effects::Pooling;
    let n = 12;
    let spec = NetworkSpec {
        neurons: n,
        frames: 500,
        recordings: 1,
        ..NetworkSpec::default()
    };
    let pairs: Vec<(usize, usize)> = (0..n).step_by(2).map(|a| (a, a + 1)).collect();
    let recordings: Vec<Recording> = (0..8u64)
        .map(|w| {
            let mut a = Array2::eye(n) * 0.5;
            for (k, &(p, q)) in pairs.iter().enumerate() {
                // Forward in 5 of the 8 worms (a different 5 for every pair), backward
                // in the other 3.
                let forward = (w as usize + 8 - k % 8) % 8 < 5;
                let (src, dst) = if forward { (p, q) } else { (q, p) };
                a[[dst, src]] = 0.6;
            }
            let sim = var1_with(
                &NetworkSpec {
                    seed: 100 + w,
                    ..spec.clone()
                },
                stabilise(a, 0.9),
            )
            .unwrap();
            let r = &sim.recordings[0];
            Recording::new(
                format!("worm{w}"),
                r.neurons.clone(),
                r.dt,
                r.values.clone(),
            )
            .unwrap()
        })
        .collect();
    let panel = Panel::build(&recordings, &PanelConfig::default()).unwrap();
    let rates: Vec<(f64, usize)> = [Pooling::Fixed, Pooling::RandomEffects]
        .into_iter()
        .map(|pooling| {
            let mut cfg = sbtg_tests::config_with_epochs(60);
            cfg.tests.pooling = pooling;
            let t = infer(&panel, &cfg, &FitContext::quiet()).unwrap();
            let coupled: Vec<&EdgeRow> = direction_rows(&t)
                .into_iter()
                .filter(|e| {
                    let idx = |s: &str| t.summary.neurons.iter().position(|x| x == s).unwrap();
                    let (i, j) = (idx(&e.source), idx(&e.target));
                    pairs.contains(&(i.min(j), i.max(j)))
                })
                .collect();
            assert_eq!(coupled.len(), pairs.len());
            let below = coupled.iter().filter(|e| e.p < 0.05).count();
            let selected = direction_rows(&t).iter().filter(|e| e.selected).count();
            eprintln!(
                "{pooling:?}: {below} of {} coupled pairs with p < 0.05; {selected} directions selected",
                pairs.len()
            );
            (below as f64 / pairs.len() as f64, selected)
        })
        .collect();
    // Pooled windows: the worms' own directions look shared.
    assert!(rates[0].0 >= 0.5, "fixed pooling rejects {}", rates[0].0);
    // Random effects: none of the coupled pairs has a shared direction.
    assert!(rates[1].0 <= 0.25, "random effects rejects {}", rates[1].0);
    assert!(rates[1].1 <= 1, "{} directions selected", rates[1].1);
}
