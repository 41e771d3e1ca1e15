//! The ordinary integration tests, one binary (one link, one process): the production
//! dependencies against real OS objects, the deterministic gate over fakes, and the
//! property and fuzz-corpus runs. Shared code lives in the `entwurf-test-support` crate
//! (`tests/support`).
//!
//! Tests that measure the whole process (descriptor counts, idle CPU, detection latency,
//! a dropped watch, strace) keep their own binaries next to this directory: tests in one
//! binary run in parallel and would disturb what they measure.
//!
//! Linux only: the tests read `/proc` and use Linux-only calls, so other platforms build
//! an empty binary. The portable backend — what macOS and FreeBSD run — is proved here by
//! running the bad-input tests once per backend ([`per_backend!`]).

#![cfg(target_os = "linux")]

#[macro_use]
mod backends;

mod argv_props;
mod argv_shapes;
mod child;
mod dispatch;
mod faults_lock;
mod faults_socket;
mod faults_watch;
mod fuzz_argv;
mod fuzz_lock;
mod fuzz_session;
mod identity;
mod identity_props;
mod layout;
mod lock;
mod lock_props;
mod preflight;
mod production;
mod provenance;
mod reach;
mod readme_example;
mod real_pi;
mod release_props;
mod socket;
mod visible;
mod watcher;
