//! The runtime preflight: which `pi` would a resume launch, and does it speak the argv?
//!
//! A resume hands `pi` an argv of a given dialect (§9 of docs/design.md): spawn-bg's
//! `--session-id <gid>` exists only since pi 0.76.0 — an older pi answers it with
//! `Error: Unknown option: --session-id` and exit 1, after the lock was taken and a child
//! started. [`preflight`] asks the runtime for its version first (`pi --version`, bounded)
//! and refuses, typed and naming what it found, a runtime that is missing, does not
//! answer, or is below the dialect's floor. Run it **before** taking the lock: a refusal
//! then leaves nothing behind.
//!
//! ```no_run
//! # async fn demo() {
//! use entwurf_v2_spawn::runtime::{ArgvDialect, preflight};
//! match preflight("pi".as_ref(), ArgvDialect::SpawnBg).await {
//!     Ok(version) => println!("pi {version} speaks the spawn-bg argv"),
//!     Err(refusal) => eprintln!("not resuming: {refusal}; {}", refusal.advice()),
//! }
//! # }
//! ```

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use crate::sys::{Bounded, CancelOnDrop, run_bounded};

/// How long `pi --version` may take. Node starts pi in about half a second; a loaded
/// machine gets ten times that.
pub const VERSION_TIMEOUT: Duration = Duration::from_secs(10);

/// The environment `--version` runs with on top of ours. A question leaves nothing behind:
/// pi turns on Node's module compile cache, which would write `node-compile-cache/` into
/// the caller's temp dir for a version string.
const QUESTION_ONLY: &[(&str, &str)] = &[("NODE_DISABLE_COMPILE_CACHE", "1")];

/// A runtime's version, `major.minor.patch` (a pre-release or build suffix is ignored).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RuntimeVersion {
    /// Major.
    pub major: u64,
    /// Minor.
    pub minor: u64,
    /// Patch.
    pub patch: u64,
}

impl RuntimeVersion {
    /// `major.minor.patch`.
    #[must_use]
    pub const fn new(major: u64, minor: u64, patch: u64) -> Self {
        Self {
            major,
            minor,
            patch,
        }
    }

    /// Reads what `pi --version` prints: one line holding the version, optionally with a
    /// leading `v` or a name before it (`pi 1.6.0`), and a suffix after it (`-rc.1`).
    #[must_use]
    pub fn parse(output: &str) -> Option<Self> {
        let line = output.lines().map(str::trim).find(|l| !l.is_empty())?;
        let word = line.split_whitespace().last()?;
        let word = word.strip_prefix('v').unwrap_or(word);
        let core = word.split(['-', '+']).next()?;
        let mut parts = core.split('.').map(|p| p.parse::<u64>().ok());
        let (major, minor, patch) = (parts.next()??, parts.next()??, parts.next()??);
        parts
            .next()
            .is_none()
            .then_some(Self::new(major, minor, patch))
    }
}

impl fmt::Display for RuntimeVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// The argv dialects the library speaks to `pi` (see
/// [`ResumeVariant`](crate::resume_args::ResumeVariant)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ArgvDialect {
    /// The background resume (`legacy` and `v2-control`): `--mode json -p … --session-id
    /// <gid> …`.
    SpawnBg,
    /// The visible resume: `--entwurf-control … --session <file> …`.
    Visible,
}

impl ArgvDialect {
    /// The oldest `pi` that accepts this argv, when one is known: `--session-id`
    /// arrived in 0.76.0 ("explicit session IDs for automation"). The visible argv uses
    /// nothing newer than `--session`, which no released version is known to lack.
    #[must_use]
    pub const fn floor(self) -> Option<RuntimeVersion> {
        match self {
            Self::SpawnBg => Some(RuntimeVersion::new(0, 76, 0)),
            Self::Visible => None,
        }
    }

    /// The dialect's name, as in the docs.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::SpawnBg => "spawn-bg",
            Self::Visible => "visible",
        }
    }
}

impl fmt::Display for ArgvDialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a runtime was refused. Each names the program; [`advice`](Self::advice) says what
/// to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// The program could not be started (not found, not executable).
    #[error("the pi runtime {program:?} could not be started")]
    Missing {
        /// The program as configured.
        program: OsString,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `--version` ran past [`VERSION_TIMEOUT`] and was killed.
    #[error("{program:?} --version did not answer within {after:?}")]
    TimedOut {
        /// The program.
        program: OsString,
        /// The bound.
        after: Duration,
    },
    /// `--version` failed.
    #[error("{program:?} --version failed ({status}): {stderr}")]
    VersionFailed {
        /// The program.
        program: OsString,
        /// Its exit status.
        status: String,
        /// The end of what it said on stderr.
        stderr: String,
    },
    /// `--version` printed no version.
    #[error("{program:?} --version printed {output:?}, not a version")]
    Unparsable {
        /// The program.
        program: OsString,
        /// What it printed.
        output: String,
    },
    /// The preflight's blocking task was cancelled (the async runtime is shutting down).
    #[error("the preflight of {program:?} was cancelled: the async runtime is shutting down")]
    Cancelled {
        /// The program.
        program: OsString,
    },
    /// The runtime is older than the dialect's floor.
    #[error(
        "{program:?} is pi {found}, older than {floor}, the first that speaks the {dialect} argv"
    )]
    BelowFloor {
        /// The program.
        program: OsString,
        /// The version it reported.
        found: RuntimeVersion,
        /// The oldest that would do.
        floor: RuntimeVersion,
        /// The argv it would be given.
        dialect: ArgvDialect,
    },
}

impl RuntimeError {
    /// The version the runtime reported, when it got that far.
    #[must_use]
    pub fn found(&self) -> Option<RuntimeVersion> {
        match self {
            Self::BelowFloor { found, .. } => Some(*found),
            _ => None,
        }
    }

    /// One sentence a person can act on.
    #[must_use]
    pub fn advice(&self) -> String {
        match self {
            Self::Missing { program, .. } => format!(
                "install pi (npm package @earendil-works/pi-coding-agent) so that {} runs, or configure the runtime's absolute path",
                program.to_string_lossy()
            ),
            Self::Cancelled { .. } => "retry from a runtime that is not shutting down".into(),
            Self::TimedOut { program, .. } | Self::VersionFailed { program, .. } => format!(
                "run `{} --version` by hand: it must print its version and exit 0",
                program.to_string_lossy()
            ),
            Self::Unparsable { program, .. } => format!(
                "check that {} is the pi coding agent (its --version prints major.minor.patch)",
                program.to_string_lossy()
            ),
            Self::BelowFloor { floor, found, .. } => {
                format!("upgrade pi from {found} to {floor} or newer")
            }
        }
    }
}

/// Asks `program --version` (stdin null, bounded by [`VERSION_TIMEOUT`], on the
/// blocking pool, Node's compile cache off so nothing is written) and checks the answer against `dialect`'s floor.
///
/// # Errors
///
/// A [`RuntimeError`] naming the program and, past the start, what it said.
pub async fn preflight(
    program: &OsStr,
    dialect: ArgvDialect,
) -> Result<RuntimeVersion, RuntimeError> {
    let owned = program.to_owned();
    let cancelled = Arc::new(AtomicBool::new(false));
    // Dropped with this future: a preflight nobody waits for kills its `pi --version`.
    let _cancel_on_drop = CancelOnDrop(cancelled.clone());
    let run = move || {
        run_bounded(
            &owned,
            &[OsString::from("--version")],
            QUESTION_ONLY,
            VERSION_TIMEOUT,
            &cancelled,
        )
    };
    let Ok(ran) = crate::sys::off_async(run).await else {
        return Err(RuntimeError::Cancelled {
            program: program.to_owned(),
        });
    };
    let output = match ran {
        Ok(output) => output,
        Err(Bounded::Start(source) | Bounded::Io(source)) => {
            return Err(RuntimeError::Missing {
                program: program.to_owned(),
                source,
            });
        }
        Err(Bounded::TimedOut | Bounded::Cancelled) => {
            return Err(RuntimeError::TimedOut {
                program: program.to_owned(),
                after: VERSION_TIMEOUT,
            });
        }
    };
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.trim().lines().rev().take(3).collect();
        return Err(RuntimeError::VersionFailed {
            program: program.to_owned(),
            status: output.status.to_string(),
            stderr: tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
        });
    }
    let printed = String::from_utf8_lossy(&output.stdout);
    let found = RuntimeVersion::parse(&printed).ok_or_else(|| RuntimeError::Unparsable {
        program: program.to_owned(),
        output: printed.trim().to_owned(),
    })?;
    match dialect.floor() {
        Some(floor) if found < floor => Err(RuntimeError::BelowFloor {
            program: program.to_owned(),
            found,
            floor,
            dialect,
        }),
        _ => Ok(found),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_as_pi_prints_them() {
        let v = |s| RuntimeVersion::parse(s);
        assert_eq!(v("1.6.0\n"), Some(RuntimeVersion::new(1, 6, 0)));
        assert_eq!(v("v0.84.1"), Some(RuntimeVersion::new(0, 84, 1)));
        assert_eq!(v("pi 0.79.1"), Some(RuntimeVersion::new(0, 79, 1)));
        assert_eq!(v("\n0.76.0-rc.1+b\n"), Some(RuntimeVersion::new(0, 76, 0)));
        assert_eq!(v("0.76"), None);
        assert_eq!(v("1.2.3.4"), None);
        assert_eq!(v("Error: Unknown option"), None);
        assert_eq!(v(""), None);
    }

    #[test]
    fn the_spawn_bg_floor_is_the_first_pi_with_session_id() {
        let floor = ArgvDialect::SpawnBg.floor().expect("a floor");
        assert_eq!(floor.to_string(), "0.76.0");
        assert!(RuntimeVersion::new(0, 75, 5) < floor);
        assert!(RuntimeVersion::new(0, 76, 0) >= floor);
        assert!(RuntimeVersion::new(1, 0, 0) > floor);
        assert_eq!(ArgvDialect::Visible.floor(), None);
    }

    /// A refusal names the argv it was about in the docs' words.
    #[test]
    fn a_refusal_below_the_floor_names_the_dialect() {
        assert_eq!(ArgvDialect::Visible.to_string(), "visible");
        let refusal = RuntimeError::BelowFloor {
            program: "pi".into(),
            found: RuntimeVersion::new(0, 75, 9),
            floor: RuntimeVersion::new(0, 76, 0),
            dialect: ArgvDialect::SpawnBg,
        };
        assert_eq!(
            refusal.to_string(),
            "\"pi\" is pi 0.75.9, older than 0.76.0, the first that speaks the spawn-bg argv"
        );
    }
}
