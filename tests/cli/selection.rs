//! What ran is what the summary says: named partial runs, `--only`, `--list`, the
//! failed-ids line, provenance, and JUnit.

use crate::{
    BIN, expected_named_summary, is_root, last_line, run, smoke_command, summary_before_failed_ids,
};

#[test]
fn only_runs_the_ids_given_then_hygiene() {
    let r = run(&["--only", "L2", "--only", "S1.4"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let ids: Vec<&str> = r
        .stdout
        .lines()
        .filter(|l| l.starts_with("ok ") || l.starts_with("skip "))
        .map(|l| l.split(' ').nth(1).unwrap())
        .collect();
    assert_eq!(ids, ["S1.4", "L2", "H1", "H2", "H3"]);
    assert_eq!(
        last_line(&r.stdout),
        expected_named_summary("only S1.4, L2", 5, 0, 0)
    );
    // Hygiene alone: nothing made a temp dir, so H3 has nothing to look for.
    let r = run(&["--only", "H2"]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(r.stdout.contains("skip H3 "), "{}", r.stdout);
    // A check that inspects another's run brings it along.
    let r = run(&["--only", "R2"]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(r.stdout.contains("ok R1 ") && r.stdout.contains("ok R2 "));
}

#[test]
fn an_unknown_id_is_a_usage_error_listing_the_valid_ones() {
    let r = run(&["--only", "X9"]);
    assert_eq!(r.code, 2);
    assert!(r.stdout.is_empty());
    assert!(
        r.stderr.contains("--only X9") && r.stderr.contains("valid ids: S1.1 S1.2 S1.3 S1.4"),
        "{}",
        r.stderr
    );
    let r = run(&["lock", "--only", "S2.1"]);
    assert_eq!(r.code, 2, "an id outside the named scenario");
}

/// Every listed id runs exactly one check (and hygiene), the seed's included; a seed id
/// that named several checks is a usage error naming the ids they have now.
#[test]
fn every_listed_id_runs_exactly_one_check_and_a_seed_id_names_its_checks() {
    let r = run(&["--only", "S1.2"]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    let ids: Vec<&str> = r
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("ok ").or_else(|| l.strip_prefix("skip ")))
        .filter_map(|l| l.split(' ').next())
        .collect();
    assert_eq!(ids, ["S1.2", "H1", "H2", "H3"]);
    assert!(r.stdout.contains(" [seed S1] ("), "{}", r.stdout);
    let r = run(&["--only", "S1"]);
    assert_eq!(r.code, 2);
    assert!(r.stdout.is_empty());
    assert!(
        r.stderr
            .contains("--only S1: the seed's S1 is 3 checks with ids of their own, S1.1 S1.2 S1.3"),
        "{}",
        r.stderr
    );
    // No id is listed twice.
    let list = run(&["--list"]);
    let mut listed: Vec<&str> = list
        .stdout
        .lines()
        .skip(1)
        .filter_map(|l| l.split(' ').next())
        .collect();
    let n = listed.len();
    listed.sort_unstable();
    listed.dedup();
    assert_eq!(listed.len(), n, "{}", list.stdout);
}

#[test]
fn list_prints_every_check_and_who_skips_and_runs_nothing() {
    let r = run(&["--list"]);
    assert_eq!(r.code, 0);
    let lines: Vec<&str> = r.stdout.lines().collect();
    // As many rows as the header counts (the catalog's, for this run).
    let total: usize = lines[0]
        .split(": ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in the header: {}", lines[0]));
    assert_eq!(lines.len(), 1 + total, "{}", r.stdout);
    assert!(lines[0].contains("(commit "));
    let line = |id: &str| lines.iter().find(|l| l.starts_with(id)).unwrap().to_owned();
    // S1.8 needs root; L8 runs for everyone (as root with a holder of another uid).
    if is_root() {
        assert!(line("S1.8 ").ends_with("— runs"), "{}", line("S1.8 "));
    } else {
        assert!(line("S1.8 ").contains("— skips: "), "{}", line("S1.8 "));
    }
    assert!(line("L8 ").ends_with("— runs"), "{}", line("L8 "));
    assert!(line("L7 ").contains(" lock ") && line("H2 ").contains(" hygiene "));
    let v1 = line("V1 ");
    let tmux_missing = crate::tmux_skips() > 0;
    assert!(v1.contains(" visible "), "{v1}");
    assert_eq!(
        v1.contains("— skips: tmux is not installed"),
        tmux_missing,
        "{v1}"
    );
    // Nothing ran: no header, no result, and (run() checks) no temp dir.
    assert!(!r.stdout.contains("ok "));
    let keep = run(&["--list", "--keep-tmp"]);
    assert!(
        keep.stdout
            .lines()
            .any(|l| l.starts_with("H3 ") && l.contains("skips: --keep-tmp"))
    );
}

/// `--list --format json` is JSON Lines like a run's; TAP and JUnit report runs, so
/// they are a usage error there, never text under their name.
#[test]
fn list_honours_the_requested_format() {
    let r = run(&["--list", "--format", "json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let values: Vec<serde_json::Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let n = crate::listed(&[]).len();
    assert_eq!(values.len(), 1 + n);
    assert_eq!(values[0]["type"], "list");
    assert_eq!(values[0]["backend"], "native");
    assert_eq!(values[0]["total"], n);
    let seed = values.iter().find(|v| v["id"] == "S2.2").unwrap();
    assert_eq!(seed["seed"], "S2", "the seed's id stays visible");
    assert!(values.iter().find(|v| v["id"] == "S2.3").unwrap()["seed"].is_null());
    let l8 = values.iter().find(|v| v["id"] == "L8").unwrap();
    assert_eq!(l8["type"], "check");
    // L8 runs for everyone (as root with a holder of another uid).
    assert_eq!(l8["runs"], true);
    assert!(l8["skip_reason"].is_null());
    let p = values.iter().find(|v| v["id"] == "P").unwrap();
    assert_eq!(p["runs"], false, "these runs opt out of real pi");
    assert!(
        p["skip_reason"]
            .as_str()
            .unwrap()
            .contains("ENTWURF_REAL_PI_DIR")
    );
    for format in ["tap", "junit"] {
        let r = run(&["--list", "--format", format]);
        assert_eq!(r.code, 2, "{format}: {}", r.stdout);
        assert!(r.stdout.is_empty());
        assert!(
            r.stderr.contains("--list prints text or json"),
            "{}",
            r.stderr
        );
    }
}

#[test]
fn a_failing_summary_is_followed_by_the_failed_ids() {
    let r = run(&[
        "child",
        "--inject-failure",
        "S2.1",
        "--inject-failure",
        "S2.2",
        "--inject-failure",
        "S2.3",
    ]);
    assert_eq!(r.code, 1);
    assert_eq!(
        summary_before_failed_ids(&r.stdout),
        // H3 skips: the failed checks' dir is kept.
        expected_named_summary("child", 2, 3, 1)
    );
    assert_eq!(last_line(&r.stdout), "failed ids: S2.1 S2.2 S2.3");
}

/// The commit is the build's, embedded at build time: the same from any directory,
/// `-dirty` when the tree was dirty then.
#[test]
fn provenance_is_the_commit_the_binary_was_built_from() {
    let root = env!("CARGO_MANIFEST_DIR");
    let head = std::process::Command::new("git")
        .args(["-C", root, "rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    let elsewhere = tempfile::tempdir().unwrap();
    let version = smoke_command()
        .arg("--version")
        .current_dir(elsewhere.path())
        .output()
        .unwrap();
    let version = String::from_utf8_lossy(&version.stdout).trim().to_owned();
    let commit = version
        .split("(commit ")
        .nth(1)
        .and_then(|r| r.strip_suffix(')'))
        .unwrap_or_else(|| panic!("no commit in {version:?}"))
        .to_owned();
    match head {
        // Built in this checkout: HEAD then (a commit made after the build would differ,
        // but the test binary is built from the tree under test).
        Some(head) => assert!(
            commit == head || commit == format!("{head}-dirty"),
            "{commit} vs {head}"
        ),
        None => assert_eq!(commit, "unknown"),
    }
    let r = run(&["child", "--only", "S2.3"]);
    assert!(
        r.stdout
            .lines()
            .next()
            .unwrap()
            .contains(&format!("(commit {commit})"))
    );
    let json = run(&["child", "--only", "S2.3", "--format", "json"]);
    let start: serde_json::Value =
        serde_json::from_str(json.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(start["commit"], commit.as_str());
    assert!(version.starts_with(BIN));
}

#[test]
fn junit_has_a_suite_per_scenario_and_marks_failures_and_skips() {
    let r = run(&["--format", "junit", "--inject-failure", "L2"]);
    assert_eq!(r.code, 1);
    let report = quick_junit::Report::deserialize_from_str(&r.stdout).unwrap();
    let names: Vec<&str> = report.test_suites.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "socket (native)",
            "child (native)",
            "watcher (native)",
            "lock (native)",
            "resume (native)",
            "visible (native)",
            "dispatch (native)",
            "pi (native)",
            "hygiene (native)"
        ]
    );
    let cases: Vec<_> = report
        .test_suites
        .iter()
        .flat_map(|s| &s.test_cases)
        .collect();
    assert_eq!(cases.len(), crate::listed(&[]).len());
    let failed: Vec<&str> = cases
        .iter()
        .filter(|c| matches!(c.status, quick_junit::TestCaseStatus::NonSuccess { .. }))
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(failed.len(), 1);
    assert!(failed[0].starts_with("L2 "), "{failed:?}");
    let skipped = cases
        .iter()
        .filter(|c| matches!(c.status, quick_junit::TestCaseStatus::Skipped { .. }))
        .count();
    // S1.8 for an ordinary user, H3 (the failed check's dir is kept), the opted-out P
    // line, V without tmux.
    assert_eq!(skipped, crate::privilege_skips() + 2 + crate::tmux_skips());
}
