//! Section `real-pi`: spawn-bg resumes of the REAL `pi` (the runtimes `./run.sh
//! install-pi` puts in `target/real-pi/bin/`), offline, with the fixture extension
//! (`real-pi/fixture/`) standing in for entwurf's control extension. Skipped, saying so,
//! when no runtime is installed.
//!
//! Per installed version: one scratch world (its own `HOME`, `TMPDIR`, agent dir and
//! project dir), one session written by that pi (`first`), then N resumes of it through
//! `execute_spawn_bg_resume` over `ProductionDeps` (wrapped only to take stamps), one
//! after another. All stamps are CLOCK_MONOTONIC:
//!
//! - **launch**: right before `execute_spawn_bg_resume` (which spawns the launcher —
//!   `exec node …` — and observes);
//! - **observed**: the instant the library's socket waiter resolved alive (inotify + the
//!   connect probe), taken in a wrapper around `ProductionDeps::watch_socket`;
//! - **returned**: right after `execute_spawn_bg_resume` returned `SocketAlive` (after
//!   the lock release);
//! - **listen**: `process.hrtime.bigint()` (CLOCK_MONOTONIC) in pi's own process right
//!   after the control socket's `listen()` returned — a preload's stamp, see below;
//! - **500 ms poll**: a task started at the launch instant probes the same path every
//!   500 ms with the same probe as the library's (`socket::inspect_and_probe` + `verdict`: the
//!   TypeScript dispatcher polls at that interval) and stamps its first success.
//!
//! How the fixture shapes the method:
//!
//! - the library's probe connects and closes without reading; the fixture answers
//!   `get_info` with its own listen stamp (`listeningMonotonicNs`), but reads its clock
//!   in the `'listening'` event, on node's next tick. The bench therefore takes the stamp
//!   itself, in pi's process, through a preload
//!   (`NODE_OPTIONS=--require=<scratch>/listen-stamp.cjs`) that wraps
//!   `net.Server.prototype.listen` — for a path it creates, binds and listens
//!   synchronously — and reads the clock right before and right after it. The "after"
//!   stamp is the reference (node spends about a millisecond in there, and `bind()`,
//!   which wakes the library's inotify, comes before `listen()`). Once per version a
//!   calibration launch, in which the bench is the only client, asks the fixture's own
//!   stamp and prints the fixture's stamp minus the preload's "after";
//! - the fixture holds its turn until a client asks `fixture_release_turn`, so the
//!   socket stays up after the library's observation, as a real resident's would: the
//!   500 ms poll meets it on its next tick, and only then does the bench tell the
//!   resident to run its turn. A launch whose poll still found nothing is counted as a miss, never
//!   estimated.
//!
//! `listen → observed` is the library's share. The library can only see the socket
//! after the `listen()` syscall, but pi reads its clock a few microseconds after that;
//! when pi is descheduled in between, the "after" stamp comes after the observation.
//! Such a launch is counted and its share taken against the "before" stamp instead: an
//! upper bound.

use std::ffi::OsString;
use std::future::Future;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use entwurf_test_support::real_pi::{self, PiWorld, Runtime};
use entwurf_v2_spawn::lock::{self, LockClaim, ReleaseOutcome};
use entwurf_v2_spawn::production::child::ChildHandle;
use entwurf_v2_spawn::production::{ProductionDeps, ProductionOptions, ResumeSpawnError};
use entwurf_v2_spawn::resume_args::PassthroughArgs;
use entwurf_v2_spawn::watcher::{
    BoxError, ChildExit, SpawnBgOutcome, StopSignal, WatchDeps, execute_spawn_bg_resume,
};
use entwurf_v2_spawn::{GardenId, SpawnBgPlan};
use nix::sys::signal::{Signal, killpg};
use nix::sys::stat::Mode;
use nix::unistd::Pid;
use tokio::net::unix::pipe;
use tokio_util::sync::CancellationToken;

use crate::detection::poll_baseline;
use crate::stats::Row;
use crate::sys::{mono_ns, processes};

const GID: &str = "20261203T120000-b3e7d1";
/// Bound on one launch's observation (a real pi starts in one to three seconds).
const OBSERVE: Duration = Duration::from_secs(45);
/// The upstream dispatcher's poll interval.
const POLL: Duration = Duration::from_millis(500);

pub const VARIANTS: [&str; 11] = [
    "launch → `SocketAlive` returned (library)",
    "launch → first success of the 500 ms poll",
    "launch → `listen()` returned in pi (pi's own start-up)",
    "**`listen()` → observed (the library's share)**",
    "`listen()` → `SocketAlive` returned (+ lock release)",
    "`listen()` → first success of the 500 ms poll",
    "poll's first success − library's observation, same launch",
    "floor: `listen()` → the bench woken by a byte pi wrote right after it",
    "share − floor, same launch",
    "`bind()` returned → `listen()` called, in pi (connects refused)",
    "`bind()` returned → observed",
];

/// Indices in [`VARIANTS`]: the floor (its next row: the share minus it), and node's
/// bind → listen gap (its next row: bind → observed).
pub const FLOOR: usize = 7;
pub const GAP: usize = 9;

/// One version's launches.
pub struct VersionReport {
    pub version: String,
    /// In [`VARIANTS`] order.
    pub rows: Vec<Row>,
    /// Release called → `SocketAlive` returned.
    pub release: Row,
    /// The time pi spent inside `listen()` (socket, bind, listen), by the preload.
    pub in_listen: Row,
    /// Per launch: node's `bind()` → `listen()` gap and the library's share, ms.
    pub pairs: Vec<(f64, f64)>,
    /// The calibration launch: the fixture's own stamp − the preload's, ms.
    pub calibration: Result<f64, String>,
    /// Launches whose poll saw nothing before pi had shut its socket down.
    pub poll_missed: usize,
    /// Launches whose stop landed between pi's `listen()` and its clock read (their
    /// share is the upper bound `observed − before`).
    pub negative: usize,
    /// Launches that did not end as socket-alive + exit 0, with what happened.
    pub failures: Vec<String>,
    /// The session's turns after the run (user + assistant messages).
    pub turns: usize,
}

pub struct Report {
    pub versions: Vec<VersionReport>,
    /// Processes left in any resident's group after the run (should be 0).
    pub leftovers: usize,
}

/// Every launcher in the install command's directory, oldest version first.
fn runtimes() -> Vec<Runtime> {
    let mut found: Vec<Runtime> = std::fs::read_dir(real_pi::launcher_dir())
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().into_string().ok()?;
            Some(Runtime {
                version: version.strip_prefix("pi-")?.to_owned(),
                launcher: entry.path(),
            })
        })
        .collect();
    found.sort_by_key(|r| {
        r.version
            .split('.')
            .map(|p| p.parse::<u64>().unwrap_or(0))
            .collect::<Vec<_>>()
    });
    found
}

/// Where the bench looks for runtimes (for the skip message).
pub fn launcher_dir() -> PathBuf {
    real_pi::launcher_dir()
}

/// The preload that stamps pi's control socket's `listen()` (module docs): wraps
/// `net.Server.prototype.listen`, which for a path creates, binds and listens
/// synchronously in the calling process, takes `process.hrtime.bigint()` right before
/// and right after it, and appends `<before> <bind returned> <listen called> <after>
/// <path>` to `$ENTWURF_BENCH_LISTEN_STAMPS` in the `'listening'` event (after the
/// caller's own callback, so the fixture's stamp is not delayed by the write).
///
/// Inside that call it also stamps the two syscalls apart: node's `Pipe` handle's
/// `bind()` (which creates the socket file, the event that wakes the library's inotify)
/// returning, and its `listen()` being called (from then on a connect succeeds), by
/// wrapping the `pipe_wrap` binding's methods (0 when the binding is not reachable).
/// And right after the "after" stamp it writes one byte to the FIFO
/// `$ENTWURF_BENCH_FLOOR_FIFO` (opened once, at preload time), which the bench awaits on
/// its reactor: the floor, the cheapest wake-up pi's listen can give the bench.
const PRELOAD: &str = r#"'use strict';
const fs = require('node:fs');
const net = require('node:net');
const out = process.env.ENTWURF_BENCH_LISTEN_STAMPS;
let floor = -1;
try {
  floor = fs.openSync(process.env.ENTWURF_BENCH_FLOOR_FIFO, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
} catch {}
let marks = null;
try {
  const pipe = process.binding('pipe_wrap').Pipe.prototype;
  const bind = pipe.bind;
  const listen = pipe.listen;
  pipe.bind = function (...args) {
    const result = bind.apply(this, args);
    if (marks) marks.bound = process.hrtime.bigint();
    return result;
  };
  pipe.listen = function (...args) {
    if (marks) marks.listening = process.hrtime.bigint();
    return listen.apply(this, args);
  };
} catch {}
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  const mine = { bound: 0n, listening: 0n };
  marks = mine;
  const before = process.hrtime.bigint();
  const result = listen.apply(this, args);
  const after = process.hrtime.bigint();
  marks = null;
  const where = typeof args[0] === 'string' ? args[0] : '';
  if (out && where.endsWith('.sock')) {
    if (floor >= 0) {
      try { fs.writeSync(floor, 'x'); } catch {}
    }
    this.once('listening', () =>
      fs.appendFileSync(out, `${before} ${mine.bound} ${mine.listening} ${after} ${where}\n`));
  }
  return result;
};
"#;

/// The child's environment: its `HOME` and `TMPDIR`, the preload with its output, and
/// the floor FIFO.
fn child_env(world: &PiWorld, stamps: &Path, fifo: &Path) -> Vec<(OsString, OsString)> {
    let preload = world.dir.path().join("listen-stamp.cjs");
    let mut node_options = OsString::from("--require=");
    node_options.push(&preload);
    vec![
        ("HOME".into(), world.home.clone().into_os_string()),
        ("TMPDIR".into(), world.dir.path().as_os_str().to_owned()),
        ("NODE_OPTIONS".into(), node_options),
        (
            "ENTWURF_BENCH_LISTEN_STAMPS".into(),
            stamps.as_os_str().to_owned(),
        ),
        (
            "ENTWURF_BENCH_FLOOR_FIFO".into(),
            fifo.as_os_str().to_owned(),
        ),
    ]
}

fn options(world: &PiWorld, runtime: &Runtime, stamps: &Path, fifo: &Path) -> ProductionOptions {
    let mut o = ProductionOptions::with_home(&world.home, Some(world.agent_dir.clone()));
    o.shared.pi_program = runtime.launcher.clone().into_os_string();
    o.shared.extension_args =
        PassthroughArgs::new(real_pi::fixture_extension_args()).expect("extension args");
    o.shared.child_env = child_env(world, stamps, fifo);
    o
}

/// The preload's stamps for one `listen()` of pi's control socket (CLOCK_MONOTONIC ns).
#[derive(Debug, Clone, Copy)]
struct ListenStamps {
    /// Right before `net.Server.prototype.listen` (socket, bind, listen).
    before: i128,
    /// The `bind()` syscall returned: the socket file exists (inotify's event).
    bound: Option<i128>,
    /// The `listen()` syscall is about to be made: until then a connect is refused.
    listening: Option<i128>,
    /// Right after `net.Server.prototype.listen` returned.
    after: i128,
}

/// The preload's stamps for `socket` in `file` (see [`PRELOAD`]).
fn listen_stamp(file: &Path, socket: &Path) -> Option<ListenStamps> {
    let text = std::fs::read_to_string(file).ok()?;
    let socket = socket.to_str()?;
    let nonzero = |ns: i128| (ns != 0).then_some(ns);
    text.lines().find_map(|l| {
        let mut f = l.splitn(5, ' ');
        let (before, bound, listening, after, path) =
            (f.next()?, f.next()?, f.next()?, f.next()?, f.next()?);
        (path == socket)
            .then(|| {
                Some(ListenStamps {
                    before: before.parse().ok()?,
                    bound: nonzero(bound.parse().ok()?),
                    listening: nonzero(listening.parse().ok()?),
                    after: after.parse().ok()?,
                })
            })
            .flatten()
    })
}

/// The bench's end of the floor FIFO (see [`PRELOAD`]): opened read-write, so pi's
/// non-blocking open for writing always finds a reader and the bench never reads EOF.
struct FloorFifo {
    path: PathBuf,
    rx: Arc<pipe::Receiver>,
}

impl FloorFifo {
    fn new(dir: &Path) -> Self {
        let path = dir.join("floor.fifo");
        nix::unistd::mkfifo(&path, Mode::S_IRUSR | Mode::S_IWUSR).expect("mkfifo");
        let rx = pipe::OpenOptions::new()
            .read_write(true)
            .open_receiver(&path)
            .expect("open the floor fifo");
        Self {
            path,
            rx: Arc::new(rx),
        }
    }

    /// Drops whatever an earlier launch wrote.
    fn drain(&self) {
        let mut buf = [0u8; 64];
        while matches!(self.rx.try_read(&mut buf), Ok(n) if n > 0) {}
    }

    /// A task that stamps the instant the reactor woke it for pi's byte.
    fn await_byte(&self) -> tokio::task::JoinHandle<Option<i128>> {
        let rx = self.rx.clone();
        tokio::spawn(async move {
            loop {
                rx.readable().await.ok()?;
                let now = mono_ns();
                let mut buf = [0u8; 64];
                match rx.try_read(&mut buf) {
                    Ok(n) if n > 0 => return Some(now),
                    Ok(_) => return None,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(_) => return None,
                }
            }
        })
    }
}

/// The resident, killed (its whole group) if it is dropped before its exit was
/// observed: no pi outlives a failed or panicking launch. Once the exit was observed the
/// pid is no longer ours and nothing is sent.
struct Resident(ChildHandle);

impl Drop for Resident {
    fn drop(&mut self) {
        if self.0.try_exit().is_none() {
            let _ = killpg(Pid::from_raw(self.0.pid() as i32), Signal::SIGKILL);
        }
    }
}

/// What [`Stamped`] saw, CLOCK_MONOTONIC ns.
#[derive(Default)]
struct Stamps {
    pid: Option<u32>,
    /// The socket waiter resolved alive (the library's observation).
    observed: Option<i128>,
    /// The watcher called release (right after the observation).
    released: Option<i128>,
}

/// `ProductionDeps`, stamping the instant the socket waiter resolves alive.
struct Stamped {
    inner: ProductionDeps,
    stamps: Arc<Mutex<Stamps>>,
}

impl WatchDeps for Stamped {
    type Child = ChildHandle;
    type SpawnError = ResumeSpawnError;

    async fn spawn(&self, plan: &SpawnBgPlan) -> Result<ChildHandle, ResumeSpawnError> {
        let child = self.inner.spawn(plan).await?;
        self.stamps.lock().expect("stamps").pid = Some(child.pid());
        Ok(child)
    }

    fn watch_socket(
        &self,
        path: &Path,
        cancel: CancellationToken,
    ) -> Result<impl Future<Output = Result<(), BoxError>> + Send, BoxError> {
        let waiter = self.inner.watch_socket(path, cancel)?;
        let stamps = self.stamps.clone();
        Ok(async move {
            let alive = waiter.await;
            if alive.is_ok() {
                let now = mono_ns();
                stamps.lock().expect("stamps").observed = Some(now);
            }
            alive
        })
    }

    fn watch_exit(
        &self,
        child: &ChildHandle,
        cancel: CancellationToken,
    ) -> Result<impl Future<Output = Result<ChildExit, BoxError>> + Send, BoxError> {
        self.inner.watch_exit(child, cancel)
    }

    fn timer(&self, duration: Duration) -> impl Future<Output = ()> + Send {
        self.inner.timer(duration)
    }

    async fn signal(&self, child: &ChildHandle, signal: StopSignal) -> Result<(), BoxError> {
        self.inner.signal(child, signal).await
    }

    async fn release(&self, claim: &LockClaim) -> Result<ReleaseOutcome, BoxError> {
        self.stamps.lock().expect("stamps").released = Some(mono_ns());
        self.inner.release(claim).await
    }

    fn stderr_tail(&self, child: &ChildHandle) -> impl Future<Output = Option<String>> + Send {
        self.inner.stderr_tail(child)
    }

    fn term_grace(&self) -> Duration {
        self.inner.term_grace()
    }

    fn kill_grace(&self) -> Duration {
        self.inner.kill_grace()
    }
}

fn ms(from: i128, to: i128) -> f64 {
    (to - from) as f64 / 1e6
}

/// The calibration launch: pi started directly with the spawn-bg argv and the
/// preload, the bench its only client (a connect every 0.2 ms until one succeeds), then
/// asking the fixture `get_info` for its own stamp. Returns the fixture's stamp − the
/// preload's (after `listen()`) in ms.
async fn calibrate(world: &PiWorld, runtime: &Runtime, fifo: &Path) -> Result<f64, String> {
    let stamps = world.dir.path().join("calibration-stamps");
    let socket = world.home.join(format!(".pi/entwurf-control/{GID}.sock"));
    let fixture = real_pi::fixture();
    let mut cmd = std::process::Command::new(&runtime.launcher);
    cmd.args(["--mode", "json", "-p", "--entwurf-control", "-e"])
        .arg(&fixture)
        .args([
            "--session-id",
            GID,
            "--provider",
            "fixture",
            "--model",
            "echo",
            "calibration",
        ])
        .current_dir(&world.work)
        .env("PI_CODING_AGENT_DIR", &world.agent_dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    for (k, v) in child_env(world, &stamps, fifo) {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().map_err(|e| format!("spawn: {e}"))?;
    let deadline = std::time::Instant::now() + OBSERVE;
    let up = loop {
        if UnixStream::connect(&socket).is_ok() {
            break Ok(());
        }
        if std::time::Instant::now() > deadline || child.try_wait().ok().flatten().is_some() {
            break Err("no socket".to_owned());
        }
        std::thread::sleep(Duration::from_micros(200));
    };
    let said = match up {
        Ok(()) => real_pi::fixture_info(&socket).await,
        Err(e) => Err(e),
    };
    let released = real_pi::release_turn(&socket);
    // Bounded: pi exits once its turn is done; killed otherwise.
    let exit_deadline = std::time::Instant::now() + OBSERVE;
    while child.try_wait().ok().flatten().is_none() {
        if std::time::Instant::now() > exit_deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = child.wait();
    let fixture_ns = said?.listening_monotonic_ns;
    released?;
    let stamps = listen_stamp(&stamps, &socket).ok_or("no preload stamp")?;
    Ok(ms(stamps.after, fixture_ns))
}

async fn one_version(runtime: &Runtime, launches: usize, pgroups: &mut Vec<u32>) -> VersionReport {
    let v = runtime.version.clone();
    let mut lat: [Vec<f64>; 11] = Default::default();
    // (bind → listen gap, share) per launch, for the table of the two side by side.
    let mut pairs = Vec::new();
    let mut release = Vec::new();
    let mut in_listen = Vec::new();
    let (mut poll_missed, mut negative, mut failures) = (0, 0, Vec::new());
    let world = PiWorld::new(false);
    std::fs::write(world.dir.path().join("listen-stamp.cjs"), PRELOAD).expect("preload");
    // Blocking (pi runs whole turns); this future is the only one on its thread.
    let file = world.create_session(runtime, GID, "first");
    let fifo = FloorFifo::new(world.dir.path());
    let calibration = calibrate(&world, runtime, &fifo.path).await;
    let gid = GardenId::parse(GID).expect("gid");
    let listen_stamps = world.dir.path().join("listen-stamps");

    for i in 0..launches {
        let options = options(&world, runtime, &listen_stamps, &fifo.path);
        let socket = options.socket_path(&gid);
        if socket.exists() {
            failures.push(format!(
                "launch {i}: a socket file was left by the last one"
            ));
            let _ = std::fs::remove_file(&socket);
        }
        let _ = std::fs::remove_file(&listen_stamps);
        let claim = match lock::acquire(&options.shared.lock_dir, &gid) {
            Ok(c) => c,
            Err(e) => {
                failures.push(format!("launch {i}: lock: {e}"));
                break;
            }
        };
        let plan = SpawnBgPlan::new(gid.clone(), format!("turn {i}"), socket.clone(), OBSERVE)
            .expect("plan");
        let probe_timeout = options.shared.probe_timeout;
        let stamps = Arc::new(Mutex::new(Stamps::default()));
        let deps = Stamped {
            inner: ProductionDeps::new(options),
            stamps: stamps.clone(),
        };
        let cancel = CancellationToken::new();

        fifo.drain();
        let floor = fifo.await_byte();
        let launched = mono_ns();
        let poll = {
            let (socket, cancel) = (socket.clone(), cancel.clone());
            tokio::spawn(async move {
                let r = poll_baseline(socket, POLL, probe_timeout, cancel).await;
                (r, mono_ns())
            })
        };
        let outcome = execute_spawn_bg_resume(&plan, Some(&claim), &deps).await;
        let returned = mono_ns();
        let Stamps {
            observed, released, ..
        } = std::mem::take(&mut *stamps.lock().expect("stamps"));

        let resident = match outcome {
            Ok(SpawnBgOutcome::SocketAlive { resident, .. }) => Resident(resident),
            other => {
                cancel.cancel();
                let _ = poll.await;
                floor.abort();
                failures.push(format!("launch {i}: {other:?}"));
                continue;
            }
        };
        let pid = resident.0.pid();
        pgroups.push(pid);
        // The resident holds its turn until told: its listener stays up for the poll.
        let polled = match tokio::time::timeout(POLL * 3, poll).await {
            Ok(Ok((Ok(()), seen))) => Some(seen),
            _ => None,
        };
        cancel.cancel();
        let floor = match tokio::time::timeout(POLL, floor).await {
            Ok(Ok(seen)) => seen,
            _ => None,
        };
        if let Err(e) = real_pi::release_turn(&socket) {
            failures.push(format!("launch {i}: telling pi to run its turn: {e}"));
        }
        match tokio::time::timeout(OBSERVE, resident.0.exit()).await {
            Ok(Ok(e)) if e.code == Some(0) => {}
            other => failures.push(format!("launch {i}: pi {v} did not exit 0: {other:?}")),
        }
        drop(resident);

        match (listen_stamp(&listen_stamps, &socket), observed) {
            (Some(pi), Some(observed)) => {
                let ListenStamps { before, after, .. } = pi;
                in_listen.push(ms(before, after));
                // pi was descheduled between its listen() and its clock read: `after`
                // came late; the share is at most `observed − before` (module docs).
                let listening = if after > observed {
                    negative += 1;
                    before
                } else {
                    after
                };
                lat[0].push(ms(launched, returned));
                lat[2].push(ms(launched, listening));
                lat[3].push(ms(listening, observed));
                lat[4].push(ms(listening, returned));
                if let Some(r) = released {
                    release.push(ms(r, returned));
                }
                match polled {
                    Some(seen) => {
                        lat[1].push(ms(launched, seen));
                        lat[5].push(ms(listening, seen));
                        lat[6].push(ms(observed, seen));
                    }
                    None => poll_missed += 1,
                }
                if let Some(woken) = floor {
                    lat[FLOOR].push(ms(listening, woken));
                    lat[FLOOR + 1].push(ms(listening, observed) - ms(listening, woken));
                }
                if let (Some(bound), Some(called)) = (pi.bound, pi.listening) {
                    lat[GAP].push(ms(bound, called));
                    lat[GAP + 1].push(ms(bound, observed));
                    pairs.push((ms(bound, called), ms(listening, observed)));
                }
            }
            (None, _) => failures.push(format!("launch {i}: no listen stamp from pi")),
            (_, None) => failures.push(format!(
                "launch {i}: socket-alive without an observation stamp"
            )),
        }
    }
    let turns = real_pi::turns(&file).len();
    VersionReport {
        version: v,
        rows: lat
            .into_iter()
            .zip(VARIANTS)
            .map(|(ms, variant)| Row::new("real-pi", variant, ms))
            .collect(),
        release: Row::new("real-pi", "release → returned", release),
        in_listen: Row::new("real-pi", "inside pi's listen()", in_listen),
        pairs,
        calibration,
        poll_missed,
        negative,
        failures,
        turns,
    }
}

/// `None` when no runtime is installed.
pub async fn run(launches: usize) -> Option<Report> {
    let runtimes = runtimes();
    if runtimes.is_empty() {
        return None;
    }
    let mut pgroups = Vec::new();
    let mut versions = Vec::new();
    for runtime in &runtimes {
        eprintln!("real-pi: pi {}: {launches} launches ...", runtime.version);
        versions.push(one_version(runtime, launches, &mut pgroups).await);
    }
    let leftovers = processes()
        .iter()
        .filter(|(_, _, pgrp)| pgroups.contains(pgrp))
        .count();
    Some(Report {
        versions,
        leftovers,
    })
}
