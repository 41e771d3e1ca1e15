//! Building [`LockConflict`]s: one human sentence with the holder, since when, the
//! file's mtime, and the exact command-free instruction for clearing it.

use std::path::Path;
use std::time::SystemTime;

use nix::errno::Errno;

use super::LockConflict;
use super::claim::{LockClaim, UnreadableClaim, format_instant};
use super::fsio::Existing;

/// Why a readable claim still blocks us.
#[derive(Debug, Clone, Copy)]
pub(super) enum Blocked<'a> {
    /// `kill(pid, 0)` succeeded: the holder runs on this host.
    Alive,
    /// `kill(pid, 0)` gave EPERM: the pid exists but belongs to another user.
    OtherUser,
    /// The holder's host is not ours, so its pid means nothing here.
    OtherHost,
    /// `kill(pid, 0)` failed in an unexpected way.
    CheckFailed(Errno),
    /// The holder is dead, but another reclaimer holds the marker.
    ReclaimInProgress { marker: &'a Path },
    /// The stale claim was replaced while we waited for the reclaim marker.
    Replaced,
    /// Another acquirer created the file first.
    LostRace,
}

/// A conflict for whatever is at `path` now (used after losing a race).
pub(super) fn from_existing(path: &Path, existing: Existing, why: Blocked<'_>) -> LockConflict {
    match existing {
        Existing::Held { claim, mtime } => held(path, claim, mtime, why),
        Existing::Unreadable { reason, mtime } => unreadable(path, &reason, mtime),
        Existing::Vanished => LockConflict {
            lock_path: path.to_path_buf(),
            holder: None,
            message: format!(
                "lock {} changed hands while we were acquiring it and is gone again; \
                 nothing needs clearing, retry the dispatch",
                path.display()
            ),
        },
    }
}

/// A conflict with a readable holder.
pub(super) fn held(
    path: &Path,
    holder: LockClaim,
    mtime: Option<SystemTime>,
    why: Blocked<'_>,
) -> LockConflict {
    let pid = holder.pid();
    let host = holder.hostname().escape_debug().to_string();
    let why_text = match why {
        Blocked::Alive => "that pid is running on this host".to_owned(),
        Blocked::OtherUser => "that pid exists on this host but belongs to another user".to_owned(),
        Blocked::OtherHost => {
            "that host is not this one, so the pid cannot be checked from here".to_owned()
        }
        Blocked::CheckFailed(errno) => format!("checking that pid failed ({errno})"),
        Blocked::ReclaimInProgress { marker } => format!(
            "that pid is gone but another dispatcher is reclaiming the lock (reclaim in progress: {} exists)",
            marker.display()
        ),
        Blocked::Replaced => {
            "it replaced a stale claim while we were waiting to reclaim it".to_owned()
        }
        Blocked::LostRace => "another dispatcher created it first".to_owned(),
    };
    let clear = match why {
        Blocked::ReclaimInProgress { marker } => format!(
            "if no dispatcher is still reclaiming it, remove {}",
            marker.display()
        ),
        _ => format!(
            "if pid {pid} on host {host} is gone, remove {}",
            path.display()
        ),
    };
    let message = format!(
        "lock {} for garden {} is held by pid {pid} on host {host} since {} (file modified {}): {why_text}; {clear}",
        path.display(),
        holder.garden_id(),
        holder.created_at(),
        mtime_text(mtime),
    );
    LockConflict {
        lock_path: path.to_path_buf(),
        holder: Some(holder),
        message,
    }
}

/// A conflict with a file that is not a claim. It is never deleted automatically.
pub(super) fn unreadable(
    path: &Path,
    reason: &UnreadableClaim,
    mtime: Option<SystemTime>,
) -> LockConflict {
    LockConflict {
        lock_path: path.to_path_buf(),
        holder: None,
        message: format!(
            "lock {} is unreadable ({}; file modified {}) and may be another dispatcher mid-write, \
             so it is left alone; if no dispatcher is acquiring it, remove {}",
            path.display(),
            crate::error_chain(reason),
            mtime_text(mtime),
            path.display()
        ),
    }
}

fn mtime_text(mtime: Option<SystemTime>) -> String {
    mtime
        .and_then(format_instant)
        .unwrap_or_else(|| "at an unknown time".to_owned())
}
