//! Whether this run is on CI: the one function every "required on CI" rule of the
//! project asks ([`on_ci`]), so the live gate's `--list`, its run and the tests can never
//! disagree about what an empty `CI` means.
//!
//! CI machines install every tool the gate needs (`.ci/run`), so there a missing tool or
//! runtime is a failure; on a laptop it is a skip that says what to install. A skip on
//! CI would be a gate that quietly shrank.

/// The variable CI services set (GitHub Actions, GitLab, Buildkite, … set `CI=true`).
pub const VAR: &str = "CI";

/// Whether `CI` says this is a CI run: set to anything but empty, `0` or `false` (any
/// case). Empty means unset, as for `LIVE`: `CI= cmd` is the usual way to run one
/// command as if locally, and `CI=0`/`CI=false` the usual way to say "not CI".
#[must_use]
pub fn on_ci() -> bool {
    std::env::var_os(VAR).is_some_and(|v| means_ci(&v))
}

/// [`on_ci`]'s reading of one value of `CI`.
#[must_use]
pub fn means_ci(value: &std::ffi::OsStr) -> bool {
    let value = value.to_string_lossy();
    let value = value.trim();
    !(value.is_empty() || value == "0" || value.eq_ignore_ascii_case("false"))
}

#[cfg(test)]
mod tests {
    use super::means_ci;

    #[test]
    fn empty_zero_and_false_are_not_ci_anything_else_is() {
        for not in ["", " ", "0", "false", "FALSE", "False"] {
            assert!(!means_ci(not.as_ref()), "{not:?}");
        }
        for yes in ["1", "true", "yes", "woodpecker"] {
            assert!(means_ci(yes.as_ref()), "{yes:?}");
        }
    }
}
