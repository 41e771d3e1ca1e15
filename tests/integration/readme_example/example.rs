// The README's example, verbatim: a doctest in src/lib.rs, and run against the real pi
// by tests/integration/readme_example.rs.
use std::time::Duration;
use entwurf_v2_spawn::production::{ProductionDeps, ProductionOptions};
use entwurf_v2_spawn::resume_args::PassthroughArgs;
use entwurf_v2_spawn::runtime::{ArgvDialect, preflight};
use entwurf_v2_spawn::watcher::{SpawnBgOutcome, execute_spawn_bg_resume};
use entwurf_v2_spawn::{GardenId, SpawnBgPlan, error_chain, lock};

/// Resumes `gid` in the background with entwurf's control extension; its pid once it is
/// resident (observed: its control socket answers).
async fn resume(
    mut options: ProductionOptions,
    control_extension: &str,
    gid: &str,
) -> Result<Option<u32>, Box<dyn std::error::Error>> {
    let gid = GardenId::parse(gid)?;
    // The resume passes `--entwurf-control`, a flag only entwurf's control extension
    // defines: without it named here, pi refuses (`Unknown option: --entwurf-control`).
    options.shared.extension_args = PassthroughArgs::new(["-e", control_extension])?;
    // Before the lock: a missing pi, or one too old for the argv, is refused with nothing taken.
    preflight(&options.shared.pi_program, ArgvDialect::SpawnBg).await?;
    // Off the async worker: acquire creates and fsyncs the lock file.
    let claim = lock::acquire_async(&options.shared.lock_dir, &gid).await?;
    let socket = options.socket_path(&gid);
    let plan = SpawnBgPlan::new(gid.clone(), "good morning", socket, Duration::from_secs(30))?;
    let deps = ProductionDeps::new(options);
    // Every error is printed with its causes: the top message alone rarely says why.
    match execute_spawn_bg_resume(&plan, Some(&claim), &deps).await {
        Ok(SpawnBgOutcome::SocketAlive { pid, .. }) => {
            println!("{gid} is resident as pid {pid}");
            return Ok(Some(pid));
        }
        Ok(SpawnBgOutcome::ChildExited { exit, stderr_tail, .. }) => {
            // A runtime that refused to run says why on stderr: show it with the code.
            println!("{gid} ended: {exit}; stderr: {}", stderr_tail.as_deref().unwrap_or("-"))
        }
        Ok(SpawnBgOutcome::SpawnStartFailed { error, .. }) => {
            eprintln!("could not start {gid}: {}", error_chain(&error))
        }
        Ok(SpawnBgOutcome::LockRetained(diagnostic)) => eprintln!("{diagnostic}"),
        Ok(other) => println!("{gid}: {}", other.kind()), // an outcome added later
        Err(error) => eprintln!("resuming {gid}: {}", error_chain(&error)),
    }
    Ok(None)
}

async fn caller() {
    let resumed = match ProductionOptions::from_env() {
        // HOME, PI_CODING_AGENT_DIR; the extension is entwurf's (no registry publishes it).
        Ok(options) => resume(options, "/path/to/entwurf-control.ts", "20260613T000000-aaaaaa").await,
        Err(error) => Err(error.into()),
    };
    if let Err(error) = resumed {
        eprintln!("{}", error_chain(&*error));
    }
}
