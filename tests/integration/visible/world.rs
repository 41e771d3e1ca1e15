//! What the visible resume tests against real tmux share: a private tmux server, a saved
//! session, and a stand-in `pi` that records its argv.

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use entwurf_v2_spawn::GardenId;
use entwurf_v2_spawn::production::ProductionOptions;
use entwurf_v2_spawn::visible::VisibleOptions;

pub const GID: &str = "20260613T000000-bbbbbb";

/// Env var that turns this test binary into the stand-in `pi` (see `stand_in_pi`).
pub const STAND_IN_SOCKET: &str = "ENTWURF_VISIBLE_STAND_IN_SOCKET";

/// Whether tmux can be used. Absent: a local run skips with the reason, CI fails (CI
/// installs tmux, so a missing one means the gate would silently shrink).
pub fn tmux_available() -> bool {
    let found = Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "tmux is not installed, and CI must run the visible resume tests (apt-get install tmux)"
        );
        eprintln!("skipping: tmux is not installed (apt-get install tmux)");
    }
    found
}

/// A tmux server of our own (`-L <unique>`, no config), with one session `main`.
/// Killed on drop, with every window and stand-in in it; its first window kills it if
/// this process dies first.
pub struct PrivateTmux {
    pub name: String,
    socket: Option<PathBuf>,
}

impl PrivateTmux {
    pub fn start() -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "entwurf-visible-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        let mut server = Self { name, socket: None };
        let status = server
            .tmux()
            .args(["-f", "/dev/null", "new-session", "-d", "-s", "main"])
            .args(["-x", "100", "-y", "30", "--", "sh", "-c"])
            // The first window is a watchdog: should this test process die without
            // running its drops (SIGKILL), it kills the server within 100 ms.
            .arg("while kill -0 \"$0\" 2>/dev/null; do sleep 0.1; done; exec tmux -L \"$1\" kill-server")
            .arg(std::process::id().to_string())
            .arg(&server.name)
            .status()
            .expect("running tmux");
        assert!(status.success(), "starting the private tmux server");
        let out = server
            .tmux()
            .args(["display-message", "-p", "#{socket_path}"])
            .output()
            .expect("display-message");
        let path = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        server.socket = Some(PathBuf::from(path)).filter(|p| p.is_absolute());
        server
    }

    pub fn tmux(&self) -> Command {
        let mut command = Command::new("tmux");
        command.args(["-L", &self.name]);
        command
    }

    /// Every window id on the server.
    pub fn windows(&self) -> Vec<String> {
        let out = self
            .tmux()
            .args(["list-windows", "-a", "-F", "#{window_id}"])
            .output()
            .expect("list-windows");
        // A dead server lists nothing, and "nothing before == nothing after" would pass.
        assert!(
            out.status.success(),
            "tmux list-windows failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// The `$TMUX` value a shell inside this server's session `main` would see.
    pub fn tmux_env(&self) -> OsString {
        let out = self
            .tmux()
            .args(["display-message", "-p", "-t", "main"])
            .arg("#{socket_path},#{pid},#{session_id}")
            .output()
            .expect("display-message");
        let text = String::from_utf8_lossy(&out.stdout)
            .trim()
            .replace(",$", ",");
        OsString::from(text)
    }
}

impl Drop for PrivateTmux {
    fn drop(&mut self) {
        let _ = self.tmux().arg("kill-server").status();
        // tmux leaves its socket file behind.
        if let Some(socket) = &self.socket {
            let _ = std::fs::remove_file(socket);
        }
    }
}

/// A saved session, lock/control dirs and a stand-in `pi` in a temp dir.
pub struct World {
    pub tmp: tempfile::TempDir,
    pub gid: GardenId,
    pub options: VisibleOptions,
    pub cwd: PathBuf,
    pub session_file: PathBuf,
    pub argv_file: PathBuf,
    pub bin: PathBuf,
}

impl World {
    pub fn new() -> Self {
        let tmp = tempfile::tempdir().expect("tmp");
        let root = tmp.path().to_path_buf();
        let gid = GardenId::parse(GID).expect("gid");
        let (cwd, bin) = (root.join("work"), root.join("bin"));
        let sessions = root.join("agent/sessions/d");
        for dir in [&cwd, &bin, &sessions, &root.join("control")] {
            std::fs::create_dir_all(dir).expect("mkdir");
        }
        let session_file = sessions.join("s.jsonl");
        std::fs::write(
            &session_file,
            format!(
                "{{\"type\":\"session\",\"id\":\"{GID}\",\"cwd\":{cwd:?}}}\n\
                 {{\"type\":\"model_change\",\"provider\":\"prov\",\"modelId\":\"model\"}}\n"
            ),
        )
        .expect("session");
        let mut options = VisibleOptions::from_production(&ProductionOptions::with_home(
            &root,
            Some(root.join("agent")),
        ));
        options.shared.lock_dir = root.join("locks");
        options.shared.control_dir = root.join("control");
        options.observe_timeout = Duration::from_secs(10);
        let argv_file = root.join("argv");
        Self {
            tmp,
            gid,
            options,
            cwd,
            session_file,
            argv_file,
            bin,
        }
    }

    /// Installs `bin/pi`: it records its argv (NUL-separated), then runs `then` (shell).
    pub fn install_pi(&mut self, then: &str) {
        let pi = self.bin.join("pi");
        let script = format!(
            "#!/bin/sh\nprintf '%s\\0' \"$@\" > '{}'\n{then}\n",
            self.argv_file.display()
        );
        std::fs::write(&pi, script).expect("write pi");
        std::fs::set_permissions(&pi, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        self.options.shared.pi_program = pi.into_os_string();
    }

    /// A `pi` that becomes this test binary's stand-in, which binds the control socket.
    /// `module` is the `module_path!()` where `stand_in_pi` is defined.
    pub fn install_binding_pi(&mut self, module: &str) {
        let exe = std::env::current_exe().expect("current exe");
        // The stand-in's test path as libtest knows it: the module without the crate.
        let test = match module.split_once("::") {
            Some((_, rest)) => format!("{rest}::stand_in_pi"),
            None => "stand_in_pi".to_owned(),
        };
        let socket = self.options.socket_path(&self.gid);
        self.install_pi(&format!(
            "exec env {STAND_IN_SOCKET}='{}' '{}' --exact '{test}' --ignored --nocapture -q",
            socket.display(),
            exe.display()
        ));
    }

    /// The argv the stand-in recorded, if it ran.
    pub fn recorded_argv(&self) -> Option<Vec<String>> {
        let bytes = std::fs::read(&self.argv_file).ok()?;
        let text = String::from_utf8(bytes).ok()?;
        Some(text.split_terminator('\0').map(str::to_owned).collect())
    }

    pub fn lock_exists(&self) -> bool {
        entwurf_v2_spawn::lock::lock_path(&self.options.shared.lock_dir, &self.gid).exists()
    }
}

/// Polls `cond` for up to `limit` (for effects of another process).
pub fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    cond()
}

/// An executable `tmux` stand-in that records that it ran and prints `output`.
pub fn fake_tmux(dir: &Path, output: &str) -> (PathBuf, PathBuf) {
    let (tmux, ran) = (dir.join("fake-tmux"), dir.join("fake-tmux-ran"));
    std::fs::write(
        &tmux,
        format!(
            "#!/bin/sh\ntouch '{}'\nprintf '%s' '{output}'\n",
            ran.display()
        ),
    )
    .expect("write fake tmux");
    std::fs::set_permissions(&tmux, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    (tmux, ran)
}

/// A release counter around the real release.
pub fn count_releases(options: &mut VisibleOptions) -> Arc<AtomicUsize> {
    let count = Arc::new(AtomicUsize::new(0));
    let counted = count.clone();
    options.shared.release = Arc::new(move |claim| {
        counted.fetch_add(1, Ordering::SeqCst);
        entwurf_v2_spawn::lock::release(claim)
    });
    count
}
