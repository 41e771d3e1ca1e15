//! What a check needs from the machine or the user running it, and the one rule for
//! when that is missing.
//!
//! The rule: a missing privilege (root) is a skip everywhere — CI runs the gate as root
//! and as an ordinary user, so each run meets its own half. A missing tool (tmux,
//! strace) or real pi runtime is a skip on a laptop, naming what to install, and a
//! failure on CI (`entwurf_ci::on_ci`), which installs everything: a skip there would be
//! a gate that quietly shrank. `--list` and the run say the same words, because both ask
//! [`Needs::unmet`] (or [`Unmet::new`] for the runtimes).

/// What a check needs; without it, see [`Unmet`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// Root: only root can give a socket to another uid.
    Root,
    /// tmux on `PATH`: the visible checks open real tmux windows.
    Tmux,
    /// strace on `PATH`: the P check that proves nothing escapes traces real pi.
    Strace,
}

/// A need this run does not meet: why, and whether that is a failure here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unmet {
    /// What is missing and how to get it, e.g. `tmux is not installed (apt-get install
    /// tmux)`.
    pub why: String,
    /// Set on CI for what CI must have (tools, the real pi): the check fails.
    pub required: bool,
}

impl Unmet {
    /// `why`, required when on CI and `ci_required`.
    pub fn new(why: impl Into<String>, ci_required: bool) -> Self {
        Self {
            why: why.into(),
            required: ci_required && entwurf_ci::on_ci(),
        }
    }

    /// The failure's reason, when [`Unmet::required`]: `required on CI: <why>`.
    pub fn failure(&self) -> String {
        format!("required on CI: {}", self.why)
    }

    /// What `--list` says instead of `runs`: `skips: <why>` or
    /// `fails: required on CI: <why>`, the words the run prints.
    pub fn listing(&self) -> String {
        if self.required {
            format!("fails: {}", self.failure())
        } else {
            format!("skips: {}", self.why)
        }
    }
}

impl Needs {
    /// What a check with this need lacks when run by `euid` here, or `None` when it
    /// runs. Asks the tool itself (`-V`), so it may take a few milliseconds.
    pub fn unmet(self, euid: u32) -> Option<Unmet> {
        match self {
            Self::Root => (euid != 0).then(|| {
                Unmet::new(
                    "needs root to give a socket to another uid (run as root, e.g. in CI)",
                    false,
                )
            }),
            Self::Tmux => tool_missing("tmux"),
            Self::Strace => tool_missing("strace"),
        }
    }
}

/// `<tool> is not installed (apt-get install <tool>)` unless `<tool> -V` runs: the
/// one way to know a tool is there before using it (a tool on PATH that cannot run is
/// as missing as an absent one).
fn tool_missing(tool: &str) -> Option<Unmet> {
    (!runs(tool, "-V")).then(|| {
        Unmet::new(
            format!("{tool} is not installed (apt-get install {tool})"),
            true,
        )
    })
}

/// Whether `program arg` runs and exits 0, in a process group of its own, like every
/// tmux client of the run (see `scenarios::visible`): a terminal's signal must not turn
/// into "tmux is not installed".
fn runs(program: &str, arg: &str) -> bool {
    use std::os::unix::process::CommandExt;
    std::process::Command::new(program)
        .arg(arg)
        .process_group(0)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
