//! H: after every other check, the live gate itself must be as clean as it started.
//!
//! Runs last, after every scenario dropped its handles and temp dir. Supervisor tasks
//! of children that exited a moment ago may still be closing their pidfds, so each check
//! polls briefly before it calls something a leak.

use std::time::Duration;

use anyhow::Result;

use super::shared::Env;
use crate::harness::catalog::Check;
use crate::harness::cleanup;
use crate::harness::runner::{Runner, expect_that, skip};
use crate::os;

const SETTLE: Duration = Duration::from_millis(500);
const STEP: Duration = Duration::from_millis(2);

/// Runs H2 (which sweeps survivors), then H1 and H3.
pub async fn run(runner: &Runner, env: &Env) {
    runner.check(Check::HygieneChildren, children()).await;
    runner.check(Check::HygieneFds, fds(env)).await;
    // Only hygiene selected (`--only H1`), or only the P line of a run without real pi:
    // no check made a dir to look for.
    let scenario_ran = runner
        .selected()
        .iter()
        .any(|c| !c.is_hygiene() && *c != Check::PiMissing);
    runner
        .check(Check::HygieneTempDirs, temp_dirs(env, scenario_ran))
        .await;
}

/// Our children (including zombies: unreaped), and running members of any group we
/// started (a grandchild that escaped a kill).
fn leftovers() -> Vec<String> {
    let me = std::process::id();
    let groups = cleanup::groups();
    os::processes()
        .into_iter()
        .filter(|(_, s)| s.ppid == me || (groups.contains(&s.pgrp) && !s.is_dead()))
        .map(|(pid, s)| {
            format!(
                "pid {pid} (state {}, ppid {}, group {}) {:?}",
                s.state,
                s.ppid,
                s.pgrp,
                os::cmdline(pid)
            )
        })
        .collect()
}

async fn children() -> Result<()> {
    // An unreadable /proc would list no process at all and pass by construction: we
    // must at least see ourselves.
    let me = std::process::id();
    expect_that(os::processes().iter().any(|(pid, _)| *pid == me), || {
        "cannot list processes (/proc unreadable?): nothing would be checked".to_string()
    })?;
    let clean = os::poll_until(SETTLE, STEP, || leftovers().is_empty()).await;
    if clean {
        return Ok(());
    }
    let found = leftovers();
    // Clean up so the run still ends tidy, but report it: something was left behind.
    cleanup::kill_groups();
    expect_that(found.is_empty(), || {
        format!("left behind: {}", found.join("; "))
    })
}

fn leaked(env: &Env) -> Vec<String> {
    os::open_fds()
        .into_iter()
        .filter(|(fd, target)| env.baseline_fds.get(fd) != Some(target))
        .map(|(fd, target)| format!("fd {fd} → {target}"))
        .collect()
}

async fn fds(env: &Env) -> Result<()> {
    // stdin/stdout/stderr at least: an empty baseline means /proc/self/fd was unreadable
    // and the comparison below would pass by construction.
    expect_that(!env.baseline_fds.is_empty(), || {
        "no descriptor listed at the start (/proc/self/fd unreadable?)".to_string()
    })?;
    os::poll_until(SETTLE, STEP, || leaked(env).is_empty()).await;
    let leaked = leaked(env);
    expect_that(leaked.is_empty(), || {
        format!("open since the start: {}", leaked.join(", "))
    })
}

async fn temp_dirs(env: &Env, scenario_ran: bool) -> Result<()> {
    let dirs = cleanup::temp_dirs();
    if !scenario_ran {
        return Err(skip(
            "no selected check makes a temp dir (only hygiene, or no real pi runtime)",
        ));
    }
    if env.keep_tmp {
        return Err(skip(format!("--keep-tmp kept {} temp dir(s)", dirs.len())));
    }
    // A failed check's dir is kept on purpose; its failure is already reported. The
    // others are being removed on the blocking pool as their scenarios ended.
    let kept = cleanup::kept_temp_dirs();
    let left = || -> Vec<String> {
        dirs.iter()
            .filter(|d| d.exists() && !kept.contains(d))
            .map(|d| d.display().to_string())
            .collect()
    };
    os::poll_until(SETTLE, STEP, || left().is_empty()).await;
    let left = left();
    // Every scenario makes one; none registered would make this check vacuous.
    expect_that(!dirs.is_empty(), || {
        "no temp dir was registered, nothing to verify".into()
    })?;
    expect_that(left.is_empty(), || {
        format!("still on disk: {}", left.join(", "))
    })?;
    // "Every temp dir removed" is not so while a failed check's dir is kept: say what
    // was checked instead of passing (the failure itself is reported on its own line).
    if !kept.is_empty() {
        return Err(skip(format!(
            "{} temp dir(s) kept for failed checks (their paths are printed with them); every other one removed",
            kept.len()
        )));
    }
    Ok(())
}
