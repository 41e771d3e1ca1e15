//! The argv a resumed `pi` is started with (docs/design.md §9; section numbers below
//! refer to that document).
//!
//! The two background variants share one prefix and one suffix; only the middle
//! differs. A third, `visible`, for a window the operator sees, has its own builder
//! ([`build_visible_pi_args`]).
//!
//! Keeping the builders pure lets the stand-in `pi` of the live gate check its own argv
//! against them; [`parse_resume_pi_args`] is the inverse, for a `pi` that checks the argv
//! it got.

mod parse;
mod passthrough;
mod visible;

pub use parse::{ParsedResumeArgs, RESERVED_FLAGS, ResumeArgvError, parse_resume_pi_args};
pub use passthrough::{PassthroughArgs, RefusedArg, check_added_arg};
pub use visible::{
    ParsedVisibleArgs, VisibleArgsError, VisibleResumeArgs, build_visible_pi_args,
    parse_visible_pi_args,
};

/// Which kind of process is resumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResumeVariant {
    /// A one-shot worker: extensions off, no control socket, launch args ignored.
    Legacy,
    /// A resident citizen: `--entwurf-control`, then the launch args verbatim.
    V2Control,
}

/// Everything that goes into a resume argv, borrowed.
///
/// A plain struct on purpose, unlike the options: its fields are the argv's grammar
/// (docs/design.md §9) one for one, so a new field is a new argv, which every caller
/// (and the stand-in `pi` that parses it) must see at compile time.
#[derive(Debug, Clone, Copy)]
pub struct ResumeArgs<'a> {
    /// Which variant.
    pub variant: ResumeVariant,
    /// The session (garden id) being resumed.
    pub session_id: &'a str,
    /// Extension args, passed verbatim exactly once.
    pub extension_args: &'a [String],
    /// `--provider`, only when set.
    pub provider: Option<&'a str>,
    /// `--model`.
    pub model: &'a str,
    /// The prompt, always last.
    pub prompt: &'a str,
    /// Extra args for the `v2-control` variant (e.g. `--approve`).
    pub launch_args: &'a [String],
}

/// Builds the argv (without the program name):
/// `--mode json -p`, the variant's middle, extension args, `--session-id <gid>`,
/// `[--provider <p>]`, `--model <m>`, prompt.
///
/// Pure and unchecked: the args it is given are placed verbatim. The library only ever
/// hands it lists that went through [`PassthroughArgs`] (the plan's launch args, the
/// options' extension args); a caller building an argv by hand should do the same, or
/// check the result with [`parse_resume_pi_args`], which refuses what they refuse.
#[must_use]
pub fn build_resume_pi_args(a: &ResumeArgs<'_>) -> Vec<String> {
    let launch = match a.variant {
        ResumeVariant::Legacy => &[][..],
        ResumeVariant::V2Control => a.launch_args,
    };
    assemble(
        a.variant,
        launch.iter().chain(a.extension_args),
        a.session_id,
        a.provider,
        a.model,
        a.prompt,
    )
}

impl ResumeVariant {
    /// The flag that marks the variant right after the prefix.
    #[must_use]
    pub fn marker(self) -> &'static str {
        match self {
            Self::Legacy => "--no-extensions",
            Self::V2Control => "--entwurf-control",
        }
    }
}

/// The one place §9's layout is written down: prefix, marker, the verbatim passthrough,
/// then the fixed suffix. The builder and [`ParsedResumeArgs::to_argv`] both use it.
fn assemble<'a>(
    variant: ResumeVariant,
    passthrough: impl Iterator<Item = &'a String>,
    session_id: &str,
    provider: Option<&str>,
    model: &str,
    prompt: &str,
) -> Vec<String> {
    let mut argv: Vec<String> = vec!["--mode".into(), "json".into(), "-p".into()];
    argv.push(variant.marker().into());
    argv.extend(passthrough.cloned());
    argv.extend(["--session-id".into(), session_id.to_owned()]);
    if let Some(p) = provider {
        argv.extend(["--provider".into(), p.to_owned()]);
    }
    argv.extend(["--model".into(), model.to_owned(), prompt.to_owned()]);
    argv
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn v2_control_argv() {
        let ext = s(&["-e", "/x/ext.ts"]);
        let launch = s(&["--approve"]);
        let argv = build_resume_pi_args(&ResumeArgs {
            variant: ResumeVariant::V2Control,
            session_id: "20260613T000000-aaaaaa",
            extension_args: &ext,
            provider: Some("anthropic"),
            model: "claude",
            prompt: "wake up",
            launch_args: &launch,
        });
        assert_eq!(
            argv,
            s(&[
                "--mode",
                "json",
                "-p",
                "--entwurf-control",
                "--approve",
                "-e",
                "/x/ext.ts",
                "--session-id",
                "20260613T000000-aaaaaa",
                "--provider",
                "anthropic",
                "--model",
                "claude",
                "wake up"
            ])
        );
    }

    #[test]
    fn legacy_argv_ignores_launch_args_and_omits_missing_provider() {
        let launch = s(&["--approve"]);
        let argv = build_resume_pi_args(&ResumeArgs {
            variant: ResumeVariant::Legacy,
            session_id: "20260613T000000-aaaaaa",
            extension_args: &[],
            provider: None,
            model: "m",
            prompt: "--looks-like-a-flag",
            launch_args: &launch,
        });
        assert_eq!(
            argv,
            s(&[
                "--mode",
                "json",
                "-p",
                "--no-extensions",
                "--session-id",
                "20260613T000000-aaaaaa",
                "--model",
                "m",
                "--looks-like-a-flag"
            ])
        );
        assert!(!argv.contains(&"--entwurf-control".to_string()));
    }

    #[test]
    fn the_inverse_takes_both_variants_apart() {
        let ext = s(&["-e", "/x/ext.ts"]);
        let launch = s(&["--approve"]);
        for (variant, provider, prompt) in [
            (ResumeVariant::V2Control, Some("anthropic"), "wake up"),
            (ResumeVariant::Legacy, None, "--provider"),
            (ResumeVariant::V2Control, None, ""),
        ] {
            let args = ResumeArgs {
                variant,
                session_id: "20260613T000000-aaaaaa",
                extension_args: &ext,
                provider,
                model: "m",
                prompt,
                launch_args: &launch,
            };
            let argv = build_resume_pi_args(&args);
            let parsed = parse_resume_pi_args(&argv).expect("parses");
            assert_eq!(parsed, ParsedResumeArgs::expected(&args));
            assert_eq!(parsed.to_argv(), argv);
        }
    }

    #[test]
    fn the_inverse_names_the_first_position_that_does_not_fit() {
        let err = |v: &[&str]| parse_resume_pi_args(&s(v)).expect_err("refused");
        assert_eq!(err(&[]).index, 0);
        assert_eq!(err(&["--mode", "json", "-p", "--extensions"]).index, 3);
        let short = err(&[
            "--mode",
            "json",
            "-p",
            "--no-extensions",
            "--model",
            "m",
            "x",
        ]);
        assert_eq!((short.index, short.found), (7, None));
        let twice = err(&[
            "--mode",
            "json",
            "-p",
            "--entwurf-control",
            "--no-extensions",
            "--session-id",
            "g",
            "--model",
            "m",
            "x",
        ]);
        assert_eq!(twice.index, 4);
        assert!(twice.to_string().contains("\"--no-extensions\""), "{twice}");
        let no_session = err(&[
            "--mode",
            "json",
            "-p",
            "--entwurf-control",
            "-e",
            "x",
            "--model",
            "m",
            "x",
        ]);
        assert_eq!(no_session.index, 4);
    }
}
