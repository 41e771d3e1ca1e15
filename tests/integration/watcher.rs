//! Deterministic gate for `execute_spawn_bg_resume`: FAKE dependencies (see
//! `support/fake_deps.rs`) and a paused tokio clock, so every outcome and its exact
//! timing is reproducible without a process or a socket. Every case asserts how many
//! times the lock was released (0 or 1) and that the losing watchers were cancelled.

use std::time::Duration;

use entwurf_test_support::fake_deps::{At, FakeChild, FakeDeps, PID, Script};
use entwurf_v2_spawn::lock::{self, LockClaim};
use entwurf_v2_spawn::release::PolicyError;
use entwurf_v2_spawn::watcher::{
    ChildExit, Observation, RetainReason, SpawnBgOutcome, StopSignal, WatchError,
    execute_spawn_bg_resume,
};
use entwurf_v2_spawn::{GardenId, SpawnBgPlan};
use tokio::time::Instant;

const GID: &str = "20260613T000000-aaaaaa";
const OBSERVE: Duration = Duration::from_secs(10);
const TERM: Duration = Duration::from_secs(5);
const KILL: Duration = Duration::from_secs(1);
const EXIT0: ChildExit = ChildExit {
    code: Some(0),
    signal: None,
};
const EXIT1: ChildExit = ChildExit {
    code: Some(1),
    signal: None,
};
const KILLED: ChildExit = ChildExit {
    code: None,
    signal: Some(9),
};
const TERMED: ChildExit = ChildExit {
    code: None,
    signal: Some(15),
};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn plan_for(gid: &str) -> SpawnBgPlan {
    let gid = GardenId::parse(gid).expect("gid");
    SpawnBgPlan::new(
        gid.clone(),
        "wake up",
        format!("/run/ctl/{gid}.sock"),
        OBSERVE,
    )
    .expect("plan")
}

/// A real claim in a temp dir; the fakes never touch it (their release is counted).
fn claim(dir: &tempfile::TempDir, gid: &str) -> LockClaim {
    lock::acquire(dir.path(), &GardenId::parse(gid).expect("gid")).expect("acquire")
}

struct Run {
    outcome: Result<SpawnBgOutcome<FakeChild>, WatchError>,
    deps: FakeDeps,
    elapsed: Duration,
}

async fn run(script: Script) -> Run {
    let dir = tempfile::tempdir().expect("tempdir");
    let claim = claim(&dir, GID);
    let deps = FakeDeps::new(script);
    let start = Instant::now();
    let outcome = execute_spawn_bg_resume(&plan_for(GID), Some(&claim), &deps).await;
    Run {
        outcome,
        elapsed: start.elapsed(),
        deps,
    }
}

fn exited(run: &Run) -> ChildExit {
    match &run.outcome {
        Ok(SpawnBgOutcome::ChildExited { pid, exit, .. }) => {
            assert_eq!(*pid, PID);
            *exit
        }
        other => panic!("expected child-exited, got {other:?}"),
    }
}

/// The signal already sent when the socket came alive (asserts socket-alive, our pid and
/// that the outcome says it released).
fn socket_alive(run: &Run) -> Option<StopSignal> {
    match &run.outcome {
        Ok(
            o @ SpawnBgOutcome::SocketAlive {
                pid, after_signal, ..
            },
        ) => {
            assert_eq!(*pid, PID);
            assert!(o.released());
            *after_signal
        }
        other => panic!("expected socket-alive, got {other:?}"),
    }
}

fn retained(run: &Run) -> &entwurf_v2_spawn::watcher::RetainedDiagnostic {
    match &run.outcome {
        Ok(SpawnBgOutcome::LockRetained(d)) => d.as_ref(),
        other => panic!("expected lock-retained, got {other:?}"),
    }
}

fn signals(run: &Run) -> Vec<(StopSignal, Duration)> {
    run.deps.record.signals()
}

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

#[tokio::test(start_paused = true)]
async fn a_socket_watcher_failing_to_start_retains_and_terminates() {
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
    assert_eq!(signals(&r), vec![(StopSignal::Terminate, Duration::ZERO)]);
    assert_eq!(r.deps.record.releases(), 0);
    assert!(
        r.deps.record.exit_token.lock().expect("t").is_none(),
        "exit watch never started"
    );
}

#[tokio::test(start_paused = true)]
async fn an_exit_watcher_failing_to_start_retains_terminates_and_cancels_the_socket_watch() {
    let r = run(Script {
        exit_start_fails: true,
        ..Script::default()
    })
    .await;
    let d = retained(&r);
    assert_eq!(d.reason, RetainReason::ObserveFailed);
    assert!(d.error.as_deref().is_some_and(|e| e.contains("pidfd_open")));
    assert_eq!(signals(&r), vec![(StopSignal::Terminate, Duration::ZERO)]);
    assert_eq!(r.deps.record.releases(), 0);
    assert!(r.deps.record.socket_watch_cancelled());
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
}

#[tokio::test(start_paused = true)]
async fn a_failing_release_is_an_error_naming_the_observation() {
    let r = run(Script {
        exits: vec![(At::Start(ms(1)), EXIT1)],
        release_fails: true,
        ..Script::default()
    })
    .await;
    match &r.outcome {
        Err(WatchError::ReleaseFailed {
            observation,
            lock_path,
            source,
            pid,
            spawn_error,
        }) => {
            assert_eq!((*pid, spawn_error.as_deref()), (Some(PID), None));
            assert_eq!(*observation, Observation::ChildExited(EXIT1));
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
            observation,
            pid,
            spawn_error,
            ..
        }) => {
            assert_eq!(*observation, Observation::SpawnStartFailed);
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
        Err(WatchError::ReleaseFailed {
            observation, pid, ..
        }) => {
            assert_eq!(*observation, Observation::SocketAlive);
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
