//! Output formats: text (snapshot), help, TAP and `prove`, JSON Lines, colors, `--record`.

use crate::{
    BIN, Run, expected_named_summary, expected_summary, last_line, normalize, run, run_env,
};
use entwurf_test_support::ci::skip_unless_ci;

#[test]
fn text_output_of_the_child_scenario() {
    let r = run(&["child", "--color", "never"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    insta::assert_snapshot!(normalize(&r.stdout));
}

#[test]
fn help_lists_the_scenarios_and_hides_the_stand_ins() {
    let r = run(&["--help"]);
    assert_eq!(r.code, 0);
    assert!(
        !r.stdout.contains("__stand-in") && !r.stdout.contains("inject"),
        "{}",
        r.stdout
    );
    insta::assert_snapshot!(r.stdout);
}

#[test]
fn tap_is_well_formed_version_13() {
    let r = run(&["--format", "tap"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    let n = crate::listed(&[]).len();
    assert_eq!(lines[0], "TAP version 13");
    assert_eq!(lines[1], format!("1..{n}"));
    let results: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.starts_with("ok ") || l.starts_with("not ok "))
        .collect();
    assert_eq!(results.len(), n);
    for (i, line) in results.iter().enumerate() {
        assert!(line.starts_with(&format!("ok {} - ", i + 1)), "{line}");
    }
    // S1.8 or L8, the opted-out P line, and the V checks without tmux.
    assert_eq!(
        results.iter().filter(|l| l.contains(" # SKIP ")).count(),
        crate::privilege_skips() + 1 + crate::tmux_skips()
    );
    assert!(lines.iter().all(|l| l.starts_with("ok ")
        || l.starts_with("# ")
        || l.starts_with("TAP ")
        || l.starts_with("1..")));
    assert_eq!(
        last_line(&r.stdout),
        format!(
            "# {}",
            expected_summary(
                n - crate::privilege_skips() - 1 - crate::tmux_skips(),
                0,
                crate::privilege_skips() + 1 + crate::tmux_skips()
            )
        )
    );
}

#[test]
fn tap_failures_carry_a_yaml_block() {
    let r = run(&["socket", "--format", "tap", "--inject-failure", "S1.4"]);
    assert_eq!(r.code, 1);
    let at = r.stdout.find("not ok 4 - S1.4 ").expect("not ok line");
    let block: Vec<&str> = r.stdout[at..].lines().skip(1).take(6).collect();
    assert_eq!(block[0], "  ---");
    assert!(
        block[1].starts_with("  message: \"injected failure"),
        "{block:?}"
    );
    assert!(block[4].starts_with("  kept_dir: \""), "{block:?}");
    assert_eq!(block[5], "  ...");
}

/// Debian's `prove` must accept the stream: passing, skipping and failing.
#[test]
fn prove_accepts_the_tap_stream() {
    if std::process::Command::new("prove")
        .arg("--version")
        .output()
        .is_err()
    {
        skip_unless_ci("`prove` is not installed (Debian: perl)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let prove = |args: &[&str], name: &str| {
        let tap = run(args).stdout;
        let file = dir.path().join(name);
        std::fs::write(&file, tap).unwrap();
        let out = std::process::Command::new("prove")
            .arg("--exec")
            .arg("cat")
            .arg(&file)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (ok, text) = prove(&["--format", "tap"], "all.tap");
    assert!(ok && text.contains("Result: PASS"), "{text}");
    let (ok, text) = prove(
        &["lock", "--format", "tap", "--inject-failure", "L2"],
        "failing.tap",
    );
    assert!(
        !ok && text.contains("Failed test:  2") && !text.contains("Parse errors"),
        "{text}"
    );
}

#[test]
fn json_lines_parse_with_the_documented_fields() {
    let r = run(&["lock", "--format", "json", "--inject-failure", "L3"]);
    assert_eq!(r.code, 1);
    let values: Vec<serde_json::Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let (start, rest) = values.split_first().unwrap();
    assert_eq!(start["type"], "start", "{start}");
    assert_eq!(start["scenario"], "lock");
    assert_eq!(start["backend"], "native");
    assert!(
        start["version"].is_string() && start["commit"].is_string() && start["euid"].is_number()
    );
    let (checks, summary) = rest.split_at(rest.len() - 1);
    assert_eq!(checks.len(), crate::listed(&["lock"]).len());
    for v in checks {
        assert_eq!(v["type"], "check", "{v}");
        assert!(
            v["id"].is_string() && v["label"].is_string() && v["ms"].is_number(),
            "{v}"
        );
        assert!(v["ok"].is_boolean() && v["skipped"].is_boolean(), "{v}");
        assert_eq!(v["error"].is_null(), v["ok"] == true, "{v}");
        assert_eq!(v["skip_reason"].is_string(), v["skipped"] == true, "{v}");
    }
    let failed: Vec<_> = checks.iter().filter(|v| v["ok"] == false).collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["id"], "L3");
    assert!(
        failed[0]["error"]
            .as_str()
            .unwrap()
            .contains("injected failure")
    );
    let s = &summary[0];
    assert_eq!(s["type"], "summary");
    assert_eq!(s["interrupted"], false);
    assert_eq!(s["failed_ids"], serde_json::json!(["L3"]));
    assert_eq!(s["failed"], 1);
    assert_eq!(
        s["passed"].as_u64().unwrap() + s["skipped"].as_u64().unwrap(),
        10
    );
    assert!(s["wall_ms"].is_number());
    // L8 (an EPERM holder) runs as root too (a holder of another uid); H3 skips.
    assert_eq!(s["skipped"], 1, "H3: the failed check's dir is kept");
    assert_eq!(
        s["summary"].as_str().unwrap(),
        // H3 skips: the failed check's dir is kept.
        expected_named_summary("lock", 9, 1, 1)
    );
}

#[test]
fn colors_follow_flag_no_color_and_clicolor_force() {
    let esc = |r: &Run| r.stdout.contains("\x1b[");
    assert!(esc(&run(&["child", "--color", "always"])));
    assert!(!esc(&run(&["child", "--color", "never"])));
    // Not a terminal under test: auto means plain, unless forced.
    assert!(!esc(&run(&["child"])));
    assert!(esc(&run_env(&["child"], &[("CLICOLOR_FORCE", "1")])));
    assert!(!esc(&run_env(
        &["child"],
        &[("NO_COLOR", "1"), ("CLICOLOR_FORCE", "1")]
    )));
    assert!(!esc(&run_env(&["child"], &[("NO_COLOR", "1")])));
    // CLICOLOR_FORCE forces, as --help says: also with TERM=dumb (forcing is the
    // user's explicit say-so; TERM=dumb alone keeps auto plain).
    assert!(esc(&run_env(
        &["child"],
        &[("TERM", "dumb"), ("CLICOLOR_FORCE", "1")]
    )));
    assert!(!esc(&run_env(&["child"], &[("TERM", "dumb")])));
    let help = run(&["--help"]).stdout;
    assert!(
        help.contains("CLICOLOR_FORCE") && help.contains("TERM=dumb"),
        "{help}"
    );
    // Machine formats are never colored.
    assert!(!esc(&run(&[
        "child", "--color", "always", "--format", "json"
    ])));
    assert!(!esc(&run(&[
        "child", "--color", "always", "--format", "tap"
    ])));
}

#[test]
fn record_appends_dated_entries_under_one_heading() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("NEXT.md");
    let original = "# Next\n\n- keep this line\n   trailing spaces   \nno newline at the end";
    std::fs::write(&file, original).unwrap();
    let path = file.to_str().unwrap();
    for _ in 0..2 {
        assert_eq!(run(&["child", "--record", path]).code, 0);
    }
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.starts_with(original), "{text}");
    assert_eq!(text.matches("## Live smoke record").count(), 1, "{text}");
    let entries: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("- ") && l.contains(BIN))
        .collect();
    assert_eq!(entries.len(), 2, "{text}");
    for e in entries {
        assert!(
            e.contains(&format!("`{}`", expected_named_summary("child", 6, 0, 0))),
            "{e}"
        );
        assert!(
            e.contains("Z `") && e.contains("scenario child") && e.contains(" ms"),
            "{e}"
        );
        assert!(e.contains(std::env::consts::ARCH), "{e}");
    }
}

/// Which backend ran is in every header, `--list` and JUnit's names, so a CI page with
/// both runs keeps them apart; JUnit suites carry time, timestamp and hostname.
#[test]
fn every_format_names_the_backend_and_junit_suites_are_complete() {
    for backend in ["native", "portable"] {
        let args = |format: &str| -> Vec<String> {
            ["--only", "S1.4", "--backend", backend, "--format", format]
                .map(str::to_owned)
                .to_vec()
        };
        let run_fmt = |format: &str| {
            let args = args(format);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let r = run(&args);
            assert_eq!(r.code, 0, "{format}: {}\n{}", r.stdout, r.stderr);
            r.stdout
        };
        let named = format!("backend {backend}");
        let text = run_fmt("text");
        assert!(text.lines().next().unwrap().contains(&named), "{text}");
        let tap = run_fmt("tap");
        assert!(
            tap.lines()
                .any(|l| l.starts_with("# ") && l.contains(&named)),
            "{tap}"
        );
        let json = run_fmt("json");
        let start: serde_json::Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
        assert_eq!(start["backend"], backend, "{json}");
        let list = run(&["--list", "--backend", backend]);
        assert!(list.stdout.lines().next().unwrap().contains(&named));

        let xml = run_fmt("junit");
        let report = quick_junit::Report::deserialize_from_str(&xml).unwrap();
        for suite in &report.test_suites {
            assert!(
                suite.name.ends_with(&format!(" ({backend})")),
                "{:?}",
                suite.name
            );
            assert!(suite.time.is_some(), "{xml}");
            for case in &suite.test_cases {
                let class = case.classname.as_ref().unwrap();
                assert!(class.starts_with(&format!("{BIN}.{backend}.")), "{class:?}");
            }
        }
        let suite_tag = xml.lines().find(|l| l.contains("<testsuite ")).unwrap();
        for attribute in ["time=\"", "timestamp=\"", "hostname=\""] {
            assert!(suite_tag.contains(attribute), "{attribute}: {suite_tag}");
        }
    }
}
