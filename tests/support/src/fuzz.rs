//! The stable-toolchain fuzz runner shared by `tests/integration/fuzz_*.rs`: replays the seed corpus
//! in `fuzz/corpus/<target>/`, then runs proptest over a strategy.
//!
//! - `ENTWURF_FUZZ_CASES=N` (default 256, so `./run.sh check` stays fast): cases per
//!   proptest run.
//! - `ENTWURF_FUZZ_SECONDS=S`: keep starting fresh, randomly seeded runs until `S`
//!   seconds have passed, then print the number of cases run. This is the long mode, e.g.
//!   `ENTWURF_FUZZ_SECONDS=600 cargo test --release --test integration -- fuzz_lock --nocapture`.
//!
//! A failing case is shrunk by proptest and reported with the minimal input.

#[path = "../../../fuzz/checks.rs"]
pub mod checks;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

/// Every seed of `fuzz/corpus/<target>/`, sorted by name.
pub fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut seeds: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| {
            let entry = entry.unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
            let bytes = std::fs::read(entry.path())
                .unwrap_or_else(|e| panic!("{}: {e}", entry.path().display()));
            (entry.file_name().to_string_lossy().into_owned(), bytes)
        })
        .collect();
    seeds.sort();
    assert!(!seeds.is_empty(), "no seeds in {}", dir.display());
    seeds
}

fn env_number(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(
        value
            .parse()
            .unwrap_or_else(|e| panic!("{name}={value:?} is not a number: {e}")),
    )
}

/// Runs `check` over `strategy`: `ENTWURF_FUZZ_CASES` cases once, or repeatedly until
/// `ENTWURF_FUZZ_SECONDS` have passed. Returns the number of cases run.
pub fn fuzz<S>(name: &str, strategy: S, check: impl Fn(S::Value)) -> u64
where
    S: Strategy,
    S::Value: std::fmt::Debug,
{
    let cases = env_number("ENTWURF_FUZZ_CASES").unwrap_or(256);
    let seconds = env_number("ENTWURF_FUZZ_SECONDS");
    let run_once = |cases: u64| {
        let config = Config {
            cases: u32::try_from(cases).unwrap_or(u32::MAX),
            failure_persistence: None,
            ..Config::default()
        };
        // TestRunner::new seeds its RNG randomly, so every run explores new inputs.
        let mut runner = TestRunner::new(config);
        let result = runner.run(&strategy, |value| {
            check(value);
            Ok::<(), TestCaseError>(())
        });
        if let Err(e) = result {
            panic!("fuzz {name}: {e}");
        }
    };
    let started = Instant::now();
    let Some(seconds) = seconds else {
        run_once(cases);
        return cases;
    };
    let limit = Duration::from_secs(seconds);
    let chunk = cases.max(10_000);
    let mut total = 0_u64;
    while started.elapsed() < limit {
        run_once(chunk);
        total += chunk;
    }
    let elapsed = started.elapsed();
    eprintln!(
        "fuzz {name}: {total} cases in {:.0} s ({:.0}/s), no failure",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64()
    );
    total
}

/// Random byte-level mutations of `seeds`: flips, inserts, deletions, truncations and
/// splices of another seed — a small structure-aware fuzzer, since the seeds are valid
/// or near-valid inputs.
pub fn mutated(seeds: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    use proptest::prelude::*;
    let n = seeds.len();
    (
        0..n,
        0..n,
        proptest::collection::vec((0_u8..5, any::<usize>(), any::<u8>()), 0..6),
    )
        .prop_map(move |(pick, other, edits)| {
            let mut bytes = seeds[pick].clone();
            for (op, at, byte) in edits {
                let len = bytes.len();
                let i = if len == 0 { 0 } else { at % len };
                match op {
                    0 if len > 0 => bytes[i] ^= byte.max(1),
                    1 => bytes.insert(if len == 0 { 0 } else { at % (len + 1) }, byte),
                    2 if len > 0 => {
                        bytes.remove(i);
                    }
                    3 => bytes.truncate(i),
                    _ => {
                        let donor = &seeds[other];
                        let from = if donor.is_empty() {
                            0
                        } else {
                            at % donor.len()
                        };
                        bytes.splice(i..i, donor[from..].iter().copied().take(64));
                    }
                }
            }
            bytes
        })
}
