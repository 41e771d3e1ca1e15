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
//! - [`garden_id`]: the id grammar every path is built from;
//! - [`lock`]: the on-disk dispatch lock shared with the TypeScript dispatcher;
//! - [`release`]: the pure reducer deciding when a lock may be released;
//! - [`plan`]: what the dispatcher decided to do;
//! - [`socket`]: inspecting, probing and awaiting the control socket;
//! - [`watcher`]: `execute_spawn_bg_resume`, the race between socket, exit and timeout;
//! - [`production`]: the real dependencies (children, signals, identity);
//! - [`resume_args`]: the argv a resumed `pi` is started with.
//!
//! Assumption, stated once: "same hostname" stands in for "same machine" when deciding
//! whether a lock holder's pid can be checked. A home directory shared across hosts with
//! equal hostnames is out of scope.

// Library code never panics on input; tests (their own crates) may.
#![warn(clippy::unwrap_used, clippy::expect_used)]

pub mod garden_id;
pub mod lock;
pub mod plan;
pub mod production;
pub mod release;
pub mod resume_args;
pub mod socket;
pub mod watcher;

pub use garden_id::GardenId;
pub use plan::SpawnBgPlan;
