//! One bounded observation after the window opened: the control socket becomes
//! connectable (the inotify waiter), or the pane's process exits (a pidfd), or the
//! timeout passes. Nothing is killed and no window is closed, whichever comes first.

use std::fmt;
use std::io;
use std::path::Path;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::launcher::{LaunchReceipt, Launcher, PaneExitStatus};
use crate::socket::{WaitOptions, await_socket_alive};

/// Observation receipt: what was seen after the window opened, and after how long.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ObservationReceipt {
    /// The citizen's control socket accepted a connection: it is resident.
    SocketAlive {
        /// From the window's opening to the first successful connect.
        after: Duration,
    },
    /// The pane's process exited before its socket came alive: `pi` died. The tmux
    /// launcher keeps the dead pane open (`remain-on-exit`, that window only), so its
    /// last output can still be read there.
    PaneExited {
        /// From the window's opening to the exit.
        after: Duration,
        /// How it ended, when the launcher could tell ([`Launcher::pane_exit_status`]).
        status: Option<PaneExitStatus>,
    },
    /// Neither within the bound, or a watch failed.
    Unobserved {
        /// How long was watched.
        after: Duration,
        /// Why nothing was seen.
        reason: UnobservedReason,
    },
}

/// Why an observation saw nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UnobservedReason {
    /// The timeout passed with the pane running and the socket not alive.
    TimedOut,
    /// A watch could not start or failed (e.g. something that is not our socket appeared
    /// at the path): the error chain.
    WatchFailed(String),
}

impl ObservationReceipt {
    /// The wire name: `socket-alive`, `pane-exited` or `unobserved`.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::SocketAlive { .. } => "socket-alive",
            Self::PaneExited { .. } => "pane-exited",
            Self::Unobserved { .. } => "unobserved",
        }
    }

    /// How long the observation took.
    #[must_use]
    pub fn after(&self) -> Duration {
        match self {
            Self::SocketAlive { after }
            | Self::PaneExited { after, .. }
            | Self::Unobserved { after, .. } => *after,
        }
    }
}

impl fmt::Display for ObservationReceipt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} after {} ms", self.kind(), self.after().as_millis())?;
        match self {
            Self::Unobserved {
                reason: UnobservedReason::WatchFailed(error),
                ..
            } => write!(f, " ({error})"),
            Self::PaneExited {
                status: Some(status),
                ..
            } => write!(f, " ({status})"),
            Self::PaneExited { status: None, .. } => write!(f, " (exit status unknown)"),
            _ => Ok(()),
        }
    }
}

/// Watches `socket` and the pane of `receipt` for at most `timeout`. A watch that fails
/// ends the observation as [`UnobservedReason::WatchFailed`]: half an observation would
/// report a timeout that hides the failure. Every watch is cancelled on return.
pub(super) async fn observe_once<L: Launcher>(
    launcher: &L,
    receipt: &LaunchReceipt,
    socket: &Path,
    timeout: Duration,
    wait: WaitOptions,
) -> ObservationReceipt {
    let started = Instant::now();
    let unobserved = |reason| ObservationReceipt::Unobserved {
        after: started.elapsed(),
        reason,
    };
    let pane = match launcher.watch_pane_exit(receipt) {
        Ok(pane) => pane,
        Err(error) => {
            return unobserved(UnobservedReason::WatchFailed(format!(
                "watching the pane: {}",
                crate::error_chain(error.as_ref())
            )));
        }
    };
    let cancel = CancellationToken::new();
    let _cancel_on_return = cancel.clone().drop_guard();
    let alive = await_socket_alive(socket, cancel, wait);
    // Biased, pane first: when both settle in the same poll, the conservative report is
    // the exit (a `pi` that bound and died is not resident).
    let exited_after = tokio::select! {
        biased;
        exited = pane => match exited {
            Ok(()) => started.elapsed(),
            Err(error) => return unobserved(UnobservedReason::WatchFailed(format!(
                "watching the pane: {}",
                crate::error_chain(error.as_ref())
            ))),
        },
        alive = alive => return match alive {
            Ok(()) => ObservationReceipt::SocketAlive { after: started.elapsed() },
            Err(error) => unobserved(UnobservedReason::WatchFailed(
                crate::error_chain(&error),
            )),
        },
        () = tokio::time::sleep(timeout) => return ObservationReceipt::Unobserved {
            after: timeout,
            reason: UnobservedReason::TimedOut,
        },
    };
    // `after` is the exit as observed; asking for the status comes after (and takes a
    // tmux round trip), so it does not count.
    ObservationReceipt::PaneExited {
        after: exited_after,
        status: launcher.pane_exit_status(receipt).await,
    }
}

/// Watches any process by pid (not only our children) until it exits: a pidfd becomes
/// readable when its process exits, and `pidfd_open` works on a process we did not
/// start. A pid that is already gone (ESRCH) resolves at once. Starting does not block;
/// it needs a tokio runtime with IO enabled.
///
/// The pid is taken as it is: whether the process still is the one meant (its pid may
/// have been reused after it exited) is for the caller to check once the pidfd pins it —
/// the tmux launcher compares the parent with the server's pid.
///
/// # Errors
///
/// The OS error of `pidfd_open` (other than ESRCH) or of registering the descriptor.
#[cfg(target_os = "linux")]
pub fn watch_process_exit(
    pid: u32,
) -> io::Result<impl std::future::Future<Output = io::Result<()>> + Send + 'static> {
    use rustix::process::{PidfdFlags, pidfd_open};
    use tokio::io::Interest;

    let fd = match pidfd_open(crate::sys::rustix_pid(pid)?, PidfdFlags::empty()) {
        Ok(fd) => Some(crate::sys::register_owned_fd(fd, Interest::READABLE)?),
        Err(rustix::io::Errno::SRCH) => None,
        Err(e) => return Err(e.into()),
    };
    Ok(async move {
        if let Some(fd) = fd {
            // Readable once the process has exited; it stays readable, so no retry.
            let _ready = fd.readable().await?;
        }
        Ok(())
    })
}

/// Elsewhere there is no pidfd: the exit of a process we did not start cannot be
/// observed, so the future never resolves and the observation rests on the socket.
///
/// # Errors
///
/// None here; the `Result` keeps the Linux signature, where opening the pidfd can fail.
#[cfg(not(target_os = "linux"))]
pub fn watch_process_exit(
    _pid: u32,
) -> io::Result<impl std::future::Future<Output = io::Result<()>> + Send + 'static> {
    Ok(std::future::pending())
}
