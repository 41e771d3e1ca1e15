pub mod fake_deps;
