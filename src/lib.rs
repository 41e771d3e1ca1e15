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
//! - [`dispatch`]: a message to a citizen: sent over its control socket when it is
//!   live, a resume when it is dormant, else a reason (the intent × liveness table);
//! - [`backend`]: which OS mechanisms observe children and sockets (Linux native or
//!   portable POSIX);
//! - [`garden_id`]: the id grammar every path is built from;
//! - [`lock`]: the on-disk dispatch lock shared with the TypeScript dispatcher;
//! - [`release`]: the pure reducer deciding when a lock may be released;
//! - [`plan`]: what the dispatcher decided to do;
//! - [`socket`]: inspecting, probing and awaiting the control socket;
//! - [`watcher`]: `execute_spawn_bg_resume`, the race between socket, exit and timeout;
//! - [`production`]: the real dependencies (children, signals, identity);
//! - [`resume_args`]: the argv a resumed `pi` is started with;
//! - [`visible`]: resume in a tmux window the operator sees, observed in milliseconds.
//!
//! ```no_run
//! // The README's example, verbatim: a doctest in src/lib.rs, and run against the real pi
//! // by tests/integration/readme_example.rs.
//! use std::time::Duration;
//! use entwurf_v2_spawn::production::{ProductionDeps, ProductionOptions};
//! use entwurf_v2_spawn::resume_args::PassthroughArgs;
//! use entwurf_v2_spawn::runtime::{ArgvDialect, preflight};
//! use entwurf_v2_spawn::watcher::{SpawnBgOutcome, execute_spawn_bg_resume};
//! use entwurf_v2_spawn::{GardenId, SpawnBgPlan, error_chain, lock};
//!
//! /// Resumes `gid` in the background with entwurf's control extension; its pid once it is
//! /// resident (observed: its control socket answers).
//! async fn resume(
//!     mut options: ProductionOptions,
//!     control_extension: &str,
//!     gid: &str,
//! ) -> Result<Option<u32>, Box<dyn std::error::Error>> {
//!     let gid = GardenId::parse(gid)?;
//!     // The resume passes `--entwurf-control`, a flag only entwurf's control extension
//!     // defines: without it named here, pi refuses (`Unknown option: --entwurf-control`).
//!     options.shared.extension_args = PassthroughArgs::new(["-e", control_extension])?;
//!     // Before the lock: a missing pi, or one too old for the argv, is refused with nothing taken.
//!     preflight(&options.shared.pi_program, ArgvDialect::SpawnBg).await?;
//!     // Off the async worker: acquire creates and fsyncs the lock file.
//!     let claim = lock::acquire_async(&options.shared.lock_dir, &gid).await?;
//!     let socket = options.socket_path(&gid);
//!     let plan = SpawnBgPlan::new(gid.clone(), "good morning", socket, Duration::from_secs(30))?;
//!     let deps = ProductionDeps::new(options);
//!     // Every error is printed with its causes: the top message alone rarely says why.
//!     match execute_spawn_bg_resume(&plan, Some(&claim), &deps).await {
//!         Ok(SpawnBgOutcome::SocketAlive { pid, .. }) => {
//!             println!("{gid} is resident as pid {pid}");
//!             return Ok(Some(pid));
//!         }
//!         Ok(SpawnBgOutcome::ChildExited { exit, stderr_tail, .. }) => {
//!             // A runtime that refused to run says why on stderr: show it with the code.
//!             println!("{gid} ended: {exit}; stderr: {}", stderr_tail.as_deref().unwrap_or("-"))
//!         }
//!         Ok(SpawnBgOutcome::SpawnStartFailed { error, .. }) => {
//!             eprintln!("could not start {gid}: {}", error_chain(&error))
//!         }
//!         Ok(SpawnBgOutcome::LockRetained(diagnostic)) => eprintln!("{diagnostic}"),
//!         Ok(other) => println!("{gid}: {}", other.kind()), // an outcome added later
//!         Err(error) => eprintln!("resuming {gid}: {}", error_chain(&error)),
//!     }
//!     Ok(None)
//! }
//!
//! async fn caller() {
//!     let resumed = match ProductionOptions::from_env() {
//!         // HOME, PI_CODING_AGENT_DIR; the extension is entwurf's (no registry publishes it).
//!         Ok(options) => resume(options, "/path/to/entwurf-control.ts", "20260613T000000-aaaaaa").await,
//!         Err(error) => Err(error.into()),
//!     };
//!     if let Err(error) = resumed {
//!         eprintln!("{}", error_chain(&*error));
//!     }
//! }
//! ```
//!
//! Assumption, stated once: "same hostname" stands in for "same machine" when deciding
//! whether a lock holder's pid can be checked. A home directory shared across hosts with
//! equal hostnames is out of scope.

// Library code never panics on input; tests (their own crates) may.
#![warn(clippy::unwrap_used, clippy::expect_used)]
// Public items keep their `# Errors` sections and `#[must_use]` (what a dependent reads).
#![warn(clippy::must_use_candidate, clippy::missing_errors_doc)]
// One module-file style: a module with sub-modules is `name/mod.rs`, never `name.rs`
// beside `name/` (the two were mixed; one is easier to find one's way in).
#![warn(clippy::self_named_module_files)]

pub mod backend;
pub mod dispatch;
pub mod garden_id;
pub mod lock;
pub mod plan;
pub mod production;
pub mod release;
pub mod resume_args;
pub mod runtime;
pub mod socket;
mod sys;
pub mod visible;
pub mod watcher;

pub use backend::Backend;
pub use garden_id::GardenId;
pub use plan::SpawnBgPlan;
/// The cancel signal [`socket::await_socket_alive`] and [`watcher::WatchDeps`] take,
/// re-exported so a caller needs no direct `tokio-util` dependency (or version match).
pub use tokio_util::sync::CancellationToken;

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
