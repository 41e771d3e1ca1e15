//! What the kernel says about processes, descriptors and signal masks, read from `/proc`
//! (Linux). The checks of this project — the test binaries, the bench and the live gate —
//! assert against these readings rather than against what the library reports, so a
//! library that lies about a child or a descriptor is caught by the kernel's own view.
//!
//! Every reader answers "nothing" (`None`, an empty list, an `Err`) where `/proc` is
//! missing or the process is gone, and never panics: whether that is a failure is the
//! caller's decision. Elsewhere than on Linux it builds and finds nothing.
//!
//! One rule for `/proc/<pid>/stat`: the command name (field 2) may hold spaces and
//! parentheses, so fields are counted from the last `)`.

use std::collections::BTreeMap;
use std::io;
use std::time::Duration;

/// The fields of `/proc/<pid>/stat` the checks use.
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
    #[must_use]
    pub fn is_dead(&self) -> bool {
        matches!(self.state, 'Z' | 'X' | 'x')
    }
}

/// Reads `/proc/<pid>/stat`; `None` when the process is gone (or unreadable).
#[must_use]
pub fn proc_stat(pid: u32) -> Option<ProcStat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

/// Parses one `/proc/<pid>/stat` line.
#[must_use]
pub fn parse_stat(text: &str) -> Option<ProcStat> {
    let fields = fields_after_comm(text)?;
    Some(ProcStat {
        state: fields.first()?.chars().next()?,
        ppid: fields.get(1)?.parse().ok()?,
        pgrp: fields.get(2)?.parse().ok()?,
        session: fields.get(3)?.parse().ok()?,
        // Field 22 of proc_pid_stat(5); the list starts at field 3 (the state).
        start_time: fields.get(19)?.parse().ok()?,
    })
}

/// The fields after the command name: the first is field 3 (the state).
fn fields_after_comm(text: &str) -> Option<Vec<&str>> {
    let rest = text.get(text.rfind(')')? + 1..)?;
    Some(rest.split_whitespace().collect())
}

/// The state letter of `pid` (`R`, `S`, `Z`, ...), `None` once it is gone (reaped). Only
/// the state is parsed, so a process whose other fields are odd still has one.
#[must_use]
pub fn proc_state(pid: u32) -> Option<char> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    fields_after_comm(&text)?.first()?.chars().next()
}

/// Running: neither gone nor a zombie (`Z`) or dead (`X`) entry waiting to be reaped.
#[must_use]
pub fn alive(pid: u32) -> bool {
    proc_state(pid).is_some_and(|s| !matches!(s, 'Z' | 'X' | 'x'))
}

/// Every process visible in `/proc` with its stat.
#[must_use]
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
#[must_use]
pub fn live_group_members(pgid: u32) -> Vec<u32> {
    processes()
        .into_iter()
        .filter(|(_, s)| s.pgrp == pgid && !s.is_dead())
        .map(|(pid, _)| pid)
        .collect()
}

/// Who a process is for good: its pid and start time (see [`ProcStat::start_time`]).
/// A watchdog that knew a process by its pid alone could take a newcomer that reused
/// the pid for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessId {
    /// The pid.
    pub pid: u32,
    /// Its start time in clock ticks after boot.
    pub start_time: u64,
}

impl ProcessId {
    /// This process.
    #[must_use]
    pub fn current() -> Option<Self> {
        Self::of(std::process::id())
    }

    /// Process `pid` as it is now, when it runs.
    #[must_use]
    pub fn of(pid: u32) -> Option<Self> {
        let stat = proc_stat(pid)?;
        Some(Self {
            pid,
            start_time: stat.start_time,
        })
    }

    /// Whether this very process still runs (same pid, same start time, not a zombie).
    #[must_use]
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

/// The value of `key` (e.g. `"Threads:"`) in `/proc/<pid>/status`, trimmed.
#[must_use]
pub fn status_field(pid: u32, key: &str) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(key).map(|v| v.trim().to_owned()))
}

/// A signal mask of `/proc/<pid>/status` (`"SigIgn:"`, `"SigBlk:"`, ...): bit n-1 is
/// signal n.
#[must_use]
pub fn signal_mask(pid: u32, key: &str) -> Option<u64> {
    u64::from_str_radix(&status_field(pid, key)?, 16).ok()
}

/// Whether signal `signal` (a number, e.g. 15) is set in `mask`.
#[must_use]
pub fn mask_has(mask: u64, signal: u32) -> bool {
    signal
        .checked_sub(1)
        .is_some_and(|bit| bit < 64 && mask & (1 << bit) != 0)
}

/// The signals this process ignores (`SigIgn`), 0 when unreadable.
#[must_use]
pub fn ignored_signals() -> u64 {
    signal_mask(std::process::id(), "SigIgn:").unwrap_or(0)
}

/// `/proc/<pid>/cmdline` split at NULs.
#[must_use]
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

/// This process's open descriptors and what they point at (`socket:[123]`,
/// `anon_inode:inotify`, a path), without the one the listing itself opened.
///
/// # Errors
///
/// When `/proc/self/fd` cannot be listed.
pub fn open_fds() -> io::Result<BTreeMap<i32, String>> {
    let own_listing = format!("/proc/{}/fd", std::process::id());
    let mut fds = BTreeMap::new();
    for entry in std::fs::read_dir("/proc/self/fd")? {
        let entry = entry?;
        let Some(fd) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        // The listing's own handle shows up, and may be gone by the time its link is read.
        let Ok(target) = std::fs::read_link(entry.path()) else {
            continue;
        };
        let target = target.to_string_lossy().into_owned();
        if target != own_listing {
            fds.insert(fd, target);
        }
    }
    Ok(fds)
}

/// This process's descriptors with their `/proc/self/fdinfo/<fd>` text (`flags:`, and
/// for an inotify instance one `inotify wd:` line per watch).
///
/// # Errors
///
/// When `/proc/self/fdinfo` cannot be listed.
pub fn fdinfo() -> io::Result<BTreeMap<i32, String>> {
    let mut infos = BTreeMap::new();
    for entry in std::fs::read_dir("/proc/self/fdinfo")? {
        let entry = entry?;
        let Some(fd) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        if let Ok(info) = std::fs::read_to_string(entry.path()) {
            infos.insert(fd, info);
        }
    }
    Ok(infos)
}

/// On-CPU time of the calling thread (`/proc/thread-self/schedstat`, brought up to date
/// when the thread is switched out), when the kernel exposes it.
#[must_use]
pub fn thread_cpu_time() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = text.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
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
    fn process_ids_round_trip() {
        let id = ProcessId {
            pid: 42,
            start_time: 7,
        };
        assert_eq!(id.to_string().parse::<ProcessId>(), Ok(id));
        assert!("42".parse::<ProcessId>().is_err());
    }

    #[test]
    fn masks_name_signals_by_number() {
        assert!(mask_has(1 << 14, 15));
        assert!(!mask_has(1 << 14, 14));
        assert!(!mask_has(u64::MAX, 0));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn our_own_stat_and_a_new_fd_are_visible() {
        let me = proc_stat(std::process::id()).expect("self");
        assert!(!me.is_dead());
        assert!(alive(std::process::id()));
        assert!(ProcessId::current().is_some_and(ProcessId::is_alive));
        let before = open_fds().expect("fds");
        let file = std::fs::File::open("/proc/self/stat").expect("open");
        let after = open_fds().expect("fds");
        assert_eq!(after.len(), before.len() + 1, "{before:?} {after:?}");
        drop(file);
    }
}
