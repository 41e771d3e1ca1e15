//! Section 4: idle cost of waiting on a socket that never appears.
//!
//! Each variant runs alone (one after another), on its own thread with its own
//! current-thread runtime, so the thread's rusage (`RUSAGE_THREAD`: user + sys, and
//! voluntary context switches ≈ wake-ups) is exactly the waiter's cost, timer and
//! reactor included. The process's rusage over the same window is shown as a cross-check
//! (it includes the bench's other, idle threads).
//!
//! Both backends are measured: the socket waiter (native: inotify + backoff; portable:
//! the backoff poll alone) and the supervisor of a child that sleeps through the window
//! (native: a pidfd; portable: `SIGCHLD` plus a once-a-second `waitid` recheck).

use std::time::{Duration, Instant};

use entwurf_v2_spawn::Backend;
use entwurf_v2_spawn::production::child::{SpawnRequest, spawn_child};
use entwurf_v2_spawn::socket::{WaitOptions, await_socket_alive};
use entwurf_v2_spawn::watcher::StopSignal;
use tokio_util::sync::CancellationToken;

use crate::detection::poll_baseline;
use crate::sys::Cpu;

pub struct Idle {
    pub variant: &'static str,
    pub window: Duration,
    pub thread: Cpu,
    pub process: Cpu,
}

/// What waits idly.
#[derive(Clone, Copy)]
enum Waiter {
    /// `await_socket_alive` with the defaults and this backend.
    Production(Backend),
    /// The fixed-interval poll baseline, every this many ms.
    Poll(u64),
    /// A supervisor of a child that sleeps through the window.
    Supervisor(Backend),
}

pub fn run(window: Duration) -> Vec<Idle> {
    let variants: [(&'static str, Waiter); 6] = [
        (
            "production (defaults: 150 ms cap)",
            Waiter::Production(Backend::Native),
        ),
        (
            "production [portable] (defaults: 150 ms cap)",
            Waiter::Production(Backend::Portable),
        ),
        ("poll 20 ms", Waiter::Poll(20)),
        ("poll 150 ms", Waiter::Poll(150)),
        (
            "child supervisor, sleeping child (pidfd)",
            Waiter::Supervisor(Backend::Native),
        ),
        (
            "child supervisor [portable] (SIGCHLD + 1 s recheck)",
            Waiter::Supervisor(Backend::Portable),
        ),
    ];
    variants
        .into_iter()
        .map(|(variant, waiter)| {
            let before = Cpu::process();
            let (thread, window) = std::thread::spawn(move || measure(window, waiter))
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

fn measure(window: Duration, waiter: Waiter) -> (Cpu, Duration) {
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
        let waited = match waiter {
            Waiter::Production(backend) => tokio::time::timeout(
                window,
                await_socket_alive(
                    &path,
                    cancel.clone(),
                    WaitOptions::default().with_backend(backend),
                ),
            )
            .await
            .map(|r| r.map_err(|e| e.to_string())),
            Waiter::Supervisor(backend) => {
                let child = spawn_child(
                    &SpawnRequest::new("/bin/sleep", ["600"], dir.path()).with_backend(backend),
                )
                .expect("spawn sleep");
                let waited = tokio::time::timeout(window, child.exit()).await;
                child.signal(StopSignal::Kill).await.expect("kill");
                child.exit().await.expect("exit");
                waited.map(|r| r.map(drop).map_err(|e| e.to_string()))
            }
            Waiter::Poll(ms) => {
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
