//! The scenarios, one module each, and what they share: scratch dirs, stand-in children
//! and small assertion helpers.
//!
//! Scenarios run concurrently, and so do the independent checks inside each scenario
//! (`tokio::join!` on one current-thread runtime); checks that inspect the same run are
//! chained through the value the first one returns.

pub mod child;
pub mod hygiene;
pub mod lock;
mod lock_race;
pub mod resume;
pub mod socket;
pub mod watcher;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, anyhow};

use entwurf_v2_spawn::Backend;
use entwurf_v2_spawn::GardenId;
use entwurf_v2_spawn::error_chain;
use entwurf_v2_spawn::lock::LockClaim;
use entwurf_v2_spawn::production::child::{ChildHandle, SpawnRequest, StderrTarget, spawn_child};
use entwurf_v2_spawn::production::{ProductionOutcome, ReleaseFn};
use entwurf_v2_spawn::watcher::{SpawnBgOutcome, StopSignal};

use crate::registry;
use crate::runner::Runner;

/// The backend of this run, chosen once by `--backend` before any scenario starts.
/// A process-wide value rather than a field of [`Env`]: the checks that build options
/// take only their scratch dir, and one run exercises exactly one backend.
static BACKEND: std::sync::OnceLock<Backend> = std::sync::OnceLock::new();

/// Selects the run's backend; only the first call counts.
pub fn select_backend(backend: Backend) {
    let _ = BACKEND.set(backend);
}

/// The run's backend ([`Backend::Native`] unless `--backend` said otherwise).
pub fn backend() -> Backend {
    BACKEND.get().copied().unwrap_or_default()
}

/// What every scenario needs to know about the run.
#[derive(Debug, Clone)]
pub struct Env {
    /// This binary, re-executed as every stand-in.
    pub exe: PathBuf,
    /// `--keep-tmp`.
    pub keep_tmp: bool,
    /// Our descriptors before any check ran (for the hygiene check).
    pub baseline_fds: BTreeMap<i32, String>,
}

/// Runs every selected scenario concurrently, then hygiene.
pub async fn run(runner: &Runner, env: &Env) {
    tokio::join!(
        socket::run(runner, env),
        child::run(runner, env),
        watcher::run(runner, env),
        lock::run(runner, env),
        resume::run(runner, env),
    );
    hygiene::run(runner, env).await;
}

/// A scenario's own temp dir: unique per run (several runs at once never collide),
/// removed on drop unless `--keep-tmp`, registered for removal on Ctrl-C.
pub struct Scratch {
    dir: Option<tempfile::TempDir>,
    path: PathBuf,
    keep: bool,
}

impl Scratch {
    /// Creates `smoke-entwurf-v2-<name>-XXXXXX` under the system temp dir.
    pub fn new(name: &str, env: &Env) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("smoke-entwurf-v2-{name}-"))
            .tempdir()
            .context("creating the scenario's temp dir")?;
        let path = dir.path().to_path_buf();
        registry::register_temp_dir(path.clone());
        Ok(Self {
            dir: Some(dir),
            path,
            keep: env.keep_tmp,
        })
    }

    /// The scenario's scratch dir when any of `checks` is selected: `None` when none is
    /// (nothing to do), or when the dir could not be made (then every one of `checks`
    /// has been reported failed with the reason).
    pub async fn for_checks(
        name: &str,
        runner: &Runner,
        env: &Env,
        checks: &[crate::catalog::Check],
    ) -> Option<Self> {
        if !checks.iter().any(|c| runner.runs(*c)) {
            return None;
        }
        match Self::new(name, env) {
            Ok(scratch) => Some(scratch),
            Err(e) => {
                fail_setup(runner, checks, &e).await;
                None
            }
        }
    }

    /// The dir.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Some(dir) = self.dir.take() {
            if self.keep {
                eprintln!("smoke-entwurf-v2-spawn-live: kept {}", dir.keep().display());
            }
        }
    }
}

/// Records a failure for every selected check of a scenario that could not even set up.
async fn fail_setup(runner: &Runner, checks: &[crate::catalog::Check], error: &anyhow::Error) {
    for check in checks {
        runner
            .check(*check, async {
                Err::<(), _>(anyhow!("scenario setup failed: {error:#}"))
            })
            .await;
    }
}

/// How a stand-in resident behaves (see `stand_ins`).
#[derive(Debug, Clone, Default)]
pub struct ResidentSpec {
    /// SIGTERM stays blocked; only SIGKILL ends it.
    pub ignore_term: bool,
    /// Exit at once with this code.
    pub exit_code: Option<u8>,
    /// Start a SIGTERM-ignoring grandchild in the same group.
    pub grandchild: bool,
    /// Listen on this path after this many ms.
    pub listen: Option<(PathBuf, u64)>,
}

impl ResidentSpec {
    /// The argv (after the program) of this resident, announcing readiness in `ready`.
    pub fn args(&self, ready: &Path) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec!["__stand-in".into(), "resident".into()];
        if self.ignore_term {
            args.push("--ignore-term".into());
        }
        if let Some(code) = self.exit_code {
            args.extend(["--exit-code".into(), code.to_string().into()]);
        }
        if self.grandchild {
            args.push("--grandchild".into());
        }
        if let Some((path, after)) = &self.listen {
            args.extend([
                "--listen".into(),
                path.into(),
                "--listen-after-ms".into(),
                after.to_string().into(),
            ]);
        }
        args.extend(["--ready".into(), ready.into()]);
        args
    }
}

/// A resident started through the production `spawn_child`.
pub struct Started {
    /// Its handle.
    pub handle: ChildHandle,
    /// Its ready file.
    pub ready: PathBuf,
    /// Its stderr log.
    pub stderr: PathBuf,
}

/// The request that starts a resident in `dir`, tagged `tag` (ready file, stderr log).
pub fn resident_request(
    env: &Env,
    dir: &Path,
    tag: &str,
    spec: &ResidentSpec,
) -> (SpawnRequest, PathBuf, PathBuf) {
    let ready = dir.join(format!("{tag}.ready"));
    let stderr = dir.join(format!("{tag}.stderr.log"));
    let request = SpawnRequest {
        program: env.exe.clone().into_os_string(),
        args: spec.args(&ready),
        cwd: dir.to_path_buf(),
        stderr: StderrTarget::AppendTo(stderr.clone()),
        backend: backend(),
    };
    (request, ready, stderr)
}

/// `spawn_child`, remembering the new process group for Ctrl-C.
pub fn spawn_registered(
    request: &SpawnRequest,
) -> Result<ChildHandle, entwurf_v2_spawn::production::child::SpawnError> {
    let handle = spawn_child(request)?;
    registry::register_group(handle.pid());
    Ok(handle)
}

/// Starts a stand-in resident.
pub fn spawn_resident(env: &Env, dir: &Path, tag: &str, spec: &ResidentSpec) -> Result<Started> {
    let (request, ready, stderr) = resident_request(env, dir, tag, spec);
    let handle =
        spawn_registered(&request).map_err(|e| anyhow!("spawn_child: {}", error_chain(&e)))?;
    Ok(Started {
        handle,
        ready,
        stderr,
    })
}

/// Waits until the resident announced readiness; returns the ready file's content.
pub async fn wait_ready(started: &Started) -> Result<String> {
    let ready = started.ready.clone();
    let seen = crate::os::poll_until(Duration::from_secs(3), Duration::from_millis(1), || {
        ready.exists() || started.handle.try_exit().is_some()
    })
    .await;
    if !seen || !ready.exists() {
        return Err(anyhow!(
            "the stand-in never became ready{}",
            stderr_note(&started.stderr)
        ));
    }
    std::fs::read_to_string(&started.ready).context("reading the ready file")
}

/// `; its stderr: ...` with the end of a stand-in's stderr log, or nothing.
pub fn stderr_note(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let text = text.trim();
    if text.is_empty() {
        return String::new();
    }
    let tail: String = text
        .chars()
        .rev()
        .take(600)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("; its stderr: {}", tail.replace('\n', " | "))
}

/// Runs blocking work off the runtime thread: lock files are fsynced (about 10 ms each on
/// a real disk), and a blocked runtime thread would stretch every concurrent check's
/// timers.
pub async fn off_thread<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| anyhow!("the check's blocking task failed: {e}"))?
}

/// `lock::acquire` off the runtime thread.
pub async fn acquire_off_thread(lock_dir: PathBuf, gid: GardenId) -> Result<LockClaim> {
    off_thread(move || {
        entwurf_v2_spawn::lock::acquire(&lock_dir, &gid)
            .map_err(|e| anyhow!("lock::acquire: {e:#}"))
    })
    .await
}

/// A fixed, valid garden id per check, so failures are reproducible by name.
pub fn gid(n: u32) -> Result<GardenId> {
    GardenId::parse(&format!("20260613T000000-{n:06x}")).map_err(|e| anyhow!("{e}"))
}

/// Awaits `fut` at most `limit`, failing with "`<what>` still pending after ...": a more
/// specific reason than the check's overall deadline.
pub async fn bounded<T>(limit: Duration, what: &str, fut: impl Future<Output = T>) -> Result<T> {
    tokio::time::timeout(limit, fut)
        .await
        .map_err(|_| anyhow!("{what} still pending after {} ms", limit.as_millis()))
}

/// Stops a child the check no longer needs: SIGKILL to its group, then its exit.
pub async fn kill_child(handle: &ChildHandle) {
    let _ = handle.signal(StopSignal::Kill).await;
    let _ = tokio::time::timeout(Duration::from_secs(2), handle.exit()).await;
}

/// Describes an outcome the check did not expect, cleaning up a resident it carries.
pub async fn unexpected(outcome: ProductionOutcome, wanted: &str) -> anyhow::Error {
    let what = match &outcome {
        SpawnBgOutcome::SpawnStartFailed { error, .. } => {
            format!("spawn-start-failed: {}", error_chain(error))
        }
        SpawnBgOutcome::SocketAlive {
            pid, after_signal, ..
        } => match after_signal {
            Some(signal) => format!("socket-alive (pid {pid}) only after {signal}"),
            None => format!("socket-alive (pid {pid})"),
        },
        SpawnBgOutcome::ChildExited { exit, pid, .. } => {
            format!("child-exited ({exit}, pid {pid})")
        }
        SpawnBgOutcome::LockRetained(diagnostic) => diagnostic.to_string(),
    };
    if let SpawnBgOutcome::SocketAlive { resident, .. } = &outcome {
        kill_child(resident).await;
    }
    anyhow!("expected {wanted}, got {what}")
}

/// The production release (`lock::release`), counted: "released exactly once" is
/// checked against the returned counter.
pub fn counting_release() -> (ReleaseFn, Arc<AtomicUsize>) {
    let releases = Arc::new(AtomicUsize::new(0));
    let counted = releases.clone();
    let release: ReleaseFn = Arc::new(move |claim: &LockClaim| {
        counted.fetch_add(1, Ordering::SeqCst);
        entwurf_v2_spawn::lock::release(claim)
    });
    (release, releases)
}
