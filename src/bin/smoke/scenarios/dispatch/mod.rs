//! D: a dispatch (SPEC §18) end to end over the production deps — a real saved session
//! per citizen, the real lock files, real unix sockets — against stand-in citizens that
//! speak the control protocol or misbehave as asked (`stand_ins::citizen`), and, for the
//! dormant cell, the stand-in `pi` of the resume scenario, which checks its own argv.
//!
//! Each check has its own garden id and its own citizen, so they run concurrently. What
//! a check asserts comes from outside the library's answer too: the citizen's record
//! (every connection and request it received, written before it answers), the deps'
//! calls counted around `ProductionDispatch` (`counted`), the counted release and
//! spawner, and the lock files on disk.

mod counted;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};

use entwurf_v2_spawn::GardenId;
use entwurf_v2_spawn::dispatch::{
    Answer, Command, DispatchRequest, Dispatched, ExchangeLimits, Intent, Liveness, LockFate,
    ProductionDispatch, Receipt, Rejected, ResumeOutcome, TargetConflict, dispatch, exchange,
};
use entwurf_v2_spawn::error_chain;
use entwurf_v2_spawn::lock::ReleaseOutcome;
use entwurf_v2_spawn::production::child::{SpawnRequest, StderrTarget};
use entwurf_v2_spawn::production::{ProductionOptions, StderrPolicy};
use entwurf_v2_spawn::resume_args::PassthroughArgs;
use entwurf_v2_spawn::watcher::SpawnBgOutcome;

use self::counted::{Calls, Counted};
use super::resume::saved_sessions;
use super::shared::{
    Env, Started, acquire_off_thread, bounded, counting_release, expect_background_resume,
    expect_resident, fail_all, kill_child, off_thread, scratch, spawn_registered, spawner_for,
    wait_ready,
};
use crate::harness::catalog::{Check, Scenario};
use crate::harness::runner::{Runner, expect_that};
use crate::os;
use crate::stand_ins::args::{CitizenArgs, Misbehaviour};
use crate::stand_ins::citizen::{REFUSAL, Record};
use crate::stand_ins::{expected_pi_args, pi_fixture};

/// How long an answer may take: a stand-in answers in microseconds; only a citizen that
/// never answers runs into a bound, and its check chooses a short one ([`STALL`]).
const ANSWER: Duration = Duration::from_millis(1500);

/// The answer bound of the exchange a check's citizen never answers (D8's send, D11's and
/// D12's probe). Those checks prove what the library makes of a stall (failed, or
/// rejected indeterminate, after one attempt), which any bound shows; [`ANSWER`] or the
/// library's default (5 s) would only make the gate wait. The exchanges the citizen does
/// answer (D8's probe) keep [`ANSWER`].
const STALL: Duration = Duration::from_millis(50);

/// The exchange bounds of every dispatch and fence of the scenario.
fn limits() -> ExchangeLimits {
    ExchangeLimits::default()
        .with_connect(Duration::from_millis(300))
        .with_answer(ANSWER)
        .with_max_answer_bytes(16 * 1024)
}

/// Runs the D checks, concurrently.
pub async fn run(runner: &Runner, env: &Env) {
    let checks = Scenario::Dispatch.checks();
    let Some(scratch) = scratch(Scenario::Dispatch, runner, env, &checks).await else {
        return;
    };
    let (world_env, path, sockets) = (
        env.clone(),
        scratch.path().to_owned(),
        scratch.sockets().to_owned(),
    );
    let world = off_thread(move || World::new(&world_env, &path, &sockets)).await;
    let world = match world {
        Ok(world) => world,
        Err(e) => {
            fail_all(runner, &checks, &format!("scenario setup failed: {e:#}")).await;
            return;
        }
    };
    let w = &world;
    tokio::join!(
        runner.check(Check::DispatchLiveSent, live_sent(w)),
        runner.check(Check::DispatchLiveOwned, live_owned(w)),
        runner.check(Check::DispatchDormantResumed, dormant_resumed(w)),
        runner.check(Check::DispatchDormantFireForget, dormant_fire_forget(w)),
        runner.check(Check::DispatchLocked, locked(w)),
        runner.check(Check::DispatchSymlink, symlink(w)),
        runner.check(Check::DispatchOtherSession, other_session(w)),
        runner.check(Check::DispatchStalledSend, stalled_send(w)),
        runner.check(Check::DispatchGoneBeforeSend, gone_before_send(w)),
        runner.check(Check::DispatchRefused, refused(w)),
        runner.check(
            Check::DispatchIndeterminate,
            indeterminate(w, Check::DispatchIndeterminate, Intent::OwnedOutcome)
        ),
        runner.check(
            Check::DispatchIndeterminateFireForget,
            indeterminate(
                w,
                Check::DispatchIndeterminateFireForget,
                Intent::FireAndForget
            )
        ),
    );
}

/// The scenario's citizens: saved sessions (cwd `work`), their control dir
/// `work/control` (short enough for `sun_path`), the lock dir, the stand-in `pi`.
struct World {
    env: Env,
    dir: PathBuf,
    work: PathBuf,
    pi: PathBuf,
}

impl World {
    /// The world's files under `scratch`; its sockets (the control dir and the D6
    /// symlink's target) under `sockets`, the scenario's short socket dir, so that each
    /// fits `sun_path` whatever the user's `TMPDIR` (`work/control/<gid>.sock` is within
    /// the socket dir's budget, `temp_dirs::DEEPEST_SOCKET`).
    fn new(env: &Env, scratch: &Path, sockets: &Path) -> Result<Self> {
        let dir = std::fs::canonicalize(scratch)?;
        let base = sockets.to_path_buf();
        let work = base.join("work");
        std::fs::create_dir_all(work.join(pi_fixture::CONTROL_DIR)).context("control dir")?;
        let bin = dir.join("bin");
        std::fs::create_dir_all(&bin).context("bin dir")?;
        let pi = bin.join(pi_fixture::PROGRAM_NAME);
        std::os::unix::fs::symlink(&env.exe, &pi).context("linking the stand-in pi")?;
        let gids = Scenario::Dispatch
            .checks()
            .into_iter()
            .map(gid_of)
            .collect::<Result<Vec<_>>>()?;
        saved_sessions(&dir.join("agent"), &gids, &work)?;
        Ok(Self {
            env: env.clone(),
            dir,
            work,
            pi,
        })
    }

    /// The production deps for `owner`'s citizen, counted.
    fn deps(&self, owner: Check) -> Result<Case> {
        let gid = gid_of(owner)?;
        // HOME of the options is a temp dir too: nothing may reach the real ~/.pi.
        let mut options =
            ProductionOptions::with_home(&self.dir.join("home"), Some(self.dir.join("agent")));
        options.shared.control_dir = self.work.join(pi_fixture::CONTROL_DIR);
        options.shared.lock_dir = self.dir.join("locks");
        options.shared.backend = self.env.backend;
        options.shared.pi_program = self.pi.clone().into_os_string();
        options.shared.extension_args = PassthroughArgs::new(pi_fixture::EXTENSION_ARGS)
            .context("the stand-in's extension args")?;
        options.stderr = StderrPolicy::LogDir(self.dir.join("logs"));
        let spawns = Arc::new(AtomicUsize::new(0));
        let counted = spawns.clone();
        let spawn = spawner_for(owner);
        options.spawner = Arc::new(move |launch| {
            counted.fetch_add(1, Ordering::SeqCst);
            spawn(launch)
        });
        options.shared.poll_interval = Duration::from_millis(25);
        options.shared.probe_timeout = Duration::from_millis(300);
        options.term_grace = Duration::from_millis(150);
        options.kill_grace = Duration::from_millis(500);
        let (release, releases) = counting_release();
        options.shared.release = release;
        let lock_file = options.lock_path(&gid);
        let socket = options.socket_path(&gid);
        let log = self.dir.join("logs").join(format!("{gid}.stderr.log"));
        let probe_limits = match owner {
            Check::DispatchIndeterminate | Check::DispatchIndeterminateFireForget => {
                limits().with_answer(STALL)
            }
            _ => limits(),
        };
        let mut deps = Counted::new(
            ProductionDispatch::new(options.clone()).with_limits(probe_limits),
            &lock_file,
        );
        if owner == Check::DispatchStalledSend {
            deps = deps.sending_with(
                ProductionDispatch::new(options).with_limits(limits().with_answer(STALL)),
            );
        }
        Ok(Case {
            owner,
            gid,
            deps,
            releases,
            spawns,
            lock_file,
            socket,
            log,
        })
    }

    /// Starts `owner`'s citizen, runs `body` with it and stops it whatever `body` said (the
    /// end of its stderr joins a failure): the one shape of every D check with a citizen.
    /// Runs `body` with `owner`'s case and its citizen, which listens on the case's own
    /// socket and answers `get_info` as the case's own session (what most D checks
    /// dispatch to; D6 and D7 plant another listener or another session).
    async fn with_own_citizen(
        &self,
        owner: Check,
        misbehave: Misbehaviour,
        body: impl AsyncFnOnce(&Case, &Citizen) -> Result<()>,
    ) -> Result<()> {
        let case = self.deps(owner)?;
        self.with_citizen(
            case.owner,
            &case.socket,
            case.gid.as_str(),
            misbehave,
            async |c| body(&case, c).await,
        )
        .await
    }

    async fn with_citizen(
        &self,
        owner: Check,
        listen: &Path,
        session: &str,
        misbehave: Misbehaviour,
        body: impl AsyncFnOnce(&Citizen) -> Result<()>,
    ) -> Result<()> {
        let citizen = self.citizen(owner, listen, session, misbehave).await?;
        let result = body(&citizen).await;
        citizen.finish(result).await
    }

    /// Starts `owner`'s citizen on `listen`, answering `get_info` as `session`.
    async fn citizen(
        &self,
        owner: Check,
        listen: &Path,
        session: &str,
        misbehave: Misbehaviour,
    ) -> Result<Citizen> {
        let tag = format!("citizen-{}", owner.id());
        let args = CitizenArgs {
            lifeline: Some(self.env.gate),
            listen: listen.to_path_buf(),
            session_id: session.to_owned(),
            record: self.dir.join(format!("{tag}.record")),
            misbehave,
        };
        let stderr = self.dir.join(format!("{tag}.stderr.log"));
        let request = SpawnRequest::new(self.env.exe.clone(), args.to_args(), &self.dir)
            .with_stderr(StderrTarget::AppendTo(stderr.clone()))
            .with_backend(self.env.backend);
        let handle = spawn_registered(owner, &request)
            .map_err(|e| anyhow!("starting the citizen: {}", error_chain(&e)))?;
        let started = Started {
            handle,
            ready: args.record.clone(),
            stderr,
        };
        if let Err(e) = wait_ready(&started).await {
            kill_child(&started.handle).await;
            return Err(e);
        }
        Ok(Citizen {
            started,
            args,
            backend: self.env.backend,
        })
    }
}

/// Each check's own garden id: `0xd00000 + n` in hex for `Dn` (`…-d0000a` for D10).
fn gid_of(check: Check) -> Result<GardenId> {
    let n = check
        .id()
        .strip_prefix('D')
        .and_then(|n| n.parse::<u32>().ok())
        .ok_or_else(|| anyhow!("{} is not a D check", check.id()))?;
    super::shared::gid(0x00d0_0000 + n)
}

/// One check's citizen deps and what they count.
struct Case {
    owner: Check,
    gid: GardenId,
    deps: Counted,
    releases: Arc<AtomicUsize>,
    spawns: Arc<AtomicUsize>,
    lock_file: PathBuf,
    socket: PathBuf,
    log: PathBuf,
}

/// What the production resume hand answers.
type Resumed = <Counted as entwurf_v2_spawn::dispatch::DispatchDeps>::Resumed;
type Done = Dispatched<Resumed>;

impl Case {
    /// Dispatches `message` with `intent` (and `launch_args` for a resume).
    async fn dispatch(&self, intent: Intent, message: &str) -> Result<Done> {
        let request = DispatchRequest::new(self.gid.clone(), message, intent)
            .with_launch_args(pi_fixture::LAUNCH_ARGS)?
            .with_observe_timeout(Duration::from_secs(5));
        dispatch(&request, &self.deps)
            .await
            .map_err(|e| anyhow!("dispatch: {}", error_chain(&e)))
    }

    fn releases(&self) -> usize {
        self.releases.load(Ordering::SeqCst)
    }

    fn spawns(&self) -> usize {
        self.spawns.load(Ordering::SeqCst)
    }

    /// The lock was taken and released once by the dispatch, and its file is gone.
    fn released_once(&self, done: &Done) -> Result<()> {
        expect_that(
            done.lock == LockFate::Released(ReleaseOutcome::Released),
            || format!("the lock's fate is {:?}, not released", done.lock),
        )?;
        let acquires = Calls::get(&self.deps.calls.acquires);
        expect_that(acquires == 1, || {
            format!("acquire was called {acquires} times")
        })?;
        self.released_once_by_someone()
    }

    /// One release in all (the dispatch's or the resume's), and no lock file left.
    fn released_once_by_someone(&self) -> Result<()> {
        let n = self.releases();
        expect_that(n == 1, || format!("release was called {n} times"))?;
        expect_that(!self.lock_file.exists(), || {
            format!("{} is still there", self.lock_file.display())
        })
    }

    /// The receipt is `rejected` for `reason`.
    fn expect_rejected<'a>(&self, done: &'a Done, reason: &str) -> Result<&'a Rejected> {
        match done.receipt.rejected() {
            Some(rejected) if rejected.reason().as_str() == reason => Ok(rejected),
            _ => bail!("expected rejected {reason}, got {}", said(&done.receipt)),
        }
    }

    /// Neither a probe, nor an acquire, nor a send: refused before the lock.
    fn nothing_asked(&self, acquires: usize) -> Result<()> {
        let calls = &self.deps.calls;
        let (a, p, s) = (
            Calls::get(&calls.acquires),
            Calls::get(&calls.probes),
            Calls::get(&calls.sends),
        );
        expect_that((a, p, s) == (acquires, 0, 0), || {
            format!(
                "{a} acquire(s) (expected {acquires}), {p} probe(s), {s} send(s) (expected none)"
            )
        })
    }

    /// `probes` probes and `sends` send attempts, every one while the lock file was
    /// there.
    fn probes_and_sends(&self, probes: usize, sends: usize) -> Result<()> {
        let calls = &self.deps.calls;
        let (p, locked, s, s_locked) = (
            Calls::get(&calls.probes),
            Calls::get(&calls.probes_under_lock),
            Calls::get(&calls.sends),
            Calls::get(&calls.sends_under_lock),
        );
        expect_that(p == probes && locked == probes, || {
            format!("{p} probe(s), {locked} under the lock; expected {probes}, all under it")
        })?;
        expect_that(s == sends && s_locked == sends, || {
            format!(
                "{s} send attempt(s), {s_locked} under the lock; expected {sends}, all under it"
            )
        })
    }
}

/// A receipt in a few words, for a failure's reason.
fn said(receipt: &Receipt<Resumed>) -> String {
    match receipt {
        Receipt::Rejected(rejected) => format!("rejected {rejected}"),
        Receipt::Failed { cause, observed } => {
            format!("failed ({}), observed {observed}", error_chain(cause))
        }
        Receipt::Sent { ack, observed } | Receipt::FallbackSent { ack, observed, .. } => {
            format!(
                "{} (ack {:?}), observed {observed}",
                receipt.kind(),
                ack.data
            )
        }
        Receipt::Resumed { observed, outcome } => {
            let outcome = match outcome {
                Ok(ResumeOutcome::Background(SpawnBgOutcome::SocketAlive { pid, .. })) => {
                    format!("socket-alive, pid {pid}")
                }
                Ok(ResumeOutcome::Background(SpawnBgOutcome::ChildExited { exit, .. })) => {
                    format!("child-exited ({exit})")
                }
                Ok(other) => format!("{other:?}"),
                Err(e) => error_chain(e),
            };
            format!("resumed ({outcome}), observed {observed}")
        }
        other => other.kind().to_owned(),
    }
}

/// A running stand-in citizen.
struct Citizen {
    started: Started,
    args: CitizenArgs,
    backend: entwurf_v2_spawn::Backend,
}

impl Citizen {
    fn heard(&self) -> Result<Record> {
        Record::read(&self.args.record).map_err(|e| anyhow!("{e}"))
    }

    /// What it heard once it recorded `n` requests. A citizen that never answers may read
    /// a request only after the client gave up on it (a [`STALL`] bound on a loaded
    /// machine), so the record is read again until it holds `n`, for at most [`ANSWER`]
    /// (then as it is: the check names what is missing).
    async fn heard_requests(&self, n: usize) -> Result<Record> {
        let start = std::time::Instant::now();
        loop {
            let record = self.heard()?;
            if record.requests().len() >= n || start.elapsed() >= ANSWER {
                return Ok(record);
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// What it heard before now: a `get_info` of our own goes to its socket, and once it
    /// is answered every connection made before it has been recorded (the citizen records
    /// a connection as it accepts it, in order). The fence itself is left out.
    async fn heard_before_fence(&self) -> Result<Record> {
        let answer = exchange(
            &self.args.listen,
            self.backend,
            &Command::GetInfo,
            &limits(),
        )
        .await
        .map_err(|e| anyhow!("the fence's get_info: {}", error_chain(&e)))?;
        expect_that(matches!(answer, Answer::Success(_)), || {
            format!("the fence's get_info was answered {answer:?}")
        })?;
        let mut record = self.heard()?;
        let fence = record
            .heard
            .iter()
            .rposition(|h| *h == crate::stand_ins::citizen::Heard::Connected)
            .ok_or_else(|| {
                anyhow!("the citizen recorded no connection at all, not even the fence's")
            })?;
        record.heard.truncate(fence);
        Ok(record)
    }

    /// Stops the citizen and hands `result` on, with the end of its stderr on failure.
    async fn finish(self, result: Result<()>) -> Result<()> {
        kill_child(&self.started.handle).await;
        result.map_err(|e| anyhow!("{e:#}{}", super::shared::stderr_note(&self.started.stderr)))
    }
}

fn message_for(case: &Case) -> String {
    format!("smoke: a message for {}", case.gid)
}

/// D1.
async fn live_sent(world: &World) -> Result<()> {
    world
        .with_own_citizen(
            Check::DispatchLiveSent,
            Misbehaviour::None,
            async |case, c| {
                let message = message_for(case);
                let done = case.dispatch(Intent::FireAndForget, &message).await?;
                let Receipt::Sent { ack, observed } = &done.receipt else {
                    bail!("expected sent, got {}", said(&done.receipt));
                };
                expect_that(ack.delivered_as() == Some("followUp"), || {
                    format!("the ack says deliveredAs {:?}", ack.delivered_as())
                })?;
                expect_that(observed.liveness() == Liveness::Alive, || {
                    format!("the send rested on {observed}")
                })?;
                case.released_once(&done)?;
                case.probes_and_sends(1, 1)?;
                let heard = c.heard()?;
                let kinds = heard.kinds();
                expect_that(kinds == ["get_info", "send"], || {
                    format!("the citizen heard {kinds:?}, expected [get_info, send]")
                })?;
                let send = heard.sends()[0];
                expect_that(
                    send["message"] == message.as_str() && send["mode"] == "follow_up",
                    || format!("the citizen received {send}"),
                )
            },
        )
        .await
}

/// D2.
async fn live_owned(world: &World) -> Result<()> {
    world
        .with_own_citizen(
            Check::DispatchLiveOwned,
            Misbehaviour::None,
            async |case, c| {
                let done = case
                    .dispatch(Intent::OwnedOutcome, &message_for(case))
                    .await?;
                let rejected = case.expect_rejected(&done, "owned-live-no-autosend")?;
                expect_that(
                    rejected.observed().map(|o| o.liveness()) == Some(Liveness::Alive),
                    || format!("the refusal rests on {:?}", rejected.observed()),
                )?;
                case.released_once(&done)?;
                case.probes_and_sends(1, 0)?;
                let kinds = c.heard()?.kinds();
                expect_that(kinds == ["get_info"], || {
                    format!("the citizen heard {kinds:?}, expected only the probe's get_info")
                })?;
                let spawns = case.spawns();
                expect_that(spawns == 0, || format!("{spawns} spawn(s)"))
            },
        )
        .await
}

/// D3.
async fn dormant_resumed(world: &World) -> Result<()> {
    let case = world.deps(Check::DispatchDormantResumed)?;
    let done = case
        .dispatch(Intent::OwnedOutcome, pi_fixture::PROMPT)
        .await?;
    let (observed, outcome) = expect_background_resume(done).await?;
    let (pid, release, resident) = expect_resident(outcome, &case.log).await?;
    let checked = (|| {
        expect_that(observed.liveness() == Liveness::Dead, || {
            format!("the resume rested on {observed}")
        })?;
        expect_that(release == ReleaseOutcome::Released, || {
            format!("the resume's release said {release:?}")
        })?;
        case.released_once_by_someone()?;
        case.probes_and_sends(1, 0)?;
        let spawns = case.spawns();
        expect_that(spawns == 1, || format!("{spawns} spawn(s)"))?;
        // The stand-in `pi` exits 2 on any other argv; the check reads it again here.
        let mut want = vec![world.pi.to_string_lossy().into_owned()];
        want.extend(expected_pi_args(case.gid.as_str()));
        let argv = os::cmdline(pid);
        expect_that(argv == want, || {
            format!("the resumed pi runs {argv:?}, expected {want:?}")
        })?;
        expect_that(
            argv.last().map(String::as_str) == Some(pi_fixture::PROMPT),
            || format!("the message is not the resume's prompt: {argv:?}"),
        )
    })();
    kill_child(&resident).await;
    checked
}

/// D4.
async fn dormant_fire_forget(world: &World) -> Result<()> {
    let case = world.deps(Check::DispatchDormantFireForget)?;
    let done = case
        .dispatch(Intent::FireAndForget, &message_for(&case))
        .await?;
    let rejected = case.expect_rejected(&done, "dormant-fire-forget-unsupported")?;
    expect_that(
        rejected.observed().map(|o| o.liveness()) == Some(Liveness::Dead),
        || format!("the refusal rests on {:?}", rejected.observed()),
    )?;
    case.released_once(&done)?;
    case.probes_and_sends(1, 0)?;
    let (spawns, resumes) = (case.spawns(), Calls::get(&case.deps.calls.resumes));
    expect_that(spawns == 0 && resumes == 0, || {
        format!("{resumes} resume(s), {spawns} spawn(s): nothing may be spawned")
    })
}

/// D5.
async fn locked(world: &World) -> Result<()> {
    world
        .with_own_citizen(
            Check::DispatchLocked,
            Misbehaviour::None,
            async |case, c| {
                let holder = acquire_off_thread(world.dir.join("locks"), case.gid.clone()).await?;
                let before = std::fs::read(holder.lock_path()).context("reading the held lock")?;
                let result = async {
                    let done = case
                        .dispatch(Intent::FireAndForget, &message_for(case))
                        .await?;
                    let rejected = case.expect_rejected(&done, "target-locked")?;
                    expect_that(rejected.observed().is_none(), || {
                        "a refusal before the probe carries an observed liveness".into()
                    })?;
                    expect_that(done.lock == LockFate::NotTaken, || {
                        format!("the lock's fate is {:?}, not taken", done.lock)
                    })?;
                    case.nothing_asked(1)?;
                    let heard = c.heard_before_fence().await?;
                    expect_that(heard.heard.is_empty(), || {
                        format!("the citizen heard {:?} before the fence", heard.heard)
                    })?;
                    let after =
                        std::fs::read(holder.lock_path()).context("the holder's lock is gone")?;
                    expect_that(after == before, || "the holder's lock file changed".into())?;
                    let n = case.releases();
                    expect_that(n == 0, || format!("release was called {n} times"))
                }
                .await;
                off_thread(move || {
                    entwurf_v2_spawn::lock::release(&holder).map_err(|e| anyhow!("{e:#}"))
                })
                .await?;
                result
            },
        )
        .await
}

/// D6.
async fn symlink(world: &World) -> Result<()> {
    let case = world.deps(Check::DispatchSymlink)?;
    // Beside the work dir, not in the control dir: the symlink's target only.
    let real = world.work.with_file_name(format!("{}.real.sock", case.gid));
    world
        .with_citizen(
            case.owner,
            &real,
            case.gid.as_str(),
            Misbehaviour::None,
            async |c| {
                std::os::unix::fs::symlink(&real, &case.socket).context("planting the symlink")?;
                let done = case
                    .dispatch(Intent::FireAndForget, &message_for(&case))
                    .await?;
                let rejected = case.expect_rejected(&done, "target-address-conflict")?;
                expect_that(rejected.observed().is_none(), || {
                    "a refusal before the probe carries an observed liveness".into()
                })?;
                expect_that(done.lock == LockFate::NotTaken, || {
                    format!("the lock's fate is {:?}, not taken", done.lock)
                })?;
                case.nothing_asked(0)?;
                let heard = c.heard_before_fence().await?;
                expect_that(heard.heard.is_empty(), || {
                    format!("the listener behind the symlink heard {:?}", heard.heard)
                })?;
                expect_that(!case.lock_file.exists(), || "a lock file was left".into())?;
                let kept = std::fs::symlink_metadata(&case.socket).is_ok_and(|m| m.is_symlink());
                expect_that(kept, || "the symlink is gone".into())
            },
        )
        .await
}

/// D7.
async fn other_session(world: &World) -> Result<()> {
    let case = world.deps(Check::DispatchOtherSession)?;
    let other = super::shared::gid(0x00d0_ffff)?;
    let socket = case.socket.clone();
    world
        .with_citizen(
            case.owner,
            &socket,
            other.as_str(),
            Misbehaviour::None,
            async |c| {
                let done = case
                    .dispatch(Intent::FireAndForget, &message_for(&case))
                    .await?;
                let rejected = case.expect_rejected(&done, "target-address-conflict")?;
                let answered = match rejected {
                    Rejected::AddressConflict {
                        conflict: TargetConflict::OtherSession { answered },
                        ..
                    } => answered.clone(),
                    other => bail!("expected a conflict naming another session, got {other}"),
                };
                expect_that(answered == other.as_str(), || {
                    format!("the conflict names {answered}, the citizen answered as {other}")
                })?;
                case.released_once(&done)?;
                case.probes_and_sends(1, 0)?;
                let kinds = c.heard()?.kinds();
                expect_that(kinds == ["get_info"], || {
                    format!("the listener heard {kinds:?}, expected only the probe's get_info")
                })
            },
        )
        .await
}

/// D8.
async fn stalled_send(world: &World) -> Result<()> {
    world
        .with_own_citizen(Check::DispatchStalledSend, Misbehaviour::StallSend, async |case, c| {
        let done = case
            .dispatch(Intent::FireAndForget, &message_for(case))
            .await?;
        expect_that(done.receipt.kind() == "failed", || {
            format!("expected failed, got {}", said(&done.receipt))
        })?;
        case.released_once(&done)?;
        case.probes_and_sends(1, 1)?;
        let kinds = c.heard_requests(2).await?.kinds();
        expect_that(kinds == ["get_info", "send"], || {
            format!("the citizen heard {kinds:?}, expected [get_info, send]: one delivery attempt")
        })
        })
        .await
}

/// D9.
async fn gone_before_send(world: &World) -> Result<()> {
    world
        .with_own_citizen(
            Check::DispatchGoneBeforeSend,
            Misbehaviour::DieAfterInfo,
            async |case, c| {
                let done = case
                    .dispatch(Intent::FireAndForget, &message_for(case))
                    .await?;
                let rejected = case.expect_rejected(&done, "dormant-fire-forget-unsupported")?;
                expect_that(
                    rejected.observed().map(|o| o.liveness()) == Some(Liveness::Dead),
                    || format!("the refusal rests on {:?}", rejected.observed()),
                )?;
                // The first probe found it alive, the send found nobody, one more probe
                // under the same lock (one acquire, one release) found it dead.
                case.released_once(&done)?;
                case.probes_and_sends(2, 1)?;
                let kinds = c.heard()?.kinds();
                expect_that(kinds == ["get_info"], || {
                    format!("the citizen heard {kinds:?}, expected only the first probe's get_info")
                })?;
                let exit = bounded(
                    Duration::from_secs(2),
                    "the citizen's exit",
                    c.started.handle.exit(),
                )
                .await??;
                expect_that(exit.code == Some(0), || {
                    format!("the citizen ended with {exit}, not by dying on purpose")
                })
            },
        )
        .await
}

/// D10.
async fn refused(world: &World) -> Result<()> {
    world
        .with_own_citizen(
            Check::DispatchRefused,
            Misbehaviour::RefuseSend,
            async |case, c| {
                let done = case
                    .dispatch(Intent::FireAndForget, &message_for(case))
                    .await?;
                let rejected = case.expect_rejected(&done, "send-refused")?;
                expect_that(rejected.to_string().contains(REFUSAL), || {
                    format!("the refusal does not carry the citizen's words: {rejected}")
                })?;
                case.released_once(&done)?;
                case.probes_and_sends(1, 1)?;
                let kinds = c.heard()?.kinds();
                expect_that(kinds == ["get_info", "send"], || {
                    format!(
                        "the citizen heard {kinds:?}, expected [get_info, send]: no second attempt"
                    )
                })
            },
        )
        .await
}

/// D11 (owned-outcome) and D12 (fire-and-forget): the indeterminate column.
async fn indeterminate(world: &World, owner: Check, intent: Intent) -> Result<()> {
    world
        .with_own_citizen(owner, Misbehaviour::Silent, async |case, c| {
            let done = case.dispatch(intent, &message_for(case)).await?;
            let rejected = case.expect_rejected(&done, "indeterminate-no-spawn")?;
            expect_that(
                rejected.observed().map(|o| o.liveness()) == Some(Liveness::Indeterminate),
                || format!("the refusal rests on {:?}", rejected.observed()),
            )?;
            case.released_once(&done)?;
            case.probes_and_sends(1, 0)?;
            let (spawns, resumes) = (case.spawns(), Calls::get(&case.deps.calls.resumes));
            expect_that(spawns == 0 && resumes == 0, || {
                format!("{resumes} resume(s), {spawns} spawn(s): nothing may be spawned")
            })?;
            let kinds = c.heard_requests(1).await?.kinds();
            expect_that(kinds == ["get_info"], || {
                format!("the listener heard {kinds:?}, expected only the probe's get_info")
            })
        })
        .await
}
