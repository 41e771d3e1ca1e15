//! Visible resume: reopen a dormant citizen in a tmux window the operator can see, and
//! observe within milliseconds whether it came up.
//!
//! A background resume hides the citizen's terminal; an operator who wants to watch (or
//! answer) a resumed `pi` needs it in their own tmux session. [`visible_resume`] does
//! that in a fixed order:
//!
//! 1. take the dispatch lock of the gid (held by someone → [`Refusal::LockHeld`]);
//! 2. resolve the launch identity from the saved session under it;
//! 3. liveness check of the control socket: alive → `target-live`; cannot tell →
//!    refused; a symlink, non-socket or foreign socket → address conflict;
//! 4. launch: the [`Launcher`] opens a window running `pi` with the visible argv
//!    (`--entwurf-control … --session <file> [--provider P] --model M`, no prompt: a
//!    resume runs no turn);
//! 5. one bounded observation: the socket comes alive (`socket-alive`), the pane's
//!    process exits (`pane-exited`, with its exit status when the launcher can tell), or
//!    the timeout passes (`unobserved`), each with the wait in milliseconds;
//! 6. release the lock, exactly once, whatever happened after step 1 — also when the
//!    future is dropped midway. A failed release is an error naming the lock.
//!
//! Nothing is killed, retried or closed: the window is the operator's. The result keeps
//! two receipts apart — the [`LaunchReceipt`] (tmux made a window) and the
//! [`ObservationReceipt`] (what the citizen did) — because a window that opened says
//! nothing about the process in it.
//!
//! ```no_run
//! use entwurf_v2_spawn::production::ProductionOptions;
//! use entwurf_v2_spawn::visible::{TmuxLauncher, VisibleError, VisibleOptions, visible_resume};
//! use entwurf_v2_spawn::{GardenId, error_chain};
//!
//! async fn reopen(gid: &str) -> anyhow::Result<()> {
//!     let gid = GardenId::parse(gid)?;
//!     let options = VisibleOptions::from_production(&ProductionOptions::from_env()?);
//!     match visible_resume(&gid, &options, &TmuxLauncher::from_env()).await {
//!         Ok(done) => println!("{gid}: {} — {}", done.launch, done.observation),
//!         Err(VisibleError::Refused(refusal)) => {
//!             eprintln!("{gid} refused ({}): {}", refusal.kind(), refusal.advice());
//!         }
//!         Err(other) => eprintln!("{gid}: {}", error_chain(&other)),
//!     }
//!     Ok(())
//! }
//! ```

mod error;
mod launcher;
mod observe;
mod tmux;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::backend::Backend;
use crate::garden_id::GardenId;
use crate::lock::{self, AcquireError, LockClaim, LockIoError, ReleaseOutcome};
use crate::production::identity::{IdentityError, SessionIdentity, resolve_session_identity};
use crate::production::{ProductionOptions, ReleaseFn, SharedOptions};
use crate::resume_args::{PassthroughArgs, VisibleResumeArgs, build_visible_pi_args};
use crate::socket::{AddressConflict, Inspection, Probe, WaitOptions, inspect_and_probe};

pub use error::{Refusal, VisibleError};
pub use launcher::{LaunchError, LaunchReceipt, LaunchRequest, Launcher, PaneExitStatus};
pub use observe::{ObservationReceipt, UnobservedReason, watch_process_exit};
pub use tmux::TmuxLauncher;

/// Resolves a session's identity and file: `(agent dir, gid, extension args)`.
pub type SessionResolver = Arc<
    dyn Fn(&Path, &GardenId, &PassthroughArgs) -> Result<SessionIdentity, IdentityError>
        + Send
        + Sync,
>;

/// Options of a visible resume. Each has a default ([`VisibleOptions::from_production`])
/// and can be overridden through the public fields, so tests and the live smoke use
/// their own directories. `#[non_exhaustive]`: built only by `from_production`, so an
/// option added later (as `child_env` was) breaks no dependent.
#[derive(Clone)]
#[non_exhaustive]
pub struct VisibleOptions {
    /// What a background resume uses too: directories, runtime, environment (set in the
    /// window on top of the tmux server's; `PI_CODING_AGENT_DIR` is always set to the
    /// agent dir after it), release, and the backend that inspects and probes the socket
    /// (the liveness check and the observation).
    pub shared: SharedOptions,
    /// Resolves identity and session file (default: the saved session reader).
    pub resolve_session: SessionResolver,
    /// The bound of the one observation (default 30 s, as long as the TypeScript
    /// dispatcher waits).
    pub observe_timeout: Duration,
}

impl std::fmt::Debug for VisibleOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VisibleOptions")
            .field("shared", &self.shared)
            .field("observe_timeout", &self.observe_timeout)
            .finish_non_exhaustive()
    }
}

impl VisibleOptions {
    /// The same shared options as a background resume (directories, runtime, extension
    /// args, environment, release, probe tuning, backend), with the saved-session reader
    /// and a 30 s observation.
    pub fn from_production(o: &ProductionOptions) -> Self {
        Self {
            shared: o.shared.clone(),
            resolve_session: Arc::new(resolve_session_identity),
            observe_timeout: Duration::from_secs(30),
        }
    }

    /// The control socket of `gid` ([`SharedOptions::socket_path`]).
    #[must_use]
    pub fn socket_path(&self, gid: &GardenId) -> PathBuf {
        self.shared.socket_path(gid)
    }
}

/// A visible resume that launched: both receipts, never merged, and what the release
/// found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VisibleResume {
    /// The window tmux made.
    pub launch: LaunchReceipt,
    /// What the citizen did in it.
    pub observation: ObservationReceipt,
    /// What the (single) release found.
    pub release: ReleaseOutcome,
}

/// Resumes `gid` in a window the `launcher` opens, observes it once, and releases the
/// lock exactly once (see the module docs for the order). Refusals come back as
/// [`VisibleError::Refused`] with nothing launched.
///
/// # Errors
///
/// [`VisibleError::Refused`] with nothing launched; [`VisibleError::Lock`] for a broken lock dir; [`VisibleError::LaunchUncertain`] when a window may be open; [`VisibleError::Release`] when the release failed (it keeps the receipts).
pub async fn visible_resume<L: Launcher>(
    gid: &GardenId,
    options: &VisibleOptions,
    launcher: &L,
) -> Result<VisibleResume, VisibleError> {
    let claim = match lock::acquire_async(&options.shared.lock_dir, gid).await {
        Ok(claim) => claim,
        Err(AcquireError::Conflict(conflict)) => {
            return Err(VisibleError::Refused(Refusal::LockHeld(conflict)));
        }
        Err(error) => return Err(VisibleError::Lock(error)),
    };
    visible_resume_locked(claim, options, launcher).await
}

/// [`visible_resume`] for a caller that already holds the garden id's dispatch lock
/// (the dispatcher, which took it before probing the citizen, [`crate::dispatch`]):
/// the same order from the identity on, and the same single release of `claim`, which
/// this call now owns.
///
/// # Errors
///
/// As [`visible_resume`], without [`VisibleError::Lock`] (no lock is taken here).
pub async fn visible_resume_locked<L: Launcher>(
    claim: LockClaim,
    options: &VisibleOptions,
    launcher: &L,
) -> Result<VisibleResume, VisibleError> {
    let gid = &claim.garden_id().clone();
    let held = HeldLock {
        claim,
        release: options.shared.release.clone(),
        done: false,
    };
    let socket = options.socket_path(gid);

    let request = match prepare(gid, options, &socket).await {
        Ok(request) => request,
        Err(refusal) => return Err(held.refuse(refusal).await),
    };
    let launch = match launcher.launch(&request).await {
        Ok(receipt) => receipt,
        Err(error) if error.nothing_launched() => {
            return Err(held.refuse(Refusal::Launch(error)).await);
        }
        Err(error) => {
            let lock_path = held.claim.lock_path().to_path_buf();
            return Err(match held.release().await {
                Ok(release) => VisibleError::LaunchUncertain { error, release },
                Err(source) => VisibleError::Release {
                    lock_path,
                    source,
                    launch: None,
                    observation: None,
                    refusal: None,
                    launch_error: Some(Box::new(error)),
                },
            });
        }
    };
    let wait = WaitOptions::default()
        .with_poll_interval(options.shared.poll_interval)
        .with_probe_timeout(options.shared.probe_timeout)
        .with_backend(options.shared.backend);
    let observation =
        observe::observe_once(launcher, &launch, &socket, options.observe_timeout, wait).await;
    let lock_path = held.claim.lock_path().to_path_buf();
    match held.release().await {
        Ok(release) => Ok(VisibleResume {
            launch,
            observation,
            release,
        }),
        Err(source) => Err(VisibleError::Release {
            lock_path,
            source,
            launch: Some(launch),
            observation: Some(observation),
            refusal: None,
            launch_error: None,
        }),
    }
}

/// Identity, liveness check and argv: everything between taking the lock and launching.
async fn prepare(
    gid: &GardenId,
    options: &VisibleOptions,
    socket: &Path,
) -> Result<LaunchRequest, Refusal> {
    let identity = resolve_identity(gid, options)
        .await
        .map_err(Refusal::Identity)?;
    check_socket_vacant(socket, options.shared.probe_timeout, options.shared.backend).await?;
    let args = build_visible_pi_args(&VisibleResumeArgs {
        session_file: &identity.session_file,
        extension_args: &identity.launch.extension_args,
        provider: identity.launch.provider.as_deref(),
        model: &identity.launch.model,
    })
    .map_err(Refusal::Argv)?;
    let mut request = LaunchRequest::new(
        gid.clone(),
        options.shared.pi_program.clone(),
        args,
        identity.launch.cwd,
    );
    request.env.extend(options.shared.child_env.iter().cloned());
    // The agent dir the session was found in, as for a background resume (the window
    // gets the tmux server's environment, which may name another or none).
    request.env.push((
        crate::production::AGENT_DIR_VAR.into(),
        crate::production::absolute_agent_dir(&options.shared.agent_dir),
    ));
    Ok(request)
}

/// Runs the resolver on the blocking pool: it scans saved sessions (file I/O).
async fn resolve_identity(
    gid: &GardenId,
    options: &VisibleOptions,
) -> Result<SessionIdentity, IdentityError> {
    let (resolver, agent_dir, gid, ext) = (
        options.resolve_session.clone(),
        options.shared.agent_dir.clone(),
        gid.clone(),
        options.shared.extension_args.clone(),
    );
    let agent = agent_dir.clone();
    crate::sys::off_async(move || resolver(&agent, &gid, &ext))
        .await
        .unwrap_or_else(|join| {
            Err(IdentityError::Io {
                path: agent_dir,
                source: std::io::Error::other(join),
            })
        })
}

/// The liveness check of the control socket (not `runtime::preflight`, which asks the
/// runtime its version): only an absent socket, or a socket file nobody listens on (a
/// dead citizen's leftover, which the resumed `pi` replaces), lets the launch go on.
async fn check_socket_vacant(
    socket: &Path,
    probe_timeout: Duration,
    backend: Backend,
) -> Result<(), Refusal> {
    let seen = inspect_and_probe(socket, probe_timeout, backend).await;
    let socket = socket.to_path_buf();
    match (seen.inspection, seen.probe) {
        (Inspection::Absent, _) | (Inspection::SocketFile, Some(Probe::Dead(_))) => Ok(()),
        (Inspection::SocketFile, Some(Probe::Alive)) => Err(Refusal::TargetLive { socket }),
        (Inspection::AddressConflict(conflict), _) => {
            Err(Refusal::AddressConflict { socket, conflict })
        }
        (Inspection::SocketFile, Some(Probe::ForeignListener { uid })) => {
            Err(Refusal::AddressConflict {
                socket,
                conflict: AddressConflict::ForeignListener { uid },
            })
        }
        (Inspection::Indeterminate(error), _) => Err(Refusal::LivenessIndeterminate {
            socket,
            doubt: error.to_string(),
        }),
        (Inspection::SocketFile, Some(Probe::Indeterminate(doubt))) => {
            Err(Refusal::LivenessIndeterminate {
                socket,
                doubt: doubt.to_string(),
            })
        }
        (Inspection::SocketFile, None) => Err(Refusal::LivenessIndeterminate {
            socket,
            doubt: "not probed".into(),
        }),
    }
}

/// The claim while it is held. [`HeldLock::release`] releases it once; dropping it
/// unreleased (the caller dropped the future) releases it too, best effort, so the gid
/// is never pinned by an abandoned resume.
struct HeldLock {
    claim: LockClaim,
    release: ReleaseFn,
    done: bool,
}

impl HeldLock {
    /// Releases on the blocking pool: the release reads the lock file and removes it,
    /// file I/O that must not stall the runtime thread. Once started, the release runs
    /// to its end even if this future is dropped (a blocking task is never cancelled
    /// midway), and `done` is set before it starts, so it happens exactly once.
    async fn release(mut self) -> Result<ReleaseOutcome, LockIoError> {
        self.done = true;
        let (release, claim) = (self.release.clone(), self.claim.clone());
        match crate::sys::off_async(move || release(&claim)).await {
            Ok(released) => released,
            // The runtime is shutting down and the task never ran: release here, so the
            // gid is not pinned (nothing else is left to run it).
            Err(_) => (self.release)(&self.claim),
        }
    }

    /// Releases and reports `refusal` (or the failed release, carrying it).
    async fn refuse(self, refusal: Refusal) -> VisibleError {
        let lock_path = self.claim.lock_path().to_path_buf();
        match self.release().await {
            Ok(_) => VisibleError::Refused(refusal),
            Err(source) => VisibleError::Release {
                lock_path,
                source,
                launch: None,
                observation: None,
                refusal: Some(Box::new(refusal)),
                launch_error: None,
            },
        }
    }
}

impl Drop for HeldLock {
    /// The one release left on the calling thread, by necessity: `drop` cannot await,
    /// and a release handed to the blocking pool from here would let the caller see the
    /// lock still held after dropping the resume (and a runtime shutting down would drop
    /// the task unrun). It is the cancellation path only, one small read and unlink.
    fn drop(&mut self) {
        if !self.done {
            self.done = true;
            // Nobody is left to report a failure to; the lock file then names itself.
            let _ = (self.release)(&self.claim);
        }
    }
}
