//! What the smoke started and must clean up even when it cannot finish normally:
//! child process groups and temp dirs. Ctrl-C, SIGTERM and the watchdog all end here.
//!
//! A process-wide registry (not a value passed around) because the interrupt path runs
//! outside the scenarios that own the children, and the watchdog runs on another thread.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use crate::os;

#[derive(Default)]
struct Registry {
    groups: Vec<u32>,
    temp_dirs: Vec<PathBuf>,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    groups: Vec::new(),
    temp_dirs: Vec::new(),
});

fn with<T>(f: impl FnOnce(&mut Registry) -> T) -> T {
    // A panic while holding the lock leaves consistent vectors behind; keep using them.
    let mut guard = REGISTRY
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    f(&mut guard)
}

/// Remembers a process group the smoke started (its leader's pid).
pub fn register_group(pgid: u32) {
    with(|r| r.groups.push(pgid));
}

/// Remembers a temp dir to remove on an abnormal exit.
pub fn register_temp_dir(path: PathBuf) {
    with(|r| r.temp_dirs.push(path));
}

/// Every temp dir ever registered (the hygiene check looks for leftovers).
pub fn temp_dirs() -> Vec<PathBuf> {
    with(|r| r.temp_dirs.clone())
}

/// Every process group ever registered.
pub fn groups() -> Vec<u32> {
    with(|r| r.groups.clone())
}

/// SIGKILLs every registered group that still has a running member; returns how many.
///
/// Only groups with a live member are signalled: a pid cannot be reused while it is still
/// some process's group id, so a group found populated is still the one we started.
pub fn kill_groups() -> usize {
    let mut killed = 0;
    for pgid in groups() {
        if !os::live_group_members(pgid).is_empty() {
            kill_group(pgid);
            killed += 1;
        }
    }
    killed
}

/// SIGKILLs one group if it still has a running member (same reasoning as above).
pub fn kill_group(pgid: u32) {
    if !os::live_group_members(pgid).is_empty() {
        if let Ok(raw) = i32::try_from(pgid) {
            let _ = killpg(Pid::from_raw(raw), Signal::SIGKILL);
        }
    }
}

/// Removes every registered temp dir that still exists (best effort).
pub fn remove_temp_dirs() {
    for dir in temp_dirs() {
        if dir.exists() {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}

/// The abnormal way out: kill what we started, remove temp dirs, exit with `code`.
pub fn bail_out(code: i32, why: &str) -> ! {
    let killed = kill_groups();
    // Give SIGKILLed group leaders a moment to die so the dirs they sit in can go.
    if killed > 0 {
        std::thread::sleep(Duration::from_millis(20));
    }
    remove_temp_dirs();
    eprintln!(
        "smoke-entwurf-v2-spawn-live: {why}: killed {killed} child process group(s), removed temp dirs"
    );
    std::process::exit(code)
}

/// Starts the last-resort watchdog: a plain thread, so it fires even if a check blocks
/// the runtime thread in a system call (which a tokio deadline cannot interrupt).
pub fn start_watchdog(limit: Duration) {
    let spawned = std::thread::Builder::new()
        .name("watchdog".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            std::thread::sleep(limit);
            bail_out(
                1,
                &format!(
                    "FAIL watchdog: the run exceeded {} ms (the runtime thread is blocked)",
                    limit.as_millis()
                ),
            );
        });
    if let Err(e) = spawned {
        eprintln!(
            "smoke-entwurf-v2-spawn-live: no watchdog thread ({e}); per-check deadlines still apply"
        );
    }
}
