//! Wake-ups for the waiter: inotify on the socket's parent directory (Linux native),
//! kqueue `EVFILT_VNODE` on it (the portable backend on macOS and FreeBSD, see
//! `notify/kqueue.rs`), or none at all (the portable backend on Linux: the waiter's bounded
//! backoff is the poll).
//!
//! The watch is best effort. When the directory does not exist yet, or inotify is out of
//! instances (EMFILE) or watches (ENOSPC), [`DirWatch::arm`] says so and the waiter
//! simply polls on its backoff, re-arming on every round; a directory removed and
//! recreated is therefore watched again.
//!
//! Dropping a `DirWatch` removes its watch at once and hands the inotify descriptor to
//! a closer thread, which closes it [`CLOSE_DELAY`] later. Why: closing an inotify
//! instance that had a watch waits for the kernel's fsnotify mark reaper, i.e. an
//! SRCU grace period — measured 5–20 ms on Linux 6.x, in `close(2)` itself. Done
//! inline, that stalled the runtime thread and delayed every return of the waiter (a
//! socket seen alive was reported ~15 ms late, and hundreds of watchers serialised on
//! it). `inotify_rm_watch` only queues the mark for the reaper (microseconds); once the
//! reaper has run, `close` is microseconds too. So no watch outlives the waiter, and
//! its descriptor is closed within about [`CLOSE_DELAY`] after it (at once, inline, if
//! the closer thread cannot be started).

use std::path::Path;
use std::time::Duration;

use crate::backend::Backend;

#[cfg(any(target_os = "macos", target_os = "freebsd"))]
mod kqueue;

/// How long after its watch was removed an inotify descriptor is closed: enough for the
/// kernel's mark reaper (one jiffy, then an SRCU grace period) to have run, so that the
/// close itself is quick. See the module docs.
#[cfg_attr(
    not(target_os = "linux"),
    expect(dead_code, reason = "only inotify descriptors are closed late")
)]
pub(crate) const CLOSE_DELAY: Duration = Duration::from_millis(50);

/// The waiter's source of wake-ups, per backend.
#[derive(Debug)]
pub(super) enum DirWatch {
    /// inotify on the parent directory (Linux native).
    #[cfg(target_os = "linux")]
    Inotify(linux::InotifyWatch),
    /// kqueue on the parent directory (portable, macOS and FreeBSD).
    #[cfg(any(target_os = "macos", target_os = "freebsd"))]
    Kqueue(kqueue::KqueueWatch),
    /// No notification: the waiter polls on its backoff.
    #[cfg_attr(
        any(target_os = "macos", target_os = "freebsd"),
        expect(dead_code, reason = "kqueue wakes every waiter there")
    )]
    Poll,
}

impl DirWatch {
    /// Prepares (does not yet arm) a watch for the parent of `path`.
    pub(super) fn new(path: &Path, backend: Backend) -> Self {
        #[cfg(target_os = "linux")]
        if backend.is_linux_native() {
            return Self::Inotify(linux::InotifyWatch::new(path));
        }
        // There the backend is always the portable one.
        #[cfg(any(target_os = "macos", target_os = "freebsd"))]
        {
            let _ = backend;
            Self::Kqueue(kqueue::KqueueWatch::new(path))
        }
        // Elsewhere (the portable backend on Linux), nothing to watch with.
        #[cfg(not(any(target_os = "macos", target_os = "freebsd")))]
        {
            let _ = (path, backend);
            Self::Poll
        }
    }

    /// Makes sure the watch is in place; `false` means "poll instead" this round.
    pub(super) fn arm(&mut self) -> bool {
        match self {
            #[cfg(target_os = "linux")]
            Self::Inotify(watch) => watch.arm(),
            #[cfg(any(target_os = "macos", target_os = "freebsd"))]
            Self::Kqueue(watch) => watch.arm(),
            Self::Poll => false,
        }
    }

    /// Resolves on the next change that may concern the socket path (or the end of the
    /// watch); never while there is nothing to watch. Cancel-safe.
    pub(super) async fn changed(&mut self) -> Wake {
        match self {
            #[cfg(target_os = "linux")]
            Self::Inotify(watch) => watch.changed().await,
            #[cfg(any(target_os = "macos", target_os = "freebsd"))]
            Self::Kqueue(watch) => watch.changed().await,
            Self::Poll => std::future::pending().await,
        }
    }
}

/// Why [`DirWatch::changed`] returned.
#[cfg_attr(
    not(target_os = "linux"),
    expect(dead_code, reason = "only inotify reports a lost instance")
)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Wake {
    /// Something happened that may concern the socket path: look now.
    Changed,
    /// The inotify instance broke; it will be recreated on the next `arm`.
    Lost,
}

#[cfg(target_os = "linux")]
mod linux {
    use std::ffi::OsString;
    use std::os::fd::{AsFd, AsRawFd, RawFd};
    use std::path::{Path, PathBuf};
    use std::sync::OnceLock;
    use std::sync::mpsc;
    use std::time::Instant;

    use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, InotifyEvent, WatchDescriptor};
    use tokio::io::Interest;
    use tokio::io::unix::AsyncFd;

    use super::{CLOSE_DELAY, Wake};
    use crate::sys::{OwnsFd, register_owned_fd};

    /// nix's `Inotify` owns its descriptor but only offers `AsFd`; the reactor wants
    /// `AsRawFd`.
    #[derive(Debug)]
    struct InotifyFd(Inotify);

    impl AsRawFd for InotifyFd {
        fn as_raw_fd(&self) -> RawFd {
            self.0.as_fd().as_raw_fd()
        }
    }

    // `Inotify` owns its descriptor and never swaps it.
    impl OwnsFd for InotifyFd {}

    /// Events on the parent directory that can change what the waiter reports for the
    /// socket path, or that end the watch itself: a file created or moved in (a socket
    /// that may listen), an attribute change (a stale socket given to another uid is
    /// forged), the directory deleted or moved away (watch the new one at the path).
    /// Not a removal or a move away of the socket file (`IN_DELETE`, `IN_MOVED_FROM`):
    /// nothing there and a stale socket both mean "wait", and whatever comes next
    /// arrives with a create or a move in; waking for them only cost looks.
    fn mask() -> AddWatchFlags {
        AddWatchFlags::IN_CREATE
            | AddWatchFlags::IN_MOVED_TO
            | AddWatchFlags::IN_ATTRIB
            | AddWatchFlags::IN_DELETE_SELF
            | AddWatchFlags::IN_MOVE_SELF
            | AddWatchFlags::IN_ONLYDIR
    }

    /// An inotify watch on the directory that holds the socket path.
    #[derive(Debug)]
    pub(in crate::socket) struct InotifyWatch {
        dir: Option<PathBuf>,
        name: Option<OsString>,
        inotify: Option<AsyncFd<InotifyFd>>,
        wd: Option<WatchDescriptor>,
    }

    impl InotifyWatch {
        /// Prepares (does not yet arm) a watch for the parent of `path`.
        pub(in crate::socket) fn new(path: &Path) -> Self {
            let dir = path.parent().map(|p| {
                if p.as_os_str().is_empty() {
                    PathBuf::from(".")
                } else {
                    p.to_path_buf()
                }
            });
            Self {
                dir,
                name: path.file_name().map(|n| n.to_os_string()),
                inotify: None,
                wd: None,
            }
        }

        /// Makes sure the watch is in place; `false` means "poll instead" this round.
        pub(in crate::socket) fn arm(&mut self) -> bool {
            if self.wd.is_some() {
                return true;
            }
            let Some(dir) = &self.dir else {
                return false;
            };
            if self.inotify.is_none() {
                let Ok(inotify) = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)
                else {
                    return false;
                };
                let Ok(inotify) = register_owned_fd(InotifyFd(inotify), Interest::READABLE) else {
                    return false;
                };
                self.inotify = Some(inotify);
            }
            let Some(inotify) = &self.inotify else {
                return false;
            };
            match inotify.get_ref().0.add_watch(dir.as_path(), mask()) {
                Ok(wd) => {
                    self.wd = Some(wd);
                    true
                }
                Err(_) => false,
            }
        }

        /// Resolves on the next change that may concern the socket path (or the end of
        /// the watch). Never resolves while no inotify instance exists. Cancel-safe:
        /// events are read and digested within a single poll.
        pub(in crate::socket) async fn changed(&mut self) -> Wake {
            loop {
                let read = {
                    let Some(inotify) = &self.inotify else {
                        return std::future::pending().await;
                    };
                    let mut ready = match inotify.readable().await {
                        Ok(ready) => ready,
                        Err(_) => {
                            self.reset();
                            return Wake::Lost;
                        }
                    };
                    match ready
                        .try_io(|fd| fd.get_ref().0.read_events().map_err(std::io::Error::from))
                    {
                        Ok(read) => read,
                        Err(_would_block) => continue,
                    }
                };
                match read {
                    Ok(events) => {
                        if self.digest(&events) {
                            return Wake::Changed;
                        }
                    }
                    Err(_) => {
                        // A broken instance: start over with a fresh one next round.
                        self.reset();
                        return Wake::Lost;
                    }
                }
            }
        }

        /// Applies `events`; `true` when one of them may concern the socket path.
        fn digest(&mut self, events: &[InotifyEvent]) -> bool {
            let mut relevant = false;
            for event in events {
                if event.mask.contains(AddWatchFlags::IN_Q_OVERFLOW) {
                    relevant = true;
                    continue;
                }
                if Some(event.wd) != self.wd {
                    // Left over from a watch we already dropped (e.g. its IN_IGNORED).
                    continue;
                }
                if event.mask.contains(AddWatchFlags::IN_IGNORED) {
                    // The kernel removed the watch (directory deleted or unmounted).
                    self.wd = None;
                    relevant = true;
                } else if event.mask.intersects(
                    AddWatchFlags::IN_DELETE_SELF
                        | AddWatchFlags::IN_MOVE_SELF
                        | AddWatchFlags::IN_UNMOUNT,
                ) {
                    // The watched inode is no longer at our path: drop it and re-add on
                    // the path next round.
                    if let (Some(inotify), Some(wd)) = (&self.inotify, self.wd.take()) {
                        let _ = inotify.get_ref().0.rm_watch(wd);
                    }
                    relevant = true;
                } else if event.name.is_none() || event.name == self.name {
                    relevant = true;
                }
            }
            relevant
        }

        fn reset(&mut self) {
            self.wd = None;
            if let Some(inotify) = self.inotify.take() {
                close_later(inotify);
            }
        }
    }

    impl Drop for InotifyWatch {
        fn drop(&mut self) {
            if let Some(inotify) = self.inotify.take() {
                if let Some(wd) = self.wd.take() {
                    // Fast: only queues the mark for the kernel's reaper.
                    let _ = inotify.get_ref().0.rm_watch(wd);
                }
                close_later(inotify);
            }
        }
    }

    type Closing = (Instant, InotifyFd);

    /// The closer thread's inbox, started on first use; `None` if it could not start.
    fn closer() -> Option<&'static mpsc::Sender<Closing>> {
        static CLOSER: OnceLock<Option<mpsc::Sender<Closing>>> = OnceLock::new();
        CLOSER
            .get_or_init(|| {
                let (tx, rx) = mpsc::channel::<Closing>();
                std::thread::Builder::new()
                    .name("inotify-closer".into())
                    .spawn(move || {
                        // FIFO: items arrive in deadline order.
                        for (due, fd) in rx {
                            std::thread::sleep(due.saturating_duration_since(Instant::now()));
                            drop(fd);
                        }
                    })
                    .ok()
                    .map(|_| tx)
            })
            .as_ref()
    }

    /// Deregisters `inotify` from the reactor now and closes it [`CLOSE_DELAY`] later
    /// on the closer thread (inline if that thread is unavailable).
    fn close_later(inotify: AsyncFd<InotifyFd>) {
        let fd = inotify.into_inner();
        let item = (Instant::now() + CLOSE_DELAY, fd);
        let rejected = match closer() {
            Some(tx) => tx.send(item).err().map(|e| e.0),
            None => Some(item),
        };
        // Closing inline is slow but correct.
        drop(rejected);
    }
}
