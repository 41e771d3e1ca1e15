//! S1: `await_socket_alive` against real unix sockets, symlinks, files and backlogs.
//!
//! Every "resolves" check also asserts the listener really saw a connection, and every
//! "forged" check asserts it never did — so none can pass by construction.

use std::os::unix::net::UnixListener;
use std::path::Path;
use std::pin::pin;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tokio_util::sync::CancellationToken;

use entwurf_v2_spawn::Backend;
use entwurf_v2_spawn::socket::{
    AddressConflict, AwaitSocketError, Inspection, Probe, SUN_PATH_MAX, WaitOptions,
    await_socket_alive, inspect_and_probe,
};

use super::shared::{Env, bounded, scratch, unmet_error};
use crate::harness::catalog::{Check, Scenario};
use crate::harness::needs::Needs;
use crate::harness::runner::{Runner, expect_that, skip};
use crate::os::{bind_any_len, full_backlog, had_connection};

/// Short waits keep the run fast; the poll interval is the waiter's upper bound between
/// probes when no inotify event wakes it.
fn wait(backend: Backend) -> WaitOptions {
    WaitOptions::default()
        .with_poll_interval(Duration::from_millis(25))
        .with_probe_timeout(Duration::from_millis(100))
        .with_backend(backend)
}
/// How long a check lets a waiter run to show it keeps waiting.
const STILL_WAITING: Duration = Duration::from_millis(60);
/// How long a forged path may take to be rejected, or a listener to be noticed.
const PROMPT: Duration = Duration::from_secs(2);

/// Runs the selected S1 checks concurrently.
pub async fn run(runner: &Runner, env: &Env) {
    let checks = Scenario::Socket.checks();
    let Some(scratch) = scratch(Scenario::Socket, runner, env, &checks).await else {
        return;
    };
    // Every socket in the short socket dir, so that it fits sun_path for the portable
    // backend whatever TMPDIR is; S1.7's deliberately long path in the scratch dir.
    let (dir, b) = (scratch.sockets(), env.backend);
    tokio::join!(
        runner.check(Check::SocketListening, listening(b, dir)),
        runner.check(Check::SocketSymlink, symlink(b, dir)),
        runner.check(Check::SocketAbsentCancel, absent_then_cancel(b, dir)),
        runner.check(Check::SocketRegularFile, regular_file(b, dir)),
        runner.check(Check::SocketStale, stale(b, dir)),
        runner.check(Check::SocketBacklogFull, backlog_full(b, dir)),
        runner.check(Check::SocketLongPath, long_path(b, scratch.path())),
        runner.check(Check::SocketForeignOwner, foreign_owner(b, dir)),
    );
}

async fn await_alive(backend: Backend, path: &Path) -> Result<(), AwaitSocketError> {
    await_socket_alive(path, CancellationToken::new(), wait(backend)).await
}

async fn listening(backend: Backend, dir: &Path) -> Result<()> {
    let path = dir.join("listening.sock");
    let listener = bind_any_len(&path)?;
    bounded(PROMPT, "await_socket_alive", await_alive(backend, &path)).await??;
    expect_that(had_connection(&listener)?, || {
        "resolved, but the listener never saw a connection".into()
    })
}

/// Expects `path` to be rejected as forged with `conflict`, and `listener` (if any)
/// never connected.
async fn expect_forged(
    backend: Backend,
    path: &Path,
    conflict: AddressConflict,
    listener: Option<&UnixListener>,
) -> Result<()> {
    match bounded(
        PROMPT,
        "await_socket_alive on a forged path",
        await_alive(backend, path),
    )
    .await?
    {
        Err(AwaitSocketError::Forged { conflict: got, .. }) if got == conflict => {}
        other => bail!("expected forged ({conflict:?}), got {other:?}"),
    }
    if let Some(listener) = listener {
        expect_that(!had_connection(listener)?, || {
            "rejected, but the listener behind the path was connected".into()
        })?;
    }
    Ok(())
}

async fn symlink(backend: Backend, dir: &Path) -> Result<()> {
    let target = dir.join("symlink-target.sock");
    let listener = bind_any_len(&target)?;
    let path = dir.join("symlink.sock");
    std::os::unix::fs::symlink(&target, &path).context("symlink")?;
    expect_forged(backend, &path, AddressConflict::Symlink, Some(&listener)).await
}

async fn absent_then_cancel(backend: Backend, dir: &Path) -> Result<()> {
    let path = dir.join("absent.sock");
    let cancel = CancellationToken::new();
    let mut waiter = pin!(await_socket_alive(&path, cancel.clone(), wait(backend)));
    if let Ok(early) = tokio::time::timeout(STILL_WAITING, waiter.as_mut()).await {
        bail!("returned {early:?} for an absent socket before any cancellation");
    }
    cancel.cancel();
    match bounded(PROMPT, "the cancelled waiter", waiter).await? {
        Err(AwaitSocketError::Cancelled { .. }) => Ok(()),
        other => bail!("expected a cancellation error, got {other:?}"),
    }
}

async fn regular_file(backend: Backend, dir: &Path) -> Result<()> {
    let path = dir.join("regular.sock");
    std::fs::write(&path, b"not a socket").context("writing the file")?;
    expect_forged(backend, &path, AddressConflict::NotSocket, None).await
}

async fn stale(backend: Backend, dir: &Path) -> Result<()> {
    let path = dir.join("stale.sock");
    // Bound and closed, never listening: the socket file stays behind, nobody behind it.
    crate::os::bind_stale(&path)?;
    let seen = inspect_and_probe(&path, wait(backend).probe_timeout, backend).await;
    expect_that(
        seen.inspection == Inspection::SocketFile && matches!(seen.probe, Some(Probe::Dead(_))),
        || format!("a stale socket file observed as {seen:?}, not a dead socket file"),
    )?;
    let mut waiter = pin!(await_alive(backend, &path));
    if let Ok(early) = tokio::time::timeout(STILL_WAITING, waiter.as_mut()).await {
        bail!("returned {early:?} for a stale socket nobody listens on");
    }
    std::fs::remove_file(&path).context("removing the stale file")?;
    let listener = bind_any_len(&path)?;
    let since = Instant::now();
    bounded(
        PROMPT,
        "await_socket_alive after the listener appeared",
        waiter,
    )
    .await??;
    expect_that(had_connection(&listener)?, || {
        format!(
            "resolved {:?} after the listener appeared, but it saw no connection",
            since.elapsed()
        )
    })
}

/// A listener with backlog 0 takes one queued connection; the next non-blocking connect
/// gets EAGAIN. The waiter must keep waiting (never call that dead), and resolve once the
/// backlog is drained.
async fn backlog_full(backend: Backend, dir: &Path) -> Result<()> {
    let path = dir.join("backlog.sock");
    let full = full_backlog(&path, backend).await?;
    // The layer below the waiter: busy must read as indeterminate, never as dead.
    let seen = inspect_and_probe(&path, wait(backend).probe_timeout, backend).await;
    expect_that(matches!(seen.probe, Some(Probe::Indeterminate(_))), || {
        format!("a full backlog observed as {seen:?}, not indeterminate")
    })?;
    let mut waiter = pin!(await_alive(backend, &path));
    if let Ok(early) = tokio::time::timeout(STILL_WAITING, waiter.as_mut()).await {
        bail!("returned {early:?} while the backlog was full (must keep waiting)");
    }
    full.listener.set_nonblocking(true)?;
    while full.listener.accept().is_ok() {}
    drop(full.queued);
    bounded(
        PROMPT,
        "await_socket_alive after draining the backlog",
        waiter,
    )
    .await??;
    Ok(())
}

async fn long_path(backend: Backend, dir: &Path) -> Result<()> {
    let mut deep = dir.join("long");
    while deep.as_os_str().len() < 120 {
        deep.push("d".repeat(40));
    }
    std::fs::create_dir_all(&deep).context("creating the deep dir")?;
    let path = deep.join("long-path.sock");
    let len = path.as_os_str().len();
    expect_that(len > SUN_PATH_MAX, || {
        format!("the path is only {len} bytes")
    })?;
    let listener = bind_any_len(&path)?;
    if backend == Backend::Portable {
        // Unreachable by path: the check cannot pass, but the typed error must be there.
        return match bounded(PROMPT, "await_socket_alive", await_alive(backend, &path)).await? {
            Err(AwaitSocketError::PathTooLong { .. }) => Err(skip(format!(
                "the portable backend connects by path and sun_path holds {SUN_PATH_MAX} bytes: a {len}-byte path is a PathTooLong error there (checked)"
            ))),
            other => {
                bail!("portable backend, {len}-byte path: expected PathTooLong, got {other:?}")
            }
        };
    }
    bounded(PROMPT, "await_socket_alive", await_alive(backend, &path)).await??;
    expect_that(had_connection(&listener)?, || {
        format!("resolved for a {len}-byte path, but the listener saw no connection")
    })
}

async fn foreign_owner(backend: Backend, dir: &Path) -> Result<()> {
    if let Some(unmet) = Needs::Root.unmet(nix::unistd::geteuid().as_raw()) {
        return Err(unmet_error(unmet));
    }
    let path = dir.join("foreign.sock");
    let listener = bind_any_len(&path)?;
    let nobody = 65534;
    std::os::unix::fs::lchown(&path, Some(nobody), Some(nobody)).context("lchown")?;
    expect_forged(
        backend,
        &path,
        AddressConflict::ForeignOwner { uid: nobody },
        Some(&listener),
    )
    .await
}
