//! The `pi` scenario from the outside: no runtime (a skip naming the install command,
//! a failure on CI, an opt-out that says so), a `--pi` the preflight refuses (a setup
//! error), and the P checks against an installed real pi with their ids and versions.

use std::os::unix::fs::PermissionsExt;

use crate::{REAL_PI_DIR, last_line, run_env};

/// The launchers `./run.sh install-pi` wrote, as the binary under test finds them.
fn installed() -> Vec<String> {
    let bin = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/real-pi/bin");
    let mut found: Vec<String> = std::fs::read_dir(&bin)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .into_string()
                .ok()?
                .strip_prefix("pi-")
                .map(str::to_owned)
        })
        .collect();
    found.sort();
    found
}

#[test]
fn without_a_runtime_the_p_line_skips_naming_the_install_command_and_fails_on_ci() {
    let none = tempfile::tempdir().unwrap();
    let dir = none.path().to_str().unwrap();
    let r = run_env(&["pi"], &[(REAL_PI_DIR, dir), ("CI", "")]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let p = r.stdout.lines().find(|l| l.starts_with("skip P ")).unwrap();
    assert!(p.contains("./run.sh install-pi") && p.contains(dir), "{p}");

    let r = run_env(&["pi"], &[(REAL_PI_DIR, dir), ("CI", "true")]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    let p = r.stdout.lines().find(|l| l.starts_with("FAIL P ")).unwrap();
    assert!(
        p.contains("required on CI") && p.contains("./run.sh install-pi"),
        "{p}"
    );
    assert!(
        last_line(&r.stdout).contains("failed ids: P"),
        "{}",
        r.stdout
    );

    // Set but empty: this run was told to use none, which is said, and is a skip on CI too.
    let r = run_env(&["pi"], &[(REAL_PI_DIR, ""), ("CI", "true")]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(r.stdout.contains("skip P ") && r.stdout.contains("set but empty"));
}

#[test]
fn a_pi_below_the_floor_is_a_setup_error_naming_both_versions() {
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("pi-old");
    std::fs::write(&old, "#!/bin/sh\necho 0.73.1\n").unwrap();
    std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o755)).unwrap();
    let r = run_env(&["pi", "--pi", old.to_str().unwrap()], &[]);
    assert_eq!(r.code, 2, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.is_empty(), "nothing ran: {}", r.stdout);
    assert!(
        r.stderr.contains("setup error")
            && r.stderr.contains("0.73.1")
            && r.stderr.contains("upgrade pi from 0.73.1 to 0.76.0"),
        "{}",
        r.stderr
    );
}

/// One P check per installed runtime, through the JSON format: each row names its
/// version, passes, and its id is unique. (The whole scenario runs in the live gate.)
#[test]
fn the_p_checks_run_against_each_installed_pi() {
    let versions = installed();
    if versions.is_empty() {
        entwurf_test_support::ci::skip_unless_ci(
            "no real pi in target/real-pi (./run.sh install-pi)",
        );
        return;
    }
    // Told to use none, the scenario is the one `P` line saying so.
    let list = run_env(&["pi", "--list"], &[(REAL_PI_DIR, "")]);
    let p: Vec<&str> = list.stdout.lines().filter(|l| l.starts_with('P')).collect();
    assert!(
        matches!(p.as_slice(), [line] if line.starts_with("P ") && line.contains("set but empty")),
        "{}",
        list.stdout
    );
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/real-pi");
    let dir = dir.to_str().unwrap();
    let list = run_env(&["pi", "--list"], &[(REAL_PI_DIR, dir)]);
    let ids: Vec<&str> = list
        .stdout
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .filter(|id| id.starts_with('P'))
        .collect();
    // As many of each runtime's as of the first's (each runtime runs every per-runtime
    // row of the catalog).
    let per_runtime = ids.iter().filter(|id| id.starts_with("P1.")).count();
    assert!(per_runtime > 0, "{}", list.stdout);
    assert_eq!(ids.len(), per_runtime * versions.len(), "{}", list.stdout);
    let mut unique = ids.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "every P id is its own: {ids:?}");

    // The refusal check of every runtime: quick (pi exits at once) and version-named.
    let mut args = vec!["pi", "--format", "json"];
    let only: Vec<String> = (1..=versions.len()).map(|n| format!("P{n}.5")).collect();
    for id in &only {
        args.extend(["--only", id.as_str()]);
    }
    let r = run_env(&args, &[(REAL_PI_DIR, dir)]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let rows: Vec<serde_json::Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|v: &serde_json::Value| v["type"] == "check" && v["scenario"] == "pi")
        .collect();
    assert_eq!(rows.len(), versions.len(), "{}", r.stdout);
    for row in &rows {
        assert_eq!(row["ok"], true, "{row}");
        let label = row["label"].as_str().unwrap();
        assert!(
            versions
                .iter()
                .any(|v| label.starts_with(&format!("pi {v}: "))),
            "{label}"
        );
    }
}

/// Whether a file below `dir` has a name ending in `suffix`.
fn any_below(dir: &std::path::Path, suffix: &str) -> bool {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .any(|entry| {
            let path = entry.path();
            if path.is_dir() && !path.is_symlink() {
                any_below(&path, suffix)
            } else {
                path.to_string_lossy().ends_with(suffix)
            }
        })
}

/// SIGKILL cannot be caught: what the gate started must end on its own. Killed while a
/// `--pi` runtime's `--version` hangs in setup, and while P1.1's resume of a real pi
/// starts — before the gate could tell the resident to run its turn, so the fixture holds
/// it 10 s and nothing but the guard's watcher ends it sooner — nothing of that run
/// (found by the marker it inherits) is left 3 s later.
#[test]
fn a_sigkilled_gate_leaves_no_pi_or_node_process() {
    use nix::sys::signal::{Signal, kill};
    use std::process::Stdio;
    use std::time::Duration;

    use crate::{MARK, marked, smoke_command, unique_mark, wait_for};

    let kill_gate = |gate: &mut std::process::Child| {
        kill(
            nix::unistd::Pid::from_raw(i32::try_from(gate.id()).unwrap()),
            Signal::SIGKILL,
        )
        .unwrap();
        gate.wait().unwrap();
    };
    let start = |args: &[&str], tmp: &std::path::Path, mark: &str, pi_dir: &str| {
        smoke_command()
            .args(args)
            .env("TMPDIR", tmp)
            .env(MARK, mark)
            .env(REAL_PI_DIR, pi_dir)
            .env_remove("ENTWURF_SMOKE_TEST_NO_LIFELINE")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };

    // Setup: a `--pi` whose `--version` never answers.
    let tmp = tempfile::tempdir().unwrap();
    let hanging = tmp.path().join("pi-hanging");
    let asked = tmp.path().join("asked");
    std::fs::write(
        &hanging,
        format!("#!/bin/sh\ntouch '{}'\nexec sleep 600\n", asked.display()),
    )
    .unwrap();
    std::fs::set_permissions(&hanging, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mark = unique_mark();
    let mut gate = start(
        &["pi", "--pi", hanging.to_str().unwrap()],
        tmp.path(),
        &mark,
        "",
    );
    assert!(
        wait_for(Duration::from_secs(10), || asked.exists()),
        "the preflight never asked: {:?}",
        marked(&mark)
    );
    kill_gate(&mut gate);
    assert!(
        wait_for(Duration::from_secs(3), || marked(&mark).is_empty()),
        "a preflight outlived the SIGKILLed gate by 3 s: {:?}",
        marked(&mark)
    );

    // A check: a real pi resident, waiting for its turn.
    if installed().is_empty() {
        assert!(
            std::env::var_os("CI").is_none_or(|v| v.is_empty()),
            "required on CI: no real pi in target/real-pi (./run.sh install-pi)"
        );
        eprintln!("skip: no real pi installed (./run.sh install-pi)");
        return;
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/real-pi");
    let tmp = tempfile::tempdir().unwrap();
    let mark = unique_mark();
    let mut gate = start(
        &["pi", "--only", "P1.1", "--check-timeout-ms", "60000"],
        tmp.path(),
        &mark,
        dir.to_str().unwrap(),
    );
    // The session pi writes first is in the scratch dir once it ran; a marked process
    // that was not there then is the resume's.
    let me = gate.id();
    let wrote = wait_for(Duration::from_secs(60), || any_below(tmp.path(), ".jsonl"));
    assert!(wrote, "pi wrote no session within 60 s");
    let writing = marked(&mark);
    let resuming = wait_for(Duration::from_secs(60), || {
        marked(&mark)
            .iter()
            .any(|p| *p != me && !writing.contains(p))
    });
    assert!(resuming, "the resume never started a process within 60 s");
    let before = marked(&mark);
    kill_gate(&mut gate);
    assert!(
        wait_for(Duration::from_secs(3), || marked(&mark).is_empty()),
        "of {before:?}, {:?} outlived the SIGKILLed gate by 3 s",
        marked(&mark)
    );
}

/// `./run.sh install-pi` writes nothing outside its install dir: the `--version` checks of
/// the launchers it writes turn Node's compile cache on, which went to
/// `$TMPDIR/node-compile-cache` (2.4 MB) before it was pointed under the install dir.
/// Installed into a scratch dir whose trees are the installed ones (so `npm ci` has
/// nothing to do and nothing is fetched), with an empty `TMPDIR`.
#[test]
fn install_pi_writes_nothing_outside_its_install_dir() {
    if installed().is_empty() {
        assert!(
            std::env::var_os("CI").is_none_or(|v| v.is_empty()),
            "required on CI: no real pi in target/real-pi (./run.sh install-pi)"
        );
        eprintln!("skip: no real pi installed (./run.sh install-pi)");
        return;
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dest = tempfile::tempdir().unwrap();
    for tree in ["runtime", "node"] {
        let installed = root.join("target/real-pi").join(tree);
        if installed.exists() {
            std::os::unix::fs::symlink(&installed, dest.path().join(tree)).unwrap();
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(root.join("run.sh"))
        .args(["install-pi", dest.path().to_str().unwrap()])
        .env("TMPDIR", tmp.path())
        .output()
        .unwrap();
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("already installed from this lock"),
        "npm ci ran: {said}"
    );
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(left.is_empty(), "install-pi wrote into TMPDIR: {left:?}");
    let cache = dest.path().join("node-compile-cache");
    assert!(
        std::fs::read_dir(&cache).is_ok_and(|mut d| d.next().is_some()),
        "the compile cache is not under the install dir ({})",
        cache.display()
    );
}
