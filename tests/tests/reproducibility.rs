//! Same seed, same data, same machine: bit-identical tables.

use sbtg_core::infer::{infer, InferConfig};
use sbtg_core::output::edges_csv;
use sbtg_core::panel::{Panel, PanelConfig};
use sbtg_core::simulate::{var1, NetworkSpec};

#[test]
fn same_seed_gives_bit_identical_edges() {
    let spec = NetworkSpec {
        neurons: 8,
        frames: 400,
        recordings: 2,
        ..NetworkSpec::default()
    };
    let sim = var1(&spec).unwrap();
    let panel = Panel::build(&sim.recordings, &PanelConfig::default()).unwrap();
    let mut cfg = InferConfig::default();
    cfg.model.epochs = 3;
    let a = edges_csv(&infer(&panel, &cfg, &|_| {}).unwrap()).unwrap();
    let b = edges_csv(&infer(&panel, &cfg, &|_| {}).unwrap()).unwrap();
    assert_eq!(a, b);
    cfg.seed = 1;
    let c = edges_csv(&infer(&panel, &cfg, &|_| {}).unwrap()).unwrap();
    assert_ne!(a, c, "a different seed must change the trained models");
}
