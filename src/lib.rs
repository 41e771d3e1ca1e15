//! Spawn-bg *resume* machinery of an agent garden.
//!
//! A dispatcher wants a dormant citizen (named by a [`GardenId`]) back as a resident
//! process. It holds a per-id dispatch [`lock`], spawns the resume child detached, and
//! watches for the first *observed* liveness transition — the control socket becomes
//! connectable, or the child exits. Only an observation releases the lock, exactly once
//! ([`release`]). A timeout never releases: it escalates to terminating the child and
//! waits, bounded, for the exit it causes ([`watcher`]).
//!
//! Layout, one module per concept:
//! - [`backend`]: which OS mechanisms observe children and sockets (Linux native or
//!   portable POSIX);
//! - [`garden_id`]: the id grammar every path is built from;
//! - [`lock`]: the on-disk dispatch lock shared with the TypeScript dispatcher;
//! - [`release`]: the pure reducer deciding when a lock may be released;
//! - [`plan`]: what the dispatcher decided to do;
//! - [`socket`]: inspecting, probing and awaiting the control socket;
//! - [`watcher`]: `execute_spawn_bg_resume`, the race between socket, exit and timeout;
//! - [`production`]: the real dependencies (children, signals, identity);
//! - [`resume_args`]: the argv a resumed `pi` is started with.
//!
//! ```no_run
//! use std::time::Duration;
//! use entwurf_v2_spawn::production::{ProductionDeps, ProductionOptions};
//! use entwurf_v2_spawn::watcher::{SpawnBgOutcome, execute_spawn_bg_resume};
//! use entwurf_v2_spawn::{GardenId, SpawnBgPlan, lock};
//!
//! async fn resume(gid: &str) -> anyhow::Result<()> {
//!     let gid = GardenId::parse(gid)?;
//!     let options = ProductionOptions::from_env()?; // HOME, PI_CODING_AGENT_DIR
//!     let claim = lock::acquire(&options.lock_dir, &gid)?;
//!     let socket = options.socket_path(&gid);
//!     let plan = SpawnBgPlan::new(gid.clone(), "good morning", socket, Duration::from_secs(30))?
//!         .with_launch_args(["--approve"])?;
//!     let deps = ProductionDeps::new(options);
//!     match execute_spawn_bg_resume(&plan, Some(&claim), &deps).await? {
//!         SpawnBgOutcome::SocketAlive { pid, .. } => println!("{gid} is resident as pid {pid}"),
//!         SpawnBgOutcome::ChildExited { exit, .. } => println!("{gid} ended: {exit}"),
//!         SpawnBgOutcome::SpawnStartFailed { error, .. } => eprintln!("could not start: {error}"),
//!         SpawnBgOutcome::LockRetained(diagnostic) => eprintln!("{diagnostic}"),
//!     }
//!     Ok(())
//! }
//! ```
//!
//! Assumption, stated once: "same hostname" stands in for "same machine" when deciding
//! whether a lock holder's pid can be checked. A home directory shared across hosts with
//! equal hostnames is out of scope.

// Library code never panics on input; tests (their own crates) may.
#![warn(clippy::unwrap_used, clippy::expect_used)]

pub mod backend;
pub mod garden_id;
pub mod lock;
pub mod plan;
pub mod production;
pub mod release;
pub mod resume_args;
pub mod socket;
mod sys;
pub mod watcher;

pub use backend::Backend;
pub use garden_id::GardenId;
pub use plan::SpawnBgPlan;

/// Renders an error with its chain of causes, `a: b: c`, for diagnostics that must be
/// read by a person without a debugger.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut next = error.source();
    while let Some(cause) = next {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        next = cause.source();
    }
    text
}
