//! The dispatch lock against real files, real pids and real competing processes.

use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::{FileTypeExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use entwurf_v2_spawn::GardenId;
use entwurf_v2_spawn::lock::{
    AcquireError, LockClaim, ReleaseOutcome, acquire, lock_path, parse_claim, reclaim_marker_path,
    release,
};

const GID: &str = "20260613T000000-aaaaaa";
const TS_LINE: &str = "{\"gardenId\":\"20260613T000000-aaaaaa\",\"pid\":4242,\"hostname\":\"nuc\",\"createdAt\":\"2026-06-13T03:55:45.123Z\",\"nonce\":\"9f2c4e01a7b3d855\",\"owner\":\"entwurf_v2\",\"lockPath\":\"/home/u/.pi/entwurf-v2-locks/20260613T000000-aaaaaa.lock\"}\n";

fn gid() -> GardenId {
    GardenId::parse(GID).expect("gid")
}

fn our_hostname() -> String {
    nix::unistd::gethostname()
        .expect("hostname")
        .to_string_lossy()
        .into_owned()
}

/// A pid that provably belonged to a process that is gone (spawned, exited, reaped).
fn dead_pid() -> u32 {
    let mut child = Command::new("true").spawn().expect("spawn true");
    let pid = child.id();
    child.wait().expect("wait true");
    pid
}

/// A claim line in the exact on-disk format, as another dispatcher would write it.
fn claim_line(path: &Path, gid: &str, pid: u32, host: &str, nonce: &str) -> String {
    format!(
        "{{\"gardenId\":\"{gid}\",\"pid\":{pid},\"hostname\":{},\"createdAt\":\"2026-06-13T03:55:45.123Z\",\"nonce\":\"{nonce}\",\"owner\":\"entwurf_v2\",\"lockPath\":{}}}\n",
        serde_json::Value::from(host),
        serde_json::Value::from(path.to_str().expect("utf-8 temp path")),
    )
}

struct Setup {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    path: PathBuf,
}

/// A lock dir that does not exist yet (acquire must create it).
fn setup() -> Setup {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("home/.pi/entwurf-v2-locks");
    let path = lock_path(&dir, &gid());
    Setup {
        _tmp: tmp,
        dir,
        path,
    }
}

/// Like [`setup`], with `line` already written at the lock path by "someone else".
fn setup_with(line: &str) -> Setup {
    let s = setup();
    fs::create_dir_all(&s.dir).expect("mkdir");
    fs::write(&s.path, line).expect("write foreign lock");
    s
}

fn conflict(result: Result<LockClaim, AcquireError>) -> entwurf_v2_spawn::lock::LockConflict {
    match result {
        Err(AcquireError::Conflict(c)) => c,
        Err(other) => panic!("expected a conflict, got {other:?}"),
        Ok(claim) => panic!("expected a conflict, acquired {claim:?}"),
    }
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).expect("stat").permissions().mode() & 0o7777
}

fn dir_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn is_iso_millis(s: &str) -> bool {
    let shape = b"dddd-dd-ddTdd:dd:dd.dddZ";
    s.len() == shape.len()
        && s.bytes().zip(shape).all(|(c, w)| match w {
            b'd' => c.is_ascii_digit(),
            w => c == *w,
        })
}

mod claims;
mod race;
