//! What a dependent needs to reach without digging: typed spawn and identity errors in
//! the outcome (no downcast), a spawner that sees the plan, the spawn concurrency as an
//! option.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use entwurf_v2_spawn::lock::{self, ReleaseOutcome};
use entwurf_v2_spawn::production::child::SpawnError;
use entwurf_v2_spawn::production::identity::IdentityError;
use entwurf_v2_spawn::production::{
    ProductionDeps, ProductionOptions, ResumeLaunch, ResumeSpawnError, Spawner, fixed_identity,
};
use entwurf_v2_spawn::watcher::{SpawnBgOutcome, WatchDeps, execute_spawn_bg_resume};
use entwurf_v2_spawn::{GardenId, SpawnBgPlan};

const GID: &str = "20260613T000000-cccccc";

fn gid() -> GardenId {
    GardenId::parse(GID).expect("gid")
}

fn plan(options: &ProductionOptions) -> SpawnBgPlan {
    SpawnBgPlan::new(
        gid(),
        "wake up",
        options.socket_path(&gid()),
        Duration::from_secs(1),
    )
    .expect("plan")
    .with_launch_args(["--approve"])
    .expect("launch args")
}

/// A spawner that never starts anything: it counts its calls and refuses.
fn refusing_spawner(calls: Arc<AtomicUsize>) -> Spawner {
    Arc::new(move |launch: &ResumeLaunch<'_>| {
        calls.fetch_add(1, Ordering::SeqCst);
        Err(SpawnError::NoRuntime {
            program: launch.request.program.clone(),
        })
    })
}

#[tokio::test]
async fn a_missing_saved_session_is_matchable_as_an_identity_error() {
    let home = tempfile::tempdir().expect("tempdir");
    let mut options = ProductionOptions::with_home(home.path(), None);
    let calls = Arc::new(AtomicUsize::new(0));
    options.spawner = refusing_spawner(calls.clone());
    let claim = lock::acquire(&options.shared.lock_dir, &gid()).expect("acquire");
    let deps = ProductionDeps::new(options.clone());

    let outcome = execute_spawn_bg_resume(&plan(&options), Some(&claim), &deps)
        .await
        .expect("an outcome");
    match outcome {
        SpawnBgOutcome::SpawnStartFailed {
            error: ResumeSpawnError::Identity(IdentityError::NotFound { gid: missing, .. }),
            release,
        } => {
            assert_eq!(missing, gid());
            assert_eq!(release, ReleaseOutcome::Released);
        }
        other => panic!("expected a typed identity error, got {other:?}"),
    }
    assert_eq!(calls.load(Ordering::SeqCst), 0, "nothing was spawned");
    assert!(!options.lock_path(&gid()).exists());
}

#[tokio::test]
async fn a_custom_spawner_sees_the_plan_and_the_identity() {
    let mut options = ProductionOptions::with_home(Path::new("/nonexistent-home"), None);
    options.resolve_identity =
        fixed_identity("/work".into(), Some("anthropic".into()), "claude".into());
    let seen = Arc::new(Mutex::new(None));
    let record = seen.clone();
    options.spawner = Arc::new(move |launch: &ResumeLaunch<'_>| {
        *record.lock().expect("seen") = Some((
            launch.plan.target_garden_id().clone(),
            launch.plan.launch_args().to_vec(),
            launch.identity.model.clone(),
            launch.request.cwd.clone(),
        ));
        Err(SpawnError::NoRuntime {
            program: launch.request.program.clone(),
        })
    });
    let deps = ProductionDeps::new(options.clone());
    let spawned = deps.spawn(&plan(&options)).await;
    assert!(
        matches!(
            spawned,
            Err(ResumeSpawnError::Spawn(SpawnError::NoRuntime { .. }))
        ),
        "{spawned:?}"
    );
    let seen = seen.lock().expect("seen").take().expect("the spawner ran");
    assert_eq!(
        seen,
        (
            gid(),
            vec!["--approve".to_owned()],
            "claude".to_owned(),
            "/work".into()
        )
    );
}

/// How many of `n` concurrent spawns ran at once with `concurrency` slots.
async fn peak_spawns(concurrency: usize, n: usize) -> usize {
    let mut options = ProductionOptions::with_home(Path::new("/nonexistent-home"), None);
    options.resolve_identity = fixed_identity("/work".into(), None, "m".into());
    options.spawn_concurrency = concurrency;
    let (running, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let counted = (running.clone(), peak.clone());
    options.spawner = Arc::new(move |launch: &ResumeLaunch<'_>| {
        let now = counted.0.fetch_add(1, Ordering::SeqCst) + 1;
        counted.1.fetch_max(now, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(150));
        counted.0.fetch_sub(1, Ordering::SeqCst);
        Err(SpawnError::NoRuntime {
            program: launch.request.program.clone(),
        })
    });
    let deps = ProductionDeps::new(options.clone());
    let plan = plan(&options);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..n {
        let (deps, plan) = (deps.clone(), plan.clone());
        tasks.spawn(async move { deps.spawn(&plan).await.is_err() });
    }
    while let Some(failed) = tasks.join_next().await {
        assert!(failed.expect("join"), "the spawner always fails");
    }
    peak.load(Ordering::SeqCst)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawn_concurrency_is_an_option() {
    assert_eq!(
        ProductionOptions::with_home(Path::new("/h"), None).spawn_concurrency,
        4,
        "the default"
    );
    assert_eq!(peak_spawns(1, 4).await, 1);
    // 0 would deadlock every spawn; it counts as 1.
    assert_eq!(peak_spawns(0, 3).await, 1);
    let wide = peak_spawns(6, 12).await;
    assert!((5..=6).contains(&wide), "{wide} of 6 slots used at once");
}
