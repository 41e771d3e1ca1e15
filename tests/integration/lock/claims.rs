//! Acquire, conflict, release and reclaim against real files and real pids.

use super::*;

#[test]
fn acquire_writes_a_private_claim_in_the_typescript_shape() {
    let s = setup();
    let claim = acquire(&s.dir, &gid()).expect("acquire");

    assert_eq!(mode(&s.dir), 0o700);
    assert_eq!(mode(&s.path), 0o600);
    assert_eq!(claim.lock_path(), s.path);
    assert_eq!(claim.garden_id(), &gid());
    assert_eq!(claim.pid(), std::process::id());
    assert_eq!(claim.hostname(), our_hostname());
    assert!(is_iso_millis(claim.created_at()), "{}", claim.created_at());
    assert!(
        claim.nonce().len() == 16
            && claim
                .nonce()
                .bytes()
                .all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')),
        "{}",
        claim.nonce()
    );

    let text = fs::read_to_string(&s.path).expect("read lock");
    assert_eq!(text, claim.to_json_line());
    assert!(
        text.ends_with("}\n") && text.matches('\n').count() == 1,
        "{text:?}"
    );
    let keys = [
        "gardenId",
        "pid",
        "hostname",
        "createdAt",
        "nonce",
        "owner",
        "lockPath",
    ];
    let positions: Vec<usize> = keys
        .iter()
        .map(|k| text.find(&format!("\"{k}\":")).expect(k))
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{text}");

    let v: serde_json::Value = serde_json::from_str(&text).expect("json");
    let obj = v.as_object().expect("object");
    assert_eq!(obj.len(), 7);
    assert_eq!(v["gardenId"], GID);
    assert_eq!(v["pid"], u64::from(std::process::id()));
    assert_eq!(v["hostname"], our_hostname());
    assert_eq!(v["createdAt"], claim.created_at());
    assert_eq!(v["nonce"], claim.nonce());
    assert_eq!(v["owner"], "entwurf_v2");
    assert_eq!(v["lockPath"], s.path.to_str().expect("utf-8"));
    assert_eq!(claim.recorded_lock_path(), s.path.to_str().expect("utf-8"));

    // What we wrote, parsed as any other dispatcher's file, is the same claim.
    assert_eq!(
        parse_claim(text.as_bytes(), &gid(), &s.path).expect("parse ours"),
        claim
    );
}

#[test]
fn an_existing_lock_dir_keeps_its_mode() {
    let s = setup();
    fs::create_dir_all(&s.dir).expect("mkdir");
    fs::set_permissions(&s.dir, fs::Permissions::from_mode(0o750)).expect("chmod");
    acquire(&s.dir, &gid()).expect("acquire");
    assert_eq!(mode(&s.dir), 0o750);
}

#[test]
fn a_second_acquire_conflicts_with_holder_evidence() {
    let s = setup();
    let first = acquire(&s.dir, &gid()).expect("acquire");
    let before = fs::read(&s.path).expect("read");

    let c = conflict(acquire(&s.dir, &gid()));
    assert_eq!(c.lock_path, s.path);
    assert_eq!(c.holder.as_ref(), Some(&first));
    let pid = std::process::id().to_string();
    for needle in [
        pid.as_str(),
        &our_hostname(),
        first.created_at(),
        s.path.to_str().expect("utf-8"),
        "file modified 2",
        "running on this host",
        "remove",
    ] {
        assert!(
            c.message.contains(needle),
            "{needle:?} missing: {}",
            c.message
        );
    }
    assert_eq!(fs::read(&s.path).expect("read"), before);
}

#[test]
fn release_removes_only_our_own_lock() {
    let s = setup();
    let claim = acquire(&s.dir, &gid()).expect("acquire");
    assert_eq!(release(&claim).expect("release"), ReleaseOutcome::Released);
    assert!(!s.path.exists());
    assert_eq!(release(&claim).expect("release"), ReleaseOutcome::Absent);

    // A successor took the lock: our stale claim must not remove it.
    let successor = acquire(&s.dir, &gid()).expect("reacquire");
    assert_ne!(successor.nonce(), claim.nonce());
    let before = fs::read(&s.path).expect("read");
    assert_eq!(release(&claim).expect("release"), ReleaseOutcome::NotOwned);
    assert_eq!(fs::read(&s.path).expect("read"), before);
    assert_eq!(
        release(&successor).expect("release"),
        ReleaseOutcome::Released
    );
}

#[test]
fn release_leaves_an_unreadable_lock_alone() {
    let s = setup();
    let claim = acquire(&s.dir, &gid()).expect("acquire");
    fs::write(&s.path, "{\"gardenId\":").expect("overwrite");
    assert_eq!(release(&claim).expect("release"), ReleaseOutcome::NotOwned);
    assert_eq!(fs::read(&s.path).expect("read"), b"{\"gardenId\":");
}

#[test]
fn a_dead_pid_on_this_host_is_reclaimed() {
    let s = setup();
    let pid = dead_pid();
    let stale = claim_line(&s.path, GID, pid, &our_hostname(), "0123456789abcdef");
    fs::create_dir_all(&s.dir).expect("mkdir");
    fs::write(&s.path, &stale).expect("write stale");

    let claim = acquire(&s.dir, &gid()).expect("reclaim");
    assert_ne!(claim.nonce(), "0123456789abcdef");
    assert_eq!(claim.pid(), std::process::id());
    assert_eq!(
        fs::read_to_string(&s.path).expect("read"),
        claim.to_json_line()
    );
    assert!(!reclaim_marker_path(&s.path).exists(), "marker left behind");
    assert_eq!(dir_names(&s.dir), [format!("{GID}.lock")]);
}

#[test]
fn a_live_pid_is_never_reclaimed() {
    let s = setup();
    fs::create_dir_all(&s.dir).expect("mkdir");
    let held = claim_line(
        &s.path,
        GID,
        std::process::id(),
        &our_hostname(),
        "0123456789abcdef",
    );
    fs::write(&s.path, &held).expect("write");
    let c = conflict(acquire(&s.dir, &gid()));
    assert_eq!(
        c.holder.as_ref().map(LockClaim::nonce),
        Some("0123456789abcdef")
    );
    assert_eq!(fs::read_to_string(&s.path).expect("read"), held);
}

#[test]
fn a_pid_we_may_not_signal_is_a_conflict() {
    // pid 1 always exists: EPERM for an ordinary user, alive for root. Never stale.
    let s = setup();
    let held = claim_line(&s.path, GID, 1, &our_hostname(), "0123456789abcdef");
    fs::create_dir_all(&s.dir).expect("mkdir");
    fs::write(&s.path, &held).expect("write");
    let c = conflict(acquire(&s.dir, &gid()));
    let expected = if nix::unistd::geteuid().is_root() {
        "running on this host"
    } else {
        "belongs to another user"
    };
    assert!(c.message.contains(expected), "{}", c.message);
    assert_eq!(fs::read_to_string(&s.path).expect("read"), held);
}

/// Runs `f` on a fresh thread whose effective capabilities lack `CAP_KILL`. Capabilities
/// are per thread on Linux (rustix's `capset` is the raw per-thread call), so the rest of
/// the test process keeps them and the thread's credentials die with it. Root without
/// `CAP_KILL` is refused `kill(pid, 0)` for a process of another uid (EPERM), exactly as
/// an ordinary user is: the only way a root run can meet an EPERM holder.
fn without_cap_kill<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            use rustix::thread::{CapabilitySet, capabilities, set_capabilities};
            let mut sets = capabilities(None).expect("capget");
            sets.effective.remove(CapabilitySet::KILL);
            set_capabilities(None, sets).expect("capset: drop CAP_KILL");
            f()
        })
        .join()
        .expect("the capless thread panicked")
    })
}

#[test]
fn a_live_holder_of_another_uid_is_a_conflict_even_for_root() {
    // As an ordinary user, pid 1 (root's) answers EPERM. As root, a holder running as
    // `nobody` and an acquire on a thread without CAP_KILL meet the same EPERM: without
    // this a root run (CI) could never tell an EPERM holder from a stale one.
    let root = nix::unistd::geteuid().is_root();
    let mut sleeper = root.then(|| {
        use std::os::unix::process::CommandExt;
        Command::new("sleep")
            .arg("30")
            .uid(65534)
            .gid(65534)
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn sleep as nobody")
    });
    let holder = sleeper.as_ref().map_or(1, Child::id);
    let s = setup();
    let held = claim_line(&s.path, GID, holder, &our_hostname(), "0123456789abcdef");
    fs::create_dir_all(&s.dir).expect("mkdir");
    fs::write(&s.path, &held).expect("write");
    let attempt = || {
        let probe = nix::sys::signal::kill(nix::unistd::Pid::from_raw(holder as i32), None);
        (probe, acquire(&s.dir, &gid()))
    };
    let (probe, result) = if root {
        without_cap_kill(attempt)
    } else {
        attempt()
    };
    if let Some(mut sleeper) = sleeper.take() {
        let _ = sleeper.kill();
        let _ = sleeper.wait();
    }
    assert_eq!(
        probe,
        Err(nix::errno::Errno::EPERM),
        "the holder {holder} must answer EPERM to this acquirer"
    );
    let c = conflict(result);
    assert_eq!(c.holder.as_ref().map(LockClaim::pid), Some(holder));
    assert!(
        c.message.contains("belongs to another user"),
        "{}",
        c.message
    );
    assert_eq!(fs::read_to_string(&s.path).expect("read"), held);
}

#[test]
fn a_dead_pid_on_another_host_is_a_conflict() {
    let s = setup();
    let other = format!("{}-elsewhere", our_hostname());
    let held = claim_line(&s.path, GID, dead_pid(), &other, "0123456789abcdef");
    fs::create_dir_all(&s.dir).expect("mkdir");
    fs::write(&s.path, &held).expect("write");
    let c = conflict(acquire(&s.dir, &gid()));
    assert_eq!(
        c.holder.as_ref().map(LockClaim::hostname),
        Some(other.as_str())
    );
    assert!(c.message.contains(&other), "{}", c.message);
    assert!(c.message.contains("not this one"), "{}", c.message);
    assert_eq!(fs::read_to_string(&s.path).expect("read"), held);
}

#[test]
fn unreadable_locks_conflict_and_are_never_deleted() {
    let probe = setup();
    let host = our_hostname();
    let dead = dead_pid();
    let good = claim_line(&probe.path, GID, dead, &host, "0123456789abcdef");
    let cases: Vec<(&str, String)> = vec![
        ("empty", String::new()),
        ("mid-write", good[..40].to_owned()),
        ("no newline", good.trim_end().to_owned()),
        ("garbage", "not json at all\n".to_owned()),
        ("wrong gid", good.replace(GID, "20260613T000000-bbbbbb")),
        (
            "missing field",
            good.replace(",\"owner\":\"entwurf_v2\"", ""),
        ),
        ("foreign owner", good.replace("entwurf_v2", "someone_else")),
        (
            "string pid",
            good.replace(&format!("\"pid\":{dead}"), &format!("\"pid\":\"{dead}\"")),
        ),
    ];
    for (what, bytes) in cases {
        let s = setup_with(&bytes);
        let c = conflict(acquire(&s.dir, &gid()));
        assert!(c.holder.is_none(), "{what}");
        assert!(c.message.contains("unreadable"), "{what}: {}", c.message);
        assert!(c.message.contains("mid-write"), "{what}: {}", c.message);
        assert!(
            c.message.contains(&format!("remove {}", s.path.display())),
            "{what}: {}",
            c.message
        );
        assert_eq!(fs::read_to_string(&s.path).expect("read"), bytes, "{what}");
        assert_eq!(dir_names(&s.dir), [format!("{GID}.lock")], "{what}");
    }
}

#[test]
fn non_files_at_the_lock_path_conflict_and_stay() {
    // A directory.
    let s = setup();
    fs::create_dir_all(&s.path).expect("mkdir at lock path");
    let c = conflict(acquire(&s.dir, &gid()));
    assert!(c.message.contains("not a regular file"), "{}", c.message);
    assert!(s.path.is_dir());

    // A dangling symlink: never followed, never removed.
    let s = setup();
    fs::create_dir_all(&s.dir).expect("mkdir");
    symlink(s.dir.join("elsewhere"), &s.path).expect("symlink");
    let c = conflict(acquire(&s.dir, &gid()));
    assert!(c.message.contains("not a regular file"), "{}", c.message);
    assert!(fs::symlink_metadata(&s.path).expect("lstat").is_symlink());
    assert!(!s.dir.join("elsewhere").exists());

    // A fifo: reading it must not hang.
    let s = setup();
    fs::create_dir_all(&s.dir).expect("mkdir");
    nix::unistd::mkfifo(&s.path, nix::sys::stat::Mode::from_bits_truncate(0o600)).expect("mkfifo");
    let c = conflict(acquire(&s.dir, &gid()));
    assert!(c.message.contains("not a regular file"), "{}", c.message);
    assert!(
        fs::symlink_metadata(&s.path)
            .expect("lstat")
            .file_type()
            .is_fifo()
    );
}

#[test]
fn a_reclaim_in_progress_is_a_conflict_and_its_marker_is_left_to_its_owner() {
    let s = setup();
    let stale = claim_line(
        &s.path,
        GID,
        dead_pid(),
        &our_hostname(),
        "0123456789abcdef",
    );
    fs::create_dir_all(&s.dir).expect("mkdir");
    fs::write(&s.path, &stale).expect("write stale");
    let marker = reclaim_marker_path(&s.path);
    fs::write(&marker, "another reclaimer\n").expect("write marker");

    let c = conflict(acquire(&s.dir, &gid()));
    assert!(c.message.contains("reclaim in progress"), "{}", c.message);
    assert!(
        c.message.contains(&format!("remove {}", marker.display())),
        "{}",
        c.message
    );
    assert_eq!(
        c.holder.as_ref().map(LockClaim::nonce),
        Some("0123456789abcdef")
    );
    assert_eq!(
        fs::read_to_string(&marker).expect("marker"),
        "another reclaimer\n"
    );
    assert_eq!(fs::read_to_string(&s.path).expect("lock"), stale);

    // Once the other reclaimer is gone (its marker removed), the reclaim goes through.
    fs::remove_file(&marker).expect("rm marker");
    let claim = acquire(&s.dir, &gid()).expect("reclaim");
    assert_eq!(
        fs::read_to_string(&s.path).expect("lock"),
        claim.to_json_line()
    );
    assert!(!marker.exists());
}

#[test]
fn a_lock_dir_that_is_a_file_is_an_io_error_naming_it() {
    let s = setup();
    fs::create_dir_all(s.dir.parent().expect("parent")).expect("mkdir");
    fs::write(&s.dir, "not a dir").expect("write");
    match acquire(&s.dir, &gid()) {
        Err(e @ AcquireError::Io { .. }) => {
            let AcquireError::Io { path, source, .. } = &e else {
                unreachable!()
            };
            assert_eq!(path, &s.dir);
            assert_eq!(source.kind(), std::io::ErrorKind::NotADirectory);
            assert!(
                e.to_string().contains(s.dir.to_str().expect("utf-8")),
                "{e}"
            );
        }
        other => panic!("expected an io error, got {other:?}"),
    }
    assert_eq!(fs::read_to_string(&s.dir).expect("read"), "not a dir");
}

#[test]
fn the_typescript_example_line_is_a_claim() {
    let s = setup_with(TS_LINE);
    let bytes = fs::read(&s.path).expect("read");
    let claim = parse_claim(&bytes, &gid(), &s.path).expect("parse the documented example");
    assert_eq!(claim.garden_id(), &gid());
    assert_eq!(claim.pid(), 4242);
    assert_eq!(claim.hostname(), "nuc");
    assert_eq!(claim.created_at(), "2026-06-13T03:55:45.123Z");
    assert_eq!(claim.nonce(), "9f2c4e01a7b3d855");
    assert_eq!(claim.lock_path(), s.path);
    assert_eq!(
        claim.recorded_lock_path(),
        "/home/u/.pi/entwurf-v2-locks/20260613T000000-aaaaaa.lock"
    );
    assert_eq!(claim.to_json_line(), TS_LINE);

    // And acquire reads it as a holder, not as garbage.
    let c = conflict(acquire(&s.dir, &gid()));
    assert_eq!(
        c.holder.as_ref().map(LockClaim::nonce),
        Some("9f2c4e01a7b3d855")
    );
}

#[test]
fn a_relative_lock_dir_yields_a_claim_with_an_absolute_path() {
    // Tests share the process cwd, so only read it: a relative path to a temp dir.
    let dir = tempfile::tempdir().expect("tempdir");
    let cwd = std::env::current_dir().expect("cwd");
    let up = cwd.components().count().saturating_sub(1);
    let mut relative = PathBuf::new();
    for _ in 0..up {
        relative.push("..");
    }
    relative.push(dir.path().strip_prefix("/").expect("absolute temp dir"));
    let claim = entwurf_v2_spawn::lock::acquire(&relative, &gid()).expect("acquire");
    assert!(claim.lock_path().is_absolute(), "{:?}", claim.lock_path());
    assert_eq!(
        claim.recorded_lock_path(),
        claim.lock_path().to_str().expect("utf-8")
    );
    assert_eq!(
        entwurf_v2_spawn::lock::release(&claim).expect("release"),
        entwurf_v2_spawn::lock::ReleaseOutcome::Released
    );
}

/// `line` (one claim ending in `}\n`) grown to exactly `size` bytes by an unknown field,
/// which the format tolerates.
fn padded_to(line: &str, size: usize) -> String {
    let body = line.strip_suffix("}\n").expect("a claim line");
    let bare = body.len() + ",\"pad\":\"\"}\n".len();
    assert!(size >= bare, "{size} < {bare}");
    format!("{body},\"pad\":\"{}\"}}\n", "x".repeat(size - bare))
}

#[test]
fn claims_up_to_64_kib_are_read_and_larger_files_are_not() {
    // A claim is ~250 bytes, but any file up to the 64 KiB limit is read whole: one of
    // 2 KiB and one of exactly 65536 bytes are ours to release; one byte more is too
    // large to be a claim, so it is not ours (and stays).
    for (size, expected) in [
        (2048, ReleaseOutcome::Released),
        (64 * 1024, ReleaseOutcome::Released),
        (64 * 1024 + 1, ReleaseOutcome::NotOwned),
    ] {
        let s = setup();
        let claim = acquire(&s.dir, &gid()).expect("acquire");
        let grown = padded_to(&claim.to_json_line(), size);
        assert_eq!(grown.len(), size);
        fs::write(&s.path, &grown).expect("grow the claim");
        assert_eq!(release(&claim).expect("release"), expected, "{size} bytes");
        assert_eq!(s.path.exists(), expected == ReleaseOutcome::NotOwned);
    }
}

#[test]
fn a_lock_file_over_64_kib_is_an_unreadable_conflict_that_says_so() {
    // Held by a live pid (ours) in a valid claim, but one byte over the limit: not
    // parsed at all, so no holder, and the message names the limit.
    let s = setup();
    let held = claim_line(
        &s.path,
        GID,
        std::process::id(),
        &our_hostname(),
        "0123456789abcdef",
    );
    fs::create_dir_all(&s.dir).expect("mkdir");
    fs::write(&s.path, padded_to(&held, 64 * 1024 + 1)).expect("write");
    let c = conflict(acquire(&s.dir, &gid()));
    assert!(c.holder.is_none(), "{c:?}");
    assert!(
        c.message.contains("larger than 65536 bytes"),
        "{}",
        c.message
    );
}
