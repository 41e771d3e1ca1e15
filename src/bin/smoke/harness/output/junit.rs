//! JUnit XML for CI test report pages (`quick-junit`): one testsuite per scenario (and
//! one for hygiene), named with the backend (`socket (native)`, classname
//! `smoke-entwurf-v2-spawn-live.native.socket`) so a CI page with both backends' runs
//! keeps them apart; each suite has `time` (the span of its checks, which run
//! concurrently), `timestamp` (the run's start) and `hostname`. One testcase per check,
//! failures and skips marked. XML cannot be streamed, so the document is written once,
//! at the end — also when a signal ended the run: then with every check that finished,
//! and an `interrupted` testcase in error (suite `run`), so the report is never green.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use super::sink::{Ending, Header, Sink, emit};
use crate::harness::report::{COMMIT, CheckResult, Outcome, PROGRAM};

/// Collects results until the end.
#[derive(Default)]
pub struct Junit {
    /// Suite key → its name, cases, and the span of its checks (first start, last end).
    suites: BTreeMap<usize, Suite>,
    header: Option<Header>,
}

struct Suite {
    name: String,
    cases: Vec<TestCase>,
    span: Option<(Instant, Instant)>,
}

fn backend(header: Option<&Header>) -> &'static str {
    header.map_or("native", |h| h.backend)
}

/// Suite key and scenario name (hygiene last).
fn suite_of(r: &CheckResult) -> (usize, &'static str) {
    match r.check.scenario() {
        Some(s) => (s as usize, s.name()),
        None => (usize::MAX, "hygiene"),
    }
}

/// `socket (native)`: CI's two runs, one per backend, must not merge into one suite.
fn suite_name(scenario: &str, backend: &str) -> String {
    format!("{scenario} ({backend})")
}

/// `smoke-entwurf-v2-spawn-live.portable.socket`.
fn classname(scenario: &str, backend: &str) -> String {
    format!("{PROGRAM}.{backend}.{scenario}")
}

impl Sink for Junit {
    fn begin(&mut self, h: &Header) {
        self.header = Some(h.clone());
    }

    fn result(&mut self, _n: usize, r: &CheckResult) {
        let status = match &r.outcome {
            Outcome::Pass => TestCaseStatus::success(),
            Outcome::Fail(reason) => {
                let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                let mut text = reason.clone();
                if let Some(dir) = &r.kept_dir {
                    text.push_str(&format!("\nkept {}", dir.display()));
                }
                status.set_message(reason.as_str()).set_description(text);
                status
            }
            Outcome::Skip(why) => {
                let mut status = TestCaseStatus::skipped();
                status.set_message(why.as_str());
                status
            }
        };
        let backend = backend(self.header.as_ref());
        let (key, scenario) = suite_of(r);
        let time = Duration::from_secs_f64(r.ms / 1000.0);
        let mut case = TestCase::new(format!("{} {}", r.check.id(), r.check.label()), status);
        case.set_classname(classname(scenario, backend))
            .set_time(time);
        let suite = self.suites.entry(key).or_insert_with(|| Suite {
            name: suite_name(scenario, backend),
            cases: Vec::new(),
            span: None,
        });
        suite.cases.push(case);
        let end = r.started + time;
        suite.span = Some(match suite.span {
            None => (r.started, end),
            Some((first, last)) => (first.min(r.started), last.max(end)),
        });
    }

    fn not_run(&mut self, _header: &Header, why: &str) {
        let mut status = TestCaseStatus::skipped();
        status.set_message(why);
        let mut case = TestCase::new(PROGRAM, status);
        case.set_classname(PROGRAM);
        let mut suite = TestSuite::new("live gate");
        suite.add_test_case(case);
        let mut report = Report::new(PROGRAM);
        report.add_test_suite(suite);
        match report.to_string() {
            Ok(xml) => emit(xml.trim_end()),
            Err(err) => eprintln!("{PROGRAM}: cannot write the JUnit report: {err}"),
        }
    }

    fn end(&mut self, e: &Ending) {
        let header = self.header.as_ref();
        let backend = backend(header);
        let mut report = Report::new(e.selection.program_label());
        report.set_time(e.wall);
        let hostname = nix::unistd::gethostname()
            .ok()
            .map(|h| h.to_string_lossy().into_owned());
        // RFC 3339 in UTC, to the second: what JUnit consumers parse as `timestamp`.
        let timestamp = header.map(|h| humantime::format_rfc3339_seconds(h.started).to_string());
        let mut suites = std::mem::take(&mut self.suites);
        // An interrupted run is not green: the interruption is an error of its own, in
        // a suite `run`, besides the checks that finished (all of them).
        if let Some(line) = e.interrupted_line() {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
            status
                .set_message(line.as_str())
                .set_description(line.as_str());
            let mut case = TestCase::new("interrupted", status);
            case.set_classname(classname("run", backend));
            suites.insert(
                usize::MAX - 1,
                Suite {
                    name: suite_name("run", backend),
                    cases: vec![case],
                    span: None,
                },
            );
        }
        for (_, Suite { name, cases, span }) in suites {
            let mut suite = TestSuite::new(name);
            suite.set_time(span.map_or(Duration::ZERO, |(first, last)| last - first));
            if let Some(timestamp) = &timestamp {
                suite
                    .extra
                    .insert("timestamp".into(), timestamp.as_str().into());
            }
            if let Some(hostname) = &hostname {
                suite
                    .extra
                    .insert("hostname".into(), hostname.as_str().into());
            }
            suite.add_property(("commit", COMMIT));
            suite.add_property(("backend", backend));
            if let Some(h) = header {
                suite.add_property(("euid", h.euid.to_string().as_str()));
            }
            if let Some(summary) = e.summary_line() {
                suite.add_property(("summary", summary.as_str()));
            }
            if let Some(line) = e.interrupted_line() {
                suite.set_system_err(line);
            }
            suite.add_test_cases(cases);
            report.add_test_suite(suite);
        }
        match report.to_string() {
            Ok(xml) => emit(xml.trim_end()),
            Err(err) => eprintln!("{PROGRAM}: cannot write the JUnit report: {err}"),
        }
    }
}
