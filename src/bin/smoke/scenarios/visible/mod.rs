//! V: visible resume into a real tmux window, observed in milliseconds.
//!
//! The scenario starts a private tmux server for the run — `tmux -D -S <sockets>/tmux.sock
//! -f /dev/null`, a child of this process in its own registered process group, so every
//! way out that kills the run's groups kills it too, and its socket goes with the temp
//! dir. It runs under the guard (`stand_ins::guard`), which kills it as soon as the gate
//! process is gone, a SIGKILLed one included. Windows are opened the way an operator's
//! dispatcher would: `TmuxLauncher::caller` with the `$TMUX` value a shell in session
//! `main` sees.
//!
//! Each check has its own saved session and garden id (so its own lock file and control
//! socket) in dirs the checks share; the runtime is a symlink to this binary whose name
//! picks the stand-in role (see `visible_pi`). The checks run concurrently except where
//! windows come and go: the "no window" checks compare the server's whole window list
//! before and after their resume, so every span that opens a window (V1, V2) or compares
//! the list (V3–V7) holds the scenario's one window lock, and a window can only appear
//! inside the span of the check that opened it. V7 also lists the server's jobs in its
//! span (a `#(…)` job would be one), while no pane comes or goes. V8 then
//! kills the server and proves that nothing of it is left: the server reaped, the
//! stand-in of V1 gone.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::json;
use tokio::sync::Mutex;

use entwurf_v2_spawn::production::ProductionOptions;
use entwurf_v2_spawn::resume_args::PassthroughArgs;
use entwurf_v2_spawn::visible::{
    ObservationReceipt, PaneExitStatus, VisibleError, VisibleOptions, VisibleResume, visible_resume,
};
use entwurf_v2_spawn::{GardenId, error_chain};

use super::shared::{Env, fail_all, gid, scratch, unmet_error};
use crate::harness::catalog::{Check, Scenario};
use crate::harness::needs::Needs;
use crate::harness::runner::{Runner, expect_that};
use crate::stand_ins::pi_fixture;
use crate::stand_ins::visible_pi;

pub(crate) mod server;

use server::{OBSERVE, Server};

/// "In milliseconds": what V1 and V2 require of an observation, counted from the open
/// window to the socket or the exit. The stand-in execs and binds in a few ms; a bound
/// of [`OBSERVE`] itself could never fail, this one leaves room for a loaded machine
/// and none for a waiter that sleeps a poll tick (the dispatcher's 500 ms).
const IN_MS: Duration = Duration::from_millis(300);

/// Runs V1–V8 in order.
pub async fn run(runner: &Runner, env: &Env) {
    let checks = Scenario::Visible.checks();
    let Some(scratch) = scratch(Scenario::Visible, runner, env, &checks).await else {
        return;
    };
    // Started at once: whether tmux is there at all is asked only when it did not start.
    let socket = scratch.sockets().join("tmux.sock");
    let server = match Server::start(scratch.path(), socket, env, Check::VisibleNothingLeft).await {
        Ok(server) => server,
        Err(why) => {
            let euid = nix::unistd::geteuid().as_raw();
            // Missing: a skip, or on CI a failure, of every check, in `--list`'s words.
            let missing = super::shared::off_thread(move || Ok(Needs::Tmux.unmet(euid))).await;
            if let Ok(Some(unmet)) = missing {
                for check in checks.iter().copied() {
                    let unmet = unmet.clone();
                    runner
                        .check(check, async { Err::<(), _>(unmet_error(unmet)) })
                        .await;
                }
                return;
            }
            // Installed but not startable is a failure of every check, never a skip.
            let why = format!("starting the private tmux server: {why:#}");
            fail_all(runner, &checks, &why).await;
            return;
        }
    };
    // The checks' worlds (the shared cwd holds the control sockets the stand-ins bind)
    // in the short socket dir: the portable backend connects by path (sun_path).
    let dir = scratch.sockets();
    let layout = match Layout::new(env, dir) {
        Ok(layout) => layout,
        Err(e) => {
            let why = format!("scenario setup failed: {e:#}");
            fail_all(runner, &checks, &why).await;
            let _ = server.stop(None).await;
            return;
        }
    };
    let (layout, tmux) = (&layout, &server);
    let windows = Windows::default();
    let windows = &windows;
    let refusal = |check, plant| runner.check(check, refused(layout, tmux, windows, plant));
    let (_, alive, ..) = tokio::join!(
        refusal(Check::VisibleHashCwd, Plant::HashCwd),
        runner.check(
            Check::VisibleSocketAlive,
            socket_alive(layout, tmux, windows)
        ),
        runner.check(Check::VisiblePaneExited, pane_exited(layout, tmux, windows)),
        refusal(Check::VisibleLiveSocket, Plant::LiveSocket),
        refusal(Check::VisibleBacklogFull, Plant::FullBacklog),
        refusal(Check::VisibleSymlink, Plant::Symlink),
        refusal(Check::VisibleLockHeld, Plant::LockHeld),
    );
    let nothing_left = server.stop(alive);
    if runner.runs(Check::VisibleNothingLeft) {
        runner.check(Check::VisibleNothingLeft, nothing_left).await;
    } else {
        let _ = nothing_left.await;
    }
}

/// The window lock: every span that opens a window (V1, V2) or compares the window list
/// (V3–V7) holds it. It keeps the last list a comparing span took, until a span opens a
/// window: a span's "after" is then the next one's "before" (no window can have come in
/// between), one tmux client fewer per span.
type Windows = Mutex<Option<Vec<String>>>;

/// The scenario's shared dirs: the stand-in links, the saved sessions, the lock dir and
/// the cwd whose `control/` holds every check's socket (each named by its own gid).
struct Layout {
    backend: entwurf_v2_spawn::Backend,
    root: PathBuf,
    work: PathBuf,
    sessions: PathBuf,
    bin: PathBuf,
}

impl Layout {
    fn new(env: &Env, dir: &Path) -> Result<Self> {
        let root = std::fs::canonicalize(dir)?;
        let work = root.join("work");
        let sessions = root.join("agent/sessions/--smoke--");
        let bin = root.join("bin");
        for d in [&work.join(pi_fixture::CONTROL_DIR), &sessions, &bin] {
            std::fs::create_dir_all(d).context("scratch dirs")?;
        }
        for role in [visible_pi::BINDS, visible_pi::EXITS] {
            std::os::unix::fs::symlink(&env.exe, bin.join(role))
                .context("linking the stand-in pi")?;
        }
        Ok(Self {
            backend: env.backend,
            root,
            work,
            sessions,
            bin,
        })
    }
}

/// One check's saved session, dirs and options.
struct World {
    gid: GardenId,
    options: VisibleOptions,
    socket: PathBuf,
    releases: Arc<AtomicUsize>,
}

impl World {
    /// Check `n`'s world: its saved session (cwd `cwd`, or the shared one), run by the
    /// stand-in `role`.
    fn new(layout: &Layout, n: u32, role: &str, cwd: Option<PathBuf>) -> Result<Self> {
        let gid = gid(0xf00 + n)?;
        let work = cwd.unwrap_or_else(|| layout.work.clone());
        let control = work.join(pi_fixture::CONTROL_DIR);
        std::fs::create_dir_all(&control).context("the control dir")?;
        let lines = [
            json!({"type": "session", "id": gid.as_str(), "cwd": work}),
            json!({"type": "model_change", "provider": pi_fixture::PROVIDER, "modelId": pi_fixture::MODEL}),
        ];
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        std::fs::write(layout.sessions.join(format!("{gid}.jsonl")), text).context("session")?;
        let root = &layout.root;
        let production = ProductionOptions::with_home(&root.join("home"), Some(root.join("agent")));
        let mut options = VisibleOptions::from_production(&production);
        options.shared.lock_dir = root.join("locks");
        options.shared.control_dir = control;
        options.shared.pi_program = layout.bin.join(role).into_os_string();
        options.shared.extension_args = PassthroughArgs::new(visible_pi::EXTENSION_ARGS)?;
        options.observe_timeout = OBSERVE;
        options.shared.poll_interval = Duration::from_millis(25);
        options.shared.probe_timeout = Duration::from_millis(100);
        options.shared.backend = layout.backend;
        let (release, releases) = super::shared::counting_release();
        options.shared.release = release;
        let socket = options.socket_path(&gid);
        Ok(Self {
            gid,
            options,
            socket,
            releases,
        })
    }

    async fn resume(&self, server: &Server) -> Result<VisibleResume, VisibleError> {
        visible_resume(&self.gid, &self.options, &server.launcher()).await
    }

    fn released_once(&self) -> Result<()> {
        let n = self.releases.load(Ordering::SeqCst);
        expect_that(n == 1, || format!("released {n} times, not once"))?;
        let lock = entwurf_v2_spawn::lock::lock_path(&self.options.shared.lock_dir, &self.gid);
        expect_that(!lock.exists(), || {
            format!("{} is still there", lock.display())
        })
    }
}

/// V1: returns the stand-in's pid for V8.
async fn socket_alive(layout: &Layout, server: &Server, windows: &Windows) -> Result<u32> {
    let world = World::new(layout, 1, visible_pi::BINDS, None)?;
    let done = {
        let mut last = windows.lock().await;
        *last = None;
        world.resume(server).await
    }
    .map_err(|e| anyhow!("{}", error_chain(&e)))?;
    let ObservationReceipt::SocketAlive { after } = done.observation else {
        bail!("expected socket-alive, got {}", done.observation);
    };
    expect_that(after < IN_MS, || {
        format!("socket-alive only after {after:?} (≥ {IN_MS:?})")
    })?;
    world.released_once()?;
    let windows = server.windows().await?;
    expect_that(windows.contains(&done.launch.window_id), || {
        format!("window {} is gone: {windows:?}", done.launch.window_id)
    })?;
    Ok(done.launch.pane_pid)
}

/// V2.
async fn pane_exited(layout: &Layout, server: &Server, windows: &Windows) -> Result<()> {
    let world = World::new(layout, 2, visible_pi::EXITS, None)?;
    // The dead pane's window stays (`remain-on-exit`): it is there, unchanged, in every
    // list a later span takes.
    let done = {
        let mut last = windows.lock().await;
        *last = None;
        world.resume(server).await
    }
    .map_err(|e| anyhow!("{}", error_chain(&e)))?;
    let ObservationReceipt::PaneExited { after, status } = done.observation else {
        bail!("expected pane-exited, got {}", done.observation);
    };
    expect_that(after < IN_MS, || {
        format!("pane-exited only after {after:?} (≥ {IN_MS:?})")
    })?;
    // An argv mismatch ends the pane as fast (exit 2): only the stand-in's marker says
    // it got past its argv checks and exited as asked.
    let marker = world
        .options
        .shared
        .control_dir
        .join(visible_pi::EXITED_MARKER);
    expect_that(marker.exists(), || {
        format!(
            "the pane exited, but not as asked: no {} (argv refused? the stand-in's message is in the pane)",
            marker.display()
        )
    })?;
    let code = visible_pi::EXIT_CODE;
    expect_that(
        status == Some(PaneExitStatus::Code(i32::from(code))),
        || format!("the receipt says {status:?}, not exit code {code}"),
    )?;
    world.released_once()
}

/// What a refusal check plants before resuming.
#[derive(Debug, Clone, Copy)]
enum Plant {
    LiveSocket,
    FullBacklog,
    Symlink,
    LockHeld,
    HashCwd,
}

/// V3–V7: refused with the expected kind, no window, released once (V6: never taken).
async fn refused(layout: &Layout, server: &Server, windows: &Windows, plant: Plant) -> Result<()> {
    let n = 3 + plant as u32;
    let dir = &layout.root;
    let marker = dir.join(format!("v{n}-marker"));
    let hash_cwd = dir.join(format!("v{n}/#(touch {})", marker.display()));
    let cwd = matches!(plant, Plant::HashCwd).then(|| hash_cwd.clone());
    let world = World::new(layout, n, visible_pi::BINDS, cwd)?;
    let mut keep = None;
    let mut listeners = Vec::new();
    let mut held = None;
    let expected = match plant {
        Plant::LiveSocket => {
            listeners.push(crate::os::bind_any_len(&world.socket)?);
            "target-live"
        }
        Plant::FullBacklog => {
            keep = Some(crate::os::full_backlog(&world.socket, layout.backend).await?);
            "liveness-indeterminate"
        }
        Plant::Symlink => {
            std::os::unix::fs::symlink(dir.join("elsewhere.sock"), &world.socket)?;
            "address-conflict"
        }
        Plant::LockHeld => {
            let (lock_dir, gid) = (world.options.shared.lock_dir.clone(), world.gid.clone());
            held = Some(super::shared::acquire_off_thread(lock_dir, gid).await?);
            "lock-held"
        }
        Plant::HashCwd => "launch-refused",
    };
    // The span: no other check opens a window between the two lists.
    let (before, resumed, after, jobs) = {
        let mut last = windows.lock().await;
        let before = match last.take() {
            Some(list) => list,
            None => server.windows().await?,
        };
        let resumed = world.resume(server).await;
        let after = server.windows().await?;
        // After the last list: every command the resume could have sent came before it,
        // so a job it made tmux start exists by now (running, or a zombie, or done).
        let jobs = match plant {
            Plant::HashCwd => server.jobs().await?,
            _ => Some(Vec::new()),
        };
        *last = Some(after.clone());
        (before, resumed, after, jobs)
    };
    let error = match resumed {
        Ok(done) => bail!("expected {expected}, got a window: {}", done.launch),
        Err(error) => error,
    };
    let kind = error.refusal().map(|r| r.kind());
    expect_that(kind == Some(expected), || {
        format!("expected {expected}, got {}", error_chain(&error))
    })?;
    expect_that(after == before, || {
        format!("windows {before:?} became {after:?}")
    })?;
    let releases = world.releases.load(Ordering::SeqCst);
    let want = usize::from(!matches!(plant, Plant::LockHeld));
    expect_that(releases == want, || {
        format!("released {releases} times, not {want}")
    })?;
    if let Some(claim) = held {
        let outcome = entwurf_v2_spawn::lock::release(&claim)?;
        expect_that(
            outcome == entwurf_v2_spawn::lock::ReleaseOutcome::Released,
            || format!("the holder's lock was touched: {outcome:?}"),
        )?;
    }
    if matches!(plant, Plant::HashCwd) {
        match jobs {
            // tmux forks a `#(…)` job when it expands the format, before it answers
            // the command: none running or waiting to be reaped, and no marker (what a
            // finished one leaves), means it never ran.
            Some(jobs) => expect_that(jobs.is_empty(), || {
                format!("tmux is running a job: {}", jobs.join("; "))
            })?,
            // No process list: give a job the time to leave its marker instead.
            None => tokio::time::sleep(Duration::from_millis(200)).await,
        }
        expect_that(!marker.exists(), || "tmux ran the #(…) in the cwd".into())?;
    }
    drop((keep, listeners));
    Ok(())
}
