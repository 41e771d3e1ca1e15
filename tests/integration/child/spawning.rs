//! Spawn errors, the child's stdio and descriptors, dropped handles, concurrency.

use super::*;

// The supervisor's life without its handle, and racing askers, once per backend.
per_backend!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    dropping_the_handle_neither_kills_nor_leaks_a_zombie,
    concurrent_signals_and_waiters_agree,
);

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
    // Each child's tail is its own line, not the earlier child's.
    let mut req = sh("echo third >&2", dir.path());
    req.stderr = StderrTarget::AppendTo(log.clone());
    let child = spawn_child(&req).unwrap();
    assert_eq!(exit_of(&child).await.code, Some(0));
    assert_eq!(child.stderr_tail().as_deref(), Some("third"));
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

async fn dropping_the_handle_neither_kills_nor_leaks_a_zombie(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let child = spawn_on(backend, request("sleep", &["30"], dir.path())).unwrap();
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

async fn concurrent_signals_and_waiters_agree(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let child = spawn_on(backend, request("sleep", &["30"], dir.path())).unwrap();
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
