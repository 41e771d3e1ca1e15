//! TAP version 13, as Debian's `prove` accepts it (it rejects version 14): the version
//! line, the plan up front (the catalog is static), `ok N - <id> <label>`, a YAML block
//! after each `not ok`, `# SKIP <why>` on skips, and the summary as a final comment. An
//! interrupted run ends with `Bail out!`, so a consumer never mistakes it for a pass.

use super::sink::{Ending, Header, Sink, emit};
use crate::harness::report::{COMMIT, CheckResult, Outcome, PROGRAM, failed_ids_line};

/// TAP output (never colored).
pub struct Tap;

/// A YAML double-quoted scalar. JSON string escapes are a subset of YAML's, so
/// serde_json's encoding is valid YAML for any reason text.
fn yaml_string(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"(unprintable)\"".into())
}

/// A directive or description must stay on one line and must not open a directive.
fn one_line(text: &str) -> String {
    text.replace(['\n', '\r'], " ").replace('#', "\\#")
}

impl Sink for Tap {
    fn begin(&mut self, h: &Header) {
        emit("TAP version 13");
        emit(&format!("1..{}", h.total));
        emit(&format!(
            "# {PROGRAM} {} (commit {COMMIT}): {}, real OS primitives (euid {}, per-check deadline {} ms, sockets under {})",
            env!("CARGO_PKG_VERSION"),
            h.scope(),
            h.euid,
            h.deadline.as_millis(),
            h.sockets.display()
        ));
    }

    fn result(&mut self, n: usize, r: &CheckResult) {
        let name = format!("{} {}", r.check.id(), one_line(r.check.label()));
        match &r.outcome {
            Outcome::Pass => emit(&format!("ok {n} - {name}")),
            Outcome::Skip(why) => emit(&format!("ok {n} - {name} # SKIP {}", one_line(why))),
            Outcome::Fail(reason) => {
                emit(&format!("not ok {n} - {name}"));
                emit("  ---");
                emit(&format!("  message: {}", yaml_string(reason)));
                emit(&format!("  id: {}", yaml_string(r.check.id())));
                emit(&format!("  ms: {:.1}", r.ms));
                if let Some(dir) = &r.kept_dir {
                    emit(&format!(
                        "  kept_dir: {}",
                        yaml_string(&dir.display().to_string())
                    ));
                }
                emit("  ...");
            }
        }
    }

    fn not_run(&mut self, _header: &Header, why: &str) {
        emit("TAP version 13");
        emit(&format!("1..0 # SKIP {}", one_line(why)));
    }

    fn end(&mut self, e: &Ending) {
        if let Some(i) = e.interrupted {
            emit(&format!(
                "Bail out! interrupted by {} after {} of {} checks",
                i.signal,
                e.tally.total(),
                e.total
            ));
            return;
        }
        emit(&format!(
            "# wall time {:.1} ms",
            e.wall.as_secs_f64() * 1000.0
        ));
        if let Some(summary) = e.summary_line() {
            emit(&format!("# {summary}"));
        }
        if let Some(line) = failed_ids_line(&e.tally) {
            emit(&format!("# {line}"));
        }
    }
}
