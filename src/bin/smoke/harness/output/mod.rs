//! Output formats: text (default), TAP version 13, JSON Lines, JUnit XML; and the
//! `--record` entry.
//!
//! Each format is a [`Sink`] fed one result at a time, in catalog order, so a long run
//! streams instead of going quiet until the end. Every run ends with exactly one call
//! to [`Sink::end`], also when a signal cut it short, so every format is finished.

mod json;
mod junit;
pub mod record;
mod sink;
mod tap;
mod text;

use std::io::IsTerminal;

use crate::harness::cli::{ColorWhen, Format};

use sink::emit;
pub use sink::{Ending, Header, Sink};

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
