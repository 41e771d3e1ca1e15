//! Which files are read, and the ones that cannot be.

use super::*;

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
