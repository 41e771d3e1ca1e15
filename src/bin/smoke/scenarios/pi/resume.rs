//! The headless resumes: `P<n>.1` (spawn-bg `v2-control` → socket-alive), `P<n>.2` (the
//! resident's offline turn), `P<n>.3` (legacy) and `P<n>.5` (pi refusing the argv).

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};

use entwurf_v2_spawn::lock::ReleaseOutcome;
use entwurf_v2_spawn::production::ResumeLaunch;
use entwurf_v2_spawn::production::child::ChildHandle;
use entwurf_v2_spawn::watcher::SpawnBgOutcome;
use entwurf_v2_spawn::{GardenId, error_chain};

use super::fixture::{self, fixture_args};
use super::session::{header, turns};
use super::world::{OBSERVE, PROMPT, World, control_in, released_once};
use crate::harness::catalog::Check;
use crate::harness::catalog::PiCheck;
use crate::harness::runner::expect_that;
use crate::scenarios::shared::{
    bounded, expect_resident, kill_child, spawner_for, stderr_note, unexpected,
};

/// What `P<n>.1` leaves for `P<n>.2`.
pub struct Resident {
    /// The resident pi.
    pub handle: ChildHandle,
    gid: GardenId,
    file: PathBuf,
    header: String,
    before: Vec<(String, String)>,
}

/// `P<n>.1`: the spawn-bg `v2-control` resume of a session pi wrote.
pub async fn resume(world: &World) -> Result<Resident> {
    let owner = Check::Pi(world.runtime, PiCheck::ResumeSocketAlive);
    let (gid, file) = world.session(owner).await?;
    let (header, before) = (header(&file)?, turns(&file)?);
    let (options, releases) = world.options(owner, fixture_args(&world.fixture))?;
    let (outcome, claim, socket) = world.spawn_bg(options, &gid).await?;
    let (pid, release, handle) = expect_resident(outcome, &world.log(&gid)).await?;
    let resident = Resident {
        handle,
        gid: gid.clone(),
        file,
        header,
        before,
    };
    let checked = async {
        expect_that(release == ReleaseOutcome::Released, || {
            format!("the release said {release:?}")
        })?;
        released_once(&releases, claim.lock_path())?;
        // (pi renames its process to `pi`, so its argv cannot be read back from /proc:
        // the socket's `get_info` below names the session it runs, and P<n>.2 finds the
        // turn — which only the model from pi's own file can answer — in that file.)
        let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).context("the resident's cwd")?;
        expect_that(cwd == world.work, || {
            format!(
                "pi runs in {}, not the session's {}",
                cwd.display(),
                world.work.display()
            )
        })?;
        let info = fixture::info(&socket, world.backend).await?;
        expect_that(info.session_id == gid.as_str(), || {
            format!(
                "the socket belongs to session {}, not {gid}",
                info.session_id
            )
        })?;
        expect_that(info.pid == pid, || {
            format!("the socket is pid {}'s, not the resident's {pid}", info.pid)
        })?;
        // Only now is the turn released: the resident was observed before it worked.
        fixture::release_turn(&socket).await
        // Not signalled: socket-alive came with `after_signal: None` (matched above), and
        // P<n>.2 sees the resident end with exit code 0, not by a signal.
    }
    .await;
    if let Err(e) = checked {
        kill_child(&resident.handle).await;
        return Err(e);
    }
    Ok(resident)
}

/// The turn a resume of `PROMPT` appends.
pub fn the_turn() -> Vec<(String, String)> {
    vec![
        ("user".to_owned(), PROMPT.to_owned()),
        ("assistant".to_owned(), format!("echo: {PROMPT}")),
    ]
}

/// `P<n>.2`: the resident runs the turn it was told to and exits 0; the file gained
/// exactly that turn.
pub async fn turn(world: &World, r: &Resident) -> Result<()> {
    let exit = bounded(
        OBSERVE,
        "the resident's exit after its turn",
        r.handle.exit(),
    )
    .await?
    .map_err(|e| anyhow!("{}", error_chain(&e)))?;
    expect_that(exit.code == Some(0), || {
        format!("pi ended with {exit}{}", stderr_note(&world.log(&r.gid)))
    })?;
    let files = world.sessions_of(&r.gid);
    expect_that(files == [r.file.clone()], || {
        format!("the resume minted another session: {files:?}")
    })?;
    expect_that(header(&r.file)? == r.header, || {
        "the session header changed".into()
    })?;
    let after = turns(&r.file)?;
    let added = after.get(r.before.len()..).unwrap_or_default();
    expect_that(after.starts_with(&r.before), || {
        "the earlier history changed".into()
    })?;
    expect_that(added == the_turn(), || {
        format!("expected exactly the resumed turn, the file gained {added:?}")
    })
}

/// `P<n>.3`: the legacy one-shot worker: extension discovery off, the fixture passed as an
/// extension arg, no control flag — so no socket; the exit releases. The production deps
/// build the `v2-control` argv; a dispatcher wanting `legacy` says so in its spawner,
/// which sees the plan and the resolved identity.
pub async fn legacy(world: &World) -> Result<()> {
    use entwurf_v2_spawn::resume_args::{ResumeArgs, ResumeVariant, build_resume_pi_args};
    let owner = Check::Pi(world.runtime, PiCheck::Legacy);
    let (gid, file) = world.session(owner).await?;
    let before = turns(&file)?;
    let (mut options, releases) = world.options(owner, fixture_args(&world.fixture))?;
    // A control dir of this check's own, which the fixture creates only when told
    // `--entwurf-control` (and never removes): its absence afterwards proves no socket
    // was ever stood up, where a missing socket file would not (the fixture unlinks its
    // socket on shutdown). In the runtime's part of the short socket dir: the
    // portable backend refuses a socket path longer than sun_path before it starts pi.
    let control = world.sockets.join("legacy-control");
    control_in(&mut options, control.clone());
    let register = spawner_for(owner);
    options.spawner = Arc::new(move |launch: &ResumeLaunch<'_>| {
        let identity = launch.identity;
        let args = build_resume_pi_args(&ResumeArgs {
            variant: ResumeVariant::Legacy,
            session_id: launch.plan.session_id().as_str(),
            extension_args: &identity.extension_args,
            provider: identity.provider.as_deref(),
            model: &identity.model,
            prompt: launch.plan.prompt(),
            launch_args: launch.plan.launch_args(),
        });
        let mut request = launch.request.clone();
        request.args = args.into_iter().map(OsString::from).collect();
        register(&ResumeLaunch::new(launch.plan, identity, &request))
    });
    let (outcome, claim, _socket) = world.spawn_bg(options, &gid).await?;
    let SpawnBgOutcome::ChildExited {
        exit, release, pid, ..
    } = outcome
    else {
        let e = unexpected(outcome, "child-exited").await;
        bail!("{e}{}", stderr_note(&world.log(&gid)));
    };
    expect_that(exit.code == Some(0), || {
        format!(
            "legacy pi (pid {pid}) ended with {exit}{}",
            stderr_note(&world.log(&gid))
        )
    })?;
    expect_that(release == ReleaseOutcome::Released, || {
        format!("the release said {release:?}")
    })?;
    released_once(&releases, claim.lock_path())?;
    expect_that(!control.exists(), || {
        format!(
            "the fixture stood a control socket up in {} without --entwurf-control",
            control.display()
        )
    })?;
    let after = turns(&file)?;
    let added = after.get(before.len()..).unwrap_or_default();
    expect_that(added == the_turn(), || {
        format!("expected the turn in the file, it gained {added:?}")
    })
}

/// `P<n>.5`: pi itself refuses the argv (no extension defines `--entwurf-control`): the
/// exit releases, and what pi said is in the outcome.
pub async fn refused_argv(world: &World) -> Result<()> {
    let owner = Check::Pi(world.runtime, PiCheck::RefusedArgv);
    let (gid, _file) = world.session(owner).await?;
    let (options, releases) = world.options(owner, Vec::new())?;
    let (outcome, claim, _socket) = world.spawn_bg(options, &gid).await?;
    let SpawnBgOutcome::ChildExited {
        exit, stderr_tail, ..
    } = outcome
    else {
        return Err(unexpected(outcome, "child-exited").await);
    };
    expect_that(exit.code.is_some_and(|c| c != 0), || {
        format!("pi ended with {exit}, not a refusal")
    })?;
    released_once(&releases, claim.lock_path())?;
    let said = stderr_tail.unwrap_or_default();
    expect_that(said.contains("Unknown option: --entwurf-control"), || {
        format!("the outcome does not carry pi's own line; its stderr tail: {said:?}")
    })
}
