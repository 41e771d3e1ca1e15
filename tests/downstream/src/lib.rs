//! A downstream crate of `entwurf-v2-spawn`, kept in the workspace so the gate compiles
//! it: it builds every options and request struct a dependent builds through the
//! constructors and builders only. No struct literal of a `#[non_exhaustive]` type can
//! appear here (the compiler refuses one outside the defining crate), so a field added
//! to any of them later cannot break this crate.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use entwurf_v2_spawn::production::child::{SpawnRequest, StderrTarget};
use entwurf_v2_spawn::production::identity::{LaunchIdentity, SessionIdentity};
use entwurf_v2_spawn::production::{ProductionOptions, ResumeLaunch, Spawner, StderrPolicy};
use entwurf_v2_spawn::resume_args::PassthroughArgs;
use entwurf_v2_spawn::socket::WaitOptions;
use entwurf_v2_spawn::visible::{LaunchReceipt, LaunchRequest, VisibleOptions};
use entwurf_v2_spawn::watcher::RetainedDiagnostic;
use entwurf_v2_spawn::{Backend, GardenId, SpawnBgPlan};

/// Production options as a dispatcher tunes them: a constructor, then field by field.
#[must_use]
pub fn production_options(home: &Path) -> ProductionOptions {
    let mut options = ProductionOptions::with_home(home, None);
    options.term_grace = Duration::from_secs(2);
    options.shared.backend = Backend::Portable;
    options.stderr = StderrPolicy::Fixed(StderrTarget::Null);
    options.shared.child_env.push(("LANG".into(), "C".into()));
    options.resolve_identity = Arc::new(|_: &Path, _: &GardenId, ext: &PassthroughArgs| {
        Ok(LaunchIdentity::new("/srv/citizen", "model-x")
            .with_provider(Some("provider-y".into()))
            .with_extension_args(ext.clone()))
    });
    options.spawner = wrapping_spawner(options.spawner.clone());
    options
}

/// A spawner that rewrites the request and hands it on: the request and the launch are
/// rebuilt through their constructors.
#[must_use]
pub fn wrapping_spawner(inner: Spawner) -> Spawner {
    Arc::new(move |launch: &ResumeLaunch<'_>| {
        let request = SpawnRequest::new(
            launch.request.program.clone(),
            launch.request.args.clone(),
            launch.request.cwd.clone(),
        )
        .with_stderr(launch.request.stderr.clone())
        .with_backend(launch.request.backend)
        .with_env("ENTWURF_WRAPPED", "1");
        inner(&ResumeLaunch::new(launch.plan, launch.identity, &request))
    })
}

/// Visible options from the production ones, then adjusted.
#[must_use]
pub fn visible_options(production: &ProductionOptions) -> VisibleOptions {
    let mut options = VisibleOptions::from_production(production);
    options.observe_timeout = Duration::from_secs(5);
    options.resolve_session = Arc::new(|agent: &Path, _: &GardenId, ext: &PassthroughArgs| {
        Ok(SessionIdentity::new(
            agent.join("sessions/x.jsonl"),
            LaunchIdentity::new("/srv/citizen", "model-x").with_extension_args(ext.clone()),
        ))
    });
    options
}

/// Waiter tuning from the defaults.
#[must_use]
pub fn wait_options() -> WaitOptions {
    WaitOptions::default()
        .with_poll_interval(Duration::from_millis(50))
        .with_probe_timeout(Duration::from_millis(200))
        .with_backend(Backend::Native)
}

/// What a custom launcher receives and answers.
#[must_use]
pub fn launch(gid: GardenId) -> (LaunchRequest, LaunchReceipt) {
    let mut request = LaunchRequest::new(
        gid,
        OsString::from("pi"),
        vec!["--entwurf-control".into()],
        PathBuf::from("/srv/citizen"),
    );
    request.env.push(("LANG".into(), "C".into()));
    (request, LaunchReceipt::new("main", "@3", 3, "%7", 4242, 1))
}

/// A plan, built and validated by its constructor.
///
/// # Errors
///
/// The plan's refusal (a relative socket path).
pub fn plan(gid: GardenId, socket: &Path) -> Result<SpawnBgPlan, Box<dyn std::error::Error>> {
    Ok(
        SpawnBgPlan::new(gid, "good morning", socket, Duration::from_secs(30))?
            .with_launch_args(["--approve"])?,
    )
}

/// A retained lock as a dependent reads it: by field, with `..` for what may come.
#[must_use]
pub fn describe(diagnostic: &RetainedDiagnostic) -> String {
    let RetainedDiagnostic { pid, lock_path, .. } = diagnostic;
    format!("pid {pid} holds {}", lock_path.display())
}
