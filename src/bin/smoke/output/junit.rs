//! JUnit XML for CI test report pages (`quick-junit`): one testsuite per scenario (and
//! one for hygiene), one testcase per check, failures and skips marked. XML cannot be
//! streamed, so the document is written once, at the end — also when a signal ended the
//! run, with the checks that reported and the interruption noted on the report.

use std::collections::BTreeMap;
use std::time::Duration;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use super::{Ending, Header, Sink, emit};
use crate::report::{COMMIT, CheckResult, Outcome, PROGRAM};

/// Collects results until the end.
#[derive(Default)]
pub struct Junit {
    /// Suite name → its cases, in catalog order of first appearance.
    suites: BTreeMap<usize, (String, Vec<TestCase>)>,
    header: Option<Header>,
}

fn suite_of(r: &CheckResult) -> (usize, String) {
    match r.check.scenario() {
        Some(s) => (s as usize, s.name().to_owned()),
        None => (usize::MAX, "hygiene".to_owned()),
    }
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
        let (key, suite) = suite_of(r);
        let mut case = TestCase::new(format!("{} {}", r.check.id(), r.check.label()), status);
        case.set_classname(format!("{PROGRAM}.{suite}"))
            .set_time(Duration::from_secs_f64(r.ms / 1000.0));
        self.suites
            .entry(key)
            .or_insert_with(|| (suite, Vec::new()))
            .1
            .push(case);
    }

    fn end(&mut self, e: &Ending) {
        let mut report = Report::new(e.selection.program_label());
        report.set_time(e.wall);
        for (_, (name, cases)) in std::mem::take(&mut self.suites) {
            let mut suite = TestSuite::new(name);
            suite.add_property(("commit", COMMIT));
            if let Some(h) = &self.header {
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
