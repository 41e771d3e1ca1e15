//! Real children against the real OS: spawn, exit capture, group signals, sweeps.
//!
//! `/bin/sh` and `sleep` stand in for the resident. Every await is bounded, so a broken
//! supervisor fails a test instead of hanging it.

use std::ffi::OsString;
use std::future::Future;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use entwurf_v2_spawn::production::child::{
    ChildHandle, SignalDelivery, SpawnError, SpawnRequest, StderrTarget, spawn_child,
};
use entwurf_v2_spawn::watcher::{ChildExit, StopSignal};
use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const BOUND: Duration = Duration::from_secs(10);

async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(BOUND, fut)
        .await
        .unwrap_or_else(|_| panic!("{what}: no result within {BOUND:?}"))
}

fn request(program: &str, args: &[&str], cwd: &Path) -> SpawnRequest {
    SpawnRequest {
        program: OsString::from(program),
        args: args.iter().map(OsString::from).collect(),
        cwd: cwd.to_path_buf(),
        stderr: StderrTarget::Null,
    }
}

fn sh(script: &str, cwd: &Path) -> SpawnRequest {
    request("/bin/sh", &["-c", script], cwd)
}

async fn exit_of(child: &ChildHandle) -> ChildExit {
    within("exit", child.exit()).await.expect("exit observed")
}

/// Polls for a file the child writes once it is ready (e.g. after installing a trap).
async fn wait_for_file(path: &Path) -> String {
    within(&format!("waiting for {path:?}"), async {
        loop {
            if let Ok(text) = std::fs::read_to_string(path) {
                if text.ends_with('\n') || path.extension().is_some_and(|e| e == "ready") {
                    return text;
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
}

/// The state letter from /proc/<pid>/stat, if the process still exists.
fn proc_state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    after.trim_start().chars().next()
}

/// Gone, or a zombie/dead entry waiting for its (new) parent to reap it.
fn gone_or_dead(pid: i32) -> bool {
    matches!(kill(Pid::from_raw(pid), None), Err(Errno::ESRCH))
        || matches!(proc_state(pid), None | Some('Z' | 'X'))
}

async fn poll_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if cond() {
            return true;
        }
        if start.elapsed() > limit {
            eprintln!("{what}: still false after {limit:?}");
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn pid_of(child: &ChildHandle) -> i32 {
    i32::try_from(child.pid()).unwrap()
}

/// Whether `pid` ignores SIGTERM, from the SigIgn mask in /proc/<pid>/status.
fn ignores_term(pid: i32) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let mask = status
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:"))
        .map(|m| u64::from_str_radix(m.trim(), 16).unwrap())
        .unwrap();
    mask & (1 << (libc_sigterm() - 1)) != 0
}

fn libc_sigterm() -> u32 {
    Signal::SIGTERM as u32
}

/// This process's descriptors without close-on-exec (`O_CLOEXEC` is octal 02000000 in
/// the `flags:` line of /proc/self/fdinfo).
fn inheritable_fds() -> Vec<u32> {
    std::fs::read_dir("/proc/self/fdinfo")
        .unwrap()
        .filter_map(|e| {
            let name = e.ok()?.file_name();
            let fd: u32 = name.to_str()?.parse().ok()?;
            let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")).ok()?;
            let flags = info
                .lines()
                .find_map(|l| l.strip_prefix("flags:"))?
                .trim()
                .to_owned();
            let flags = u32::from_str_radix(&flags, 8).ok()?;
            (flags & 0o2_000_000 == 0).then_some(fd)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawn_returns_a_running_session_leader() {
    let dir = tempfile::tempdir().unwrap();
    let child = spawn_child(&request("sleep", &["30"], dir.path())).unwrap();
    let pid = pid_of(&child);

    assert!(kill(Pid::from_raw(pid), None).is_ok(), "kill(pid, 0)");
    assert!(
        matches!(proc_state(pid), Some('S' | 'R')),
        "{:?}",
        proc_state(pid)
    );
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(
        cmdline.starts_with(b"sleep\0"),
        "exec happened: {cmdline:?}"
    );
    assert_eq!(
        nix::unistd::getsid(Some(Pid::from_raw(pid)))
            .unwrap()
            .as_raw(),
        pid
    );
    assert_eq!(
        nix::unistd::getpgid(Some(Pid::from_raw(pid)))
            .unwrap()
            .as_raw(),
        pid
    );
    let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap();
    assert_eq!(cwd, dir.path().canonicalize().unwrap());
    assert_eq!(child.try_exit(), None, "still running");

    within("kill", child.signal(StopSignal::Kill))
        .await
        .unwrap();
    assert_eq!(exit_of(&child).await.signal, Some(9));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    for code in [0, 3] {
        let child = spawn_child(&sh(&format!("exit {code}"), dir.path())).unwrap();
        let exit = exit_of(&child).await;
        assert_eq!(
            exit,
            ChildExit {
                code: Some(code),
                signal: None
            }
        );
        assert_eq!(exit.to_string(), format!("exit code {code}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exit_before_anyone_awaits_is_observed() {
    let dir = tempfile::tempdir().unwrap();
    let child = spawn_child(&sh("exit 7", dir.path())).unwrap();
    let pid = pid_of(&child);
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Nobody awaited, yet the supervisor already observed and reaped it.
    assert!(
        poll_until("reaped without a waiter", Duration::from_secs(2), || {
            proc_state(pid).is_none()
        })
        .await
    );
    let expected = ChildExit {
        code: Some(7),
        signal: None,
    };
    assert_eq!(child.try_exit(), Some(expected));
    assert_eq!(exit_of(&child).await, expected);
    assert_eq!(exit_of(&child).await, expected, "exit() is callable again");
    // A future created before the handle is dropped still resolves after.
    let late = child.exit();
    drop(child);
    assert_eq!(within("late", late).await.unwrap(), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminate_stops_a_sleeping_child_quickly() {
    let dir = tempfile::tempdir().unwrap();
    let child = spawn_child(&request("sleep", &["30"], dir.path())).unwrap();
    let started = Instant::now();
    let delivery = within("terminate", child.send_signal(StopSignal::Terminate)).await;
    assert_eq!(delivery.unwrap(), SignalDelivery::Sent);
    let exit = exit_of(&child).await;
    assert_eq!(
        exit,
        ChildExit {
            code: None,
            signal: Some(15)
        }
    );
    assert_eq!(exit.to_string(), "killed by signal 15");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_ignoring_term_survives_it_and_dies_on_kill() {
    let dir = tempfile::tempdir().unwrap();
    // The trap sets SIGTERM to ignored; the `sleep`s inherit that across exec, so the
    // group signal kills none of them.
    let child = spawn_child(&sh(
        "trap '' TERM; : > term.ready; while :; do sleep 0.05; done",
        dir.path(),
    ))
    .unwrap();
    wait_for_file(&dir.path().join("term.ready")).await;
    assert!(ignores_term(pid_of(&child)));

    within("terminate", child.signal(StopSignal::Terminate))
        .await
        .unwrap();
    let early = tokio::time::timeout(Duration::from_millis(300), child.exit()).await;
    assert!(early.is_err(), "exited despite ignoring SIGTERM: {early:?}");
    assert_eq!(child.try_exit(), None);

    within("kill", child.signal(StopSignal::Kill))
        .await
        .unwrap();
    assert_eq!(
        exit_of(&child).await,
        ChildExit {
            code: None,
            signal: Some(9)
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminate_leaves_no_grandchild() {
    let dir = tempfile::tempdir().unwrap();
    let child = spawn_child(&sh("sleep 60 & echo $! > gpid; wait", dir.path())).unwrap();
    let gpid: i32 = wait_for_file(&dir.path().join("gpid"))
        .await
        .trim()
        .parse()
        .unwrap();
    assert!(kill(Pid::from_raw(gpid), None).is_ok(), "grandchild runs");
    assert_eq!(
        nix::unistd::getpgid(Some(Pid::from_raw(gpid)))
            .unwrap()
            .as_raw(),
        pid_of(&child),
        "grandchild is in the child's group"
    );

    within("terminate", child.signal(StopSignal::Terminate))
        .await
        .unwrap();
    let exit = exit_of(&child).await;
    assert_eq!(exit.signal, Some(15), "{exit}");
    assert!(
        poll_until("grandchild gone", Duration::from_secs(1), || gone_or_dead(
            gpid
        ))
        .await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grandchild_ignoring_term_is_swept_with_kill() {
    let dir = tempfile::tempdir().unwrap();
    // The leader dies on SIGTERM; the grandchild ignores it. Only the sweep can end it.
    let child = spawn_child(&sh(
        "(trap '' TERM; echo $(exec sh -c 'echo $PPID') > gpid; exec sleep 60) & wait",
        dir.path(),
    ))
    .unwrap();
    let gpid: i32 = wait_for_file(&dir.path().join("gpid"))
        .await
        .trim()
        .parse()
        .unwrap();
    // The subshell writes its own pid, then execs sleep under that pid.
    assert!(
        poll_until("grandchild became sleep", Duration::from_secs(2), || {
            std::fs::read(format!("/proc/{gpid}/cmdline")).is_ok_and(|c| c.starts_with(b"sleep\0"))
        })
        .await
    );
    assert!(ignores_term(gpid), "the grandchild ignores SIGTERM");
    assert!(!ignores_term(pid_of(&child)), "the leader does not");

    within("terminate", child.signal(StopSignal::Terminate))
        .await
        .unwrap();
    assert_eq!(
        exit_of(&child).await.signal,
        Some(15),
        "the leader died of SIGTERM"
    );
    assert!(
        poll_until("swept grandchild gone", Duration::from_secs(1), || {
            gone_or_dead(gpid)
        })
        .await,
        "the grandchild survived: {:?}",
        proc_state(gpid)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_signal_a_grandchild_survives_its_parent() {
    let dir = tempfile::tempdir().unwrap();
    let child = spawn_child(&sh("sleep 60 & echo $! > gpid; exit 0", dir.path())).unwrap();
    assert_eq!(
        exit_of(&child).await,
        ChildExit {
            code: Some(0),
            signal: None
        }
    );
    let gpid: i32 = wait_for_file(&dir.path().join("gpid"))
        .await
        .trim()
        .parse()
        .unwrap();

    // Give a (wrong) sweep every chance to happen.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let alive =
        kill(Pid::from_raw(gpid), None).is_ok() && matches!(proc_state(gpid), Some('S' | 'R'));
    // Clean up promptly, before asserting, so a failure leaves nothing behind.
    let _ = kill(Pid::from_raw(gpid), Signal::SIGKILL);
    assert!(
        alive,
        "the grandchild was killed although nothing was signalled"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_after_the_reap_sends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let child = spawn_child(&sh("exit 0", dir.path())).unwrap();
    exit_of(&child).await;
    for signal in [StopSignal::Terminate, StopSignal::Kill] {
        let started = Instant::now();
        let delivery = within("late signal", child.send_signal(signal))
            .await
            .unwrap();
        assert_eq!(delivery, SignalDelivery::AlreadyExited);
        assert!(started.elapsed() < Duration::from_millis(500));
        within("late signal", child.signal(signal)).await.unwrap();
    }
    assert_eq!(
        child.try_exit(),
        Some(ChildExit {
            code: Some(0),
            signal: None
        })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_program_is_a_spawn_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    for program in [
        "/nonexistent/entwurf-no-such-program",
        "entwurf-no-such-program-on-path",
    ] {
        let err = spawn_child(&request(program, &[], dir.path())).unwrap_err();
        assert!(matches!(err, SpawnError::Exec { .. }), "{err:?}");
        let text = err.to_string();
        assert!(text.contains(program), "{text}");
        assert!(text.contains(&dir.path().display().to_string()), "{text}");
        let source = std::error::Error::source(&err).expect("os error attached");
        assert!(
            source.to_string().to_lowercase().contains("no such file"),
            "{source}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_cwd_is_a_spawn_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("gone");
    let err = spawn_child(&request("sleep", &["30"], &missing)).unwrap_err();
    assert!(matches!(err, SpawnError::Cwd { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&missing.display().to_string()),
        "{err}"
    );

    let file = dir.path().join("file");
    std::fs::write(&file, "").unwrap();
    let err = spawn_child(&request("sleep", &["30"], &file)).unwrap_err();
    assert!(matches!(err, SpawnError::Cwd { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&file.display().to_string()),
        "{err}"
    );
}

#[test]
fn spawning_outside_a_runtime_starts_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let err = spawn_child(&sh(": > ran", dir.path())).unwrap_err();
    assert!(matches!(err, SpawnError::NoRuntime { .. }), "{err:?}");
    std::thread::sleep(Duration::from_millis(100));
    assert!(!marker.exists(), "a child ran although spawn failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stderr_is_appended_to_a_private_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("logs/nested/child.err");
    for line in ["first", "second"] {
        let mut req = sh(&format!("echo {line} >&2; echo not-on-stderr"), dir.path());
        req.stderr = StderrTarget::AppendTo(log.clone());
        let child = spawn_child(&req).unwrap();
        assert_eq!(exit_of(&child).await.code, Some(0));
    }
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "first\nsecond\n");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&log), 0o600);
    assert_eq!(mode(log.parent().unwrap()), 0o700);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unopenable_stderr_log_is_a_spawn_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, "").unwrap();
    let log = blocker.join("child.err");
    let mut req = request("sleep", &["30"], dir.path());
    req.stderr = StderrTarget::AppendTo(log.clone());
    let err = spawn_child(&req).unwrap_err();
    assert!(matches!(err, SpawnError::StderrLog { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&log.display().to_string()),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdio_is_null_or_the_log_and_nothing_else_is_inherited() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("child.err");
    let mut req = request("sleep", &["30"], dir.path());
    req.stderr = StderrTarget::AppendTo(log.clone());
    let child = spawn_child(&req).unwrap();
    let pid = pid_of(&child);

    let link = |fd: u32| std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).unwrap();
    assert_eq!(link(0), PathBuf::from("/dev/null"));
    assert_eq!(link(1), PathBuf::from("/dev/null"));
    assert_eq!(link(2), log);
    // Beyond 0-2 the child may only hold what this test process itself inherited without
    // close-on-exec from whoever started it (std cannot know about those); nothing the
    // library opened (pidfd, log, reactor) may leak.
    // The dynamic loader briefly holds a descriptor (libc.so) right after exec, so look
    // until the set settles; a real leak never goes away.
    let inherited = inheritable_fds();
    let strays = || -> Vec<(u32, Option<PathBuf>)> {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter(|fd| *fd > 2 && !inherited.contains(fd))
            .map(|fd| (fd, std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).ok()))
            .collect()
    };
    assert!(
        poll_until("child fds settle", Duration::from_secs(2), || strays()
            .is_empty())
        .await,
        "descriptors leaked into the child: {:?}",
        strays()
    );

    within("kill", child.signal(StopSignal::Kill))
        .await
        .unwrap();
    exit_of(&child).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_handle_neither_kills_nor_leaks_a_zombie() {
    let dir = tempfile::tempdir().unwrap();
    let child = spawn_child(&request("sleep", &["30"], dir.path())).unwrap();
    let pid = pid_of(&child);
    drop(child);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let alive = matches!(proc_state(pid), Some('S' | 'R'));
    // Clean up at once (the unreaped process pins its pid, so this cannot hit a stranger).
    let _ = nix::sys::signal::killpg(Pid::from_raw(pid), Signal::SIGKILL);
    assert!(
        alive,
        "dropping the handle killed the child: {:?}",
        proc_state(pid)
    );
    // The supervisor outlives the handle and reaps the child: no zombie stays behind.
    assert!(
        poll_until("reaped after drop", Duration::from_secs(2), || proc_state(
            pid
        )
        .is_none())
        .await,
        "left as {:?}",
        proc_state(pid)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_signals_and_waiters_agree() {
    let dir = tempfile::tempdir().unwrap();
    let child = spawn_child(&request("sleep", &["30"], dir.path())).unwrap();
    let waiters: Vec<_> = (0..4).map(|_| tokio::spawn(child.exit())).collect();
    let (a, b) = tokio::join!(
        child.send_signal(StopSignal::Terminate),
        child.send_signal(StopSignal::Kill)
    );
    for delivery in [a.unwrap(), b.unwrap()] {
        assert!(
            matches!(
                delivery,
                SignalDelivery::Sent | SignalDelivery::AlreadyExited
            ),
            "{delivery:?}"
        );
    }
    let exit = exit_of(&child).await;
    assert!(matches!(exit.signal, Some(9 | 15)), "{exit}");
    for waiter in waiters {
        assert_eq!(within("waiter", waiter).await.unwrap().unwrap(), exit);
    }
}
