//! R: a resume end to end, with nothing swapped out but `pi` itself.
//!
//! A synthetic saved session (header + model change, next to a decoy session of another
//! gid) sits under a temp agent dir. The default identity resolver reads it, the default
//! spawner starts `<tmp>/bin/pi` — a symlink to this binary, which then plays the
//! stand-in `pi` (see `stand_ins`) — in the session's cwd, the watcher sees its control
//! socket come alive, and the default release removes the real lock file. The resident
//! must still run after that; the check then stops it.

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::json;

use entwurf_v2_spawn::lock::ReleaseOutcome;
use entwurf_v2_spawn::production::child::ChildHandle;
use entwurf_v2_spawn::production::{ProductionDeps, ProductionOptions, StderrPolicy};
use entwurf_v2_spawn::resume_args::PassthroughArgs;
use entwurf_v2_spawn::watcher::{StopSignal, execute_spawn_bg_resume};
use entwurf_v2_spawn::{GardenId, SpawnBgPlan};

use super::shared::{
    Env, acquire_off_thread, bounded, expect_resident, kill_child, off_thread, scratch, spawner_for,
};
use crate::harness::catalog::{Check, Scenario};
use crate::harness::runner::{Runner, expect_that};
use crate::os;
use crate::stand_ins::{expected_pi_args, pi_fixture};

/// Generous: the stand-in binds within milliseconds; the timer only matters on failure.
const OBSERVE: Duration = Duration::from_secs(3);

/// Runs R1 then R2 (R2 inspects and stops the resident R1 brought up).
pub async fn run(runner: &Runner, env: &Env) {
    let checks = Scenario::Resume.checks();
    let Some(scratch) = scratch(Scenario::Resume, runner, env, &checks).await else {
        return;
    };
    let resident = runner
        .check(
            Check::ResumeEndToEnd,
            end_to_end(env, scratch.path(), scratch.sockets()),
        )
        .await;
    runner
        .check(Check::ResumeResident, async {
            match &resident {
                Some(r) => still_alive_then_stop(r).await,
                None => bail!("not evaluated: the resume it inspects failed"),
            }
        })
        .await;
    if let Some(r) = &resident {
        if r.handle.try_exit().is_none() {
            kill_child(&r.handle).await;
        }
    }
}

/// The resident R1 leaves for R2.
struct Resident {
    handle: ChildHandle,
    socket: PathBuf,
}

/// Writes the session file of each of `gids` (cwd `work`) and one decoy of another gid
/// (the dispatch scenario saves all its citizens' sessions at once). As pi keeps them:
/// one dir per cwd, here `--smoke--` for ours and `--smoke-decoy--` for the decoy's.
pub fn saved_sessions(agent: &Path, gids: &[GardenId], work: &Path) -> Result<()> {
    let now = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
    let decoy = GardenId::parse("20200101T000000-dec0de").map_err(|e| anyhow!("{e}"))?;
    let ours = gids
        .iter()
        .map(|gid| (gid, work, pi_fixture::MODEL, "--smoke--"));
    let decoy = (
        &decoy,
        Path::new("/nonexistent"),
        "decoy-model",
        "--smoke-decoy--",
    );
    for (id, cwd, model, dir) in ours.chain([decoy]) {
        let dir = agent.join("sessions").join(dir);
        std::fs::create_dir_all(&dir).context("sessions dir")?;
        let lines = [
            json!({"type": "session", "version": 3, "id": id.as_str(), "timestamp": now, "cwd": cwd}),
            json!({"type": "model_change", "timestamp": now, "provider": pi_fixture::PROVIDER, "modelId": model}),
            json!({"type": "message", "timestamp": now, "message": {"role": "user", "content": "hello"}}),
        ];
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        std::fs::write(dir.join(format!("{now}_{id}.jsonl")), text)
            .context("writing the session")?;
    }
    Ok(())
}

/// `dir` is the scratch dir; the session's cwd, where the stand-in binds its control
/// socket, is in `sockets` (short: the portable backend connects by path).
async fn end_to_end(env: &Env, dir: &Path, sockets: &Path) -> Result<Resident> {
    let gid = GardenId::generate(SystemTime::now())?;
    let work = sockets.join("work");
    let agent = dir.join("agent");
    let bin = dir.join("bin");
    let pi = bin.join(pi_fixture::PROGRAM_NAME);
    {
        let (work, agent, bin, pi, gid, exe) = (
            work.clone(),
            agent.clone(),
            bin.clone(),
            pi.clone(),
            gid.clone(),
            env.exe.clone(),
        );
        off_thread(move || {
            std::fs::create_dir_all(work.join(pi_fixture::CONTROL_DIR)).context("control dir")?;
            saved_sessions(&agent, std::slice::from_ref(&gid), &work)?;
            std::fs::create_dir_all(&bin).context("bin dir")?;
            std::os::unix::fs::symlink(&exe, &pi).context("linking the stand-in pi")
        })
        .await?;
    }

    // HOME of the options is a temp dir too: nothing may reach the real ~/.pi.
    let mut options = ProductionOptions::with_home(&dir.join("home"), Some(agent));
    options.shared.control_dir = work.join(pi_fixture::CONTROL_DIR);
    options.shared.lock_dir = dir.join("locks");
    options.shared.backend = env.backend;
    options.shared.pi_program = pi.clone().into_os_string();
    options.shared.extension_args = PassthroughArgs::new(pi_fixture::EXTENSION_ARGS)
        .context("the stand-in's extension args")?;
    options.stderr = StderrPolicy::LogDir(dir.join("logs"));
    options.spawner = spawner_for(Check::ResumeEndToEnd);
    options.shared.poll_interval = Duration::from_millis(25);
    options.shared.probe_timeout = Duration::from_millis(100);
    options.term_grace = Duration::from_millis(150);
    options.kill_grace = Duration::from_millis(500);
    let (release, releases) = super::shared::counting_release();
    options.shared.release = release;

    let claim = acquire_off_thread(options.shared.lock_dir.clone(), gid.clone()).await?;
    let socket = options.socket_path(&gid);
    let plan = SpawnBgPlan::new(gid.clone(), pi_fixture::PROMPT, socket.clone(), OBSERVE)?
        .with_launch_args(pi_fixture::LAUNCH_ARGS)?
        .with_cwd(&work)?;
    let log = dir.join("logs").join(format!("{gid}.stderr.log"));
    let deps = ProductionDeps::new(options);
    let outcome = execute_spawn_bg_resume(&plan, Some(&claim), &deps).await?;
    let (pid, release, handle) = expect_resident(outcome, &log).await?;
    let resident = Resident { handle, socket };
    let checked = (|| {
        expect_that(release == ReleaseOutcome::Released, || {
            format!("the release said {release:?}")
        })?;
        let n = releases.load(Ordering::SeqCst);
        expect_that(n == 1, || format!("release was called {n} times"))?;
        expect_that(!claim.lock_path().exists(), || {
            format!("{} still exists", claim.lock_path().display())
        })?;
        let mut want = vec![pi.to_string_lossy().into_owned()];
        want.extend(expected_pi_args(gid.as_str()));
        let argv = os::cmdline(pid);
        expect_that(argv == want, || {
            format!("the resident runs {argv:?}, expected {want:?}")
        })?;
        let cwd =
            std::fs::read_link(format!("/proc/{pid}/cwd")).context("reading the resident's cwd")?;
        expect_that(cwd == work, || {
            format!(
                "the resident runs in {}, not the session's {}",
                cwd.display(),
                work.display()
            )
        })
    })();
    if let Err(e) = checked {
        kill_child(&resident.handle).await;
        return Err(e);
    }
    Ok(resident)
}

async fn still_alive_then_stop(r: &Resident) -> Result<()> {
    let pid = r.handle.pid();
    // Let a resident that dies right after the release be caught dying.
    tokio::time::sleep(Duration::from_millis(20)).await;
    expect_that(r.handle.try_exit().is_none(), || {
        format!(
            "the resident (pid {pid}) exited after the release: {:?}",
            r.handle.try_exit()
        )
    })?;
    expect_that(os::proc_stat(pid).is_some_and(|s| !s.is_dead()), || {
        format!("pid {pid} is not running")
    })?;
    // Through a /proc/self/fd alias when the temp dir makes the path too long for
    // sun_path: the resident must still answer, whatever the path length.
    let (address, _dir) = os::socket_alias(&r.socket)?;
    UnixStream::connect(&address)
        .with_context(|| format!("connecting to {} after the release", r.socket.display()))?;
    r.handle.signal(StopSignal::Terminate).await?;
    let exit = bounded(
        Duration::from_secs(2),
        "the resident's exit after SIGTERM",
        r.handle.exit(),
    )
    .await??;
    expect_that(exit.code == Some(0), || {
        format!("the stand-in pi ended with {exit}, not exit code 0")
    })?;
    expect_that(!r.socket.exists(), || {
        "the stand-in left its socket behind".into()
    })
}
