//! `P<n>.8`: one resume under strace, judged by [`super::strace`], and no process of the
//! runtime's checks left behind (found by the marker every one of them inherits).

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};

use entwurf_v2_spawn::error_chain;

use super::fixture::{self, fixture_args};
use super::strace::escapes;
use super::world::{OBSERVE, World};
use crate::harness::catalog::Check;
use crate::harness::catalog::PiCheck;
use crate::harness::needs::Needs;
use crate::harness::runner::expect_that;
use crate::os;
use crate::scenarios::shared::{
    bounded, expect_resident, kill_child, off_thread, stderr_note, unmet_error,
};

/// `P<n>.8`: one more resume, traced: no inet socket, no write outside the world's dir;
/// then no process carrying this runtime's marker is left.
pub async fn nothing_escapes(world: &World) -> Result<()> {
    let euid = nix::unistd::geteuid().as_raw();
    let no_strace = off_thread(move || Ok(Needs::Strace.unmet(euid))).await?;
    let traced = match no_strace {
        None => Some(traced_resume(world).await),
        Some(_) => None,
    };
    // Whatever the traced resume did, what this runtime's checks started must be gone.
    let marker = world.marker.clone();
    let left = move || marked_processes(&marker);
    let clean = os::poll_until(Duration::from_secs(2), Duration::from_millis(10), || {
        left().is_empty()
    })
    .await;
    expect_that(clean, || {
        let marker = world.marker.clone();
        format!(
            "processes of this runtime's checks are left: {:?}",
            marked_processes(&marker)
        )
    })?;
    match (traced, no_strace) {
        (Some(traced), _) => traced,
        // No process was left, but the traced resume did not run: a skip, or on CI a
        // failure, in `--list`'s words.
        (None, unmet) => Err(unmet_error(unmet.unwrap_or_else(|| {
            crate::harness::needs::Unmet::new("the traced resume did not run", true)
        }))),
    }
}

/// `P<n>.8`'s resume under strace: no inet call, no write outside the world's dirs.
pub async fn traced_resume(world: &World) -> Result<()> {
    let owner = Check::Pi(world.runtime, PiCheck::NothingEscapes);
    let (gid, _file) = world.session(owner).await?;
    let trace = world.logs.join(format!("{gid}.strace"));
    // strace runs the guarded launcher, not the other way round: strace waits for every
    // child of its own, so a guard's watcher started beside it would never let it end.
    // Traced, the guard and its watcher run in strace's process group, which the
    // watcher kills when the gate dies.
    let traced = world.root.join("bin/pi-traced");
    std::fs::write(&traced, traced_launcher(&trace, &world.program))
        .context("the traced launcher")?;
    std::fs::set_permissions(&traced, std::fs::Permissions::from_mode(0o755))?;
    let (mut options, _releases) = world.options(owner, fixture_args(&world.fixture))?;
    options.shared.pi_program = traced.into_os_string();
    let (outcome, _claim, socket) = world.spawn_bg(options, &gid).await?;
    let (_, _, resident) = expect_resident(outcome, &world.log(&gid)).await?;
    let ran = async {
        // The leftover search below finds processes by the marker: it can fail only if
        // the marker reaches them. Proved on the process that matters, live: pi itself
        // (its pid from the fixture's get_info), a grandchild of the child started here.
        let info = fixture::info(&socket, world.backend).await?;
        let marker = world.marker.clone();
        let marked = off_thread(move || Ok(marked_processes(&marker))).await?;
        expect_that(marked.contains(&info.pid), || {
            format!(
                "the running pi (pid {}) does not carry the marker {}: the leftover search could not see it (marked: {marked:?})",
                info.pid,
                world.marker.0.to_string_lossy()
            )
        })?;
        fixture::release_turn(&socket).await?;
        let exit = bounded(OBSERVE, "the traced resident's exit", resident.exit())
            .await?
            .map_err(|e| anyhow!("{}", error_chain(&e)))?;
        expect_that(exit.code == Some(0), || {
            format!(
                "traced pi ended with {exit}{}",
                stderr_note(&world.log(&gid))
            )
        })
    }
    .await;
    if let Err(e) = ran {
        kill_child(&resident).await;
        return Err(e);
    }
    let text = std::fs::read_to_string(&trace).context("reading the trace")?;
    let escapes = escapes(&text, &world.work, &[&world.root, &world.sockets]);
    expect_that(escapes.is_empty(), || {
        format!(
            "{} call(s) reached beyond the scratch dir: {}",
            escapes.len(),
            escapes.join(" | ")
        )
    })?;
    expect_that(text.contains("bind("), || {
        "the trace shows no bind: did strace trace pi?".into()
    })
}

/// A launcher that runs `launcher` under strace, logging every network call, every call
/// that creates, writes, renames or removes a file, and what a relative path is relative
/// to: `-y` names each descriptor's path (`AT_FDCWD</cwd>`, `5</dir>`, an open's result),
/// and a process's changes of directory and its children are traced for the rest.
/// `--seccomp-bpf` stops the tracee only at those calls, not at every one (a traced
/// `pi --version` of 0.84.1: 2.5 s of CPU without it, 1.6 s with it, 0.95 s untraced);
/// a kernel without seccomp makes strace fall back to stopping at every call.
pub fn traced_launcher(trace: &Path, launcher: &Path) -> String {
    format!(
        "#!/bin/sh\nexec strace --seccomp-bpf -f -qq -y -o '{}' -e trace=%network,open,openat,creat,mkdir,mkdirat,rename,renameat,renameat2,unlink,unlinkat,rmdir,symlink,symlinkat,link,linkat,truncate,chdir,fchdir,clone,clone3,fork,vfork '{}' \"$@\"\n",
        trace.display(),
        launcher.display()
    )
}

/// Pids of the processes whose environment holds `marker` (name=value).
pub fn marked_processes(marker: &(OsString, OsString)) -> Vec<u32> {
    let mut needle = marker.0.clone();
    needle.push("=");
    needle.push(&marker.1);
    let needle = needle.into_encoded_bytes();
    os::processes()
        .into_iter()
        .filter(|(_, stat)| !stat.is_dead())
        .filter(|(pid, _)| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|b| *b == 0).any(|var| var == needle.as_slice()))
        })
        .map(|(pid, _)| pid)
        .collect()
}
