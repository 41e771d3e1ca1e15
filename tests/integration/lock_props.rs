//! Property tests for the lock claim parser: it never panics, it accepts every
//! §3-shaped claim (and round-trips it byte for byte), and it rejects a claim with a
//! missing, mistyped or malformed field.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use entwurf_v2_spawn::GardenId;
use entwurf_v2_spawn::lock::parse_claim;
use proptest::prelude::*;

const KEYS: [&str; 7] = [
    "gardenId",
    "pid",
    "hostname",
    "createdAt",
    "nonce",
    "owner",
    "lockPath",
];

/// One claim as (key, JSON-encoded value) pairs, in the on-disk order.
#[derive(Debug, Clone)]
struct Fields(Vec<(String, String)>);

impl Fields {
    fn line(&self) -> String {
        let body: Vec<String> = self.0.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
        format!("{{{}}}\n", body.join(","))
    }

    fn set(&mut self, key: &str, value: String) {
        for (k, v) in &mut self.0 {
            if k == key {
                *v = value.clone();
            }
        }
    }
}

fn json(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

fn gid_strategy() -> impl Strategy<Value = GardenId> {
    "[0-9]{8}T[0-9]{6}-[0-9a-f]{6}".prop_map(|s| GardenId::parse(&s).expect("grammar"))
}

/// createdAt values as the TypeScript dispatcher and this crate write them.
fn created_at_strategy() -> impl Strategy<Value = String> {
    (0_u64..253_402_300_800_000).prop_map(|ms| {
        humantime::format_rfc3339_millis(SystemTime::UNIX_EPOCH + Duration::from_millis(ms))
            .to_string()
    })
}

#[derive(Debug, Clone)]
struct Valid {
    gid: GardenId,
    pid: u32,
    hostname: String,
    created_at: String,
    nonce: String,
    lock_path: String,
}

fn valid_strategy() -> impl Strategy<Value = Valid> {
    (
        gid_strategy(),
        1_u32..=i32::MAX as u32,
        any::<String>(),
        created_at_strategy(),
        "[0-9a-f]{16}",
        any::<String>(),
    )
        .prop_map(|(gid, pid, hostname, created_at, nonce, lock_path)| Valid {
            gid,
            pid,
            hostname,
            created_at,
            nonce,
            lock_path,
        })
}

fn fields(v: &Valid) -> Fields {
    Fields(vec![
        ("gardenId".into(), json(v.gid.as_str())),
        ("pid".into(), v.pid.to_string()),
        ("hostname".into(), json(&v.hostname)),
        ("createdAt".into(), json(&v.created_at)),
        ("nonce".into(), json(&v.nonce)),
        ("owner".into(), json("entwurf_v2")),
        ("lockPath".into(), json(&v.lock_path)),
    ])
}

/// JSON values of every type, none of which fits any field except by accident of type,
/// which `wrong_type_for` filters out.
fn json_value_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("null".to_owned()),
        Just("true".to_owned()),
        Just("[]".to_owned()),
        Just("{}".to_owned()),
        Just("[\"9f2c4e01a7b3d855\"]".to_owned()),
        Just("{\"pid\":1}".to_owned()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| format!("{f:?}")),
        any::<String>().prop_map(|s| json(&s)),
    ]
}

/// True when `value` is of the wrong JSON type for `key` (strings for string fields,
/// non-negative integers that fit u32 for pid).
fn wrong_type_for(key: &str, value: &str) -> bool {
    let is_string = value.starts_with('"');
    if key == "pid" {
        value.parse::<u32>().is_err()
    } else {
        !is_string
    }
}

fn path() -> PathBuf {
    PathBuf::from("/locks/x.lock")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..600), gid in gid_strategy()) {
        let _ = parse_claim(&bytes, &gid, &path());
    }

    #[test]
    fn never_panics_on_json_looking_text(text in "\\{[ -~]{0,300}\\}\n", gid in gid_strategy()) {
        let _ = parse_claim(text.as_bytes(), &gid, &path());
    }

    #[test]
    fn never_panics_on_mutated_claims(
        v in valid_strategy(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0_u8..3), 1..8),
    ) {
        let mut bytes = fields(&v).line().into_bytes();
        for (at, byte, kind) in edits {
            match kind {
                0 if !bytes.is_empty() => { let i = at.index(bytes.len()); bytes[i] = byte; }
                1 => { let i = at.index(bytes.len() + 1); bytes.insert(i, byte); }
                _ if !bytes.is_empty() => { let i = at.index(bytes.len()); bytes.remove(i); }
                _ => {}
            }
        }
        // Whatever it decides, an accepted claim must re-serialize to a claim it accepts.
        if let Ok(claim) = parse_claim(&bytes, &v.gid, &path()) {
            let again = parse_claim(claim.to_json_line().as_bytes(), &v.gid, &path());
            prop_assert_eq!(again.ok(), Some(claim));
        }
    }

    #[test]
    fn accepts_every_valid_claim_and_round_trips_it(v in valid_strategy()) {
        let line = fields(&v).line();
        let p = PathBuf::from(&v.lock_path);
        let claim = parse_claim(line.as_bytes(), &v.gid, &p).map_err(|e| TestCaseError::fail(format!("{e}: {line}")))?;
        prop_assert_eq!(claim.garden_id(), &v.gid);
        prop_assert_eq!(claim.pid(), v.pid);
        prop_assert_eq!(claim.hostname(), v.hostname.as_str());
        prop_assert_eq!(claim.created_at(), v.created_at.as_str());
        prop_assert_eq!(claim.nonce(), v.nonce.as_str());
        prop_assert_eq!(claim.recorded_lock_path(), v.lock_path.as_str());
        prop_assert_eq!(claim.lock_path(), Path::new(&v.lock_path));
        prop_assert_eq!(claim.to_json_line(), line);
    }

    #[test]
    fn accepts_any_key_order_and_unknown_extra_fields(
        v in valid_strategy(),
        order in Just((0..7).collect::<Vec<usize>>()).prop_shuffle(),
        extra in proptest::option::of(("[a-zA-Z]{1,12}", json_value_strategy())),
    ) {
        let base = fields(&v);
        let mut shuffled = Fields(order.iter().map(|&i| base.0[i].clone()).collect());
        if let Some((key, value)) = extra {
            prop_assume!(!KEYS.contains(&key.as_str()));
            shuffled.0.insert(3, (key, value));
        }
        let claim = parse_claim(shuffled.line().as_bytes(), &v.gid, &path());
        let claim = claim.map_err(|e| TestCaseError::fail(e.to_string()))?;
        // Written back in the canonical order, without the unknown field.
        prop_assert_eq!(claim.to_json_line(), base.line());
    }

    #[test]
    fn rejects_a_missing_field(v in valid_strategy(), drop in 0_usize..7) {
        let mut f = fields(&v);
        f.0.remove(drop);
        prop_assert!(parse_claim(f.line().as_bytes(), &v.gid, &path()).is_err());
    }

    #[test]
    fn rejects_a_mistyped_field(v in valid_strategy(), key in 0_usize..7, value in json_value_strategy()) {
        let key = KEYS[key];
        prop_assume!(wrong_type_for(key, &value));
        let mut f = fields(&v);
        f.set(key, value);
        prop_assert!(parse_claim(f.line().as_bytes(), &v.gid, &path()).is_err(), "{}", f.line());
    }

    #[test]
    fn rejects_a_pid_that_is_not_one_process(v in valid_strategy(), pid in prop_oneof![Just(0_i64), (i64::from(i32::MAX) + 1)..i64::MAX, i64::MIN..0]) {
        let mut f = fields(&v);
        f.set("pid", pid.to_string());
        prop_assert!(parse_claim(f.line().as_bytes(), &v.gid, &path()).is_err());
    }

    #[test]
    fn rejects_another_gid(v in valid_strategy(), other in gid_strategy()) {
        prop_assume!(other != v.gid);
        let line = fields(&v).line();
        prop_assert!(parse_claim(line.as_bytes(), &other, &path()).is_err());
    }

    #[test]
    fn rejects_malformed_nonces(v in valid_strategy(), nonce in any::<String>()) {
        prop_assume!(!(nonce.len() == 16 && nonce.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))));
        let mut f = fields(&v);
        f.set("nonce", json(&nonce));
        prop_assert!(parse_claim(f.line().as_bytes(), &v.gid, &path()).is_err());
    }

    #[test]
    fn rejects_malformed_created_at(v in valid_strategy(), cut in 0_usize..24, junk in "[0-9A-Za-z:+. -]{0,3}") {
        // Damage a valid timestamp: truncate it and splice in junk.
        let mut bad = v.created_at.clone();
        bad.replace_range(cut.., &junk);
        prop_assume!(bad != v.created_at);
        // A splice can by chance rebuild a valid shape; only an invalid one must be rejected.
        let shape_ok = bad.len() == 24 && bad.ends_with('Z') && humantime::parse_rfc3339(&bad).is_ok()
            && bad.as_bytes()[19] == b'.';
        prop_assume!(!shape_ok);
        let mut f = fields(&v);
        f.set("createdAt", json(&bad));
        prop_assert!(parse_claim(f.line().as_bytes(), &v.gid, &path()).is_err(), "{}", bad);
    }

    #[test]
    fn rejects_other_owners(v in valid_strategy(), owner in any::<String>()) {
        prop_assume!(owner != "entwurf_v2");
        let mut f = fields(&v);
        f.set("owner", json(&owner));
        prop_assert!(parse_claim(f.line().as_bytes(), &v.gid, &path()).is_err());
    }

    #[test]
    fn rejects_broken_framing(v in valid_strategy(), prefix in "[ \n\t]{0,2}", suffix in prop_oneof![Just(""), Just("\n"), Just(" \n"), Just("\r\n"), Just("x")]) {
        let line = fields(&v).line();
        let body = line.trim_end_matches('\n');
        let framed = format!("{prefix}{body}\n{suffix}");
        prop_assume!(framed != line);
        prop_assert!(parse_claim(framed.as_bytes(), &v.gid, &path()).is_err());
    }
}
