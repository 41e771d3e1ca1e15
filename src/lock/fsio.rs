//! The file operations the lock is built from: exclusive create-and-write, a bounded
//! read that never blocks or follows a final symlink, and the reclaim marker guard.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use nix::errno::Errno;
use nix::fcntl::OFlag;

use super::claim::{LockClaim, UnreadableClaim, parse_claim};
use crate::garden_id::GardenId;

/// A claim is ~250 bytes; anything past this is not a claim and is not read further.
pub(super) const READ_LIMIT: usize = 64 * 1024;

/// What sits at the lock path right now.
#[derive(Debug)]
pub(super) enum Existing {
    /// Nothing (it vanished between our create and our read, or was released).
    Vanished,
    /// Something that is not a claim: a conflict, never deleted.
    Unreadable {
        reason: UnreadableClaim,
        mtime: Option<SystemTime>,
    },
    /// A well-formed claim for this gid.
    Held {
        claim: LockClaim,
        mtime: Option<SystemTime>,
    },
}

/// Reads the file at `path` as a claim for `gid`.
///
/// Opened with `O_NOFOLLOW | O_NONBLOCK`: a symlink is reported as not a regular file,
/// and a fifo planted at the path cannot hang the read. Errors other than "absent" are
/// returned as I/O errors: the environment is broken, which is not the same as "held".
pub(super) fn read_lock(path: &Path, gid: &GardenId) -> io::Result<Existing> {
    let flags = OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK;
    let mut file = match OpenOptions::new()
        .read(true)
        .custom_flags(flags.bits())
        .open(path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Existing::Vanished),
        Err(e) if e.raw_os_error() == Some(Errno::ELOOP as i32) => {
            return Ok(Existing::Unreadable {
                reason: UnreadableClaim::NotRegularFile,
                mtime: std::fs::symlink_metadata(path)
                    .and_then(|m| m.modified())
                    .ok(),
            });
        }
        Err(e) => return Err(e),
    };
    let meta = file.metadata()?;
    let mtime = meta.modified().ok();
    if !meta.is_file() {
        return Ok(Existing::Unreadable {
            reason: UnreadableClaim::NotRegularFile,
            mtime,
        });
    }
    let mut bytes = Vec::with_capacity(512);
    // READ_LIMIT fits in u64 on every platform Rust supports.
    let limit = READ_LIMIT as u64 + 1;
    (&mut file).take(limit).read_to_end(&mut bytes)?;
    if bytes.len() > READ_LIMIT {
        return Ok(Existing::Unreadable {
            reason: UnreadableClaim::TooLarge { limit: READ_LIMIT },
            mtime,
        });
    }
    Ok(match parse_claim(&bytes, gid, path) {
        Ok(claim) => Existing::Held { claim, mtime },
        Err(reason) => Existing::Unreadable { reason, mtime },
    })
}

/// The result of one exclusive create.
pub(super) enum Created {
    /// Our claim is on disk, complete and synced.
    Ours,
    /// Something already sits at the path (EEXIST).
    Exists,
}

/// Which step of writing our own fresh file failed.
pub(super) struct WriteFailed {
    pub(super) op: &'static str,
    pub(super) source: io::Error,
}

/// Creates `path` with `O_CREAT | O_EXCL`, mode 0600, and writes `line`.
///
/// The mode is set again with `fchmod` so a restrictive umask cannot leave us a lock we
/// cannot read back on release. The data is `fsync`ed so a crash cannot leave an empty
/// lock (which would be unreadable and need a person) instead of a stale, reclaimable
/// one. On any failure after the create, our own fresh file is removed.
pub(super) fn create_exclusive(path: &Path, line: &str) -> Result<Created, WriteFailed> {
    let file = match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(Created::Exists),
        Err(source) => {
            return Err(WriteFailed {
                op: "create lock file",
                source,
            });
        }
    };
    match fill(file, line) {
        Ok(()) => Ok(Created::Ours),
        Err(source) => {
            // Never leave a stray (possibly empty) lock behind. The file is ours: nobody
            // removes a lock whose writer is alive, so the path still names it.
            let _ = std::fs::remove_file(path);
            Err(WriteFailed {
                op: "write lock file",
                source,
            })
        }
    }
}

fn fill(mut file: File, line: &str) -> io::Result<()> {
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(line.as_bytes())?;
    file.sync_data()?;
    // An explicit close, so an error reported at close time is not silently dropped.
    nix::unistd::close(file).map_err(io::Error::from)
}

/// Holds `<gid>.lock.reclaim` while a stale lock is being replaced, and removes it on
/// every way out — but only if the file there is still the one we created, so a loser
/// or a late guard never deletes another reclaimer's marker.
pub(super) struct ReclaimMarker {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

/// Outcome of trying to take the reclaim marker.
pub(super) enum Marker {
    /// We hold it until the guard drops.
    Taken(ReclaimMarker),
    /// Another reclaimer holds it (or a crashed one left it behind).
    Busy,
}

impl ReclaimMarker {
    /// Creates the marker exclusively. Its content (our claim line) is only a hint for a
    /// person who finds a marker left behind by a crashed reclaimer.
    pub(super) fn take(path: PathBuf, hint: &str) -> io::Result<Marker> {
        let mut file = match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(Marker::Busy),
            Err(e) => return Err(e),
        };
        let meta = match file.metadata() {
            Ok(meta) => meta,
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                return Err(e);
            }
        };
        let guard = Self {
            path,
            dev: meta.dev(),
            ino: meta.ino(),
        };
        // Best effort: the marker's existence is what matters, not its content.
        let _ = file.write_all(hint.as_bytes());
        Ok(Marker::Taken(guard))
    }
}

impl Drop for ReclaimMarker {
    fn drop(&mut self) {
        if let Ok(meta) = std::fs::symlink_metadata(&self.path) {
            if meta.dev() == self.dev && meta.ino() == self.ino {
                let _ = std::fs::remove_file(&self.path);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marker_guard_removes_only_the_marker_it_created() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("x.lock.reclaim");

        // Ours, still in place: removed on drop.
        let Ok(Marker::Taken(guard)) = ReclaimMarker::take(path.clone(), "hint") else {
            panic!("marker not taken");
        };
        assert!(matches!(
            ReclaimMarker::take(path.clone(), "hint"),
            Ok(Marker::Busy)
        ));
        drop(guard);
        assert!(!path.exists(), "our marker outlived its guard");

        // Replaced meanwhile (a person removed ours, another reclaimer took a new one):
        // a late guard must leave the new inode alone. The new file exists before ours
        // goes (rename over it), so it cannot reuse our inode number.
        let Ok(Marker::Taken(late)) = ReclaimMarker::take(path.clone(), "late") else {
            panic!("marker not taken");
        };
        let other = tmp.path().join("other");
        std::fs::write(&other, "another reclaimer").expect("write");
        std::fs::rename(&other, &path).expect("rename over the marker");
        drop(late);
        assert_eq!(
            std::fs::read_to_string(&path).expect("the other marker survives"),
            "another reclaimer"
        );
    }
}
