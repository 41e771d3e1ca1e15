//! Sections 2 and 3: spawn → handle, terminate → exit observed, kill after the grace.
//!
//! Real children: the stand-in (this binary, see `standin.rs`) and `/bin/sleep`. Two
//! levels are measured:
//! - the child handle: `spawn_child` until it returns; `ChildHandle::signal` sent until
//!   `ChildHandle::exit()` resolves — with the native backend (pidfd) and the portable
//!   one (`SIGCHLD` + `waitid`), interleaved in every trial;
//! - the watcher: `execute_spawn_bg_resume` over `ProductionDeps` (socket never
//!   appears, observe timeout 20 ms), wrapped only to stamp when the watcher sends each
//!   signal and when it calls release (= the exit observed by the watcher).
//!
//! Before any signal, the bench waits until the stand-in has blocked SIGTERM
//! (`/proc/<pid>/status`), so the signal meets the behaviour being measured and not a
//! half-started process.

use std::ffi::OsString;
use std::path::Path;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use entwurf_v2_spawn::lock::{self, LockClaim, ReleaseOutcome};
use entwurf_v2_spawn::production::child::{ChildHandle, SpawnRequest, StderrTarget, spawn_child};

use entwurf_v2_spawn::production::{
    ProductionDeps, ProductionOptions, ResumeLaunch, ResumeSpawnError, StderrPolicy, fixed_identity,
};
use entwurf_v2_spawn::watcher::{
    BoxError, ChildExit, SpawnBgOutcome, StopSignal, WatchDeps, execute_spawn_bg_resume,
};
use entwurf_v2_spawn::{Backend, GardenId, SpawnBgPlan};
use tokio_util::sync::CancellationToken;

use crate::standin;
use crate::stats::{Row, ms};
use crate::sys::until_ready;

pub fn stand_in_request(cwd: &Path, mode: &str, extra: &[&str]) -> SpawnRequest {
    let mut args: Vec<OsString> = vec![standin::FLAG.into(), mode.into(), "-".into()];
    args.extend(extra.iter().map(OsString::from));
    SpawnRequest::new(std::env::current_exe().expect("current_exe"), args, cwd)
}

const GRACE: Duration = Duration::from_millis(50);

/// Samples of the handle-level measurements, one set per backend.
#[derive(Default)]
struct Handle {
    spawn_standin: Vec<f64>,
    spawn_sleep: Vec<f64>,
    term_standin: Vec<f64>,
    term_sleep: Vec<f64>,
    kill_after: Vec<f64>,
    kill_total: Vec<f64>,
}

/// The backends measured side by side; every trial runs both, interleaved, so they see
/// the same machine load.
const BACKENDS: [Backend; 2] = [Backend::Native, Backend::Portable];

pub async fn run(trials: usize) -> Vec<Row> {
    let dir = tempfile::tempdir().expect("tempdir");
    let cwd = dir.path();
    let mut samples: [Handle; 2] = Default::default();
    for _ in 0..trials {
        for (backend, samples) in BACKENDS.into_iter().zip(samples.iter_mut()) {
            handle_trial(cwd, backend, samples).await;
        }
    }

    let mut rows = Vec::new();
    for (backend, h) in BACKENDS.into_iter().zip(samples) {
        // Native rows keep their historical labels; portable ones say so.
        let tag = |label: String| match backend {
            Backend::Native => label,
            Backend::Portable => format!("{label} [portable]"),
        };
        rows.extend([
            Row::new(
                "spawn→handle",
                tag("spawn_child, stand-in (bench binary)".into()),
                h.spawn_standin,
            ),
            Row::new(
                "spawn→handle",
                tag("spawn_child, /bin/sleep".into()),
                h.spawn_sleep,
            ),
            Row::new(
                "terminate→exit",
                tag("handle, stand-in exits 0 on SIGTERM".into()),
                h.term_standin,
            ),
            Row::new(
                "terminate→exit",
                tag("handle, /bin/sleep (default action)".into()),
                h.term_sleep,
            ),
            Row::new(
                "kill→exit",
                tag("handle, SIGTERM ignored, SIGKILL after grace".into()),
                h.kill_after,
            ),
            Row::new(
                "terminate→exit",
                tag(format!(
                    "handle, total incl. {} ms grace",
                    GRACE.as_millis()
                )),
                h.kill_total,
            ),
        ]);
    }
    rows.extend(watcher_level(trials, cwd).await);
    rows
}

/// One trial of each handle-level measurement with `backend` observing the exits.
async fn handle_trial(cwd: &Path, backend: Backend, h: &mut Handle) {
    let on = |req: SpawnRequest| req.with_backend(backend);
    let sleep_req = SpawnRequest::new("/bin/sleep", ["30"], cwd).with_backend(backend);

    // Stand-in that exits 0 on SIGTERM.
    let t0 = Instant::now();
    let child = spawn_child(&on(stand_in_request(cwd, "term-exit", &[]))).expect("spawn");
    h.spawn_standin.push(ms(t0.elapsed()));
    until_ready(child.pid()).await;
    let t0 = Instant::now();
    child.signal(StopSignal::Terminate).await.expect("signal");
    let exit = child.exit().await.expect("exit");
    h.term_standin.push(ms(t0.elapsed()));
    assert_eq!(exit.code, Some(0), "the stand-in handles SIGTERM: {exit}");

    // /bin/sleep: SIGTERM's default action ends it.
    let t0 = Instant::now();
    let child = spawn_child(&sleep_req).expect("spawn sleep");
    h.spawn_sleep.push(ms(t0.elapsed()));
    // Past exec (spawn_child returns after it); give it a moment to be a real sleep.
    wait_comm(child.pid(), "sleep").await;
    let t0 = Instant::now();
    child.signal(StopSignal::Terminate).await.expect("signal");
    let exit = child.exit().await.expect("exit");
    h.term_sleep.push(ms(t0.elapsed()));
    assert_eq!(exit.signal, Some(15), "sleep dies of SIGTERM: {exit}");

    // Stand-in ignoring SIGTERM: terminate, grace, kill.
    let child = spawn_child(&on(stand_in_request(cwd, "ignore-term", &[]))).expect("spawn");
    until_ready(child.pid()).await;
    let t_term = Instant::now();
    child.signal(StopSignal::Terminate).await.expect("signal");
    let early = tokio::time::timeout(GRACE, child.exit()).await;
    assert!(early.is_err(), "ignored SIGTERM yet exited: {early:?}");
    let t_kill = Instant::now();
    child.signal(StopSignal::Kill).await.expect("signal");
    let exit = child.exit().await.expect("exit");
    let t_exit = Instant::now();
    assert_eq!(exit.signal, Some(9), "{exit}");
    h.kill_after.push(ms(t_exit - t_kill));
    h.kill_total.push(ms(t_exit - t_term));
}

async fn wait_comm(pid: u32, comm: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let c = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if c.trim() == comm {
            return;
        }
        assert!(Instant::now() < deadline, "{pid} never became {comm}");
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
}

/// `ProductionDeps`, stamping what the watcher does and when.
pub struct Timed {
    pub inner: ProductionDeps,
    pub spawned: Slot<Option<(Instant, Instant)>>,
    pub term: Slot<Option<Instant>>,
    pub kill: Slot<Option<Instant>>,
    pub released: Slot<Option<Instant>>,
    /// Wait for the stand-in to block SIGTERM before the watcher may signal it.
    pub wait_ready: bool,
}

impl WatchDeps for Timed {
    type Child = ChildHandle;
    type SpawnError = ResumeSpawnError;

    async fn spawn(&self, plan: &SpawnBgPlan) -> Result<ChildHandle, ResumeSpawnError> {
        let t0 = Instant::now();
        let child = self.inner.spawn(plan).await?;
        self.spawned.set(Some((t0, Instant::now())));
        if self.wait_ready {
            until_ready(child.pid()).await;
        }
        Ok(child)
    }

    fn watch_socket(
        &self,
        path: &Path,
        cancel: CancellationToken,
    ) -> Result<impl Future<Output = Result<(), BoxError>>, BoxError> {
        self.inner.watch_socket(path, cancel)
    }

    fn watch_exit(
        &self,
        child: &ChildHandle,
        cancel: CancellationToken,
    ) -> Result<impl Future<Output = Result<ChildExit, BoxError>>, BoxError> {
        self.inner.watch_exit(child, cancel)
    }

    fn timer(&self, duration: Duration) -> impl Future<Output = ()> {
        self.inner.timer(duration)
    }

    async fn signal(&self, child: &ChildHandle, signal: StopSignal) -> Result<(), BoxError> {
        let now = Some(Instant::now());
        match signal {
            StopSignal::Terminate => self.term.set(now),
            StopSignal::Kill => self.kill.set(now),
        }
        self.inner.signal(child, signal).await
    }

    async fn release(&self, claim: &LockClaim) -> Result<ReleaseOutcome, BoxError> {
        self.released.set(Some(Instant::now()));
        self.inner.release(claim).await
    }

    fn term_grace(&self) -> Duration {
        self.inner.term_grace()
    }

    fn kill_grace(&self) -> Duration {
        self.inner.kill_grace()
    }
}

/// Production options in `root`, `pi` replaced by the stand-in in `mode`.
pub fn options(root: &Path, mode: &'static str) -> ProductionOptions {
    let mut o = ProductionOptions::with_home(root, None);
    o.resolve_identity = fixed_identity(root.to_path_buf(), Some("p".into()), "m".into());
    o.spawner = Arc::new(move |launch: &ResumeLaunch<'_>| {
        spawn_child(&stand_in_request(&launch.request.cwd, mode, &[]))
    });
    o.stderr = StderrPolicy::Fixed(StderrTarget::Null);
    o.term_grace = GRACE;
    std::fs::create_dir_all(&o.shared.control_dir).expect("control dir");
    o
}

async fn watcher_level(trials: usize, root: &Path) -> Vec<Row> {
    let gid = GardenId::parse("20260613T000000-bbbbbb").expect("gid");
    let mut spawn = Vec::new();
    let mut term = Vec::new();
    let mut kill = Vec::new();
    let mut kill_total = Vec::new();
    for mode in ["term-exit", "ignore-term"] {
        let o = options(root, mode);
        let plan = SpawnBgPlan::new(
            gid.clone(),
            "wake up",
            o.socket_path(&gid),
            Duration::from_millis(20),
        )
        .expect("plan");
        for _ in 0..trials {
            let claim = lock::acquire(&o.shared.lock_dir, &gid).expect("acquire");
            let deps = Timed {
                inner: ProductionDeps::new(o.clone()),
                spawned: Slot::new(None),
                term: Slot::new(None),
                kill: Slot::new(None),
                released: Slot::new(None),
                wait_ready: true,
            };
            let outcome = execute_spawn_bg_resume(&plan, Some(&claim), &deps)
                .await
                .expect("watch");
            let SpawnBgOutcome::ChildExited { exit, release, .. } = outcome else {
                panic!("expected child-exited, got {}", outcome.kind());
            };
            assert_eq!(release, ReleaseOutcome::Released);
            let released = deps.released.get().expect("released");
            let t_term = deps.term.get().expect("terminated");
            let (s0, s1) = deps.spawned.get().expect("spawned");
            spawn.push(ms(s1 - s0));
            if mode == "term-exit" {
                assert_eq!(exit.code, Some(0), "{exit}");
                term.push(ms(released - t_term));
            } else {
                assert_eq!(exit.signal, Some(9), "{exit}");
                kill.push(ms(released - deps.kill.get().expect("killed")));
                kill_total.push(ms(released - t_term));
            }
        }
    }
    vec![
        Row::new(
            "spawn→handle",
            "watcher: ProductionDeps::spawn (identity+argv+spawn)",
            spawn,
        ),
        Row::new(
            "terminate→exit",
            "watcher: SIGTERM sent → release, stand-in exits 0",
            term,
        ),
        Row::new(
            "kill→exit",
            "watcher: SIGKILL sent → release, SIGTERM ignored",
            kill,
        ),
        Row::new(
            "terminate→exit",
            format!("watcher: total incl. {} ms term grace", GRACE.as_millis()),
            kill_total,
        ),
    ]
}

/// A `Sync` cell for timestamps: the watcher's futures are `Send`, so its deps are `Sync`.
#[derive(Debug)]
pub struct Slot<T>(Mutex<T>);

impl<T: Copy> Slot<T> {
    fn new(value: T) -> Self {
        Self(Mutex::new(value))
    }
    fn set(&self, value: T) {
        *self.0.lock().expect("slot") = value;
    }
    fn get(&self) -> T {
        *self.0.lock().expect("slot")
    }
}
