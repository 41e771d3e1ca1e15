//! The deterministic gate of visible resume: a fake launcher and a paused clock drive
//! every path; the lock, the saved session and the socket path are real files.

use std::os::fd::AsRawFd;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::socket::{
    AddressFamily, Backlog, SockFlag, SockType, UnixAddr, bind, connect, listen, socket,
};

use super::*;
use crate::lock::{LockIoError, ReleaseOutcome};
use crate::watcher::BoxError;

const GID: &str = "20260613T000000-aaaaaa";
const TIMEOUT: Duration = Duration::from_secs(30);

/// What the fake does when asked to launch.
#[derive(Clone, Copy)]
enum Act {
    /// Opens a window; the "pi" in it binds the socket after `bind`, exits after `exit`.
    Opens {
        bind: Option<Duration>,
        exit: Option<Duration>,
    },
    /// Opens a window whose pane cannot be watched.
    PaneWatchFails,
    /// Fails with this error.
    Fails(fn() -> LaunchError),
}

struct Fake {
    act: Act,
    socket: PathBuf,
    launched: Mutex<Vec<LaunchRequest>>,
    listener: Arc<Mutex<Option<UnixListener>>>,
}

impl Fake {
    fn new(act: Act, world: &World) -> Self {
        Self {
            act,
            socket: world.socket.clone(),
            launched: Mutex::new(Vec::new()),
            listener: Arc::new(Mutex::new(None)),
        }
    }

    fn launches(&self) -> usize {
        self.launched.lock().expect("lock").len()
    }
}

fn receipt() -> LaunchReceipt {
    LaunchReceipt {
        session: "main".into(),
        window_id: "@1".into(),
        window_index: 1,
        pane_id: "%1".into(),
        pane_pid: 4242,
    }
}

/// Binds like `pi` does: a leftover socket file is replaced.
fn bind_now(path: &Path, slot: &Mutex<Option<UnixListener>>) {
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path).expect("bind");
    *slot.lock().expect("lock") = Some(listener);
}

impl Launcher for Fake {
    async fn launch(&self, request: &LaunchRequest) -> Result<LaunchReceipt, LaunchError> {
        self.launched.lock().expect("lock").push(request.clone());
        match self.act {
            Act::Fails(error) => Err(error()),
            Act::PaneWatchFails | Act::Opens { bind: None, .. } => Ok(receipt()),
            Act::Opens {
                bind: Some(after), ..
            } => {
                let (path, slot) = (self.socket.clone(), self.listener.clone());
                if after.is_zero() {
                    bind_now(&path, &slot);
                } else {
                    tokio::spawn(async move {
                        tokio::time::sleep(after).await;
                        bind_now(&path, &slot);
                    });
                }
                Ok(receipt())
            }
        }
    }

    fn watch_pane_exit(
        &self,
        _: &LaunchReceipt,
    ) -> Result<impl Future<Output = Result<(), BoxError>> + Send + 'static, BoxError> {
        let exit = match self.act {
            Act::PaneWatchFails => return Err("pidfd_open: ENOSYS".into()),
            Act::Opens { exit, .. } => exit,
            Act::Fails(_) => None,
        };
        Ok(async move {
            match exit {
                Some(after) => tokio::time::sleep(after).await,
                None => std::future::pending().await,
            }
            Ok(())
        })
    }
}

struct World {
    _tmp: tempfile::TempDir,
    gid: GardenId,
    options: VisibleOptions,
    socket: PathBuf,
    session_file: PathBuf,
    cwd: PathBuf,
    releases: Arc<AtomicUsize>,
}

impl World {
    fn new() -> Self {
        let tmp = tempfile::tempdir().expect("tmp");
        let root = tmp.path().to_path_buf();
        let gid = GardenId::parse(GID).expect("gid");
        let cwd = root.join("work");
        let sessions = root.join("agent/sessions/d");
        for dir in [&cwd, &sessions, &root.join("control")] {
            std::fs::create_dir_all(dir).expect("mkdir");
        }
        let session_file = sessions.join("s.jsonl");
        std::fs::write(
            &session_file,
            format!(
                "{{\"type\":\"session\",\"id\":\"{GID}\",\"cwd\":{cwd:?}}}\n\
                 {{\"type\":\"model_change\",\"provider\":\"anthropic\",\"modelId\":\"claude\"}}\n"
            ),
        )
        .expect("session");
        let releases = Arc::new(AtomicUsize::new(0));
        let counted = releases.clone();
        let mut options = VisibleOptions::from_production(
            &crate::production::ProductionOptions::with_home(&root, Some(root.join("agent"))),
        );
        options.lock_dir = root.join("locks");
        options.control_dir = root.join("control");
        options.release = Arc::new(move |claim| {
            counted.fetch_add(1, Ordering::SeqCst);
            crate::lock::release(claim)
        });
        let socket = options.socket_path(&gid);
        Self {
            _tmp: tmp,
            gid,
            options,
            socket,
            session_file,
            cwd,
            releases,
        }
    }

    fn releases(&self) -> usize {
        self.releases.load(Ordering::SeqCst)
    }

    fn lock_exists(&self) -> bool {
        crate::lock::lock_path(&self.options.lock_dir, &self.gid).exists()
    }

    async fn run(&self, fake: &Fake) -> Result<VisibleResume, VisibleError> {
        visible_resume(&self.gid, &self.options, fake).await
    }

    /// A refusal: nothing launched, released as `releases` says, the lock file gone
    /// unless someone else holds it.
    async fn refused(&self, fake: &Fake) -> Refusal {
        match self.run(fake).await {
            Err(VisibleError::Refused(refusal)) => {
                assert_eq!(fake.launches(), 0, "nothing may be launched");
                assert!(!refusal.advice().is_empty());
                refusal
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
}

fn opens(bind: Option<u64>, exit: Option<u64>) -> Act {
    Act::Opens {
        bind: bind.map(Duration::from_millis),
        exit: exit.map(Duration::from_millis),
    }
}

#[tokio::test(start_paused = true)]
async fn socket_alive_at_once_keeps_both_receipts_and_releases_once() {
    let world = World::new();
    let fake = Fake::new(opens(Some(0), None), &world);
    let done = world.run(&fake).await.expect("resumed");
    assert_eq!(done.launch, receipt());
    assert_eq!(
        done.observation,
        ObservationReceipt::SocketAlive {
            after: Duration::ZERO
        }
    );
    assert_eq!(done.release, ReleaseOutcome::Released);
    assert_eq!(world.releases(), 1);
    assert!(!world.lock_exists());

    let launched = fake.launched.lock().expect("lock").clone();
    let [request] = launched.as_slice() else {
        panic!("one launch, got {launched:?}")
    };
    assert_eq!(request.cwd, world.cwd);
    assert_eq!(request.program, "pi");
    let file = world.session_file.to_str().expect("utf-8");
    assert_eq!(
        request.args,
        [
            "--entwurf-control",
            "--session",
            file,
            "--provider",
            "anthropic",
            "--model",
            "claude"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn socket_alive_later_is_reported_in_milliseconds() {
    let world = World::new();
    let fake = Fake::new(opens(Some(2_000), Some(20_000)), &world);
    let done = world.run(&fake).await.expect("resumed");
    let ObservationReceipt::SocketAlive { after } = done.observation else {
        panic!("{:?}", done.observation)
    };
    // Woken by inotify; at worst one poll interval late.
    let late = after.saturating_sub(Duration::from_secs(2));
    assert!(
        after >= Duration::from_secs(2) && late <= world.options.poll_interval,
        "{after:?}"
    );
    assert_eq!(world.releases(), 1);
    assert!(!world.lock_exists());
}

#[tokio::test(start_paused = true)]
async fn a_pane_that_exits_is_pane_exited_not_a_thirty_second_wait() {
    let world = World::new();
    let fake = Fake::new(opens(None, Some(40)), &world);
    let done = world.run(&fake).await.expect("resumed");
    assert_eq!(
        done.observation,
        ObservationReceipt::PaneExited {
            after: Duration::from_millis(40)
        }
    );
    assert_eq!(done.observation.to_string(), "pane-exited after 40 ms");
    assert_eq!((world.releases(), world.lock_exists()), (1, false));
}

#[tokio::test(start_paused = true)]
async fn nothing_within_the_bound_is_unobserved_and_still_released() {
    let world = World::new();
    let fake = Fake::new(opens(None, None), &world);
    let done = world.run(&fake).await.expect("resumed");
    assert_eq!(
        done.observation,
        ObservationReceipt::Unobserved {
            after: TIMEOUT,
            reason: UnobservedReason::TimedOut
        }
    );
    assert_eq!((world.releases(), world.lock_exists()), (1, false));
}

#[tokio::test(start_paused = true)]
async fn a_pane_watch_that_cannot_start_is_reported_not_timed_out() {
    let world = World::new();
    let fake = Fake::new(Act::PaneWatchFails, &world);
    let done = world.run(&fake).await.expect("resumed");
    let ObservationReceipt::Unobserved {
        reason: UnobservedReason::WatchFailed(why),
        after,
    } = &done.observation
    else {
        panic!("{:?}", done.observation)
    };
    assert!(why.contains("ENOSYS"), "{why}");
    assert_eq!(*after, Duration::ZERO);
    assert_eq!(world.releases(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_held_lock_refuses_and_is_left_to_its_holder() {
    let world = World::new();
    let theirs = crate::lock::acquire(&world.options.lock_dir, &world.gid).expect("held");
    let fake = Fake::new(opens(Some(0), None), &world);
    let refusal = world.refused(&fake).await;
    assert_eq!(refusal.kind(), "lock-held");
    assert_eq!(world.releases(), 0);
    assert_eq!(
        crate::lock::release(&theirs).expect("theirs"),
        ReleaseOutcome::Released
    );
}

#[tokio::test(start_paused = true)]
async fn a_missing_session_refuses_and_releases_once() {
    let world = World::new();
    std::fs::remove_file(&world.session_file).expect("rm");
    let fake = Fake::new(opens(Some(0), None), &world);
    assert_eq!(world.refused(&fake).await.kind(), "identity");
    assert_eq!((world.releases(), world.lock_exists()), (1, false));
}

#[tokio::test(start_paused = true)]
async fn a_live_socket_refuses_target_live() {
    let world = World::new();
    let _live = UnixListener::bind(&world.socket).expect("bind");
    let fake = Fake::new(opens(Some(0), None), &world);
    let refusal = world.refused(&fake).await;
    assert_eq!(refusal.kind(), "target-live");
    assert!(
        refusal.advice().contains("already running"),
        "{}",
        refusal.advice()
    );
    assert_eq!((world.releases(), world.lock_exists()), (1, false));
}

#[tokio::test(start_paused = true)]
async fn a_full_backlog_refuses_as_indeterminate_never_as_dead() {
    let world = World::new();
    let server = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .expect("socket");
    let addr = UnixAddr::new(&world.socket).expect("addr");
    bind(server.as_raw_fd(), &addr).expect("bind");
    listen(&server, Backlog::new(0).expect("backlog")).expect("listen");
    let mut queued = Vec::new();
    loop {
        let client = socket(
            AddressFamily::Unix,
            SockType::Stream,
            SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
            None,
        )
        .expect("client");
        match connect(client.as_raw_fd(), &addr) {
            Ok(()) => queued.push(client),
            Err(Errno::EAGAIN) => break,
            Err(e) => panic!("filling the backlog: {e}"),
        }
        assert!(queued.len() < 64, "the backlog never filled");
    }
    let fake = Fake::new(opens(Some(0), None), &world);
    assert_eq!(world.refused(&fake).await.kind(), "liveness-indeterminate");
    assert_eq!(world.releases(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_symlink_or_a_file_at_the_socket_path_is_an_address_conflict() {
    for plant in [
        |p: &Path| std::os::unix::fs::symlink("/elsewhere.sock", p),
        |p: &Path| std::fs::write(p, b"not a socket"),
    ] {
        let world = World::new();
        plant(&world.socket).expect("plant");
        let fake = Fake::new(opens(Some(0), None), &world);
        let refusal = world.refused(&fake).await;
        assert_eq!(refusal.kind(), "address-conflict");
        assert!(
            refusal.advice().starts_with("remove "),
            "{}",
            refusal.advice()
        );
        assert_eq!(world.releases(), 1);
    }
}

#[tokio::test(start_paused = true)]
async fn a_dead_socket_file_is_a_leftover_and_does_not_refuse() {
    let world = World::new();
    drop(UnixListener::bind(&world.socket).expect("bind"));
    let fake = Fake::new(opens(Some(5), None), &world);
    let done = world.run(&fake).await.expect("resumed");
    assert_eq!(done.observation.kind(), "socket-alive");
    assert_eq!(world.releases(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_reserved_extension_arg_refuses_before_launch() {
    let mut world = World::new();
    world.options.extension_args = vec!["-e".into(), "--session=/other.jsonl".into()];
    let fake = Fake::new(opens(Some(0), None), &world);
    assert_eq!(world.refused(&fake).await.kind(), "argv");
    assert_eq!((world.releases(), world.lock_exists()), (1, false));
}

#[tokio::test(start_paused = true)]
async fn a_launcher_refusal_releases_once_with_advice() {
    let world = World::new();
    let fake = Fake::new(
        Act::Fails(|| LaunchError::CwdHasHash {
            cwd: "/w/#(touch x)".into(),
        }),
        &world,
    );
    let Err(VisibleError::Refused(Refusal::Launch(LaunchError::CwdHasHash { .. }))) =
        world.run(&fake).await
    else {
        panic!("expected a launch refusal")
    };
    assert_eq!(fake.launches(), 1);
    assert_eq!((world.releases(), world.lock_exists()), (1, false));
}

#[tokio::test(start_paused = true)]
async fn an_unparsable_handle_releases_and_says_a_window_may_be_open() {
    let world = World::new();
    let fake = Fake::new(
        Act::Fails(|| LaunchError::UnparsableHandle {
            output: "garbage".into(),
        }),
        &world,
    );
    let error = world.run(&fake).await.expect_err("uncertain");
    let VisibleError::LaunchUncertain { release, .. } = &error else {
        panic!("{error:?}")
    };
    assert_eq!(*release, ReleaseOutcome::Released);
    assert!(crate::error_chain(&error).contains("a window may be open"));
    assert_eq!(world.releases(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_failed_release_is_an_error_naming_the_lock_and_keeps_the_receipts() {
    let mut world = World::new();
    let counted = world.releases.clone();
    world.options.release = Arc::new(move |claim| {
        counted.fetch_add(1, Ordering::SeqCst);
        Err(LockIoError {
            op: "remove lock file",
            path: claim.lock_path().to_path_buf(),
            source: std::io::Error::from(Errno::EROFS),
        })
    });
    let fake = Fake::new(opens(Some(0), None), &world);
    let error = world.run(&fake).await.expect_err("release failed");
    let VisibleError::Release {
        lock_path,
        launch,
        observation,
        ..
    } = &error
    else {
        panic!("{error:?}")
    };
    assert_eq!(
        *lock_path,
        crate::lock::lock_path(&world.options.lock_dir, &world.gid)
    );
    assert!(
        error.to_string().contains(&format!("{lock_path:?}")),
        "{error}"
    );
    assert_eq!(launch.as_ref(), Some(&receipt()));
    assert_eq!(observation.as_ref().map(|o| o.kind()), Some("socket-alive"));
    assert_eq!(world.releases(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_resume_dropped_midway_still_releases_exactly_once() {
    let world = World::new();
    let fake = Fake::new(opens(None, None), &world);
    let abandoned = tokio::time::timeout(Duration::from_secs(1), world.run(&fake)).await;
    assert!(abandoned.is_err(), "the observation was still running");
    assert_eq!(fake.launches(), 1);
    assert_eq!((world.releases(), world.lock_exists()), (1, false));
}
