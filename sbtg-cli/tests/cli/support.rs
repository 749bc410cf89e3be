//! Helpers shared by the command-line tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sbtg_core::data::Recording;

/// Runs `sbtg ARGS`.
pub fn sbtg(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sbtg"))
        .args(args)
        .output()
        .unwrap()
}

/// A fresh, empty temporary folder for one test.
pub fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sbtg-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A recording as wide CSV text (`time_s`, one column per neuron) with separator `sep`.
pub fn wide_csv(r: &Recording, sep: char) -> String {
    let header: Vec<&str> = std::iter::once("time_s")
        .chain(r.neurons.iter().map(String::as_str))
        .collect();
    let mut out = header.join(&sep.to_string());
    out.push('\n');
    for (t, row) in r.values.rows().into_iter().enumerate() {
        let mut cells = vec![(t as f64 * r.dt).to_string()];
        cells.extend(row.iter().map(|v| v.to_string()));
        out.push_str(&cells.join(&sep.to_string()));
        out.push('\n');
    }
    out
}

/// Writes recordings as `<name>.traces.csv` into `dir`.
pub fn write_wide(dir: &Path, recordings: &[Recording]) {
    for r in recordings {
        std::fs::write(dir.join(format!("{}.traces.csv", r.name)), wide_csv(r, ',')).unwrap();
    }
}

/// Runs `sbtg ARGS` expecting exit code 2 with every fragment in the message.
pub fn refused(case: &str, args: &[&str], fragments: &[&str]) {
    let o = sbtg(args);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{case}: {err}");
    assert!(!err.contains("panicked"), "{case}: {err}");
    for f in fragments {
        assert!(err.contains(f), "{case}: `{f}` not in: {err}");
    }
    eprintln!(
        "{case}: {}",
        err.lines()
            .filter(|l| l.starts_with("error"))
            .collect::<Vec<_>>()
            .join(" | ")
    );
}
