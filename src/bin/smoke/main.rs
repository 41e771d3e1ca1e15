//! `smoke-entwurf-v2-spawn-live`: the live phase gate.
//!
//! It drives the library's production dependencies against real OS objects — unix
//! sockets, child processes, timers, signals, lock files — and prints one line per check
//! and a summary line people paste into commit bodies:
//! `smoke-entwurf-v2-spawn-live: 31 checks passed (real OS primitives)`, or with
//! `, <K> skipped`, or `<P> passed, <F> failed`.
//!
//! `smoke-entwurf-v2-spawn-live [OPTIONS] [all|socket|child|watcher|lock|resume|visible]`;
//! `--format text|tap|json|junit`, `--color auto|always|never`, `--record FILE`,
//! `--keep-tmp`, `--check-timeout-ms MS` (default 10000), `--list`, `--only ID`,
//! `--backend native|portable` (the library's observation backend; portable is POSIX
//! only, so Linux proves what other platforms run: a check it cannot pass there skips
//! naming the limit).
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
//! so a terminal's signal reaches the gate process, not a client mid-command.
//! A check abandoned at its deadline has its groups killed at once. Stand-ins watch the
//! gate process and exit when it dies, SIGKILL included (`stand_ins`); dirs a killed run left
//! are swept by the next run (`tmp`). Setup problems are found before any check
//! (`setup`). A partial selection is named in the summary line.
//!
//! # Checks
//!
//! The seven seed checks keep their ids (`S1` ×3, `S2` ×2, `S3` ×2). Hygiene (`H`) runs
//! after whichever scenario was selected.
//!
//! | id | scenario | check |
//! | --- | --- | --- |
//! | S1 | socket | a real listening unix socket → await_socket_alive resolves (connectable) |
//! | S1 | socket | a symlink at the socket path → forged reject (never connected) |
//! | S1 | socket | an absent socket → waits, then cancellation settles it (no hang) |
//! | S1.4 | socket | a regular file at the socket path → forged reject |
//! | S1.5 | socket | a stale socket file (nobody listening) → keeps waiting, resolves once a listener appears |
//! | S1.6 | socket | a listener with a full accept backlog → indeterminate, keeps waiting, never dead |
//! | S1.7 | socket | a socket path longer than sun_path's 107 bytes → resolves (native only, else `skip`) |
//! | S1.8 | socket | a socket owned by another uid → forged reject (root only, else `skip`) |
//! | S2 | child | spawn_child resolves once the real process started |
//! | S2 | child | terminate → await_child_exit observes the exit (code 0, or killed by the signal) |
//! | S2.3 | child | a child that exits before anyone awaits it → exit observed |
//! | S3 | watcher | timeout → terminate → child-exited (real timer + real child + watcher) |
//! | S3 | watcher | lock released exactly once on the observed exit |
//! | S3.3 | watcher | a missing program → spawn-start-failed, lock released exactly once |
//! | S3.4 | watcher | a child ignoring SIGTERM → SIGKILL after the term grace, exit observed |
//! | S3.5 | watcher | a grandchild ignoring SIGTERM → no survivor in the group after the kill |
//! | S3.6 | watcher | a child that listens late → socket-alive, lock released, resident lives on |
//! | S3.7 | watcher | a forged socket path → backstop terminates → child-exited, lock released |
//! | L1 | lock | acquire writes the shared claim (one JSON line, 0600 file, 0700 dir) |
//! | L2 | lock | a held lock → conflict with holder evidence |
//! | L3 | lock | release is nonce-guarded: a successor's lock is never removed |
//! | L4 | lock | a holder pid dead on this host → reclaimed |
//! | L5 | lock | a dead holder pid on another host → conflict, kept |
//! | L6 | lock | a corrupt, empty or wrong-gid lock → conflict, never deleted |
//! | L7 | lock | 8 processes racing for one lock → exactly one winner |
//! | L8 | lock | a holder pid answering EPERM → conflict, kept (as root: a holder running as uid 65534, acquired on a thread without `CAP_KILL`) |
//! | R1 | resume | resume: saved session → identity → argv → socket-alive → lock file released |
//! | R2 | resume | resume: the resident is still alive after the release, then cleaned up |
//! | V1 | visible | stand-in pi binds in a tmux window → socket-alive in ms, lock released, window still open |
//! | V2 | visible | stand-in pi exits at once → pane-exited in ms, lock released |
//! | V3 | visible | a live socket → refused (target-live), no window |
//! | V4 | visible | a full accept backlog → refused (indeterminate), no window |
//! | V5 | visible | a symlink at the socket path → refused (address conflict), no window |
//! | V6 | visible | lock held → refused, no window, the holder's lock kept |
//! | V7 | visible | a cwd holding a tmux command substitution → refused, no window, nothing executed |
//! | V8 | visible | the private tmux server, its windows and stand-ins are gone afterwards |
//! | H1 | hygiene | no descriptor leaked since the start |
//! | H2 | hygiene | no child left unreaped, no group member left alive |
//! | H3 | hygiene | every temp dir removed (`skip` with `--keep-tmp`) |
//!
//! # Test-only flags (hidden)
//!
//! `--inject-failure <ID>` turns every passing check with that id into a FAIL after it
//! ran; `--inject-hang <ID>` makes those checks hang, after their body ran, until their
//! deadline (what the body started stays alive meanwhile). The CLI tests
//! use them to cover FAIL lines, `not ok`, exit 1 and the per-check deadline. Neither
//! changes what a check verifies when it is not named.
//!
//! # Stand-ins
//!
//! Every child is this binary re-executed (hidden `__stand-in` subcommand, or argv\[0\]
//! `pi`): see `stand_ins`; in tmux windows, argv\[0\] `pi-visible` or `pi-visible-exits`:
//! see `visible_pi`. The V checks skip when tmux is not installed.

#![warn(clippy::unwrap_used, clippy::expect_used)]

mod harness;
mod os;
mod scenarios;
mod stand_ins;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use entwurf_v2_spawn::Backend;

use crate::harness::catalog::Check;
use crate::harness::cli::{Cli, Command, RunOptions};
use crate::harness::output::record::Target;
use crate::harness::output::{Ending, Header};
use crate::harness::pi_runtimes;
use crate::harness::report::{PROGRAM, Selection};
use crate::harness::runner::{Injection, Runner};
use crate::harness::signals::{self, Signals};
use crate::harness::{catalog, cleanup, output, setup};
use crate::stand_ins::visible_pi;

fn main() -> ExitCode {
    if stand_ins::is_pi() {
        return stand_ins::pi();
    }
    if let Some(role) = visible_pi::role() {
        return visible_pi::run(role);
    }
    let cli = Cli::parse();
    if let Some(Command::StandIn(stand_in)) = &cli.command {
        return stand_ins::run(&stand_in.role);
    }
    // Held back from here until the handlers are in place (see `Signals::install`).
    let held = Signals::hold();
    let scenario = cli.command.as_ref().and_then(Command::scenario);
    let options = &cli.options;
    let pi = match pi_runtimes::discover(&options.pi) {
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
    let backend: Backend = options.backend.into();
    // A non-default backend is named in the summary line (and so in every record), like
    // a partial selection: its line proves another backend than the gate's.
    let selection = Selection {
        scenario,
        only,
        backend: (backend != Backend::default()).then(|| backend.as_str()),
    };
    let selected = catalog.select(selection.scenario, &selection.only);
    let euid = nix::unistd::geteuid().as_raw();
    if options.list {
        let listing = setup::Listing {
            checks: &selected,
            euid,
            keep_tmp: options.keep_tmp,
            backend,
            pi_missing: &pi.missing,
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
    let record = match prepare(options, &selected) {
        Ok(record) => record,
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

/// Everything that must hold before the first check, then the sweep of dirs left by
/// runs that died (see `cleanup::temp_dirs`).
fn prepare(options: &RunOptions, selected: &[Check]) -> Result<Option<Target>, setup::SetupError> {
    setup::check_proc()?;
    let root = setup::check_temp_dir(selected)?;
    let record = options
        .record
        .as_deref()
        .map(setup::check_record)
        .transpose()?;
    let swept = cleanup::temp_dirs::sweep(&root);
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
    Ok(record)
}

/// One run of the selected checks.
struct Run<'a> {
    selection: Selection,
    selected: Vec<Check>,
    options: &'a RunOptions,
    record: Option<&'a Target>,
    pi: pi_runtimes::PiRuntimes,
    backend: Backend,
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
                each * u32::try_from(pi_runtimes::PiCheck::ALL.len()).unwrap_or(u32::MAX)
            });
        signals::start_watchdog(
            deadline * 5 + pi_chain + Duration::from_secs(5),
            move |why| {
                output::abandoned(format, why);
            },
        );

        let sink = output::sink(options.format, output::use_color(options.color));
        let injection = Injection {
            fail: options.inject_failure.clone(),
            hang: options.inject_hang.clone(),
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
            let entry = output::record::Entry {
                summary,
                scenario: selection.scenario_name(),
                wall,
                euid,
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
