//! Real child processes: start the resume child in a new session, capture its exit from
//! the moment it exists, and signal its process group without ever racing the reap.
//!
//! # Design
//!
//! [`spawn_child`] starts the program with [`std::process::Command`] (which returns only
//! after `exec` succeeded), starts watching its exit at once (a pidfd with the Linux
//! native [`Backend`], a `SIGCHLD` listener with the portable one) and hands both to **one**
//! supervisor task (see `supervisor.rs`). That task is the only code that signals the
//! child and the only code that reaps it, so a signal can never reach a recycled pid:
//! after the reap, signal requests are answered [`SignalDelivery::AlreadyExited`] and
//! nothing is sent. The exit is published through a `watch` channel, so
//! [`ChildHandle::exit`] and [`ChildHandle::try_exit`] see it no matter when they ask.
//!
//! If the runtime shuts down while the child still runs, the dropped supervisor hands the
//! child to a process-wide reaper thread (`reaper.rs`, polling every 100 ms, `REAP_POLL`),
//! which sweeps if a signal was requested, reaps and publishes the exit: a runtime's
//! shutdown never leaves a zombie for the life of the dispatcher.
//!
//! Signals go to the process group (pgid == pid, because the child is a session
//! leader). Once a terminate or kill has been requested, the supervisor sweeps the group
//! with SIGKILL when it sees the leader exit — while the leader is still an unreaped
//! zombie, which pins the group id so it cannot be reused — and only then reaps. A child
//! that was never signalled is never swept: on the socket-alive path the resident and its
//! helpers live on.
//!
//! Limits, stated once: a member that moved itself to another process group or session
//! escapes the sweep, and so does one that gained privileges the dispatcher lacks (EPERM).
//!
//! Backends ([`SpawnRequest::backend`]): both observe the exit without reaping it and
//! keep the one-task rule. The portable one (POSIX: `SIGCHLD`, then
//! `waitid(P_PID, WEXITED | WNOWAIT | WNOHANG)`) wakes every portable supervisor of the
//! process on each `SIGCHLD` for one `waitid` each, and looks once a second regardless
//! in case `SIGCHLD` is blocked in every thread; the pidfd wakes only its own. Its first
//! use installs tokio's process-wide `SIGCHLD` handler (with `SA_RESTART`), which also
//! replaces an inherited `SIG_IGN` (under which the kernel would reap children itself).

mod error;
#[cfg(target_os = "linux")]
mod pidfd;
mod portable;
mod reap;
mod reaper;
mod source;
mod supervisor;

pub use error::{ExitWatchError, SignalDelivery, SignalError, SpawnError};

use std::ffi::OsString;
use std::fs::{DirBuilder, File, OpenOptions};
use std::future::Future;
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::sync::{mpsc, oneshot, watch};

use crate::backend::Backend;
use crate::watcher::{ChildExit, SpawnedChild, StopSignal};

use source::ExitSource;

use reap::Published;
use supervisor::{Request, Supervisor};

/// Where the child's stderr goes. Never a pipe: the resident outlives the dispatcher, and
/// nobody would drain it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StderrTarget {
    /// Appended to this file (created 0600 if missing, its parent 0700 if missing), so
    /// successive resumes keep one log.
    AppendTo(PathBuf),
    /// Discarded (`/dev/null`).
    Null,
}

/// What to start: the program, its argv, where it runs and what it inherits.
///
/// Built with [`SpawnRequest::new`] and the `with_*` methods (the struct is
/// `#[non_exhaustive]`, so a field added later breaks no dependent); the fields stay
/// readable and assignable.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SpawnRequest {
    /// The program: an absolute path, or a bare name looked up on `PATH`. (A relative
    /// path with a slash is ambiguous once `cwd` differs from ours; avoid it.)
    pub program: OsString,
    /// Its arguments, without the program name.
    pub args: Vec<OsString>,
    /// Its working directory; must exist.
    pub cwd: PathBuf,
    /// Its stderr.
    pub stderr: StderrTarget,
    /// How its exit is observed ([`Backend::Native`]: a pidfd on Linux).
    pub backend: Backend,
    /// Variables set in its environment on top of the one it inherits from us, in order
    /// (a later entry for the same name wins).
    pub env: Vec<(OsString, OsString)>,
}

impl SpawnRequest {
    /// `program args…` in `cwd`, with stderr discarded, the default backend and the
    /// inherited environment.
    pub fn new(
        program: impl Into<OsString>,
        args: impl IntoIterator<Item = impl Into<OsString>>,
        cwd: impl Into<PathBuf>,
    ) -> Self {
        Self {
            program: program.into(),
            args: args.into_iter().map(Into::into).collect(),
            cwd: cwd.into(),
            stderr: StderrTarget::Null,
            backend: Backend::default(),
            env: Vec::new(),
        }
    }

    /// Where its stderr goes.
    #[must_use]
    pub fn with_stderr(mut self, stderr: StderrTarget) -> Self {
        self.stderr = stderr;
        self
    }

    /// How its exit is observed.
    #[must_use]
    pub fn with_backend(mut self, backend: Backend) -> Self {
        self.backend = backend;
        self
    }

    /// Sets `name=value` in its environment (after the entries set before).
    #[must_use]
    pub fn with_env(mut self, name: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }
}

/// A started child. Its supervisor task owns the reaping and the signals; this handle
/// only asks. Dropping it does **not** kill the child: the supervisor then only waits to
/// reap it when it exits (so a long-lived dispatcher keeps no zombie), and initiates no
/// signal of its own (it still completes the group sweep of a terminate or kill that was
/// already sent, see the module docs).
#[derive(Debug)]
pub struct ChildHandle {
    pid: u32,
    requests: mpsc::Sender<Request>,
    exit: watch::Receiver<Published>,
    stderr: Option<StderrSpan>,
}

/// How much of a child's stderr [`ChildHandle::stderr_tail`] gives back: the end of it,
/// enough for the few lines a runtime prints when it refuses its argv.
pub const STDERR_TAIL_BYTES: u64 = 2048;

/// Where in its stderr log a child's own output starts: the log's length when the child
/// was started (the log is appended to by every resume of the same garden id).
#[derive(Debug, Clone)]
pub(crate) struct StderrSpan {
    path: PathBuf,
    start: u64,
}

impl StderrSpan {
    /// The last [`STDERR_TAIL_BYTES`] written from `start` on, cut to whole lines and
    /// trimmed; `None` when nothing was written or the log cannot be read. Blocking.
    pub(crate) fn tail(&self) -> Option<String> {
        use std::io::{Read, Seek, SeekFrom};
        let mut log = File::open(&self.path).ok()?;
        let end = log.metadata().ok()?.len();
        let from = self.start.max(end.saturating_sub(STDERR_TAIL_BYTES));
        log.seek(SeekFrom::Start(from)).ok()?;
        let mut bytes = Vec::new();
        log.take(STDERR_TAIL_BYTES).read_to_end(&mut bytes).ok()?;
        let text = String::from_utf8_lossy(&bytes);
        // Started mid-line when the child wrote more than the tail holds: drop the part.
        let text = if from > self.start {
            text.split_once('\n').map_or("", |(_, rest)| rest)
        } else {
            &text
        };
        let text = text.trim();
        (!text.is_empty()).then(|| text.to_owned())
    }
}

impl ChildHandle {
    /// The child's pid, which is also its process group and session id (it was started
    /// with `setsid`).
    #[must_use]
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Resolves with the exit, even if it happened before this was called. Can be called
    /// any number of times; the future does not borrow the handle.
    ///
    /// # Errors
    ///
    /// The future fails with [`ExitWatchError`] when the exit cannot be observed (the
    /// wait failed, or nobody is left to publish it).
    pub fn exit(&self) -> impl Future<Output = Result<ChildExit, ExitWatchError>> + Send + 'static {
        let mut exit = self.exit.clone();
        let pid = self.pid;
        async move {
            match exit.wait_for(Option::is_some).await {
                Ok(published) => match &*published {
                    Some(result) => result.clone(),
                    None => Err(ExitWatchError::SupervisorGone { pid }),
                },
                // The sender (the supervisor) went away without publishing.
                Err(_) => Err(ExitWatchError::SupervisorGone { pid }),
            }
        }
    }

    /// What the child wrote to stderr since it was started, when stderr is a log file
    /// ([`StderrTarget::AppendTo`]): its last lines, at most [`STDERR_TAIL_BYTES`],
    /// trimmed. `None` when stderr is discarded, nothing was written, or the log cannot be
    /// read. Reads the file: blocking, keep it off the async workers. (Another writer of
    /// the same log since the spawn — an earlier resident of the same garden id — shows
    /// up here too.)
    #[must_use]
    pub fn stderr_tail(&self) -> Option<String> {
        self.stderr.as_ref().and_then(StderrSpan::tail)
    }

    pub(crate) fn stderr_span(&self) -> Option<StderrSpan> {
        self.stderr.clone()
    }

    /// The exit, if it was already observed (and the child reaped).
    #[must_use]
    pub fn try_exit(&self) -> Option<ChildExit> {
        self.exit
            .borrow()
            .as_ref()
            .and_then(|result| result.as_ref().ok().copied())
    }

    /// Sends `signal` to the child's process group, unless the child was already reaped
    /// (then nothing is sent and this is still `Ok`: see [`SignalDelivery`]).
    ///
    /// # Errors
    ///
    /// [`SignalError`] when `killpg` fails, or when the exit could not be observed (then
    /// nothing is sent: the pid may no longer be ours).
    pub async fn signal(&self, signal: StopSignal) -> Result<(), SignalError> {
        self.send_signal(signal).await.map(drop)
    }

    /// Like [`signal`](Self::signal), saying what actually happened.
    ///
    /// # Errors
    ///
    /// As [`signal`](Self::signal).
    pub async fn send_signal(&self, signal: StopSignal) -> Result<SignalDelivery, SignalError> {
        let (ack, answer) = oneshot::channel();
        if self.requests.send(Request { signal, ack }).await.is_ok() {
            if let Ok(result) = answer.await {
                return result;
            }
        }
        // The supervisor is gone, or dropped our request while finishing. It finishes
        // after publishing the exit, or when its runtime shuts down.
        match &*self.exit.borrow() {
            Some(Ok(_)) => Ok(SignalDelivery::AlreadyExited),
            Some(Err(_)) | None => Err(SignalError::ExitUnknown {
                signal,
                pid: self.pid,
            }),
        }
    }
}

impl SpawnedChild for ChildHandle {
    fn pid(&self) -> u32 {
        self.pid
    }
}

/// Starts `req` in a new session (own process group, no controlling terminal) and
/// starts supervising it.
///
/// Must be called inside a tokio runtime with IO enabled (the pidfd, or the `SIGCHLD`
/// listener, is registered with its reactor). Returns only once the program really runs:
/// a missing program or an exec failure is [`SpawnError::Exec`].
///
/// # Errors
///
/// [`SpawnError`]: no runtime, an unusable cwd or stderr log, an exec failure, or an
/// exit that cannot be watched (the child is then killed and reaped). Every error means
/// no child is left running.
pub fn spawn_child(req: &SpawnRequest) -> Result<ChildHandle, SpawnError> {
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| SpawnError::NoRuntime {
        program: req.program.clone(),
    })?;
    check_cwd_is_dir(req)?;
    let (stderr, stderr_span) = match &req.stderr {
        StderrTarget::AppendTo(path) => {
            let log = open_stderr_log(path)?;
            // Where this child's own lines will start; a failed stat only loses the tail.
            let span = log.metadata().ok().map(|meta| StderrSpan {
                path: path.clone(),
                start: meta.len(),
            });
            (Stdio::from(log), span)
        }
        StderrTarget::Null => (Stdio::null(), None),
    };

    let mut command = Command::new(&req.program);
    command
        .args(&req.args)
        .envs(req.env.iter().map(|(name, value)| (name, value)))
        .current_dir(&req.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr);
    in_new_session(&mut command);
    let mut child = command.spawn().map_err(|source| SpawnError::Exec {
        program: req.program.clone(),
        cwd: req.cwd.clone(),
        source,
    })?;
    let pid = child.id();

    let exit_source = match ExitSource::open(pid, req.backend) {
        Ok(exit_source) => exit_source,
        Err(source) => {
            kill_and_reap(&mut child);
            return Err(SpawnError::ExitCapture {
                program: req.program.clone(),
                pid,
                source,
            });
        }
    };

    let (requests_tx, requests_rx) = mpsc::channel(4);
    let (exit_tx, exit_rx) = watch::channel(None);
    let supervisor = Supervisor::new(child, exit_source, requests_rx, exit_tx);
    runtime.spawn(supervisor.run());
    Ok(ChildHandle {
        pid,
        requests: requests_tx,
        exit: exit_rx,
        stderr: stderr_span,
    })
}

/// Makes the child a session leader between `fork` and `exec`.
#[expect(
    unsafe_code,
    reason = "pre_exec is the only way to run setsid in the child between fork and exec"
)]
fn in_new_session(command: &mut Command) {
    // SAFETY: the closure runs in the forked child before exec, where only
    // async-signal-safe work is allowed. setsid(2) is async-signal-safe (POSIX list), nix's
    // wrapper is a bare syscall plus errno read, and `io::Error::from(Errno)` builds the
    // OS-error representation without allocating. No lock is taken and nothing is
    // allocated or freed.
    unsafe {
        command.pre_exec(|| nix::unistd::setsid().map(drop).map_err(io::Error::from));
    }
}

/// Checked up front because std reports a failed `chdir` in the child exactly like a
/// missing program; this way the error names the culprit. (A directory removed after the
/// check still fails, as [`SpawnError::Exec`], which names the cwd too.)
fn check_cwd_is_dir(req: &SpawnRequest) -> Result<(), SpawnError> {
    let cwd_error = |source| SpawnError::Cwd {
        program: req.program.clone(),
        cwd: req.cwd.clone(),
        source,
    };
    let meta = std::fs::metadata(&req.cwd).map_err(cwd_error)?;
    if meta.is_dir() {
        Ok(())
    } else {
        Err(cwd_error(io::Error::from(Errno::ENOTDIR)))
    }
}

/// Opens the stderr log for appending (0600), creating its parent (0700) if missing.
fn open_stderr_log(path: &Path) -> Result<File, SpawnError> {
    let log_error = |source| SpawnError::StderrLog {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        if !parent.is_dir() {
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)
                .map_err(log_error)?;
        }
    }
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)
        .map_err(log_error)
}

/// The honest way out when the child runs but cannot be supervised: kill its whole group
/// and reap it, so nothing leaks. The leader is unreaped here, so the pgid is still ours.
/// Blocks briefly (until the SIGKILLed leader is reaped).
fn kill_and_reap(child: &mut Child) {
    match i32::try_from(child.id()) {
        Ok(pgid) => {
            // ESRCH cannot happen (the leader is at least a zombie); any error leaves
            // `wait` below as the only thing left to do.
            let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
        }
        Err(_) => {
            let _ = child.kill();
        }
    }
    let _ = child.wait();
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::{STDERR_TAIL_BYTES, StderrSpan};

    /// A span over `log` after `before` was written by earlier resumes, then `own`.
    fn span_over(log: &std::path::Path, before: &str, own: &str) -> StderrSpan {
        std::fs::write(log, before).expect("the earlier resumes' lines");
        let span = StderrSpan {
            path: log.to_owned(),
            start: before.len() as u64,
        };
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(log)
            .expect("the log");
        file.write_all(own.as_bytes()).expect("the child's lines");
        span
    }

    /// The tail is the child's own output, every line of it when it fits, and whole lines
    /// only when it does not.
    #[test]
    fn the_tail_is_the_childs_own_whole_lines() {
        let dir = tempfile::tempdir().expect("dir");
        let log = dir.path().join("gid.stderr.log");
        let span = span_over(&log, "an earlier resume\n", "first\nsecond\n");
        assert_eq!(span.tail().as_deref(), Some("first\nsecond"));

        let long = "x".repeat(usize::try_from(STDERR_TAIL_BYTES).expect("small"));
        let span = span_over(&log, "", &format!("cut\n{long}\nlast\n"));
        assert_eq!(span.tail().as_deref(), Some("last"));

        let span = span_over(&log, "an earlier resume\n", "");
        assert_eq!(span.tail(), None);
    }
}
