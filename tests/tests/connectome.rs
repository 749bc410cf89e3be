//! The shipped Cook et al. (2019) edge lists: totals and orientation on known edges.

use std::path::PathBuf;

use sbtg_core::connectome::{Connectome, SynapseType};

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../datasets/connectomes")
        .join(name)
}

#[test]
fn cook_cell_totals_match_the_paper() {
    let c = Connectome::read_edge_csv(&data("cook2019_herm_cell.csv")).unwrap();
    let total = |k| {
        c.edges
            .iter()
            .filter(|((_, _, t), _)| *t == k)
            .map(|(_, w)| w)
            .sum::<f64>()
    };
    assert_eq!(total(SynapseType::Chemical), 28_113.0);
    assert_eq!(total(SynapseType::Electrical), 23_313.0);
}

#[test]
fn orientation_is_pre_to_post_and_matrices_are_target_source() {
    let c = Connectome::read_edge_csv(&data("cook2019_herm_class.csv")).unwrap();
    let chem = SynapseType::Chemical;
    for (pre, post, fwd, back) in [
        ("AVD", "AVA", 167.0, 14.0),
        ("AFD", "AIY", 54.0, 3.0),
        ("AIY", "AIZ", 137.0, 0.0),
        ("AIY", "RIA", 101.0, 0.0),
        ("ASH", "AVA", 26.0, 0.0),
    ] {
        assert_eq!(c.weight(pre, post, chem), fwd, "{pre}→{post}");
        assert_eq!(c.weight(post, pre, chem), back, "{post}→{pre}");
    }
    let names: Vec<String> = ["AVD", "AVA"].map(String::from).to_vec();
    let m = c.adjacency(&names, &[chem]);
    // m[target, source]: row AVA (1), column AVD (0) holds AVD → AVA.
    assert_eq!(m[[1, 0]], 167.0);
    assert_eq!(m[[0, 1]], 14.0);
}

#[test]
fn a_file_of_another_layout_is_refused_with_the_understood_format() {
    let p = std::env::temp_dir().join(format!("sbtg-conn-{}.csv", std::process::id()));
    std::fs::write(&p, "source,target,weight\nA,B,1\n").unwrap();
    let err = Connectome::read_edge_csv(&p).unwrap_err().to_string();
    assert!(err.contains("pre,post,type,weight"), "{err}");
}
