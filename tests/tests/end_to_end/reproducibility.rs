//! Same seed, same data, same machine: bit-identical tables.

use sbtg_core::estimate::FitContext;
use sbtg_core::infer;
use sbtg_core::io::tables::edges_csv;
use sbtg_tests::{config_with_epochs, small_var1};

#[test]
fn same_seed_gives_bit_identical_edges() {
    let (_, panel) = small_var1(8, 400, 2);
    let mut cfg = config_with_epochs(3);
    let a = edges_csv(&infer(&panel, &cfg, &FitContext::quiet()).unwrap()).unwrap();
    let b = edges_csv(&infer(&panel, &cfg, &FitContext::quiet()).unwrap()).unwrap();
    assert_eq!(a, b);
    cfg.sbtg_mut().unwrap().seed = 1;
    let c = edges_csv(&infer(&panel, &cfg, &FitContext::quiet()).unwrap()).unwrap();
    assert_ne!(a, c, "a different seed must change the trained models");
}

/// Three folds on two threads take turns on the cores (`sbtg_core::model::turns`); on one
/// thread they run one after the other. Same tables, bit for bit.
#[test]
fn fits_taking_turns_give_the_one_thread_table() {
    let (_, panel) = small_var1(8, 400, 3);
    let cfg = config_with_epochs(3);
    let run = |threads| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| edges_csv(&infer(&panel, &cfg, &FitContext::quiet()).unwrap()).unwrap())
    };
    assert_eq!(run(1), run(2));
}
