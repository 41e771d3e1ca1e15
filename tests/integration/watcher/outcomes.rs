//! The observed transitions and the timeout escalation.

use super::*;

#[tokio::test(start_paused = true)]
async fn spawn_failure_releases_once_and_watches_nothing() {
    let r = run(Script {
        spawn_fails: true,
        ..Script::default()
    })
    .await;
    match &r.outcome {
        Ok(SpawnBgOutcome::SpawnStartFailed { error, .. }) => {
            assert!(error.to_string().contains("no such program"))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(r.deps.record.releases(), 1);
    assert!(
        r.deps.record.socket_token.lock().expect("t").is_none(),
        "no watcher started"
    );
    assert!(signals(&r).is_empty());
    assert_eq!(r.elapsed, Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn socket_first_releases_once_and_cancels_the_exit_watch() {
    let r = run(Script {
        socket_alive: vec![At::Start(ms(40))],
        ..Script::default()
    })
    .await;
    assert_eq!(socket_alive(&r), None);
    assert_eq!(r.elapsed, ms(40));
    assert_eq!(r.deps.record.releases(), 1);
    assert!(r.deps.record.exit_watch_cancelled());
    assert!(
        signals(&r).is_empty(),
        "nothing is signalled on the socket-alive path"
    );
}

#[tokio::test(start_paused = true)]
async fn exit_first_with_code_0_code_1_or_a_signal_releases_once() {
    for status in [EXIT0, EXIT1, KILLED] {
        let r = run(Script {
            exits: vec![(At::Start(ms(25)), status)],
            ..Script::default()
        })
        .await;
        assert_eq!(exited(&r), status);
        assert_eq!(r.elapsed, ms(25));
        assert_eq!(r.deps.record.releases(), 1);
        assert!(r.deps.record.socket_watch_cancelled());
        assert!(signals(&r).is_empty());
    }
}

#[tokio::test(start_paused = true)]
async fn simultaneous_exit_and_socket_report_the_exit() {
    let r = run(Script {
        socket_alive: vec![At::Start(ms(5))],
        exits: vec![(At::Start(ms(5)), EXIT0)],
        ..Script::default()
    })
    .await;
    assert_eq!(exited(&r), EXIT0);
    assert_eq!(r.deps.record.releases(), 1);
}

#[tokio::test(start_paused = true)]
async fn timeout_terminates_then_the_exit_releases() {
    let r = run(Script {
        exits: vec![(At::After(StopSignal::Terminate, ms(30)), TERMED)],
        ..Script::default()
    })
    .await;
    assert_eq!(exited(&r), TERMED);
    assert_eq!(signals(&r), vec![(StopSignal::Terminate, OBSERVE)]);
    assert_eq!(r.elapsed, OBSERVE + ms(30));
    assert_eq!(r.deps.record.releases(), 1);
    assert!(r.deps.record.socket_watch_cancelled());
}

#[tokio::test(start_paused = true)]
async fn timeout_terminates_then_the_socket_releases() {
    let r = run(Script {
        socket_alive: vec![At::After(StopSignal::Terminate, ms(10))],
        ..Script::default()
    })
    .await;
    assert_eq!(
        socket_alive(&r),
        Some(StopSignal::Terminate),
        "the outcome says the resident was already asked to stop"
    );
    assert_eq!(signals(&r), vec![(StopSignal::Terminate, OBSERVE)]);
    assert_eq!(r.deps.record.releases(), 1);
    assert!(r.deps.record.exit_watch_cancelled());
}

#[tokio::test(start_paused = true)]
async fn term_grace_elapses_then_kill_then_the_exit_releases() {
    let r = run(Script {
        exits: vec![(At::After(StopSignal::Kill, ms(2)), KILLED)],
        ..Script::default()
    })
    .await;
    assert_eq!(exited(&r), KILLED);
    assert_eq!(
        signals(&r),
        vec![
            (StopSignal::Terminate, OBSERVE),
            (StopSignal::Kill, OBSERVE + TERM)
        ]
    );
    assert_eq!(r.elapsed, OBSERVE + TERM + ms(2));
    assert_eq!(r.deps.record.releases(), 1);
}

#[tokio::test(start_paused = true)]
async fn nothing_after_kill_retains_the_lock_with_the_full_diagnostic() {
    let r = run(Script::default()).await;
    let d = retained(&r);
    assert_eq!(d.reason, RetainReason::KillUnconfirmed);
    assert_eq!(d.target.as_str(), GID);
    assert_eq!(d.pid, PID);
    assert_eq!(
        d.expected_socket_path.to_str(),
        Some(&*format!("/run/ctl/{GID}.sock"))
    );
    assert!(d.lock_path.ends_with(format!("{GID}.lock")));
    assert_eq!(
        (d.observe_timeout, d.term_grace, d.kill_grace),
        (OBSERVE, TERM, KILL)
    );
    assert_eq!(d.error, None);
    let text = d.to_string();
    for needle in ["kill-unconfirmed", GID, "4242", ".lock", "remove"] {
        assert!(text.contains(needle), "{needle} missing from {text}");
    }
    assert_eq!(
        r.elapsed,
        OBSERVE + TERM + KILL,
        "bounded by timeout + both graces"
    );
    assert_eq!(r.deps.record.releases(), 0);
    assert!(r.deps.record.socket_watch_cancelled() && r.deps.record.exit_watch_cancelled());
    assert!(!r.outcome.as_ref().expect("ok").released());
}
