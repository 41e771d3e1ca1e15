//! libFuzzer target: the saved-session header reader (see `fuzz/checks.rs`).
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

#[path = "../checks.rs"]
mod checks;

static AGENT_DIR: OnceLock<PathBuf> = OnceLock::new();

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    checks::session_file(data, AGENT_DIR.get_or_init(checks::scratch_agent_dir));
});
