//! Production dependencies: the real spawner, socket waiter, exit watcher, timers,
//! signals and lock release behind [`WatchDeps`].
//!
//! Every knob has a default and can be overridden, so tests and the live smoke drive
//! exactly this wiring with their own directories, programs and graces.

pub mod child;
pub mod identity;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::backend::Backend;
use crate::garden_id::GardenId;
use crate::lock::{self, LockClaim, LockIoError, ReleaseOutcome};
use crate::plan::SpawnBgPlan;
use crate::resume_args::{PassthroughArgs, ResumeArgs, ResumeVariant, build_resume_pi_args};
use crate::socket::{AwaitSocketError, WaitOptions, await_socket_alive, check_reachable};
use crate::watcher::{BoxError, ChildExit, SpawnBgOutcome, StopSignal, WatchDeps};

use child::{ChildHandle, SpawnError, SpawnRequest, StderrTarget, spawn_child};
use identity::{IdentityError, LaunchIdentity, resolve_launch_identity};

/// Resolves who a session is launched as: `(agent dir, gid, extension args)`.
pub type IdentityResolver = Arc<
    dyn Fn(&Path, &GardenId, &PassthroughArgs) -> Result<LaunchIdentity, IdentityError>
        + Send
        + Sync,
>;
/// A resolver that always answers the same cwd, provider and model (with the configured
/// extension args): for a dispatcher that already knows who a session runs as, and for
/// tests and benchmarks that do not exercise the saved-session reader.
#[must_use]
pub fn fixed_identity(cwd: PathBuf, provider: Option<String>, model: String) -> IdentityResolver {
    Arc::new(
        move |_: &Path, _: &GardenId, extension_args: &PassthroughArgs| {
            Ok(LaunchIdentity {
                cwd: cwd.clone(),
                provider: provider.clone(),
                model: model.clone(),
                extension_args: extension_args.clone(),
            })
        },
    )
}

/// Starts the resume child. It sees the whole [`ResumeLaunch`] — the plan and the
/// resolved identity as well as the request (program + argv + cwd) built from them — so
/// a custom spawner can decide by the target, the session or the model rather than by
/// picking an argv apart. The default is [`spawn_child`] on the request.
pub type Spawner = Arc<dyn Fn(&ResumeLaunch<'_>) -> Result<ChildHandle, SpawnError> + Send + Sync>;

/// What a [`Spawner`] is asked to start.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct ResumeLaunch<'a> {
    /// The plan being executed.
    pub plan: &'a SpawnBgPlan,
    /// Who the session is launched as (cwd, provider, model, extension args).
    pub identity: &'a LaunchIdentity,
    /// The program, argv, cwd and stderr built from the two.
    pub request: &'a SpawnRequest,
}

impl<'a> ResumeLaunch<'a> {
    /// A launch of `request` for `plan` as `identity`: what a spawner that rewrites the
    /// request (another argv variant, say) hands on to the one it wraps.
    #[must_use]
    pub fn new(
        plan: &'a SpawnBgPlan,
        identity: &'a LaunchIdentity,
        request: &'a SpawnRequest,
    ) -> Self {
        Self {
            plan,
            identity,
            request,
        }
    }
}

/// The outcome [`execute_spawn_bg_resume`](crate::watcher::execute_spawn_bg_resume) gives
/// with the production deps: the resident's handle, or a typed spawn error.
pub type ProductionOutcome = SpawnBgOutcome<ChildHandle, ResumeSpawnError>;
/// Releases a dispatch lock.
pub type ReleaseFn = Arc<dyn Fn(&LockClaim) -> Result<ReleaseOutcome, LockIoError> + Send + Sync>;

/// Where a resumed child's stderr goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StderrPolicy {
    /// Appended to `<dir>/<gid>.stderr.log`; the resident outlives the dispatcher, so it
    /// must never write into a pipe somebody has to drain.
    LogDir(PathBuf),
    /// A fixed target for every child.
    Fixed(StderrTarget),
}

/// What a background resume ([`ProductionOptions`]) and a visible one
/// ([`VisibleOptions`](crate::visible::VisibleOptions)) share: where sockets, locks and
/// sessions live, which runtime with which extra args and environment, how the lock is
/// released and how the socket is observed. One struct, so the two cannot drift apart
/// (the visible options copy it whole).
///
/// Built by [`ProductionOptions::with_home`] or [`ProductionOptions::from_env`], then
/// adjusted through the public fields. `#[non_exhaustive]`, so a field added later breaks
/// no dependent.
#[derive(Clone)]
#[non_exhaustive]
pub struct SharedOptions {
    /// Where control sockets live (`<dir>/<gid>.sock`).
    pub control_dir: PathBuf,
    /// Where dispatch locks live (`<dir>/<gid>.lock`).
    pub lock_dir: PathBuf,
    /// The agent dir holding `sessions/`.
    pub agent_dir: PathBuf,
    /// The `pi` program (default: `pi`, looked up on PATH).
    pub pi_program: OsString,
    /// Extension args passed to every resumed session (default: none). Checked when the
    /// list is built ([`PassthroughArgs::new`]): a flag the resume argv sets itself,
    /// `--` or an empty arg never gets this far.
    pub extension_args: PassthroughArgs,
    /// Variables set in every resumed child's (or window's) environment on top of the
    /// one it inherits (default: none), e.g. `HOME` for a child that must not see ours.
    /// Names and values need not be UTF-8.
    pub child_env: Vec<(OsString, OsString)>,
    /// Releases the lock (default: [`lock::release`]).
    pub release: ReleaseFn,
    /// Upper bound between socket probes when nothing wakes the waiter.
    pub poll_interval: Duration,
    /// How long one probe connect may take.
    pub probe_timeout: Duration,
    /// How the child's exit and its socket are observed (default [`Backend::Native`]:
    /// pidfd, inotify and `O_PATH` on Linux). Reaches the spawner through
    /// [`SpawnRequest::backend`] and the socket waiter through [`WaitOptions::backend`].
    /// A visible resume watches the pane's exit with a pidfd on Linux whatever this
    /// says: POSIX has no way to watch a process we did not start.
    pub backend: Backend,
}

impl std::fmt::Debug for SharedOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedOptions")
            .field("control_dir", &self.control_dir)
            .field("lock_dir", &self.lock_dir)
            .field("agent_dir", &self.agent_dir)
            .field("pi_program", &self.pi_program)
            .field("extension_args", &self.extension_args)
            .field("child_env", &self.child_env)
            .field("poll_interval", &self.poll_interval)
            .field("probe_timeout", &self.probe_timeout)
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl SharedOptions {
    /// The control socket of `gid`.
    #[must_use]
    pub fn socket_path(&self, gid: &GardenId) -> PathBuf {
        crate::socket::socket_path(&self.control_dir, gid)
    }

    /// The dispatch lock of `gid`.
    #[must_use]
    pub fn lock_path(&self, gid: &GardenId) -> PathBuf {
        lock::lock_path(&self.lock_dir, gid)
    }
}

/// Options of the production wiring (docs/design.md §8).
///
/// Built with [`ProductionOptions::with_home`] or [`ProductionOptions::from_env`], then
/// adjusted through the public fields. `#[non_exhaustive]`, so a knob added later (as
/// `spawn_concurrency` was) breaks no dependent.
#[derive(Clone)]
#[non_exhaustive]
pub struct ProductionOptions {
    /// What a visible resume uses too: directories, runtime, environment, release,
    /// observation.
    pub shared: SharedOptions,
    /// How long a child may take to exit after SIGTERM.
    pub term_grace: Duration,
    /// How long a child may take to exit after SIGKILL.
    pub kill_grace: Duration,
    /// Resolves the launch identity (default: the saved session header).
    pub resolve_identity: IdentityResolver,
    /// Starts the child (default: [`spawn_child`]).
    pub spawner: Spawner,
    /// Where the child's stderr goes.
    pub stderr: StderrPolicy,
    /// How many spawns (identity resolution + fork/exec) run at once per
    /// [`ProductionDeps`] and its clones (default 4; 0 counts as 1). Each runs on tokio's
    /// blocking pool: more overlaps more execs, and grows that pool by a thread each.
    pub spawn_concurrency: usize,
}

impl std::fmt::Debug for ProductionOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProductionOptions")
            .field("shared", &self.shared)
            .field("term_grace", &self.term_grace)
            .field("kill_grace", &self.kill_grace)
            .field("stderr", &self.stderr)
            .field("spawn_concurrency", &self.spawn_concurrency)
            .finish_non_exhaustive()
    }
}

/// Why default options could not be formed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OptionsError {
    /// `HOME` is unset or empty, so the default directories have no root.
    #[error("HOME is not set: set it, or build ProductionOptions::with_home with explicit dirs")]
    NoHome,
}

impl ProductionOptions {
    /// Defaults rooted at `home`: `~/.pi/entwurf-control`, `~/.pi/entwurf-v2-locks`,
    /// `~/.pi/entwurf-v2-logs`, agent dir `agent_dir` or `~/.pi/agent`.
    pub fn with_home(home: &Path, agent_dir: Option<PathBuf>) -> Self {
        let pi = home.join(".pi");
        let wait = WaitOptions::default();
        Self {
            shared: SharedOptions {
                control_dir: pi.join("entwurf-control"),
                lock_dir: pi.join("entwurf-v2-locks"),
                agent_dir: agent_dir.unwrap_or_else(|| pi.join("agent")),
                pi_program: OsString::from("pi"),
                extension_args: PassthroughArgs::default(),
                child_env: Vec::new(),
                release: Arc::new(lock::release),
                poll_interval: wait.poll_interval,
                probe_timeout: wait.probe_timeout,
                backend: Backend::Native,
            },
            term_grace: Duration::from_secs(5),
            kill_grace: Duration::from_secs(1),
            resolve_identity: Arc::new(resolve_launch_identity),
            spawner: Arc::new(|launch: &ResumeLaunch<'_>| spawn_child(launch.request)),
            stderr: StderrPolicy::LogDir(pi.join("entwurf-v2-logs")),
            spawn_concurrency: DEFAULT_SPAWN_CONCURRENCY,
        }
    }

    /// Defaults from the environment: `HOME`, and `PI_CODING_AGENT_DIR` if set.
    ///
    /// `extension_args` stays empty: name entwurf's control extension there
    /// (`PassthroughArgs::new(["-e", path])`) before a `v2-control` resume, whose argv
    /// passes `--entwurf-control` — a flag only that extension defines, so a real pi
    /// without it refuses to start (`Error: Unknown option: --entwurf-control`, exit 1).
    ///
    /// # Errors
    ///
    /// [`OptionsError::NoHome`] when `HOME` is unset or empty.
    pub fn from_env() -> Result<Self, OptionsError> {
        Self::from_vars(std::env::var_os("HOME"), std::env::var_os(AGENT_DIR_VAR))
    }

    /// [`Self::from_env`] given the two variables' values (unset: `None`); an empty
    /// value counts as unset.
    fn from_vars(
        home: Option<OsString>,
        agent_dir: Option<OsString>,
    ) -> Result<Self, OptionsError> {
        let home = home.filter(|h| !h.is_empty()).ok_or(OptionsError::NoHome)?;
        let agent_dir = agent_dir.filter(|d| !d.is_empty()).map(PathBuf::from);
        Ok(Self::with_home(Path::new(&home), agent_dir))
    }

    /// The control socket of `gid` ([`SharedOptions::socket_path`]).
    #[must_use]
    pub fn socket_path(&self, gid: &GardenId) -> PathBuf {
        self.shared.socket_path(gid)
    }

    /// The dispatch lock of `gid` ([`SharedOptions::lock_path`]).
    #[must_use]
    pub fn lock_path(&self, gid: &GardenId) -> PathBuf {
        self.shared.lock_path(gid)
    }

    fn stderr_for(&self, gid: &GardenId) -> StderrTarget {
        match &self.stderr {
            StderrPolicy::LogDir(dir) => {
                StderrTarget::AppendTo(dir.join(format!("{gid}.stderr.log")))
            }
            StderrPolicy::Fixed(target) => target.clone(),
        }
    }
}

/// Why production spawn failed (→ the watcher's `SpawnStartFailed`, typed: match on it
/// directly, e.g. `ResumeSpawnError::Identity(IdentityError::NotFound { .. })`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResumeSpawnError {
    /// The launch identity could not be resolved.
    #[error("resolving launch identity")]
    Identity(#[from] IdentityError),
    /// The plan insists on a cwd the saved session does not have.
    #[error("plan cwd {plan:?} differs from the saved session's cwd {session:?}")]
    CwdMismatch {
        /// The plan's cwd.
        plan: PathBuf,
        /// The session header's cwd.
        session: PathBuf,
    },
    /// The program could not be started.
    #[error("starting the resume child")]
    Spawn(#[from] SpawnError),
    /// The blocking-pool task that spawns was cancelled (its runtime is shutting down);
    /// whether the child started is unknown.
    #[error("the spawn task was cancelled; the child may or may not have started")]
    Cancelled(#[source] tokio::task::JoinError),
    /// The plan's socket path can never be observed with the configured backend (the
    /// portable one cannot reach a path longer than `sun_path`). A child started anyway
    /// could never be seen listening, and its own `bind` would fail the same way, so none
    /// is started.
    #[error(
        "the control socket cannot be observed with the {backend} backend; nothing was started"
    )]
    SocketUnobservable {
        /// The backend in force.
        backend: Backend,
        /// Why.
        #[source]
        source: AwaitSocketError,
    },
}

/// The exit watcher was cancelled (the watch ended another way).
#[derive(Debug, thiserror::Error)]
#[error("exit watch of pid {pid} cancelled")]
pub struct ExitWatchCancelled {
    /// The child.
    pub pid: u32,
}

/// The production [`WatchDeps`].
///
/// Clones share one set of spawn slots (see [`WatchDeps::spawn`] below), so a
/// dispatcher running many resumes through clones of one `ProductionDeps` bounds its
/// concurrent fork/exec work as a whole.
#[derive(Debug, Clone)]
pub struct ProductionDeps {
    options: ProductionOptions,
    spawn_slots: Arc<Semaphore>,
}

/// The variable through which `pi` is told its agent dir.
pub const AGENT_DIR_VAR: &str = "PI_CODING_AGENT_DIR";

/// `agent_dir` as the child is told it: absolute against our cwd, where the identity was
/// resolved (the child runs in the session's cwd, where a relative path names another
/// dir). Unchanged if our cwd cannot be read.
pub(crate) fn absolute_agent_dir(agent_dir: &Path) -> OsString {
    std::path::absolute(agent_dir)
        .unwrap_or_else(|_| agent_dir.to_path_buf())
        .into_os_string()
}

/// How many spawns run at once by default: enough to overlap each child's exec with the
/// next fork, few enough not to grow the blocking pool by a thread per resume. A
/// dependent reads the default off [`ProductionOptions::spawn_concurrency`] of fresh
/// options.
pub(crate) const DEFAULT_SPAWN_CONCURRENCY: usize = 4;

impl ProductionDeps {
    /// Wires `options`.
    #[must_use]
    pub fn new(options: ProductionOptions) -> Self {
        let slots = options.spawn_concurrency.max(1);
        Self {
            options,
            spawn_slots: Arc::new(Semaphore::new(slots)),
        }
    }

    /// The options in force.
    #[must_use]
    pub fn options(&self) -> &ProductionOptions {
        &self.options
    }

    /// Resolves the identity and builds the spawn request for `plan` (no side effects).
    ///
    /// # Errors
    ///
    /// [`ResumeSpawnError::Identity`] when the identity resolver fails,
    /// [`ResumeSpawnError::CwdMismatch`] when the plan insists on another cwd than the
    /// saved session's, [`ResumeSpawnError::SocketUnobservable`] when the backend could
    /// never observe the plan's socket path (checked first: nothing else is resolved).
    pub fn resume_request(&self, plan: &SpawnBgPlan) -> Result<SpawnRequest, ResumeSpawnError> {
        self.resolve(plan).map(|(_, request)| request)
    }

    fn resolve(
        &self,
        plan: &SpawnBgPlan,
    ) -> Result<(LaunchIdentity, SpawnRequest), ResumeSpawnError> {
        let o = &self.options;
        check_reachable(plan.expected_socket_path(), o.shared.backend).map_err(|source| {
            ResumeSpawnError::SocketUnobservable {
                backend: o.shared.backend,
                source,
            }
        })?;
        let identity = (o.resolve_identity)(
            &o.shared.agent_dir,
            plan.session_id(),
            &o.shared.extension_args,
        )?;
        if let Some(cwd) = plan.cwd() {
            if cwd != identity.cwd {
                return Err(ResumeSpawnError::CwdMismatch {
                    plan: cwd.to_path_buf(),
                    session: identity.cwd,
                });
            }
        }
        let args = build_resume_pi_args(&ResumeArgs {
            variant: ResumeVariant::V2Control,
            session_id: plan.session_id().as_str(),
            extension_args: &identity.extension_args,
            provider: identity.provider.as_deref(),
            model: &identity.model,
            prompt: plan.prompt(),
            launch_args: plan.launch_args(),
        });
        let mut request =
            SpawnRequest::new(o.shared.pi_program.clone(), args, identity.cwd.clone())
                .with_stderr(o.stderr_for(plan.target_garden_id()))
                .with_backend(o.shared.backend);
        request.env.extend(o.shared.child_env.iter().cloned());
        // The agent dir the identity was resolved from is the one the child must use:
        // told nothing, pi looks in its default (`$PI_CODING_AGENT_DIR`, else
        // `$HOME/.pi/agent` in the child's environment), does not find the session there,
        // mints an empty one under the same id and runs the turn in it. Always set, after
        // `child_env`, rather than only when it differs from pi's default: working out
        // pi's default would be a guess at its rules, and telling costs nothing. Absolute,
        // against our cwd where the identity was resolved: the child runs in another.
        request.env.push((
            AGENT_DIR_VAR.into(),
            absolute_agent_dir(&o.shared.agent_dir),
        ));
        Ok((identity, request))
    }
}

impl WatchDeps for ProductionDeps {
    type Child = ChildHandle;
    type SpawnError = ResumeSpawnError;

    /// Resolves the identity and runs the spawner on tokio's blocking pool, at most
    /// `spawn_concurrency` (default 4) at a time. A spawn blocks until the child has exec'd (about a
    /// millisecond, more under load); run inline, a burst of hundreds of resumes kept
    /// the runtime thread from noticing any socket or exit until the burst was over.
    /// If this future is dropped mid-spawn, the spawn still completes and the child is
    /// left running unwatched, exactly as if the future were dropped right after it.
    async fn spawn(&self, plan: &SpawnBgPlan) -> Result<ChildHandle, ResumeSpawnError> {
        // Identity resolution scans saved sessions (file I/O) and the spawn waits for the
        // child's exec: neither may stall the executor. One hop to the blocking pool, under
        // a slot.
        let (deps, owned_plan) = (self.clone(), plan.clone());
        // The semaphore is never closed; a failed acquire would only mean "no limit". The
        // permit moves into the blocking task, so it is held for as long as the fork/exec
        // runs even if this future is dropped meanwhile.
        let slot = self.spawn_slots.clone().acquire_owned().await.ok();
        // A panicking spawner panics here, as it did when called inline (off_async).
        crate::sys::off_async(move || {
            let _slot = slot;
            let (identity, request) = deps.resolve(&owned_plan)?;
            let launch = ResumeLaunch::new(&owned_plan, &identity, &request);
            (deps.options.spawner)(&launch).map_err(ResumeSpawnError::Spawn)
        })
        .await
        .unwrap_or_else(|join| Err(ResumeSpawnError::Cancelled(join)))
    }

    fn watch_socket(
        &self,
        path: &Path,
        cancel: CancellationToken,
    ) -> Result<impl Future<Output = Result<(), BoxError>>, BoxError> {
        let options = WaitOptions::default()
            .with_poll_interval(self.options.shared.poll_interval)
            .with_probe_timeout(self.options.shared.probe_timeout)
            .with_backend(self.options.shared.backend);
        let path = path.to_path_buf();
        Ok(async move { Ok(await_socket_alive(&path, cancel, options).await?) })
    }

    fn watch_exit(
        &self,
        child: &ChildHandle,
        cancel: CancellationToken,
    ) -> Result<impl Future<Output = Result<ChildExit, BoxError>>, BoxError> {
        let exit = child.exit();
        let pid = child.pid();
        Ok(async move {
            tokio::select! {
                exit = exit => Ok(exit?),
                () = cancel.cancelled() => Err(Box::new(ExitWatchCancelled { pid }) as BoxError),
            }
        })
    }

    fn timer(&self, duration: Duration) -> impl Future<Output = ()> {
        tokio::time::sleep(duration)
    }

    async fn signal(&self, child: &ChildHandle, signal: StopSignal) -> Result<(), BoxError> {
        Ok(child.signal(signal).await?)
    }

    /// The release function on the blocking pool: it reads and unlinks the lock file.
    async fn release(&self, claim: &LockClaim) -> Result<ReleaseOutcome, BoxError> {
        let release = Arc::clone(&self.options.shared.release);
        let claim = claim.clone();
        Ok(crate::sys::off_async(move || release(&claim)).await??)
    }

    /// The end of the child's stderr log, read on the blocking pool.
    async fn stderr_tail(&self, child: &ChildHandle) -> Option<String> {
        let span = child.stderr_span()?;
        crate::sys::off_async(move || span.tail())
            .await
            .ok()
            .flatten()
    }

    fn term_grace(&self) -> Duration {
        self.options.term_grace
    }

    fn kill_grace(&self) -> Duration {
        self.options.kill_grace
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::OsString;
    use std::path::Path;

    use super::{OptionsError, ProductionOptions};
    use crate::garden_id::GardenId;

    fn some(value: &str) -> Option<OsString> {
        Some(OsString::from(value))
    }

    #[test]
    fn the_environment_roots_every_default_dir_and_an_empty_value_is_unset() {
        for home in [None, some("")] {
            assert!(
                matches!(
                    ProductionOptions::from_vars(home.clone(), None),
                    Err(OptionsError::NoHome)
                ),
                "HOME {home:?}"
            );
        }
        let options = ProductionOptions::from_vars(some("/h"), some("")).expect("HOME is set");
        assert_eq!(options.shared.agent_dir, Path::new("/h/.pi/agent"));
        let options = ProductionOptions::from_vars(some("/h"), some("/a")).expect("HOME is set");
        assert_eq!(options.shared.agent_dir, Path::new("/a"));
        let gid = GardenId::parse("20261207T150000-abcdef").expect("a gid");
        assert_eq!(
            options.socket_path(&gid),
            Path::new("/h/.pi/entwurf-control/20261207T150000-abcdef.sock")
        );
        assert_eq!(
            options.lock_path(&gid),
            Path::new("/h/.pi/entwurf-v2-locks/20261207T150000-abcdef.lock")
        );
    }

    /// The options' Debug shows the directories and knobs a person debugging a resume
    /// needs (the function-valued fields are left out).
    #[test]
    fn debug_shows_the_dirs_and_the_knobs() {
        let options = ProductionOptions::with_home(Path::new("/h"), None);
        let shown = format!("{options:?}");
        for part in [
            "ProductionOptions",
            "SharedOptions",
            "control_dir: \"/h/.pi/entwurf-control\"",
            "lock_dir: \"/h/.pi/entwurf-v2-locks\"",
            "term_grace: 5s",
            "spawn_concurrency: 4",
            "..",
        ] {
            assert!(shown.contains(part), "{part} missing from {shown}");
        }
    }
}
