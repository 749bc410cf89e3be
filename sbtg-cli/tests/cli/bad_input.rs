//! Bad input: every case ends with exit code 2 and a message that names the file (or
//! the setting), the field and the fix; never a panic, never a silent NaN result, and
//! nothing written into the output folder.

use std::path::PathBuf;

use super::support::{refused, s, sbtg, tmp};

/// A valid recording: AVAL drives AVAR, RIML independent; 400 frames at 4 fps.
fn good_rows(nan_run: bool) -> String {
    let mut rows = String::from("time_s,AVAL,AVAR,RIML\n");
    let (mut a, mut b, mut c) = (0.0f64, 0.0f64, 0.0f64);
    for t in 0..400 {
        let e = |k: f64| ((t as f64 * 12.9898 + k * 78.233).sin() * 43758.5453).fract() - 0.5;
        let (na, nb, nc) = (
            0.5 * a + e(1.0),
            0.5 * b + 0.6 * a + e(2.0),
            0.5 * c + e(3.0),
        );
        (a, b, c) = (na, nb, nc);
        let bv = if nan_run && (100..160).contains(&t) {
            "nan".to_string()
        } else {
            format!("{b:.5}")
        };
        rows.push_str(&format!("{},{a:.5},{bv},{c:.5}\n", t as f64 * 0.25));
    }
    rows
}

#[test]
fn bad_recordings_are_refused_with_file_field_and_fix() {
    let d = tmp("rec");
    let header = "time_s,AVAL,AVAR,RIML\n";
    let cases: Vec<(&str, String, &[&str], Vec<&str>)> = vec![
        (
            "empty file",
            String::new(),
            &[],
            vec!["header", "the file is empty"],
        ),
        (
            "header only",
            header.into(),
            &[],
            vec!["rows", "at least two time points"],
        ),
        (
            "non-numeric cell",
            format!("{header}0,1,2,3\n0.25,abc,3,4\n0.5,2,1,5\n"),
            &[],
            vec!["line 3, column AVAL", "`abc` is not a number"],
        ),
        (
            "+inf",
            format!("{header}0,1,2,3\n0.25,inf,3,4\n0.5,2,1,5\n"),
            &[],
            vec!["column AVAL", "inf", "replace infinities with nan"],
        ),
        (
            "-inf",
            format!("{header}0,1,2,3\n0.25,2,-inf,4\n0.5,2,1,5\n"),
            &[],
            vec!["column AVAR", "-inf"],
        ),
        (
            "NaN-only neuron",
            format!("{header}0,1,nan,3\n0.25,2,nan,4\n0.5,3,nan,5\n"),
            &[],
            vec!["column AVAR", "no observed sample", "drop the neuron"],
        ),
        (
            "constant neuron",
            (0..20)
                .map(|t| format!("{},{},2,{}\n", t as f64 * 0.25, t % 3 + 1, (t * 7) % 5))
                .fold(header.to_string(), |s, row| s + &row),
            &["--neurons", "AVAL,AVAR,RIML"],
            vec!["column AVAR", "constant (zero variance)", "--neurons"],
        ),
        (
            "duplicate names",
            "time_s,AVAL,AVAL,RIML\n0,1,2,3\n0.25,2,1,4\n0.5,3,2,5\n".into(),
            &[],
            vec!["column AVAL", "duplicate neuron name"],
        ),
        (
            "time going back",
            format!("{header}0,1,2,3\n0.5,2,1,4\n0.25,3,2,5\n"),
            &[],
            vec!["time_s"],
        ),
        (
            "shorter than the window",
            format!("{header}0,1,2,3\n0.25,2,1,4\n0.5,3,2,1\n"),
            &["--lags", "3"],
            vec![
                "3 frames, fewer than the 13 needed",
                "use fewer lags or more frames",
            ],
        ),
        (
            "fewer than two neurons",
            good_rows(false),
            &["--neurons", "AVAL"],
            vec!["neurons", "list at least two"],
        ),
        (
            "unknown --neurons",
            good_rows(false),
            &["--neurons", "AVAL,AVAX"],
            vec!["AVAX", "check its spelling"],
        ),
        (
            "training loss not finite",
            good_rows(false),
            &["--learning-rate", "1e8", "--epochs", "5"],
            vec!["loss became", "lower --learning-rate"],
        ),
        (
            "random-effects pooling of one recording",
            good_rows(false),
            &["--pooling", "random-effects"],
            vec!["pooling", "needs 3 or more recordings", "--pooling fixed"],
        ),
        (
            "autoregressive order out of range",
            good_rows(false),
            &["--method", "prewhitened-correlation", "--ar-order", "0"],
            vec!["ar-order", "must lie in 1..=20"],
        ),
        (
            "more global factors than neurons",
            good_rows(false),
            &["--global-factors", "2"],
            vec![
                "global_factors",
                "only 3 neurons are present",
                "use fewer factors",
            ],
        ),
    ];
    for (k, (case, text, extra, fragments)) in cases.into_iter().enumerate() {
        let dir = d.join(format!("c{k}"));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("w.traces.csv");
        std::fs::write(&file, text).unwrap();
        let out = d.join(format!("out{k}"));
        let mut args = vec!["infer", s(&dir), "--out", s(&out)];
        args.extend_from_slice(extra);
        let mut expect = fragments.clone();
        let name = format!("c{k}/w.traces.csv");
        if ![
            "shorter than the window",
            "fewer than two neurons",
            "unknown --neurons",
            "training loss not finite",
            "random-effects pooling of one recording",
            "autoregressive order out of range",
        ]
        .contains(&case)
        {
            expect.push(&name);
        }
        refused(case, &args, &expect);
        assert!(!out.join("edges.csv").exists(), "{case}: results written");
    }
    std::fs::remove_dir_all(&d).unwrap();
}

/// A run of missing samples is masked, not an error: the edges of that neuron are
/// finite and AVAL → AVAR is found.
#[test]
fn a_run_of_missing_samples_is_masked_not_propagated() {
    let d = tmp("nanrun");
    std::fs::write(d.join("w.traces.csv"), good_rows(true)).unwrap();
    let out = d.join("out");
    let o = sbtg(&["infer", s(&d), "--out", s(&out), "--epochs", "3"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let edges = std::fs::read_to_string(out.join("edges.csv")).unwrap();
    let mut found = false;
    for line in edges.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        // mu, effect, se, ci_low, ci_high, t, p, q
        for v in &f[3..11] {
            assert!(v.parse::<f64>().unwrap().is_finite(), "{line}");
        }
        found |= f[0] == "AVAL" && f[1] == "AVAR" && f[11] == "mean" && f[12] == "true";
    }
    assert!(found, "AVAL → AVAR not selected:\n{edges}");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn bad_comparisons_are_refused_with_file_field_and_fix() {
    let d = tmp("cmp");
    let fixtures = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/connectome"
    ));
    // A circuit with a name that is no C. elegans cell.
    let rec = d.join("rec");
    std::fs::create_dir_all(&rec).unwrap();
    std::fs::write(
        rec.join("w.traces.csv"),
        good_rows(false)
            .replacen("AVAR", "AVDL", 1)
            .replacen("RIML", "NEURONX", 1),
    )
    .unwrap();
    let circ = d.join("circ");
    assert!(sbtg(&[
        "infer",
        s(&rec),
        "--out",
        s(&circ),
        "--method",
        "lagged-correlation"
    ])
    .status
    .success());
    let cook = fixtures.join("cook_small_valid.xlsx");
    refused(
        "unknown neuron names",
        &[
            "compare",
            s(&circ),
            "--connectome",
            s(&cook),
            "--out",
            s(&d.join("c1")),
        ],
        &["circ/edges.csv", "NEURONX", "--allow-unknown"],
    );
    let o = sbtg(&[
        "compare",
        s(&circ),
        "--connectome",
        s(&cook),
        "--out",
        s(&d.join("c2")),
        "--allow-unknown",
        "--permutations",
        "10",
        "--bootstrap",
        "0",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    refused(
        "spreadsheet without the expected sheet",
        &[
            "compare",
            s(&circ),
            "--connectome",
            s(&fixtures.join("cook_without_gap_sheet.xlsx")),
            "--out",
            s(&d.join("c3")),
        ],
        &[
            "cook_without_gap_sheet.xlsx",
            "hermaphrodite gap jn symmetric",
            "missing",
        ],
    );
    let empty = d.join("empty.csv");
    std::fs::write(&empty, "").unwrap();
    refused(
        "empty connectome",
        &[
            "compare",
            s(&circ),
            "--connectome",
            s(&empty),
            "--out",
            s(&d.join("c4")),
        ],
        &["empty.csv"],
    );
    refused(
        "not a result folder",
        &[
            "compare",
            s(&rec),
            "--connectome",
            s(&cook),
            "--out",
            s(&d.join("c5")),
        ],
        &["edges.csv", "sbtg infer"],
    );
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn bad_benchmark_settings_are_refused_with_the_fix() {
    let out = tmp("bench-bad").join("out");
    for value in ["--worm-measurement-sd=-0.5", "--worm-measurement-sd=nan"] {
        refused(
            value,
            &["bench", "--quick", value, "--out", s(&out)],
            &["measurement-noise SD", "a number of 0 or more"],
        );
    }
    assert!(!out.exists(), "nothing is written for refused settings");
    let _ = std::fs::remove_dir_all(out.parent().unwrap());
}
