//! One non-blocking unix stream connect, bounded by the probe timeout, shared by the
//! Linux and the portable probe, followed by the connected peer's uid check.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::socket::{UnixAddr, connect, getsockopt};
use nix::unistd::geteuid;
use tokio::io::Interest;

use super::{OsError, Probe, ProbeDoubt, classify_connect_error};
use crate::sys::register_owned_fd;

// The pieces only other systems compile, in a file of their own: the suite runs on
// Linux, so no test there can judge them, and the mutation run leaves that file out.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
mod off_linux;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
use off_linux::peer_uid;
#[cfg(target_vendor = "apple")]
use off_linux::stream_socket;

/// Connects a fresh non-blocking stream socket to `addr` and checks who listens:
/// the connected stream when the listener is ours, else what that tells about liveness
/// (never [`Probe::Alive`]). A probe drops the stream at once (nothing is ever sent); a
/// client that talks to the citizen (the dispatch's `get_info` and `send`) keeps it, so
/// the uid check and the exchange use the very same connection.
///
/// On Linux a unix connect never blocks (it answers 0, ECONNREFUSED or EAGAIN at once),
/// but EINPROGRESS is still honoured: wait until writable for at most `timeout`, then
/// read `SO_ERROR`. Errors are read by [`classify_connect_error`]; a caller for which
/// ENOENT means something else than "dead" re-reads that one.
///
/// A connected socket is ours only when the listener runs as our effective uid (the
/// peer credentials the kernel recorded at its `listen()`); otherwise it is
/// [`Probe::ForeignListener`]. That check is what keeps the portable probe honest in its
/// lstat→connect window (a swapped-in path reaching someone else's listener), and it
/// costs one `getsockopt` on a connection we hold anyway.
pub(super) async fn connect_stream(addr: &UnixAddr, timeout: Duration) -> Result<OwnedFd, Probe> {
    let sock = match stream_socket() {
        Ok(sock) => sock,
        Err(e) => return Err(doubt("socket", e)),
    };
    match connect(sock.as_raw_fd(), addr) {
        Ok(()) => ours(sock),
        Err(Errno::EINPROGRESS) => finish_in_progress(sock, timeout).await,
        Err(e) => Err(classify_connect_error(e)),
    }
}

async fn finish_in_progress(sock: OwnedFd, timeout: Duration) -> Result<OwnedFd, Probe> {
    let sock = match register_owned_fd(sock, Interest::WRITABLE) {
        Ok(sock) => sock,
        Err(e) => return Err(doubt("register probe socket", io_errno(&e))),
    };
    match tokio::time::timeout(timeout, sock.writable()).await {
        Err(_elapsed) => Err(Probe::Indeterminate(ProbeDoubt::TimedOut {
            after: timeout,
        })),
        Ok(Err(e)) => Err(doubt("wait for connect", io_errno(&e))),
        Ok(Ok(_ready)) => {
            match getsockopt(sock.get_ref(), nix::sys::socket::sockopt::SocketError) {
                Ok(0) => ours(sock.into_inner()),
                Ok(raw) => Err(classify_connect_error(Errno::from_raw(raw))),
                Err(e) => Err(doubt("getsockopt(SO_ERROR)", e)),
            }
        }
    }
}

/// The connection, when its listener runs as our effective uid.
fn ours(sock: OwnedFd) -> Result<OwnedFd, Probe> {
    match peer_check(&sock) {
        Probe::Alive => Ok(sock),
        other => Err(other),
    }
}

/// Alive when the connected listener runs as our effective uid; unsure when the kernel
/// will not say.
fn peer_check(sock: &impl AsFd) -> Probe {
    match peer_uid(sock) {
        Ok(uid) if uid == geteuid().as_raw() => Probe::Alive,
        Ok(uid) => Probe::ForeignListener { uid },
        Err(e) => doubt(PEER_OP, e),
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
const PEER_OP: &str = "getsockopt(SO_PEERCRED)";
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const PEER_OP: &str = "getpeereid";

/// The listener's effective uid, as recorded by the kernel.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn peer_uid(sock: &impl AsFd) -> nix::Result<u32> {
    getsockopt(sock, nix::sys::socket::sockopt::PeerCredentials).map(|cred| cred.uid())
}

fn doubt(op: &'static str, errno: Errno) -> Probe {
    Probe::Indeterminate(ProbeDoubt::Os(OsError::new(op, errno)))
}

/// The errno inside an `io::Error`, EIO when it carries none.
pub(super) fn io_errno(e: &io::Error) -> Errno {
    e.raw_os_error().map_or(Errno::EIO, Errno::from_raw)
}

/// A close-on-exec, non-blocking unix stream socket (atomically where the OS allows).
#[cfg(not(target_vendor = "apple"))]
fn stream_socket() -> nix::Result<OwnedFd> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, socket};
    socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )
}
