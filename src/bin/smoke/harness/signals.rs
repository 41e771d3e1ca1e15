//! The ways out a run does not choose: the ending signals (SIGINT, SIGTERM, SIGHUP,
//! SIGQUIT), caught so that the run can clean up, and the last-resort watchdog for a run
//! whose runtime thread is blocked. Both end in `cleanup::cleanup`.

use std::time::Duration;

use nix::sys::signal::{SigSet, Signal as NixSignal};
use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::harness::cleanup;
use crate::harness::report::Interruption;
use crate::os;

/// The signals that end a run early. Caught, so that the run can clean up: a default
/// SIGHUP (a closed terminal, a dropped ssh) or SIGQUIT would leave every child behind.
///
/// A signal that was already ignored when the run started stays ignored: under `nohup`
/// the user asked for the run to survive a hangup, and a shell starts background jobs
/// with SIGINT and SIGQUIT ignored.
pub struct Signals {
    int: Option<Signal>,
    term: Option<Signal>,
    hup: Option<Signal>,
    quit: Option<Signal>,
}

/// The ending signals, blocked in the main thread while the run sets up.
fn ending_signals() -> SigSet {
    let mut set = SigSet::empty();
    for signal in [
        NixSignal::SIGINT,
        NixSignal::SIGTERM,
        NixSignal::SIGHUP,
        NixSignal::SIGQUIT,
    ] {
        set.add(signal);
    }
    set
}

impl Signals {
    /// Blocks the ending signals in the main thread, so one that arrives before the
    /// handlers exist waits (pending) instead of killing the run by its default action.
    /// Children get an empty mask again: std's spawn resets it.
    pub fn hold() -> Option<SigSet> {
        let set = ending_signals();
        set.thread_block().ok().map(|()| set)
    }

    /// Installs the handlers, then lets held signals through to them.
    pub fn install(held: Option<SigSet>) -> std::io::Result<Self> {
        let installed = Self::catch()?;
        if let Some(set) = held {
            set.thread_unblock().map_err(std::io::Error::from)?;
        }
        Ok(installed)
    }

    fn catch() -> std::io::Result<Self> {
        let ignored = os::ignored_signals();
        let catch = |kind: SignalKind| {
            let ignored = ignored & (1u64 << (kind.as_raw_value() - 1)) != 0;
            if ignored {
                Ok(None)
            } else {
                signal(kind).map(Some)
            }
        };
        Ok(Self {
            int: catch(SignalKind::interrupt())?,
            term: catch(SignalKind::terminate())?,
            hup: catch(SignalKind::hangup())?,
            quit: catch(SignalKind::quit())?,
        })
    }

    /// The first to arrive, with the exit code it maps to (128 + its number).
    pub async fn recv(&mut self) -> Interruption {
        async fn next(signal: &mut Option<Signal>) {
            match signal {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending().await,
            }
        }
        let (signal, code) = tokio::select! {
            () = next(&mut self.int) => ("SIGINT", 130),
            () = next(&mut self.term) => ("SIGTERM", 143),
            () = next(&mut self.hup) => ("SIGHUP", 129),
            () = next(&mut self.quit) => ("SIGQUIT", 131),
        };
        Interruption { signal, code }
    }
}

/// The watchdog's way out: clean up, finish the output, say why, exit 1.
fn watchdog_exit(why: &str, finish: &dyn Fn(&str)) -> ! {
    let cleaned = cleanup::cleanup();
    finish(why);
    eprintln!("smoke-entwurf-v2-spawn-live: {why}; {}", cleaned.describe());
    std::process::exit(1)
}

/// Starts the last-resort watchdog: a plain thread, so it fires even if a check blocks
/// the runtime thread in a system call (which a tokio deadline cannot interrupt).
/// `finish` ends the output in its format (it runs on the watchdog thread).
pub fn start_watchdog(limit: Duration, finish: impl Fn(&str) + Send + 'static) {
    let spawned = std::thread::Builder::new()
        .name("watchdog".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            std::thread::sleep(limit);
            watchdog_exit(
                &format!(
                    "FAIL watchdog: the run exceeded {} ms (the runtime thread is blocked)",
                    limit.as_millis()
                ),
                &finish,
            );
        });
    if let Err(e) = spawned {
        eprintln!(
            "smoke-entwurf-v2-spawn-live: no watchdog thread ({e}); per-check deadlines still apply"
        );
    }
}
