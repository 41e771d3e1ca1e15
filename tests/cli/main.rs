//! CLI tests of `smoke-entwurf-v2-spawn-live`: the REAL binary against the real OS —
//! exit codes and summary lines per scenario, TAP (structure, and Debian's `prove`),
//! JSON Lines, JUnit, colors, `--record`, the failure and deadline paths (hidden
//! test-only flags), every way out (signals, SIGKILL, setup errors), selection, and the
//! `run.sh` gate.
//!
//! Every run gets its own `TMPDIR`, so the tests can check that nothing is left behind
//! and parallel runs cannot collide. Processes a run started are found by a marker
//! they inherit ([`MARK`] in their environment), never by their name.

mod backend;
mod formats;
mod layout;
mod needs;
mod pi;
mod readme;
mod record;
mod runs;
mod selection;
mod ways_out;

use std::time::{Duration, Instant};

use assert_cmd::Command;

const BIN: &str = "smoke-entwurf-v2-spawn-live";
const SUFFIX: &str = " (real OS primitives)";
/// Where the smoke looks for the real pi runtimes; empty: none in this run.
const REAL_PI_DIR: &str = "ENTWURF_REAL_PI_DIR";

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
        // These tests are about the harness: no real pi (its P checks have their own
        // tests, `pi.rs`), so a full run reports the one P line as an opted-out skip.
        .env(REAL_PI_DIR, "")
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE")
        .env_remove("FORCE_COLOR")
        .timeout(Duration::from_secs(90));
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    };
    if !args.contains(&"--keep-tmp") {
        // Only a failed check's dir may stay, and its path must have been printed.
        let left: Vec<_> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| !run.stderr.contains(&format!("kept {}", p.display())))
            .collect();
        assert!(
            left.is_empty(),
            "temp dirs left behind by {args:?}: {left:?}"
        );
    }
    run
}

/// A `TMPDIR` short enough that the run's socket dirs go in it too, not in `/tmp` (see
/// `harness::cleanup::temp_dirs::socket_root`): for the tests that count what a run
/// leaves, keeps or sweeps in its `TMPDIR`, whatever the length of the tests' own
/// `TMPDIR` (CI's is 50 characters).
fn short_tmpdir() -> tempfile::TempDir {
    entwurf_test_support::short_dir::short_tempdir()
}

fn run(args: &[&str]) -> Run {
    run_env(args, &[])
}

/// The ids `--list` prints for a run with `args` (a scenario, `--only ID`), in order:
/// what the tests derive their counts from, so a check added to the catalog changes no
/// test's numbers. Without a real pi, like [`run`].
fn listed(args: &[&str]) -> Vec<String> {
    let r = run(&[args, &["--list"]].concat());
    assert_eq!(r.code, 0, "{}", r.stderr);
    r.stdout
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

fn last_line(text: &str) -> &str {
    text.lines().last().unwrap_or_default()
}

/// Counts `(passed, failed, skipped)` from text result lines.
fn count_lines(stdout: &str) -> (usize, usize, usize) {
    let count = |prefix: &str| stdout.lines().filter(|l| l.starts_with(prefix)).count();
    (count("ok "), count("FAIL "), count("skip "))
}

/// The summary line of a full run.
fn expected_summary(passed: usize, failed: usize, skipped: usize) -> String {
    expected_named_summary("", passed, failed, skipped)
}

/// The summary line of a run of `what` (empty: the full gate).
fn expected_named_summary(what: &str, passed: usize, failed: usize, skipped: usize) -> String {
    let skipped = if skipped > 0 {
        format!(", {skipped} skipped")
    } else {
        String::new()
    };
    let program = if what.is_empty() {
        BIN.to_owned()
    } else {
        format!("{BIN} ({what})")
    };
    if failed == 0 {
        format!("{program}: {passed} checks passed{skipped}{SUFFIX}")
    } else {
        format!("{program}: {passed} passed, {failed} failed{skipped}{SUFFIX}")
    }
}

/// Skips expected in a full run besides the privilege-dependent one: the V checks (as
/// many as `--list` names) skip when tmux is missing or does not run — locally. On CI
/// (`CI` set) the smoke fails them instead, and this fails the test at once with the
/// reason: a gate that quietly shrank by those checks must never pass there.
pub fn tmux_skips() -> usize {
    let found = std::process::Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        entwurf_test_support::ci::skip_unless_ci("tmux is not installed (apt-get install tmux)");
    }
    if found {
        0
    } else {
        listed(&["visible"])
            .iter()
            .filter(|id| id.starts_with('V'))
            .count()
    }
}

/// The privilege-dependent skip of a full run: S1.8 (a socket given to another uid)
/// needs root. L8 (an EPERM holder) runs for everyone: as root with a holder of another
/// uid, met from a thread without `CAP_KILL`.
pub fn privilege_skips() -> usize {
    usize::from(!is_root())
}

/// The environment variable whose value marks every process of one test's run.
const MARK: &str = "ENTWURF_SMOKE_TEST_MARK";

/// A token unique to this call (pid + counter + time).
fn unique_mark() -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// Live (not zombie) processes whose environment carries `MARK=<token>`: the runner
/// of a test and everything it started, whatever their names.
fn marked(token: &str) -> Vec<u32> {
    let needle = format!("{MARK}={token}");
    entwurf_procfs::processes()
        .into_iter()
        .map(|(pid, _)| pid)
        .filter(|pid| {
            entwurf_procfs::alive(*pid)
                && std::fs::read(format!("/proc/{pid}/environ"))
                    .is_ok_and(|env| env.split(|b| *b == 0).any(|kv| kv == needle.as_bytes()))
        })
        .collect()
}

/// Waits up to `within` for `cond`; returns whether it held.
fn wait_for(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The binary under test, as a plain `std` command (for runs the test signals).
fn smoke_command() -> std::process::Command {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
    use std::os::unix::process::CommandExt;

    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_smoke-entwurf-v2-spawn-live"));
    cmd.env(REAL_PI_DIR, "");
    // The ways-out tests send INT, TERM, HUP and QUIT. A test run started as a background
    // job of a non-interactive shell inherits INT and QUIT ignored (and HUP under nohup),
    // and the smoke keeps a signal that was ignored at its start ignored, as `nohup`
    // expects. Give the smoke the default dispositions a run from a terminal has, so these
    // tests test the smoke and not how the test run was started.
    let reset = || -> std::io::Result<()> {
        let default = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
        for signal in [
            Signal::SIGINT,
            Signal::SIGTERM,
            Signal::SIGHUP,
            Signal::SIGQUIT,
        ] {
            // SAFETY: sigaction is async-signal-safe, so it may run between fork and exec.
            #[expect(unsafe_code, reason = "sigaction between fork and exec")]
            unsafe {
                sigaction(signal, &default)?;
            }
        }
        Ok(())
    };
    // SAFETY: the closure only calls sigaction (async-signal-safe) and allocates nothing.
    #[expect(
        unsafe_code,
        reason = "pre_exec to reset signal dispositions in the child"
    )]
    unsafe {
        cmd.pre_exec(reset);
    }
    cmd
}

/// The second-to-last line (the summary, when a failed-ids line follows it).
fn summary_before_failed_ids(text: &str) -> &str {
    let lines: Vec<&str> = text.lines().collect();
    lines
        .get(lines.len().saturating_sub(2))
        .copied()
        .unwrap_or_default()
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
            if let Some(at) = line.find("(commit ") {
                if let Some(close) = line[at..].find(')') {
                    line.replace_range(at + 8..at + close, "<commit>");
                }
            }
            // Where the sockets go depends on the TMPDIR the test gave the run.
            if let Some(at) = line.find(", sockets under ") {
                if let Some(close) = line[at..].find(')') {
                    line.replace_range(at + 16..at + close, "<sockets>");
                }
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
