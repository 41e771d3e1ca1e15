//! The lock's answers to file-system failures that no honest setup can produce on
//! demand: a lock that vanishes between the read and the remove, a remove the kernel
//! refuses, a reclaim marker that cannot be created for a reason other than "exists".
//!
//! Each test re-executes this binary under `strace -P <path> -e inject=…`, which fails
//! exactly one system call on exactly one path (the rest of the process runs as usual),
//! running the ignored helper below with the scenario in `ENTWURF_LOCK_FAULT`. The
//! helper asserts what the library must answer and prints a token the test looks for.
//! It needs `strace` (CI installs it); without it, or without ptrace, it says so and
//! skips (never on CI).

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::Command;

use entwurf_test_support::strace::run_helper;
use entwurf_v2_spawn::GardenId;
use entwurf_v2_spawn::lock::{
    AcquireError, ReleaseOutcome, acquire, lock_path, reclaim_marker_path, release,
};

const SCENARIO_ENV: &str = "ENTWURF_LOCK_FAULT";
const DIR_ENV: &str = "ENTWURF_LOCK_FAULT_DIR";
const GID: &str = "20260613T000000-aaaaaa";
const OK: &str = "LOCK-FAULT-HELPER-OK";

fn gid() -> GardenId {
    GardenId::parse(GID).expect("gid")
}

/// A stale claim of ours in the exact on-disk format: our hostname, a pid that is gone.
fn write_stale_claim(path: &Path) {
    let mut child = Command::new("true").spawn().expect("spawn true");
    let pid = child.id();
    child.wait().expect("wait true");
    let host = nix::unistd::gethostname().expect("hostname");
    let line = format!(
        "{{\"gardenId\":\"{GID}\",\"pid\":{pid},\"hostname\":{},\"createdAt\":\"2026-06-13T03:55:45.123Z\",\"nonce\":\"0123456789abcdef\",\"owner\":\"entwurf_v2\",\"lockPath\":{}}}\n",
        serde_json::Value::from(host.to_string_lossy().as_ref()),
        serde_json::Value::from(path.to_str().expect("utf-8 temp path")),
    );
    std::fs::write(path, line).expect("write stale claim");
}

/// Not a test on its own: the traced process, one scenario per run.
#[test]
#[ignore = "helper process for the strace fault tests"]
fn lock_fault_helper_process() {
    let (Some(scenario), Some(dir)) = (
        std::env::var(SCENARIO_ENV).ok(),
        std::env::var_os(DIR_ENV).map(PathBuf::from),
    ) else {
        eprintln!("lock_fault_helper_process only runs under the strace tests");
        return;
    };
    let path = lock_path(&dir, &gid());
    match scenario.as_str() {
        // unlink → ENOENT: someone removed our lock between release's read and remove.
        "release-vanished" => {
            let claim = acquire(&dir, &gid()).expect("acquire");
            assert_eq!(release(&claim).expect("release"), ReleaseOutcome::Absent);
        }
        // unlink → EACCES: the lock is ours but cannot be removed; a person must look.
        "release-refused" => {
            let claim = acquire(&dir, &gid()).expect("acquire");
            let err = release(&claim).expect_err("a refused remove is an error");
            assert_eq!(err.op, "remove lock file");
            assert_eq!(err.path, path);
            assert_eq!(err.source.kind(), std::io::ErrorKind::PermissionDenied);
            assert!(path.exists(), "the lock is still there");
        }
        // unlink → ENOENT under the marker: the stale lock is "gone already", so the
        // reclaimer goes on to its exclusive create (which meets the file strace left
        // in place, a lost race): a conflict, never an I/O error.
        "reclaim-vanished" => {
            std::fs::create_dir_all(&dir).expect("mkdir");
            write_stale_claim(&path);
            match acquire(&dir, &gid()) {
                Err(AcquireError::Conflict(c)) => {
                    assert_eq!(
                        c.holder.as_ref().map(|h| h.nonce()),
                        Some("0123456789abcdef")
                    );
                }
                other => panic!("expected the lost-race conflict, got {other:?}"),
            }
            assert!(!reclaim_marker_path(&path).exists(), "marker left behind");
        }
        // unlink → EPERM under the marker: an I/O error naming the step, marker removed.
        "reclaim-refused" => {
            std::fs::create_dir_all(&dir).expect("mkdir");
            write_stale_claim(&path);
            match acquire(&dir, &gid()) {
                Err(AcquireError::Io {
                    op,
                    path: p,
                    source,
                }) => {
                    assert_eq!(op, "remove stale lock file");
                    assert_eq!(p, path);
                    assert_eq!(source.kind(), std::io::ErrorKind::PermissionDenied);
                }
                other => panic!("expected an I/O error, got {other:?}"),
            }
            assert!(!reclaim_marker_path(&path).exists(), "marker left behind");
            assert!(path.exists(), "the stale lock stays for a person");
        }
        // openat(marker) → EACCES: not "a reclaim in progress" but a broken environment.
        "marker-refused" => {
            std::fs::create_dir_all(&dir).expect("mkdir");
            write_stale_claim(&path);
            match acquire(&dir, &gid()) {
                Err(AcquireError::Io {
                    op,
                    path: p,
                    source,
                }) => {
                    assert_eq!(op, "create reclaim marker");
                    assert_eq!(p, reclaim_marker_path(&path));
                    assert_eq!(source.kind(), std::io::ErrorKind::PermissionDenied);
                }
                other => panic!("expected an I/O error, got {other:?}"),
            }
        }
        // mkdir(lock dir) → EACCES: the step that failed is named (not "inspect").
        "lock-dir-refused" => match acquire(&dir, &gid()) {
            Err(AcquireError::Io {
                op,
                path: p,
                source,
            }) => {
                assert_eq!(op, "create lock dir");
                assert_eq!(p, dir);
                assert_eq!(source.kind(), std::io::ErrorKind::PermissionDenied);
            }
            other => panic!("expected an I/O error, got {other:?}"),
        },
        // Absent at the first look, then mkdir → EEXIST (a concurrent acquirer won),
        // and what won is a file: not a directory, named as such.
        "lock-dir-raced" => {
            std::fs::write(&dir, "not a directory").expect("write");
            match acquire(&dir, &gid()) {
                Err(AcquireError::Io {
                    op,
                    path: p,
                    source,
                }) => {
                    assert_eq!(op, "use lock dir");
                    assert_eq!(p, dir);
                    assert_eq!(source.kind(), std::io::ErrorKind::NotADirectory);
                }
                other => panic!("expected an I/O error, got {other:?}"),
            }
        }
        other => panic!("unknown scenario {other}"),
    }
    println!("{OK}");
}

/// The path a scenario's fault is injected on.
enum On {
    Lock,
    Marker,
    Dir,
}

/// Runs the helper for `scenario` under strace, failing the first `syscall` on the
/// lock path (or its marker, or the lock dir) with `errno`.
fn run_faulted(scenario: &str, syscall: &str, errno: &str, on: On) {
    run_injected(scenario, &[&format!("{syscall}:error={errno}:when=1")], on);
}

/// Runs the helper for `scenario` under strace with these `-e inject=` specs on the
/// path `on` names.
fn run_injected(scenario: &str, injects: &[&str], on: On) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("locks");
    let path = lock_path(&dir, &gid());
    let target = match on {
        On::Lock => path,
        On::Marker => reclaim_marker_path(&path),
        On::Dir => dir.clone(),
    };
    let syscalls: Vec<&str> = injects
        .iter()
        .map(|i| i.split(':').next().unwrap_or(i))
        .collect();
    let mut args: Vec<OsString> = ["-f", "-qq", "-e", "signal=none", "-o", "/dev/null", "-e"]
        .into_iter()
        .map(OsString::from)
        .collect();
    args.push(format!("trace={}", syscalls.join(",")).into());
    for inject in injects {
        args.push("-e".into());
        args.push(format!("inject={inject}").into());
    }
    args.push("-P".into());
    args.push(target.into_os_string());
    let env = [
        (SCENARIO_ENV, OsStr::new(scenario)),
        (DIR_ENV, dir.as_os_str()),
    ];
    let Some(out) = run_helper(&args, "lock_fault_helper_process", &env) else {
        return;
    };
    let (stdout, stderr) = (&out.stdout, &out.stderr);
    assert!(
        out.status.success() && stdout.contains(OK),
        "{scenario} failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
}

#[test]
fn a_lock_gone_before_releases_remove_is_absent() {
    run_faulted("release-vanished", "unlink", "ENOENT", On::Lock);
}

#[test]
fn a_refused_remove_on_release_is_an_io_error() {
    run_faulted("release-refused", "unlink", "EACCES", On::Lock);
}

#[test]
fn a_stale_lock_gone_before_the_reclaimers_remove_is_not_an_io_error() {
    run_faulted("reclaim-vanished", "unlink", "ENOENT", On::Lock);
}

#[test]
fn a_refused_remove_of_a_stale_lock_is_an_io_error() {
    run_faulted("reclaim-refused", "unlink", "EPERM", On::Lock);
}

#[test]
fn a_reclaim_marker_that_cannot_be_created_is_an_io_error_not_busy() {
    run_faulted("marker-refused", "openat", "EACCES", On::Marker);
}

#[test]
fn a_lock_dir_that_cannot_be_created_is_an_io_error_naming_the_step() {
    run_faulted("lock-dir-refused", "mkdir", "EACCES", On::Dir);
}

#[test]
fn a_lock_dir_raced_into_existence_as_a_file_is_not_a_directory() {
    run_injected(
        "lock-dir-raced",
        &["statx:error=ENOENT:when=1", "mkdir:error=EEXIST:when=1"],
        On::Dir,
    );
}
