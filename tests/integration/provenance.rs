//! The build script's `-dirty` mark (`build.rs`, included here as it is): it must be
//! right both ways — a change that can flip it reruns the script, and a change that does
//! not rerun it cannot flip it. Checked file by file in a git repository of its own.

#[path = "../../build.rs"]
mod build_script;

use std::path::Path;
use std::process::Command;

use build_script::provenance;

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid"])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git");
    assert!(out.status.success(), "git {args:?}: {out:?}");
}

#[test]
fn dirty_means_a_watched_source_changed_and_nothing_else() {
    let repo = tempfile::tempdir().expect("tmp");
    let root = repo.path();
    let files = [
        "build.rs",
        "Cargo.toml",
        "Cargo.lock",
        "src/lib.rs",
        "src/bin/smoke/main.rs",
        "README.md",
        "NEXT.md",
        "docs/design.md",
        "tests/cli/main.rs",
        "run.sh",
    ];
    for file in files {
        let path = root.join(file);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, "original\n").expect("write");
    }
    git(root, &["init", "-q"]);
    git(root, &["add", "-A"]);
    git(root, &["commit", "-q", "-m", "one"]);
    let clean = provenance(root);
    assert!(!clean.commit.ends_with("-dirty"), "{}", clean.commit);
    assert_ne!(clean.commit, "unknown");
    for file in files {
        let path = root.join(file);
        std::fs::write(&path, "edited\n").expect("edit");
        let edited = provenance(root);
        let dirty = edited.commit.ends_with("-dirty");
        let watched = edited.watched.iter().any(|w| path.starts_with(w));
        assert_eq!(
            dirty, watched,
            "{file}: dirty {dirty} but watched {watched} (watched: {:?})",
            edited.watched
        );
        std::fs::write(&path, "original\n").expect("revert");
        assert_eq!(provenance(root).commit, clean.commit, "{file} reverted");
    }
    // The binary's sources are among them, the docs are not.
    let dirty_on = |file: &str| {
        std::fs::write(root.join(file), "edited\n").expect("edit");
        let dirty = provenance(root).commit.ends_with("-dirty");
        std::fs::write(root.join(file), "original\n").expect("revert");
        dirty
    };
    assert!(dirty_on("src/bin/smoke/main.rs"));
    assert!(dirty_on("Cargo.lock"));
    assert!(!dirty_on("docs/design.md"));
    assert!(!dirty_on("README.md"));
}
