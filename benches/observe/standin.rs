//! The stand-in child: this bench binary re-executed as `--stand-in MODE STAMP ARGS…`.
//!
//! No shell, no node: a shell's `trap` only runs once its current `sleep` returns, which
//! would measure the shell, not us. SIGTERM is *blocked* first thing and then either
//! collected through a signalfd (not `sigwait`: the kernel lifts the mask while a
//! `sigwait` sleeps, which would hide readiness from `SigBlk`); it exits 0 at once: a child that handles SIGTERM) or left
//! pending forever (a child that ignores SIGTERM and must be killed). Blocking first
//! also lets the bench see readiness in `/proc/<pid>/status` (`SigBlk`).
//!
//! Modes (STAMP is a file for a CLOCK_MONOTONIC stamp, or `-`):
//! - `term-exit STAMP`: on SIGTERM, stamp and exit 0.
//! - `ignore-term STAMP`: never exits on its own (SIGKILL ends it).
//! - `listen STAMP SOCKET DELAY_US`: after the delay, bind+listen on SOCKET, stamp right
//!   after `listen()` returned, then as `term-exit` (without a second stamp).
//! - `exit STAMP CODE DELAY_US`: after the delay, stamp and exit with CODE.

use std::os::unix::net::UnixListener;
use std::path::Path;
use std::time::Duration;

use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::SignalFd;

use crate::sys::stamp;

pub const FLAG: &str = "--stand-in";

pub fn run(args: &[String]) -> ! {
    let mut term = SigSet::empty();
    term.add(Signal::SIGTERM);
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or("");
    let mode = arg(0);
    let stamp_path = arg(1);
    let stamp_now = || {
        if stamp_path != "-" {
            stamp(Path::new(stamp_path));
        }
    };
    if mode != "exit" {
        term.thread_block().expect("block SIGTERM");
    }
    // A bench that panics must not leave stand-ins behind. (The death signal follows the
    // thread that forked us; every spawning thread of the bench outlives its children.)
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
    // Opened at once, so a SIGTERM that arrives from now on is read without delay.
    let signals =
        matches!(mode, "term-exit" | "listen").then(|| SignalFd::new(&term).expect("signalfd"));
    let wait_term = || {
        if let Some(fd) = &signals {
            while fd.read_signal().expect("read signalfd").is_none() {}
        }
    };
    match mode {
        "term-exit" => {
            wait_term();
            stamp_now();
            std::process::exit(0)
        }
        "ignore-term" => loop {
            std::thread::sleep(Duration::from_secs(3600));
        },
        "listen" => {
            let delay = Duration::from_micros(arg(3).parse().expect("delay"));
            std::thread::sleep(delay);
            let listener = UnixListener::bind(arg(2)).expect("bind");
            stamp_now();
            wait_term();
            drop(listener);
            std::process::exit(0)
        }
        "exit" => {
            let code: i32 = arg(2).parse().expect("code");
            let delay = Duration::from_micros(arg(3).parse().expect("delay"));
            std::thread::sleep(delay);
            stamp_now();
            std::process::exit(code)
        }
        other => {
            eprintln!("unknown stand-in mode {other:?}");
            std::process::exit(2)
        }
    }
}
