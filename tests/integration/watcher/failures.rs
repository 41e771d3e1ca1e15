//! Watchers, signals and releases that fail, and a missing lock.

use super::*;

#[tokio::test(start_paused = true)]
async fn a_socket_watcher_failing_to_start_retains_and_escalates_to_kill() {
    let r = run(Script {
        socket_start_fails: true,
        ..Script::default()
    })
    .await;
    let d = retained(&r);
    assert_eq!(d.reason, RetainReason::ObserveFailed);
    assert!(
        d.error.as_deref().is_some_and(|e| e.contains("inotify")),
        "{:?}",
        d.error
    );
    // Escalated exactly like the backstop (a leader ignoring SIGTERM must not survive),
    // and bounded by both graces.
    assert_eq!(
        signals(&r),
        vec![
            (StopSignal::Terminate, Duration::ZERO),
            (StopSignal::Kill, TERM)
        ]
    );
    assert_eq!(r.elapsed, TERM + KILL);
    assert_eq!(r.deps.record.releases(), 0);
    assert!(
        r.deps.record.exit_token.lock().expect("t").is_none(),
        "exit watch never started"
    );
}

#[tokio::test(start_paused = true)]
async fn an_exit_watcher_failing_to_start_retains_escalates_and_cancels_the_socket_watch() {
    let r = run(Script {
        exit_start_fails: true,
        ..Script::default()
    })
    .await;
    let d = retained(&r);
    assert_eq!(d.reason, RetainReason::ObserveFailed);
    assert!(d.error.as_deref().is_some_and(|e| e.contains("pidfd_open")));
    assert_eq!(
        signals(&r),
        vec![
            (StopSignal::Terminate, Duration::ZERO),
            (StopSignal::Kill, TERM)
        ]
    );
    assert_eq!(r.elapsed, TERM + KILL);
    assert_eq!(r.deps.record.releases(), 0);
    assert!(r.deps.record.socket_watch_cancelled());
    // Gone before SIGTERM, not only by the return: with no exit watcher the socket must
    // not watch on through the escalation.
    assert!(r.deps.record.socket_watch_gone_before_signals());
}

#[tokio::test(start_paused = true)]
async fn a_watcher_failing_to_start_with_a_failing_terminate_kills_at_once() {
    let r = run(Script {
        socket_start_fails: true,
        terminate_fails: true,
        ..Script::default()
    })
    .await;
    let d = retained(&r);
    assert_eq!(d.reason, RetainReason::ObserveFailed);
    // SIGTERM never went out: its grace is not waited, SIGKILL follows at once.
    assert_eq!(
        signals(&r),
        vec![
            (StopSignal::Terminate, Duration::ZERO),
            (StopSignal::Kill, Duration::ZERO)
        ]
    );
    assert_eq!(r.elapsed, KILL);
    assert!(
        d.error
            .as_deref()
            .is_some_and(|e| e.contains("SIGTERM") || e.contains("terminate")),
        "{:?}",
        d.error
    );
    assert_eq!(r.deps.record.releases(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_socket_watcher_failing_later_triggers_the_backstop_which_observes_the_exit() {
    let r = run(Script {
        socket_fails: vec![At::Start(ms(20))],
        exits: vec![(At::After(StopSignal::Terminate, ms(3)), TERMED)],
        ..Script::default()
    })
    .await;
    assert_eq!(exited(&r), TERMED);
    assert_eq!(
        signals(&r),
        vec![(StopSignal::Terminate, ms(20))],
        "no waiting for the timeout"
    );
    assert_eq!(r.deps.record.releases(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_failing_watcher_whose_backstop_sees_no_exit_retains_with_the_error() {
    let r = run(Script {
        socket_fails: vec![At::Start(ms(20))],
        ..Script::default()
    })
    .await;
    let d = retained(&r);
    assert_eq!(d.reason, RetainReason::ObserveFailed);
    assert!(
        d.error.as_deref().is_some_and(|e| e.contains("forged")),
        "{:?}",
        d.error
    );
    assert_eq!(
        signals(&r),
        vec![
            (StopSignal::Terminate, ms(20)),
            (StopSignal::Kill, ms(20) + TERM)
        ]
    );
    assert_eq!(r.elapsed, ms(20) + TERM + KILL);
    assert_eq!(r.deps.record.releases(), 0);
    assert!(r.deps.record.exit_watch_cancelled());
}

#[tokio::test(start_paused = true)]
async fn the_backstop_races_only_the_exit_never_the_socket() {
    // The exit watcher breaks; a socket that comes alive afterwards must not release:
    // with no exit watcher the backstop has nothing it may observe.
    let r = run(Script {
        exit_watch_fails: vec![At::Start(ms(20))],
        socket_alive: vec![At::After(StopSignal::Terminate, ms(1))],
        ..Script::default()
    })
    .await;
    let d = retained(&r);
    assert_eq!(d.reason, RetainReason::ObserveFailed);
    assert!(d.error.as_deref().is_some_and(|e| e.contains("waitid")));
    assert_eq!(r.deps.record.releases(), 0);
    assert!(r.deps.record.socket_watch_cancelled());
    assert!(r.deps.record.socket_watch_gone_before_signals());
}

#[tokio::test(start_paused = true)]
async fn a_failing_release_is_an_error_naming_the_cause() {
    let r = run(Script {
        exits: vec![(At::Start(ms(1)), EXIT1)],
        release_fails: true,
        ..Script::default()
    })
    .await;
    match &r.outcome {
        Err(WatchError::ReleaseFailed {
            cause,
            lock_path,
            source,
            pid,
            spawn_error,
        }) => {
            assert_eq!((*pid, spawn_error.as_deref()), (Some(PID), None));
            assert_eq!(*cause, ReleaseCause::ChildExited(EXIT1));
            assert!(lock_path.ends_with(format!("{GID}.lock")));
            assert!(source.to_string().contains("EACCES"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(r.deps.record.releases(), 1, "attempted exactly once");
    assert!(r.deps.record.socket_watch_cancelled());
}

#[tokio::test(start_paused = true)]
async fn a_missing_or_mis_paired_lock_is_refused_before_any_spawn() {
    let deps = FakeDeps::new(Script::default());
    let err = execute_spawn_bg_resume(&plan_for(GID), None, &deps)
        .await
        .expect_err("no lock");
    assert!(matches!(
        err,
        WatchError::Policy(PolicyError::MissingLock { .. })
    ));

    let dir = tempfile::tempdir().expect("tempdir");
    let other = claim(&dir, "20260613T000000-bbbbbb");
    let err = execute_spawn_bg_resume(&plan_for(GID), Some(&other), &deps)
        .await
        .expect_err("mis-paired");
    assert!(
        matches!(err, WatchError::Policy(PolicyError::MismatchedLock { .. })),
        "{err:?}"
    );
    assert_eq!(
        deps.record.spawns.load(std::sync::atomic::Ordering::SeqCst),
        0
    );
    assert_eq!(deps.record.releases(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_failing_terminate_goes_straight_to_kill() {
    let r = run(Script {
        terminate_fails: true,
        exits: vec![(At::After(StopSignal::Kill, ms(1)), KILLED)],
        ..Script::default()
    })
    .await;
    assert_eq!(exited(&r), KILLED);
    assert_eq!(
        signals(&r),
        vec![
            (StopSignal::Terminate, OBSERVE),
            (StopSignal::Kill, OBSERVE)
        ],
        "no term grace is waited for a SIGTERM that never went out"
    );
    assert_eq!(r.deps.record.releases(), 1);
}

#[tokio::test(start_paused = true)]
async fn failing_signals_and_no_exit_retain_with_both_errors() {
    let r = run(Script {
        terminate_fails: true,
        kill_fails: true,
        ..Script::default()
    })
    .await;
    let d = retained(&r);
    assert_eq!(d.reason, RetainReason::KillUnconfirmed);
    let e = d.error.as_deref().unwrap_or_default();
    assert!(
        e.contains("SIGTERM: EPERM") && e.contains("SIGKILL: EPERM"),
        "{e}"
    );
    assert_eq!(r.elapsed, OBSERVE + KILL);
    assert_eq!(r.deps.record.releases(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_failing_release_after_a_failed_spawn_keeps_the_spawn_error() {
    let r = run(Script {
        spawn_fails: true,
        release_fails: true,
        ..Script::default()
    })
    .await;
    match &r.outcome {
        Err(WatchError::ReleaseFailed {
            cause,
            pid,
            spawn_error,
            ..
        }) => {
            assert_eq!(*cause, ReleaseCause::SpawnStartFailed);
            assert_eq!(*pid, None);
            assert!(
                spawn_error
                    .as_deref()
                    .is_some_and(|e| e.contains("no such program"))
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(r.deps.record.releases(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_failing_release_after_socket_alive_names_the_resident_pid() {
    let r = run(Script {
        socket_alive: vec![At::Start(ms(3))],
        release_fails: true,
        ..Script::default()
    })
    .await;
    match &r.outcome {
        Err(WatchError::ReleaseFailed { cause, pid, .. }) => {
            assert_eq!(*cause, ReleaseCause::SocketAlive);
            assert_eq!(*pid, Some(PID));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(r.deps.record.releases(), 1);
    assert!(r.deps.record.exit_watch_cancelled());
}

#[tokio::test(start_paused = true)]
async fn a_socket_watcher_failing_during_the_term_grace_still_sees_the_exit() {
    let r = run(Script {
        socket_fails: vec![At::After(StopSignal::Terminate, ms(10))],
        exits: vec![(At::After(StopSignal::Terminate, ms(50)), TERMED)],
        ..Script::default()
    })
    .await;
    assert_eq!(exited(&r), TERMED);
    assert_eq!(
        r.elapsed,
        OBSERVE + ms(50),
        "the grace is not restarted by the failure"
    );
    assert_eq!(signals(&r), vec![(StopSignal::Terminate, OBSERVE)]);
    assert_eq!(r.deps.record.releases(), 1);
}

#[tokio::test(start_paused = true)]
async fn an_exit_watcher_failing_during_the_term_grace_drops_the_socket_side_too() {
    let r = run(Script {
        exit_watch_fails: vec![At::After(StopSignal::Terminate, ms(10))],
        socket_alive: vec![At::After(StopSignal::Terminate, ms(20))],
        ..Script::default()
    })
    .await;
    let d = retained(&r);
    assert_eq!(d.reason, RetainReason::ObserveFailed);
    assert_eq!(
        r.elapsed,
        OBSERVE + TERM + KILL,
        "both graces still run out"
    );
    assert_eq!(r.deps.record.releases(), 0);
    assert!(r.deps.record.socket_watch_cancelled());
}

#[tokio::test(start_paused = true)]
async fn a_socket_alive_in_the_kill_grace_releases_and_says_so() {
    let r = run(Script {
        socket_alive: vec![At::After(StopSignal::Kill, ms(1))],
        ..Script::default()
    })
    .await;
    assert_eq!(socket_alive(&r), Some(StopSignal::Kill));
    assert_eq!(r.elapsed, OBSERVE + TERM + ms(1));
    assert_eq!(r.deps.record.releases(), 1);
}
