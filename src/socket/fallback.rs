//! Portable fallback (everywhere but Linux): `lstat`, then connect by path.
//!
//! Without `O_PATH` and `/proc/self/fd` there is a window between the `lstat` and the
//! connect in which a symlink could be swapped in; this is the documented limit of the
//! fallback. A path that does not fit `sun_path` cannot be reached at all and is reported
//! as such ([`ProbeDoubt::PathTooLong`], and
//! [`AwaitSocketError::PathTooLong`](super::AwaitSocketError::PathTooLong) up front).
//!
//! Compiled on Linux too, for the unit tests only, so it stays exercised.

use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::socket::UnixAddr;
use nix::sys::stat::lstat;
use nix::unistd::geteuid;

use super::connect::connect_once;
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
    /// Connects to the path.
    pub(super) async fn probe(&self, timeout: Duration) -> Probe {
        if let Some(len) = too_long(&self.path) {
            return Probe::Indeterminate(ProbeDoubt::PathTooLong { len });
        }
        let addr = match UnixAddr::new(self.path.as_path()) {
            Ok(addr) => addr,
            Err(e) => return Probe::Indeterminate(ProbeDoubt::Os(OsError::new("sockaddr", e))),
        };
        // ENOENT here means the file went away after the lstat: nobody listens there.
        connect_once(&addr, timeout).await
    }
}
