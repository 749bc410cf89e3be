//! Connectome readers on the shipped originals: totals, edge-by-edge agreement with an
//! independent conversion, orientation on known edges, and malformed files.

use std::path::PathBuf;

use sbtg_core::io::connectome::{
    self, CellAtlas, Connectome, ConnectomeFormat, Level, SynapseType,
};

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../datasets/connectomes")
        .join(name)
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/connectome")
        .join(name)
}

const SI5: &str = "SI 5 Connectome adjacency matrices, corrected July 2020.xlsx";
const SI7: &str = "SI 7 Cell class connectome adjacency matrices, corrected July 2020.xlsx";
const CHEM: SynapseType = SynapseType::Chemical;
const GAP: SynapseType = SynapseType::Electrical;

/// Every edge of `a` and `b` of the given types, compared one by one.
fn assert_same_edges(a: &Connectome, b: &Connectome, kinds: &[SynapseType]) {
    let pick = |c: &Connectome| -> Vec<_> {
        c.edges
            .iter()
            .filter(|(k, _)| kinds.contains(&k.2))
            .map(|(k, w)| (k.clone(), *w))
            .collect()
    };
    let (ea, eb) = (pick(a), pick(b));
    let only_a: Vec<_> = ea.iter().filter(|e| !eb.contains(e)).take(5).collect();
    let only_b: Vec<_> = eb.iter().filter(|e| !ea.contains(e)).take(5).collect();
    assert!(
        only_a.is_empty() && only_b.is_empty(),
        "{only_a:?} / {only_b:?}"
    );
}

#[test]
fn cook_cell_spreadsheet_matches_the_paper_and_the_independent_conversion() {
    let c = connectome::read(&data(SI5)).unwrap();
    assert_eq!(c.format, ConnectomeFormat::CookCell);
    assert_eq!(c.level, Level::Cell);
    assert_eq!(c.total(CHEM), 28_113.0);
    assert_eq!(c.total(GAP), 23_313.0);
    let csv = Connectome::read_edge_csv(&data("cook2019_herm_cell.csv")).unwrap();
    assert_same_edges(&c, &csv, &[CHEM, GAP]);
    // Zero-padded names are normalised; gap junctions are symmetric.
    assert!(c.nodes.contains("DA1") && !c.nodes.contains("DA01"));
    assert_eq!(c.weight("AVAL", "AVAR", GAP), c.weight("AVAR", "AVAL", GAP));
    assert!(c.weight("AVDL", "AVAL", CHEM) > c.weight("AVAL", "AVDL", CHEM));
}

#[test]
fn cook_class_spreadsheet_orientation_on_known_edges() {
    let c = connectome::read(&data(SI7)).unwrap();
    assert_eq!(c.format, ConnectomeFormat::CookClass);
    assert_eq!(c.level, Level::Class);
    let csv = Connectome::read_edge_csv(&data("cook2019_herm_class.csv")).unwrap();
    assert_same_edges(&c, &csv, &[CHEM, GAP]);
    for (pre, post, fwd, back) in [
        ("AVD", "AVA", 167.0, 14.0),
        ("AFD", "AIY", 54.0, 3.0),
        ("AIY", "AIZ", 137.0, 0.0),
        ("AIY", "RIA", 101.0, 0.0),
        ("ASH", "AVA", 26.0, 0.0),
    ] {
        assert_eq!(c.weight(pre, post, CHEM), fwd, "{pre}→{post}");
        assert_eq!(c.weight(post, pre, CHEM), back, "{post}→{pre}");
    }
    let names: Vec<String> = ["AVD", "AVA"].map(String::from).to_vec();
    let m = c.adjacency(&names, &[CHEM]);
    // m[target, source]: row AVA (1), column AVD (0) holds AVD → AVA.
    assert_eq!(m[[1, 0]], 167.0);
    assert_eq!(m[[0, 1]], 14.0);
}

#[test]
fn cell_level_summed_into_classes_reproduces_si7_on_known_edges() {
    let atlas = CellAtlas::cook2019().unwrap();
    let cells = connectome::read(&data(SI5)).unwrap().to_classes(&atlas);
    let classes = connectome::read(&data(SI7)).unwrap();
    for (pre, post) in [
        ("AVD", "AVA"),
        ("AFD", "AIY"),
        ("AIY", "AIZ"),
        ("AIY", "RIA"),
        ("ASH", "AVA"),
    ] {
        assert_eq!(
            cells.weight(pre, post, CHEM),
            classes.weight(pre, post, CHEM),
            "{pre}→{post}"
        );
        assert_eq!(
            cells.weight(post, pre, CHEM),
            classes.weight(post, pre, CHEM),
            "{post}→{pre}"
        );
    }
}

#[test]
fn witvliet_varshney_white_and_bentley_readers() {
    for (file, csv, fmt) in [
        (
            "witvliet_2020_7 adult.xlsx",
            "witvliet2021_adult7.csv",
            ConnectomeFormat::Witvliet,
        ),
        (
            "witvliet_2020_8 adult.xlsx",
            "witvliet2021_adult8.csv",
            ConnectomeFormat::Witvliet,
        ),
    ] {
        let c = connectome::read(&data(file)).unwrap();
        assert_eq!(c.format, fmt);
        let reference = Connectome::read_edge_csv(&data(csv)).unwrap();
        assert_same_edges(&c, &reference, &[CHEM, GAP]);
    }
    // Varshney: chemical = S + Sp (the R/Rp rows are the same synapses seen from the
    // receiving side; NMJ rows go to muscles). The independent conversion also counts
    // NMJ as chemical (7,804 = 6,394 + 1,410), so only the electrical layer and the
    // neuron-to-neuron chemical edges are compared with it.
    let v = connectome::read(&data("NeuronConnectFormatted.xlsx")).unwrap();
    assert_eq!(v.format, ConnectomeFormat::Varshney);
    assert_eq!(v.total(CHEM), 2_430.0 + 3_964.0);
    let reference = Connectome::read_edge_csv(&data("varshney2011.csv")).unwrap();
    assert_same_edges(&v, &reference, &[GAP]);
    assert_eq!(v.total(GAP), 1_777.0);
    // White 1986: each gap junction listed once (575 rows, 971 synapses, 14 on self
    // pairs), mirrored here: 2·971 − 14. Chemical as listed.
    let w = connectome::read(&data("white_1986_whole.tsv")).unwrap();
    assert_eq!(w.format, ConnectomeFormat::White);
    assert_eq!(w.total(CHEM), 7_943.0);
    assert_eq!(w.total(GAP), 2.0 * 971.0 - 14.0);
    let ma = connectome::read(&data("edgelist_MA.csv")).unwrap();
    assert_eq!(ma.format, ConnectomeFormat::Bentley);
    let reference = Connectome::read_edge_csv(&data("bentley2016_monoamine.csv")).unwrap();
    assert_same_edges(&ma, &reference, &[SynapseType::Monoamine]);
    assert_eq!(ma.kinds(), vec![SynapseType::Monoamine]);
    assert!(ma.weight("RIML", "ALML", SynapseType::Monoamine) >= 1.0);
    let np = connectome::read(&data("edgelist_NP.csv")).unwrap();
    assert_eq!(np.kinds(), vec![SynapseType::Neuropeptide]);
    assert_eq!(np.total(SynapseType::Neuropeptide), 8_931.0);
}

#[test]
fn a_spreadsheet_without_the_gap_junction_sheet_names_the_sheet() {
    let err = connectome::read(&fixture("cook_without_gap_sheet.xlsx"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("hermaphrodite gap jn symmetric") && err.contains("missing"),
        "{err}"
    );
}

#[test]
fn text_in_a_matrix_cell_names_the_cell() {
    let err = connectome::read(&fixture("cook_text_in_matrix.xlsx"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("cell F5") && err.contains("n/a"), "{err}");
    let ok = connectome::read(&fixture("cook_small_valid.xlsx")).unwrap();
    assert_eq!(ok.weight("AVDL", "AVAL", CHEM), 7.0);
    assert_eq!(ok.nodes.len(), 11);
}

#[test]
fn files_of_other_layouts_are_refused_with_the_understood_formats() {
    let err = connectome::read(&fixture("unknown_layout.xlsx"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("Witvliet") && err.contains("pre,post,type,weight"),
        "{err}"
    );
    let p = std::env::temp_dir().join(format!("sbtg-conn-{}.csv", std::process::id()));
    std::fs::write(&p, "source,target,weight\nA,B,1\n").unwrap();
    let err = connectome::read(&p).unwrap_err().to_string();
    assert!(err.contains("pre,post,type,weight"), "{err}");
    std::fs::write(&p, "pre,post,type,weight\nA,B,chemical,many\n").unwrap();
    let err = connectome::read(&p).unwrap_err().to_string();
    assert!(err.contains("line 2") && err.contains("many"), "{err}");
    let _ = std::fs::remove_file(&p);
}
