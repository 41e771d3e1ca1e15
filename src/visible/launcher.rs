//! The launcher boundary: what opens the window, and what watches the process in it.
//!
//! Injected so that the whole order of a visible resume (lock, identity, socket check,
//! launch, observation, release) is testable with a fake and a paused clock. The
//! production launcher is [`TmuxLauncher`](super::TmuxLauncher).

use std::ffi::OsString;
use std::fmt;
use std::future::Future;
use std::io;
use std::path::PathBuf;

use crate::garden_id::GardenId;
use crate::watcher::BoxError;

/// What to open: `program args…` in `cwd`, for the citizen `gid`, with `env` set.
///
/// Built with [`LaunchRequest::new`] (`#[non_exhaustive]`: a field added later breaks
/// no dependent).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LaunchRequest {
    /// The citizen being resumed (for launchers that name windows or log).
    pub gid: GardenId,
    /// The runtime as configured: a bare name looked up on `PATH`, or an absolute path.
    pub program: OsString,
    /// Its argv without the program name (the visible resume argv).
    pub args: Vec<String>,
    /// The session's working directory, from its saved header.
    pub cwd: PathBuf,
    /// Variables set in the window's environment (tmux `new-window -e NAME=VALUE`): the
    /// window inherits the tmux server's environment, not the dispatcher's. Names and
    /// values need not be UTF-8.
    pub env: Vec<(OsString, OsString)>,
}

impl LaunchRequest {
    /// `program args…` in `cwd` for `gid`, with nothing added to the environment.
    #[must_use]
    pub fn new(gid: GardenId, program: OsString, args: Vec<String>, cwd: PathBuf) -> Self {
        Self {
            gid,
            program,
            args,
            cwd,
            env: Vec::new(),
        }
    }
}

/// Launch receipt: the window tmux made. Kept apart from the observation receipt, because
/// a window that opened says nothing about whether `pi` came up in it.
///
/// A custom [`Launcher`] builds one with [`LaunchReceipt::new`]; `#[non_exhaustive]`, so
/// a field added later (as `server_pid` was) breaks no launcher.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LaunchReceipt {
    /// The session the window was added to (its name).
    pub session: String,
    /// The window's id (`@N`), stable for its life.
    pub window_id: String,
    /// The window's index in the session, as the operator sees it.
    pub window_index: u32,
    /// The pane's id (`%N`).
    pub pane_id: String,
    /// The pid of the process running in the pane (the runtime itself: tmux execs an
    /// argv of several words directly, without a shell).
    pub pane_pid: u32,
    /// The tmux server's pid, the pane process's parent: it tells the pane's process from
    /// a newcomer that took its pid.
    pub server_pid: u32,
}

impl LaunchReceipt {
    /// The window `window_id` (index `window_index`) in `session`, whose pane `pane_id`
    /// runs `pane_pid`, a child of the server `server_pid`.
    #[must_use]
    pub fn new(
        session: impl Into<String>,
        window_id: impl Into<String>,
        window_index: u32,
        pane_id: impl Into<String>,
        pane_pid: u32,
        server_pid: u32,
    ) -> Self {
        Self {
            session: session.into(),
            window_id: window_id.into(),
            window_index,
            pane_id: pane_id.into(),
            pane_pid,
            server_pid,
        }
    }
}

impl fmt::Display for LaunchReceipt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "window {} ({}:{}) pane {} pid {}",
            self.window_id, self.session, self.window_index, self.pane_id, self.pane_pid
        )
    }
}

/// Why a launch did not give a receipt. Every variant but
/// [`TmuxTimedOut`](Self::TmuxTimedOut), [`UnparsableHandle`](Self::UnparsableHandle) and
/// [`Other`](Self::Other) is a refusal made before any window could open
/// ([`LaunchError::nothing_launched`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LaunchError {
    /// Neither `$TMUX` nor a named server: there is no tmux to open a window in.
    #[error("no tmux server: $TMUX is unset and no named server was given")]
    NoServer,
    /// `$TMUX` is set but is not `socket,pid,session`.
    #[error("$TMUX {value:?} is not socket,pid,session")]
    TmuxEnvUnparsable {
        /// The value found.
        value: String,
    },
    /// The session name cannot be a tmux target (empty, or with `:` or `.`).
    #[error("tmux session name {session:?} cannot be targeted")]
    BadSession {
        /// The name given.
        session: String,
    },
    /// The cwd is not absolute.
    #[error("cwd {cwd:?} is not absolute")]
    CwdNotAbsolute {
        /// The cwd.
        cwd: PathBuf,
    },
    /// The cwd contains `#`, which tmux expands as a format inside `-c`.
    #[error("cwd {cwd:?} contains '#', which tmux would expand")]
    CwdHasHash {
        /// The cwd.
        cwd: PathBuf,
    },
    /// The cwd does not exist or cannot be looked at.
    #[error("cwd {cwd:?} cannot be used")]
    CwdMissing {
        /// The cwd.
        cwd: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The cwd exists but is not a directory.
    #[error("cwd {cwd:?} is not a directory")]
    CwdNotDirectory {
        /// The cwd.
        cwd: PathBuf,
    },
    /// The runtime is a relative path with a slash: it would name another file from the
    /// window's cwd.
    #[error("runtime {program:?} is a relative path")]
    RuntimeRelative {
        /// The program as configured.
        program: OsString,
    },
    /// No executable of that name on `PATH` (or the absolute path is not executable).
    #[error("runtime {program:?} not found as an executable on PATH")]
    RuntimeNotFound {
        /// The program as configured.
        program: OsString,
    },
    /// The resolved runtime path contains whitespace.
    #[error("runtime path {path:?} contains whitespace")]
    RuntimeWhitespace {
        /// The resolved path.
        path: PathBuf,
    },
    /// The tmux program could not be started (not installed?).
    #[error("starting {tmux:?}")]
    TmuxStart {
        /// The tmux program.
        tmux: OsString,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// tmux ran and refused (no such server or session, …): it made no window.
    #[error("tmux new-window failed ({status}): {stderr}")]
    TmuxFailed {
        /// Its exit status.
        status: String,
        /// What it printed on stderr, trimmed.
        stderr: String,
    },
    /// tmux did not answer within the launch timeout and was killed; the server may still
    /// have made the window.
    #[error("tmux new-window did not finish within {after:?}; a window may be open")]
    TmuxTimedOut {
        /// The limit.
        after: std::time::Duration,
    },
    /// tmux succeeded but its `-P -F` row cannot be read: a window may be open that
    /// nobody can name.
    #[error("tmux printed {output:?} instead of a window handle; a window may be open")]
    UnparsableHandle {
        /// What tmux printed.
        output: String,
    },
    /// A custom launcher's failure; whether a window opened is unknown.
    #[error("launch failed; a window may be open")]
    Other(#[source] BoxError),
}

impl LaunchError {
    /// True when the launcher refused before anything could open (a refusal); false when a
    /// window may be open.
    #[must_use]
    pub fn nothing_launched(&self) -> bool {
        !matches!(
            self,
            Self::UnparsableHandle { .. } | Self::TmuxTimedOut { .. } | Self::Other(_)
        )
    }

    /// One sentence a person can act on.
    #[must_use]
    pub fn advice(&self) -> String {
        match self {
            Self::NoServer => {
                "run this inside tmux, or name a tmux server to open the window in".into()
            }
            Self::TmuxEnvUnparsable { .. } => {
                "start a fresh shell in tmux, or name the server explicitly".into()
            }
            Self::BadSession { session } => {
                format!("name an existing tmux session instead of {session:?}")
            }
            Self::CwdNotAbsolute { cwd } | Self::CwdNotDirectory { cwd } => format!(
                "fix the cwd in the saved session header ({}) to an absolute directory",
                cwd.display()
            ),
            Self::CwdHasHash { cwd } => format!(
                "move the session to a directory without '#' (tmux would expand {})",
                cwd.display()
            ),
            Self::CwdMissing { cwd, .. } => format!(
                "create {} or fix the cwd in the saved session header (tmux would open the window in $HOME)",
                cwd.display()
            ),
            Self::RuntimeRelative { program } | Self::RuntimeNotFound { program } => format!(
                "install {} on PATH or configure the runtime as an absolute path",
                program.to_string_lossy()
            ),
            Self::RuntimeWhitespace { path } => format!(
                "install the runtime at a path without whitespace ({})",
                path.display()
            ),
            Self::TmuxStart { .. } => "install tmux or put it on PATH".into(),
            Self::TmuxFailed { .. } => {
                "check that the tmux server and session exist (tmux list-sessions)".into()
            }
            Self::UnparsableHandle { .. } | Self::TmuxTimedOut { .. } | Self::Other(_) => {
                "look for a new window in the tmux session and close it if it is not wanted".into()
            }
        }
    }
}

/// Opens the window and watches the process in it. Implementations must not kill what
/// they launched: the window is the operator's.
pub trait Launcher: Send + Sync {
    /// Opens a window running the request; resolves once the launcher knows the window
    /// (or knows it refused).
    fn launch(
        &self,
        request: &LaunchRequest,
    ) -> impl Future<Output = Result<LaunchReceipt, LaunchError>> + Send;

    /// Starts watching the pane's process; the future resolves when it has exited (also
    /// when it exited before this was called). Starting must not wait; an `Err` means the
    /// exit cannot be observed.
    ///
    /// # Errors
    ///
    /// An error when the exit cannot be watched (the observation then reports it).
    fn watch_pane_exit(
        &self,
        receipt: &LaunchReceipt,
    ) -> Result<impl Future<Output = Result<(), BoxError>> + Send + 'static, BoxError>;

    /// How the pane's process ended, asked once [`watch_pane_exit`](Self::watch_pane_exit)
    /// saw it exit; `None` when the launcher cannot tell (the default).
    fn pane_exit_status(
        &self,
        receipt: &LaunchReceipt,
    ) -> impl Future<Output = Option<PaneExitStatus>> + Send {
        let _ = receipt;
        std::future::ready(None)
    }
}

/// How a pane's process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PaneExitStatus {
    /// It exited with this code.
    Code(i32),
    /// A signal with this number killed it.
    Signal(i32),
}

impl fmt::Display for PaneExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Code(code) => write!(f, "exit code {code}"),
            Self::Signal(signal) => write!(f, "killed by signal {signal}"),
        }
    }
}
