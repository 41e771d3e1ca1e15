//! The process-wide reaper: heir of the supervisors whose runtime shut down first.
//!
//! A supervisor task lives on the runtime that spawned the child. When that runtime shuts
//! down (a dispatcher that builds a runtime per batch, a test, a `block_on` in a sync
//! program) while the resident still runs, the task is dropped without reaping, and the
//! resident's exit would leave a zombie for the life of the dispatcher. So the dropped
//! supervisor hands its child to this one thread, which finishes the supervisor's job
//! without a runtime: it waits for the exit, sweeps the group if a terminate or kill had
//! been requested (while the unreaped leader still pins the group id, exactly as the
//! supervisor would), reaps, and publishes the exit to any handle still listening.
//!
//! One thread for the process, started on first use and parked in a blocking receive
//! while it has nothing to do. While it holds children it looks at each every
//! [`REAP_POLL`] with a non-blocking `waitid`: a few system calls per orphan per tick, and
//! a zombie lives at most one tick. It never signals a child that was never signalled,
//! and never after the reap.

use std::process::Child;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::sync::watch;

use super::ExitWatchError;
use super::reap::{self, Published};
use crate::sys::pid_exited_unreaped;

/// How often the reaper looks at the children it holds.
pub(crate) const REAP_POLL: Duration = Duration::from_millis(100);

/// A child whose supervisor is gone.
pub(super) struct Orphan {
    pub(super) child: Child,
    /// A terminate or kill was requested: sweep the group when the leader exits.
    pub(super) sweep: bool,
    /// Where the supervisor would have published the exit.
    pub(super) exit: watch::Sender<Published>,
}

/// Hands `orphan` to the reaper thread, starting it on first use. If the thread cannot
/// be started the child is dropped unreaped, as before this reaper existed; nothing
/// else is possible without a thread or a runtime.
pub(super) fn adopt(orphan: Orphan) {
    static REAPER: OnceLock<Option<Mutex<Sender<Orphan>>>> = OnceLock::new();
    let sender = REAPER.get_or_init(|| {
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("entwurf-reaper".into())
            .spawn(move || run(&rx))
            .ok()
            .map(|_| Mutex::new(tx))
    });
    if let Some(sender) = sender {
        // A poisoned lock still holds a working sender; the send only fails if the thread
        // is gone, and then the child stays as it would have without it.
        let sender = sender
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let _ = sender.send(orphan);
    }
}

fn run(orphans_in: &mpsc::Receiver<Orphan>) {
    let mut held: Vec<Orphan> = Vec::new();
    loop {
        let next = if held.is_empty() {
            match orphans_in.recv() {
                Ok(orphan) => Some(orphan),
                Err(_) => return,
            }
        } else {
            match orphans_in.recv_timeout(REAP_POLL) {
                Ok(orphan) => Some(orphan),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => return,
            }
        };
        held.extend(next);
        // Whatever else arrived meanwhile, then one look at each.
        held.extend(orphans_in.try_iter());
        held.retain_mut(|orphan| !orphan.settle());
    }
}

impl Orphan {
    /// One look: `true` once the child is reaped (or can never be), its exit published.
    fn settle(&mut self) -> bool {
        let pid = self.child.id();
        let result = match pid_exited_unreaped(pid) {
            Ok(false) => return false,
            Ok(true) => reap::sweep_and_reap(&mut self.child, self.sweep),
            Err(source) => Err(source),
        };
        let published = result.map_err(|source| ExitWatchError::Wait {
            pid,
            source: Arc::new(source),
        });
        self.exit.send_replace(Some(published));
        true
    }
}
