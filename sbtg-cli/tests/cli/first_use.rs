//! What a new user hits first, each with the files made here: documented commands that
//! must work, silent mistakes that must not happen, and the common export mistakes of a
//! lab, each answered with its fix.

use std::path::Path;

use sbtg_core::data::simulate::{var1_with, NetworkSpec};
use sbtg_core::data::Recording;

use super::support::{refused, s, sbtg, stderr, tmp, wide_csv, write_wide};

/// Three worms of a 4-neuron VAR(1) in which AVAL drives AVAR; names are C. elegans
/// cells, 300 frames at 1 s.
fn worms(names: [&str; 4]) -> Vec<Recording> {
    let spec = NetworkSpec {
        neurons: 4,
        density: 0.0,
        frames: 300,
        recordings: 3,
        seed: 9,
        ..NetworkSpec::default()
    };
    let mut a = ndarray::Array2::from_diag(&ndarray::Array1::from_elem(4, 0.5));
    a[[1, 0]] = 0.6;
    let mut recs = var1_with(&spec, a).unwrap().recordings;
    for r in &mut recs {
        r.neurons = names.iter().map(|n| n.to_string()).collect();
    }
    recs
}

fn read_json(p: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

/// Item 1: class-level comparison with SI 7, and cell-level comparisons with
/// connectomes that lack the pharyngeal neurons, run; the neurons a connectome does not
/// contain are listed in the report. Item 5: without `--level`, SI 7 is compared at
/// class level, into its own folder.
#[test]
fn comparisons_with_every_shipped_connectome_run_on_a_real_circuit() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let run = tmp("real-corr");
    let o = sbtg(&[
        "infer",
        s(&root.join("datasets/dag2023")),
        "--method",
        "lagged-correlation",
        "--out",
        s(&run),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let conn = |f: &str| root.join("datasets/connectomes").join(f);
    let si7 = conn("SI 7 Cell class connectome adjacency matrices, corrected July 2020.xlsx");
    let quick = ["--permutations", "20", "--bootstrap", "10"];
    for (file, level) in [
        (si7.clone(), Some("class")),
        (conn("witvliet_2020_7 adult.xlsx"), None),
        (conn("NeuronConnectFormatted.xlsx"), None),
        (conn("edgelist_MA.csv"), None),
    ] {
        let mut args = vec!["compare", s(&run), "--connectome", s(&file)];
        args.extend(quick);
        if let Some(l) = level {
            args.extend(["--level", l]);
        }
        let o = sbtg(&args);
        assert!(o.status.success(), "{}: {}", file.display(), stderr(&o));
    }
    let report = std::fs::read_to_string(run.join("compare-cook2019-class/report.md")).unwrap();
    assert!(
        report.contains("I1L") && report.contains("unmatched"),
        "{report}"
    );
    // Item 5: SI 7 alone is compared at its own (class) level.
    std::fs::remove_dir_all(run.join("compare-cook2019-class")).unwrap();
    let mut args = vec!["compare", s(&run), "--connectome", s(&si7)];
    args.extend(quick);
    let o = sbtg(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(run.join("compare-cook2019-class/metrics.json").is_file());
    assert!(!run.join("compare-cook2019-cell").exists());
    // A class-level file compared at cell level on purpose says what to do.
    let cell = run.join("cell-si7");
    let mut args = vec![
        "compare",
        s(&run),
        "--connectome",
        s(&si7),
        "--level",
        "cell",
    ];
    args.extend(["--out", s(&cell)]);
    refused(
        "SI 7 at cell level",
        &args,
        &["class-level connectome", "--level class"],
    );
    // A name that is no C. elegans cell stays an error, with its fix.
    let odd = tmp("odd-names");
    let mut recs = worms(["AVAL", "AVAR", "RIML", "NEURONX"]);
    recs.truncate(2);
    write_wide(&odd, &recs);
    let oddrun = odd.join("run");
    let o = sbtg(&[
        "infer",
        s(&odd),
        "--method",
        "lagged-correlation",
        "--out",
        s(&oddrun),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    refused(
        "unknown neuron in compare",
        &[
            "compare",
            s(&oddrun),
            "--connectome",
            s(&conn("cook2019_herm_cell.csv")),
        ],
        &["NEURONX", "--allow-unknown"],
    );
}

/// Item 2: `sbtg score` on recordings of some of the model's neurons runs BH over the
/// tests actually run; the untested pairs are counted apart.
#[test]
fn score_adjusts_over_the_tests_it_ran() {
    let dir = tmp("score-family");
    let train = dir.join("train");
    std::fs::create_dir_all(&train).unwrap();
    let recs = worms(["AVAL", "AVAR", "RIML", "RIMR"]);
    write_wide(&train, &recs[..2]);
    let model = dir.join("model");
    let o = sbtg(&["infer", s(&train), "--epochs", "3", "--out", s(&model)]);
    assert!(o.status.success(), "{}", stderr(&o));
    // New recordings of two of the four neurons.
    let new = dir.join("new");
    std::fs::create_dir_all(&new).unwrap();
    let mut two = recs[2].clone();
    two.values = two.values.slice(ndarray::s![.., 0..2]).to_owned();
    two.neurons.truncate(2);
    std::fs::write(new.join("w.traces.csv"), wide_csv(&two, ',')).unwrap();
    let out = dir.join("scored");
    let o = sbtg(&["score", s(&new), "--model", s(&model), "--out", s(&out)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let summary = read_json(&out.join("summary.json"));
    // Lag 1: 2 ordered pairs × (mean, volatility) tested, 12 − 2 pairs × 2 tests not;
    // lag 0: 1 of the 6 unordered pairs tested.
    assert_eq!(summary["fdr"]["family_size"], 5, "{}", summary["fdr"]);
    assert_eq!(summary["fdr"]["untested"], 20 + 5);
    // The q-values are BH over the five tested p-values alone.
    let mut rdr = csv::Reader::from_path(out.join("edges.csv")).unwrap();
    let rows: Vec<csv::StringRecord> = rdr.records().map(|r| r.unwrap()).collect();
    let h = rdr.headers().unwrap().clone();
    let col = |name: &str| h.iter().position(|c| c == name).unwrap();
    // (The direction tests are a family of their own.)
    let tested: Vec<(f64, f64)> = rows
        .iter()
        .filter(|r| &r[col("test")] != "direction")
        .map(|r| {
            (
                r[col("p")].parse::<f64>().unwrap(),
                r[col("q")].parse::<f64>().unwrap(),
            )
        })
        .filter(|(p, _)| !p.is_nan())
        .collect();
    let p: Vec<f64> = tested.iter().map(|x| x.0).collect();
    let bh = sbtg_core::stats::benjamini_hochberg(&p);
    for ((_, q), b) in tested.iter().zip(bh) {
        assert!((q - b).abs() <= 1e-9 * b.max(1e-300), "{q} vs {b}");
    }
}

/// Item 3: non-neuron columns and misspelt labels are normalised or named at read
/// time; `--strict-names` refuses them; `--any-names` takes other animals' names.
#[test]
fn names_are_normalised_and_non_neurons_named() {
    let dir = tmp("names");
    let recs = worms(["aval", "AVA R", "RIML", "behavior_velocity"]);
    write_wide(&dir, &recs);
    let out = dir.join("run");
    let o = sbtg(&[
        "infer",
        s(&dir),
        "--method",
        "lagged-correlation",
        "--out",
        s(&out),
    ]);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("`aval` → AVAL") && err.contains("`AVA R` → AVAR"),
        "{err}"
    );
    assert!(
        err.contains("BEHAVIOR_VELOCITY is no C. elegans neuron name")
            && err.contains("--strict-names"),
        "{err}"
    );
    let summary = read_json(&out.join("summary.json"));
    assert_eq!(summary["neurons"][0], "AVAL");
    refused(
        "strict names",
        &[
            "infer",
            s(&dir),
            "--strict-names",
            "--out",
            s(&dir.join("strict")),
        ],
        &[
            "column BEHAVIOR_VELOCITY",
            "not a C. elegans neuron name",
            "--any-names",
        ],
    );
    let fly = tmp("fly");
    write_wide(&fly, &worms(["DN1a", "LNv", "dorsal", "ventral"]));
    let o = sbtg(&[
        "infer",
        s(&fly),
        "--any-names",
        "--method",
        "lagged-correlation",
        "--out",
        s(&fly.join("run")),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("warning"), "{}", stderr(&o));
    assert_eq!(
        read_json(&fly.join("run/summary.json"))["neurons"][0],
        "DN1a"
    );
}

/// Item 4: recordings of a few frames are left out with a note, and a run of nothing
/// but such recordings is an error, never a table of NaN.
#[test]
fn recordings_of_a_few_frames_are_left_out_or_refused() {
    let dir = tmp("tiny");
    for w in ["a", "b"] {
        std::fs::write(
            dir.join(format!("{w}.traces.csv")),
            "time_s,AVAL,AVAR,RIML\n0,1,2,3\n0.6,2,1,5\n1.2,4,3,1\n",
        )
        .unwrap();
    }
    refused(
        "three-frame recordings",
        &[
            "infer",
            s(&dir),
            "--method",
            "lagged-correlation",
            "--out",
            s(&dir.join("o")),
        ],
        &[
            "3 frames",
            "left out",
            "none of the 2 recordings is long enough",
        ],
    );
    assert!(!dir.join("o/edges.csv").exists());
    write_wide(&dir, &worms(["AVAL", "AVAR", "RIML", "RIMR"]));
    let o = sbtg(&[
        "infer",
        s(&dir),
        "--method",
        "lagged-correlation",
        "--out",
        s(&dir.join("ok")),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("a: 3 frames"), "{}", stderr(&o));
    assert_eq!(
        read_json(&dir.join("ok/summary.json"))["recordings"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
}

/// Items 6 and 7: a pandas index column, a transposed table, semicolon and tab
/// separators, another time column name, and a frame index with a frame rate.
#[test]
fn a_labs_csv_exports_are_read_or_named() {
    let dir = tmp("csv-shapes");
    let r = &worms(["AVAL", "AVAR", "RIML", "RIMR"])[0];
    let text = wide_csv(r, ',');
    let run = |file: &Path, extra: &[&str]| {
        let out = dir.join(format!(
            "out-{}",
            file.file_stem().unwrap().to_string_lossy()
        ));
        let mut args = vec!["infer", s(file), "--method", "lagged-correlation", "--out"];
        args.push(s(&out));
        args.extend(extra);
        sbtg(&args)
    };
    // pandas `to_csv()` without index=False.
    let indexed: String = text
        .lines()
        .enumerate()
        .map(|(k, l)| {
            if k == 0 {
                format!(",{l}\n")
            } else {
                format!("{},{l}\n", k - 1)
            }
        })
        .collect();
    let f = dir.join("indexed.csv");
    std::fs::write(&f, indexed).unwrap();
    refused(
        "pandas index",
        &["infer", s(&f), "--out", s(&dir.join("x1"))],
        &["indexed.csv", "pandas index", "index=False"],
    );
    // Neurons as rows.
    let mut transposed = String::from("neuron");
    for t in 0..r.frames() {
        transposed.push_str(&format!(",{}", t as f64 * r.dt));
    }
    transposed.push('\n');
    for (j, n) in r.neurons.iter().enumerate() {
        transposed.push_str(n);
        for v in r.values.column(j) {
            transposed.push_str(&format!(",{v}"));
        }
        transposed.push('\n');
    }
    let f = dir.join("transposed.csv");
    std::fs::write(&f, transposed).unwrap();
    refused(
        "neurons as rows",
        &["infer", s(&f), "--out", s(&dir.join("x2"))],
        &[
            "transposed.csv",
            "looks transposed",
            "each neuron is a column",
        ],
    );
    // Semicolons and tabs.
    for (name, sep) in [("semicolon.csv", ';'), ("tab.tsv.csv", '\t')] {
        let f = dir.join(name);
        std::fs::write(&f, wide_csv(r, sep)).unwrap();
        let o = run(&f, &[]);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
    }
    // Another time column name, not first.
    let renamed: String = text
        .lines()
        .map(|l| {
            let (t, rest) = l.split_once(',').unwrap();
            format!(
                "{rest},{}\n",
                if t == "time_s" {
                    "seconds_since_start"
                } else {
                    t
                }
            )
        })
        .collect();
    let f = dir.join("renamed.csv");
    std::fs::write(&f, renamed).unwrap();
    refused(
        "unnamed time",
        &["infer", s(&f), "--out", s(&dir.join("x3"))],
        &["first column is `AVAL`", "--time-column NAME"],
    );
    let o = run(&f, &["--time-column", "seconds_since_start"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // A frame index: needs the frame rate.
    let framed: String = text
        .lines()
        .enumerate()
        .map(|(k, l)| {
            let (_, rest) = l.split_once(',').unwrap();
            if k == 0 {
                format!("frame,{rest}\n")
            } else {
                format!("{},{rest}\n", k - 1)
            }
        })
        .collect();
    let f = dir.join("framed.csv");
    std::fs::write(&f, framed).unwrap();
    refused(
        "frame without fps",
        &["infer", s(&f), "--out", s(&dir.join("x4"))],
        &["column frame", "--fps"],
    );
    let o = run(&f, &["--fps", "2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let summary = read_json(&dir.join("out-framed/summary.json"));
    assert_eq!(summary["recordings"][0]["dt_s"], 0.5);
}

/// Item 8: names stored as a NumPy object array (`np.array(df.columns)`) get the fix.
#[test]
fn npz_object_names_get_the_astype_fix() {
    use ndarray_npy::WriteNpyExt;
    use std::io::Write;
    let dir = tmp("npz-object");
    let r = &worms(["AVAL", "AVAR", "RIML", "RIMR"])[0];
    let mut traces = Vec::new();
    r.values.write_npy(&mut traces).unwrap();
    // `names`: descr '|O' (pickled Python objects), the header NumPy writes for them.
    let mut header = String::from("{'descr': '|O', 'fortran_order': False, 'shape': (4,), }");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut names = b"\x93NUMPY\x01\x00".to_vec();
    names.extend_from_slice(&(header.len() as u16).to_le_bytes());
    names.extend_from_slice(header.as_bytes());
    names.extend_from_slice(b"\x80\x03cnumpy.core.multiarray\n_reconstruct\n.");
    let f = dir.join("w.npz");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&f).unwrap());
    let opts = zip::write::SimpleFileOptions::default();
    for (name, bytes) in [("traces.npy", &traces), ("names.npy", &names)] {
        zip.start_file(name, opts).unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap();
    refused(
        "object names",
        &["infer", s(&f), "--fps", "2", "--out", s(&dir.join("o"))],
        &["w.npz", "names", "astype(str)"],
    );
}

/// Item 9: one long CSV holding several worms.
#[test]
fn a_long_csv_with_a_worm_column_holds_several_recordings() {
    let dir = tmp("long-worms");
    let recs = worms(["AVAL", "AVAR", "RIML", "RIMR"]);
    let mut text = String::from("worm,time,neuron,value\n");
    for r in &recs {
        for (t, row) in r.values.rows().into_iter().enumerate() {
            for (j, v) in row.iter().enumerate() {
                text.push_str(&format!(
                    "{},{},{},{v}\n",
                    r.name,
                    t as f64 * r.dt,
                    r.neurons[j]
                ));
            }
        }
    }
    let f = dir.join("all.csv");
    std::fs::write(&f, text).unwrap();
    let o = sbtg(&[
        "infer",
        s(&f),
        "--method",
        "lagged-correlation",
        "--out",
        s(&dir.join("o")),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("read 3 recordings"), "{}", stderr(&o));
    let summary = read_json(&dir.join("o/summary.json"));
    let names: Vec<&str> = summary["recordings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        recs.iter().map(|r| r.name.as_str()).collect::<Vec<_>>()
    );
}

/// Items 10 and 11: `--neurons` with spaces, and a folder with a stray metadata file
/// (skipped with a note, or chosen away with `--glob`).
#[test]
fn neuron_lists_with_spaces_and_stray_files_in_a_folder() {
    let dir = tmp("stray");
    let recs = worms(["AVAL", "AVAR", "RIML", "RIMR"]);
    for r in &recs {
        std::fs::write(dir.join(format!("{}.csv", r.name)), wide_csv(r, ',')).unwrap();
    }
    std::fs::write(dir.join("metadata.csv"), "key,value\nstrain,NeuroPAL\n").unwrap();
    let o = sbtg(&[
        "infer",
        s(&dir),
        "--method",
        "lagged-correlation",
        "--neurons",
        "AVAL, AVAR, riml",
        "--out",
        s(&dir.join("o")),
    ]);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("metadata.csv: not a recording") && err.contains("skipped"),
        "{err}"
    );
    assert!(err.contains("read 3 recordings"), "{err}");
    let summary = read_json(&dir.join("o/summary.json"));
    assert_eq!(
        summary["neurons"],
        serde_json::json!(["AVAL", "AVAR", "RIML"])
    );
    let o = sbtg(&[
        "infer",
        s(&dir),
        "--glob",
        "sim*.csv",
        "--method",
        "lagged-correlation",
        "--out",
        s(&dir.join("g")),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("metadata.csv"), "{}", stderr(&o));
    refused(
        "glob matching nothing",
        &[
            "infer",
            s(&dir),
            "--glob",
            "*.mat",
            "--out",
            s(&dir.join("x")),
        ],
        &["no file matches --glob `*.mat`"],
    );
    // Item 16: a run folder whose edge table was left out says so and how to get it back.
    std::fs::remove_file(dir.join("g/edges.csv")).unwrap();
    refused(
        "plot of a run without its edge table",
        &["plot", s(&dir.join("g"))],
        &["edge table is absent", "run.json"],
    );
}

/// `arrays.npz` read back with numpy alone (`tests/python/check_arrays.py`), its
/// `[source, target, lag]` orientation checked on a simulated edge. (The script also checks
/// the symmetric `o-o` same-frame layer when a run has lag 0: `python3
/// tests/python/check_arrays.py RUN SOURCE TARGET 1` on a default run.)
#[test]
fn arrays_npz_reads_back_in_python_with_tigramites_orientation() {
    let dir = tmp("arrays");
    write_wide(&dir, &worms(["AVAL", "AVAR", "RIML", "RIMR"]));
    let out = dir.join("o");
    let o = sbtg(&[
        "infer",
        s(&dir),
        "--method",
        "granger",
        "--lags",
        "1,2",
        "--out",
        s(&out),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/python/check_arrays.py");
    let py = std::process::Command::new("python3")
        .args([s(&script), s(&out), "AVAL", "AVAR", "1"])
        .output()
        .expect("python3 (scripts/setup.sh installs numpy for it)");
    assert!(
        py.status.success(),
        "{}{}",
        String::from_utf8_lossy(&py.stdout),
        String::from_utf8_lossy(&py.stderr)
    );
    eprintln!("{}", String::from_utf8_lossy(&py.stdout));
}
