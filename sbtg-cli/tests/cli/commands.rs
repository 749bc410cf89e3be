//! The `sbtg` binary end to end: files in, tables out, clear errors with exit code 2.

use std::path::Path;
use std::process::Command;

use super::support::{tmp, write_wide};

use sbtg_core::data::simulate::{var1, NetworkSpec};

/// Runs `sbtg infer INPUT --out OUT EXTRA…`.
fn run_infer(input: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sbtg"))
        .args([
            "infer",
            input.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .args(extra)
        .output()
        .unwrap()
}

/// Writes simulated recordings as wide CSV (`time_s`, one column per neuron).
fn write_recordings(dir: &Path) {
    let spec = NetworkSpec {
        neurons: 5,
        frames: 300,
        recordings: 2,
        ..NetworkSpec::default()
    };
    write_wide(dir, &var1(&spec).unwrap().recordings);
}

#[test]
fn infer_writes_edges_summary_and_loss() {
    let input = tmp("in");
    write_recordings(&input);
    let out = tmp("out").join("run");
    let o = run_infer(&input, &out, &["--epochs", "2"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("5 neurons kept") && stderr.contains("selected at"),
        "{stderr}"
    );
    for f in ["edges.csv", "summary.json", "loss.csv"] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["neurons"].as_array().unwrap().len(), 5);
    // Lags 0 and 1 in the windows [x_{t−2}, x_{t−1}, x_t, x_{t+1}] (three past frames).
    assert_eq!(summary["per_lag"][0]["lag"], 0);
    assert_eq!(summary["per_lag"][0]["windows"], 2 * 297);
    // Lag 1: 5 × 4 ordered pairs × (mean, volatility); lag 0: 10 unordered pairs.
    assert_eq!(summary["fdr"]["family_size"], 2 * 5 * 4 + 5 * 4 / 2);
    assert!(summary["sign_convention"]
        .as_str()
        .unwrap()
        .contains("positive = excitatory"));
}

#[test]
fn bad_input_names_file_and_field_and_exits_2() {
    let input = tmp("bad");
    std::fs::write(
        input.join("w1.traces.csv"),
        "time_s,AVAL,AVAR\n0,1,2\n1,x,3\n",
    )
    .unwrap();
    let out = tmp("badout").join("run");
    let o = run_infer(&input, &out, &[]);
    assert_eq!(o.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("w1.traces.csv") && stderr.contains("line 3, column AVAL"),
        "{stderr}"
    );
    assert!(!out.exists(), "nothing is written for a failed run");

    let o = run_infer(Path::new("/nonexistent-sbtg"), &out, &[]);
    assert_eq!(o.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("/nonexistent-sbtg"), "{stderr}");
    assert_eq!(
        stderr.to_lowercase().matches("no such file").count(),
        1,
        "{stderr}"
    );
}

fn run_compare(circuit: &Path, connectome: &Path, extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sbtg"))
        .args([
            "compare",
            circuit.to_str().unwrap(),
            "--connectome",
            connectome.to_str().unwrap(),
        ])
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn compare_writes_the_report_next_to_the_circuit() {
    let input = tmp("cmp-in");
    write_recordings(&input);
    let out = tmp("cmp-out").join("run");
    let o = run_infer(&input, &out, &["--method", "lagged-correlation"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!out.join("loss.csv").exists(), "no training, no loss.csv");
    let conn = out.join("wiring.csv");
    std::fs::write(
        &conn,
        "pre,post,type,weight\nN00,N01,chemical,3\nN02,N03,electrical,1\nN01,N04,chemical,2\n",
    )
    .unwrap();
    let o = run_compare(&out, &conn, &["--permutations", "50", "--bootstrap", "20"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("chemical") && stdout.contains("combined"),
        "{stdout}"
    );
    let report = out.join("compare-wiring-cell");
    for f in [
        "report.md",
        "metrics.json",
        "metrics.csv",
        "roc.png",
        "adjacency.svg",
    ] {
        assert!(report.join(f).is_file(), "{f} missing");
    }
    // Another circuit of the same recordings beside it, in the same report; one of
    // other neurons is refused.
    let other = out.parent().unwrap().join("partial");
    let o = run_infer(&input, &other, &["--method", "partial-correlation"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let beside_out = out.parent().unwrap().join("beside");
    let o = run_compare(
        &out,
        &conn,
        &[
            "--permutations",
            "10",
            "--bootstrap",
            "20",
            "--beside",
            other.to_str().unwrap(),
            "--out",
            beside_out.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("beside"));
    let md = std::fs::read_to_string(beside_out.join("report.md")).unwrap();
    assert!(
        md.contains("## Beside other circuits") && md.contains("partial-correlation"),
        "{md}"
    );
    // Partial correlation has no per-recording tests: the finding says there is no paired
    // interval rather than inventing one.
    assert!(
        md.contains("**Beside partial-correlation**") && md.contains("no paired interval"),
        "{md}"
    );
    let fewer = out.parent().unwrap().join("fewer");
    let o = run_infer(
        &input,
        &fewer,
        &[
            "--method",
            "partial-correlation",
            "--neurons",
            "N00,N01,N02",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = run_compare(
        &out,
        &conn,
        &[
            "--permutations",
            "10",
            "--beside",
            fewer.to_str().unwrap(),
            "--out",
            out.parent().unwrap().join("b2").to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("other neurons"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // Class level needs Cook classes: the simulated names have none.
    let o = run_compare(&out, &conn, &["--level", "class", "--permutations", "10"]);
    assert_eq!(o.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("match") && stderr.contains("class"),
        "{stderr}"
    );
}

#[test]
fn compare_refuses_bad_inputs_with_exit_2() {
    let dir = tmp("cmp-bad");
    let conn = dir.join("c.csv");
    std::fs::write(&conn, "pre,post,type,weight\nA,B,chemical,1\n").unwrap();
    // Not a circuit folder.
    let o = run_compare(&dir, &conn, &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("edges.csv"));
    // A file in no known layout.
    let odd = dir.join("odd.csv");
    std::fs::write(&odd, "from;to\nA;B\n").unwrap();
    let circuit = dir.join("circuit");
    std::fs::create_dir_all(dir.join("in")).unwrap();
    write_recordings(&dir.join("in"));
    let o = run_infer(
        &dir.join("in"),
        &circuit,
        &["--method", "lagged-correlation"],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = run_compare(&circuit, &odd, &["--out", dir.join("y").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("odd.csv") && stderr.contains("Understood"),
        "{stderr}"
    );
}

/// PNG width and height from the IHDR chunk.
fn png_size(path: &Path) -> (u32, u32) {
    let b = std::fs::read(path).unwrap();
    assert_eq!(&b[1..4], b"PNG", "{} is not a PNG", path.display());
    let be = |k: usize| u32::from_be_bytes([b[k], b[k + 1], b[k + 2], b[k + 3]]);
    (be(16), be(20))
}

#[test]
fn infer_at_several_lags_exports_the_circuit_and_plot_draws_every_figure() {
    let input = tmp("lags-in");
    write_recordings(&input);
    let out = tmp("lags-out").join("run");
    let o = run_infer(
        &input,
        &out,
        &["--epochs", "3", "--lags", "1,2", "--alpha", "0.5"],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stderr = String::from_utf8_lossy(&o.stderr);
    // Three past frames (the default): lags 1 and 2 share the windows of 4 frames.
    assert!(
        stderr.contains("lags 1, 2 (windows of 4 frames): training"),
        "{stderr}"
    );
    let edges = std::fs::read_to_string(out.join("edges.csv")).unwrap();
    let (rows, directions): (Vec<&str>, Vec<&str>) = edges
        .lines()
        .skip(1)
        .partition(|r| r.split(',').nth(11) != Some("direction"));
    // 5 neurons: 20 ordered pairs × 2 tests × 2 lags, one FDR family; and 10 unordered
    // pairs × 2 lags of direction tests, a family of their own.
    assert_eq!(rows.len(), 80);
    assert_eq!(directions.len(), 20);
    assert_eq!(
        rows.iter()
            .filter(|r| r.split(',').nth(2) == Some("2"))
            .count(),
        40
    );
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["per_lag"].as_array().unwrap().len(), 2);
    assert_eq!(summary["fdr"]["family_size"], 80);
    assert_eq!(summary["per_lag"][1]["folds"].as_array().unwrap().len(), 5);
    // The exports hold the selected rows, one file per test, and read back.
    let header: Vec<&str> = edges.lines().next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let selected_of = |test: &str| {
        rows.iter()
            .filter(|r| {
                let f: Vec<&str> = r.split(',').collect();
                f[col("selected")] == "true" && f[col("test")] == test
            })
            .count()
    };
    let selected = selected_of("mean");
    let vol = std::fs::read_to_string(out.join("volatility.graphml")).unwrap();
    let v = sbtg_core::io::circuit::export::from_graphml(&vol, &out.join("volatility.graphml"))
        .unwrap();
    assert_eq!(v.graph.edge_count(), selected_of("volatility"));
    let graphml = std::fs::read_to_string(out.join("circuit.graphml")).unwrap();
    let g = sbtg_core::io::circuit::export::from_graphml(&graphml, &out.join("circuit.graphml"))
        .unwrap();
    assert_eq!(g.graph.edge_count(), selected);
    assert_eq!(g.graph.node_count(), 5);
    let json = std::fs::read_to_string(out.join("circuit.json")).unwrap();
    let j = sbtg_core::io::circuit::export::from_json(&json, &out.join("circuit.json")).unwrap();
    assert_eq!(j.graph.edge_count(), selected);
    let dot = std::fs::read_to_string(out.join("circuit.dot")).unwrap();
    assert_eq!(dot.matches(" -> ").count(), selected);
    let loss = std::fs::read_to_string(out.join("loss.csv")).unwrap();
    // One model per fold serves both lags; it is listed with the larger one.
    // Early stopping (the default) adds the validation loss of every epoch.
    assert!(
        loss.starts_with("lag,fold,epoch,loss,validation_loss\n2,1,1,"),
        "{loss}"
    );
    assert_eq!(loss.lines().count(), 1 + 5 * 3); // 5 block folds × 3 epochs

    let o = Command::new(env!("CARGO_BIN_EXE_sbtg"))
        .args(["plot", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let figs = out.join("figures");
    for stem in [
        "circuit_lags",
        "adjacency_lag1",
        "adjacency_lag2",
        "lag_profile",
        "degrees",
        "loss",
        "pvalue_qq",
    ] {
        let (w, h) = png_size(&figs.join(format!("{stem}.png")));
        assert!(w >= 700 && h >= 500, "{stem}: {w}×{h}");
        let svg = std::fs::read_to_string(figs.join(format!("{stem}.svg"))).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
            "{stem}.svg"
        );
    }
    // Two lag panels side by side; every neuron labelled once per panel.
    assert!(png_size(&figs.join("circuit_lags.png")).0 >= 2 * 700);
    let svg = std::fs::read_to_string(figs.join("circuit_lags.svg")).unwrap();
    for k in 0..5 {
        assert_eq!(
            svg.matches(&format!(">\nN0{k}\n</text>")).count(),
            2,
            "N0{k}"
        );
    }
    assert!(
        svg.contains("lag 2 (2 s): "),
        "panel title with the lag in seconds"
    );
    let qq = std::fs::read_to_string(figs.join("pvalue_qq.svg")).unwrap();
    assert!(qq.contains("lag 2, volatility test"));
}

/// `sbtg bench --quick` runs every method on every family and on the shipped recordings,
/// and writes results.csv, results.md and the AUROC figure with sane numbers.
#[test]
fn quick_benchmark_runs_every_method_on_every_data_set() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = tmp("bench");
    let o = Command::new(env!("CARGO_BIN_EXE_sbtg"))
        .current_dir(&root)
        .args(["bench", "--quick", "--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut rdr = csv::Reader::from_path(out.join("results.csv")).unwrap();
    let header = rdr.headers().unwrap().clone();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let rows: Vec<csv::StringRecord> = rdr.records().map(|r| r.unwrap()).collect();
    let methods = [
        "sbtg",
        "lagged-correlation",
        "prewhitened-correlation",
        "partial-correlation",
        "granger",
        "pairwise-granger",
        "pcmci",
    ];
    let datasets = [
        "var1",
        "var2-lag2",
        "tanh",
        "regime-switching",
        "calcium-like",
        "null",
        "worm-like",
        "worm-null",
        "dag2023",
    ];
    assert_eq!(rows.len(), methods.len() * datasets.len());
    let get = |d: &str, m: &str, c: &str| -> f64 {
        let r = rows
            .iter()
            .find(|r| &r[col("dataset")] == d && &r[col("method")] == m)
            .unwrap_or_else(|| panic!("no row {d} {m}"));
        r[col(c)].parse().unwrap()
    };
    for m in methods {
        // The simple linear network is found by every method.
        assert!(get("var1", m, "auroc") > 0.9, "{m}");
        // The null family has no true edges; the conditional methods select (almost)
        // nothing at FDR 0.1.
        assert!(get("null", m, "auroc").is_nan());
        if m != "lagged-correlation" && m != "pairwise-granger" {
            assert!(get("null", m, "selected") <= 2.0, "{m}");
        }
        let real = get("dag2023", m, "auroc");
        assert!(real > 0.45 && real < 0.75, "{m}: {real}");
    }
    // Lagged correlation through the same code reproduces the documented real-data AUROC.
    assert!((get("dag2023", "lagged-correlation", "auroc") - 0.631).abs() < 0.0015);
    // The lag-2-only VAR is attributed to lag 2 by the conditional methods.
    assert!(get("var2-lag2", "granger", "lag_attribution") > 0.9);
    let md = std::fs::read_to_string(out.join("results.md")).unwrap();
    for m in methods {
        assert!(md.contains(&format!("| var1 | {m} |")), "{md}");
    }
    assert!(md.contains("## Real data: dag2023"));
    assert!(md.contains("SBTG conditions on 3 past frames"));
    // The false rows by kind never outnumber the false rows, and the table lists them.
    assert!(md.contains("## False rows by kind"));
    assert!(md.contains("| calcium-like | sbtg |"));
    for r in &rows {
        let n = |c: &str| -> usize { r[col(c)].parse().unwrap() };
        let kinds = n("false_other_lag")
            + n("false_reversed")
            + n("false_partner")
            + n("false_two_step")
            + n("false_shared_input");
        assert!(kinds <= n("false_selected") && n("false_selected") <= n("selected"));
        assert!(n("false_partner") <= n("false_bilateral"));
    }
    assert!(std::fs::metadata(out.join("auroc.png")).unwrap().len() > 10_000);
    assert!(out
        .join("dag2023-pcmci/compare-cook2019-cell/report.md")
        .exists());
}

/// `sbtg bench --training`: every recipe on both data sets, on one thread and on two;
/// candle and the fused step train the same model (same start, batches and noise).
#[test]
fn training_benchmark_times_every_recipe_and_engines_agree() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = tmp("bench-training");
    let o = Command::new(env!("CARGO_BIN_EXE_sbtg"))
        .current_dir(&root)
        .args([
            "--threads",
            "2",
            "bench",
            "--training",
            "--quick",
            "--epochs",
            "1",
        ])
        .args(["--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut rdr = csv::Reader::from_path(out.join("training.csv")).unwrap();
    let header = rdr.headers().unwrap().clone();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let rows: Vec<csv::StringRecord> = rdr.records().map(|r| r.unwrap()).collect();
    // 5 recipes on one thread and the 4 fused ones on two threads, per data set.
    assert_eq!(rows.len(), 2 * 9);
    let num = |r: &csv::StringRecord, c: &str| -> f64 { r[col(c)].parse().unwrap() };
    let find = |d: &str, recipe: &str, threads: &str| {
        rows.iter()
            .find(|r| {
                &r[col("dataset")] == d
                    && r[col("recipe")].starts_with(recipe)
                    && &r[col("threads")] == threads
            })
            .unwrap_or_else(|| panic!("no row {d} {recipe} {threads}"))
    };
    for d in ["dag2023", "worm-like"] {
        let fused = find(d, "fused, random start", "1");
        let candle = find(d, "candle, random start", "1");
        assert_eq!(num(fused, "epochs"), 1.0);
        let (a, b) = (num(fused, "heldout_loss"), num(candle, "heldout_loss"));
        assert!((a - b).abs() < 1e-3 * a, "{d}: fused {a}, candle {b}");
        for r in rows
            .iter()
            .filter(|r| &r[col("dataset")] == d && &r[col("threads")] == "1")
        {
            for c in [
                "seconds_per_fit",
                "steps_per_second",
                "gflops",
                "gemm_fraction",
            ] {
                assert!(num(r, c) > 0.0, "{d} {} {c}", &r[col("recipe")]);
            }
        }
        for early in [
            find(
                d,
                "fused, Gaussian start, early stopping (patience 10)",
                "1",
            ),
            find(
                d,
                "fused, Gaussian start, early stopping (patience 10), Adam",
                "1",
            ),
        ] {
            assert!(num(early, "best_epoch") <= num(early, "epochs"));
        }
        assert_eq!(num(find(d, "fused, Gaussian start, 1", "2"), "fits"), 5.0);
    }
    // Curves: a point per epoch, and the start for a Gaussian start.
    let curves = std::fs::read_to_string(out.join("training_curves.csv")).unwrap();
    let points = |recipe: &str| {
        curves
            .lines()
            .filter(|l| l.starts_with("dag2023,") && l.contains(recipe))
            .count()
    };
    assert_eq!(points("fused, random start, 1 epochs"), 1);
    assert_eq!(points("fused, Gaussian start, 1 epochs"), 2);
    assert!(
        std::fs::metadata(out.join("time_to_quality.png"))
            .unwrap()
            .len()
            > 10_000
    );
    assert!(std::fs::read_to_string(out.join("training.md"))
        .unwrap()
        .contains("| dag2023 | candle, random start, 1 epochs | 1 |"));
}

/// A baseline given too few frames for its model says how many it needs and exits 2.
#[test]
fn baseline_on_too_short_a_recording_is_a_clear_error() {
    let dir = tmp("short");
    let mut s = String::from("time_s,A,B,C\n");
    for t in 0..8 {
        let v = t as f64;
        s.push_str(&format!(
            "{t},{},{},{}\n",
            v.sin(),
            (2.0 * v).cos(),
            (0.5 * v).sin()
        ));
    }
    let file = dir.join("short.traces.csv");
    std::fs::write(&file, s).unwrap();
    for method in [
        "granger",
        "partial-correlation",
        "pairwise-granger",
        "pcmci",
    ] {
        let o = run_infer(&file, &dir.join(method), &["--method", method]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{method}: {err}");
        assert!(
            err.contains("use fewer lags or more frames"),
            "{method}: {err}"
        );
        assert!(!dir.join(method).join("edges.csv").exists());
    }
}

#[test]
fn infer_reads_a_neuropal_file_and_cuts_a_stimulus_window() {
    let mat = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/formats/neuropal.mat");
    let out = tmp("stim").join("run");
    let o = run_infer(
        &mat,
        &out,
        &[
            "--stimulus",
            "nacl",
            "--window",
            "pre",
            "--window-seconds",
            "10",
            "--neurons",
            "AVA,AIY,IL2D",
            "--min-recordings",
            "1",
            "--method",
            "lagged-correlation",
        ],
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("stimulus nacl, pre: 3 cuts of 40–40 frames"),
        "{stderr}"
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["neurons"].as_array().unwrap().len(), 3, "{summary}");
    assert_eq!(summary["stimulus_window"]["window"], "pre");
    // Worm 1 saw nacl at 40.5–45.5 s; its cut keeps that presentation.
    assert_eq!(summary["recordings"][0]["stimuli"][0]["onset_s"], 40.5);

    // An unknown stimulus, or a stimulus without a window, exits 2 and says why.
    let o = run_infer(
        &mat,
        &tmp("stim2").join("run"),
        &["--stimulus", "salt", "--window", "during"],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("butanone, nacl, pentanedione"));
    let o = run_infer(&mat, &tmp("stim3").join("run"), &["--stimulus", "nacl"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--window"));
}
