//! Launch identity from synthetic saved sessions in temp agent dirs.

use std::path::{Path, PathBuf};

use entwurf_v2_spawn::GardenId;
use entwurf_v2_spawn::production::identity::{
    IdentityError, LaunchIdentity, ModelRef, resolve_launch_identity,
};

const GID: &str = "20260613T000000-aaaaaa";
const OTHER: &str = "20260613T000000-bbbbbb";

fn gid() -> GardenId {
    GardenId::parse(GID).unwrap()
}

fn header(id: &str, cwd: &str) -> String {
    format!(
        r#"{{"type":"session","version":3,"id":"{id}","timestamp":"2026-06-13T03:55:45.123Z","cwd":"{cwd}"}}"#
    )
}

fn model(provider: &str, model: &str) -> String {
    format!(
        r#"{{"type":"model_change","id":"m1","timestamp":"2026-06-13T03:55:46.000Z","provider":"{provider}","modelId":"{model}"}}"#
    )
}

const MESSAGE: &str = r#"{"type":"message","id":"x1","message":{"role":"user","content":"hello"}}"#;

/// Writes `<agent>/sessions/<dir>/<file>` with `lines`, each newline-terminated.
fn session(agent: &Path, dir: &str, file: &str, lines: &[&str]) -> PathBuf {
    let dir = agent.join("sessions").join(dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(file);
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(&path, text).unwrap();
    path
}

fn resolve(agent: &Path) -> Result<LaunchIdentity, IdentityError> {
    resolve_launch_identity(agent, &gid(), &[])
}

/// A snapshot of every file under `dir` with its contents and mtime, to prove
/// resolution touches nothing.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>, std::time::SystemTime)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let meta = std::fs::symlink_metadata(&p).unwrap();
            if meta.is_dir() {
                stack.push(p);
            } else {
                out.push((
                    p.clone(),
                    std::fs::read(&p).unwrap(),
                    meta.modified().unwrap(),
                ));
            }
        }
    }
    out.sort();
    out
}

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

    let ext = vec!["--extension".to_owned(), "./ext with space.ts".to_owned()];
    let identity = resolve_launch_identity(agent.path(), &gid(), &ext).unwrap();
    assert_eq!(
        identity,
        LaunchIdentity {
            cwd: PathBuf::from("/work/b"),
            provider: Some("anthropic".to_owned()),
            model: "claude-y".to_owned(),
            extension_args: ext,
        }
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

#[test]
fn only_the_first_header_decides_ownership() {
    let agent = tempfile::tempdir().unwrap();
    // Another session's file that later mentions our id, even in a header-shaped line.
    session(
        agent.path(),
        "d",
        "other.jsonl",
        &[
            &header(OTHER, "/other"),
            &model("p", "m"),
            &format!(r#"{{"type":"message","text":"resume {GID} please"}}"#),
            &header(GID, "/hijack"),
        ],
    );
    let err = resolve(agent.path()).unwrap_err();
    assert!(matches!(err, IdentityError::NotFound { .. }), "{err:?}");

    // Our file with a later header of another id is still ours.
    session(
        agent.path(),
        "e",
        "ours.jsonl",
        &[&header(GID, "/w"), &model("p", "m"), &header(OTHER, "/x")],
    );
    assert_eq!(resolve(agent.path()).unwrap().cwd, PathBuf::from("/w"));
}

#[test]
fn lines_before_the_header_and_a_model_change_before_it_count() {
    let agent = tempfile::tempdir().unwrap();
    session(
        agent.path(),
        "d",
        "s.jsonl",
        &[MESSAGE, &model("p", "m"), &header(GID, "/w")],
    );
    let identity = resolve(agent.path()).unwrap();
    assert_eq!(identity.model, "m");
}

#[test]
fn invalid_json_lines_are_skipped() {
    let agent = tempfile::tempdir().unwrap();
    let dir = agent.path().join("sessions/d");
    std::fs::create_dir_all(&dir).unwrap();
    let mut bytes = Vec::new();
    bytes.extend_from_slice(b"\n   \nnot json at all\n[\"session\",\"x\"]\n\xff\xfe\n");
    bytes.extend_from_slice(header(GID, "/w").as_bytes());
    bytes.extend_from_slice(b"\n{\"type\":\"message\",\"broken\n");
    bytes.extend_from_slice(model("p", "m").as_bytes());
    bytes.push(b'\n');
    // A torn last line without a newline, as while the session is being appended.
    bytes.extend_from_slice(br#"{"type":"model_change","provider":"q","mo"#);
    std::fs::write(dir.join("s.jsonl"), bytes).unwrap();
    let identity = resolve(agent.path()).unwrap();
    assert_eq!(
        (identity.provider.as_deref(), identity.model.as_str()),
        (Some("p"), "m")
    );
}

#[test]
fn a_corrupt_header_mentioning_our_id_is_not_silently_ignored() {
    let agent = tempfile::tempdir().unwrap();
    let torn = format!(r#"{{"type":"session","id":"{GID}","cwd":"/w"#);
    let path = session(agent.path(), "d", "torn.jsonl", &[&torn, &model("p", "m")]);
    let err = resolve(agent.path()).unwrap_err();
    assert!(
        matches!(err, IdentityError::UnreadableHeader { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains(&path.display().to_string()));

    // Next to a valid claimant it makes the id ambiguous rather than picking the other.
    let good = session(
        agent.path(),
        "e",
        "good.jsonl",
        &[&header(GID, "/w"), &model("p", "m")],
    );
    match resolve(agent.path()).unwrap_err() {
        IdentityError::Ambiguous { files, .. } => assert_eq!(files, vec![path, good]),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_corrupt_header_of_someone_else_is_ignored() {
    let agent = tempfile::tempdir().unwrap();
    session(
        agent.path(),
        "d",
        "torn.jsonl",
        &[r#"{"type":"session","id":"20260613T0000"#],
    );
    session(
        agent.path(),
        "d",
        "noid.jsonl",
        &[r#"{"type":"session","cwd":"/x"}"#, &header(GID, "/y")],
    );
    session(
        agent.path(),
        "e",
        "ours.jsonl",
        &[&header(GID, "/w"), &model("p", "m")],
    );
    assert_eq!(resolve(agent.path()).unwrap().cwd, PathBuf::from("/w"));
}

#[test]
fn only_jsonl_files_one_level_down_are_read() {
    let agent = tempfile::tempdir().unwrap();
    let sessions = agent.path().join("sessions");
    std::fs::create_dir_all(sessions.join("d/nested")).unwrap();
    let claim = format!("{}\n{}\n", header(GID, "/x"), model("p", "m"));
    std::fs::write(sessions.join("top-level.jsonl"), &claim).unwrap();
    std::fs::write(sessions.join("d/nested/deep.jsonl"), &claim).unwrap();
    std::fs::write(sessions.join("d/backup.jsonl.bak"), &claim).unwrap();
    std::fs::write(sessions.join("d/notes.json"), &claim).unwrap();
    let err = resolve(agent.path()).unwrap_err();
    assert!(matches!(err, IdentityError::NotFound { .. }), "{err:?}");

    session(
        agent.path(),
        "d",
        "real.jsonl",
        &[&header(GID, "/w"), &model("p", "m")],
    );
    assert_eq!(resolve(agent.path()).unwrap().cwd, PathBuf::from("/w"));
}

#[test]
fn a_fifo_does_not_hang_and_a_dangling_symlink_is_skipped() {
    let agent = tempfile::tempdir().unwrap();
    let dir = agent.path().join("sessions/d");
    std::fs::create_dir_all(&dir).unwrap();
    nix::unistd::mkfifo(&dir.join("pipe.jsonl"), nix::sys::stat::Mode::S_IRWXU).unwrap();
    std::os::unix::fs::symlink(dir.join("gone.jsonl"), dir.join("dangling.jsonl")).unwrap();
    session(
        agent.path(),
        "d",
        "real.jsonl",
        &[&header(GID, "/w"), &model("p", "m")],
    );
    assert_eq!(resolve(agent.path()).unwrap().cwd, PathBuf::from("/w"));
}

#[test]
fn an_unreadable_file_is_an_io_error_naming_it() {
    // A symlink loop fails to resolve (ELOOP) even for root, unlike a mode-000 file. An
    // unreadable file could be the second claimant, so it is an error, not a skip.
    let agent = tempfile::tempdir().unwrap();
    session(
        agent.path(),
        "d",
        "real.jsonl",
        &[&header(GID, "/w"), &model("p", "m")],
    );
    let looped = agent.path().join("sessions/d/loop.jsonl");
    std::os::unix::fs::symlink(&looped, &looped).unwrap();
    let err = resolve(agent.path()).unwrap_err();
    assert!(matches!(err, IdentityError::Io { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&looped.display().to_string()),
        "{err}"
    );
}

#[test]
fn an_unreadable_session_subdir_is_an_io_error_naming_it() {
    let agent = tempfile::tempdir().unwrap();
    // A regular file where the sessions dir should be: reading it as a dir fails.
    std::fs::write(agent.path().join("sessions"), "").unwrap();
    let err = resolve(agent.path()).unwrap_err();
    assert!(matches!(err, IdentityError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("sessions"), "{err}");
}
