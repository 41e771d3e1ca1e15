//! The human format: a header, `ok <id> <label> (<time>)` per check, the summary last
//! (then the failed ids, when any failed).

use owo_colors::{OwoColorize, Stream, Style};

use super::sink::{Ending, Header, Sink, emit, ms};
use crate::harness::report::{COMMIT, CheckResult, Outcome, PROGRAM, failed_ids_line};

/// Text output, colored when owo-colors says stdout takes colors (`--color`, see
/// [`super::choose_color`]).
pub struct Text;

impl Text {
    fn paint(&self, text: &str, style: Style) -> String {
        text.if_supports_color(Stream::Stdout, |t| t.style(style))
            .to_string()
    }
}

impl Sink for Text {
    fn begin(&mut self, h: &Header) {
        let line = format!(
            "{PROGRAM} {} (commit {COMMIT}): {}, {} checks against real OS primitives (euid {}, per-check deadline {} ms, sockets under {})",
            env!("CARGO_PKG_VERSION"),
            h.scope(),
            h.total,
            h.euid,
            h.deadline.as_millis(),
            h.sockets.display()
        );
        emit(&self.paint(&line, Style::new().bold()));
    }

    fn result(&mut self, _n: usize, r: &CheckResult) {
        let (id, label) = (r.check.id(), r.check.label());
        let time = self.paint(&format!("({})", ms(r.ms)), Style::new().dimmed());
        let line = match &r.outcome {
            Outcome::Pass => format!(
                "{} {id} {label} {time}",
                self.paint("ok", Style::new().green())
            ),
            Outcome::Fail(reason) => format!(
                "{} {id} {label}: {reason} {time}",
                self.paint("FAIL", Style::new().red().bold())
            ),
            Outcome::Skip(why) => format!(
                "{} {id} {label}: {why}",
                self.paint("skip", Style::new().yellow())
            ),
        };
        emit(&line);
        if let Some(dir) = &r.kept_dir {
            emit(&format!(
                "     kept {} (stand-ins' stderr logs are there; a run a day later removes it)",
                dir.display()
            ));
        }
    }

    fn not_run(&mut self, _header: &Header, why: &str) {
        emit(&format!("[{PROGRAM}] skipped — {why}"));
    }

    fn end(&mut self, e: &Ending) {
        if let Some(line) = e.interrupted_line() {
            emit(&self.paint(&line, Style::new().red().bold()));
            return;
        }
        emit(&self.paint(
            &format!("wall time {}", ms(e.wall.as_secs_f64() * 1000.0)),
            Style::new().dimmed(),
        ));
        let style = if e.tally.failed == 0 {
            Style::new().green().bold()
        } else {
            Style::new().red().bold()
        };
        if let Some(summary) = e.summary_line() {
            emit(&self.paint(&summary, style));
        }
        if let Some(line) = failed_ids_line(&e.tally) {
            emit(&line);
        }
    }
}
