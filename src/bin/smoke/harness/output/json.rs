//! JSON Lines: a `"type":"start"` header, one `"type":"check"` object per check, then one
//! `"type":"summary"` object — always, also when a signal ended the run
//! (`"interrupted": true`, `"summary": null`).
//!
//! `ok` is true unless the check failed (a skip is `ok: true, skipped: true`, as in TAP),
//! so `all(.ok)` means "nothing failed"; `error` is null exactly when `ok` is true.

use serde_json::json;

use super::sink::{Ending, Header, Sink, emit};
use crate::harness::report::{COMMIT, CheckResult, Outcome};

/// JSON Lines output (never colored).
pub struct Json;

impl Sink for Json {
    fn begin(&mut self, h: &Header) {
        let line = json!({
            "type": "start",
            "version": env!("CARGO_PKG_VERSION"),
            "commit": COMMIT,
            "scenario": h.selection.scenario_name(),
            "only": h.selection.only,
            "backend": h.backend,
            "euid": h.euid,
            "total": h.total,
            "deadline_ms": u64::try_from(h.deadline.as_millis()).unwrap_or(u64::MAX),
            "sockets": h.sockets,
        });
        emit(&line.to_string());
    }

    fn result(&mut self, _n: usize, r: &CheckResult) {
        let (error, skip_reason) = match &r.outcome {
            Outcome::Pass => (None, None),
            Outcome::Fail(reason) => (Some(reason.as_str()), None),
            Outcome::Skip(why) => (None, Some(why.as_str())),
        };
        let line = json!({
            "type": "check",
            "id": r.check.id(),
            "scenario": r.check.scenario().map_or("hygiene", |s| s.name()),
            "label": r.check.label(),
            "ok": error.is_none(),
            "ms": (r.ms * 10.0).round() / 10.0,
            "error": error,
            "skipped": skip_reason.is_some(),
            "skip_reason": skip_reason,
            "kept_dir": r.kept_dir.as_ref().map(|d| d.display().to_string()),
        });
        emit(&line.to_string());
    }

    fn not_run(&mut self, header: &Header, why: &str) {
        self.begin(header);
        emit(&summary(&Ending::nothing(header.selection.clone()), Some(why)).to_string());
    }

    fn end(&mut self, e: &Ending) {
        emit(&summary(e, None).to_string());
    }
}

/// The summary object: one schema whether the run ran (`not_run` null) or not (`LIVE`
/// unset: `not_run` says why, `summary` is null and every count is 0). `skipped` is
/// always a count (a check row's `skipped` is its own boolean).
fn summary(e: &Ending, not_run: Option<&str>) -> serde_json::Value {
    {
        json!({
            "type": "summary",
            "summary": if not_run.is_some() { None } else { e.summary_line() },
            "not_run": not_run,
            "passed": e.tally.passed,
            "failed": e.tally.failed,
            "skipped": e.tally.skipped,
            "total": e.tally.total(),
            "selected": e.total,
            "failed_ids": e.tally.failed_ids,
            "wall_ms": (e.wall.as_secs_f64() * 10_000.0).round() / 10.0,
            "interrupted": e.interrupted.is_some(),
            "signal": e.interrupted.map(|i| i.signal),
            "killed_groups": e.cleanup.killed,
            "removed_dirs": e.cleanup.removed,
            "kept_dirs": e.cleanup.kept.iter().map(|d| d.display().to_string()).collect::<Vec<_>>(),
        })
    }
}
