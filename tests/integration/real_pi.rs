//! The library against the REAL `pi` runtimes (`./run.sh install-pi`), offline: sessions
//! that pi itself wrote, resumed through `execute_spawn_bg_resume` with the production
//! dependencies, and the fixture extension (`real-pi/fixture/`) standing in for entwurf's
//! control extension. Without an installed runtime these skip, except on CI.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use entwurf_test_support::real_pi::{
    self, PiWorld, Runtime, fixture_extension_args, greet_and_release_turn, runtimes_or_skip, turns,
};
use entwurf_v2_spawn::lock::{self, ReleaseOutcome};
use entwurf_v2_spawn::production::{ProductionDeps, ProductionOptions, ProductionOutcome};
use entwurf_v2_spawn::resume_args::PassthroughArgs;
use entwurf_v2_spawn::runtime::{ArgvDialect, RuntimeError, preflight};
use entwurf_v2_spawn::watcher::{SpawnBgOutcome, execute_spawn_bg_resume};
use entwurf_v2_spawn::{GardenId, SpawnBgPlan};

const GID: &str = "20261203T120000-a91e0c";
/// A real pi starts in one to three seconds; the bound leaves room for a loaded machine.
const OBSERVE: Duration = Duration::from_secs(45);

/// Production options for `world`: its dirs, `runtime` as the program, the child's `HOME`
/// set to the world's (never ours), and `extension_args`.
fn options(world: &PiWorld, runtime: &Runtime, extension_args: Vec<String>) -> ProductionOptions {
    let mut options = ProductionOptions::with_home(&world.home, Some(world.agent_dir.clone()));
    options.shared.pi_program = runtime.launcher.clone().into_os_string();
    options.shared.extension_args = PassthroughArgs::new(extension_args).expect("extension args");
    options.shared.child_env = vec![
        ("HOME".into(), world.home.clone().into_os_string()),
        ("TMPDIR".into(), world.dir.path().as_os_str().to_owned()),
    ];
    options
}

/// Resumes session `GID` of `world` with the prompt "second" under its lock, the child
/// given `extension_args`; the outcome and the socket path.
async fn resume(
    world: &PiWorld,
    runtime: &Runtime,
    extension_args: Vec<String>,
) -> (ProductionOutcome, std::path::PathBuf) {
    let options = options(world, runtime, extension_args);
    let gid = GardenId::parse(GID).expect("gid");
    let claim = lock::acquire(&options.shared.lock_dir, &gid).expect("lock");
    let socket = options.socket_path(&gid);
    let plan = SpawnBgPlan::new(gid, "second", socket.clone(), OBSERVE).expect("plan");
    let deps = ProductionDeps::new(options);
    let outcome = execute_spawn_bg_resume(&plan, Some(&claim), &deps)
        .await
        .expect("watch");
    (outcome, socket)
}

/// A session pi wrote under an agent dir that is not pi's default is resumed in that
/// session: the turn lands in its file, and no second session is minted under the gid.
/// (Before the child was told its agent dir, pi created a fresh session in the default
/// dir, ran the turn there and the library reported a healthy resident.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_under_another_agent_dir_is_resumed_in_that_session() {
    for runtime in runtimes_or_skip("a_session_under_another_agent_dir_is_resumed_in_that_session")
    {
        let world = PiWorld::new(true);
        let file = world.create_session(&runtime, GID, "first");
        let header = real_pi::header(&file);
        let before = turns(&file);

        let (outcome, socket) = resume(&world, &runtime, fixture_extension_args()).await;
        let v = &runtime.version;
        let SpawnBgOutcome::SocketAlive {
            release, resident, ..
        } = outcome
        else {
            panic!("pi {v}: expected socket-alive, got {outcome:?}");
        };
        assert_eq!(release, ReleaseOutcome::Released, "pi {v}");
        let hello = greet_and_release_turn(&socket);
        assert_eq!(
            hello.session, GID,
            "pi {v}: the socket is the resumed session's"
        );
        assert_eq!(hello.pid, resident.pid(), "pi {v}: and the resident's own");
        let exit = tokio::time::timeout(OBSERVE, resident.exit())
            .await
            .unwrap_or_else(|_| panic!("pi {v}: the resident never exited"))
            .expect("exit observed");
        assert_eq!(exit.code, Some(0), "pi {v}: {exit}");

        assert_eq!(
            world.session_files(),
            vec![file.clone()],
            "pi {v}: the resume must not mint another session file"
        );
        assert_eq!(real_pi::header(&file), header, "pi {v}: header unchanged");
        let after = turns(&file);
        let added: Vec<_> = after.iter().skip(before.len()).cloned().collect();
        assert_eq!(after[..before.len()], before[..], "pi {v}: history kept");
        assert_eq!(
            added,
            vec![
                ("user".to_owned(), "second".to_owned()),
                ("assistant".to_owned(), "echo: second".to_owned()),
            ],
            "pi {v}: exactly the resumed turn was appended"
        );
    }
}

/// A runtime that refuses the argv (here: the real pi without the extension that
/// defines `--entwurf-control`) exits at once; the outcome carries what it said on stderr,
/// not only its exit code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_argv_brings_pis_own_stderr_line_into_the_outcome() {
    for runtime in runtimes_or_skip("a_refused_argv_brings_pis_own_stderr_line_into_the_outcome") {
        let world = PiWorld::new(false);
        let _file = world.create_session(&runtime, GID, "first");
        let (outcome, _socket) = resume(&world, &runtime, Vec::new()).await;
        let v = &runtime.version;
        let shown = format!("{outcome:?}");
        assert!(
            matches!(outcome, SpawnBgOutcome::ChildExited { ref exit, .. } if exit.code == Some(1)),
            "pi {v}: expected child-exited with code 1, got {shown}"
        );
        assert!(
            shown.contains("Unknown option: --entwurf-control"),
            "pi {v}: pi's stderr line is not in the outcome: {shown}"
        );
    }
}

/// The preflight names the version each installed runtime reports, and refuses — typed,
/// naming what it found — a missing runtime and one below the spawn-bg floor (a stand-in
/// answering `--version` as pi 0.73.1 does: the real 0.73.1 is another package, which
/// refuses `--session-id`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_preflight_names_the_version_and_refuses_typed() {
    for runtime in runtimes_or_skip("the_preflight_names_the_version_and_refuses_typed") {
        let found = preflight(runtime.launcher.as_os_str(), ArgvDialect::SpawnBg)
            .await
            .unwrap_or_else(|e| panic!("pi {}: {e}", runtime.version));
        assert_eq!(found.to_string(), runtime.version);
    }

    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("no-such-pi");
    let refusal = preflight(missing.as_os_str(), ArgvDialect::SpawnBg)
        .await
        .expect_err("a missing runtime is refused");
    assert!(
        matches!(refusal, RuntimeError::Missing { .. }),
        "{refusal:?}"
    );
    assert!(refusal.to_string().contains("no-such-pi"), "{refusal}");
    assert!(
        refusal.advice().contains("install pi"),
        "{}",
        refusal.advice()
    );

    let old = dir.path().join("pi-0.73.1");
    std::fs::write(&old, "#!/bin/sh\necho 0.73.1\n").expect("stand-in");
    std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let refusal = preflight(old.as_os_str(), ArgvDialect::SpawnBg)
        .await
        .expect_err("0.73.1 is below the floor");
    assert_eq!(
        refusal.found().map(|v| v.to_string()).as_deref(),
        Some("0.73.1")
    );
    assert!(
        refusal.to_string().contains("0.73.1") && refusal.to_string().contains("0.76.0"),
        "{refusal}"
    );
    assert_eq!(
        refusal.advice(),
        "upgrade pi from 0.73.1 to 0.76.0 or newer"
    );
    // The visible argv has no known floor: the same runtime passes there.
    let visible = preflight(old.as_os_str(), ArgvDialect::Visible).await;
    assert_eq!(visible.expect("no floor").to_string(), "0.73.1");
}
