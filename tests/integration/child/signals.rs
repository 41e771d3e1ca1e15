//! Exit capture and group signals: terminate, kill, sweeps, no signal after the reap —
//! each test once per backend (a pidfd natively, `SIGCHLD` + `waitid` portably).

use super::*;

per_backend!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    spawn_returns_a_running_session_leader,
    exit_codes_are_reported,
    an_exit_before_anyone_awaits_is_observed,
    terminate_stops_a_sleeping_child_quickly,
    a_child_ignoring_term_survives_it_and_dies_on_kill,
    terminate_leaves_no_grandchild,
    a_grandchild_ignoring_term_is_swept_with_kill,
    without_a_signal_a_grandchild_survives_its_parent,
    a_signal_after_the_reap_sends_nothing,
);

async fn spawn_returns_a_running_session_leader(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let child = spawn_on(backend, request("sleep", &["30"], dir.path())).unwrap();
    let pid = pid_of(&child);

    assert!(kill(Pid::from_raw(pid), None).is_ok(), "kill(pid, 0)");
    assert!(
        matches!(proc_state(pid), Some('S' | 'R')),
        "{:?}",
        proc_state(pid)
    );
    let cmdline = entwurf_procfs::cmdline(u32::try_from(pid).unwrap());
    assert!(
        cmdline.first().is_some_and(|arg| arg == "sleep"),
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

async fn exit_codes_are_reported(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    for code in [0, 3] {
        let child = spawn_on(backend, sh(&format!("exit {code}"), dir.path())).unwrap();
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

async fn an_exit_before_anyone_awaits_is_observed(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let child = spawn_on(backend, sh("exit 7", dir.path())).unwrap();
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

async fn terminate_stops_a_sleeping_child_quickly(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let child = spawn_on(backend, request("sleep", &["30"], dir.path())).unwrap();
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

async fn a_child_ignoring_term_survives_it_and_dies_on_kill(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    // The trap sets SIGTERM to ignored; the `sleep`s inherit that across exec, so the
    // group signal kills none of them.
    let child = spawn_on(
        backend,
        sh(
            "trap '' TERM; : > term.ready; while :; do sleep 0.05; done",
            dir.path(),
        ),
    )
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

async fn terminate_leaves_no_grandchild(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let child = spawn_on(backend, sh("sleep 60 & echo $! > gpid; wait", dir.path())).unwrap();
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

async fn a_grandchild_ignoring_term_is_swept_with_kill(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    // The leader dies on SIGTERM; the grandchild ignores it. Only the sweep can end it.
    let child = spawn_on(
        backend,
        sh(
            "(trap '' TERM; echo $(exec sh -c 'echo $PPID') > gpid; exec sleep 60) & wait",
            dir.path(),
        ),
    )
    .unwrap();
    let gpid: i32 = wait_for_file(&dir.path().join("gpid"))
        .await
        .trim()
        .parse()
        .unwrap();
    // The subshell writes its own pid, then execs sleep under that pid.
    assert!(
        poll_until("grandchild became sleep", Duration::from_secs(2), || {
            entwurf_procfs::cmdline(u32::try_from(gpid).unwrap())
                .first()
                .is_some_and(|arg| arg == "sleep")
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

async fn without_a_signal_a_grandchild_survives_its_parent(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let child = spawn_on(backend, sh("sleep 60 & echo $! > gpid; exit 0", dir.path())).unwrap();
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

async fn a_signal_after_the_reap_sends_nothing(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let child = spawn_on(backend, sh("exit 0", dir.path())).unwrap();
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
