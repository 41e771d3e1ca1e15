//! Section 1: socket-alive detection latency.
//!
//! Design: every trial starts four waiters at the same instant on the **same path** —
//! the production `await_socket_alive` with its defaults, once per backend (native:
//! inotify + backoff; portable: the backoff alone, capped at the same 150 ms), and two
//! fixed-interval poll
//! loops (150 ms, the TypeScript dispatcher; 20 ms, its smoke) that call the very same
//! probe (`socket::inspect_and_probe` + `verdict`). A listener thread then sleeps a uniform random
//! 0–300 ms, binds and listens (std's `UnixListener::bind` = socket, bind, listen) and
//! takes the "listening" instant right after that returns. Each waiter's latency is the
//! instant it returned minus that one instant. One listener event serves all three, so
//! the ratios come from identical conditions; the pollers' phase relative to the listen
//! is uniform because the delay is. The pollers' probes do not disturb the production
//! waiter: a connect only queues in the listener's backlog (never accepted, 4096 deep).
//! A waiter can only return after `listen()`, but its clock read may beat the listener
//! thread's by a few microseconds; such a sample is clamped to 0 and counted.
//!
//! A fourth task gives the *floor*: right after taking the listening instant, the
//! listener thread writes a byte to a socketpair whose other end a task on the same
//! runtime awaits. That is the cheapest cross-thread wake-up through the reactor (no
//! inotify, no probe); what the machine's scheduler adds to it under load, it adds to
//! every event-driven detection too.

use std::io::Write;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use entwurf_v2_spawn::Backend;
use entwurf_v2_spawn::socket::{
    Verdict, WaitOptions, await_socket_alive, inspect_and_probe, verdict,
};
use tokio_util::sync::CancellationToken;

use crate::stats::Row;
use crate::sys::Rng;

/// The fixed-interval poll the TypeScript dispatcher does, on our probe.
pub async fn poll_baseline(
    path: PathBuf,
    interval: Duration,
    probe_timeout: Duration,
    cancel: CancellationToken,
) -> Result<(), String> {
    loop {
        match verdict(&inspect_and_probe(&path, probe_timeout, Backend::Native).await) {
            Verdict::Alive => return Ok(()),
            Verdict::Forged(c) => return Err(format!("forged: {c}")),
            // Wait, or a verdict this bench does not know: look again.
            _ => {}
        }
        tokio::select! {
            () = cancel.cancelled() => return Err("cancelled".into()),
            () = tokio::time::sleep(interval) => {}
        }
    }
}

pub const VARIANTS: [&str; 5] = [
    "production (inotify + backoff, defaults)",
    "production [portable] (backoff poll only, defaults)",
    "poll 150 ms",
    "poll 20 ms",
    "floor: reactor wake by a byte written after listen()",
];

pub struct Result3 {
    pub rows: Vec<Row>,
    pub clamped: usize,
    pub failures: usize,
}

pub async fn run(trials: usize, rng: &mut Rng) -> Result3 {
    let mut lat: [Vec<f64>; 5] = Default::default();
    let mut clamped = 0;
    let mut failures = 0;
    let probe_timeout = WaitOptions::default().probe_timeout;
    for _ in 0..trials {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("citizen.sock");
        let delay = rng.delay(Duration::from_millis(300));
        let cancel = CancellationToken::new();

        let start = Instant::now();
        let mut waiters = Vec::new();
        for backend in [Backend::Native, Backend::Portable] {
            let (path, cancel) = (path.clone(), cancel.clone());
            let options = WaitOptions::default().with_backend(backend);
            waiters.push(tokio::spawn(async move {
                let r = await_socket_alive(&path, cancel, options).await;
                (Instant::now(), r.map_err(|e| e.to_string()))
            }));
        }
        let intervals: &[u64] = if std::env::var_os("ONLY_PROD").is_some() {
            &[]
        } else {
            &[150, 20]
        };
        for &interval in intervals {
            let (path, cancel) = (path.clone(), cancel.clone());
            waiters.push(tokio::spawn(async move {
                let r = poll_baseline(path, Duration::from_millis(interval), probe_timeout, cancel)
                    .await;
                (Instant::now(), r)
            }));
        }
        // The floor: the same runtime woken through its reactor by a byte the listener
        // thread writes right after taking the "listening" instant.
        let (mut poke, poked) = std::os::unix::net::UnixStream::pair().expect("pair");
        poked.set_nonblocking(true).expect("nonblocking");
        waiters.push(tokio::spawn(async move {
            let poked = tokio::net::UnixStream::from_std(poked).expect("register");
            let r = poked.readable().await.map_err(|e| e.to_string());
            (Instant::now(), r)
        }));
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let listener = {
            let path = path.clone();
            std::thread::spawn(move || {
                std::thread::sleep((start + delay).saturating_duration_since(Instant::now()));
                let listener = UnixListener::bind(&path).expect("bind");
                let listening = Instant::now();
                poke.write_all(&[1]).expect("poke");
                let _ = done_rx.recv();
                drop(listener);
                listening
            })
        };
        let mut returned = Vec::new();
        for w in waiters {
            match tokio::time::timeout(Duration::from_secs(3), w).await {
                Ok(Ok((at, Ok(())))) => returned.push(Some(at)),
                _ => {
                    failures += 1;
                    returned.push(None);
                }
            }
        }
        cancel.cancel();
        let _ = done_tx.send(());
        let listening = listener.join().expect("listener thread");
        for (i, at) in returned.into_iter().enumerate() {
            let Some(at) = at else { continue };
            let ms = match at.checked_duration_since(listening) {
                Some(d) => d.as_secs_f64() * 1e3,
                None => {
                    clamped += 1;
                    0.0
                }
            };
            lat[i].push(ms);
        }
    }
    let rows = lat
        .into_iter()
        .zip(VARIANTS)
        .map(|(ms, v)| Row::new("detection", v, ms))
        .collect();
    Result3 {
        rows,
        clamped,
        failures,
    }
}
