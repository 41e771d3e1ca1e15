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
        assert!(
            std::env::var_os("CI").is_none_or(|v| v.is_empty()),
            "required on CI: no real pi in target/real-pi (./run.sh install-pi)"
        );
        eprintln!("skip: no real pi installed (./run.sh install-pi)");
        return;
    }
    let list = run_env(&["pi", "--list"], &[(REAL_PI_DIR, "")]);
    assert!(list.stdout.contains("P "), "{}", list.stdout);
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
    assert_eq!(ids.len(), 8 * versions.len(), "{}", list.stdout);
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
