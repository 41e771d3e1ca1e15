//! The spawn's answer to a child it started but cannot supervise: `pidfd_open` fails
//! right after the fork (a descriptor limit reached between the two, say), which no
//! honest setup can arrange on demand. The child is running by then, so the spawn must
//! kill its group and reap it before it reports the failure: nothing left running,
//! nothing left unreaped.
//!
//! The test re-executes this binary under `strace -e inject=pidfd_open:error=EMFILE`,
//! which fails the first `pidfd_open` of the process and no other call, running the
//! ignored helper below, which kills what it finds left before it fails (strace
//! follows the child and would wait for it). It needs `strace` (CI installs it); without it, or without
//! ptrace, it says so and skips (never on CI).

#![cfg(target_os = "linux")]

use std::ffi::OsString;
use std::path::PathBuf;

use entwurf_test_support::strace::run_helper;
use entwurf_v2_spawn::Backend;
use entwurf_v2_spawn::production::child::{SpawnError, SpawnRequest, spawn_child};
use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::sys::wait::{Id, WaitPidFlag, waitid};
use nix::unistd::Pid;

const DIR_ENV: &str = "ENTWURF_CHILD_FAULT_DIR";
const OK: &str = "CHILD-FAULT-HELPER-OK";

/// Not a test on its own: the traced process.
#[tokio::test]
#[ignore = "helper process for the strace fault test"]
async fn child_fault_helper_process() {
    let Some(dir) = std::env::var_os(DIR_ENV).map(PathBuf::from) else {
        eprintln!("child_fault_helper_process only runs under the strace test");
        return;
    };
    // A child that says it started (its pid in a file), then waits to be killed: the
    // group's only process is `sh` itself, so "killed" is "this pid is gone".
    let started = dir.join("started");
    let script = format!("echo $$ > '{}'; exec sleep 600", started.display());
    let req =
        SpawnRequest::new("/bin/sh", ["-c", script.as_str()], &dir).with_backend(Backend::Native);
    match spawn_child(&req) {
        Err(SpawnError::ExitCapture { pid, source, .. }) => {
            // Reaped before the error came back: we have no child at all, not even a
            // zombie (ECHILD), and the pid names no process.
            let left = waitid(
                Id::All,
                WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT,
            );
            let exists = PathBuf::from(format!("/proc/{pid}")).exists();
            if left != Err(Errno::ECHILD) || exists {
                // Killed here, or strace (which follows it) would wait for it.
                let _ = killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
            }
            assert_eq!(
                source.raw_os_error(),
                Some(Errno::EMFILE as i32),
                "{source}"
            );
            assert_eq!(
                left,
                Err(Errno::ECHILD),
                "the child {pid} was left unreaped"
            );
            assert!(
                !exists,
                "the child {pid} still exists after the spawn failed"
            );
        }
        Ok(handle) => {
            let _ = killpg(Pid::from_raw(handle.pid() as i32), Signal::SIGKILL);
            panic!("the spawn succeeded although pidfd_open failed");
        }
        Err(other) => panic!("expected ExitCapture, got {other:?}"),
    }
    println!("{OK}");
}

#[test]
fn a_child_that_cannot_be_watched_is_killed_and_reaped_before_the_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let args = ["-f", "-qq", "-e", "signal=none", "-o", "/dev/null"]
        .into_iter()
        .chain([
            "-e",
            "trace=pidfd_open",
            "-e",
            "inject=pidfd_open:error=EMFILE:when=1",
        ])
        .map(OsString::from)
        .collect::<Vec<_>>();
    let Some(out) = run_helper(
        &args,
        "child_fault_helper_process",
        &[(DIR_ENV, dir.path().as_os_str())],
    ) else {
        return;
    };
    let (stdout, stderr) = (&out.stdout, &out.stderr);
    assert!(
        out.status.success() && stdout.contains(OK),
        "the helper failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
}
