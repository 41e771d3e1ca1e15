//! Which OS mechanisms observe a child and its control socket.
//!
//! The crate has two backends behind one API:
//!
//! - **native** (the default): Linux's own mechanisms — a pidfd for the child's exit,
//!   inotify on the socket's directory, and an `O_PATH` descriptor so the probe connects
//!   to the very inode the inspection classified. Other platforms have no native backend:
//!   asked for there, it is the portable backend that runs ([`Backend::effective`] says
//!   which one runs, and is what a report should name).
//! - **portable**: plain POSIX that Linux, macOS and FreeBSD all have — the exit seen by
//!   `SIGCHLD` + `waitid(P_PID, WEXITED | WNOWAIT)` (observed, not reaped, so the group can
//!   still be swept), the socket `lstat`ed, connected by path, and the connected peer's uid
//!   checked; the directory watched by kqueue on macOS and FreeBSD, polled on the
//!   bounded backoff on Linux (which has no kqueue).
//!
//! Why the portable backend is selectable on Linux too: that is how this machine's tests
//! and live gate prove the code every other platform runs. What differs, and what it
//! costs, is written where each part lives (`socket` and `production::child`).

use std::fmt;
use std::str::FromStr;

/// The set of OS mechanisms used to observe a child and its socket. See the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Backend {
    /// Linux's own mechanisms: pidfd, inotify and `O_PATH`. The default; asked for where
    /// they do not exist, the portable backend runs instead ([`Backend::effective`]).
    #[default]
    Native,
    /// POSIX, plus kqueue where the OS has it: `SIGCHLD` + `waitid(WNOWAIT)`,
    /// lstat → connect → peer uid, directory wake by kqueue or the backoff poll.
    Portable,
}

impl Backend {
    /// Whether this platform has a native backend distinct from the portable one.
    pub const NATIVE_AVAILABLE: bool = cfg!(target_os = "linux");

    /// The backend that really runs: `Native` becomes `Portable` where no native backend
    /// exists, so callers can report what was exercised rather than what was asked for.
    #[must_use]
    pub fn effective(self) -> Self {
        if Self::NATIVE_AVAILABLE {
            self
        } else {
            Self::Portable
        }
    }

    /// Whether the Linux mechanisms (pidfd, inotify, `O_PATH`) are in use.
    pub(crate) fn is_linux_native(self) -> bool {
        self.effective() == Self::Native
    }

    /// The lowercase name used on command lines and in reports.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Native => "native",
            Self::Portable => "portable",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A backend name other than `native` or `portable`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown backend {name:?} (expected native or portable)")]
pub struct UnknownBackend {
    /// What was given.
    pub name: String,
}

impl FromStr for Backend {
    type Err = UnknownBackend;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "native" => Ok(Self::Native),
            "portable" => Ok(Self::Portable),
            other => Err(UnknownBackend {
                name: other.to_owned(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Backend;

    #[test]
    fn names_round_trip_and_unknown_names_are_refused() {
        for backend in [Backend::Native, Backend::Portable] {
            assert_eq!(backend.as_str().parse::<Backend>(), Ok(backend));
            assert_eq!(backend.to_string(), backend.as_str());
        }
        assert!("pidfd".parse::<Backend>().is_err());
    }

    #[test]
    fn native_is_the_default_and_falls_back_where_missing() {
        assert_eq!(Backend::default(), Backend::Native);
        assert_eq!(Backend::Portable.effective(), Backend::Portable);
        let want = if cfg!(target_os = "linux") {
            Backend::Native
        } else {
            Backend::Portable
        };
        assert_eq!(Backend::Native.effective(), want);
    }
}
