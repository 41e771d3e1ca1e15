//! A production world for the watcher fault tests: `ProductionDeps` rooted in a temp dir,
//! a fixed identity (cwd = the temp dir), a counted release, and a spawner override that
//! starts either `/bin/sleep` or this very test binary as a stand-in `pi` (no shell).
//!
//! The stand-in is the ignored test `stand_in_pi` of the including binary, which calls
//! [`stand_in_main`]. It reads what to do from `stand-in.json` in its cwd (written by the
//! spawner), checks its argv with `parse_resume_pi_args` — the inverse of §9's builder —
//! binds the control socket, and then fails as told.

use std::ffi::OsString;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use entwurf_v2_spawn::lock::{self, LockClaim};
use entwurf_v2_spawn::production::child::{ChildHandle, spawn_child};

use entwurf_v2_spawn::production::{
    ProductionDeps, ProductionOptions, ResumeLaunch, fixed_identity,
};
use entwurf_v2_spawn::resume_args::{
    ParsedResumeArgs, PassthroughArgs, ResumeArgs, ResumeVariant, parse_resume_pi_args,
};
use entwurf_v2_spawn::{GardenId, SpawnBgPlan};

pub const GID: &str = "20260613T000000-eeeeee";
pub const PROMPT: &str = "--wake-up";

/// What the started child is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Child {
    /// `/bin/sleep 30`: a resident that never binds a socket.
    Sleeper,
    /// The stand-in `pi` in one of its modes (see [`stand_in_main`]).
    StandIn(&'static str),
}

pub struct World {
    pub dir: tempfile::TempDir,
    pub options: ProductionOptions,
    pub releases: Arc<AtomicUsize>,
    /// The pid of the last child started.
    pub pid: Arc<Mutex<Option<u32>>>,
}

pub fn gid() -> GardenId {
    GardenId::parse(GID).expect("gid")
}

pub fn world(child: Child, stand_in_test: &'static str) -> World {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut options = ProductionOptions::with_home(dir.path(), None);
    options.resolve_identity =
        fixed_identity(dir.path().to_path_buf(), Some("p".into()), "m".into());
    options.shared.extension_args =
        PassthroughArgs::new(["-e", "./ext.ts"]).expect("extension args");
    let pid = Arc::new(Mutex::new(None));
    let recorded = pid.clone();
    let socket = options.socket_path(&gid());
    options.spawner = Arc::new(move |launch: &ResumeLaunch<'_>| {
        let req = launch.request;
        let (program, args): (OsString, Vec<OsString>) = match child {
            Child::Sleeper => ("/bin/sleep".into(), vec!["30".into()]),
            Child::StandIn(mode) => {
                let config = serde_json::json!({
                    "mode": mode,
                    "socket": socket,
                    "argv": req.args.iter().map(|a| a.to_string_lossy()).collect::<Vec<_>>(),
                });
                std::fs::write(req.cwd.join("stand-in.json"), config.to_string())
                    .expect("write stand-in config");
                let exe = std::env::current_exe().expect("current exe");
                let args = [
                    "--exact",
                    stand_in_test,
                    "--include-ignored",
                    "--nocapture",
                    "--test-threads=1",
                ];
                (exe.into(), args.iter().map(OsString::from).collect())
            }
        };
        let mut req = req.clone();
        req.program = program;
        req.args = args;
        let handle = spawn_child(&req)?;
        *recorded.lock().expect("pid") = Some(handle.pid());
        Ok(handle)
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
        pid,
    }
}

impl World {
    pub fn plan(&self, timeout: Duration) -> SpawnBgPlan {
        SpawnBgPlan::new(gid(), PROMPT, self.options.socket_path(&gid()), timeout)
            .expect("plan")
            .with_launch_args(["--approve"])
            .expect("launch args")
    }

    pub fn acquire(&self) -> LockClaim {
        lock::acquire(&self.options.shared.lock_dir, &gid()).expect("acquire")
    }

    pub fn deps(&self) -> ProductionDeps {
        ProductionDeps::new(self.options.clone())
    }

    pub fn lock_file(&self) -> PathBuf {
        self.options.lock_path(&gid())
    }

    pub fn releases(&self) -> usize {
        self.releases.load(Ordering::SeqCst)
    }

    /// Polls (bounded) until the child was started, and returns its pid.
    pub async fn started_pid(&self) -> u32 {
        for _ in 0..500 {
            if let Some(pid) = *self.pid.lock().expect("pid") {
                return pid;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        panic!("the child never started");
    }
}

/// The resume argv the stand-in must receive for this world's plan.
pub fn expected_argv() -> ParsedResumeArgs {
    let ext = ["-e".to_owned(), "./ext.ts".to_owned()];
    let launch = ["--approve".to_owned()];
    ParsedResumeArgs::expected(&ResumeArgs {
        variant: ResumeVariant::V2Control,
        session_id: GID,
        extension_args: &ext,
        provider: Some("p"),
        model: "m",
        prompt: PROMPT,
        launch_args: &launch,
    })
}

/// The stand-in `pi` body. Modes:
/// - `listen-then-fail`: bind and listen, then exit 1 at once;
/// - `bind-then-fail`: bind without listening (a connect is refused), then exit 1;
/// - `listen-then-fail-later`: bind and listen, exit 1 after 400 ms.
///
/// A wrong argv exits 2 (and names the difference on stderr).
pub fn stand_in_main() {
    let Ok(text) = std::fs::read_to_string("stand-in.json") else {
        eprintln!("the stand-in only runs as a child of the watcher fault tests");
        return;
    };
    let config: serde_json::Value = serde_json::from_str(&text).expect("config");
    let argv: Vec<String> = config["argv"]
        .as_array()
        .expect("argv")
        .iter()
        .map(|a| a.as_str().expect("arg").to_owned())
        .collect();
    match parse_resume_pi_args(&argv) {
        Ok(parsed) if parsed == expected_argv() => {}
        other => {
            eprintln!("stand-in pi: unexpected argv {argv:?}: {other:?}");
            std::process::exit(2);
        }
    }
    let socket = Path::new(config["socket"].as_str().expect("socket"));
    match config["mode"].as_str().expect("mode") {
        "listen-then-fail" => {
            let _listener = UnixListener::bind(socket).expect("bind");
            std::process::exit(1);
        }
        "bind-then-fail" => {
            let fd = nix::sys::socket::socket(
                nix::sys::socket::AddressFamily::Unix,
                nix::sys::socket::SockType::Stream,
                // No flags: this stand-in exits right after the bind (and macOS has no
                // SOCK_CLOEXEC).
                nix::sys::socket::SockFlag::empty(),
                None,
            )
            .expect("socket");
            let addr = nix::sys::socket::UnixAddr::new(socket).expect("addr");
            nix::sys::socket::bind(fd.as_raw_fd(), &addr).expect("bind");
            std::process::exit(1);
        }
        "listen-then-fail-later" => {
            let _listener = UnixListener::bind(socket).expect("bind");
            std::thread::sleep(Duration::from_millis(400));
            std::process::exit(1);
        }
        other => panic!("unknown stand-in mode {other}"),
    }
}

/// Awaits `child`'s exit, bounded.
pub async fn exit_of(child: &ChildHandle) -> entwurf_v2_spawn::watcher::ChildExit {
    tokio::time::timeout(Duration::from_secs(10), child.exit())
        .await
        .expect("exit within 10 s")
        .expect("exit observed")
}
