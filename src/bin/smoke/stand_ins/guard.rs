//! The guard: how a program this project did not write (the real `pi`, Node) dies with
//! the gate process, SIGKILLed gate included.
//!
//! A stand-in watches the gate itself (`lifeline`); node cannot be taught to. So every
//! real runtime the gate starts is started *through* this binary: `__stand-in guard
//! --lifeline PID:START -- PROGRAM ARGS…` (or a launcher script running that, when the
//! program is handed to the library as a path). The guard
//!
//! 1. refuses to run in the gate's own process group (it kills its group when the gate
//!    dies, which must never be the group of anything else), then
//! 2. starts the watcher, `__stand-in guard-watch --lifeline PID:START`: this binary
//!    again, in the guard's process group, with stdin, stdout and stderr on `/dev/null`
//!    (so it holds none of the pipes the library reads to their end), then
//! 3. `exec`s PROGRAM. The pid stays the same, so the library's child *is* the program
//!    (its pid, cwd and exit are the program's own), and the watcher's parent is it.
//!
//! The watcher blocks in `poll` on two pidfds: the gate's (checked against its start
//! time) and its parent's (checked against `getppid` after opening). The gate gone, it
//! SIGKILLs its whole process group — the program, anything it started there, and
//! itself. The program gone first, it exits 0. Either check failing at start means that
//! one is gone already and acts the same. No timing is involved: whichever way the gate
//! ends, its runtimes end with it.

use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode, Stdio};

use super::args::{GuardArgs, WatchArgs};
use crate::os::ProcessId;

/// Set by the guard for its watcher only: the guard's pid, the parent the watcher
/// watches (the program, after the exec).
const PARENT_ENV: &str = "ENTWURF_SMOKE_GUARD_PARENT";

/// Exit code of a guard that could not start its program (as a shell's "cannot execute").
pub const GUARD_FAILED: u8 = 126;

/// A `/bin/sh` launcher that runs `program "$@"` under the guard of `exe` (this binary)
/// for `gate`: what the library is given as the runtime's path. `None` when a path holds
/// a `'` (or is not UTF-8), which the script's quoting cannot carry.
pub fn launcher_script(
    exe: &std::path::Path,
    gate: ProcessId,
    program: &std::path::Path,
) -> Option<String> {
    let quote = |s: &std::ffi::OsStr| {
        let s = s.to_str()?;
        (!s.contains('\'')).then(|| format!("'{s}'"))
    };
    let guard = GuardArgs {
        lifeline: gate,
        program: vec![program.as_os_str().to_owned()],
    };
    let mut line = vec!["exec".to_owned(), quote(exe.as_os_str())?];
    for arg in guard.to_args() {
        line.push(quote(&arg)?);
    }
    Some(format!(
        "#!/bin/sh\n# The gate's guard around a real runtime (stand_ins::guard): it dies with the gate.\n{} \"$@\"\n",
        line.join(" ")
    ))
}

fn failed(why: &str) -> ExitCode {
    eprintln!("guard: {why}");
    ExitCode::from(GUARD_FAILED)
}

/// Runs the guard (see the module docs); returns only when it could not start the
/// program.
pub fn guard(args: &GuardArgs) -> ExitCode {
    let Some((program, rest)) = args.program.split_first() else {
        return failed("no program to run");
    };
    let ours = nix::unistd::getpgrp().as_raw();
    let gates = crate::os::proc_stat(args.lifeline.pid).map(|s| s.pgrp);
    if gates.is_none_or(|g| u32::try_from(ours).is_ok_and(|o| o == g)) {
        return failed(&format!(
            "the gate (pid {}) is gone, or this guard is in its process group ({ours}): refusing to run",
            args.lifeline.pid
        ));
    }
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => return failed(&format!("this binary's path: {e}")),
    };
    let watch = WatchArgs {
        lifeline: args.lifeline,
    };
    let started = Command::new(exe)
        .args(watch.to_args())
        .env(PARENT_ENV, std::process::id().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let mut watcher = match started {
        Ok(watcher) => watcher,
        Err(e) => return failed(&format!("starting the watcher: {e}")),
    };
    // (The watcher's handle is dropped unwaited: after the exec below its parent is the
    // program, which never waits for it; it outlives the program only by moments.)
    let e = Command::new(program).args(rest).exec();
    // No program: no watcher either (it would watch a parent that is about to go).
    let _ = watcher.kill();
    let _ = watcher.wait();
    failed(&format!("executing {}: {e}", program.to_string_lossy()))
}

/// Runs the watcher (see the module docs).
#[cfg(target_os = "linux")]
pub fn watch(args: &WatchArgs) -> ExitCode {
    use nix::sys::signal::{Signal, killpg};
    use rustix::event::{PollFd, PollFlags, poll};
    use rustix::process::{Pid, PidfdFlags, pidfd_open};

    if std::env::var_os(super::lifeline::NO_LIFELINE_ENV).is_some() {
        // The CLI tests' switch: no lifeline, so the gate's own cleanup is what they see.
        return ExitCode::SUCCESS;
    }
    let kill_group = || -> ExitCode {
        let _ = killpg(nix::unistd::getpgrp(), Signal::SIGKILL);
        ExitCode::from(GUARD_FAILED)
    };
    // The guard names itself: by the time this runs it may be gone already (a program
    // that ended at once), and `getppid` would then name whoever adopted us.
    let parent = std::env::var(PARENT_ENV)
        .ok()
        .and_then(|pid| pid.parse().ok())
        .map_or_else(nix::unistd::getppid, nix::unistd::Pid::from_raw);
    let open = |pid: i32| Pid::from_raw(pid).map(|p| pidfd_open(p, PidfdFlags::empty()));
    let gate_fd = match i32::try_from(args.lifeline.pid).ok().and_then(open) {
        Some(Ok(fd)) if args.lifeline.is_alive() => fd,
        _ => return kill_group(),
    };
    let parent_fd = match open(parent.as_raw()) {
        Some(Ok(fd)) if nix::unistd::getppid() == parent => fd,
        _ => return ExitCode::SUCCESS,
    };
    loop {
        let mut fds = [
            PollFd::new(&gate_fd, PollFlags::IN),
            PollFd::new(&parent_fd, PollFlags::IN),
        ];
        if poll(&mut fds, None).is_ok_and(|n| n > 0) {
            // The gate first: both gone at once means the gate's death took the program.
            if !fds[0].revents().is_empty() {
                return kill_group();
            }
            if !fds[1].revents().is_empty() {
                return ExitCode::SUCCESS;
            }
        }
        // EINTR or a spurious wake-up: look again.
    }
}

/// Off Linux there is no pidfd (see `lifeline`): the watcher has nothing to watch with.
#[cfg(not(target_os = "linux"))]
pub fn watch(_args: &WatchArgs) -> ExitCode {
    ExitCode::SUCCESS
}
