//! Output files: columns, values and round trips.

use sbtg_core::estimate::FitContext;
use sbtg_core::io::write_outputs;
use sbtg_core::stats::TestKind;
use sbtg_core::{infer, EdgeTable};
use sbtg_tests::{config_with_epochs, small_var1};

fn small_run() -> EdgeTable {
    let (_, panel) = small_var1(6, 300, 2);
    infer(&panel, &config_with_epochs(2), &FitContext::quiet()).unwrap()
}

#[test]
fn edges_csv_round_trips_with_the_documented_columns() {
    let inf = small_run();
    let dir = std::env::temp_dir().join(format!("sbtg-out-{}", std::process::id()));
    write_outputs(&dir, &inf).unwrap();
    let mut rdr = csv::Reader::from_path(dir.join("edges.csv")).unwrap();
    let header: Vec<String> = rdr.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(
        header,
        [
            "source",
            "target",
            "lag",
            "mu",
            "effect",
            "se",
            "ci_low",
            "ci_high",
            "t",
            "p",
            "q",
            "test",
            "selected",
            "variance_floored",
            "directed",
            "state"
        ]
    );
    let rows: Vec<csv::StringRecord> = rdr.records().map(|r| r.unwrap()).collect();
    // 6 neurons: 30 ordered pairs per test, mean and volatility; 15 direction tests.
    assert_eq!(rows.len(), 60 + 15);
    assert_eq!(rows.len(), inf.rows.len());
    for (r, e) in rows.iter().zip(&inf.rows) {
        assert_eq!((&r[0], &r[1]), (e.source.as_str(), e.target.as_str()));
        assert_ne!(&r[0], &r[1], "no self edges");
        let mu: f64 = r[3].parse().unwrap();
        let effect: f64 = r[4].parse().unwrap();
        assert!((mu - e.mu).abs() <= 1e-9 * e.mu.abs());
        if e.test != TestKind::Volatility {
            assert_eq!(effect, -mu, "effect = −mu for the mean and direction tests");
        }
        let p: f64 = r[9].parse().unwrap();
        assert!(p > 0.0 && p <= 1.0);
        // t is the effect's statistic: its sign, and effect / se.
        let (se, t): (f64, f64) = (r[5].parse().unwrap(), r[8].parse().unwrap());
        assert!(t * effect >= 0.0, "t {t} against effect {effect}");
        assert!(
            (t - effect / se).abs() <= 1e-6 * t.abs().max(1.0),
            "t {t} against effect / se {}",
            effect / se
        );
        assert_eq!(&r[12] == "true", e.selected);
        assert_eq!(&r[13] == "true", e.variance_floored);
        assert_eq!(&r[14] == "true", e.directed());
        assert_eq!(
            &r[15], "all",
            "without --states every row is over all windows"
        );
    }
    let loss = std::fs::read_to_string(dir.join("loss.csv")).unwrap();
    assert_eq!(
        loss.lines().count(),
        1 + 5 * 2,
        "header + 5 block folds × 2 epochs"
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["neurons"].as_array().unwrap().len(), 6);
    // No temporary files are left behind.
    assert!(std::fs::read_dir(&dir).unwrap().all(|e| !e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .contains(".tmp")));
}
