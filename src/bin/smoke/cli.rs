//! The command line (clap). Usage errors exit 2, clap's default.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// The live phase gate of entwurf-v2-spawn: drives the production dependencies against
/// real unix sockets, child processes, timers, signals and lock files, one `ok` line per
/// check. Exit 0 all passed (skips allowed), 1 any failed, 2 usage, 130 interrupted.
#[derive(Debug, Parser)]
#[command(name = "smoke-entwurf-v2-spawn-live", version)]
pub struct Cli {
    /// Which scenario to run (default: all).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Shared options.
    #[command(flatten)]
    pub options: RunOptions,
}

/// Options accepted before or after the scenario name.
#[derive(Debug, Clone, Args)]
pub struct RunOptions {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text, global = true)]
    pub format: Format,
    /// Colors in the text format (auto: only on a terminal; NO_COLOR and CLICOLOR_FORCE
    /// are honored).
    #[arg(long, value_enum, default_value_t = ColorWhen::Auto, global = true)]
    pub color: ColorWhen,
    /// Append a dated entry with the summary line under `## Live smoke record` in FILE.
    #[arg(long, value_name = "FILE", global = true)]
    pub record: Option<PathBuf>,
    /// Keep the temp dirs (their paths go to stderr).
    #[arg(long, global = true)]
    pub keep_tmp: bool,
    /// Deadline of each check in milliseconds: a check still running then is a FAIL.
    #[arg(long, value_name = "MS", default_value_t = 10_000, global = true,
          value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub check_timeout_ms: u64,
    /// Which observation backend the library uses: native (Linux: pidfd, inotify,
    /// O_PATH) or portable (SIGCHLD + waitid, lstat → connect → peer uid, backoff poll
    /// on Linux), so the live gate proves the code other platforms run.
    #[arg(long, value_enum, default_value_t = BackendArg::Native, global = true)]
    pub backend: BackendArg,
    /// Test only: fail every check with this id after it ran (exercises FAIL paths).
    #[arg(long, value_name = "ID", hide = true, global = true)]
    pub inject_failure: Vec<String>,
    /// Test only: make every check with this id hang (exercises the per-check deadline).
    #[arg(long, value_name = "ID", hide = true, global = true)]
    pub inject_hang: Vec<String>,
}

/// `--backend`: the library's [`Backend`](entwurf_v2_spawn::Backend), by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendArg {
    /// The platform's own mechanisms (the portable ones where there are none).
    Native,
    /// POSIX only.
    Portable,
}

impl From<BackendArg> for entwurf_v2_spawn::Backend {
    fn from(arg: BackendArg) -> Self {
        match arg {
            BackendArg::Native => Self::Native,
            BackendArg::Portable => Self::Portable,
        }
    }
}

/// The scenarios, plus the hidden stand-ins this binary plays for itself.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Every scenario, then hygiene (the default).
    All,
    /// Control socket observation (S1).
    Socket,
    /// Real child processes (S2).
    Child,
    /// The watcher over production dependencies (S3).
    Watcher,
    /// Real lock files (L).
    Lock,
    /// Resume end to end with a stand-in `pi` (R).
    Resume,
    /// Internal: this binary re-executed as a child of the smoke.
    #[command(name = "__stand-in", hide = true)]
    StandIn(StandIn),
}

/// A scenario the runner can select.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scenario {
    /// `socket`.
    Socket,
    /// `child`.
    Child,
    /// `watcher`.
    Watcher,
    /// `lock`.
    Lock,
    /// `resume`.
    Resume,
}

impl Scenario {
    /// The subcommand name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Socket => "socket",
            Self::Child => "child",
            Self::Watcher => "watcher",
            Self::Lock => "lock",
            Self::Resume => "resume",
        }
    }
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Human text with per-check times.
    Text,
    /// TAP version 13 (accepted by Debian's `prove`).
    Tap,
    /// JSON Lines: one object per check, then a summary object.
    Json,
}

/// When to color the text format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorWhen {
    /// On a terminal, unless NO_COLOR; CLICOLOR_FORCE forces.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// Hidden stand-in roles.
#[derive(Debug, Args)]
pub struct StandIn {
    /// Which role.
    #[command(subcommand)]
    pub role: StandInRole,
}

/// The stand-in roles (the stand-in `pi` is recognized by argv\[0\], see `stand_ins`).
#[derive(Debug, Subcommand)]
pub enum StandInRole {
    /// A resident child: exits 0 on SIGTERM, otherwise waits.
    Resident(ResidentArgs),
    /// One of the processes racing for a lock.
    LockRacer(RacerArgs),
}

/// Variants of the stand-in resident.
#[derive(Debug, Clone, Args)]
pub struct ResidentArgs {
    /// Keep SIGTERM blocked forever (only SIGKILL ends it).
    #[arg(long)]
    pub ignore_term: bool,
    /// Exit at once with this code.
    #[arg(long, value_name = "CODE")]
    pub exit_code: Option<u8>,
    /// Start a grandchild (this binary again, as a resident ignoring SIGTERM) and write
    /// its pid into the ready file.
    #[arg(long)]
    pub grandchild: bool,
    /// Listen on this unix socket path (any length)...
    #[arg(long, value_name = "PATH")]
    pub listen: Option<PathBuf>,
    /// ...after this many milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub listen_after_ms: u64,
    /// Create this file once signals are set up (content: the grandchild pid, if any).
    #[arg(long, value_name = "FILE")]
    pub ready: Option<PathBuf>,
    /// Exit 3 after this long no matter what: a safety net so a smoke killed with
    /// SIGKILL cannot leave stand-ins behind forever.
    #[arg(long, value_name = "MS", default_value_t = 120_000)]
    pub max_life_ms: u64,
}

/// A lock racer: waits for the start line, then calls `lock::acquire` once.
#[derive(Debug, Clone, Args)]
pub struct RacerArgs {
    /// The lock dir.
    #[arg(long)]
    pub dir: PathBuf,
    /// The garden id.
    #[arg(long)]
    pub gid: String,
    /// Created when this racer is ready to go.
    #[arg(long)]
    pub ready: PathBuf,
    /// Appears when every racer is ready.
    #[arg(long)]
    pub go: PathBuf,
    /// Appears when every racer has a result; until then a winner keeps running, so a
    /// late racer meets a live holder rather than a dead one it may rightly reclaim.
    #[arg(long)]
    pub done: PathBuf,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }
}
