//! Global factors (`--global-factors K`): conditioning every neuron on the leading
//! principal components of its recording's other neurons removes the coupling a common
//! slow mode creates between every pair, and keeps an edge that is not part of the mode.

use sbtg_core::data::panel::{Panel, PanelConfig};
use sbtg_core::stats::random_effects::Pooling;

use super::pooling::{lag1_mean_p, mode_recordings};

/// Enough neurons for the factor of the others to be estimated well: its estimation error
/// couples the residuals at order 1/n.
const NEURONS: usize = 40;

fn panel(seed: u64, edge: bool, global_factors: usize) -> Panel {
    let cfg = PanelConfig {
        global_factors,
        ..PanelConfig::default()
    };
    Panel::build(&mode_recordings(seed, edge, NEURONS), &cfg).unwrap()
}

/// Lagged correlation under fixed pooling reads each worm's mode-driven correlations as
/// edges; with the mode's factor removed the p-values are near uniform.
#[test]
fn one_factor_removes_the_edges_of_a_common_mode() {
    let (mut raw, mut adjusted, mut selected, mut pairs) = (0, 0, 0, 0);
    for seed in 0..4 {
        let r = lag1_mean_p(&panel(seed, false, 0), Pooling::Fixed);
        let a = lag1_mean_p(&panel(seed, false, 1), Pooling::Fixed);
        raw += r.iter().filter(|e| e.2 < 0.05).count();
        adjusted += a.iter().filter(|e| e.2 < 0.05).count();
        selected += a.iter().filter(|e| e.3).count();
        pairs += r.len();
    }
    let (raw, adjusted) = (raw as f64 / pairs as f64, adjusted as f64 / pairs as f64);
    eprintln!(
        "P(p < 0.05): raw {raw:.3}, one global factor {adjusted:.3}; {selected} selections in 4 null runs"
    );
    assert!(raw > 0.3, "raw traces: P(p < 0.05) = {raw}");
    assert!(adjusted < 0.08, "one factor: P(p < 0.05) = {adjusted}");
    assert!(selected <= 4, "{selected} selections in 4 null runs");
}

/// An edge shared by every worm survives the adjustment; the selections the mode made
/// are gone but for a few (the residuals keep an order-1/n trace of the mode).
#[test]
fn an_edge_outside_the_mode_survives_the_adjustment() {
    let others = |p: &Panel| {
        let r = lag1_mean_p(p, Pooling::Fixed);
        let edge = r.iter().find(|e| e.0 == "N0" && e.1 == "N1").unwrap();
        assert!(edge.3, "N0 → N1 not selected: p = {}", edge.2);
        // N1 → N0 is the edge seen backwards through N0's autocorrelation.
        r.iter()
            .filter(|e| e.3 && !(e.0 == "N0" && e.1 == "N1") && !(e.0 == "N1" && e.1 == "N0"))
            .count()
    };
    let adjusted = panel(7, true, 1);
    assert_eq!(adjusted.config.global_factors, 1);
    let (raw, adjusted) = (others(&panel(7, true, 0)), others(&adjusted));
    eprintln!("other selections: raw {raw}, one global factor {adjusted}");
    assert!(adjusted <= 8, "{adjusted} other selections of 1560 pairs");
    assert!(raw > 10 * adjusted.max(1), "raw {raw}, adjusted {adjusted}");
}
