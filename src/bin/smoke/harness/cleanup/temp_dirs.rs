//! The run's temp dirs on disk: named and marked by their owner (the gate process that
//! made them), swept when the owner is provably gone. Plain file operations: which dirs
//! the run made, and when they go, is the cleanup owner's (`cleanup`).
//!
//! Every dir is `smoke-entwurf-v2-<scenario>-<pid>-XXXXXX` under the system temp dir (a
//! scenario's scratch dir) or under [`socket_root`] (its socket dir, short enough for
//! `sun_path`), and holds a marker file naming the run that made it (pid and start
//! time); the sweep looks in both ([`roots`]). A gate process
//! killed with SIGKILL cannot remove its dirs; the next run does, but only dirs of ours whose
//! owner no longer runs: never a live run's, never anything without our name.
//!
//! A kept dir (a failed check's, `--keep-tmp`) is for people to read, so a later run
//! leaves it alone for [`KEEP_FOR`] (a day) after it was kept, then sweeps it like any
//! other once its owner is provably gone: kept dirs of failed runs no longer pile up
//! forever. Keeping swaps the owner marker for a "kept" file that names the same owner;
//! its mtime is when it was kept.
//!
//! The pid in the name covers the instant between `mkdir` and the marker write: a run
//! killed right there leaves a dir without a marker, and the name still says whose it
//! is. By pid alone, a reused pid looks alive, so such a dir waits for that process to
//! end — later, never wrongly.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::os::{self, ProcessId};

/// Every dir this program makes starts with this.
pub const PREFIX: &str = "smoke-entwurf-v2-";
/// The marker file inside each dir.
pub const MARKER: &str = ".smoke-entwurf-v2-owner";
/// In a dir kept for people to read (a failed check's, `--keep-tmp`): names the owner
/// like [`MARKER`]; swept only [`KEEP_FOR`] after it was written.
pub const KEPT: &str = ".smoke-entwurf-v2-kept";
/// How long a kept dir stays after its run: a day, to read it; then the next run that
/// finds its owner gone sweeps it.
pub const KEEP_FOR: std::time::Duration = std::time::Duration::from_secs(24 * 60 * 60);

/// How long a socket path a program other than the library may be given: `sun_path`
/// holds 104 bytes (macOS, FreeBSD) to 107 (Linux) and a NUL; tmux, node and the
/// portable backend bind or connect by path. (The native backend reaches longer ones,
/// S1.7.)
pub const SOCKET_PATH_ROOM: usize = 100;
/// The deepest a check nests a socket under its scenario's socket dir: the visible
/// checks' `/v3/work/control/<gid>.sock` (a gid is 22 bytes).
pub const DEEPEST_SOCKET: usize = "/v3/work/control/".len() + 22 + ".sock".len();
/// The longest a socket dir's path may be, so that every socket under it fits
/// [`SOCKET_PATH_ROOM`].
pub const SOCKET_DIR_MAX: usize = SOCKET_PATH_ROOM - DEEPEST_SOCKET;
/// The longest name [`name_prefix`] and tempfile's six random characters make for a
/// socket dir: the longest scenario name (`visible`) and the largest pid (`pid_max`
/// is at most 4194304).
const LONGEST_SOCKET_DIR_NAME: usize = PREFIX.len() + "visible".len() + "-4194304-XXXXXX".len();
/// Where the socket dirs go when the system temp dir is too long for them.
pub const SHORT_ROOT: &str = "/tmp";

/// Where the run's socket dirs go: the system temp dir when a socket dir fits
/// [`SOCKET_DIR_MAX`] there, else [`SHORT_ROOT`]. A macOS `TMPDIR`
/// (`/var/folders/…/T/`, about 50 bytes) or a CI's long one leaves no room for a socket
/// under `sun_path`'s limit, and a check must never fail for the length of someone's
/// `TMPDIR`. Measured on the canonical path: that is what a socket's path becomes once
/// a program resolves its cwd.
pub fn socket_root() -> PathBuf {
    let temp = std::env::temp_dir();
    let len = std::fs::canonicalize(&temp)
        .unwrap_or_else(|_| temp.clone())
        .as_os_str()
        .len();
    if len + 1 + LONGEST_SOCKET_DIR_NAME <= SOCKET_DIR_MAX {
        temp
    } else {
        PathBuf::from(SHORT_ROOT)
    }
}

/// The dirs a run makes dirs in (the system temp dir and [`socket_root`]), each once:
/// what the sweep looks through.
pub fn roots() -> Vec<PathBuf> {
    let mut roots = vec![std::env::temp_dir(), socket_root()];
    roots.dedup();
    roots
}

/// Why a socket dir at `dir` leaves too little room under `sun_path`.
#[derive(Debug, thiserror::Error)]
#[error(
    "socket dir {} is {len} bytes, longer than the {SOCKET_DIR_MAX} that leave room for the checks' sockets under sun_path ({SOCKET_PATH_ROOM} bytes); set TMPDIR to a short directory such as /tmp",
    dir.display()
)]
pub struct TooLong {
    dir: PathBuf,
    len: usize,
}

/// Whether every socket a check nests under `dir` fits [`SOCKET_PATH_ROOM`].
pub fn fits_socket_budget(dir: &Path) -> Result<(), TooLong> {
    let len = dir.as_os_str().len();
    if len <= SOCKET_DIR_MAX {
        Ok(())
    } else {
        Err(TooLong {
            dir: dir.to_path_buf(),
            len,
        })
    }
}

/// `smoke-entwurf-v2-<what>-<pid>-`: the start of every name this run gives a dir.
pub fn name_prefix(what: &str) -> String {
    format!("{PREFIX}{what}-{}-", std::process::id())
}

/// Marks `dir` as made by `owner` (the gate process), for the sweep of a later run.
pub fn mark(dir: &Path, owner: ProcessId) -> Result<()> {
    std::fs::write(dir.join(MARKER), format!("{owner}\n"))
        .with_context(|| format!("marking {}", dir.display()))
}

/// A kept dir stays for people to read: marked kept first (naming the same owner, so a
/// later sweep can still tell it is gone), then the owner marker goes, so at no moment
/// can a sweep take it before [`KEEP_FOR`] has passed.
/// Kept once (a dir is finished when its scenario ends and again at cleanup): a second
/// call, with the owner marker gone, must not blank the owner in the kept file.
pub fn keep(dir: &Path) {
    let kept = dir.join(KEPT);
    match std::fs::read_to_string(dir.join(MARKER)) {
        Ok(owner) => {
            let _ = std::fs::write(&kept, owner);
        }
        Err(_) if kept.exists() => return,
        Err(_) => {
            let _ = std::fs::write(&kept, "");
        }
    }
    let _ = std::fs::remove_file(dir.join(MARKER));
}

/// The pid in a name made by [`name_prefix`].
fn pid_in_name(name: &str) -> Option<u32> {
    let mut parts = name.strip_prefix(PREFIX)?.split('-');
    let (_what, pid, _random) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    pid.parse().ok()
}

/// Whether the run that made `dir` (named `name`) still runs; `None` when the dir is
/// not one of ours, or is kept and not yet [`KEEP_FOR`] old (sweeping it is not asked).
fn owner_alive(dir: &Path, name: &str) -> Option<bool> {
    let pid = pid_in_name(name)?;
    let kept = dir.join(KEPT);
    if let Ok(meta) = std::fs::symlink_metadata(&kept) {
        let age = meta.modified().ok()?.elapsed().unwrap_or_default();
        if age < KEEP_FOR {
            return None;
        }
        // Old enough. The kept file names the owner (older versions left it empty:
        // the pid in the name is all there is then).
        let text = std::fs::read_to_string(&kept).ok()?;
        return match text.parse::<ProcessId>() {
            Ok(owner) => (owner.pid == pid).then(|| owner.is_alive()),
            Err(_) => Some(os::proc_stat(pid).is_some_and(|s| !s.is_dead())),
        };
    }
    match std::fs::read_to_string(dir.join(MARKER)) {
        Ok(text) => match text.parse::<ProcessId>() {
            Ok(owner) => (owner.pid == pid).then(|| owner.is_alive()),
            // Killed while writing the marker (empty or torn): as without one.
            Err(_) => Some(os::proc_stat(pid).is_some_and(|s| !s.is_dead())),
        },
        // Killed between mkdir and the marker: the name's pid is all there is.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Some(os::proc_stat(pid).is_some_and(|s| !s.is_dead()))
        }
        Err(_) => None,
    }
}

/// Removes dirs under `root` that a dead run of this program left; returns them.
///
/// Only real dirs (not symlinks) with our name, owned by our euid, whose owner is gone,
/// and, if kept, kept more than [`KEEP_FOR`] ago.
pub fn sweep(root: &Path) -> Vec<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let euid = nix::unistd::geteuid().as_raw();
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        let path = entry.path();
        let is_our_dir = std::fs::symlink_metadata(&path)
            .is_ok_and(|m| m.file_type().is_dir() && m.uid() == euid);
        if is_our_dir
            && owner_alive(&path, &name) == Some(false)
            && std::fs::remove_dir_all(&path).is_ok()
        {
            removed.push(path);
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweep_takes_only_our_dirs_of_dead_owners() {
        let root = tempfile::tempdir().expect("root");
        let me = ProcessId::current().expect("self");
        let dead = ProcessId {
            start_time: me.start_time + 1,
            ..me
        };
        let mk = |name: &str, marker: Option<ProcessId>, kept: bool| {
            let dir = root.path().join(name);
            std::fs::create_dir(&dir).expect("mkdir");
            if let Some(owner) = marker {
                std::fs::write(dir.join(MARKER), owner.to_string()).expect("marker");
            }
            if kept {
                std::fs::write(dir.join(KEPT), "").expect("kept");
            }
            dir
        };
        let pid = me.pid;
        let live = mk(&format!("{PREFIX}socket-{pid}-aaaaaa"), Some(me), false);
        let gone = mk(&format!("{PREFIX}socket-{pid}-bbbbbb"), Some(dead), false);
        let kept = mk(&format!("{PREFIX}socket-{pid}-cccccc"), Some(dead), true);
        // Killed before its marker: the pid in the name decides (4194304 is above
        // Linux's pid_max, so surely not running).
        let unmarked_dead = mk(&format!("{PREFIX}socket-4194304-dddddd"), None, false);
        let unmarked_live = mk(&format!("{PREFIX}socket-{pid}-eeeeee"), None, false);
        // Killed while writing its marker (empty): the same as without one.
        let torn = |name: String| {
            let dir = mk(&name, None, false);
            std::fs::write(dir.join(MARKER), "").expect("torn marker");
            dir
        };
        let torn_dead = torn(format!("{PREFIX}socket-4194304-iiiiii"));
        let torn_live = torn(format!("{PREFIX}socket-{pid}-jjjjjj"));
        let foreign = mk("someone-else-1-x", Some(dead), false);
        // Kept more than KEEP_FOR ago: swept once its owner is gone, never while it runs.
        let aged = |dir: &Path, owner: ProcessId| {
            let kept = std::fs::File::create(dir.join(KEPT)).expect("kept");
            std::io::Write::write_all(&mut &kept, owner.to_string().as_bytes()).expect("owner");
            let then = std::time::SystemTime::now() - KEEP_FOR - std::time::Duration::from_secs(60);
            kept.set_modified(then).expect("mtime");
        };
        let old_kept_gone = mk(&format!("{PREFIX}socket-{pid}-gggggg"), None, false);
        aged(&old_kept_gone, dead);
        let old_kept_live = mk(&format!("{PREFIX}socket-{pid}-hhhhhh"), None, false);
        aged(&old_kept_live, me);
        let old_style = mk(&format!("{PREFIX}socket-ffffff"), Some(dead), false);
        let mut swept = sweep(root.path());
        swept.sort();
        let mut want = vec![gone, unmarked_dead, torn_dead, old_kept_gone];
        want.sort();
        assert_eq!(swept, want);
        for dir in [
            live,
            kept,
            unmarked_live,
            torn_live,
            foreign,
            old_style,
            old_kept_live,
        ] {
            assert!(dir.exists(), "{}", dir.display());
        }
    }
}
