//! `P<n>.4`: the visible resume of a real pi in a private tmux server.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};

use entwurf_v2_spawn::visible::{Launcher, ObservationReceipt, VisibleOptions, visible_resume};
use entwurf_v2_spawn::{GardenId, error_chain};

use super::fixture::{self, fixture_args};
use super::world::{OBSERVE, World, released_once};
use crate::harness::catalog::Check;
use crate::harness::catalog::PiCheck;
use crate::harness::needs::Needs;
use crate::harness::runner::expect_that;
use crate::os;
use crate::scenarios::shared::{Env, bounded, off_thread, unmet_error};
use crate::scenarios::visible::server::Server;

/// `P<n>.4`: the visible resume in a private tmux server's window; then the window is
/// closed and the pane's exit observed.
pub async fn visible(env: &Env, world: &World) -> Result<()> {
    let owner = Check::Pi(world.runtime, PiCheck::Visible);
    let euid = nix::unistd::geteuid().as_raw();
    if let Some(unmet) = off_thread(move || Ok(Needs::Tmux.unmet(euid))).await? {
        return Err(unmet_error(unmet));
    }
    let (gid, file) = world.session(owner).await?;
    let transcript = std::fs::read(&file).context("reading the transcript")?;
    let server_dir = world.root.join("tmux");
    std::fs::create_dir_all(&server_dir).context("the tmux server's dir")?;
    let server = Server::start(&server_dir, world.tmux_socket.clone(), env, owner)
        .await
        .context("starting the private tmux server")?;
    let result = visible_in(world, &server, &gid, &file, &transcript).await;
    let stopped = server.stop(None).await;
    let pane_pid = result?;
    stopped?;
    let gone = os::poll_until(Duration::from_secs(2), Duration::from_millis(5), || {
        os::proc_stat(pane_pid).is_none_or(|s| s.is_dead())
    })
    .await;
    expect_that(gone, || format!("pi (pid {pane_pid}) outlived its window"))
}

/// The part of `P<n>.4` that needs the server; returns the pane's pid.
pub async fn visible_in(
    world: &World,
    server: &Server,
    gid: &GardenId,
    file: &Path,
    transcript: &[u8],
) -> Result<u32> {
    let owner = Check::Pi(world.runtime, PiCheck::Visible);
    let (production, releases) = world.options(owner, fixture_args(&world.fixture))?;
    let mut options = VisibleOptions::from_production(&production);
    options.shared.release = production.shared.release.clone();
    options.observe_timeout = OBSERVE;
    let socket = options.socket_path(gid);
    let launcher = server.launcher();
    let done = visible_resume(gid, &options, &launcher)
        .await
        .map_err(|e| anyhow!("{}", error_chain(&e)))?;
    let receipt = done.launch.clone();
    // (How long pi took to come up is its own start-up, not bounded here: the bench
    // measures it.)
    let ObservationReceipt::SocketAlive { .. } = done.observation else {
        bail!("expected socket-alive, got {}", done.observation);
    };
    released_once(
        &releases,
        &entwurf_v2_spawn::lock::lock_path(&options.shared.lock_dir, gid),
    )?;
    let windows = server.windows().await?;
    expect_that(windows.contains(&receipt.window_id), || {
        format!(
            "window {} is gone after the resume: {windows:?}",
            receipt.window_id
        )
    })?;
    let info = fixture::info(&socket, world.backend).await?;
    expect_that(
        info.session_id == gid.as_str() && info.pid == receipt.pane_pid,
        || {
            format!(
                "the socket is session {} of pid {}, not {gid} of the pane's pid {}",
                info.session_id, info.pid, receipt.pane_pid
            )
        },
    )?;
    // Watched before the window closes, so the exit cannot be missed.
    let exited = launcher
        .watch_pane_exit(&receipt)
        .map_err(|e| anyhow!("watching the pane: {e}"))?;
    server.kill_window(&receipt.window_id).await?;
    bounded(
        Duration::from_secs(10),
        "pane-exited after the window closed",
        exited,
    )
    .await?
    .map_err(|e| anyhow!("watching the pane: {e}"))?;
    let now = std::fs::read(file).context("reading the transcript")?;
    expect_that(now == transcript, || {
        format!(
            "the transcript changed ({} → {} bytes): a visible resume runs no turn",
            transcript.len(),
            now.len()
        )
    })?;
    Ok(receipt.pane_pid)
}
