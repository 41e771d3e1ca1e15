//! OS glue shared by the modules: descriptors for the reactor, blocking work off the
//! async workers, and short-lived helper programs (tmux, `pi --version`) run bounded.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// A type that owns its descriptor: the fd stays open, and `as_raw_fd` names the same
/// one, for the value's whole life. That is the contract of tokio's `unsafe` `AsyncFd`
/// constructor; implement this only for such owners (crate-private, so every
/// implementation is one of this crate's, each saying why it holds).
pub(crate) trait OwnsFd: AsRawFd {}

// `OwnedFd` closes its descriptor only when dropped and never swaps it.
impl OwnsFd for OwnedFd {}

/// Registers an owned descriptor with the tokio reactor.
///
/// # Errors
///
/// The reactor's refusal (e.g. the descriptor cannot be polled); `inner` is then closed.
pub(crate) fn register_owned_fd<T: OwnsFd>(inner: T, interest: Interest) -> io::Result<AsyncFd<T>> {
    #[expect(
        unsafe_code,
        reason = "tokio's AsyncFd constructor is unsafe: only the caller can promise the fd stays put"
    )]
    // SAFETY: `register_with_interest` asks that the descriptor `inner.as_raw_fd()` names
    // be open and the same for the `AsyncFd`'s whole life. `T: OwnsFd` is exactly that
    // promise: `inner` owns the descriptor (it is closed only when `inner` is dropped,
    // which the `AsyncFd` does last) and never swaps it, and the `AsyncFd` owns `inner`.
    let registered = unsafe { AsyncFd::register_with_interest(inner, interest) };
    registered.map_err(|refused| refused.into_parts().1)
}

/// Runs blocking `work` (file or process I/O) on tokio's blocking pool, so it never
/// stalls an async worker, and hands its result back. A panic in `work` is resumed here,
/// exactly as if it had been called inline.
///
/// # Errors
///
/// The [`JoinError`](tokio::task::JoinError) of a task that was cancelled because its
/// runtime is shutting down: whether `work` ran is then unknown.
pub(crate) async fn off_async<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, tokio::task::JoinError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(value) => Ok(value),
        Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
        Err(join) => Err(join),
    }
}

/// `pid` as rustix's `Pid`, for `pidfd_open` and `waitid`: the one place a `u32` pid
/// from std becomes one. Refused (never wrapped or truncated) when it does not fit a
/// `pid_t` or is 0, which rustix cannot name: a mistaken pid there would be a stranger.
pub(crate) fn rustix_pid(pid: u32) -> io::Result<rustix::process::Pid> {
    i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
        .ok_or_else(|| io::Error::other(format!("invalid pid {pid}")))
}

/// Sets the flag when dropped: the future that started a [`run_bounded`] was dropped
/// (or finished), so the blocking task stops waiting for the program and kills it.
pub(crate) struct CancelOnDrop(pub(crate) Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Why [`run_bounded`] gave no output.
pub(crate) enum Bounded {
    /// The program could not be started: nothing ran.
    Start(io::Error),
    /// It ran past the limit and was killed; it may have done its work.
    TimedOut,
    /// The caller went away (the launch future was dropped) and it was killed; it may
    /// have done its work.
    Cancelled,
    /// Waiting for it or reading its output failed.
    Io(io::Error),
}

/// Runs `program args` (with `env` set on top of ours) with stdin null and its output captured, in a process group of
/// its own (see the module docs: a terminal's signal to the caller's group must not kill
/// it), killing it after `limit` or once `cancelled` is set. The output is one short
/// row, far below a pipe's buffer, so waiting before reading cannot deadlock.
pub(crate) fn run_bounded(
    program: &OsStr,
    args: &[OsString],
    env: &[(&str, &str)],
    limit: Duration,
    cancelled: &AtomicBool,
) -> Result<Output, Bounded> {
    let mut child = Command::new(program)
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(Bounded::Start)?;
    let started = Instant::now();
    loop {
        match child.try_wait().map_err(Bounded::Io)? {
            Some(_) => return child.wait_with_output().map_err(Bounded::Io),
            None if cancelled.load(Ordering::SeqCst) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Bounded::Cancelled);
            }
            None if started.elapsed() >= limit => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Bounded::TimedOut);
            }
            None => std::thread::sleep(Duration::from_millis(1)),
        }
    }
}
