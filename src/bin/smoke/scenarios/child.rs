//! S2: the production `spawn_child` with real processes (this binary as the resident).

use std::path::Path;
use std::time::Duration;

use anyhow::{Result, bail};

use entwurf_v2_spawn::production::child::SignalDelivery;
use entwurf_v2_spawn::watcher::StopSignal;

use super::shared::{Env, Started, kill_child, scratch, spawn_resident, wait_ready};
use crate::harness::catalog::{Check, Scenario};
use crate::harness::runner::{Runner, expect_that};
use crate::os;
use crate::stand_ins::args::ResidentArgs;

/// No bound inside these checks but their deadline (`--check-timeout-ms`, which
/// abandons the check and kills its groups): under load a stand-in can take seconds to
/// start and to exit (S2.2 once failed after 3094 ms during a compile, its stand-in's
/// stderr log still empty — the 3 s readiness bound it then had), and the labels claim
/// that the exit is observed, not how fast.
const UNTIL_DEADLINE: Duration = Duration::MAX;
const EARLY_EXIT_CODE: u8 = 7;

/// Runs the selected S2 checks.
pub async fn run(runner: &Runner, env: &Env) {
    let checks = Scenario::Child.checks();
    let Some(scratch) = scratch(Scenario::Child, runner, env, &checks).await else {
        return;
    };
    let dir = scratch.path();
    let spawn_then_terminate = async {
        let started = runner
            .check(
                Check::ChildSpawned,
                spawned(env, dir, slow(runner, Check::ChildSpawned)),
            )
            .await;
        runner
            .check(Check::ChildTerminated, async {
                match &started {
                    Some(started) => terminated(started).await,
                    None => bail!("not evaluated: the spawn check failed"),
                }
            })
            .await;
        if let Some(started) = &started {
            // Only does something if the terminate check failed half-way.
            if started.handle.try_exit().is_none() {
                kill_child(&started.handle).await;
            }
        }
    };
    tokio::join!(
        spawn_then_terminate,
        runner.check(
            Check::ChildEarlyExit,
            early_exit(env, dir, slow(runner, Check::ChildEarlyExit))
        )
    );
}

/// When `spawn_child` returns, the process must already run *our* argv (exec done, not
/// just forked) as the leader of a new session.
/// The stand-in of `check`, started as slowly as `--inject-slow-start` asks (test only).
fn slow(runner: &Runner, check: Check) -> ResidentArgs {
    ResidentArgs {
        start_delay_ms: u64::try_from(runner.start_delay(check).as_millis()).unwrap_or(0),
        ..ResidentArgs::default()
    }
}

async fn spawned(env: &Env, dir: &Path, spec: ResidentArgs) -> Result<Started> {
    let started = spawn_resident(Check::ChildSpawned, env, dir, "spawned", &spec)?;
    let pid = started.handle.pid();
    let argv = os::cmdline(pid);
    let checks = (|| {
        expect_that(argv.iter().any(|a| a == "__stand-in"), || {
            format!("pid {pid} runs {argv:?}, not the stand-in: spawn_child returned before exec")
        })?;
        let stat =
            os::proc_stat(pid).ok_or_else(|| anyhow::anyhow!("pid {pid} is not in /proc"))?;
        expect_that(stat.pgrp == pid && stat.session == pid, || {
            format!(
                "pid {pid} is in group {} session {}, not a new session of its own",
                stat.pgrp, stat.session
            )
        })
    })();
    if let Err(e) = checks {
        kill_child(&started.handle).await;
        return Err(e);
    }
    Ok(started)
}

async fn terminated(started: &Started) -> Result<()> {
    // Ready means SIGTERM is blocked and awaited, so the stand-in exits 0 on it.
    wait_ready(started).await?;
    let delivery = started.handle.send_signal(StopSignal::Terminate).await?;
    expect_that(delivery == SignalDelivery::Sent, || {
        format!("SIGTERM to a running child's group was not sent: {delivery:?}")
    })?;
    let exit = started.handle.exit().await?;
    let sigterm = nix::sys::signal::Signal::SIGTERM as i32;
    expect_that(exit.code == Some(0) || exit.signal == Some(sigterm), || {
        format!("expected exit code 0 or SIGTERM, got {exit}")
    })?;
    expect_that(started.handle.try_exit() == Some(exit), || {
        format!(
            "try_exit says {:?} after the exit was observed as {exit}",
            started.handle.try_exit()
        )
    })
}

/// The child exits on its own; only after it is gone does anyone ask for its exit.
async fn early_exit(env: &Env, dir: &Path, spec: ResidentArgs) -> Result<()> {
    let spec = ResidentArgs {
        exit_code: Some(EARLY_EXIT_CODE),
        ..spec
    };
    let started = spawn_resident(Check::ChildEarlyExit, env, dir, "early-exit", &spec)?;
    let pid = started.handle.pid();
    let gone = os::poll_until(UNTIL_DEADLINE, Duration::from_millis(1), || {
        os::proc_stat(pid).is_none_or(|s| s.is_dead())
    })
    .await;
    if !gone {
        kill_child(&started.handle).await;
        bail!("the child never exited on its own");
    }
    let exit = started.handle.exit().await?;
    expect_that(exit.code == Some(i32::from(EARLY_EXIT_CODE)), || {
        format!("expected exit code {EARLY_EXIT_CODE}, got {exit}")
    })
}
