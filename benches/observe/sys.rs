//! Small OS helpers: a cross-process monotonic clock, rusage, /proc counters, a PRNG.

use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::resource::{UsageWho, getrusage};
use nix::time::{ClockId, clock_gettime};

/// CLOCK_MONOTONIC in nanoseconds: the same clock in every process of the machine, so a
/// stand-in child's "listening now" stamp can be compared with the bench's own.
pub fn mono_ns() -> i128 {
    let t = clock_gettime(ClockId::CLOCK_MONOTONIC).expect("clock_gettime");
    i128::from(t.tv_sec()) * 1_000_000_000 + i128::from(t.tv_nsec())
}

/// Writes `mono_ns()` to `path` (a stand-in's stamp).
pub fn stamp(path: &Path) {
    let _ = std::fs::write(path, mono_ns().to_string());
}

/// Reads a stamp written by [`stamp`].
pub fn read_stamp(path: &Path) -> Option<i128> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// CPU time and voluntary context switches (≈ wake-ups after sleeping).
#[derive(Debug, Clone, Copy)]
pub struct Cpu {
    pub user: Duration,
    pub sys: Duration,
    pub wakeups: i64,
}

impl Cpu {
    pub fn of(who: UsageWho) -> Self {
        let u = getrusage(who).expect("getrusage");
        let tv = |t: nix::sys::time::TimeVal| {
            Duration::from_secs(t.tv_sec() as u64) + Duration::from_micros(t.tv_usec() as u64)
        };
        Self {
            user: tv(u.user_time()),
            sys: tv(u.system_time()),
            wakeups: u.voluntary_context_switches(),
        }
    }
    pub fn thread() -> Self {
        Self::of(UsageWho::RUSAGE_THREAD)
    }
    pub fn process() -> Self {
        Self::of(UsageWho::RUSAGE_SELF)
    }
    pub fn since(self, before: Self) -> Self {
        Self {
            user: self.user.saturating_sub(before.user),
            sys: self.sys.saturating_sub(before.sys),
            wakeups: self.wakeups - before.wakeups,
        }
    }
    pub fn total(self) -> Duration {
        self.user + self.sys
    }
}

/// Open descriptors of this process.
pub fn open_fds() -> usize {
    entwurf_procfs::open_fds().map_or(0, |fds| fds.len())
}

/// Threads of this process.
pub fn threads() -> usize {
    entwurf_procfs::status_field(std::process::id(), "Threads:")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Resident set size of this process in KiB.
pub fn rss_kib() -> usize {
    entwurf_procfs::status_field(std::process::id(), "VmRSS:")
        .and_then(|v| v.trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Whether `pid` blocks SIGTERM (the stand-in is ready to handle or ignore it).
pub fn blocks_sigterm(pid: u32) -> bool {
    entwurf_procfs::signal_mask(pid, "SigBlk:")
        .is_some_and(|mask| entwurf_procfs::mask_has(mask, 15))
}

/// Waits (async, bounded) until the stand-in `pid` has blocked SIGTERM.
pub async fn until_ready(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !blocks_sigterm(pid) {
        assert!(Instant::now() < deadline, "stand-in {pid} never got ready");
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
}

/// `(pid, ppid, pgrp)` of every process on the machine.
pub fn processes() -> Vec<(u32, u32, u32)> {
    entwurf_procfs::processes()
        .into_iter()
        .map(|(pid, stat)| (pid, stat.ppid, stat.pgrp))
        .collect()
}

/// SplitMix64: small, seedable, good enough for delays and shuffles.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    /// A uniform delay in `0..max`, microsecond steps.
    pub fn delay(&mut self, max: Duration) -> Duration {
        Duration::from_micros(self.below(max.as_micros() as u64))
    }
}

/// A seed from the OS.
pub fn os_seed() -> u64 {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).expect("getrandom");
    u64::from_le_bytes(b)
}
