//! S3: `execute_spawn_bg_resume` over the real `ProductionDeps` — real timer, real
//! child, real signals, real lock files. Only the identity is fixed and the spawner
//! swaps `pi` for a stand-in resident (the resume scenario runs both for real).
//!
//! The wrapped spawner waits (blocking, a few ms — on the blocking pool, where
//! `ProductionDeps::spawn` runs every spawner) until the stand-in has SIGTERM blocked
//! before handing it to the watcher, so "ignores SIGTERM" holds from the first signal on.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};

use entwurf_v2_spawn::lock::{LockClaim, ReleaseOutcome};
use entwurf_v2_spawn::production::child::StderrTarget;
use entwurf_v2_spawn::production::{
    ProductionDeps, ProductionOptions, StderrPolicy, fixed_identity,
};
use entwurf_v2_spawn::watcher::{ChildExit, SpawnBgOutcome, StopSignal, execute_spawn_bg_resume};
use entwurf_v2_spawn::{GardenId, SpawnBgPlan};

use super::shared::{
    Env, acquire_off_thread, bounded, gid, kill_child, resident_request, scratch, spawn_registered,
    spawner_for, unexpected,
};
use crate::harness::catalog::{Check, Scenario};
use crate::harness::cleanup::Scratch;
use crate::harness::runner::{Runner, expect_that};
use crate::os;
use crate::stand_ins::args::ResidentArgs;

/// Short on purpose: the whole `all` run should stay well under a second.
const OBSERVE: Duration = Duration::from_millis(50);
const TERM_GRACE: Duration = Duration::from_millis(120);
const KILL_GRACE: Duration = Duration::from_millis(500);
/// An observe timeout no check should reach: a result well before it proves the
/// watcher acted on an observation or a failure, not on its timer.
const OBSERVE_LONG: Duration = Duration::from_secs(5);
const SIGTERM: i32 = nix::sys::signal::Signal::SIGTERM as i32;
const SIGKILL: i32 = nix::sys::signal::Signal::SIGKILL as i32;

/// Runs the selected S3 checks concurrently.
pub async fn run(runner: &Runner, env: &Env) {
    let checks = Scenario::Watcher.checks();
    let Some(scratch) = scratch(Scenario::Watcher, runner, env, &checks).await else {
        return;
    };
    let dir = &scratch;
    let timeout_then_release = async {
        let facts = runner.check(Check::WatcherTimeout, timeout(env, dir)).await;
        runner
            .check(Check::WatcherReleasedOnce, async {
                let facts = facts
                    .ok_or_else(|| anyhow!("not evaluated: the timeout run it inspects failed"))?;
                released_once(&facts, "the observed exit")
            })
            .await;
    };
    tokio::join!(
        timeout_then_release,
        runner.check(Check::WatcherMissingProgram, missing_program(env, dir)),
        runner.check(Check::WatcherIgnoresTerm, ignores_term(env, dir)),
        runner.check(Check::WatcherGrandchild, grandchild(env, dir)),
        runner.check(Check::WatcherSocketAlive, socket_alive(env, dir)),
        runner.check(Check::WatcherForgedBackstop, forged_backstop(env, dir)),
    );
}

/// One watcher run's world: options rooted in the scratch dir, a counted release, a
/// real lock.
struct World {
    options: ProductionOptions,
    releases: Arc<AtomicUsize>,
    gid: GardenId,
    claim: LockClaim,
}

/// Where every watcher check's control sockets are.
fn control_dir(scratch: &Scratch) -> PathBuf {
    scratch.sockets().join("control")
}

/// What a run left behind, for the release checks.
struct Facts {
    release: ReleaseOutcome,
    releases: usize,
    lock_path: PathBuf,
}

/// `owner`'s world; `spec` is the stand-in the spawner starts instead of `pi` (`None`:
/// the production spawner, on a program that does not exist).
async fn world(
    owner: Check,
    env: &Env,
    scratch: &Scratch,
    n: u32,
    spec: Option<ResidentArgs>,
) -> Result<World> {
    let dir = scratch.path();
    let gid = gid(n)?;
    let tag = format!("w{n:x}");
    let mut options = ProductionOptions::with_home(&dir.join("home"), Some(dir.join("agent")));
    options.shared.poll_interval = Duration::from_millis(25);
    options.shared.probe_timeout = Duration::from_millis(100);
    options.shared.backend = env.backend;
    options.term_grace = TERM_GRACE;
    options.kill_grace = KILL_GRACE;
    // In the short socket dir: the portable backend connects by path (sun_path).
    options.shared.control_dir = control_dir(scratch);
    options.shared.lock_dir = dir.join("locks");
    options.shared.pi_program = dir.join("bin").join("no-such-pi").into_os_string();
    options.stderr = StderrPolicy::Fixed(StderrTarget::AppendTo(
        dir.join(format!("{tag}.stderr.log")),
    ));
    std::fs::create_dir_all(&options.shared.control_dir).context("control dir")?;
    options.resolve_identity = fixed_identity(dir.to_path_buf(), None, "smoke-model".into());
    if let Some(spec) = spec {
        let (request, ready, _) = resident_request(env, dir, &tag, &spec);
        // Only where a signal could otherwise meet a stand-in that has not blocked
        // SIGTERM yet and change what the check proves; the wait blocks the runtime
        // thread for the stand-in's start-up.
        let wait_ready = spec.ignore_term || spec.grandchild;
        options.spawner = Arc::new(move |_| {
            let handle = spawn_registered(owner, &request)?;
            // Bounded; a stand-in that never gets ready fails its check with the reason
            // from its stderr log, not here.
            if wait_ready {
                os::poll_until_blocking(Duration::from_secs(3), Duration::from_millis(1), || {
                    ready.exists() || handle.try_exit().is_some()
                });
            }
            Ok(handle)
        });
    } else {
        options.spawner = spawner_for(owner);
    }
    let (release, releases) = super::shared::counting_release();
    options.shared.release = release;
    let claim = acquire_off_thread(options.shared.lock_dir.clone(), gid.clone()).await?;
    Ok(World {
        options,
        releases,
        gid,
        claim,
    })
}

/// Runs the watcher with `observe`, returning the outcome and how long it took.
async fn execute(
    w: &World,
    observe: Duration,
) -> Result<(entwurf_v2_spawn::production::ProductionOutcome, Duration)> {
    let plan = SpawnBgPlan::new(
        w.gid.clone(),
        "smoke",
        w.options.socket_path(&w.gid),
        observe,
    )?;
    let deps = ProductionDeps::new(w.options.clone());
    let start = Instant::now();
    let outcome = execute_spawn_bg_resume(&plan, Some(&w.claim), &deps).await?;
    Ok((outcome, start.elapsed()))
}

/// CLOCK_MONOTONIC now, in ns: the clock the stand-ins note their SIGTERMs on.
fn monotonic_ns() -> i128 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).map_or(0, |t| {
        i128::from(t.tv_sec()) * 1_000_000_000 + i128::from(t.tv_nsec())
    })
}

fn facts(w: &World, release: ReleaseOutcome) -> Facts {
    Facts {
        release,
        releases: w.releases.load(Ordering::SeqCst),
        lock_path: w.claim.lock_path().to_path_buf(),
    }
}

/// Released, by exactly one call, and the real file is gone.
fn released_once(f: &Facts, after: &str) -> Result<()> {
    expect_that(f.release == ReleaseOutcome::Released, || {
        format!(
            "release after {after} reported {:?}, not Released",
            f.release
        )
    })?;
    expect_that(f.releases == 1, || {
        format!("release was called {} times after {after}", f.releases)
    })?;
    expect_that(!f.lock_path.exists(), || {
        format!("{} still exists after the release", f.lock_path.display())
    })
}

/// Waits for the exit the watcher observed to be checked against `ok`.
fn exited(
    outcome: &entwurf_v2_spawn::production::ProductionOutcome,
) -> Option<(ChildExit, ReleaseOutcome, u32)> {
    match outcome {
        SpawnBgOutcome::ChildExited {
            exit, release, pid, ..
        } => Some((*exit, *release, *pid)),
        _ => None,
    }
}

async fn timeout(env: &Env, scratch: &Scratch) -> Result<Facts> {
    let w = world(
        Check::WatcherTimeout,
        env,
        scratch,
        0x300,
        Some(ResidentArgs::default()),
    )
    .await?;
    let (outcome, took) = execute(&w, OBSERVE).await?;
    let Some((exit, release, _)) = exited(&outcome) else {
        return Err(unexpected(outcome, "child-exited after the timeout").await);
    };
    expect_that(took >= OBSERVE, || {
        format!("child-exited after {took:?}, before the {OBSERVE:?} timer")
    })?;
    expect_that(exit.code == Some(0) || exit.signal == Some(SIGTERM), || {
        format!("expected exit code 0 or SIGTERM after terminate, got {exit}")
    })?;
    Ok(facts(&w, release))
}

async fn missing_program(env: &Env, scratch: &Scratch) -> Result<()> {
    let w = world(Check::WatcherMissingProgram, env, scratch, 0x303, None).await?;
    let (outcome, _) = execute(&w, OBSERVE_LONG).await?;
    let SpawnBgOutcome::SpawnStartFailed { release, .. } = outcome else {
        return Err(unexpected(outcome, "spawn-start-failed").await);
    };
    released_once(&facts(&w, release), "spawn-start-failed")
}

async fn ignores_term(env: &Env, scratch: &Scratch) -> Result<()> {
    let spec = ResidentArgs {
        ignore_term: true,
        ..ResidentArgs::default()
    };
    let n = 0x304;
    let w = world(Check::WatcherIgnoresTerm, env, scratch, n, Some(spec)).await?;
    let (outcome, took) = execute(&w, OBSERVE).await?;
    let returned = monotonic_ns();
    let Some((exit, release, _)) = exited(&outcome) else {
        return Err(unexpected(outcome, "child-exited by SIGKILL").await);
    };
    expect_that(exit.signal == Some(SIGKILL), || {
        format!("expected killed by SIGKILL, got {exit}")
    })?;
    expect_that(took >= OBSERVE + TERM_GRACE, || {
        format!("SIGKILL came after {took:?}, before the timeout plus the term grace")
    })?;
    // The ladder's order and its grace, timed from the SIGTERM itself (the stand-in
    // notes each one's arrival; `took` above also counts the stand-in's start): a
    // SIGTERM came first, and the SIGKILL exit was seen no sooner than half the grace
    // after it (half: the stand-in's wake-up after the SIGTERM may lag under load, and
    // a ladder that skips the grace kills within milliseconds) and well before the kill
    // grace would have passed (a ladder waiting the wrong grace).
    let noted = scratch.path().join(format!("w{n:x}.ready.term"));
    let terms = std::fs::read_to_string(&noted).unwrap_or_default();
    let first_term = terms.lines().next().and_then(|l| l.parse::<i128>().ok());
    let Some(first_term) = first_term else {
        bail!(
            "no SIGTERM was noted by the child before its SIGKILL ({} is empty: none came, or the child did not run for the whole {TERM_GRACE:?} grace)",
            noted.display()
        );
    };
    let grace_seen = Duration::from_nanos(u64::try_from(returned - first_term).unwrap_or(0));
    expect_that(grace_seen >= TERM_GRACE / 2, || {
        format!(
            "the SIGKILL exit came {grace_seen:?} after the SIGTERM was noted, under half the {TERM_GRACE:?} term grace (or the child noted it late)"
        )
    })?;
    let too_late = TERM_GRACE + (KILL_GRACE - TERM_GRACE) / 2;
    expect_that(grace_seen < too_late, || {
        format!(
            "the SIGKILL exit came {grace_seen:?} after the SIGTERM, not about the {TERM_GRACE:?} term grace (the {KILL_GRACE:?} kill grace?)"
        )
    })?;
    released_once(&facts(&w, release), "the SIGKILL exit")
}

async fn grandchild(env: &Env, scratch: &Scratch) -> Result<()> {
    let dir = scratch.path();
    let spec = ResidentArgs {
        grandchild: true,
        ..ResidentArgs::default()
    };
    let n = 0x305;
    let w = world(Check::WatcherGrandchild, env, scratch, n, Some(spec)).await?;
    let (outcome, _) = execute(&w, OBSERVE).await?;
    let Some((_, release, pid)) = exited(&outcome) else {
        return Err(unexpected(outcome, "child-exited").await);
    };
    let ready = std::fs::read_to_string(dir.join(format!("w{n:x}.ready")))
        .context("reading the ready file")?;
    let grandchild: u32 = ready
        .trim()
        .parse()
        .map_err(|_| anyhow!("the leader never reported its grandchild (ready file {ready:?})"))?;
    // SIGKILL is asynchronous: give the kernel a moment to finish the member off.
    // The grandchild itself must be dead too, not merely out of the group (a member that
    // left the group would escape the sweep and still pass a group-only check).
    let grandchild_dead = || os::proc_stat(grandchild).is_none_or(|s| s.is_dead());
    let clean = os::poll_until(Duration::from_millis(300), Duration::from_millis(2), || {
        os::live_group_members(pid).is_empty() && grandchild_dead()
    })
    .await;
    if !clean {
        let survivors = os::live_group_members(pid);
        crate::harness::cleanup::kill_group(pid);
        bail!(
            "process group {pid} still has members {survivors:?} (grandchild {grandchild}) after the watcher returned"
        );
    }
    released_once(&facts(&w, release), "the exit")
}

async fn socket_alive(env: &Env, scratch: &Scratch) -> Result<()> {
    let n = 0x306;
    let socket = control_dir(scratch).join(format!("{}.sock", gid(n)?));
    let spec = ResidentArgs {
        listen: Some(socket),
        listen_after_ms: 30,
        ..ResidentArgs::default()
    };
    let w = world(Check::WatcherSocketAlive, env, scratch, n, Some(spec)).await?;
    let (outcome, _) = execute(&w, OBSERVE_LONG).await?;
    let SpawnBgOutcome::SocketAlive {
        pid,
        release,
        resident,
        after_signal: None,
    } = outcome
    else {
        return Err(unexpected(outcome, "socket-alive").await);
    };
    let checked = (|| {
        released_once(&facts(&w, release), "socket-alive")?;
        expect_that(resident.try_exit().is_none(), || {
            format!("the resident (pid {pid}) already exited")
        })?;
        expect_that(os::proc_stat(pid).is_some_and(|s| !s.is_dead()), || {
            format!("the resident (pid {pid}) is not running after the release")
        })
    })();
    resident.signal(StopSignal::Terminate).await?;
    let exit = bounded(
        Duration::from_secs(2),
        "the resident's exit after cleanup",
        resident.exit(),
    )
    .await;
    if !matches!(exit, Ok(Ok(_))) {
        kill_child(&resident).await;
    }
    checked
}

async fn forged_backstop(env: &Env, scratch: &Scratch) -> Result<()> {
    let n = 0x307;
    let w = world(
        Check::WatcherForgedBackstop,
        env,
        scratch,
        n,
        Some(ResidentArgs::default()),
    )
    .await?;
    std::fs::write(w.options.socket_path(&w.gid), b"forged").context("forging the socket path")?;
    let (outcome, took) = execute(&w, OBSERVE_LONG).await?;
    let Some((_, release, _)) = exited(&outcome) else {
        return Err(unexpected(outcome, "child-exited through the backstop").await);
    };
    expect_that(took < OBSERVE_LONG / 2, || {
        format!("child-exited only after {took:?}: the backstop should not wait for the timeout")
    })?;
    released_once(&facts(&w, release), "the backstop exit")
}
