//! Fuzzing the resume argv builder's inverse on the stable toolchain (see
//! `tests/support`): parse(build(x)) == x for arbitrary fields — prompts that look
//! like flags, empty strings, any unicode — and the inverse never panics and gives back
//! exactly what it accepts on arbitrary argvs. The properties live in `fuzz/checks.rs`,
//! shared with the cargo-fuzz target `resume_argv`.

use entwurf_test_support::fuzz::checks::{self, OwnedResumeArgs};
use entwurf_test_support::fuzz::{corpus, fuzz, mutated};
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

#[test]
fn the_inverse_is_total_and_exact_on_any_argv() {
    fuzz(
        "resume_argv/argv",
        proptest::collection::vec(arg(), 0..16),
        |argv| checks::resume_argv_inverse(&argv),
    );
}

#[test]
fn mutated_argvs() {
    let seeds = corpus("resume_argv").into_iter().map(|(_, b)| b).collect();
    fuzz("resume_argv/mutated", mutated(seeds), |bytes| {
        checks::resume_argv(&bytes)
    });
}
