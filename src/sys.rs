//! OS glue shared by the modules: descriptors for the reactor, blocking work off the
//! async workers, and short-lived helper programs (tmux, `pi --version`) run bounded.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use rustix::process::{WaitId, WaitIdOptions, waitid};
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
        Err(join) => match join.try_into_panic() {
            Ok(payload) => std::panic::resume_unwind(payload),
            Err(cancelled) => Err(cancelled),
        },
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

/// Whether the process named by `id` (a pid, or a pidfd on Linux) has exited and still
/// waits to be reaped. `WNOWAIT`: the look reaps nothing, so the zombie keeps pinning the
/// pid and the group id.
pub(crate) fn exited_unreaped<'fd>(id: impl Fn() -> WaitId<'fd>) -> io::Result<bool> {
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

/// [`exited_unreaped`] for a child named by its pid (the portable exit source, the
/// reaper thread and [`run_bounded`]).
pub(crate) fn pid_exited_unreaped(pid: u32) -> io::Result<bool> {
    let pid = rustix_pid(pid)?;
    exited_unreaped(|| WaitId::Pid(pid))
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
///
/// The program's whole group goes, not only the program: a wrapper script that runs
/// node without `exec` leaves node in the group, and whatever is left there holds the
/// output pipes open, so reading them to their end would wait for it past any bound.
/// Each kill is sent while the leader is unreaped (a zombie at worst), whose pid pins
/// the group id: no stranger that reused the number can be hit.
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
    let kill_group = |child: &Child| {
        if let Ok(pgid) = i32::try_from(child.id()) {
            // ESRCH: nobody left; EPERM: a member gained privileges we lack. Neither
            // changes what the program answered.
            let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
        }
    };
    loop {
        let stop = if pid_exited_unreaped(child.id()).map_err(Bounded::Io)? {
            // A question leaves nothing behind: what it started in its group goes
            // before its pipes are read to their end.
            kill_group(&child);
            return child.wait_with_output().map_err(Bounded::Io);
        } else if cancelled.load(Ordering::SeqCst) {
            Bounded::Cancelled
        } else if started.elapsed() >= limit {
            Bounded::TimedOut
        } else {
            std::thread::sleep(Duration::from_millis(1));
            continue;
        };
        kill_group(&child);
        let _ = child.wait();
        return Err(stop);
    }
}

#[cfg(test)]
mod tests {
    /// A panic in the blocking work reaches the caller as that panic, as if the work had
    /// run inline, never as an error that could be mistaken for a shutdown.
    #[tokio::test]
    async fn a_panic_off_the_async_workers_is_resumed_in_the_caller() {
        let caller = tokio::spawn(super::off_async(|| -> u8 {
            panic!("the work's own panic")
        }));
        let join = caller.await.expect_err("the caller panicked");
        let payload = join.into_panic();
        assert_eq!(
            payload.downcast_ref::<&str>(),
            Some(&"the work's own panic"),
            "another panic"
        );
    }
}
