//! Recording formats: every reader on fixtures written by
//! `scripts/make_format_fixtures.py` (numpy, scipy, pandas/pyarrow, h5py, pynwb), the
//! broken variants, and the lab HDF5 reader against the shipped CSV conversion of the
//! Dag et al. (2023) recordings.

use std::path::{Path, PathBuf};

use ndarray::Array2;
use sbtg_core::data::{select_stimulus, Recording, StimulusWindow};
use sbtg_core::io::recording::{
    load_recordings_with, read_file, read_wide_csv, Format, LoadOptions,
};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/formats")
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(path: &Path, opts: &LoadOptions) -> Vec<Recording> {
    read_file(path, opts).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Same values, with NaN where the other has NaN.
fn assert_same_values(a: &Array2<f64>, b: &Array2<f64>, what: &str) {
    assert_eq!(a.shape(), b.shape(), "{what}");
    for ((idx, x), y) in a.indexed_iter().zip(b.iter()) {
        assert!(
            x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()),
            "{what} at {idx:?}: {x} vs {y}"
        );
    }
}

#[test]
fn every_single_recording_format_gives_the_reference_matrix() {
    let dir = fixtures();
    let reference = read_wide_csv(&dir.join("reference.traces.csv")).unwrap();
    assert_eq!(reference.neurons, ["AVAL", "AVAR", "RIS", "VB2"]);
    assert!(reference.values[[5, 2]].is_nan());
    let fps = LoadOptions {
        fps: Some(4.0),
        ..LoadOptions::default()
    };
    let cases: [(&str, Format, &LoadOptions); 9] = [
        ("reference.npy", Format::Npy, &fps),
        ("reference.npz", Format::Npz, &LoadOptions::default()),
        ("reference_bytes.npz", Format::Npz, &LoadOptions::default()),
        (
            "reference.parquet",
            Format::Parquet,
            &LoadOptions::default(),
        ),
        (
            "reference.long.parquet",
            Format::Parquet,
            &LoadOptions::default(),
        ),
        (
            "reference.long.csv",
            Format::LongCsv,
            &LoadOptions::default(),
        ),
        ("reference.nwb", Format::Nwb, &LoadOptions::default()),
        ("reference_rate.nwb", Format::Nwb, &LoadOptions::default()),
        (
            "reference.traces.csv",
            Format::WideCsv,
            &LoadOptions::default(),
        ),
    ];
    for (file, format, opts) in cases {
        let path = dir.join(file);
        assert_eq!(Format::detect(&path).unwrap(), format, "{file}");
        let recs = read(&path, opts);
        assert_eq!(recs.len(), 1, "{file}");
        let r = &recs[0];
        assert!(r.name.starts_with("reference"), "{file}: {}", r.name);
        assert_eq!(r.neurons, reference.neurons, "{file}");
        assert!((r.dt - 0.25).abs() < 1e-12, "{file}: dt {}", r.dt);
        assert_same_values(&r.values, &reference.values, file);
    }
}

#[test]
fn npy_needs_a_rate_and_names_can_be_given() {
    let dir = fixtures();
    let err = read_file(&dir.join("reference.npy"), &LoadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("reference.npy") && err.contains("--fps"),
        "{err}"
    );
    // An explicit names file replaces the one beside the array.
    let names = std::env::temp_dir().join(format!("sbtg-names-{}.txt", std::process::id()));
    std::fs::write(&names, "# lab order\nA1\nA2\n\nA3\nA4\n").unwrap();
    let r = &read(
        &dir.join("reference.npy"),
        &LoadOptions {
            fps: Some(2.0),
            names: Some(names),
            ..LoadOptions::default()
        },
    )[0];
    assert_eq!(r.neurons, ["A1", "A2", "A3", "A4"]);
    assert_eq!(r.dt, 0.5);
}

#[test]
fn broken_files_name_the_file_the_field_and_the_fix() {
    let dir = fixtures().join("broken");
    let fps = LoadOptions {
        fps: Some(4.0),
        ..LoadOptions::default()
    };
    let cases: [(&str, &[&str]); 27] = [
        ("dup_roi.nwb", &["column AVAL", "duplicate neuron name"]),
        (
            "short_timestamps.nwb",
            &["timestamps", "39 times for 40 frames"],
        ),
        (
            "negative_rate.nwb",
            &["starting_time.rate", "-4", "positive sampling rate"],
        ),
        (
            "no_rate.nwb",
            &[
                "neither timestamps nor starting_time",
                "sampling rate is missing",
            ],
        ),
        ("text_cell.parquet", &["RIS", "not a number"]),
        ("nan_neuron.parquet", &["column AVAR", "no observed sample"]),
        ("short_time.npz", &["time", "38 times for 40 frames"]),
        (
            "lab_short-data.h5",
            &["gcamp/traces_array_F_F20", "39 frame times"],
        ),
        (
            "lab_clock-data.h5",
            &["timing/timestamp_confocal[10]", "increase strictly"],
        ),
        ("number_names.npz", &["names", "not an array of names"]),
        ("three_dims.npy", &["array", "2-D frames × neurons"]),
        ("nan_neuron.npy", &["column AVAR", "no observed sample"]),
        ("short_names.npy", &["names", "3 names for 4 columns"]),
        ("dup_names.npy", &["column AVAL", "duplicate neuron name"]),
        ("no_traces.npz", &["traces", "np.savez", "values"]),
        ("bad_rate.npz", &["fps", "-4", "positive frame rate"]),
        (
            "dup_sample.long.csv",
            &["two samples for the same neuron and time"],
        ),
        ("off_grid.long.csv", &["time", "same times"]),
        ("nan_neuron.nwb", &["column RIS", "no observed sample"]),
        ("zero_code.mat", &["stims(1, 1)", "code 0", "1-based"]),
        ("no_fps.mat", &["fps", "empty", "frames per second"]),
        ("negative_fps.mat", &["fps", "-4", "positive frame rate"]),
        ("dup_neurons.mat", &["neurons{4}", "`AVA` appears twice"]),
        (
            "ragged.mat",
            &["norm_traces{5}", "IL2D", "235 frames", "same frames"],
        ),
        (
            "nan_neuron.mat",
            &["norm_traces{5} (IL2D), worm worm1", "every sample is NaN"],
        ),
        (
            "odd_entries.mat",
            &["norm_traces{5} (IL2D)", "2 entries for 3 worms"],
        ),
        ("bad_stim_times.mat", &["stim_times", "slots × 2"]),
    ];
    for (file, needles) in cases {
        let err = match read_file(&dir.join(file), &fps) {
            Ok(_) => panic!("{file} was accepted"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains(file), "{file}: {err}");
        for n in needles {
            assert!(err.contains(n), "{file}: `{n}` not in: {err}");
        }
    }
    let err = read_file(&dir.join("no_traces.mat"), &fps)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("norm_traces") && err.contains("Variables found"),
        "{err}"
    );
}

#[test]
fn a_folder_of_mixed_formats_is_read_and_refuses_two_recordings_with_one_name() {
    let dir = std::env::temp_dir().join(format!("sbtg-mixed-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let copy = |from: &str, to: &str| {
        std::fs::copy(fixtures().join(from), dir.join(to)).unwrap();
    };
    copy("reference.npy", "w1.npy");
    copy("reference.names.txt", "w1.names.txt");
    copy("reference.parquet", "w2.parquet");
    copy("reference.nwb", "w3.nwb");
    copy("neuropal.mat", "strain.mat");
    copy("lab.h5", "w4-data.h5");
    copy("lab.labels.csv", "w4.labels.csv");
    copy("reference.long.csv", "w5.csv");
    std::fs::write(dir.join("README.md"), "not a recording").unwrap();
    let opts = LoadOptions {
        fps: Some(4.0),
        ..LoadOptions::default()
    };
    let recs = load_recordings_with(&dir, &opts).unwrap();
    let names: Vec<&str> = recs.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        ["worm1", "worm2", "worm3", "w1", "w2", "w3", "w4", "w5"]
    );
    // Every reference.* file is called `reference`: loading them together must not
    // silently merge or drop them.
    copy("reference.npz", "w1.npz");
    let err = load_recordings_with(
        &dir,
        &LoadOptions {
            fps: Some(4.0),
            ..LoadOptions::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("two recordings are called"), "{err}");
}

#[derive(serde::Deserialize)]
struct NeuroPalExpected {
    fps: f64,
    worms: Vec<Worm>,
}

#[derive(serde::Deserialize)]
struct Worm {
    name: String,
    frames: usize,
    neurons: Vec<String>,
    values: Vec<Vec<Option<f64>>>,
    stimuli: Vec<Presentation>,
}

#[derive(serde::Deserialize)]
struct Presentation {
    name: String,
    onset_s: f64,
    offset_s: f64,
}

fn neuropal_expected() -> NeuroPalExpected {
    let text = std::fs::read_to_string(fixtures().join("neuropal_expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn neuropal_mat_gives_one_recording_per_worm_with_sides_averaged() {
    let expected = neuropal_expected();
    for file in ["neuropal.mat", "neuropal_plain.mat"] {
        let path = fixtures().join(file);
        assert_eq!(Format::detect(&path).unwrap(), Format::NeuroPalMat);
        let recs = read(&path, &LoadOptions::default());
        assert_eq!(recs.len(), expected.worms.len(), "{file}");
        for (r, w) in recs.iter().zip(&expected.worms) {
            assert_eq!(r.name, w.name);
            assert_eq!(r.frames(), w.frames, "{file} {}", w.name);
            assert_eq!(r.neurons, w.neurons, "{file} {}", w.name);
            assert_eq!(r.dt, 1.0 / expected.fps);
            for (j, col) in w.values.iter().enumerate() {
                for (t, v) in col.iter().enumerate() {
                    let got = r.values[[t, j]];
                    let want = v.unwrap_or(f64::NAN);
                    // numpy's nanmean and ours agree to the last bit on two values.
                    assert!(
                        got == want || (got.is_nan() && want.is_nan()),
                        "{file} {} {} frame {t}: {got} vs {want}",
                        w.name,
                        w.neurons[j]
                    );
                }
            }
            let got: Vec<(String, f64, f64)> = r
                .stimuli
                .iter()
                .map(|s| (s.name.clone(), s.onset_s, s.offset_s))
                .collect();
            let want: Vec<(String, f64, f64)> = w
                .stimuli
                .iter()
                .map(|s| (s.name.clone(), s.onset_s, s.offset_s))
                .collect();
            assert_eq!(got, want, "{file} {}", w.name);
        }
    }
    // Worm 2 (index 1) has no RIS; worm 1 AIY has only its left side, worm 3 only its right.
    let recs = read(&fixtures().join("neuropal.mat"), &LoadOptions::default());
    assert!(!recs[1].neurons.contains(&"RIS".to_string()));
    assert_eq!(recs[1].stimuli[0].name, "nacl"); // stims(2, 1) = 3 → the third name
}

#[test]
fn stimulus_windows_use_one_based_codes_and_seconds_times_fps() {
    let recs = read(&fixtures().join("neuropal.mat"), &LoadOptions::default());
    let expected = neuropal_expected();
    // ASE is 1 exactly while nacl is on: `during` must be all ones, `pre` and `post`
    // all zeros. 0-based codes or seconds read as frames would pick other samples.
    for (window, value) in [
        (StimulusWindow::During, 1.0),
        (StimulusWindow::Pre, 0.0),
        (StimulusWindow::Post, 0.0),
    ] {
        let cuts = select_stimulus(&recs, "NaCl", window, None).unwrap();
        assert_eq!(cuts.len(), 3, "{window}");
        for (cut, w) in cuts.iter().zip(&expected.worms) {
            assert_eq!(cut.name, w.name);
            assert_eq!(cut.frames(), 20, "5 s at 4 fps");
            let ase = cut.neurons.iter().position(|n| n == "ASE").unwrap();
            assert!(
                cut.values.column(ase).iter().all(|&v| v == value),
                "{window} {}",
                w.name
            );
        }
    }
    // Worm 1 saw nacl in slot 3 (40.5–45.5 s): frames 162..182 of the recording.
    let during = select_stimulus(&recs, "nacl", StimulusWindow::During, None).unwrap();
    let ava = &expected.worms[0].values[0];
    for k in 0..20 {
        assert_eq!(during[0].values[[k, 0]], ava[162 + k].unwrap());
    }
    // A longer pre window, clipped at nothing: 8 s = 32 frames before 40.5 s.
    let pre = select_stimulus(&recs, "nacl", StimulusWindow::Pre, Some(8.0)).unwrap();
    assert_eq!(pre[0].frames(), 32);
    assert_eq!(pre[0].values[[0, 0]], ava[130].unwrap());
    // Unknown stimulus names list the known ones.
    let err = select_stimulus(&recs, "salt", StimulusWindow::During, None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("butanone, nacl, pentanedione"), "{err}");
}

#[derive(serde::Deserialize)]
struct LabExpected {
    neurons: Vec<String>,
    dt: f64,
    values: Vec<Vec<f64>>,
    notes: Vec<String>,
}

#[test]
fn lab_hdf5_reads_identities_from_the_labels_csv() {
    let dir = fixtures();
    let text = std::fs::read_to_string(dir.join("lab_expected.json")).unwrap();
    let expected: LabExpected = serde_json::from_str(&text).unwrap();
    assert_eq!(
        Format::detect(&dir.join("lab.h5")).unwrap(),
        Format::LabHdf5
    );
    let r = &read(&dir.join("lab.h5"), &LoadOptions::default())[0];
    assert_eq!(r.name, "lab");
    // VB02 is normalised to VB2; the two RIS? ROIs tie on confidence and are left out.
    assert_eq!(r.neurons, expected.neurons);
    assert!((r.dt - expected.dt).abs() < 1e-12);
    for (t, row) in expected.values.iter().enumerate() {
        for (j, v) in row.iter().enumerate() {
            assert_eq!(r.values[[t, j]], *v);
        }
    }
    assert_eq!(r.notes.len(), expected.notes.len());
    assert!(r.notes[0].starts_with("RIS?") && r.notes[0].contains("ambiguous"));

    // A duplicate at lower confidence loses to the surer ROI.
    let r = &read(
        &dir.join("lab.h5"),
        &LoadOptions {
            labels: Some(dir.join("broken/lab_dup.labels.csv")),
            ..LoadOptions::default()
        },
    )[0];
    let aval = r.neurons.iter().position(|n| n == "AVAL").unwrap();
    assert_eq!(r.values[[0, aval]], expected.values[0][0]);
    assert!(r.notes.iter().any(|n| n.contains("kept column 0")));

    let err = read_file(
        &dir.join("lab.h5"),
        &LoadOptions {
            labels: Some(dir.join("broken/lab_column.labels.csv")),
            ..LoadOptions::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("lab_column.labels.csv") && err.contains("line 2, trace_column"),
        "{err}"
    );
    let err = read_file(
        &dir.join("lab.h5"),
        &LoadOptions {
            labels: Some(dir.join("broken")),
            ..LoadOptions::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("--labels") && err.contains("lab.labels.csv"),
        "{err}"
    );
}

/// `%.5g`, the precision of the shipped CSV conversion.
fn five_significant(v: f64) -> f64 {
    format!("{v:.4e}").parse().unwrap()
}

#[test]
fn lab_hdf5_matches_the_shipped_csv_for_every_dag_recording() {
    let raw = workspace().join("../shared/data/traces/dag2023-raw");
    assert!(
        raw.is_dir(),
        "{} is missing: the shared data folder must sit beside the repository",
        raw.display()
    );
    let csv_dir = workspace().join("datasets/dag2023");
    let h5 = load_recordings_with(
        &raw,
        &LoadOptions {
            labels: Some(csv_dir.clone()),
            ..LoadOptions::default()
        },
    )
    .unwrap();
    assert_eq!(h5.len(), 7);
    let mut ambiguous = 0;
    for r in &h5 {
        let c = read_wide_csv(&csv_dir.join(format!("{}.traces.csv", r.name))).unwrap();
        assert_eq!(r.frames(), c.frames());
        // The CSV's times are rounded to milliseconds.
        assert!(
            (r.dt - c.dt).abs() < 2e-3,
            "{}: {} vs {}",
            r.name,
            r.dt,
            c.dt
        );
        // Same neurons in the same order, except the labels the HDF5 reader leaves
        // out because two ROIs claim them with equal confidence (the CSV kept one).
        let tied: Vec<String> = r
            .notes
            .iter()
            .filter(|n| n.contains("ambiguous"))
            .map(|n| n.split(':').next().unwrap().to_string())
            .collect();
        ambiguous += tied.len();
        let csv_kept: Vec<&String> = c.neurons.iter().filter(|n| !tied.contains(n)).collect();
        assert_eq!(r.neurons.iter().collect::<Vec<_>>(), csv_kept, "{}", r.name);
        for (j, n) in r.neurons.iter().enumerate() {
            let cj = c.neurons.iter().position(|m| m == n).unwrap();
            for t in 0..r.frames() {
                let (a, b) = (r.values[[t, j]], c.values[[t, cj]]);
                assert_eq!(five_significant(a), b, "{} {n} frame {t}", r.name);
            }
        }
    }
    // SIBV?, SAAD?, AIM?, SMBD?: all uncertain labels, dropped by default anyway.
    assert_eq!(ambiguous, 4);
}
