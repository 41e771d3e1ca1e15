//! The `visible` scenario's private tmux server: started as a registered child group
//! under the guard (it dies with the gate process), and stopped by V8.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};

use entwurf_v2_spawn::error_chain;
use entwurf_v2_spawn::production::child::{ChildHandle, SpawnRequest, StderrTarget};
use entwurf_v2_spawn::visible::TmuxLauncher;

use super::super::shared::{Env, bounded, kill_child, off_thread, spawn_registered};
use crate::harness::catalog::Check;
use crate::harness::runner::expect_that;
use crate::stand_ins::args::GuardArgs;

/// Generous: a stand-in binds within milliseconds, tmux answers as fast; the bound only
/// matters on failure (the visible checks' observations use it too).
pub(crate) const OBSERVE: Duration = Duration::from_secs(3);

/// A private tmux server of the run (the `visible` scenario's, or a real pi runtime's).
pub(crate) struct Server {
    handle: ChildHandle,
    socket: PathBuf,
    /// `$TMUX` as a shell inside session `main` sees it.
    tmux_env: OsString,
    /// The pid of session `main`'s pane, which only waits for its terminal to hang up.
    idle_pane: u32,
}

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
/// registered, cleanup still kills it on every way out, and its group is killed after
/// [`OBSERVE`] if the server never answers. The blocking task reads the client's output
/// to its end and reaps it: no polling, the client's exit is what wakes it.
async fn run_tmux(socket: &Path, args: Vec<OsString>) -> Result<String> {
    use std::os::unix::process::CommandExt;
    use std::process::{Child, Stdio};
    let socket = socket.to_path_buf();
    let pid = Arc::new(AtomicU32::new(0));
    let client = pid.clone();
    let what = format!("tmux {args:?}");
    let ran = off_thread(move || {
        let mut command = tmux(&socket);
        command
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let child = crate::harness::cleanup::spawn_group(
            Check::VisibleNothingLeft,
            || command.spawn(),
            Child::id,
        )?
        .context("running tmux")?;
        client.store(child.id(), Ordering::SeqCst);
        // Its output is one short listing: reading both pipes to their end cannot
        // deadlock, and the end comes when the client exits (or is killed).
        let out = child.wait_with_output().context("reading tmux's output")?;
        if !out.status.success() {
            bail!(
                "tmux {args:?}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    });
    tokio::pin!(ran);
    match tokio::time::timeout(OBSERVE, &mut ran).await {
        Ok(ran) => ran,
        Err(_) => {
            // Its group is its own (see above): killing it ends the read, and the
            // blocking task reaps it.
            let pid = pid.load(Ordering::SeqCst);
            if pid != 0 {
                crate::harness::cleanup::kill_group(pid);
            }
            let _ = ran.await;
            bail!("{what}: no answer within {OBSERVE:?}")
        }
    }
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
        // The server runs under the guard (`stand_ins::guard`): this binary's watcher in
        // the server's process group SIGKILLs that group the moment the gate process is
        // gone (SIGKILL included), waiting on pidfds, no timer; the server's panes then
        // lose their terminal (SIGHUP). `tmux -D` stays in the foreground: the library's
        // child is the server itself.
        let guard = GuardArgs {
            lifeline: env.gate,
            program: [
                "tmux".into(),
                "-D".into(),
                "-S".into(),
                socket.clone().into_os_string(),
            ]
            .into_iter()
            .chain(["-f".into(), "/dev/null".into()])
            .collect(),
        };
        let request = SpawnRequest::new(env.exe.clone(), guard.to_args(), dir)
            .with_stderr(StderrTarget::AppendTo(dir.join("tmux.stderr.log")))
            .with_backend(env.backend);
        // Owned by the check that stops it (V8: the server lives across all V checks).
        let handle = spawn_registered(owner, &request)
            .map_err(|e| anyhow!("starting tmux -D: {}", error_chain(&e)))?;
        let mut server = Self {
            handle,
            socket,
            tmux_env: OsString::new(),
            idle_pane: 0,
        };
        if let Err(e) = server.open_session().await {
            kill_child(&server.handle).await;
            let said = super::super::shared::stderr_note(&dir.join("tmux.stderr.log"));
            return Err(anyhow!("{e:#}{said}"));
        }
        Ok(server)
    }

    async fn open_session(&mut self) -> Result<()> {
        let socket = self.socket.clone();
        let handle = &self.handle;
        let up = crate::os::poll_until(OBSERVE, Duration::from_millis(1), || {
            socket.exists() || handle.try_exit().is_some()
        })
        .await;
        if !up || !self.socket.exists() {
            bail!("the tmux server never made its socket");
        }
        // Session `main` holds a pane that only waits on its terminal: tmux hangs it up
        // when the server ends. `-P -F` prints what the checks need in the same client.
        let args: Vec<OsString> = vec![
            "new-session".into(),
            "-d".into(),
            "-s".into(),
            "main".into(),
            "-x".into(),
            "100".into(),
            "-y".into(),
            "30".into(),
            "-P".into(),
            "-F".into(),
            "#{pane_pid} #{socket_path},#{pid},#{session_id}".into(),
            "--".into(),
            "cat".into(),
            "-".into(),
        ];
        let value = run_tmux(&self.socket, args).await?;
        let (pid, tmux_env) = value
            .trim()
            .split_once(' ')
            .ok_or_else(|| anyhow!("tmux new-session -P printed {value:?}"))?;
        self.idle_pane = pid.parse().context("the idle pane's pid")?;
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
        for (what, pid) in [
            ("the stand-in pi", stand_in),
            ("session main's pane", Some(self.idle_pane)),
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
