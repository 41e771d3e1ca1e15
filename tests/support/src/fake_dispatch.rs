//! FAKE dispatch dependencies: a scripted world for every branch of the dispatch's
//! order, table and send hand, counting what matters — probes, delivery attempts,
//! releases, resumes. The lock is a REAL lock file in a temp dir (the claim is the
//! library's own type), released through the real `lock::release` unless a failure is
//! scripted.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use entwurf_v2_spawn::GardenId;
use entwurf_v2_spawn::dispatch::{
    Answer, CitizenInfo, CitizenProbe, DeliveryMode, DispatchDeps, DispatchRequest, ExchangeError,
    NotConnected, ObservedLiveness, Target,
};
use entwurf_v2_spawn::lock::{self, AcquireError, LockClaim, LockIoError, ReleaseOutcome};
use entwurf_v2_spawn::production::identity::{IdentityError, LaunchIdentity, SessionIdentity};
use entwurf_v2_spawn::socket::{AddressConflict, Inspection};
use serde_json::{Map, Value, json};

/// One scripted look at the citizen, turned into a fresh [`CitizenProbe`] per call
/// (the probe's evidence is not `Clone`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Look {
    /// Answers `get_info` as the citizen.
    Alive,
    /// Nobody listens.
    Dead,
    /// The look proved nothing.
    Indeterminate,
    /// Answers as another session.
    OtherSession,
    /// A symlink sits there.
    Symlink,
}

impl Look {
    /// Every look.
    pub const ALL: [Look; 5] = [
        Look::Alive,
        Look::Dead,
        Look::Indeterminate,
        Look::OtherSession,
        Look::Symlink,
    ];

    fn probe(&self, gid: &GardenId) -> CitizenProbe {
        use entwurf_v2_spawn::dispatch::{Doubt, TargetConflict};
        match self {
            Look::Alive => CitizenProbe::Observed(ObservedLiveness::Alive(info(gid.as_str()))),
            Look::Dead => CitizenProbe::Observed(ObservedLiveness::Dead(NotConnected::Absent)),
            Look::Indeterminate => CitizenProbe::Observed(ObservedLiveness::Indeterminate(
                Doubt::Refused("Session not ready".to_owned()),
            )),
            Look::OtherSession => CitizenProbe::Conflict(TargetConflict::OtherSession {
                answered: "20990101T000000-ffffff".to_owned(),
            }),
            Look::Symlink => {
                CitizenProbe::Conflict(TargetConflict::Address(AddressConflict::Symlink))
            }
        }
    }
}

fn info(session_id: &str) -> CitizenInfo {
    let data = json!({ "sessionId": session_id });
    CitizenInfo::from_data(data.as_object().expect("object")).expect("session id")
}

/// One scripted send result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendScript {
    /// `success: true`.
    Ack,
    /// `success: false`.
    Refused,
    /// Nobody listens (proves non-delivery).
    Dead,
    /// A stall after the request was written (proves nothing).
    Stall,
}

impl SendScript {
    /// Every send result.
    pub const ALL: [SendScript; 4] = [
        SendScript::Ack,
        SendScript::Refused,
        SendScript::Dead,
        SendScript::Stall,
    ];

    fn answer(&self) -> Result<Answer, ExchangeError> {
        match self {
            SendScript::Ack => {
                let mut data = Map::new();
                data.insert("delivered".to_owned(), Value::Bool(true));
                data.insert("deliveredAs".to_owned(), Value::from("followUp"));
                Ok(Answer::Success(data))
            }
            SendScript::Refused => Ok(Answer::Refused {
                error: "Missing message".to_owned(),
            }),
            SendScript::Dead => Err(ExchangeError::NotConnected(NotConnected::Absent)),
            SendScript::Stall => Err(ExchangeError::AnswerTimedOut(
                std::time::Duration::from_millis(5),
            )),
        }
    }
}

/// The scripted world.
pub struct FakeDispatch {
    _dir: tempfile::TempDir,
    lock_dir: PathBuf,
    socket: PathBuf,
    /// No saved session: `bad-target`.
    pub no_session: bool,
    /// What the pre-lock inspection finds.
    pub inspection: Inspection,
    /// Looks, in order; the last one repeats.
    looks: Mutex<VecDeque<Look>>,
    /// Send results, in order; the last one repeats.
    sends: Mutex<VecDeque<SendScript>>,
    /// Every release fails.
    pub release_fails: bool,
    /// Counters.
    pub probes: AtomicUsize,
    /// Delivery attempts (calls of `send`).
    pub deliveries: AtomicUsize,
    /// Releases attempted.
    pub releases: AtomicUsize,
    /// Resumes started.
    pub resumes: AtomicUsize,
    /// What the pre-lock inspection was asked, and whether anything was probed before the
    /// lock was taken.
    pub probed_before_lock: AtomicUsize,
    locked: AtomicUsize,
}

/// The garden id of the scripted citizen.
pub fn gid() -> GardenId {
    GardenId::parse("20260613T000000-aaaaaa").expect("gid")
}

impl FakeDispatch {
    /// A world with a saved session, nothing at the socket path, the given looks and
    /// sends.
    pub fn new(looks: &[Look], sends: &[SendScript]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        Self {
            lock_dir: dir.path().join("locks"),
            socket: dir.path().join("control").join(format!("{}.sock", gid())),
            _dir: dir,
            no_session: false,
            inspection: Inspection::Absent,
            looks: Mutex::new(looks.iter().cloned().collect()),
            sends: Mutex::new(sends.iter().cloned().collect()),
            release_fails: false,
            probes: AtomicUsize::new(0),
            deliveries: AtomicUsize::new(0),
            releases: AtomicUsize::new(0),
            resumes: AtomicUsize::new(0),
            probed_before_lock: AtomicUsize::new(0),
            locked: AtomicUsize::new(0),
        }
    }

    /// The lock file of the citizen.
    pub fn lock_file(&self) -> PathBuf {
        lock::lock_path(&self.lock_dir, &gid())
    }

    /// Holds the lock as another dispatcher would (a real claim, kept).
    pub fn hold_lock(&self) -> LockClaim {
        lock::acquire(&self.lock_dir, &gid()).expect("held by the test")
    }

    /// Counter value.
    pub fn count(counter: &AtomicUsize) -> usize {
        counter.load(Ordering::SeqCst)
    }

    fn next<T: Clone>(queue: &Mutex<VecDeque<T>>) -> T {
        let mut queue = queue.lock().expect("script");
        if queue.len() > 1 {
            queue.pop_front().expect("non-empty")
        } else {
            queue.front().cloned().expect("a scripted value")
        }
    }
}

impl DispatchDeps for FakeDispatch {
    type Resumed = &'static str;

    async fn resolve_target(&self, gid: &GardenId) -> Result<Target, IdentityError> {
        if self.no_session {
            return Err(IdentityError::NotFound {
                gid: gid.clone(),
                sessions_dir: PathBuf::from("/fake/agent/sessions"),
            });
        }
        let launch = LaunchIdentity::new("/fake/cwd", "echo");
        Ok(Target::new(
            self.socket.clone(),
            SessionIdentity::new("/fake/agent/sessions/x/s.jsonl", launch),
        ))
    }

    async fn inspect(&self, _socket: &Path) -> Inspection {
        self.inspection.clone()
    }

    async fn acquire(&self, gid: &GardenId) -> Result<LockClaim, AcquireError> {
        let claim = lock::acquire(&self.lock_dir, gid)?;
        self.locked.fetch_add(1, Ordering::SeqCst);
        Ok(claim)
    }

    async fn probe(&self, gid: &GardenId, _target: &Target) -> CitizenProbe {
        if self.locked.load(Ordering::SeqCst) == 0 {
            self.probed_before_lock.fetch_add(1, Ordering::SeqCst);
        }
        self.probes.fetch_add(1, Ordering::SeqCst);
        Self::next(&self.looks).probe(gid)
    }

    async fn send(
        &self,
        _target: &Target,
        _message: &str,
        _mode: DeliveryMode,
    ) -> Result<Answer, ExchangeError> {
        self.deliveries.fetch_add(1, Ordering::SeqCst);
        Self::next(&self.sends).answer()
    }

    async fn release(&self, claim: &LockClaim) -> Result<ReleaseOutcome, LockIoError> {
        self.releases.fetch_add(1, Ordering::SeqCst);
        if self.release_fails {
            return Err(LockIoError {
                op: "remove lock file",
                path: claim.lock_path().to_path_buf(),
                source: std::io::Error::from_raw_os_error(nix::libc::EROFS),
            });
        }
        lock::release(claim)
    }

    async fn resume(
        &self,
        _request: &DispatchRequest,
        _target: Target,
        claim: LockClaim,
    ) -> &'static str {
        self.resumes.fetch_add(1, Ordering::SeqCst);
        // The resume owns the claim and releases it on its observation; the fake
        // observes at once.
        self.releases.fetch_add(1, Ordering::SeqCst);
        lock::release(&claim).expect("resume's release");
        "resumed"
    }
}
