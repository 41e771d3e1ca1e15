//! Fuzzing the saved-session header reader on the stable toolchain (see
//! `tests/support`): seed corpus replay, arbitrary bytes and mutations of real
//! session files, each run through `parse_session_line` and `resolve_launch_identity`.
//! The properties live in `fuzz/checks.rs`, shared with the cargo-fuzz target
//! `session_file`.

use entwurf_test_support::fuzz::{checks, corpus, fuzz, mutated};
use proptest::prelude::*;

#[test]
fn the_seed_corpus_holds() {
    let agent = tempfile::tempdir().expect("tempdir");
    for (name, bytes) in corpus("session_file") {
        eprintln!("seed {name}");
        checks::session_file(&bytes, agent.path());
    }
}

#[test]
fn arbitrary_bytes() {
    let agent = tempfile::tempdir().expect("tempdir");
    fuzz(
        "session_file/bytes",
        proptest::collection::vec(any::<u8>(), 0..512),
        |bytes| checks::session_file(&bytes, agent.path()),
    );
}

#[test]
fn mutated_sessions() {
    let agent = tempfile::tempdir().expect("tempdir");
    let seeds = corpus("session_file").into_iter().map(|(_, b)| b).collect();
    fuzz("session_file/mutated", mutated(seeds), |bytes| {
        checks::session_file(&bytes, agent.path())
    });
}
