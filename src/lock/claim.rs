//! The on-disk claim: one JSON object and a newline, byte-compatible with the TypeScript
//! dispatcher that shares the lock directory.
//!
//! Writing is exact (key order, escaping, trailing newline). Reading is strict about
//! everything that decides ownership and liveness — the gid must match the file name,
//! every field must be present with its type, `pid` must be a plain positive pid,
//! `createdAt` and `nonce` must have their exact shapes and `owner` must be
//! `entwurf_v2` — and tolerant only where tolerance cannot change a decision:
//!
//! - **unknown extra fields are ignored**, so a future TypeScript version may add
//!   diagnostics without turning every lock it writes into an "unreadable" conflict;
//! - key order and insignificant JSON whitespace are not enforced on input (JSON objects
//!   are unordered), but duplicate keys are rejected;
//! - the framing is: the first byte is `{`, the last two are `}\n`. A file missing its
//!   newline is treated as possibly mid-write, hence unreadable.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::garden_id::GardenId;

/// The only `owner` value this crate writes and accepts.
pub const OWNER: &str = "entwurf_v2";

/// A lock claim: who holds `<gid>.lock`, since when, and the nonce that proves it.
///
/// The nonce is what [`release`](super::release) compares, so a holder can never remove
/// a successor's lock even if pids are reused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockClaim {
    pub(super) garden_id: GardenId,
    pub(super) pid: u32,
    pub(super) hostname: String,
    pub(super) created_at: String,
    pub(super) nonce: String,
    /// Where the file actually is (used for release).
    pub(super) lock_path: PathBuf,
    /// The `lockPath` text stored in the file (informational; usually the same path).
    pub(super) recorded_lock_path: String,
}

impl LockClaim {
    /// The gid the claim is for (always equal to the gid in the file's name).
    #[must_use]
    pub fn garden_id(&self) -> &GardenId {
        &self.garden_id
    }

    /// The holder's pid, checked with `kill(pid, 0)` to decide staleness.
    #[must_use]
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The holder's hostname: a pid is only checked when this equals ours.
    #[must_use]
    pub fn hostname(&self) -> &str {
        &self.hostname
    }

    /// When the claim was made: UTC ISO-8601 with milliseconds and `Z`, for people.
    #[must_use]
    pub fn created_at(&self) -> &str {
        &self.created_at
    }

    /// 16 lowercase hex chars from the OS CSPRNG: the proof of ownership on release.
    #[must_use]
    pub fn nonce(&self) -> &str {
        &self.nonce
    }

    /// Where the lock file lives, so release needs nothing but the claim.
    #[must_use]
    pub fn lock_path(&self) -> &Path {
        &self.lock_path
    }

    /// The `lockPath` text recorded inside the file (may differ from [`Self::lock_path`]
    /// when the writer saw the directory under another name).
    #[must_use]
    pub fn recorded_lock_path(&self) -> &str {
        &self.recorded_lock_path
    }

    /// The exact bytes written to disk: the JSON object with keys in the TypeScript
    /// order and a trailing newline. Infallible, so a claim can always be shown.
    #[must_use]
    pub fn to_json_line(&self) -> String {
        let wire = Wire {
            garden_id: self.garden_id.as_str(),
            pid: self.pid,
            hostname: &self.hostname,
            created_at: &self.created_at,
            nonce: &self.nonce,
            owner: OWNER,
            lock_path: &self.recorded_lock_path,
        };
        // serde_json escapes strings exactly like JSON.stringify (control characters, `"`
        // and `\`; nothing else) and writes fields in declaration order, the TypeScript
        // key order. A struct of strings and an integer has nothing it could refuse.
        let mut line = serde_json::to_string(&wire)
            .unwrap_or_else(|e| unreachable!("a claim always serialises: {e}"));
        line.push('\n');
        line
    }
}

/// Why the bytes of a lock file are not a claim. An unreadable lock is always a
/// conflict and is never deleted automatically: it may be another acquirer mid-write.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UnreadableClaim {
    /// Zero bytes: typically an acquirer between create and write.
    #[error("empty file")]
    Empty,
    /// A directory, fifo, symlink or other non-regular file sits at the lock path.
    #[error("not a regular file")]
    NotRegularFile,
    /// Far larger than any claim; not read further.
    #[error("larger than {limit} bytes")]
    TooLarge {
        /// The size limit, in bytes.
        limit: usize,
    },
    /// Not `{`…`}\n`: truncated, padded, or several lines.
    #[error("not one json object followed by a newline")]
    Framing,
    /// The object is not valid JSON, or a field is missing, duplicated or mistyped.
    #[error("invalid claim json")]
    Json(#[source] serde_json::Error),
    /// `gardenId` is not a garden id at all.
    #[error("gardenId {found:?} is not a garden id")]
    InvalidGardenId {
        /// The value found (clipped).
        found: String,
    },
    /// `gardenId` names another gid than the file does.
    #[error("gardenId {found} does not match the file name ({expected})")]
    GardenIdMismatch {
        /// The gid in the file.
        found: GardenId,
        /// The gid the file is named after.
        expected: GardenId,
    },
    /// `pid` is 0 or beyond `i32::MAX`: `kill` would address a process group.
    #[error("pid {pid} is not a single process id")]
    InvalidPid {
        /// The value found.
        pid: u32,
    },
    /// `createdAt` is not `YYYY-MM-DDTHH:MM:SS.mmmZ` or not a real instant.
    #[error("createdAt {found:?} is not utc iso-8601 with milliseconds")]
    InvalidCreatedAt {
        /// The value found (clipped).
        found: String,
    },
    /// `nonce` is not 16 lowercase hex characters.
    #[error("nonce {found:?} is not 16 lowercase hex characters")]
    InvalidNonce {
        /// The value found (clipped).
        found: String,
    },
    /// `owner` is not `entwurf_v2`: some other tool's lock.
    #[error("owner {found:?} is not entwurf_v2")]
    ForeignOwner {
        /// The value found (clipped).
        found: String,
    },
}

/// The claim as the file holds it, keys in the TypeScript order: borrowed (`&str`) to
/// write, owned (`String`) when read.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Wire<S> {
    garden_id: S,
    pid: u32,
    hostname: S,
    created_at: S,
    nonce: S,
    owner: S,
    lock_path: S,
}

/// Parses the bytes of `<expected>.lock` found at `path`.
///
/// Never panics, whatever the bytes. The returned claim's [`LockClaim::lock_path`] is
/// `path`; the text stored in the file is kept as [`LockClaim::recorded_lock_path`].
///
/// # Errors
///
/// [`UnreadableClaim`] when the bytes are not one claim for `expected` in the shared
/// format (empty, not JSON, a missing or mistyped field, another gid).
pub fn parse_claim(
    bytes: &[u8],
    expected: &GardenId,
    path: &Path,
) -> Result<LockClaim, UnreadableClaim> {
    if bytes.is_empty() {
        return Err(UnreadableClaim::Empty);
    }
    if bytes.first() != Some(&b'{') || !bytes.ends_with(b"}\n") {
        return Err(UnreadableClaim::Framing);
    }
    // JSON is UTF-8 throughout. serde_json validates the strings it keeps but not the
    // ones it skips, so a claim with invalid bytes in an unknown field would otherwise be
    // accepted: check the whole line first (found by fuzzing).
    let text = std::str::from_utf8(bytes).map_err(|e| {
        UnreadableClaim::Json(serde::de::Error::custom(format_args!(
            "not utf-8 at byte {}",
            e.valid_up_to()
        )))
    })?;
    let wire: Wire<String> = serde_json::from_str(text).map_err(UnreadableClaim::Json)?;
    let garden_id =
        GardenId::parse(&wire.garden_id).map_err(|_| UnreadableClaim::InvalidGardenId {
            found: clip(&wire.garden_id),
        })?;
    if &garden_id != expected {
        return Err(UnreadableClaim::GardenIdMismatch {
            found: garden_id,
            expected: expected.clone(),
        });
    }
    if !is_single_pid(wire.pid) {
        return Err(UnreadableClaim::InvalidPid { pid: wire.pid });
    }
    if !is_created_at(&wire.created_at) {
        return Err(UnreadableClaim::InvalidCreatedAt {
            found: clip(&wire.created_at),
        });
    }
    if !is_nonce(&wire.nonce) {
        return Err(UnreadableClaim::InvalidNonce {
            found: clip(&wire.nonce),
        });
    }
    if wire.owner != OWNER {
        return Err(UnreadableClaim::ForeignOwner {
            found: clip(&wire.owner),
        });
    }
    Ok(LockClaim {
        garden_id,
        pid: wire.pid,
        hostname: wire.hostname,
        created_at: wire.created_at,
        nonce: wire.nonce,
        lock_path: path.to_path_buf(),
        recorded_lock_path: wire.lock_path,
    })
}

/// 1..=i32::MAX: `kill(0, …)` and negative pids address process groups.
pub(super) fn is_single_pid(pid: u32) -> bool {
    pid != 0 && i32::try_from(pid).is_ok()
}

/// Exactly `YYYY-MM-DDTHH:MM:SS.mmmZ`, and a real calendar instant.
pub(super) fn is_created_at(s: &str) -> bool {
    const SHAPE: &[u8; 24] = b"dddd-dd-ddTdd:dd:dd.dddZ";
    let b = s.as_bytes();
    b.len() == SHAPE.len()
        && b.iter().zip(SHAPE).all(|(c, want)| match want {
            b'd' => c.is_ascii_digit(),
            other => c == other,
        })
        && humantime::parse_rfc3339(s).is_ok()
}

/// Exactly 16 lowercase hex characters.
pub(super) fn is_nonce(s: &str) -> bool {
    s.len() == 16 && s.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}

/// Formats `t` as `createdAt` does, or `None` outside 1970..=9999 (where humantime
/// would panic or fail).
pub(super) fn format_instant(t: SystemTime) -> Option<String> {
    let since = t.duration_since(SystemTime::UNIX_EPOCH).ok()?;
    if since.as_secs() > crate::garden_id::LAST_SECOND_OF_9999 {
        return None;
    }
    let mut out = String::new();
    write!(out, "{}", humantime::format_rfc3339_millis(t)).ok()?;
    Some(out)
}

/// 16 lowercase hex characters from the OS CSPRNG.
pub(super) fn fresh_nonce() -> Result<String, getrandom::Error> {
    let mut bytes = [0_u8; 8];
    getrandom::fill(&mut bytes)?;
    Ok(bytes.iter().fold(String::with_capacity(16), |mut s, b| {
        // Writing to a String cannot fail.
        let _ = write!(s, "{b:02x}");
        s
    }))
}

/// Keeps error values short: a hostile or corrupt file must not produce a 64 KiB message.
fn clip(s: &str) -> String {
    const MAX: usize = 64;
    match s.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TS_LINE: &str = "{\"gardenId\":\"20260613T000000-aaaaaa\",\"pid\":4242,\"hostname\":\"nuc\",\"createdAt\":\"2026-06-13T03:55:45.123Z\",\"nonce\":\"9f2c4e01a7b3d855\",\"owner\":\"entwurf_v2\",\"lockPath\":\"/home/u/.pi/entwurf-v2-locks/20260613T000000-aaaaaa.lock\"}\n";

    fn gid() -> GardenId {
        GardenId::parse("20260613T000000-aaaaaa").expect("gid")
    }

    #[test]
    fn invalid_utf8_in_an_unknown_field_is_unreadable() {
        // Found by the lock_claim fuzz target: serde_json skips unknown fields without
        // validating their bytes.
        let mut bytes = TS_LINE.as_bytes().to_vec();
        let at = bytes.len() - 2;
        bytes.splice(at..at, b",\"x\":\"\xc6:\"".iter().copied());
        let err = parse_claim(&bytes, &gid(), Path::new("/l/x.lock")).expect_err("not utf-8");
        assert!(matches!(err, UnreadableClaim::Json(_)), "{err:?}");
        assert!(err.to_string().contains("invalid claim json"), "{err}");
    }

    fn path() -> PathBuf {
        PathBuf::from("/home/u/.pi/entwurf-v2-locks/20260613T000000-aaaaaa.lock")
    }

    #[test]
    fn the_typescript_line_round_trips_byte_for_byte() {
        let claim = parse_claim(TS_LINE.as_bytes(), &gid(), &path()).expect("parse");
        assert_eq!(claim.pid(), 4242);
        assert_eq!(claim.hostname(), "nuc");
        assert_eq!(claim.created_at(), "2026-06-13T03:55:45.123Z");
        assert_eq!(claim.nonce(), "9f2c4e01a7b3d855");
        assert_eq!(claim.lock_path(), path());
        assert_eq!(claim.to_json_line(), TS_LINE);
    }

    #[test]
    fn escaping_matches_json_stringify() {
        let mut claim = parse_claim(TS_LINE.as_bytes(), &gid(), &path()).expect("parse");
        claim.hostname = "a\"b\\c\nd\u{1f}é/\u{7f}".to_owned();
        let line = claim.to_json_line();
        // What JSON.stringify("a\"b\\c\nd\x1fé/\x7f") produces.
        assert!(line.contains(r#""hostname":"a\"b\\c\nd\u001fé/"#), "{line}");
        assert_eq!(
            parse_claim(line.as_bytes(), &gid(), &path()).expect("reparse"),
            claim
        );
    }

    #[test]
    fn extra_fields_are_tolerated_but_duplicates_are_not() {
        let extra = TS_LINE.replace("\"owner\"", "\"sessionId\":\"x\",\"owner\"");
        assert!(parse_claim(extra.as_bytes(), &gid(), &path()).is_ok());
        let dup = TS_LINE.replace("\"owner\"", "\"pid\":1,\"owner\"");
        assert!(matches!(
            parse_claim(dup.as_bytes(), &gid(), &path()),
            Err(UnreadableClaim::Json(_))
        ));
    }

    #[test]
    fn each_field_is_checked() {
        let cases: &[(&str, &str)] = &[
            ("\"pid\":4242", "\"pid\":0"),
            ("\"pid\":4242", "\"pid\":2147483648"),
            ("\"pid\":4242", "\"pid\":-1"),
            ("\"pid\":4242", "\"pid\":4242.0"),
            ("\"pid\":4242", "\"pid\":\"4242\""),
            ("\"hostname\":\"nuc\"", "\"hostname\":null"),
            ("45.123Z", "45.12Z"),
            ("45.123Z", "45.123+00:00"),
            ("2026-06-13", "2026-13-13"),
            ("9f2c4e01a7b3d855", "9F2C4E01A7B3D855"),
            ("9f2c4e01a7b3d855", "9f2c4e01a7b3d85"),
            ("entwurf_v2", "entwurf_v1"),
            (
                "\"gardenId\":\"20260613T000000-aaaaaa\"",
                "\"gardenId\":\"20260613T000000-bbbbbb\"",
            ),
            (
                "\"gardenId\":\"20260613T000000-aaaaaa\"",
                "\"gardenId\":\"../x\"",
            ),
            (",\"lockPath\"", ",\"lockpath\""),
            ("}\n", "}"),
            ("}\n", "}\n\n"),
            ("{\"gardenId\"", " {\"gardenId\""),
        ];
        for (from, to) in cases {
            let bad = TS_LINE.replacen(from, to, 1);
            assert_ne!(bad, TS_LINE, "{from} not found");
            assert!(
                parse_claim(bad.as_bytes(), &gid(), &path()).is_err(),
                "accepted {bad}"
            );
        }
        assert!(matches!(
            parse_claim(b"", &gid(), &path()),
            Err(UnreadableClaim::Empty)
        ));
    }

    #[test]
    fn values_in_errors_are_clipped() {
        let long = "x".repeat(10_000);
        let bad = TS_LINE.replace("entwurf_v2", &long);
        let err = parse_claim(bad.as_bytes(), &gid(), &path()).expect_err("foreign owner");
        assert!(err.to_string().len() < 200, "{err}");
    }

    #[test]
    fn instants_format_like_created_at_and_never_panic() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(1_781_322_945_123);
        let s = format_instant(t).expect("in range");
        assert_eq!(s, "2026-06-13T03:55:45.123Z");
        assert!(is_created_at(&s));
        assert_eq!(
            format_instant(SystemTime::UNIX_EPOCH - std::time::Duration::from_secs(1)),
            None
        );
        assert_eq!(
            format_instant(
                SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(253_402_300_800)
            ),
            None
        );
    }

    #[test]
    fn nonces_are_fresh_lowercase_hex() {
        let a = fresh_nonce().expect("nonce");
        let b = fresh_nonce().expect("nonce");
        assert!(is_nonce(&a) && is_nonce(&b), "{a} {b}");
        assert_ne!(a, b);
    }
}
