//! The checks, one module per scenario, and what they share (`shared`).
//!
//! Scenarios run concurrently, and so do the independent checks inside each scenario
//! (`tokio::join!` on one current-thread runtime); checks that inspect the same run are
//! chained through the value the first one returns.

pub mod child;
pub mod dispatch;
pub mod hygiene;
pub mod lock;
mod lock_race;
pub mod pi;
pub mod resume;
pub mod shared;
pub mod socket;
pub mod visible;
pub mod watcher;

use crate::harness::catalog::Scenario;
use crate::harness::runner::Runner;
use shared::{Borrowing, join_all};

pub use shared::Env;

/// Runs every selected scenario concurrently, then hygiene.
pub async fn run(runner: &Runner, env: &Env) {
    let scenarios = Scenario::all().iter().map(|s| scenario(*s, runner, env));
    join_all(scenarios.collect()).await;
    hygiene::run(runner, env).await;
}

/// The checks of `scenario` (each runs only what the run selected of it).
fn scenario<'a>(scenario: Scenario, runner: &'a Runner, env: &'a Env) -> Borrowing<'a> {
    match scenario {
        Scenario::Socket => Box::pin(socket::run(runner, env)),
        Scenario::Child => Box::pin(child::run(runner, env)),
        Scenario::Watcher => Box::pin(watcher::run(runner, env)),
        Scenario::Lock => Box::pin(lock::run(runner, env)),
        Scenario::Resume => Box::pin(resume::run(runner, env)),
        Scenario::Visible => Box::pin(visible::run(runner, env)),
        Scenario::Dispatch => Box::pin(dispatch::run(runner, env)),
        Scenario::Pi => Box::pin(pi::run(runner, env)),
    }
}
