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
/// refusal comes at the bound, not after the program would have ended. The stand-in is
/// a wrapper that runs its real work without `exec` (as a launcher script may run
/// node): the whole group goes, not only the wrapper.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_version_is_killed_at_the_bound_and_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pid_file = dir.path().join("pid");
    let inner_file = dir.path().join("inner");
    let hanging = stand_in(
        dir.path(),
        "pi-hanging",
        &format!(
            "echo $$ > '{}'; sleep 600 & echo $! > '{}'; wait",
            pid_file.display(),
            inner_file.display()
        ),
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
    for (what, file) in [("wrapper", &pid_file), ("program it ran", &inner_file)] {
        let pid = std::fs::read_to_string(file).expect("a pid");
        assert!(
            gone(pid.trim()),
            "the hanging stand-in's {what} (pid {}) was not killed",
            pid.trim()
        );
    }
}

/// A runtime that answers and exits but leaves a process behind in its group, holding
/// its output: the answer comes at once (reading the output to its end would wait for
/// the leftover), and the leftover is gone: a question leaves nothing running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_that_leaves_a_process_behind_comes_at_once_and_the_process_goes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let inner_file = dir.path().join("inner");
    let leaving = stand_in(
        dir.path(),
        "pi-leaving",
        &format!(
            "sleep 600 & echo $! > '{}'; echo 1.6.0",
            inner_file.display()
        ),
    );
    let started = Instant::now();
    let answer = ask(&leaving).await;
    let took = started.elapsed();
    assert_eq!(answer.expect("answered"), RuntimeVersion::new(1, 6, 0));
    assert!(took < Duration::from_secs(5), "answered after {took:?}");
    let pid = std::fs::read_to_string(&inner_file).expect("the leftover's pid");
    assert!(
        gone(pid.trim()),
        "the leftover (pid {}) still runs",
        pid.trim()
    );
}

/// Whether `pid` is no running process (gone, or a zombie waiting for its parent) within
/// a second: a SIGKILLed process dies when it is next scheduled, not at the `kill`.
fn gone(pid: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"));
        if stat.is_err() || stat.is_ok_and(|s| s.contains(") Z ")) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A preflight nobody waits for any more (its future dropped: the caller timed out or
/// was cancelled) kills its `--version` at once, not at the bound ten seconds later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_preflight_kills_its_question() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pid_file = dir.path().join("pid");
    let hanging = stand_in(
        dir.path(),
        "pi-hanging",
        &format!("echo $$ > '{}'; exec sleep 600", pid_file.display()),
    );
    let asked = tokio::time::timeout(Duration::from_millis(300), ask(&hanging)).await;
    assert!(asked.is_err(), "a hanging question answered: {asked:?}");
    let pid = std::fs::read_to_string(&pid_file).expect("the stand-in's pid");
    assert!(
        gone(pid.trim()),
        "the question (pid {}) outlived its dropped preflight",
        pid.trim()
    );
}
