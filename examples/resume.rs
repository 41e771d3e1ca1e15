//! Resumes sessions through the production wiring against a stand-in `pi`, and prints
//! every outcome with its error chain.
//!
//! ```sh
//! cargo run --example resume
//! ```
//!
//! Everything lives in a fresh temp dir (HOME, agent dir with saved sessions, lock and
//! control dirs); nothing touches `~/.pi`. The stand-in `pi` is this very example,
//! re-executed through a symlink named `pi`: it checks its argv with the builder's
//! inverse, then does what the `stand-in` file in its cwd says — listen on the control
//! socket, exit with a code, or sleep until it is signalled.
//!
//! Scenarios, one per gid: a resident that comes up (socket alive), one that exits at
//! once (child exited), one that never answers (timeout, SIGTERM, child exited by the
//! signal), one with no saved session (spawn failed, with a typed identity error), and a
//! lock that does not fit the plan (an error; nothing is spawned).

use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use entwurf_v2_spawn::lock::{self, LockClaim};
use entwurf_v2_spawn::production::child::ChildHandle;
use entwurf_v2_spawn::production::identity::IdentityError;
use entwurf_v2_spawn::production::{
    ProductionDeps, ProductionOptions, ProductionOutcome, ResumeSpawnError,
};
use entwurf_v2_spawn::resume_args::parse_resume_pi_args;
use entwurf_v2_spawn::watcher::{SpawnBgOutcome, StopSignal, WatchError, execute_spawn_bg_resume};
use entwurf_v2_spawn::{GardenId, SpawnBgPlan, error_chain};

type Error = Box<dyn std::error::Error>;

fn main() -> ExitCode {
    let invoked_as = std::env::args_os().next().map(PathBuf::from);
    if invoked_as.is_some_and(|p| p.file_name().is_some_and(|n| n == "pi")) {
        return stand_in_pi();
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("resume example: no runtime: {}", error_chain(&e));
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("resume example: {}", error_chain(&*e));
            ExitCode::FAILURE
        }
    }
}

/// What one scenario's stand-in does (written to `stand-in` in its cwd).
enum Behaviour {
    Listen,
    Exit(u8),
    Sleep,
}

/// The scratch world: a temp HOME with an agent dir, and options pointing at it.
struct World {
    root: tempfile::TempDir,
    options: ProductionOptions,
}

impl World {
    fn new() -> Result<Self, Error> {
        let root = tempfile::tempdir()?;
        let home = root.path().join("home");
        let mut options = ProductionOptions::with_home(&home, Some(root.path().join("agent")));
        // The stand-in `pi`: this example under the name `pi`.
        let bin = root.path().join("bin");
        std::fs::create_dir_all(&bin)?;
        std::os::unix::fs::symlink(std::env::current_exe()?, bin.join("pi"))?;
        options.shared.pi_program = bin.join("pi").into_os_string();
        options.term_grace = Duration::from_millis(500);
        options.kill_grace = Duration::from_millis(500);
        std::fs::create_dir_all(&options.shared.control_dir)?;
        Ok(Self { root, options })
    }

    /// Saves a session for `gid` whose cwd tells the stand-in how to behave.
    fn save_session(&self, gid: &GardenId, behaviour: &Behaviour) -> Result<(), Error> {
        let cwd = self.root.path().join("work").join(gid.as_str());
        std::fs::create_dir_all(&cwd)?;
        let socket = self.options.socket_path(gid);
        let what = match behaviour {
            Behaviour::Listen => format!("listen {}", socket.display()),
            Behaviour::Exit(code) => format!("exit {code}"),
            Behaviour::Sleep => "sleep".to_owned(),
        };
        std::fs::write(cwd.join("stand-in"), what)?;
        let sessions = self
            .options
            .shared
            .agent_dir
            .join("sessions")
            .join("example");
        std::fs::create_dir_all(&sessions)?;
        let header = serde_json::json!({"type": "session", "id": gid.as_str(), "cwd": cwd});
        let model = serde_json::json!({
            "type": "model_change", "provider": "example", "modelId": "stand-in-model"
        });
        std::fs::write(
            sessions.join(format!("{gid}.jsonl")),
            format!("{header}\n{model}\n"),
        )?;
        Ok(())
    }

    fn plan(&self, gid: &GardenId, observe: Duration) -> Result<SpawnBgPlan, Error> {
        Ok(SpawnBgPlan::new(
            gid.clone(),
            "good morning",
            self.options.socket_path(gid),
            observe,
        )?
        .with_launch_args(["--approve"])?)
    }

    async fn resume(
        &self,
        gid: &GardenId,
        lock: &LockClaim,
        observe: Duration,
    ) -> Result<Result<ProductionOutcome, WatchError>, Error> {
        let plan = self.plan(gid, observe)?;
        let deps = ProductionDeps::new(self.options.clone());
        Ok(execute_spawn_bg_resume(&plan, Some(lock), &deps).await)
    }
}

async fn run() -> Result<(), Error> {
    let world = World::new()?;
    let long = Duration::from_secs(5);
    let scenarios = [
        ("a resident that comes up", Some(Behaviour::Listen), long),
        (
            "a resume that exits at once",
            Some(Behaviour::Exit(3)),
            long,
        ),
        (
            "a resume that never answers",
            Some(Behaviour::Sleep),
            Duration::from_millis(300),
        ),
        ("a session that was never saved", None, long),
    ];
    for (n, (what, behaviour, observe)) in scenarios.into_iter().enumerate() {
        let gid = GardenId::parse(&format!("20260613T00000{n}-aaaaaa"))?;
        if let Some(behaviour) = &behaviour {
            world.save_session(&gid, behaviour)?;
        }
        println!("== {what} ({gid})");
        let lock = lock::acquire(&world.options.shared.lock_dir, &gid)?;
        report(world.resume(&gid, &lock, observe).await?).await;
        println!(
            "   lock file left: {}",
            world.options.lock_path(&gid).exists()
        );
    }

    // A lock for another gid: refused before anything is started.
    let gid = GardenId::parse("20260613T000009-aaaaaa")?;
    let other = GardenId::parse("20260613T000009-bbbbbb")?;
    println!("== a lock that does not fit the plan ({gid})");
    let wrong = lock::acquire(&world.options.shared.lock_dir, &other)?;
    report(world.resume(&gid, &wrong, long).await?).await;
    lock::release(&wrong)?;
    Ok(())
}

/// Prints one outcome; every error with its whole chain of causes.
async fn report(result: Result<ProductionOutcome, WatchError>) {
    match result {
        Ok(SpawnBgOutcome::SocketAlive {
            pid,
            release,
            after_signal,
            resident,
        }) => {
            println!("   socket-alive: pid {pid} is resident; release: {release:?}");
            if let Some(signal) = after_signal {
                println!("   (it came up only after {signal} was sent)");
            }
            stop(&resident).await;
        }
        Ok(SpawnBgOutcome::ChildExited {
            pid,
            exit,
            release,
            stderr_tail,
        }) => {
            println!("   child-exited: pid {pid}, {exit}; release: {release:?}");
            if let Some(said) = stderr_tail {
                println!("   it said on stderr: {said}");
            }
        }
        Ok(SpawnBgOutcome::SpawnStartFailed { error, release }) => {
            println!("   spawn-start-failed: {}", error_chain(&error));
            // Typed: matched, not downcast.
            if let ResumeSpawnError::Identity(IdentityError::NotFound { sessions_dir, .. }) = &error
            {
                println!("   (nothing saved under {})", sessions_dir.display());
            }
            println!("   release: {release:?}");
        }
        Ok(SpawnBgOutcome::LockRetained(diagnostic)) => {
            println!("   lock-retained: {diagnostic}");
        }
        // An outcome added after this example was written.
        Ok(other) => println!("   {}", other.kind()),
        Err(error) => println!("   error: {}", error_chain(&error)),
    }
}

/// The example's residents do not outlive it: SIGKILL to the group, then the exit.
async fn stop(resident: &ChildHandle) {
    if let Err(e) = resident.signal(StopSignal::Kill).await {
        println!("   stopping the resident: {}", error_chain(&e));
        return;
    }
    match tokio::time::timeout(Duration::from_secs(5), resident.exit()).await {
        Ok(Ok(exit)) => println!("   stopped the resident: {exit}"),
        Ok(Err(e)) => println!("   stopping the resident: {}", error_chain(&e)),
        Err(_) => println!("   the resident did not exit within 5 s"),
    }
}

/// The stand-in `pi`: checks its argv, then behaves as `./stand-in` says.
fn stand_in_pi() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if let Err(e) = parse_resume_pi_args(&argv) {
        eprintln!("stand-in pi: not a resume argv: {}", error_chain(&e));
        return ExitCode::from(2);
    }
    let behaviour = std::fs::read_to_string("stand-in").unwrap_or_default();
    let words: Vec<&str> = behaviour.split_whitespace().collect();
    match words.as_slice() {
        ["listen", path] => match UnixListener::bind(Path::new(path)) {
            Ok(_listener) => {
                std::thread::sleep(Duration::from_secs(60));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("stand-in pi: bind {path}: {e}");
                ExitCode::from(4)
            }
        },
        ["exit", code] => ExitCode::from(code.parse::<u8>().unwrap_or(1)),
        ["sleep"] => {
            std::thread::sleep(Duration::from_secs(60));
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("stand-in pi: no usable ./stand-in file");
            ExitCode::from(5)
        }
    }
}
