//! The deterministic gate of visible resume: a fake launcher and a paused clock drive
//! every path; the lock, the saved session and the socket path are real files.

mod display;
mod observation;
mod refusals;

use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;
use crate::lock::{LockIoError, ReleaseOutcome};
use crate::watcher::BoxError;

const GID: &str = "20260613T000000-aaaaaa";
pub(super) const TIMEOUT: Duration = Duration::from_secs(30);

/// What the fake does when asked to launch.
#[derive(Clone, Copy)]
pub(super) enum Act {
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

pub(super) struct Fake {
    pub(super) act: Act,
    pub(super) socket: PathBuf,
    pub(super) launched: Mutex<Vec<LaunchRequest>>,
    pub(super) listener: Arc<Mutex<Option<UnixListener>>>,
}

impl Fake {
    pub(super) fn new(act: Act, world: &World) -> Self {
        Self {
            act,
            socket: world.socket.clone(),
            launched: Mutex::new(Vec::new()),
            listener: Arc::new(Mutex::new(None)),
        }
    }

    pub(super) fn launches(&self) -> usize {
        self.launched.lock().expect("lock").len()
    }
}

pub(super) fn receipt() -> LaunchReceipt {
    LaunchReceipt {
        session: "main".into(),
        window_id: "@1".into(),
        window_index: 1,
        pane_id: "%1".into(),
        pane_pid: 4242,
        server_pid: 4241,
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
                // Zero: exited before anyone looked (ready at the first poll).
                Some(after) if after.is_zero() => {}
                Some(after) => tokio::time::sleep(after).await,
                None => std::future::pending().await,
            }
            Ok(())
        })
    }
}

pub(super) struct World {
    pub(super) _tmp: tempfile::TempDir,
    pub(super) gid: GardenId,
    pub(super) options: VisibleOptions,
    pub(super) socket: PathBuf,
    pub(super) session_file: PathBuf,
    pub(super) cwd: PathBuf,
    pub(super) releases: Arc<AtomicUsize>,
}

impl World {
    pub(super) fn new() -> Self {
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
        options.shared.lock_dir = root.join("locks");
        options.shared.control_dir = root.join("control");
        options.shared.release = Arc::new(move |claim| {
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

    pub(super) fn releases(&self) -> usize {
        self.releases.load(Ordering::SeqCst)
    }

    pub(super) fn lock_exists(&self) -> bool {
        crate::lock::lock_path(&self.options.shared.lock_dir, &self.gid).exists()
    }

    pub(super) async fn run(&self, fake: &Fake) -> Result<VisibleResume, VisibleError> {
        visible_resume(&self.gid, &self.options, fake).await
    }

    /// A refusal: nothing launched, released as `releases` says, the lock file gone
    /// unless someone else holds it.
    pub(super) async fn refused(&self, fake: &Fake) -> Refusal {
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

pub(super) fn opens(bind: Option<u64>, exit: Option<u64>) -> Act {
    Act::Opens {
        bind: bind.map(Duration::from_millis),
        exit: exit.map(Duration::from_millis),
    }
}
