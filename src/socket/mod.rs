//! Control socket observation (SPEC §5): inspect, probe, verdict, await. STUB.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// Why the address at the socket path can never become our citizen's socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressConflict {
    /// A symlink sits at the path.
    Symlink,
    /// Something that is not a socket sits at the path.
    NotSocket,
    /// A socket owned by another uid.
    ForeignOwner {
        /// Its owner.
        uid: u32,
    },
}

/// Tuning for [`await_socket_alive`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitOptions {
    /// Upper bound between two probes when nothing wakes the waiter (default 150 ms).
    pub poll_interval: Duration,
    /// How long one connect may take before it counts as indeterminate (default 300 ms).
    pub probe_timeout: Duration,
}

impl Default for WaitOptions {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_millis(150),
            probe_timeout: Duration::from_millis(300),
        }
    }
}

/// Why [`await_socket_alive`] gave up.
#[derive(Debug, thiserror::Error)]
pub enum AwaitSocketError {
    /// Forged address: time cannot heal it.
    #[error("socket path {path:?} is forged ({conflict:?}); it was never connected")]
    Forged {
        /// The exact path.
        path: PathBuf,
        /// What sits there.
        conflict: AddressConflict,
    },
    /// Cancelled before the socket became alive.
    #[error("waiting for socket {path:?} was cancelled")]
    Cancelled {
        /// The exact path.
        path: PathBuf,
    },
}

/// Resolves once `path` accepts a connection; fails at once on a forged address, and on
/// cancellation.
pub async fn await_socket_alive(
    path: &Path,
    _cancel: CancellationToken,
    _options: WaitOptions,
) -> Result<(), AwaitSocketError> {
    todo!("await_socket_alive {path:?}")
}
