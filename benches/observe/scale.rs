//! Section 5: N concurrent `execute_spawn_bg_resume` calls over `ProductionDeps`.
//!
//! Options overridden, nothing else: identity (fixed), spawner (the stand-in, mode
//! chosen per garden id), release (counts calls and stamps CLOCK_MONOTONIC, then calls
//! `lock::release`), stderr (`/dev/null`), graces. Every call gets its own gid, lock file
//! and socket path; all sockets share the one control dir, as in production, so every
//! socket a stand-in binds wakes every waiter's inotify (each filters by name).
//!
//! Shares (shuffled): 70 % listen after a random 0–300 ms, 10 % never listen and exit 0
//! on SIGTERM, 5 % never listen and ignore SIGTERM (killed after the term grace), 15 %
//! exit on their own with a code after a random 0–300 ms. Stand-ins stamp the instant
//! they listened / exited / got SIGTERM, so the bench can report detection under load
//! from the child's own clock (CLOCK_MONOTONIC is machine-wide).
//!
//! The watcher futures are not `Send`, so they run as local tasks on the main thread
//! (`LocalSet`), while the child supervisors run on a 2-worker runtime — the layout a
//! dispatcher on this crate would use. A sampler thread reads `/proc/self/fd` and
//! `Threads:` every [`SAMPLE_EVERY`].

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use entwurf_v2_spawn::lock::{self, LockClaim, ReleaseOutcome};
use entwurf_v2_spawn::production::child::StderrTarget;
use entwurf_v2_spawn::production::child::spawn_child;
use entwurf_v2_spawn::production::{ProductionDeps, ProductionOutcome, ResumeLaunch, StderrPolicy};
use entwurf_v2_spawn::watcher::{SpawnBgOutcome, StopSignal, execute_spawn_bg_resume};
use entwurf_v2_spawn::{GardenId, SpawnBgPlan};

use crate::child::{options, stand_in_request};
use crate::stats::{Row, ms};
use crate::sys::{Cpu, Rng, mono_ns, open_fds, processes, read_stamp, rss_kib, threads};

/// Sampling period of the fd/thread sampler: the peak lasts ≥ 1 s (every watcher is
/// alive during the observe timeout), so 10 ms catches it while keeping the sampler's
/// own /proc reads (a few hundred entries each) from loading 2 cores.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(10);
pub const OBSERVE_TIMEOUT: Duration = Duration::from_secs(1);
pub const TERM_GRACE: Duration = Duration::from_millis(500);
pub const KILL_GRACE: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Listen { delay_us: u64 },
    NeverTermExit,
    NeverIgnoreTerm,
    Exit { code: i32, delay_us: u64 },
}

impl Class {
    fn name(self) -> &'static str {
        match self {
            Class::Listen { .. } => "listen",
            Class::NeverTermExit => "never listens, exits on SIGTERM",
            Class::NeverIgnoreTerm => "never listens, ignores SIGTERM",
            Class::Exit { .. } => "exits early",
        }
    }
}

pub struct Report {
    pub n: usize,
    pub by_class: Vec<(&'static str, usize)>,
    pub wall: Duration,
    pub longest_configured: Duration,
    /// When the last spawn returned, since the start.
    pub last_spawn_ms: f64,
    pub base_fds: usize,
    pub peak_fds: usize,
    pub base_threads: usize,
    pub peak_threads: usize,
    pub peak_rss_kib: usize,
    pub cpu: Cpu,
    pub errors: Vec<String>,
    pub released_once: usize,
    pub retained: usize,
    pub leftovers: usize,
    pub rows: Vec<Row>,
}

pub fn run(n: usize, rng: &mut Rng) -> Report {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let local = tokio::task::LocalSet::new();
    let root = tempfile::tempdir().expect("tempdir");
    let stamps = root.path().join("stamps");
    std::fs::create_dir_all(&stamps).expect("stamps dir");

    // Classes, shuffled.
    let mut classes: Vec<Class> = (0..n)
        .map(|i| {
            let pct = i * 100 / n;
            if pct < 70 {
                Class::Listen {
                    delay_us: rng.below(300_000),
                }
            } else if pct < 80 {
                Class::NeverTermExit
            } else if pct < 85 {
                Class::NeverIgnoreTerm
            } else {
                Class::Exit {
                    code: 1 + (i % 7) as i32,
                    delay_us: rng.below(300_000),
                }
            }
        })
        .collect();
    for i in (1..classes.len()).rev() {
        classes.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let gids: Vec<GardenId> = (0..n)
        .map(|i| GardenId::parse(&format!("20260613T000000-{i:06x}")).expect("gid"))
        .collect();
    let by_gid: Arc<HashMap<String, Class>> = Arc::new(
        gids.iter()
            .zip(&classes)
            .map(|(g, c)| (g.to_string(), *c))
            .collect(),
    );

    // When each spawn returned (CLOCK_MONOTONIC), by gid.
    let spawned_at: Arc<Mutex<HashMap<String, i128>>> = Arc::default();
    let mut o = options(root.path(), "term-exit");
    o.term_grace = TERM_GRACE;
    o.kill_grace = KILL_GRACE;
    o.stderr = StderrPolicy::Fixed(StderrTarget::Null);
    let control = o.shared.control_dir.clone();
    {
        let (by_gid, stamps, control) = (by_gid.clone(), stamps.clone(), control.clone());
        let spawned_at = spawned_at.clone();
        o.spawner = Arc::new(move |launch: &ResumeLaunch<'_>| {
            let req = launch.request;
            let gid = launch.plan.target_garden_id().to_string();
            let class = by_gid.get(&gid).copied().unwrap_or(Class::NeverTermExit);
            let stamp = stamps.join(&gid);
            let stamp = stamp.to_str().unwrap_or("-");
            let socket = control.join(format!("{gid}.sock"));
            let socket = socket.to_str().unwrap_or_default();
            let (mode, extra): (&str, Vec<String>) = match class {
                Class::Listen { delay_us } => ("listen", vec![socket.into(), delay_us.to_string()]),
                Class::NeverTermExit => ("term-exit", vec![]),
                Class::NeverIgnoreTerm => ("ignore-term", vec![]),
                Class::Exit { code, delay_us } => {
                    ("exit", vec![code.to_string(), delay_us.to_string()])
                }
            };
            let mut request = stand_in_request(&req.cwd, mode, &[]);
            request.args[2] = stamp.into();
            request.args.extend(extra.into_iter().map(Into::into));
            let child = spawn_child(&request);
            spawned_at
                .lock()
                .expect("spawned_at")
                .insert(gid, mono_ns());
            child
        });
    }
    let release_counts: Arc<Mutex<HashMap<String, (usize, i128)>>> = Arc::default();
    {
        let counts = release_counts.clone();
        o.shared.release = Arc::new(move |claim: &LockClaim| {
            let at = mono_ns();
            counts
                .lock()
                .expect("counts")
                .entry(claim.garden_id().to_string())
                .or_insert((0, at))
                .0 += 1;
            lock::release(claim)
        });
    }
    let deps = Rc::new(ProductionDeps::new(o.clone()));
    let claims: Vec<LockClaim> = gids
        .iter()
        .map(|g| lock::acquire(&o.shared.lock_dir, g).expect("acquire"))
        .collect();
    let plans: Vec<SpawnBgPlan> = gids
        .iter()
        .map(|g| {
            SpawnBgPlan::new(g.clone(), "wake up", o.socket_path(g), OBSERVE_TIMEOUT).expect("plan")
        })
        .collect();

    // Sampler.
    let stop = Arc::new(AtomicBool::new(false));
    let peak_fds = Arc::new(AtomicUsize::new(0));
    let peak_threads = Arc::new(AtomicUsize::new(0));
    let peak_rss = Arc::new(AtomicUsize::new(0));
    let base_fds = open_fds();
    let base_threads = threads() + 1; // + the sampler itself
    let sampler = {
        let (stop, pf, pt, pr) = (
            stop.clone(),
            peak_fds.clone(),
            peak_threads.clone(),
            peak_rss.clone(),
        );
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                pf.fetch_max(open_fds(), Ordering::Relaxed);
                pt.fetch_max(threads(), Ordering::Relaxed);
                pr.fetch_max(rss_kib(), Ordering::Relaxed);
                std::thread::sleep(SAMPLE_EVERY);
            }
        })
    };

    let cpu_before = Cpu::process();
    let t0_mono = mono_ns();
    let t0 = Instant::now();
    let results: Vec<(usize, Duration, Result<ProductionOutcome, String>)> =
        local.block_on(&rt, async {
            let mut tasks = Vec::new();
            for i in 0..n {
                let deps = deps.clone();
                let plan = plans[i].clone();
                let claim = claims[i].clone();
                tasks.push(tokio::task::spawn_local(async move {
                    let r = execute_spawn_bg_resume(&plan, Some(&claim), &*deps)
                        .await
                        .map_err(|e| e.to_string());
                    (i, t0.elapsed(), r)
                }));
            }
            let mut out = Vec::new();
            for t in tasks {
                out.push(t.await.expect("task"));
            }
            out
        });
    let wall = t0.elapsed();
    let cpu = Cpu::process().since(cpu_before);

    // Verify.
    let counts = release_counts.lock().expect("counts").clone();
    let spawned_at = spawned_at.lock().expect("spawned_at").clone();
    let spawn_ms = |gid: &str| spawned_at.get(gid).map(|&t| (t - t0_mono) as f64 / 1e6);
    let last_spawn_ms = spawned_at
        .values()
        .map(|&t| (t - t0_mono) as f64 / 1e6)
        .fold(0.0, f64::max);
    let mut spawn_done = Vec::new();
    let mut errors = Vec::new();
    let mut released_once = 0;
    let mut retained = 0;
    let mut pids = Vec::new();
    let mut residents = Vec::new();
    let mut listen_lat = Vec::new();
    let mut exit_lat = Vec::new();
    let mut term_lat = Vec::new();
    let mut over_listen = Vec::new();
    let mut over_never = Vec::new();
    let mut over_ignore = Vec::new();
    for (i, took, r) in results {
        let gid = gids[i].to_string();
        let class = classes[i];
        let lock_exists = o.lock_path(&gids[i]).exists();
        let (count, released_at) = counts.get(&gid).copied().unwrap_or((0, 0));
        let stamp = read_stamp(&stamps.join(&gid));
        let mut bad = |what: String| errors.push(format!("{gid} ({}): {what}", class.name()));
        let outcome = match r {
            Ok(o) => o,
            Err(e) => {
                bad(format!("watch error: {e}"));
                continue;
            }
        };
        if outcome.released() {
            if count == 1 && !lock_exists {
                released_once += 1;
            } else {
                bad(format!(
                    "released {count} times, lock file exists: {lock_exists}"
                ));
            }
        } else {
            retained += 1;
            if count != 0 || !lock_exists {
                bad(format!("retained, yet released {count} times / lock gone"));
            }
        }
        let lat = |s: Option<i128>| s.map(|s| (released_at - s) as f64 / 1e6);
        let spawned = spawn_ms(&gid).unwrap_or(f64::NAN);
        spawn_done.push(spawned);
        match (class, outcome) {
            (
                Class::Listen { delay_us },
                SpawnBgOutcome::SocketAlive {
                    pid,
                    release,
                    resident,
                    ..
                },
            ) => {
                if release != ReleaseOutcome::Released {
                    bad(format!("release {release:?}"));
                }
                pids.push(pid);
                residents.push(resident);
                match lat(stamp) {
                    Some(l) => listen_lat.push(l),
                    None => bad("no listen stamp".into()),
                }
                over_listen.push(ms(took) - delay_us as f64 / 1e3);
            }
            (Class::NeverTermExit, SpawnBgOutcome::ChildExited { pid, exit, .. }) => {
                pids.push(pid);
                if exit.code != Some(0) {
                    bad(format!("expected exit 0 after SIGTERM, got {exit}"));
                }
                match lat(stamp) {
                    Some(l) => term_lat.push(l),
                    None => bad("no SIGTERM stamp".into()),
                }
                over_never.push(ms(took) - spawned - ms(OBSERVE_TIMEOUT));
            }
            (Class::NeverIgnoreTerm, SpawnBgOutcome::ChildExited { pid, exit, .. }) => {
                pids.push(pid);
                if exit.signal != Some(9) {
                    bad(format!("expected SIGKILL after the grace, got {exit}"));
                }
                over_ignore.push(ms(took) - spawned - ms(OBSERVE_TIMEOUT + TERM_GRACE));
            }
            (Class::Exit { code, .. }, SpawnBgOutcome::ChildExited { pid, exit, .. }) => {
                pids.push(pid);
                if exit.code != Some(code) {
                    bad(format!("expected exit {code}, got {exit}"));
                }
                match lat(stamp) {
                    Some(l) => exit_lat.push(l),
                    None => bad("no exit stamp".into()),
                }
            }
            (_, other) => bad(format!("unexpected outcome {}", other.kind())),
        }
    }

    // Clean up the residents (the socket-alive path leaves them running, by design).
    local.block_on(&rt, async {
        for r in &residents {
            r.signal(StopSignal::Kill).await.expect("kill resident");
        }
        for r in &residents {
            tokio::time::timeout(Duration::from_secs(5), r.exit())
                .await
                .expect("resident exit")
                .expect("resident exit");
        }
    });
    drop(residents);
    stop.store(true, Ordering::Relaxed);
    sampler.join().expect("sampler");

    // No child left: nobody whose parent is us, nobody in any of the groups we started.
    let me = std::process::id();
    let groups: std::collections::HashSet<u32> = pids.iter().copied().collect();
    let leftovers = processes()
        .into_iter()
        .filter(|&(pid, ppid, pgrp)| pid != me && (ppid == me || groups.contains(&pgrp)))
        .count();

    let mut by_class: HashMap<&'static str, usize> = HashMap::new();
    for c in &classes {
        *by_class.entry(c.name()).or_default() += 1;
    }
    let mut by_class: Vec<_> = by_class.into_iter().collect();
    by_class.sort();
    let rows = vec![
        Row::new(
            "scale",
            "spawn returned, since start of the burst",
            spawn_done,
        ),
        Row::new("scale", "listen (child stamp) → release", listen_lat),
        Row::new("scale", "own exit (child stamp) → release", exit_lat),
        Row::new(
            "scale",
            "SIGTERM received (child stamp) → release",
            term_lat,
        ),
        Row::new(
            "scale",
            "call − listen delay (socket-alive; includes spawn queue and child start-up)",
            over_listen,
        ),
        Row::new(
            "scale",
            "call − spawn returned − observe timeout (exits on SIGTERM)",
            over_never,
        ),
        Row::new(
            "scale",
            "call − spawn returned − (observe timeout + term grace) (SIGKILLed)",
            over_ignore,
        ),
    ];
    Report {
        n,
        by_class,
        wall,
        longest_configured: OBSERVE_TIMEOUT + TERM_GRACE,
        last_spawn_ms,
        base_fds,
        peak_fds: peak_fds.load(Ordering::Relaxed),
        base_threads,
        peak_threads: peak_threads.load(Ordering::Relaxed),
        peak_rss_kib: peak_rss.load(Ordering::Relaxed),
        cpu,
        errors,
        released_once,
        retained,
        leftovers,
        rows,
    }
}
