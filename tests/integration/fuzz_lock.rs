//! Fuzzing the lock-file parser on the stable toolchain (see `tests/support`):
//! seed corpus replay, arbitrary bytes, and mutations of near-valid claims. The
//! properties live in `fuzz/checks.rs`, shared with the cargo-fuzz target `lock_claim`.

use entwurf_test_support::fuzz::{checks, corpus, fuzz, mutated};
use proptest::prelude::*;

#[test]
fn the_seed_corpus_holds() {
    for (name, bytes) in corpus("lock_claim") {
        eprintln!("seed {name}");
        checks::lock_claim(&bytes);
    }
}

#[test]
fn arbitrary_bytes() {
    fuzz(
        "lock_claim/bytes",
        proptest::collection::vec(any::<u8>(), 0..512),
        |bytes| checks::lock_claim(&bytes),
    );
}

#[test]
fn mutated_claims() {
    let seeds = corpus("lock_claim").into_iter().map(|(_, b)| b).collect();
    fuzz("lock_claim/mutated", mutated(seeds), |bytes| {
        checks::lock_claim(&bytes)
    });
}
