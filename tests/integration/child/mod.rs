//! Real children against the real OS: spawn, exit capture, group signals, sweeps.
//!
//! `/bin/sh` and `sleep` stand in for the resident. Every await is bounded, so a broken
//! supervisor fails a test instead of hanging it.

use std::ffi::OsString;
use std::future::Future;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use entwurf_v2_spawn::Backend;
use entwurf_v2_spawn::production::child::{
    ChildHandle, SignalDelivery, SpawnError, SpawnRequest, StderrTarget, spawn_child,
};
use entwurf_v2_spawn::watcher::{ChildExit, StopSignal};
use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const BOUND: Duration = Duration::from_secs(10);

async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(BOUND, fut)
        .await
        .unwrap_or_else(|_| panic!("{what}: no result within {BOUND:?}"))
}

fn request(program: &str, args: &[&str], cwd: &Path) -> SpawnRequest {
    SpawnRequest::new(program, args.iter().map(OsString::from), cwd)
        .with_stderr(StderrTarget::Null)
        .with_backend(Backend::Native)
}

/// Spawns `req` with `backend` observing its exit.
fn spawn_on(backend: Backend, req: SpawnRequest) -> Result<ChildHandle, SpawnError> {
    spawn_child(&req.with_backend(backend))
}

fn sh(script: &str, cwd: &Path) -> SpawnRequest {
    request("/bin/sh", &["-c", script], cwd)
}

async fn exit_of(child: &ChildHandle) -> ChildExit {
    within("exit", child.exit()).await.expect("exit observed")
}

/// Polls for a file the child writes once it is ready (e.g. after installing a trap).
async fn wait_for_file(path: &Path) -> String {
    within(&format!("waiting for {path:?}"), async {
        loop {
            if let Ok(text) = std::fs::read_to_string(path) {
                if text.ends_with('\n') || path.extension().is_some_and(|e| e == "ready") {
                    return text;
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
}

/// The state letter from /proc/<pid>/stat, if the process still exists (these tests
/// hold pids as nix's `i32`).
fn proc_state(pid: i32) -> Option<char> {
    entwurf_procfs::proc_state(u32::try_from(pid).ok()?)
}

/// Gone, or a zombie/dead entry waiting for its (new) parent to reap it.
fn gone_or_dead(pid: i32) -> bool {
    matches!(kill(Pid::from_raw(pid), None), Err(Errno::ESRCH))
        || matches!(proc_state(pid), None | Some('Z' | 'X'))
}

async fn poll_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if cond() {
            return true;
        }
        if start.elapsed() > limit {
            eprintln!("{what}: still false after {limit:?}");
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn pid_of(child: &ChildHandle) -> i32 {
    i32::try_from(child.pid()).unwrap()
}

/// Whether `pid` ignores SIGTERM, from the SigIgn mask in /proc/<pid>/status.
fn ignores_term(pid: i32) -> bool {
    let mask = entwurf_procfs::signal_mask(u32::try_from(pid).unwrap(), "SigIgn:").unwrap();
    entwurf_procfs::mask_has(mask, libc_sigterm())
}

fn libc_sigterm() -> u32 {
    Signal::SIGTERM as u32
}

/// This process's descriptors without close-on-exec (`O_CLOEXEC` is octal 02000000 in
/// the `flags:` line of /proc/self/fdinfo).
fn inheritable_fds() -> Vec<u32> {
    entwurf_procfs::fdinfo()
        .unwrap()
        .into_iter()
        .filter_map(|(fd, info)| {
            let fd = u32::try_from(fd).ok()?;
            let flags = info
                .lines()
                .find_map(|l| l.strip_prefix("flags:"))?
                .trim()
                .to_owned();
            let flags = u32::from_str_radix(&flags, 8).ok()?;
            (flags & 0o2_000_000 == 0).then_some(fd)
        })
        .collect()
}

mod reaper;
mod signals;
mod spawning;
