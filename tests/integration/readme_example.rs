//! The README's library example is the one users copy, so it is run, not only compiled:
//! verbatim (`readme_example/example.rs`, which the README and the doctest in
//! `src/lib.rs` must equal) against each installed real pi, with the fixture extension
//! standing in for entwurf's control extension. Without the `extension_args` line the
//! example once carried no extension, and pi 1.6.0 refused it (`Unknown option:
//! --entwurf-control`).
#![expect(
    dead_code,
    reason = "the example's caller() reads this process's HOME: only resume() is run"
)]

// The example's items, its `use` lines included (the test uses them too).
include!("readme_example/example.rs");

use entwurf_test_support::real_pi::{
    PiWorld, fixture, fixture_info, release_turn, runtimes_or_skip, turns,
};

const EXAMPLE: &str = include_str!("readme_example/example.rs");
const GID: &str = "20261203T120000-b7e4c1";

/// The fenced block of `text` holding `async fn resume(`, its fence lines left out.
fn block_with_resume(lines: impl Iterator<Item = String>) -> String {
    let mut block = Vec::new();
    let mut inside = false;
    for line in lines {
        if line.starts_with("```") {
            if inside
                && block
                    .iter()
                    .any(|l: &String| l.contains("async fn resume("))
            {
                return block.join("\n") + "\n";
            }
            inside = !inside;
            block.clear();
        } else if inside {
            block.push(line);
        }
    }
    panic!("no fenced block with `async fn resume(`");
}

#[test]
fn the_readme_and_the_doctest_show_this_example() {
    let root = env!("CARGO_MANIFEST_DIR");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).expect("README.md");
    assert_eq!(
        block_with_resume(readme.lines().map(str::to_owned)),
        EXAMPLE,
        "README.md's example differs from tests/integration/readme_example/example.rs"
    );
    let lib = std::fs::read_to_string(format!("{root}/src/lib.rs")).expect("src/lib.rs");
    let doc = lib.lines().filter_map(|l| {
        l.strip_prefix("//! ")
            .or_else(|| (l == "//!").then_some(""))
            .map(str::to_owned)
    });
    assert_eq!(
        block_with_resume(doc),
        EXAMPLE,
        "src/lib.rs's doctest differs from tests/integration/readme_example/example.rs"
    );
}

/// The example, as written, resumes a session each real pi wrote: resident, and then
/// the turn it was told to run lands in the session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_example_resumes_a_session_of_the_real_pi() {
    for runtime in runtimes_or_skip("the_readme_example_resumes_a_session_of_the_real_pi") {
        let v = &runtime.version;
        let world = PiWorld::new(true);
        let file = world.create_session(&runtime, GID, "first");
        let before = turns(&file).len();
        let mut options = ProductionOptions::with_home(&world.home, Some(world.agent_dir.clone()));
        options.shared.pi_program = runtime.launcher.clone().into_os_string();
        options.shared.child_env = vec![
            ("HOME".into(), world.home.clone().into_os_string()),
            ("TMPDIR".into(), world.dir.path().as_os_str().to_owned()),
        ];
        let socket = options.socket_path(&GardenId::parse(GID).expect("gid"));
        let fixture = fixture();
        let pid = resume(options, fixture.to_str().expect("utf-8"), GID)
            .await
            .unwrap_or_else(|e| panic!("pi {v}: {e}"))
            .unwrap_or_else(|| panic!("pi {v}: the example's resume did not become resident"));
        let info = fixture_info(&socket)
            .await
            .unwrap_or_else(|e| panic!("pi {v}: {e}"));
        assert_eq!((info.session_id.as_str(), info.pid), (GID, pid), "pi {v}");
        release_turn(&socket).unwrap_or_else(|e| panic!("pi {v}: {e}"));
        let deadline = std::time::Instant::now() + Duration::from_secs(45);
        while entwurf_procfs::proc_stat(pid).is_some_and(|s| !s.is_dead()) {
            assert!(
                std::time::Instant::now() < deadline,
                "pi {v}: the resident never exited"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let added: Vec<_> = turns(&file).into_iter().skip(before).collect();
        assert_eq!(
            added,
            vec![
                ("user".to_owned(), "good morning".to_owned()),
                ("assistant".to_owned(), "echo: good morning".to_owned()),
            ],
            "pi {v}: the example's turn is in the session"
        );
    }
}
