//! Atomic file writes: a reader never sees a half-written file, and a failed write
//! leaves the earlier file intact; [`write_all_atomic`] extends that to a set of files.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// Writes `bytes` to `path` atomically (temp file in the same folder, fsync, rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = stage(path, bytes)?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::write(path, e)
    })
}

/// The temporary file beside `path` holding `bytes`, flushed to disk.
fn stage(path: &Path, bytes: &[u8]) -> Result<PathBuf> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::write(dir, e))?;
    let name = path.file_name().and_then(|s| s.to_str()).unwrap_or("out");
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let res = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    })();
    if let Err(e) = res {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::write(path, e));
    }
    Ok(tmp)
}

/// Writes a set of files so that a failure while writing replaces none of them: every
/// file is first written in full to a temporary file beside its target (a full disk or a
/// folder in a file's place fails here, and the temporary files are removed), and only
/// then are the temporary files renamed into place, one rename each. A rename that fails
/// after others succeeded (rare: same folder, targets checked) leaves those replaced.
pub fn write_all_atomic(files: &[(PathBuf, Vec<u8>)]) -> Result<()> {
    let mut staged: Vec<PathBuf> = Vec::with_capacity(files.len());
    let clean = |staged: &[PathBuf]| {
        for t in staged {
            let _ = std::fs::remove_file(t);
        }
    };
    for (path, bytes) in files {
        if path.is_dir() {
            clean(&staged);
            return Err(Error::format(
                path,
                "output",
                "is a folder where the run writes a file; move it away and run again",
            ));
        }
        match stage(path, bytes) {
            Ok(t) => staged.push(t),
            Err(e) => {
                clean(&staged);
                return Err(e);
            }
        }
    }
    for (k, ((path, _), tmp)) in files.iter().zip(&staged).enumerate() {
        if let Err(e) = std::fs::rename(tmp, path) {
            clean(&staged[k..]);
            return Err(Error::write(path, e));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_set_of_writes_replaces_none_of_the_files() {
        let d = std::env::temp_dir().join(format!("sbtg-atomic-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("b.csv")).unwrap();
        std::fs::write(d.join("a.csv"), "old").unwrap();
        let files = vec![
            (d.join("a.csv"), b"new".to_vec()),
            (d.join("b.csv"), b"new".to_vec()),
        ];
        let err = write_all_atomic(&files).unwrap_err().to_string();
        assert!(err.contains("b.csv") && err.contains("folder"), "{err}");
        assert_eq!(std::fs::read_to_string(d.join("a.csv")).unwrap(), "old");
        // No temporary file is left behind.
        let left: Vec<_> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left.len(), 2, "{left:?}");
        std::fs::remove_dir_all(d.join("b.csv")).unwrap();
        write_all_atomic(&files).unwrap();
        assert_eq!(std::fs::read_to_string(d.join("a.csv")).unwrap(), "new");
        assert_eq!(std::fs::read_to_string(d.join("b.csv")).unwrap(), "new");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
