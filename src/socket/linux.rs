//! Linux: inspect and probe the *same inode*.
//!
//! The path is opened once with `O_PATH | O_NOFOLLOW | O_CLOEXEC`; `fstat` on that
//! descriptor classifies it (a final symlink is opened as itself, so it shows up as
//! `S_IFLNK`), and the probe connects to `/proc/self/fd/<n>`, which the kernel resolves
//! to the very inode we classified. A symlink swapped in after the inspection is never
//! followed, and the 108-byte `sun_path` limit applies only to the short `/proc` path.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::{OFlag, open};
use nix::sys::socket::UnixAddr;
use nix::sys::stat::{Mode, fstat};
use nix::unistd::geteuid;

use super::connect::connect_stream;
use super::{Inspection, OsError, Probe, ProbeDoubt, classify_inspect_error, classify_stat};

/// The inspected socket file, held open by an `O_PATH` descriptor.
#[derive(Debug)]
pub(super) struct Held {
    fd: OwnedFd,
}

/// Opens and classifies `path`; keeps the descriptor only for a socket file of ours.
pub(super) fn inspect_held(path: &Path) -> (Inspection, Option<Held>) {
    let fd = match open(
        path,
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(e) => return (classify_inspect_error("open", e), None),
    };
    let inspection = match fstat(&fd) {
        Ok(stat) => classify_stat(&stat, geteuid().as_raw()),
        Err(e) => Inspection::Indeterminate(OsError::new("fstat", e)),
    };
    match inspection {
        Inspection::SocketFile => (inspection, Some(Held { fd })),
        other => (other, None),
    }
}

impl Held {
    /// Connects to the held inode through `/proc/self/fd/<n>`, keeping the connection
    /// when it is ours (see [`connect_stream`]).
    pub(super) async fn connect(&self, timeout: Duration) -> Result<OwnedFd, Probe> {
        let via = format!("/proc/self/fd/{}", self.fd.as_raw_fd());
        let addr = match UnixAddr::new(via.as_str()) {
            Ok(addr) => addr,
            Err(e) => {
                return Err(Probe::Indeterminate(ProbeDoubt::Os(OsError::new(
                    "sockaddr", e,
                ))));
            }
        };
        match connect_stream(&addr, timeout).await {
            // We hold the inode open, so ENOENT cannot mean "the socket is gone" (an
            // unlinked socket file answers ECONNREFUSED through its descriptor): it
            // means /proc is not there to resolve the link. That is not "dead".
            Err(Probe::Dead(e)) if e.errno() == Errno::ENOENT => {
                Err(Probe::Indeterminate(ProbeDoubt::Os(OsError::new(
                    "connect via /proc/self/fd (is /proc mounted?)",
                    e.errno(),
                ))))
            }
            other => other,
        }
    }
}
