//! The watcher over the PRODUCTION dependencies against real OS objects: real children
//! (`/bin/sh` stands in for `pi` via the spawner option), real unix sockets, real timers
//! and real lock files in temp dirs.

use std::ffi::OsString;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use entwurf_v2_spawn::lock::{self, ReleaseOutcome};
use entwurf_v2_spawn::production::child::{SpawnError, spawn_child};
use entwurf_v2_spawn::production::{
    ProductionDeps, ProductionOptions, ProductionOutcome, ResumeLaunch, ResumeSpawnError,
    fixed_identity,
};
use entwurf_v2_spawn::resume_args::PassthroughArgs;
use entwurf_v2_spawn::watcher::{ChildExit, SpawnBgOutcome, execute_spawn_bg_resume};
use entwurf_v2_spawn::{Backend, GardenId, SpawnBgPlan};

const GID: &str = "20260613T000000-cccccc";

// The whole watch over the production dependencies, once per backend.
per_backend!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    socket_alive_releases_the_real_lock_and_the_resident_lives_on,
    timeout_terminates_the_real_child_and_its_exit_releases_once,
    a_child_ignoring_sigterm_is_killed_after_the_grace,
    a_child_slow_to_die_after_sigkill_is_seen_exiting_within_the_kill_grace,
    an_early_exit_releases_with_its_code,
    a_forged_socket_path_triggers_the_backstop_and_never_releases_through_it,
);
const DEADLINE: Duration = Duration::from_secs(10);

struct World {
    dir: tempfile::TempDir,
    options: ProductionOptions,
    releases: Arc<AtomicUsize>,
}

/// Production options rooted in a temp dir; the identity is fixed (the real resolver is
/// covered by tests/integration/identity/) and `script` replaces `pi` as an `sh -c` body.
fn world(script: &'static str) -> World {
    // Short: the control socket sits in `.pi/entwurf-control` under it (sun_path).
    let dir = entwurf_test_support::short_dir::short_tempdir();
    let mut options = ProductionOptions::with_home(dir.path(), None);
    options.resolve_identity =
        fixed_identity(dir.path().to_path_buf(), Some("p".into()), "m".into());
    options.spawner = Arc::new(move |launch: &ResumeLaunch<'_>| {
        let req = launch.request;
        let mut args: Vec<OsString> = vec!["-c".into(), script.into(), "stand-in-pi".into()];
        args.extend(req.args.iter().cloned());
        let mut req = req.clone();
        req.program = "/bin/sh".into();
        req.args = args;
        spawn_child(&req)
    });
    let releases = Arc::new(AtomicUsize::new(0));
    let counted = releases.clone();
    options.shared.release = Arc::new(move |claim| {
        counted.fetch_add(1, Ordering::SeqCst);
        lock::release(claim)
    });
    options.term_grace = Duration::from_millis(300);
    options.kill_grace = Duration::from_millis(500);
    std::fs::create_dir_all(&options.shared.control_dir).expect("control dir");
    World {
        dir,
        options,
        releases,
    }
}

/// Like [`world`] with a child that ignores SIGTERM, but the spawn returns only once the
/// shell has run its `trap '' TERM` (its `SigIgn` mask shows it). Without that, a
/// watcher that signals at once (the backstop) can beat the trap and the shell dies of
/// SIGTERM instead of being escalated to SIGKILL.
fn world_ignoring_term() -> World {
    let mut w = world("trap '' TERM; while :; do sleep 0.05; done");
    let spawn = w.options.spawner.clone();
    w.options.spawner = Arc::new(move |launch: &ResumeLaunch<'_>| {
        let child = spawn(launch)?;
        let ignores_term = || {
            entwurf_procfs::signal_mask(child.pid(), "SigIgn:")
                .is_some_and(|mask| entwurf_procfs::mask_has(mask, 15))
        };
        let deadline = std::time::Instant::now() + DEADLINE;
        while !ignores_term() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(child)
    });
    w
}

fn plan(w: &World, timeout: Duration) -> SpawnBgPlan {
    let gid = GardenId::parse(GID).expect("gid");
    SpawnBgPlan::new(gid.clone(), "wake up", w.options.socket_path(&gid), timeout).expect("plan")
}

async fn resume(w: &World, timeout: Duration) -> ProductionOutcome {
    let gid = GardenId::parse(GID).expect("gid");
    let claim = lock::acquire(&w.options.shared.lock_dir, &gid).expect("acquire");
    let deps = ProductionDeps::new(w.options.clone());
    let plan = plan(w, timeout);
    // Spawned, as a dispatcher would: this only compiles because the watch is `Send`.
    let watch = tokio::spawn(async move {
        tokio::time::timeout(
            DEADLINE,
            execute_spawn_bg_resume(&plan, Some(&claim), &deps),
        )
        .await
    });
    watch
        .await
        .expect("joined")
        .expect("bounded")
        .expect("no watch error")
}

fn lock_file(w: &World) -> PathBuf {
    lock::lock_path(
        &w.options.shared.lock_dir,
        &GardenId::parse(GID).expect("gid"),
    )
}

/// Running. Only called while the child is unreaped (its supervisor reaps on exit), so
/// the pid cannot have been reused.
fn alive(pid: u32) -> bool {
    entwurf_procfs::alive(pid)
}

async fn socket_alive_releases_the_real_lock_and_the_resident_lives_on(backend: Backend) {
    let mut w = world("sleep 30");
    w.options.shared.backend = backend;
    let path = w.options.socket_path(&GardenId::parse(GID).expect("gid"));
    let listener_path = path.clone();
    let listener = tokio::task::spawn_blocking(move || {
        std::thread::sleep(Duration::from_millis(50));
        UnixListener::bind(listener_path).expect("bind")
    });
    let outcome = resume(&w, Duration::from_secs(5)).await;
    let _listener = listener.await.expect("join");
    let SpawnBgOutcome::SocketAlive {
        pid,
        release,
        after_signal,
        resident,
    } = outcome
    else {
        panic!("expected socket-alive, got {outcome:?}");
    };
    assert_eq!(release, ReleaseOutcome::Released);
    assert_eq!(
        after_signal, None,
        "nothing signalled on the socket-alive path"
    );
    assert_eq!(w.releases.load(Ordering::SeqCst), 1);
    assert!(!lock_file(&w).exists());
    assert_eq!(pid, resident.pid(), "the outcome names the resident");
    assert!(alive(pid), "the resident outlives the watch");
    resident
        .signal(entwurf_v2_spawn::watcher::StopSignal::Kill)
        .await
        .expect("cleanup");
    let exit = tokio::time::timeout(DEADLINE, resident.exit())
        .await
        .expect("exit")
        .expect("exit");
    assert_eq!(
        exit,
        ChildExit {
            code: None,
            signal: Some(9)
        }
    );
}

async fn timeout_terminates_the_real_child_and_its_exit_releases_once(backend: Backend) {
    let mut w = world("exec sleep 30");
    w.options.shared.backend = backend;
    let started = std::time::Instant::now();
    let outcome = resume(&w, Duration::from_millis(100)).await;
    let SpawnBgOutcome::ChildExited { exit, release, .. } = outcome else {
        panic!("expected child-exited, got {outcome:?}");
    };
    assert_eq!(exit.signal, Some(15));
    assert_eq!(release, ReleaseOutcome::Released);
    assert_eq!(w.releases.load(Ordering::SeqCst), 1);
    assert!(!lock_file(&w).exists());
    assert!(started.elapsed() < Duration::from_millis(100) + w.options.term_grace);
}

async fn a_child_ignoring_sigterm_is_killed_after_the_grace(backend: Backend) {
    let mut w = world_ignoring_term();
    w.options.shared.backend = backend;
    let observe = Duration::from_millis(100);
    let started = Instant::now();
    let outcome = resume(&w, observe).await;
    let took = started.elapsed();
    let SpawnBgOutcome::ChildExited { exit, .. } = outcome else {
        panic!("expected child-exited, got {outcome:?}");
    };
    assert_eq!(exit.signal, Some(9));
    assert_eq!(w.releases.load(Ordering::SeqCst), 1);
    // "After the grace": SIGKILL only once the observe timeout and the whole SIGTERM
    // grace have run (timers never fire early, so no slack below), and its exit seen
    // within the kill grace (the watch would retain the lock after it; a second of
    // slack above absorbs the spawn and a loaded machine).
    let (term, kill) = (w.options.term_grace, w.options.kill_grace);
    assert!(
        took >= observe + term,
        "SIGKILL before the grace ran out: the whole resume took {took:?} < {:?}",
        observe + term
    );
    assert!(
        took < observe + term + kill + Duration::from_secs(1),
        "the kill's exit took {took:?} to be seen"
    );
}

/// The environment variable that turns this binary into [`heavy_stand_in`]: the file
/// it creates once its heap is filled.
const HEAVY_ENV: &str = "ENTWURF_HEAVY_STAND_IN_READY";
/// What the heavy stand-in holds: enough touched memory that the kernel takes tens of
/// milliseconds to free it after a SIGKILL (about 37 ms here for 256 MiB of 4 KiB pages,
/// 110 ms for 1 GiB; freeing a page costs tens of nanoseconds on any machine), against
/// the millisecond a zero kill grace would wait. Not more: filling it takes CPU from
/// the timing tests beside it. With transparent huge pages always on it frees faster,
/// and the test tells the two ladders apart less surely; the right ladder passes
/// either way.
const HEAVY_BYTES: usize = 256 << 20;

/// Not a test on its own: the stand-in for a pi with a big heap, run by
/// [`a_child_slow_to_die_after_sigkill_is_seen_exiting_within_the_kill_grace`] with
/// SIGTERM ignored (by the shell that execs it). It fills its heap, says so, and waits
/// to be killed — or for the test process, its parent, to be gone (a failed test or a
/// runner killing the test must not leave its heap behind: it is in a session of its own,
/// out of reach of a signal to the test's group).
#[test]
#[ignore = "helper process for the slow-death test"]
fn heavy_stand_in() {
    let Some(ready) = std::env::var_os(HEAVY_ENV) else {
        eprintln!("heavy_stand_in only runs as the slow-death test's child");
        return;
    };
    let heap = vec![1_u8; HEAVY_BYTES];
    std::hint::black_box(&heap);
    std::fs::write(ready, "").expect("the ready file");
    let parent = std::os::unix::process::parent_id();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::os::unix::process::parent_id() == parent && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A resident the kernel takes a while to tear down after SIGKILL (a big heap, as
/// node's can be): the watch waits the kill grace the options give for its exit and
/// reports the exit, instead of retaining the lock after the first millisecond.
async fn a_child_slow_to_die_after_sigkill_is_seen_exiting_within_the_kill_grace(backend: Backend) {
    let mut w = world("unused: the spawner below runs the heavy stand-in");
    w.options.shared.backend = backend;
    w.options.kill_grace = Duration::from_secs(5);
    let ready = w.dir.path().join("heavy-ready");
    let exe = std::env::current_exe().expect("this test binary");
    w.options.spawner = Arc::new(move |launch: &ResumeLaunch<'_>| {
        let mut req = launch.request.clone();
        req.program = "/bin/sh".into();
        // An ignored signal stays ignored across exec.
        req.args = vec![
            "-c".into(),
            "trap '' TERM; exec \"$0\" \"$@\"".into(),
            exe.clone().into(),
        ];
        req.args.extend(
            [
                "--exact",
                "production::heavy_stand_in",
                "--include-ignored",
                "--test-threads=1",
                "--quiet",
            ]
            .map(OsString::from),
        );
        req.env.push((HEAVY_ENV.into(), ready.clone().into()));
        let child = spawn_child(&req)?;
        let deadline = std::time::Instant::now() + DEADLINE;
        while !ready.exists() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        // A stand-in that never filled its heap (killed for memory, say) would make
        // the outcome below prove nothing.
        assert!(ready.exists(), "the heavy stand-in never filled its heap");
        Ok(child)
    });
    let outcome = resume(&w, Duration::from_millis(100)).await;
    let SpawnBgOutcome::ChildExited { exit, .. } = outcome else {
        panic!("expected child-exited within the 5 s kill grace, got {outcome:?}");
    };
    assert_eq!(exit.signal, Some(9));
    assert_eq!(w.releases.load(Ordering::SeqCst), 1);
}

async fn an_early_exit_releases_with_its_code(backend: Backend) {
    let mut w = world("exit 3");
    w.options.shared.backend = backend;
    let outcome = resume(&w, Duration::from_secs(5)).await;
    let SpawnBgOutcome::ChildExited { exit, .. } = outcome else {
        panic!("expected child-exited, got {outcome:?}");
    };
    assert_eq!(
        exit,
        ChildExit {
            code: Some(3),
            signal: None
        }
    );
    assert_eq!(w.releases.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_program_is_a_spawn_failure_that_releases_once() {
    let mut w = world("true");
    w.options.spawner = Arc::new(|launch: &ResumeLaunch<'_>| spawn_child(launch.request));
    w.options.shared.pi_program = w.dir.path().join("no-such-pi").into();
    let outcome = resume(&w, Duration::from_secs(5)).await;
    let SpawnBgOutcome::SpawnStartFailed { error, release } = outcome else {
        panic!("expected spawn-start-failed, got {outcome:?}");
    };
    // Typed all the way: no downcast needed to tell a missing program from the rest.
    assert!(
        matches!(&error, ResumeSpawnError::Spawn(SpawnError::Exec { .. })),
        "{error:?}"
    );
    assert_eq!(release, ReleaseOutcome::Released);
    assert_eq!(w.releases.load(Ordering::SeqCst), 1);
    assert!(!lock_file(&w).exists());
}

async fn a_forged_socket_path_triggers_the_backstop_and_never_releases_through_it(
    backend: Backend,
) {
    let mut w = world_ignoring_term();
    w.options.shared.backend = backend;
    let path = w.options.socket_path(&GardenId::parse(GID).expect("gid"));
    std::os::unix::fs::symlink("/nonexistent", &path).expect("symlink");
    let started = std::time::Instant::now();
    let outcome = resume(&w, Duration::from_secs(5)).await;
    // The backstop terminates at once (no 5 s wait), escalates to SIGKILL, sees the exit.
    let SpawnBgOutcome::ChildExited { exit, .. } = outcome else {
        panic!("expected child-exited via the backstop, got {outcome:?}");
    };
    assert_eq!(exit.signal, Some(9));
    let bound = w.options.term_grace + w.options.kill_grace + Duration::from_millis(500);
    assert!(
        started.elapsed() < bound,
        "backstop waited for the observe timeout: {:?}",
        started.elapsed()
    );
    assert_eq!(w.releases.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_resume_request_carries_the_v2_control_argv_and_the_session_cwd() {
    let mut w = world("true");
    w.options.shared.extension_args = PassthroughArgs::new(["-e", "/x/ext.ts"]).unwrap();
    let deps = ProductionDeps::new(w.options.clone());
    let req = deps
        .resume_request(
            &plan(&w, Duration::from_secs(1))
                .with_launch_args(["--approve"])
                .expect("launch args"),
        )
        .expect("request");
    let args: Vec<String> = req
        .args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        args,
        [
            "--mode",
            "json",
            "-p",
            "--entwurf-control",
            "--approve",
            "-e",
            "/x/ext.ts",
            "--session-id",
            GID,
            "--provider",
            "p",
            "--model",
            "m",
            "wake up"
        ]
    );
    assert_eq!(req.cwd, w.dir.path());
    let mismatched = plan(&w, Duration::from_secs(1))
        .with_cwd("/elsewhere")
        .expect("abs");
    assert!(matches!(
        deps.resume_request(&mismatched),
        Err(ResumeSpawnError::CwdMismatch { .. })
    ));
}

/// A spawner that blocks for `hold` (as fork/exec does, briefly), counting how many run
/// at once, then reports a spawn error (no child is needed to test the plumbing).
fn slow_spawner(
    hold: Duration,
    running: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
) -> entwurf_v2_spawn::production::Spawner {
    Arc::new(move |launch: &ResumeLaunch<'_>| {
        let req = launch.request;
        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
        peak.fetch_max(now, Ordering::SeqCst);
        std::thread::sleep(hold);
        running.fetch_sub(1, Ordering::SeqCst);
        Err(entwurf_v2_spawn::production::child::SpawnError::NoRuntime {
            program: req.program.clone(),
        })
    })
}

/// The spawn runs off the async thread: on a current-thread runtime, a timer task keeps
/// running while a (deliberately slow) spawner blocks. Run inline, the timer could only
/// fire after the spawner returned.
#[tokio::test(flavor = "current_thread")]
async fn a_blocking_spawn_does_not_stall_the_runtime() {
    use entwurf_v2_spawn::watcher::WatchDeps;
    let mut w = world("true");
    let (running, peak) = (Arc::default(), Arc::default());
    w.options.spawner = slow_spawner(Duration::from_millis(500), running, peak);
    let deps = ProductionDeps::new(w.options.clone());
    let plan = plan(&w, Duration::from_secs(1));
    let ticked = Arc::new(AtomicUsize::new(0));
    let ticker = {
        let ticked = ticked.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            ticked.store(1, Ordering::SeqCst);
        })
    };
    let spawned = deps.spawn(&plan).await;
    assert!(spawned.is_err(), "the stand-in spawner always fails");
    assert_eq!(
        ticked.load(Ordering::SeqCst),
        1,
        "a 20 ms timer must fire during a 500 ms spawn"
    );
    ticker.await.expect("ticker");
}

/// Concurrent spawns through one ProductionDeps (and its clones) are bounded, so a
/// burst of resumes does not grow the blocking pool by a thread per resume.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_spawns_are_bounded() {
    use entwurf_v2_spawn::watcher::WatchDeps;
    let mut w = world("true");
    let (running, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    w.options.spawner = slow_spawner(Duration::from_millis(50), running, peak.clone());
    let deps = ProductionDeps::new(w.options.clone());
    let plan = plan(&w, Duration::from_secs(1));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let (deps, plan) = (deps.clone(), plan.clone());
        tasks.spawn(async move { deps.spawn(&plan).await.is_err() });
    }
    while let Some(failed) = tasks.join_next().await {
        assert!(failed.expect("join"), "the stand-in spawner always fails");
    }
    let peak = peak.load(Ordering::SeqCst);
    assert!((1..=4).contains(&peak), "{peak} spawns ran at once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_path_the_portable_backend_cannot_reach_starts_nothing() {
    let mut w = world("true");
    w.options.shared.backend = Backend::Portable;
    let mut dir = w.dir.path().to_path_buf();
    while dir.as_os_str().len() <= entwurf_v2_spawn::socket::SUN_PATH_MAX {
        dir.push("a-long-control-dir");
    }
    w.options.shared.control_dir = dir;
    let spawns = Arc::new(AtomicUsize::new(0));
    let counted = spawns.clone();
    let spawn = w.options.spawner.clone();
    w.options.spawner = Arc::new(move |launch: &ResumeLaunch<'_>| {
        counted.fetch_add(1, Ordering::SeqCst);
        spawn(launch)
    });
    let outcome = resume(&w, Duration::from_secs(5)).await;
    let SpawnBgOutcome::SpawnStartFailed { error, release } = outcome else {
        panic!("expected spawn-start-failed, got {outcome:?}");
    };
    assert!(
        matches!(
            error,
            ResumeSpawnError::SocketUnobservable {
                backend: Backend::Portable,
                ..
            }
        ),
        "{error}"
    );
    assert_eq!(spawns.load(Ordering::SeqCst), 0, "a child was started");
    assert_eq!(release, ReleaseOutcome::Released);
    assert_eq!(w.releases.load(Ordering::SeqCst), 1);
}

/// Leaves a line in `w`'s stderr log of the gid, as an earlier resume of it would.
fn an_earlier_resume_wrote_the_log(w: &World) {
    let log = w
        .dir
        .path()
        .join(".pi/entwurf-v2-logs")
        .join(format!("{GID}.stderr.log"));
    std::fs::create_dir_all(log.parent().expect("log dir")).expect("log dir");
    std::fs::write(&log, "an earlier resume said this\n").expect("earlier log");
}

/// The child's own stderr reaches the `ChildExited` outcome: only what it wrote (not an
/// earlier resume's lines in the same log), its end when it wrote more than the tail
/// holds, cut at a line boundary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exit_carries_the_end_of_the_childs_own_stderr() {
    let w = world(
        "i=0; while [ $i -lt 400 ]; do echo \"noise line $i\" >&2; i=$((i+1)); done; \
         echo 'Error: Unknown option: --session-id' >&2; exit 1",
    );
    an_earlier_resume_wrote_the_log(&w);
    let outcome = resume(&w, Duration::from_secs(5)).await;
    let SpawnBgOutcome::ChildExited {
        exit, stderr_tail, ..
    } = &outcome
    else {
        panic!("expected child-exited, got {outcome:?}");
    };
    assert_eq!(exit.code, Some(1));
    let tail = stderr_tail.as_deref().expect("a stderr tail");
    assert!(
        tail.ends_with("Error: Unknown option: --session-id"),
        "the last line is the child's own: {tail:?}"
    );
    assert!(tail.len() <= 2048, "bounded: {} bytes", tail.len());
    assert!(
        tail.starts_with("noise line "),
        "whole lines only: {tail:?}"
    );
    assert!(!tail.contains("earlier resume"), "{tail:?}");

    // A child that wrote nothing has no tail, even with an earlier resume in the log.
    let quiet = world("exit 3");
    an_earlier_resume_wrote_the_log(&quiet);
    let outcome = resume(&quiet, Duration::from_secs(5)).await;
    assert!(
        matches!(
            outcome,
            SpawnBgOutcome::ChildExited {
                stderr_tail: None,
                ..
            }
        ),
        "{outcome:?}"
    );
}

/// The child is told the agent dir the identity was resolved from, absolute: it runs in
/// the session's cwd, where a relative path would name another dir (and pi would mint a
/// second session there).
#[test]
fn the_child_is_told_its_agent_dir_absolute() {
    let mut w = world("exit 0");
    w.options.shared.agent_dir = PathBuf::from("relative/agent");
    let deps = ProductionDeps::new(w.options.clone());
    let request = deps.resume_request(&plan(&w, DEADLINE)).expect("request");
    let told: Vec<_> = request
        .env
        .iter()
        .filter(|(name, _)| name == "PI_CODING_AGENT_DIR")
        .map(|(_, value)| PathBuf::from(value))
        .collect();
    let cwd = std::env::current_dir().expect("cwd");
    assert_eq!(told, [cwd.join("relative/agent")]);
}
