//! The plan: what the dispatcher decided to do for one spawn-bg resume.
//!
//! `transport = spawn-bg` and `action = resume` are implied by the type; only the
//! fields that vary are stored, and they are validated once, on construction.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::garden_id::GardenId;
use crate::lock::LockClaim;
use crate::release::ReleasePolicy;
use crate::resume_args::{PassthroughArgs, RefusedArg};

/// Why a plan was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// The socket path must be absolute: it is inspected exactly as given, never
    /// re-derived, so a relative path would depend on whoever's cwd.
    #[error("expected socket path {path:?} is not absolute")]
    RelativeSocketPath {
        /// The rejected path.
        path: PathBuf,
    },
    /// A launch arg that would repeat a flag the resume argv sets itself (and so could
    /// resume another session under this lock, or turn a resident's extensions off),
    /// `--`, or an empty arg.
    #[error("launch arg {:?} refused", .0.arg())]
    ForbiddenLaunchArg(#[source] RefusedArg),
    /// A requested cwd must be absolute: a relative one would depend on whoever's cwd
    /// the dispatcher happens to have.
    #[error("cwd {path:?} is not absolute")]
    RelativeCwd {
        /// The rejected path.
        path: PathBuf,
    },
}

/// A validated spawn-bg resume plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpawnBgPlan {
    target_garden_id: GardenId,
    session_id: GardenId,
    cwd: Option<PathBuf>,
    prompt: String,
    launch_args: PassthroughArgs,
    expected_socket_path: PathBuf,
    observe_timeout: Duration,
}

impl SpawnBgPlan {
    /// Builds a plan resuming `target` (its session id is the same gid), with no
    /// launch args and no cwd override.
    ///
    /// # Errors
    ///
    /// [`PlanError::RelativeSocketPath`] when `expected_socket_path` is not absolute.
    pub fn new(
        target: GardenId,
        prompt: impl Into<String>,
        expected_socket_path: impl Into<PathBuf>,
        observe_timeout: Duration,
    ) -> Result<Self, PlanError> {
        let expected_socket_path = expected_socket_path.into();
        if !expected_socket_path.is_absolute() {
            return Err(PlanError::RelativeSocketPath {
                path: expected_socket_path,
            });
        }
        Ok(Self {
            session_id: target.clone(),
            target_garden_id: target,
            cwd: None,
            prompt: prompt.into(),
            launch_args: PassthroughArgs::default(),
            expected_socket_path,
            observe_timeout,
        })
    }

    /// Sets the args passed verbatim after `--entwurf-control` (e.g. `--approve`).
    ///
    /// # Errors
    ///
    /// [`PlanError::ForbiddenLaunchArg`] for a flag the resume argv sets itself (alone or
    /// as `--flag=value`), `--`, or an empty arg: otherwise a plan could resume another
    /// session under this gid's lock. The plan is then dropped; nothing was spawned.
    pub fn with_launch_args(
        mut self,
        args: impl IntoIterator<Item = impl Into<String>>,
    ) -> Result<Self, PlanError> {
        self.launch_args = PassthroughArgs::new(args).map_err(PlanError::ForbiddenLaunchArg)?;
        Ok(self)
    }

    /// Requires the child to run in `cwd`. Production spawn refuses a saved session whose
    /// header names another directory, rather than resuming it in the wrong place.
    ///
    /// # Errors
    ///
    /// [`PlanError::RelativeCwd`] when `cwd` is not absolute.
    pub fn with_cwd(mut self, cwd: impl Into<PathBuf>) -> Result<Self, PlanError> {
        let cwd = cwd.into();
        if !cwd.is_absolute() {
            return Err(PlanError::RelativeCwd { path: cwd });
        }
        self.cwd = Some(cwd);
        Ok(self)
    }

    /// Sets the session id being resumed when it differs from the target.
    #[must_use]
    pub fn with_session_id(mut self, session_id: GardenId) -> Self {
        self.session_id = session_id;
        self
    }

    /// The citizen this plan brings back.
    #[must_use]
    pub fn target_garden_id(&self) -> &GardenId {
        &self.target_garden_id
    }
    /// The session being resumed.
    #[must_use]
    pub fn session_id(&self) -> &GardenId {
        &self.session_id
    }
    /// The cwd the plan insists on, if any.
    #[must_use]
    pub fn cwd(&self) -> Option<&Path> {
        self.cwd.as_deref()
    }
    /// The prompt handed to the resumed session.
    #[must_use]
    pub fn prompt(&self) -> &str {
        &self.prompt
    }
    /// Extra args for the resident (`v2-control` variant only).
    #[must_use]
    pub fn launch_args(&self) -> &[String] {
        &self.launch_args
    }
    /// The exact path the watcher inspects and probes.
    #[must_use]
    pub fn expected_socket_path(&self) -> &Path {
        &self.expected_socket_path
    }
    /// How long to wait for an observation before escalating.
    #[must_use]
    pub fn observe_timeout(&self) -> Duration {
        self.observe_timeout
    }
    /// The release rule, stated by the plan as the TypeScript dispatcher's plans state
    /// it: always [`ReleasePolicy::AfterSpawnObservation`] (wire name
    /// `socket-alive-or-child-exited`) for a spawn-bg resume, so it is implied by the
    /// type rather than stored.
    #[must_use]
    pub fn release_policy(&self) -> ReleasePolicy {
        ReleasePolicy::AfterSpawnObservation
    }
}

/// A spawn-bg plan paired with a lock that cannot be its lock. This is a programming
/// error in the caller, reported before anything is spawned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// No lock was passed, but spawn-bg always runs under one.
    #[error("spawn-bg resume of {target} needs a dispatch lock, none was given")]
    MissingLock {
        /// The plan's target.
        target: String,
    },
    /// The lock names another garden id than the plan's target.
    #[error("dispatch lock is for {lock_gid}, but the plan targets {target}")]
    MismatchedLock {
        /// The plan's target.
        target: String,
        /// The gid in the lock claim.
        lock_gid: String,
    },
}

/// A spawn-bg plan's lock, checked against the plan, with the policy it implies.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SpawnBgLock<'a> {
    /// Always [`ReleasePolicy::AfterSpawnObservation`] for spawn-bg.
    pub(crate) policy: ReleasePolicy,
    /// The lock, known to be for the plan's target.
    pub(crate) claim: &'a LockClaim,
}

/// Derives the policy for a spawn-bg plan, refusing a missing or mis-paired lock.
///
/// # Errors
///
/// [`PolicyError`] when no lock is given or it names another gid than the plan's
/// target.
pub(crate) fn policy_for_spawn_bg<'a>(
    plan: &SpawnBgPlan,
    lock: Option<&'a LockClaim>,
) -> Result<SpawnBgLock<'a>, PolicyError> {
    let target = plan.target_garden_id();
    match lock {
        None => Err(PolicyError::MissingLock {
            target: target.to_string(),
        }),
        Some(claim) if claim.garden_id() != target => Err(PolicyError::MismatchedLock {
            target: target.to_string(),
            lock_gid: claim.garden_id().to_string(),
        }),
        Some(claim) => Ok(SpawnBgLock {
            policy: plan.release_policy(),
            claim,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gid() -> GardenId {
        GardenId::parse("20260613T000000-aaaaaa").expect("gid")
    }

    #[test]
    fn relative_socket_path_is_refused() {
        let err = SpawnBgPlan::new(gid(), "hi", "run/x.sock", Duration::from_secs(1)).unwrap_err();
        assert_eq!(
            err,
            PlanError::RelativeSocketPath {
                path: "run/x.sock".into()
            }
        );
        assert!(err.to_string().contains("not absolute"));
    }

    #[test]
    fn builds_with_defaults() {
        let plan = SpawnBgPlan::new(gid(), "hi", "/run/x.sock", Duration::from_secs(1))
            .expect("plan")
            .with_launch_args(["--approve"])
            .expect("launch args");
        assert_eq!(plan.session_id(), &gid());
        assert_eq!(plan.launch_args(), ["--approve"]);
        assert_eq!(
            plan.release_policy().as_str(),
            "socket-alive-or-child-exited"
        );
        assert!(plan.clone().with_cwd("rel").is_err());
        assert_eq!(
            plan.with_cwd("/w").expect("cwd").cwd(),
            Some(Path::new("/w"))
        );
    }

    #[test]
    fn no_extensions_cannot_be_smuggled_into_a_resident() {
        let plan =
            SpawnBgPlan::new(gid(), "hi", "/run/x.sock", Duration::from_secs(1)).expect("plan");
        let err = plan
            .with_launch_args(["--approve", "--no-extensions"])
            .unwrap_err();
        assert_eq!(
            err,
            PlanError::ForbiddenLaunchArg(RefusedArg::Reserved {
                index: 1,
                arg: "--no-extensions".into(),
                flag: "--no-extensions",
            })
        );
        assert_eq!(err.to_string(), "launch arg \"--no-extensions\" refused");
    }
}
