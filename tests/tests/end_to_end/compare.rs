//! End to end: simulate a network, write its true graph as a connectome file, infer a
//! circuit, compare the two and check the report files.

use std::path::{Path, PathBuf};

use sbtg_core::data::simulate::{tanh_network, NetworkSpec};
use sbtg_core::data::{Panel, PanelConfig};
use sbtg_core::estimate::{FitContext, InferConfig, Method};
use sbtg_core::infer;
use sbtg_core::io::connectome::{self, CellAtlas};
use sbtg_core::io::{read_table, write_outputs};
use sbtg_core::report::compare::{beside, compare, markdown, CompareConfig, RankBy};

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sbtg-compare-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Writes the support of `coupling` (`[target, source]`) as `pre,post,type,weight`,
/// or its transpose.
fn write_truth(path: &Path, neurons: &[String], coupling: &ndarray::Array2<f64>, transpose: bool) {
    let mut s = String::from("pre,post,type,weight\n");
    for ((j, i), &a) in coupling.indexed_iter() {
        if i != j && a != 0.0 {
            let (pre, post) = if transpose { (j, i) } else { (i, j) };
            s.push_str(&format!(
                "{},{},chemical,{}\n",
                neurons[pre],
                neurons[post],
                1.0 + (10.0 * a.abs()).round()
            ));
        }
    }
    std::fs::write(path, s).unwrap();
}

/// PNG width and height from the IHDR chunk.
fn png_size(path: &Path) -> (u32, u32) {
    let b = std::fs::read(path).unwrap();
    assert_eq!(&b[1..4], b"PNG", "{} is not a PNG", path.display());
    let be = |k: usize| u32::from_be_bytes([b[k], b[k + 1], b[k + 2], b[k + 3]]);
    (be(16), be(20))
}

#[test]
fn simulated_network_is_found_against_its_own_connectome_and_the_report_is_complete() {
    let sim = tanh_network(&NetworkSpec::default()).unwrap();
    let panel = Panel::build(&sim.recordings, &PanelConfig::default()).unwrap();
    let mut cfg = sbtg_tests::config_with_epochs(20);
    cfg.tests.null = sbtg_core::stats::empirical_null::NullDistribution::Theoretical;
    let inf = infer(&panel, &cfg, &FitContext::quiet()).unwrap();
    let dir = tmp("run");
    write_outputs(&dir, &inf).unwrap();
    let truth = dir.join("truth.csv");
    write_truth(&truth, &panel.neurons, &sim.coupling, false);

    let circuit = read_table(&dir, Some(1)).unwrap();
    assert_eq!(circuit.recording_tests.len(), 3);
    let conn = connectome::read(&truth).unwrap();
    let atlas = CellAtlas::cook2019().unwrap();
    let cc = CompareConfig {
        bootstrap: 200,
        ..CompareConfig::default()
    };
    let c = compare(&circuit, 1, &conn, &atlas, &cc).unwrap();
    assert_eq!(c.selection, "Benjamini–Hochberg at q ≤ 0.1");
    // With the empirical null the report says so, with the spread read back from the
    // run's summary.json.
    let mut empirical_cfg = cfg.clone();
    empirical_cfg.tests.null = sbtg_core::stats::empirical_null::NullDistribution::Empirical;
    let empirical = infer(&panel, &empirical_cfg, &FitContext::quiet()).unwrap();
    let edir = tmp("run-empirical");
    write_outputs(&edir, &empirical).unwrap();
    let etab = read_table(&edir, Some(1)).unwrap();
    let spread = etab.summary.per_lag[0]
        .empirical_null
        .unwrap()
        .mean
        .unwrap();
    assert_eq!(
        Some(spread),
        empirical.summary.per_lag[0].empirical_null.unwrap().mean
    );
    let ce = compare(&etab, 1, &conn, &atlas, &cc).unwrap();
    assert!(
        ce.selection.contains(&format!(
            "empirical null (the mean tests at lag 1: σ̂ = {:.2}",
            spread.estimated
        )),
        "{}",
        ce.selection
    );
    assert!(markdown::markdown(&ce).contains(&ce.selection));
    // An edge list names only neurons with an edge; the others are reported unmatched.
    let n = panel.neurons.len();
    let isolated: Vec<String> = (0..n)
        .filter(|&k| {
            (0..n).all(|m| m == k || (sim.coupling[[k, m]] == 0.0 && sim.coupling[[m, k]] == 0.0))
        })
        .map(|k| connectome::normalise_name(&panel.neurons[k]))
        .collect();
    let unmatched: Vec<String> = c.unmatched.iter().map(|u| u.0.clone()).collect();
    assert_eq!(unmatched, isolated);
    let chem = &c.layers[0];
    assert_eq!(chem.layer, "chemical");
    eprintln!(
        "AUROC {:.3} CI {:?} null {:.3} p {:.4}; precision {:.3} (chance {:.3}); F1 p {:.4}",
        chem.auroc,
        chem.auroc_ci95,
        chem.auroc_null_mean,
        chem.auroc_p,
        chem.precision,
        chem.chance_precision,
        chem.f1_p
    );
    assert!(chem.auroc >= 0.9, "AUROC {}", chem.auroc);
    assert!(chem.auroc_p < 0.01, "permutation p {}", chem.auroc_p);
    assert_eq!(
        chem.auroc_p,
        1.0 / 1001.0,
        "no rewired graph should reach it"
    );
    assert!(chem.f1_p < 0.01 && chem.precision > 2.0 * chem.chance_precision);
    let (lo, hi) = chem.auroc_ci95.unwrap();
    assert!(lo <= hi && lo > 0.8, "CI {lo} {hi}");
    let d = c.direction.as_ref().unwrap();
    assert!(d.accuracy > 0.8, "direction accuracy {}", d.accuracy);

    // Orientation: the transposed truth scores far lower.
    let transposed = dir.join("transposed.csv");
    write_truth(&transposed, &panel.neurons, &sim.coupling, true);
    let ct = compare(
        &circuit,
        1,
        &connectome::read(&transposed).unwrap(),
        &atlas,
        &cc,
    )
    .unwrap();
    assert!(
        ct.layers[0].auroc < chem.auroc - 0.2,
        "transposed AUROC {}",
        ct.layers[0].auroc
    );

    // The same code ranks the lagged-correlation baseline.
    let corr_cfg = InferConfig::of(Method::LaggedCorrelation);
    let corr = infer(&panel, &corr_cfg, &FitContext::quiet()).unwrap();
    let cdir = tmp("corr");
    write_outputs(&cdir, &corr).unwrap();
    let ctab = read_table(&cdir, Some(1)).unwrap();
    assert_eq!(ctab.method(), Method::LaggedCorrelation);
    let by_effect = CompareConfig {
        rank_by: RankBy::Effect,
        bootstrap: 0,
        permutations: 100,
        ..CompareConfig::default()
    };
    let cc2 = compare(&ctab, 1, &conn, &atlas, &by_effect).unwrap();
    assert!(
        cc2.layers[0].auroc > 0.7,
        "lagged correlation AUROC {}",
        cc2.layers[0].auroc
    );
    assert!(cc2.layers[0].auroc_ci95.is_none());

    // The report: every file, figures of the declared size with their labels.
    let out = dir.join("compare");
    let written = markdown::write_report(&out, &c).unwrap();
    assert_eq!(written.len(), 13);
    for stem in ["roc", "pr", "confusion", "adjacency", "weights"] {
        let (w, h) = png_size(&out.join(format!("{stem}.png")));
        assert!(w >= 700 && h >= 500, "{stem}: {w}×{h}");
        let svg = std::fs::read_to_string(out.join(format!("{stem}.svg"))).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.contains("</svg>"),
            "{stem}.svg"
        );
    }
    let adjacency = std::fs::read_to_string(out.join("adjacency.svg")).unwrap();
    for name in &c.nodes {
        // Each label is a <text> element of its own (once per axis).
        let label = format!(">\n{name}\n</text>");
        assert_eq!(
            adjacency.matches(&label).count(),
            2,
            "{name} labels in adjacency.svg"
        );
    }
    let roc = std::fs::read_to_string(out.join("roc.svg")).unwrap();
    assert!(
        roc.contains(&format!("\nchemical: AUROC {:.3}", chem.auroc)),
        "ROC legend"
    );
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.starts_with("# SBTG circuit, lag 1, vs"), "{}", &md[..80]);
    assert!(
        md.contains(&format!("| chemical | {} | {} (", chem.pairs, chem.wired)),
        "{md}"
    );
    assert!(
        md.contains("significantly above the degree-preserving null"),
        "{md}"
    );
    let metrics: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(metrics["layers"][0]["auroc"].as_f64().unwrap(), chem.auroc);
    let csv = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    assert!(csv.starts_with("section,layer,metric,value,chance,ci_low,ci_high,p_value"));
    assert!(csv.contains("layer,chemical,auroc,"));
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&cdir);
}

/// Another circuit beside this one: the difference of AUROC and its interval from the
/// paired bootstrap resamples (by hand from the resamples' AUROCs); the same circuit
/// compared again with the same seed gives a difference of exactly 0 with a zero-width
/// interval (the resamples coincide), with another seed no paired interval; a circuit of
/// other neurons is refused.
#[test]
fn circuits_beside_each_other_pair_their_bootstrap_resamples() {
    let sim = tanh_network(&NetworkSpec::default()).unwrap();
    let panel = Panel::build(&sim.recordings, &PanelConfig::default()).unwrap();
    let dir = tmp("beside");
    let truth = dir.join("truth.csv");
    write_truth(&truth, &panel.neurons, &sim.coupling, false);
    let conn = connectome::read(&truth).unwrap();
    let atlas = CellAtlas::cook2019().unwrap();
    let cc = CompareConfig {
        permutations: 20,
        bootstrap: 100,
        ..CompareConfig::default()
    };
    let run = |method: Method, panel: &Panel| {
        let t = infer(panel, &InferConfig::of(method), &FitContext::quiet()).unwrap();
        compare(&t, 1, &conn, &atlas, &cc).unwrap()
    };
    let corr = run(Method::LaggedCorrelation, &panel);
    let granger = run(Method::Granger, &panel);
    let rows = beside(&corr, &granger).unwrap();
    assert_eq!(rows.len(), corr.layers.len());
    for (b, (l, o)) in rows.iter().zip(corr.layers.iter().zip(&granger.layers)) {
        assert_eq!(b.layer, l.layer);
        assert_eq!(b.auroc, o.auroc);
        assert_eq!(b.difference, l.auroc - o.auroc);
        let d: Vec<f64> = l
            .auroc_bootstrap
            .iter()
            .zip(&o.auroc_bootstrap)
            .map(|(a, b)| a - b)
            .collect();
        let mean = d.iter().sum::<f64>() / d.len() as f64;
        let sd = (d.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (d.len() - 1) as f64).sqrt();
        let (lo, hi) = b
            .difference_ci95
            .expect("both circuits have per-recording tests");
        assert!((hi - lo - 2.0 * 1.96 * sd).abs() < 1e-12, "{lo} {hi} {sd}");
        eprintln!(
            "{}: lagged correlation {:.3} − Granger {:.3} = {:+.3} [{lo:+.3}, {hi:+.3}]",
            b.layer, l.auroc, o.auroc, b.difference
        );
    }
    let again = run(Method::LaggedCorrelation, &panel);
    for b in beside(&corr, &again).unwrap() {
        assert_eq!(b.difference, 0.0);
        assert_eq!(b.difference_ci95, Some((0.0, 0.0)));
    }
    let other_seed = compare(
        &infer(
            &panel,
            &InferConfig::of(Method::Granger),
            &FitContext::quiet(),
        )
        .unwrap(),
        1,
        &conn,
        &atlas,
        &CompareConfig {
            seed: 7,
            ..cc.clone()
        },
    )
    .unwrap();
    assert!(beside(&corr, &other_seed)
        .unwrap()
        .iter()
        .all(|b| b.difference_ci95.is_none()));
    let fewer = Panel::build(
        &sim.recordings,
        &PanelConfig {
            neurons: Some(panel.neurons[..10].to_vec()),
            ..PanelConfig::default()
        },
    )
    .unwrap();
    let err = beside(&corr, &run(Method::LaggedCorrelation, &fewer)).unwrap_err();
    assert!(err.to_string().contains("other neurons"), "{err}");
}
