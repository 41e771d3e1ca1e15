//! The dispatch lock: `<lock dir>/<gid>.lock`, shared byte-for-byte with the TypeScript
//! dispatcher (docs/design.md §3). At most one dispatcher may resume a given citizen at a
//! time.
//!
//! # Format
//!
//! One JSON object and a newline, keys in this order:
//!
//! ```json
//! {"gardenId":"20260613T000000-aaaaaa","pid":4242,"hostname":"nuc","createdAt":"2026-06-13T03:55:45.123Z","nonce":"9f2c4e01a7b3d855","owner":"entwurf_v2","lockPath":"/home/u/.pi/entwurf-v2-locks/20260613T000000-aaaaaa.lock"}
//! ```
//!
//! See [`parse_claim`] for exactly what is accepted (unknown extra fields are tolerated).
//!
//! # Rules
//!
//! - [`acquire`] creates the lock dir (0700) if missing, then the file with
//!   `O_CREAT | O_EXCL` (0600), writes the claim and `fsync`s it. A failure after the
//!   create removes our own fresh file. A create failure other than "exists" is
//!   [`AcquireError::Io`], never a conflict.
//! - An existing file is read. Vanished meanwhile → one more create; losing again is a
//!   conflict. Unreadable (empty, corrupt, wrong gid, not a regular file) → conflict,
//!   and the file is **never** deleted: it may be another acquirer mid-write.
//! - A readable claim is stale only when it names **our hostname** and `kill(pid, 0)`
//!   gives `ESRCH`. A live pid, `EPERM`, any other error, or another hostname is a
//!   conflict. Nothing is ever stolen because it is old.
//! - A stale claim is replaced under the exclusive marker `<gid>.lock.reclaim`: if the
//!   marker exists, conflict ("reclaim in progress"); under it the lock is re-read, a
//!   changed nonce is a conflict, otherwise it is removed and ours is created exclusively
//!   (losing that race to a fresh acquirer is a conflict). The marker is removed on every
//!   way out — only by the reclaimer that created it.
//! - [`release`] removes the file only if it still carries the claim's nonce.
//!
//! Reading a file other than "absent" fails as I/O (permissions, a broken disk): that is
//! a broken environment, not a holder, and it is reported as such.
//!
//! # Assumption: same hostname means same machine
//!
//! A pid is only meaningful on the host that issued it, so staleness is checked only for
//! claims whose hostname equals ours. A home directory shared across machines that
//! report equal hostnames is out of scope: there, a live holder on the other machine
//! could be judged dead and its lock reclaimed.
//!
//! A reclaimer that crashes while holding the marker leaves it behind; every later
//! reclaim of that gid is then a conflict whose message says which marker to remove.

mod acquire;
mod claim;
mod conflict;
mod fsio;

use std::io;
use std::path::{Path, PathBuf};

pub use acquire::{acquire, acquire_async};
pub use claim::{LockClaim, OWNER, UnreadableClaim, parse_claim};

use crate::garden_id::GardenId;
use fsio::{Existing, read_lock};

/// The lock file path for `gid` in `lock_dir`. Taking a [`GardenId`] means the name is
/// validated and cannot escape the directory.
#[must_use]
pub fn lock_path(lock_dir: &Path, gid: &GardenId) -> PathBuf {
    lock_dir.join(format!("{gid}.lock"))
}

/// The reclaim marker next to `lock_path` (`<gid>.lock.reclaim`), so tools and people can
/// find the file a "reclaim in progress" conflict names.
#[must_use]
pub fn reclaim_marker_path(lock_path: &Path) -> PathBuf {
    let mut name = lock_path.as_os_str().to_owned();
    name.push(".reclaim");
    PathBuf::from(name)
}

/// Someone else holds the lock (or it cannot be judged): the dispatcher must not spawn.
#[derive(Debug, Clone)]
pub struct LockConflict {
    /// The contested file.
    pub lock_path: PathBuf,
    /// The holder, when the file could be parsed: evidence for the caller and the user.
    pub holder: Option<LockClaim>,
    /// One human sentence: who holds it since when, the file's mtime, how to clear it.
    pub message: String,
}

/// Why acquire failed: a holder (someone else's business) versus a broken environment.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AcquireError {
    /// Held by someone else (or unreadable, or a reclaim in progress).
    #[error("{}", .0.message)]
    Conflict(LockConflict),
    /// Any other I/O failure; nothing of ours was left on disk.
    #[error("{op} {path}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// On which path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// Result of releasing a claim; none of them is an error, and only `Released` removed a
/// file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReleaseOutcome {
    /// Our file was removed.
    Released,
    /// There was no file (already released or removed by hand).
    Absent,
    /// The file is someone else's (another nonce) or unreadable: left alone, because it
    /// may be a successor's lock.
    NotOwned,
}

/// Why release could not decide or could not remove: the lock needs a person.
#[derive(Debug, thiserror::Error)]
#[error("{op} {path}")]
pub struct LockIoError {
    /// What was being done.
    pub op: &'static str,
    /// On which path.
    pub path: PathBuf,
    /// The OS error.
    #[source]
    pub source: io::Error,
}

/// Releases `claim` if the file still carries its nonce; never removes a successor's
/// lock.
///
/// # Errors
///
/// [`LockIoError`] when the file cannot be read or removed: the lock then needs a
/// person.
pub fn release(claim: &LockClaim) -> Result<ReleaseOutcome, LockIoError> {
    let path = claim.lock_path();
    let existing = read_lock(path, claim.garden_id()).map_err(|source| LockIoError {
        op: "read lock file",
        path: path.to_path_buf(),
        source,
    })?;
    match existing {
        Existing::Vanished => Ok(ReleaseOutcome::Absent),
        Existing::Unreadable { .. } => Ok(ReleaseOutcome::NotOwned),
        Existing::Held { claim: on_disk, .. } if on_disk.nonce() != claim.nonce() => {
            Ok(ReleaseOutcome::NotOwned)
        }
        Existing::Held { .. } => match std::fs::remove_file(path) {
            Ok(()) => Ok(ReleaseOutcome::Released),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(ReleaseOutcome::Absent),
            Err(source) => Err(LockIoError {
                op: "remove lock file",
                path: path.to_path_buf(),
                source,
            }),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_built_from_the_gid() {
        let gid = GardenId::parse("20260613T000000-aaaaaa").expect("gid");
        let path = lock_path(Path::new("/l"), &gid);
        assert_eq!(path, Path::new("/l/20260613T000000-aaaaaa.lock"));
        assert_eq!(
            reclaim_marker_path(&path),
            Path::new("/l/20260613T000000-aaaaaa.lock.reclaim")
        );
    }
}
