//! Build-time provenance for the live smoke binary: the commit it was built from.
//!
//! `ENTWURF_SMOKE_COMMIT` is the short hash of HEAD, with `-dirty` when tracked files
//! differ from it, or `unknown` outside a git checkout (a source tarball, no git). It is
//! read here, at build time, so a binary run from another directory (or another repo)
//! still names its own commit, never that directory's.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn git(args: &[&str]) -> Option<String> {
    // --no-optional-locks: `git status` would otherwise refresh the index, whose new
    // mtime would rerun this script on the next build, forever.
    let out = Command::new("git")
        .arg("--no-optional-locks")
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Only paths that exist: cargo reruns a build script on every build while a listed
/// path is missing (a repo without `packed-refs`, a packed branch ref), which would
/// relink the whole package each time.
fn rerun_if_changed(path: &Path) {
    if path.exists() {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}

fn main() {
    // The sources the binary is made of: a change there can flip `-dirty`. Listing any
    // path turns off cargo's default (rerun on any package file), so they are all named.
    for path in ["build.rs", "Cargo.toml", "Cargo.lock", "src"] {
        rerun_if_changed(Path::new(path));
    }
    let commit = match git(&["rev-parse", "--short", "HEAD"]).filter(|h| !h.is_empty()) {
        None => "unknown".to_owned(),
        Some(head) => {
            // A worktree's `.git` is a file: ask git where HEAD, the index and the
            // branch ref really live, so a commit or checkout reruns this script.
            let git_dir = git(&["rev-parse", "--git-dir"]).map(PathBuf::from);
            let common = git(&["rev-parse", "--git-common-dir"]).map(PathBuf::from);
            let branch = git(&["symbolic-ref", "-q", "HEAD"]);
            if let Some(dir) = &git_dir {
                rerun_if_changed(&dir.join("HEAD"));
                rerun_if_changed(&dir.join("index"));
            }
            if let Some(common) = &common {
                rerun_if_changed(&common.join("packed-refs"));
                if let Some(branch) = &branch {
                    rerun_if_changed(&common.join(branch));
                }
            }
            let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            if dirty { format!("{head}-dirty") } else { head }
        }
    };
    println!("cargo:rustc-env=ENTWURF_SMOKE_COMMIT={commit}");
}
