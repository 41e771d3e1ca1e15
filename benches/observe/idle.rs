//! Section 4: idle cost of waiting on a socket that never appears.
//!
//! Each variant runs alone (one after another), on its own thread with its own
//! current-thread runtime, so the thread's rusage (`RUSAGE_THREAD`: user + sys, and
//! voluntary context switches ≈ wake-ups) is exactly the waiter's cost, timer and
//! reactor included. The process's rusage over the same window is shown as a cross-check
//! (it includes the bench's other, idle threads).

use std::time::{Duration, Instant};

use entwurf_v2_spawn::socket::{WaitOptions, await_socket_alive};
use tokio_util::sync::CancellationToken;

use crate::detection::poll_baseline;
use crate::sys::Cpu;

pub struct Idle {
    pub variant: &'static str,
    pub window: Duration,
    pub thread: Cpu,
    pub process: Cpu,
}

pub fn run(window: Duration) -> Vec<Idle> {
    let variants: [(&'static str, Option<u64>); 3] = [
        ("production (defaults: 150 ms cap)", None),
        ("poll 20 ms", Some(20)),
        ("poll 150 ms", Some(150)),
    ];
    variants
        .into_iter()
        .map(|(variant, poll)| {
            let before = Cpu::process();
            let (thread, window) = std::thread::spawn(move || measure(window, poll))
                .join()
                .expect("idle thread");
            Idle {
                variant,
                window,
                thread,
                process: Cpu::process().since(before),
            }
        })
        .collect()
}

fn measure(window: Duration, poll: Option<u64>) -> (Cpu, Duration) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("never.sock");
    let cancel = CancellationToken::new();
    let before = Cpu::thread();
    let t0 = Instant::now();
    rt.block_on(async {
        let waited = match poll {
            None => tokio::time::timeout(
                window,
                await_socket_alive(&path, cancel.clone(), WaitOptions::default()),
            )
            .await
            .map(|r| r.map_err(|e| e.to_string())),
            Some(ms) => {
                tokio::time::timeout(
                    window,
                    poll_baseline(
                        path.clone(),
                        Duration::from_millis(ms),
                        WaitOptions::default().probe_timeout,
                        cancel.clone(),
                    ),
                )
                .await
            }
        };
        assert!(waited.is_err(), "an absent socket resolved: {waited:?}");
    });
    let elapsed = t0.elapsed();
    (Cpu::thread().since(before), elapsed)
}
