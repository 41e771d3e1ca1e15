//! Each change at the socket path that the inotify watch must wake the waiter for, with
//! the poll ten seconds away ([`inotify_only`]): a socket moved in, a stale socket given
//! to another uid. (A socket bound in place, the directory removed or moved away and
//! replaced: `directories.rs`.) Each change comes 1.1 s after the waiter's last wake,
//! where its backoff's next look is 0.9 s away (or, with nothing at the path, only an
//! event can wake it): seen within [`PROMPT`], it was the event that woke it.

use entwurf_test_support::ci::skip_unless_ci;

use super::*;

/// Waits until the backoff's looks are far apart (they land at 2^n − 1 ms after the last
/// wake: …, 1023, 2047; 1.1 s leaves 0.9 s to the next one, so a late sleep on a busy
/// machine still changes nothing), and checks the waiter is still waiting.
async fn settle_into_backoff(task: &JoinHandle<(Result<(), AwaitSocketError>, Instant)>) {
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(!task.is_finished(), "the waiter settled before the change");
}

#[tokio::test]
async fn a_listening_socket_moved_into_place_wakes_the_waiter() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (control, elsewhere) = (dir.path().join("control"), dir.path().join("elsewhere"));
    std::fs::create_dir(&control)?;
    std::fs::create_dir(&elsewhere)?;
    let path = control.join("citizen.sock");
    let cancel = CancellationToken::new();
    let _cancel_on_exit = cancel.clone().drop_guard();
    let task = spawn_await(&path, &cancel, inotify_only());
    settle_into_backoff(&task).await;
    // Bound and listening in another directory, then renamed onto the path: the only
    // event in the watched directory is the move in (no create there).
    let staged = elsewhere.join("staged.sock");
    let _listener = UnixListener::bind(&staged)?;
    std::fs::rename(&staged, &path)?;
    let moved_at = Instant::now();
    let (result, settled_at) = settle(task).await?;
    result?;
    let latency = settled_at.duration_since(moved_at);
    eprintln!("listening socket moved in: detected {latency:?} after the rename");
    assert!(latency < PROMPT, "took {latency:?}");
    Ok(())
}

#[tokio::test]
async fn a_stale_socket_given_to_another_uid_wakes_the_waiter_as_forged() -> TestResult {
    if !nix::unistd::geteuid().is_root() {
        skip_unless_ci("giving a socket file to another uid needs root");
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("citizen.sock");
    // A stale socket of ours (its listener gone): the waiter waits on it.
    drop(UnixListener::bind(&path)?);
    let cancel = CancellationToken::new();
    let _cancel_on_exit = cancel.clone().drop_guard();
    let task = spawn_await(&path, &cancel, inotify_only());
    settle_into_backoff(&task).await;
    // Only its owner changes: an attribute event, nothing created, moved or removed.
    let nobody = 65534;
    std::os::unix::fs::lchown(&path, Some(nobody), None)?;
    let changed_at = Instant::now();
    let (result, settled_at) = settle(task).await?;
    let latency = settled_at.duration_since(changed_at);
    eprintln!("stale socket chowned: detected {latency:?} after the chown");
    expect_forged(result, &path, AddressConflict::ForeignOwner { uid: nobody });
    assert!(latency < PROMPT, "took {latency:?}");
    Ok(())
}
