//! Portable probe (every platform; the only one off Linux): `lstat`, then connect by
//! path, then the connected listener's uid checked.
//!
//! # The window, stated once
//!
//! Without `O_PATH` and `/proc/self/fd` the inspection and the connect are two lookups of
//! the path. Between them, someone who can write to the socket's directory can swap in
//! another file — a symlink included, which `connect` follows. What still holds:
//!
//! - a swapped-in path that reaches a listener running as another uid is caught after
//!   the connect (`SO_PEERCRED` / `getpeereid`), so it is still forged
//!   ([`AddressConflict::ForeignListener`](super::AddressConflict::ForeignListener));
//! - the probe only connects and hangs up: it never sends a byte, so a wrong target
//!   learns nothing but that someone connected;
//! - the next look `lstat`s again, so a symlink left in place is forged on that look.
//!
//! What does not: a swap to *another listener of our own uid* during the window is
//! taken as alive for that look. Only a process of our own uid (or root) can arrange it,
//! and it could impersonate our citizen by other means anyway. The Linux native backend
//! has no window at all.
//!
//! A path that does not fit `sun_path` cannot be reached by path; the probe says so
//! ([`ProbeDoubt::PathTooLong`]) and the waiter fails up front
//! ([`AwaitSocketError::PathTooLong`](super::AwaitSocketError::PathTooLong)).

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::socket::UnixAddr;
use nix::sys::stat::lstat;
use nix::unistd::geteuid;

use super::connect::connect_stream;
use super::{
    Inspection, OsError, Probe, ProbeDoubt, SUN_PATH_MAX, classify_inspect_error, classify_stat,
};

/// The inspected socket file, remembered by path (there is no descriptor to hold).
#[derive(Debug)]
pub(super) struct Held {
    path: PathBuf,
}

/// `lstat`s and classifies `path`.
pub(super) fn inspect_held(path: &Path) -> (Inspection, Option<Held>) {
    let inspection = match lstat(path) {
        Ok(stat) => classify_stat(&stat, geteuid().as_raw()),
        Err(e) => classify_inspect_error("lstat", e),
    };
    match inspection {
        Inspection::SocketFile => (
            inspection,
            Some(Held {
                path: path.to_path_buf(),
            }),
        ),
        other => (other, None),
    }
}

/// `Some(len)` when `path` is too long for `sun_path`.
pub(super) fn too_long(path: &Path) -> Option<usize> {
    let len = path.as_os_str().len();
    (len > SUN_PATH_MAX).then_some(len)
}

impl Held {
    /// Connects to the path, keeping the connection when it is ours (see
    /// [`connect_stream`]).
    pub(super) async fn connect(&self, timeout: Duration) -> Result<OwnedFd, Probe> {
        if let Some(len) = too_long(&self.path) {
            return Err(Probe::Indeterminate(ProbeDoubt::PathTooLong { len }));
        }
        let addr = match UnixAddr::new(self.path.as_path()) {
            Ok(addr) => addr,
            Err(e) => {
                return Err(Probe::Indeterminate(ProbeDoubt::Os(OsError::new(
                    "sockaddr", e,
                ))));
            }
        };
        // ENOENT here means the file went away after the lstat: nobody listens there.
        connect_stream(&addr, timeout).await
    }
}
