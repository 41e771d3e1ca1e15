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

use super::{RefusedArg, ResumeArgvError, check_added_arg};

/// Everything that goes into a visible resume argv, borrowed. Plain, as
/// [`ResumeArgs`](super::ResumeArgs) and for its reason: the fields are the argv.
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
#[non_exhaustive]
pub enum VisibleArgsError {
    /// An extension arg is refused by the added-args rule (a reserved flag in either
    /// form, `--`, or empty): it could point the resumed `pi` at another session.
    #[error("extension arg refused")]
    Refused(#[source] RefusedArg),
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

/// Builds the visible argv (without the program name); see the module docs for the
/// layout. The extension args are checked again by the added-args rule (the builder is
/// public and takes any slice), and the session file must be absolute.
///
/// # Errors
///
/// [`VisibleArgsError`] naming the refused extension arg or the session file.
pub fn build_visible_pi_args(a: &VisibleResumeArgs<'_>) -> Result<Vec<String>, VisibleArgsError> {
    for (index, arg) in a.extension_args.iter().enumerate() {
        check_added_arg(index, arg).map_err(VisibleArgsError::Refused)?;
    }
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
/// which are fixed; an arg between them that the added-args rule refuses is refused here
/// too, naming its position.
///
/// # Errors
///
/// [`ResumeArgvError`] at the first position that does not fit the layout.
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
        .enumerate()
        .position(|(index, a)| check_added_arg(index, a).is_err())
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
    fn refused_extension_args_are_refused_in_both_forms() {
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
            "--",
            "",
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
                matches!(&err, VisibleArgsError::Refused(r) if r.arg() == arg && r.index() == 2),
                "{err}"
            );
        }
        // Look-alikes are not refused.
        for arg in ["--sessions", "--model-dir", "-px", "--approve"] {
            let ext = s(&[arg]);
            let built = build_visible_pi_args(&VisibleResumeArgs {
                session_file: Path::new("/s.jsonl"),
                extension_args: &ext,
                provider: None,
                model: "m",
            });
            assert!(built.is_ok(), "{arg}");
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

    #[test]
    fn the_shortest_layouts_parse_and_anything_shorter_is_refused_at_its_end() {
        let minimal = s(&["--entwurf-control", "--session", "/s", "--model", "m"]);
        let parsed = parse_visible_pi_args(&minimal).expect("the shortest argv");
        assert_eq!(
            (parsed.session_file.as_str(), parsed.model.as_str()),
            ("/s", "m")
        );
        let with_provider = s(&[
            "--entwurf-control",
            "--session",
            "/s",
            "--provider",
            "p",
            "--model",
            "m",
        ]);
        let parsed = parse_visible_pi_args(&with_provider).expect("the shortest with provider");
        assert_eq!(parsed.provider.as_deref(), Some("p"));
        for len in 1..minimal.len() {
            let err = parse_visible_pi_args(&minimal[..len]).expect_err("too short");
            assert_eq!((err.index, err.found), (len, None), "{len}");
        }
    }

    #[test]
    fn each_refusal_names_its_position() {
        let at = |v: &[&str]| {
            let err = parse_visible_pi_args(&s(v)).expect_err("refused");
            (err.index, err.found)
        };
        let some = |x: &str| Some(x.to_owned());
        // --provider where only the session can be: too short for both.
        assert_eq!(
            at(&["--entwurf-control", "--provider", "p", "--model", "m"]),
            (1, some("--provider"))
        );
        assert_eq!(
            at(&["--entwurf-control", "x", "--provider", "p", "--model", "m"]),
            (1, some("x"))
        );
        // --model not second from last.
        assert_eq!(
            at(&["--entwurf-control", "--session", "/s", "m", "--model"]),
            (3, some("m"))
        );
        assert_eq!(
            at(&[
                "--entwurf-control",
                "-e",
                "x",
                "--session",
                "/s",
                "--model",
                "m",
                "y"
            ]),
            (6, some("m"))
        );
        // No --session before --provider.
        assert_eq!(
            at(&[
                "--entwurf-control",
                "-e",
                "x",
                "y",
                "--provider",
                "p",
                "--model",
                "m"
            ]),
            (2, some("x"))
        );
        // A refused extension arg, named by its place in the argv.
        assert_eq!(
            at(&[
                "--entwurf-control",
                "-e",
                "x",
                "--",
                "--session",
                "/s",
                "--model",
                "m"
            ]),
            (3, some("--"))
        );
        assert_eq!(
            at(&[
                "--entwurf-control",
                "-e",
                "x",
                "y",
                "z",
                "",
                "--session",
                "/s",
                "--model",
                "m"
            ]),
            (5, some(""))
        );
    }
}
