//! Skips that must not happen on CI: a missing tool, kernel facility or privilege skips a
//! test with a message locally, and fails it on CI (`entwurf_ci::on_ci`, the same answer
//! the live gate uses), where everything is installed and a skip would hide a check that
//! silently stopped running.

pub use entwurf_ci::on_ci;

/// Skips (prints why) unless on CI, where it fails with `required on CI: <why>`.
///
/// # Panics
///
/// On CI, always: that is its purpose.
pub fn skip_unless_ci(why: &str) {
    assert!(!on_ci(), "required on CI: {why}");
    eprintln!("skip: {why}");
}
