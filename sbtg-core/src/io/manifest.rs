//! `run.json`: what a run read, how it was configured, where it ran and how long each
//! stage took, so that a result folder can be traced to its inputs and re-run
//! (`sbtg infer --config run.json`).
//!
//! Inputs are identified by SHA-256 of their bytes; a re-run with the same manifest on
//! the same machine gives bit-identical tables (every random stream is seeded from
//! `seed`, and parallel work is combined in a fixed order).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

use sha2::{Digest, Sha256};

use crate::digest::hex;
pub use crate::digest::sha256_hex;
use crate::{Error, Result};

/// The format tag of `run.json`.
pub const MANIFEST_FORMAT: &str = "sbtg-run/1";

/// The git commit this library was built from (`unknown` outside a checkout).
pub const GIT_COMMIT: &str = env!("SBTG_GIT_COMMIT");

/// A file with its size and SHA-256.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileDigest {
    pub path: PathBuf,
    pub bytes: u64,
    pub sha256: String,
}

/// SHA-256 of a file, streamed.
pub fn digest_file(path: &Path) -> Result<FileDigest> {
    let mut f = std::fs::File::open(path).map_err(|e| Error::read(path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut bytes = 0u64;
    loop {
        let k = f.read(&mut buf).map_err(|e| Error::read(path, e))?;
        if k == 0 {
            break;
        }
        bytes += k as u64;
        h.update(&buf[..k]);
    }
    Ok(FileDigest {
        path: path.to_path_buf(),
        bytes,
        sha256: hex(&h.finalize()),
    })
}

/// Digests of the given files (folders are expanded to the files directly in them),
/// sorted by path, each once.
pub fn digest_files<'a>(paths: impl IntoIterator<Item = &'a Path>) -> Result<Vec<FileDigest>> {
    let mut files: Vec<PathBuf> = Vec::new();
    for p in paths {
        if p.is_dir() {
            let rd = std::fs::read_dir(p).map_err(|e| Error::read(p, e))?;
            for entry in rd {
                let entry = entry.map_err(|e| Error::read(p, e))?;
                if entry.path().is_file() {
                    files.push(entry.path());
                }
            }
        } else {
            files.push(p.to_path_buf());
        }
    }
    files.sort();
    files.dedup();
    files.iter().map(|f| digest_file(f)).collect()
}

/// Digests of the files among `paths` that exist (optional inputs such as
/// `recording_edges.csv` or `loss.csv` of a result folder).
pub fn digest_existing(paths: &[PathBuf]) -> Result<Vec<FileDigest>> {
    digest_files(paths.iter().filter(|p| p.exists()).map(PathBuf::as_path))
}

/// Wall-clock seconds of named stages, in the order they ran.
#[derive(Debug)]
pub struct StageTimer {
    start: Instant,
    last: Instant,
    stages: Vec<(String, f64)>,
}

impl Default for StageTimer {
    fn default() -> Self {
        let now = Instant::now();
        StageTimer {
            start: now,
            last: now,
            stages: Vec::new(),
        }
    }
}

impl StageTimer {
    /// Closes the current stage under `name`.
    pub fn lap(&mut self, name: &str) {
        let now = Instant::now();
        self.stages
            .push((name.to_string(), (now - self.last).as_secs_f64()));
        self.last = now;
    }

    /// Adds a stage measured elsewhere (it is not subtracted from the running lap).
    pub fn record(&mut self, name: &str, seconds: f64) {
        self.stages.push((name.to_string(), seconds));
    }

    /// Seconds since the timer started.
    pub fn total(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    /// `{stage: seconds, …, "total": seconds}`.
    pub fn to_json(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        for (k, v) in &self.stages {
            m.insert(k.clone(), serde_json::json!(v));
        }
        m.insert("total".into(), serde_json::json!(self.total()));
        serde_json::Value::Object(m)
    }
}

/// Whether a run finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Written when a run starts; an interrupted run keeps this status.
    Running,
    Complete,
}

/// The content of `run.json`.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    pub format: String,
    pub status: RunStatus,
    /// `sbtg` subcommand (`infer`, `score`, `compare`, `plot`).
    pub command: String,
    /// The command line as typed.
    pub argv: Vec<String>,
    pub sbtg_version: String,
    pub git_commit: String,
    /// The complete configuration, every setting included (defaults too), keyed like
    /// the command-line flags; `--config run.json` reads it back.
    pub config: serde_json::Value,
    /// Every file read, with SHA-256.
    pub inputs: Vec<FileDigest>,
    /// Every file written, with SHA-256 (empty while running).
    #[serde(default)]
    pub outputs: Vec<FileDigest>,
    pub seed: Option<u64>,
    /// Worker threads of the run.
    pub threads: usize,
    /// Working directory, which relative paths in `config` are relative to.
    pub working_directory: PathBuf,
    pub platform: String,
    /// Seconds per stage.
    #[serde(default)]
    pub seconds: serde_json::Value,
}

impl Manifest {
    /// A manifest of a run that is starting now.
    pub fn start(
        command: &str,
        config: serde_json::Value,
        inputs: Vec<FileDigest>,
        seed: Option<u64>,
    ) -> Manifest {
        Manifest {
            format: MANIFEST_FORMAT.into(),
            status: RunStatus::Running,
            command: command.into(),
            argv: std::env::args().collect(),
            sbtg_version: env!("CARGO_PKG_VERSION").into(),
            git_commit: GIT_COMMIT.into(),
            config,
            inputs,
            outputs: Vec::new(),
            seed,
            threads: rayon::current_num_threads(),
            working_directory: std::env::current_dir().unwrap_or_default(),
            platform: format!("{}-{}", std::env::consts::ARCH, std::env::consts::OS),
            seconds: serde_json::Value::Null,
        }
    }

    /// Reads a `run.json`.
    pub fn read(path: &Path) -> Result<Manifest> {
        let bytes = std::fs::read(path).map_err(|e| Error::read(path, e))?;
        serde_json::from_slice(&bytes).map_err(|e| {
            Error::format(
                path,
                "run manifest",
                format!("{e}; pass the run.json that sbtg wrote into a result folder"),
            )
        })
    }

    /// Writes the manifest atomically.
    pub fn write(&self, path: &Path) -> Result<()> {
        let json =
            serde_json::to_vec_pretty(self).map_err(|e| Error::Data(format!("run.json: {e}")))?;
        crate::io::atomic::write_atomic(path, &json)
    }

    /// Marks the run complete with its outputs and stage timings.
    pub fn complete(&mut self, outputs: Vec<FileDigest>, seconds: serde_json::Value) {
        self.status = RunStatus::Complete;
        self.outputs = outputs;
        self.seconds = seconds;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_known_strings() {
        // FIPS 180-2 test vectors.
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn file_digest_matches_bytes_and_manifest_round_trips() {
        let dir = std::env::temp_dir().join(format!("sbtg-manifest-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("a.csv");
        std::fs::write(&f, b"abc").unwrap();
        let d = digest_files([dir.as_path()]).unwrap();
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].bytes, 3);
        assert_eq!(d[0].sha256, sha256_hex(b"abc"));
        let m = Manifest::start("infer", serde_json::json!({"seed": 3}), d, Some(3));
        let p = dir.join("run.json");
        m.write(&p).unwrap();
        let back = Manifest::read(&p).unwrap();
        assert_eq!(back.inputs, m.inputs);
        assert_eq!(back.config, m.config);
        assert_eq!(back.status, RunStatus::Running);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
