//! One runtime's world: its dirs, the marker its processes inherit, its one session, and
//! the resumes every P check of it makes the same way.

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};

use entwurf_v2_spawn::lock::LockClaim;
use entwurf_v2_spawn::production::child::{SpawnRequest, StderrTarget};
use entwurf_v2_spawn::production::{
    ProductionDeps, ProductionOptions, ProductionOutcome, StderrPolicy,
};
use entwurf_v2_spawn::resume_args::PassthroughArgs;
use entwurf_v2_spawn::watcher::execute_spawn_bg_resume;
use entwurf_v2_spawn::{Backend, GardenId, SpawnBgPlan, error_chain};

use super::dispatch;
use super::fixture::fixture_args;
use super::session::collect_sessions;
use crate::harness::catalog::Check;
use crate::harness::catalog::{PiCheck, PiRuntime};
use crate::harness::cleanup::Scratch;
use crate::harness::runner::expect_that;
use crate::scenarios::shared::{
    Env, acquire_off_thread, bounded, counting_release, kill_child, spawn_registered, spawner_for,
    stderr_note,
};
use crate::stand_ins::guard;

/// How long a real pi may take to come up or to finish: Node starts it in one to three
/// seconds; a loaded machine takes longer. Only a failure waits this long.
pub const OBSERVE: Duration = Duration::from_secs(30);
/// What the session pi writes first says.
pub const FIRST: &str = "first words, written by pi itself";
/// What the resume asks.
pub const PROMPT: &str = "good morning from the gate";

/// A variable every process of a P check inherits, naming this run and runtime: how the
/// check finds what it started (never by name).
pub fn marker(gate: crate::os::ProcessId, runtime: &PiRuntime) -> (OsString, OsString) {
    (
        "ENTWURF_SMOKE_PI".into(),
        format!("{gate}/{}/{}", runtime.position, runtime.version).into(),
    )
}

/// One runtime's dirs and what every resume of it shares.
pub struct World {
    pub runtime: &'static PiRuntime,
    /// The runtime's own dir (canonical): everything it may write is below.
    pub root: PathBuf,
    pub home: PathBuf,
    /// Not pi's default (`<home>/.pi/agent`): pi finds its sessions only when told.
    pub agent: PathBuf,
    /// The sessions' project dir (their cwd), in the short socket dir: pi names a
    /// session's dir after its cwd (`--<cwd>--`, one path component), which a long
    /// TMPDIR would push past the 255-byte name limit (ENAMETOOLONG).
    pub work: PathBuf,
    /// This runtime's part of the scenario's short socket dir: `work`, `control`, the
    /// tmux socket.
    pub sockets: PathBuf,
    pub logs: PathBuf,
    /// The runtime's private tmux server's socket (`P<n>.4`), beside `control`.
    pub tmux_socket: PathBuf,
    pub fixture: PathBuf,
    /// The variable every process of this runtime's checks inherits.
    pub marker: (OsString, OsString),
    /// What every check runs as the runtime: its launcher under the guard
    /// (`stand_ins::guard`), so that it dies with the gate process, SIGKILL included.
    pub program: PathBuf,
    /// This binary (the guard) and the gate process it watches.
    pub exe: PathBuf,
    pub gate: crate::os::ProcessId,
    /// The library backend of this run.
    pub backend: Backend,
    /// The runtime's one session once pi was asked to write it ([`World::session`]):
    /// its file, or why pi could not.
    session: tokio::sync::OnceCell<Result<PathBuf, String>>,
}

impl World {
    pub fn new(
        env: &Env,
        scratch: &Scratch,
        fixture: &Path,
        runtime: &'static PiRuntime,
    ) -> Result<Self> {
        // By position too: two `--pi` runtimes may report the same version.
        let root = std::fs::canonicalize(scratch.path())?
            .join(format!("pi{}-{}", runtime.position, runtime.version));
        let sockets = scratch.sockets().join(format!("p{}", runtime.position));
        let world = Self {
            runtime,
            home: root.join("home"),
            agent: root.join("agent"),
            work: sockets.join("work"),
            logs: root.join("logs"),
            tmux_socket: sockets.join("tmux.sock"),
            sockets,
            fixture: fixture.to_path_buf(),
            marker: marker(env.gate, runtime),
            program: root.join("bin/pi"),
            exe: env.exe.clone(),
            gate: env.gate,
            backend: env.backend,
            session: tokio::sync::OnceCell::new(),
            root,
        };
        for dir in [
            &world.home,
            &world.agent,
            &world.work,
            &world.logs,
            &world.tmp(),
            &world.root.join("bin"),
        ] {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        world.guard(&world.program, &runtime.launcher)?;
        Ok(world)
    }

    /// Writes `at`, a launcher running `program` under the guard: every real runtime a P
    /// check starts is started through one.
    pub fn guard(&self, at: &Path, program: &Path) -> Result<()> {
        let script = guard::launcher_script(&self.exe, self.gate, program).ok_or_else(|| {
            anyhow!(
                "{} or {} holds a ' or is not UTF-8: the guard's launcher cannot name it",
                self.exe.display(),
                program.display()
            )
        })?;
        std::fs::write(at, script).with_context(|| format!("writing {}", at.display()))?;
        std::fs::set_permissions(at, std::fs::Permissions::from_mode(0o755))
            .with_context(|| format!("making {} executable", at.display()))
    }

    pub fn tmp(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// `HOME`, `TMPDIR` (pi's extension loader caches there), `PI_OFFLINE` and the
    /// marker (the control dir is each check's: [`control_in`]).
    pub fn child_env(&self) -> Vec<(OsString, OsString)> {
        vec![
            ("HOME".into(), self.home.clone().into_os_string()),
            ("TMPDIR".into(), self.tmp().into_os_string()),
            // The install's launchers set it too; a `--pi` runtime may not.
            ("PI_OFFLINE".into(), "1".into()),
            self.marker.clone(),
        ]
    }

    /// The garden id of the runtime's one session (`…-a0nn01` for runtime `n`).
    pub fn gid(&self) -> Result<GardenId> {
        let n = 0xa0_0000 + self.runtime.position * 0x100 + 1;
        GardenId::parse(&format!("20261203T000000-{n:06x}")).map_err(|e| anyhow!("{e}"))
    }

    /// The runtime's one session, which pi writes (one offline turn) when the first
    /// check asks for it, `owner`. If pi could not, that check fails with why, and every
    /// later one at once, naming it (not by asking pi again, up to its bound each). Every check resumes this one session in turn: the checks of a runtime run
    /// in order, each judges what the file gained from its own resume against the bytes
    /// it read just before, and each ends with the lock released and no pi left running
    /// it. One session instead of one per check spares six node starts per runtime, each
    /// 0.3–1 s of CPU (pi 0.79 and 0.84 load some 670 modules even for `--version`).
    pub async fn session(&self, owner: Check) -> Result<(GardenId, PathBuf)> {
        let gid = self.gid()?;
        let mut first = false;
        let written = self
            .session
            .get_or_init(|| async {
                first = true;
                self.create_session(owner, &gid)
                    .await
                    .map_err(|e| format!("{e:#}"))
            })
            .await;
        match written {
            Ok(file) => Ok((gid, file.clone())),
            Err(e) if first => Err(anyhow!("{e}")),
            Err(e) => Err(anyhow!(
                "not evaluated: pi could not write the runtime's session: {e}"
            )),
        }
    }

    /// The production options of a resume for `owner`: this world's dirs, the runtime,
    /// `extension_args`, a counted release.
    pub fn options(
        &self,
        owner: Check,
        extension_args: Vec<String>,
    ) -> Result<(ProductionOptions, Arc<AtomicUsize>)> {
        let mut options = ProductionOptions::with_home(&self.home, Some(self.agent.clone()));
        // Each check's own lock and socket dirs: the checks resume one session, and what
        // one leaves (a lock a failed check kept, a socket its killed pi left) must not
        // meet the next one's resume.
        let (lock_dir, control) = self.check_dirs(owner);
        options.shared.lock_dir = lock_dir;
        options.stderr = StderrPolicy::LogDir(self.logs.clone());
        options.shared.pi_program = self.program.clone().into_os_string();
        options.shared.extension_args =
            PassthroughArgs::new(extension_args).context("the fixture's extension args")?;
        options.shared.child_env = self.child_env();
        // Made now, so the library's waiter watches it from the start (inotify).
        std::fs::create_dir_all(&control)
            .with_context(|| format!("creating {}", control.display()))?;
        control_in(&mut options, control);
        options.spawner = spawner_for(owner);
        options.shared.backend = self.backend;
        options.term_grace = Duration::from_secs(2);
        options.kill_grace = Duration::from_secs(1);
        let (release, releases) = counting_release();
        options.shared.release = release;
        Ok((options, releases))
    }

    /// `owner`'s lock dir and control dir (`P<n>.<k>`: `locks/p<k>`, and `c<k>` in the
    /// runtime's part of the short socket dir, so node can bind there and the portable
    /// backend connect (`sun_path`) whatever TMPDIR is).
    fn check_dirs(&self, owner: Check) -> (PathBuf, PathBuf) {
        let k = match owner {
            Check::Pi(_, k) => k as usize + 1,
            _ => 0,
        };
        (
            self.root.join("locks").join(format!("p{k}")),
            self.sockets.join(format!("c{k}")),
        )
    }

    /// Takes the lock of `gid` and runs the spawn-bg resume of `PROMPT` with `options`,
    /// in the session's own cwd (insisted on: a resume elsewhere would mint a new
    /// session). Returns the outcome, the claim (for its path) and the socket path.
    pub async fn spawn_bg(
        &self,
        options: ProductionOptions,
        gid: &GardenId,
    ) -> Result<(ProductionOutcome, LockClaim, PathBuf)> {
        let claim = acquire_off_thread(options.shared.lock_dir.clone(), gid.clone()).await?;
        let socket = options.socket_path(gid);
        let plan =
            SpawnBgPlan::new(gid.clone(), PROMPT, socket.clone(), OBSERVE)?.with_cwd(&self.work)?;
        let deps = ProductionDeps::new(options);
        let outcome = execute_spawn_bg_resume(&plan, Some(&claim), &deps).await?;
        Ok((outcome, claim, socket))
    }

    pub fn log(&self, gid: &GardenId) -> PathBuf {
        self.logs.join(format!("{gid}.stderr.log"))
    }

    /// Lets pi write session `gid` in `work` (one offline turn) and returns its file.
    async fn create_session(&self, owner: Check, gid: &GardenId) -> Result<PathBuf> {
        let fixture = self.fixture.to_string_lossy().into_owned();
        let args = [
            "--mode",
            "json",
            "-p",
            "-e",
            &fixture,
            "--session-id",
            gid.as_str(),
            "--provider",
            "fixture",
            "--model",
            "echo",
            FIRST,
        ];
        let log = self.logs.join(format!("{gid}.create.stderr.log"));
        let mut request = SpawnRequest::new(&self.program, args, &self.work)
            .with_stderr(StderrTarget::AppendTo(log.clone()))
            .with_backend(self.backend)
            .with_env("PI_CODING_AGENT_DIR", &self.agent);
        request.env.extend(self.child_env());
        let child = spawn_registered(owner, &request)
            .map_err(|e| anyhow!("starting pi to write the session: {}", error_chain(&e)))?;
        let exit = match bounded(OBSERVE, "pi writing the session", child.exit()).await {
            Ok(exit) => exit.map_err(|e| anyhow!("{}", error_chain(&e)))?,
            Err(e) => {
                kill_child(&child).await;
                return Err(e);
            }
        };
        expect_that(exit.code == Some(0), || {
            format!(
                "pi could not write the session: {exit}{}",
                stderr_note(&log)
            )
        })?;
        let files = self.sessions_of(gid);
        match files.as_slice() {
            [file] => Ok(file.clone()),
            _ => bail!(
                "pi wrote {} session files for {gid}: {files:?}",
                files.len()
            ),
        }
    }

    /// Every session file of `gid` under the world's agent dir and pi's default one.
    pub fn sessions_of(&self, gid: &GardenId) -> Vec<PathBuf> {
        let mut files = Vec::new();
        for root in [
            self.agent.join("sessions"),
            self.home.join(".pi/agent/sessions"),
        ] {
            collect_sessions(&root, &format!("_{gid}.jsonl"), &mut files);
        }
        files.sort();
        files
    }
}

/// What `P<n>.7` (`dispatch`) needs from the world: its dirs, and resumes as the other
/// checks make them.
impl dispatch::Ground for World {
    fn work(&self) -> &Path {
        &self.work
    }

    fn backend(&self) -> Backend {
        self.backend
    }

    fn options(&self) -> Result<(ProductionOptions, Arc<AtomicUsize>)> {
        World::options(
            self,
            Check::Pi(self.runtime, PiCheck::Dispatch),
            fixture_args(&self.fixture),
        )
    }

    async fn session(&self) -> Result<(GardenId, PathBuf)> {
        World::session(self, Check::Pi(self.runtime, PiCheck::Dispatch)).await
    }

    async fn resume(
        &self,
        options: ProductionOptions,
        gid: &GardenId,
    ) -> Result<(ProductionOutcome, LockClaim, PathBuf)> {
        self.spawn_bg(options, gid).await
    }

    fn prompt(&self) -> &'static str {
        PROMPT
    }

    fn sessions_of(&self, gid: &GardenId) -> Vec<PathBuf> {
        World::sessions_of(self, gid)
    }

    fn log(&self, gid: &GardenId) -> PathBuf {
        World::log(self, gid)
    }
}

/// Makes `dir` both where the library looks for the control socket and where the
/// fixture stands it up (`$ENTWURF_CONTROL_DIR`): one place for the two, which must
/// agree. Creates nothing (`P<n>.3` proves no socket by the dir never appearing).
pub fn control_in(options: &mut ProductionOptions, dir: PathBuf) {
    let env = &mut options.shared.child_env;
    env.retain(|(name, _)| name != "ENTWURF_CONTROL_DIR");
    env.push(("ENTWURF_CONTROL_DIR".into(), dir.clone().into_os_string()));
    options.shared.control_dir = dir;
}

pub fn released_once(releases: &AtomicUsize, lock: &Path) -> Result<()> {
    let n = releases.load(Ordering::SeqCst);
    expect_that(n == 1, || format!("release was called {n} times, not once"))?;
    expect_that(!lock.exists(), || {
        format!("{} is still there", lock.display())
    })
}
