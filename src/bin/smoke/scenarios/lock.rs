//! L: the dispatch lock against real files, real pids and real racing processes.
//!
//! Foreign claims are written by hand in the shared on-disk claim format (the format the
//! TypeScript dispatcher writes), never through the library, so a parser bug cannot hide
//! behind a matching writer bug.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, anyhow, bail};
use nix::errno::Errno;
use serde::Serialize;

use entwurf_v2_spawn::GardenId;
use entwurf_v2_spawn::lock::{self, AcquireError, LockClaim, LockConflict, ReleaseOutcome};

use super::shared::{Env, gid, off_thread, scratch};
use crate::harness::catalog::{Check, Scenario};
use crate::harness::cleanup;
use crate::harness::runner::{Runner, expect_that, skip};
use crate::os;
use crate::stand_ins::args::ResidentArgs;

/// Runs the selected L checks concurrently (each on its own gid or dir).
pub async fn run(runner: &Runner, env: &Env) {
    let checks = Scenario::Lock.checks();
    let Some(scratch) = scratch(Scenario::Lock, runner, env, &checks).await else {
        return;
    };
    let dir = scratch.path();
    let locks = dir.join("locks");
    // The synchronous checks run on blocking threads: acquire fsyncs.
    let blocking = |f: fn(&Env, &Path) -> Result<()>, at: &Path| {
        let (env, at) = (env.clone(), at.to_path_buf());
        off_thread(move || f(&env, &at))
    };
    tokio::join!(
        runner.check(Check::LockFormat, blocking(format, dir)),
        runner.check(Check::LockConflict, blocking(conflict, &locks)),
        runner.check(Check::LockNonceRelease, blocking(nonce_release, &locks)),
        runner.check(Check::LockDeadReclaim, blocking(dead_reclaim, &locks)),
        runner.check(Check::LockOtherHost, blocking(other_host, &locks)),
        runner.check(Check::LockCorrupt, blocking(corrupt, &locks)),
        runner.check(Check::LockRace, super::lock_race::race(env, dir)),
        runner.check(Check::LockEperm, blocking(eperm, &locks)),
    );
}

fn acquire(lock_dir: &Path, gid: &GardenId) -> Result<LockClaim> {
    lock::acquire(lock_dir, gid).map_err(|e| anyhow!("lock::acquire: {e:#}"))
}

fn expect_conflict(result: Result<LockClaim, AcquireError>) -> Result<LockConflict> {
    match result {
        Err(AcquireError::Conflict(c)) => Ok(c),
        Ok(claim) => {
            let _ = lock::release(&claim);
            bail!(
                "acquired (pid {}, nonce {}) where a conflict was due",
                claim.pid(),
                claim.nonce()
            )
        }
        Err(e) => bail!("expected a conflict, got an I/O error: {e:#}"),
    }
}

fn hostname() -> Result<String> {
    Ok(nix::unistd::gethostname()
        .context("gethostname")?
        .to_string_lossy()
        .into_owned())
}

/// A claim as the TypeScript dispatcher writes it (field order included).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RawClaim<'a> {
    garden_id: &'a str,
    pid: u32,
    hostname: &'a str,
    created_at: String,
    nonce: &'a str,
    owner: &'a str,
    lock_path: &'a str,
}

/// Writes a foreign claim for `gid` held by `pid` on `host`; returns its path and bytes.
fn write_claim(
    lock_dir: &Path,
    gid: &GardenId,
    pid: u32,
    host: &str,
) -> Result<(PathBuf, Vec<u8>)> {
    std::fs::create_dir_all(lock_dir).context("lock dir")?;
    let path = lock::lock_path(lock_dir, gid);
    let claim = RawClaim {
        garden_id: gid.as_str(),
        pid,
        hostname: host,
        created_at: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
        nonce: "5a0c3e1f9b7d2468",
        owner: "entwurf_v2",
        lock_path: &path.to_string_lossy(),
    };
    let mut bytes = serde_json::to_vec(&claim)?;
    bytes.push(b'\n');
    std::fs::write(&path, &bytes).context("writing the claim")?;
    Ok((path, bytes))
}

/// Starts this binary as a stand-in resident with `args`, in a process group of its own
/// registered for `owner` (killed on every way out).
fn spawn_stand_in(env: &Env, owner: Check, args: &ResidentArgs) -> Result<Child> {
    let mut command = Command::new(&env.exe);
    command
        .args(args.to_args())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .process_group(0);
    Ok(cleanup::spawn_group(owner, || command.spawn(), Child::id)??)
}

/// A pid that provably belonged to a process that is now dead (we started and reaped it).
fn dead_pid(env: &Env) -> Result<u32> {
    let args = ResidentArgs {
        exit_code: Some(0),
        ..ResidentArgs::default()
    };
    let mut child = spawn_stand_in(env, Check::LockDeadReclaim, &args)
        .context("starting a short-lived child")?;
    let pid = child.id();
    child.wait().context("reaping it")?;
    expect_that(os::probe_pid(pid) == Err(Errno::ESRCH), || {
        format!("pid {pid} was reused at once")
    })?;
    Ok(pid)
}

fn unchanged(path: &Path, bytes: &[u8]) -> Result<()> {
    let now = std::fs::read(path).with_context(|| format!("{} was deleted", path.display()))?;
    expect_that(now == bytes, || format!("{} was rewritten", path.display()))?;
    let marker = format!("{}.reclaim", path.display());
    expect_that(!Path::new(&marker).exists(), || {
        format!("{marker} was left behind")
    })
}

fn format(_env: &Env, dir: &Path) -> Result<()> {
    let lock_dir = dir.join("fresh-locks");
    let gid = gid(0x401)?;
    let claim = acquire(&lock_dir, &gid)?;
    let path = claim.lock_path().to_path_buf();
    let text = std::fs::read_to_string(&path).context("reading the lock")?;
    let file_mode = std::fs::metadata(&path)?.permissions().mode() & 0o777;
    let dir_mode = std::fs::metadata(&lock_dir)?.permissions().mode() & 0o777;
    let checked = (|| {
        expect_that(
            text.ends_with('\n') && text.matches('\n').count() == 1,
            || format!("not one line with a trailing newline: {text:?}"),
        )?;
        let v: serde_json::Value = serde_json::from_str(&text).context("the claim is not JSON")?;
        let keys = [
            "gardenId",
            "pid",
            "hostname",
            "createdAt",
            "nonce",
            "owner",
            "lockPath",
        ];
        let object = v
            .as_object()
            .ok_or_else(|| anyhow!("the claim is not an object"))?;
        expect_that(object.len() == keys.len(), || {
            format!("unexpected keys in {text}")
        })?;
        let mut last = 0;
        for key in keys {
            let at = text
                .find(&format!("\"{key}\":"))
                .ok_or_else(|| anyhow!("{key} missing in {text}"))?;
            expect_that(at > last, || {
                format!("{key} out of the dispatcher's order in {text}")
            })?;
            last = at;
        }
        let s = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
        expect_that(s("gardenId") == gid.as_str(), || {
            format!("gardenId in {text}")
        })?;
        expect_that(
            v["pid"].as_u64() == Some(u64::from(std::process::id())),
            || format!("pid in {text}"),
        )?;
        expect_that(s("hostname") == hostname()?, || {
            format!("hostname in {text}")
        })?;
        expect_that(s("owner") == "entwurf_v2", || format!("owner in {text}"))?;
        expect_that(s("lockPath") == path.to_string_lossy(), || {
            format!("lockPath in {text}")
        })?;
        let nonce = s("nonce");
        expect_that(
            nonce.len() == 16
                && nonce
                    .bytes()
                    .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
            || format!("nonce {nonce:?} is not 16 lowercase hex"),
        )?;
        let created = s("createdAt");
        let shape = created.len() == 24
            && created.ends_with('Z')
            && created.as_bytes().get(19) == Some(&b'.');
        expect_that(shape && humantime::parse_rfc3339(&created).is_ok(), || {
            format!("createdAt {created:?} is not UTC ISO-8601 with milliseconds")
        })?;
        expect_that(file_mode == 0o600, || {
            format!("lock file mode {file_mode:o}, not 600")
        })?;
        expect_that(dir_mode == 0o700, || {
            format!("lock dir mode {dir_mode:o}, not 700")
        })
    })();
    let released = lock::release(&claim).map_err(|e| anyhow!("release: {e:#}"))?;
    checked?;
    expect_that(released == ReleaseOutcome::Released, || {
        format!("release said {released:?}")
    })
}

fn conflict(_env: &Env, locks: &Path) -> Result<()> {
    let gid = gid(0x402)?;
    let held = acquire(locks, &gid)?;
    let checked = (|| {
        let c = expect_conflict(lock::acquire(locks, &gid))?;
        let holder = c
            .holder
            .as_ref()
            .ok_or_else(|| anyhow!("conflict without the parsed holder: {}", c.message))?;
        expect_that(
            holder.nonce() == held.nonce() && holder.pid() == held.pid(),
            || format!("holder {holder:?} is not the claim that holds the lock"),
        )?;
        expect_that(c.lock_path == held.lock_path(), || {
            format!("conflict names {}", c.lock_path.display())
        })?;
        let modified = std::fs::metadata(held.lock_path())
            .and_then(|m| m.modified())
            .context("reading the lock file's mtime")?;
        for evidence in [
            held.pid().to_string(),
            held.hostname().to_owned(),
            held.created_at().to_owned(),
            format!(
                "file modified {}",
                humantime::format_rfc3339_millis(modified)
            ),
            format!("remove {}", held.lock_path().display()),
        ] {
            expect_that(c.message.contains(&evidence), || {
                format!("the message lacks {evidence:?}: {}", c.message)
            })?;
        }
        Ok(())
    })();
    let _ = lock::release(&held);
    checked
}

fn nonce_release(_env: &Env, locks: &Path) -> Result<()> {
    let gid = gid(0x403)?;
    let first = acquire(locks, &gid)?;
    let release = |c: &LockClaim| lock::release(c).map_err(|e| anyhow!("release: {e:#}"));
    let r = release(&first)?;
    expect_that(r == ReleaseOutcome::Released, || {
        format!("first release said {r:?}")
    })?;
    let successor = acquire(locks, &gid)?;
    let stale = release(&first)?;
    let still_there = successor.lock_path().exists();
    let mine = release(&successor)?;
    let again = release(&successor)?;
    expect_that(stale == ReleaseOutcome::NotOwned, || {
        format!("releasing the old claim over a successor said {stale:?}, not NotOwned")
    })?;
    expect_that(still_there, || {
        "the successor's lock file was removed by the old claim".into()
    })?;
    expect_that(mine == ReleaseOutcome::Released, || {
        format!("the successor's release said {mine:?}")
    })?;
    expect_that(again == ReleaseOutcome::Absent, || {
        format!("a second release said {again:?}, not Absent")
    })
}

fn dead_reclaim(env: &Env, locks: &Path) -> Result<()> {
    let gid = gid(0x404)?;
    let pid = dead_pid(env)?;
    let (path, _) = write_claim(locks, &gid, pid, &hostname()?)?;
    let claim = acquire(locks, &gid).context("reclaiming a dead holder's lock")?;
    let checked = (|| {
        expect_that(claim.pid() == std::process::id(), || {
            format!("the new claim says pid {}", claim.pid())
        })?;
        expect_that(claim.nonce() != "5a0c3e1f9b7d2468", || {
            "the old nonce was kept".into()
        })?;
        let text = std::fs::read_to_string(&path).context("reading the reclaimed lock")?;
        expect_that(text.contains(claim.nonce()), || {
            format!("the file holds {text}, not our claim")
        })?;
        let marker = format!("{}.reclaim", path.display());
        expect_that(!Path::new(&marker).exists(), || {
            format!("{marker} was left behind")
        })
    })();
    let _ = lock::release(&claim);
    checked
}

fn other_host(env: &Env, locks: &Path) -> Result<()> {
    let gid = gid(0x405)?;
    let pid = dead_pid(env)?;
    let host = "smoke-elsewhere.invalid";
    let (path, bytes) = write_claim(locks, &gid, pid, host)?;
    let c = expect_conflict(lock::acquire(locks, &gid))?;
    // The conflict must be *this* claim, parsed: any conflict (an unreadable file, say)
    // would otherwise pass.
    expect_that(
        c.holder
            .as_ref()
            .is_some_and(|h| h.pid() == pid && h.hostname() == host),
        || format!("conflict holder {:?} is not pid {pid} on {host}", c.holder),
    )?;
    unchanged(&path, &bytes)
}

fn corrupt(_env: &Env, locks: &Path) -> Result<()> {
    std::fs::create_dir_all(locks).context("lock dir")?;
    let wrong = gid(0x4ff)?;
    let (_, wrong_gid_claim) = write_claim(
        &locks.join("elsewhere"),
        &wrong,
        std::process::id(),
        &hostname()?,
    )?;
    let cases: [(&str, u32, &[u8]); 3] = [
        ("garbage", 0x406, b"{\"gardenId\":\"2026"),
        ("empty", 0x407, b""),
        ("wrong gid", 0x408, &wrong_gid_claim),
    ];
    for (what, n, bytes) in cases {
        let gid = gid(n)?;
        let path = lock::lock_path(locks, &gid);
        std::fs::write(&path, bytes).context("writing the lock")?;
        let c =
            expect_conflict(lock::acquire(locks, &gid)).with_context(|| format!("{what} lock"))?;
        expect_that(c.holder.is_none(), || {
            format!("{what} lock: parsed a holder {:?}", c.holder)
        })?;
        unchanged(&path, bytes).with_context(|| format!("{what} lock"))?;
    }
    Ok(())
}

/// The uid L8's holder drops to when the run is root's.
const NOBODY: u32 = 65534;

/// L8. An ordinary user meets EPERM at pid 1 (root's). Root may signal every pid, so a
/// root run makes the same EPERM itself: the holder is a live resident that dropped to
/// `nobody`, and the acquire runs on a thread without `CAP_KILL` (see
/// [`without_cap_kill`]) — a root run (CI) proves the EPERM arm too, not only a laptop's.
fn eperm(env: &Env, locks: &Path) -> Result<()> {
    let gid = gid(0x40a)?;
    if !nix::unistd::geteuid().is_root() {
        match os::probe_pid(1) {
            Err(Errno::EPERM) => {}
            other => return Err(skip(format!("kill(1, 0) gives {other:?} here, not EPERM"))),
        }
        return eperm_holder(locks, &gid, 1);
    }
    let args = ResidentArgs {
        lifeline: Some(env.gate),
        become_uid: Some(NOBODY),
        max_life_ms: Some(30_000),
        ..ResidentArgs::default()
    };
    let holder =
        spawn_stand_in(env, Check::LockEperm, &args).context("starting a holder as uid 65534")?;
    let pid = holder.id();
    let checked = without_cap_kill(|| {
        // The holder drops its ids right after exec: wait until it has.
        os::poll_until_blocking(Duration::from_secs(3), Duration::from_millis(1), || {
            os::probe_pid(pid) == Err(Errno::EPERM)
        });
        eperm_holder(locks, &gid, pid)
    });
    cleanup::kill_group(pid);
    let mut holder = holder;
    let _ = holder.wait();
    checked
}

/// A claim held by the live `pid` that this thread's `kill(pid, 0)` answers EPERM for:
/// acquiring (on this thread) must conflict, name that holder, and leave the file alone.
fn eperm_holder(locks: &Path, gid: &GardenId, pid: u32) -> Result<()> {
    let (path, bytes) = write_claim(locks, gid, pid, &hostname()?)?;
    let probed = os::probe_pid(pid);
    expect_that(probed == Err(Errno::EPERM), || {
        format!("kill({pid}, 0) gives {probed:?} to the acquirer, not EPERM")
    })?;
    let c = expect_conflict(lock::acquire(locks, gid))?;
    expect_that(c.holder.as_ref().is_some_and(|h| h.pid() == pid), || {
        format!("conflict holder {:?} is not pid {pid}", c.holder)
    })?;
    unchanged(&path, &bytes)
}

/// Runs `f` on a fresh thread whose effective capabilities lack `CAP_KILL`. Capabilities
/// are per thread on Linux (rustix's `capset` is the raw per-thread call), so the rest of
/// the run keeps them and the thread's credentials end with it; a pooled thread is never
/// used, as it would carry the loss into later work. Root without `CAP_KILL` gets EPERM
/// from `kill(pid, 0)` for a process of another uid, as an ordinary user does.
#[cfg(target_os = "linux")]
fn without_cap_kill(f: impl FnOnce() -> Result<()> + Send) -> Result<()> {
    std::thread::scope(|s| {
        s.spawn(|| {
            use rustix::thread::{CapabilitySet, capabilities, set_capabilities};
            let mut sets = capabilities(None).context("capget")?;
            sets.effective.remove(CapabilitySet::KILL);
            set_capabilities(None, sets).context("capset: dropping CAP_KILL")?;
            f()
        })
        .join()
        .unwrap_or_else(|_| Err(anyhow!("the thread without CAP_KILL panicked")))
    })
}

/// Off Linux there is no per-thread capability set to drop: a root run cannot meet EPERM.
#[cfg(not(target_os = "linux"))]
fn without_cap_kill(_f: impl FnOnce() -> Result<()> + Send) -> Result<()> {
    Err(skip(
        "running as root off Linux: no per-thread CAP_KILL to drop",
    ))
}
