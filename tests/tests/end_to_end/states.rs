//! Behavioural states: per-state and differential edge tests on a network whose
//! coupling switches with an observed two-state chain, and their null (the labels
//! switch, the coupling does not).

use ndarray::Array2;
use sbtg_core::data::simulate::{observed_states, NetworkSpec, StateSimulation};
use sbtg_core::data::state::{FrameStates, ShiftNull, StateSpec};
use sbtg_core::data::{Panel, PanelConfig};
use sbtg_core::estimate::FitContext;
use sbtg_core::infer;
use sbtg_core::results::EdgeTable;
use sbtg_core::stats::metrics::auroc;

fn spec(seed: u64) -> NetworkSpec {
    NetworkSpec {
        neurons: 12,
        density: 0.15,
        frames: 2000,
        recordings: 3,
        self_coupling: 0.5,
        weight: (0.5, 0.9),
        seed,
        ..NetworkSpec::default()
    }
}

/// The simulation's panel with its observed states attached.
fn panel_with_states(sim: &StateSimulation) -> Panel {
    let mut panel = Panel::build(&sim.simulation.recordings, &PanelConfig::default()).unwrap();
    panel.states = Some(FrameStates {
        spec: StateSpec::Table {
            suffix: ".states.csv".into(),
        },
        names: vec!["s0".into(), "s1".into()],
        labels: sim
            .labels
            .iter()
            .map(|l| l.iter().map(|&s| Some(s)).collect())
            .collect(),
        keep_straddling: false,
        model: Default::default(),
        shift_null: Default::default(),
    });
    panel
}

fn cfg(epochs: usize) -> sbtg_core::estimate::InferConfig {
    let mut cfg = sbtg_tests::config_with_epochs(epochs);
    cfg.sbtg_mut().unwrap().past = 1;
    cfg
}

/// AUROC of `|t|` of one state's (or difference's) lag-1 rows against `truth`.
fn state_auroc(t: &EdgeTable, state: &str, truth: &Array2<bool>) -> f64 {
    let s = t.in_state(state).unwrap();
    let m = s.matrix(1, sbtg_core::stats::TestKind::Mean, |e| e.t.abs());
    let (mut score, mut label) = (Vec::new(), Vec::new());
    for ((j, i), &v) in m.indexed_iter() {
        if i != j {
            score.push(if v.is_finite() { v } else { 0.0 });
            label.push(truth[[j, i]]);
        }
    }
    auroc(&score, &label)
}

/// With `shifts` circular shifts of the labels behind the differential p-values.
fn with_shifts(panel: &mut Panel, shifts: usize) {
    if let Some(s) = panel.states.as_mut() {
        s.shift_null = ShiftNull { shifts, seed: 3 };
    }
}

/// Per-state tests rank each state's own coupling, and the differential tests the
/// edges that change between the states, still selected when their p-values come from
/// the circular-shift null.
#[test]
fn per_state_and_differential_edges_recover_the_switching_coupling() {
    let sim = observed_states(&spec(5), 0.95, true).unwrap();
    let mut panel = panel_with_states(&sim);
    with_shifts(&mut panel, 19);
    let t = infer(&panel, &cfg(100), &FitContext::quiet()).unwrap();
    assert_eq!(t.state_labels(), ["s0", "s1", "s0-s1"]);
    let a0 = state_auroc(&t, "s0", &sim.support(0));
    let a1 = state_auroc(&t, "s1", &sim.support(1));
    let d = state_auroc(&t, "s0-s1", &sim.changed());
    let s = t.summary.states.as_ref().unwrap();
    eprintln!(
        "per-state AUROC s0 {a0:.3}, s1 {a1:.3}; differential AUROC {d:.3}; selected {:?}",
        s.selected
            .iter()
            .map(|c| (c.state.clone(), c.lag, c.selected))
            .collect::<Vec<_>>()
    );
    assert!(a0 >= 0.95 && a1 >= 0.95, "per-state AUROC {a0:.3}, {a1:.3}");
    assert!(d >= 0.9, "differential AUROC {d:.3}");
    // The shift null: a report per lag, and the changed edges survive it.
    assert!(!s.shift_null.is_empty() && s.shift_null.iter().all(|c| c.shifts == 19));
    let diff = t.in_state("s0-s1").unwrap();
    let changed = sim.changed();
    let hits = diff
        .rows
        .iter()
        .filter(|e| e.selected && e.lag == 1)
        .filter(|e| {
            let (j, i) = (
                t.summary
                    .neurons
                    .iter()
                    .position(|n| *n == e.target)
                    .unwrap(),
                t.summary
                    .neurons
                    .iter()
                    .position(|n| *n == e.source)
                    .unwrap(),
            );
            changed[[j, i]]
        })
        .count();
    eprintln!("{hits} changed edges selected at lag 1 under the shift null");
    assert!(hits >= 3, "{hits} changed edges selected");
}

/// When only the labels change, the differential tests hold their level: at most one
/// selection per run on average, p-values near uniform.
#[test]
fn differential_tests_hold_their_level_when_only_the_labels_change() {
    no_change_null(
        sbtg_core::data::state::StateModel::Pooled,
        &[21, 22, 23, 24, 25],
        19,
    );
}

/// The same null with a model per state.
#[test]
fn separate_models_hold_the_differential_level_when_only_the_labels_change() {
    no_change_null(
        sbtg_core::data::state::StateModel::Separate,
        &[21, 22, 23],
        0,
    );
}

/// With `shifts > 0` the differential p-values come from the circular-shift null, and
/// the HAC test's level on the shifted labels is checked too.
fn no_change_null(model: sbtg_core::data::state::StateModel, seeds: &[u64], shifts: usize) {
    let mut selected = 0;
    let mut p = Vec::new();
    for &seed in seeds {
        let sim = observed_states(&spec(seed), 0.95, false).unwrap();
        let mut panel = panel_with_states(&sim);
        if let Some(s) = panel.states.as_mut() {
            s.model = model;
        }
        with_shifts(&mut panel, shifts);
        let t = infer(&panel, &cfg(60), &FitContext::quiet()).unwrap();
        for c in &t.summary.states.as_ref().unwrap().shift_null {
            eprintln!(
                "seed {seed} lag {}: HAC level on shifted labels {:.3}, null scale {:.2}",
                c.lag, c.hac_level_05, c.null_scale
            );
            assert!(c.hac_level_05 < 0.09, "HAC level {:.3}", c.hac_level_05);
        }
        let d = t.in_state("s0-s1").unwrap();
        let own = d.rows.iter().filter(|e| e.selected).count();
        eprintln!("seed {seed}: {own} differential selections");
        selected += own;
        p.extend(d.rows.iter().map(|e| e.p).filter(|p| p.is_finite()));
    }
    let (ks, ks_p) = sbtg_core::stats::metrics::ks_uniform(&p);
    let small = p.iter().filter(|&&v| v < 0.05).count() as f64 / p.len() as f64;
    eprintln!(
        "no-change null ({model:?}): {selected} differential selections in {} runs; P(p < 0.05) = {small:.3}; KS D = {ks:.3} (p {ks_p:.3})",
        seeds.len()
    );
    assert!(selected <= seeds.len(), "{selected} selections");
    assert!(small < 0.09, "P(p < 0.05) = {small:.3}");
}

/// A model per state, fitted on its runs only, recovers the same truth; the summary
/// compares its held-out loss with the all-window model's on each state's windows.
#[test]
fn separate_state_models_recover_the_switching_coupling_and_report_their_loss() {
    let sim = observed_states(&spec(5), 0.95, true).unwrap();
    let mut panel = panel_with_states(&sim);
    if let Some(s) = panel.states.as_mut() {
        s.model = sbtg_core::data::state::StateModel::Separate;
    }
    let t = infer(&panel, &cfg(100), &FitContext::quiet()).unwrap();
    let a0 = state_auroc(&t, "s0", &sim.support(0));
    let a1 = state_auroc(&t, "s1", &sim.support(1));
    let d = state_auroc(&t, "s0-s1", &sim.changed());
    let s = t.summary.states.as_ref().unwrap();
    for l in &s.heldout_future_loss {
        eprintln!(
            "{} lag {}: {} windows, held-out loss all-window {:.4}, own {:?}",
            l.state, l.lag, l.windows, l.pooled, l.separate
        );
        assert!(l.pooled.is_finite() && l.separate.is_some_and(f64::is_finite));
    }
    eprintln!("separate models: per-state AUROC s0 {a0:.3}, s1 {a1:.3}; differential {d:.3}");
    assert!(a0 >= 0.95 && a1 >= 0.95, "per-state AUROC {a0:.3}, {a1:.3}");
    assert!(d >= 0.9, "differential AUROC {d:.3}");
}
