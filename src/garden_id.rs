//! The garden id grammar: `YYYYMMDDTHHMMSS-xxxxxx`.
//!
//! Every path the crate builds from an id (lock file, control socket) takes a
//! [`GardenId`], so validation happens once, at the edge, and a value such as `../x`
//! can never reach the file system.

use std::fmt;
use std::time::SystemTime;

/// A validated garden id: 8 digits, `T`, 6 digits, `-`, 6 lowercase hex digits, with
/// nothing before or after it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GardenId(String);

/// Why a string is not a garden id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid garden id {input:?}: expected YYYYMMDDTHHMMSS-xxxxxx (digits, `T`, digits, `-`, 6 lowercase hex)"
)]
pub struct InvalidGardenId {
    /// The rejected input, verbatim.
    pub input: String,
}

/// Why a garden id could not be generated.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GenerateError {
    /// The operating system's random source failed.
    #[error("random source unavailable")]
    Random(#[source] getrandom::Error),
    /// The clock is before 1970, so no timestamp can be formed.
    #[error("system clock is before the unix epoch")]
    ClockBeforeEpoch,
    /// The clock is past 9999-12-31, which four year digits cannot name.
    #[error("system clock is past the year 9999")]
    ClockPastYear9999,
}

const LEN: usize = 22;
/// 9999-12-31T23:59:59Z in unix seconds.
pub(crate) const LAST_SECOND_OF_9999: u64 = 253_402_300_799;

impl GardenId {
    /// Validates `input` against the anchored grammar.
    ///
    /// # Errors
    ///
    /// [`InvalidGardenId`], carrying the input, when it does not match the grammar.
    pub fn parse(input: &str) -> Result<Self, InvalidGardenId> {
        if is_valid(input.as_bytes()) {
            Ok(Self(input.to_owned()))
        } else {
            Err(InvalidGardenId {
                input: input.to_owned(),
            })
        }
    }

    /// Makes a fresh id from `now` (UTC) and 24 bits from the OS CSPRNG.
    ///
    /// # Errors
    ///
    /// [`GenerateError`] when the OS CSPRNG fails or `now` lies outside 1970..=9999
    /// (the grammar has four year digits).
    pub fn generate(now: SystemTime) -> Result<Self, GenerateError> {
        let secs = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_err(|_| GenerateError::ClockBeforeEpoch)?
            .as_secs();
        // The grammar has four year digits; humantime cannot render past 9999 either.
        if secs > LAST_SECOND_OF_9999 {
            return Err(GenerateError::ClockPastYear9999);
        }
        // humantime renders `YYYY-MM-DDTHH:MM:SSZ`; keep only the digits and the `T`.
        let stamp: String = humantime::format_rfc3339_seconds(now)
            .to_string()
            .chars()
            .filter(|c| c.is_ascii_digit() || *c == 'T')
            .collect();
        let mut random = [0_u8; 3];
        getrandom::fill(&mut random).map_err(GenerateError::Random)?;
        let id = format!(
            "{stamp}-{:02x}{:02x}{:02x}",
            random[0], random[1], random[2]
        );
        Ok(Self(id))
    }

    /// The id as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_valid(b: &[u8]) -> bool {
    b.len() == LEN
        && b[..8].iter().all(u8::is_ascii_digit)
        && b[8] == b'T'
        && b[9..15].iter().all(u8::is_ascii_digit)
        && b[15] == b'-'
        && b[16..]
            .iter()
            .all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}

impl fmt::Display for GardenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for GardenId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for GardenId {
    type Err = InvalidGardenId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_grammar() {
        assert_eq!(
            GardenId::parse("20260613T000000-aaaaaa")
                .map(|g| g.to_string())
                .as_deref(),
            Ok("20260613T000000-aaaaaa")
        );
        assert!(GardenId::parse("19991231T235959-0123ef").is_ok());
    }

    #[test]
    fn rejects_everything_else() {
        for bad in [
            "",
            "../x",
            "20260613T000000-AAAAAA",
            "20260613T000000-aaaaaa\n",
            " 20260613T000000-aaaaaa",
            "20260613T000000-aaaaa",
            "20260613T000000-aaaaaaa",
            "20260613t000000-aaaaaa",
            "2026061XT000000-aaaaaa",
            "20260613T000000_aaaaaa",
            "20260613T000000-aaaaag",
            "20260613T00000-aaaaaa0",
            "20260613T000000-aaaaa/",
        ] {
            let err = GardenId::parse(bad).expect_err(bad);
            assert_eq!(err.input, bad);
            assert!(err.to_string().contains("invalid garden id"));
        }
    }

    #[test]
    fn generated_ids_are_valid_and_dated() {
        let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_781_322_945);
        let id = GardenId::generate(at).expect("generate");
        assert!(id.as_str().starts_with("20260613T"), "{id}");
        assert!(GardenId::parse(id.as_str()).is_ok());
        let other = GardenId::generate(at).expect("generate");
        let late = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(LAST_SECOND_OF_9999);
        assert!(
            GardenId::generate(late)
                .expect("9999")
                .as_str()
                .starts_with("99991231T235959-")
        );
        let too_late = late + std::time::Duration::from_secs(1);
        assert!(matches!(
            GardenId::generate(too_late),
            Err(GenerateError::ClockPastYear9999)
        ));
        let early = SystemTime::UNIX_EPOCH - std::time::Duration::from_secs(1);
        assert!(matches!(
            GardenId::generate(early),
            Err(GenerateError::ClockBeforeEpoch)
        ));
        // 24 random bits: a collision here is a 1 in 16M event, not a flaky test worth fearing.
        assert_ne!(id, other);
    }
}
