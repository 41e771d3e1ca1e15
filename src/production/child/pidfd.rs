//! Linux exit source: a pidfd, readable once the process has exited.
//!
//! The readiness is confirmed with `waitid(P_PIDFD, WEXITED | WNOWAIT | WNOHANG)`, which
//! observes the exit without reaping it: the zombie keeps pinning the pid (and so the
//! process group id) until the supervisor has swept the group and reaps.

use std::io;
use std::os::fd::{AsFd, OwnedFd};

use rustix::process::{PidfdFlags, WaitId, pidfd_open};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use crate::sys::exited_unreaped;

/// A pidfd registered with the runtime's reactor.
#[derive(Debug)]
pub(super) struct PidfdExit {
    pidfd: AsyncFd<OwnedFd>,
}

impl PidfdExit {
    /// Opens a non-blocking pidfd for the (unreaped, hence still ours) child and registers
    /// it with the runtime's reactor.
    pub(super) fn open(pid: u32) -> io::Result<Self> {
        let pidfd = pidfd_open(crate::sys::rustix_pid(pid)?, PidfdFlags::NONBLOCK)?;
        let pidfd = crate::sys::register_owned_fd(pidfd, Interest::READABLE)?;
        Ok(Self { pidfd })
    }

    /// Resolves once the child has exited and is still unreaped. Cancel-safe.
    pub(super) async fn exited(&self) -> io::Result<()> {
        loop {
            let mut guard = self.pidfd.readable().await?;
            let pidfd = self.pidfd.get_ref();
            if exited_unreaped(|| WaitId::PidFd(pidfd.as_fd()))? {
                return Ok(());
            }
            // Spurious wake-up: forget the readiness and wait again.
            guard.clear_ready();
        }
    }
}
