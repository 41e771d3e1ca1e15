//! `cargo bench --bench observe [-- [SECTION...] [--quick] [--trials N] [--scale N] [--seed S]]`
//!
//! Measures how promptly and how cheaply the crate observes: socket-alive detection
//! against fixed-interval poll baselines (same probe, same run), terminate/kill → exit
//! observed, spawn → handle, idle CPU while waiting, N concurrent watchers over the
//! production dependencies, and a visible resume's observation in a real tmux window
//! against a 500 ms poll, and launches of the real `pi` (launch → socket-alive, the
//! library's share of it, and a 500 ms poll on the same launches). Sections: `detection`,
//! `child` (spawn, terminate, kill), `idle`, `scale`, `visible` (skipped without tmux),
//! `real-pi` (skipped without `./run.sh install-pi`; `--launches N` per version, default
//! 20), `dispatch` (a fire-and-forget dispatch to a live receiver, decision → ack, and
//! the library's share of it); none named = all. `--quick` runs fewer trials (a smoke of the bench,
//! not numbers to quote). Prints markdown tables (docs/performance.md).
//!
//! The binary doubles as the stand-in child (`--stand-in`, see `standin.rs`).
//!
//! Linux only (signalfd, `prctl`, per-thread rusage, `/proc`): it compares the native
//! backend with the portable one on the same machine. Elsewhere it builds (so the
//! cross-target clippy covers it) and says so when run.

#[cfg(target_os = "linux")]
mod child;
#[cfg(target_os = "linux")]
mod detection;
#[cfg(target_os = "linux")]
mod dispatch;
#[cfg(target_os = "linux")]
mod idle;
#[cfg(target_os = "linux")]
mod real_pi;
#[cfg(target_os = "linux")]
mod scale;
#[cfg(target_os = "linux")]
mod standin;
#[cfg(target_os = "linux")]
mod stats;
#[cfg(target_os = "linux")]
mod sys;
#[cfg(target_os = "linux")]
mod visible;

#[cfg(target_os = "linux")]
use std::time::{Duration, Instant};

#[cfg(target_os = "linux")]
use stats::{Row, fmt, print_table, ratio};

#[cfg(target_os = "linux")]
struct Args {
    sections: Vec<String>,
    quick: bool,
    trials: Option<usize>,
    scale: Option<usize>,
    launches: Option<usize>,
    seed: Option<u64>,
}

#[cfg(target_os = "linux")]
fn parse_args(args: &[String]) -> Args {
    let mut a = Args {
        sections: Vec::new(),
        quick: std::env::var_os("OBSERVE_QUICK").is_some(),
        trials: None,
        scale: None,
        launches: None,
        seed: None,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = || it.next().and_then(|v| v.parse().ok());
        match arg.as_str() {
            "--quick" => a.quick = true,
            "--trials" => a.trials = value().map(|v: u64| v as usize),
            "--scale" => a.scale = value().map(|v: u64| v as usize),
            "--launches" => a.launches = value().map(|v: u64| v as usize),
            "--seed" => a.seed = value(),
            // cargo bench passes --bench to harness-less benches.
            "--bench" => {}
            s if s.starts_with('-') => {
                eprintln!("unknown flag {s}");
                std::process::exit(2);
            }
            s => a.sections.push(s.to_string()),
        }
    }
    const SECTIONS: [&str; 7] = [
        "detection",
        "child",
        "idle",
        "scale",
        "visible",
        "real-pi",
        "dispatch",
    ];
    for s in &a.sections {
        if !SECTIONS.contains(&s.as_str()) {
            eprintln!("unknown section {s} ({})", SECTIONS.join(", "));
            std::process::exit(2);
        }
    }
    a
}

#[cfg(target_os = "linux")]
fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
            })
        })
        .unwrap_or_else(|| "?".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!(
        "{cores} cores, {cpu}, Linux {}, loadavg {}",
        kernel.trim(),
        loadavg()
    )
}

/// The 1, 5 and 15 minute load averages.
#[cfg(target_os = "linux")]
fn loadavg() -> String {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    load.split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The `real-pi` section's table and counts; true when a launch failed or a process
/// was left behind.
#[cfg(target_os = "linux")]
fn print_real_pi(n: usize, load_after: &str, r: &real_pi::Report) -> bool {
    println!();
    println!(
        "## real pi: spawn-bg resume, {n} launches per version (ms, CLOCK_MONOTONIC; loadavg at the end {load_after})"
    );
    println!();
    println!("| pi | measurement | n | p50 | p90 | p99 | max | mean |");
    println!("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for v in &r.versions {
        for row in &v.rows {
            println!(
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                v.version,
                row.variant,
                row.ms.len(),
                fmt(row.p50()),
                fmt(row.pct(0.90)),
                fmt(row.p99()),
                fmt(row.max()),
                fmt(row.mean())
            );
        }
    }
    println!();
    let mut failed = r.leftovers != 0;
    for v in &r.versions {
        let [lib, poll, share, poll_share] = [&v.rows[0], &v.rows[1], &v.rows[3], &v.rows[5]];
        let (floor, gap) = (&v.rows[real_pi::FLOOR], &v.rows[real_pi::GAP]);
        // The bind → listen gap beside the share, per launch: does a gap in which a
        // connect is refused cost the share a timer tick?
        let (wide, narrow): (Vec<_>, Vec<_>) = v.pairs.iter().partition(|(g, _)| *g >= 0.1);
        let p50 = |xs: &[&(f64, f64)]| {
            Row::new("real-pi", "", xs.iter().map(|(_, share)| *share).collect()).p50()
        };
        println!(
            "- pi {}: the library's share − the floor (same run): p50 {} ms, p99 {} ms (p50 within 0.3 ms: {}; share p99 ≤ 2 ms: {}); node's bind() → listen() gap p50 {} p90 {} max {} ms; share p50 on the {} launch(es) with a gap ≥ 0.1 ms: {} ms, on the {} with a shorter gap: {} ms",
            v.version,
            fmt(share.p50() - floor.p50()),
            fmt(share.p99() - floor.p99()),
            if share.p50() - floor.p50() <= 0.3 {
                "met"
            } else {
                "MISSED"
            },
            if share.p99() <= 2.0 { "met" } else { "MISSED" },
            fmt(gap.p50()),
            fmt(gap.pct(0.90)),
            fmt(gap.max()),
            wide.len(),
            fmt(p50(&wide)),
            narrow.len(),
            fmt(p50(&narrow)),
        );
        println!(
            "  per launch (bind() → listen() gap, share), ms: {}",
            v.pairs
                .iter()
                .map(|(g, share)| format!("({g:.3}, {share:.3})"))
                .collect::<Vec<_>>()
                .join(" ")
        );
        println!(
            "- pi {}: 500 ms poll / library, launch → seen: p50 {} p99 {}; listen → seen (poll / library's share): p50 {} p99 {}; the library's share ≤ 1 ms at p99: {}; {} stop(s) inside listen() (share = upper bound); release → returned p50 {} p99 {} ms; inside pi's listen() p50 {} max {} ms; the poll missed the socket on {} launch(es); calibration (fixture's stamp − the one after listen()): {}; {} failure(s){}; turns in the session after the run: {}",
            v.version,
            ratio(poll.p50(), lib.p50()),
            ratio(poll.p99(), lib.p99()),
            ratio(poll_share.p50(), share.p50()),
            ratio(poll_share.p99(), share.p99()),
            if share.p99() <= 1.0 { "met" } else { "MISSED" },
            v.negative,
            fmt(v.release.p50()),
            fmt(v.release.p99()),
            fmt(v.in_listen.p50()),
            fmt(v.in_listen.max()),
            v.poll_missed,
            match &v.calibration {
                Ok(ms) => format!("{} ms", fmt(*ms)),
                Err(e) => format!("failed ({e})"),
            },
            v.failures.len(),
            v.failures
                .first()
                .map_or(String::new(), |f| format!(", first: {f}")),
            v.turns
        );
        failed |= !v.failures.is_empty();
    }
    println!(
        "- processes left in any resident's group after the run: {}",
        r.leftovers
    );
    failed
}

#[cfg(target_os = "linux")]
fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.first().map(String::as_str) == Some(standin::FLAG) {
        standin::run(&argv[1..]);
    }
    let mut args = parse_args(&argv);
    // `cargo bench` passes `--bench`; `cargo test --all-targets` does not. Under a test
    // run, only prove the bench still works (the `--quick` sizes), never quote it.
    if !argv.iter().any(|a| a == "--bench") {
        args.quick = true;
    }
    let want = |s: &str| args.sections.is_empty() || args.sections.iter().any(|x| x == s);
    let trials = args.trials.unwrap_or(if args.quick { 30 } else { 200 });
    let seed = args.seed.unwrap_or_else(sys::os_seed);
    let mut rng = sys::Rng::new(seed);
    let started = Instant::now();

    println!("# observe bench");
    println!();
    println!("machine: {}", machine());
    println!(
        "profile: {}, trials: {trials}, seed: {seed}{}",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        if args.quick {
            ", QUICK (not for quoting)"
        } else {
            ""
        }
    );
    println!();

    let mut rows: Vec<Row> = Vec::new();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");

    let mut notes = Vec::new();
    if want("detection") {
        eprintln!("detection: {trials} trials × 4 waiters (+ floor) on one listener event ...");
        let r = rt.block_on(detection::run(trials, &mut rng));
        let [prod, portable, p150, p20, floor] =
            [&r.rows[0], &r.rows[1], &r.rows[2], &r.rows[3], &r.rows[4]];
        notes.push(format!(
            "detection ratios (same run): portable / native production: p50 {} p99 {}; poll 150 ms / production: p50 {} p99 {}; poll 20 ms / production: p50 {} p99 {}; production − floor: p50 {} p99 {} ms; {} sample(s) clamped to 0, {} waiter failure(s)",
            ratio(portable.p50(), prod.p50()),
            ratio(portable.p99(), prod.p99()),
            ratio(p150.p50(), prod.p50()),
            ratio(p150.p99(), prod.p99()),
            ratio(p20.p50(), prod.p50()),
            ratio(p20.p99(), prod.p99()),
            fmt(prod.p50() - floor.p50()),
            fmt(prod.p99() - floor.p99()),
            r.clamped,
            r.failures
        ));
        rows.extend(r.rows);
    }
    let mut dispatch_failed = false;
    if want("dispatch") {
        eprintln!("dispatch: {trials} fire-and-forget dispatches to a live receiver ...");
        let r = rt.block_on(dispatch::run(trials));
        let [total, receiver, library, lock, floor] =
            [&r.rows[0], &r.rows[1], &r.rows[2], &r.rows[3], &r.rows[4]];
        notes.push(format!(
            "dispatch (same run): the library's share of decision → ack p50 {} p99 {} ms ({} / {} of the whole; the lock file alone p50 {} p99 {} ms), the receiver's p50 {} ms; the whole over the two hand-written exchanges: p50 {} p99 {}; {} failure(s){}",
            fmt(library.p50()),
            fmt(library.p99()),
            fmt(library.p50() / total.p50() * 100.0) + " %",
            fmt(library.p99() / total.p99() * 100.0) + " %",
            fmt(lock.p50()),
            fmt(lock.p99()),
            fmt(receiver.p50()),
            ratio(total.p50(), floor.p50()),
            ratio(total.p99(), floor.p99()),
            r.failures.len(),
            r.failures.first().map_or(String::new(), |f| format!(", first: {f}"))
        ));
        dispatch_failed = !r.failures.is_empty();
        rows.extend(r.rows);
    }
    if want("child") {
        eprintln!("child: {trials} trials each of spawn / terminate / kill ...");
        rows.extend(rt.block_on(child::run(trials)));
    }
    if want("visible") {
        let n = trials.min(100);
        eprintln!(
            "visible: {n} socket trials (+ 500 ms poll) and {n} pane-death trials in tmux ..."
        );
        match rt.block_on(visible::run(n, &mut rng)) {
            None => {
                notes.push("visible: skipped, tmux is not installed (apt-get install tmux)".into())
            }
            Some(r) => {
                let [obs, poll] = [&r.rows[0], &r.rows[1]];
                notes.push(format!(
                    "visible ratios (same run): poll 500 ms / visible observation: p50 {} p99 {}; pane death: the 500 ms poll never looks at the pane and waits out its 30 s bound; {} failure(s){}",
                    ratio(poll.p50(), obs.p50()),
                    ratio(poll.p99(), obs.p99()),
                    r.failures.len(),
                    r.failures.first().map_or(String::new(), |f| format!(", first: {f}"))
                ));
                rows.extend(r.rows);
            }
        }
    }
    let mut real_pi_report = None;
    if want("real-pi") {
        let n = args.launches.unwrap_or(if args.quick { 3 } else { 20 });
        match rt.block_on(real_pi::run(n)) {
            None => notes.push(format!(
                "real-pi: skipped, no pi runtime in {} (run ./run.sh install-pi)",
                real_pi::launcher_dir().display()
            )),
            Some(r) => real_pi_report = Some((n, loadavg(), r)),
        }
    }
    drop(rt);

    let mut idle_lines = Vec::new();
    if want("idle") {
        let window = if args.quick {
            Duration::from_secs(1)
        } else {
            Duration::from_secs(5)
        };
        eprintln!("idle: {window:?} per variant, one after another ...");
        for i in idle::run(window) {
            let per5 = |d: Duration| stats::ms(d) * 5.0 / i.window.as_secs_f64();
            idle_lines.push(format!(
                "| {} | {:.2} | {:.3} | {:.3} | {:.3} | {:.0} | {:.3} |",
                i.variant,
                i.window.as_secs_f64(),
                per5(i.thread.user),
                per5(i.thread.sys),
                per5(i.thread.total()),
                i.thread.wakeups as f64 * 5.0 / i.window.as_secs_f64(),
                per5(i.process.total()),
            ));
        }
    }

    let mut scale_report = None;
    if want("scale") {
        let n = args.scale.unwrap_or(if args.quick { 64 } else { 256 });
        eprintln!("scale: {n} concurrent execute_spawn_bg_resume ...");
        let r = scale::run(n, &mut rng);
        rows.extend(r.rows.clone());
        scale_report = Some(r);
    }

    if !rows.is_empty() {
        println!("## latencies (ms)");
        println!();
        print_table(&rows);
        println!();
    }
    for n in &notes {
        println!("{n}");
    }
    if !idle_lines.is_empty() {
        println!();
        println!("## idle cost while waiting on a socket that never appears (per 5 s)");
        println!();
        println!("| variant | window s | user ms | sys ms | CPU ms | wake-ups | process CPU ms |");
        println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
        for l in &idle_lines {
            println!("{l}");
        }
    }
    let mut failed = dispatch_failed;
    if let Some((n, load_after, r)) = real_pi_report {
        failed |= print_real_pi(n, &load_after, &r);
    }
    if let Some(r) = scale_report {
        println!();
        println!(
            "## scale: {} concurrent execute_spawn_bg_resume (production deps)",
            r.n
        );
        println!();
        let classes: Vec<String> = r.by_class.iter().map(|(c, k)| format!("{k} {c}")).collect();
        println!("- mix: {}", classes.join(", "));
        println!(
            "- configured: observe timeout {:?}, term grace {:?}, kill grace {:?}; listen/exit delays 0–300 ms",
            scale::OBSERVE_TIMEOUT,
            scale::TERM_GRACE,
            scale::KILL_GRACE
        );
        println!(
            "- wall {:.1} ms = longest configured wait {:?} + {:.1} ms ({:.0} % above); the last of the {} spawns returned at {:.1} ms",
            stats::ms(r.wall),
            r.longest_configured,
            stats::ms(r.wall) - stats::ms(r.longest_configured),
            (stats::ms(r.wall) / stats::ms(r.longest_configured) - 1.0) * 100.0,
            r.n,
            r.last_spawn_ms
        );
        println!(
            "- correct: {} released exactly once, {} retained, {} error(s); children left after cleanup: {}",
            r.released_once,
            r.retained,
            r.errors.len(),
            r.leftovers
        );
        println!(
            "- open descriptors: baseline {}, peak {} → {} per watcher",
            r.base_fds,
            r.peak_fds,
            fmt((r.peak_fds.saturating_sub(r.base_fds)) as f64 / r.n as f64)
        );
        println!(
            "- threads: baseline {} (incl. sampler), peak {}; peak RSS {:.1} MiB",
            r.base_threads,
            r.peak_threads,
            r.peak_rss_kib as f64 / 1024.0
        );
        println!(
            "- process CPU during the run: {:.1} ms user + {:.1} ms sys ({:.2} ms per watcher)",
            stats::ms(r.cpu.user),
            stats::ms(r.cpu.sys),
            stats::ms(r.cpu.total()) / r.n as f64
        );
        for e in r.errors.iter().take(20) {
            println!("  ERROR {e}");
        }
        failed |= !r.errors.is_empty() || r.leftovers != 0;
    }
    println!();
    println!("total bench time: {:.1} s", started.elapsed().as_secs_f64());
    if failed {
        std::process::exit(1);
    }
}

/// The bench measures Linux mechanisms side by side; there is nothing to compare here.
#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("observe: this bench runs on Linux only (signalfd, prctl, per-thread rusage)");
}
