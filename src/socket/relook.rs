//! When to look again at a socket file that an event just showed, but that refused the
//! probe: bound, `listen()` not yet called.
//!
//! # The race
//!
//! A listener creates its socket file with `bind()` — a directory event, which wakes the
//! waiter — and becomes connectable only at `listen()`, which nothing reports. Node makes
//! the two calls 40–250 µs apart (measured with pi, docs/performance.md; longer when the
//! machine preempts it in between). A look in that gap is refused, and before these
//! re-looks the backoff's next step, a millisecond on tokio's timer, came 1–2.5 ms later:
//! that tick, not the listener, set the waiter's latency.
//!
//! So an event opens a *window* of [`WINDOW`]: while the socket file keeps refusing in
//! it, the waiter looks again after a quarter of the time since the event, at least
//! [`STEP_MIN`] and at most [`STEP_MAX`], each on a sub-millisecond timer
//! (`fine_timer.rs`). A listener that listens inside the window is seen at most a
//! quarter of its bind → listen gap (and at most `STEP_MAX`) after it, plus the wake-up.
//! When the window has passed, the ordinary backoff takes over (1 ms, doubling, up to the
//! poll interval).
//!
//! # What it costs
//!
//! At most about fifty looks per event (fifteen in the first millisecond, then four per
//! millisecond), and none at all without an event: an idle waiter, or one facing a
//! stale socket file that nobody touches, never opens a window. A file that stays bound
//! and never listens costs one window per directory event, then the backoff's looks.

use std::time::{Duration, Instant};

/// How long after an event a refusing socket file is looked at on the fine timer.
pub(super) const WINDOW: Duration = Duration::from_millis(10);
/// The shortest delay between two re-looks (the first one's).
pub(super) const STEP_MIN: Duration = Duration::from_micros(20);
/// The longest delay between two re-looks inside the window.
pub(super) const STEP_MAX: Duration = Duration::from_micros(250);

/// The re-look schedule after one event. On the real clock (`std`'s), as the fine timer
/// and the listener are: a test that pauses tokio's clock does not stretch the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Relook {
    /// When the event woke the waiter.
    opened: Instant,
}

impl Relook {
    /// A window opened by an event seen at `opened`.
    pub(super) fn opened_at(opened: Instant) -> Self {
        Self { opened }
    }

    /// The delay before the next re-look, as of `now`: a quarter of the time since the
    /// event, within [`STEP_MIN`]..=[`STEP_MAX`], and never past the window's end.
    /// `None` once the window has passed (the backoff's turn).
    pub(super) fn next_delay(&self, now: Instant) -> Option<Duration> {
        let since = now.saturating_duration_since(self.opened);
        let left = WINDOW.checked_sub(since).filter(|left| !left.is_zero())?;
        Some((since / 4).clamp(STEP_MIN, STEP_MAX).min(left))
    }
}
