//! What every format is fed: the header, one result at a time, the ending; and the one
//! way they write a line.

use std::io::Write;
use std::time::{Duration, SystemTime};

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
    /// Where the checks' sockets go (`harness::cleanup::temp_dirs::socket_root`): said
    /// up front, since it may not be `TMPDIR`.
    pub sockets: std::path::PathBuf,
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
    /// The ending of a run that ran nothing (`--not-live`): no result, no cleanup.
    pub fn nothing(selection: Selection) -> Self {
        Self {
            selection,
            tally: Tally::default(),
            total: 0,
            wall: Duration::ZERO,
            interrupted: None,
            cleanup: Cleanup::default(),
        }
    }

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
    /// The whole output of a gate that runs nothing because `LIVE` is not 1 (`run.sh`
    /// passes `--not-live`), in this format: a CI step writing `--format junit >
    /// report.xml` gets a valid report with one skipped test, TAP a skipped plan, JSON
    /// its start object and a summary object of the one schema, text one line.
    fn not_run(&mut self, header: &Header, why: &str);
}

/// Writes one line to stdout and flushes it. A closed stdout (e.g. `| head`) must not
/// abort the run half-way with children alive, so write errors are ignored here; the
/// exit code still reports the result.
pub(super) fn emit(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Milliseconds with one decimal, e.g. `12.3 ms`.
pub(super) fn ms(value: f64) -> String {
    format!("{value:.1} ms")
}
