//! What a dispatch answers: a typed receipt.
//!
//! The receipt rule is in the types: a refusal decided before any probe
//! ([`Rejected::BadTarget`], [`Rejected::AddressConflict`] found by inspection,
//! [`Rejected::Locked`]) has no field for an observed liveness, and every receipt decided
//! after the probe has one that is not optional. [`Receipt::observed`] reads it.

use std::fmt;
use std::path::PathBuf;

use serde_json::{Map, Value};

use super::client::ExchangeError;
use super::liveness::{ObservedLiveness, TargetConflict};
use super::table::TableReject;
use crate::lock::LockConflict;
use crate::production::identity::IdentityError;

/// Every reason a dispatch refuses, with the contract's spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RejectReason {
    /// No pi session is saved under the garden id.
    BadTarget,
    /// The socket path holds something that is not this citizen's socket.
    TargetAddressConflict,
    /// Another dispatcher holds the garden id's lock.
    TargetLocked,
    /// An owned outcome to a live citizen (the table).
    OwnedLiveNoAutosend,
    /// Fire-and-forget to a dormant citizen (the table).
    DormantFireForgetUnsupported,
    /// The look proved nothing (the table).
    IndeterminateNoSpawn,
    /// The receiver was reached and answered `success: false`.
    SendRefused,
}

impl RejectReason {
    /// The contract's spelling, e.g. `target-locked`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadTarget => "bad-target",
            Self::TargetAddressConflict => "target-address-conflict",
            Self::TargetLocked => "target-locked",
            Self::OwnedLiveNoAutosend => "owned-live-no-autosend",
            Self::DormantFireForgetUnsupported => "dormant-fire-forget-unsupported",
            Self::IndeterminateNoSpawn => "indeterminate-no-spawn",
            Self::SendRefused => "send-refused",
        }
    }
}

impl From<TableReject> for RejectReason {
    fn from(reject: TableReject) -> Self {
        match reject {
            TableReject::OwnedLiveNoAutosend => Self::OwnedLiveNoAutosend,
            TableReject::DormantFireForgetUnsupported => Self::DormantFireForgetUnsupported,
            TableReject::IndeterminateNoSpawn => Self::IndeterminateNoSpawn,
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refusal, with its evidence.
#[derive(Debug)]
#[non_exhaustive]
pub enum Rejected {
    /// Before any probe: no saved session names the garden id (or its file cannot be
    /// read); nothing was locked.
    BadTarget(IdentityError),
    /// The socket path is not this citizen's: found by inspecting it before the lock
    /// (never connected), or under the lock by the probe (a listener of another uid, or
    /// one answering as another session). A conflict is not a liveness, so there is none
    /// here; the conflict is the evidence.
    AddressConflict {
        /// The citizen's socket path.
        socket: PathBuf,
        /// What sits there.
        conflict: TargetConflict,
    },
    /// Before any probe: the lock is held by another dispatcher.
    Locked(LockConflict),
    /// The table refused what the probe observed.
    ByTable {
        /// Which cell.
        reject: TableReject,
        /// What the probe observed.
        observed: ObservedLiveness,
    },
    /// The receiver answered the send with `success: false`: reached, and final.
    SendRefused {
        /// The answer's `error`.
        error: String,
        /// What the look before that send observed.
        observed: ObservedLiveness,
    },
}

impl Rejected {
    /// The reason, spelled as the contract does.
    #[must_use]
    pub fn reason(&self) -> RejectReason {
        match self {
            Self::BadTarget(_) => RejectReason::BadTarget,
            Self::AddressConflict { .. } => RejectReason::TargetAddressConflict,
            Self::Locked(_) => RejectReason::TargetLocked,
            Self::ByTable { reject, .. } => RejectReason::from(*reject),
            Self::SendRefused { .. } => RejectReason::SendRefused,
        }
    }

    /// The observed liveness, for every refusal decided after the probe.
    #[must_use]
    pub fn observed(&self) -> Option<&ObservedLiveness> {
        match self {
            Self::BadTarget(_) | Self::AddressConflict { .. } | Self::Locked(_) => None,
            Self::ByTable { observed, .. } | Self::SendRefused { observed, .. } => Some(observed),
        }
    }
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.reason())?;
        match self {
            Self::BadTarget(error) => write!(f, ": {}", crate::error_chain(error)),
            Self::AddressConflict { socket, conflict } => write!(f, ": {socket:?}: {conflict}"),
            Self::Locked(conflict) => write!(f, ": {}", conflict.message),
            Self::ByTable { observed, .. } => write!(f, ": the citizen is {observed}"),
            Self::SendRefused { error, .. } => write!(f, ": the receiver answered {error:?}"),
        }
    }
}

/// The receiver's acknowledgement of a send: the answer's `data`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Ack {
    /// The answer's `data` object as sent (`delivered`, `deliveredAs`, …).
    pub data: Map<String, Value>,
}

impl Ack {
    /// `deliveredAs` (`followUp` or `steer`), when the receiver said.
    #[must_use]
    pub fn delivered_as(&self) -> Option<&str> {
        self.data.get("deliveredAs").and_then(Value::as_str)
    }
}

/// Why a send failed: what happened proves nothing about delivery, so nothing was
/// retried (a retry could deliver twice).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FailedCause {
    /// The exchange proved nothing (a stall, a dropped connection after the request, a
    /// malformed answer, a connect that timed out).
    #[error("the send proved nothing: {}", crate::error_chain(.0))]
    Unproven(#[source] ExchangeError),
    /// After the re-resolve found the citizen live, the second send found nobody again.
    #[error("the second send found nobody listening either: {}", crate::error_chain(.0))]
    GoneAgain(#[source] ExchangeError),
}

/// What a dispatch did with the message. `R` is what the resume hand answers (the
/// production deps: the spawn-bg or visible outcome). What happened to the lock is
/// reported beside it ([`Dispatched::lock`](super::Dispatched::lock)).
#[derive(Debug)]
#[non_exhaustive]
pub enum Receipt<R> {
    /// The message was sent and acknowledged.
    Sent {
        /// The acknowledgement.
        ack: Ack,
        /// The liveness the send rested on.
        observed: ObservedLiveness,
    },
    /// The first send found nobody; the re-resolve under the same lock found the citizen
    /// live again, and the second send was acknowledged.
    FallbackSent {
        /// The acknowledgement.
        ack: Ack,
        /// Why the first send did not arrive.
        first_attempt: ExchangeError,
        /// What the re-resolve observed.
        observed: ObservedLiveness,
    },
    /// The dormant citizen was handed to the resume, with the lock.
    Resumed {
        /// The liveness the resume rested on (dead).
        observed: ObservedLiveness,
        /// What the resume answered (it released the lock itself, once, on its
        /// observation).
        outcome: R,
    },
    /// Refused.
    Rejected(Rejected),
    /// The send proved nothing and was not retried.
    Failed {
        /// Why.
        cause: FailedCause,
        /// What the look before the send observed.
        observed: ObservedLiveness,
    },
}

impl<R> Receipt<R> {
    /// The observed liveness the receipt rests on; `None` exactly for the refusals
    /// decided before any probe.
    #[must_use]
    pub fn observed(&self) -> Option<&ObservedLiveness> {
        match self {
            Self::Sent { observed, .. }
            | Self::FallbackSent { observed, .. }
            | Self::Resumed { observed, .. }
            | Self::Failed { observed, .. } => Some(observed),
            Self::Rejected(rejected) => rejected.observed(),
        }
    }

    /// The kind, spelled for reports: `sent`, `fallback-sent`, `resumed`, `rejected`,
    /// `failed`.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Sent { .. } => "sent",
            Self::FallbackSent { .. } => "fallback-sent",
            Self::Resumed { .. } => "resumed",
            Self::Rejected(_) => "rejected",
            Self::Failed { .. } => "failed",
        }
    }

    /// The refusal, for a rejected receipt.
    #[must_use]
    pub fn rejected(&self) -> Option<&Rejected> {
        match self {
            Self::Rejected(rejected) => Some(rejected),
            _ => None,
        }
    }

    /// True when the receiver acknowledged the message.
    #[must_use]
    pub fn delivered(&self) -> bool {
        matches!(self, Self::Sent { .. } | Self::FallbackSent { .. })
    }
}
