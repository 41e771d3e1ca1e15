//! Control socket observation (docs/design.md §5): inspect, probe, verdict, await.
//!
//! Three layers, each usable on its own:
//!
//! 1. [`inspect`] looks at the *exact* path without following a final symlink and says
//!    what sits there ([`Inspection`]).
//! 2. A probe connects to it ([`Probe`]) and checks that the listener runs as our
//!    effective uid. With the Linux native [`Backend`] the probe connects through
//!    `/proc/self/fd/<n>` of the very descriptor the inspection classified, so both see
//!    the same inode (no lstat→connect window for a symlink swap) and paths longer than
//!    the 108-byte `sun_path` limit still work. The portable backend `lstat`s, then
//!    connects by path: it has that window (what it can and cannot do is written in
//!    `portable.rs`: a foreign listener is still forged) and cannot reach a path longer
//!    than `sun_path` ([`AwaitSocketError::PathTooLong`]). [`inspect_and_probe`] runs both layers
//!    together.
//! 3. [`verdict`] turns an [`SocketState`] into what a waiter should do ([`Verdict`]).
//!
//! [`await_socket_alive`] loops over the three, woken by inotify on the parent directory
//! (Linux native) or kqueue (portable, on macOS and FreeBSD), and bounded by a short
//! exponential backoff, which is the only wake-up of the portable backend on Linux
//! (details on the function).
//!
//! Rule of the module: *never say dead when unsure*. Only `ECONNREFUSED`/`ENOENT` from
//! a connect is [`Probe::Dead`]; only `ENOENT` from the inspection is
//! [`Inspection::Absent`]. Everything else that is not a clear answer is
//! `Indeterminate`, which a waiter treats as "wait", never as "dead" or "alive".
//! Two readings follow from it: on Linux natively an ENOENT from the connect through
//! `/proc/self/fd/<n>` is indeterminate (the inode is held open, so it can only mean
//! `/proc` is missing), and a datagram socket at the path (EPROTOTYPE) is indeterminate,
//! not a conflict — only a symlink, a non-socket and a foreign owner (of the file, or of
//! the listener behind it) are forged (docs/design.md §5).
//!
//! Runtime requirement: the async functions need a tokio runtime with IO and time
//! enabled (`enable_all`), because the waiter registers an inotify descriptor with the
//! reactor and sleeps on tokio timers.

mod classify;
mod connect;
mod fine_timer;
mod held;
#[cfg(target_os = "linux")]
mod linux;
mod notify;
mod portable;
mod relook;
mod wait;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::errno::Errno;

use crate::backend::Backend;
use crate::garden_id::GardenId;

#[cfg(test)]
pub(crate) use classify::classify_mode;
pub(crate) use classify::{classify_connect_error, classify_inspect_error, classify_stat};
pub use wait::{await_socket_alive, check_reachable};

/// Why the address at the socket path can never become our citizen's socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AddressConflict {
    /// A symlink sits at the path.
    Symlink,
    /// Something that is not a socket sits at the path.
    NotSocket,
    /// A socket file owned by another uid.
    ForeignOwner {
        /// Its owner.
        uid: u32,
    },
    /// A listener running as another uid answered the probe's connect (its file looked
    /// like ours: a file chowned to us, or a path swapped between the portable backend's
    /// `lstat` and connect). The probe hung up at once without sending anything.
    ForeignListener {
        /// The listener's effective uid.
        uid: u32,
    },
}

impl AddressConflict {
    /// Whether finding the conflict took a connect: only a foreign listener is found by
    /// connecting, every other conflict before any connect.
    #[must_use]
    pub fn was_connected(self) -> bool {
        matches!(self, Self::ForeignListener { .. })
    }

    fn contact(self) -> &'static str {
        if self.was_connected() {
            "it was connected once to learn its owner, and nothing was sent"
        } else {
            "it was never connected"
        }
    }
}

impl fmt::Display for AddressConflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Symlink => f.write_str("a symlink sits at the path"),
            Self::NotSocket => f.write_str("something that is not a socket sits at the path"),
            Self::ForeignOwner { uid } => write!(f, "a socket owned by another uid ({uid})"),
            Self::ForeignListener { uid } => {
                write!(f, "a listener running as another uid ({uid})")
            }
        }
    }
}

/// An OS error kept by value, so inspections and probes stay `Clone` and comparable.
///
/// `op` says which call failed, because the same errno means different things for
/// different calls (ENOENT from `open` is "absent", from a connect it is "dead").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OsError {
    /// The call that failed, e.g. `"open"` or `"connect"`.
    pub op: &'static str,
    /// The raw errno.
    pub errno: i32,
}

impl OsError {
    /// Keeps `errno` from `op`.
    #[must_use]
    pub fn new(op: &'static str, errno: Errno) -> Self {
        Self {
            op,
            errno: errno as i32,
        }
    }

    /// The portable kind of the error, for callers that match on [`io::ErrorKind`].
    #[must_use]
    pub fn kind(&self) -> io::ErrorKind {
        io::Error::from_raw_os_error(self.errno).kind()
    }

    /// The errno as nix knows it.
    #[must_use]
    pub fn errno(&self) -> Errno {
        Errno::from_raw(self.errno)
    }
}

impl fmt::Display for OsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}",
            self.op,
            io::Error::from_raw_os_error(self.errno)
        )
    }
}

impl std::error::Error for OsError {}

/// Layer 1: what sits at the exact path, looked at without following a final symlink.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Inspection {
    /// Nothing (ENOENT, and only ENOENT).
    Absent,
    /// A socket file owned by our effective uid: worth probing.
    SocketFile,
    /// Something that can never become our socket.
    AddressConflict(AddressConflict),
    /// Could not tell (EACCES, ENOTDIR, ELOOP in a parent, anything else). Never taken
    /// as "absent": a path we cannot look at may still hold a live socket.
    Indeterminate(OsError),
}

/// Why a probe could not decide between alive and dead.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProbeDoubt {
    /// The connect did not finish within the probe timeout.
    TimedOut {
        /// The timeout that elapsed.
        after: Duration,
    },
    /// EAGAIN: a listener exists but its accept backlog is full — busy, not dead.
    BacklogFull,
    /// The path does not fit `sun_path` (only with the portable backend, which has no
    /// `/proc/self/fd` route).
    PathTooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// Any other OS error (EACCES, `/proc` unavailable, ...).
    Os(OsError),
}

impl fmt::Display for ProbeDoubt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TimedOut { after } => write!(f, "connect timed out after {after:?}"),
            Self::BacklogFull => f.write_str("accept backlog full (EAGAIN)"),
            Self::PathTooLong { len } => write!(
                f,
                "path is {len} bytes, longer than sun_path allows ({} bytes)",
                SUN_PATH_MAX
            ),
            Self::Os(e) => e.fmt(f),
        }
    }
}

/// Layer 2: what a connect attempt says about liveness.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Probe {
    /// Connected, and the listener runs as our effective uid.
    Alive,
    /// Connected, but the listener runs as another uid: never our citizen (the verdict is
    /// [`AddressConflict::ForeignListener`]).
    ForeignListener {
        /// The listener's effective uid.
        uid: u32,
    },
    /// ECONNREFUSED or ENOENT: nobody listens there.
    Dead(OsError),
    /// Not sure (timeout, full backlog, EACCES, anything else). Never "dead".
    Indeterminate(ProbeDoubt),
}

/// Layers 1 and 2 together: the probe runs only when the inspection found a socket
/// file, and (Linux native) against the same inode. Not an "observation": in this
/// crate's vocabulary that is socket-alive or child-exited, while this may also be
/// absent or indeterminate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketState {
    /// What sits at the path.
    pub inspection: Inspection,
    /// The connect attempt; `Some` only when `inspection` is [`Inspection::SocketFile`].
    pub probe: Option<Probe>,
}

/// Layer 3: what a waiter should do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verdict {
    /// The socket accepts connections.
    Alive,
    /// Not yet (absent, dead, or unsure): look again later.
    Wait,
    /// An address conflict: time cannot heal it, fail now.
    Forged(AddressConflict),
}

/// Tuning for [`await_socket_alive`].
///
/// `#[non_exhaustive]`: start from [`WaitOptions::default`] and set what differs with the
/// `with_*` methods (or assign the public fields), so a knob added later breaks no
/// dependent. (0.1 had a plain struct: adding `backend` broke every literal.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct WaitOptions {
    /// Upper bound between two probes when nothing wakes the waiter (default 150 ms).
    pub poll_interval: Duration,
    /// How long one connect may take before it counts as indeterminate (default 300 ms).
    pub probe_timeout: Duration,
    /// Inspect, probe and wake with these mechanisms (default [`Backend::Native`]).
    pub backend: Backend,
}

impl Default for WaitOptions {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_millis(150),
            probe_timeout: Duration::from_millis(300),
            backend: Backend::Native,
        }
    }
}

impl WaitOptions {
    /// Sets [`poll_interval`](Self::poll_interval).
    #[must_use]
    pub fn with_poll_interval(mut self, poll_interval: Duration) -> Self {
        self.poll_interval = poll_interval;
        self
    }

    /// Sets [`probe_timeout`](Self::probe_timeout).
    #[must_use]
    pub fn with_probe_timeout(mut self, probe_timeout: Duration) -> Self {
        self.probe_timeout = probe_timeout;
        self
    }

    /// Sets [`backend`](Self::backend).
    #[must_use]
    pub fn with_backend(mut self, backend: Backend) -> Self {
        self.backend = backend;
        self
    }
}

/// Why [`await_socket_alive`] gave up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AwaitSocketError {
    /// Forged address: time cannot heal it.
    #[error("socket path {path:?} is forged ({conflict}); {}", conflict.contact())]
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
    /// The path does not fit `sun_path` and the backend has no `/proc/self/fd` route to
    /// reach it (the portable backend; never the Linux native one). Waiting could never
    /// succeed, so fail now.
    #[error(
        "socket path {path:?} is {len} bytes, longer than sun_path allows ({max} bytes) with the portable backend"
    )]
    PathTooLong {
        /// The exact path.
        path: PathBuf,
        /// Its length in bytes.
        len: usize,
        /// The platform's limit (without the terminating NUL).
        max: usize,
    },
}

/// Usable bytes in `sockaddr_un.sun_path` (108 on Linux, 104 on the BSDs), minus the NUL.
pub const SUN_PATH_MAX: usize = if cfg!(target_os = "linux") { 107 } else { 103 };

/// The control socket path for `gid` in `control_dir`: the one place its name is spelled,
/// for the background and the visible resume alike. Taking a [`GardenId`] means the name
/// is validated and cannot escape the directory.
#[must_use]
pub fn socket_path(control_dir: &Path, gid: &GardenId) -> PathBuf {
    control_dir.join(format!("{gid}.sock"))
}

/// Layer 1 on its own: what sits at `path` (final symlink not followed), looked at with
/// [`Backend::Native`].
#[must_use]
pub fn inspect(path: &Path) -> Inspection {
    inspect_for_probe(path, Backend::Native).0
}

/// Layer 1, keeping hold of a socket file for layer 2: the handle is `Some` exactly when
/// the inspection is [`Inspection::SocketFile`]. `backend` picks the mechanism
/// (`open(O_PATH)` + `fstat` natively on Linux, `lstat` in the portable backend);
/// [`Backend::default()`] is the native one.
#[must_use]
pub fn inspect_for_probe(path: &Path, backend: Backend) -> (Inspection, Option<SocketFile>) {
    let (inspection, held) = held::inspect_held(path, backend);
    (inspection, held.map(SocketFile))
}

/// A socket file that [`inspect_for_probe`] classified, held so that the probe reaches
/// the same inode (Linux native: an `O_PATH` descriptor; portable: just the path).
/// Dropping it closes the descriptor.
#[derive(Debug)]
pub struct SocketFile(held::Held);

impl SocketFile {
    /// Layer 2: connects once (closing the connection at once) and says what that tells
    /// about liveness. A connect still in progress after `timeout` is indeterminate.
    pub async fn probe(&self, timeout: Duration) -> Probe {
        self.0.probe(timeout).await
    }

    /// Layer 2, keeping the connection: the connected stream when the probe would say
    /// [`Probe::Alive`] (the listener runs as our effective uid), else what the probe
    /// would say — never `Alive`. The stream reaches the very inode the inspection
    /// classified (Linux native), so a client that talks over it cannot be redirected
    /// by a path swapped after the inspection. Needs a tokio runtime with IO enabled.
    ///
    /// # Errors
    ///
    /// The probe's answer when it is not `Alive`: [`Probe::Dead`],
    /// [`Probe::ForeignListener`] or [`Probe::Indeterminate`] (a stream tokio cannot
    /// register is indeterminate too).
    pub async fn connect(&self, timeout: Duration) -> Result<tokio::net::UnixStream, Probe> {
        let fd = self.0.connect(timeout).await?;
        tokio::net::UnixStream::from_std(std::os::unix::net::UnixStream::from(fd)).map_err(|e| {
            Probe::Indeterminate(ProbeDoubt::Os(OsError::new(
                "register stream",
                connect::io_errno(&e),
            )))
        })
    }
}

/// Layers 1 and 2: inspects `path` with `backend`'s mechanism and, when a socket file
/// sits there, probes the same inode (natively; the portable backend the same path) by
/// connecting, the connection closed at once. A connect still in progress after
/// `probe_timeout` is indeterminate.
pub async fn inspect_and_probe(
    path: &Path,
    probe_timeout: Duration,
    backend: Backend,
) -> SocketState {
    let (inspection, file) = inspect_for_probe(path, backend);
    let probe = match file {
        Some(file) => Some(file.probe(probe_timeout).await),
        None => None,
    };
    SocketState { inspection, probe }
}

/// Layer 3. Conflict → [`Verdict::Forged`]; a socket file whose listener runs as
/// another uid → `Forged` too; a socket file that answered → `Alive`; anything else →
/// `Wait`. A probe result next to a non-socket inspection (which
/// [`inspect_and_probe`] never produces) is ignored: only the pair "socket file, connected" is
/// alive.
#[must_use]
pub fn verdict(observation: &SocketState) -> Verdict {
    match (&observation.inspection, &observation.probe) {
        (Inspection::AddressConflict(conflict), _) => Verdict::Forged(*conflict),
        (Inspection::SocketFile, Some(Probe::ForeignListener { uid })) => {
            Verdict::Forged(AddressConflict::ForeignListener { uid: *uid })
        }
        (Inspection::SocketFile, Some(Probe::Alive)) => Verdict::Alive,
        _ => Verdict::Wait,
    }
}

#[cfg(test)]
mod tests;
