//! `execute_spawn_bg_resume`: spawn the resume child and release the dispatch lock on
//! the first *observed* transition — socket alive, or child exited — exactly once.
//!
//! The whole call is one state machine over three phases (observe, term grace, kill
//! grace). Each phase races the same two watchers, started once, against one timer. A
//! timer firing never releases; it only moves to the next rung of the escalation ladder.

mod deps;
mod outcome;

use std::future::Future;
use std::pin::Pin;

use tokio_util::sync::CancellationToken;

use crate::error_chain;
use crate::lock::{LockClaim, ReleaseOutcome};
use crate::plan::{SpawnBgLock, SpawnBgPlan, policy_for_spawn_bg};
use crate::release::{ReleaseEvent, ReleasePolicy, ReleaseState, reduce};

pub use deps::{BoxError, ChildExit, SpawnedChild, StopSignal, WatchDeps};
pub use outcome::{ReleaseCause, RetainReason, RetainedDiagnostic, SpawnBgOutcome, WatchError};

/// Runs one spawn-bg resume under `lock` (see the module docs and docs/design.md §7).
///
/// Bounded: returns within observe timeout + term grace + kill grace (plus the time the
/// dependencies themselves take to spawn, signal and release).
///
/// Dropping the future (a caller's timeout, an aborted task) is a cancellation without an
/// observation, so it releases nothing: the lock stays held and the caller, who still
/// owns the claim, must release it. The watchers are dropped with it (no inotify watch,
/// probe or timer survives). A child already spawned keeps running as the detached
/// resident it was started as; with the production deps its supervisor only waits to
/// reap it (`tests/faults_watch_drop.rs`).
///
/// # Errors
///
/// [`WatchError::Policy`] when `lock` is missing or not the plan's (nothing is spawned);
/// [`WatchError::ReleaseFailed`] when the release after an observation (or a failed
/// spawn) failed; [`WatchError::ReleaseWithheld`] when the release reducer kept the lock
/// where the watcher would have released it. Every other end, a retained lock included,
/// is an `Ok` outcome.
pub async fn execute_spawn_bg_resume<D: WatchDeps>(
    plan: &SpawnBgPlan,
    lock: Option<&LockClaim>,
    deps: &D,
) -> Result<SpawnBgOutcome<D::Child, D::SpawnError>, WatchError> {
    // Checked before anything is spawned: a mis-paired lock is a programming error.
    let SpawnBgLock { policy, claim } = policy_for_spawn_bg(plan, lock)?;
    let releaser = Releaser {
        policy,
        claim,
        perform: |claim| deps.release(claim),
    };

    let child = match deps.spawn(plan).await {
        Ok(child) => child,
        Err(error) => {
            let text = error_chain(&error);
            let on = Released {
                cause: ReleaseCause::SpawnStartFailed,
                pid: None,
                spawn_error: Some(text.clone()),
            };
            let release = releaser
                .release(ReleaseEvent::SpawnStartFailed { error: text }, on)
                .await?;
            return Ok(SpawnBgOutcome::SpawnStartFailed { error, release });
        }
    };
    let pid = child.pid();

    let (ended, notes) = {
        // Cancelled on every way out of this block, so no watcher outlives the call.
        let cancel = CancellationToken::new();
        let _cancel_on_exit = cancel.clone().drop_guard();
        watch(plan, deps, &child, &cancel).await
    };
    let retain = |reason| {
        Ok(SpawnBgOutcome::LockRetained(Box::new(RetainedDiagnostic {
            target: plan.target_garden_id().clone(),
            pid,
            expected_socket_path: plan.expected_socket_path().to_path_buf(),
            lock_path: claim.lock_path().to_path_buf(),
            observe_timeout: plan.observe_timeout(),
            term_grace: deps.term_grace(),
            kill_grace: deps.kill_grace(),
            reason,
            error: notes.summary(),
        })))
    };
    match ended {
        Ended::Observed(Seen::SocketAlive, after_signal) => {
            let on = Released {
                cause: ReleaseCause::SocketAlive,
                pid: Some(pid),
                spawn_error: None,
            };
            let release = releaser.release(ReleaseEvent::SocketAlive, on).await?;
            Ok(SpawnBgOutcome::SocketAlive {
                pid,
                release,
                after_signal,
                resident: child,
            })
        }
        Ended::Observed(Seen::Exited(exit), _) => {
            let event = ReleaseEvent::ChildExited {
                code: exit.code,
                signal: exit.signal,
            };
            let on = Released {
                cause: ReleaseCause::ChildExited(exit),
                pid: Some(pid),
                spawn_error: None,
            };
            let release = releaser.release(event, on).await?;
            // Asked after the release: the lock is not held while the log is read.
            let stderr_tail = deps.stderr_tail(&child).await;
            Ok(SpawnBgOutcome::ChildExited {
                pid,
                exit,
                release,
                stderr_tail,
            })
        }
        Ended::Retained(reason) => retain(reason),
    }
}

/// Asks the release reducer and performs the release it decides, in every build profile.
///
/// The watcher consults the reducer once per call, with the event that ends the watch
/// (a failed spawn, the socket alive, the child exited); until then nothing has happened
/// that could release, and a retained lock never asks. `release` consumes the releaser,
/// so a second release is impossible by construction, not by convention.
struct Releaser<'a, R> {
    policy: ReleasePolicy,
    claim: &'a LockClaim,
    /// Performs the release; called at most once, and only on the reducer's say-so.
    perform: R,
}

/// Context for a [`WatchError::ReleaseFailed`] or [`WatchError::ReleaseWithheld`].
struct Released {
    cause: ReleaseCause,
    pid: Option<u32>,
    spawn_error: Option<String>,
}

impl<'a, R, F> Releaser<'a, R>
where
    R: FnOnce(&'a LockClaim) -> F,
    F: Future<Output = Result<ReleaseOutcome, BoxError>>,
{
    async fn release(
        self,
        event: ReleaseEvent,
        on: Released,
    ) -> Result<ReleaseOutcome, WatchError> {
        let (_, decision) = reduce(self.policy, ReleaseState::default(), &event);
        if !decision.is_release() {
            return Err(WatchError::ReleaseWithheld {
                cause: on.cause,
                pid: on.pid,
                lock_path: self.claim.lock_path().to_path_buf(),
            });
        }
        (self.perform)(self.claim)
            .await
            .map_err(|source| WatchError::ReleaseFailed {
                cause: on.cause,
                pid: on.pid,
                spawn_error: on.spawn_error,
                lock_path: self.claim.lock_path().to_path_buf(),
                source,
            })
    }
}

/// What the watchers saw.
enum Seen {
    SocketAlive,
    Exited(ChildExit),
}

enum Ended {
    /// What was seen, and the last signal that had been sent by then (if any).
    Observed(Seen, Option<StopSignal>),
    Retained(RetainReason),
}

/// Errors met on the way, kept for the diagnostic.
#[derive(Default)]
struct Notes {
    watcher_failed: bool,
    errors: Vec<String>,
}

impl Notes {
    fn record(&mut self, what: &str, error: &(dyn std::error::Error + 'static)) {
        self.errors.push(format!("{what}: {}", error_chain(error)));
    }
    fn summary(&self) -> Option<String> {
        (!self.errors.is_empty()).then(|| self.errors.join("; "))
    }
}

type Watcher<'a, T> = Option<Pin<Box<dyn Future<Output = Result<T, BoxError>> + Send + 'a>>>;

/// The two watchers; `None` once one has failed (or was dropped by the backstop).
struct Watchers<'a> {
    socket: Watcher<'a, ()>,
    exit: Watcher<'a, ChildExit>,
}

enum Race {
    Seen(Seen),
    TimerFired,
    WatcherFailed,
}

impl Watchers<'_> {
    /// Polls both watchers and `timer` until one of them settles. A failed watcher is
    /// disabled (never polled again) and the failure recorded.
    async fn race(&mut self, timer: Pin<&mut impl Future<Output = ()>>, notes: &mut Notes) -> Race {
        let socket = async {
            match self.socket.as_mut() {
                Some(f) => f.await,
                None => std::future::pending().await,
            }
        };
        let exit = async {
            match self.exit.as_mut() {
                Some(f) => f.await,
                None => std::future::pending().await,
            }
        };
        // Biased: when the exit and the socket settle in the same poll, report the exit —
        // the more conservative observation (the resident is gone).
        let result = tokio::select! {
            biased;
            exit = exit => Err(exit),
            socket = socket => Ok(socket),
            () = timer => return Race::TimerFired,
        };
        match result {
            Err(Ok(exit)) => Race::Seen(Seen::Exited(exit)),
            Ok(Ok(())) => Race::Seen(Seen::SocketAlive),
            Err(Err(e)) => {
                self.exit = None;
                notes.watcher_failed = true;
                notes.record("exit watcher", &*e);
                Race::WatcherFailed
            }
            Ok(Err(e)) => {
                self.socket = None;
                notes.watcher_failed = true;
                notes.record("socket watcher", &*e);
                Race::WatcherFailed
            }
        }
    }
}

/// Starts both watchers once and runs the phases. Returns how it ended and the notes
/// for a diagnostic.
async fn watch<'a, D: WatchDeps>(
    plan: &'a SpawnBgPlan,
    deps: &'a D,
    child: &'a D::Child,
    cancel: &CancellationToken,
) -> (Ended, Notes) {
    let mut notes = Notes::default();
    let started = Watchers::start(plan, deps, child, cancel, &mut notes);
    // A watcher that failed to start leaves the ladder blind: nothing can observe what
    // the signals cause, so it runs on no watcher at all (a socket alone must not
    // release) and ends retained. It still escalates: waiting out both graces is what
    // bounds the call and gives the production supervisor time to sweep the group once
    // the leader exits; stopping at SIGTERM would leave a leader that ignores it alive
    // with its lock held forever.
    let blind = started.is_none();
    let mut watchers = started.unwrap_or(Watchers {
        socket: None,
        exit: None,
    });
    if blind {
        notes.watcher_failed = true;
    } else {
        // Phase 1: observe.
        let timer = std::pin::pin!(deps.timer(plan.observe_timeout()));
        match watchers.race(timer, &mut notes).await {
            Race::Seen(seen) => return (Ended::Observed(seen, None), notes),
            Race::TimerFired => {}
            // Backstop: escalate exactly as for a timeout, but race only the exit — a
            // socket path that failed (e.g. forged) must not release through the socket.
            Race::WatcherFailed => watchers.socket = None,
        }
    }

    // Phases 2 and 3, the one escalation ladder: SIGTERM then SIGKILL, each followed by
    // its grace.
    let mut sent = None;
    for (signal, grace) in [
        (StopSignal::Terminate, deps.term_grace()),
        (StopSignal::Kill, deps.kill_grace()),
    ] {
        match deps.signal(child, signal).await {
            Ok(()) => sent = Some(signal),
            Err(e) => {
                notes.record(&signal.to_string(), &*e);
                // A signal that never went out has no grace of its own: SIGTERM's would
                // only delay SIGKILL, and a blind SIGKILL's only the return. A watched
                // one still waits: the exit that SIGTERM caused may yet come.
                if signal == StopSignal::Terminate || blind {
                    continue;
                }
            }
        }
        let mut timer = std::pin::pin!(deps.timer(grace));
        loop {
            match watchers.race(timer.as_mut(), &mut notes).await {
                Race::Seen(seen) => return (Ended::Observed(seen, sent), notes),
                Race::TimerFired => break,
                // Keep waiting out this grace on what is left: the exit may still come.
                Race::WatcherFailed => watchers.socket = None,
            }
        }
    }
    let reason = if notes.watcher_failed {
        RetainReason::ObserveFailed
    } else {
        RetainReason::KillUnconfirmed
    };
    (Ended::Retained(reason), notes)
}

impl<'a> Watchers<'a> {
    /// Starts the socket watcher, then the exit watcher; `None` (the failure noted) when
    /// either cannot start. The socket watcher is then dropped at once, cancelled: with
    /// no exit watcher the socket alone must not release, and it must not outlive the
    /// escalation.
    fn start<D: WatchDeps>(
        plan: &'a SpawnBgPlan,
        deps: &'a D,
        child: &'a D::Child,
        cancel: &CancellationToken,
        notes: &mut Notes,
    ) -> Option<Self> {
        let socket = deps
            .watch_socket(plan.expected_socket_path(), cancel.child_token())
            .map_err(|e| notes.record("starting socket watcher", &*e))
            .ok()?;
        let exit = deps
            .watch_exit(child, cancel.child_token())
            .map_err(|e| notes.record("starting exit watcher", &*e))
            .ok()?;
        Some(Self {
            socket: Some(Box::pin(socket)),
            exit: Some(Box::pin(exit)),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;
    use crate::garden_id::GardenId;

    fn claim(dir: &std::path::Path) -> LockClaim {
        let gid = GardenId::parse("20260613T000000-aaaaaa").expect("gid");
        crate::lock::acquire(dir, &gid).expect("acquire")
    }

    fn on(cause: ReleaseCause) -> Released {
        Released {
            cause,
            pid: Some(7),
            spawn_error: None,
        }
    }

    /// Not a debug assertion: in every profile, a "hold" from the reducer means the
    /// release function is never called and the caller is told the lock is still held.
    #[tokio::test]
    async fn the_reducer_decides_whether_the_release_runs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let claim = claim(dir.path());
        let calls = Cell::new(0);
        let perform = |_: &LockClaim| {
            calls.set(calls.get() + 1);
            std::future::ready(Ok(ReleaseOutcome::Released))
        };

        let held = Releaser {
            policy: ReleasePolicy::NoLock,
            claim: &claim,
            perform,
        }
        .release(ReleaseEvent::SocketAlive, on(ReleaseCause::SocketAlive))
        .await;
        assert!(
            matches!(
                held,
                Err(WatchError::ReleaseWithheld {
                    cause: ReleaseCause::SocketAlive,
                    pid: Some(7),
                    ..
                })
            ),
            "{held:?}"
        );
        assert_eq!(calls.get(), 0, "a hold never releases");

        let released = Releaser {
            policy: ReleasePolicy::AfterSpawnObservation,
            claim: &claim,
            perform,
        }
        .release(ReleaseEvent::SocketAlive, on(ReleaseCause::SocketAlive))
        .await;
        assert_eq!(released.expect("released"), ReleaseOutcome::Released);
        assert_eq!(calls.get(), 1);
    }
}
