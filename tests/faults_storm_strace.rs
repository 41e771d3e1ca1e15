//! The swap storm: the socket path flips between our listening socket and a symlink to a
//! decoy, one atomic rename at a time, while probes run. The native probe (through
//! `/proc/self/fd/<n>`) must never reach the decoy; the portable probe has the window
//! (an `lstat`, then a connect by path), and must take a decoy listening as another uid
//! for what it is, never for alive. A naive lstat-then-connect probe against the same
//! storm is the control that shows the window is really hit.
//!
//! Why strace. The window between the look and the connect is a few microseconds. A
//! storm alone hits it only when the swapper runs during exactly those microseconds; on
//! a loaded two-core host it may not for seconds (a CI run once made 377 600 portable
//! probes against 2622 swaps in 8 s and never hit it, so the test proved nothing and
//! failed). So the helper runs under `strace --seccomp-bpf -f -e trace=connect -e
//! inject=connect:delay_enter=500`: every `connect` waits 500 µs before the kernel runs
//! it, while the swapper, none of whose calls are traced (seccomp stops only `connect`),
//! keeps swapping. The window is then wide open for every probe, and what is proved is
//! what each probe does with it. It needs `strace` (CI installs it); without it, or
//! without ptrace, it says so and skips (never on CI).

#![cfg(target_os = "linux")]

use std::ffi::OsString;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use entwurf_test_support::ci::skip_unless_ci;
use entwurf_test_support::short_dir::short_tempdir;
use entwurf_test_support::sockets::{drain, listening_as};
use entwurf_test_support::strace::run_helper;
use entwurf_v2_spawn::Backend;
use entwurf_v2_spawn::socket::{AddressConflict, Verdict, inspect_and_probe, verdict};

const DIR_ENV: &str = "ENTWURF_STORM_DIR";
const CASE_ENV: &str = "ENTWURF_STORM_CASE";
const OK: &str = "STORM-HELPER-OK";
/// How long strace holds every `connect` before the kernel runs it: the window.
const CONNECT_DELAY_US: u32 = 500;
/// How long a storm may blow before the helper gives up (then nothing was proved).
const STORM_LIMIT: Duration = Duration::from_secs(8);
const PROBE_TIMEOUT: Duration = Duration::from_millis(300);
/// The uid the portable storm's decoy listens as.
const NOBODY: u32 = 65534;

/// Swaps `path` between a hard link to the legitimate socket and a symlink to the decoy
/// as fast as it can, each change one atomic rename, until told to stop.
fn swapper(dir: PathBuf, path: PathBuf, legit: PathBuf, decoy: PathBuf, storm: Arc<Storm>) {
    let (tmp_link, tmp_sym) = (dir.join("swap.link"), dir.join("swap.sym"));
    while !storm.stop.load(Ordering::Relaxed) {
        let _ = std::fs::remove_file(&tmp_link);
        std::fs::hard_link(&legit, &tmp_link).expect("link");
        std::fs::rename(&tmp_link, &path).expect("rename link");
        let _ = std::fs::remove_file(&tmp_sym);
        std::os::unix::fs::symlink(&decoy, &tmp_sym).expect("symlink");
        std::fs::rename(&tmp_sym, &path).expect("rename symlink");
        storm.swaps.fetch_add(1, Ordering::Relaxed);
    }
}

/// What the prober and the swapper share: the stop flag and the count of rounds.
#[derive(Default)]
struct Storm {
    stop: AtomicBool,
    swaps: AtomicUsize,
}

impl Storm {
    /// Starts the swapper and returns once it has swapped at least once: a thread is not
    /// running the moment `spawn` returns, and on a busy machine it may not run for a
    /// while (a CI run once finished 3000 probes before the first swap).
    fn start(dir: &Path, path: &Path, legit: &Path, decoy: &Path) -> (Arc<Storm>, JoinHandle<()>) {
        let storm = Arc::new(Storm::default());
        let handle = {
            let (dir, path, legit, decoy, storm) = (
                dir.to_path_buf(),
                path.to_path_buf(),
                legit.to_path_buf(),
                decoy.to_path_buf(),
                storm.clone(),
            );
            std::thread::spawn(move || swapper(dir, path, legit, decoy, storm))
        };
        let started = Instant::now();
        while storm.swaps.load(Ordering::Relaxed) == 0 {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the swapper never swapped in 10 s"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        (storm, handle)
    }

    fn stop(&self, handle: JoinHandle<()>) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        handle.join().expect("swapper");
        self.swaps.load(Ordering::Relaxed)
    }
}

/// The storm's files in `dir`: the waited path, our listener's file, the decoy's file.
struct Paths {
    path: PathBuf,
    legit: PathBuf,
    decoy: PathBuf,
}

impl Paths {
    fn in_dir(dir: &Path) -> Paths {
        Paths {
            path: dir.join("citizen.sock"),
            legit: dir.join("legit.sock"),
            decoy: dir.join("decoy.sock"),
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// The native storm, in the traced helper: no probe reaches the decoy, both faces of
/// the path are seen, and the naive control does reach the decoy.
fn native_storm(dir: &Path) {
    let Paths { path, legit, decoy } = Paths::in_dir(dir);
    let legit_listener = UnixListener::bind(&legit).expect("bind legit");
    let decoy_listener = UnixListener::bind(&decoy).expect("bind decoy");
    std::fs::hard_link(&legit, &path).expect("link");
    let (storm, swap) = Storm::start(dir, &path, &legit, &decoy);
    let rt = runtime();

    let (mut alive, mut forged, mut waits) = (0usize, 0usize, 0usize);
    let started = Instant::now();
    // At least 200 probes, and on until both faces of the path were seen.
    while (alive + forged + waits < 200 || alive == 0 || forged == 0)
        && started.elapsed() < STORM_LIMIT
    {
        let seen = rt.block_on(inspect_and_probe(&path, PROBE_TIMEOUT, Backend::Native));
        match verdict(&seen) {
            Verdict::Alive => alive += 1,
            Verdict::Forged(_) => forged += 1,
            Verdict::Wait => waits += 1,
            other => panic!("unexpected verdict {other:?}"),
        }
        drain(&legit_listener);
    }
    let ours_on_decoy = drain(&decoy_listener);

    // The control: the same storm against lstat, then connect by path.
    let (mut naive, mut naive_on_decoy) = (0usize, 0usize);
    let started = Instant::now();
    while naive_on_decoy < 3 && started.elapsed() < STORM_LIMIT {
        let is_socket = std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_socket());
        if is_socket {
            naive += 1;
            drop(UnixStream::connect(&path));
        }
        drain(&legit_listener);
        naive_on_decoy += drain(&decoy_listener);
    }
    let swaps = storm.stop(swap);

    eprintln!(
        "native swap storm: {swaps} swaps; {} probes ({alive} alive, {forged} forged, {waits} wait), \
         {ours_on_decoy} reached the decoy; naive control: {naive_on_decoy} of {naive} reached it",
        alive + forged + waits
    );
    assert_eq!(ours_on_decoy, 0, "a probe connected through the symlink");
    assert!(
        alive > 0 && forged > 0,
        "the storm did not interleave with the probes"
    );
    assert!(
        naive_on_decoy > 0,
        "control: the lstat→connect window was never hit, so this run proves nothing"
    );
}

/// The portable storm, in the traced helper: the decoy listens as `nobody`, and every
/// probe connection that reaches it through the window comes back
/// `Forged(ForeignListener)`, never alive.
fn portable_storm(dir: &Path) {
    let Paths { path, legit, decoy } = Paths::in_dir(dir);
    let legit_listener = UnixListener::bind(&legit).expect("bind legit");
    let decoy_listener = listening_as(NOBODY, &decoy).expect("decoy as nobody");
    std::fs::hard_link(&legit, &path).expect("link");
    let (storm, swap) = Storm::start(dir, &path, &legit, &decoy);
    let rt = runtime();

    let (mut alive, mut foreign, mut other) = (0usize, 0usize, 0usize);
    let mut on_decoy = 0;
    let started = Instant::now();
    // Until the window was hit a few times and our own listener seen.
    while (on_decoy < 3 || alive == 0) && started.elapsed() < STORM_LIMIT {
        let seen = rt.block_on(inspect_and_probe(&path, PROBE_TIMEOUT, Backend::Portable));
        match verdict(&seen) {
            Verdict::Alive => alive += 1,
            Verdict::Forged(AddressConflict::ForeignListener { uid }) => {
                assert_eq!(uid, NOBODY);
                foreign += 1;
            }
            _ => other += 1,
        }
        drain(&legit_listener);
        on_decoy += drain(&decoy_listener);
    }
    let swaps = storm.stop(swap);

    eprintln!(
        "portable swap storm: {swaps} swaps; {alive} alive, {foreign} foreign listener, \
         {other} other; {on_decoy} connection(s) reached the decoy"
    );
    assert!(
        on_decoy > 0,
        "the lstat→connect window was never hit, so this run proves nothing"
    );
    assert_eq!(
        foreign, on_decoy,
        "every connection that reached the foreign decoy must be forged, none alive"
    );
    assert!(alive > 0, "the storm never showed our own listener");
}

/// Not a test on its own: the traced process, running the storm `CASE_ENV` names.
#[test]
#[ignore = "helper process for the strace storm tests"]
fn storm_helper_process() {
    let (Some(dir), Some(case)) = (std::env::var_os(DIR_ENV), std::env::var(CASE_ENV).ok()) else {
        eprintln!("storm_helper_process only runs under the strace storm tests");
        return;
    };
    match case.as_str() {
        "native" => native_storm(Path::new(&dir)),
        "portable" => portable_storm(Path::new(&dir)),
        other => panic!("unknown storm {other:?}"),
    }
    println!("{OK}");
}

/// Runs the helper's `case` under strace, every `connect` held [`CONNECT_DELAY_US`].
fn storm_under_strace(case: &str) {
    // Sockets inside: under /tmp, whatever TMPDIR is (sun_path holds 107 bytes).
    let tmp = short_tempdir();
    let delay = format!("inject=connect:delay_enter={CONNECT_DELAY_US}");
    let args: Vec<OsString> = [
        "-f",
        "--seccomp-bpf",
        "-qq",
        "-o",
        "/dev/null",
        "-e",
        "trace=connect",
        "-e",
        delay.as_str(),
    ]
    .into_iter()
    .map(OsString::from)
    .collect();
    let Some(out) = run_helper(
        &args,
        "storm_helper_process",
        &[(DIR_ENV, tmp.path().as_os_str()), (CASE_ENV, case.as_ref())],
    ) else {
        return;
    };
    eprintln!("{}", out.stderr.trim_end());
    assert!(
        out.status.success() && out.stdout.contains(OK),
        "the {case} storm failed ({}):\n{}\n{}",
        out.status,
        out.stdout,
        out.stderr
    );
}

/// The race the `/proc/self/fd` probe closes: not one probe reaches the decoy, while a
/// naive lstat-then-connect-by-path probe against the same storm does.
#[test]
fn a_swap_storm_never_connects_a_probe_through_a_symlink() {
    storm_under_strace("native");
}

/// The portable probe has the window the storm exploits; what it keeps is that a
/// listener of another uid is never taken for ours.
#[test]
fn a_swap_storm_never_takes_a_foreign_decoy_for_alive_on_the_portable_backend() {
    if !nix::unistd::geteuid().is_root() {
        skip_unless_ci("a decoy listening as another uid needs root");
        return;
    }
    storm_under_strace("portable");
}
