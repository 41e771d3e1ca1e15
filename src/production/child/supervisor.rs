//! The one task per child that owns its reaping and its signals.
//!
//! Why one task: a pid is only safe to signal while the process is unreaped (after the
//! reap, the number can be handed to a stranger). If the code that reaps is the code that
//! signals, and both run sequentially in one loop, no signal can be sent after the reap.
//!
//! The loop races two things:
//! - the exit source (a pidfd on Linux, `SIGCHLD` + `waitid(P_PID)` in the portable
//!   backend) reporting that the leader exited and is a zombie, *not yet reaped*
//!   (both confirm with `waitid(..., WEXITED | WNOWAIT | WNOHANG)`). If a terminate or
//!   kill was ever requested, the group is swept with SIGKILL now — the zombie leader
//!   still pins the group id, so the sweep cannot reach a recycled group — then the
//!   leader is reaped and its exit published;
//! - signal requests from the handle, each answered over its own oneshot.
//!
//! When the handle is dropped, the request channel closes and the loop only waits to
//! reap (no new signal is ever initiated; the sweep still completes a terminate or kill
//! that the owner sent before dropping the handle, since "no member survives a kill" is
//! part of that signal's contract). After publishing, the task answers any request that
//! raced with the reap — [`SignalDelivery::AlreadyExited`] after a clean reap,
//! `SignalError::ExitUnknown` when the exit could not be observed — and ends. Nothing is
//! sent after the reap either way.
//!
//! If the runtime shuts down first, the task is dropped before the reap. Dropping the
//! supervisor then hands the child, the pending sweep and the exit channel to the
//! process-wide reaper thread (`reaper.rs`), which reaps it without a runtime and
//! publishes its exit, so no zombie is left for the life of the dispatcher. Signal
//! requests made after that are answered `ExitUnknown` until the exit is published
//! (nothing is sent: the one that signals must be the one that reaps).

use std::io;
use std::process::Child;
use std::sync::Arc;

use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::sync::{mpsc, oneshot, watch};

use super::reap::{self, Published};
use super::reaper::{self, Orphan};
use super::source::ExitSource;
use super::{ExitWatchError, SignalDelivery, SignalError};
use crate::watcher::{ChildExit, StopSignal};

/// A signal request from the handle.
#[derive(Debug)]
pub(super) struct Request {
    pub(super) signal: StopSignal,
    pub(super) ack: oneshot::Sender<Result<SignalDelivery, SignalError>>,
}

/// The supervisor's state; [`run`](Self::run) consumes it. Dropped before it reaped (its
/// runtime shut down), it hands the child to the reaper thread.
pub(super) struct Supervisor {
    /// `None` only once handed to the reaper.
    child: Option<Child>,
    /// The exit was published: nothing is left for the reaper.
    finished: bool,
    pid: u32,
    exit_source: ExitSource,
    requests: mpsc::Receiver<Request>,
    exit: watch::Sender<Published>,
    /// A terminate or kill was requested: the group must be swept when the leader exits.
    signalled: bool,
}

impl Supervisor {
    pub(super) fn new(
        child: Child,
        exit_source: ExitSource,
        requests: mpsc::Receiver<Request>,
        exit: watch::Sender<Published>,
    ) -> Self {
        let pid = child.id();
        Self {
            child: Some(child),
            finished: false,
            pid,
            exit_source,
            requests,
            exit,
            signalled: false,
        }
    }

    /// Supervises until the child is reaped (or its exit proves unobservable).
    pub(super) async fn run(mut self) {
        let mut handle_alive = true;
        let outcome = loop {
            tokio::select! {
                // Exit first: once the leader is a zombie there is nothing to gain from
                // delaying the sweep and the reap. (Signalling before it would be safe too:
                // the zombie pins the group.)
                biased;
                exited = self.exit_source.exited() => match exited {
                    Ok(()) => break self.sweep_and_reap(),
                    Err(source) => {
                        let error = self.wait_error(source);
                        // We cannot see the exit, but the child must still be reaped
                        // (and swept, if signalled) some day: the process-wide reaper
                        // takes it over. It gets a channel of its own, so the error
                        // published here stays the answer the handles got.
                        self.hand_to_reaper(watch::channel(None).0);
                        break Err(error);
                    }
                },
                request = self.requests.recv(), if handle_alive => match request {
                    Some(Request { signal, ack }) => {
                        let answer = self.deliver(signal);
                        // The asker may have given up (its future dropped); nothing to do.
                        let _ = ack.send(answer);
                    }
                    // Handle dropped: from now on only reap.
                    None => handle_alive = false,
                },
            }
        };
        let exited_cleanly = outcome.is_ok();
        self.exit.send_replace(Some(outcome));
        self.finished = true;

        // Requests that raced with the reap. Nothing is sent after the reap.
        self.requests.close();
        while let Ok(Request { signal, ack }) = self.requests.try_recv() {
            let answer = if exited_cleanly {
                Ok(SignalDelivery::AlreadyExited)
            } else {
                Err(SignalError::ExitUnknown {
                    signal,
                    pid: self.pid,
                })
            };
            let _ = ack.send(answer);
        }
    }

    /// Sends `signal` to the group. Safe: called only from the loop, i.e. before the reap.
    fn deliver(&mut self, signal: StopSignal) -> Result<SignalDelivery, SignalError> {
        // Recorded even if delivery fails: the caller wants the group gone, so the sweep
        // at exit is attempted regardless.
        self.signalled = true;
        let sig = match signal {
            StopSignal::Terminate => Signal::SIGTERM,
            StopSignal::Kill => Signal::SIGKILL,
        };
        let pgid = self.pgid().map_err(|source| SignalError::Kill {
            signal,
            pgid: self.pid,
            source,
        })?;
        match killpg(pgid, sig) {
            Ok(()) => Ok(SignalDelivery::Sent),
            Err(Errno::ESRCH) => Ok(SignalDelivery::NothingLeft),
            Err(errno) => Err(SignalError::Kill {
                signal,
                pgid: self.pid,
                source: errno.into(),
            }),
        }
    }

    /// The leader exited and is unreaped: sweep the group if it was ever signalled, then
    /// reap and report.
    fn sweep_and_reap(&mut self) -> Result<ChildExit, ExitWatchError> {
        let signalled = self.signalled;
        let reaped = match self.child.as_mut() {
            Some(child) => reap::sweep_and_reap(child, signalled),
            None => Err(io::Error::other("the child was handed to the reaper")),
        };
        reaped.map_err(|source| self.wait_error(source))
    }

    fn pgid(&self) -> io::Result<Pid> {
        i32::try_from(self.pid)
            .map(Pid::from_raw)
            .map_err(io::Error::other)
    }

    fn wait_error(&self, source: io::Error) -> ExitWatchError {
        ExitWatchError::Wait {
            pid: self.pid,
            source: Arc::new(source),
        }
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        // The exit channel goes with the child, so handles still get the real exit.
        let (placeholder, _) = watch::channel(None);
        let exit = std::mem::replace(&mut self.exit, placeholder);
        self.hand_to_reaper(exit);
    }
}

impl Supervisor {
    /// Gives the unreaped child (if still ours) to the process-wide reaper, which reaps
    /// it, completes a requested group sweep, and publishes its exit on `exit`. From then
    /// on the reaper is the one that reaps and signals; this supervisor sends nothing.
    fn hand_to_reaper(&mut self, exit: watch::Sender<Published>) {
        if let Some(child) = self.child.take() {
            reaper::adopt(Orphan {
                child,
                sweep: self.signalled,
                exit,
            });
        }
    }
}
