//! The errors and answers of the child module, kept apart so `child/mod.rs` reads as the
//! spawn path.

use std::ffi::OsString;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use crate::watcher::StopSignal;

/// Why a child could not be started. Every variant means no child is left running.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpawnError {
    /// [`spawn_child`](super::spawn_child) was called outside a tokio runtime; nothing was started.
    #[error("spawning {program:?} needs a tokio runtime; nothing was started")]
    NoRuntime {
        /// The program.
        program: OsString,
    },
    /// The working directory is missing or not a directory.
    #[error("working directory {cwd:?} for {program:?} is unusable")]
    Cwd {
        /// The program.
        program: OsString,
        /// The working directory.
        cwd: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The stderr log (or its directory) could not be created or opened.
    #[error("cannot open stderr log {path:?}")]
    StderrLog {
        /// The log file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The program could not be started (missing, not executable, exec failed).
    #[error("cannot start {program:?} in {cwd:?}")]
    Exec {
        /// The program.
        program: OsString,
        /// Its working directory.
        cwd: PathBuf,
        /// Why (the child's `exec` error, reported by std).
        #[source]
        source: io::Error,
    },
    /// The program started but its exit cannot be watched (no pidfd: a kernel older than
    /// 5.3; no `SIGCHLD` listener; or no tokio IO driver). Without exit capture it could
    /// not be supervised safely, so its process group was killed and the child reaped
    /// before returning.
    #[error("cannot watch the exit of {program:?} (pid {pid}); it was killed and reaped")]
    ExitCapture {
        /// The program.
        program: OsString,
        /// The pid it had.
        pid: u32,
        /// Why.
        #[source]
        source: io::Error,
    },
}

/// Why a signal was not delivered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignalError {
    /// `killpg` failed with something other than "no such group".
    #[error("sending {} to process group {pgid} failed", .signal)]
    Kill {
        /// Which signal.
        signal: StopSignal,
        /// The group.
        pgid: u32,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The exit could not be observed, so whether the pid is still ours is unknown;
    /// signalling could hit a stranger, so nothing was sent.
    #[error("not sending {} to pid {pid}: its exit could not be observed", .signal)]
    ExitUnknown {
        /// Which signal.
        signal: StopSignal,
        /// The child.
        pid: u32,
    },
}

/// Why the exit could not be observed.
///
/// Cloneable (the OS error is shared) because every [`ChildHandle::exit`](super::ChildHandle::exit) caller gets
/// the same published result.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ExitWatchError {
    /// Waiting for the exit (pidfd or `waitid`) or reaping failed (e.g. `ECHILD` when someone else reaped the
    /// child, as happens when SIGCHLD is ignored).
    #[error("waiting for the exit of pid {pid} failed")]
    Wait {
        /// The child.
        pid: u32,
        /// The OS error.
        #[source]
        source: Arc<io::Error>,
    },
    /// Nobody is left to publish the exit: the supervisor task ended without publishing
    /// and the reaper thread, which normally takes over when a runtime shuts down first,
    /// could not be started.
    #[error("the supervisor of pid {pid} ended before its exit was observed")]
    SupervisorGone {
        /// The child.
        pid: u32,
    },
}

/// What [`ChildHandle::send_signal`](super::ChildHandle::send_signal) did. All three are successes: the caller wanted the
/// group gone, and it is going or gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SignalDelivery {
    /// `killpg` delivered the signal.
    Sent,
    /// `killpg` found nobody in the group (ESRCH). Cannot really happen while the leader
    /// is unreaped, but it means "nothing left to signal", not a failure.
    NothingLeft,
    /// The child was already reaped; nothing was sent, because its pid may belong to
    /// another process by now.
    AlreadyExited,
}
