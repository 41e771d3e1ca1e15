//! Output formats: text (default), TAP version 13, JSON Lines; and the `--record` entry.
//!
//! Each format is a [`Sink`] fed one result at a time, in catalog order, so a long run
//! streams instead of going quiet until the end.

mod json;
pub mod record;
mod tap;
mod text;

use std::io::{IsTerminal, Write};
use std::time::Duration;

use crate::cli::{ColorWhen, Format};
use crate::runner::{CheckResult, Tally};

/// What the header says about the run.
#[derive(Debug, Clone)]
pub struct Header {
    /// The scenario name (`all`, `socket`, ...).
    pub scenario: &'static str,
    /// How many checks will report.
    pub total: usize,
    /// Our effective uid (root runs skip other checks than ordinary ones).
    pub euid: u32,
    /// The per-check deadline.
    pub deadline: Duration,
}

/// A destination for results.
pub trait Sink {
    /// Before the first result.
    fn begin(&mut self, header: &Header);
    /// The `n`-th result (1-based, catalog order).
    fn result(&mut self, n: usize, result: &CheckResult);
    /// After the last result.
    fn summary(&mut self, tally: &Tally, wall: Duration);
}

/// The sink for `format`, writing to stdout.
pub fn sink(format: Format, color: bool) -> Box<dyn Sink> {
    match format {
        Format::Text => Box::new(text::Text::new(color)),
        Format::Tap => Box::new(tap::Tap),
        Format::Json => Box::new(json::Json),
    }
}

/// Whether the text format is colored.
///
/// `--color always|never` wins. For `auto`: `NO_COLOR` (non-empty) turns colors off,
/// then `CLICOLOR_FORCE` (non-empty, not `0`) turns them on, else only a terminal
/// stdout gets them. NO_COLOR beats CLICOLOR_FORCE: when a user set both, the request
/// for less is the safer one to honor.
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
