//! libFuzzer target: the resume argv builder and its inverse (see `fuzz/checks.rs`).
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::resume_argv(data));
