//! P: resumes with the REAL `pi` runtimes, offline.
//!
//! Every other scenario launches a stand-in `pi` this project wrote. Here the library
//! meets the runtime it launches: each runtime found at setup (`harness::pi_runtimes`) resumes
//! sessions that it wrote itself, with the fixture extension (`real-pi/fixture/`, built
//! into this binary and written to the scratch dir) standing in for entwurf's control
//! extension: it accepts `--entwurf-control`, stands the control socket up and speaks the
//! control protocol on it (`get_info` names its session and pid; `send` delivers), holds
//! its turn until asked `fixture_release_turn` ([`fixture`]), and answers through the
//! offline provider `fixture/echo`.
//!
//! Each runtime works in its own dir: a `HOME`, an agent dir that is NOT pi's default
//! (so a resume that does not tell pi its agent dir fails), a project dir, locks and
//! logs. Every process of a runtime's checks inherits a marker variable naming this run
//! and the runtime; `P<n>.8` finds what is left by that marker, never by name. The
//! runtimes run concurrently, each one's eight checks in order.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::future::Future;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};

use entwurf_v2_spawn::lock::{LockClaim, ReleaseOutcome};
use entwurf_v2_spawn::production::child::{ChildHandle, SpawnRequest, StderrTarget};
use entwurf_v2_spawn::production::{
    ProductionDeps, ProductionOptions, ProductionOutcome, ResumeLaunch, StderrPolicy,
};
use entwurf_v2_spawn::resume_args::PassthroughArgs;
use entwurf_v2_spawn::runtime::{ArgvDialect, RuntimeError, preflight};
use entwurf_v2_spawn::visible::{Launcher, ObservationReceipt, VisibleOptions, visible_resume};
use entwurf_v2_spawn::watcher::{SpawnBgOutcome, execute_spawn_bg_resume};
use entwurf_v2_spawn::{Backend, GardenId, SpawnBgPlan, error_chain};

use super::shared::{
    Env, acquire_off_thread, bounded, counting_release, expect_resident, fail_all, kill_child,
    off_thread, scratch, spawn_registered, spawner_for, stderr_note, unexpected, unmet_error,
};
use super::visible::server::Server;
use crate::harness::catalog::{Check, Scenario};
use crate::harness::cleanup::Scratch;
use crate::harness::needs::Needs;
use crate::harness::pi_runtimes::{PiCheck, PiRuntime};
use crate::harness::runner::{Runner, expect_that};
use crate::os;
use crate::stand_ins::guard;

mod dispatch;
mod fixture;

/// How long a real pi may take to come up or to finish: Node starts it in one to three
/// seconds; a loaded machine takes longer. Only a failure waits this long.
const OBSERVE: Duration = Duration::from_secs(30);
/// What the session pi writes first says.
const FIRST: &str = "first words, written by pi itself";
/// What the resume asks.
const PROMPT: &str = "good morning from the gate";

/// The fixture extension, built into the binary so a copied binary (CI runs one as an
/// ordinary user) needs nothing from the checkout but the runtimes; written into each
/// run's scratch dir.
const FIXTURE_SOURCE: &str = include_str!("../../../../real-pi/fixture/entwurf-control-fixture.ts");
/// The fixture's file name.
const FIXTURE_NAME: &str = "entwurf-control-fixture.ts";

/// The fixture's text and a place for it: `<dir>/entwurf-control-fixture.ts`.
fn write_fixture(dir: &Path) -> std::io::Result<PathBuf> {
    let path = dir.join(FIXTURE_NAME);
    std::fs::write(&path, FIXTURE_SOURCE)?;
    Ok(path)
}

/// `-e <fixture>` as extension args.
fn fixture_args(fixture: &Path) -> Vec<String> {
    vec!["-e".into(), fixture.to_string_lossy().into_owned()]
}

/// A variable every process of a P check inherits, naming this run and runtime: how the
/// check finds what it started (never by name).
fn marker(gate: crate::os::ProcessId, runtime: &PiRuntime) -> (OsString, OsString) {
    (
        "ENTWURF_SMOKE_PI".into(),
        format!("{gate}/{}/{}", runtime.position, runtime.version).into(),
    )
}

/// Runs the `P` line when no runtime was found, else every runtime's checks.
pub async fn run(runner: &Runner, env: &Env) {
    if runner.runs(Check::PiMissing) {
        // A skip, or on CI (unless the run opted out) a failure: `harness::needs`.
        let unmet = env.pi.unmet();
        runner
            .check(
                Check::PiMissing,
                async move { Err::<(), _>(unmet_error(unmet)) },
            )
            .await;
    }
    let checks: Vec<Check> = runner
        .selected()
        .iter()
        .copied()
        .filter(|c| matches!(c, Check::Pi(..)))
        .collect();
    let Some(scratch) = scratch(Scenario::Pi, runner, env, &checks).await else {
        return;
    };
    let fixture = match write_fixture(scratch.path()) {
        Ok(fixture) => fixture,
        Err(e) => {
            fail_all(
                runner,
                &checks,
                &format!("writing the fixture extension: {e}"),
            )
            .await;
            return;
        }
    };
    each_runtime(runner, env, &scratch, &fixture, env.pi.found).await;
}

/// Runs `runtimes` concurrently (a join over a list of borrowing futures, without a
/// futures crate: the list is split, its head joined with the rest).
fn each_runtime<'a>(
    runner: &'a Runner,
    env: &'a Env,
    scratch: &'a Scratch,
    fixture: &'a Path,
    runtimes: &'static [PiRuntime],
) -> Pin<Box<dyn Future<Output = ()> + 'a>> {
    Box::pin(async move {
        if let Some((first, rest)) = runtimes.split_first() {
            tokio::join!(
                one_runtime(runner, env, scratch, fixture, first),
                each_runtime(runner, env, scratch, fixture, rest)
            );
        }
    })
}

/// `P<n>.1` to `P<n>.8` against `runtime`, in order.
async fn one_runtime(
    runner: &Runner,
    env: &Env,
    scratch: &Scratch,
    fixture: &Path,
    runtime: &'static PiRuntime,
) {
    let check = |k| Check::Pi(runtime, k);
    if !PiCheck::ALL.iter().any(|k| runner.runs(check(*k))) {
        return;
    }
    let world = match World::new(env, scratch, fixture, runtime) {
        Ok(world) => world,
        Err(e) => {
            let why = format!("setting up pi {}'s dirs: {e:#}", runtime.version);
            fail_all(runner, &PiCheck::ALL.map(check), &why).await;
            return;
        }
    };
    let resident = runner
        .check(check(PiCheck::ResumeSocketAlive), resume(&world))
        .await;
    runner
        .check(check(PiCheck::ResumeTurn), async {
            match &resident {
                Some(r) => turn(&world, r).await,
                None => bail!("not evaluated: the resume it inspects failed"),
            }
        })
        .await;
    if let Some(r) = &resident {
        if r.handle.try_exit().is_none() {
            kill_child(&r.handle).await;
        }
    }
    runner.check(check(PiCheck::Legacy), legacy(&world)).await;
    runner
        .check(check(PiCheck::Visible), visible(env, &world))
        .await;
    runner
        .check(check(PiCheck::RefusedArgv), refused_argv(&world))
        .await;
    runner
        .check(check(PiCheck::Preflight), preflight_refusals(&world))
        .await;
    runner
        .check(check(PiCheck::Dispatch), dispatch::c1(&world))
        .await;
    runner
        .check(check(PiCheck::NothingEscapes), nothing_escapes(&world))
        .await;
}

/// One runtime's dirs and what every resume of it shares.
struct World {
    runtime: &'static PiRuntime,
    /// The runtime's own dir (canonical): everything it may write is below.
    root: PathBuf,
    home: PathBuf,
    /// Not pi's default (`<home>/.pi/agent`): pi finds its sessions only when told.
    agent: PathBuf,
    /// The sessions' project dir (their cwd), in the short socket dir: pi names a
    /// session's dir after its cwd (`--<cwd>--`, one path component), which a long
    /// TMPDIR would push past the 255-byte name limit (ENAMETOOLONG).
    work: PathBuf,
    /// This runtime's part of the scenario's short socket dir: `work`, `control`, the
    /// tmux socket.
    sockets: PathBuf,
    logs: PathBuf,
    /// Where the fixture stands its sockets up (`$ENTWURF_CONTROL_DIR`) and the library
    /// looks: in the scenario's short socket dir, so node can bind there and the portable
    /// backend connect (`sun_path`) whatever TMPDIR is.
    control: PathBuf,
    /// The runtime's private tmux server's socket (`P<n>.4`), beside `control`.
    tmux_socket: PathBuf,
    fixture: PathBuf,
    /// The variable every process of this runtime's checks inherits.
    marker: (OsString, OsString),
    /// What every check runs as the runtime: its launcher under the guard
    /// (`stand_ins::guard`), so that it dies with the gate process, SIGKILL included.
    program: PathBuf,
    /// This binary (the guard) and the gate process it watches.
    exe: PathBuf,
    gate: crate::os::ProcessId,
    /// The library backend of this run.
    backend: Backend,
}

impl World {
    fn new(
        env: &Env,
        scratch: &Scratch,
        fixture: &Path,
        runtime: &'static PiRuntime,
    ) -> Result<Self> {
        // By position too: two `--pi` runtimes may report the same version.
        let root = std::fs::canonicalize(scratch.path())?
            .join(format!("pi{}-{}", runtime.position, runtime.version));
        let sockets = scratch.sockets().join(format!("p{}", runtime.position));
        let control = sockets.join("control");
        let world = Self {
            runtime,
            home: root.join("home"),
            agent: root.join("agent"),
            work: sockets.join("work"),
            logs: root.join("logs"),
            control,
            tmux_socket: sockets.join("tmux.sock"),
            sockets,
            fixture: fixture.to_path_buf(),
            marker: marker(env.gate, runtime),
            program: root.join("bin/pi"),
            exe: env.exe.clone(),
            gate: env.gate,
            backend: env.backend,
            root,
        };
        for dir in [
            &world.home,
            &world.agent,
            &world.work,
            &world.logs,
            &world.tmp(),
            &world.root.join("bin"),
            &world.control,
        ] {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        world.guard(&world.program, &runtime.launcher)?;
        Ok(world)
    }

    /// Writes `at`, a launcher running `program` under the guard: every real runtime a P
    /// check starts is started through one.
    fn guard(&self, at: &Path, program: &Path) -> Result<()> {
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

    fn tmp(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// `HOME`, `TMPDIR` (pi's extension loader caches there), the fixture's control dir
    /// and the marker.
    fn child_env(&self) -> Vec<(OsString, OsString)> {
        vec![
            ("HOME".into(), self.home.clone().into_os_string()),
            ("TMPDIR".into(), self.tmp().into_os_string()),
            (
                "ENTWURF_CONTROL_DIR".into(),
                self.control.clone().into_os_string(),
            ),
            // The install's launchers set it too; a `--pi` runtime may not.
            ("PI_OFFLINE".into(), "1".into()),
            self.marker.clone(),
        ]
    }

    /// A garden id per check (`P<n>.<k>` → `…-a0nnkk`), so each has its own session.
    fn gid(&self, k: PiCheck) -> Result<GardenId> {
        let n = 0xa0_0000 + self.runtime.position * 0x100 + k as usize + 1;
        GardenId::parse(&format!("20261203T000000-{n:06x}")).map_err(|e| anyhow!("{e}"))
    }

    /// The production options of a resume for `owner`: this world's dirs, the runtime,
    /// `extension_args`, a counted release.
    fn options(
        &self,
        owner: Check,
        extension_args: Vec<String>,
    ) -> Result<(ProductionOptions, Arc<AtomicUsize>)> {
        let mut options = ProductionOptions::with_home(&self.home, Some(self.agent.clone()));
        options.shared.lock_dir = self.root.join("locks");
        options.shared.control_dir = self.control.clone();
        options.stderr = StderrPolicy::LogDir(self.logs.clone());
        options.shared.pi_program = self.program.clone().into_os_string();
        options.shared.extension_args =
            PassthroughArgs::new(extension_args).context("the fixture's extension args")?;
        options.shared.child_env = self.child_env();
        options.spawner = spawner_for(owner);
        options.shared.backend = self.backend;
        options.term_grace = Duration::from_secs(2);
        options.kill_grace = Duration::from_secs(1);
        let (release, releases) = counting_release();
        options.shared.release = release;
        Ok((options, releases))
    }

    /// Takes the lock of `gid` and runs the spawn-bg resume of `PROMPT` with `options`,
    /// in the session's own cwd (insisted on: a resume elsewhere would mint a new
    /// session). Returns the outcome, the claim (for its path) and the socket path.
    async fn spawn_bg(
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

    fn log(&self, gid: &GardenId) -> PathBuf {
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
    fn sessions_of(&self, gid: &GardenId) -> Vec<PathBuf> {
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

    fn gids(&self) -> Result<(GardenId, GardenId)> {
        let live = self.gid(PiCheck::Dispatch)?;
        // The dormant one's: the live one's with the 0x80 bit of its check byte set.
        let n = 0xa0_0000 + self.runtime.position * 0x100 + 0x80 + PiCheck::Dispatch as usize + 1;
        let dormant =
            GardenId::parse(&format!("20261203T000000-{n:06x}")).map_err(|e| anyhow!("{e}"))?;
        Ok((live, dormant))
    }

    fn options(&self) -> Result<(ProductionOptions, Arc<AtomicUsize>)> {
        World::options(
            self,
            Check::Pi(self.runtime, PiCheck::Dispatch),
            fixture_args(&self.fixture),
        )
    }

    async fn create_session(&self, gid: &GardenId) -> Result<PathBuf> {
        World::create_session(self, Check::Pi(self.runtime, PiCheck::Dispatch), gid).await
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

fn collect_sessions(dir: &Path, suffix: &str, into: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_sessions(&path, suffix, into);
        } else if path.to_string_lossy().ends_with(suffix) {
            into.push(path);
        }
    }
}

/// The user and assistant messages of a session file, `(role, text)`, in order.
fn turns(file: &Path) -> Result<Vec<(String, String)>> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let mut turns = Vec::new();
    for line in text.lines() {
        let entry: serde_json::Value =
            serde_json::from_str(line).with_context(|| format!("a line of {}", file.display()))?;
        let message = &entry["message"];
        let Some(role) = message["role"].as_str() else {
            continue;
        };
        if entry["type"] != "message" || (role != "user" && role != "assistant") {
            continue;
        }
        let said = match &message["content"] {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Array(parts) => {
                parts.iter().filter_map(|p| p["text"].as_str()).collect()
            }
            _ => String::new(),
        };
        turns.push((role.to_owned(), said));
    }
    Ok(turns)
}

fn header(file: &Path) -> Result<String> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    Ok(text.lines().next().unwrap_or_default().to_owned())
}

fn released_once(releases: &AtomicUsize, lock: &Path) -> Result<()> {
    let n = releases.load(Ordering::SeqCst);
    expect_that(n == 1, || format!("release was called {n} times, not once"))?;
    expect_that(!lock.exists(), || {
        format!("{} is still there", lock.display())
    })
}

/// What `P<n>.1` leaves for `P<n>.2`.
struct Resident {
    handle: ChildHandle,
    gid: GardenId,
    file: PathBuf,
    header: String,
    before: Vec<(String, String)>,
}

/// `P<n>.1`: the spawn-bg `v2-control` resume of a session pi wrote.
async fn resume(world: &World) -> Result<Resident> {
    let owner = Check::Pi(world.runtime, PiCheck::ResumeSocketAlive);
    let gid = world.gid(PiCheck::ResumeSocketAlive)?;
    let file = world.create_session(owner, &gid).await?;
    let (header, before) = (header(&file)?, turns(&file)?);
    let (options, releases) = world.options(owner, fixture_args(&world.fixture))?;
    let (outcome, claim, socket) = world.spawn_bg(options, &gid).await?;
    let (pid, release, handle) = expect_resident(outcome, &world.log(&gid)).await?;
    let resident = Resident {
        handle,
        gid: gid.clone(),
        file,
        header,
        before,
    };
    let checked = async {
        expect_that(release == ReleaseOutcome::Released, || {
            format!("the release said {release:?}")
        })?;
        released_once(&releases, claim.lock_path())?;
        // (pi renames its process to `pi`, so its argv cannot be read back from /proc:
        // the socket's `get_info` below names the session it runs, and P<n>.2 finds the
        // turn — which only the model from pi's own file can answer — in that file.)
        let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).context("the resident's cwd")?;
        expect_that(cwd == world.work, || {
            format!(
                "pi runs in {}, not the session's {}",
                cwd.display(),
                world.work.display()
            )
        })?;
        let info = fixture::info(&socket, world.backend).await?;
        expect_that(info.session_id == gid.as_str(), || {
            format!(
                "the socket belongs to session {}, not {gid}",
                info.session_id
            )
        })?;
        expect_that(info.pid == pid, || {
            format!("the socket is pid {}'s, not the resident's {pid}", info.pid)
        })?;
        // Only now is the turn released: the resident was observed before it worked.
        fixture::release_turn(&socket).await
        // Not signalled: socket-alive came with `after_signal: None` (matched above), and
        // P<n>.2 sees the resident end with exit code 0, not by a signal.
    }
    .await;
    if let Err(e) = checked {
        kill_child(&resident.handle).await;
        return Err(e);
    }
    Ok(resident)
}

/// The turn a resume of `PROMPT` appends.
fn the_turn() -> Vec<(String, String)> {
    vec![
        ("user".to_owned(), PROMPT.to_owned()),
        ("assistant".to_owned(), format!("echo: {PROMPT}")),
    ]
}

/// `P<n>.2`: the resident runs the turn it was told to and exits 0; the file gained
/// exactly that turn.
async fn turn(world: &World, r: &Resident) -> Result<()> {
    let exit = bounded(
        OBSERVE,
        "the resident's exit after its turn",
        r.handle.exit(),
    )
    .await?
    .map_err(|e| anyhow!("{}", error_chain(&e)))?;
    expect_that(exit.code == Some(0), || {
        format!("pi ended with {exit}{}", stderr_note(&world.log(&r.gid)))
    })?;
    let files = world.sessions_of(&r.gid);
    expect_that(files == [r.file.clone()], || {
        format!("the resume minted another session: {files:?}")
    })?;
    expect_that(header(&r.file)? == r.header, || {
        "the session header changed".into()
    })?;
    let after = turns(&r.file)?;
    let added = after.get(r.before.len()..).unwrap_or_default();
    expect_that(after.starts_with(&r.before), || {
        "the earlier history changed".into()
    })?;
    expect_that(added == the_turn(), || {
        format!("expected exactly the resumed turn, the file gained {added:?}")
    })
}

/// `P<n>.3`: the legacy one-shot worker: extension discovery off, the fixture passed as an
/// extension arg, no control flag — so no socket; the exit releases. The production deps
/// build the `v2-control` argv; a dispatcher wanting `legacy` says so in its spawner,
/// which sees the plan and the resolved identity.
async fn legacy(world: &World) -> Result<()> {
    use entwurf_v2_spawn::resume_args::{ResumeArgs, ResumeVariant, build_resume_pi_args};
    let owner = Check::Pi(world.runtime, PiCheck::Legacy);
    let gid = world.gid(PiCheck::Legacy)?;
    let file = world.create_session(owner, &gid).await?;
    let before = turns(&file)?;
    let (mut options, releases) = world.options(owner, fixture_args(&world.fixture))?;
    // A control dir of this check's own, which the fixture creates only when told
    // `--entwurf-control` (and never removes): its absence afterwards proves no socket
    // was ever stood up, where a missing socket file would not (the fixture unlinks its
    // socket on shutdown). Beside the world's control dir, in the short socket dir: the
    // portable backend refuses a socket path longer than sun_path before it starts pi.
    let control = world.control.with_file_name("legacy-control");
    options.shared.control_dir = control.clone();
    options.shared.child_env.push((
        "ENTWURF_CONTROL_DIR".into(),
        control.clone().into_os_string(),
    ));
    let register = spawner_for(owner);
    options.spawner = Arc::new(move |launch: &ResumeLaunch<'_>| {
        let identity = launch.identity;
        let args = build_resume_pi_args(&ResumeArgs {
            variant: ResumeVariant::Legacy,
            session_id: launch.plan.session_id().as_str(),
            extension_args: &identity.extension_args,
            provider: identity.provider.as_deref(),
            model: &identity.model,
            prompt: launch.plan.prompt(),
            launch_args: launch.plan.launch_args(),
        });
        let mut request = launch.request.clone();
        request.args = args.into_iter().map(OsString::from).collect();
        register(&ResumeLaunch::new(launch.plan, identity, &request))
    });
    let (outcome, claim, _socket) = world.spawn_bg(options, &gid).await?;
    let SpawnBgOutcome::ChildExited {
        exit, release, pid, ..
    } = outcome
    else {
        let e = unexpected(outcome, "child-exited").await;
        bail!("{e}{}", stderr_note(&world.log(&gid)));
    };
    expect_that(exit.code == Some(0), || {
        format!(
            "legacy pi (pid {pid}) ended with {exit}{}",
            stderr_note(&world.log(&gid))
        )
    })?;
    expect_that(release == ReleaseOutcome::Released, || {
        format!("the release said {release:?}")
    })?;
    released_once(&releases, claim.lock_path())?;
    expect_that(!control.exists(), || {
        format!(
            "the fixture stood a control socket up in {} without --entwurf-control",
            control.display()
        )
    })?;
    let after = turns(&file)?;
    let added = after.get(before.len()..).unwrap_or_default();
    expect_that(added == the_turn(), || {
        format!("expected the turn in the file, it gained {added:?}")
    })
}

/// `P<n>.4`: the visible resume in a private tmux server's window; then the window is
/// closed and the pane's exit observed.
async fn visible(env: &Env, world: &World) -> Result<()> {
    let owner = Check::Pi(world.runtime, PiCheck::Visible);
    let euid = nix::unistd::geteuid().as_raw();
    if let Some(unmet) = off_thread(move || Ok(Needs::Tmux.unmet(euid))).await? {
        return Err(unmet_error(unmet));
    }
    let gid = world.gid(PiCheck::Visible)?;
    let file = world.create_session(owner, &gid).await?;
    let transcript = std::fs::read(&file).context("reading the transcript")?;
    let server_dir = world.root.join("tmux");
    std::fs::create_dir_all(&server_dir).context("the tmux server's dir")?;
    let server = Server::start(&server_dir, world.tmux_socket.clone(), env, owner)
        .await
        .context("starting the private tmux server")?;
    let result = visible_in(world, &server, &gid, &file, &transcript).await;
    let stopped = server.stop(None).await;
    let pane_pid = result?;
    stopped?;
    let gone = os::poll_until(Duration::from_secs(2), Duration::from_millis(5), || {
        os::proc_stat(pane_pid).is_none_or(|s| s.is_dead())
    })
    .await;
    expect_that(gone, || format!("pi (pid {pane_pid}) outlived its window"))
}

/// The part of `P<n>.4` that needs the server; returns the pane's pid.
async fn visible_in(
    world: &World,
    server: &Server,
    gid: &GardenId,
    file: &Path,
    transcript: &[u8],
) -> Result<u32> {
    let owner = Check::Pi(world.runtime, PiCheck::Visible);
    let (production, releases) = world.options(owner, fixture_args(&world.fixture))?;
    let mut options = VisibleOptions::from_production(&production);
    options.shared.release = production.shared.release.clone();
    options.observe_timeout = OBSERVE;
    let socket = options.socket_path(gid);
    let launcher = server.launcher();
    let done = visible_resume(gid, &options, &launcher)
        .await
        .map_err(|e| anyhow!("{}", error_chain(&e)))?;
    let receipt = done.launch.clone();
    // (How long pi took to come up is its own start-up, not bounded here: the bench
    // measures it.)
    let ObservationReceipt::SocketAlive { .. } = done.observation else {
        bail!("expected socket-alive, got {}", done.observation);
    };
    released_once(
        &releases,
        &entwurf_v2_spawn::lock::lock_path(&options.shared.lock_dir, gid),
    )?;
    let windows = server.windows().await?;
    expect_that(windows.contains(&receipt.window_id), || {
        format!(
            "window {} is gone after the resume: {windows:?}",
            receipt.window_id
        )
    })?;
    let info = fixture::info(&socket, world.backend).await?;
    expect_that(
        info.session_id == gid.as_str() && info.pid == receipt.pane_pid,
        || {
            format!(
                "the socket is session {} of pid {}, not {gid} of the pane's pid {}",
                info.session_id, info.pid, receipt.pane_pid
            )
        },
    )?;
    // Watched before the window closes, so the exit cannot be missed.
    let exited = launcher
        .watch_pane_exit(&receipt)
        .map_err(|e| anyhow!("watching the pane: {e}"))?;
    server.kill_window(&receipt.window_id).await?;
    bounded(
        Duration::from_secs(10),
        "pane-exited after the window closed",
        exited,
    )
    .await?
    .map_err(|e| anyhow!("watching the pane: {e}"))?;
    let now = std::fs::read(file).context("reading the transcript")?;
    expect_that(now == transcript, || {
        format!(
            "the transcript changed ({} → {} bytes): a visible resume runs no turn",
            transcript.len(),
            now.len()
        )
    })?;
    Ok(receipt.pane_pid)
}

/// `P<n>.5`: pi itself refuses the argv (no extension defines `--entwurf-control`): the
/// exit releases, and what pi said is in the outcome.
async fn refused_argv(world: &World) -> Result<()> {
    let owner = Check::Pi(world.runtime, PiCheck::RefusedArgv);
    let gid = world.gid(PiCheck::RefusedArgv)?;
    let _file = world.create_session(owner, &gid).await?;
    let (options, releases) = world.options(owner, Vec::new())?;
    let (outcome, claim, _socket) = world.spawn_bg(options, &gid).await?;
    let SpawnBgOutcome::ChildExited {
        exit, stderr_tail, ..
    } = outcome
    else {
        return Err(unexpected(outcome, "child-exited").await);
    };
    expect_that(exit.code.is_some_and(|c| c != 0), || {
        format!("pi ended with {exit}, not a refusal")
    })?;
    released_once(&releases, claim.lock_path())?;
    let said = stderr_tail.unwrap_or_default();
    expect_that(said.contains("Unknown option: --entwurf-control"), || {
        format!("the outcome does not carry pi's own line; its stderr tail: {said:?}")
    })
}

/// `P<n>.6`: the preflight names this runtime's version — the one its own `package.json`
/// states, a source independent of the preflight and of the launcher's name — and
/// refuses, typed, naming what it found, a missing runtime and one below the spawn-bg
/// floor (a stand-in answering `--version` as 0.73.1, the last release without
/// `--session-id`, does).
async fn preflight_refusals(world: &World) -> Result<()> {
    let (stated, manifest) = package_version(&world.runtime.launcher)?;
    let found = preflight(world.program.as_os_str(), ArgvDialect::SpawnBg)
        .await
        .map_err(|e| anyhow!("{}: {}", error_chain(&e), e.advice()))?;
    // As text: the preflight and the label's version both went through
    // `RuntimeVersion::parse`, which must not be what vouches for itself.
    expect_that(found.to_string() == stated, || {
        format!(
            "the preflight found {found}, {} states {stated}",
            manifest.display()
        )
    })?;
    expect_that(world.runtime.version.to_string() == stated, || {
        format!(
            "this runtime's checks are labelled pi {}, {} states {stated}",
            world.runtime.version,
            manifest.display()
        )
    })?;
    let missing = world.root.join("bin/no-such-pi");
    match preflight(missing.as_os_str(), ArgvDialect::SpawnBg).await {
        Err(RuntimeError::Missing { .. }) => {}
        other => bail!("a missing runtime: expected Missing, got {other:?}"),
    }
    let old = world.root.join("bin/pi-0.73.1");
    std::fs::create_dir_all(world.root.join("bin")).context("bin dir")?;
    std::fs::write(&old, "#!/bin/sh\necho 0.73.1\n").context("the 0.73.1 stand-in")?;
    std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o755))?;
    match preflight(old.as_os_str(), ArgvDialect::SpawnBg).await {
        Err(e @ RuntimeError::BelowFloor { .. }) => {
            let text = e.to_string();
            expect_that(text.contains("0.73.1") && text.contains("0.76.0"), || {
                format!("the refusal does not name both versions: {text}")
            })?;
            expect_that(e.advice().contains("upgrade"), || e.advice())
        }
        other => bail!("pi 0.73.1: expected BelowFloor, got {other:?}"),
    }
}

/// The version the runtime's own `package.json` states, verbatim, and that file: the pi
/// package found above the launcher's real path (npm's bin link), or above a script path
/// the launcher names (`./run.sh install-pi` writes `exec 'node' '…/dist/cli.js'`).
fn package_version(launcher: &Path) -> Result<(String, PathBuf)> {
    let mut starts: Vec<PathBuf> = std::fs::canonicalize(launcher).into_iter().collect();
    let script = std::fs::read(launcher).unwrap_or_default();
    if script.len() < 64 * 1024 {
        let text = String::from_utf8_lossy(&script);
        starts.extend(
            text.split(['\'', '"'])
                .skip(1)
                .step_by(2)
                .filter(|p| p.starts_with('/') && p.ends_with(".js"))
                .map(PathBuf::from),
        );
    }
    for dir in starts.iter().flat_map(|start| start.ancestors().skip(1)) {
        let manifest = dir.join("package.json");
        let Ok(text) = std::fs::read_to_string(&manifest) else {
            continue;
        };
        let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) else {
            continue;
        };
        let is_pi = json["name"]
            .as_str()
            .is_some_and(|n| n.ends_with("/pi-coding-agent"));
        if let (true, Some(version)) = (is_pi, json["version"].as_str()) {
            return Ok((version.to_owned(), manifest));
        }
    }
    bail!(
        "no package.json of pi-coding-agent above {} or a script it names: nothing independent of the preflight to check its version against",
        launcher.display()
    )
}

/// `P<n>.8`: one more resume, traced: no inet socket, no write outside the world's dir;
/// then no process carrying this runtime's marker is left.
async fn nothing_escapes(world: &World) -> Result<()> {
    let euid = nix::unistd::geteuid().as_raw();
    let no_strace = off_thread(move || Ok(Needs::Strace.unmet(euid))).await?;
    let traced = match no_strace {
        None => Some(traced_resume(world).await),
        Some(_) => None,
    };
    // Whatever the traced resume did, what this runtime's checks started must be gone.
    let marker = world.marker.clone();
    let left = move || marked_processes(&marker);
    let clean = os::poll_until(Duration::from_secs(2), Duration::from_millis(10), || {
        left().is_empty()
    })
    .await;
    expect_that(clean, || {
        let marker = world.marker.clone();
        format!(
            "processes of this runtime's checks are left: {:?}",
            marked_processes(&marker)
        )
    })?;
    match (traced, no_strace) {
        (Some(traced), _) => traced,
        // No process was left, but the traced resume did not run: a skip, or on CI a
        // failure, in `--list`'s words.
        (None, unmet) => Err(unmet_error(unmet.unwrap_or_else(|| {
            crate::harness::needs::Unmet::new("the traced resume did not run", true)
        }))),
    }
}

/// `P<n>.8`'s resume under strace: no inet call, no write outside the world's dirs.
async fn traced_resume(world: &World) -> Result<()> {
    let owner = Check::Pi(world.runtime, PiCheck::NothingEscapes);
    let gid = world.gid(PiCheck::NothingEscapes)?;
    let _file = world.create_session(owner, &gid).await?;
    let trace = world.logs.join(format!("{gid}.strace"));
    // strace runs the guarded launcher, not the other way round: strace waits for every
    // child of its own, so a guard's watcher started beside it would never let it end.
    // Traced, the guard and its watcher run in strace's process group, which the
    // watcher kills when the gate dies.
    let traced = world.root.join("bin/pi-traced");
    std::fs::write(&traced, traced_launcher(&trace, &world.program))
        .context("the traced launcher")?;
    std::fs::set_permissions(&traced, std::fs::Permissions::from_mode(0o755))?;
    let (mut options, _releases) = world.options(owner, fixture_args(&world.fixture))?;
    options.shared.pi_program = traced.into_os_string();
    let (outcome, _claim, socket) = world.spawn_bg(options, &gid).await?;
    let (_, _, resident) = expect_resident(outcome, &world.log(&gid)).await?;
    let ran = async {
        // The leftover search below finds processes by the marker: it can fail only if
        // the marker reaches them. Proved on the process that matters, live: pi itself
        // (its pid from the fixture's get_info), a grandchild of the child started here.
        let info = fixture::info(&socket, world.backend).await?;
        let marker = world.marker.clone();
        let marked = off_thread(move || Ok(marked_processes(&marker))).await?;
        expect_that(marked.contains(&info.pid), || {
            format!(
                "the running pi (pid {}) does not carry the marker {}: the leftover search could not see it (marked: {marked:?})",
                info.pid,
                world.marker.0.to_string_lossy()
            )
        })?;
        fixture::release_turn(&socket).await?;
        let exit = bounded(OBSERVE, "the traced resident's exit", resident.exit())
            .await?
            .map_err(|e| anyhow!("{}", error_chain(&e)))?;
        expect_that(exit.code == Some(0), || {
            format!(
                "traced pi ended with {exit}{}",
                stderr_note(&world.log(&gid))
            )
        })
    }
    .await;
    if let Err(e) = ran {
        kill_child(&resident).await;
        return Err(e);
    }
    let text = std::fs::read_to_string(&trace).context("reading the trace")?;
    let escapes = escapes(&text, &world.work, &[&world.root, &world.sockets]);
    expect_that(escapes.is_empty(), || {
        format!(
            "{} call(s) reached beyond the scratch dir: {}",
            escapes.len(),
            escapes.join(" | ")
        )
    })?;
    expect_that(text.contains("bind("), || {
        "the trace shows no bind: did strace trace pi?".into()
    })
}

/// A launcher that runs `launcher` under strace, logging every network call, every call
/// that creates, writes, renames or removes a file, and what a relative path is relative
/// to: `-y` names each descriptor's path (`AT_FDCWD</cwd>`, `5</dir>`, an open's result),
/// and a process's changes of directory and its children are traced for the rest.
fn traced_launcher(trace: &Path, launcher: &Path) -> String {
    format!(
        "#!/bin/sh\nexec strace -f -qq -y -o '{}' -e trace=%network,open,openat,creat,mkdir,mkdirat,rename,renameat,renameat2,unlink,unlinkat,rmdir,symlink,symlinkat,link,linkat,truncate,chdir,fchdir,clone,clone3,fork,vfork '{}' \"$@\"\n",
        trace.display(),
        launcher.display()
    )
}

/// The traced calls that left `roots` (the runtime's dir, and its part of the short
/// socket dir: the session's cwd and the control dir): an inet address, or a successful write, create, rename or removal of a
/// path outside them. Every path is judged resolved: against the descriptor strace names
/// before it (`-y`), else against its process's cwd — `start` (the session's, where the
/// traced pi starts) unless the trace shows a `chdir`, an `fchdir` or a cwd strace named,
/// inherited by the children it shows — and with `.` and `..` taken out, so
/// `work/../../x` is judged as the `x` it is. An open's result path (`= 5</…>`) is judged
/// too, so a link inside pointing outside counts.
fn escapes(trace: &str, start: &Path, roots: &[&Path]) -> Vec<String> {
    const WRITES: [&str; 5] = ["O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC", "O_APPEND"];
    const CHANGES: [&str; 14] = [
        "mkdir(",
        "mkdirat(",
        "rename(",
        "renameat(",
        "renameat2(",
        "unlink(",
        "unlinkat(",
        "rmdir(",
        "symlink(",
        "symlinkat(",
        "link(",
        "linkat(",
        "truncate(",
        "creat(",
    ];
    let harmless = [
        "/dev/null",
        "/dev/tty",
        "/dev/pts/",
        "/proc/",
        "/dev/urandom",
    ];
    let inside = |p: &str| {
        roots.iter().any(|r| {
            let r = r.to_string_lossy();
            p == r
                || p.strip_prefix(r.as_ref())
                    .is_some_and(|rest| rest.starts_with('/'))
        }) || harmless.iter().any(|h| p.starts_with(h))
    };
    let start = start.to_string_lossy().into_owned();
    let mut cwd: BTreeMap<&str, String> = BTreeMap::new();
    let mut found = Vec::new();
    for line in trace.lines() {
        let (pid, call) = line.split_once(' ').unwrap_or(("", line));
        let here = cwd.get(pid).cloned().unwrap_or_else(|| start.clone());
        // What the trace says about cwds: named by strace, changed, or inherited.
        if let Some(named) = call
            .split("AT_FDCWD</")
            .nth(1)
            .and_then(|r| r.split_once('>'))
        {
            cwd.insert(pid, named.0.to_owned());
        }
        let succeeded = result(call).is_some_and(|r| !r.starts_with('-'));
        if succeeded && call.starts_with("chdir(") {
            if let Some((path, _)) = args_with_base(call).first() {
                cwd.insert(pid, resolve(&here, path));
            }
            continue;
        }
        if succeeded && call.starts_with("fchdir(") {
            if let Some(dir) = call.split_once('<').and_then(|(_, r)| r.split_once(">)")) {
                cwd.insert(pid, dir.0.to_owned());
            }
            continue;
        }
        if call.contains("clone") || call.contains("fork(") {
            if let Some(child) = result(call).filter(|r| r.bytes().all(|b| b.is_ascii_digit())) {
                let inherited = cwd.get(pid).cloned().unwrap_or_else(|| start.clone());
                cwd.insert(child, inherited);
            }
            continue;
        }
        let failed = call.contains(") = -1 ");
        // Any try counts, a failed or pending one too (a non-blocking connect answers
        // EINPROGRESS): only creating an inet socket is not reaching anything.
        let reaches = ["connect(", "sendto(", "sendmsg(", "bind("]
            .iter()
            .any(|c| call.contains(c));
        if reaches && call.contains("AF_INET") {
            found.push(line.to_owned());
            continue;
        }
        let writes = call.contains("open") && WRITES.iter().any(|w| call.contains(w));
        let changes = CHANGES.iter().any(|c| call.starts_with(c));
        if failed || !(writes || changes) {
            continue;
        }
        let mut judged: Vec<String> = args_with_base(call)
            .into_iter()
            .map(|(path, base)| resolve(base.unwrap_or(&here), path))
            .collect();
        if writes {
            judged.extend(
                result(call)
                    .and_then(|r| r.split_once('<'))
                    .and_then(|(_, p)| p.strip_suffix('>'))
                    .map(|p| resolve("/", p)),
            );
        }
        if judged.iter().any(|p| !inside(p)) {
            found.push(line.to_owned());
        }
    }
    found
}

/// What a traced call returned (`= 5</path>`, `= 0`, `= -1 ENOENT …`), when the line
/// has it.
fn result(call: &str) -> Option<&str> {
    call.rsplit_once(") = ").map(|(_, r)| r.trim())
}

/// The quoted paths of a call, each with the directory strace names just before it
/// (`AT_FDCWD</cwd>`, `5</dir>`), if any.
fn args_with_base(call: &str) -> Vec<(&str, Option<&str>)> {
    let mut found = Vec::new();
    let mut rest = call;
    while let Some((before, after)) = rest.split_once('"') {
        let Some((quoted, tail)) = after.split_once('"') else {
            break;
        };
        let base = before
            .trim_end()
            .strip_suffix(',')
            .map(str::trim_end)
            .and_then(|b| b.strip_suffix('>'))
            .and_then(|b| b.rsplit_once('<'))
            .map(|(_, dir)| dir);
        found.push((quoted, base));
        rest = tail;
    }
    found
}

/// `path` made absolute against `base`, `.` and `..` taken out (as the kernel would,
/// links aside: an open's result path covers those).
fn resolve(base: &str, path: &str) -> String {
    let joined = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("{base}/{path}")
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in joined.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    format!("/{}", parts.join("/"))
}

/// Pids of the processes whose environment holds `marker` (name=value).
fn marked_processes(marker: &(OsString, OsString)) -> Vec<u32> {
    let mut needle = marker.0.clone();
    needle.push("=");
    needle.push(&marker.1);
    let needle = needle.into_encoded_bytes();
    os::processes()
        .into_iter()
        .filter(|(_, stat)| !stat.is_dead())
        .filter(|(pid, _)| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|b| *b == 0).any(|var| var == needle.as_slice()))
        })
        .map(|(pid, _)| pid)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trace_judge_flags_inet_and_writes_outside_only() {
        let roots = [Path::new("/tmp/smoke/pi-1"), Path::new("/tmp/short-1")];
        let start = Path::new("/tmp/smoke/pi-1/work");
        let judge = |lines: &[&str]| escapes(&lines.join("\n"), start, &roots);
        let inside = [
            r#"12 bind(22<socket:[9]>, {sa_family=AF_UNIX, sun_path="/tmp/smoke/pi-1/home/.pi/entwurf-control/x.sock"}, 110) = 0"#,
            r#"12 openat(AT_FDCWD</tmp/smoke/pi-1/work>, "/tmp/smoke/pi-1/agent/sessions/a.jsonl", O_WRONLY|O_CREAT|O_APPEND|O_CLOEXEC, 0666) = 23</tmp/smoke/pi-1/agent/sessions/a.jsonl>"#,
            r#"12 openat(AT_FDCWD</tmp/smoke/pi-1/work>, "/etc/ssl/openssl.cnf", O_RDONLY|O_CLOEXEC) = 24</etc/ssl/openssl.cnf>"#,
            r#"12 openat(AT_FDCWD</tmp/smoke/pi-1/work>, "/root/.npmrc", O_WRONLY|O_CREAT, 0666) = -1 EACCES (Permission denied)"#,
            r#"12 openat(AT_FDCWD</tmp/smoke/pi-1/work>, "/dev/null", O_RDWR|O_CLOEXEC) = 25</dev/null>"#,
            r#"12 unlink("/tmp/short-1/x.sock") = 0"#,
            // Relative to the cwd strace names, to a directory descriptor, to the start.
            r#"12 openat(AT_FDCWD</tmp/smoke/pi-1/work>, "relative.txt", O_WRONLY|O_CREAT, 0666) = 27</tmp/smoke/pi-1/work/relative.txt>"#,
            r#"12 mkdirat(7</tmp/smoke/pi-1/agent>, "sessions", 0777) = 0"#,
            r#"13 mkdir("cache", 0777) = 0"#,
        ];
        assert_eq!(judge(&inside), Vec::<String>::new());
        let outside = [
            r#"12 connect(26<socket:[5]>, {sa_family=AF_INET, sin_port=htons(443), sin_addr=inet_addr("1.2.3.4")}, 16) = -1 EINPROGRESS (Operation now in progress)"#,
            r#"12 mkdir("/root/.cache/jiti", 0777) = 0"#,
            r#"12 unlink("/tmp/smoke/pi-10/x.sock") = 0"#,
            // Relative paths that leave: through `..`, another descriptor, a later cwd.
            r#"12 openat(AT_FDCWD</tmp/smoke/pi-1/work>, "../../../x", O_WRONLY|O_CREAT, 0666) = 3</tmp/x>"#,
            r#"12 unlinkat(9</root/.cache>, "stale", 0) = 0"#,
            r#"12 openat(AT_FDCWD</tmp/smoke/pi-1/work>, "link", O_WRONLY, 0666) = 4</etc/passwd>"#,
        ];
        for line in outside {
            assert_eq!(judge(&[line]), [line.to_owned()], "{line}");
        }
        // A cwd changed by chdir (and inherited by a child) resolves later relative calls.
        let moved = [
            r#"12 chdir("/root") = 0"#,
            r#"12 clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|SIGCHLD) = 14"#,
            r#"14 mkdir("notes", 0777) = 0"#,
        ];
        assert_eq!(judge(&moved), [moved[2].to_owned()]);
        assert_eq!(resolve("/a/b", "../../../c/./d"), "/c/d");
    }
}
