//! The fuzz properties, shared by the `cargo fuzz` targets (`fuzz/fuzz_targets/*.rs`,
//! nightly + libFuzzer) and the stable proptest runners (`tests/integration/fuzz_*.rs`), so both
//! check exactly the same thing. Each check takes raw bytes, must never panic on any
//! input except to report a broken property, and asserts an oracle that a regression
//! would violate.

#![allow(
    dead_code,
    reason = "included by several test binaries and fuzz targets, each using its own subset"
)]

use std::io::Write as _;
use std::path::{Path, PathBuf};

use entwurf_v2_spawn::GardenId;
use entwurf_v2_spawn::lock::{OWNER, parse_claim};
use entwurf_v2_spawn::production::identity::{
    IdentityError, SessionLine, parse_session_line, resolve_launch_identity,
};
use entwurf_v2_spawn::resume_args::{
    ParsedResumeArgs, PassthroughArgs, ResumeArgs, ResumeVariant, build_resume_pi_args,
    check_added_arg, parse_resume_pi_args,
};

/// The gid every fuzzed lock file and session is named after.
pub const GID: &str = "20260613T000000-aaaaaa";

fn gid() -> GardenId {
    GardenId::parse(GID).unwrap_or_else(|e| panic!("fixed gid: {e}"))
}

// ---------------------------------------------------------------------------------------
// Lock-file parser.

/// `parse_claim` on arbitrary bytes: never panics; whatever it accepts is a §3 claim for
/// the file's gid, framed `{`…`}\n`, valid JSON, and round-trips through
/// `to_json_line` to an equal claim.
pub fn lock_claim(data: &[u8]) {
    let path = Path::new("/locks/20260613T000000-aaaaaa.lock");
    let Ok(claim) = parse_claim(data, &gid(), path) else {
        return;
    };
    assert_eq!(claim.garden_id().as_str(), GID);
    assert_eq!(claim.lock_path(), path);
    assert!(data.first() == Some(&b'{') && data.ends_with(b"}\n"));
    // UTF-8 throughout, and JSON by the grammar. (A lone surrogate escape such as
    // `\udaaa` is grammatical JSON — RFC 8259 §8.2 — and JavaScript's JSON.parse takes
    // it: in a field the claim does not read it is accepted; serde_json's `Value`
    // refuses it, so `Value` is not the oracle here.)
    assert!(
        std::str::from_utf8(data).is_ok(),
        "accepted bytes that are not utf-8"
    );
    assert!(serde_json::from_slice::<serde::de::IgnoredAny>(data).is_ok());
    assert!((1..=i32::MAX as u32).contains(&claim.pid()), "{claim:?}");
    let nonce = claim.nonce();
    assert!(
        nonce.len() == 16
            && nonce
                .bytes()
                .all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')),
        "{claim:?}"
    );
    let at = claim.created_at().as_bytes();
    let shape = b"dddd-dd-ddTdd:dd:dd.dddZ";
    assert!(
        at.len() == shape.len()
            && at.iter().zip(shape).all(|(c, w)| match w {
                b'd' => c.is_ascii_digit(),
                w => c == w,
            }),
        "{claim:?}"
    );
    #[derive(serde::Deserialize)]
    struct OwnerOnly {
        owner: String,
    }
    let owner: OwnerOnly =
        serde_json::from_slice(data).unwrap_or_else(|e| panic!("accepted, owner unreadable: {e}"));
    assert_eq!(owner.owner, OWNER);
    let line = claim.to_json_line();
    let again = parse_claim(line.as_bytes(), &gid(), path)
        .unwrap_or_else(|e| panic!("our own line {line:?} does not parse: {e}"));
    assert_eq!(again, claim);
    assert_eq!(again.to_json_line(), line);
}

// ---------------------------------------------------------------------------------------
// Saved-session header reader.

/// `parse_session_line` on every line of `data`, and `resolve_launch_identity` over
/// `data` as the only session file under `sessions_root`: never panics; a line not
/// starting with `{` is never a header or model change; a resolved identity comes from a
/// file that mentions the gid, has an absolute cwd and a non-empty model that appear in
/// the file; a file that never mentions the gid is `NotFound`.
pub fn session_file(data: &[u8], sessions_root: &Path) {
    let text = String::from_utf8_lossy(data);
    for line in text.split('\n') {
        let parsed = parse_session_line(line);
        if !line.trim_start().starts_with('{') {
            assert_eq!(parsed, SessionLine::Invalid, "{line:?}");
        }
    }

    let dir = sessions_root.join("sessions").join("d");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("mkdir: {e}"));
    let file = dir.join("s.jsonl");
    let mut f = std::fs::File::create(&file).unwrap_or_else(|e| panic!("create: {e}"));
    f.write_all(data).unwrap_or_else(|e| panic!("write: {e}"));
    drop(f);
    let ext = PassthroughArgs::new(["-e"]).unwrap_or_else(|e| panic!("ext: {e}"));
    let result = resolve_launch_identity(sessions_root, &gid(), &ext);
    // The gid can reach the parser raw or JSON-escaped (`\u0030`…): only a file with
    // neither can be known not to name it.
    let may_name_gid =
        data.windows(GID.len()).any(|w| w == GID.as_bytes()) || data.contains(&b'\\');
    match result {
        Ok(identity) => {
            assert!(may_name_gid, "resolved a file that never names the gid");
            assert!(identity.cwd.is_absolute(), "{identity:?}");
            assert!(!identity.model.is_empty(), "{identity:?}");
            assert_eq!(identity.extension_args.as_slice(), ["-e"]);
        }
        Err(IdentityError::NotFound { .. }) => {}
        Err(e) => assert!(
            may_name_gid,
            "a file that never names the gid must be NotFound, got {e}"
        ),
    }
}

/// A scratch agent dir for [`session_file`], reused across calls.
pub fn scratch_agent_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("entwurf-fuzz-session-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("mkdir: {e}"));
    dir
}

// ---------------------------------------------------------------------------------------
// Resume argv: the builder's inverse.

/// Splits `data` into an argv at NUL bytes (lossy UTF-8 per piece).
pub fn argv_of(data: &[u8]) -> Vec<String> {
    data.split(|b| *b == 0)
        .map(|piece| String::from_utf8_lossy(piece).into_owned())
        .collect()
}

/// The inverse on an arbitrary argv: never panics, and whatever it accepts it gives back
/// exactly (`to_argv` reproduces the argv, and so does the builder fed with the parts).
pub fn resume_argv_inverse(argv: &[String]) {
    let Ok(parsed) = parse_resume_pi_args(argv) else {
        return;
    };
    assert_eq!(parsed.to_argv(), argv);
    let rebuilt = build_resume_pi_args(&ResumeArgs {
        variant: parsed.variant,
        session_id: &parsed.session_id,
        extension_args: &parsed.passthrough,
        provider: parsed.provider.as_deref(),
        model: &parsed.model,
        prompt: &parsed.prompt,
        launch_args: &[],
    });
    assert_eq!(rebuilt, argv);
    assert!(PassthroughArgs::new(parsed.passthrough.iter().cloned()).is_ok());
}

/// Owned fields of a [`ResumeArgs`], for generators.
#[derive(Debug, Clone)]
pub struct OwnedResumeArgs {
    /// `true`: v2-control.
    pub v2: bool,
    /// `--session-id`.
    pub session_id: String,
    /// Extension args.
    pub extension_args: Vec<String>,
    /// `--provider`.
    pub provider: Option<String>,
    /// `--model`.
    pub model: String,
    /// The prompt.
    pub prompt: String,
    /// Launch args.
    pub launch_args: Vec<String>,
}

impl OwnedResumeArgs {
    /// Derives the fields from raw bytes: byte 0 picks the variant and whether a
    /// provider is set, byte 1 how many of the remaining pieces are launch args; the rest
    /// splits at NUL into session id, provider, model, prompt, then the arg lists.
    pub fn from_bytes(data: &[u8]) -> Self {
        let control = data.first().copied().unwrap_or(0);
        let split = data.get(1).copied().unwrap_or(0) as usize;
        let mut pieces = argv_of(data.get(2..).unwrap_or(&[])).into_iter();
        let mut next = || pieces.next().unwrap_or_default();
        let session_id = next();
        let provider = next();
        let model = next();
        let prompt = next();
        let rest: Vec<String> = pieces.collect();
        let cut = if rest.is_empty() {
            0
        } else {
            split % (rest.len() + 1)
        };
        Self {
            v2: control & 1 == 1,
            session_id,
            provider: (control & 2 == 2).then_some(provider),
            model,
            prompt,
            launch_args: rest[..cut].to_vec(),
            extension_args: rest[cut..].to_vec(),
        }
    }

    /// Borrowed view for the builder.
    pub fn view(&self) -> ResumeArgs<'_> {
        ResumeArgs {
            variant: if self.v2 {
                ResumeVariant::V2Control
            } else {
                ResumeVariant::Legacy
            },
            session_id: &self.session_id,
            extension_args: &self.extension_args,
            provider: self.provider.as_deref(),
            model: &self.model,
            prompt: &self.prompt,
            launch_args: &self.launch_args,
        }
    }
}

/// parse(build(x)) == x (as [`ParsedResumeArgs::expected`]) whenever every verbatim arg
/// is one a caller may add ([`check_added_arg`]); otherwise the inverse refuses the argv. Prompts that look like
/// flags, empty strings and any unicode included.
pub fn resume_argv_round_trip(args: &OwnedResumeArgs) {
    let view = args.view();
    let argv = build_resume_pi_args(&view);
    let passthrough_ok = args
        .extension_args
        .iter()
        .chain(if args.v2 { &args.launch_args[..] } else { &[] })
        .enumerate()
        .all(|(i, a)| check_added_arg(i, a).is_ok());
    match parse_resume_pi_args(&argv) {
        Ok(parsed) => {
            assert!(passthrough_ok, "accepted a reserved flag in {argv:?}");
            assert_eq!(parsed, ParsedResumeArgs::expected(&view), "{argv:?}");
        }
        Err(e) => assert!(
            !passthrough_ok,
            "refused its own builder's argv {argv:?}: {e}"
        ),
    }
    resume_argv_inverse(&argv);
}

/// Both argv properties on one input.
pub fn resume_argv(data: &[u8]) {
    resume_argv_inverse(&argv_of(data));
    resume_argv_round_trip(&OwnedResumeArgs::from_bytes(data));
}
