//! Reproducible, resumable, non-destructive runs: `run.json`, `--config`, `--resume`,
//! `--force`, `sbtg score`.

use std::path::Path;
use std::process::{Command, Stdio};

use super::support::{s, sbtg, stderr, tmp, write_wide};
use std::time::{Duration, Instant};

use sbtg_core::data::simulate::{var1, NetworkSpec};

/// Simulated recordings as wide CSV; `skip` leaves out some recordings (new data).
fn write_recordings(dir: &Path, frames: usize, take: std::ops::Range<usize>) {
    let spec = NetworkSpec {
        neurons: 5,
        frames,
        recordings: 4,
        density: 0.2,
        weight: (0.3, 0.5),
        ..NetworkSpec::default()
    };
    write_wide(dir, &var1(&spec).unwrap().recordings[take]);
}

fn read_json(p: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

fn same_tables(a: &Path, b: &Path, files: &[&str]) {
    for f in files {
        assert_eq!(
            std::fs::read(a.join(f)).unwrap(),
            std::fs::read(b.join(f)).unwrap(),
            "{f} differs between {} and {}",
            a.display(),
            b.display()
        );
    }
}

const TABLES: [&str; 4] = [
    "edges.csv",
    "recording_edges.csv",
    "loss.csv",
    "circuit.graphml",
];

#[test]
fn run_json_records_the_run_and_reproduces_it_bit_for_bit() {
    let d = tmp("manifest");
    let input = d.join("in");
    std::fs::create_dir_all(&input).unwrap();
    write_recordings(&input, 300, 0..2);
    let a = d.join("a");
    let o = sbtg(&[
        "infer",
        s(&input),
        "--out",
        s(&a),
        "--epochs",
        "3",
        "--lags",
        "1,2",
        "--seed",
        "5",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let m = read_json(&a.join("run.json"));
    assert_eq!(m["format"], "sbtg-run/1");
    assert_eq!(m["status"], "complete");
    assert_eq!(m["command"], "infer");
    assert_eq!(m["seed"], 5);
    assert_eq!(m["config"]["epochs"], 3);
    assert_eq!(m["config"]["lags"], serde_json::json!([1, 2]));
    assert_eq!(
        m["config"]["learning-rate"], 1e-3,
        "defaults are recorded too"
    );
    assert!(m["sbtg_version"].as_str().unwrap().starts_with("0."));
    assert!(!m["git_commit"].as_str().unwrap().is_empty());
    assert!(m["threads"].as_u64().unwrap() >= 1);
    for stage in ["read", "panel", "train", "edge_tests", "write", "total"] {
        assert!(
            m["seconds"][stage].as_f64().unwrap() >= 0.0,
            "stage {stage}"
        );
    }
    // Inputs: every recording file with its SHA-256.
    let inputs = m["inputs"].as_array().unwrap();
    assert_eq!(inputs.len(), 2);
    for i in inputs {
        let bytes = std::fs::read(i["path"].as_str().unwrap()).unwrap();
        assert_eq!(i["sha256"], sbtg_core::io::manifest::sha256_hex(&bytes));
    }
    // Outputs: the tables and the 4 checkpoints (2 lags × 2 folds), with SHA-256.
    let outputs: Vec<&str> = m["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["path"].as_str().unwrap())
        .collect();
    assert!(
        outputs.contains(&"edges.csv") && outputs.contains(&"checkpoints/lag3-fold2.safetensors"),
        "{outputs:?}"
    );
    assert!(!a.join(".partial").exists());
    // Re-run from the manifest alone.
    let b = d.join("b");
    let o = sbtg(&["infer", "--config", s(&a.join("run.json")), "--out", s(&b)]);
    assert!(o.status.success(), "{}", stderr(&o));
    same_tables(&a, &b, &TABLES);
    let mb = read_json(&b.join("run.json"));
    assert_eq!(mb["config"]["seed"], 5);
    assert_eq!(
        mb["inputs"].as_array().unwrap().len(),
        3,
        "the manifest read is an input too"
    );
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn toml_settings_sit_under_command_line_flags() {
    let d = tmp("toml");
    let input = d.join("in");
    std::fs::create_dir_all(&input).unwrap();
    write_recordings(&input, 300, 0..2);
    let toml = d.join("sbtg.toml");
    std::fs::write(
        &toml,
        format!("input = {:?}\nmethod = \"lagged-correlation\"\nalpha = 0.05\n\n[infer]\nlags = [1, 3]\n", s(&input)),
    )
    .unwrap();
    let out = d.join("out");
    let o = sbtg(&[
        "infer",
        "--config",
        s(&toml),
        "--out",
        s(&out),
        "--alpha",
        "0.2",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let m = read_json(&out.join("run.json"));
    assert_eq!(m["config"]["method"], "lagged-correlation");
    assert_eq!(m["config"]["lags"], serde_json::json!([1, 3]));
    assert_eq!(m["config"]["alpha"], 0.2, "the flag wins over the file");
    let summary = read_json(&out.join("summary.json"));
    assert_eq!(summary["fdr"]["alpha"], 0.2);
    // Unknown keys and wrong types name the file and the key.
    for (text, key) in [
        ("epoch = 3\n", "epoch"),
        ("epochs = \"many\"\n", "epochs"),
        ("lags = [1,\n", "toml"),
    ] {
        std::fs::write(&toml, text).unwrap();
        let o = sbtg(&[
            "infer",
            s(&input),
            "--config",
            s(&toml),
            "--out",
            s(&d.join("x")),
        ]);
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        let e = stderr(&o);
        assert!(
            e.contains("sbtg.toml") && e.contains(key) && !e.contains("panicked"),
            "{e}"
        );
    }
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn results_are_kept_unless_forced_and_a_failed_run_leaves_them_intact() {
    let d = tmp("force");
    let input = d.join("in");
    std::fs::create_dir_all(&input).unwrap();
    write_recordings(&input, 300, 0..2);
    let out = d.join("out");
    let run = |extra: &[&str]| {
        let mut a = vec!["infer", s(&input), "--out", s(&out)];
        a.extend_from_slice(extra);
        sbtg(&a)
    };
    assert!(run(&["--method", "lagged-correlation"]).status.success());
    let before: Vec<Vec<u8>> = ["edges.csv", "run.json", "summary.json"]
        .iter()
        .map(|f| std::fs::read(out.join(f)).unwrap())
        .collect();
    let o = run(&["--method", "lagged-correlation"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("already holds results") && stderr(&o).contains("--force"),
        "{}",
        stderr(&o)
    );
    // A forced run that fails (the window is longer than the recordings) keeps them.
    let o = run(&["--force", "--lags", "400", "--method", "lagged-correlation"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let after: Vec<Vec<u8>> = ["edges.csv", "run.json", "summary.json"]
        .iter()
        .map(|f| std::fs::read(out.join(f)).unwrap())
        .collect();
    assert_eq!(before, after);
    // A forced SBTG run replaces them; a later baseline run removes its checkpoints.
    assert!(run(&["--force", "--method", "sbtg", "--epochs", "1"])
        .status
        .success());
    assert!(out.join("checkpoints/lag3-fold1.safetensors").is_file());
    assert!(run(&["--force", "--method", "lagged-correlation"])
        .status
        .success());
    assert!(!out.join("checkpoints/lag1-fold1.safetensors").exists());
    assert!(
        !out.join("loss.csv").exists(),
        "stale loss.csv of the SBTG run removed"
    );
    std::fs::remove_dir_all(&d).unwrap();
}

/// A run killed after its first score models were saved, then resumed with
/// `--resume --out` only, gives byte-identical tables to an uninterrupted run.
#[test]
fn a_killed_run_resumes_to_the_uninterrupted_result() {
    let d = tmp("kill");
    let input = d.join("in");
    std::fs::create_dir_all(&input).unwrap();
    write_recordings(&input, 1200, 0..2);
    let args = |out: &Path| -> Vec<String> {
        [
            "--threads",
            "1",
            "infer",
            s(&input),
            "--out",
            s(out),
            "--epochs",
            "60",
            "--lags",
            "1,2",
            "--hidden",
            "32",
        ]
        .map(String::from)
        .to_vec()
    };
    let full = d.join("full");
    let o = Command::new(env!("CARGO_BIN_EXE_sbtg"))
        .args(args(&full))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let killed = d.join("killed");
    let mut child = Command::new(env!("CARGO_BIN_EXE_sbtg"))
        .args(args(&killed))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ck = killed.join(".partial/checkpoints");
    let t0 = Instant::now();
    loop {
        let n = std::fs::read_dir(&ck)
            .map(|r| {
                r.filter(|e| {
                    e.as_ref()
                        .unwrap()
                        .path()
                        .extension()
                        .is_some_and(|x| x == "safetensors")
                })
                .count()
            })
            .unwrap_or(0);
        if n >= 1 {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run finished before a checkpoint was seen"
        );
        assert!(t0.elapsed() < Duration::from_secs(300));
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "the run must still be going when killed"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!killed.join("edges.csv").exists());
    let saved = std::fs::read_dir(&ck).unwrap().count();
    assert!(saved < 4, "killed halfway: {saved} of 4 models saved");
    let o = sbtg(&["infer", "--resume", "--out", s(&killed)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("loaded from its checkpoint"),
        "{}",
        stderr(&o)
    );
    same_tables(&full, &killed, &TABLES);
    let summary = read_json(&killed.join("summary.json"));
    let loaded = summary["per_lag"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|l| l["folds"].as_array().unwrap())
        .filter(|f| f["loaded_from_checkpoint"] == true)
        .count();
    assert!((1..4).contains(&loaded), "{loaded}");
    // Nothing to resume any more.
    let o = sbtg(&["infer", "--resume", "--out", s(&killed)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no interrupted run"), "{}", stderr(&o));
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn score_tests_new_recordings_with_saved_models() {
    let d = tmp("score");
    let (train, new) = (d.join("train"), d.join("new"));
    std::fs::create_dir_all(&train).unwrap();
    std::fs::create_dir_all(&new).unwrap();
    write_recordings(&train, 400, 0..2);
    write_recordings(&new, 400, 2..4);
    let model = d.join("model");
    let o = sbtg(&["infer", s(&train), "--out", s(&model), "--epochs", "5"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = d.join("scored");
    let o = sbtg(&["score", s(&new), "--model", s(&model), "--out", s(&out)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let summary = read_json(&out.join("summary.json"));
    assert_eq!(
        summary["neurons"],
        read_json(&model.join("summary.json"))["neurons"]
    );
    assert_eq!(summary["per_lag"][0]["folds"].as_array().unwrap().len(), 5);
    let m = read_json(&out.join("run.json"));
    assert_eq!(m["command"], "score");
    assert!(m["inputs"].as_array().unwrap().iter().any(|i| i["path"]
        .as_str()
        .unwrap()
        .ends_with("lag3-fold2.safetensors")));
    let edges = std::fs::read_to_string(out.join("edges.csv")).unwrap();
    // Lag 1: 20 ordered pairs × (mean, volatility) and 10 direction tests; lag 0: 10
    // unordered pairs.
    assert_eq!(edges.lines().count(), 1 + 2 * 20 + 10 + 10);
    // A baseline run has no models; a folder without run.json is no model.
    let lc = d.join("lc");
    assert!(sbtg(&[
        "infer",
        s(&train),
        "--out",
        s(&lc),
        "--method",
        "lagged-correlation"
    ])
    .status
    .success());
    for m in [&lc, &train] {
        let o = sbtg(&["score", s(&new), "--model", s(m), "--out", s(&d.join("x"))]);
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        assert!(
            stderr(&o).contains("--model") || stderr(&o).contains("no score models"),
            "{}",
            stderr(&o)
        );
    }
    std::fs::remove_dir_all(&d).unwrap();
}
