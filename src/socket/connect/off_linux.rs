//! The connect's pieces that only systems other than Linux compile: the listener's uid by
//! `getpeereid`, and on macOS a socket made close-on-exec and non-blocking in two steps.

use std::os::fd::AsFd;

/// The listener's effective uid, as recorded by the kernel.
pub(super) fn peer_uid(sock: &impl AsFd) -> nix::Result<u32> {
    nix::unistd::getpeereid(sock.as_fd()).map(|(uid, _gid)| uid.as_raw())
}

/// A close-on-exec, non-blocking unix stream socket (macOS has no atomic flags).
#[cfg(target_vendor = "apple")]
pub(super) fn stream_socket() -> nix::Result<std::os::fd::OwnedFd> {
    use nix::fcntl::{FcntlArg, FdFlag, OFlag, fcntl};
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, socket};
    let sock = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::empty(),
        None,
    )?;
    fcntl(&sock, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))?;
    fcntl(&sock, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))?;
    Ok(sock)
}
