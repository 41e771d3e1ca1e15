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

/// What a receipt says of a liveness reads as the contract spells it.
#[test]
fn liveness_and_conflicts_read_as_what_was_seen() {
    use super::{CitizenInfo, Liveness, NotConnected, ObservedLiveness, TargetConflict};
    let spelled = [
        (Liveness::Alive, "alive"),
        (Liveness::Dead, "dead"),
        (Liveness::Indeterminate, "indeterminate"),
    ];
    for (liveness, text) in spelled {
        assert_eq!(liveness.as_str(), text);
        assert_eq!(liveness.to_string(), text);
    }
    let data = serde_json::json!({"sessionId": "20260613T000000-aaaaaa"});
    let info = CitizenInfo::from_data(data.as_object().expect("object")).expect("info");
    assert_eq!(
        ObservedLiveness::Alive(info).to_string(),
        "alive (answered as session 20260613T000000-aaaaaa)"
    );
    assert_eq!(
        ObservedLiveness::Dead(NotConnected::Absent).to_string(),
        "dead (no socket at the path)"
    );
    let other = TargetConflict::OtherSession {
        answered: "20990101T000000-ffffff".to_owned(),
    };
    assert_eq!(
        other.to_string(),
        "the listener answered as another session (20990101T000000-ffffff)"
    );
    assert_eq!(
        TargetConflict::Address(crate::socket::AddressConflict::Symlink).to_string(),
        "a symlink sits at the path"
    );
}
