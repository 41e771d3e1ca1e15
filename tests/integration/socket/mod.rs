//! Socket observation (docs/design.md §5) against real OS objects: real unix sockets,
//! symlinks, files and directories in temp dirs, a real tokio runtime and real timers.
//!
//! Every wait has a deadline (`tokio::time::timeout`), so no test can hang. Latency
//! assertions are deliberately generous (tens of milliseconds) and use a poll interval of
//! several seconds where they mean to prove that inotify, not polling, woke the waiter.

use std::error::Error;
use std::io::ErrorKind;
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixDatagram, UnixListener};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use entwurf_test_support::sockets::bound_not_listening;
use entwurf_v2_spawn::Backend;
use entwurf_v2_spawn::socket::{
    AddressConflict, AwaitSocketError, Inspection, Probe, ProbeDoubt, SUN_PATH_MAX, SocketState,
    Verdict, WaitOptions, await_socket_alive, inspect_and_probe, inspect_for_probe, verdict,
};
use nix::errno::Errno;
use nix::sys::socket::{
    AddressFamily, Backlog, SockFlag, SockType, UnixAddr, connect, listen, socket,
};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

type TestResult = Result<(), Box<dyn Error>>;

const PROBE_TIMEOUT: Duration = Duration::from_millis(300);
/// Upper bound for a detection or cancellation latency that should take milliseconds
/// (measured: well under 10 ms; the margin absorbs a loaded CI machine).
const PROMPT: Duration = Duration::from_millis(100);
/// Deadline for an await that must settle without waiting at all (a forged path, an
/// already cancelled token): anything but "wait forever" proves the point.
const AT_ONCE: Duration = Duration::from_secs(1);
/// Deadline for whole awaits, so a bug fails the test instead of hanging it.
const DEADLINE: Duration = Duration::from_secs(5);

/// Options whose poll interval is far longer than any latency we assert: passing with
/// them proves the wake came from inotify.
fn inotify_only() -> WaitOptions {
    WaitOptions::default()
        .with_poll_interval(Duration::from_secs(10))
        .with_probe_timeout(PROBE_TIMEOUT)
        .with_backend(Backend::Native)
}

/// The default options with `backend`.
fn on(backend: Backend) -> WaitOptions {
    WaitOptions::default().with_backend(backend)
}

/// Options under which a change is seen well within [`PROMPT`]: natively by inotify alone
/// ([`inotify_only`]); the portable backend has no notification, so its poll is its
/// wake-up and must be short (its detection latency is up to one poll interval).
fn prompt_wake(backend: Backend) -> WaitOptions {
    match backend {
        Backend::Native => inotify_only(),
        Backend::Portable => WaitOptions::default()
            .with_poll_interval(Duration::from_millis(20))
            .with_probe_timeout(PROBE_TIMEOUT)
            .with_backend(backend),
    }
}

/// Layer 1 with `backend`'s mechanism.
fn inspect_on(path: &Path, backend: Backend) -> Inspection {
    inspect_for_probe(path, backend).0
}

/// Asserts that nothing ever connected to `listener`.
fn assert_never_connected(listener: &UnixListener) -> TestResult {
    listener.set_nonblocking(true)?;
    match listener.accept() {
        Err(e) if e.kind() == ErrorKind::WouldBlock => Ok(()),
        Err(e) => Err(format!("accept failed unexpectedly: {e}").into()),
        Ok(_) => Err("the listener received a connection".into()),
    }
}

/// Spawns an await on `path`, recording when it settled.
fn spawn_await(
    path: &Path,
    cancel: &CancellationToken,
    options: WaitOptions,
) -> JoinHandle<(Result<(), AwaitSocketError>, Instant)> {
    let path = path.to_path_buf();
    let cancel = cancel.clone();
    tokio::spawn(async move {
        let result = await_socket_alive(&path, cancel, options).await;
        (result, Instant::now())
    })
}

/// Waits (bounded) for a spawned await.
async fn settle(
    task: JoinHandle<(Result<(), AwaitSocketError>, Instant)>,
) -> Result<(Result<(), AwaitSocketError>, Instant), Box<dyn Error>> {
    Ok(tokio::time::timeout(DEADLINE, task).await??)
}

fn expect_forged(result: Result<(), AwaitSocketError>, path: &Path, want: AddressConflict) {
    match result {
        Err(AwaitSocketError::Forged {
            path: got,
            conflict,
        }) => {
            assert_eq!(got, path);
            assert_eq!(conflict, want);
        }
        other => panic!("expected Forged({want:?}), got {other:?}"),
    }
}

async fn forged_now(path: &Path, backend: Backend) -> Result<(), AwaitSocketError> {
    match tokio::time::timeout(
        AT_ONCE,
        await_socket_alive(path, CancellationToken::new(), on(backend)),
    )
    .await
    {
        Ok(result) => result,
        Err(_) => panic!("a forged path must fail at once, not wait"),
    }
}

mod directories;
mod events;
mod peers;
mod verdicts;
