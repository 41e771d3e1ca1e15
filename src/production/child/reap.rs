//! The one reaping step, shared by the supervisor task and the reaper thread: look for
//! an exited-but-unreaped leader, sweep its group if it was signalled, reap it, and say
//! how it ended.
//!
//! Both owners must do exactly this, in this order (the sweep only while the zombie
//! leader still pins the group id), so it is written once. This file imports none of its
//! siblings: the exit sources, the supervisor and the reaper all import it.

use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::Child;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use rustix::process::{WaitId, WaitIdOptions, waitid};

use super::ExitWatchError;
use crate::watcher::ChildExit;

/// What an owner publishes to the handles: nothing yet, then the exit or why it is
/// unknowable.
pub(super) type Published = Option<Result<ChildExit, ExitWatchError>>;

/// Whether the process named by `id` (a pid, or a pidfd on Linux) has exited and still
/// waits to be reaped. `WNOWAIT`: the look reaps nothing, so the zombie keeps pinning the
/// pid and the group id.
pub(super) fn exited_unreaped<'fd>(id: impl Fn() -> WaitId<'fd>) -> io::Result<bool> {
    let options = WaitIdOptions::EXITED | WaitIdOptions::NOWAIT | WaitIdOptions::NOHANG;
    loop {
        // A closure, because `WaitId` is not `Copy` (it may borrow a pidfd) and an
        // interrupted call is made again.
        match waitid(id(), options) {
            Ok(Some(status)) => return Ok(status.exited() || status.killed() || status.dumped()),
            Ok(None) => return Ok(false),
            Err(rustix::io::Errno::INTR) => {}
            Err(errno) => return Err(errno.into()),
        }
    }
}

/// [`exited_unreaped`] for a child named by its pid (the portable exit source and the
/// reaper thread).
pub(super) fn pid_exited_unreaped(pid: u32) -> io::Result<bool> {
    let pid = crate::sys::rustix_pid(pid)?;
    exited_unreaped(|| WaitId::Pid(pid))
}

/// The leader of `child`'s group exited and is unreaped: sweeps the group with SIGKILL
/// when `sweep` (a terminate or kill was requested, and "no member survives a kill" is
/// part of that contract), then reaps the leader and reports its exit.
pub(super) fn sweep_and_reap(child: &mut Child, sweep: bool) -> io::Result<ChildExit> {
    if sweep {
        if let Ok(pgid) = i32::try_from(child.id()) {
            // The zombie leader pins the group id: no stranger can be hit. ESRCH (nobody
            // left) and EPERM (a member gained privileges we lack) change nothing about
            // the leader's exit being real, so it is still reported.
            let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
        }
    }
    match child.try_wait()? {
        Some(status) => Ok(ChildExit {
            code: status.code(),
            signal: status.signal(),
        }),
        None => Err(io::Error::other(
            "an exit was observed but the child is not reapable",
        )),
    }
}
