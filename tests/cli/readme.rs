//! The README shows `--list`'s output, and the catalog is the only list of checks: this
//! fails when the two differ.
//!
//! The block is the listing of a run without real pi (`ENTWURF_REAL_PI_DIR=""`, so the
//! `P` line skips), as root with tmux installed. What depends on who runs it where is
//! normalized on both sides: the commit (`<commit>`), the euid (`<euid>`), where the
//! sockets go (`<sockets>`), and the
//! verdict of a check that skips only for want of root or tmux (read as `runs`).

use super::{BIN, REAL_PI_DIR};

/// The line before the block in README.md.
const MARKER: &str = "<!-- the output of `--list`, checked by tests/cli/readme.rs -->";

/// Skip reasons that depend on the machine, not on the catalog.
const ENVIRONMENT_SKIPS: [&str; 2] = [
    "— skips: needs root to give a socket to another uid (run as root, e.g. in CI)",
    "— skips: tmux is not installed (apt-get install tmux)",
];

fn normalize(text: &str) -> String {
    text.lines()
        .map(|line| {
            let mut line = line.to_owned();
            if let Some(at) = line.find("(commit ") {
                if let Some(close) = line[at..].find(')') {
                    line.replace_range(at + 8..at + close, "<commit>");
                }
            }
            // The socket dir's root depends on the TMPDIR of whoever runs it.
            if let Some(at) = line.find(", sockets under ") {
                line.replace_range(at + 16.., "<sockets>");
            }
            if let Some(at) = line.find("for euid ") {
                if let Some(comma) = line[at..].find(',') {
                    line.replace_range(at + 9..at + comma, "<euid>");
                }
            }
            for skip in ENVIRONMENT_SKIPS {
                if let Some(head) = line.strip_suffix(skip) {
                    line = format!("{head}— runs");
                }
            }
            line + "\n"
        })
        .collect()
}

/// The fenced block after [`MARKER`].
fn readme_block() -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let after = readme
        .split_once(MARKER)
        .unwrap_or_else(|| panic!("README.md has no line {MARKER:?}"))
        .1;
    let block = after
        .split_once("```text\n")
        .expect("a ```text block after the marker")
        .1;
    block
        .split_once("```")
        .expect("the block's closing fence")
        .0
        .to_owned()
}

#[test]
fn the_readme_shows_what_list_prints() {
    let out = assert_cmd::Command::cargo_bin(BIN)
        .unwrap()
        .arg("--list")
        .env(REAL_PI_DIR, "")
        .env_remove("CI")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let listed = normalize(&String::from_utf8(out.stdout).unwrap());
    let shown = normalize(&readme_block());
    assert!(
        listed == shown,
        "README.md's --list block differs from --list; put this there:\n{listed}"
    );
}

/// The line before the block of one runtime's P lines in README.md.
const P_MARKER: &str =
    "<!-- the P lines of `--list` for one runtime, checked by tests/cli/readme.rs -->";

/// A line without its verdict (`— runs`, `— skips: …`): what a P check would do here
/// depends on the machine (tmux, strace), its id and label do not.
fn without_verdict(line: &str) -> &str {
    line.split_once(" — ")
        .map_or(line, |(head, _)| head)
        .trim_end()
}

/// With a real runtime, the `P` line becomes eight checks, each label naming the
/// runtime's version: the README shows them for one runtime (`pi-1.6.0` in the install
/// dir; the runtimes are found by their launchers' names, so an empty file stands in).
#[test]
fn the_readme_shows_the_p_lines_of_one_runtime() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("bin")).unwrap();
    std::fs::write(dir.path().join("bin/pi-1.6.0"), "").unwrap();
    let out = assert_cmd::Command::cargo_bin(BIN)
        .unwrap()
        .args(["pi", "--list"])
        .env(REAL_PI_DIR, dir.path())
        .env_remove("CI")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let listed: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with('P'))
        .map(without_verdict)
        .collect();
    // One runtime's P lines (their number is the catalog's; README must show them all).
    assert!(listed.iter().all(|l| l.starts_with("P1.")), "{stdout}");
    assert!(!listed.is_empty(), "{stdout}");
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let after = readme
        .split_once(P_MARKER)
        .unwrap_or_else(|| panic!("README.md has no line {P_MARKER:?}"))
        .1;
    let block = after
        .split_once("```text\n")
        .and_then(|(_, b)| b.split_once("```"))
        .expect("a ```text block after the marker")
        .0;
    let shown: Vec<&str> = block.lines().map(without_verdict).collect();
    assert!(
        listed == shown,
        "README.md's P lines differ from --list; put these there:\n{}",
        stdout
            .lines()
            .filter(|l| l.starts_with('P'))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
