//! The production wiring of a dispatch: the saved-session reader, the real lock, the
//! race-free socket client, and the two resumes (spawn-bg, visible) it hands the lock
//! to.

use std::path::Path;

use super::client::{ExchangeError, ExchangeLimits, exchange};
use super::liveness::{CitizenProbe, probe_citizen};
use super::protocol::{Answer, Command, DeliveryMode};
use super::{DispatchDeps, DispatchRequest, ResumeStyle, Target};
use crate::garden_id::GardenId;
use crate::lock::{AcquireError, LockClaim, LockIoError, ReleaseOutcome};
use crate::plan::{PlanError, SpawnBgPlan};
use crate::production::identity::IdentityError;
use crate::production::{ProductionDeps, ProductionOptions, ProductionOutcome};
use crate::socket::{Inspection, inspect_for_probe};
use crate::visible::{
    Launcher, TmuxLauncher, VisibleError, VisibleOptions, VisibleResume, visible_resume_locked,
};
use crate::watcher::{WatchError, execute_spawn_bg_resume};

/// What a production resume hand answered.
#[derive(Debug)]
#[non_exhaustive]
pub enum ResumeOutcome {
    /// The spawn-bg resume's outcome (it released the lock on its observation, or kept
    /// it with a diagnostic).
    Background(ProductionOutcome),
    /// The visible resume's two receipts and its release.
    Visible(VisibleResume),
}

/// Why a production resume hand failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResumeError {
    /// The spawn-bg plan could not be built (nothing spawned); the lock was released,
    /// with this finding.
    #[error("the resume plan for {gid} could not be built")]
    Plan {
        /// The citizen.
        gid: GardenId,
        /// Why.
        #[source]
        error: PlanError,
        /// What releasing the lock found (or why it failed).
        release: Result<ReleaseOutcome, std::sync::Arc<LockIoError>>,
    },
    /// The spawn-bg watcher failed (see [`WatchError`]).
    #[error("the spawn-bg resume failed")]
    Watch(#[source] WatchError),
    /// The visible resume refused or failed (see [`VisibleError`]).
    #[error("the visible resume failed")]
    Visible(#[source] VisibleError),
}

/// Production [`DispatchDeps`]: the directories, runtime and tuning of
/// [`ProductionOptions`], the exchange bounds of [`ExchangeLimits`] (its connect bound is
/// the options' probe timeout), a visible resume through `L` (default: tmux, in the
/// caller's server).
pub struct ProductionDispatch<L = TmuxLauncher> {
    resume: ProductionDeps,
    visible: VisibleOptions,
    launcher: L,
    limits: ExchangeLimits,
}

impl ProductionDispatch<TmuxLauncher> {
    /// The production wiring over `options`; visible resumes open windows in the tmux
    /// server the caller runs in (`$TMUX`).
    #[must_use]
    pub fn new(options: ProductionOptions) -> Self {
        Self {
            visible: VisibleOptions::from_production(&options),
            limits: ExchangeLimits::default().with_connect(options.shared.probe_timeout),
            resume: ProductionDeps::new(options),
            launcher: TmuxLauncher::from_env(),
        }
    }
}

impl<L> ProductionDispatch<L> {
    /// Opens visible resumes with `launcher` instead.
    #[must_use]
    pub fn with_launcher<M: Launcher>(self, launcher: M) -> ProductionDispatch<M> {
        ProductionDispatch {
            resume: self.resume,
            visible: self.visible,
            launcher,
            limits: self.limits,
        }
    }

    /// Bounds every exchange with `limits`.
    #[must_use]
    pub fn with_limits(mut self, limits: ExchangeLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Runs visible resumes with `options` (default: derived from the production options).
    #[must_use]
    pub fn with_visible_options(mut self, options: VisibleOptions) -> Self {
        self.visible = options;
        self
    }

    /// The production options.
    #[must_use]
    pub fn options(&self) -> &ProductionOptions {
        self.resume.options()
    }

    /// The exchange bounds.
    #[must_use]
    pub fn limits(&self) -> &ExchangeLimits {
        &self.limits
    }
}

impl<L: Launcher> DispatchDeps for ProductionDispatch<L> {
    type Resumed = Result<ResumeOutcome, ResumeError>;

    /// The saved-session reader of the visible options (default: the session header
    /// with this id under the agent dir), off the async thread: it reads files.
    async fn resolve_target(&self, gid: &GardenId) -> Result<Target, IdentityError> {
        let (resolver, agent_dir, extension_args) = (
            self.visible.resolve_session.clone(),
            self.options().shared.agent_dir.clone(),
            self.options().shared.extension_args.clone(),
        );
        let owned = gid.clone();
        let session = crate::sys::off_async(move || resolver(&agent_dir, &owned, &extension_args))
            .await
            .unwrap_or_else(|join| {
                Err(IdentityError::Io {
                    path: self.options().shared.agent_dir.clone(),
                    source: std::io::Error::other(join),
                })
            })?;
        Ok(Target::new(self.options().socket_path(gid), session))
    }

    /// One `open(O_PATH)` + `fstat` (or `lstat`): no connect.
    async fn inspect(&self, socket: &Path) -> Inspection {
        inspect_for_probe(socket, self.options().shared.backend).0
    }

    async fn acquire(&self, gid: &GardenId) -> Result<LockClaim, AcquireError> {
        crate::lock::acquire_async(&self.options().shared.lock_dir, gid).await
    }

    async fn probe(&self, gid: &GardenId, target: &Target) -> CitizenProbe {
        probe_citizen(
            &target.socket,
            gid,
            self.options().shared.backend,
            &self.limits,
        )
        .await
    }

    async fn send(
        &self,
        target: &Target,
        message: &str,
        mode: DeliveryMode,
    ) -> Result<Answer, ExchangeError> {
        let command = Command::Send {
            message: message.to_owned(),
            mode,
        };
        exchange(
            &target.socket,
            self.options().shared.backend,
            &command,
            &self.limits,
        )
        .await
    }

    /// The options' release function, off the async thread (it reads and unlinks).
    async fn release(&self, claim: &LockClaim) -> Result<ReleaseOutcome, LockIoError> {
        let (release, owned) = (self.options().shared.release.clone(), claim.clone());
        match crate::sys::off_async(move || release(&owned)).await {
            Ok(released) => released,
            // The runtime is shutting down and the task never ran: release here, so the
            // gid is not pinned (nothing else is left to run it).
            Err(_) => (self.options().shared.release)(claim),
        }
    }

    async fn resume(
        &self,
        request: &DispatchRequest,
        target: Target,
        claim: LockClaim,
    ) -> Result<ResumeOutcome, ResumeError> {
        match request.resume {
            ResumeStyle::Visible => visible_resume_locked(claim, &self.visible, &self.launcher)
                .await
                .map(ResumeOutcome::Visible)
                .map_err(ResumeError::Visible),
            ResumeStyle::Background => {
                let plan = SpawnBgPlan::new(
                    request.gid.clone(),
                    request.message.clone(),
                    target.socket,
                    request.observe_timeout,
                )
                .and_then(|plan| plan.with_launch_args(request.launch_args.iter().cloned()));
                let plan = match plan {
                    Ok(plan) => plan,
                    Err(error) => {
                        return Err(ResumeError::Plan {
                            gid: request.gid.clone(),
                            error,
                            release: self.release(&claim).await.map_err(std::sync::Arc::new),
                        });
                    }
                };
                execute_spawn_bg_resume(&plan, Some(&claim), &self.resume)
                    .await
                    .map(ResumeOutcome::Background)
                    .map_err(ResumeError::Watch)
            }
        }
    }
}
