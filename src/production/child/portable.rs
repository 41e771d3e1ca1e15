//! Portable exit source: `SIGCHLD`, then `waitid(P_PID, WEXITED | WNOWAIT | WNOHANG)`.
//!
//! POSIX everywhere (Linux, macOS, FreeBSD). `WNOWAIT` observes the exit without reaping
//! it, so the zombie keeps pinning the pid — and the process group id — while the
//! supervisor sweeps the group; only then does it reap.
//!
//! No exit is missed: the `SIGCHLD` listener is registered before the first look, and
//! every wake-up (any child's `SIGCHLD`, coalesced or not) is followed by a fresh
//! `waitid` on this pid. Because a process may block `SIGCHLD` in every thread (then the
//! runtime never sees it), the exit is also looked for every [`RECHECK`], so detection is
//! bounded even then. Cost: each `SIGCHLD` wakes every portable supervisor for one
//! `waitid` each.

use std::io;
use std::time::Duration;

use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::sys::pid_exited_unreaped;

/// How often the exit is looked for even without a `SIGCHLD`: the bound on detection if
/// the signal is blocked in every thread. Normal detection is the signal, in
/// microseconds.
pub(super) const RECHECK: Duration = Duration::from_secs(1);

/// A `SIGCHLD` listener for one child.
#[derive(Debug)]
pub(super) struct SigchldExit {
    pid: u32,
    sigchld: Signal,
}

impl SigchldExit {
    /// Starts listening for `SIGCHLD`. Must run inside a tokio runtime with IO enabled
    /// (tokio's signal driver).
    pub(super) fn open(pid: u32) -> io::Result<Self> {
        let sigchld = signal(SignalKind::child())?;
        Ok(Self { pid, sigchld })
    }

    /// Resolves once the child has exited and is still unreaped. Cancel-safe: every poll
    /// from scratch starts with a look.
    pub(super) async fn exited(&mut self) -> io::Result<()> {
        loop {
            if pid_exited_unreaped(self.pid)? {
                return Ok(());
            }
            let driver_alive = tokio::select! {
                got = self.sigchld.recv() => got.is_some(),
                () = tokio::time::sleep(RECHECK) => true,
            };
            if !driver_alive {
                // The signal driver is gone (the runtime is shutting down): `recv` would
                // answer at once forever, so only the recheck is left.
                tokio::time::sleep(RECHECK).await;
            }
        }
    }
}
