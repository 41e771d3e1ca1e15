//! Resolving a single session: its header, cwd and model.

use super::*;

#[test]
fn the_single_match_gives_cwd_provider_model_and_extension_args() {
    let agent = tempfile::tempdir().unwrap();
    session(
        agent.path(),
        "--work-a--",
        "2026-06-13_other.jsonl",
        &[&header(OTHER, "/elsewhere"), &model("openai", "gpt-x")],
    );
    session(
        agent.path(),
        "--work-b--",
        "2026-06-13_ours.jsonl",
        &[
            &header(GID, "/work/b"),
            MESSAGE,
            &model("anthropic", "claude-y"),
            MESSAGE,
        ],
    );
    let before = snapshot(agent.path());

    let ext = PassthroughArgs::new(["--extension", "./ext with space.ts"]).unwrap();
    let identity = resolve_launch_identity(agent.path(), &gid(), &ext).unwrap();
    assert_eq!(
        identity,
        LaunchIdentity::new(PathBuf::from("/work/b"), "claude-y")
            .with_provider(Some("anthropic".to_owned()))
            .with_extension_args(ext)
    );
    assert_eq!(snapshot(agent.path()), before, "nothing on disk changed");
}

#[test]
fn a_model_change_without_provider_gives_no_provider() {
    let agent = tempfile::tempdir().unwrap();
    let no_provider = r#"{"type":"model_change","modelId":"local-z"}"#;
    session(
        agent.path(),
        "d",
        "s.jsonl",
        &[&header(GID, "/w"), no_provider],
    );
    let identity = resolve(agent.path()).unwrap();
    assert_eq!(identity.provider, None);
    assert_eq!(identity.model, "local-z");
}

#[test]
fn no_match_is_not_found_naming_the_sessions_dir() {
    let agent = tempfile::tempdir().unwrap();
    session(
        agent.path(),
        "d",
        "s.jsonl",
        &[&header(OTHER, "/w"), &model("p", "m")],
    );
    let err = resolve(agent.path()).unwrap_err();
    assert!(matches!(err, IdentityError::NotFound { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains(GID), "{text}");
    assert!(
        text.contains(&agent.path().join("sessions").display().to_string()),
        "{text}"
    );
}

#[test]
fn a_missing_sessions_dir_is_not_found() {
    let agent = tempfile::tempdir().unwrap();
    let err = resolve(agent.path()).unwrap_err();
    assert!(matches!(err, IdentityError::NotFound { .. }), "{err:?}");
    let err = resolve(&agent.path().join("no-such-agent-dir")).unwrap_err();
    assert!(matches!(err, IdentityError::NotFound { .. }), "{err:?}");
}

#[test]
fn two_files_with_our_header_are_ambiguous_naming_both() {
    let agent = tempfile::tempdir().unwrap();
    let a = session(
        agent.path(),
        "a",
        "one.jsonl",
        &[&header(GID, "/a"), &model("p", "m")],
    );
    let b = session(
        agent.path(),
        "b",
        "two.jsonl",
        &[&header(GID, "/b"), &model("p", "m")],
    );
    let err = resolve(agent.path()).unwrap_err();
    match &err {
        IdentityError::Ambiguous { files, .. } => assert_eq!(files, &[a.clone(), b.clone()]),
        other => panic!("{other:?}"),
    }
    let text = err.to_string();
    assert!(text.contains(&a.display().to_string()) && text.contains(&b.display().to_string()));
}

#[test]
fn a_header_without_cwd_is_an_error_never_our_cwd() {
    let agent = tempfile::tempdir().unwrap();
    let line = format!(r#"{{"type":"session","id":"{GID}"}}"#);
    let path = session(agent.path(), "d", "s.jsonl", &[&line, &model("p", "m")]);
    let err = resolve(agent.path()).unwrap_err();
    assert!(matches!(err, IdentityError::MissingCwd { .. }), "{err:?}");
    assert!(err.to_string().contains(&path.display().to_string()));

    let line = format!(r#"{{"type":"session","id":"{GID}","cwd":42}}"#);
    session(agent.path(), "d", "s.jsonl", &[&line, &model("p", "m")]);
    let err = resolve(agent.path()).unwrap_err();
    assert!(matches!(err, IdentityError::MissingCwd { .. }), "{err:?}");
}

#[test]
fn a_relative_cwd_is_an_error() {
    let agent = tempfile::tempdir().unwrap();
    session(
        agent.path(),
        "d",
        "s.jsonl",
        &[&header(GID, "work/rel"), &model("p", "m")],
    );
    let err = resolve(agent.path()).unwrap_err();
    match &err {
        IdentityError::RelativeCwd { cwd, .. } => assert_eq!(cwd, "work/rel"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn no_model_change_is_an_error() {
    let agent = tempfile::tempdir().unwrap();
    let path = session(agent.path(), "d", "s.jsonl", &[&header(GID, "/w"), MESSAGE]);
    let err = resolve(agent.path()).unwrap_err();
    assert!(matches!(err, IdentityError::NoModel { .. }), "{err:?}");
    assert!(err.to_string().contains(&path.display().to_string()));
}

#[test]
fn a_later_different_model_change_is_identity_drift_naming_both() {
    let agent = tempfile::tempdir().unwrap();
    session(
        agent.path(),
        "d",
        "s.jsonl",
        &[
            &header(GID, "/w"),
            &model("anthropic", "claude-y"),
            MESSAGE,
            &model("openai", "gpt-x"),
        ],
    );
    let err = resolve(agent.path()).unwrap_err();
    match &err {
        IdentityError::IdentityDrift {
            first, later, line, ..
        } => {
            assert_eq!(
                **first,
                ModelRef {
                    provider: Some("anthropic".into()),
                    model: "claude-y".into()
                }
            );
            assert_eq!(
                **later,
                ModelRef {
                    provider: Some("openai".into()),
                    model: "gpt-x".into()
                }
            );
            assert_eq!(*line, 4);
        }
        other => panic!("{other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains("anthropic/claude-y") && text.contains("openai/gpt-x"),
        "{text}"
    );

    // Same model, provider dropped: still a different identity.
    let dropped = r#"{"type":"model_change","modelId":"claude-y"}"#;
    session(
        agent.path(),
        "d",
        "s.jsonl",
        &[&header(GID, "/w"), &model("anthropic", "claude-y"), dropped],
    );
    let err = resolve(agent.path()).unwrap_err();
    assert!(
        matches!(err, IdentityError::IdentityDrift { .. }),
        "{err:?}"
    );
}

/// The first error in a file decides, and the scan stops there: a later drift or a later
/// malformed line never replaces it (the error names the line a person must look at).
#[test]
fn the_first_error_decides_and_later_lines_never_replace_it() {
    let agent = tempfile::tempdir().unwrap();
    let malformed = r#"{"type":"model_change","provider":"p"}"#;
    // A drift at line 3, then a second drift and a malformed line.
    session(
        agent.path(),
        "d",
        "s.jsonl",
        &[
            &header(GID, "/w"),
            &model("p", "first"),
            &model("p", "second"),
            &model("p", "third"),
            malformed,
        ],
    );
    match resolve(agent.path()).unwrap_err() {
        IdentityError::IdentityDrift { later, line, .. } => {
            assert_eq!(later.model, "second");
            assert_eq!(line, 3);
        }
        other => panic!("{other:?}"),
    }
    // A malformed line at line 2, then a model and a drift.
    session(
        agent.path(),
        "d",
        "s.jsonl",
        &[
            &header(GID, "/w"),
            malformed,
            &model("p", "first"),
            &model("p", "second"),
        ],
    );
    match resolve(agent.path()).unwrap_err() {
        IdentityError::MalformedModelChange { line, .. } => assert_eq!(line, 2),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_later_identical_model_change_is_fine() {
    let agent = tempfile::tempdir().unwrap();
    session(
        agent.path(),
        "d",
        "s.jsonl",
        &[
            &header(GID, "/w"),
            &model("p", "m"),
            MESSAGE,
            &model("p", "m"),
        ],
    );
    let identity = resolve(agent.path()).unwrap();
    assert_eq!(
        (identity.provider.as_deref(), identity.model.as_str()),
        (Some("p"), "m")
    );
}

#[test]
fn a_malformed_model_change_is_an_error() {
    let agent = tempfile::tempdir().unwrap();
    for bad in [
        r#"{"type":"model_change","provider":"p"}"#,
        r#"{"type":"model_change","provider":"p","modelId":""}"#,
        r#"{"type":"model_change","provider":7,"modelId":"m"}"#,
    ] {
        session(
            agent.path(),
            "d",
            "s.jsonl",
            &[&header(GID, "/w"), &model("p", "m"), bad],
        );
        let err = resolve(agent.path()).unwrap_err();
        match &err {
            IdentityError::MalformedModelChange { line, .. } => assert_eq!(*line, 3, "{bad}"),
            other => panic!("{bad}: {other:?}"),
        }
    }
}
