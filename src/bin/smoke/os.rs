//! Small views of the real OS the checks assert against: `/proc`, descriptors, long
//! socket paths, and bounded polling.

use std::collections::BTreeMap;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use entwurf_v2_spawn::Backend;
use entwurf_v2_spawn::socket::{Probe, ProbeDoubt, inspect_for_probe};

// The /proc readers are the checks' shared ones (tests/procfs), also used by the test
// binaries and the bench.
pub use entwurf_procfs::{
    ProcessId, cmdline, ignored_signals, live_group_members, proc_stat, processes,
};

/// Our open descriptors and what they point at, without the one listing them (empty
/// when `/proc` cannot be read: H1 then compares two empty maps, and setup has already
/// refused a run without `/proc`).
pub fn open_fds() -> BTreeMap<i32, String> {
    entwurf_procfs::open_fds().unwrap_or_default()
}

/// `kill(pid, 0)`: `Ok` when the process exists and may be signalled.
pub fn probe_pid(pid: u32) -> nix::Result<()> {
    let raw = i32::try_from(pid).map_err(|_| nix::errno::Errno::EINVAL)?;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(raw), None)
}

/// Polls `cond` every `step` until it holds or `within` elapsed; returns whether it held.
pub async fn poll_until(within: Duration, step: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if cond() {
            return true;
        }
        if start.elapsed() >= within {
            return false;
        }
        tokio::time::sleep(step).await;
    }
}

/// Blocking variant for the synchronous spots (spawner callbacks, stand-ins).
pub fn poll_until_blocking(
    within: Duration,
    step: Duration,
    mut cond: impl FnMut() -> bool,
) -> bool {
    let start = Instant::now();
    loop {
        if cond() {
            return true;
        }
        if start.elapsed() >= within {
            return false;
        }
        std::thread::sleep(step);
    }
}

/// Creates `path` atomically (write a sibling, rename) so a poller never reads it half
/// written: how a stand-in says it is ready.
pub fn write_ready(path: &Path, content: &str) -> Result<(), String> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, content).map_err(|e| format!("writing {}: {e}", path.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("renaming to {}: {e}", path.display()))
}

/// `sun_path` holds 107 bytes plus the NUL on Linux.
const SUN_PATH_MAX: usize = 107;

/// A path that fits `sun_path` and names the same file as `path`: `path` itself when it
/// is short, else `/proc/self/fd/<dir fd>/<name>` through its directory, held open by
/// the returned `File` (keep it alive while the alias is used). The library reaches long
/// paths the same way.
pub fn socket_alias(path: &Path) -> Result<(PathBuf, Option<std::fs::File>)> {
    if path.as_os_str().len() <= SUN_PATH_MAX {
        return Ok((path.to_path_buf(), None));
    }
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        bail!("socket path {} has no parent or name", path.display());
    };
    let dir = std::fs::File::open(parent).with_context(|| format!("open {}", parent.display()))?;
    let alias = Path::new(&format!("/proc/self/fd/{}", dir.as_raw_fd())).join(name);
    if alias.as_os_str().len() > SUN_PATH_MAX {
        bail!("socket name {name:?} is too long even through /proc/self/fd");
    }
    Ok((alias, Some(dir)))
}

/// Binds a listening unix socket at `path`, whatever its length (see [`socket_alias`]).
pub fn bind_any_len(path: &Path) -> Result<UnixListener> {
    let (alias, _dir) = socket_alias(path)?;
    UnixListener::bind(&alias)
        .with_context(|| format!("bind {} (as {})", path.display(), alias.display()))
}

/// Leaves a stale socket file at `path` (any length): bound, then closed, never
/// listening. A listener dropped at once would not do while other threads fork: a child
/// between its fork and its exec holds a copy of the descriptor (close-on-exec closes
/// it only at the exec), and a connect meanwhile is accepted into its backlog. A socket
/// that never listened refuses every connect, whoever holds it.
pub fn bind_stale(path: &Path) -> Result<()> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, UnixAddr, bind, socket};
    use std::os::fd::AsRawFd;
    let (alias, _dir) = socket_alias(path)?;
    // macOS has no SOCK_CLOEXEC; its flag is set right after, so a child another thread
    // starts in between keeps a copy (which never listens either).
    #[cfg(not(target_vendor = "apple"))]
    let flags = SockFlag::SOCK_CLOEXEC;
    #[cfg(target_vendor = "apple")]
    let flags = SockFlag::empty();
    let fd = socket(AddressFamily::Unix, SockType::Stream, flags, None).context("socket")?;
    #[cfg(target_vendor = "apple")]
    nix::fcntl::fcntl(
        &fd,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    )
    .context("close-on-exec")?;
    let addr = UnixAddr::new(&alias).with_context(|| format!("address {}", alias.display()))?;
    bind(fd.as_raw_fd(), &addr)
        .with_context(|| format!("bind {} (as {})", path.display(), alias.display()))
}

/// True for the "would block" family, which a non-blocking accept or connect returns
/// when nothing is queued or the backlog is full.
pub fn would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock
}

/// Takes one pending connection without blocking: `Ok(true)` if the listener had one.
pub fn had_connection(listener: &UnixListener) -> Result<bool> {
    listener.set_nonblocking(true)?;
    match listener.accept() {
        Ok(_) => Ok(true),
        Err(e) if would_block(&e) => Ok(false),
        Err(e) => Err(e).context("accept"),
    }
}

/// A listener at `path` (any length, see [`socket_alias`]) whose accept backlog is full,
/// and the connections that fill it, queued and never accepted.
pub struct FullBacklog {
    /// The listener, backlog 0: it holds one queued connection (Linux), then refuses.
    pub listener: UnixListener,
    /// The queued connections, kept open so the backlog stays full.
    pub queued: Vec<tokio::net::UnixStream>,
}

/// Binds [`FullBacklog`]'s listener at `path` and fills its backlog with the library's
/// own connections (`socket::SocketFile::connect`, through `backend`), made until the
/// library answers that the backlog is full (EAGAIN: `ProbeDoubt::BacklogFull`).
pub async fn full_backlog(path: &Path, backend: Backend) -> Result<FullBacklog> {
    let listener = bind_any_len(path)?;
    // std listens with its own backlog; a second listen sets it (Linux and the BSDs).
    let zero = nix::sys::socket::Backlog::new(0).context("backlog")?;
    nix::sys::socket::listen(&listener, zero).context("listen with backlog 0")?;
    let (inspection, Some(file)) = inspect_for_probe(path, backend) else {
        bail!("{} is not a socket to connect to", path.display());
    };
    let mut queued = Vec::new();
    for _ in 0..64 {
        match file.connect(Duration::from_secs(2)).await {
            Ok(stream) => queued.push(stream),
            Err(Probe::Indeterminate(ProbeDoubt::BacklogFull)) => {
                return Ok(FullBacklog { listener, queued });
            }
            Err(other) => bail!("filling the backlog ({inspection:?}): connect: {other:?}"),
        }
    }
    bail!(
        "the backlog never filled after {} connections",
        queued.len()
    )
}
