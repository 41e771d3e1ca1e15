//! Runs and exit codes: every scenario, the failure and deadline paths, `--keep-tmp`,
//! Ctrl-C, the stand-in `pi`, usage errors and the `run.sh` gate.

use std::path::Path;
use std::time::{Duration, Instant};

use assert_cmd::Command;

use crate::{
    BIN, REAL_PI_DIR, count_lines, expected_named_summary, is_root, last_line, run,
    summary_before_failed_ids,
};

#[test]
fn every_scenario_passes_with_its_summary_line() {
    let cases: [(&[&str], usize); 10] = [
        (&[], 52),
        (&["all"], 52),
        (&["socket"], 11),
        (&["child"], 6),
        (&["watcher"], 10),
        (&["lock"], 11),
        (&["resume"], 5),
        (&["visible"], 11),
        (&["dispatch"], 15),
        (&["pi"], 4),
    ];
    for (args, total) in cases {
        // A full run keeps the contract's line; a scenario names itself.
        let what = match args {
            [] | ["all"] => "",
            [scenario] => scenario,
            _ => unreachable!(),
        };
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
            expected_named_summary(what, passed, 0, skipped),
            "{args:?}"
        );
        // Every scenario's skips are pinned, so a check that quietly starts skipping
        // fails here. S1.8 runs only as root; L8 runs for everyone (as root with a
        // holder of another uid); the V checks skip only without tmux, and never on CI;
        // the P line skips because these runs opt out of real pi, and with it H3 in the
        // pi scenario (no check made a temp dir).
        let root = is_root();
        let expected_skips = match what {
            "" => crate::privilege_skips() + 1 + crate::tmux_skips(),
            "pi" => 2,
            "socket" => usize::from(!root),
            "visible" => crate::tmux_skips(),
            _ => 0,
        };
        assert_eq!(skipped, expected_skips, "{args:?}\n{}", r.stdout);
        if args.is_empty() {
            assert!(r.stdout.contains("ok L8 "), "{}", r.stdout);
            assert_eq!(r.stdout.contains("skip S1.8 "), !root, "{}", r.stdout);
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
    assert_eq!(
        summary_before_failed_ids(&r.stdout),
        expected_named_summary("socket", passed, 1, skipped)
    );
    assert_eq!(last_line(&r.stdout), "failed ids: S1.4");
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

#[test]
fn the_stand_in_pi_rejects_a_wrong_argv_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let pi = dir.path().join("pi");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_smoke-entwurf-v2-spawn-live"), &pi).unwrap();
    let run = |args: &[&str]| std::process::Command::new(&pi).args(args).output().unwrap();
    // Not a resume argv at all: the variant marker is missing (the builder's inverse says so).
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
    assert!(String::from_utf8_lossy(&malformed.stderr).contains("is not a resume argv"));
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
        String::from_utf8_lossy(&wrong.stderr).contains("argv differs from the resume argv layout")
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
    run_sh_env(args, &[])
}

/// `run.sh` with `env`, using this test build's binary instead of a release build.
fn run_sh_env(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut cmd = std::process::Command::new(root.join("run.sh"));
    cmd.args(args).env_remove("LIVE").env(REAL_PI_DIR, "").env(
        "ENTWURF_SMOKE_BIN",
        env!("CARGO_BIN_EXE_smoke-entwurf-v2-spawn-live"),
    );
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

#[test]
fn run_sh_live_must_be_1_or_unset_or_0() {
    for skip in ["", "0"] {
        let out = run_sh_env(&[BIN], &[("LIVE", skip)]);
        assert_eq!(out.status.code(), Some(0), "LIVE={skip:?}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), SKIP_LINE);
    }
    for typo in ["true", "yes", "2", " 1"] {
        let out = run_sh_env(&[BIN], &[("LIVE", typo)]);
        assert_eq!(out.status.code(), Some(2), "LIVE={typo:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("LIVE must be 1 (run) or unset/0 (skip)"),
            "LIVE={typo:?}"
        );
        assert!(out.stdout.is_empty(), "LIVE={typo:?} must not run or skip");
    }
}

#[test]
fn run_sh_info_flags_work_without_live() {
    let help = run_sh(&[BIN, "--help"]);
    assert_eq!(help.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&help.stdout).contains("Usage:"));
    let short = run_sh(&[BIN, "-h"]);
    assert_eq!(short.status.code(), Some(0));
    let version = run_sh(&[BIN, "--version"]);
    assert!(String::from_utf8_lossy(&version.stdout).contains("(commit "));
    let tmp = tempfile::tempdir().unwrap();
    let list = run_sh_env(
        &[BIN, "--list"],
        &[("TMPDIR", tmp.path().to_str().unwrap())],
    );
    assert_eq!(list.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&list.stdout).lines().count(), 53);
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}

#[test]
fn run_sh_resolves_record_from_the_callers_directory() {
    let cwd = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new(root.join("run.sh"))
        .args([BIN, "child", "--only", "S2.3", "--record", "notes.md"])
        .current_dir(cwd.path())
        .env("LIVE", "1")
        .env(
            "ENTWURF_SMOKE_BIN",
            env!("CARGO_BIN_EXE_smoke-entwurf-v2-spawn-live"),
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(cwd.path().join("notes.md").is_file());
    assert!(
        !root.join("notes.md").exists(),
        "recorded into the repo root"
    );
}

#[test]
fn run_sh_without_cargo_says_how_to_install_rust() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new("/bin/bash")
        .arg(root.join("run.sh"))
        .args([BIN, "--version"])
        .env_remove("ENTWURF_SMOKE_BIN")
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cargo is not on PATH") && stderr.contains("rustup"),
        "{stderr}"
    );
}

const SKIP_LINE: &str = "[smoke-entwurf-v2-spawn-live] skipped — set LIVE=1 to run (spawns real children and opens real unix sockets)\n";

#[test]
fn run_sh_gates_the_live_smoke_behind_live_1() {
    let out = run_sh(&[BIN]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout), SKIP_LINE);
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
        .env(REAL_PI_DIR, "")
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

/// Without LIVE the gate skips in the format asked for: `--format junit > report.xml`
/// is a valid report with one skipped test, never a text line in an XML file.
#[test]
fn run_sh_skips_in_the_requested_format() {
    let junit = run_sh(&[BIN, "--format", "junit"]);
    assert_eq!(junit.status.code(), Some(0));
    let xml = String::from_utf8_lossy(&junit.stdout);
    let report = quick_junit::Report::deserialize_from_str(&xml).unwrap();
    let cases: Vec<_> = report
        .test_suites
        .iter()
        .flat_map(|s| &s.test_cases)
        .collect();
    assert_eq!(cases.len(), 1, "{xml}");
    assert!(
        matches!(cases[0].status, quick_junit::TestCaseStatus::Skipped { .. }),
        "{xml}"
    );
    let json = run_sh(&[BIN, "--format=json"]);
    let value: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&json.stdout).trim()).unwrap();
    assert_eq!(value["skipped"], true);
    assert!(value["reason"].as_str().unwrap().contains("LIVE=1"));
    let tap = run_sh(&["lock", "--format", "tap"].map(|a| if a == "lock" { BIN } else { a }));
    let tap = String::from_utf8_lossy(&tap.stdout);
    assert_eq!(
        tap.lines().collect::<Vec<_>>()[..2],
        [
            "TAP version 13",
            "1..0 # SKIP set LIVE=1 to run (spawns real children and opens real unix sockets)"
        ]
    );
    // Text stays the one line it always was.
    assert_eq!(
        String::from_utf8_lossy(&run_sh(&[BIN, "--format", "text"]).stdout),
        SKIP_LINE
    );
}

/// run.sh runs the binary cargo built, wherever cargo put it: a relative
/// CARGO_TARGET_DIR is relative to the caller's directory, and CARGO_BUILD_TARGET_DIR
/// counts too. A stand-in `cargo` on PATH resolves them as cargo does and reports the
/// executable as cargo does; run.sh must run exactly that file.
#[test]
fn run_sh_runs_the_binary_where_cargo_built_it() {
    let tmp = tempfile::tempdir().unwrap();
    let bin_dir = tmp.path().join("bin");
    std::fs::create_dir(&bin_dir).unwrap();
    let cargo = bin_dir.join("cargo");
    std::fs::write(
        &cargo,
        format!(
            "#!/bin/sh\n\
             dir=${{CARGO_TARGET_DIR:-${{CARGO_BUILD_TARGET_DIR:-target-default}}}}\n\
             case \"$dir\" in /*) ;; *) dir=$PWD/$dir ;; esac\n\
             mkdir -p \"$dir/release\"\n\
             printf '#!/bin/sh\\necho ran %s \"$@\"\\n' \"$dir\" > \"$dir/release/{BIN}\"\n\
             chmod +x \"$dir/release/{BIN}\"\n\
             echo '{{\"reason\":\"compiler-artifact\",\"executable\":null}}'\n\
             echo \"{{\\\"reason\\\":\\\"compiler-artifact\\\",\\\"executable\\\":\\\"$dir/release/{BIN}\\\"}}\"\n\
             echo '{{\"reason\":\"build-finished\",\"success\":true}}'\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&cargo, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let cwd = tmp.path().join("x");
    std::fs::create_dir(&cwd).unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (var, value, built) in [
        ("CARGO_TARGET_DIR", "tgt", cwd.join("tgt")),
        ("CARGO_BUILD_TARGET_DIR", "other", cwd.join("other")),
    ] {
        let out = std::process::Command::new(root.join("run.sh"))
            .args([BIN, "lock"])
            .current_dir(&cwd)
            .env("PATH", &path)
            .env("LIVE", "1")
            .env_remove("ENTWURF_SMOKE_BIN")
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("CARGO_BUILD_TARGET_DIR")
            .env(var, value)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{var}: {out:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("ran {} lock\n", built.display()),
            "{var}"
        );
    }
}
