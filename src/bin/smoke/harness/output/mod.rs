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

use crate::harness::cli::{ColorWhen, Format};

use sink::emit;
pub use sink::{Ending, Header, Sink};

/// The sink for `format`, writing to stdout.
pub fn sink(format: Format) -> Box<dyn Sink> {
    match format {
        Format::Text => Box::new(text::Text),
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

/// Decides, once before any output, whether the text format is colored: by owo-colors'
/// override, which its `if_supports_color` (how the text format paints) obeys.
///
/// `--color always|never` sets the override. For `auto`: `NO_COLOR` (non-empty) turns
/// colors off; otherwise owo-colors' `supports-colors` decides for stdout:
/// `CLICOLOR_FORCE` (not `0`) or `FORCE_COLOR` turn them on whatever the terminal (also
/// `TERM=dumb`, also not a terminal: that is what forcing means); `TERM=dumb` or a stdout
/// that is not a terminal turn them off; a terminal gets them (one that sets `TERM`, as
/// terminals do, or `COLORTERM`). NO_COLOR beats
/// CLICOLOR_FORCE — both are the user's explicit requests, and the one for less is the
/// safer to honor — where `supports-colors` lets the forcing one win, so that one rule is
/// applied here, as the override. `--help` says the same.
pub fn choose_color(when: ColorWhen) {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    match when {
        ColorWhen::Always => owo_colors::set_override(true),
        ColorWhen::Never => owo_colors::set_override(false),
        ColorWhen::Auto if no_color => owo_colors::set_override(false),
        ColorWhen::Auto => owo_colors::unset_override(),
    }
}
