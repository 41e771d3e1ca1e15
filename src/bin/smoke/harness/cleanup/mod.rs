//! The one owner of what the live gate starts and must clean up on every way out: child
//! process groups and temp dirs (made here, marked on disk by `temp_dirs`). The normal
//! end, an abandoned check, a signal and the watchdog all end here ([`cleanup`]).
//!
//! Its state is the one process-wide value of the binary ([`OWNER`]), not a value passed
//! around, because the signal path runs outside the scenarios that own the children,
//! spawners run on tokio's blocking pool, and the watchdog runs on a thread of its own.
//!
//! # Why no group can be missed
//!
//! A spawn runs *inside* the registry lock ([`spawn_group`]): the child is forked,
//! execs, and its group is recorded before the lock is released. Cleanup takes the same
//! lock, so it sees either no child or a registered one — never a child that runs but is
//! not listed yet (the old order, register after `spawn_child` returned, lost a group
//! whenever Ctrl-C landed between the two). Cleanup also closes the registry: a spawn
//! asked for afterwards is refused instead of starting a child nobody will kill. Spawns
//! are serialized by this; each takes a few milliseconds.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use crate::harness::catalog::{Check, Scenario};
use crate::harness::report::Cleanup;
use crate::os::{self, ProcessId};

pub mod temp_dirs;

/// Why [`spawn_group`] started nothing.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// Cleanup began: the run is ending.
    #[error("the run is cleaning up: no new child is started")]
    Closed,
    /// The check that asked was abandoned at its deadline.
    #[error("check {0} was abandoned at its deadline: no new child is started for it")]
    Abandoned(&'static str),
}

struct Group {
    pgid: u32,
    owner: Check,
}

struct TempDir {
    path: PathBuf,
    scenario: Scenario,
}

struct Registry {
    closed: bool,
    groups: Vec<Group>,
    abandoned: Vec<Check>,
    dirs: Vec<TempDir>,
    /// Scenarios with a failed check: their temp dirs stay.
    failed: BTreeSet<Scenario>,
    keep_all: bool,
}

/// Everything the cleanup owner holds: the registry, and the count of blocking tasks.
struct Owner {
    registry: Mutex<Registry>,
    /// Blocking tasks still running (lock I/O off the runtime thread). A check dropped at
    /// a signal or its deadline does not stop them, and they may recreate a dir being
    /// removed (`lock::acquire` creates its lock dir), so cleanup waits for them first.
    /// Not under the lock: a spawn holds that for milliseconds, and counting a task in
    /// happens on the runtime thread.
    blocking: AtomicUsize,
}

/// The cleanup owner's state: the one global of the binary (see the module docs).
static OWNER: Owner = Owner {
    registry: Mutex::new(Registry {
        closed: false,
        groups: Vec::new(),
        abandoned: Vec::new(),
        dirs: Vec::new(),
        failed: BTreeSet::new(),
        keep_all: false,
    }),
    blocking: AtomicUsize::new(0),
};

fn with<T>(f: impl FnOnce(&mut Registry) -> T) -> T {
    // A panic while holding the lock leaves consistent vectors behind; keep using them.
    let mut guard = OWNER
        .registry
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    f(&mut guard)
}

/// Held while a blocking task runs (see [`Owner::blocking`]).
pub struct BlockingGuard(());

impl BlockingGuard {
    /// Counts one blocking task in; dropping the guard counts it out.
    pub fn enter() -> Self {
        OWNER.blocking.fetch_add(1, Ordering::SeqCst);
        Self(())
    }
}

impl Drop for BlockingGuard {
    fn drop(&mut self) {
        OWNER.blocking.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Starts a child in a new process group for `owner` and records the group before the
/// registry lock is released (see the module docs). `pgid` names the group of what
/// `spawn` returned (the child's pid: every child here leads its own group).
pub fn spawn_group<T, E>(
    owner: Check,
    spawn: impl FnOnce() -> Result<T, E>,
    pgid: impl FnOnce(&T) -> u32,
) -> Result<Result<T, E>, Refused> {
    with(|r| {
        if r.closed {
            return Err(Refused::Closed);
        }
        if r.abandoned.contains(&owner) {
            return Err(Refused::Abandoned(owner.id()));
        }
        let spawned = spawn();
        if let Ok(child) = &spawned {
            r.groups.push(Group {
                pgid: pgid(child),
                owner,
            });
        }
        Ok(spawned)
    })
}

/// Every process group ever registered.
pub fn groups() -> Vec<u32> {
    with(|r| r.groups.iter().map(|g| g.pgid).collect())
}

/// SIGKILLs each of `pgids` that still has a running member; returns how many.
///
/// Only groups with a live member are signalled: a pid cannot be reused while it is
/// still some process's group id, so a group found populated is still the one we
/// started. (A group that empties between the scan and the kill, and whose id is reused
/// in that instant, is the one gap left; pids are not reused that fast in practice.)
fn kill(pgids: &[u32]) -> usize {
    let populated: BTreeSet<u32> = os::processes()
        .into_iter()
        .filter(|(_, s)| !s.is_dead())
        .map(|(_, s)| s.pgrp)
        .collect();
    let mut killed = 0;
    for pgid in pgids.iter().filter(|p| populated.contains(p)) {
        if let Ok(raw) = i32::try_from(*pgid) {
            if killpg(Pid::from_raw(raw), Signal::SIGKILL).is_ok() {
                killed += 1;
            }
        }
    }
    killed
}

/// SIGKILLs every registered group with a running member; returns how many. The run
/// goes on (hygiene uses this to tidy up after reporting a leak).
pub fn kill_groups() -> usize {
    kill(&groups())
}

/// SIGKILLs one group if it still has a running member.
pub fn kill_group(pgid: u32) {
    kill(&[pgid]);
}

/// A check was abandoned at its deadline: nothing will stop what it started, so its
/// groups are killed now, and a spawn it still has in flight is refused.
pub fn abandon(check: Check) -> usize {
    let pgids = with(|r| {
        r.abandoned.push(check);
        r.groups
            .iter()
            .filter(|g| g.owner == check)
            .map(|g| g.pgid)
            .collect::<Vec<_>>()
    });
    kill(&pgids)
}

/// `--keep-tmp`: keep every temp dir.
pub fn keep_all_temp_dirs() {
    with(|r| r.keep_all = true);
}

/// Remembers a scenario's temp dir, to remove it on every way out.
fn register_temp_dir(path: PathBuf, scenario: Scenario) {
    with(|r| {
        r.dirs.push(TempDir { path, scenario });
    });
}

/// Makes a scenario's dir (`smoke-entwurf-v2-<scenario>-<pid>-XXXXXX` under the system
/// temp dir), registers it for removal and marks it as the gate process's.
pub fn make_temp_dir(scenario: Scenario, gate: ProcessId) -> Result<PathBuf> {
    let dir = tempfile::Builder::new()
        .prefix(&temp_dirs::name_prefix(scenario.name()))
        .tempdir()
        .context("creating the scenario's temp dir")?
        .keep();
    // Registered first: if the marker cannot be written the dir still goes at the end.
    register_temp_dir(dir.clone(), scenario);
    temp_dirs::mark(&dir, gate)?;
    Ok(dir)
}

/// A dir the run needs only for a moment (the `--pi` preflights' guarded launchers, before
/// any scenario runs), under the system temp dir: registered and marked like every temp
/// dir, so a SIGKILLed run's is swept by the next, and removed when the guard drops —
/// also on a setup error, which ends the run before the registry's own cleanup.
pub fn make_short_lived_dir(scenario: Scenario, gate: ProcessId) -> Result<tempfile::TempDir> {
    let dir = tempfile::Builder::new()
        .prefix(&temp_dirs::name_prefix(scenario.name()))
        .tempdir()
        .context("creating a short-lived temp dir")?;
    register_temp_dir(dir.path().to_path_buf(), scenario);
    temp_dirs::mark(dir.path(), gate)?;
    Ok(dir)
}

/// Makes a scenario's socket dir (`smoke-entwurf-v2-<scenario>-<pid>-XXXXXX` under
/// [`temp_dirs::socket_root`]), registers it and marks it like every temp dir: the
/// checks' sockets go there, wherever the scratch dir is, so that every socket fits
/// `sun_path` whatever the length of the user's `TMPDIR` (see `temp_dirs::socket_root`).
/// The path is canonical (macOS's `/tmp` is a symlink), so what the checks compute and
/// what the OS reports agree, and it is at most [`temp_dirs::SOCKET_DIR_MAX`] bytes.
pub fn make_socket_dir(scenario: Scenario, gate: ProcessId) -> Result<PathBuf> {
    let root = temp_dirs::socket_root();
    let dir = tempfile::Builder::new()
        .prefix(&temp_dirs::name_prefix(scenario.name()))
        .tempdir_in(&root)
        .with_context(|| {
            format!(
                "creating the {} scenario's socket dir in {}",
                scenario.name(),
                root.display()
            )
        })?
        .keep();
    // Registered (by the path every later lookup uses) before anything can fail: the
    // dir goes at the end whatever happens next.
    let dir = match std::fs::canonicalize(&dir) {
        Ok(canonical) => canonical,
        Err(e) => {
            remove_dir(&dir);
            return Err(e).with_context(|| format!("resolving {}", dir.display()));
        }
    };
    register_temp_dir(dir.clone(), scenario);
    temp_dirs::mark(&dir, gate)?;
    temp_dirs::fits_socket_budget(&dir)?;
    Ok(dir)
}

/// A scenario's own temp dirs: the scratch dir (under the system temp dir) and the
/// socket dir (short, see [`make_socket_dir`]). Each is unique per run (several runs at
/// once never collide), marked with the gate process for the sweep, and on drop removed
/// — unless one of the scenario's checks failed (its stand-ins' stderr logs are there)
/// or `--keep-tmp`.
pub struct Scratch {
    path: PathBuf,
    sockets: PathBuf,
}

impl Scratch {
    /// Makes both dirs (see [`make_temp_dir`], [`make_socket_dir`]).
    pub fn new(scenario: Scenario, gate: ProcessId) -> Result<Self> {
        let path = make_temp_dir(scenario, gate)?;
        // On an error the scratch dir is registered already: it goes at cleanup.
        let sockets = make_socket_dir(scenario, gate)?;
        Ok(Self { path, sockets })
    }

    /// The scratch dir.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The socket dir: short, so every socket under it fits `sun_path` (see
    /// [`temp_dirs::SOCKET_DIR_MAX`] for how deep a check may nest one).
    pub fn sockets(&self) -> &Path {
        &self.sockets
    }
}

impl Drop for Scratch {
    /// Removes (or keeps) both dirs: on tokio's blocking pool when there is a runtime,
    /// counted as a blocking task, so the final cleanup waits for it. Removing a tree
    /// costs tens of milliseconds on some file systems (ext4 without a journal here),
    /// and on the runtime's one thread it would hold up every other check's timers
    /// meanwhile; the hygiene check of temp dirs waits for the removals to land.
    fn drop(&mut self) {
        let dirs = [
            std::mem::take(&mut self.path),
            std::mem::take(&mut self.sockets),
        ];
        let finish = move || {
            for dir in &dirs {
                if finish_temp_dir(dir) {
                    eprintln!("smoke-entwurf-v2-spawn-live: kept {}", dir.display());
                }
            }
        };
        // Once cleanup has begun (the registry is closed) it may have passed these dirs
        // already, and a runtime shutting down drops a new task unrun: inline then.
        // Counted in before the look, so a cleanup starting in between waits for it.
        let guard = BlockingGuard::enter();
        let closed = with(|r| r.closed);
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) if !closed => {
                // Not awaited: the final cleanup waits for the count of blocking tasks.
                drop(runtime.spawn_blocking(move || {
                    let _guard = guard;
                    finish();
                }));
            }
            _ => {
                finish();
                drop(guard);
            }
        }
    }
}

/// The file in a kept dir that says why it was kept: one line per failed check.
pub const FAILURE_FILE: &str = "failure.txt";

/// `check` (of `scenario`) failed with `reason`: the scenario's temp dirs stay, and its
/// scratch dir (returned, to be printed) gets the line `<id> <label>: <reason>` in
/// [`FAILURE_FILE`], so a failure can be read after the fact from the dir alone — the
/// stand-ins' stderr logs there may well be empty.
pub fn keep_for_failure(scenario: Scenario, check: Check, reason: &str) -> Option<PathBuf> {
    let dir = with(|r| {
        r.failed.insert(scenario);
        r.dirs
            .iter()
            .find(|d| d.scenario == scenario)
            .map(|d| d.path.clone())
    })?;
    let line = format!("{} {}: {reason}\n", check.id(), check.label());
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(FAILURE_FILE))
        .and_then(|mut file| std::io::Write::write_all(&mut file, line.as_bytes()));
    if let Err(e) = written {
        eprintln!(
            "smoke-entwurf-v2-spawn-live: cannot write {}: {e}",
            dir.join(FAILURE_FILE).display()
        );
    }
    Some(dir)
}

/// Every temp dir ever registered (the hygiene check looks for leftovers).
pub fn temp_dirs() -> Vec<PathBuf> {
    with(|r| r.dirs.iter().map(|d| d.path.clone()).collect())
}

/// The temp dirs deliberately kept (failed checks, `--keep-tmp`).
pub fn kept_temp_dirs() -> Vec<PathBuf> {
    with(|r| {
        r.dirs
            .iter()
            .filter(|d| r.keep_all || r.failed.contains(&d.scenario))
            .map(|d| d.path.clone())
            .collect()
    })
}

/// Removes `path` unless it is kept; a kept dir is marked kept (see [`temp_dirs::keep`]),
/// so a later run's sweep leaves it for [`temp_dirs::KEEP_FOR`]. Returns whether it was
/// kept.
fn finish_temp_dir(path: &Path) -> bool {
    let keep = with(|r| {
        r.dirs
            .iter()
            .find(|d| d.path == path)
            .is_some_and(|d| r.keep_all || r.failed.contains(&d.scenario))
    });
    if keep {
        temp_dirs::keep(path);
    } else {
        remove_dir(path);
    }
    keep
}

/// `remove_dir_all`, retried briefly: on an early way out a blocking task of an
/// abandoned check (a lock write, say) may still create a file in the dir while it is
/// being emptied, and the final `rmdir` then meets ENOTEMPTY.
fn remove_dir(path: &Path) {
    for _ in 0..50 {
        match std::fs::remove_dir_all(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                std::thread::sleep(Duration::from_millis(10));
            }
            _ => return,
        }
    }
}

/// Removes every registered temp dir that is not kept (best effort), then says what
/// became of every dir the run made: most were removed already, when their scenario
/// ended (also when a signal dropped it), so the count is of what is gone, not of what
/// this last pass removed. Also dirs removed once already: a blocking task of a dropped
/// check may have recreated one since (`lock::acquire` creates its lock dir), which is
/// why cleanup waits for those first.
fn finish_temp_dirs(cleanup: &mut Cleanup) {
    let pending: Vec<PathBuf> = with(|r| {
        r.dirs
            .iter()
            .filter(|d| d.path.exists())
            .map(|d| d.path.clone())
            .collect()
    });
    for dir in &pending {
        finish_temp_dir(dir);
    }
    let kept = kept_temp_dirs();
    for dir in temp_dirs() {
        if !dir.exists() {
            cleanup.removed += 1;
        } else if kept.contains(&dir) {
            cleanup.kept.push(dir);
        } else {
            cleanup.left.push(dir);
        }
    }
}

/// The common end of every way out: close the registry (no spawn after this), SIGKILL
/// every group that still has a member, remove the temp dirs that are not kept.
pub fn cleanup() -> Cleanup {
    let pgids = with(|r| {
        r.closed = true;
        r.groups.iter().map(|g| g.pgid).collect::<Vec<_>>()
    });
    let killed = kill(&pgids);
    // Give SIGKILLed members a moment to die so the dirs they sit in can go, and let
    // blocking tasks still writing into them finish (each is a few file operations).
    if killed > 0 {
        std::thread::sleep(Duration::from_millis(20));
    }
    let start = Instant::now();
    while OWNER.blocking.load(Ordering::SeqCst) > 0 && start.elapsed() < Duration::from_secs(3) {
        std::thread::sleep(Duration::from_millis(2));
    }
    let mut cleanup = Cleanup {
        killed,
        ..Cleanup::default()
    };
    finish_temp_dirs(&mut cleanup);
    cleanup
}
