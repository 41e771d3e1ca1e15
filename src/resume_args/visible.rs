//! The `visible` variant: the argv of a `pi` resumed in a window the operator can see.
//!
//! It differs from the two background variants in what it leaves out: no
//! `--mode json -p` (the operator drives the session), no prompt (a resume runs no turn),
//! no launch args; and it names the session by its saved file (`--session <absolute
//! file>`) rather than by id. Layout:
//!
//! `--entwurf-control <extension args> --session <file> [--provider <p>] --model <m>`
//!
//! The inputs differ from [`ResumeArgs`](super::ResumeArgs) (a file, no prompt), so the
//! variant has its own builder, [`build_visible_pi_args`], and its own inverse,
//! [`parse_visible_pi_args`], for a stand-in `pi` that checks what it was given.

use std::path::{Path, PathBuf};

use super::ResumeArgvError;

/// Every flag a resume argv places itself. An extension arg that sets one of them, as
/// `--flag` or `--flag=value`, is refused: it could point the resumed `pi` at another
/// session while this gid's lock is held.
pub const VISIBLE_RESERVED_FLAGS: [&str; 8] = [
    "--mode",
    "-p",
    "--no-extensions",
    "--entwurf-control",
    "--session",
    "--session-id",
    "--provider",
    "--model",
];

/// Everything that goes into a visible resume argv, borrowed.
#[derive(Debug, Clone, Copy)]
pub struct VisibleResumeArgs<'a> {
    /// The saved session file; must be absolute (the window's cwd is the session's, not
    /// ours, so a relative path would name another file).
    pub session_file: &'a Path,
    /// Extension args, verbatim, exactly once.
    pub extension_args: &'a [String],
    /// `--provider`, only when set.
    pub provider: Option<&'a str>,
    /// `--model`.
    pub model: &'a str,
}

/// Why a visible argv could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VisibleArgsError {
    /// An extension arg sets a flag the resume argv owns.
    #[error("extension arg {arg:?} sets {flag}, which the resume argv owns")]
    ReservedFlag {
        /// The offending arg, as given.
        arg: String,
        /// The reserved flag it sets.
        flag: &'static str,
    },
    /// The session file is not an absolute path.
    #[error("session file {path:?} is not absolute")]
    RelativeSessionFile {
        /// The path given.
        path: PathBuf,
    },
    /// The session file's path is not UTF-8, so it cannot be passed as a `String` arg.
    #[error("session file {path:?} is not valid utf-8")]
    NonUtf8SessionFile {
        /// The path given.
        path: PathBuf,
    },
}

/// The reserved flag `arg` sets, if any (`--flag` or `--flag=value`).
pub fn reserved_flag(arg: &str) -> Option<&'static str> {
    VISIBLE_RESERVED_FLAGS.into_iter().find(|flag| {
        arg.strip_prefix(flag)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('='))
    })
}

/// Refuses extension args that set a reserved flag, naming the first one.
pub fn check_visible_extension_args(args: &[String]) -> Result<(), VisibleArgsError> {
    match args.iter().find_map(|a| reserved_flag(a).map(|f| (a, f))) {
        Some((arg, flag)) => Err(VisibleArgsError::ReservedFlag {
            arg: arg.clone(),
            flag,
        }),
        None => Ok(()),
    }
}

/// Builds the visible argv (without the program name); see the module docs for the
/// layout. Refuses reserved extension args and a relative session file.
pub fn build_visible_pi_args(a: &VisibleResumeArgs<'_>) -> Result<Vec<String>, VisibleArgsError> {
    check_visible_extension_args(a.extension_args)?;
    if !a.session_file.is_absolute() {
        return Err(VisibleArgsError::RelativeSessionFile {
            path: a.session_file.to_path_buf(),
        });
    }
    let file = a
        .session_file
        .to_str()
        .ok_or_else(|| VisibleArgsError::NonUtf8SessionFile {
            path: a.session_file.to_path_buf(),
        })?;
    let mut argv = vec!["--entwurf-control".to_owned()];
    argv.extend(a.extension_args.iter().cloned());
    argv.extend(["--session".to_owned(), file.to_owned()]);
    if let Some(p) = a.provider {
        argv.extend(["--provider".to_owned(), p.to_owned()]);
    }
    argv.extend(["--model".to_owned(), a.model.to_owned()]);
    Ok(argv)
}

/// A visible argv taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedVisibleArgs {
    /// Between `--entwurf-control` and `--session`, verbatim.
    pub extension_args: Vec<String>,
    /// The value of `--session`.
    pub session_file: String,
    /// The value of `--provider`, when present.
    pub provider: Option<String>,
    /// The value of `--model`.
    pub model: String,
}

/// The inverse of [`build_visible_pi_args`]. Total: never panics. Read from both ends,
/// which are fixed; a reserved flag between them is refused, naming its position.
pub fn parse_visible_pi_args(argv: &[String]) -> Result<ParsedVisibleArgs, ResumeArgvError> {
    let at = |index: usize, expected: &'static str| ResumeArgvError {
        index,
        expected,
        found: argv.get(index).cloned(),
    };
    let is = |index: usize, want: &str| argv.get(index).is_some_and(|a| a == want);
    if !is(0, "--entwurf-control") {
        return Err(at(0, "--entwurf-control"));
    }
    // Shortest: --entwurf-control --session F --model M.
    let len = argv.len();
    if len < 5 {
        return Err(at(len.max(1), "--session <file> --model <model>"));
    }
    if !is(len - 2, "--model") {
        return Err(at(len - 2, "--model (second from last)"));
    }
    let model = argv[len - 1].clone();
    let (provider, session_flag) = if is(len - 4, "--provider") {
        if len < 7 {
            return Err(at(1, "--session <file> before --provider"));
        }
        (Some(argv[len - 3].clone()), len - 6)
    } else {
        (None, len - 4)
    };
    if !is(session_flag, "--session") {
        return Err(at(session_flag, "--session"));
    }
    let extension_args = &argv[1..session_flag];
    if let Some(offset) = extension_args
        .iter()
        .position(|a| reserved_flag(a).is_some())
    {
        return Err(at(
            1 + offset,
            "an extension arg (each resume flag appears once)",
        ));
    }
    Ok(ParsedVisibleArgs {
        extension_args: extension_args.to_vec(),
        session_file: argv[session_flag + 1].clone(),
        provider,
        model,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn visible_argv_has_no_prefix_no_prompt_and_names_the_file() {
        let ext = s(&["-e", "/x/ext.ts"]);
        let args = VisibleResumeArgs {
            session_file: Path::new("/a/sessions/d/s.jsonl"),
            extension_args: &ext,
            provider: Some("anthropic"),
            model: "claude",
        };
        let argv = build_visible_pi_args(&args).expect("builds");
        assert_eq!(
            argv,
            s(&[
                "--entwurf-control",
                "-e",
                "/x/ext.ts",
                "--session",
                "/a/sessions/d/s.jsonl",
                "--provider",
                "anthropic",
                "--model",
                "claude",
            ])
        );
        let parsed = parse_visible_pi_args(&argv).expect("parses");
        assert_eq!(parsed.extension_args, ext);
        assert_eq!(parsed.session_file, "/a/sessions/d/s.jsonl");
        assert_eq!(parsed.provider.as_deref(), Some("anthropic"));
        assert_eq!(parsed.model, "claude");
    }

    #[test]
    fn without_provider_the_inverse_still_fits() {
        let args = VisibleResumeArgs {
            session_file: Path::new("/s.jsonl"),
            extension_args: &[],
            provider: None,
            model: "--provider",
        };
        let argv = build_visible_pi_args(&args).expect("builds");
        let parsed = parse_visible_pi_args(&argv).expect("parses");
        assert_eq!(parsed.provider, None);
        assert_eq!(parsed.model, "--provider");
        assert!(parsed.extension_args.is_empty());
    }

    #[test]
    fn reserved_flags_are_refused_in_both_forms() {
        for arg in [
            "--session",
            "--session=/other.jsonl",
            "--session-id",
            "--model=x",
            "-p",
            "--mode=json",
            "--no-extensions",
            "--entwurf-control",
            "--provider",
        ] {
            let ext = s(&["-e", "x", arg]);
            let err = build_visible_pi_args(&VisibleResumeArgs {
                session_file: Path::new("/s.jsonl"),
                extension_args: &ext,
                provider: None,
                model: "m",
            })
            .expect_err(arg);
            assert!(
                matches!(&err, VisibleArgsError::ReservedFlag { arg: a, .. } if a == arg),
                "{err}"
            );
        }
        // Look-alikes are not reserved.
        for arg in ["--sessions", "--model-dir", "-px", "--approve"] {
            assert_eq!(reserved_flag(arg), None, "{arg}");
        }
    }

    #[test]
    fn a_relative_session_file_is_refused() {
        let err = build_visible_pi_args(&VisibleResumeArgs {
            session_file: Path::new("sessions/s.jsonl"),
            extension_args: &[],
            provider: None,
            model: "m",
        })
        .expect_err("relative");
        assert!(matches!(err, VisibleArgsError::RelativeSessionFile { .. }));
    }

    #[test]
    fn the_inverse_refuses_what_the_builder_never_makes() {
        let err = |v: &[&str]| parse_visible_pi_args(&s(v)).expect_err("refused");
        assert_eq!(err(&[]).index, 0);
        assert_eq!(err(&["--mode", "json"]).index, 0);
        assert_eq!(err(&["--entwurf-control", "--model", "m"]).index, 3);
        let smuggled = err(&[
            "--entwurf-control",
            "--session=/other",
            "--session",
            "/s",
            "--model",
            "m",
        ]);
        assert_eq!(smuggled.index, 1);
        assert_eq!(
            err(&["--entwurf-control", "x", "--sess", "/s", "--model", "m"]).index,
            2
        );
    }
}
