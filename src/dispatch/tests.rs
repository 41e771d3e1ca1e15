//! The README's dispatch example is this module's doctest, word for word: the doctest
//! compiles it, this test keeps the README from drifting.

/// The first fenced Rust block that starts with `first_line`, without its fences.
fn block_starting(text: &str, first_line: &str) -> Option<String> {
    let start = text.find(first_line)?;
    let end = start + text[start..].find("```")?;
    Some(text[start..end].to_owned())
}

#[test]
fn the_readme_shows_the_compiled_example() {
    let module: String = include_str!("mod.rs")
        .lines()
        .filter_map(|line| line.strip_prefix("//! ").or((line == "//!").then_some("")))
        .map(|line| format!("{line}\n"))
        .collect();
    let readme = include_str!("../../README.md");
    let first = "use entwurf_v2_spawn::dispatch::{\n";
    let doctest = block_starting(&module, first).expect("the doctest");
    let shown = block_starting(readme, first).expect("README's dispatch example");
    assert!(doctest.contains("dispatch(&request, &deps)"), "{doctest}");
    assert_eq!(
        shown, doctest,
        "README.md's dispatch example differs from the doctest in src/dispatch/mod.rs"
    );
}
