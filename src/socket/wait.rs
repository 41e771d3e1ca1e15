//! [`await_socket_alive`]: observe, and when the verdict is "wait", sleep until inotify,
//! a re-look after an event (`relook.rs`) or a short backoff says to look again.

use std::path::Path;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::fine_timer::FineTimer;
use super::notify::{DirWatch, Wake};
use super::relook::Relook;
use super::{AwaitSocketError, Inspection, Verdict, WaitOptions, inspect_and_probe, verdict};
use crate::backend::Backend;

/// Resolves once `path` accepts a connection from a listener of our uid; fails at once
/// on a forged address ([`AwaitSocketError::Forged`]: nothing was ever sent to it), on a
/// path the backend can never reach ([`AwaitSocketError::PathTooLong`], portable only),
/// and with
/// [`AwaitSocketError::Cancelled`] as soon as `cancel` fires. It never gives up on its
/// own: absent, dead and indeterminate all mean "wait".
///
/// Promptness: the socket's parent directory is watched with inotify, so a socket file
/// that appears wakes the waiter within milliseconds. Because `bind()` creates the file
/// (an event) but `listen()` comes later (no event), every look that does not find a
/// live socket is followed by another after an exponential backoff — 1 ms, doubling,
/// capped at `options.poll_interval`, reset by every inotify event. Right after an
/// event, a socket file that refuses the connect (bound, `listen()` not yet called) is
/// looked at again after a quarter of the time since the event (20–250 µs), on a
/// sub-millisecond timer, for 10 ms after the event: node binds 40–250 µs before it
/// listens, and a tick of tokio's millisecond timer (1–2.5 ms) would otherwise set the
/// latency (`relook.rs`; at most about fifty looks per event, none without one).
/// While the directory
/// is watched and nothing sits at the path, the waiter sleeps the full poll interval at
/// once (only an event can change that). Without inotify (no
/// parent directory yet, EMFILE, ENOSPC) the same backoff is the poll, and
/// the watch is re-added on every round. Idle cost once the cap is reached: one
/// inspection and at most one connect per poll interval.
///
/// With the portable backend ([`WaitOptions::backend`]) on Linux the backoff is the
/// *only* wake-up: a socket that appears after the waiter reached its cap is seen up to
/// one `poll_interval` later (half of it on average), not within milliseconds. Lower
/// `poll_interval` to trade idle CPU for detection latency. On macOS and FreeBSD the
/// portable backend is woken by kqueue (`EVFILT_VNODE` on the directory) as inotify
/// wakes the native one — compiled there, but not run by this project's tests.
///
/// The future is `Send`. Returning or being dropped removes the inotify watch at once;
/// the inotify descriptor itself is closed `notify::CLOSE_DELAY` (50 ms)
/// later by a closer thread, because closing it right away blocks for a kernel grace
/// period (5–20 ms) that would delay this very return. It needs a tokio runtime with IO
/// and time enabled.
///
/// # Errors
///
/// [`AwaitSocketError::Forged`](super::AwaitSocketError::Forged) at once for an
/// address that can never become ours (symlink, not a socket, a foreign owner);
/// [`AwaitSocketError::Cancelled`](super::AwaitSocketError::Cancelled) once `cancel`
/// fires; a path this platform cannot reach fails at once as well.
pub async fn await_socket_alive(
    path: &Path,
    cancel: CancellationToken,
    options: WaitOptions,
) -> Result<(), AwaitSocketError> {
    let cancelled = || AwaitSocketError::Cancelled {
        path: path.to_path_buf(),
    };
    check_reachable(path, options.backend)?;

    let mut watch = DirWatch::new(path, options.backend);
    let mut backoff = Backoff::new(options.poll_interval);
    // The re-look window the last event opened, and its fine timer while one is needed.
    let mut relook: Option<Relook> = None;
    let mut fine: Option<FineTimer> = None;
    loop {
        if cancel.is_cancelled() {
            return Err(cancelled());
        }
        // Armed before looking, so a change right after the look still wakes us.
        let armed = watch.arm();
        let observation = tokio::select! {
            biased;
            () = cancel.cancelled() => return Err(cancelled()),
            observation = inspect_and_probe(path, options.probe_timeout, options.backend) => observation,
        };
        match verdict(&observation) {
            Verdict::Alive => return Ok(()),
            Verdict::Forged(conflict) => {
                return Err(AwaitSocketError::Forged {
                    path: path.to_path_buf(),
                    conflict,
                });
            }
            Verdict::Wait => {}
        }
        // An event just showed the socket file and it refused: its owner is between
        // bind() and listen(), microseconds to a millisecond apart (longer if our
        // wake-up preempted it). Look again after a short sleep on the fine timer rather
        // than a tick of tokio's (1–2 ms), while the event's window lasts.
        let quick = match &relook {
            Some(window) if bound_not_listening(&observation) => {
                window.next_delay(std::time::Instant::now())
            }
            _ => None,
        };
        if quick.is_none() {
            // Window passed, or nothing there that is about to listen: the backoff's
            // turn, and no descriptor kept for a timer nobody needs.
            relook = None;
            fine = None;
        } else if fine.is_none() {
            // Out of descriptors: tokio's timer instead (a tick late, never wrong).
            fine = FineTimer::new().ok();
        }
        if armed && observation.inspection == Inspection::Absent {
            // Nothing at the path and the directory is watched: only an event (create,
            // move in) can change that, so there is no bind→listen gap to poll for.
            backoff.saturate();
        }
        // checked_add: a caller may pass an enormous poll interval ("inotify only").
        let delay = quick.unwrap_or_else(|| backoff.next_delay());
        let deadline = Instant::now().checked_add(delay).unwrap_or_else(far_future);
        tokio::select! {
            biased;
            () = cancel.cancelled() => return Err(cancelled()),
            wake = watch.changed() => {
                if wake == Wake::Changed {
                    backoff.reset();
                    relook = Some(Relook::opened_at(std::time::Instant::now()));
                }
            }
            () = pause(fine.as_mut().filter(|_| quick.is_some()), deadline) => {}
        }
    }
}

/// Whether `backend` can ever reach a socket at `path`: the portable probe connects by
/// path, so one longer than `sun_path` never can ([`AwaitSocketError::PathTooLong`]).
/// [`await_socket_alive`] fails with this at once; a dispatcher can ask before it
/// starts a child it could never see listening (the production spawn does).
///
/// # Errors
///
/// [`AwaitSocketError::PathTooLong`] for a path beyond `sun_path` with the portable
/// backend; never with the Linux native one.
pub fn check_reachable(path: &Path, backend: Backend) -> Result<(), AwaitSocketError> {
    let unreachable = (!backend.is_linux_native())
        .then(|| super::portable::too_long(path))
        .flatten();
    match unreachable {
        Some(len) => Err(AwaitSocketError::PathTooLong {
            path: path.to_path_buf(),
            len,
            max: super::SUN_PATH_MAX,
        }),
        None => Ok(()),
    }
}

/// Sleeps until `deadline`: on `fine` when given (a re-look, microseconds away), else on
/// tokio's millisecond timer.
async fn pause(fine: Option<&mut FineTimer>, deadline: Instant) {
    match fine {
        Some(timer) => {
            timer
                .sleep(deadline.saturating_duration_since(Instant::now()))
                .await;
        }
        None => tokio::time::sleep_until(deadline).await,
    }
}

/// A socket file of ours that refused the connect: bound, not (yet) listening.
pub(super) fn bound_not_listening(observation: &super::SocketState) -> bool {
    observation.inspection == Inspection::SocketFile
        && matches!(observation.probe, Some(super::Probe::Dead(_)))
}

/// A deadline that never comes in practice (about 30 years out), for delays that would
/// overflow the clock.
pub(super) fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400 * 365 * 30)
}

/// Exponential backoff between looks: `MIN`, doubling, capped at the poll interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Backoff {
    next: Duration,
    cap: Duration,
}

impl Backoff {
    /// The first delay after a reset.
    pub(super) const MIN: Duration = Duration::from_millis(1);

    /// A backoff capped at `poll_interval` (at least [`Self::MIN`], so a zero interval
    /// cannot turn the waiter into a busy loop).
    pub(super) fn new(poll_interval: Duration) -> Self {
        Self {
            next: Self::MIN,
            cap: poll_interval.max(Self::MIN),
        }
    }

    /// The delay to wait now; the one after it is twice as long, up to the cap.
    pub(super) fn next_delay(&mut self) -> Duration {
        let delay = self.next.min(self.cap);
        self.next = delay.saturating_mul(2).min(self.cap);
        delay
    }

    /// Straight to the cap: nothing to look for until something wakes us.
    pub(super) fn saturate(&mut self) {
        self.next = self.cap;
    }

    /// Back to [`Self::MIN`]: something changed, a listener may be about to `listen()`.
    pub(super) fn reset(&mut self) {
        self.next = Self::MIN.min(self.cap);
    }
}
