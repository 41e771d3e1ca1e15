//! The inverse of [`build_resume_pi_args`](super::build_resume_pi_args): what a stand-in
//! (or a real) `pi` uses to check the argv it was started with.
//!
//! The argv is read from both ends, because both ends are fixed: the prefix
//! `--mode json -p` and the variant marker at the front; the prompt (always last, even
//! when it looks like a flag), `--model <m>`, an optional `--provider <p>` and
//! `--session-id <gid>` at the back. What lies between is the verbatim *passthrough*:
//! for `v2-control` the launch args followed by the extension args, for `legacy` the
//! extension args. The builder concatenates those two lists, so the inverse cannot split
//! them without being told how many extension args there are; it hands back the
//! concatenation, and [`ParsedResumeArgs::expected`] builds the same shape from a
//! [`ResumeArgs`] for comparison.
//!
//! Strict where the layout is: every reserved flag ([`RESERVED_FLAGS`]) appears exactly
//! once, where the builder puts it. A passthrough arg that the builder's callers could not
//! have added ([`check_added_arg`]: a reserved flag in either form, `--`, or an empty arg)
//! would make a real `pi` see a flag twice, see the other variant's marker or stop reading
//! options early, so it is refused, naming the position.

use super::{ResumeArgs, ResumeVariant, check_added_arg};

/// The flags the resume argv owns (`--session` too, which names a session file in the
/// `visible` layout). None may be added by a caller, alone or as `--flag=value`.
pub const RESERVED_FLAGS: [&str; 8] = [
    "--mode",
    "-p",
    "--no-extensions",
    "--entwurf-control",
    "--session",
    "--session-id",
    "--provider",
    "--model",
];

/// A resume argv taken apart. Equal to [`ParsedResumeArgs::expected`] of the
/// [`ResumeArgs`] it was built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedResumeArgs {
    /// Which variant the marker names.
    pub variant: ResumeVariant,
    /// Between the marker and `--session-id`: launch args (v2-control only) followed by
    /// the extension args, verbatim.
    pub passthrough: Vec<String>,
    /// The value of `--session-id` (not validated as a garden id here).
    pub session_id: String,
    /// The value of `--provider`, when present.
    pub provider: Option<String>,
    /// The value of `--model`.
    pub model: String,
    /// The last argument.
    pub prompt: String,
}

impl ParsedResumeArgs {
    /// What parsing `build_resume_pi_args(args)` gives back: the same fields, with the
    /// launch args (dropped by the `legacy` variant) and the extension args joined.
    pub fn expected(args: &ResumeArgs<'_>) -> Self {
        let mut passthrough = Vec::new();
        if args.variant == ResumeVariant::V2Control {
            passthrough.extend(args.launch_args.iter().cloned());
        }
        passthrough.extend(args.extension_args.iter().cloned());
        Self {
            variant: args.variant,
            passthrough,
            session_id: args.session_id.to_owned(),
            provider: args.provider.map(str::to_owned),
            model: args.model.to_owned(),
            prompt: args.prompt.to_owned(),
        }
    }

    /// The argv these fields stand for (the builder's output for them).
    #[must_use]
    pub fn to_argv(&self) -> Vec<String> {
        super::assemble(
            self.variant,
            self.passthrough.iter(),
            &self.session_id,
            self.provider.as_deref(),
            &self.model,
            &self.prompt,
        )
    }
}

/// Why an argv is not one §9 builds: the first position that does not fit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("resume argv[{index}]: expected {expected}, found {}", found.as_deref().map_or_else(|| "the end of argv".to_owned(), |f| format!("{f:?}")))]
pub struct ResumeArgvError {
    /// 0-based position in the argv (without the program name).
    pub index: usize,
    /// What §9 puts there.
    pub expected: &'static str,
    /// What is there (`None`: the argv is too short).
    pub found: Option<String>,
}

/// Parses an argv (without the program name) as §9 builds it. Total: never panics,
/// whatever the argv. See the module docs for what is accepted.
///
/// # Errors
///
/// [`ResumeArgvError`] naming the first position that does not fit the layout.
pub fn parse_resume_pi_args(argv: &[String]) -> Result<ParsedResumeArgs, ResumeArgvError> {
    let at = |index: usize, expected: &'static str| ResumeArgvError {
        index,
        expected,
        found: argv.get(index).cloned(),
    };
    let is = |index: usize, want: &str| argv.get(index).is_some_and(|a| a == want);

    // Front: --mode json -p <marker>.
    for (index, want) in [(0, "--mode"), (1, "json"), (2, "-p")] {
        if !is(index, want) {
            return Err(at(index, want));
        }
    }
    let variant = match argv.get(3).map(String::as_str) {
        Some("--no-extensions") => ResumeVariant::Legacy,
        Some("--entwurf-control") => ResumeVariant::V2Control,
        _ => return Err(at(3, "--no-extensions or --entwurf-control")),
    };

    // Back: [..., --session-id, <gid>, [--provider, <p>,] --model, <m>, <prompt>].
    // The shortest argv is 4 + 5 = 9 elements; below that the back overlaps the front.
    let len = argv.len();
    if len < 9 {
        return Err(at(
            len.max(4),
            "--session-id <gid> --model <model> <prompt>",
        ));
    }
    let prompt = argv[len - 1].clone();
    if !is(len - 3, "--model") {
        return Err(at(len - 3, "--model (third from last)"));
    }
    let model = argv[len - 2].clone();
    let (provider, session_flag) = if is(len - 5, "--provider") {
        if len < 11 {
            return Err(at(4, "--session-id <gid> before --provider"));
        }
        (Some(argv[len - 4].clone()), len - 7)
    } else {
        (None, len - 5)
    };
    if !is(session_flag, "--session-id") {
        return Err(at(session_flag, "--session-id"));
    }
    let session_id = argv[session_flag + 1].clone();

    let passthrough = &argv[4..session_flag];
    if let Some(offset) = passthrough
        .iter()
        .enumerate()
        .position(|(i, a)| check_added_arg(i, a).is_err())
    {
        return Err(at(
            4 + offset,
            "a launch or extension arg (not a reserved flag, \"--\" or empty)",
        ));
    }
    Ok(ParsedResumeArgs {
        variant,
        passthrough: passthrough.to_vec(),
        session_id,
        provider,
        model,
        prompt,
    })
}
