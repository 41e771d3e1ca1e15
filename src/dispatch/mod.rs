//! Dispatch: a message reaches a pi citizen, live or dormant (docs/design.md §16).
//!
//! The resume ([`crate::watcher`], [`crate::visible`]) is one half of a dispatch. The
//! other half decides, for a message to a citizen, between sending it over the citizen's
//! control socket (it is live), resuming it with the message (it is dormant), and
//! refusing with a reason. The decision is the caller's declared [`Intent`] × the
//! citizen's observed [`Liveness`], one [`route`] per cell.
//!
//! [`dispatch`] runs the whole of it, in this order (each step before the next, nothing
//! probed before the lock):
//!
//! 1. the garden id is valid (a [`GardenId`] is);
//! 2. the target resolves: a pi session saved under the id (none → `bad-target`), and
//!    its socket path holds no symlink or non-socket (→ `target-address-conflict`, never
//!    connected);
//! 3. the dispatch lock is taken (held by another → `target-locked`);
//! 4. under the lock the citizen is probed ([`probe_citizen`]: inspect, connect to the
//!    same inode, `get_info` naming this id) and the table decides. A refusal releases
//!    the lock before the receipt is returned; a send keeps it for the send hand; a
//!    resume hands it to the resume, which releases it on its observation.
//!
//! The send hand holds the lock and releases it exactly once, through the release
//! reducer's [`ReleasePolicy::AfterSendFinal`] on the one
//! [`ReleaseEvent::SendFinal`], whatever the end:
//! - an answer `success: true` → `sent`; `success: false` → rejected `send-refused`,
//!   final (the receiver was reached and refused);
//! - a connect that proves nobody listens (absent, refused) → the citizen is probed
//!   again **once, under the same lock**, and the fire-and-forget row of the table
//!   decides again: live → one more send (`fallback-sent`, or `send-refused`, or
//!   `failed`); anything else → rejected. A send's re-resolve never becomes a resume;
//! - anything that proves nothing (a connect that timed out, a dropped connection after
//!   the request was written, a stall, a malformed answer) → `failed`, never retried: a
//!   retry could deliver twice.
//!
//! A failing release never hides what happened to the message: it comes back as
//! [`DispatchError::Release`] carrying the receipt.
//!
//! ```no_run
//! use entwurf_v2_spawn::dispatch::{
//!     DispatchError, DispatchRequest, Intent, ProductionDispatch, Receipt, dispatch,
//! };
//! use entwurf_v2_spawn::production::ProductionOptions;
//! use entwurf_v2_spawn::{GardenId, error_chain};
//!
//! async fn tell(gid: &str, text: &str) -> Result<(), Box<dyn std::error::Error>> {
//!     let options = ProductionOptions::from_env()?; // HOME, PI_CODING_AGENT_DIR
//!     let deps = ProductionDispatch::new(options);
//!     let request = DispatchRequest::new(GardenId::parse(gid)?, text, Intent::FireAndForget);
//!     match dispatch(&request, &deps).await {
//!         Ok(done) => match &done.receipt {
//!             Receipt::Sent { ack, .. } | Receipt::FallbackSent { ack, .. } => {
//!                 println!("{gid} took it as {}", ack.delivered_as().unwrap_or("?"))
//!             }
//!             // A refusal names its reason (`dormant-fire-forget-unsupported`, …) and,
//!             // when it was decided after the probe, what the probe observed.
//!             Receipt::Rejected(rejected) => println!("refused: {rejected}"),
//!             Receipt::Failed { cause, .. } => println!("not known to have arrived: {cause}"),
//!             other => println!("{}", other.kind()),
//!         },
//!         // The receipt survives a failed release: never send it twice.
//!         Err(DispatchError::Release { receipt, source }) => {
//!             eprintln!("{}; the lock needs a person: {}", receipt.kind(), error_chain(&source))
//!         }
//!         Err(error) => eprintln!("{}", error_chain(&error)),
//!     }
//!     Ok(())
//! }
//! ```

mod client;
mod liveness;
mod production;
mod protocol;
mod receipt;
mod table;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use client::{Connection, ExchangeError, ExchangeLimits, NotConnected, exchange};
pub use liveness::{
    CitizenProbe, Doubt, Liveness, ObservedLiveness, TargetConflict, probe_citizen,
};
pub use production::{ProductionDispatch, ResumeError, ResumeOutcome};
pub use protocol::{Answer, CitizenInfo, Command, DeliveryMode, MalformedAnswer, parse_answer};
pub use receipt::{Ack, FailedCause, Receipt, RejectReason, Rejected};
pub use table::{Intent, Route, Routing, TableReject, fire_and_forget, owned_outcome, route};

use crate::garden_id::GardenId;
use crate::lock::{AcquireError, LockClaim, LockIoError, ReleaseOutcome};
use crate::production::identity::{IdentityError, SessionIdentity};
use crate::release::{ReleaseEvent, ReleasePolicy, ReleaseState, reduce};
use crate::resume_args::{PassthroughArgs, RefusedArg};
use crate::socket::Inspection;

/// How a dormant citizen is brought back for an owned outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ResumeStyle {
    /// Detached, spawn-bg (§7): the message is the resume's prompt.
    #[default]
    Background,
    /// In a tmux window the operator sees (§15). A visible resume runs no turn (its argv
    /// carries no prompt), so the message is **not** delivered by it: the receipt says
    /// `resumed`, and the caller, who owns the outcome, sends it once the citizen is up.
    Visible,
}

/// One message for one citizen. `#[non_exhaustive]`: built with [`DispatchRequest::new`]
/// and the `with_*` methods.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DispatchRequest {
    /// The citizen.
    pub gid: GardenId,
    /// The text.
    pub message: String,
    /// Steer or follow up (a send; default follow-up).
    pub mode: DeliveryMode,
    /// What the caller wants from the dispatch.
    pub intent: Intent,
    /// How a dormant citizen is resumed (owned outcome only; default background).
    pub resume: ResumeStyle,
    /// How long a background resume waits for its observation (default 30 s).
    pub observe_timeout: Duration,
    /// Extra args for a background resume's `pi` (e.g. `--approve`), checked when set.
    pub launch_args: PassthroughArgs,
}

impl DispatchRequest {
    /// `message` for `gid` with `intent`, delivered as a follow-up; a dormant citizen is
    /// resumed in the background with a 30 s observation.
    pub fn new(gid: GardenId, message: impl Into<String>, intent: Intent) -> Self {
        Self {
            gid,
            message: message.into(),
            mode: DeliveryMode::FollowUp,
            intent,
            resume: ResumeStyle::Background,
            observe_timeout: Duration::from_secs(30),
            launch_args: PassthroughArgs::default(),
        }
    }

    /// Sets [`mode`](Self::mode).
    #[must_use]
    pub fn with_mode(mut self, mode: DeliveryMode) -> Self {
        self.mode = mode;
        self
    }

    /// Sets [`resume`](Self::resume).
    #[must_use]
    pub fn with_resume(mut self, resume: ResumeStyle) -> Self {
        self.resume = resume;
        self
    }

    /// Sets [`observe_timeout`](Self::observe_timeout).
    #[must_use]
    pub fn with_observe_timeout(mut self, timeout: Duration) -> Self {
        self.observe_timeout = timeout;
        self
    }

    /// Sets [`launch_args`](Self::launch_args).
    ///
    /// # Errors
    ///
    /// [`RefusedArg`] for a flag the resume argv owns (§12), `--` or an empty arg.
    pub fn with_launch_args(
        mut self,
        args: impl IntoIterator<Item = impl Into<String>>,
    ) -> Result<Self, RefusedArg> {
        self.launch_args = PassthroughArgs::new(args)?;
        Ok(self)
    }
}

/// The citizen a dispatch resolved: its saved session and its socket path.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Target {
    /// Where its control socket is (`<control dir>/<gid>.sock`).
    pub socket: PathBuf,
    /// The saved session it was resolved from.
    pub session: SessionIdentity,
}

impl Target {
    /// A target with this socket path and session.
    #[must_use]
    pub fn new(socket: impl Into<PathBuf>, session: SessionIdentity) -> Self {
        Self {
            socket: socket.into(),
            session,
        }
    }
}

/// What the dispatch did with the lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LockFate {
    /// None was taken (refused before the lock, or the lock was held by another).
    NotTaken,
    /// Released once by the dispatch; what the release found.
    Released(ReleaseOutcome),
    /// Handed to the resume, which releases it on its observation (see its outcome).
    HandedToResume,
    /// Kept because the release reducer withheld the release. Never for the send hand's
    /// one send-final event under `AfterSendFinal`; the variant exists because the
    /// reducer's decision, not this module, is what releases (§4).
    Withheld,
}

/// A dispatch's answer: the receipt, and the lock's fate.
#[derive(Debug)]
#[non_exhaustive]
pub struct Dispatched<R> {
    /// What happened to the message.
    pub receipt: Receipt<R>,
    /// What happened to the lock.
    pub lock: LockFate,
}

/// Why a dispatch could not answer with a receipt alone.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DispatchError<R: std::fmt::Debug> {
    /// Taking the lock failed for another reason than a holder (a broken lock dir);
    /// nothing was probed or sent.
    #[error("taking the dispatch lock failed: {}", crate::error_chain(.0))]
    Lock(#[source] AcquireError),
    /// The release after a decision failed: the lock needs a person. The receipt says
    /// what happened to the message (do not send it again if it was delivered).
    #[error("{} — then releasing the lock failed: {}", receipt.kind(), crate::error_chain(source))]
    Release {
        /// What happened to the message.
        receipt: Box<Receipt<R>>,
        /// The failed release.
        #[source]
        source: LockIoError,
    },
}

/// What a dispatch needs from the world. Production: [`ProductionDispatch`]; the tests
/// drive every branch with fakes.
///
/// Every future is `Send` (and the deps `Sync`), so a dispatch can be `tokio::spawn`ed.
pub trait DispatchDeps: Sync {
    /// What the resume hand answers.
    type Resumed: std::fmt::Debug + Send;

    /// Finds the pi session saved under `gid` and its socket path.
    ///
    /// # Errors
    ///
    /// [`IdentityError`] when no single session can be resolved (→ `bad-target`).
    fn resolve_target(
        &self,
        gid: &GardenId,
    ) -> impl Future<Output = Result<Target, IdentityError>> + Send;

    /// Looks at the socket path without connecting (before the lock): only a conflict
    /// matters here.
    fn inspect(&self, socket: &Path) -> impl Future<Output = Inspection> + Send;

    /// Takes `gid`'s dispatch lock.
    ///
    /// # Errors
    ///
    /// [`AcquireError::Conflict`] when another holds it (→ `target-locked`); any other
    /// error ends the dispatch ([`DispatchError::Lock`]).
    fn acquire(
        &self,
        gid: &GardenId,
    ) -> impl Future<Output = Result<LockClaim, AcquireError>> + Send;

    /// Probes the citizen (default production: [`probe_citizen`]).
    fn probe(&self, gid: &GardenId, target: &Target) -> impl Future<Output = CitizenProbe> + Send;

    /// Sends `message` over the citizen's socket, one connection, one answer.
    ///
    /// # Errors
    ///
    /// [`ExchangeError`], which says whether it proves the message did not arrive.
    fn send(
        &self,
        target: &Target,
        message: &str,
        mode: DeliveryMode,
    ) -> impl Future<Output = Result<Answer, ExchangeError>> + Send;

    /// Releases the lock (production: [`crate::lock::release`] off the async thread).
    ///
    /// # Errors
    ///
    /// [`LockIoError`] when the file cannot be read or removed.
    fn release(
        &self,
        claim: &LockClaim,
    ) -> impl Future<Output = Result<ReleaseOutcome, LockIoError>> + Send;

    /// Resumes the dormant citizen with the request's message; `claim` is now the
    /// resume's to release, once, on its observation.
    fn resume(
        &self,
        request: &DispatchRequest,
        target: Target,
        claim: LockClaim,
    ) -> impl Future<Output = Self::Resumed> + Send;
}

type DispatchResult<D> =
    Result<Dispatched<<D as DispatchDeps>::Resumed>, DispatchError<<D as DispatchDeps>::Resumed>>;

/// Dispatches `request` (see the module docs for the order and the rules).
///
/// # Errors
///
/// [`DispatchError::Lock`] when the lock dir is broken (nothing probed or sent);
/// [`DispatchError::Release`] when the release after a decision failed (it carries the
/// receipt). Every other end, a refusal included, is an `Ok` receipt.
pub async fn dispatch<D: DispatchDeps>(request: &DispatchRequest, deps: &D) -> DispatchResult<D> {
    let gid = &request.gid;
    let target = match deps.resolve_target(gid).await {
        Ok(target) => target,
        Err(error) => return Ok(unlocked(Rejected::BadTarget(error))),
    };
    if let Inspection::AddressConflict(conflict) = deps.inspect(&target.socket).await {
        return Ok(unlocked(Rejected::AddressConflict {
            socket: target.socket,
            conflict: TargetConflict::Address(conflict),
        }));
    }
    let claim = match deps.acquire(gid).await {
        Ok(claim) => claim,
        Err(AcquireError::Conflict(conflict)) => return Ok(unlocked(Rejected::Locked(conflict))),
        Err(error) => return Err(DispatchError::Lock(error)),
    };
    let observed = match deps.probe(gid, &target).await {
        CitizenProbe::Observed(observed) => observed,
        CitizenProbe::Conflict(conflict) => {
            let rejected = Rejected::AddressConflict {
                socket: target.socket,
                conflict,
            };
            return release_with(deps, &claim, Receipt::Rejected(rejected)).await;
        }
    };
    match route(request.intent, observed.liveness().routing()) {
        Route::Send => {
            let receipt = send_hand(deps, request, &target, observed).await;
            // The one send-final event: the reducer's decision is what releases.
            let (_, decision) = reduce(
                ReleasePolicy::AfterSendFinal,
                ReleaseState::default(),
                &ReleaseEvent::SendFinal,
            );
            if decision.is_release() {
                release_with(deps, &claim, receipt).await
            } else {
                Ok(Dispatched {
                    receipt,
                    lock: LockFate::Withheld,
                })
            }
        }
        Route::Resume => Ok(Dispatched {
            receipt: Receipt::Resumed {
                observed,
                outcome: deps.resume(request, target, claim).await,
            },
            lock: LockFate::HandedToResume,
        }),
        Route::Reject(reject) => {
            let rejected = Rejected::ByTable { reject, observed };
            release_with(deps, &claim, Receipt::Rejected(rejected)).await
        }
    }
}

fn unlocked<R>(rejected: Rejected) -> Dispatched<R> {
    Dispatched {
        receipt: Receipt::Rejected(rejected),
        lock: LockFate::NotTaken,
    }
}

/// Releases `claim` once and returns `receipt` with the release's finding, or the failed
/// release carrying the receipt.
async fn release_with<D: DispatchDeps>(
    deps: &D,
    claim: &LockClaim,
    receipt: Receipt<D::Resumed>,
) -> DispatchResult<D> {
    match deps.release(claim).await {
        Ok(outcome) => Ok(Dispatched {
            receipt,
            lock: LockFate::Released(outcome),
        }),
        Err(source) => Err(DispatchError::Release {
            receipt: Box::new(receipt),
            source,
        }),
    }
}

/// The send hand, up to its final receipt (the caller releases on it).
async fn send_hand<D: DispatchDeps>(
    deps: &D,
    request: &DispatchRequest,
    target: &Target,
    observed: ObservedLiveness,
) -> Receipt<D::Resumed> {
    let first = match deps.send(target, &request.message, request.mode).await {
        Ok(answer) => return answered(answer, observed, None),
        Err(error) if error.proves_not_delivered() => error,
        Err(error) => {
            return Receipt::Failed {
                cause: FailedCause::Unproven(error),
                observed,
            };
        }
    };
    // Nobody listened: look again, once, under the same lock; the same row decides.
    let again = match deps.probe(&request.gid, target).await {
        CitizenProbe::Observed(again) => again,
        CitizenProbe::Conflict(conflict) => {
            return Receipt::Rejected(Rejected::AddressConflict {
                socket: target.socket.clone(),
                conflict,
            });
        }
    };
    if let Err(reject) = fire_and_forget(again.liveness().routing()) {
        return Receipt::Rejected(Rejected::ByTable {
            reject,
            observed: again,
        });
    }
    match deps.send(target, &request.message, request.mode).await {
        Ok(answer) => answered(answer, again, Some(first)),
        Err(error) if error.proves_not_delivered() => Receipt::Failed {
            cause: FailedCause::GoneAgain(error),
            observed: again,
        },
        Err(error) => Receipt::Failed {
            cause: FailedCause::Unproven(error),
            observed: again,
        },
    }
}

/// The receipt for an answer; `first_attempt` is set for the send after a re-resolve.
fn answered<R>(
    answer: Answer,
    observed: ObservedLiveness,
    first_attempt: Option<ExchangeError>,
) -> Receipt<R> {
    match (answer, first_attempt) {
        (Answer::Success(data), None) => Receipt::Sent {
            ack: Ack { data },
            observed,
        },
        (Answer::Success(data), Some(first_attempt)) => Receipt::FallbackSent {
            ack: Ack { data },
            first_attempt,
            observed,
        },
        (Answer::Refused { error }, _) => {
            Receipt::Rejected(Rejected::SendRefused { error, observed })
        }
    }
}

#[cfg(test)]
mod tests;
