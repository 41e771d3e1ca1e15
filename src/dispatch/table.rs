//! The dispatch table: the caller's intent × the citizen's liveness → one route.
//!
//! Pure and total: every cell is written out (no wildcard arm), so a new intent or a new
//! routing value does not compile until its row or column is decided.

use std::fmt;

/// What the caller declares it wants from the dispatch. An input, never inferred from
/// the citizen's liveness: the same message to the same citizen is routed differently
/// for a caller that only wants it acknowledged and one that owns the outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Intent {
    /// The receiver's acknowledgement ends the contract.
    FireAndForget,
    /// The caller owns the dispatched session's completion.
    OwnedOutcome,
}

impl Intent {
    /// Every intent, for exhaustive tests and listings.
    pub const ALL: [Intent; 2] = [Intent::FireAndForget, Intent::OwnedOutcome];

    /// The wire / report spelling (`fire-and-forget`, `owned-outcome`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FireAndForget => "fire-and-forget",
            Self::OwnedOutcome => "owned-outcome",
        }
    }
}

impl fmt::Display for Intent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The routing axis: what the observed liveness means for the table (alive → live,
/// dead → dormant, indeterminate → indeterminate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Routing {
    /// It answered as this citizen: a message can go over its socket.
    Live,
    /// Nobody listens: only a resume can reach it.
    Dormant,
    /// The look proved nothing: neither a send nor a resume is safe.
    Indeterminate,
}

impl Routing {
    /// Every routing value, for exhaustive tests.
    pub const ALL: [Routing; 3] = [Routing::Live, Routing::Dormant, Routing::Indeterminate];
}

/// What the table says to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Route {
    /// Send the message over the control socket (acknowledgement only).
    Send,
    /// Resume the dormant citizen with the message; the caller owns the outcome.
    Resume,
    /// Refuse, with the table's reason.
    Reject(TableReject),
}

/// The table's own refusals (the other reject reasons are decided before the table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TableReject {
    /// An owned outcome to a live citizen: this dispatcher does not send into a running
    /// session on the caller's behalf (it could not own what that turn does).
    OwnedLiveNoAutosend,
    /// Fire-and-forget to a dormant citizen: nobody would acknowledge, and a resume
    /// would be an outcome nobody owns.
    DormantFireForgetUnsupported,
    /// The look proved nothing: a send could go nowhere and a resume could start a
    /// second resident.
    IndeterminateNoSpawn,
}

/// The table. Every cell is one route; nothing defaults. Written as its two rows, so
/// that the send hand's re-resolve can take the fire-and-forget row alone, where a
/// resume cannot even be spelled.
#[must_use]
pub fn route(intent: Intent, routing: Routing) -> Route {
    match intent {
        Intent::FireAndForget => {
            fire_and_forget(routing).map_or_else(Route::Reject, |()| Route::Send)
        }
        Intent::OwnedOutcome => {
            owned_outcome(routing).map_or_else(Route::Reject, |()| Route::Resume)
        }
    }
}

/// The fire-and-forget row: `Ok` is "send over the control socket".
///
/// # Errors
///
/// The cell's refusal for a dormant or indeterminate citizen.
pub fn fire_and_forget(routing: Routing) -> Result<(), TableReject> {
    match routing {
        Routing::Live => Ok(()),
        Routing::Dormant => Err(TableReject::DormantFireForgetUnsupported),
        Routing::Indeterminate => Err(TableReject::IndeterminateNoSpawn),
    }
}

/// The owned-outcome row: `Ok` is "resume the dormant citizen".
///
/// # Errors
///
/// The cell's refusal for a live or indeterminate citizen.
pub fn owned_outcome(routing: Routing) -> Result<(), TableReject> {
    match routing {
        Routing::Live => Err(TableReject::OwnedLiveNoAutosend),
        Routing::Dormant => Ok(()),
        Routing::Indeterminate => Err(TableReject::IndeterminateNoSpawn),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table as the contract writes it, cell by cell, compared with [`route`] over
    /// every intent × routing pair.
    #[test]
    fn every_cell_is_the_contracts() {
        let expected = |intent, routing| match (intent, routing) {
            (Intent::FireAndForget, Routing::Live) => "send",
            (Intent::FireAndForget, Routing::Dormant) => "dormant-fire-forget-unsupported",
            (Intent::FireAndForget, Routing::Indeterminate) => "indeterminate-no-spawn",
            (Intent::OwnedOutcome, Routing::Live) => "owned-live-no-autosend",
            (Intent::OwnedOutcome, Routing::Dormant) => "resume",
            (Intent::OwnedOutcome, Routing::Indeterminate) => "indeterminate-no-spawn",
        };
        let mut cells = 0;
        for intent in Intent::ALL {
            for routing in Routing::ALL {
                let got = match route(intent, routing) {
                    Route::Send => "send",
                    Route::Resume => "resume",
                    Route::Reject(reject) => super::super::RejectReason::from(reject).as_str(),
                };
                assert_eq!(got, expected(intent, routing), "{intent} × {routing:?}");
                cells += 1;
            }
        }
        assert_eq!(cells, 6);
    }

    #[test]
    fn only_an_owned_outcome_resumes_and_only_fire_and_forget_sends() {
        for routing in Routing::ALL {
            assert_ne!(route(Intent::FireAndForget, routing), Route::Resume);
            assert_ne!(route(Intent::OwnedOutcome, routing), Route::Send);
        }
    }

    #[test]
    fn intents_are_spelled_as_the_contract() {
        assert_eq!(Intent::FireAndForget.to_string(), "fire-and-forget");
        assert_eq!(Intent::OwnedOutcome.to_string(), "owned-outcome");
    }
}
