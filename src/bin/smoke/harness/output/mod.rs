//! Output formats: text (default), TAP version 13, JSON Lines, JUnit XML; and the
//! `--record` entry.
//!
//! Each format is a [`Sink`] fed one result at a time, in catalog order, so a long run
//! streams instead of going quiet until the end. Every run ends with exactly one call
//! to [`Sink::end`], also when a signal cut it short, so every format is finished.

mod json;
mod junit;
pub mod record;
mod tap;
mod text;

use std::io::{IsTerminal, Write};
use std::time::{Duration, SystemTime};

use crate::harness::cli::{ColorWhen, Format};
use crate::harness::report::{CheckResult, Cleanup, Interruption, Selection, Tally};

/// What the header says about the run.
#[derive(Debug, Clone)]
pub struct Header {
    /// What was selected.
    pub selection: Selection,
    /// How many checks will report.
    pub total: usize,
    /// Our effective uid (root runs skip other checks than ordinary ones).
    pub euid: u32,
    /// The per-check deadline.
    pub deadline: Duration,
    /// The library backend the checks use (`native` or `portable`), always named: two
    /// runs on two backends must never read the same.
    pub backend: &'static str,
    /// When the run started (JUnit's timestamp).
    pub started: SystemTime,
}

impl Header {
    /// `scenario all, backend native` or `scenario lock, only L2, backend portable`
    /// (shared by the text and TAP headers).
    pub fn scope(&self) -> String {
        let mut scope = format!("scenario {}", self.selection.scenario_name());
        if !self.selection.only.is_empty() {
            scope.push_str(&format!(", only {}", self.selection.only.join(", ")));
        }
        scope.push_str(&format!(", backend {}", self.backend));
        scope
    }
}

/// How the run ended.
#[derive(Debug, Clone)]
pub struct Ending {
    /// What was selected (the summary line names it).
    pub selection: Selection,
    /// What reported (all checks, unless interrupted).
    pub tally: Tally,
    /// How many checks were selected.
    pub total: usize,
    /// Wall time of the checks.
    pub wall: Duration,
    /// Set when a signal ended the run: there is no summary line then.
    pub interrupted: Option<Interruption>,
    /// What the cleanup did (an interrupted run says it).
    pub cleanup: Cleanup,
}

impl Ending {
    /// The summary line (`None` when interrupted: an incomplete run has none to paste).
    pub fn summary_line(&self) -> Option<String> {
        self.interrupted
            .is_none()
            .then(|| self.selection.summary_line(&self.tally))
    }

    /// The one line an interrupted run ends with instead.
    pub fn interrupted_line(&self) -> Option<String> {
        self.interrupted.map(|i| {
            format!(
                "{}: interrupted by {} after {} of {} checks; {}; no summary",
                self.selection.program_label(),
                i.signal,
                self.tally.total(),
                self.total,
                self.cleanup.describe()
            )
        })
    }
}

/// A destination for results.
pub trait Sink {
    /// Before the first result.
    fn begin(&mut self, header: &Header);
    /// The `n`-th result (1-based, catalog order).
    fn result(&mut self, n: usize, result: &CheckResult);
    /// After the last result, or when a signal ended the run.
    fn end(&mut self, ending: &Ending);
}

/// The sink for `format`, writing to stdout.
pub fn sink(format: Format, color: bool) -> Box<dyn Sink> {
    match format {
        Format::Text => Box::new(text::Text::new(color)),
        Format::Tap => Box::new(tap::Tap),
        Format::Json => Box::new(json::Json),
        Format::Junit => Box::new(junit::Junit::default()),
    }
}

/// The end of the output when the watchdog gives up on a blocked run (on its own
/// thread, without the sink): TAP bails out, JSON gets its summary object, text a line.
/// JUnit has no document to close; its consumer sees no report and the exit code.
pub fn abandoned(format: Format, why: &str) {
    match format {
        Format::Tap => emit(&format!("Bail out! {why}")),
        Format::Json => emit(
            &serde_json::json!({
                "type": "summary",
                "summary": null,
                "interrupted": true,
                "signal": null,
                "watchdog": why,
            })
            .to_string(),
        ),
        Format::Text => emit(&format!(
            "{}: {why}; no summary",
            crate::harness::report::PROGRAM
        )),
        Format::Junit => {}
    }
}

/// Whether the text format is colored.
///
/// `--color always|never` wins. For `auto`, in this order: `NO_COLOR` (non-empty) turns
/// colors off; `CLICOLOR_FORCE` (non-empty, not `0`) turns them on, whatever the
/// terminal (also `TERM=dumb`, also not a terminal: that is what forcing means);
/// `TERM=dumb` turns them off; else only a terminal stdout gets them. NO_COLOR beats
/// CLICOLOR_FORCE: both are the user's explicit requests, and the one for less is the
/// safer to honor. `--help` says the same.
pub fn use_color(when: ColorWhen) -> bool {
    let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
    match when {
        ColorWhen::Always => true,
        ColorWhen::Never => false,
        ColorWhen::Auto => {
            if set("NO_COLOR") {
                false
            } else if set("CLICOLOR_FORCE")
                && std::env::var_os("CLICOLOR_FORCE").is_some_and(|v| v != "0")
            {
                true
            } else if std::env::var_os("TERM").is_some_and(|t| t == "dumb") {
                false
            } else {
                std::io::stdout().is_terminal()
            }
        }
    }
}

/// Writes one line to stdout and flushes it. A closed stdout (e.g. `| head`) must not
/// abort the run half-way with children alive, so write errors are ignored here; the
/// exit code still reports the result.
fn emit(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Milliseconds with one decimal, e.g. `12.3 ms`.
fn ms(value: f64) -> String {
    format!("{value:.1} ms")
}
