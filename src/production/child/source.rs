//! Where the supervisor learns that its child exited, per [`Backend`]: both report an
//! exited-but-unreaped child, so the supervisor can sweep the group before it reaps.

use std::io;

use crate::backend::Backend;

#[cfg(target_os = "linux")]
use super::pidfd::PidfdExit;
use super::portable::SigchldExit;

/// The exit source of one child.
#[derive(Debug)]
pub(super) enum ExitSource {
    /// A pidfd (Linux native).
    #[cfg(target_os = "linux")]
    Pidfd(PidfdExit),
    /// `SIGCHLD` + `waitid(P_PID, WNOWAIT)` (portable).
    Sigchld(SigchldExit),
}

impl ExitSource {
    /// Starts watching `pid` with `backend`'s mechanism. The child must be ours and
    /// unreaped.
    pub(super) fn open(pid: u32, backend: Backend) -> io::Result<Self> {
        #[cfg(target_os = "linux")]
        if backend.is_linux_native() {
            return PidfdExit::open(pid).map(Self::Pidfd);
        }
        // Only the Linux build has a choice to make.
        let _ = backend;
        SigchldExit::open(pid).map(Self::Sigchld)
    }

    /// Resolves once the child has exited and is still unreaped. Cancel-safe.
    pub(super) async fn exited(&mut self) -> io::Result<()> {
        match self {
            #[cfg(target_os = "linux")]
            Self::Pidfd(pidfd) => pidfd.exited().await,
            Self::Sigchld(sigchld) => sigchld.exited().await,
        }
    }
}
