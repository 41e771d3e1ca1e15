//! Small views of the real OS the checks assert against: `/proc`, descriptors, long
//! socket paths, and bounded polling.

use std::collections::BTreeMap;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// The fields of `/proc/<pid>/stat` the checks need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    /// One-letter state (`R`, `S`, `Z`, ...).
    pub state: char,
    /// Parent pid.
    pub ppid: u32,
    /// Process group.
    pub pgrp: u32,
    /// Session.
    pub session: u32,
    /// Start time after boot, in clock ticks: with the pid, it names one process for
    /// good (a reused pid has a later start time).
    pub start_time: u64,
}

impl ProcStat {
    /// A zombie (or dead-and-being-reaped) process no longer runs anything.
    pub fn is_dead(&self) -> bool {
        matches!(self.state, 'Z' | 'X' | 'x')
    }
}

/// Reads `/proc/<pid>/stat`; `None` when the process is gone (or unreadable).
pub fn proc_stat(pid: u32) -> Option<ProcStat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

/// The command name may contain spaces and parentheses, so fields are counted from the
/// last `)`.
fn parse_stat(text: &str) -> Option<ProcStat> {
    let rest = text.get(text.rfind(')')? + 1..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(ProcStat {
        state: fields.first()?.chars().next()?,
        ppid: fields.get(1)?.parse().ok()?,
        pgrp: fields.get(2)?.parse().ok()?,
        session: fields.get(3)?.parse().ok()?,
        // Field 22 of stat(5); `fields` starts at field 3 (the state).
        start_time: fields.get(19)?.parse().ok()?,
    })
}

/// Every process visible in `/proc` with its stat.
pub fn processes() -> Vec<(u32, ProcStat)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|entry| {
        let pid: u32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
        Some((pid, proc_stat(pid)?))
    })
    .collect()
}

/// Processes in group `pgid` that still run (zombies excluded).
pub fn live_group_members(pgid: u32) -> Vec<u32> {
    processes()
        .into_iter()
        .filter(|(_, s)| s.pgrp == pgid && !s.is_dead())
        .map(|(pid, _)| pid)
        .collect()
}

/// Who a process is for good: its pid and start time (see [`ProcStat::start_time`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessId {
    /// The pid.
    pub pid: u32,
    /// Its start time in clock ticks after boot.
    pub start_time: u64,
}

impl ProcessId {
    /// This process.
    pub fn current() -> Option<Self> {
        Self::of(std::process::id())
    }

    /// Process `pid` as it is now, when it runs.
    pub fn of(pid: u32) -> Option<Self> {
        let stat = proc_stat(pid)?;
        Some(Self {
            pid,
            start_time: stat.start_time,
        })
    }

    /// Whether this very process still runs (same pid, same start time, not a zombie).
    pub fn is_alive(self) -> bool {
        proc_stat(self.pid).is_some_and(|s| !s.is_dead() && s.start_time == self.start_time)
    }
}

impl std::fmt::Display for ProcessId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.pid, self.start_time)
    }
}

impl std::str::FromStr for ProcessId {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (pid, start) = s
            .trim()
            .split_once(':')
            .ok_or_else(|| format!("{s:?} is not PID:START_TIME"))?;
        Ok(Self {
            pid: pid.parse().map_err(|_| format!("bad pid in {s:?}"))?,
            start_time: start
                .parse()
                .map_err(|_| format!("bad start time in {s:?}"))?,
        })
    }
}

/// The signals this process ignores (`SigIgn` of `/proc/self/status`; bit n-1 is
/// signal n), 0 when unreadable.
pub fn ignored_signals() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find_map(|l| l.strip_prefix("SigIgn:"))?;
            u64::from_str_radix(line.trim(), 16).ok()
        })
        .unwrap_or(0)
}

/// `/proc/<pid>/cmdline` split at NULs.
pub fn cmdline(pid: u32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|bytes| {
            bytes
                .split(|b| *b == 0)
                .filter(|part| !part.is_empty())
                .map(|part| String::from_utf8_lossy(part).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Our open descriptors and what they point at, without the one listing them.
pub fn open_fds() -> BTreeMap<i32, String> {
    let own_listing = format!("/proc/{}/fd", std::process::id());
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return BTreeMap::new();
    };
    dir.filter_map(|entry| {
        let entry = entry.ok()?;
        let fd: i32 = entry.file_name().to_str()?.parse().ok()?;
        let target = std::fs::read_link(entry.path()).ok()?;
        let target = target.to_string_lossy().into_owned();
        (target != own_listing).then_some((fd, target))
    })
    .collect()
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

/// A close-on-exec unix stream socket, non-blocking if asked: atomically where the OS
/// has the flags (Linux, FreeBSD), by `fcntl` on macOS. Close-on-exec matters because
/// other checks spawn children concurrently.
pub fn stream_socket(nonblocking: bool) -> nix::Result<std::os::fd::OwnedFd> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, socket};
    #[cfg(not(target_vendor = "apple"))]
    {
        let mut flags = SockFlag::SOCK_CLOEXEC;
        if nonblocking {
            flags |= SockFlag::SOCK_NONBLOCK;
        }
        socket(AddressFamily::Unix, SockType::Stream, flags, None)
    }
    #[cfg(target_vendor = "apple")]
    {
        use nix::fcntl::{FcntlArg, FdFlag, OFlag, fcntl};
        let sock = socket(
            AddressFamily::Unix,
            SockType::Stream,
            SockFlag::empty(),
            None,
        )?;
        fcntl(&sock, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))?;
        if nonblocking {
            fcntl(&sock, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))?;
        }
        Ok(sock)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_parses_names_with_parens_and_spaces() {
        let line = "42 (a) b (c) S 7 42 42 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 12345 0 0";
        let stat = parse_stat(line).expect("parse");
        assert_eq!(stat.state, 'S');
        assert_eq!(stat.ppid, 7);
        assert_eq!(stat.pgrp, 42);
        assert_eq!(stat.session, 42);
        assert_eq!(stat.start_time, 12345);
        assert!(parse_stat("garbage").is_none());
    }

    #[test]
    fn our_own_stat_and_a_new_fd_are_visible() {
        let me = proc_stat(std::process::id()).expect("self");
        assert!(!me.is_dead());
        let before = open_fds();
        let file = std::fs::File::open("/proc/self/stat").expect("open");
        let after = open_fds();
        assert_eq!(after.len(), before.len() + 1, "{before:?} {after:?}");
        drop(file);
    }
}
