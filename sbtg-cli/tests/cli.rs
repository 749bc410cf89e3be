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
