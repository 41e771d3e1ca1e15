//! One of a test binary's ignored helper tests, run again under `strace` (the fault
//! tests: strace injects an error into one system call, or records every one of a kind).

use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use crate::ci::skip_unless_ci;

/// How long a traced helper may run: every helper bounds its own waits well below it.
const LIMIT: Duration = Duration::from_secs(120);

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
/// When strace cannot be run at all, or this binary's path is unknown, or the run takes
/// longer than two minutes (then strace and the helper are killed first).
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
    // In a process group of its own, with the traced helper: a run past LIMIT is killed
    // whole, tracer and tracee (a helper stuck in a ptrace stop would outlive strace).
    let mut child = strace
        .process_group(0)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run strace");
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            String::from_utf8_lossy(&bytes).into_owned()
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for strace") {
            break status;
        }
        if started.elapsed() > LIMIT {
            let _ = killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
            let _ = child.wait();
            panic!(
                "strace {helper} ran past {LIMIT:?} and was killed with its helper:\n{}",
                stderr.join().unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let traced = Traced {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    };
    if !traced.status.success() && traced.stderr.contains("PTRACE_TRACEME") {
        skip_unless_ci(&format!("ptrace not permitted here: {}", traced.stderr));
        return None;
    }
    Some(traced)
}
