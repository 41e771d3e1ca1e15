//! No descriptor leaks in the parent across spawn/exit cycles, with each backend in turn
//! (pidfd; `SIGCHLD` listener). Its own test binary: tests within one binary run in
//! parallel and would disturb the count.

use std::time::{Duration, Instant};

use entwurf_v2_spawn::Backend;
use entwurf_v2_spawn::production::child::{SpawnRequest, StderrTarget, spawn_child};
use entwurf_v2_spawn::watcher::StopSignal;

fn open_fds() -> usize {
    entwurf_procfs::open_fds().unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawn_and_exit_cycles_leak_no_descriptor() {
    // One after the other, in one test: a parallel test would disturb the count.
    for backend in [Backend::Native, Backend::Portable] {
        cycles_leak_nothing(backend).await;
    }
}

async fn cycles_leak_nothing(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let cycle = |i: usize| {
        let log = dir.path().join("child.err");
        async move {
            // Alternate the three ways a child ends: on its own, by SIGTERM, by SIGKILL.
            let (script, signal) = match i % 3 {
                0 => ("exit 0", None),
                1 => ("sleep 30", Some(StopSignal::Terminate)),
                _ => ("sleep 30", Some(StopSignal::Kill)),
            };
            let child = spawn_child(
                &SpawnRequest::new("/bin/sh", ["-c", script], std::env::temp_dir())
                    .with_stderr(StderrTarget::AppendTo(log))
                    .with_backend(backend),
            )
            .unwrap();
            if let Some(signal) = signal {
                child.signal(signal).await.unwrap();
            }
            tokio::time::timeout(Duration::from_secs(10), child.exit())
                .await
                .expect("exit within 10 s")
                .unwrap();
        }
    };

    // Warm up: the runtime's reactor, blocking pool and (portable) signal driver open
    // their descriptors lazily.
    cycle(0).await;
    cycle(1).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let before = open_fds();

    for i in 0..15 {
        cycle(i).await;
    }
    // The supervisor closes the pidfd right after publishing the exit; allow it a moment.
    let start = Instant::now();
    let mut after = open_fds();
    while after > before && start.elapsed() < Duration::from_secs(2) {
        tokio::time::sleep(Duration::from_millis(20)).await;
        after = open_fds();
    }
    assert!(
        after <= before,
        "{backend}: descriptors before {before}, after {after}"
    );
}
