//! `acquire`: create the lock exclusively, or decide — from evidence only, never from
//! time — whether an existing one is stale and may be reclaimed.

#![expect(
    clippy::result_large_err,
    reason = "AcquireError::Conflict(LockConflict) is the public shape other modules match on; \
              acquire runs once per dispatch, so the size of its error is irrelevant"
)]

use std::fs::DirBuilder;
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use nix::errno::Errno;
use nix::sys::signal::kill;
use nix::unistd::Pid;

use super::claim::{LockClaim, format_instant, fresh_nonce};
use super::conflict::{self, Blocked};
use super::fsio::{
    Created, Existing, Marker, ReclaimMarker, WriteFailed, create_exclusive, read_lock,
};
use super::{AcquireError, lock_path, reclaim_marker_path};
use crate::garden_id::GardenId;

/// [`acquire`] for async callers: the same, on tokio's blocking pool. `acquire` creates
/// a directory and a file and `fsync`s the claim (milliseconds on a real disk), which
/// inside an `async fn` would stall every other task of the runtime thread.
///
/// # Errors
///
/// As [`acquire`]; also [`AcquireError::Io`] when the runtime is shutting down before
/// the blocking task started (then nothing was written: a started one runs to the end).
pub async fn acquire_async(lock_dir: &Path, gid: &GardenId) -> Result<LockClaim, AcquireError> {
    let (dir, owned) = (lock_dir.to_path_buf(), gid.clone());
    crate::sys::off_async(move || acquire(&dir, &owned))
        .await
        .unwrap_or_else(|join| {
            Err(AcquireError::Io {
                op: "acquire lock",
                path: lock_path(lock_dir, gid),
                source: io::Error::other(join),
            })
        })
}

/// Acquires `<lock_dir>/<gid>.lock` for this process (see the module docs for the rules).
///
/// # Errors
///
/// [`AcquireError::Conflict`] when the lock is held, unreadable or being reclaimed (with
/// the holder and how to clear it); [`AcquireError::Io`] for any other I/O failure, after
/// removing whatever of ours was written.
pub fn acquire(lock_dir: &Path, gid: &GardenId) -> Result<LockClaim, AcquireError> {
    // Absolute from here on: the claim is released later, perhaps after the caller has
    // changed directory, and a relative path would then name another file.
    let relative = lock_path(lock_dir, gid);
    let path = std::path::absolute(&relative).unwrap_or(relative);
    ensure_lock_dir(lock_dir)?;
    let ours = fresh_claim(gid, &path)?;
    let line = ours.to_json_line();

    if let Created::Ours = create(&path, &line)? {
        return Ok(ours);
    }
    match read(&path, gid)? {
        Existing::Vanished => {
            // The holder released between our create and our read: one more try.
            match create(&path, &line)? {
                Created::Ours => Ok(ours),
                Created::Exists => Err(lost(&path, gid)),
            }
        }
        Existing::Unreadable { reason, mtime } => Err(AcquireError::Conflict(
            conflict::unreadable(&path, &reason, mtime),
        )),
        Existing::Held { claim, mtime } => match liveness(&claim, ours.hostname()) {
            Some(why) => Err(AcquireError::Conflict(conflict::held(
                &path, claim, mtime, why,
            ))),
            None => reclaim(&path, gid, claim, mtime, ours, &line),
        },
    }
}

/// Replaces a provably stale claim, under the exclusive `.reclaim` marker.
fn reclaim(
    path: &Path,
    gid: &GardenId,
    stale: LockClaim,
    mtime: Option<SystemTime>,
    ours: LockClaim,
    line: &str,
) -> Result<LockClaim, AcquireError> {
    let marker_path = reclaim_marker_path(path);
    let _marker = match ReclaimMarker::take(marker_path.clone(), line) {
        Ok(Marker::Taken(guard)) => guard,
        Ok(Marker::Busy) => {
            let why = Blocked::ReclaimInProgress {
                marker: &marker_path,
            };
            return Err(AcquireError::Conflict(conflict::held(
                path, stale, mtime, why,
            )));
        }
        Err(source) => return Err(io_error("create reclaim marker", &marker_path, source)),
    };
    // Under the marker: the claim must still be the stale one we judged.
    match read(path, gid)? {
        Existing::Held { claim, .. } if claim.nonce() == stale.nonce() => {
            match std::fs::remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(source) => return Err(io_error("remove stale lock file", path, source)),
            }
        }
        Existing::Held { claim, mtime } => {
            return Err(AcquireError::Conflict(conflict::held(
                path,
                claim,
                mtime,
                Blocked::Replaced,
            )));
        }
        Existing::Unreadable { reason, mtime } => {
            return Err(AcquireError::Conflict(conflict::unreadable(
                path, &reason, mtime,
            )));
        }
        // Gone already (removed by hand): creating exclusively below is still safe.
        Existing::Vanished => {}
    }
    match create(path, line)? {
        Created::Ours => Ok(ours),
        Created::Exists => Err(lost(path, gid)),
    }
    // `_marker` drops here, on every path above: the marker never outlives the attempt.
}

/// `None` when the holder is provably dead on this host (stale); otherwise why not.
fn liveness(holder: &LockClaim, our_hostname: &str) -> Option<Blocked<'static>> {
    if holder.hostname() != our_hostname {
        return Some(Blocked::OtherHost);
    }
    // parse_claim guarantees 1..=i32::MAX, so this never addresses a process group.
    let Ok(raw) = i32::try_from(holder.pid()) else {
        return Some(Blocked::CheckFailed(Errno::EINVAL));
    };
    match kill(Pid::from_raw(raw), None) {
        Ok(()) => Some(Blocked::Alive),
        Err(Errno::ESRCH) => None,
        Err(Errno::EPERM) => Some(Blocked::OtherUser),
        Err(errno) => Some(Blocked::CheckFailed(errno)),
    }
}

/// A conflict built from whatever holds the file after we lost a create race (or the
/// I/O error that kept us from reading it).
fn lost(path: &Path, gid: &GardenId) -> AcquireError {
    match read(path, gid) {
        Ok(now) => AcquireError::Conflict(conflict::from_existing(path, now, Blocked::LostRace)),
        Err(io) => io,
    }
}

/// Creates the lock dir (0700) if missing; an existing non-directory is an error that
/// names the path, never a conflict.
fn ensure_lock_dir(dir: &Path) -> Result<(), AcquireError> {
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => return Ok(()),
        Ok(_) => return Err(not_a_directory(dir)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(source) => return Err(io_error("inspect lock dir", dir, source)),
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(|source| io_error("create lock dir parent", parent, source))?;
    }
    match DirBuilder::new().mode(0o700).create(dir) {
        // We made it: pin 0700 regardless of the umask.
        Ok(()) => std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|source| io_error("set lock dir mode", dir, source)),
        // A concurrent acquirer made it first; fine if it is a directory.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => match std::fs::metadata(dir) {
            Ok(meta) if meta.is_dir() => Ok(()),
            Ok(_) => Err(not_a_directory(dir)),
            Err(source) => Err(io_error("inspect lock dir", dir, source)),
        },
        Err(source) => Err(io_error("create lock dir", dir, source)),
    }
}

/// Our claim: this pid, this hostname, now, a fresh nonce.
/// `path` is already absolute (see [`acquire`]).
fn fresh_claim(gid: &GardenId, path: &Path) -> Result<LockClaim, AcquireError> {
    let recorded_lock_path = path.to_str().map(str::to_owned).ok_or_else(|| {
        io_error(
            "record lock path",
            path,
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "lock path is not valid utf-8, so the json claim cannot name it",
            ),
        )
    })?;
    let hostname = nix::unistd::gethostname()
        .map_err(|errno| io_error("read hostname for", path, errno.into()))?
        .to_string_lossy()
        .into_owned();
    let nonce = fresh_nonce().map_err(|e| io_error("generate nonce for", path, e.into()))?;
    let created_at = format_instant(SystemTime::now()).ok_or_else(|| {
        io_error(
            "timestamp claim for",
            path,
            io::Error::other("system clock is outside 1970..9999"),
        )
    })?;
    Ok(LockClaim {
        garden_id: gid.clone(),
        pid: std::process::id(),
        hostname,
        created_at,
        nonce,
        lock_path: path.to_path_buf(),
        recorded_lock_path,
    })
}

fn create(path: &Path, line: &str) -> Result<Created, AcquireError> {
    create_exclusive(path, line).map_err(|WriteFailed { op, source }| io_error(op, path, source))
}

fn read(path: &Path, gid: &GardenId) -> Result<Existing, AcquireError> {
    read_lock(path, gid).map_err(|source| io_error("read lock file", path, source))
}

fn io_error(op: &'static str, path: &Path, source: io::Error) -> AcquireError {
    AcquireError::Io {
        op,
        path: PathBuf::from(path),
        source,
    }
}

fn not_a_directory(dir: &Path) -> AcquireError {
    io_error(
        "use lock dir",
        dir,
        io::Error::new(
            io::ErrorKind::NotADirectory,
            "exists but is not a directory",
        ),
    )
}
