//! FAKE watcher dependencies for the deterministic gate: no process, no socket, and a
//! paused tokio clock. Each fake future resolves at scripted instants relative to the
//! start of the watch or to the signals the watcher sends, and records whether it was
//! cancelled and dropped.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use entwurf_v2_spawn::SpawnBgPlan;
use entwurf_v2_spawn::lock::{LockClaim, ReleaseOutcome};
use entwurf_v2_spawn::watcher::{BoxError, ChildExit, SpawnedChild, StopSignal, WatchDeps};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub const PID: u32 = 4242;

/// When a scripted watcher settles.
#[derive(Debug, Clone, Copy)]
pub enum At {
    /// This long after the watch started.
    Start(Duration),
    /// This long after the watcher sent this signal.
    After(StopSignal, Duration),
}

/// What the world does, per test.
#[derive(Debug, Clone, Default)]
pub struct Script {
    pub spawn_fails: bool,
    pub socket_start_fails: bool,
    pub exit_start_fails: bool,
    /// The socket becomes alive at these times (first that applies wins).
    pub socket_alive: Vec<At>,
    /// The socket watcher fails (e.g. forged path) at these times.
    pub socket_fails: Vec<At>,
    /// The child exits at these times, with these statuses.
    pub exits: Vec<(At, ChildExit)>,
    /// The exit watcher fails at these times.
    pub exit_watch_fails: Vec<At>,
    pub terminate_fails: bool,
    pub kill_fails: bool,
    pub release_fails: bool,
}

/// What the watcher did to the world.
#[derive(Debug, Default)]
pub struct Record {
    pub spawns: AtomicUsize,
    pub releases: AtomicUsize,
    pub signals: Mutex<Vec<(StopSignal, Duration)>>,
    pub socket_token: Mutex<Option<CancellationToken>>,
    pub exit_token: Mutex<Option<CancellationToken>>,
    pub socket_dropped: AtomicBool,
    pub exit_dropped: AtomicBool,
    /// `(socket, exit)` watcher dropped, as they stood when the first signal went out.
    /// "Cancelled" after the call returns is always true (the call drops everything on
    /// return), so only this snapshot tells whether a watcher was gone *before* the
    /// escalation, as a watcher that may no longer release must be.
    pub dropped_at_first_signal: Mutex<Option<(bool, bool)>>,
}

impl Record {
    pub fn releases(&self) -> usize {
        self.releases.load(Ordering::SeqCst)
    }
    pub fn signals(&self) -> Vec<(StopSignal, Duration)> {
        self.signals.lock().expect("signals").clone()
    }
    /// True when the socket watcher was started, then cancelled and dropped.
    pub fn socket_watch_cancelled(&self) -> bool {
        let token = self.socket_token.lock().expect("token");
        token.as_ref().is_some_and(CancellationToken::is_cancelled)
            && self.socket_dropped.load(Ordering::SeqCst)
    }
    /// True when the socket watcher was started and already dropped when the first
    /// signal was sent (false if no signal was sent).
    pub fn socket_watch_gone_before_signals(&self) -> bool {
        self.socket_token.lock().expect("token").is_some()
            && self
                .dropped_at_first_signal
                .lock()
                .expect("snapshot")
                .is_some_and(|(socket, _)| socket)
    }
    /// True when the exit watcher was started, then cancelled and dropped.
    pub fn exit_watch_cancelled(&self) -> bool {
        let token = self.exit_token.lock().expect("token");
        token.as_ref().is_some_and(CancellationToken::is_cancelled)
            && self.exit_dropped.load(Ordering::SeqCst)
    }
}

#[derive(Debug)]
pub struct FakeChild;

impl SpawnedChild for FakeChild {
    fn pid(&self) -> u32 {
        PID
    }
}

pub struct FakeDeps {
    pub script: Script,
    pub record: Arc<Record>,
    pub term_grace: Duration,
    pub kill_grace: Duration,
    started: Instant,
    signals_tx: watch::Sender<Vec<(StopSignal, Instant)>>,
}

impl FakeDeps {
    pub fn new(script: Script) -> Self {
        Self {
            script,
            record: Arc::default(),
            term_grace: Duration::from_secs(5),
            kill_grace: Duration::from_secs(1),
            started: Instant::now(),
            signals_tx: watch::channel(Vec::new()).0,
        }
    }

    /// A future that settles at the earliest applicable scripted instant.
    fn scripted<T: Clone + 'static>(
        &self,
        plan: Vec<(At, T)>,
        dropped: Arc<Record>,
        is_socket: bool,
    ) -> impl Future<Output = T> + 'static {
        let mut rx = self.signals_tx.subscribe();
        let start = Instant::now();
        // Created before the first poll, so a watcher dropped unpolled still counts.
        let flag = DropFlag {
            record: dropped,
            is_socket,
        };
        async move {
            let _flag = flag;
            loop {
                let sent = rx.borrow_and_update().clone();
                let due = plan
                    .iter()
                    .filter_map(|(at, v)| {
                        let when = match at {
                            At::Start(d) => Some(start + *d),
                            At::After(sig, d) => {
                                sent.iter().find(|(s, _)| s == sig).map(|(_, t)| *t + *d)
                            }
                        };
                        when.map(|w| (w, v.clone()))
                    })
                    .min_by_key(|(w, _)| *w);
                match due {
                    Some((when, value)) => tokio::select! {
                        () = tokio::time::sleep_until(when) => return value,
                        _ = rx.changed() => {}
                    },
                    None => {
                        if rx.changed().await.is_err() {
                            std::future::pending::<()>().await;
                        }
                    }
                }
            }
        }
    }
}

struct DropFlag {
    record: Arc<Record>,
    is_socket: bool,
}

impl Drop for DropFlag {
    fn drop(&mut self) {
        let flag = if self.is_socket {
            &self.record.socket_dropped
        } else {
            &self.record.exit_dropped
        };
        flag.store(true, Ordering::SeqCst);
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct FakeError(pub &'static str);

fn fail(msg: &'static str) -> BoxError {
    Box::new(FakeError(msg))
}

impl WatchDeps for FakeDeps {
    type Child = FakeChild;
    type SpawnError = FakeError;

    async fn spawn(&self, _plan: &SpawnBgPlan) -> Result<FakeChild, FakeError> {
        self.record.spawns.fetch_add(1, Ordering::SeqCst);
        if self.script.spawn_fails {
            Err(FakeError("no such program: pi"))
        } else {
            Ok(FakeChild)
        }
    }

    fn watch_socket(
        &self,
        _path: &Path,
        cancel: CancellationToken,
    ) -> Result<impl Future<Output = Result<(), BoxError>>, BoxError> {
        if self.script.socket_start_fails {
            return Err(fail("inotify: too many open files"));
        }
        *self.record.socket_token.lock().expect("token") = Some(cancel);
        let mut plan: Vec<(At, Result<(), &'static str>)> = self
            .script
            .socket_alive
            .iter()
            .map(|a| (*a, Ok(())))
            .collect();
        plan.extend(
            self.script
                .socket_fails
                .iter()
                .map(|a| (*a, Err("socket path is forged"))),
        );
        let fut = self.scripted(plan, self.record.clone(), true);
        Ok(async move { fut.await.map_err(fail) })
    }

    fn watch_exit(
        &self,
        _child: &FakeChild,
        cancel: CancellationToken,
    ) -> Result<impl Future<Output = Result<ChildExit, BoxError>>, BoxError> {
        if self.script.exit_start_fails {
            return Err(fail("pidfd_open failed"));
        }
        *self.record.exit_token.lock().expect("token") = Some(cancel);
        let mut plan: Vec<(At, Result<ChildExit, &'static str>)> = self
            .script
            .exits
            .iter()
            .map(|(a, e)| (*a, Ok(*e)))
            .collect();
        plan.extend(
            self.script
                .exit_watch_fails
                .iter()
                .map(|a| (*a, Err("waitid failed"))),
        );
        let fut = self.scripted(plan, self.record.clone(), false);
        Ok(async move { fut.await.map_err(fail) })
    }

    fn timer(&self, duration: Duration) -> impl Future<Output = ()> {
        tokio::time::sleep(duration)
    }

    async fn signal(&self, _child: &FakeChild, signal: StopSignal) -> Result<(), BoxError> {
        let failing = match signal {
            StopSignal::Terminate => self.script.terminate_fails,
            StopSignal::Kill => self.script.kill_fails,
        };
        let now = Instant::now();
        self.record
            .dropped_at_first_signal
            .lock()
            .expect("snapshot")
            .get_or_insert_with(|| {
                (
                    self.record.socket_dropped.load(Ordering::SeqCst),
                    self.record.exit_dropped.load(Ordering::SeqCst),
                )
            });
        self.record
            .signals
            .lock()
            .expect("signals")
            .push((signal, now - self.started));
        if failing {
            return Err(fail("EPERM"));
        }
        self.signals_tx.send_modify(|sent| sent.push((signal, now)));
        Ok(())
    }

    async fn release(&self, _claim: &LockClaim) -> Result<ReleaseOutcome, BoxError> {
        self.record.releases.fetch_add(1, Ordering::SeqCst);
        if self.script.release_fails {
            Err(fail("EACCES"))
        } else {
            Ok(ReleaseOutcome::Released)
        }
    }

    fn term_grace(&self) -> Duration {
        self.term_grace
    }

    fn kill_grace(&self) -> Duration {
        self.kill_grace
    }
}
