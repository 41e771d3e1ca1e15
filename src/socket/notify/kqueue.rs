//! Wake-ups for the portable waiter on macOS and FreeBSD: kqueue `EVFILT_VNODE` on the
//! socket's parent directory.
//!
//! A directory's vnode reports `NOTE_WRITE` when an entry is created, removed or renamed
//! in it — exactly when something may have appeared at the socket path — and
//! `NOTE_DELETE` / `NOTE_RENAME` / `NOTE_REVOKE` when the directory itself goes away,
//! after which the watch is re-armed on the path. Unlike inotify it cannot see an
//! entry's attributes change (a `chown` of the socket file); the waiter's backoff covers
//! that, as it covers `listen()`, which no mechanism reports.
//!
//! Compiled for those targets only, and *not run by this project's tests*, which run on
//! Linux (where the portable backend polls). Hence a conservative rule: any kqueue
//! error disables the watch for the rest of the wait — [`KqueueWatch::arm`] then says
//! "poll", and [`KqueueWatch::changed`] never resolves — so a misbehaving kqueue can
//! cost detection latency (back to the bounded poll) but never a busy loop or a hang.

use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use nix::fcntl::{OFlag, open};
use nix::sys::event::{EvFlags, EventFilter, FilterFlag, KEvent, Kqueue};
use nix::sys::stat::Mode;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use super::Wake;
use crate::sys::{OwnsFd, register_owned_fd};

/// nix's `Kqueue` owns its descriptor but only offers `AsFd`; the reactor wants
/// `AsRawFd`. (A kqueue descriptor is itself pollable: readable while events are queued.)
#[derive(Debug)]
struct KqueueFd(Kqueue);

impl AsRawFd for KqueueFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

// `Kqueue` owns its descriptor and never swaps it.
impl OwnsFd for KqueueFd {}

/// Events that end the watch on the directory itself.
fn gone() -> FilterFlag {
    FilterFlag::NOTE_DELETE | FilterFlag::NOTE_RENAME | FilterFlag::NOTE_REVOKE
}

/// A kqueue watch on the directory that holds the socket path.
#[derive(Debug)]
pub(in crate::socket) struct KqueueWatch {
    dir: Option<PathBuf>,
    kqueue: Option<AsyncFd<KqueueFd>>,
    /// The watched directory, held open: its knote lives as long as this descriptor.
    watched: Option<OwnedFd>,
    /// A kqueue call failed once: poll for the rest of this wait.
    disabled: bool,
}

impl KqueueWatch {
    /// Prepares (does not yet arm) a watch for the parent of `path`.
    pub(super) fn new(path: &Path) -> Self {
        let dir = path.parent().map(|p| {
            if p.as_os_str().is_empty() {
                PathBuf::from(".")
            } else {
                p.to_path_buf()
            }
        });
        Self {
            dir,
            kqueue: None,
            watched: None,
            disabled: false,
        }
    }

    /// Makes sure the watch is in place; `false` means "poll instead" this round (no
    /// directory yet, or kqueue disabled).
    pub(super) fn arm(&mut self) -> bool {
        if self.disabled {
            return false;
        }
        if self.watched.is_some() {
            return true;
        }
        let Some(dir) = &self.dir else {
            return false;
        };
        // A missing directory is no failure: poll, and try again next round.
        let Ok(watched) = open(
            dir.as_path(),
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) else {
            return false;
        };
        if self.kqueue.is_none() {
            match Kqueue::new()
                .map_err(std::io::Error::from)
                .and_then(|kqueue| register_owned_fd(KqueueFd(kqueue), Interest::READABLE))
            {
                Ok(kqueue) => self.kqueue = Some(kqueue),
                Err(_) => return self.disable(),
            }
        }
        let (Some(kqueue), Ok(ident)) = (&self.kqueue, usize::try_from(watched.as_raw_fd())) else {
            return self.disable();
        };
        let change = KEvent::new(
            ident,
            EventFilter::EVFILT_VNODE,
            EvFlags::EV_ADD | EvFlags::EV_ENABLE | EvFlags::EV_CLEAR,
            FilterFlag::NOTE_WRITE | gone(),
            0,
            0,
        );
        match kqueue
            .get_ref()
            .0
            .kevent(&[change], &mut [], Some(no_wait()))
        {
            Ok(_) => {
                self.watched = Some(watched);
                true
            }
            Err(_) => self.disable(),
        }
    }

    /// Resolves on the next change in the directory (or its end). Never resolves while
    /// nothing is watched. Cancel-safe: events are drained within a single poll.
    pub(super) async fn changed(&mut self) -> Wake {
        loop {
            let read = {
                let Some(kqueue) = &self.kqueue else {
                    return std::future::pending().await;
                };
                match kqueue.readable().await {
                    Err(_) => Read::Failed,
                    Ok(mut ready) => {
                        let mut events = [empty_event(); 8];
                        match kqueue.get_ref().0.kevent(&[], &mut events, Some(no_wait())) {
                            Ok(0) => {
                                ready.clear_ready();
                                Read::Nothing
                            }
                            Ok(n) => Read::Changed {
                                ended: events
                                    .iter()
                                    .take(n)
                                    .any(|event| event.fflags().intersects(gone())),
                            },
                            Err(_) => Read::Failed,
                        }
                    }
                }
            };
            match read {
                Read::Nothing => {}
                // From now on only the poll: `changed` pends, `arm` says "poll".
                Read::Failed => {
                    self.disable();
                }
                Read::Changed { ended } => {
                    if ended {
                        // Closing the descriptor removes its knote; re-armed on the path.
                        self.watched = None;
                    }
                    return Wake::Changed;
                }
            }
        }
    }

    /// Gives up on kqueue for this wait: the waiter polls on its backoff.
    fn disable(&mut self) -> bool {
        self.disabled = true;
        self.watched = None;
        self.kqueue = None;
        false
    }
}

/// What one drain of the kqueue found.
enum Read {
    /// A spurious readiness: nothing queued.
    Nothing,
    /// Something changed in the directory; `ended` when the directory itself went away.
    Changed { ended: bool },
    /// A kqueue call failed.
    Failed,
}

/// Storage for `kevent` to fill.
fn empty_event() -> KEvent {
    KEvent::new(
        0,
        EventFilter::EVFILT_VNODE,
        EvFlags::empty(),
        FilterFlag::empty(),
        0,
        0,
    )
}

/// A zero timeout: `kevent` only registers, or only collects what is queued.
fn no_wait() -> nix::libc::timespec {
    nix::libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    }
}
