//! The watch itself dropped (its future dropped by a timeout) or aborted (its task
//! cancelled) mid-watch, over the production dependencies.
//!
//! What must hold, and what this proves against the real process:
//! - **nothing is released** without an observation: the lock file is still there, with
//!   our nonce, and the release function was never called. The caller still holds the
//!   claim and must release it itself once it has dealt with the child;
//! - **nothing leaks**: no inotify watch, probe socket or timer task; the waiter's inotify
//!   descriptor is closed by the library's closer thread within about
//!   the library's close delay (50 ms); after that the only descriptor and the only task left are the
//!   child's pidfd and its supervisor;
//! - **the child keeps running as the detached resident it was started as** (its own
//!   session, so the dropped watch does not take it down); its supervisor stays only
//!   until it exits, to reap it, and then the pidfd and the task go too.
//!
//! Its own binary with a single test, because descriptor counts are per process.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use entwurf_procfs::{alive, proc_state};
use entwurf_test_support::world::{Child, World, gid, world};
use entwurf_v2_spawn::lock::{self, ReleaseOutcome, parse_claim};
use entwurf_v2_spawn::socket::{WaitOptions, await_socket_alive};
use entwurf_v2_spawn::watcher::execute_spawn_bg_resume;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio_util::sync::CancellationToken;

/// How soon after the drop the inotify descriptor must be closed: the library's close
/// delay (50 ms, after the kernel's mark reaper) with room for a loaded machine.
const CLOSED_WITHIN: Duration = Duration::from_millis(550);

/// Open descriptors of this process by kind (`anon_inode:inotify`, `socket`, ...).
fn fd_kinds() -> BTreeMap<String, usize> {
    let mut kinds = BTreeMap::new();
    for target in entwurf_procfs::open_fds().expect("fds").into_values() {
        let kind = match target.split_once(":[") {
            Some((kind, _)) => kind.to_owned(),
            None => target,
        };
        *kinds.entry(kind).or_default() += 1;
    }
    kinds
}

fn tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..500 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("not within 5 s: {what}");
}

/// After the watch is gone: held lock, one pidfd and one task more, a detached resident.
/// Then cleans up (kill, reap, release) and checks everything is back to `before`.
async fn check_and_clean(
    w: &World,
    claim: &lock::LockClaim,
    before: &BTreeMap<String, usize>,
    tasks_before: usize,
) {
    // Nothing released.
    assert_eq!(w.releases(), 0, "released without an observation");
    let bytes = std::fs::read(w.lock_file()).expect("the lock is still held");
    let on_disk = parse_claim(&bytes, &gid(), &w.lock_file()).expect("parse");
    assert_eq!(on_disk.nonce(), claim.nonce());

    // The detached resident lives on, in its own session.
    let pid = w.started_pid().await;
    assert!(alive(pid), "the child must keep running");
    let sid = nix::unistd::getsid(Some(Pid::from_raw(pid as i32))).expect("getsid");
    assert_eq!(
        sid.as_raw(),
        pid as i32,
        "started as its own session leader"
    );

    // The waiter's watch was removed when it was dropped; its inotify descriptor is
    // closed by the library's closer thread about 50 ms later (a close
    // right away would stall on the kernel's mark reaper).
    let dropped_at = Instant::now();
    let inotify = |kinds: &BTreeMap<String, usize>| kinds.get("anon_inode:inotify").copied();
    eventually("the inotify descriptor is closed", || {
        inotify(&fd_kinds()) == inotify(before)
    })
    .await;
    assert!(
        dropped_at.elapsed() < CLOSED_WITHIN,
        "inotify closed only after {:?}",
        dropped_at.elapsed()
    );

    // Nothing leaked but the child's pidfd and its supervisor task.
    let mut expected = before.clone();
    *expected.entry("anon_inode".to_owned()).or_default() += 1;
    let now = fd_kinds();
    assert_eq!(now, expected, "descriptors: before {before:?}");
    assert!(
        entwurf_procfs::open_fds()
            .expect("fds")
            .values()
            .any(|t| t == "anon_inode:[pidfd]"),
        "the extra descriptor is the child's pidfd"
    );
    assert_eq!(
        tasks(),
        tasks_before + 1,
        "only the supervisor task remains"
    );

    // Clean up as the caller must: stop the resident, then release the claim.
    kill(Pid::from_raw(pid as i32), Signal::SIGKILL).expect("kill");
    eventually("the supervisor reaps the child", || {
        proc_state(pid).is_none()
    })
    .await;
    eventually("the supervisor task ends", || tasks() == tasks_before).await;
    eventually("the pidfd is closed", || fd_kinds() == *before).await;
    assert_eq!(
        lock::release(claim).expect("release"),
        ReleaseOutcome::Released
    );
    *w.pid.lock().expect("pid") = None;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_or_aborted_watch_releases_nothing_leaks_nothing_and_leaves_the_resident() {
    // Warm up runtime-wide resources that live as long as the runtime.
    let cancel = CancellationToken::new();
    cancel.cancel();
    let _ = await_socket_alive(
        &std::env::temp_dir().join("entwurf-warm-up.sock"),
        cancel,
        WaitOptions::default(),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(20)).await;

    // 1. Dropped: the future is dropped by a timeout mid-watch.
    let w = world(Child::Sleeper, "none");
    let claim = w.acquire();
    let (plan, deps) = (w.plan(Duration::from_secs(30)), w.deps());
    let (before, tasks_before) = (fd_kinds(), tasks());
    let dropped = tokio::time::timeout(
        Duration::from_millis(300),
        execute_spawn_bg_resume(&plan, Some(&claim), &deps),
    )
    .await;
    assert!(
        dropped.is_err(),
        "the watch should still be running: {dropped:?}"
    );
    check_and_clean(&w, &claim, &before, tasks_before).await;

    // 2. Aborted: the watch runs as a task (a local one: the watch future is not Send)
    // and the task is aborted.
    let w = world(Child::Sleeper, "none");
    let claim = w.acquire();
    let (before, tasks_before) = (fd_kinds(), tasks());
    let local = tokio::task::LocalSet::new();
    local
        .run_until(async {
            let (plan, deps, claim) = (w.plan(Duration::from_secs(30)), w.deps(), claim.clone());
            let task = tokio::task::spawn_local(async move {
                execute_spawn_bg_resume(&plan, Some(&claim), &deps)
                    .await
                    .map(drop)
            });
            w.started_pid().await;
            tokio::time::sleep(Duration::from_millis(200)).await;
            // Mid-watch there is something to leak: the socket waiter's inotify instance.
            let during = fd_kinds();
            let inotify = |kinds: &BTreeMap<String, usize>| {
                kinds.get("anon_inode:inotify").copied().unwrap_or(0)
            };
            assert_eq!(inotify(&during), inotify(&before) + 1, "{during:?}");
            task.abort();
            let joined = tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .expect("the abort settles");
            assert!(
                joined.is_err_and(|e| e.is_cancelled()),
                "the task was not cancelled"
            );
        })
        .await;
    drop(local);
    check_and_clean(&w, &claim, &before, tasks_before).await;
}
