//! JSON Lines: one object per check, then one summary object.
//!
//! `ok` is true unless the check failed (a skip is `ok: true, skipped: true`, as in TAP),
//! so `all(.ok)` means "nothing failed"; `error` is null exactly when `ok` is true.

use std::time::Duration;

use serde_json::json;

use super::{Header, Sink, emit};
use crate::runner::{CheckResult, Outcome, Tally};

/// JSON Lines output (never colored).
pub struct Json;

impl Sink for Json {
    fn begin(&mut self, _h: &Header) {}

    fn result(&mut self, n: usize, r: &CheckResult) {
        let (ok, error, skip_reason) = match &r.outcome {
            Outcome::Pass => (true, None, None),
            Outcome::Fail(reason) => (false, Some(reason.as_str()), None),
            Outcome::Skip(why) => (true, None, Some(why.as_str())),
        };
        let line = json!({
            "n": n,
            "id": r.check.id(),
            "label": r.check.label(),
            "scenario": r.check.scenario().map_or("hygiene", |s| s.name()),
            "ok": ok,
            "ms": (r.ms * 10.0).round() / 10.0,
            "error": error,
            "skipped": skip_reason.is_some(),
            "skip_reason": skip_reason,
        });
        emit(&line.to_string());
    }

    fn summary(&mut self, tally: &Tally, wall: Duration) {
        let line = json!({
            "summary": tally.summary_line(),
            "passed": tally.passed,
            "failed": tally.failed,
            "skipped": tally.skipped,
            "total": tally.passed + tally.failed + tally.skipped,
            "wall_ms": (wall.as_secs_f64() * 10_000.0).round() / 10.0,
        });
        emit(&line.to_string());
    }
}
