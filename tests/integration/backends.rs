//! Tests that run once per observation backend.
//!
//! The portable backend (POSIX only) is what macOS and FreeBSD run; Linux can only prove
//! it by running the same tests with it selected. [`per_backend!`] turns each
//! `async fn name(backend: Backend)` into two tests, `name::native` and `name::portable`,
//! so a filter like `cargo test --test integration portable` runs one side.

/// `per_backend!(#[tokio::test] -> TestResult: a, b)` generates `a::native`,
/// `a::portable`, `b::native` and `b::portable`, each calling `super::a(backend)`. The
/// return type is written as seen from inside the generated module (`super::...`);
/// without `->` the tests return `()`.
macro_rules! per_backend {
    (#[$test:meta] $($name:ident),+ $(,)?) => {
        per_backend!(#[$test] -> (): $($name),+);
    };
    (#[$test:meta] -> $ret:ty : $($name:ident),+ $(,)?) => {$(
        mod $name {
            #[$test]
            async fn native() -> $ret {
                super::$name(entwurf_v2_spawn::Backend::Native).await
            }
            #[$test]
            async fn portable() -> $ret {
                super::$name(entwurf_v2_spawn::Backend::Portable).await
            }
        }
    )+};
}
