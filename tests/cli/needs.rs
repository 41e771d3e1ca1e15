//! A missing tool: one message, the same in `--list` and in the run, a skip locally and
//! a failure on CI (issue 21 item 3, issue 25 items 5 and 6). "Missing" is made by a
//! `PATH` without the tool, never by uninstalling it.

use crate::run_env;

/// The words after the label: `--list`'s `— <words>`, the run's `<label>: <words>`.
fn list_words(stdout: &str, id: &str) -> String {
    let line = stdout
        .lines()
        .find(|l| l.starts_with(&format!("{id} ")))
        .unwrap_or_else(|| panic!("no {id} in --list:\n{stdout}"));
    line.rsplit_once(" — ").unwrap().1.to_owned()
}

/// The run's words for `id`, in `--list`'s form: `skip <id> <label>: <why>` is
/// `skips: <why>`, `FAIL <id> <label>: <why> (<ms> ms)` is `fails: <why>` (`why` is
/// known: the label itself may hold `: `).
fn run_words(stdout: &str, id: &str, why: &str) -> String {
    let line = stdout
        .lines()
        .find(|l| l.split(' ').nth(1) == Some(id))
        .unwrap_or_else(|| panic!("no {id} in the run:\n{stdout}"));
    let required = format!(": required on CI: {why} (");
    if line.starts_with("skip ") && line.ends_with(&format!(": {why}")) {
        format!("skips: {why}")
    } else if line.starts_with("FAIL ") && line.contains(&required) {
        format!("fails: required on CI: {why}")
    } else {
        format!("something else: {line}")
    }
}

/// Without tmux on `PATH`: locally every V check skips with `tmux is not installed
/// (apt-get install tmux)`, on CI every one fails with `required on CI: ` and the same
/// words, and `--list` says exactly what the run then does. An empty `CI` is not CI.
/// Before the rule, `CI=1 --list` said `V1 … — runs` and the run failed V1 with
/// `starting the private tmux server: … cannot start "sh"`.
#[test]
fn a_missing_tool_skips_locally_fails_on_ci_and_list_says_the_same() {
    let empty = tempfile::tempdir().unwrap();
    let path = empty.path().to_str().unwrap();
    // The failing runs keep their dirs: in a short TMPDIR, socket dirs included, removed
    // when the test ends.
    let tmp = crate::short_tmpdir();
    let tmp = tmp.path().to_str().unwrap();
    let why = "tmux is not installed (apt-get install tmux)";
    for (ci, want, code) in [
        ("", format!("skips: {why}"), 0),
        ("0", format!("skips: {why}"), 0),
        ("true", format!("fails: required on CI: {why}"), 1),
    ] {
        let env = [("PATH", path), ("CI", ci), ("TMPDIR", tmp)];
        let list = run_env(&["visible", "--list"], &env);
        assert_eq!(list.code, 0, "{}", list.stderr);
        let run = run_env(&["visible"], &env);
        assert_eq!(run.code, code, "CI={ci:?}\n{}\n{}", run.stdout, run.stderr);
        for n in 1..=8 {
            let id = format!("V{n}");
            assert_eq!(list_words(&list.stdout, &id), want, "CI={ci:?}");
            assert_eq!(run_words(&run.stdout, &id, why), want, "CI={ci:?}");
        }
    }
}
