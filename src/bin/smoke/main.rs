//! `smoke-entwurf-v2-spawn-live`: the live phase gate (docs/design.md §10).
//!
//! It drives the library's production dependencies against real OS objects — unix
//! sockets, child processes, timers, signals, lock files — and prints one line per check
//! and a summary line people paste into commit bodies:
//! `smoke-entwurf-v2-spawn-live: 31 checks passed (real OS primitives)`, or with
//! `, <K> skipped`, or `<P> passed, <F> failed`.
//!
//! `smoke-entwurf-v2-spawn-live [OPTIONS] [all|socket|child|watcher|lock|resume]`;
//! `--format text|tap|json`, `--color auto|always|never`, `--record FILE`, `--keep-tmp`,
//! `--check-timeout-ms MS` (default 10000), `--backend native|portable` (the library's
//! observation backend; portable is POSIX only, so Linux proves what other platforms
//! run: a check it cannot pass there skips naming the limit). Exit 0 all passed (skips
//! allowed), 1 any failed, 2 usage, 130 on SIGINT/SIGTERM (every started child group is
//! SIGKILLed and the temp dirs are removed first).
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
//! | S1.7 | socket | a socket path longer than 108 bytes → resolves |
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
//! | L8 | lock | a holder pid answering EPERM → conflict, kept (non-root only, else `skip`) |
//! | R1 | resume | resume: saved session → identity → argv → socket-alive → lock file released |
//! | R2 | resume | resume: the resident is still alive after the release, then cleaned up |
//! | H1 | hygiene | no descriptor leaked since the start |
//! | H2 | hygiene | no child left unreaped, no group member left alive |
//! | H3 | hygiene | every temp dir removed (`skip` with `--keep-tmp`) |
//!
//! # Test-only flags (hidden)
//!
//! `--inject-failure <ID>` turns every passing check with that id into a FAIL after it
//! ran; `--inject-hang <ID>` makes those checks hang until their deadline. The CLI tests
//! use them to cover FAIL lines, `not ok`, exit 1 and the per-check deadline. Neither
//! changes what a check verifies when it is not named.
//!
//! # Stand-ins
//!
//! Every child is this binary re-executed (hidden `__stand-in` subcommand, or argv\[0\]
//! `pi`): see `stand_ins`.

#![warn(clippy::unwrap_used, clippy::expect_used)]

mod catalog;
mod cli;
mod os;
mod output;
mod registry;
mod runner;
mod scenarios;
mod stand_ins;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use tokio::signal::unix::{SignalKind, signal};

use crate::catalog::Check;
use crate::cli::{Cli, Command, Format, RunOptions, Scenario};
use crate::output::Header;
use crate::runner::{Injection, Runner};

fn main() -> ExitCode {
    if stand_ins::is_pi() {
        return stand_ins::pi();
    }
    let cli = Cli::parse();
    let scenario = match &cli.command {
        Some(Command::StandIn(stand_in)) => return stand_ins::run(&stand_in.role),
        None | Some(Command::All) => None,
        Some(Command::Socket) => Some(Scenario::Socket),
        Some(Command::Child) => Some(Scenario::Child),
        Some(Command::Watcher) => Some(Scenario::Watcher),
        Some(Command::Lock) => Some(Scenario::Lock),
        Some(Command::Resume) => Some(Scenario::Resume),
    };
    scenarios::select_backend(cli.options.backend.into());
    if scenarios::backend() != entwurf_v2_spawn::Backend::Native {
        // On stderr, so every output format stays as it is; a pasted summary needs it.
        eprintln!(
            "smoke-entwurf-v2-spawn-live: backend {}",
            scenarios::backend()
        );
    }
    match run(scenario, &cli.options) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("smoke-entwurf-v2-spawn-live: {e:#}");
            registry::bail_out(1, "setup failed")
        }
    }
}

/// Ctrl-C or SIGTERM: a TAP consumer is told the stream ends early (`Bail out!`), then
/// every started child group is killed and the temp dirs go.
fn interrupted(format: Format, why: &str) -> ! {
    if format == Format::Tap {
        println!("Bail out! {why}");
    }
    registry::bail_out(130, why)
}

fn run(scenario: Option<Scenario>, options: &RunOptions) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(async {
        // Before the descriptor baseline: the signal driver's own descriptors are part
        // of the runtime, not a leak.
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        let exe = std::env::current_exe()?;
        let env = scenarios::Env {
            exe,
            keep_tmp: options.keep_tmp,
            baseline_fds: os::open_fds(),
        };
        let selected: Vec<Check> = Check::ALL
            .into_iter()
            .filter(|c| c.selected_by(scenario))
            .collect();
        let deadline = Duration::from_millis(options.check_timeout_ms);
        // Each unit chains at most two checks, hygiene three more: beyond that only a
        // runtime thread stuck in a system call can explain the wait.
        registry::start_watchdog(deadline * 5 + Duration::from_secs(5));

        let sink = output::sink(options.format, output::use_color(options.color));
        let injection = Injection {
            fail: options.inject_failure.clone(),
            hang: options.inject_hang.clone(),
        };
        let runner = Runner::new(selected, sink, deadline, injection);
        let name = scenario.map_or("all", Scenario::name);
        let total = Check::ALL
            .iter()
            .filter(|c| c.selected_by(scenario))
            .count();
        let euid = nix::unistd::geteuid().as_raw();
        runner.with_sink(|s| {
            s.begin(&Header {
                scenario: name,
                total,
                euid,
                deadline,
            })
        });

        let start = Instant::now();
        tokio::select! {
            () = scenarios::run(&runner, &env) => {}
            _ = interrupt.recv() => interrupted(options.format, "interrupted (SIGINT)"),
            _ = terminate.recv() => interrupted(options.format, "terminated (SIGTERM)"),
        }
        let wall = start.elapsed();
        let tally = runner.finish();
        runner.with_sink(|s| s.summary(&tally, wall));
        if let Some(file) = &options.record {
            let entry = output::record::Entry {
                summary: tally.summary_line(),
                scenario: name,
                wall,
                euid: nix::unistd::geteuid().as_raw(),
            };
            if let Err(e) = output::record::record(file, &entry) {
                eprintln!("smoke-entwurf-v2-spawn-live: --record: {e:#}");
                return Ok(ExitCode::FAILURE);
            }
        }
        Ok(if tally.failed == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    });
    // A check abandoned at its deadline may still sit in a blocking task; dropping the
    // runtime would wait for it forever.
    runtime.shutdown_timeout(Duration::from_millis(100));
    result
}
