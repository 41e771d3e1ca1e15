//! The liveness of a pi citizen: its socket inspected and connected to (race-free, as the
//! waiter does), then asked `get_info`, which must name the citizen's garden id.
//!
//! Three values ([`Liveness`]) with their evidence ([`ObservedLiveness`]), and one
//! answer outside them: a socket that is not this citizen's at all ([`TargetConflict`]) is
//! an address conflict, not a liveness.

use std::fmt;
use std::path::Path;

use super::client::{Connection, ExchangeError, ExchangeLimits, NotConnected};
use super::protocol::{Answer, CitizenInfo, Command};
use super::table::Routing;
use crate::backend::Backend;
use crate::garden_id::GardenId;
use crate::socket::AddressConflict;

/// The three liveness values of a pi citizen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Liveness {
    /// Connectable, and `get_info` named this garden id.
    Alive,
    /// Absent, or refused: nobody listens.
    Dead,
    /// The look proved nothing.
    Indeterminate,
}

impl Liveness {
    /// The table's axis: alive → live, dead → dormant, indeterminate → indeterminate.
    #[must_use]
    pub fn routing(self) -> Routing {
        match self {
            Self::Alive => Routing::Live,
            Self::Dead => Routing::Dormant,
            Self::Indeterminate => Routing::Indeterminate,
        }
    }

    /// The report spelling (`alive`, `dead`, `indeterminate`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Alive => "alive",
            Self::Dead => "dead",
            Self::Indeterminate => "indeterminate",
        }
    }
}

impl fmt::Display for Liveness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A liveness with what showed it.
#[derive(Debug)]
#[non_exhaustive]
pub enum ObservedLiveness {
    /// It answered `get_info` as this citizen.
    Alive(CitizenInfo),
    /// Nobody listens.
    Dead(NotConnected),
    /// The look proved nothing.
    Indeterminate(Doubt),
}

impl ObservedLiveness {
    /// The value without its evidence.
    #[must_use]
    pub fn liveness(&self) -> Liveness {
        match self {
            Self::Alive(_) => Liveness::Alive,
            Self::Dead(_) => Liveness::Dead,
            Self::Indeterminate(_) => Liveness::Indeterminate,
        }
    }
}

impl fmt::Display for ObservedLiveness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Alive(info) => write!(f, "alive (answered as session {})", info.session_id),
            Self::Dead(why) => write!(f, "dead ({why})"),
            Self::Indeterminate(why) => write!(f, "indeterminate ({why})"),
        }
    }
}

/// Why a look proved nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Doubt {
    /// The path could not be inspected, or the connect proved nothing.
    #[error("{0}")]
    Connect(NotConnected),
    /// Connected, but `get_info` brought no usable answer (a stall, a dropped
    /// connection, a line that is not the protocol's).
    #[error("get_info: {0}")]
    Exchange(#[source] ExchangeError),
    /// `get_info` was refused (e.g. "Session not ready").
    #[error("get_info refused: {0:?}")]
    Refused(String),
    /// `get_info` answered without a session id.
    #[error("get_info named no sessionId")]
    Nameless,
}

/// The socket at the citizen's path is not this citizen's.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TargetConflict {
    /// A symlink, a non-socket, or a socket or listener of another uid.
    Address(AddressConflict),
    /// A listener of ours that answered `get_info` as another session.
    OtherSession {
        /// The session id it named.
        answered: String,
    },
}

impl fmt::Display for TargetConflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Address(conflict) => conflict.fmt(f),
            Self::OtherSession { answered } => {
                write!(f, "the listener answered as another session ({answered})")
            }
        }
    }
}

/// What one look at a citizen found.
#[derive(Debug)]
#[non_exhaustive]
pub enum CitizenProbe {
    /// A liveness, with its evidence.
    Observed(ObservedLiveness),
    /// Not this citizen's socket.
    Conflict(TargetConflict),
}

/// Looks at `gid`'s socket: inspect, connect (the same inode on Linux), `get_info`.
pub async fn probe_citizen(
    socket: &Path,
    gid: &GardenId,
    backend: Backend,
    limits: &ExchangeLimits,
) -> CitizenProbe {
    let connection = match Connection::open(socket, backend, limits.connect).await {
        Ok(connection) => connection,
        Err(NotConnected::Conflict(conflict)) => {
            return CitizenProbe::Conflict(TargetConflict::Address(conflict));
        }
        Err(dead) if dead.is_dead() => return CitizenProbe::Observed(ObservedLiveness::Dead(dead)),
        Err(doubt) => {
            return CitizenProbe::Observed(ObservedLiveness::Indeterminate(Doubt::Connect(doubt)));
        }
    };
    read_info(connection.request(&Command::GetInfo, limits).await, gid)
}

/// Judges a `get_info` exchange (pure, for the tests).
pub(crate) fn read_info(answer: Result<Answer, ExchangeError>, gid: &GardenId) -> CitizenProbe {
    let doubt = |why| CitizenProbe::Observed(ObservedLiveness::Indeterminate(why));
    match answer {
        Err(error) => doubt(Doubt::Exchange(error)),
        Ok(Answer::Refused { error }) => doubt(Doubt::Refused(error)),
        Ok(Answer::Success(data)) => match CitizenInfo::from_data(&data) {
            None => doubt(Doubt::Nameless),
            Some(info) if info.session_id == gid.as_str() => {
                CitizenProbe::Observed(ObservedLiveness::Alive(info))
            }
            Some(info) => CitizenProbe::Conflict(TargetConflict::OtherSession {
                answered: info.session_id,
            }),
        },
    }
}
