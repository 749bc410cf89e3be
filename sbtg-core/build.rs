//! Records the git commit the library is built from (`SBTG_GIT_COMMIT`), for the run
//! manifest. Outside a git checkout (a crate tarball) it is `unknown`.

use std::path::Path;
use std::process::Command;

fn main() {
    let commit = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=SBTG_GIT_COMMIT={commit}");
    // Rebuild when HEAD moves (a commit, a checkout), not on every index change.
    let git = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.git");
    for f in ["HEAD", "packed-refs"] {
        let p = git.join(f);
        if p.exists() {
            println!("cargo:rerun-if-changed={}", p.display());
        }
    }
    if let Ok(head) = std::fs::read_to_string(git.join("HEAD")) {
        if let Some(r) = head.trim().strip_prefix("ref: ") {
            let p = git.join(r);
            if p.exists() {
                println!("cargo:rerun-if-changed={}", p.display());
            }
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}
