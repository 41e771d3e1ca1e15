//! P: resumes with the REAL `pi` runtimes, offline.
//!
//! Every other scenario launches a stand-in `pi` this project wrote. Here the library
//! meets the runtime it launches: each runtime found at setup (`harness::pi_runtimes`)
//! resumes a session that it wrote itself (one per runtime, which every check resumes
//! in turn and judges by what its own resume added: [`World::session`]), with the fixture extension (`real-pi/fixture/`, built
//! into this binary and written to the scratch dir) standing in for entwurf's control
//! extension: it accepts `--entwurf-control`, stands the control socket up and speaks the
//! control protocol on it (`get_info` names its session and pid; `send` delivers), holds
//! its turn until asked `fixture_release_turn` ([`fixture`]), and answers through the
//! offline provider `fixture/echo`.
//!
//! Each runtime works in its own dir: a `HOME`, an agent dir that is NOT pi's default
//! (so a resume that does not tell pi its agent dir fails), a project dir, locks and
//! logs. Every process of a runtime's checks inherits a marker variable naming this run
//! and the runtime; `P<n>.8` finds what is left by that marker, never by name. The
//! runtimes run concurrently, each one's resumes in order (`P<n>.6` beside them).
//!
//! By what each part does: [`world`] (a runtime's dirs and the resumes every check
//! makes the same way), [`session`] (reading the session files pi writes), [`fixture`]
//! (the fixture extension and its control socket), then the checks — [`mod@resume`]
//! (`P<n>.1`–`.3`, `.5`), [`mod@visible`] (`.4`), [`preflight`] (`.6`), [`dispatch`] (`.7`),
//! [`escapes`] (`.8`) — and [`strace`], the judge of `.8`'s trace.

use std::path::Path;

use anyhow::bail;

use super::shared::{Borrowing, Env, fail_all, join_all, kill_child, scratch, unmet_error};
use crate::harness::catalog::{Check, Scenario};
use crate::harness::catalog::{PiCheck, PiRuntime};
use crate::harness::cleanup::Scratch;
use crate::harness::runner::Runner;
use escapes::nothing_escapes;
use fixture::write_fixture;
use preflight::preflight_refusals;
use resume::{legacy, refused_argv, resume, turn};
use visible::visible;
use world::World;

mod dispatch;
mod escapes;
mod fixture;
mod preflight;
mod resume;
mod session;
mod strace;
mod visible;
mod world;

/// Runs the `P` line when no runtime was found, else every runtime's checks.
pub async fn run(runner: &Runner, env: &Env) {
    if runner.runs(Check::PiMissing) {
        // A skip, or on CI (unless the run opted out) a failure: `harness::needs`.
        let unmet = env.pi.unmet();
        runner
            .check(
                Check::PiMissing,
                async move { Err::<(), _>(unmet_error(unmet)) },
            )
            .await;
    }
    let checks: Vec<Check> = runner
        .selected()
        .iter()
        .copied()
        .filter(|c| matches!(c, Check::Pi(..)))
        .collect();
    let Some(scratch) = scratch(Scenario::Pi, runner, env, &checks).await else {
        return;
    };
    let fixture = match write_fixture(scratch.path()) {
        Ok(fixture) => fixture,
        Err(e) => {
            fail_all(
                runner,
                &checks,
                &format!("writing the fixture extension: {e}"),
            )
            .await;
            return;
        }
    };
    let fixture = fixture.as_path();
    let runtimes = env.pi.found.iter().map(|runtime| {
        Box::pin(one_runtime(runner, env, &scratch, fixture, runtime)) as Borrowing<'_>
    });
    join_all(runtimes.collect()).await;
}

/// `P<n>.1` to `P<n>.8` against `runtime`: the resumes in order, `P<n>.6` beside them,
/// `P<n>.8` last.
async fn one_runtime(
    runner: &Runner,
    env: &Env,
    scratch: &Scratch,
    fixture: &Path,
    runtime: &'static PiRuntime,
) {
    let check = |k| Check::Pi(runtime, k);
    let checks = runtime.checks();
    if !checks.iter().any(|c| runner.runs(*c)) {
        return;
    }
    let world = match World::new(env, scratch, fixture, runtime) {
        Ok(world) => world,
        Err(e) => {
            let why = format!("setting up pi {}'s dirs: {e:#}", runtime.version);
            fail_all(runner, &checks, &why).await;
            return;
        }
    };
    // `P<n>.6` asks the runtime its version and shares nothing with the others (no
    // session, no lock, no socket): it runs beside the chain of resumes, which must run
    // in order (they resume one session). `P<n>.8` comes after both: it looks for any
    // process of this runtime's checks left.
    let preflight = runner.check(check(PiCheck::Preflight), preflight_refusals(&world));
    let resumes = async {
        let resident = runner
            .check(check(PiCheck::ResumeSocketAlive), resume(&world))
            .await;
        runner
            .check(check(PiCheck::ResumeTurn), async {
                match &resident {
                    Some(r) => turn(&world, r).await,
                    None => bail!("not evaluated: the resume it inspects failed"),
                }
            })
            .await;
        if let Some(r) = &resident {
            if r.handle.try_exit().is_none() {
                kill_child(&r.handle).await;
            }
        }
        runner.check(check(PiCheck::Legacy), legacy(&world)).await;
        runner
            .check(check(PiCheck::Visible), visible(env, &world))
            .await;
        runner
            .check(check(PiCheck::RefusedArgv), refused_argv(&world))
            .await;
        runner
            .check(check(PiCheck::Dispatch), dispatch::c1(&world))
            .await;
    };
    tokio::join!(preflight, resumes);
    runner
        .check(check(PiCheck::NothingEscapes), nothing_escapes(&world))
        .await;
}
