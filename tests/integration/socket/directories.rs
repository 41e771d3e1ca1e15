//! The control directory coming and going, and many waiters on one path.

use super::*;

#[tokio::test]
async fn a_directory_that_does_not_exist_yet_is_waited_for() -> TestResult {
    let dir = tempfile::tempdir()?;
    let control = dir.path().join("control").join("nested");
    let path = control.join("citizen.sock");
    assert_eq!(inspect_on(&path, Backend::Native), Inspection::Absent);

    let cancel = CancellationToken::new();
    let _cancel_on_exit = cancel.clone().drop_guard();
    let task = spawn_await(&path, &cancel, WaitOptions::default());
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!task.is_finished());
    std::fs::create_dir_all(&control)?;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let _listener = UnixListener::bind(&path)?;
    let listening_at = Instant::now();
    let (result, settled_at) = settle(task).await?;
    result?;
    let latency = settled_at.duration_since(listening_at);
    eprintln!("missing dir → created → listener: detected {latency:?} after listen");
    // Polling fallback, bounded by the 150 ms poll interval (plus scheduling slack).
    assert!(latency < Duration::from_millis(500), "took {latency:?}");
    Ok(())
}

#[tokio::test]
async fn a_directory_removed_and_recreated_is_watched_again() -> TestResult {
    gone_and_replaced(
        |control| std::fs::remove_dir(control),
        "removed + recreated",
    )
    .await
}

#[tokio::test]
async fn a_control_directory_moved_away_and_replaced_is_watched_again() -> TestResult {
    // The watch follows the directory's inode, not its name: moved away, it must be
    // dropped and the new directory at the path watched instead.
    gone_and_replaced(
        |control| std::fs::rename(control, control.with_file_name("moved")),
        "moved away + replaced",
    )
    .await
}

/// The control directory goes (`go`), a new one takes its place, and a listener
/// appearing in it much later must be seen by inotify alone.
async fn gone_and_replaced(go: impl FnOnce(&Path) -> std::io::Result<()>, how: &str) -> TestResult {
    let dir = tempfile::tempdir()?;
    let control = dir.path().join("control");
    std::fs::create_dir(&control)?;
    let path = control.join("citizen.sock");

    let cancel = CancellationToken::new();
    let _cancel_on_exit = cancel.clone().drop_guard();
    let task = spawn_await(&path, &cancel, inotify_only());
    tokio::time::sleep(Duration::from_millis(30)).await;
    go(&control)?;
    tokio::time::sleep(Duration::from_millis(30)).await;
    std::fs::create_dir(&control)?;
    // The change woke the waiter and restarted its backoff (1 ms, doubling); one of its
    // next looks re-adds the watch on the new directory, and then, nothing being at the
    // path, it sleeps until an event. A waiter whose watch stayed on the old directory
    // (or on nothing) would see the listener below only at a later look of its backoff
    // or its 10 s poll, hundreds of milliseconds late at the least; seen within
    // milliseconds, the new directory is watched.
    tokio::time::sleep(Duration::from_millis(1400)).await;
    assert!(!task.is_finished());
    let _listener = UnixListener::bind(&path)?;
    let listening_at = Instant::now();
    let (result, settled_at) = settle(task).await?;
    result?;
    let latency = settled_at.duration_since(listening_at);
    eprintln!("dir {how} → listener: detected {latency:?} after listen");
    assert!(latency < PROMPT, "took {latency:?}");
    Ok(())
}

#[tokio::test]
async fn a_listener_appearing_later_is_seen_by_inotify_not_the_poll() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path: PathBuf = dir.path().join("citizen.sock");
    let cancel = CancellationToken::new();
    let _cancel_on_exit = cancel.clone().drop_guard();
    let task = spawn_await(&path, &cancel, inotify_only());
    // Far from any backoff probe (they land at 2^n - 1 ms: …, 511, 1023): without the
    // inotify wake the next look would be ~300 ms after the listener appears.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(!task.is_finished());
    let _listener = UnixListener::bind(&path)?;
    let listening_at = Instant::now();
    let (result, settled_at) = settle(task).await?;
    result?;
    let latency = settled_at.duration_since(listening_at);
    eprintln!("absent → listener: detected {latency:?} after listen");
    assert!(latency < PROMPT, "took {latency:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_waiters_on_one_path_all_resolve() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("citizen.sock");
    let cancel = CancellationToken::new();
    let _cancel_on_exit = cancel.clone().drop_guard();
    let tasks: Vec<_> = (0..8)
        .map(|_| spawn_await(&path, &cancel, WaitOptions::default()))
        .collect();
    tokio::time::sleep(Duration::from_millis(30)).await;
    let _listener = UnixListener::bind(&path)?;
    for task in tasks {
        let (result, _) = settle(task).await?;
        result?;
    }
    Ok(())
}
