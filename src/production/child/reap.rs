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

use super::ExitWatchError;
use crate::watcher::ChildExit;

/// What an owner publishes to the handles: nothing yet, then the exit or why it is
/// unknowable.
pub(super) type Published = Option<Result<ChildExit, ExitWatchError>>;

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
