//! Build-time provenance for the live smoke binary: the commit it was built from.
//!
//! `ENTWURF_SMOKE_COMMIT` is the short hash of HEAD, with `-dirty` when the binary's own
//! sources ([`SOURCES`]: `src/`, `build.rs`, `Cargo.toml`, `Cargo.lock`) differ from it,
//! or `unknown` outside a git checkout (a source tarball, no git). Only those paths
//! count: an edit to the docs or the tests does not change the binary, so it does not
//! make it `-dirty` either. The same list is what cargo watches to rerun this script
//! (`rerun-if-changed`), so the mark can never be stale: whatever can flip it reruns it,
//! and nothing else is looked at. (It used to look at every tracked file while
//! rerunning only on these: an edited README built `-dirty` and stayed so after the
//! revert, an edited docs page never did.)
//!
//! It is read here, at build time, so a binary run from another directory (or another
//! repo) still names its own commit, never that directory's.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The binary's sources, relative to the package root: what `-dirty` is about, and what
/// reruns this script.
pub const SOURCES: [&str; 4] = ["build.rs", "Cargo.toml", "Cargo.lock", "src"];

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    // --no-optional-locks: `git status` would otherwise refresh the index, whose new
    // mtime would rerun this script on the next build, forever.
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
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

/// What the build of the package at `root` is: the commit mark, and the paths whose
/// change must rerun the script (only paths that exist: cargo reruns a build script on
/// every build while a listed path is missing — a repo without `packed-refs`, a packed
/// branch ref — which would relink the whole package each time).
pub struct Provenance {
    /// `abc1234`, `abc1234-dirty` or `unknown`.
    pub commit: String,
    /// For `cargo:rerun-if-changed`.
    pub watched: Vec<PathBuf>,
}

/// The provenance of the package at `root` (see the module docs).
pub fn provenance(root: &Path) -> Provenance {
    let mut watched: Vec<PathBuf> = SOURCES.iter().map(|p| root.join(p)).collect();
    let commit = match git(root, &["rev-parse", "--short", "HEAD"]).filter(|h| !h.is_empty()) {
        None => "unknown".to_owned(),
        Some(head) => {
            // A worktree's `.git` is a file: ask git where HEAD, the index and the
            // branch ref really live, so a commit or checkout reruns this script.
            let absolute = |p: String| {
                let p = PathBuf::from(p);
                if p.is_absolute() { p } else { root.join(p) }
            };
            let git_dir = git(root, &["rev-parse", "--git-dir"]).map(absolute);
            let common = git(root, &["rev-parse", "--git-common-dir"]).map(absolute);
            let branch = git(root, &["symbolic-ref", "-q", "HEAD"]);
            if let Some(dir) = &git_dir {
                watched.push(dir.join("HEAD"));
                watched.push(dir.join("index"));
            }
            if let Some(common) = &common {
                watched.push(common.join("packed-refs"));
                if let Some(branch) = &branch {
                    watched.push(common.join(branch));
                }
            }
            // `--` then the sources: the same paths as watched above, nothing else.
            let mut status = vec!["status", "--porcelain", "--untracked-files=no", "--"];
            status.extend(SOURCES);
            let dirty = git(root, &status).is_some_and(|s| !s.is_empty());
            if dirty { format!("{head}-dirty") } else { head }
        }
    };
    watched.retain(|p| p.exists());
    Provenance { commit, watched }
}

#[allow(
    dead_code,
    reason = "the provenance test includes this file without calling main"
)]
fn main() {
    let root =
        std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| PathBuf::from("."), PathBuf::from);
    let Provenance { commit, watched } = provenance(&root);
    // Listing any path turns off cargo's default (rerun on any package file).
    for path in watched {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    println!("cargo:rustc-env=ENTWURF_SMOKE_COMMIT={commit}");
}
