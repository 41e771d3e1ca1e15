//! Property: both argv parsers are total and exact over argvs made of their own tokens.
//! The builders only make well-formed argvs, so the round-trip properties never meet
//! the short, truncated and misplaced shapes where index arithmetic can underflow or be
//! off by one. Here the argvs are drawn from the parsers' own vocabulary (every length
//! from 0 up), and each answer is compared with the layout written out independently:
//! accepted exactly when it fits, and otherwise an error that names a position inside
//! (or just past) the argv and what sits there.

use entwurf_v2_spawn::resume_args::{
    ResumeArgvError, ResumeVariant, parse_resume_pi_args, parse_visible_pi_args,
};
use proptest::prelude::*;

/// The parsers' vocabulary, plus an ordinary value and the refused `--` and empty arg.
fn token() -> impl Strategy<Value = String> {
    proptest::sample::select(vec![
        "--entwurf-control",
        "--no-extensions",
        "--mode",
        "json",
        "-p",
        "--session",
        "--session-id",
        "--provider",
        "--model",
        "-e",
        "value",
        "--",
        "",
    ])
    .prop_map(str::to_owned)
}

/// Mostly a well-formed layout with tokens spliced in or cut off, else anything.
fn argv(
    front: &'static [&'static str],
    tail: &'static [&'static str],
) -> impl Strategy<Value = Vec<String>> {
    let layout = (
        proptest::collection::vec(token(), 0..4),
        any::<bool>(),
        0..3_usize,
    )
        .prop_map(move |(middle, provider, cut)| {
            let mut v: Vec<String> = front.iter().map(|s| (*s).to_owned()).collect();
            v.extend(middle);
            for (i, t) in tail.iter().enumerate() {
                // The tail is [flag, value, (--provider, value,) --model, value, …].
                if i == 2 && provider {
                    v.extend(["--provider".to_owned(), "prov".to_owned()]);
                }
                v.push((*t).to_owned());
            }
            v.truncate(v.len().saturating_sub(cut));
            v
        });
    prop_oneof![
        3 => layout,
        1 => proptest::collection::vec(token(), 0..12),
    ]
}

fn refused(arg: &str) -> bool {
    let name = arg.split_once('=').map_or(arg, |(name, _)| name);
    arg.is_empty() || arg == "--" || entwurf_v2_spawn::resume_args::RESERVED_FLAGS.contains(&name)
}

/// The error names a position within the argv or one past its end, and what is there.
fn well_placed(err: &ResumeArgvError, argv: &[String]) -> Result<(), TestCaseError> {
    prop_assert!(err.index <= argv.len().max(1), "{err} for {argv:?}");
    prop_assert_eq!(
        err.found.as_ref(),
        argv.get(err.index),
        "{} for {:?}",
        err,
        argv
    );
    Ok(())
}

/// `--entwurf-control EXT… --session F [--provider P] --model M`, written out.
fn visible_layout(a: &[&str]) -> Option<(Vec<String>, String, Option<String>, String)> {
    let n = a.len();
    if a.first() != Some(&"--entwurf-control") || n < 5 || a[n - 2] != "--model" {
        return None;
    }
    let (session_at, provider) = match a[n - 4] {
        "--provider" if n >= 7 => (n - 6, Some(a[n - 3].to_owned())),
        "--provider" => return None,
        _ => (n - 4, None),
    };
    if a[session_at] != "--session" || a[1..session_at].iter().any(|x| refused(x)) {
        return None;
    }
    let ext = a[1..session_at].iter().map(|s| (*s).to_owned()).collect();
    Some((
        ext,
        a[session_at + 1].to_owned(),
        provider,
        a[n - 1].to_owned(),
    ))
}

/// `--mode json -p V PASS… --session-id G [--provider P] --model M PROMPT`, written out.
fn resume_layout(a: &[&str]) -> Option<(ResumeVariant, Vec<String>, String, Option<String>)> {
    let n = a.len();
    if a.get(..3) != Some(&["--mode", "json", "-p"][..]) {
        return None;
    }
    let variant = match a.get(3) {
        Some(&"--no-extensions") => ResumeVariant::Legacy,
        Some(&"--entwurf-control") => ResumeVariant::V2Control,
        _ => return None,
    };
    if n < 9 || a[n - 3] != "--model" {
        return None;
    }
    let (session_at, provider) = match a[n - 5] {
        "--provider" if n >= 11 => (n - 7, Some(a[n - 4].to_owned())),
        "--provider" => return None,
        _ => (n - 5, None),
    };
    if a[session_at] != "--session-id" || a[4..session_at].iter().any(|x| refused(x)) {
        return None;
    }
    let pass = a[4..session_at].iter().map(|s| (*s).to_owned()).collect();
    Some((variant, pass, a[session_at + 1].to_owned(), provider))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn the_visible_parser_accepts_exactly_its_layout(
        argv in argv(&["--entwurf-control"], &["--session", "/s.jsonl", "--model", "m"]),
    ) {
        let words: Vec<&str> = argv.iter().map(String::as_str).collect();
        match (parse_visible_pi_args(&argv), visible_layout(&words)) {
            (Ok(p), Some((ext, session, provider, model))) => {
                prop_assert_eq!(p.extension_args, ext);
                prop_assert_eq!(p.session_file, session);
                prop_assert_eq!(p.provider, provider);
                prop_assert_eq!(p.model, model);
            }
            (Err(e), None) => well_placed(&e, &argv)?,
            (got, want) => prop_assert!(false, "{argv:?}: parsed {got:?}, layout says {want:?}"),
        }
    }

    #[test]
    fn the_resume_parser_accepts_exactly_its_layout(
        argv in argv(
            &["--mode", "json", "-p", "--entwurf-control"],
            &["--session-id", "g", "--model", "m", "prompt"],
        ),
    ) {
        let words: Vec<&str> = argv.iter().map(String::as_str).collect();
        match (parse_resume_pi_args(&argv), resume_layout(&words)) {
            (Ok(p), Some((variant, pass, session, provider))) => {
                prop_assert_eq!(p.variant, variant);
                prop_assert_eq!(p.passthrough, pass);
                prop_assert_eq!(p.session_id, session);
                prop_assert_eq!(p.provider, provider);
                prop_assert_eq!(&p.model, &argv[argv.len() - 2]);
                prop_assert_eq!(&p.prompt, &argv[argv.len() - 1]);
            }
            (Err(e), None) => well_placed(&e, &argv)?,
            (got, want) => prop_assert!(false, "{argv:?}: parsed {got:?}, layout says {want:?}"),
        }
    }
}
