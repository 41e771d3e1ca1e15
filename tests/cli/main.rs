//! CLI tests of `smoke-entwurf-v2-spawn-live`: the REAL binary against the real OS —
//! exit codes and summary lines per scenario, TAP (structure, and Debian's `prove`),
//! JSON Lines, colors, `--record`, the failure and deadline paths (hidden test-only
//! flags), Ctrl-C, the `run.sh` gate and usage errors.
//!
//! Every run gets its own `TMPDIR`, so the tests can check that nothing is left behind
//! and parallel runs cannot collide.

mod formats;
mod runs;

use std::time::Duration;

use assert_cmd::Command;

const BIN: &str = "smoke-entwurf-v2-spawn-live";
const SUFFIX: &str = " (real OS primitives)";

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs the binary with `args` and extra `env`, in a fresh TMPDIR that must be empty
/// afterwards (unless `--keep-tmp`).
fn run_env(args: &[&str], env: &[(&str, &str)]) -> Run {
    let tmp = tempfile::tempdir().unwrap();
    let mut cmd = Command::cargo_bin(BIN).unwrap();
    cmd.args(args)
        .env("TMPDIR", tmp.path())
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE")
        .timeout(Duration::from_secs(90));
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    if !args.contains(&"--keep-tmp") {
        let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
        assert!(
            left.is_empty(),
            "temp dirs left behind by {args:?}: {left:?}"
        );
    }
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

fn run(args: &[&str]) -> Run {
    run_env(args, &[])
}

fn last_line(text: &str) -> &str {
    text.lines().last().unwrap_or_default()
}

/// Counts `(passed, failed, skipped)` from text result lines.
fn count_lines(stdout: &str) -> (usize, usize, usize) {
    let count = |prefix: &str| stdout.lines().filter(|l| l.starts_with(prefix)).count();
    (count("ok "), count("FAIL "), count("skip "))
}

fn expected_summary(passed: usize, failed: usize, skipped: usize) -> String {
    let skipped = if skipped > 0 {
        format!(", {skipped} skipped")
    } else {
        String::new()
    };
    if failed == 0 {
        format!("{BIN}: {passed} checks passed{skipped}{SUFFIX}")
    } else {
        format!("{BIN}: {passed} passed, {failed} failed{skipped}{SUFFIX}")
    }
}

/// Skips expected in a full run besides the one privilege-dependent check: the eight V
/// checks skip when tmux is not installed (CI installs it).
pub fn tmux_skips() -> usize {
    let found = std::process::Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if found { 0 } else { 8 }
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Replaces every time with `<ms>` and the euid with `<euid>`.
fn normalize(text: &str) -> String {
    text.lines()
        .map(|line| {
            let mut line = line.to_owned();
            if let Some(open) = line.rfind('(') {
                let inner = &line[open + 1..];
                let time = inner
                    .strip_suffix(" ms)")
                    .is_some_and(|t| t.parse::<f64>().is_ok());
                if time {
                    line.replace_range(open.., "(<ms>)");
                }
            }
            if line.starts_with("wall time ") {
                line = "wall time <ms>".into();
            }
            if let Some(at) = line.find("(euid ") {
                if let Some(comma) = line[at..].find(',') {
                    line.replace_range(at + 6..at + comma, "<euid>");
                }
            }
            line
        })
        .collect::<Vec<_>>()
        .join("\n")
}
