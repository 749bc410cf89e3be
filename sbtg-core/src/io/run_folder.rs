//! The life of an output folder: refuse to overwrite results unless asked, keep an
//! interrupted run's progress apart from earlier results, and put a finished run in
//! place with its `run.json` manifest.
//!
//! While a run is going, everything it has not finished lives in `OUT/.partial/`: its
//! manifest (`status: running`) and the score models trained so far
//! (`checkpoints/`). Earlier results in `OUT` are untouched until the new run has
//! succeeded; each file is then written to a temporary file and renamed into place.
//! `sbtg infer --resume` reads `.partial/` back.

use std::path::{Path, PathBuf};

use crate::io::manifest::{digest_file, FileDigest, Manifest};
use crate::{Error, Result};

/// Name of the folder that holds an unfinished run.
pub const PARTIAL: &str = ".partial";

/// What to do when the output folder already holds results.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Overwrite {
    /// Replace earlier results (only once the new run succeeds).
    pub force: bool,
    /// Continue the interrupted run in `OUT/.partial`.
    pub resume: bool,
}

/// An output folder prepared for a run.
#[derive(Clone, Debug)]
pub struct RunFolder {
    pub dir: PathBuf,
}

/// Files in `dir` other than the partial folder (what a new run would overwrite).
fn existing_results(dir: &Path) -> Result<Vec<String>> {
    if !dir.exists() {
        return Ok(Vec::new());
    }
    if !dir.is_dir() {
        return Err(Error::format(
            dir,
            "--out",
            "exists and is not a folder; choose a folder name for the results",
        ));
    }
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| Error::read(dir, e))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != PARTIAL && !n.starts_with("."))
        .collect();
    names.sort();
    Ok(names)
}

impl Overwrite {
    /// A new run (no resume), replacing earlier results only with `force`.
    pub fn new_run(force: bool) -> Overwrite {
        Overwrite {
            force,
            resume: false,
        }
    }
}

impl RunFolder {
    /// Checks that a run may write into `dir`.
    pub fn open(dir: &Path, how: Overwrite) -> Result<RunFolder> {
        let existing = existing_results(dir)?;
        let folder = RunFolder {
            dir: dir.to_path_buf(),
        };
        if how.resume {
            if !folder.partial_manifest().exists() {
                return Err(Error::format(
                    dir,
                    "--resume",
                    format!(
                        "no interrupted run to resume ({} is missing); run without --resume",
                        folder.partial_manifest().display()
                    ),
                ));
            }
        } else if !existing.is_empty() && !how.force {
            let shown: Vec<&str> = existing.iter().take(4).map(String::as_str).collect();
            return Err(Error::format(
                dir,
                "--out",
                format!(
                    "the folder already holds results ({}{}); choose another --out, or add --force to replace them (they are kept until the new run has succeeded)",
                    shown.join(", "),
                    if existing.len() > 4 { ", …" } else { "" }
                ),
            ));
        }
        Ok(folder)
    }

    /// `OUT/.partial`.
    pub fn partial(&self) -> PathBuf {
        self.dir.join(PARTIAL)
    }

    /// `OUT/.partial/run.json`, the manifest of an unfinished run.
    pub fn partial_manifest(&self) -> PathBuf {
        self.partial().join("run.json")
    }

    /// Where this run saves its score models until it finishes.
    pub fn partial_checkpoints(&self) -> PathBuf {
        self.partial().join("checkpoints")
    }

    /// `OUT/checkpoints`, the score models of the finished run.
    pub fn checkpoints(&self) -> PathBuf {
        self.dir.join("checkpoints")
    }

    /// Sub-folders that `sbtg plot` and `sbtg compare` wrote from this folder's edge
    /// table (`figures*`, `compare-*`), sorted: after a new `infer` run they describe the
    /// earlier one.
    pub fn derived_folders(&self) -> Vec<String> {
        let Ok(rd) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut names: Vec<String> = rd
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("figures") || n.starts_with("compare-"))
            .collect();
        names.sort();
        names
    }

    /// Records that a run has started (`.partial/run.json`, status `running`).
    pub fn start(&self, manifest: &Manifest) -> Result<()> {
        manifest.write(&self.partial_manifest())
    }

    /// Puts a finished run in place: moves its checkpoints into `OUT/checkpoints`,
    /// removes files that the previous run in `OUT` wrote and this one did not, writes
    /// `run.json` with the SHA-256 of every output, and deletes `.partial`.
    pub fn finish(
        &self,
        manifest: &mut Manifest,
        mut written: Vec<PathBuf>,
        seconds: serde_json::Value,
    ) -> Result<()> {
        let staged = self.partial_checkpoints();
        if staged.is_dir() {
            let dest = self.checkpoints();
            if dest.exists() {
                std::fs::remove_dir_all(&dest).map_err(|e| Error::write(&dest, e))?;
            }
            std::fs::rename(&staged, &dest).map_err(|e| Error::write(&dest, e))?;
            let mut files: Vec<PathBuf> = std::fs::read_dir(&dest)
                .map_err(|e| Error::write(&dest, e))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
                .collect();
            files.sort();
            written.extend(files);
        }
        let run_json = self.dir.join("run.json");
        if let Ok(old) = Manifest::read(&run_json) {
            for f in old.outputs {
                let p = self.dir.join(&f.path);
                if !written.contains(&p) && p.starts_with(&self.dir) && p.is_file() {
                    let _ = std::fs::remove_file(&p);
                }
            }
        }
        let outputs = written
            .iter()
            .map(|p| {
                let d = digest_file(p)?;
                Ok(FileDigest {
                    path: p.strip_prefix(&self.dir).unwrap_or(p).to_path_buf(),
                    ..d
                })
            })
            .collect::<Result<Vec<_>>>()?;
        manifest.complete(outputs, seconds);
        manifest.write(&run_json)?;
        let partial = self.partial();
        if partial.exists() {
            std::fs::remove_dir_all(&partial).map_err(|e| Error::write(&partial, e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("sbtg-runfolder-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn refuses_results_unless_forced_and_resume_needs_a_partial_run() {
        let d = tmp("refuse");
        RunFolder::open(&d, Overwrite::default()).unwrap();
        std::fs::create_dir_all(&d).unwrap();
        RunFolder::open(&d, Overwrite::default()).unwrap(); // empty folder is fine
        std::fs::write(d.join("edges.csv"), "x").unwrap();
        let err = RunFolder::open(&d, Overwrite::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("edges.csv") && err.contains("--force"),
            "{err}"
        );
        RunFolder::open(
            &d,
            Overwrite {
                force: true,
                resume: false,
            },
        )
        .unwrap();
        let err = RunFolder::open(
            &d,
            Overwrite {
                force: false,
                resume: true,
            },
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("no interrupted run"), "{err}");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn finish_replaces_stale_outputs_and_records_digests() {
        let d = tmp("finish");
        let f = RunFolder::open(&d, Overwrite::default()).unwrap();
        let mut m = Manifest::start("infer", serde_json::json!({}), vec![], Some(0));
        f.start(&m).unwrap();
        std::fs::create_dir_all(f.partial_checkpoints()).unwrap();
        std::fs::write(f.partial_checkpoints().join("lag1-fold1.safetensors"), "m").unwrap();
        std::fs::write(d.join("a.csv"), "1").unwrap();
        std::fs::write(d.join("old.csv"), "2").unwrap();
        f.finish(
            &mut m,
            vec![d.join("a.csv"), d.join("old.csv")],
            serde_json::json!({}),
        )
        .unwrap();
        assert!(!f.partial().exists());
        assert!(f.checkpoints().join("lag1-fold1.safetensors").is_file());
        // A second run that writes only a.csv removes old.csv, which the first wrote.
        let f = RunFolder::open(
            &d,
            Overwrite {
                force: true,
                resume: false,
            },
        )
        .unwrap();
        let mut m2 = Manifest::start("infer", serde_json::json!({}), vec![], Some(0));
        f.finish(&mut m2, vec![d.join("a.csv")], serde_json::json!({}))
            .unwrap();
        assert!(!d.join("old.csv").exists());
        let back = Manifest::read(&d.join("run.json")).unwrap();
        assert_eq!(back.outputs.len(), 1);
        assert_eq!(back.outputs[0].path, PathBuf::from("a.csv"));
        assert_eq!(
            back.outputs[0].sha256,
            crate::io::manifest::sha256_hex(b"1")
        );
        std::fs::remove_dir_all(&d).unwrap();
    }
}
