//! Runs checks: one deadline per check, pass/fail/skip accounting, results streamed in
//! catalog order however the checks interleave.
//!
//! Everything runs on one current-thread runtime, so the shared state is `RefCell`s that
//! are never borrowed across an `.await`.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::Future;
use std::time::{Duration, Instant};

use crate::harness::catalog::Check;
use crate::harness::cleanup;
use crate::harness::output::Sink;
use crate::harness::report::{CheckResult, Outcome, Tally};

/// The error a check returns to say "skip, because ...".
#[derive(Debug)]
pub struct Skip(pub String);

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Skip {}

/// `Err(skip("needs root"))` from a check body marks it skipped.
pub fn skip(why: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Skip(why.into()))
}

/// Test-only fault injection (hidden flags), so the FAIL paths are exercised by tests.
#[derive(Debug, Clone, Default)]
pub struct Injection {
    /// Ids whose checks are turned into failures after they ran.
    pub fail: Vec<String>,
    /// Ids whose checks hang until their deadline.
    pub hang: Vec<String>,
    /// Ids whose checks' stand-ins start slowly ([`Runner::start_delay`]).
    pub slow_start: Vec<String>,
}

/// How slowly a stand-in starts under `--inject-slow-start`: longer than any bound a
/// check once had inside its deadline (3 s), well within the deadline (10 s).
const SLOW_START: Duration = Duration::from_millis(3500);

/// The check executor: the shared run state handed to every scenario.
pub struct Runner {
    selected: Vec<Check>,
    results: RefCell<Vec<Option<CheckResult>>>,
    printed: Cell<usize>,
    sink: RefCell<Box<dyn Sink>>,
    deadline: Duration,
    injection: Injection,
}

impl Runner {
    /// A runner for `selected` (in catalog order) writing to `sink`.
    pub fn new(
        selected: Vec<Check>,
        sink: Box<dyn Sink>,
        deadline: Duration,
        injection: Injection,
    ) -> Self {
        let results = RefCell::new(vec![None; selected.len()]);
        Self {
            selected,
            results,
            printed: Cell::new(0),
            sink: RefCell::new(sink),
            deadline,
            injection,
        }
    }

    /// The checks of this run, in catalog order.
    pub fn selected(&self) -> &[Check] {
        &self.selected
    }

    /// How long the stand-ins `check` starts should sleep first (zero unless
    /// `--inject-slow-start` names it, test only).
    pub fn start_delay(&self, check: Check) -> Duration {
        if self.injection.slow_start.iter().any(|id| id == check.id()) {
            SLOW_START
        } else {
            Duration::ZERO
        }
    }

    /// Whether `check` is part of this run.
    pub fn runs(&self, check: Check) -> bool {
        self.selected.contains(&check)
    }

    /// Runs one check body under its deadline, reports and streams the result, and hands
    /// the body's value on (`None` when it failed, was skipped or timed out) so a check
    /// that inspects the same run can depend on it.
    pub async fn check<T>(
        &self,
        check: Check,
        body: impl Future<Output = anyhow::Result<T>>,
    ) -> Option<T> {
        if !self.runs(check) {
            return None;
        }
        let hang = self.injection.hang.iter().any(|id| id == check.id());
        let start = Instant::now();
        // The body runs first, so what it started (a resident, say) stays alive while
        // the check hangs: the tests kill the gate process then and watch the stand-ins go.
        let body = async {
            let value = body.await;
            if hang {
                std::future::pending::<()>().await;
            }
            value
        };
        let deadline = check.deadline(self.deadline);
        let (outcome, value) = match tokio::time::timeout(deadline, body).await {
            Ok(Ok(value)) => (Outcome::Pass, Some(value)),
            Ok(Err(e)) => match e.downcast_ref::<Skip>() {
                Some(Skip(why)) => (Outcome::Skip(why.clone()), None),
                None => (Outcome::Fail(format!("{e:#}")), None),
            },
            Err(_) => {
                // Nothing will stop what the dropped check started: kill its groups now,
                // so the hygiene checks judge the other checks, not this one.
                let killed = cleanup::abandon(check);
                let killed = if killed > 0 {
                    format!("; killed its {killed} process group(s)")
                } else {
                    String::new()
                };
                (
                    Outcome::Fail(format!(
                        "deadline exceeded: no result within {} ms (--check-timeout-ms{}); the check was abandoned{killed}",
                        deadline.as_millis(),
                        if deadline == self.deadline {
                            ""
                        } else {
                            ", scaled for real pi"
                        }
                    )),
                    None,
                )
            }
        };
        // Injected failures keep the value, so dependent checks still clean up.
        let outcome =
            if outcome == Outcome::Pass && self.injection.fail.iter().any(|id| id == check.id()) {
                Outcome::Fail("injected failure (--inject-failure, test only)".into())
            } else {
                outcome
            };
        let ms = start.elapsed().as_secs_f64() * 1000.0;
        let kept_dir = match (&outcome, check.scenario()) {
            (Outcome::Fail(reason), Some(scenario)) => {
                cleanup::keep_for_failure(scenario, check, reason)
            }
            _ => None,
        };
        self.report_result(CheckResult {
            check,
            outcome,
            ms,
            started: start,
            kept_dir,
        });
        value
    }

    fn report_result(&self, result: CheckResult) {
        // One slot per `Check` (each appears once in the selection).
        {
            let mut results = self.results.borrow_mut();
            let slot = self
                .selected
                .iter()
                .zip(results.iter_mut())
                .find(|(c, r)| **c == result.check && r.is_none())
                .map(|(_, r)| r);
            match slot {
                Some(slot) => *slot = Some(result),
                None => return,
            }
        }
        self.flush();
    }

    /// Streams every result whose predecessors are all done.
    fn flush(&self) {
        let results = self.results.borrow();
        let mut sink = self.sink.borrow_mut();
        let mut n = self.printed.get();
        while let Some(Some(result)) = results.get(n) {
            n += 1;
            sink.result(n, result);
        }
        self.printed.set(n);
    }

    /// Fails every check that never reported, flushes, and returns the tally.
    pub fn finish(&self) -> Tally {
        {
            let mut results = self.results.borrow_mut();
            for (check, slot) in self.selected.iter().zip(results.iter_mut()) {
                if slot.is_none() {
                    *slot = Some(CheckResult {
                        check: *check,
                        outcome: Outcome::Fail(
                            "never reported: its scenario ended before running it".into(),
                        ),
                        ms: 0.0,
                        started: Instant::now(),
                        kept_dir: None,
                    });
                }
            }
        }
        self.flush();
        self.tally()
    }

    /// An interrupted run's end: prints every finished result the in-order stream held
    /// back (a check still running before it) and returns the tally of what finished.
    /// Every counted result is then also shown: a FAIL that finished behind a running
    /// check would otherwise be counted and never printed.
    ///
    /// Numbered in the order printed, not by catalog position: TAP requires `ok N` to
    /// count up by one (`prove` reports "Tests out of sequence" at a gap an unfinished
    /// check would leave), and the last number then equals the count `Bail out!` gives.
    pub fn finish_interrupted(&self) -> Tally {
        {
            let results = self.results.borrow();
            let mut sink = self.sink.borrow_mut();
            // Everything before `printed` was printed, one number each.
            let mut n = self.printed.get();
            for result in results.iter().skip(n).flatten() {
                n += 1;
                sink.result(n, result);
            }
            self.printed.set(results.len());
        }
        self.tally()
    }

    /// The tally of what reported so far (an interrupted run's partial counts).
    pub fn tally(&self) -> Tally {
        Tally::of(self.results.borrow().iter().flatten())
    }

    /// Gives the sink back for the summary.
    pub fn with_sink<T>(&self, f: impl FnOnce(&mut dyn Sink) -> T) -> T {
        f(self.sink.borrow_mut().as_mut())
    }
}

/// `ensure!`-like helper that keeps messages short: fails with `what` when `cond` is false.
pub fn expect_that(cond: bool, what: impl FnOnce() -> String) -> anyhow::Result<()> {
    if cond {
        Ok(())
    } else {
        Err(anyhow::anyhow!(what()))
    }
}

#[cfg(test)]
mod tests {
    use std::rc::Rc;

    use super::*;
    use crate::harness::output::{Ending, Header};

    /// Records the numbers results were printed with.
    struct Numbers(Rc<RefCell<Vec<(usize, &'static str)>>>);

    impl Sink for Numbers {
        fn begin(&mut self, _: &Header) {}
        fn result(&mut self, n: usize, r: &CheckResult) {
            self.0.borrow_mut().push((n, r.check.id()));
        }
        fn end(&mut self, _: &Ending) {}
        fn not_run(&mut self, _: &Header, _: &str) {}
    }

    fn pass(check: Check) -> CheckResult {
        CheckResult {
            check,
            outcome: Outcome::Pass,
            ms: 0.0,
            started: Instant::now(),
            kept_dir: None,
        }
    }

    /// Issue 21 item 5: S2.2 still running when the signal came, S2.3 finished behind
    /// it. Numbered by catalog position, S2.3 was `ok 3` after `ok 1` (a gap `prove`
    /// calls out of sequence, and `Bail out!` said 2 of 3); in print order it is 2.
    #[test]
    fn an_interrupted_run_numbers_results_in_the_order_printed() {
        let numbers = Rc::new(RefCell::new(Vec::new()));
        let selected = vec![
            Check::ChildSpawned,
            Check::ChildTerminated,
            Check::ChildEarlyExit,
        ];
        let runner = Runner::new(
            selected,
            Box::new(Numbers(Rc::clone(&numbers))),
            Duration::from_secs(1),
            Injection::default(),
        );
        runner.report_result(pass(Check::ChildSpawned));
        runner.report_result(pass(Check::ChildEarlyExit));
        let tally = runner.finish_interrupted();
        assert_eq!(*numbers.borrow(), [(1, "S2.1"), (2, "S2.3")]);
        assert_eq!(tally.total(), 2, "the last number is the count");
    }
}
