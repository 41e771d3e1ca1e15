//! The stand-ins' lifeline: exit as soon as the gate process is gone.
//!
//! The gate process — the live gate's own, which runs the checks and starts every stand-in —
//! cannot clean up when killed with SIGKILL, so every stand-in watches it: a thread blocks
//! in `poll` on a pidfd of the gate process and exits the stand-in ([`GATE_GONE`]) the
//! moment it is gone. Residents and racers are told its pid and start time
//! (`--lifeline`); the grandchild gets the same from its parent; the stand-in `pi`, whose
//! argv is fixed by the resume layout, watches its parent, which is the gate process. The
//! pidfd is checked against the start time (or, for the parent, against `getppid` again)
//! *after* it is opened, so a gate process that died before the stand-in looked — its pid
//! maybe reused already — is noticed, not mistaken for a live one. `PR_SET_PDEATHSIG`
//! would not do: it fires when the spawning *thread* ends, and the gate process spawns
//! from a pool of threads that come and go. A lifetime cap (exit 3 after 120 s) stays as
//! the last net.
//!
//! Linux only, like the pidfd: elsewhere the binary builds (the cross-target clippy
//! checks it) and the lifetime cap is the only net. The live gate itself reads `/proc`
//! and runs on Linux.
#![cfg_attr(
    not(target_os = "linux"),
    expect(
        dead_code,
        reason = "no lifeline off Linux: the pidfd it polls is Linux's"
    )
)]

#[cfg(target_os = "linux")]
use rustix::event::{PollFd, PollFlags, poll};
#[cfg(target_os = "linux")]
use rustix::process::{PidfdFlags, pidfd_open};

use crate::os::ProcessId;

/// The default lifetime cap of a stand-in.
pub const MAX_LIFE_MS: u64 = 120_000;

/// The last net behind the lifeline: exits the stand-in with 3 after `ms` whatever
/// happens.
pub fn lifetime_cap(ms: u64) {
    let _ = std::thread::Builder::new()
        .stack_size(64 * 1024)
        .spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(ms));
            eprintln!("stand-in: lifetime cap of {ms} ms reached, exiting");
            std::process::exit(3);
        });
}

/// Exit code of a stand-in that saw the gate process die.
pub const GATE_GONE: u8 = 5;

/// Whom a stand-in watches: a named process, or its parent.
#[derive(Debug, Clone, Copy)]
pub enum Watched {
    /// The gate process, by pid and start time.
    Gate(ProcessId),
    /// The parent at start-up (the stand-in `pi`, whose argv is fixed).
    Parent,
}

#[cfg(target_os = "linux")]
fn gate_gone(why: &str) -> ! {
    eprintln!("stand-in: {why}; exiting");
    std::process::exit(i32::from(GATE_GONE))
}

/// Test only: with this set, stand-ins keep no lifeline, so the CLI tests can see that
/// the gate process's own cleanup kills every group (the lifeline would otherwise
/// hide a group the cleanup missed).
pub const NO_LIFELINE_ENV: &str = "ENTWURF_SMOKE_TEST_NO_LIFELINE";

/// Off Linux there is no pidfd to watch the gate process with: no lifeline (see the module
/// docs).
#[cfg(not(target_os = "linux"))]
pub fn lifeline(_watched: Watched) {}

/// Starts the lifeline (see the module docs). Returns once the pidfd is open and
/// verified, so the stand-in announces readiness only when it is already watching.
#[cfg(target_os = "linux")]
pub fn lifeline(watched: Watched) {
    if std::env::var_os(NO_LIFELINE_ENV).is_some() {
        return;
    }
    let (pid, verify): (u32, Box<dyn Fn() -> bool>) = match watched {
        Watched::Gate(gate) => (gate.pid, Box::new(move || gate.is_alive())),
        Watched::Parent => {
            let parent = nix::unistd::getppid();
            let raw = u32::try_from(parent.as_raw()).unwrap_or(0);
            (raw, Box::new(move || nix::unistd::getppid() == parent))
        }
    };
    let pidfd = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
        .map(|p| pidfd_open(p, PidfdFlags::empty()));
    let pidfd = match pidfd {
        Some(Ok(fd)) => fd,
        _ => gate_gone(&format!("the gate process (pid {pid}) is already gone")),
    };
    if !verify() {
        gate_gone(&format!("the gate process (pid {pid}) is already gone"));
    }
    let spawned = std::thread::Builder::new()
        .name("lifeline".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            loop {
                let mut fds = [PollFd::new(&pidfd, PollFlags::IN)];
                match poll(&mut fds, None) {
                    Ok(n) if n > 0 => gate_gone(&format!("the gate process (pid {pid}) exited")),
                    // EINTR or a spurious wake-up: look again.
                    _ => {}
                }
            }
        });
    if spawned.is_err() {
        gate_gone("no lifeline thread");
    }
}
