//! The runtime preflight against stand-ins that answer `--version` the ways a runtime
//! can: the floor's own version and the one just below it, something that is no version,
//! a failing exit, a hang, and the environment it is asked in (Node's compile cache off,
//! so a question writes nothing). Each outcome is asserted by its type, not its text.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use entwurf_v2_spawn::runtime::{
    ArgvDialect, RuntimeError, RuntimeVersion, VERSION_TIMEOUT, preflight,
};

/// A `pi` stand-in in `dir` running `body` as a shell script.
fn stand_in(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("stand-in");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

async fn ask(program: &Path) -> Result<RuntimeVersion, RuntimeError> {
    preflight(program.as_os_str(), ArgvDialect::SpawnBg).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_floor_itself_is_accepted_and_the_release_below_it_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let floor = stand_in(dir.path(), "pi-floor", "echo 0.76.0");
    assert_eq!(
        ask(&floor).await.expect("0.76.0 is the floor: accepted"),
        RuntimeVersion::new(0, 76, 0)
    );
    let below = stand_in(dir.path(), "pi-below", "echo 0.75.9");
    match ask(&below).await {
        Err(RuntimeError::BelowFloor {
            found,
            floor,
            dialect,
            ..
        }) => {
            assert_eq!(found, RuntimeVersion::new(0, 75, 9));
            assert_eq!(floor, RuntimeVersion::new(0, 76, 0));
            assert_eq!(dialect, ArgvDialect::SpawnBg);
        }
        other => panic!("0.75.9: expected BelowFloor, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_that_is_no_version_is_unparsable_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let garbage = stand_in(dir.path(), "pi-garbage", "echo 'pi, the friendly one'");
    match ask(&garbage).await {
        Err(RuntimeError::Unparsable { output, .. }) => {
            assert_eq!(output, "pi, the friendly one");
        }
        other => panic!("expected Unparsable, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_version_is_refused_with_its_status_and_stderr() {
    let dir = tempfile::tempdir().expect("tempdir");
    let failing = stand_in(
        dir.path(),
        "pi-failing",
        "echo 1.6.0; echo 'Error: cannot find module' >&2; exit 3",
    );
    match ask(&failing).await {
        Err(e @ RuntimeError::VersionFailed { .. }) => {
            let RuntimeError::VersionFailed { status, stderr, .. } = &e else {
                unreachable!()
            };
            assert!(status.contains('3'), "{status}");
            assert_eq!(stderr, "Error: cannot find module");
            assert!(e.advice().contains("--version"), "{}", e.advice());
        }
        other => panic!("exit 3: expected VersionFailed, got {other:?}"),
    }
}

/// A runtime that never answers is killed at the bound and refused as timed out; the
/// refusal comes at the bound, not after the program would have ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_version_is_killed_at_the_bound_and_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pid_file = dir.path().join("pid");
    let hanging = stand_in(
        dir.path(),
        "pi-hanging",
        &format!("echo $$ > '{}'; exec sleep 600", pid_file.display()),
    );
    let started = Instant::now();
    let refusal = ask(&hanging).await;
    let took = started.elapsed();
    match refusal {
        Err(RuntimeError::TimedOut { after, .. }) => assert_eq!(after, VERSION_TIMEOUT),
        other => panic!("expected TimedOut, got {other:?}"),
    }
    assert!(
        took >= VERSION_TIMEOUT && took < VERSION_TIMEOUT + Duration::from_secs(5),
        "refused after {took:?}"
    );
    let pid = std::fs::read_to_string(&pid_file).expect("the stand-in's pid");
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid.trim()));
    assert!(
        stat.is_err() || stat.is_ok_and(|s| s.contains(") Z ")),
        "the hanging stand-in (pid {pid}) was not killed"
    );
}

/// pi turns Node's compile cache on, which writes into the temp dir: a question must not
/// leave anything, so the preflight turns it off. The stand-in answers a version only
/// when asked that way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_question_is_asked_with_nodes_compile_cache_off() {
    let dir = tempfile::tempdir().expect("tempdir");
    let picky = stand_in(
        dir.path(),
        "pi-picky",
        r#"if [ "$NODE_DISABLE_COMPILE_CACHE" = 1 ]; then echo 1.6.0; else echo "compile cache on"; fi"#,
    );
    assert_eq!(
        ask(&picky).await.expect("asked with the cache off"),
        RuntimeVersion::new(1, 6, 0)
    );
}
