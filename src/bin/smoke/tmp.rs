//! The run's temp dirs: made with an owner marker, swept when their owner is provably
//! gone.
//!
//! Every dir is `smoke-entwurf-v2-<scenario>-XXXXXX` under the system temp dir and holds
//! a marker file naming the run that made it (pid and start time). A runner killed with
//! SIGKILL cannot remove its dirs; the next run does, but only dirs that carry a marker
//! of ours whose owner no longer runs — never a live run's, never a kept one (keeping
//! removes the marker), never anything without a marker.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::catalog::Scenario;
use crate::os::ProcessId;
use crate::registry;

/// Every dir this program makes starts with this.
pub const PREFIX: &str = "smoke-entwurf-v2-";
/// The marker file inside each dir.
pub const MARKER: &str = ".smoke-entwurf-v2-owner";

/// Makes a scenario's dir, marks it ours and registers it for removal.
pub fn make(scenario: Scenario, owner: ProcessId) -> Result<PathBuf> {
    let dir = tempfile::Builder::new()
        .prefix(&format!("{PREFIX}{}-", scenario.name()))
        .tempdir()
        .context("creating the scenario's temp dir")?
        .keep();
    // Registered first: if the marker cannot be written the dir still goes at the end.
    registry::register_temp_dir(dir.clone(), scenario);
    std::fs::write(dir.join(MARKER), format!("{owner}\n"))
        .with_context(|| format!("marking {}", dir.display()))?;
    Ok(dir)
}

/// A kept dir stays for people to read: without the marker, no sweep takes it.
pub fn unmark(dir: &Path) {
    let _ = std::fs::remove_file(dir.join(MARKER));
}

/// The owner named by `dir`'s marker, when `dir` is one of ours.
fn owner_of(dir: &Path) -> Option<ProcessId> {
    std::fs::read_to_string(dir.join(MARKER)).ok()?.parse().ok()
}

/// Removes dirs under `root` that a dead run of this program left; returns them.
///
/// Only real dirs (not symlinks) with our prefix, owned by our euid, holding a marker
/// whose owner is gone. A dir being made right now has no marker yet, so it is skipped.
pub fn sweep(root: &Path) -> Vec<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let euid = nix::unistd::geteuid().as_raw();
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let ours = entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(PREFIX));
        let path = entry.path();
        let is_our_dir = std::fs::symlink_metadata(&path)
            .is_ok_and(|m| m.file_type().is_dir() && m.uid() == euid);
        if !ours || !is_our_dir {
            continue;
        }
        let Some(owner) = owner_of(&path) else {
            continue;
        };
        if !owner.is_alive() && std::fs::remove_dir_all(&path).is_ok() {
            removed.push(path);
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweep_takes_only_marked_dirs_of_dead_owners() {
        let root = tempfile::tempdir().expect("root");
        let me = ProcessId::current().expect("self");
        let dead = ProcessId {
            start_time: me.start_time + 1,
            ..me
        };
        let mk = |name: &str, marker: Option<ProcessId>| {
            let dir = root.path().join(name);
            std::fs::create_dir(&dir).expect("mkdir");
            if let Some(owner) = marker {
                std::fs::write(dir.join(MARKER), owner.to_string()).expect("marker");
            }
            dir
        };
        let live = mk("smoke-entwurf-v2-socket-live", Some(me));
        let gone = mk("smoke-entwurf-v2-socket-gone", Some(dead));
        let unmarked = mk("smoke-entwurf-v2-socket-kept", None);
        let foreign = mk("someone-else", Some(dead));
        assert_eq!(sweep(root.path()), vec![gone.clone()]);
        assert!(live.exists() && unmarked.exists() && foreign.exists() && !gone.exists());
    }
}
