//! The command line (clap). Usage errors exit 2, clap's default.
//!
//! The stand-ins' arguments are typed with the stand-ins (`stand_ins::args`); this
//! parser only embeds them as the hidden `__stand-in` subcommand.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::harness::catalog::Scenario;
use crate::stand_ins::args::StandInRole;

/// The live gate of entwurf-v2-spawn: drives the production dependencies against
/// real unix sockets, child processes, timers, signals and lock files, one `ok` line per
/// check. Exit 0 all passed (skips allowed), 1 any failed, 2 usage or setup error,
/// 128+signal when ended by a signal (130 INT, 143 TERM, 129 HUP, 131 QUIT).
#[derive(Debug, Parser)]
#[command(name = "smoke-entwurf-v2-spawn-live", version = crate::harness::report::VERSION)]
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
    /// Colors in the text format. auto: on a terminal unless TERM=dumb; CLICOLOR_FORCE
    /// (not 0) forces them on, also with TERM=dumb or no terminal; NO_COLOR turns them
    /// off and beats CLICOLOR_FORCE.
    #[arg(long, value_enum, default_value_t = ColorWhen::Auto, global = true)]
    pub color: ColorWhen,
    /// Add a dated entry with the summary line under `## Live smoke record` in FILE
    /// (checked before any check runs; written atomically under a lock).
    #[arg(long, value_name = "FILE", global = true)]
    pub record: Option<PathBuf>,
    /// Print every check (id, scenario, label, and whether it skips for this user) and
    /// run nothing.
    #[arg(long, global = true)]
    pub list: bool,
    /// Run only the check with this id (repeatable), then the hygiene checks. A check
    /// that inspects another's run brings it along (R2 needs R1). Every id names one
    /// check; the seed's S1, S2, S3 are S1.1–S1.3, S2.1–S2.2, S3.1–S3.2.
    #[arg(long, value_name = "ID", global = true)]
    pub only: Vec<String>,
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
    /// A real `pi` runtime for the `pi` scenario (repeatable; its `--version` is asked
    /// first). Default: the launchers `./run.sh install-pi` wrote (`$ENTWURF_REAL_PI_DIR`,
    /// else the checkout's `target/real-pi`).
    #[arg(long, value_name = "PATH", global = true)]
    pub pi: Vec<PathBuf>,
    /// run.sh only, when `LIVE` is not 1: check the arguments like a run (a usage error
    /// is exit 2 whatever `LIVE` says), then print the skip report in the `--format`
    /// asked for and exit 0, running nothing.
    #[arg(long, hide = true, global = true)]
    pub not_live: bool,
    /// Test only: fail every check with this id after it ran (exercises FAIL paths).
    #[arg(long, value_name = "ID", hide = true, global = true)]
    pub inject_failure: Vec<String>,
    /// Test only: make every check with this id hang after its body ran, until its
    /// deadline (exercises the per-check deadline, and keeps its children alive).
    #[arg(long, value_name = "ID", hide = true, global = true)]
    pub inject_hang: Vec<String>,
    /// Test only: the stand-ins the check with this id starts take 3.5 s to start, as
    /// on a loaded machine (exercises "no bound inside a check but its deadline").
    #[arg(long, value_name = "ID", hide = true, global = true)]
    pub inject_slow_start: Vec<String>,
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
    /// One scenario: its subcommands come from the catalog's [`Scenario`].
    #[command(flatten)]
    Scenario(Scenario),
    /// Internal: this binary re-executed as a child of the live gate.
    #[command(name = "__stand-in", hide = true)]
    StandIn(StandIn),
}

impl Command {
    /// The scenario this subcommand selects (`None`: all, or a stand-in).
    pub fn scenario(&self) -> Option<Scenario> {
        match self {
            Self::All | Self::StandIn(_) => None,
            Self::Scenario(scenario) => Some(*scenario),
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
    /// JSON Lines: a start object, one object per check, then a summary object.
    Json,
    /// JUnit XML (one testsuite per scenario), for CI test report pages.
    Junit,
}

/// When to color the text format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorWhen {
    /// On a terminal (not TERM=dumb); CLICOLOR_FORCE forces on, NO_COLOR off (and wins).
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::os::ProcessId;
    use crate::stand_ins::args::{
        CitizenArgs, GuardArgs, Misbehaviour, RacerArgs, ResidentArgs, WatchArgs,
    };
    use clap::CommandFactory;
    use std::ffi::OsString;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    /// Clap derives both the subcommands and the names from [`Scenario`]; this holds
    /// its two derives (subcommand, value) to the same spelling.
    #[test]
    fn every_scenario_is_a_subcommand_of_its_name() {
        for &scenario in Scenario::all() {
            let cli = Cli::try_parse_from(["smoke", scenario.name()]).expect("parses");
            let parsed = cli.command.as_ref().and_then(Command::scenario);
            assert_eq!(parsed, Some(scenario));
        }
    }

    fn parse_stand_in(args: Vec<OsString>) -> StandInRole {
        let mut argv = vec![OsString::from("smoke")];
        argv.extend(args);
        match Cli::try_parse_from(argv).expect("parses").command {
            Some(Command::StandIn(s)) => s.role,
            other => panic!("not a stand-in: {other:?}"),
        }
    }

    #[test]
    fn stand_in_command_lines_parse_back_to_the_same_struct() {
        let gate = ProcessId {
            pid: 42,
            start_time: 7,
        };
        let lifeline = Some(gate);
        let resident = ResidentArgs {
            lifeline,
            ignore_term: true,
            exit_code: Some(7),
            grandchild: true,
            listen: Some("/tmp/a b.sock".into()),
            listen_after_ms: 30,
            ready: Some("/tmp/r".into()),
            max_life_ms: Some(5),
            become_uid: Some(65534),
            start_delay_ms: 3500,
        };
        match parse_stand_in(resident.to_args()) {
            StandInRole::Resident(parsed) => assert_eq!(parsed, resident),
            other => panic!("{other:?}"),
        }
        match parse_stand_in(ResidentArgs::default().to_args()) {
            StandInRole::Resident(parsed) => assert_eq!(parsed, ResidentArgs::default()),
            other => panic!("{other:?}"),
        }
        let racer = RacerArgs {
            lifeline,
            dir: "/d".into(),
            gid: "g".into(),
            go: "/g".into(),
            done: "/x".into(),
        };
        match parse_stand_in(racer.to_args()) {
            StandInRole::LockRacer(parsed) => assert_eq!(parsed, racer),
            other => panic!("{other:?}"),
        }
        let guard = GuardArgs {
            lifeline: gate,
            program: vec!["/bin/pi".into(), "--version".into(), "-e".into()],
        };
        match parse_stand_in(guard.to_args()) {
            StandInRole::Guard(parsed) => assert_eq!(parsed, guard),
            other => panic!("{other:?}"),
        }
        let watch = WatchArgs { lifeline: gate };
        match parse_stand_in(watch.to_args()) {
            StandInRole::GuardWatch(parsed) => assert_eq!(parsed, watch),
            other => panic!("{other:?}"),
        }
        for misbehave in [Misbehaviour::None, Misbehaviour::DieAfterInfo] {
            let citizen = CitizenArgs {
                lifeline,
                listen: "/tmp/c d.sock".into(),
                session_id: "20260613T000000-d00001".into(),
                record: "/r.record".into(),
                misbehave,
            };
            match parse_stand_in(citizen.to_args()) {
                StandInRole::Citizen(parsed) => assert_eq!(parsed, citizen),
                other => panic!("{other:?}"),
            }
        }
    }
}
