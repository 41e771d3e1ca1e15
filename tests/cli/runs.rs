//! Runs and exit codes: every scenario, the failure and deadline paths, `--keep-tmp`,
//! Ctrl-C, the stand-in `pi`, usage errors and the `run.sh` gate.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use assert_cmd::Command;

use crate::{BIN, count_lines, expected_summary, is_root, last_line, run};

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
    // Well under the watchdog (5 × 200 ms + 5 s): the deadline, not the watchdog, ended it.
    assert!(start.elapsed() < Duration::from_secs(3));
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

/// The live children of `parent`: (pid, cmdline), from `/proc`.
fn children_of(parent: u32) -> Vec<(u32, String)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // Fields after the parenthesised command: state, ppid, ...
            let mut rest = stat.rsplit_once(')')?.1.split_whitespace();
            let (state, ppid) = (rest.next()?, rest.next()?.parse::<u32>().ok()?);
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            (ppid == parent && state != "Z")
                .then(|| (pid, String::from_utf8_lossy(&cmdline).replace('\0', " ")))
        })
        .collect()
}

fn gone(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| {
        s.rsplit_once(')')
            .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
    })
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
    // Interrupt while a stand-in resident is certainly running (S3.4's ignores SIGTERM
    // for its whole observe timeout and term grace), so the kill has something to kill.
    let deadline = Instant::now() + Duration::from_secs(5);
    let residents = loop {
        let found: Vec<u32> = children_of(child.id())
            .into_iter()
            .filter(|(_, cmd)| cmd.contains("__stand-in"))
            .map(|(pid, _)| pid)
            .collect();
        if !found.is_empty() || Instant::now() > deadline {
            break found;
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    assert!(!residents.is_empty(), "no stand-in child seen within 5 s");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("interrupted (SIGINT)"), "{stderr}");
    assert!(stderr.contains("killed "), "{stderr}");
    // Orphaned by the exit, a killed stand-in is reaped by init a moment later.
    let deadline = Instant::now() + Duration::from_secs(2);
    while !residents.iter().all(|&pid| gone(pid)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let alive: Vec<u32> = residents.into_iter().filter(|&pid| !gone(pid)).collect();
    assert!(alive.is_empty(), "stand-ins survived the Ctrl-C: {alive:?}");
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
    let run = |args: &[&str]| std::process::Command::new(&pi).args(args).output().unwrap();
    // Not a §9 argv at all: the variant marker is missing (the builder's inverse says so).
    let malformed = run(&[
        "--mode",
        "json",
        "-p",
        "--session-id",
        "20260613T000000-aaaaaa",
        "--model",
        "m",
        "hi",
    ]);
    assert_eq!(malformed.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&malformed.stderr).contains("is not a §9 resume argv"));
    // Well-formed, but not what the fixture's saved session implies.
    let wrong = run(&[
        "--mode",
        "json",
        "-p",
        "--entwurf-control",
        "--session-id",
        "20260613T000000-aaaaaa",
        "--model",
        "m",
        "hi",
    ]);
    assert_eq!(wrong.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&wrong.stderr)
            .contains("argv differs from the docs/design.md §9 layout")
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

/// Socket paths under a long TMPDIR exceed the 108-byte `sun_path`: every check must
/// still reach them (the library and the smoke both go through `/proc/self/fd`).
#[test]
fn a_long_tmpdir_still_passes() {
    let tmp = tempfile::tempdir().unwrap();
    let long = tmp.path().join("x".repeat(100));
    std::fs::create_dir(&long).unwrap();
    let out = Command::cargo_bin(BIN)
        .unwrap()
        .env("TMPDIR", &long)
        .timeout(Duration::from_secs(90))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert_eq!(
        std::fs::read_dir(&long).unwrap().count(),
        0,
        "temp dirs left"
    );
}
