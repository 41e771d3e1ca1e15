//! No descriptor outlives `await_socket_alive`: not the inotify instance, not a probe
//! socket, not an `O_PATH` descriptor — whether the await resolves, is forged, is
//! cancelled, or is dropped mid-wait. The inotify *watch* is gone the moment the await
//! ends; the inotify *descriptor* is closed by the closer thread within
//! a short close delay (50 ms in the library; closing it inline would block for a kernel
//! grace period).
//!
//! Its own test binary with a single test, because descriptor counts are per process and
//! tests in one binary run in parallel threads.

use std::error::Error;
use std::os::unix::net::UnixListener;
use std::time::Duration;

use entwurf_v2_spawn::socket::{AwaitSocketError, WaitOptions, await_socket_alive};
use tokio_util::sync::CancellationToken;

type TestResult = Result<(), Box<dyn Error>>;

/// Every open descriptor of this process, as `fd -> target` lines, sorted.
fn open_fds() -> Result<Vec<String>, Box<dyn Error>> {
    let mut fds: Vec<String> = entwurf_procfs::open_fds()?
        .into_iter()
        .map(|(fd, target)| format!("{fd} -> {target}"))
        .collect();
    fds.sort();
    Ok(fds)
}

/// Inotify watches held by this process (`inotify wd:` lines in `/proc/self/fdinfo`).
fn inotify_watches() -> Result<usize, Box<dyn Error>> {
    Ok(entwurf_procfs::fdinfo()?
        .values()
        .map(|info| {
            info.lines()
                .filter(|l| l.starts_with("inotify wd:"))
                .count()
        })
        .sum())
}

fn inotify_count(fds: &[String]) -> usize {
    fds.iter()
        .filter(|l| l.ends_with("anon_inode:inotify"))
        .count()
}

#[tokio::test]
async fn no_descriptor_outlives_an_await() -> TestResult {
    let dir = tempfile::tempdir()?;
    let absent = dir.path().join("absent.sock");
    let live = dir.path().join("live.sock");
    let forged = dir.path().join("forged.sock");
    std::fs::write(&forged, b"")?;
    let listener = UnixListener::bind(&live)?;
    // Warm up: the first await may lazily create runtime-wide resources (timer wheel,
    // reactor registrations) that are not ours and live as long as the runtime.
    let cancel = CancellationToken::new();
    cancel.cancel();
    let _ = await_socket_alive(&absent, cancel, WaitOptions::default()).await;

    // Let the warm-up's descriptors settle (none expected: it never armed a watch).
    tokio::time::sleep(Duration::from_millis(100)).await;
    let before = open_fds()?;
    let watches_before = inotify_watches()?;

    // 1. Cancelled while waiting (inotify armed on the temp dir).
    let cancel = CancellationToken::new();
    let waiter = {
        let cancel = cancel.clone();
        let absent = absent.clone();
        tokio::spawn(
            async move { await_socket_alive(&absent, cancel, WaitOptions::default()).await },
        )
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let during = open_fds()?;
    assert_eq!(
        inotify_count(&during),
        inotify_count(&before) + 1,
        "the waiter should hold exactly one inotify instance while waiting: {during:#?}"
    );
    assert_eq!(
        inotify_watches()?,
        watches_before + 1,
        "the waiter should hold exactly one inotify watch while waiting"
    );
    cancel.cancel();
    let result = tokio::time::timeout(Duration::from_secs(5), waiter).await??;
    assert!(
        matches!(result, Err(AwaitSocketError::Cancelled { .. })),
        "{result:?}"
    );

    // 2. Dropped mid-wait (the future is dropped by the timeout, never cancelled).
    let dropped = tokio::time::timeout(
        Duration::from_millis(50),
        await_socket_alive(&absent, CancellationToken::new(), WaitOptions::default()),
    )
    .await;
    assert!(
        dropped.is_err(),
        "an absent socket must not resolve: {dropped:?}"
    );

    // 3. Resolved on a live listener.
    tokio::time::timeout(
        Duration::from_secs(5),
        await_socket_alive(&live, CancellationToken::new(), WaitOptions::default()),
    )
    .await??;

    // 4. Forged.
    let result = tokio::time::timeout(
        Duration::from_secs(5),
        await_socket_alive(&forged, CancellationToken::new(), WaitOptions::default()),
    )
    .await?;
    assert!(
        matches!(result, Err(AwaitSocketError::Forged { .. })),
        "{result:?}"
    );

    // Every watch is removed by the time each await ends...
    assert_eq!(
        inotify_watches()?,
        watches_before,
        "an inotify watch outlived an await"
    );
    // ...and the descriptors are closed shortly after (bounded, not timing-sensitive:
    // a loaded machine only makes the loop take longer, up to the generous deadline).
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut after = open_fds()?;
    while after != before && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
        after = open_fds()?;
    }
    assert_eq!(before, after, "descriptors differ after the awaits");
    drop(listener);
    Ok(())
}
