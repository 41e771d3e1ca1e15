//! The `visible` scenario's private tmux server: started as a registered child group,
//! watched by a window that kills it once the gate process is gone, and stopped by V8.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};

use entwurf_v2_spawn::error_chain;
use entwurf_v2_spawn::production::child::{ChildHandle, SpawnRequest, StderrTarget};
use entwurf_v2_spawn::visible::TmuxLauncher;

use super::super::shared::{Env, bounded, kill_child, off_thread, spawn_registered};
use crate::harness::catalog::Check;
use crate::harness::runner::expect_that;

/// Generous: a stand-in binds within milliseconds, tmux answers as fast; the bound only
/// matters on failure (the visible checks' observations use it too).
pub(crate) const OBSERVE: Duration = Duration::from_secs(3);

/// A private tmux server of the run (the `visible` scenario's, or a real pi runtime's).
pub(crate) struct Server {
    handle: ChildHandle,
    socket: PathBuf,
    /// `$TMUX` as a shell inside session `main` sees it.
    tmux_env: OsString,
    /// The watchdog's pid (the pane of session `main`).
    watchdog: u32,
}

/// A shell function, `runs PID START`: whether process PID still runs and is the one
/// that started at START (field 22 of `/proc/PID/stat`, clock ticks after boot). The
/// watchdogs know the gate process by both, never by its pid alone: a pid reused after the
/// gate process died would keep a pid-only watchdog (and the server it guards) alive for good.
/// Fields are counted after the last `) ` (the command name may hold both); a zombie
/// (`Z`) no longer runs. `read` is a builtin: a look every 0.1 s forks nothing.
const RUNS: &str = "runs() { { read -r s < \"/proc/$1/stat\"; } 2>/dev/null || return 1; \
     s=${s##*\") \"}; set -- \"$2\" $s; [ \"$2\" != Z ] && [ \"${21}\" = \"$1\" ]; }; ";

fn tmux(socket: &Path) -> Command {
    let mut command = Command::new("tmux");
    command.arg("-S").arg(socket);
    command
}

/// Runs a tmux command off the runtime thread; its stdout, or why it failed.
///
/// The client runs in a process group of its own, registered like every child of the
/// run (owned by V8, whose server it talks to). In the gate process's group it was the first
/// to die of a terminal's SIGINT or SIGHUP (`kill-pane`, Ctrl-C), and the check waiting
/// on it reported that collateral as a FAIL before the run saw its own signal. Being
/// registered, cleanup still kills it on every way out, and it is killed after
/// [`OBSERVE`] if the server never answers.
async fn run_tmux(socket: &Path, args: Vec<OsString>) -> Result<String> {
    use std::os::unix::process::CommandExt;
    use std::process::{Child, Stdio};
    let socket = socket.to_path_buf();
    off_thread(move || {
        let mut command = tmux(&socket);
        command
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = crate::harness::cleanup::spawn_group(
            Check::VisibleNothingLeft,
            || command.spawn(),
            Child::id,
        )?
        .context("running tmux")?;
        let started = std::time::Instant::now();
        // The output is one short listing, far below a pipe's buffer: waiting before
        // reading cannot deadlock.
        while child.try_wait().context("waiting for tmux")?.is_none() {
            if started.elapsed() > OBSERVE {
                let _ = child.kill();
                let _ = child.wait();
                bail!("tmux {args:?}: no answer within {OBSERVE:?}");
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let out = child.wait_with_output().context("reading tmux's output")?;
        if !out.status.success() {
            bail!(
                "tmux {args:?}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    })
    .await
}

impl Server {
    /// Starts a server in `dir`, listening on `socket`, whose process group belongs to
    /// `owner` (abandoning that check kills it). `socket` goes in a scenario's socket
    /// dir (`Scratch::sockets`): tmux binds by path, so it must fit `sun_path`, and the
    /// dir leaves with the scenario on every way out.
    pub(crate) async fn start(
        dir: &Path,
        socket: PathBuf,
        env: &Env,
        owner: Check,
    ) -> Result<Self> {
        // The server runs under a small guard shell, its group leader, which kills it the
        // moment the gate process is gone. The watchdog window below does the same, but only
        // once it exists: a gate process SIGKILLed between the server's start and that window
        // left the server running for good (seen in about 1 run in 3 killed that early).
        // When the server ends (kill-server), the guard takes its whole group with it.
        let guard = format!(
            "{RUNS}tmux -D -S \"$1\" -f /dev/null & t=$!; \
             (while runs \"$2\" \"$3\" && kill -0 \"$t\" 2>/dev/null; do sleep 0.1; done; \
             kill -9 \"$t\" 2>/dev/null) & \
             wait \"$t\"; kill -9 0"
        );
        let args: [OsString; 6] = [
            "-c".into(),
            guard.into(),
            "sh".into(),
            socket.clone().into(),
            env.gate.pid.to_string().into(),
            env.gate.start_time.to_string().into(),
        ];
        let request = SpawnRequest::new("sh", args, dir)
            .with_stderr(StderrTarget::AppendTo(dir.join("tmux.stderr.log")))
            .with_backend(env.backend);
        // Owned by the check that stops it (V8: the server lives across all V checks).
        let handle = spawn_registered(owner, &request)
            .map_err(|e| anyhow!("starting tmux -D: {}", error_chain(&e)))?;
        let mut server = Self {
            handle,
            socket,
            tmux_env: OsString::new(),
            watchdog: 0,
        };
        if let Err(e) = server.open_session(env.gate).await {
            kill_child(&server.handle).await;
            return Err(e);
        }
        Ok(server)
    }

    async fn open_session(&mut self, gate: crate::os::ProcessId) -> Result<()> {
        let socket = self.socket.clone();
        let up = crate::os::poll_until(Duration::from_secs(3), Duration::from_millis(5), || {
            socket.exists()
        })
        .await;
        if !up {
            bail!("the tmux server never made its socket");
        }
        // The watchdog: as soon as the gate process is gone (SIGKILL included), kill the server.
        let watchdog = format!(
            "{RUNS}while runs \"$0\" \"$2\"; do sleep 0.1; done; exec tmux -S \"$1\" kill-server"
        );
        let args: Vec<OsString> = vec![
            "new-session".into(),
            "-d".into(),
            "-s".into(),
            "main".into(),
            "-x".into(),
            "100".into(),
            "-y".into(),
            "30".into(),
            "--".into(),
            "sh".into(),
            "-c".into(),
            watchdog.into(),
            gate.pid.to_string().into(),
            self.socket.clone().into(),
            gate.start_time.to_string().into(),
        ];
        run_tmux(&self.socket, args).await?;
        let value = run_tmux(
            &self.socket,
            vec![
                "display-message".into(),
                "-p".into(),
                "-t".into(),
                "main".into(),
                "#{pane_pid} #{socket_path},#{pid},#{session_id}".into(),
            ],
        )
        .await?;
        let (pid, tmux_env) = value
            .trim()
            .split_once(' ')
            .ok_or_else(|| anyhow!("tmux display-message printed {value:?}"))?;
        self.watchdog = pid.parse().context("the watchdog's pid")?;
        self.tmux_env = tmux_env.replace(",$", ",").into();
        Ok(())
    }

    /// Closes a window (its pane's process gets SIGHUP from tmux).
    pub(crate) async fn kill_window(&self, window_id: &str) -> Result<()> {
        run_tmux(
            &self.socket,
            vec!["kill-window".into(), "-t".into(), window_id.into()],
        )
        .await
        .map(drop)
    }

    pub(crate) fn launcher(&self) -> TmuxLauncher {
        TmuxLauncher::caller(Some(self.tmux_env.clone()))
    }

    pub(crate) async fn windows(&self) -> Result<Vec<String>> {
        let out = run_tmux(
            &self.socket,
            vec![
                "list-windows".into(),
                "-a".into(),
                "-F".into(),
                "#{window_id}".into(),
            ],
        )
        .await?;
        Ok(out.lines().map(str::to_owned).collect())
    }

    /// Kills the server (V8's body): reaped, its socket gone, and the stand-in of V1 (if
    /// any) gone with it.
    pub(crate) async fn stop(self, stand_in: Option<u32>) -> Result<()> {
        let killed = run_tmux(&self.socket, vec!["kill-server".into()]).await;
        let exited = bounded(OBSERVE, "the tmux server's exit", self.handle.exit()).await;
        if exited.is_err() {
            kill_child(&self.handle).await;
        }
        killed?;
        exited?.map_err(|e| anyhow!("{}", error_chain(&e)))?;
        let watchdog = self.watchdog;
        for (what, pid) in [
            ("the stand-in pi", stand_in),
            ("the watchdog", Some(watchdog)),
        ] {
            let Some(pid) = pid else { continue };
            // A zombie no longer runs: this machine's init may reap orphans late.
            let gone = crate::os::poll_until(OBSERVE, Duration::from_millis(5), || {
                crate::os::proc_stat(pid).is_none_or(|stat| stat.is_dead())
            })
            .await;
            expect_that(gone, || {
                format!("{what} (pid {pid}) outlived the tmux server")
            })?;
        }
        let _ = std::fs::remove_file(&self.socket);
        Ok(())
    }
}
