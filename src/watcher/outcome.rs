//! What `execute_spawn_bg_resume` reports.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::garden_id::GardenId;
use crate::lock::ReleaseOutcome;
use crate::plan::PolicyError;

use super::deps::{BoxError, ChildExit, StopSignal};

/// The end of one spawn-bg resume: `C` is the deps' child handle, `E` their spawn error
/// ([`WatchDeps`](super::WatchDeps)).
#[derive(Debug)]
#[must_use = "an outcome says whether the lock was released and may carry the resident"]
#[non_exhaustive]
pub enum SpawnBgOutcome<C, E> {
    /// The child could not be started; the lock was released (nothing to watch).
    SpawnStartFailed {
        /// Why, typed as the deps report it.
        error: E,
        /// What the release found.
        release: ReleaseOutcome,
    },
    /// The control socket became connectable; the lock was released and the resident
    /// lives on. The handle is the caller's: dropping it does not kill the resident.
    SocketAlive {
        /// The resident's pid.
        pid: u32,
        /// What the release found.
        release: ReleaseOutcome,
        /// Set when the socket came alive only after the escalation had begun: the
        /// resident already received this signal and is likely going away (in production
        /// its whole group is swept with SIGKILL once the leader exits). `None` on the
        /// ordinary path, where nothing was signalled and the resident lives on.
        after_signal: Option<StopSignal>,
        /// The resident.
        resident: C,
    },
    /// The child exited (on its own or after our signals); the lock was released.
    ChildExited {
        /// Its pid.
        pid: u32,
        /// How it ended.
        exit: ChildExit,
        /// What the release found.
        release: ReleaseOutcome,
        /// The end of what it wrote to stderr, when the deps can tell
        /// ([`WatchDeps::stderr_tail`](super::WatchDeps::stderr_tail)): why a runtime
        /// that exits at once refused to run.
        stderr_tail: Option<String>,
    },
    /// Nothing was observed: the lock is kept, and the diagnostic says why.
    LockRetained(Box<RetainedDiagnostic>),
}

impl<C, E> SpawnBgOutcome<C, E> {
    /// True when the release step ran (exactly once); false when the lock is retained.
    #[must_use]
    pub fn released(&self) -> bool {
        !matches!(self, Self::LockRetained(_))
    }

    /// A short name: `spawn-start-failed`, `socket-alive`, `child-exited`, `lock-retained`.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::SpawnStartFailed { .. } => "spawn-start-failed",
            Self::SocketAlive { .. } => "socket-alive",
            Self::ChildExited { .. } => "child-exited",
            Self::LockRetained(_) => "lock-retained",
        }
    }
}

/// Why the lock was kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RetainReason {
    /// A watcher could not start, or failed and the backstop saw no exit.
    ObserveFailed,
    /// SIGKILL was sent (or tried) and still no exit was observed within the kill grace.
    KillUnconfirmed,
}

impl RetainReason {
    /// The wire name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ObserveFailed => "observe-failed",
            Self::KillUnconfirmed => "kill-unconfirmed",
        }
    }
}

/// Everything a person needs to find the child and clear the lock.
///
/// Made by the watcher and read by callers, never built by them: `#[non_exhaustive]`,
/// so a detail added later breaks no dependent that reads or matches it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetainedDiagnostic {
    /// The citizen.
    pub target: GardenId,
    /// The child's pid.
    pub pid: u32,
    /// The socket path that was watched.
    pub expected_socket_path: PathBuf,
    /// The lock that is kept.
    pub lock_path: PathBuf,
    /// The configured observe timeout.
    pub observe_timeout: Duration,
    /// The configured SIGTERM grace.
    pub term_grace: Duration,
    /// The configured SIGKILL grace.
    pub kill_grace: Duration,
    /// Why.
    pub reason: RetainReason,
    /// The errors met on the way (watcher and signal failures), with their causes.
    pub error: Option<String>,
}

impl fmt::Display for RetainedDiagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "lock retained ({}) for {}: pid {}, socket {:?}, lock {:?}, observe timeout {:?}, \
             term grace {:?}, kill grace {:?}",
            self.reason.as_str(),
            self.target,
            self.pid,
            self.expected_socket_path,
            self.lock_path,
            self.observe_timeout,
            self.term_grace,
            self.kill_grace,
        )?;
        if let Some(e) = &self.error {
            write!(f, "; error: {e}")?;
        }
        write!(
            f,
            "; check that pid {} is gone, then remove {:?} by hand",
            self.pid, self.lock_path
        )
    }
}

/// Why the watcher went to release the lock: one of the two observations, or a spawn
/// that failed. A failed spawn is not an observation (nothing was ever watched); it
/// releases because holding the lock would pin the garden id with nothing left to wait
/// for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReleaseCause {
    /// The spawn failed.
    SpawnStartFailed,
    /// Observed: the socket became connectable.
    SocketAlive,
    /// Observed: the child exited.
    ChildExited(ChildExit),
}

impl fmt::Display for ReleaseCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SpawnStartFailed => f.write_str("spawn start failed"),
            Self::SocketAlive => f.write_str("socket alive"),
            Self::ChildExited(e) => write!(f, "child exited ({e})"),
        }
    }
}

/// Errors of `execute_spawn_bg_resume`; outcomes (including a retained lock) are not
/// errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WatchError {
    /// The lock does not fit the plan; nothing was spawned.
    #[error("lock does not fit the plan")]
    Policy(#[from] PolicyError),
    /// The observation happened but releasing the lock failed. The caller must not spawn
    /// again; the lock needs a person.
    #[error(
        "releasing {lock_path:?} after {cause} failed: do not spawn again; remove the lock by hand"
    )]
    ReleaseFailed {
        /// What the release followed.
        cause: ReleaseCause,
        /// The child's pid, when one was started (a resident may be running).
        pid: Option<u32>,
        /// Why the spawn failed, on the spawn-failed path.
        spawn_error: Option<String>,
        /// The lock.
        lock_path: PathBuf,
        /// Why the release failed.
        #[source]
        source: BoxError,
    },
    /// The release reducer answered "hold" where the watcher would have released, so the
    /// lock was not touched and is still held. The reducer's decision is what releases;
    /// under the spawn-bg policy this cannot happen, and if it ever does the caller is
    /// told rather than a lock being released against the policy.
    #[error("the release policy kept {lock_path:?} after {cause}: the lock is still held")]
    ReleaseWithheld {
        /// What the watcher saw.
        cause: ReleaseCause,
        /// The child's pid, when one was started (a resident may be running).
        pid: Option<u32>,
        /// The lock, still held.
        lock_path: PathBuf,
    },
}
