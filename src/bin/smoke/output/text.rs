//! The human format: a header, `ok <id> <label> (<time>)` per check, the summary last.

use std::time::Duration;

use owo_colors::{OwoColorize, Style};

use super::{Header, Sink, emit, ms};
use crate::runner::{CheckResult, Outcome, Tally};

/// Text output, optionally colored.
pub struct Text {
    color: bool,
}

impl Text {
    /// A text sink; `color` decides ANSI styling once for the whole run.
    pub fn new(color: bool) -> Self {
        Self { color }
    }

    fn paint(&self, text: &str, style: Style) -> String {
        if self.color {
            text.style(style).to_string()
        } else {
            text.to_owned()
        }
    }
}

impl Sink for Text {
    fn begin(&mut self, h: &Header) {
        let line = format!(
            "smoke-entwurf-v2-spawn-live {}: scenario {}, {} checks against real OS primitives (euid {}, per-check deadline {} ms)",
            env!("CARGO_PKG_VERSION"),
            h.scenario,
            h.total,
            h.euid,
            h.deadline.as_millis()
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
    }

    fn summary(&mut self, tally: &Tally, wall: Duration) {
        emit(&self.paint(
            &format!("wall time {}", ms(wall.as_secs_f64() * 1000.0)),
            Style::new().dimmed(),
        ));
        let style = if tally.failed == 0 {
            Style::new().green().bold()
        } else {
            Style::new().red().bold()
        };
        emit(&self.paint(&tally.summary_line(), style));
    }
}
