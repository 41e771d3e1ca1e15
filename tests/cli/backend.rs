//! `--backend`: the portable backend is selectable, announced, and a check it cannot
//! pass skips naming the platform limit (after checking the typed error).

use crate::run;

#[test]
fn the_portable_backend_is_announced_and_its_long_path_check_skips_naming_the_limit() {
    let r = run(&["--backend", "portable", "--only", "S1.7", "--only", "S1.4"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    // Named in the summary line, so a pasted line never reads as the default gate.
    assert!(
        r.stdout
            .lines()
            .any(|l| l
                .starts_with("smoke-entwurf-v2-spawn-live (only S1.4, S1.7, backend portable): ")),
        "{}",
        r.stdout
    );
    let skip = r
        .stdout
        .lines()
        .find(|l| l.starts_with("skip S1.7 "))
        .unwrap_or_else(|| panic!("no skip line for S1.7:\n{}", r.stdout));
    assert!(
        skip.contains("sun_path") && skip.contains("PathTooLong") && skip.contains("(checked)"),
        "{skip}"
    );
    assert!(r.stdout.contains("ok S1.4 "), "{}", r.stdout);

    // The native backend reaches the same path; the header names it, the summary line
    // (the default gate's) does not.
    let r = run(&["--only", "S1.7"]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(r.stdout.contains("ok S1.7 "), "{}", r.stdout);
    assert!(
        r.stdout.lines().next().unwrap().contains("backend native"),
        "{}",
        r.stdout
    );
    assert!(
        !r.stdout.lines().last().unwrap().contains("backend") && !r.stderr.contains("backend"),
        "{}",
        r.stderr
    );
}

/// `--list` tells ahead what the run does: on the portable backend S1.7 skips.
#[test]
fn list_on_the_portable_backend_says_s1_7_skips_as_the_run_does() {
    let list = run(&["--list", "--backend", "portable"]);
    assert_eq!(list.code, 0);
    let line = list
        .stdout
        .lines()
        .find(|l| l.starts_with("S1.7 "))
        .unwrap()
        .to_owned();
    assert!(
        line.contains("— skips: ") && line.contains("PathTooLong"),
        "{line}"
    );
    let native = run(&["--list"]);
    let line = native
        .stdout
        .lines()
        .find(|l| l.starts_with("S1.7 "))
        .unwrap();
    assert!(line.ends_with("— runs"), "{line}");
    let r = run(&["--backend", "portable", "--only", "S1.7"]);
    assert!(r.stdout.contains("skip S1.7 "), "{}", r.stdout);
}

#[test]
fn a_full_run_on_the_portable_backend_is_named_as_such() {
    let r = run(&["--backend", "portable"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let summary = r.stdout.lines().last().unwrap_or_default();
    assert!(
        summary.starts_with("smoke-entwurf-v2-spawn-live (backend portable): ")
            && summary.contains("checks passed"),
        "{summary}"
    );
    // Pinned like the native runs: S1.7 (a path beyond sun_path, typed error checked),
    // plus S1.8 for an ordinary user, the V checks without tmux (never on CI) and the P
    // line (these runs opt out of real pi). A check that quietly starts skipping on this
    // backend fails here.
    let (passed, failed, skipped) = crate::count_lines(&r.stdout);
    let expected_skips = 2 + crate::privilege_skips() + crate::tmux_skips();
    assert_eq!((failed, skipped), (0, expected_skips), "{}", r.stdout);
    assert!(r.stdout.contains("skip S1.7 "), "{}", r.stdout);
    assert_eq!(
        summary,
        crate::expected_named_summary("backend portable", passed, 0, skipped)
    );
}

#[test]
fn an_unknown_backend_is_a_usage_error_naming_the_valid_ones() {
    let r = run(&["--backend", "kqueue"]);
    assert_eq!(r.code, 2);
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    assert!(
        r.stderr.contains("native") && r.stderr.contains("portable"),
        "{}",
        r.stderr
    );
}

/// A `TMPDIR` of `len` bytes (at least the test's own temp dir plus one name), in a dir
/// removed on drop.
fn tmpdir_of_len(len: usize) -> (tempfile::TempDir, std::path::PathBuf) {
    let base = tempfile::tempdir().unwrap();
    let room = len.saturating_sub(base.path().as_os_str().len() + 1).max(1);
    let dir = base.path().join("t".repeat(room));
    std::fs::create_dir(&dir).unwrap();
    (base, dir)
}

/// Issue 21, item 1: every socket a check makes fits `sun_path` whatever the length of
/// `TMPDIR` (a Mac's is about 50 bytes, CI's 50, someone's 200): the portable backend,
/// which connects by path, passes every check there, and the header says where the
/// sockets went. Before the socket dirs, a 50-byte TMPDIR gave 11 FAILs ("socket path …
/// is 124 bytes, longer than sun_path allows (107 bytes)").
#[test]
fn a_portable_run_holds_under_a_long_tmpdir() {
    for len in [50, 200] {
        let (_base, tmpdir) = tmpdir_of_len(len);
        let tmpdir = tmpdir.to_str().unwrap();
        let r = crate::run_env(&["--backend", "portable"], &[("TMPDIR", tmpdir)]);
        assert_eq!(
            r.code, 0,
            "TMPDIR of {len} bytes:\n{}\n{}",
            r.stdout, r.stderr
        );
        assert!(!r.stdout.contains("FAIL "), "{}", r.stdout);
        let header = r.stdout.lines().next().unwrap_or_default();
        assert!(header.ends_with(", sockets under /tmp)"), "{header}");
        let list = crate::run_env(&["--list"], &[("TMPDIR", tmpdir)]);
        let first = list.stdout.lines().next().unwrap_or_default();
        assert!(first.ends_with(", sockets under /tmp"), "{first}");
        // Nothing left in this TMPDIR; the socket dirs in /tmp are H3's (which passed).
        assert_eq!(std::fs::read_dir(tmpdir).unwrap().count(), 0, "{tmpdir}");
    }
}
