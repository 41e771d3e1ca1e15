//! `--record`: the build's commit in every entry, an atomic replace that keeps the
//! file's mode and the rest of its text, and no entry lost to a concurrent recorder.

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use crate::smoke_command;

fn record(file: &std::path::Path) -> std::process::Output {
    record_from(file, &std::env::temp_dir())
}

fn record_from(file: &std::path::Path, cwd: &std::path::Path) -> std::process::Output {
    let tmp = tempfile::tempdir().unwrap();
    smoke_command()
        .args(["child", "--only", "S2.3", "--record"])
        .arg(file)
        .env("TMPDIR", tmp.path())
        .current_dir(cwd)
        .output()
        .unwrap()
}

/// A git repository of its own with one commit; returns its short hash.
fn other_repo(dir: &std::path::Path) -> String {
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid"])
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    git(&["init", "-q"]);
    git(&["commit", "-q", "--allow-empty", "-m", "another project"]);
    git(&["rev-parse", "--short", "HEAD"])
}

#[test]
fn the_entry_names_the_built_commit_and_the_rest_of_the_file_stays() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("NEXT.md");
    let before = "# Next\n\n## Live smoke record\n\n- old entry\n\n## Later\n\ntext after\n";
    std::fs::write(&file, before).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
    let inode = std::fs::metadata(&file).unwrap().ino();
    // Run from inside another git repository: the commit is the build's, never the HEAD
    // of the directory the user happens to be in.
    let elsewhere = tempfile::tempdir().unwrap();
    let their_head = other_repo(elsewhere.path());
    let out = record_from(&file, elsewhere.path());
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let version = smoke_command().arg("--version").output().unwrap();
    let version = String::from_utf8_lossy(&version.stdout);
    let commit = version
        .split("(commit ")
        .nth(1)
        .unwrap()
        .trim()
        .trim_end_matches(')');
    let after = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<&str> = after.lines().collect();
    assert_eq!(lines[4], "- old entry");
    assert!(
        lines[5].ends_with(&format!(", built from commit {commit}")),
        "{after}"
    );
    assert!(!lines[5].contains(&their_head), "{after}");
    assert_eq!(after.replace(&format!("{}\n", lines[5]), ""), before);
    let meta = std::fs::metadata(&file).unwrap();
    assert_eq!(meta.mode() & 0o777, 0o640, "the mode was not kept");
    // Replaced by rename (a new inode), never rewritten in place.
    assert_ne!(meta.ino(), inode);
    let strays: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n != "NEXT.md")
        .collect();
    assert!(strays.is_empty(), "left beside the file: {strays:?}");
}

#[test]
fn concurrent_recorders_never_lose_an_entry() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("NEXT.md");
    std::fs::write(&file, "# Next\n").unwrap();
    let n = 6;
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let file = file.clone();
            std::thread::spawn(move || record(&file))
        })
        .collect();
    for h in handles {
        let out = h.join().unwrap();
        assert_eq!(out.status.code(), Some(0), "{out:?}");
    }
    let text = std::fs::read_to_string(&file).unwrap();
    let entries = text.lines().filter(|l| l.starts_with("- ")).count();
    assert_eq!(entries, n, "{text}");
    assert_eq!(text.matches("## Live smoke record").count(), 1);
}

/// A `## Live smoke record` quoted inside a fenced code block is text, not the
/// section: the entry goes under the real heading (made when there is none).
#[test]
fn a_heading_inside_a_code_fence_is_not_the_section() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("NEXT.md");
    let before = "# Next\n\n```md\n## Live smoke record\n```\n\ntext\n";
    std::fs::write(&file, before).unwrap();
    let out = record(&file);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let after = std::fs::read_to_string(&file).unwrap();
    assert!(
        after.starts_with(before),
        "the fenced text changed: {after}"
    );
    let rest = &after[before.len()..];
    assert!(rest.starts_with("\n## Live smoke record\n\n- "), "{after}");
}
