//! The harness: what runs the checks and reports them, and what cleans up after them.

pub mod catalog;
pub mod cleanup;
pub mod cli;
pub mod needs;
pub mod output;
pub mod pi_runtimes;
pub mod report;
pub mod runner;
pub mod setup;
pub mod signals;
