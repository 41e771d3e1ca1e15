//! What the scenarios share: the run's [`Env`], scratch dirs, stand-in children and small
//! assertion helpers.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, anyhow};

use entwurf_v2_spawn::Backend;
use entwurf_v2_spawn::GardenId;
use entwurf_v2_spawn::error_chain;
use entwurf_v2_spawn::lock::{LockClaim, ReleaseOutcome};
use entwurf_v2_spawn::production::child::{
    ChildHandle, SpawnError, SpawnRequest, StderrTarget, spawn_child,
};
use entwurf_v2_spawn::production::{ProductionOutcome, ReleaseFn, ResumeLaunch};
use entwurf_v2_spawn::watcher::{SpawnBgOutcome, StopSignal};

use crate::harness::catalog::{Check, Scenario};
use crate::harness::cleanup::{self, Scratch};
use crate::harness::needs::Unmet;
use crate::harness::pi_runtimes::PiRuntimes;
use crate::harness::runner::Runner;
use crate::os::ProcessId;
use crate::stand_ins::args::ResidentArgs;

/// What every scenario needs to know about the run.
#[derive(Debug, Clone)]
pub struct Env {
    /// This binary, re-executed as every stand-in.
    pub exe: PathBuf,
    /// The gate process (this run's own process), which stand-ins watch and temp dir
    /// markers name.
    pub gate: ProcessId,
    /// The library backend of this run (`--backend`).
    pub backend: Backend,
    /// `--keep-tmp`.
    pub keep_tmp: bool,
    /// Our descriptors before any check ran (for the hygiene check).
    pub baseline_fds: BTreeMap<i32, String>,
    /// The real pi runtimes of this run (or why there are none).
    pub pi: PiRuntimes,
}

/// A future of this run's that borrows the run state (a scenario's, a runtime's checks).
pub type Borrowing<'a> = Pin<Box<dyn Future<Output = ()> + 'a>>;

/// Runs `futures` concurrently on this task: a join over a list of borrowing futures,
/// without a futures crate (the head joined with the rest).
pub fn join_all(mut futures: Vec<Borrowing<'_>>) -> Borrowing<'_> {
    Box::pin(async move {
        if futures.is_empty() {
            return;
        }
        let first = futures.remove(0);
        tokio::join!(first, join_all(futures));
    })
}

/// The scenario's scratch dir when any of `checks` is selected: `None` when none is
/// (nothing to do), or when the dir could not be made (then every one of `checks` has
/// been reported failed with the reason).
pub async fn scratch(
    scenario: Scenario,
    runner: &Runner,
    env: &Env,
    checks: &[Check],
) -> Option<Scratch> {
    if !checks.iter().any(|c| runner.runs(*c)) {
        return None;
    }
    // Off the runtime's one thread, as every scenario's file-system setup: creating
    // inodes costs milliseconds on some file systems, and meanwhile no timer of another
    // check could fire.
    let gate = env.gate;
    match off_thread(move || Scratch::new(scenario, gate)).await {
        Ok(scratch) => Some(scratch),
        Err(e) => {
            fail_all(runner, checks, &format!("scenario setup failed: {e:#}")).await;
            None
        }
    }
}

/// A check's end for a need this run does not meet (`harness::needs`): a skip naming
/// it, or on CI a failure saying it is required there — the words `--list` printed.
pub fn unmet_error(unmet: Unmet) -> anyhow::Error {
    if unmet.required {
        anyhow!("{}", unmet.failure())
    } else {
        crate::harness::runner::skip(unmet.why)
    }
}

/// Records the same failure for every one of `checks` (those not selected are passed
/// over by the runner): for a scenario, or a part of one, that could not even set up.
pub async fn fail_all(runner: &Runner, checks: &[Check], why: &str) {
    for check in checks {
        runner
            .check(*check, async { Err::<(), _>(anyhow!("{why}")) })
            .await;
    }
}

/// The resident described by `args`, watching this run's gate process.
fn with_lifeline(env: &Env, args: &ResidentArgs) -> ResidentArgs {
    ResidentArgs {
        lifeline: Some(env.gate),
        ..args.clone()
    }
}

/// A resident started through the production `spawn_child`.
pub struct Started {
    /// Its handle.
    pub handle: ChildHandle,
    /// Its ready file.
    pub ready: PathBuf,
    /// Its stderr log.
    pub stderr: PathBuf,
}

/// The request that starts a resident in `dir`, tagged `tag` (ready file, stderr log).
pub fn resident_request(
    env: &Env,
    dir: &Path,
    tag: &str,
    args: &ResidentArgs,
) -> (SpawnRequest, PathBuf, PathBuf) {
    let ready = dir.join(format!("{tag}.ready"));
    let stderr = dir.join(format!("{tag}.stderr.log"));
    let args = ResidentArgs {
        ready: Some(ready.clone()),
        ..with_lifeline(env, args)
    };
    let request = SpawnRequest::new(env.exe.clone(), args.to_args(), dir)
        .with_stderr(StderrTarget::AppendTo(stderr.clone()))
        .with_backend(env.backend);
    (request, ready, stderr)
}

/// `spawn_child` for `owner`, its new process group registered before anyone can miss
/// it (see `harness::cleanup`). Refused once cleanup began or `owner` was abandoned.
pub fn spawn_registered(owner: Check, request: &SpawnRequest) -> Result<ChildHandle, SpawnError> {
    cleanup::spawn_group(owner, || spawn_child(request), ChildHandle::pid).unwrap_or_else(
        |refused| {
            Err(SpawnError::Exec {
                program: request.program.clone(),
                cwd: request.cwd.clone(),
                source: std::io::Error::other(refused),
            })
        },
    )
}

/// A production spawner (`ProductionOptions::spawner`) registering for `owner`.
pub fn spawner_for(owner: Check) -> entwurf_v2_spawn::production::Spawner {
    Arc::new(move |launch: &ResumeLaunch<'_>| spawn_registered(owner, launch.request))
}

/// Starts a stand-in resident for `owner`.
pub fn spawn_resident(
    owner: Check,
    env: &Env,
    dir: &Path,
    tag: &str,
    args: &ResidentArgs,
) -> Result<Started> {
    let (request, ready, stderr) = resident_request(env, dir, tag, args);
    let handle = spawn_registered(owner, &request)
        .map_err(|e| anyhow!("spawn_child: {}", error_chain(&e)))?;
    Ok(Started {
        handle,
        ready,
        stderr,
    })
}

/// Waits until the resident announced readiness (or exited); returns the ready file's
/// content. Bounded only by the check's deadline: a stand-in started on a loaded machine
/// may take seconds (see `scenarios::child`).
pub async fn wait_ready(started: &Started) -> Result<String> {
    let ready = started.ready.clone();
    let seen = crate::os::poll_until(Duration::MAX, Duration::from_millis(1), || {
        ready.exists() || started.handle.try_exit().is_some()
    })
    .await;
    if !seen || !ready.exists() {
        return Err(anyhow!(
            "the stand-in never became ready{}",
            stderr_note(&started.stderr)
        ));
    }
    std::fs::read_to_string(&started.ready).context("reading the ready file")
}

/// `; its stderr: ...` with the end of a stand-in's stderr log, or nothing.
pub fn stderr_note(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let text = text.trim();
    if text.is_empty() {
        return String::new();
    }
    let tail: String = text
        .chars()
        .rev()
        .take(600)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("; its stderr: {}", tail.replace('\n', " | "))
}

/// Runs blocking work off the runtime thread: lock files are fsynced (about 10 ms each on
/// a real disk), and a blocked runtime thread would stretch every concurrent check's
/// timers.
pub async fn off_thread<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    let guard = cleanup::BlockingGuard::enter();
    tokio::task::spawn_blocking(move || {
        let _guard = guard;
        work()
    })
    .await
    .map_err(|e| anyhow!("the check's blocking task failed: {e}"))?
}

/// `lock::acquire` off the runtime thread.
pub async fn acquire_off_thread(lock_dir: PathBuf, gid: GardenId) -> Result<LockClaim> {
    off_thread(move || {
        entwurf_v2_spawn::lock::acquire(&lock_dir, &gid)
            .map_err(|e| anyhow!("lock::acquire: {e:#}"))
    })
    .await
}

/// A fixed, valid garden id per check, so failures are reproducible by name.
pub fn gid(n: u32) -> Result<GardenId> {
    GardenId::parse(&format!("20260613T000000-{n:06x}")).map_err(|e| anyhow!("{e}"))
}

/// Awaits `fut` at most `limit`, failing with "`<what>` still pending after ...": a more
/// specific reason than the check's overall deadline.
pub async fn bounded<T>(limit: Duration, what: &str, fut: impl Future<Output = T>) -> Result<T> {
    tokio::time::timeout(limit, fut)
        .await
        .map_err(|_| anyhow!("{what} still pending after {} ms", limit.as_millis()))
}

/// Stops a child the check no longer needs: SIGKILL to its group, then its exit.
pub async fn kill_child(handle: &ChildHandle) {
    let _ = handle.signal(StopSignal::Kill).await;
    let _ = tokio::time::timeout(Duration::from_secs(2), handle.exit()).await;
}

/// The resident of a spawn-bg resume that came up on its own (socket-alive before any
/// signal): its pid, the release and the handle. Any other outcome is an error saying
/// what came instead, with the end of the child's stderr `log`.
pub async fn expect_resident(
    outcome: ProductionOutcome,
    log: &Path,
) -> Result<(u32, ReleaseOutcome, ChildHandle)> {
    match outcome {
        SpawnBgOutcome::SocketAlive {
            pid,
            release,
            resident,
            after_signal: None,
        } => Ok((pid, release, resident)),
        other => {
            let e = unexpected(other, "socket-alive").await;
            Err(anyhow!("{e}{}", stderr_note(log)))
        }
    }
}

/// Describes an outcome the check did not expect, cleaning up a resident it carries.
pub async fn unexpected(outcome: ProductionOutcome, wanted: &str) -> anyhow::Error {
    let what = match &outcome {
        SpawnBgOutcome::SpawnStartFailed { error, .. } => {
            format!("spawn-start-failed: {}", error_chain(error))
        }
        SpawnBgOutcome::SocketAlive {
            pid, after_signal, ..
        } => match after_signal {
            Some(signal) => format!("socket-alive (pid {pid}) only after {signal}"),
            None => format!("socket-alive (pid {pid})"),
        },
        SpawnBgOutcome::ChildExited {
            exit,
            pid,
            stderr_tail,
            ..
        } => match stderr_tail {
            Some(said) => format!(
                "child-exited ({exit}, pid {pid}; it said: {})",
                said.replace('\n', " | ")
            ),
            None => format!("child-exited ({exit}, pid {pid})"),
        },
        SpawnBgOutcome::LockRetained(diagnostic) => diagnostic.to_string(),
        other => other.kind().to_owned(),
    };
    if let SpawnBgOutcome::SocketAlive { resident, .. } = &outcome {
        kill_child(resident).await;
    }
    anyhow!("expected {wanted}, got {what}")
}

/// The production release (`lock::release`), counted: "released exactly once" is
/// checked against the returned counter.
pub fn counting_release() -> (ReleaseFn, Arc<AtomicUsize>) {
    let releases = Arc::new(AtomicUsize::new(0));
    let counted = releases.clone();
    let release: ReleaseFn = Arc::new(move |claim: &LockClaim| {
        counted.fetch_add(1, Ordering::SeqCst);
        entwurf_v2_spawn::lock::release(claim)
    });
    (release, releases)
}

/// The receipt of an owned-outcome dispatch to a dormant citizen, as D3 and `P<n>.7`
/// expect it: the lock handed to a background resume, and what the dispatch observed
/// and the resume returned. On any other receipt, a resident the resume started is
/// killed before the error returns (the check would otherwise leave it to H2).
pub async fn expect_background_resume(
    done: entwurf_v2_spawn::dispatch::Dispatched<
        Result<entwurf_v2_spawn::dispatch::ResumeOutcome, entwurf_v2_spawn::dispatch::ResumeError>,
    >,
) -> Result<(
    entwurf_v2_spawn::dispatch::ObservedLiveness,
    ProductionOutcome,
)> {
    use entwurf_v2_spawn::dispatch::{LockFate, Receipt, ResumeOutcome};
    let Receipt::Resumed { observed, outcome } = done.receipt else {
        anyhow::bail!("expected the receipt resumed, got {:?}", done.receipt);
    };
    let outcome = match outcome {
        Ok(ResumeOutcome::Background(outcome)) => outcome,
        Ok(other) => anyhow::bail!("expected the spawn-bg resume, got {other:?}"),
        Err(e) => anyhow::bail!("the resume failed: {}", error_chain(&e)),
    };
    if done.lock != LockFate::HandedToResume {
        if let SpawnBgOutcome::SocketAlive { resident, .. } = &outcome {
            kill_child(resident).await;
        }
        anyhow::bail!(
            "the lock's fate is {:?}, not handed to the resume",
            done.lock
        );
    }
    Ok((observed, outcome))
}
