//! Fault injection against the dispatch lock, with real files and real limits: a lock
//! dir that cannot be written (even as root, by dropping to `nobody` in a child), a lock
//! dir that is not a directory or sits under a file, and a write that fails while the
//! claim is being written (`RLIMIT_FSIZE` = 0 in a child, so `write` returns `EFBIG`).
//! In every case the error is an I/O error naming the path, and nothing is left behind.
//!
//! Privileged or process-wide faults run in a re-executed copy of this binary (an ignored
//! helper test selected with `ENTWURF_LOCK_FAULT`), so they cannot disturb other tests.

use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use entwurf_v2_spawn::GardenId;
use entwurf_v2_spawn::lock::{AcquireError, acquire, lock_path, reclaim_marker_path, release};

use entwurf_test_support::ci::skip_unless_ci;

const GID: &str = "20260613T000000-dddddd";
const FAULT_ENV: &str = "ENTWURF_LOCK_FAULT";
const DIR_ENV: &str = "ENTWURF_LOCK_FAULT_DIR";
/// The uid/gid a root run drops to, so directory permissions apply again.
const NOBODY: u32 = 65534;

fn gid() -> GardenId {
    GardenId::parse(GID).expect("gid")
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Asserts `result` is the I/O error `op` on `path` with `kind`.
fn expect_io(
    result: Result<impl std::fmt::Debug, AcquireError>,
    op: &str,
    path: &Path,
    kind: ErrorKind,
) {
    match result {
        Err(
            ref e @ AcquireError::Io {
                op: got_op,
                path: ref got_path,
                ref source,
            },
        ) => {
            assert_eq!((got_op, got_path.as_path()), (op, path), "{e}");
            assert_eq!(source.kind(), kind, "{e}: {source}");
            assert!(
                e.to_string().contains(path.to_str().expect("utf-8")),
                "the error must name the path: {e}"
            );
        }
        other => panic!(
            "expected io error {op} on {}, got {other:?}",
            path.display()
        ),
    }
}

/// Runs the helper for `fault` on `dir`, optionally as `nobody` from a copy of this
/// binary in `dir` (the build dir may not be searchable by `nobody`, e.g. in a private
/// clone).
fn helper(fault: &str, dir: &Path, as_nobody: bool) -> std::io::Result<Output> {
    let mut exe = std::env::current_exe().expect("current exe");
    if as_nobody {
        let copy = dir.join("helper-bin");
        fs::copy(&exe, &copy)?;
        fs::set_permissions(&copy, fs::Permissions::from_mode(0o755))?;
        exe = copy;
    }
    let mut cmd = Command::new(exe);
    cmd.args([
        "--exact",
        "faults_lock::lock_fault_helper",
        "--include-ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(FAULT_ENV, fault)
    .env(DIR_ENV, dir);
    if as_nobody {
        cmd.uid(NOBODY).gid(NOBODY);
    }
    // ETXTBSY: another test of this binary may fork while our copy's write descriptor is
    // still open; its child holds that descriptor until it execs (close-on-exec), and an
    // exec of a file open for writing fails. The window is a fork→exec, so a short retry
    // outlasts it.
    let mut tries = 0;
    loop {
        match cmd.output() {
            Err(e)
                if e.raw_os_error() == Some(nix::errno::Errno::ETXTBSY as i32) && tries < 100 =>
            {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            result => return result,
        }
    }
}

fn assert_helper_ok(out: &Output) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("LOCK-FAULT-OK"),
        "helper failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Not a test on its own: the faulted process (see the module docs).
#[test]
#[ignore = "helper process for the lock fault tests"]
fn lock_fault_helper() {
    let (Some(fault), Some(dir)) = (std::env::var(FAULT_ENV).ok(), std::env::var_os(DIR_ENV))
    else {
        eprintln!("lock_fault_helper only runs as a child of the lock fault tests");
        return;
    };
    let locks = PathBuf::from(dir).join("locks");
    let path = lock_path(&locks, &gid());
    match fault.as_str() {
        "read-only" => expect_io(
            acquire(&locks, &gid()),
            "create lock file",
            &path,
            ErrorKind::PermissionDenied,
        ),
        "file-size-limit" => {
            // SIGXFSZ blocked (not ignored: that needs unsafe), so the write returns EFBIG
            // instead of the signal killing us; RLIMIT_FSIZE is 0 for regular files.
            let mut xfsz = nix::sys::signal::SigSet::empty();
            xfsz.add(nix::sys::signal::Signal::SIGXFSZ);
            xfsz.thread_block().expect("block SIGXFSZ");
            use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
            let hard = getrlimit(Resource::Fsize).maximum;
            setrlimit(
                Resource::Fsize,
                Rlimit {
                    current: Some(0),
                    maximum: hard,
                },
            )
            .expect("setrlimit");
            let result = acquire(&locks, &gid());
            let Err(AcquireError::Io { source, .. }) = &result else {
                panic!("expected a write failure, got {result:?}");
            };
            assert_eq!(source.raw_os_error(), Some(nix::errno::Errno::EFBIG as i32));
            expect_io(result, "write lock file", &path, ErrorKind::FileTooLarge);
        }
        "unreadable" => unreadable_lock_case(&locks),
        other => panic!("unknown fault {other}"),
    }
    println!("LOCK-FAULT-OK");
}

/// Our own lock file made unreadable: acquire and release both say "read lock file"
/// (an I/O error naming it, not a conflict and not "absent"), and the file stays.
fn unreadable_lock_case(locks: &Path) {
    let path = lock_path(locks, &gid());
    let claim = acquire(locks, &gid()).expect("acquire");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o000)).expect("chmod");
    let acquired = acquire(locks, &gid());
    let released = release(&claim);
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod back");
    expect_io(
        acquired,
        "read lock file",
        &path,
        ErrorKind::PermissionDenied,
    );
    let err = released.expect_err("release cannot read the file");
    assert_eq!(
        (err.op, err.path.as_path()),
        ("read lock file", path.as_path())
    );
    assert_eq!(
        fs::read_to_string(&path).expect("read"),
        claim.to_json_line(),
        "the unreadable lock was left alone"
    );
    release(&claim).expect("release once readable again");
}

#[test]
fn a_lock_file_we_cannot_read_is_an_io_error_for_acquire_and_release_even_for_root() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let locks = tmp.path().join("locks");
    fs::create_dir(&locks).expect("mkdir");
    if !nix::unistd::geteuid().is_root() {
        unreadable_lock_case(&locks);
        return;
    }
    // Root bypasses permission bits: hand the dirs to nobody and drop to it.
    std::os::unix::fs::chown(tmp.path(), Some(NOBODY), Some(NOBODY)).expect("chown");
    std::os::unix::fs::chown(&locks, Some(NOBODY), Some(NOBODY)).expect("chown");
    match helper("unreadable", tmp.path(), true) {
        Ok(out) => assert_helper_ok(&out),
        // A temp dir nobody cannot reach (e.g. a private TMPDIR), as above. CI must run
        // it: this is its only check of an unreadable lock file.
        Err(e) if e.kind() == ErrorKind::PermissionDenied => skip_unless_ci(&format!(
            "a_lock_file_we_cannot_read_..._even_for_root: uid {NOBODY} cannot execute \
             a copy of the test binary under {}: {e}",
            tmp.path().display()
        )),
        Err(e) => panic!("running the helper as uid {NOBODY}: {e}"),
    }
}

#[test]
fn a_read_only_lock_dir_is_a_clear_error_and_nothing_is_written_even_for_root() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let locks = tmp.path().join("locks");
    fs::create_dir(&locks).expect("mkdir");
    let root = nix::unistd::geteuid().is_root();
    if root {
        // Root bypasses permission bits: hand the dirs to nobody and drop to it.
        std::os::unix::fs::chown(tmp.path(), Some(NOBODY), Some(NOBODY)).expect("chown");
        std::os::unix::fs::chown(&locks, Some(NOBODY), Some(NOBODY)).expect("chown");
    }
    fs::set_permissions(&locks, fs::Permissions::from_mode(0o500)).expect("chmod");
    if root {
        match helper("read-only", tmp.path(), true) {
            Ok(out) => assert_helper_ok(&out),
            // A temp dir nobody cannot reach (e.g. a private TMPDIR). CI must run it: this
            // is its only check of a read-only lock dir.
            Err(e) if e.kind() == ErrorKind::PermissionDenied => {
                skip_unless_ci(&format!(
                    "a_read_only_lock_dir_..._even_for_root: uid {NOBODY} cannot execute \
                     a copy of the test binary under {}: {e}",
                    tmp.path().display()
                ));
                return;
            }
            Err(e) => panic!("running the helper as uid {NOBODY}: {e}"),
        }
    } else {
        expect_io(
            acquire(&locks, &gid()),
            "create lock file",
            &lock_path(&locks, &gid()),
            ErrorKind::PermissionDenied,
        );
    }
    assert!(names(&locks).is_empty(), "{:?}", names(&locks));
    fs::set_permissions(&locks, fs::Permissions::from_mode(0o700)).expect("chmod back");
}

#[test]
fn a_lock_dir_under_a_file_is_a_clear_error_and_nothing_is_written() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("pi");
    fs::write(&file, "a file where a directory should be").expect("write");
    let locks = file.join("entwurf-v2-locks");
    expect_io(
        acquire(&locks, &gid()),
        "inspect lock dir",
        &locks,
        ErrorKind::NotADirectory,
    );
    assert_eq!(names(tmp.path()), ["pi"]);
    assert_eq!(
        fs::read_to_string(&file).expect("read"),
        "a file where a directory should be"
    );
}

#[test]
fn a_write_failure_while_writing_the_claim_leaves_no_stray_lock() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let locks = tmp.path().join("locks");
    fs::create_dir(&locks).expect("mkdir");
    assert_helper_ok(&helper("file-size-limit", tmp.path(), false).expect("run helper"));
    assert!(names(&locks).is_empty(), "{:?}", names(&locks));
}

#[test]
fn a_write_failure_while_reclaiming_leaves_neither_lock_nor_marker() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let locks = tmp.path().join("locks");
    fs::create_dir(&locks).expect("mkdir");
    let path = lock_path(&locks, &gid());
    // A provably stale claim: our hostname, a pid that exited and was reaped.
    let mut child = Command::new("true").spawn().expect("spawn true");
    let dead = child.id();
    child.wait().expect("wait");
    let host = nix::unistd::gethostname().expect("hostname");
    fs::write(
        &path,
        format!(
            "{{\"gardenId\":\"{GID}\",\"pid\":{dead},\"hostname\":{},\"createdAt\":\"2026-06-13T03:55:45.123Z\",\"nonce\":\"0123456789abcdef\",\"owner\":\"entwurf_v2\",\"lockPath\":\"x\"}}\n",
            serde_json::Value::from(host.to_string_lossy().as_ref())
        ),
    )
    .expect("write stale");
    assert_helper_ok(&helper("file-size-limit", tmp.path(), false).expect("run helper"));
    // The stale claim was provably dead and is gone; ours failed and was removed; the
    // reclaim marker was removed on the way out.
    assert!(names(&locks).is_empty(), "{:?}", names(&locks));
    assert!(!reclaim_marker_path(&path).exists());
}
