//! Deterministic gate for `execute_spawn_bg_resume`: FAKE dependencies (see
//! `support/fake_deps.rs`) and a paused tokio clock, so every outcome and its exact
//! timing is reproducible without a process or a socket. Every case asserts how many
//! times the lock was released (0 or 1) and that the losing watchers were cancelled.

use std::time::Duration;

use entwurf_test_support::fake_deps::{At, FakeChild, FakeDeps, FakeError, PID, Script};
use entwurf_v2_spawn::lock::{self, LockClaim};
use entwurf_v2_spawn::plan::PolicyError;
use entwurf_v2_spawn::watcher::{
    ChildExit, ReleaseCause, RetainReason, SpawnBgOutcome, StopSignal, WatchError,
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
    outcome: Result<SpawnBgOutcome<FakeChild, FakeError>, WatchError>,
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

mod failures;
mod outcomes;
