//! Why a visible resume did not open a window (a [`Refusal`]), or ended in a state a
//! person has to look at ([`VisibleError`]).

use std::path::PathBuf;

use crate::lock::{AcquireError, LockConflict, LockIoError, ReleaseOutcome};
use crate::production::identity::IdentityError;
use crate::resume_args::VisibleArgsError;
use crate::socket::AddressConflict;

use super::launcher::{LaunchError, LaunchReceipt};
use super::observe::ObservationReceipt;

/// A typed reason for not opening a window. Nothing was launched; the lock was released
/// (or, for [`Refusal::LockHeld`], never taken). [`Refusal::advice`] says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// Another dispatcher holds the dispatch lock of this gid.
    #[error("dispatch lock held: {}", .0.message)]
    LockHeld(LockConflict),
    /// The saved session could not say where and with which model to resume.
    #[error("no launch identity")]
    Identity(#[source] IdentityError),
    /// The citizen's control socket accepts connections: it is already resident.
    #[error("target-live: {socket:?} accepts connections")]
    TargetLive {
        /// The control socket.
        socket: PathBuf,
    },
    /// Whether the citizen is live cannot be told (full backlog, timeout, permissions).
    #[error("liveness indeterminate at {socket:?}: {doubt}")]
    LivenessIndeterminate {
        /// The control socket.
        socket: PathBuf,
        /// What the inspection or probe said.
        doubt: String,
    },
    /// Something that can never be our socket sits at the socket path.
    #[error("address conflict at {socket:?}: {conflict}")]
    AddressConflict {
        /// The control socket path.
        socket: PathBuf,
        /// What sits there.
        conflict: AddressConflict,
    },
    /// The resume argv cannot be built: an extension arg the added-args rule refuses, or
    /// a session file that is not absolute (a custom resolver's).
    #[error("resume argv refused")]
    Argv(#[source] VisibleArgsError),
    /// The launcher refused before opening anything (cwd, runtime, no tmux server…).
    #[error("launch refused")]
    Launch(#[source] LaunchError),
}

impl Refusal {
    /// The wire name: `lock-held`, `identity`, `target-live`, `liveness-indeterminate`,
    /// `address-conflict`, `argv`, `launch-refused`.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::LockHeld(_) => "lock-held",
            Self::Identity(_) => "identity",
            Self::TargetLive { .. } => "target-live",
            Self::LivenessIndeterminate { .. } => "liveness-indeterminate",
            Self::AddressConflict { .. } => "address-conflict",
            Self::Argv(_) => "argv",
            Self::Launch(_) => "launch-refused",
        }
    }

    /// One sentence a person can act on.
    #[must_use]
    pub fn advice(&self) -> String {
        match self {
            Self::LockHeld(conflict) => conflict.message.clone(),
            Self::Identity(error) => format!(
                "fix or restore the saved session ({}), then resume again",
                crate::error_chain(error)
            ),
            Self::TargetLive { socket } => format!(
                "the citizen is already running: talk to it through {} instead of resuming it",
                socket.display()
            ),
            Self::LivenessIndeterminate { socket, .. } => format!(
                "something at {} may be live but did not answer; check it (ss -xl) and retry",
                socket.display()
            ),
            Self::AddressConflict { socket, .. } => format!(
                "remove {} (it is not this citizen's socket) and resume again",
                socket.display()
            ),
            Self::Argv(error) => format!(
                "fix the resume argv's inputs ({}), then resume again",
                crate::error_chain(error)
            ),
            Self::Launch(error) => error.advice(),
        }
    }
}

/// Why a visible resume ended without a [`VisibleResume`](super::VisibleResume).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VisibleError {
    /// Refused before launching; see [`Refusal::advice`].
    #[error("visible resume refused ({})", .0.kind())]
    Refused(#[source] Refusal),
    /// Taking the lock failed for a reason other than a holder (a broken lock dir).
    #[error("taking the dispatch lock")]
    Lock(#[source] AcquireError),
    /// The launcher failed in a way that may have left a window open; the lock was
    /// released (nothing is observed, so holding it would pin the gid).
    #[error("launch failed; a window may be open (lock {release:?})")]
    LaunchUncertain {
        /// Why.
        #[source]
        error: LaunchError,
        /// What the release found.
        release: ReleaseOutcome,
    },
    /// Releasing the lock failed: the lock needs a person. Whatever happened before is
    /// kept, so the caller does not launch again.
    #[error(
        "releasing the dispatch lock {lock_path:?} failed; remove it by hand once nothing runs"
    )]
    Release {
        /// The lock file.
        lock_path: PathBuf,
        /// Why.
        #[source]
        source: LockIoError,
        /// The window, if one was opened.
        launch: Option<LaunchReceipt>,
        /// What was observed, if the observation ran.
        observation: Option<ObservationReceipt>,
        /// The refusal that was being reported, if any.
        refusal: Option<Box<Refusal>>,
        /// The launch failure that was being reported, if any (a window may be open).
        launch_error: Option<Box<LaunchError>>,
    },
}

impl VisibleError {
    /// The refusal, when this is one.
    #[must_use]
    pub fn refusal(&self) -> Option<&Refusal> {
        match self {
            Self::Refused(refusal) => Some(refusal),
            _ => None,
        }
    }
}
