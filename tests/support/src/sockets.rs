//! Unix sockets in the states the waiter must tell apart, made for real: bound but not
//! listening (the bind→listen gap), and listening with another uid's credentials; and
//! the count of connections a listener received. Linux only, as the binaries that use
//! them.

use std::error::Error;
use std::io::ErrorKind;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::Path;

use nix::sys::socket::{AddressFamily, SockFlag, SockType, UnixAddr, bind, socket};

/// A socket bound at `path` but not yet listening (the bind→listen gap).
///
/// # Errors
///
/// When the socket cannot be made or bound at `path`.
pub fn bound_not_listening(path: &Path) -> Result<OwnedFd, Box<dyn Error>> {
    let fd = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    bind(fd.as_raw_fd(), &UnixAddr::new(path)?)?;
    Ok(fd)
}

/// A socket bound at `path` by us (so the file is ours), listening with the credentials
/// of `uid`: the kernel records the listener's credentials at `listen()`. Only the
/// listening thread changes its effective uid (a per-thread `setresuid`), so the rest of
/// the test process keeps running as itself. Needs root (or `CAP_SETUID`).
///
/// # Errors
///
/// When the socket cannot be bound, or the thread cannot take `uid` or listen.
pub fn listening_as(uid: u32, path: &Path) -> Result<UnixListener, Box<dyn Error>> {
    use nix::sys::socket::{Backlog, listen};
    let fd = bound_not_listening(path)?;
    let listen_as = std::thread::spawn(move || -> Result<OwnedFd, String> {
        let euid = rustix::process::Uid::from_raw(uid);
        // Real and saved uid stay ours; the thread ends right after.
        rustix::thread::set_thread_res_uid(
            None::<rustix::process::Uid>,
            euid,
            None::<rustix::process::Uid>,
        )
        .map_err(|e| format!("set_thread_res_uid: {e}"))?;
        listen(&fd, Backlog::new(16).map_err(|e| e.to_string())?)
            .map_err(|e| format!("listen as uid {uid}: {e}"))?;
        Ok(fd)
    });
    let fd = listen_as
        .join()
        .map_err(|_| "the listening thread panicked")??;
    Ok(UnixListener::from(fd))
}

/// How many connections are waiting in `listener`'s backlog (accepting them).
///
/// # Panics
///
/// When the listener cannot be made non-blocking or an accept fails otherwise.
pub fn drain(listener: &UnixListener) -> usize {
    listener.set_nonblocking(true).expect("nonblocking");
    let mut n = 0;
    loop {
        match listener.accept() {
            Ok(_) => n += 1,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return n,
            Err(e) => panic!("accept: {e}"),
        }
    }
}
