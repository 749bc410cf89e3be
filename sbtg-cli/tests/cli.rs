//! The `sbtg` binary end to end: files in, tables out, clear errors with exit code 2.

use std::path::{Path, PathBuf};
use std::process::Command;

use sbtg_core::simulate::{var1, NetworkSpec};

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

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sbtg-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Writes simulated recordings as wide CSV (`time_s`, one column per neuron).
fn write_recordings(dir: &Path) {
    let spec = NetworkSpec {
        neurons: 5,
        frames: 300,
        recordings: 2,
        ..NetworkSpec::default()
    };
    for r in var1(&spec).unwrap().recordings {
        let mut s = format!("time_s,{}\n", r.neurons.join(","));
        for (t, row) in r.values.rows().into_iter().enumerate() {
            let vals: Vec<String> = row.iter().map(|v| v.to_string()).collect();
            s.push_str(&format!("{},{}\n", t as f64 * r.dt, vals.join(",")));
        }
        std::fs::write(dir.join(format!("{}.traces.csv", r.name)), s).unwrap();
    }
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
        stderr.contains("5 neurons kept") && stderr.contains("edges selected"),
        "{stderr}"
    );
    for f in ["edges.csv", "summary.json", "loss.csv"] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["neurons"].as_array().unwrap().len(), 5);
    assert_eq!(summary["windows"], 2 * 299);
    assert_eq!(summary["fdr"]["family_size"], 2 * 5 * 4);
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
    assert_eq!(stderr.matches("No such file").count(), 1, "{stderr}");
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
    // A class-level connectome compared at cell level.
    let circuit = Path::new(env!("CARGO_MANIFEST_DIR")).join("../notebooks-out/dag2023-lag1");
    let si7 = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../datasets/connectomes/SI 7 Cell class connectome adjacency matrices, corrected July 2020.xlsx");
    let o = run_compare(&circuit, &si7, &["--out", dir.join("x").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--level class"));
    // A file in no known layout.
    let odd = dir.join("odd.csv");
    std::fs::write(&odd, "from;to\nA;B\n").unwrap();
    let o = run_compare(&circuit, &odd, &["--out", dir.join("y").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("odd.csv") && stderr.contains("Understood"),
        "{stderr}"
    );
}
