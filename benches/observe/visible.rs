//! Section `visible`: what a visible resume's one observation costs the operator,
//! against the TypeScript dispatcher's 500 ms socket poll, from the same run.
//!
//! Every trial is a real `visible_resume` through `TmuxLauncher` into a private tmux
//! server (`tmux -L <unique> -f /dev/null`, killed at the end). The window runs a `pi`
//! wrapper that execs this bench's stand-in, which stamps CLOCK_MONOTONIC right after
//! the event the observation is waiting for:
//!
//! - socket trials: the stand-in listens after a uniform random 0–500 ms (so the poll's
//!   phase is uniform), then stamps. A 500 ms poll on the same probe (`observe` +
//!   `verdict`, as in `detection`) starts right before the resume is called. Each
//!   latency is the instant its waiter returned minus the stamp. The window is closed by
//!   the bench afterwards (the library never closes it).
//! - pane trials: the stand-in stamps and exits at once; the latency is the instant
//!   `visible_resume` returned `pane-exited` minus that stamp. The 500 ms poll never
//!   looks at the pane: it waits out its full bound (30 s) — stated, not measured.
//!
//! The resume's return includes the lock release (microseconds); for the observation
//! alone the socket figure is an upper bound.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use entwurf_v2_spawn::GardenId;
use entwurf_v2_spawn::production::ProductionOptions;
use entwurf_v2_spawn::production::identity::{LaunchIdentity, SessionIdentity};
use entwurf_v2_spawn::visible::{TmuxLauncher, VisibleOptions, visible_resume};
use tokio_util::sync::CancellationToken;

use crate::detection::poll_baseline;
use crate::stats::Row;
use crate::sys::{Rng, mono_ns, read_stamp};

pub const VARIANTS: [&str; 3] = [
    "socket-alive: visible observation (inotify + pidfd)",
    "socket-alive: poll 500 ms (TypeScript dispatcher)",
    "pane death → pane-exited reported",
];

pub struct Report {
    pub rows: Vec<Row>,
    pub failures: Vec<String>,
}

/// A private tmux server, killed (and its socket file removed) on drop.
struct Server {
    name: String,
    socket: Option<std::path::PathBuf>,
}

impl Server {
    fn start() -> Option<Self> {
        let name = format!("entwurf-visible-bench-{}", std::process::id());
        let ok = Command::new("tmux")
            .args([
                "-L",
                &name,
                "-f",
                "/dev/null",
                "new-session",
                "-d",
                "-s",
                "main",
            ])
            .arg("sleep 3600")
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return None;
        }
        let socket = Command::new("tmux")
            .args(["-L", &name, "display-message", "-p", "#{socket_path}"])
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().into());
        Some(Self { name, socket })
    }

    fn kill_window(&self, id: &str) {
        let _ = Command::new("tmux")
            .args(["-L", &self.name, "kill-window", "-t", id])
            .status();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.name, "kill-server"])
            .status();
        if let Some(socket) = &self.socket {
            let _ = std::fs::remove_file(socket);
        }
    }
}

/// Writes an executable `pi` that execs this bench as the stand-in in `mode`.
fn install_pi(dir: &Path, stand_in: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("bench exe");
    let pi = dir.join("pi");
    let script = format!(
        "#!/bin/sh\nexec '{}' {} {stand_in}\n",
        exe.display(),
        crate::standin::FLAG
    );
    std::fs::write(&pi, script).expect("pi");
    std::fs::set_permissions(&pi, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    pi
}

fn options(root: &Path, pi: &Path) -> VisibleOptions {
    let mut o = VisibleOptions::from_production(&ProductionOptions::with_home(root, None));
    o.shared.lock_dir = root.join("locks");
    o.shared.control_dir = root.join("control");
    o.shared.pi_program = pi.as_os_str().to_owned();
    o.observe_timeout = Duration::from_secs(5);
    let (cwd, file) = (root.to_path_buf(), root.join("session.jsonl"));
    o.resolve_session = Arc::new(move |_, _, ext| {
        Ok(SessionIdentity::new(
            file.clone(),
            LaunchIdentity::new(cwd.clone(), "bench").with_extension_args(ext.clone()),
        ))
    });
    o
}

/// `now − stamp` in ms, with both on CLOCK_MONOTONIC.
fn since_stamp(at: Instant, stamp: i128) -> f64 {
    let at_ns = mono_ns() - at.elapsed().as_nanos() as i128;
    (at_ns - stamp) as f64 / 1e6
}

pub async fn run(trials: usize, rng: &mut Rng) -> Option<Report> {
    let server = Server::start()?;
    let launcher = TmuxLauncher::named_server(&server.name, "main");
    let gid = GardenId::parse("20260613T000000-cccccc").expect("gid");
    let mut lat: [Vec<f64>; 3] = Default::default();
    let mut failures = Vec::new();

    for _ in 0..trials {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::create_dir_all(root.join("control")).expect("control dir");
        let (stamp, socket) = (root.join("stamp"), root.join(format!("control/{gid}.sock")));
        let delay = rng.delay(Duration::from_millis(500));
        let pi = install_pi(
            root,
            &format!(
                "listen '{}' '{}' {}",
                stamp.display(),
                socket.display(),
                delay.as_micros()
            ),
        );
        let o = options(root, &pi);
        let cancel = CancellationToken::new();
        let poll = tokio::spawn(poll_baseline(
            socket.clone(),
            Duration::from_millis(500),
            o.shared.probe_timeout,
            cancel.clone(),
        ));
        let result = visible_resume(&gid, &o, &launcher).await;
        let returned = Instant::now();
        let polled = tokio::time::timeout(Duration::from_secs(3), poll).await;
        let poll_returned = Instant::now();
        cancel.cancel();
        match (&result, read_stamp(&stamp)) {
            (Ok(done), Some(at)) if done.observation.kind() == "socket-alive" => {
                lat[0].push(since_stamp(returned, at).max(0.0));
                if matches!(polled, Ok(Ok(Ok(())))) {
                    lat[1].push(since_stamp(poll_returned, at).max(0.0));
                } else {
                    failures.push("the 500 ms poll did not see the socket".into());
                }
            }
            (other, _) => failures.push(format!("socket trial: {other:?}")),
        }
        if let Ok(done) = &result {
            server.kill_window(&done.launch.window_id);
        }
    }

    for _ in 0..trials {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::create_dir_all(root.join("control")).expect("control dir");
        let stamp = root.join("stamp");
        let delay = rng.delay(Duration::from_millis(50));
        let pi = install_pi(
            root,
            &format!("exit '{}' 3 {}", stamp.display(), delay.as_micros()),
        );
        let result = visible_resume(&gid, &options(root, &pi), &launcher).await;
        let returned = Instant::now();
        match (&result, read_stamp(&stamp)) {
            (Ok(done), Some(at)) if done.observation.kind() == "pane-exited" => {
                lat[2].push(since_stamp(returned, at).max(0.0));
            }
            (other, _) => failures.push(format!("pane trial: {other:?}")),
        }
    }
    drop(server);
    let rows = lat
        .into_iter()
        .zip(VARIANTS)
        .map(|(ms, v)| Row::new("visible", v, ms))
        .collect();
    Some(Report { rows, failures })
}
