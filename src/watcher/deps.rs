//! What the watcher needs from the world, injected so that the whole order of events is
//! testable without a process or a clock.

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::lock::{LockClaim, ReleaseOutcome};
use crate::plan::SpawnBgPlan;

/// Errors crossing the dependency boundary that the watcher only reports as text (in a
/// [`RetainedDiagnostic`](super::RetainedDiagnostic)) or as a source: watcher, signal and
/// release failures. The spawn error, which a caller acts on, keeps its type
/// ([`WatchDeps::SpawnError`]).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// How a child ended: a code when it exited, a signal number when a signal ended it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChildExit {
    /// `exit(code)`.
    pub code: Option<i32>,
    /// Killed by this signal.
    pub signal: Option<i32>,
}

impl std::fmt::Display for ChildExit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.code, self.signal) {
            (Some(code), _) => write!(f, "exit code {code}"),
            (None, Some(sig)) => write!(f, "killed by signal {sig}"),
            (None, None) => f.write_str("exit status unknown"),
        }
    }
}

/// The two signals of the escalation ladder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StopSignal {
    /// SIGTERM: please stop.
    Terminate,
    /// SIGKILL: stop now.
    Kill,
}

impl std::fmt::Display for StopSignal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Terminate => "SIGTERM",
            Self::Kill => "SIGKILL",
        })
    }
}

/// A spawned child as the watcher sees it.
pub trait SpawnedChild: Send + Sync {
    /// Its pid, for outcomes and diagnostics.
    fn pid(&self) -> u32;
}

/// The watcher's dependencies. Production wiring is
/// [`ProductionDeps`](crate::production::ProductionDeps).
///
/// Every future is `Send` (and the deps `Sync`), so `execute_spawn_bg_resume` can be
/// `tokio::spawn`ed: a dispatcher runs hundreds of them at once.
///
/// Cancellation: the `cancel` tokens handed to the watchers are cancelled on every
/// return path, and their futures dropped; a fake can assert both.
pub trait WatchDeps: Sync {
    /// The child handle. Dropping it must not kill the child.
    type Child: SpawnedChild;

    /// Why a spawn failed. Kept typed all the way to
    /// [`SpawnBgOutcome::SpawnStartFailed`](super::SpawnBgOutcome::SpawnStartFailed), so a
    /// caller can match on it (e.g. a missing saved session vs a missing program) without
    /// downcasting.
    type SpawnError: std::error::Error + Send + Sync + 'static;

    /// Starts the child for `plan`; resolves once it really started.
    fn spawn(
        &self,
        plan: &SpawnBgPlan,
    ) -> impl Future<Output = Result<Self::Child, Self::SpawnError>> + Send;

    /// Starts watching `path`; the future resolves once the socket is connectable and
    /// fails for an address that can never become ours.
    ///
    /// # Errors
    ///
    /// When the watch cannot even start (e.g. no inotify descriptor); the watcher then
    /// terminates the child and keeps the lock.
    fn watch_socket(
        &self,
        path: &Path,
        cancel: CancellationToken,
    ) -> Result<impl Future<Output = Result<(), BoxError>> + Send, BoxError>;

    /// Starts watching the child's exit.
    ///
    /// # Errors
    ///
    /// When the watch cannot even start; handled as for [`watch_socket`](Self::watch_socket).
    fn watch_exit(
        &self,
        child: &Self::Child,
        cancel: CancellationToken,
    ) -> Result<impl Future<Output = Result<ChildExit, BoxError>> + Send, BoxError>;

    /// A timer; dropping it cancels it.
    fn timer(&self, duration: Duration) -> impl Future<Output = ()> + Send;

    /// Signals the child (its process group, in production).
    fn signal(
        &self,
        child: &Self::Child,
        signal: StopSignal,
    ) -> impl Future<Output = Result<(), BoxError>> + Send;

    /// Releases the lock (in production: [`crate::lock::release`], run on the blocking
    /// pool, since it reads and unlinks a file and the watcher runs on an async worker).
    ///
    /// # Errors
    ///
    /// When the lock could not be read or removed; the watcher reports it as
    /// [`WatchError::ReleaseFailed`](super::WatchError::ReleaseFailed).
    fn release(
        &self,
        claim: &LockClaim,
    ) -> impl Future<Output = Result<ReleaseOutcome, BoxError>> + Send;

    /// What the child said on its way out, for
    /// [`SpawnBgOutcome::ChildExited`](super::SpawnBgOutcome::ChildExited): asked once,
    /// after the exit was observed and the lock released. The production deps answer with
    /// the end of its stderr log (a runtime that refuses its argv says why there, and
    /// "exit code 1" alone tells an operator nothing). Default: nothing.
    fn stderr_tail(&self, child: &Self::Child) -> impl Future<Output = Option<String>> + Send {
        let _ = child;
        std::future::ready(None)
    }

    /// How long the child may take to exit after SIGTERM.
    fn term_grace(&self) -> Duration;

    /// How long the child may take to exit after SIGKILL.
    fn kill_grace(&self) -> Duration;
}
