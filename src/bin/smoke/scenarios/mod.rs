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

use crate::harness::runner::Runner;

pub use shared::Env;

/// Runs every selected scenario concurrently, then hygiene.
pub async fn run(runner: &Runner, env: &Env) {
    tokio::join!(
        socket::run(runner, env),
        child::run(runner, env),
        watcher::run(runner, env),
        lock::run(runner, env),
        resume::run(runner, env),
        visible::run(runner, env),
        dispatch::run(runner, env),
        pi::run(runner, env),
    );
    hygiene::run(runner, env).await;
}
