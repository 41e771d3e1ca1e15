//! The processes the live gate starts are this binary, re-executed: no node, no shell.
//!
//! - **resident** (`__stand-in resident`): blocks SIGTERM and waits for it with
//!   `sigwait`, then exits 0. Variants: `--ignore-term` (every SIGTERM is taken and
//!   noted, never acted on, so only SIGKILL ends it; with `--ready FILE`, each arrival's
//!   CLOCK_MONOTONIC time is appended to `FILE.term`), `--exit-code N` (exit at once),
//!   `--grandchild` (start this binary again as a SIGTERM-ignoring resident in the same
//!   process group), `--listen PATH --listen-after-ms N` (bind a unix socket late),
//!   `--ready FILE` (created once all of that is set up, holding the grandchild's pid),
//!   `--become-uid UID` (drop to another user first: L8's live holder as root).
//! - **lock racer** (`__stand-in lock-racer`): waits for the gate to release the start
//!   file's `flock`, calls `lock::acquire` once, reports, holds until the gate releases
//!   the done file's, then exits 0 (won), 3 (conflict) or 4 (other error).
//! - **guard** (`__stand-in guard … -- PROGRAM ARGS`): starts a watcher and execs a
//!   real runtime so that it dies with the gate process (see `guard`).
//! - **citizen** (`__stand-in citizen`): a pi citizen's control socket speaking the
//!   control protocol (or misbehaving as asked), recording every request it receives
//!   (see `citizen`).
//! - **pi**: recognized by argv\[0\] being `pi` (the resume scenario starts a symlink named
//!   `pi` pointing here, through the production spawner, unchanged). It checks its argv
//!   with `parse_resume_pi_args` (the builder's inverse) and then against the resume
//!   argv written out by hand from the fixture below, then binds
//!   `<cwd>/control/<gid>.sock` — the cwd is the saved session's, so a child started in
//!   the wrong directory never makes the socket the live gate waits for — and waits for
//!   SIGTERM. An argv mismatch exits 2 with the difference on stderr.
//!
//! SIGTERM is blocked *before* any thread starts, since threads inherit the mask: a
//! SIGTERM delivered to an unblocking thread would kill the process by default action
//! instead of reaching `sigwait`.
//!
//! Every stand-in watches the gate process and exits when it dies (see `lifeline`); a
//! lifetime cap (exit 3 after 120 s) stays as the last net.

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use nix::sys::signal::{SigSet, Signal};

use entwurf_v2_spawn::GardenId;
use entwurf_v2_spawn::lock::{self, AcquireError};
use entwurf_v2_spawn::resume_args::parse_resume_pi_args;

use args::{RacerArgs, ResidentArgs, StandInRole};
use lifeline::{MAX_LIFE_MS, Watched, lifeline, lifetime_cap};

pub mod args;
pub mod citizen;
pub mod guard;
pub mod lifeline;
pub mod visible_pi;
use crate::os::{self, write_ready};

/// The identity the resume scenario's saved session declares, and the stand-in `pi`
/// expects back in its argv.
pub mod pi_fixture {
    /// `--provider`.
    pub const PROVIDER: &str = "smoke-provider";
    /// `--model` (the session's `modelId`).
    pub const MODEL: &str = "smoke-model";
    /// The prompt, last.
    pub const PROMPT: &str = "smoke: wake up and listen";
    /// Launch args after `--entwurf-control`.
    pub const LAUNCH_ARGS: [&str; 1] = ["--approve"];
    /// Extension args, verbatim once.
    pub const EXTENSION_ARGS: [&str; 2] = ["-e", "./smoke-extension.ts"];
    /// The control dir, relative to the session's cwd.
    pub const CONTROL_DIR: &str = "control";
    /// The program name the live gate gives the stand-in.
    pub const PROGRAM_NAME: &str = "pi";
}

/// Exit code of the stand-in `pi` when its argv is not what the resume argv builder makes.
pub const PI_ARGV_MISMATCH: u8 = 2;
/// Exit code of a lock racer that acquired the lock.
pub const RACER_WON: u8 = 0;
/// Exit code of a lock racer that met a conflict.
pub const RACER_CONFLICT: u8 = 3;

/// Whether this process was started as the stand-in `pi`.
pub fn is_pi() -> bool {
    std::env::args_os().next().is_some_and(|arg0| {
        Path::new(&arg0)
            .file_name()
            .is_some_and(|n| n == pi_fixture::PROGRAM_NAME)
    })
}

/// Runs a hidden stand-in role.
pub fn run(role: &StandInRole) -> ExitCode {
    match role {
        StandInRole::Resident(a) => resident(a),
        StandInRole::LockRacer(a) => racer(a),
        StandInRole::Guard(a) => guard::guard(a),
        StandInRole::GuardWatch(a) => guard::watch(a),
        StandInRole::Citizen(a) => citizen::run(a),
    }
}

/// Blocks SIGTERM in the calling (main) thread; must run before any thread starts.
fn block_term() -> Result<SigSet, String> {
    let mut term = SigSet::empty();
    term.add(Signal::SIGTERM);
    term.thread_block()
        .map_err(|e| format!("blocking SIGTERM: {e}"))?;
    Ok(term)
}

/// Appends the CLOCK_MONOTONIC time (ns) to `path`: a SIGTERM arrived just now.
fn note_term(path: &Path) {
    use std::io::Write;
    let Ok(now) = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC) else {
        return;
    };
    let ns = i128::from(now.tv_sec()) * 1_000_000_000 + i128::from(now.tv_nsec());
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
    {
        let _ = writeln!(file, "{ns}");
    }
}

fn fail(role: &str, why: &str) -> ExitCode {
    eprintln!("stand-in {role}: {why}");
    ExitCode::from(4)
}

/// Accepts (and drops) connections forever, so probes never fill the backlog.
fn accept_forever(listener: UnixListener) {
    for conn in listener.incoming() {
        drop(conn);
    }
}

/// Binds `path` after `delay` on its own thread, then accepts forever.
fn listen_later(path: PathBuf, delay: Duration) {
    let _ = std::thread::Builder::new()
        .stack_size(64 * 1024)
        .spawn(move || {
            std::thread::sleep(delay);
            match os::bind_any_len(&path) {
                Ok(listener) => accept_forever(listener),
                Err(e) => eprintln!("stand-in: listening on {}: {e:#}", path.display()),
            }
        });
}

fn resident(a: &ResidentArgs) -> ExitCode {
    let term = match block_term() {
        Ok(term) => term,
        Err(e) => return fail("resident", &e),
    };
    if a.start_delay_ms != 0 {
        std::thread::sleep(Duration::from_millis(a.start_delay_ms));
    }
    if let Some(code) = a.exit_code {
        return ExitCode::from(code);
    }
    // Before any thread starts: glibc's setresuid changes every thread, but there is
    // only this one yet, so no thread can run on with the old credentials.
    if let Some(uid) = a.become_uid {
        if let Err(e) = become_uid(uid) {
            return fail("resident", &e);
        }
    }
    lifeline(a.lifeline.map_or(Watched::Parent, Watched::Gate));
    lifetime_cap(a.max_life_ms.unwrap_or(MAX_LIFE_MS));
    let mut grandchild_pid = String::new();
    if a.grandchild {
        match start_grandchild(a) {
            Ok(pid) => grandchild_pid = pid.to_string(),
            Err(e) => return fail("resident", &e),
        }
    }
    if let Some(path) = &a.listen {
        listen_later(path.clone(), Duration::from_millis(a.listen_after_ms));
    }
    if let Some(ready) = &a.ready {
        if let Err(e) = write_ready(ready, &grandchild_pid) {
            return fail("resident", &e);
        }
    }
    if a.ignore_term {
        // Every SIGTERM is taken and noted, never acted on: only SIGKILL ends this one.
        // With a ready file, each arrival's CLOCK_MONOTONIC time (ns) is appended to
        // `<ready>.term`, so a check can time the escalation from the SIGTERM itself.
        let noted = a.ready.as_ref().map(|ready| {
            let mut name = ready.as_os_str().to_owned();
            name.push(".term");
            PathBuf::from(name)
        });
        loop {
            match term.wait() {
                Ok(_) => {
                    if let Some(noted) = &noted {
                        note_term(noted);
                    }
                }
                // Cannot happen with a valid set; never spin on it.
                Err(_) => std::thread::park(),
            }
        }
    }
    let _ = term.wait();
    if let Some(path) = &a.listen {
        let _ = std::fs::remove_file(path);
    }
    ExitCode::SUCCESS
}

/// Drops every id (real, effective, saved; groups too) to `uid`: the gate process, root, then
/// answers EPERM to `kill(pid, 0)` from a thread without `CAP_KILL` (L8 as root).
#[cfg(any(target_os = "linux", target_os = "freebsd"))]
fn become_uid(uid: u32) -> Result<(), String> {
    use nix::unistd::{Gid, Uid, setgroups, setresgid, setresuid};
    let (gid, uid) = (Gid::from_raw(uid), Uid::from_raw(uid));
    setgroups(&[]).map_err(|e| format!("setgroups: {e}"))?;
    setresgid(gid, gid, gid).map_err(|e| format!("setresgid: {e}"))?;
    setresuid(uid, uid, uid).map_err(|e| format!("setresuid: {e}"))
}

/// macOS has no `setres*id`: as root, `setgid` and `setuid` set the real, effective and
/// saved ids alike (the supplementary groups stay; the check needs only the uid).
#[cfg(not(any(target_os = "linux", target_os = "freebsd")))]
fn become_uid(uid: u32) -> Result<(), String> {
    use nix::unistd::{Gid, Uid, setgid, setuid};
    setgid(Gid::from_raw(uid)).map_err(|e| format!("setgid: {e}"))?;
    setuid(Uid::from_raw(uid)).map_err(|e| format!("setuid: {e}"))
}

/// Starts the grandchild in our process group and waits until it, too, has SIGTERM
/// blocked, so the group signal meets a SIGTERM-ignoring member for sure.
fn start_grandchild(a: &ResidentArgs) -> Result<u32, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let ready = a
        .ready
        .as_ref()
        .map(|r| {
            let mut p = r.as_os_str().to_owned();
            p.push(".grandchild");
            PathBuf::from(p)
        })
        .ok_or("--grandchild needs --ready")?;
    // The grandchild watches the gate process too, not its parent: when that dies, the
    // group kill that would have ended it never comes.
    let args = ResidentArgs {
        lifeline: a.lifeline,
        ignore_term: true,
        max_life_ms: a.max_life_ms,
        ready: Some(ready.clone()),
        ..ResidentArgs::default()
    };
    let child = Command::new(exe)
        .args(args.to_args())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| format!("starting the grandchild: {e}"))?;
    if !os::poll_until_blocking(Duration::from_secs(3), Duration::from_millis(1), || {
        ready.exists()
    }) {
        return Err("the grandchild never became ready".into());
    }
    Ok(child.id())
}

fn racer(a: &RacerArgs) -> ExitCode {
    lifeline(a.lifeline.map_or(Watched::Parent, Watched::Gate));
    // The start and done signals have no timeout of their own: a gate alive but stuck
    // must not keep its racers forever.
    lifetime_cap(MAX_LIFE_MS);
    let gid = match GardenId::parse(&a.gid) {
        Ok(gid) => gid,
        Err(e) => return fail("lock-racer", &e.to_string()),
    };
    // What the gate hears on our stdout, a pipe: `ready`, then the result's code.
    if let Err(e) = say("ready") {
        return fail("lock-racer", &e);
    }
    // Blocked on a shared lock of the start file until the gate drops its exclusive
    // one: the kernel then grants every waiting racer at once, so their acquire calls
    // really overlap, and none of them spins meanwhile. (If the gate dies, its lock goes
    // with it, and the lifeline ends this racer.)
    if let Err(e) = wait_for_unlock(&a.go) {
        return fail("lock-racer", &format!("the start signal: {e}"));
    }
    let code = match lock::acquire(&a.dir, &gid) {
        Ok(_) => RACER_WON,
        Err(AcquireError::Conflict(_)) => RACER_CONFLICT,
        Err(e) => return fail("lock-racer", &format!("{e:#}")),
    };
    if let Err(e) = say(&code.to_string()) {
        return fail("lock-racer", &e);
    }
    // A winner that exited at once would leave a dead holder, which a slower racer may
    // rightly reclaim: hold until every racer has its answer.
    if let Err(e) = wait_for_unlock(&a.done) {
        return fail("lock-racer", &format!("the done signal: {e}"));
    }
    ExitCode::from(code)
}

/// One line to the gate on stdout (a pipe), flushed at once.
fn say(line: &str) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .map_err(|e| format!("telling the gate {line:?}: {e}"))
}

/// Blocks until a shared `flock` of `signal` is granted, i.e. until the gate released
/// the exclusive one it took before starting the racers.
fn wait_for_unlock(signal: &Path) -> Result<(), String> {
    use nix::fcntl::{Flock, FlockArg};
    let file = std::fs::File::open(signal).map_err(|e| format!("{}: {e}", signal.display()))?;
    Flock::lock(file, FlockArg::LockShared)
        .map(drop)
        .map_err(|(_, e)| format!("flock {}: {e}", signal.display()))
}

/// The argv the stand-in `pi` expects for `gid`: the resume v2-control layout written out
/// by hand from the fixture, *not* by `build_resume_pi_args` — otherwise a builder that
/// dropped or reordered an arg would agree with itself and R1 could not fail.
pub fn expected_pi_args(gid: &str) -> Vec<String> {
    use pi_fixture::{EXTENSION_ARGS, LAUNCH_ARGS, MODEL, PROMPT, PROVIDER};
    let [launch] = LAUNCH_ARGS;
    let [ext_flag, ext_path] = EXTENSION_ARGS;
    [
        "--mode",
        "json",
        "-p",
        "--entwurf-control",
        launch,
        ext_flag,
        ext_path,
        "--session-id",
        gid,
        "--provider",
        PROVIDER,
        "--model",
        MODEL,
        PROMPT,
    ]
    .map(str::to_owned)
    .to_vec()
}

/// The stand-in `pi` (see the module docs).
pub fn pi() -> ExitCode {
    let argv: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a: OsString| a.to_string_lossy().into_owned())
        .collect();
    // First the inverse of the builder: is this a well-formed resume argv at all (reserved
    // flags once each, in place)? Then the exact values the fixture implies.
    let parsed = match parse_resume_pi_args(&argv) {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("stand-in pi: argv is not a resume argv: {e}\n  got: {argv:?}");
            return ExitCode::from(PI_ARGV_MISMATCH);
        }
    };
    let Ok(gid) = GardenId::parse(&parsed.session_id) else {
        eprintln!(
            "stand-in pi: --session-id {:?} is not a garden id",
            parsed.session_id
        );
        return ExitCode::from(PI_ARGV_MISMATCH);
    };
    let expected = expected_pi_args(gid.as_str());
    if argv != expected {
        eprintln!(
            "stand-in pi: argv differs from the resume argv layout\n  expected: {expected:?}\n  got:      {argv:?}"
        );
        return ExitCode::from(PI_ARGV_MISMATCH);
    }
    let term = match block_term() {
        Ok(term) => term,
        Err(e) => return fail("pi", &e),
    };
    lifeline(Watched::Parent);
    lifetime_cap(MAX_LIFE_MS);
    let socket = match std::env::current_dir() {
        Ok(cwd) => cwd
            .join(pi_fixture::CONTROL_DIR)
            .join(format!("{gid}.sock")),
        Err(e) => return fail("pi", &format!("current_dir: {e}")),
    };
    match os::bind_any_len(&socket) {
        Ok(listener) => {
            let _ = std::thread::Builder::new()
                .stack_size(64 * 1024)
                .spawn(move || accept_forever(listener));
        }
        Err(e) => {
            eprintln!("stand-in pi: cannot listen on {}: {e:#}", socket.display());
            return ExitCode::from(PI_ARGV_MISMATCH);
        }
    }
    let _ = term.wait();
    let _ = std::fs::remove_file(&socket);
    ExitCode::SUCCESS
}
