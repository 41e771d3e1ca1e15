//! One of a test binary's ignored helper tests, run again under `strace` (the fault
//! tests: strace injects an error into one system call, or records every one of a kind).

use std::ffi::{OsStr, OsString};
use std::process::{Command, ExitStatus};

use crate::ci::skip_unless_ci;

/// What the traced helper did.
pub struct Traced {
    /// Its exit status.
    pub status: ExitStatus,
    /// Its stdout (lossy UTF-8).
    pub stdout: String,
    /// Its stderr, strace's own lines included (lossy UTF-8).
    pub stderr: String,
}

/// Runs this binary's ignored test `helper` alone (`--exact`, its output shown) under
/// `strace strace_args…`, with `env` set. `None`, after [`skip_unless_ci`], when strace
/// is not installed or ptrace is not permitted here.
///
/// # Panics
///
/// When strace cannot be run at all, or this binary's path is unknown.
pub fn run_helper(
    strace_args: &[OsString],
    helper: &str,
    env: &[(&str, &OsStr)],
) -> Option<Traced> {
    if Command::new("strace").arg("-V").output().is_err() {
        skip_unless_ci("strace is not installed (apt-get install strace)");
        return None;
    }
    let mut strace = Command::new("strace");
    strace
        .args(strace_args)
        .arg(std::env::current_exe().expect("current exe"))
        .args([
            "--exact",
            helper,
            "--include-ignored",
            "--nocapture",
            "--test-threads=1",
        ]);
    for (name, value) in env {
        strace.env(name, value);
    }
    let out = strace.output().expect("run strace");
    let traced = Traced {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    if !traced.status.success() && traced.stderr.contains("PTRACE_TRACEME") {
        skip_unless_ci(&format!("ptrace not permitted here: {}", traced.stderr));
        return None;
    }
    Some(traced)
}
