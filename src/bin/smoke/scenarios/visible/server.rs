//! The `visible` scenario's private tmux server: started as a registered child group
//! under the guard (it dies with the gate process), and stopped by V8.

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
    /// The server's children once session `main` was open: the guard's watcher
    /// (`stand_ins::guard`; running, or a zombie once it exited) and the idle pane.
    /// Known by pid, not by what they run: an exited watcher's zombie has no argv.
    first_children: Vec<u32>,
}

fn tmux(socket: &Path) -> Command {
    let mut command = Command::new("tmux");
    command.arg("-S").arg(socket);
    command
}

/// Runs a tmux command off the runtime thread; its stdout, or why it failed (see
/// [`tmux_blocking`]).
async fn run_tmux(socket: &Path, args: Vec<OsString>) -> Result<String> {
    let socket = socket.to_path_buf();
    off_thread(move || tmux_blocking(&socket, &args)).await
}

/// Runs a tmux command; its stdout, or why it failed.
///
/// The client runs in a process group of its own, registered like every child of the
/// run (owned by V8, whose server it talks to). In the gate process's group it was the first
/// to die of a terminal's SIGINT or SIGHUP (`kill-pane`, Ctrl-C), and the check waiting
/// on it reported that collateral as a FAIL before the run saw its own signal. Being
/// registered, cleanup still kills it on every way out, and it is killed after
/// [`OBSERVE`] if the server never answers. Its exit is waited for, not polled
/// ([`exited_within`]).
fn tmux_blocking(socket: &Path, args: &[OsString]) -> Result<String> {
    use std::os::unix::process::CommandExt;
    use std::process::{Child, Stdio};
    let mut command = tmux(socket);
    command
        .args(args)
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
    // The output is one short listing, far below a pipe's buffer: waiting before
    // reading cannot deadlock.
    if !exited_within(&mut child, OBSERVE).context("waiting for tmux")? {
        let _ = child.kill();
        let _ = child.wait();
        bail!("tmux {args:?}: no answer within {OBSERVE:?}");
    }
    let out = child.wait_with_output().context("reading tmux's output")?;
    if !out.status.success() {
        bail!(
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Whether `child` exits within `limit`, blocking until it does or the time is up: a
/// `poll` on its pidfd, so the exit itself wakes the thread (it stays unreaped).
#[cfg(target_os = "linux")]
fn exited_within(child: &mut std::process::Child, limit: Duration) -> std::io::Result<bool> {
    use rustix::event::{PollFd, PollFlags, Timespec, poll};
    use rustix::process::{Pid, PidfdFlags, pidfd_open};
    let pidfd = pidfd_open(Pid::from_child(child), PidfdFlags::empty())?;
    let timeout = Timespec::try_from(limit).map_err(std::io::Error::other)?;
    loop {
        let mut fds = [PollFd::new(&pidfd, PollFlags::IN)];
        match poll(&mut fds, Some(&timeout)) {
            Ok(n) => return Ok(n > 0),
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// Off Linux (no pidfd): a look every millisecond.
#[cfg(not(target_os = "linux"))]
fn exited_within(child: &mut std::process::Child, limit: Duration) -> std::io::Result<bool> {
    let started = std::time::Instant::now();
    while child.try_wait()?.is_none() {
        if started.elapsed() > limit {
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(true)
}

/// Waits for the server `handle` to make `socket`, then opens session `main`; the
/// pid of its pane and `$TMUX` as a shell in it sees it.
fn open_session(handle: &ChildHandle, socket: &Path) -> Result<(u32, OsString)> {
    let up = crate::os::poll_until_blocking(OBSERVE, Duration::from_millis(1), || {
        socket.exists() || handle.try_exit().is_some()
    });
    if !up || !socket.exists() {
        bail!("the tmux server never made its socket");
    }
    // Session `main` holds a pane that only waits on its terminal: tmux hangs it up
    // when the server ends. `-P -F` prints what the checks need in the same client.
    let args: Vec<OsString> = [
        "new-session",
        "-d",
        "-s",
        "main",
        "-x",
        "100",
        "-y",
        "30",
        "-P",
        "-F",
        "#{pane_pid} #{socket_path},#{pid},#{session_id}",
        "--",
        "cat",
        "-",
    ]
    .into_iter()
    .map(OsString::from)
    .collect();
    let value = tmux_blocking(socket, &args)?;
    let (pid, tmux_env) = value
        .trim()
        .split_once(' ')
        .ok_or_else(|| anyhow!("tmux new-session -P printed {value:?}"))?;
    let pid = pid.parse().context("the idle pane's pid")?;
    Ok((pid, tmux_env.replace(",$", ",").into()))
}

/// The pids whose parent is `pid` (none where `/proc` is not there).
fn children_of(pid: u32) -> Vec<u32> {
    crate::os::processes()
        .into_iter()
        .filter(|(_, stat)| stat.ppid == pid)
        .map(|(child, _)| child)
        .collect()
}

impl Server {
    /// Starts a server in `dir`, listening on `socket`, whose process group belongs to
    /// `owner` (abandoning that check kills it). `socket` goes in a scenario's socket
    /// dir (`Scratch::sockets`): tmux binds by path, so it must fit `sun_path`, and the
    /// dir leaves with the scenario on every way out.
    ///
    /// The whole start (the server, its socket, session `main`) runs on one blocking
    /// thread: each step follows the last at once, not when the busy runtime thread
    /// next comes round.
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
        let log = dir.join("tmux.stderr.log");
        let request = SpawnRequest::new(env.exe.clone(), guard.to_args(), dir)
            .with_stderr(StderrTarget::AppendTo(log.clone()))
            .with_backend(env.backend);
        let started = off_thread(move || {
            // Owned by the check that stops it (V8: the server lives across all V checks).
            let handle = spawn_registered(owner, &request)
                .map_err(|e| anyhow!("starting tmux -D: {}", error_chain(&e)))?;
            let session = open_session(&handle, &socket);
            Ok((handle, socket, session))
        })
        .await?;
        let (handle, socket, session) = started;
        match session {
            Ok((idle_pane, tmux_env)) => {
                let server = handle.pid();
                let first_children = off_thread(move || Ok(children_of(server))).await?;
                Ok(Self {
                    handle,
                    socket,
                    tmux_env,
                    idle_pane,
                    first_children,
                })
            }
            Err(e) => {
                kill_child(&handle).await;
                let said = super::super::shared::stderr_note(&log);
                Err(anyhow!("{e:#}{said}"))
            }
        }
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

    /// The server's children that are neither panes' processes nor its first children
    /// (the guard's watcher), each as `pid [state] argv`:
    /// the jobs it runs for a format's `#(…)`, which it forks the moment it expands one
    /// (a job that is done leaves its zombie until tmux reaps it, and its effects).
    /// `None` where `/proc` does not show the server itself (not Linux, or hidden): no
    /// verdict can be drawn from what it does not list.
    ///
    /// Asked while no window comes or goes (under the window lock), so the panes
    /// listed are all there are.
    pub(crate) async fn jobs(&self) -> Result<Option<Vec<String>>> {
        let panes = run_tmux(
            &self.socket,
            vec![
                "list-panes".into(),
                "-a".into(),
                "-F".into(),
                "#{pane_pid}".into(),
            ],
        )
        .await?;
        let panes: Vec<u32> = panes
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect();
        let server = self.handle.pid();
        let first = self.first_children.clone();
        off_thread(move || {
            let all = crate::os::processes();
            if !all.iter().any(|(pid, _)| *pid == server) {
                return Ok(None);
            }
            let jobs = all
                .into_iter()
                .filter(|(pid, stat)| {
                    stat.ppid == server && !panes.contains(pid) && !first.contains(pid)
                })
                .map(|(pid, stat)| format!("{pid} [{}] {:?}", stat.state, crate::os::cmdline(pid)))
                .collect();
            Ok(Some(jobs))
        })
        .await
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
