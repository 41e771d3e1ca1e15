//! Real child processes: spawn in a new session, supervise, signal the group. STUB.

use std::ffi::OsString;
use std::io;
use std::path::PathBuf;

use crate::watcher::{ChildExit, StopSignal};

/// Where the child's stderr goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StderrTarget {
    /// Appended to this file (created 0600 if missing).
    AppendTo(PathBuf),
    /// Discarded.
    Null,
}

/// What to start.
#[derive(Debug, Clone)]
pub struct SpawnRequest {
    /// The program (a path, or a name looked up on PATH).
    pub program: OsString,
    /// Its arguments.
    pub args: Vec<OsString>,
    /// Its working directory.
    pub cwd: PathBuf,
    /// Its stderr.
    pub stderr: StderrTarget,
}

/// Why a child could not be started.
#[derive(Debug, thiserror::Error)]
#[error("spawn {program:?}")]
pub struct SpawnError {
    /// The program.
    pub program: OsString,
    /// The OS error.
    #[source]
    pub source: io::Error,
}

/// Why a signal could not be delivered.
#[derive(Debug, thiserror::Error)]
#[error("signal {signal:?} to process group {pgid}")]
pub struct SignalError {
    /// Which signal.
    pub signal: StopSignal,
    /// The group.
    pub pgid: u32,
    /// The OS error.
    #[source]
    pub source: io::Error,
}

/// Why the exit could not be observed.
#[derive(Debug, thiserror::Error)]
#[error("watching exit of pid {pid}")]
pub struct ExitWatchError {
    /// The child.
    pub pid: u32,
    /// The OS error.
    #[source]
    pub source: io::Error,
}

/// A started child, supervised by one task that owns its reaping and its signals.
#[derive(Debug)]
pub struct ChildHandle {
    pid: u32,
}

impl ChildHandle {
    /// The child's pid (also its process group and session id).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Resolves with the exit, even if it happened before this was called.
    pub fn exit(&self) -> impl Future<Output = Result<ChildExit, ExitWatchError>> + Send + 'static {
        async { todo!() }
    }

    /// The exit, if it already happened.
    pub fn try_exit(&self) -> Option<ChildExit> {
        todo!()
    }

    /// Sends `signal` to the child's process group, unless it was already reaped.
    pub async fn signal(&self, _signal: StopSignal) -> Result<(), SignalError> {
        todo!()
    }
}

/// Starts `req` in a new session. Must be called inside a tokio runtime.
pub fn spawn_child(_req: &SpawnRequest) -> Result<ChildHandle, SpawnError> {
    todo!()
}
