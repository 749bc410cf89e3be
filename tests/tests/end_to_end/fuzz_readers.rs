//! Property tests of every file reader: damaged and random files give an error or a
//! checked recording, never a panic, a hang or a non-finite value.
//!
//! Each reader is fed mutations of a valid fixture (bytes flipped, runs overwritten,
//! truncation, insertion) and random bytes. By default a short fixed number of cases
//! runs (CI); `SBTG_FUZZ_SECONDS=60 cargo test --release -p sbtg-tests --test
//! fuzz_readers -- --nocapture` keeps drawing cases for that many seconds per reader
//! (fresh seeds 0, 1, 2, …, so any failure is reproducible from its printed seed).
//! Inputs that once crashed a reader are kept in `regressions()`.
//!
//! The lab HDF5 and NWB readers go through libhdf5 (Debian's 1.10.8). Damaged files can
//! crash that library itself: `fixtures/crashers/hdf5_global_heap_segfault.nwb`
//! (one of this property's cases) makes `H5Aread` of a variable-length string
//! attribute copy from a corrupt global-heap entry (`H5HG_read`) and segfault. Rust
//! cannot catch that, so these two targets are opt-in (`SBTG_FUZZ_C_LIBRARIES=1`);
//! the process dies before anything is written, so no earlier result is touched.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use sbtg_core::data::Recording;
use sbtg_core::io::recording::{read_file, LoadOptions};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");

/// A byte-level mutation of a seed file.
#[derive(Clone, Debug)]
enum Mutation {
    Flip { at: usize, mask: u8 },
    Overwrite { at: usize, bytes: Vec<u8> },
    Truncate { len: usize },
    Insert { at: usize, bytes: Vec<u8> },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1u8..=255).prop_map(|(at, mask)| Mutation::Flip { at, mask }),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(at, bytes)| Mutation::Overwrite { at, bytes }),
        any::<usize>().prop_map(|len| Mutation::Truncate { len }),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
    ]
}

fn apply(seed: &[u8], muts: &[Mutation]) -> Vec<u8> {
    let mut b = seed.to_vec();
    for m in muts {
        let n = b.len().max(1);
        match m {
            Mutation::Flip { at, mask } => {
                if !b.is_empty() {
                    b[at % n] ^= mask;
                }
            }
            Mutation::Overwrite { at, bytes } => {
                for (k, v) in bytes.iter().enumerate() {
                    let i = (at % n) + k;
                    if i < b.len() {
                        b[i] = *v;
                    }
                }
            }
            Mutation::Truncate { len } => b.truncate(len % n),
            Mutation::Insert { at, bytes } => {
                let i = at % (b.len() + 1);
                b.splice(i..i, bytes.iter().copied());
            }
        }
    }
    b
}

/// What a reader may return: an error, or recordings that passed every check.
fn check(recs: sbtg_core::Result<Vec<Recording>>) {
    if let Ok(recs) = recs {
        for r in recs {
            assert_eq!(r.values.ncols(), r.neurons.len());
            assert!(r.dt.is_finite() && r.dt > 0.0);
            assert!(r.values.iter().all(|v| v.is_nan() || v.is_finite()));
        }
    }
}

/// Reads `bytes` as a file named `name` with the loader that picks the reader.
fn read_bytes(dir: &Path, name: &str, bytes: &[u8], opts: &LoadOptions) {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    check(read_file(&p, opts));
}

struct Target {
    reader: &'static str,
    seed: PathBuf,
    /// File name the mutated bytes are written under (the extension picks the reader).
    name: &'static str,
    opts: LoadOptions,
    read: fn(&Path, &str, &[u8], &LoadOptions),
    /// Parsed by a C library (libhdf5): a crash there is a segmentation fault that
    /// kills the test process instead of failing one case, so these run only with
    /// `SBTG_FUZZ_C_LIBRARIES=1` (see the module notes).
    c_library: bool,
}

fn connectome_read(dir: &Path, name: &str, bytes: &[u8], _: &LoadOptions) {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    let _ = sbtg_core::io::connectome::read(&p);
}

fn checkpoint_read(_: &Path, name: &str, bytes: &[u8], _: &LoadOptions) {
    let _ = sbtg_core::estimate::FoldModel::from_bytes(Path::new(name), bytes);
}

fn targets(dir: &Path) -> Vec<Target> {
    let f = |p: &str| PathBuf::from(FIXTURES).join(p);
    // A checkpoint seed file, written by the library itself.
    let ck = dir.join("seed.safetensors");
    if !ck.exists() {
        use sbtg_core::model::{Coupling, EnergyModel, ScoreModelConfig};
        let mut rng = sbtg_core::rng::stream(0, 0);
        let c = sbtg_core::estimate::FoldModel {
            lag: 1,
            fold: 0,
            fingerprint: "0".into(),
            neurons: vec!["AVAL".into(), "AVAR".into()],
            offsets: vec![0, 1],
            config: ScoreModelConfig {
                coupling: Coupling::RegimeGated { regimes: 2 },
                hidden: 3,
                ..Default::default()
            },
            seed: 0,
            standardiser: sbtg_core::data::window::Standardiser {
                mean: ndarray::Array1::zeros(4),
                sd: ndarray::Array1::ones(4),
            },
            model: EnergyModel::init(2, 2, Coupling::RegimeGated { regimes: 2 }, 3, 2, &mut rng),
            epoch_loss: vec![1.0],
            validation_loss: Vec::new(),
            best_epoch: None,
        };
        c.save(&ck).unwrap();
    }
    let names = LoadOptions {
        names: Some(f("formats/reference.names.txt")),
        ..Default::default()
    };
    let labels = LoadOptions {
        labels: Some(f("formats/lab.labels.csv")),
        ..Default::default()
    };
    let mut t = vec![
        Target {
            reader: "wide csv",
            seed: f("formats/reference.traces.csv"),
            name: "w.traces.csv",
            opts: LoadOptions::default(),
            read: read_bytes,
            c_library: false,
        },
        Target {
            reader: "long csv",
            seed: f("formats/reference.long.csv"),
            name: "l.long.csv",
            opts: LoadOptions::default(),
            read: read_bytes,
            c_library: false,
        },
        Target {
            reader: "neuropal mat (compressed)",
            seed: f("formats/neuropal.mat"),
            name: "n.mat",
            opts: LoadOptions::default(),
            read: read_bytes,
            c_library: false,
        },
        Target {
            reader: "neuropal mat (plain)",
            seed: f("formats/neuropal_plain.mat"),
            name: "p.mat",
            opts: LoadOptions::default(),
            read: read_bytes,
            c_library: false,
        },
        Target {
            reader: "npy",
            seed: f("formats/reference.npy"),
            name: "a.npy",
            opts: names.clone(),
            read: read_bytes,
            c_library: false,
        },
        Target {
            reader: "npz",
            seed: f("formats/reference.npz"),
            name: "z.npz",
            opts: LoadOptions::default(),
            read: read_bytes,
            c_library: false,
        },
        Target {
            reader: "parquet",
            seed: f("formats/reference.parquet"),
            name: "q.parquet",
            opts: LoadOptions::default(),
            read: read_bytes,
            c_library: false,
        },
        Target {
            reader: "connectome xlsx",
            seed: f("connectome/cook_small_valid.xlsx"),
            name: "c.xlsx",
            opts: LoadOptions::default(),
            read: connectome_read,
            c_library: false,
        },
        Target {
            reader: "checkpoint",
            seed: ck,
            name: "k.safetensors",
            opts: LoadOptions::default(),
            read: checkpoint_read,
            c_library: false,
        },
    ];
    t.push(Target {
        reader: "lab hdf5",
        seed: f("formats/lab.h5"),
        name: "h.h5",
        opts: labels,
        read: read_bytes,
        c_library: true,
    });
    t.push(Target {
        reader: "nwb",
        seed: f("formats/reference.nwb"),
        name: "b.nwb",
        opts: LoadOptions::default(),
        read: read_bytes,
        c_library: true,
    });
    t
}

/// Runs one reader's property for a fixed number of cases, or for
/// `SBTG_FUZZ_SECONDS` seconds when that is set; returns (cases, seconds).
fn fuzz(target: &Target, dir: &Path) -> (u64, f64) {
    let seed = std::fs::read(&target.seed).unwrap();
    let budget = std::env::var("SBTG_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok());
    let cases_per_round = if budget.is_some() { 64 } else { 256 };
    let t0 = Instant::now();
    let mut cases = 0u64;
    for round in 0u64.. {
        let config = Config {
            cases: cases_per_round,
            failure_persistence: None,
            ..Config::default()
        };
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&round.to_le_bytes());
        bytes[8..16].copy_from_slice(&(target.reader.len() as u64).to_le_bytes());
        let mut runner =
            TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &bytes));
        let strategy = prop_oneof![
            4 => prop::collection::vec(mutation(), 1..6).prop_map(|m| (m, None)),
            1 => prop::collection::vec(any::<u8>(), 0..512).prop_map(|b| (Vec::new(), Some(b))),
        ];
        let result = runner.run(&strategy, |(muts, random)| {
            let bytes = random.unwrap_or_else(|| apply(&seed, &muts));
            (target.read)(dir, target.name, &bytes, &target.opts);
            Ok(())
        });
        cases += u64::from(cases_per_round);
        if let Err(e) = result {
            panic!("{} reader, round {round}: {e}", target.reader);
        }
        match budget {
            Some(s) if t0.elapsed() < Duration::from_secs_f64(s) => continue,
            _ => break,
        }
    }
    (cases, t0.elapsed().as_secs_f64())
}

#[test]
fn no_reader_panics_on_damaged_or_random_files() {
    let dir = std::env::temp_dir().join(format!("sbtg-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // SBTG_FUZZ_ONLY=parquet,nwb limits the run to readers whose names contain one of these.
    let only: Option<Vec<String>> = std::env::var("SBTG_FUZZ_ONLY")
        .ok()
        .map(|s| s.split(',').map(str::to_string).collect());
    for t in targets(&dir) {
        if only
            .as_ref()
            .is_some_and(|o| !o.iter().any(|w| t.reader.contains(w.as_str())))
        {
            continue;
        }
        if t.c_library && std::env::var("SBTG_FUZZ_C_LIBRARIES").is_err() {
            eprintln!(
                "{:<26} skipped (libhdf5; set SBTG_FUZZ_C_LIBRARIES=1)",
                t.reader
            );
            continue;
        }
        let (cases, secs) = fuzz(&t, &dir);
        eprintln!("{:<26} {cases:>7} cases in {secs:6.1} s", t.reader);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Inputs that crashed a reader once, kept as regression tests.
#[test]
fn regressions() {
    let dir = std::env::temp_dir().join(format!("sbtg-fuzz-reg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Long CSV with times `-.0` and `0.0` (found by the long-CSV property): the grid
    // lookup panicked because `-0 == 0` but `(-0).total_cmp(0)` is `Less`. They are one
    // frame, so the table is read.
    let p = dir.join("signed_zero.long.csv");
    std::fs::write(&p, "time,neuron,value\n0.0,AVAL,1\n-.0,AVAR,2\n0.25,AVAL,3\n0.25,AVAR,4\n0.5,AVAL,2\n0.5,AVAR,1\n").unwrap();
    let recs = read_file(&p, &LoadOptions::default()).unwrap();
    assert_eq!(recs[0].values.nrows(), 3);
    assert_eq!(recs[0].values[[0, 1]], 2.0);
    // Parquet footer with a negative column-chunk offset (byte 2376 of the reference
    // table XOR 7, found by the Parquet property): the parquet crate asserted on it.
    let mut bytes =
        std::fs::read(PathBuf::from(FIXTURES).join("formats/reference.parquet")).unwrap();
    bytes[2376] ^= 7;
    let p = dir.join("negative_offset.parquet");
    std::fs::write(&p, &bytes).unwrap();
    let err = read_file(&p, &LoadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("negative_offset.parquet") && err.contains("damaged"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
