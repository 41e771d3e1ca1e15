//! `smoke-entwurf-v2-spawn-live`: the live gate.
//!
//! It drives the library's production dependencies against real OS objects — unix
//! sockets, child processes, timers, signals, lock files, tmux windows, the real `pi` —
//! and prints one line per check and a summary line people paste into commit bodies:
//! `smoke-entwurf-v2-spawn-live: <N> checks passed (real OS primitives)`, or with
//! `, <K> skipped`, or `<P> passed, <F> failed`. `--help` lists the options, `--list`
//! every check (the catalog, `harness::catalog`, is the only list of them).
//!
//! # Layout: three folders, dependencies pointing one way
//!
//! - `harness/`: what runs the checks and says how they went — the command line
//!   (`cli`), the catalog — one table of checks, and the scenarios clap's subcommands
//!   come from — and the real pi runtimes it lists (`catalog`, `pi_runtimes`), the check executor (`runner`), what a run reports (`report`) and the
//!   formats that print it (`output`, `--record` included), what must hold before the
//!   first check (`setup`), the ending signals and the watchdog (`signals`), and the one
//!   owner of every process group and temp dir the run makes (`cleanup`).
//! - `stand_ins/`: the children the checks start, all this binary re-executed — the
//!   resident, the lock racer and the stand-in `pi` (`stand_ins`), the citizen that
//!   speaks the control protocol (`citizen`), the visible `pi` of
//!   the tmux windows (`visible_pi`), the lifeline that ends them with the gate process,
//!   and their typed argv (`args`).
//! - `scenarios/`: the checks, one module per scenario, and what they share (`shared`);
//!   the real-pi scenario split by part (`pi/`: world, session files, fixture, the
//!   checks, the strace judge).
//!
//! `main.rs` wires them; `os` holds the small views of `/proc`, descriptors and sockets
//! that all three use. Scenarios use the harness and the stand-ins' argv; the harness
//! uses the stand-ins' argv only for the hidden `__stand-in` subcommand; the stand-ins
//! use neither. There is no module cycle (`tests/cli/layout.rs` checks it).
//!
//! # Every way out
//!
//! Exit 0 all passed (skips allowed), 1 any failed, 2 usage or setup error, 128+signal
//! when SIGINT, SIGTERM, SIGHUP or SIGQUIT ended the run (130, 143, 129, 131). Whichever
//! way it ends, every process group it started is killed and its temp dirs are removed
//! (a failed check's dir is kept and its path printed; a run a day later removes it), and
//! the output is finished, with every check that finished: TAP `Bail out!`, a JSON
//! summary with `"interrupted": true`, a text line saying so and what the cleanup did, a
//! JUnit `interrupted` testcase in error. tmux clients run in process groups of their own,
//! so a terminal's signal reaches the gate process (this one), not a client
//! mid-command. A check abandoned at its deadline has its groups killed at once.
//! Stand-ins watch the gate process and exit when it dies, SIGKILL included
//! (`stand_ins::lifeline`); dirs a killed run left are swept by the next run
//! (`harness::cleanup::temp_dirs`). Setup problems are found before any check
//! (`harness::setup`). A partial selection is named in the summary line.
//!
//! # Ids
//!
//! Every id names one check. The seven checks of the seed's parity table keep its ids
//! in their labels: `S1.1`–`S1.3` end in `[seed S1]`, `S2.1`–`S2.2` in `[seed S2]`,
//! `S3.1`–`S3.2` in `[seed S3]`; `--only S1` is a usage error naming the three. Hygiene
//! (`H`) runs after whichever scenario was selected.
//!
//! # Test-only flags (hidden)
//!
//! `--inject-failure <ID>` turns the passing check with that id into a FAIL after it
//! ran; `--inject-hang <ID>` makes it hang, after its body ran, until its deadline (what
//! the body started stays alive meanwhile). The CLI tests use them to cover FAIL lines,
//! `not ok`, exit 1 and the per-check deadline. Neither changes what a check verifies
//! when it is not named.

#![warn(clippy::unwrap_used, clippy::expect_used)]
// One module-file style, the library's: a module with sub-modules is `name/mod.rs`.
#![warn(clippy::self_named_module_files)]

mod harness;
mod os;
mod scenarios;
mod stand_ins;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use entwurf_v2_spawn::Backend;

use crate::harness::catalog::{self, Check};
use crate::harness::cli::{Cli, Command, RunOptions};
use crate::harness::output::record::Target;
use crate::harness::output::{Ending, Header};
use crate::harness::pi_runtimes;
use crate::harness::report::{PROGRAM, Selection};
use crate::harness::runner::{Injection, Runner};
use crate::harness::signals::{self, Signals};
use crate::harness::{cleanup, output, setup};
use crate::stand_ins::visible_pi;

fn main() -> ExitCode {
    if stand_ins::is_pi() {
        return stand_ins::pi();
    }
    if let Some(role) = visible_pi::role() {
        return visible_pi::run(role);
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    if let Some(Command::StandIn(stand_in)) = &cli.command {
        return stand_ins::run(&stand_in.role);
    }
    // Held back from here until the handlers are in place (see `Signals::install`).
    let held = Signals::hold();
    let scenario = cli.command.as_ref().and_then(Command::scenario);
    let options = &cli.options;
    // The `--pi` preflights run under the guard, from launchers in a dir of the run's.
    let guarded = match preflight_dir(&options.pi) {
        Ok(guarded) => guarded,
        Err(e) => {
            eprintln!("{PROGRAM}: setup error: {e}");
            return ExitCode::from(2);
        }
    };
    let pi = pi_runtimes::discover(&options.pi, guarded.as_ref().map(|(g, _)| g));
    drop(guarded);
    let pi = match pi {
        Ok(pi) => pi,
        Err(e) => {
            eprintln!("{PROGRAM}: setup error: {e}");
            return ExitCode::from(2);
        }
    };
    let catalog = catalog::Catalog::new(pi.found);
    let only = match setup::check_only(&catalog, &options.only, scenario) {
        Ok(only) => only,
        Err(usage) => {
            eprintln!("{PROGRAM}: {usage}");
            return ExitCode::from(2);
        }
    };
    // `--backend native` asks for the platform's own mechanisms, which only Linux has;
    // elsewhere the portable backend runs. Everything below uses and reports the backend
    // in effect (the checks, the header, `--list`'s skips, JUnit's suites), so `native`
    // in this binary always means the Linux mechanisms.
    let asked: Backend = options.backend.into();
    let backend = asked.effective();
    // A backend other than the one asked for by default is named in the summary line
    // (and so in every record), like a partial selection: its line proves another
    // backend than the gate's.
    let named = (asked != Backend::default()).then(|| backend.as_str());
    if options.not_live {
        // Everything above is what a run checks before its first check: the same
        // arguments are the same usage errors with or without LIVE.
        return not_live(options, scenario, only, backend, named);
    }
    let selection = Selection {
        scenario,
        only,
        backend: named,
    };
    let selected = catalog.select(selection.scenario, &selection.only);
    let euid = nix::unistd::geteuid().as_raw();
    if options.list {
        let listing = setup::Listing {
            checks: &selected,
            euid,
            keep_tmp: options.keep_tmp,
            backend,
            pi_missing: pi.unmet(),
            sockets: cleanup::temp_dirs::socket_root(),
        };
        return match setup::list(&listing, options.format) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(usage) => {
                eprintln!("{PROGRAM}: {usage}");
                ExitCode::from(2)
            }
        };
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("{PROGRAM}: setup error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    // Caught before anything is made (even the setup probe): a signal during setup
    // waits in the stream and ends the run before its first check.
    let signals = {
        let _entered = runtime.enter();
        Signals::install(held)
    };
    let signals = match signals {
        Ok(signals) => signals,
        Err(e) => {
            eprintln!("{PROGRAM}: setup error: cannot catch signals: {e}");
            return ExitCode::from(2);
        }
    };
    let (record, sockets) = match prepare(options, &selected) {
        Ok(prepared) => prepared,
        Err(e) => {
            eprintln!("{PROGRAM}: setup error: {e}");
            return ExitCode::from(2);
        }
    };
    let run = Run {
        selection,
        selected,
        options,
        record: record.as_ref(),
        pi,
        backend,
        sockets,
    };
    let result = runtime.block_on(run.run(signals));
    // A check abandoned at its deadline may still sit in a blocking task; dropping the
    // runtime would wait for it forever.
    runtime.shutdown_timeout(Duration::from_millis(100));
    match result {
        Ok(code) => code,
        // Only the run's own set-up fails this way (before the first check).
        Err(e) => {
            cleanup::cleanup();
            eprintln!("{PROGRAM}: setup error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// The dir the `--pi` preflights' guarded launchers go to (none without `--pi`): short
/// lived, marked with the gate process, and removed once `discover` is done with it.
fn preflight_dir(
    given: &[std::path::PathBuf],
) -> anyhow::Result<Option<(pi_runtimes::Guarded, tempfile::TempDir)>> {
    if given.is_empty() {
        return Ok(None);
    }
    let gate = os::ProcessId::current()
        .ok_or_else(|| anyhow::anyhow!("cannot read this process's start time from /proc"))?;
    let dir = cleanup::make_short_lived_dir(catalog::Scenario::Pi, gate)?;
    let exe =
        std::env::current_exe().map_err(|e| anyhow::anyhow!("this binary's own path: {e}"))?;
    let guarded = pi_runtimes::Guarded {
        dir: dir.path().to_path_buf(),
        exe,
        gate,
    };
    Ok(Some((guarded, dir)))
}

/// `--not-live` (`run.sh` without `LIVE=1`): the skip report in the format asked for.
fn not_live(
    options: &RunOptions,
    scenario: Option<catalog::Scenario>,
    only: Vec<&'static str>,
    backend: Backend,
    named: Option<&'static str>,
) -> ExitCode {
    let selection = Selection {
        scenario,
        only,
        backend: named,
    };
    let header = Header {
        selection,
        total: 0,
        euid: nix::unistd::geteuid().as_raw(),
        deadline: Duration::from_millis(options.check_timeout_ms),
        backend: backend.as_str(),
        started: std::time::SystemTime::now(),
        sockets: cleanup::temp_dirs::socket_root(),
    };
    output::sink(options.format).not_run(&header, NOT_LIVE);
    ExitCode::SUCCESS
}

/// Why a gate without `LIVE=1` runs nothing (SPEC §10's words).
const NOT_LIVE: &str = "set LIVE=1 to run (spawns real children and opens real unix sockets)";

/// A command-line error as the gate's own errors read: one line with the program's
/// prefix (clap's tip, e.g. the option meant, folded into it), then the usage hint; exit
/// 2. `--help` and `--version` are not errors: clap prints them, exit 0.
fn usage_error(e: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        let _ = e.print();
        return ExitCode::SUCCESS;
    }
    let rendered = e.render().to_string();
    let mut lines = rendered.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next().unwrap_or("invalid arguments");
    let mut message = first.strip_prefix("error: ").unwrap_or(first).to_owned();
    for line in rendered.lines().map(str::trim) {
        if let Some(tip) = line.strip_prefix("tip: ") {
            message.push_str(&format!(" ({tip})"));
        } else if line.starts_with("[possible values: ") {
            message.push_str(&format!(" {line}"));
        }
    }
    eprintln!("{PROGRAM}: {message}");
    eprintln!("usage: {PROGRAM} [OPTIONS] [SCENARIO]; try --help");
    ExitCode::from(2)
}

/// Everything that must hold before the first check, then the sweep of dirs left by
/// runs that died (see `cleanup::temp_dirs`). Returns the `--record` target and where
/// the sockets go.
fn prepare(
    options: &RunOptions,
    selected: &[Check],
) -> Result<(Option<Target>, std::path::PathBuf), setup::SetupError> {
    setup::check_proc()?;
    setup::check_temp_dir(selected)?;
    let sockets = setup::check_socket_root()?;
    let record = options
        .record
        .as_deref()
        .map(setup::check_record)
        .transpose()?;
    let swept: Vec<_> = cleanup::temp_dirs::roots()
        .iter()
        .flat_map(|root| cleanup::temp_dirs::sweep(root))
        .collect();
    if !swept.is_empty() {
        eprintln!(
            "{PROGRAM}: removed {} temp dir(s) left by runs that are gone: {}",
            swept.len(),
            swept
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok((record, sockets))
}

/// One run of the selected checks.
struct Run<'a> {
    selection: Selection,
    selected: Vec<Check>,
    options: &'a RunOptions,
    record: Option<&'a Target>,
    pi: pi_runtimes::PiRuntimes,
    backend: Backend,
    sockets: std::path::PathBuf,
}

impl Run<'_> {
    async fn run(self, mut signals: Signals) -> anyhow::Result<ExitCode> {
        let Self {
            selection,
            selected,
            options,
            record,
            pi,
            backend,
            sockets,
        } = self;
        let gate = os::ProcessId::current()
            .ok_or_else(|| anyhow::anyhow!("cannot read our own /proc/<pid>/stat"))?;
        let env = scenarios::Env {
            exe: std::env::current_exe()?,
            gate,
            backend,
            keep_tmp: options.keep_tmp,
            // After the signal streams: the signal driver's descriptors are part of the
            // runtime, not a leak.
            baseline_fds: os::open_fds(),
            pi,
        };
        if options.keep_tmp {
            cleanup::keep_all_temp_dirs();
        }
        let deadline = Duration::from_millis(options.check_timeout_ms);
        // Each unit chains at most two checks, hygiene three more, and a real pi runtime
        // its seven (each with its longer deadline): beyond that only a runtime thread
        // stuck in a system call can explain the wait.
        let format = options.format;
        let pi_chain = selected
            .iter()
            .filter(|c| matches!(c, Check::Pi(..)))
            .map(|c| c.deadline(deadline))
            .max()
            .map_or(Duration::ZERO, |each| {
                let per_runtime = catalog::ROWS
                    .iter()
                    .filter(|row| matches!(row.key, catalog::Key::PerRuntime(_)))
                    .count();
                each * u32::try_from(per_runtime).unwrap_or(u32::MAX)
            });
        signals::start_watchdog(
            deadline * 5 + pi_chain + Duration::from_secs(5),
            move |why| {
                output::abandoned(format, why);
            },
        );

        output::choose_color(options.color);
        let sink = output::sink(options.format);
        let injection = Injection {
            fail: options.inject_failure.clone(),
            hang: options.inject_hang.clone(),
            slow_start: options.inject_slow_start.clone(),
        };
        let total = selected.len();
        let runner = Runner::new(selected, sink, deadline, injection);
        let euid = nix::unistd::geteuid().as_raw();
        runner.with_sink(|s| {
            s.begin(&Header {
                selection: selection.clone(),
                total,
                euid,
                deadline,
                backend: backend.as_str(),
                started: std::time::SystemTime::now(),
                sockets: sockets.clone(),
            })
        });

        let start = Instant::now();
        let interrupted = tokio::select! {
            // A signal that came during setup wins before the first check starts.
            biased;
            why = signals.recv() => Some(why),
            () = scenarios::run(&runner, &env) => None,
        };
        let wall = start.elapsed();
        // Every way out: kill what was started, remove the temp dirs not kept, then
        // finish the output.
        let cleanup = cleanup::cleanup();
        let tally = match interrupted {
            // Every finished result is shown, also those behind a check that was still
            // running: the tally counts them.
            Some(_) => runner.finish_interrupted(),
            None => runner.finish(),
        };
        let ending = Ending {
            selection: selection.clone(),
            tally,
            total,
            wall,
            interrupted,
            cleanup,
        };
        runner.with_sink(|s| s.end(&ending));
        if let Some(why) = interrupted {
            eprintln!(
                "{PROGRAM}: interrupted by {}: {}",
                why.signal,
                ending.cleanup.describe()
            );
            return Ok(ExitCode::from(why.code));
        }
        if let (Some(target), Some(summary)) = (record, ending.summary_line()) {
            // Which real pi the P checks met: the summary line counts checks, not versions.
            let mut pi_versions: Vec<String> = Vec::new();
            for check in runner.selected() {
                if let Check::Pi(runtime, _) = check {
                    let version = runtime.version.to_string();
                    if !pi_versions.contains(&version) {
                        pi_versions.push(version);
                    }
                }
            }
            let entry = output::record::Entry {
                summary,
                scenario: selection.scenario_name(),
                wall,
                euid,
                pi_versions,
            };
            if let Err(e) = output::record::record(target, &entry) {
                eprintln!("{PROGRAM}: --record {}: {e:#}", target.file().display());
                return Ok(ExitCode::FAILURE);
            }
        }
        Ok(if ending.tally.failed == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    }
}
