//! Paths that launch: each observation, a launch that may have opened a window, a failed
//! release, and a resume dropped midway.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use nix::errno::Errno;

use super::*;

#[tokio::test(start_paused = true)]
async fn socket_alive_at_once_keeps_both_receipts_and_releases_once() {
    let world = World::new();
    let fake = Fake::new(opens(Some(0), None), &world);
    let done = world.run(&fake).await.expect("resumed");
    assert_eq!(done.launch, receipt());
    assert_eq!(
        done.observation,
        ObservationReceipt::SocketAlive {
            after: Duration::ZERO
        }
    );
    assert_eq!(done.release, ReleaseOutcome::Released);
    assert_eq!(world.releases(), 1);
    assert!(!world.lock_exists());

    let launched = fake.launched.lock().expect("lock").clone();
    let [request] = launched.as_slice() else {
        panic!("one launch, got {launched:?}")
    };
    assert_eq!(request.cwd, world.cwd);
    assert_eq!(request.program, "pi");
    let file = world.session_file.to_str().expect("utf-8");
    assert_eq!(
        request.args,
        [
            "--entwurf-control",
            "--session",
            file,
            "--provider",
            "anthropic",
            "--model",
            "claude"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn socket_alive_later_is_reported_in_milliseconds() {
    let mut world = World::new();
    // Only inotify may wake the waiter in time: with a 10 s poll interval, its backoff
    // (1 ms, doubling) would first look again at 2047 ms, 47 ms late. The clock is
    // paused and the bind's inotify event is ready before tokio advances it, so the
    // inotify path sees the socket at exactly 2 s: a 5 ms bound is slack, not a race.
    world.options.shared.poll_interval = Duration::from_secs(10);
    let fake = Fake::new(opens(Some(2_000), Some(20_000)), &world);
    let done = world.run(&fake).await.expect("resumed");
    let ObservationReceipt::SocketAlive { after } = done.observation else {
        panic!("{:?}", done.observation)
    };
    let late = after.saturating_sub(Duration::from_secs(2));
    assert!(
        after >= Duration::from_secs(2) && late <= Duration::from_millis(5),
        "socket-alive after {after:?}: not woken by inotify"
    );
    assert_eq!(world.releases(), 1);
    assert!(!world.lock_exists());
}

#[tokio::test(start_paused = true)]
async fn a_pane_that_exits_is_pane_exited_not_a_thirty_second_wait() {
    let world = World::new();
    let fake = Fake::new(opens(None, Some(40)), &world);
    let done = world.run(&fake).await.expect("resumed");
    assert_eq!(
        done.observation,
        ObservationReceipt::PaneExited {
            after: Duration::from_millis(40),
            status: None,
        }
    );
    // The fake cannot tell the status, and the receipt says so rather than guess.
    assert_eq!(
        done.observation.to_string(),
        "pane-exited after 40 ms (exit status unknown)"
    );
    assert_eq!((world.releases(), world.lock_exists()), (1, false));
}

#[tokio::test(start_paused = true)]
async fn nothing_within_the_bound_is_unobserved_and_still_released() {
    let world = World::new();
    let fake = Fake::new(opens(None, None), &world);
    let done = world.run(&fake).await.expect("resumed");
    assert_eq!(
        done.observation,
        ObservationReceipt::Unobserved {
            after: TIMEOUT,
            reason: UnobservedReason::TimedOut
        }
    );
    assert_eq!((world.releases(), world.lock_exists()), (1, false));
}

#[tokio::test(start_paused = true)]
async fn a_pane_watch_that_cannot_start_is_reported_not_timed_out() {
    let world = World::new();
    let fake = Fake::new(Act::PaneWatchFails, &world);
    let done = world.run(&fake).await.expect("resumed");
    let ObservationReceipt::Unobserved {
        reason: UnobservedReason::WatchFailed(why),
        after,
    } = &done.observation
    else {
        panic!("{:?}", done.observation)
    };
    assert!(why.contains("ENOSYS"), "{why}");
    assert_eq!(*after, Duration::ZERO);
    // The printed receipt says why too: "unobserved" alone would read as a timeout.
    let shown = done.observation.to_string();
    assert!(shown.contains("ENOSYS"), "{shown}");
    assert_eq!(world.releases(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_dead_socket_file_is_a_leftover_and_does_not_refuse() {
    let world = World::new();
    drop(UnixListener::bind(&world.socket).expect("bind"));
    let fake = Fake::new(opens(Some(5), None), &world);
    let done = world.run(&fake).await.expect("resumed");
    assert_eq!(done.observation.kind(), "socket-alive");
    assert_eq!(world.releases(), 1);
}

#[tokio::test(start_paused = true)]
async fn an_unparsable_handle_releases_and_says_a_window_may_be_open() {
    let world = World::new();
    let fake = Fake::new(
        Act::Fails(|| LaunchError::UnparsableHandle {
            output: "garbage".into(),
        }),
        &world,
    );
    let error = world.run(&fake).await.expect_err("uncertain");
    let VisibleError::LaunchUncertain { release, .. } = &error else {
        panic!("{error:?}")
    };
    assert_eq!(*release, ReleaseOutcome::Released);
    assert!(crate::error_chain(&error).contains("a window may be open"));
    assert_eq!(world.releases(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_failed_release_is_an_error_naming_the_lock_and_keeps_the_receipts() {
    let mut world = World::new();
    let counted = world.releases.clone();
    world.options.shared.release = Arc::new(move |claim| {
        counted.fetch_add(1, Ordering::SeqCst);
        Err(LockIoError {
            op: "remove lock file",
            path: claim.lock_path().to_path_buf(),
            source: std::io::Error::from(Errno::EROFS),
        })
    });
    let fake = Fake::new(opens(Some(0), None), &world);
    let error = world.run(&fake).await.expect_err("release failed");
    let VisibleError::Release {
        lock_path,
        launch,
        observation,
        ..
    } = &error
    else {
        panic!("{error:?}")
    };
    assert_eq!(
        *lock_path,
        crate::lock::lock_path(&world.options.shared.lock_dir, &world.gid)
    );
    assert!(
        error.to_string().contains(&format!("{lock_path:?}")),
        "{error}"
    );
    assert_eq!(launch.as_ref(), Some(&receipt()));
    assert_eq!(observation.as_ref().map(|o| o.kind()), Some("socket-alive"));
    assert_eq!(world.releases(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_resume_dropped_midway_still_releases_exactly_once() {
    let world = World::new();
    let fake = Fake::new(opens(None, None), &world);
    let abandoned = tokio::time::timeout(Duration::from_secs(1), world.run(&fake)).await;
    assert!(abandoned.is_err(), "the observation was still running");
    assert_eq!(fake.launches(), 1);
    assert_eq!((world.releases(), world.lock_exists()), (1, false));
}

#[tokio::test(start_paused = true)]
async fn a_pane_that_exits_as_its_socket_binds_is_reported_as_exited() {
    let world = World::new();
    let fake = Fake::new(opens(Some(0), Some(0)), &world);
    let done = world.run(&fake).await.expect("resumed");
    assert_eq!(done.observation.kind(), "pane-exited");
    assert_eq!(world.releases(), 1);
}
