//! CLI tests of `smoke-entwurf-v2-spawn-live`: the REAL binary against the real OS —
//! exit codes and summary lines per scenario, TAP (structure, and Debian's `prove`),
//! JSON Lines, colors, `--record`, the failure and deadline paths (hidden test-only
//! flags), Ctrl-C, the `run.sh` gate and usage errors.
//!
//! Every run gets its own `TMPDIR`, so the tests can check that nothing is left behind
//! and parallel runs cannot collide.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

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

#[test]
fn every_scenario_passes_with_its_summary_line() {
    let cases: [(&[&str], usize); 7] = [
        (&[], 31),
        (&["all"], 31),
        (&["socket"], 11),
        (&["child"], 6),
        (&["watcher"], 10),
        (&["lock"], 11),
        (&["resume"], 5),
    ];
    for (args, total) in cases {
        let r = run(args);
        assert_eq!(r.code, 0, "{args:?}\n{}\n{}", r.stdout, r.stderr);
        let (passed, failed, skipped) = count_lines(&r.stdout);
        assert_eq!(
            (passed + skipped, failed),
            (total, 0),
            "{args:?}\n{}",
            r.stdout
        );
        assert_eq!(
            last_line(&r.stdout),
            expected_summary(passed, 0, skipped),
            "{args:?}"
        );
        // Exactly one of S1.8 (root) and L8 (non-root) can run; the other is a skip.
        if args.is_empty() {
            assert_eq!(skipped, 1, "{}", r.stdout);
            let skip = if is_root() { "skip L8 " } else { "skip S1.8 " };
            assert!(r.stdout.contains(skip), "{}", r.stdout);
        }
    }
}

#[test]
fn text_output_of_the_child_scenario() {
    let r = run(&["child", "--color", "never"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    insta::assert_snapshot!(normalize(&r.stdout));
}

#[test]
fn help_lists_the_scenarios_and_hides_the_stand_ins() {
    let r = run(&["--help"]);
    assert_eq!(r.code, 0);
    assert!(
        !r.stdout.contains("__stand-in") && !r.stdout.contains("inject"),
        "{}",
        r.stdout
    );
    insta::assert_snapshot!(r.stdout);
}

#[test]
fn tap_is_well_formed_version_13() {
    let r = run(&["--format", "tap"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines[0], "TAP version 13");
    assert_eq!(lines[1], "1..31");
    let results: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.starts_with("ok ") || l.starts_with("not ok "))
        .collect();
    assert_eq!(results.len(), 31);
    for (i, line) in results.iter().enumerate() {
        assert!(line.starts_with(&format!("ok {} - ", i + 1)), "{line}");
    }
    assert_eq!(results.iter().filter(|l| l.contains(" # SKIP ")).count(), 1);
    assert!(lines.iter().all(|l| l.starts_with("ok ")
        || l.starts_with("# ")
        || l.starts_with("TAP ")
        || l.starts_with("1..")));
    assert_eq!(
        last_line(&r.stdout),
        format!("# {}", expected_summary(30, 0, 1))
    );
}

#[test]
fn tap_failures_carry_a_yaml_block() {
    let r = run(&["socket", "--format", "tap", "--inject-failure", "S1.4"]);
    assert_eq!(r.code, 1);
    let at = r.stdout.find("not ok 4 - S1.4 ").expect("not ok line");
    let block: Vec<&str> = r.stdout[at..].lines().skip(1).take(5).collect();
    assert_eq!(block[0], "  ---");
    assert!(
        block[1].starts_with("  message: \"injected failure"),
        "{block:?}"
    );
    assert_eq!(block[4], "  ...");
}

/// Debian's `prove` must accept the stream: passing, skipping and failing.
#[test]
fn prove_accepts_the_tap_stream() {
    if std::process::Command::new("prove")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED prove_accepts_the_tap_stream: `prove` is not installed (Debian: perl)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let prove = |args: &[&str], name: &str| {
        let tap = run(args).stdout;
        let file = dir.path().join(name);
        std::fs::write(&file, tap).unwrap();
        let out = std::process::Command::new("prove")
            .arg("--exec")
            .arg("cat")
            .arg(&file)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (ok, text) = prove(&["--format", "tap"], "all.tap");
    assert!(ok && text.contains("Result: PASS"), "{text}");
    let (ok, text) = prove(
        &["lock", "--format", "tap", "--inject-failure", "L2"],
        "failing.tap",
    );
    assert!(
        !ok && text.contains("Failed test:  2") && !text.contains("Parse errors"),
        "{text}"
    );
}

#[test]
fn json_lines_parse_with_the_documented_fields() {
    let r = run(&["lock", "--format", "json", "--inject-failure", "L3"]);
    assert_eq!(r.code, 1);
    let values: Vec<serde_json::Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let (checks, summary) = values.split_at(values.len() - 1);
    assert_eq!(checks.len(), 11);
    for v in checks {
        assert!(
            v["id"].is_string() && v["label"].is_string() && v["ms"].is_number(),
            "{v}"
        );
        assert!(v["ok"].is_boolean() && v["skipped"].is_boolean(), "{v}");
        assert_eq!(v["error"].is_null(), v["ok"] == true, "{v}");
        assert_eq!(v["skip_reason"].is_string(), v["skipped"] == true, "{v}");
    }
    let failed: Vec<_> = checks.iter().filter(|v| v["ok"] == false).collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["id"], "L3");
    assert!(
        failed[0]["error"]
            .as_str()
            .unwrap()
            .contains("injected failure")
    );
    let s = &summary[0];
    assert_eq!(s["failed"], 1);
    assert_eq!(
        s["passed"].as_u64().unwrap() + s["skipped"].as_u64().unwrap(),
        10
    );
    assert!(s["wall_ms"].is_number());
    assert_eq!(s["summary"].as_str().unwrap(), expected_summary(9, 1, 1));
}

#[test]
fn colors_follow_flag_no_color_and_clicolor_force() {
    let esc = |r: &Run| r.stdout.contains("\x1b[");
    assert!(esc(&run(&["child", "--color", "always"])));
    assert!(!esc(&run(&["child", "--color", "never"])));
    // Not a terminal under test: auto means plain, unless forced.
    assert!(!esc(&run(&["child"])));
    assert!(esc(&run_env(&["child"], &[("CLICOLOR_FORCE", "1")])));
    assert!(!esc(&run_env(
        &["child"],
        &[("NO_COLOR", "1"), ("CLICOLOR_FORCE", "1")]
    )));
    assert!(!esc(&run_env(&["child"], &[("NO_COLOR", "1")])));
    // Machine formats are never colored.
    assert!(!esc(&run(&[
        "child", "--color", "always", "--format", "json"
    ])));
    assert!(!esc(&run(&[
        "child", "--color", "always", "--format", "tap"
    ])));
}

#[test]
fn record_appends_dated_entries_under_one_heading() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("NEXT.md");
    let original = "# Next\n\n- keep this line\n   trailing spaces   \nno newline at the end";
    std::fs::write(&file, original).unwrap();
    let path = file.to_str().unwrap();
    for _ in 0..2 {
        assert_eq!(run(&["child", "--record", path]).code, 0);
    }
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.starts_with(original), "{text}");
    assert_eq!(text.matches("## Live smoke record").count(), 1, "{text}");
    let entries: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("- ") && l.contains(BIN))
        .collect();
    assert_eq!(entries.len(), 2, "{text}");
    for e in entries {
        assert!(
            e.contains(&format!("`{}`", expected_summary(6, 0, 0))),
            "{e}"
        );
        assert!(
            e.contains("Z `") && e.contains("scenario child") && e.contains(" ms"),
            "{e}"
        );
        assert!(e.contains(std::env::consts::ARCH), "{e}");
    }
}

#[test]
fn injected_failure_prints_fail_and_exits_1() {
    let r = run(&["socket", "--inject-failure", "S1.4"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stdout.contains(
            "FAIL S1.4 a regular file at the socket path → forged reject: injected failure"
        ),
        "{}",
        r.stdout
    );
    let (passed, failed, skipped) = count_lines(&r.stdout);
    assert_eq!(failed, 1);
    assert_eq!(last_line(&r.stdout), expected_summary(passed, 1, skipped));
}

#[test]
fn a_hanging_check_fails_at_its_deadline_and_the_run_finishes() {
    let start = Instant::now();
    let r = run(&[
        "socket",
        "--inject-hang",
        "S1.4",
        "--check-timeout-ms",
        "200",
    ]);
    assert_eq!(r.code, 1);
    assert!(
        r.stdout.contains("FAIL S1.4 ")
            && r.stdout
                .contains("deadline exceeded: no result within 200 ms"),
        "{}",
        r.stdout
    );
    // The other checks still ran and passed.
    assert_eq!(count_lines(&r.stdout).1, 1, "{}", r.stdout);
    assert!(start.elapsed() < Duration::from_secs(10));
}

#[test]
fn keep_tmp_keeps_the_dirs_and_skips_h3() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::cargo_bin(BIN)
        .unwrap()
        .args(["lock", "--keep-tmp"])
        .env("TMPDIR", tmp.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains("skip H3 every temp dir removed: --keep-tmp kept 1 temp dir(s)"),
        "{stdout}"
    );
    let kept: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert_eq!(kept.len(), 1);
    assert!(String::from_utf8(out.stderr).unwrap().contains("kept "));
}

#[test]
fn sigint_kills_the_children_removes_temp_dirs_and_exits_130() {
    let tmp = tempfile::tempdir().unwrap();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_smoke-entwurf-v2-spawn-live"))
        .args(["watcher", "--inject-hang", "S3.5"])
        .env("TMPDIR", tmp.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Long enough for the watcher scenario to have started its children.
    std::thread::sleep(Duration::from_millis(150));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    assert!(String::from_utf8_lossy(&out.stderr).contains("interrupted (SIGINT)"));
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        0,
        "temp dirs left"
    );
}

#[test]
fn the_stand_in_pi_rejects_a_wrong_argv_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let pi = dir.path().join("pi");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_smoke-entwurf-v2-spawn-live"), &pi).unwrap();
    let out = std::process::Command::new(&pi)
        .args([
            "--mode",
            "json",
            "-p",
            "--session-id",
            "20260613T000000-aaaaaa",
            "--model",
            "m",
            "hi",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("argv differs from build_resume_pi_args")
    );
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["bogus"][..],
        &["--format", "xml"],
        &["--color", "sometimes"],
        &["--check-timeout-ms", "0"],
    ] {
        let r = run(args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(
            r.stderr.contains("Usage:") || r.stderr.contains("error:"),
            "{}",
            r.stderr
        );
    }
}

fn run_sh(args: &[&str]) -> std::process::Output {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::process::Command::new(root.join("run.sh"))
        .args(args)
        .env_remove("LIVE")
        .output()
        .unwrap()
}

#[test]
fn run_sh_gates_the_live_smoke_behind_live_1() {
    let out = run_sh(&[BIN]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "[smoke-entwurf-v2-spawn-live] skipped — set LIVE=1 to run (spawns real children and opens real unix sockets)\n"
    );
    assert_eq!(run_sh(&["bogus"]).status.code(), Some(2));
    assert_eq!(run_sh(&[]).status.code(), Some(2));
    let help = run_sh(&["help"]);
    assert_eq!(help.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&help.stdout).contains(BIN));
}
