//! `sbtg infer --states`: per-state and differential rows from behaviour files, their
//! figures, and clear refusals of bad state input.

use std::path::Path;

use super::support::{refused, s, sbtg, stderr, tmp, write_wide};
use sbtg_core::data::simulate::{var1, NetworkSpec};

/// Two simulated recordings as wide CSV with a behaviour file each: `velocity` goes
/// negative in bouts of 12 frames every 40.
fn write_with_behaviour(dir: &Path, behaviour_rows: Option<usize>) {
    let spec = NetworkSpec {
        neurons: 5,
        frames: 400,
        recordings: 2,
        ..NetworkSpec::default()
    };
    let recs = var1(&spec).unwrap().recordings;
    write_wide(dir, &recs);
    for r in &recs {
        let rows = behaviour_rows.unwrap_or(r.frames());
        let mut text = String::from("time_s,velocity,reversal_vec\n");
        for k in 0..rows {
            let back = k % 40 < 12;
            text.push_str(&format!(
                "{},{},{}\n",
                k as f64 * r.dt,
                if back { -0.02 } else { 0.03 },
                u8::from(back)
            ));
        }
        std::fs::write(dir.join(format!("{}.behavior.csv", r.name)), text).unwrap();
    }
}

#[test]
fn states_add_per_state_and_differential_rows_and_panels() {
    let input = tmp("states-in");
    write_with_behaviour(&input, None);
    let out = tmp("states-out").join("run");
    let o = sbtg(&[
        "infer",
        s(&input),
        "--out",
        s(&out),
        "--method",
        "lagged-correlation",
        "--states",
        "reversal_vec>0",
        "--state-names",
        "reversal,forward",
    ]);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("state 1 `reversal`") && err.contains("bouts"),
        "{err}"
    );
    let text = std::fs::read_to_string(out.join("edges.csv")).unwrap();
    let header: Vec<&str> = text.lines().next().unwrap().split(',').collect();
    let col = header.iter().position(|c| *c == "state").unwrap();
    let count = |state: &str| {
        text.lines()
            .skip(1)
            .filter(|l| l.split(',').nth(col) == Some(state))
            .count()
    };
    // Lags 0 (10 unordered pairs) and 1 (20 ordered pairs) for each of the two states
    // and their difference; over all windows also the 10 direction tests.
    assert_eq!(count("all"), 40);
    for state in ["reversal", "forward", "reversal-forward"] {
        assert_eq!(count(state), 30, "{state}");
    }
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    let st = &summary["states"];
    assert_eq!(st["spec"], "reversal_vec>0");
    assert_eq!(st["differences"][0], "reversal-forward");
    // By default the differential p-values come from 19 circular shifts of the labels.
    let null = st["shift_null"].as_array().unwrap();
    assert_eq!(null.len(), 2, "one per lag");
    assert!(null
        .iter()
        .all(|c| c["shifts"] == 19 && c["null_values"].as_u64() > Some(0)));
    assert!(err.contains("circular shifts of the labels"), "{err}");
    // 10 bouts of 12 frames per recording; windows whose frames straddle a change are dropped.
    let frames = st["frames"].as_array().unwrap();
    let rev = frames.iter().find(|f| f["state"] == "reversal").unwrap();
    assert_eq!(
        (rev["frames"].as_u64(), rev["bouts"].as_u64()),
        (Some(120), Some(10))
    );
    let plot = sbtg(&["plot", s(&out)]);
    assert!(plot.status.success(), "{}", stderr(&plot));
    for lag in [0, 1] {
        assert!(out
            .join(format!("figures/circuit_states_lag{lag}.png"))
            .exists());
    }
}

#[test]
fn bad_states_are_refused_with_file_field_and_fix() {
    let input = tmp("states-bad");
    write_with_behaviour(&input, None);
    let out = tmp("states-bad-out").join("run");
    let run = |spec: &str| {
        vec![
            "infer".to_string(),
            s(&input).to_string(),
            "--out".into(),
            s(&out).to_string(),
            "--method".into(),
            "lagged-correlation".into(),
            "--states".into(),
            spec.to_string(),
        ]
    };
    let args = run("speed>0");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    refused(
        "missing column",
        &args,
        &["behavior.csv", "column speed", "velocity, reversal_vec"],
    );
    let args = run("velocity>5");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    refused(
        "rule matches nothing",
        &args,
        &["velocity>5", "matches no frame"],
    );
    let short = tmp("states-short");
    write_with_behaviour(&short, Some(350));
    let args = run("velocity<0");
    let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
    args[1] = s(&short);
    refused(
        "behaviour of another length",
        &args,
        &["behavior.csv", "rows", "350 rows", "400 frames"],
    );
    let args = run("velocity<0");
    let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
    args[5] = "granger";
    refused(
        "method without a series",
        &args,
        &["states", "sbtg or lagged-correlation"],
    );
    let mut args = run("velocity<0");
    args.extend(["--state-model", "separate", "--state-shifts", "5"].map(String::from));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    refused(
        "shifts with separate models",
        &args,
        &["state-shifts", "--state-model pooled"],
    );
}
