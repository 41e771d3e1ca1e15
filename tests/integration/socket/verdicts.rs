//! Each kind of thing at the socket path, and the verdict the waiter reaches on it —
//! every test once per backend: the portable one must reach the same verdicts.

use super::*;

per_backend!(
    #[tokio::test] -> super::TestResult:
    a_real_listener_is_alive_and_await_resolves_at_once,
    a_symlink_to_a_live_listener_is_forged_and_never_connected,
    a_dangling_symlink_is_forged_too,
    a_regular_file_or_a_directory_is_forged_not_socket,
    an_absent_socket_waits_until_cancelled,
    an_already_cancelled_token_settles_at_once,
    a_stale_socket_is_dead_then_a_new_listener_is_seen_within_milliseconds,
    a_listener_that_binds_first_and_listens_later_is_seen,
    a_full_backlog_is_indeterminate_never_dead,
    a_path_longer_than_sun_path_is_reached_natively_and_a_typed_error_portably,
    a_path_of_exactly_the_sun_path_limit_is_reached,
    a_kept_connection_is_non_blocking_and_close_on_exec,
    a_socket_owned_by_another_uid_is_forged_and_never_connected,
    a_parent_that_is_a_file_is_indeterminate_never_absent,
    a_datagram_socket_at_the_path_is_indeterminate_not_dead,
);

async fn a_real_listener_is_alive_and_await_resolves_at_once(backend: Backend) -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("citizen.sock");
    let listener = UnixListener::bind(&path)?;

    assert_eq!(inspect_on(&path, backend), Inspection::SocketFile);
    let observation = inspect_and_probe(&path, PROBE_TIMEOUT, backend).await;
    assert_eq!(
        observation,
        SocketState {
            inspection: Inspection::SocketFile,
            probe: Some(Probe::Alive),
        }
    );
    assert_eq!(verdict(&observation), Verdict::Alive);

    let started = Instant::now();
    tokio::time::timeout(
        AT_ONCE,
        await_socket_alive(&path, CancellationToken::new(), on(backend)),
    )
    .await??;
    eprintln!("live listener: await resolved in {:?}", started.elapsed());

    // The probes really connected (and closed at once): their connections are queued.
    listener.set_nonblocking(true)?;
    assert!(
        listener.accept().is_ok(),
        "the probe never reached the listener"
    );
    Ok(())
}

async fn a_symlink_to_a_live_listener_is_forged_and_never_connected(
    backend: Backend,
) -> TestResult {
    let dir = tempfile::tempdir()?;
    let target = dir.path().join("elsewhere.sock");
    let listener = UnixListener::bind(&target)?;
    let path = dir.path().join("citizen.sock");
    std::os::unix::fs::symlink(&target, &path)?;

    let expected = Inspection::AddressConflict(AddressConflict::Symlink);
    assert_eq!(inspect_on(&path, backend), expected);
    let observation = inspect_and_probe(&path, PROBE_TIMEOUT, backend).await;
    assert_eq!(observation.inspection, expected);
    assert_eq!(observation.probe, None, "a symlink must not be probed");
    assert_eq!(
        verdict(&observation),
        Verdict::Forged(AddressConflict::Symlink)
    );

    let result = forged_now(&path, backend).await;
    let text = match &result {
        Err(e) => e.to_string(),
        Ok(()) => String::new(),
    };
    expect_forged(result, &path, AddressConflict::Symlink);
    assert!(
        text.contains("citizen.sock") && text.contains("never connected"),
        "{text}"
    );
    assert_never_connected(&listener)
}

async fn a_dangling_symlink_is_forged_too(backend: Backend) -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("citizen.sock");
    std::os::unix::fs::symlink(dir.path().join("nowhere.sock"), &path)?;
    assert_eq!(
        inspect_on(&path, backend),
        Inspection::AddressConflict(AddressConflict::Symlink)
    );
    expect_forged(
        forged_now(&path, backend).await,
        &path,
        AddressConflict::Symlink,
    );
    Ok(())
}

async fn a_regular_file_or_a_directory_is_forged_not_socket(backend: Backend) -> TestResult {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("file.sock");
    std::fs::write(&file, b"not a socket")?;
    let subdir = dir.path().join("dir.sock");
    std::fs::create_dir(&subdir)?;

    for path in [&file, &subdir] {
        let observation = inspect_and_probe(path, PROBE_TIMEOUT, backend).await;
        assert_eq!(
            observation.inspection,
            Inspection::AddressConflict(AddressConflict::NotSocket),
            "{path:?}"
        );
        assert_eq!(observation.probe, None);
        expect_forged(
            forged_now(path, backend).await,
            path,
            AddressConflict::NotSocket,
        );
    }
    Ok(())
}

async fn an_absent_socket_waits_until_cancelled(backend: Backend) -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("citizen.sock");

    let observation = inspect_and_probe(&path, PROBE_TIMEOUT, backend).await;
    assert_eq!(observation.inspection, Inspection::Absent);
    assert_eq!(observation.probe, None);
    assert_eq!(verdict(&observation), Verdict::Wait);

    let cancel = CancellationToken::new();
    let task = spawn_await(&path, &cancel, on(backend));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!task.is_finished(), "an absent socket must keep waiting");
    let cancelled_at = Instant::now();
    cancel.cancel();
    let (result, settled_at) = settle(task).await?;
    match result {
        Err(AwaitSocketError::Cancelled { path: got }) => assert_eq!(got, path),
        other => panic!("expected Cancelled, got {other:?}"),
    }
    let took = settled_at.duration_since(cancelled_at);
    eprintln!("absent: cancellation settled in {took:?}");
    assert!(took < PROMPT, "cancellation took {took:?}");
    Ok(())
}

async fn an_already_cancelled_token_settles_at_once(backend: Backend) -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("citizen.sock");
    let cancel = CancellationToken::new();
    cancel.cancel();
    let result =
        tokio::time::timeout(AT_ONCE, await_socket_alive(&path, cancel, on(backend))).await?;
    assert!(
        matches!(result, Err(AwaitSocketError::Cancelled { .. })),
        "{result:?}"
    );
    Ok(())
}

async fn a_stale_socket_is_dead_then_a_new_listener_is_seen_within_milliseconds(
    backend: Backend,
) -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("citizen.sock");
    drop(UnixListener::bind(&path)?); // The file stays; nobody listens.

    let observation = inspect_and_probe(&path, PROBE_TIMEOUT, backend).await;
    assert_eq!(observation.inspection, Inspection::SocketFile);
    match &observation.probe {
        Some(Probe::Dead(e)) => assert_eq!(e.errno(), Errno::ECONNREFUSED),
        other => panic!("expected Dead(ECONNREFUSED), got {other:?}"),
    }
    assert_eq!(verdict(&observation), Verdict::Wait);

    let cancel = CancellationToken::new();
    let _cancel_on_exit = cancel.clone().drop_guard();
    let task = spawn_await(&path, &cancel, prompt_wake(backend));
    // Long enough for the backoff to have grown well past the latency we assert.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!task.is_finished(), "a stale socket must keep waiting");

    std::fs::remove_file(&path)?;
    // The removal alone wakes the waiter; it must look, find nothing, and keep waiting.
    // The pause keeps that wake apart from the bind's, so a waiter that returned on it
    // (or on any earlier look) is caught below instead of passing with latency 0 (a
    // return before `listening_at` saturates the subtraction).
    tokio::time::sleep(Duration::from_millis(50)).await;
    let before_bind = Instant::now();
    let _listener = UnixListener::bind(&path)?; // bind + listen
    let listening_at = Instant::now();
    let (result, settled_at) = settle(task).await?;
    result?;
    assert!(
        settled_at >= before_bind,
        "the waiter returned {:?} before the new listener existed",
        before_bind.duration_since(settled_at)
    );
    let latency = settled_at.duration_since(listening_at);
    eprintln!("stale → new listener: detected {latency:?} after listen");
    assert!(latency < PROMPT, "detection took {latency:?}");
    Ok(())
}

async fn a_listener_that_binds_first_and_listens_later_is_seen(backend: Backend) -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("citizen.sock");
    let cancel = CancellationToken::new();
    let _cancel_on_exit = cancel.clone().drop_guard();
    let task = spawn_await(&path, &cancel, prompt_wake(backend));
    tokio::time::sleep(Duration::from_millis(20)).await;

    // bind() creates the file (an inotify event) …
    let fd = bound_not_listening(&path)?;
    tokio::time::sleep(Duration::from_millis(30)).await;
    assert!(!task.is_finished(), "resolved before listen()");
    // … listen() fires no event: only the backoff re-probe can see it.
    listen(&fd, Backlog::new(16)?)?;
    let listening_at = Instant::now();
    let (result, settled_at) = settle(task).await?;
    result?;
    let latency = settled_at.duration_since(listening_at);
    eprintln!("bind→30 ms→listen: detected {latency:?} after listen");
    assert!(latency < PROMPT, "detection took {latency:?}");
    Ok(())
}

async fn a_full_backlog_is_indeterminate_never_dead(backend: Backend) -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("citizen.sock");
    let server = bound_not_listening(&path)?;
    listen(&server, Backlog::new(0)?)?;

    // Fill the accept queue with connections nobody accepts, until the kernel says EAGAIN.
    let mut queued = Vec::new();
    let mut full = false;
    for _ in 0..64 {
        let client = socket(
            AddressFamily::Unix,
            SockType::Stream,
            SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
            None,
        )?;
        match connect(client.as_raw_fd(), &UnixAddr::new(&path)?) {
            Ok(()) => queued.push(client),
            Err(Errno::EAGAIN) => {
                full = true;
                break;
            }
            Err(e) => return Err(format!("filling the backlog: {e}").into()),
        }
    }
    assert!(full, "the backlog never filled ({} queued)", queued.len());

    let (inspection, file) = inspect_for_probe(&path, backend);
    assert_eq!(inspection, Inspection::SocketFile);
    let Some(file) = file else {
        return Err("no handle for a socket file".into());
    };
    assert_eq!(
        file.probe(PROBE_TIMEOUT).await,
        Probe::Indeterminate(ProbeDoubt::BacklogFull)
    );
    let observation = inspect_and_probe(&path, PROBE_TIMEOUT, backend).await;
    assert_eq!(
        observation.probe,
        Some(Probe::Indeterminate(ProbeDoubt::BacklogFull))
    );
    assert_eq!(verdict(&observation), Verdict::Wait);

    // The waiter keeps waiting (never dead, never alive) …
    let cancel = CancellationToken::new();
    let _cancel_on_exit = cancel.clone().drop_guard();
    let options = WaitOptions::default()
        .with_poll_interval(Duration::from_millis(20))
        .with_probe_timeout(PROBE_TIMEOUT)
        .with_backend(backend);
    let task = spawn_await(&path, &cancel, options);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !task.is_finished(),
        "a full backlog must keep the waiter waiting"
    );
    // … and resolves once the listener makes room.
    let listener = UnixListener::from(server);
    let _accepted = listener.accept()?;
    let (result, _) = settle(task).await?;
    result?;
    Ok(())
}

/// The longest path `sun_path` takes ([`SUN_PATH_MAX`] bytes, its NUL aside) is reached
/// by both backends: the portable one refuses only what is longer.
async fn a_path_of_exactly_the_sun_path_limit_is_reached(backend: Backend) -> TestResult {
    let dir = tempfile::tempdir()?;
    let base = dir.path().as_os_str().len();
    assert!(
        base + 10 < SUN_PATH_MAX,
        "{:?} is too long already",
        dir.path()
    );
    let name = format!(
        "{}.sock",
        "x".repeat(SUN_PATH_MAX - base - 1 - ".sock".len())
    );
    let path = dir.path().join(name);
    assert_eq!(path.as_os_str().len(), SUN_PATH_MAX);
    let _listener = UnixListener::bind(&path)?;
    let observation = inspect_and_probe(&path, PROBE_TIMEOUT, backend).await;
    assert_eq!(observation.probe, Some(Probe::Alive), "{path:?}");
    tokio::time::timeout(
        AT_ONCE,
        await_socket_alive(&path, CancellationToken::new(), on(backend)),
    )
    .await??;
    Ok(())
}

async fn a_path_longer_than_sun_path_is_reached_natively_and_a_typed_error_portably(
    backend: Backend,
) -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut long_dir = dir.path().to_path_buf();
    while long_dir.as_os_str().len() < 120 {
        long_dir.push("a-rather-long-directory-name");
    }
    std::fs::create_dir_all(&long_dir)?;
    let path = long_dir.join("20260613T000000-aaaaaa.sock");
    assert!(path.as_os_str().len() > 108, "{path:?} is not long enough");

    // bind(2) cannot take the long path; bind short, then move the socket file (a rename
    // keeps the inode, and the listener stays reachable through it).
    let short = dir.path().join("s.sock");
    let listener = UnixListener::bind(&short)?;
    std::fs::rename(&short, &path)?;

    let observation = inspect_and_probe(&path, PROBE_TIMEOUT, backend).await;
    assert_eq!(observation.inspection, Inspection::SocketFile);
    let awaited = tokio::time::timeout(
        AT_ONCE,
        await_socket_alive(&path, CancellationToken::new(), on(backend)),
    )
    .await?;
    if backend == Backend::Portable {
        // Connecting by path cannot reach it: unsure (never dead), and the waiter fails
        // at once with a typed error instead of waiting forever.
        let len = path.as_os_str().len();
        assert_eq!(
            observation.probe,
            Some(Probe::Indeterminate(ProbeDoubt::PathTooLong { len }))
        );
        match awaited {
            Err(AwaitSocketError::PathTooLong { len: got, max, .. }) => {
                assert_eq!((got, max), (len, SUN_PATH_MAX));
            }
            other => panic!("expected PathTooLong, got {other:?}"),
        }
        return assert_never_connected(&listener);
    }
    assert_eq!(observation.probe, Some(Probe::Alive));
    awaited?;
    listener.set_nonblocking(true)?;
    assert!(
        listener.accept().is_ok(),
        "the probe never reached the listener"
    );
    Ok(())
}

async fn a_socket_owned_by_another_uid_is_forged_and_never_connected(
    backend: Backend,
) -> TestResult {
    if !nix::unistd::geteuid().is_root() {
        entwurf_test_support::ci::skip_unless_ci(
            "a_socket_owned_by_another_uid_is_forged: chown to another uid needs root",
        );
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("citizen.sock");
    let listener = UnixListener::bind(&path)?;
    std::os::unix::fs::chown(&path, Some(65534), None)?;

    let conflict = AddressConflict::ForeignOwner { uid: 65534 };
    let observation = inspect_and_probe(&path, PROBE_TIMEOUT, backend).await;
    assert_eq!(
        observation.inspection,
        Inspection::AddressConflict(conflict)
    );
    assert_eq!(observation.probe, None);
    expect_forged(forged_now(&path, backend).await, &path, conflict);
    assert_never_connected(&listener)
}

async fn a_parent_that_is_a_file_is_indeterminate_never_absent(backend: Backend) -> TestResult {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"")?;
    let path = file.join("citizen.sock");

    match inspect_on(&path, backend) {
        Inspection::Indeterminate(e) => assert_eq!(e.errno(), Errno::ENOTDIR),
        other => panic!("expected Indeterminate(ENOTDIR), got {other:?}"),
    }
    assert_eq!(
        verdict(&inspect_and_probe(&path, PROBE_TIMEOUT, backend).await),
        Verdict::Wait
    );
    // Waits (not forged, not absent-and-done) until cancelled.
    let cancel = CancellationToken::new();
    let task = spawn_await(&path, &cancel, on(backend));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!task.is_finished());
    cancel.cancel();
    let (result, _) = settle(task).await?;
    assert!(
        matches!(result, Err(AwaitSocketError::Cancelled { .. })),
        "{result:?}"
    );
    Ok(())
}

async fn a_datagram_socket_at_the_path_is_indeterminate_not_dead(backend: Backend) -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("citizen.sock");
    let _datagram = UnixDatagram::bind(&path)?;
    let observation = inspect_and_probe(&path, PROBE_TIMEOUT, backend).await;
    assert_eq!(observation.inspection, Inspection::SocketFile);
    match &observation.probe {
        Some(Probe::Indeterminate(ProbeDoubt::Os(e))) => {
            assert_eq!(e.errno(), Errno::EPROTOTYPE)
        }
        other => panic!("expected Indeterminate(EPROTOTYPE), got {other:?}"),
    }
    assert_eq!(verdict(&observation), Verdict::Wait);
    Ok(())
}

/// The connection a probe keeps (`SocketFile::connect`, what the dispatch client talks
/// over) is non-blocking, as tokio needs of a stream it did not create (a blocking one
/// would stall the runtime thread on a read), and close-on-exec, so no child the
/// dispatcher starts while it is open inherits a citizen's connection.
async fn a_kept_connection_is_non_blocking_and_close_on_exec(backend: Backend) -> TestResult {
    use nix::fcntl::{FcntlArg, FdFlag, OFlag, fcntl};
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("citizen.sock");
    let _listener = UnixListener::bind(&path)?;
    let (_, file) = inspect_for_probe(&path, backend);
    let file = file.ok_or("no handle for a socket file")?;
    let stream = file
        .connect(PROBE_TIMEOUT)
        .await
        .map_err(|probe| format!("connect: {probe:?}"))?;
    let status = OFlag::from_bits_truncate(fcntl(&stream, FcntlArg::F_GETFL)?);
    assert!(status.contains(OFlag::O_NONBLOCK), "blocking: {status:?}");
    let descriptor = FdFlag::from_bits_truncate(fcntl(&stream, FcntlArg::F_GETFD)?);
    assert!(
        descriptor.contains(FdFlag::FD_CLOEXEC),
        "inherited by children: {descriptor:?}"
    );
    Ok(())
}
