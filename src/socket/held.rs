//! The inspection→probe pair of each [`Backend`]: the Linux native one holds an `O_PATH`
//! descriptor, the portable one the path.

use std::os::fd::OwnedFd;
use std::path::Path;
use std::time::Duration;

use super::{Inspection, Probe};
use crate::backend::Backend;

/// A socket file the inspection classified, held for the probe.
#[derive(Debug)]
pub(super) enum Held {
    /// Linux native: the very inode, by descriptor.
    #[cfg(target_os = "linux")]
    Linux(super::linux::Held),
    /// Portable: the path.
    Portable(super::portable::Held),
}

/// Inspects `path` with `backend`'s mechanism; the handle is `Some` exactly for a socket
/// file.
pub(super) fn inspect_held(path: &Path, backend: Backend) -> (Inspection, Option<Held>) {
    #[cfg(target_os = "linux")]
    if backend.is_linux_native() {
        let (inspection, held) = super::linux::inspect_held(path);
        return (inspection, held.map(Held::Linux));
    }
    // Only the Linux build has a choice to make.
    let _ = backend;
    let (inspection, held) = super::portable::inspect_held(path);
    (inspection, held.map(Held::Portable))
}

impl Held {
    /// Connects once, keeping the connection when its listener is ours; otherwise what
    /// that connect tells about liveness (never [`Probe::Alive`]).
    pub(super) async fn connect(&self, timeout: Duration) -> Result<OwnedFd, Probe> {
        match self {
            #[cfg(target_os = "linux")]
            Self::Linux(held) => held.connect(timeout).await,
            Self::Portable(held) => held.connect(timeout).await,
        }
    }

    /// Connects once and says what that tells about liveness; the connection is closed
    /// at once.
    pub(super) async fn probe(&self, timeout: Duration) -> Probe {
        match self.connect(timeout).await {
            Ok(_connected) => Probe::Alive,
            Err(probe) => probe,
        }
    }
}
