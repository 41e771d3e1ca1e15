//! The production dispatch deps, counted: every call goes to `ProductionDispatch`
//! unchanged, and the D checks read how many acquires, probes and sends the library's
//! `dispatch` made, and whether each probe and send ran while the real lock file was
//! there. A check may send through a second `ProductionDispatch` over the same options
//! with other exchange bounds (D8: a short answer bound for the send that stalls, the
//! probe's bound as every other check's).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use entwurf_v2_spawn::GardenId;
use entwurf_v2_spawn::dispatch::{
    Answer, CitizenProbe, DeliveryMode, DispatchDeps, DispatchRequest, ExchangeError,
    ProductionDispatch, Target,
};
use entwurf_v2_spawn::lock::{AcquireError, LockClaim, LockIoError, ReleaseOutcome};
use entwurf_v2_spawn::production::identity::IdentityError;
use entwurf_v2_spawn::socket::Inspection;

/// What `dispatch` asked of its deps.
#[derive(Debug, Default)]
pub struct Calls {
    /// `acquire` calls (a conflict counts: it was asked).
    pub acquires: AtomicUsize,
    /// `probe` calls.
    pub probes: AtomicUsize,
    /// `probe` calls made while the gid's lock file existed.
    pub probes_under_lock: AtomicUsize,
    /// `send` calls (delivery attempts, whatever their end).
    pub sends: AtomicUsize,
    /// `send` calls made while the gid's lock file existed.
    pub sends_under_lock: AtomicUsize,
    /// `resume` calls.
    pub resumes: AtomicUsize,
}

impl Calls {
    /// One counter's value.
    pub fn get(counter: &AtomicUsize) -> usize {
        counter.load(Ordering::SeqCst)
    }
}

/// [`ProductionDispatch`] with its calls counted (see the module docs).
pub struct Counted {
    inner: ProductionDispatch,
    /// Where sends go when not to `inner` (see [`Counted::sending_with`]).
    sender: Option<ProductionDispatch>,
    lock_file: PathBuf,
    /// The counts.
    pub calls: Calls,
}

impl Counted {
    /// Counts the calls made to `inner` for a citizen whose lock file is `lock_file`.
    pub fn new(inner: ProductionDispatch, lock_file: &Path) -> Self {
        Self {
            inner,
            sender: None,
            lock_file: lock_file.to_path_buf(),
            calls: Calls::default(),
        }
    }

    /// Sends through `sender` instead of `inner`: the same production deps with the
    /// exchange bounds the check chose for its sends.
    pub fn sending_with(mut self, sender: ProductionDispatch) -> Self {
        self.sender = Some(sender);
        self
    }
}

fn bump(counter: &AtomicUsize) {
    counter.fetch_add(1, Ordering::SeqCst);
}

impl DispatchDeps for Counted {
    type Resumed = <ProductionDispatch as DispatchDeps>::Resumed;

    async fn resolve_target(&self, gid: &GardenId) -> Result<Target, IdentityError> {
        self.inner.resolve_target(gid).await
    }

    async fn inspect(&self, socket: &Path) -> Inspection {
        self.inner.inspect(socket).await
    }

    async fn acquire(&self, gid: &GardenId) -> Result<LockClaim, AcquireError> {
        bump(&self.calls.acquires);
        self.inner.acquire(gid).await
    }

    async fn probe(&self, gid: &GardenId, target: &Target) -> CitizenProbe {
        bump(&self.calls.probes);
        if self.lock_file.exists() {
            bump(&self.calls.probes_under_lock);
        }
        self.inner.probe(gid, target).await
    }

    async fn send(
        &self,
        target: &Target,
        message: &str,
        mode: DeliveryMode,
    ) -> Result<Answer, ExchangeError> {
        bump(&self.calls.sends);
        if self.lock_file.exists() {
            bump(&self.calls.sends_under_lock);
        }
        self.sender
            .as_ref()
            .unwrap_or(&self.inner)
            .send(target, message, mode)
            .await
    }

    async fn release(&self, claim: &LockClaim) -> Result<ReleaseOutcome, LockIoError> {
        self.inner.release(claim).await
    }

    async fn resume(
        &self,
        request: &DispatchRequest,
        target: Target,
        claim: LockClaim,
    ) -> Self::Resumed {
        bump(&self.calls.resumes);
        self.inner.resume(request, target, claim).await
    }
}
