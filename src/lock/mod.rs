//! The dispatch lock: `<lock dir>/<gid>.lock`, shared byte-for-byte with the TypeScript
//! dispatcher (SPEC §3). STUB — being implemented.

use std::io;
use std::path::{Path, PathBuf};

use crate::garden_id::GardenId;

/// A parsed lock claim (one JSON line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockClaim {
    garden_id: GardenId,
    pid: u32,
    hostname: String,
    created_at: String,
    nonce: String,
    lock_path: PathBuf,
}

impl LockClaim {
    /// The gid the claim is for.
    pub fn garden_id(&self) -> &GardenId {
        &self.garden_id
    }
    /// The holder's pid.
    pub fn pid(&self) -> u32 {
        self.pid
    }
    /// The holder's hostname.
    pub fn hostname(&self) -> &str {
        &self.hostname
    }
    /// UTC ISO-8601 with milliseconds and `Z`.
    pub fn created_at(&self) -> &str {
        &self.created_at
    }
    /// 16 lowercase hex chars.
    pub fn nonce(&self) -> &str {
        &self.nonce
    }
    /// Where the lock file lives.
    pub fn lock_path(&self) -> &Path {
        &self.lock_path
    }
}

/// The lock file path for `gid` in `lock_dir`.
pub fn lock_path(lock_dir: &Path, gid: &GardenId) -> PathBuf {
    lock_dir.join(format!("{gid}.lock"))
}

/// Someone else holds the lock.
#[derive(Debug, Clone)]
pub struct LockConflict {
    /// The contested file.
    pub lock_path: PathBuf,
    /// The holder, when the file could be parsed.
    pub holder: Option<LockClaim>,
    /// One human sentence: who holds it since when, the file's mtime, how to clear it.
    pub message: String,
}

/// Why acquire failed.
#[derive(Debug, thiserror::Error)]
pub enum AcquireError {
    /// Held by someone else (or unreadable, or a reclaim in progress).
    #[error("{}", .0.message)]
    Conflict(LockConflict),
    /// Any other I/O failure.
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

/// Result of releasing a claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseOutcome {
    /// Our file was removed.
    Released,
    /// There was no file.
    Absent,
    /// The file is someone else's (or unreadable): left alone.
    NotOwned,
}

/// Why release failed.
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

/// Acquires the lock for `gid` in `lock_dir`.
pub fn acquire(_lock_dir: &Path, _gid: &GardenId) -> Result<LockClaim, AcquireError> {
    todo!("lock::acquire")
}

/// Releases `claim` if the file is still ours.
pub fn release(_claim: &LockClaim) -> Result<ReleaseOutcome, LockIoError> {
    todo!("lock::release")
}
