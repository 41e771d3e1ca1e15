//! Fuzzing the resume argv builder's inverse on the stable toolchain (see
//! `tests/support`): parse(build(x)) == x for arbitrary fields — prompts that look
//! like flags, empty strings, any unicode — and the inverse never panics and gives back
//! exactly what it accepts on arbitrary argvs. The properties live in `fuzz/checks.rs`,
//! shared with the cargo-fuzz target `resume_argv`.

use entwurf_test_support::fuzz::checks::{self, OwnedResumeArgs};
use entwurf_test_support::fuzz::{corpus, fuzz, mutated};
use std::sync::atomic::{AtomicU64, Ordering};

use entwurf_v2_spawn::resume_args::{build_resume_pi_args, parse_resume_pi_args};
use proptest::prelude::*;

/// Strings that are often one of §9's own flags or values, else anything.
fn arg() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => any::<String>(),
        1 => Just(String::new()),
        2 => proptest::sample::select(vec![
            "--mode", "json", "-p", "--no-extensions", "--entwurf-control", "--session-id",
            "--provider", "--model", "--approve", "-e", "--", "-",
        ])
        .prop_map(str::to_owned),
    ]
}

fn args() -> impl Strategy<Value = OwnedResumeArgs> {
    let list = || proptest::collection::vec(arg(), 0..4);
    (
        any::<bool>(),
        arg(),
        list(),
        proptest::option::of(arg()),
        arg(),
        arg(),
        list(),
    )
        .prop_map(
            |(v2, session_id, extension_args, provider, model, prompt, launch_args)| {
                OwnedResumeArgs {
                    v2,
                    session_id,
                    extension_args,
                    provider,
                    model,
                    prompt,
                    launch_args,
                }
            },
        )
}

#[test]
fn the_seed_corpus_holds() {
    for (name, bytes) in corpus("resume_argv") {
        eprintln!("seed {name}");
        checks::resume_argv(&bytes);
    }
}

#[test]
fn parse_inverts_build() {
    fuzz("resume_argv/round_trip", args(), |a| {
        checks::resume_argv_round_trip(&a)
    });
}

/// An argv the builder made, then perhaps changed at one place (an arg dropped,
/// replaced, inserted, or two swapped): near a valid layout, so the parser accepts a
/// good share and its exact half (`to_argv`, rebuild) runs — free-form argvs are
/// essentially never accepted.
fn near_valid_argv() -> impl Strategy<Value = Vec<String>> {
    (
        args(),
        0..5u8,
        any::<prop::sample::Index>(),
        any::<prop::sample::Index>(),
        arg(),
    )
        .prop_map(|(a, mutation, i, j, new)| {
            let mut argv = build_resume_pi_args(&a.view());
            if argv.is_empty() {
                return argv;
            }
            let (i, j) = (i.index(argv.len()), j.index(argv.len()));
            match mutation {
                0 => {}
                1 => drop(argv.remove(i)),
                2 => argv[i] = new,
                3 => argv.insert(i, new),
                _ => argv.swap(i, j),
            }
            argv
        })
}

#[test]
fn the_inverse_is_total_and_exact_on_any_argv() {
    // Counted, so the accept branch provably ran: a test whose exact half never runs
    // passes whatever that half would have said.
    let accepted = AtomicU64::new(0);
    let cases = fuzz(
        "resume_argv/argv",
        prop_oneof![
            1 => proptest::collection::vec(arg(), 0..16),
            3 => near_valid_argv(),
        ],
        |argv| {
            if parse_resume_pi_args(&argv).is_ok() {
                accepted.fetch_add(1, Ordering::Relaxed);
            }
            checks::resume_argv_inverse(&argv);
        },
    );
    let accepted = accepted.into_inner();
    eprintln!("resume_argv/argv: {accepted} of {cases} argvs accepted");
    // About 11% are accepted (28 of 256 typically); 1 in 32 leaves room for chance
    // (at 256 cases: 8, over four standard deviations below the mean) and none for zero.
    assert!(
        accepted * 32 >= cases,
        "only {accepted} of {cases} argvs were accepted: the exact half barely ran"
    );
}

#[test]
fn mutated_argvs() {
    let seeds = corpus("resume_argv").into_iter().map(|(_, b)| b).collect();
    fuzz("resume_argv/mutated", mutated(seeds), |bytes| {
        checks::resume_argv(&bytes)
    });
}
