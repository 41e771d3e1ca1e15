//! Regression guard for socket-alive detection latency (the full measurement is
//! `cargo bench --bench observe -- detection`, see docs/performance.md).
//!
//! 20 trials: a real listener binds and listens after a random 0–50 ms, and the
//! production waiter (default options) must notice it. Latency = the waiter's return
//! minus the instant right after `listen()` returned.
//!
//! Not timing-fragile by design: the bounds are two orders of magnitude above what the
//! waiter does (p50 ≈ 0.15 ms on a loaded 2-core machine), and only a broken wake-up
//! path reaches them — without inotify, the waiter falls back to its backoff poll capped
//! at 150 ms, whose median latency is ≈ 75 ms; a close that blocks the return (the
//! inotify close used to) shows up as ≈ 10–20 ms, which the p50 bound deliberately
//! tolerates. A loaded machine delays single trials, which the median absorbs.

use std::os::unix::net::UnixListener;
use std::time::{Duration, Instant};

use entwurf_v2_spawn::socket::{WaitOptions, await_socket_alive};
use tokio_util::sync::CancellationToken;

const TRIALS: usize = 20;
const P50_BOUND: Duration = Duration::from_millis(50);
const MAX_BOUND: Duration = Duration::from_secs(1);

/// Delays in 0..50 ms without a RNG crate: spread by a fixed stride, with the clock's
/// sub-millisecond part for variety between runs.
fn delays() -> Vec<Duration> {
    let jitter = Instant::now().elapsed().subsec_nanos() as u64 % 1000;
    (0..TRIALS as u64)
        .map(|i| Duration::from_micros((i * 7919 + jitter) % 50_000))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detection_stays_prompt() {
    let mut latencies = Vec::with_capacity(TRIALS);
    for delay in delays() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("citizen.sock");
        let start = Instant::now();
        let waiter = {
            let path = path.clone();
            tokio::spawn(async move {
                await_socket_alive(&path, CancellationToken::new(), WaitOptions::default())
                    .await
                    .map(|()| Instant::now())
            })
        };
        let listener = tokio::task::spawn_blocking(move || {
            std::thread::sleep((start + delay).saturating_duration_since(Instant::now()));
            let listener = UnixListener::bind(&path).expect("bind");
            (listener, Instant::now())
        });
        let (_listener, listening) = listener.await.expect("listener");
        let returned = tokio::time::timeout(Duration::from_secs(10), waiter)
            .await
            .expect("the waiter must notice a live socket")
            .expect("join")
            .expect("await_socket_alive");
        latencies.push(returned.saturating_duration_since(listening));
    }
    latencies.sort();
    let p50 = latencies[TRIALS / 2];
    let max = latencies[TRIALS - 1];
    eprintln!("detection over {TRIALS} trials: p50 {p50:?}, max {max:?}");
    assert!(
        p50 < P50_BOUND,
        "detection p50 {p50:?} ≥ {P50_BOUND:?}: the inotify wake-up path is broken ({latencies:?})"
    );
    assert!(
        max < MAX_BOUND,
        "a detection took {max:?} (≥ {MAX_BOUND:?}): {latencies:?}"
    );
}
