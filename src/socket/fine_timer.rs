//! A sleep finer than tokio's timer, for the waiter's re-looks at a socket file that is
//! bound but not yet listening (see `relook.rs`).
//!
//! tokio's timer wheel counts whole milliseconds, and its reactor sleeps in
//! `epoll_wait` with a millisecond timeout: a 50 µs `tokio::time::sleep` lasts 1–2 ms.
//! On Linux this is a `timerfd` (CLOCK_MONOTONIC, one-shot, no timer slack) registered
//! with the reactor: the task sleeps like any other I/O wait, and the kernel wakes it
//! when the interval is up. Nothing spins. Elsewhere (macOS, FreeBSD) it is tokio's
//! sleep, so there the re-looks come a millisecond apart, as the backoff's first step.
//!
//! The timer holds one descriptor. The waiter creates it only when it needs a re-look and
//! drops it when the re-look window closes, so an idle waiter holds none.

use std::time::Duration;

/// A one-shot sleep with microsecond resolution, reusable: each [`Self::sleep`] re-arms
/// it.
#[derive(Debug)]
pub(super) struct FineTimer {
    #[cfg(target_os = "linux")]
    fd: tokio::io::unix::AsyncFd<linux::TimerFd>,
}

impl FineTimer {
    /// A timer on the current runtime's reactor.
    ///
    /// # Errors
    ///
    /// The OS's refusal (EMFILE, ENFILE, ENOMEM) or the reactor's; the caller then sleeps
    /// with tokio's timer instead.
    pub(super) fn new() -> std::io::Result<Self> {
        #[cfg(target_os = "linux")]
        {
            Ok(Self {
                fd: linux::TimerFd::registered()?,
            })
        }
        #[cfg(not(target_os = "linux"))]
        {
            Ok(Self {})
        }
    }

    /// Resolves `duration` from now. Cancel-safe: a sleep dropped before it fired leaves
    /// nothing behind that the next one could mistake for its own expiry (arming resets
    /// the kernel's expiry count, and a stale readiness is read away).
    pub(super) async fn sleep(&mut self, duration: Duration) {
        #[cfg(target_os = "linux")]
        {
            if linux::arm(self.fd.get_ref(), duration).is_err() {
                // Cannot arm: a millisecond tick is late, never wrong.
                return tokio::time::sleep(duration).await;
            }
            loop {
                let Ok(mut ready) = self.fd.readable().await else {
                    return tokio::time::sleep(duration).await;
                };
                match ready.try_io(|fd| linux::expired(fd.get_ref())) {
                    Ok(Ok(())) => return,
                    // Not (yet) expired: readiness left over from an earlier, dropped sleep.
                    Err(_would_block) => {}
                    Ok(Err(_)) => return tokio::time::sleep(duration).await,
                }
            }
        }
        #[cfg(not(target_os = "linux"))]
        {
            tokio::time::sleep(duration).await;
        }
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use std::os::fd::{AsFd, AsRawFd, RawFd};
    use std::time::Duration;

    use nix::errno::Errno;
    use nix::sys::time::TimeSpec;
    use nix::sys::timerfd::{ClockId, Expiration, TimerFlags, TimerSetTimeFlags};
    use tokio::io::Interest;
    use tokio::io::unix::AsyncFd;

    use crate::sys::{OwnsFd, register_owned_fd};

    /// nix's `TimerFd` owns its descriptor but only offers `AsFd`; the reactor wants
    /// `AsRawFd`.
    #[derive(Debug)]
    pub(super) struct TimerFd(pub(super) nix::sys::timerfd::TimerFd);

    impl AsRawFd for TimerFd {
        fn as_raw_fd(&self) -> RawFd {
            self.0.as_fd().as_raw_fd()
        }
    }

    // `TimerFd` owns its descriptor and never swaps it.
    impl OwnsFd for TimerFd {}

    impl TimerFd {
        /// A non-blocking, close-on-exec monotonic timer, registered for readability.
        pub(super) fn registered() -> std::io::Result<AsyncFd<Self>> {
            let timer = nix::sys::timerfd::TimerFd::new(
                ClockId::CLOCK_MONOTONIC,
                TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
            )?;
            register_owned_fd(Self(timer), Interest::READABLE)
        }
    }

    /// Arms `timer` to expire once, `duration` from now (at least a nanosecond: a zero
    /// expiry would disarm it instead).
    pub(super) fn arm(timer: &TimerFd, duration: Duration) -> nix::Result<()> {
        let duration = duration.max(Duration::from_nanos(1));
        timer.0.set(
            Expiration::OneShot(TimeSpec::from_duration(duration)),
            TimerSetTimeFlags::empty(),
        )
    }

    /// Reads the expiry count: `Ok` once the timer fired, `WouldBlock` before.
    pub(super) fn expired(timer: &TimerFd) -> std::io::Result<()> {
        let mut count = [0u8; 8];
        match nix::unistd::read(timer.0.as_fd(), &mut count) {
            Ok(_) => Ok(()),
            Err(Errno::EAGAIN) => Err(std::io::ErrorKind::WouldBlock.into()),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::os::fd::{AsFd, AsRawFd};
    use std::time::{Duration, Instant};

    use nix::fcntl::{FcntlArg, FdFlag, OFlag, fcntl};

    use super::FineTimer;

    /// The timer is a timerfd the reactor watches, close-on-exec (a child spawned during
    /// a re-look window must not inherit it) and non-blocking, and a sleep lasts at least
    /// what it was asked.
    #[tokio::test]
    async fn the_timer_is_a_private_timerfd_and_sleeps_what_it_is_asked() {
        let mut timer = FineTimer::new().expect("a timer");
        let fd = timer.fd.as_raw_fd();
        let target = std::fs::read_link(format!("/proc/self/fd/{fd}")).expect("its fd");
        assert_eq!(target.to_string_lossy(), "anon_inode:[timerfd]");
        let borrowed = timer.fd.get_ref().0.as_fd();
        let fd_flags =
            FdFlag::from_bits_truncate(fcntl(borrowed, FcntlArg::F_GETFD).expect("F_GETFD"));
        assert!(fd_flags.contains(FdFlag::FD_CLOEXEC), "{fd_flags:?}");
        let fl_flags =
            OFlag::from_bits_truncate(fcntl(borrowed, FcntlArg::F_GETFL).expect("F_GETFL"));
        assert!(fl_flags.contains(OFlag::O_NONBLOCK), "{fl_flags:?}");
        // A sleep dropped after its timer fired leaves the readiness behind; the next
        // sleep must not take it for its own expiry.
        {
            let dropped = timer.sleep(Duration::from_micros(100));
            let _ = tokio::time::timeout(Duration::from_millis(1), dropped).await;
        }
        std::thread::sleep(Duration::from_millis(1));
        for asked in [Duration::from_micros(300), Duration::from_millis(3)] {
            let started = Instant::now();
            timer.sleep(asked).await;
            assert!(
                started.elapsed() >= asked,
                "{asked:?} took {:?}",
                started.elapsed()
            );
        }
    }
}
