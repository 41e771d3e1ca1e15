//! What the receipts and the options say when printed: the smoke's report, the examples
//! and a person debugging a resume read them, so each names what it holds.

use std::time::Duration;

use super::*;

#[test]
fn a_launch_receipt_names_the_window_as_tmux_targets_it() {
    let shown = LaunchReceipt::new("my session", "@3", 2, "%7", 4242, 77).to_string();
    // `session:index` is what the operator types to reach the window (`tmux select-window
    // -t`); the ids and the pid are what the logs and `ps` show.
    for part in ["@3", "my session:2", "%7", "4242"] {
        assert!(shown.contains(part), "{part} missing from {shown:?}");
    }
}

#[test]
fn an_exit_status_says_whether_a_code_or_a_signal_ended_the_pane() {
    let code = PaneExitStatus::Code(9).to_string();
    let signal = PaneExitStatus::Signal(9).to_string();
    assert!(code.contains("code 9"), "{code:?}");
    assert!(signal.contains("signal 9"), "{signal:?}");
}

#[test]
fn a_pane_exited_observation_carries_the_status_it_was_told() {
    let exited = |status| ObservationReceipt::PaneExited {
        after: Duration::from_millis(40),
        status: Some(status),
    };
    let shown = exited(PaneExitStatus::Signal(11)).to_string();
    assert!(shown.starts_with("pane-exited after 40 ms"), "{shown:?}");
    assert!(shown.contains("signal 11"), "{shown:?}");
    let shown = exited(PaneExitStatus::Code(3)).to_string();
    assert!(shown.contains("code 3"), "{shown:?}");
    assert!(!shown.contains("unknown"), "{shown:?}");
}

/// The options' Debug shows what a resume runs with (the shared directories and knobs,
/// the observation's bound); the session resolver, a function, is left out.
#[test]
fn the_options_debug_shows_the_shared_options_and_the_bound() {
    let world = World::new();
    let shown = format!("{:?}", world.options);
    let control_dir = format!("control_dir: {:?}", world.options.shared.control_dir);
    for part in [
        "VisibleOptions",
        "SharedOptions",
        &control_dir,
        "observe_timeout: 30s",
        "..",
    ] {
        assert!(shown.contains(part), "{part} missing from {shown}");
    }
}
