//! The library against the REAL `pi` runtimes (`./run.sh install-pi`), offline: sessions
//! that pi itself wrote, resumed through `execute_spawn_bg_resume` with the production
//! dependencies, and the fixture extension (`real-pi/fixture/`) standing in for entwurf's
//! control extension. Without an installed runtime these skip, except on CI.

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use entwurf_test_support::real_pi::{
    self, PiWorld, Runtime, fixture_extension_args, fixture_info, release_turn, runtimes_or_skip,
    turns,
};
use entwurf_v2_spawn::dispatch::{
    DispatchRequest, Intent, LockFate, ObservedLiveness, ProductionDispatch, Receipt,
    ResumeOutcome, dispatch,
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
        let info = fixture_info(&socket)
            .await
            .unwrap_or_else(|e| panic!("pi {v}: {e}"));
        assert_eq!(
            info.session_id, GID,
            "pi {v}: the socket is the resumed session's"
        );
        assert_eq!(info.pid, resident.pid(), "pi {v}: and the resident's own");
        release_turn(&socket).unwrap_or_else(|e| panic!("pi {v}: {e}"));
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

/// A release that counts its calls, then releases for real.
fn counted(options: &mut ProductionOptions) -> Arc<AtomicUsize> {
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    options.shared.release = Arc::new(move |claim| {
        seen.fetch_add(1, Ordering::SeqCst);
        lock::release(claim)
    });
    count
}

/// The entries a session file gained after `before` (its earlier bytes, which must be
/// kept): `(type, role, text)` of each line.
fn gained(file: &std::path::Path, before: &[u8], v: &str) -> Vec<(String, String, String)> {
    let after = std::fs::read(file).expect("read session");
    assert!(
        after.starts_with(before),
        "pi {v}: the earlier file changed"
    );
    String::from_utf8_lossy(&after[before.len()..])
        .lines()
        .map(|line| {
            let entry: serde_json::Value = serde_json::from_str(line).expect("jsonl line");
            let (role, content) = match entry["type"].as_str() {
                Some("message") => (
                    entry["message"]["role"].as_str().unwrap_or_default(),
                    &entry["message"]["content"],
                ),
                _ => ("", &entry["content"]),
            };
            let text = match content {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Array(parts) => {
                    parts.iter().filter_map(|p| p["text"].as_str()).collect()
                }
                _ => String::new(),
            };
            (
                entry["type"].as_str().unwrap_or_default().to_owned(),
                role.to_owned(),
                text,
            )
        })
        .collect()
}

fn entry(kind: &str, role: &str, text: &str) -> (String, String, String) {
    (kind.to_owned(), role.to_owned(), text.to_owned())
}

/// Cell C1 on each installed pi: a resident the library resumed receives a
/// fire-and-forget dispatch over its control socket — `sent`, the lock taken and released
/// once, the message in its session file as a follow-up (a `custom_message` entry, then
/// the turn it triggers) and nothing else; an owned-outcome dispatch to a dormant citizen
/// resumes it with the message as the turn's prompt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dispatch_reaches_a_live_resident_over_its_socket_and_resumes_a_dormant_one() {
    const DORMANT: &str = "20261203T120000-a91e0d";
    for runtime in runtimes_or_skip(
        "a_dispatch_reaches_a_live_resident_over_its_socket_and_resumes_a_dormant_one",
    ) {
        let v = &runtime.version;
        let world = PiWorld::new(true);
        let live = world.create_session(&runtime, GID, "first");
        let dormant = world.create_session(&runtime, DORMANT, "first");
        let (live_before, dormant_before) = (
            std::fs::read(&live).expect("read"),
            std::fs::read(&dormant).expect("read"),
        );

        // Live: the resident resumed with "second" holds its turn; the dispatch lands.
        let (outcome, socket) = resume(&world, &runtime, fixture_extension_args()).await;
        let SpawnBgOutcome::SocketAlive { resident, .. } = outcome else {
            panic!("pi {v}: expected socket-alive, got {outcome:?}");
        };
        let mut production = options(&world, &runtime, fixture_extension_args());
        let releases = counted(&mut production);
        let lock_dir = production.shared.lock_dir.clone();
        let deps = ProductionDispatch::new(production);
        let gid = GardenId::parse(GID).expect("gid");
        let request = DispatchRequest::new(gid.clone(), "over the socket", Intent::FireAndForget);
        let done = dispatch(&request, &deps).await.expect("dispatch");
        let Receipt::Sent { ack, observed } = &done.receipt else {
            panic!("pi {v}: expected sent, got {:?}", done.receipt);
        };
        assert_eq!(ack.delivered_as(), Some("followUp"), "pi {v}: {ack:?}");
        let ObservedLiveness::Alive(info) = observed else {
            panic!("pi {v}: the send rested on {observed}");
        };
        assert_eq!(info.session_id, GID, "pi {v}");
        assert_eq!(
            info.cwd.as_deref(),
            world.work.to_str(),
            "pi {v}: get_info names the session's cwd"
        );
        assert_eq!(
            done.lock,
            LockFate::Released(ReleaseOutcome::Released),
            "pi {v}: the lock was taken and released"
        );
        assert_eq!(releases.load(Ordering::SeqCst), 1, "pi {v}: released once");
        assert!(
            !lock::lock_path(&lock_dir, &gid).exists(),
            "pi {v}: no lock file left"
        );
        release_turn(&socket).unwrap_or_else(|e| panic!("pi {v}: {e}"));
        let exit = tokio::time::timeout(OBSERVE, resident.exit())
            .await
            .unwrap_or_else(|_| panic!("pi {v}: the resident never exited"))
            .expect("exit observed");
        assert_eq!(exit.code, Some(0), "pi {v}: {exit}");
        assert_eq!(
            gained(&live, &live_before, v),
            [
                entry("message", "user", "second"),
                entry("message", "assistant", "echo: second"),
                entry("custom_message", "", "over the socket"),
                entry("message", "assistant", "echo: over the socket"),
            ],
            "pi {v}: the resumed turn, then the message as a follow-up and its turn"
        );
        assert!(!socket.exists(), "pi {v}: the socket went with pi");

        // Dormant: the owned outcome resumes it with the message.
        let mut production = options(&world, &runtime, fixture_extension_args());
        let releases = counted(&mut production);
        let deps = ProductionDispatch::new(production);
        let gid = GardenId::parse(DORMANT).expect("gid");
        let request = DispatchRequest::new(gid.clone(), "wake up with this", Intent::OwnedOutcome)
            .with_observe_timeout(OBSERVE);
        let done = dispatch(&request, &deps).await.expect("dispatch");
        assert_eq!(done.lock, LockFate::HandedToResume, "pi {v}");
        let Receipt::Resumed { observed, outcome } = done.receipt else {
            panic!("pi {v}: expected resumed, got {:?}", done.receipt);
        };
        assert!(
            matches!(observed, ObservedLiveness::Dead(_)),
            "pi {v}: the resume rested on {observed}"
        );
        let Ok(ResumeOutcome::Background(SpawnBgOutcome::SocketAlive {
            resident, release, ..
        })) = outcome
        else {
            panic!("pi {v}: expected a socket-alive resume, got {outcome:?}");
        };
        assert_eq!(release, ReleaseOutcome::Released, "pi {v}");
        assert_eq!(releases.load(Ordering::SeqCst), 1, "pi {v}: released once");
        let socket = deps.options().socket_path(&gid);
        release_turn(&socket).unwrap_or_else(|e| panic!("pi {v}: {e}"));
        let exit = tokio::time::timeout(OBSERVE, resident.exit())
            .await
            .unwrap_or_else(|_| panic!("pi {v}: the resumed citizen never exited"))
            .expect("exit observed");
        assert_eq!(exit.code, Some(0), "pi {v}: {exit}");
        assert_eq!(
            gained(&dormant, &dormant_before, v),
            [
                entry("message", "user", "wake up with this"),
                entry("message", "assistant", "echo: wake up with this"),
            ],
            "pi {v}: the message was the resumed turn"
        );
        assert_eq!(
            world.session_files(),
            {
                let mut both = vec![live.clone(), dormant.clone()];
                both.sort();
                both
            },
            "pi {v}: no other session was minted"
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
