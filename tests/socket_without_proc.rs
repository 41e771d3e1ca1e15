//! Without `/proc`, the native probe cannot resolve `/proc/self/fd/<n>` to the socket
//! inode it holds open, and its connect fails with `ENOENT`. That says nothing about the
//! socket (a held inode cannot be gone): the probe must be indeterminate, never "dead".
//!
//! The test re-executes this binary in a private mount namespace whose `/proc` is an
//! empty tmpfs (`unshare --mount`, as root; otherwise in a user namespace when the
//! kernel allows it), running the ignored helper below. Its own binary: the namespace
//! is per process, and nothing else should run without `/proc`.

#![cfg(target_os = "linux")]

use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use entwurf_v2_spawn::Backend;
use entwurf_v2_spawn::socket::{
    Inspection, Probe, ProbeDoubt, Verdict, inspect_and_probe, verdict,
};

const DIR_ENV: &str = "ENTWURF_NO_PROC_DIR";
const OK: &str = "NO-PROC-HELPER-OK";

/// Not a test on its own: the process that runs without `/proc`.
#[tokio::test]
#[ignore = "helper process for a_live_socket_seen_without_proc_is_indeterminate"]
async fn no_proc_helper_process() {
    let Some(dir) = std::env::var_os(DIR_ENV).map(PathBuf::from) else {
        eprintln!("no_proc_helper_process only runs under its test");
        return;
    };
    assert!(
        std::fs::read_dir("/proc").expect("/proc").next().is_none(),
        "/proc is still mounted here"
    );
    let path = dir.join("live.sock");
    let _listener = UnixListener::bind(&path).expect("bind");
    let seen = inspect_and_probe(&path, Duration::from_millis(300), Backend::Native).await;
    assert_eq!(seen.inspection, Inspection::SocketFile);
    match &seen.probe {
        Some(Probe::Indeterminate(ProbeDoubt::Os(e))) => {
            assert_eq!(e.errno(), nix::errno::Errno::ENOENT, "{e}");
        }
        other => panic!("expected an indeterminate probe, got {other:?}"),
    }
    assert_eq!(verdict(&seen), Verdict::Wait);
    println!("{OK}");
}

#[test]
fn a_live_socket_seen_without_proc_is_indeterminate() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let exe = std::env::current_exe().expect("current exe");
    let mut unshare = Command::new("unshare");
    if !nix::unistd::geteuid().is_root() {
        unshare.args(["--user", "--map-root-user"]);
    }
    let out = unshare
        .args(["--mount", "--fork", "sh", "-c"])
        .arg("mount -t tmpfs none /proc && exec \"$0\" \"$@\"")
        .arg(&exe)
        .args([
            "--exact",
            "no_proc_helper_process",
            "--include-ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(DIR_ENV, tmp.path())
        .output();
    let out = match out {
        Ok(out) => out,
        Err(e) => return skip_unless_ci(&format!("unshare: {e} (apt-get install util-linux)")),
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() && !stdout.contains("running 1 test") {
        return skip_unless_ci(&format!("no private mount namespace here: {stderr}"));
    }
    assert!(
        out.status.success() && stdout.contains(OK),
        "helper failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
}

/// A missing tool or kernel facility skips the test with a message, except on CI, which
/// installs everything: there a skip would hide a check that silently stopped running.
fn skip_unless_ci(why: &str) {
    assert!(std::env::var_os("CI").is_none(), "required on CI: {why}");
    eprintln!("skip: {why}");
}
