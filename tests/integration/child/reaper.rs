//! A child whose runtime shuts down before it exits is still reaped (by the process-wide
//! reaper thread), its exit still published, and a requested sweep still done: no zombie
//! and no survivor for the life of the dispatcher.

use super::*;

/// Polls without a runtime (the runtime is what was dropped).
fn settles(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    cond()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn a_child_outliving_its_runtime_is_reaped_and_its_exit_published() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let child = rt
        .block_on(async { spawn_child(&request("/bin/sleep", &["0.3"], dir.path())) })
        .unwrap();
    let pid = pid_of(&child);
    // The supervisor task is dropped here, long before the child exits.
    drop(rt);
    assert!(
        matches!(proc_state(pid), Some(s) if s != 'Z'),
        "still running after the runtime is gone: {:?}",
        proc_state(pid)
    );
    // Our process is the parent: without a reaper the exited child stays a zombie ('Z').
    assert!(
        settles(Duration::from_secs(5), || proc_state(pid).is_none()),
        "not reaped: state {:?}",
        proc_state(pid)
    );
    assert_eq!(
        child.try_exit(),
        Some(ChildExit {
            code: Some(0),
            signal: None
        }),
        "the reaper publishes the exit to the handle"
    );
}

#[test]
fn a_terminate_sent_before_the_runtime_shut_down_still_sweeps_the_group() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    // Everyone ignores SIGTERM; the leader exits on its own after a second, leaving a
    // member that only the sweep (SIGKILL to the group at the leader's exit) can end.
    let (child, gpid) = rt.block_on(async {
        let child = spawn_child(&sh(
            "trap '' TERM; sleep 60 & echo $! > gpid; sleep 1",
            dir.path(),
        ))
        .unwrap();
        let gpid: i32 = wait_for_file(&dir.path().join("gpid"))
            .await
            .trim()
            .parse()
            .unwrap();
        within("terminate", child.signal(StopSignal::Terminate))
            .await
            .unwrap();
        (child, gpid)
    });
    let pid = pid_of(&child);
    drop(rt);
    assert!(
        proc_state(pid).is_some() && !gone_or_dead(gpid),
        "leader and member outlive the runtime"
    );
    assert!(
        settles(Duration::from_secs(5), || proc_state(pid).is_none()),
        "leader not reaped: {:?}",
        proc_state(pid)
    );
    assert!(
        settles(Duration::from_secs(2), || gone_or_dead(gpid)),
        "the member survived the sweep: {:?}",
        proc_state(gpid)
    );
    assert_eq!(child.try_exit().map(|e| e.code), Some(Some(0)));
}
