//! What a run reports: how each check ended, the tally, what was selected and the
//! summary line people paste into commit bodies.
//!
//! Plain data, importing only the catalog: the runner produces these values and the
//! output formats print them, and neither is imported back from here.

use std::path::PathBuf;
use std::time::Instant;

use crate::harness::catalog::{Check, Scenario};

/// The program name every summary line starts with.
pub const PROGRAM: &str = "smoke-entwurf-v2-spawn-live";

/// The commit this binary was built from (short hash, `-dirty`, or `unknown`), embedded
/// by the build script: never read from the directory the binary runs in.
pub const COMMIT: &str = env!("ENTWURF_SMOKE_COMMIT");

/// `--version`: the crate version and the build's commit.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("ENTWURF_SMOKE_COMMIT"),
    ")"
);

/// How a check ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// It proved what it claims.
    Pass,
    /// It did not; the reason names what the OS or the library did instead.
    Fail(String),
    /// It could not run here (e.g. needs root); never used to hide a failure.
    Skip(String),
}

/// One finished check.
#[derive(Debug, Clone)]
pub struct CheckResult {
    /// Which check.
    pub check: Check,
    /// How it ended.
    pub outcome: Outcome,
    /// How long it took, in milliseconds.
    pub ms: f64,
    /// When it started (JUnit gives each suite the span of its checks).
    pub started: Instant,
    /// A failed check's temp dir, kept on disk with the stand-ins' stderr logs.
    pub kept_dir: Option<PathBuf>,
}

/// Counts for the summary line, and which ids failed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// Passed checks.
    pub passed: usize,
    /// Failed checks.
    pub failed: usize,
    /// Skipped checks.
    pub skipped: usize,
    /// The ids of the failed checks, in catalog order, each once.
    pub failed_ids: Vec<&'static str>,
}

impl Tally {
    /// Counts `results`.
    pub fn of<'a>(results: impl IntoIterator<Item = &'a CheckResult>) -> Self {
        let mut tally = Self::default();
        for result in results {
            match result.outcome {
                Outcome::Pass => tally.passed += 1,
                Outcome::Skip(_) => tally.skipped += 1,
                Outcome::Fail(_) => {
                    tally.failed += 1;
                    if !tally.failed_ids.contains(&result.check.id()) {
                        tally.failed_ids.push(result.check.id());
                    }
                }
            }
        }
        tally
    }

    /// Checks that reported.
    pub fn total(&self) -> usize {
        self.passed + self.failed + self.skipped
    }
}

/// What a run was asked to run: the summary line must say it, so a partial run pasted
/// into a commit never reads as the whole gate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// The scenario named on the command line (`None`: all).
    pub scenario: Option<Scenario>,
    /// `--only` ids, as given (deduplicated, catalog order).
    pub only: Vec<&'static str>,
    /// The library backend when it is not the platform's default (`portable` on Linux):
    /// such a run proves another backend, so its line must not read as the default gate.
    pub backend: Option<&'static str>,
}

impl Selection {
    /// The whole gate: every scenario, no filter, the default backend.
    pub fn is_full(&self) -> bool {
        self.scenario.is_none() && self.only.is_empty() && self.backend.is_none()
    }

    /// The scenario name for headers and records (`all` when none was named).
    pub fn scenario_name(&self) -> &'static str {
        self.scenario.map_or("all", Scenario::name)
    }

    /// `lock`, `only L2, L3`, `lock, only L2`, `backend portable`; empty for the full gate.
    pub fn describe(&self) -> String {
        let only = (!self.only.is_empty()).then(|| format!("only {}", self.only.join(", ")));
        let backend = self.backend.map(|b| format!("backend {b}"));
        [self.scenario.map(|s| s.name().to_owned()), only, backend]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `smoke-entwurf-v2-spawn-live` or `smoke-entwurf-v2-spawn-live (lock)`.
    pub fn program_label(&self) -> String {
        if self.is_full() {
            PROGRAM.to_owned()
        } else {
            format!("{PROGRAM} ({})", self.describe())
        }
    }

    /// The summary line. A full run keeps the contract's exact wording; any other
    /// selection names what ran in parentheses after the program name.
    pub fn summary_line(&self, tally: &Tally) -> String {
        let skipped = if tally.skipped > 0 {
            format!(", {} skipped", tally.skipped)
        } else {
            String::new()
        };
        let counts = if tally.failed == 0 {
            format!("{} checks passed{skipped}", tally.passed)
        } else {
            format!("{} passed, {} failed{skipped}", tally.passed, tally.failed)
        };
        format!("{}: {counts} (real OS primitives)", self.program_label())
    }
}

/// The line after a failing summary: which ids to look at (`None` when nothing failed).
pub fn failed_ids_line(tally: &Tally) -> Option<String> {
    (!tally.failed_ids.is_empty()).then(|| format!("failed ids: {}", tally.failed_ids.join(" ")))
}

/// What the cleanup at the end of a run did, as every way out reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cleanup {
    /// Process groups that still had members and were SIGKILLed.
    pub killed: usize,
    /// Temp dirs removed.
    pub removed: usize,
    /// Temp dirs kept on purpose (a failed check's, `--keep-tmp`).
    pub kept: Vec<PathBuf>,
    /// Temp dirs that should have gone and are still there.
    pub left: Vec<PathBuf>,
}

impl Cleanup {
    /// `killed 2 process group(s), removed 5 temp dir(s), kept 1: /tmp/…`: what
    /// happened, never more.
    pub fn describe(&self) -> String {
        let mut text = format!(
            "killed {} process group(s), removed {} temp dir(s)",
            self.killed, self.removed
        );
        let paths = |dirs: &[PathBuf]| {
            dirs.iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        if !self.kept.is_empty() {
            text.push_str(&format!(
                ", kept {}: {}",
                self.kept.len(),
                paths(&self.kept)
            ));
        }
        if !self.left.is_empty() {
            text.push_str(&format!(
                ", could not remove {}: {}",
                self.left.len(),
                paths(&self.left)
            ));
        }
        text
    }
}

/// Why a run ended early: the signal's name and the exit code it maps to (128 + signal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interruption {
    /// `SIGINT`, `SIGTERM`, ...
    pub signal: &'static str,
    /// 130, 143, 129, 131.
    pub code: u8,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally(passed: usize, failed: usize, skipped: usize) -> Tally {
        Tally {
            passed,
            failed,
            skipped,
            failed_ids: Vec::new(),
        }
    }

    #[test]
    fn a_full_run_keeps_the_contract_wording() {
        let full = Selection::default();
        assert_eq!(
            full.summary_line(&tally(18, 0, 0)),
            "smoke-entwurf-v2-spawn-live: 18 checks passed (real OS primitives)"
        );
        assert_eq!(
            full.summary_line(&tally(18, 0, 1)),
            "smoke-entwurf-v2-spawn-live: 18 checks passed, 1 skipped (real OS primitives)"
        );
        assert_eq!(
            full.summary_line(&tally(16, 2, 0)),
            "smoke-entwurf-v2-spawn-live: 16 passed, 2 failed (real OS primitives)"
        );
        assert_eq!(
            full.summary_line(&tally(16, 2, 1)),
            "smoke-entwurf-v2-spawn-live: 16 passed, 2 failed, 1 skipped (real OS primitives)"
        );
    }

    #[test]
    fn a_partial_run_names_what_ran() {
        let lock = Selection {
            scenario: Some(Scenario::Lock),
            only: Vec::new(),
            backend: None,
        };
        assert_eq!(
            lock.summary_line(&tally(10, 0, 1)),
            "smoke-entwurf-v2-spawn-live (lock): 10 checks passed, 1 skipped (real OS primitives)"
        );
        let only = Selection {
            scenario: None,
            only: vec!["L2", "L3"],
            backend: None,
        };
        assert_eq!(
            only.summary_line(&tally(5, 0, 0)),
            "smoke-entwurf-v2-spawn-live (only L2, L3): 5 checks passed (real OS primitives)"
        );
        let portable = Selection {
            scenario: None,
            only: Vec::new(),
            backend: Some("portable"),
        };
        assert_eq!(
            portable.summary_line(&tally(29, 0, 2)),
            "smoke-entwurf-v2-spawn-live (backend portable): 29 checks passed, 2 skipped (real OS primitives)"
        );
    }
}
