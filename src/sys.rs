//! OS glue shared by the socket and child modules.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// A type that owns its descriptor: the fd stays open and unchanged for the value's whole
/// life. That is exactly the contract tokio's (now `unsafe`) `AsyncFd` constructor asks
/// for; implement this only for such owners.
pub(crate) trait OwnsFd: AsRawFd {}

impl OwnsFd for OwnedFd {}

/// Registers an owned descriptor with the tokio reactor.
///
/// tokio deprecated the safe `AsyncFd` constructor in favour of an `unsafe` one, because
/// an arbitrary `AsRawFd` type may close or swap its descriptor while registered. The
/// [`OwnsFd`] bound rules that out, so the safe form is sound here and the crate keeps its
/// single `unsafe` (the documented `pre_exec`).
pub(crate) fn register_owned_fd<T: OwnsFd>(inner: T, interest: Interest) -> io::Result<AsyncFd<T>> {
    #[expect(
        deprecated,
        reason = "sound for descriptor owners (OwnsFd); the replacement is unsafe"
    )]
    AsyncFd::with_interest(inner, interest)
}

/// Runs blocking `work` (file or process I/O) on tokio's blocking pool, so it never
/// stalls an async worker, and hands its result back. A panic in `work` is resumed here,
/// exactly as if it had been called inline.
///
/// # Errors
///
/// The [`JoinError`](tokio::task::JoinError) of a task that was cancelled because its
/// runtime is shutting down: whether `work` ran is then unknown.
pub(crate) async fn off_async<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, tokio::task::JoinError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(value) => Ok(value),
        Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
        Err(join) => Err(join),
    }
}
