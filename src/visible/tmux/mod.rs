//! The production launcher: `tmux new-window` in the caller's server or a named one.
//!
//! Command: `tmux [-S socket | -L name] new-window -d -a -t <session>:{end} -n <gid>
//! -c <cwd> -P -F <format> -- <absolute runtime> <argv> ; set-option -w -t
//! <session>:{end} remain-on-exit on`. `-d` keeps the operator's focus, `-a` with `{end}`
//! appends the window, `-n` names it after the gid (else tmux shows the runtime's name),
//! `-P -F` prints a handle we parse into the [`LaunchReceipt`]. An argv of several words
//! is exec'd by tmux directly (no shell), so the pane's pid is the runtime's.
//!
//! `remain-on-exit` is set for that window only, in the same tmux command: a `pi` that
//! dies at once leaves a dead pane the operator can still read (its last output, and
//! tmux's "Pane is dead" line with the status), and the status goes into the
//! `pane-exited` receipt ([`Launcher::pane_exit_status`]). Why the same command: tmux
//! runs one client's command list to its end before its event loop handles the child's
//! exit (SIGCHLD), so the option is set before tmux could close the window; and
//! `{end}` still names the new window, since no other client's command runs in between.
//!
//! Every tmux client runs in a process group of its own: a terminal's SIGINT or SIGHUP
//! goes to the caller's foreground group, and a client killed by it mid-launch would turn
//! an interrupt into a "launch failed; a window may be open". It is killed on the launch
//! timeout, and when the launch future is dropped (cancelled).
//!
//! What tmux would otherwise do to the input, and what is done about it:
//! - `-c` is expanded as a format: `#{…}` rewrites the path and `#(…)` runs a command.
//!   A cwd with `#` is refused ([`check_tmux_cwd`]), as is one that is relative or missing
//!   (tmux silently opens the window elsewhere).
//! - Before any option parsing, tmux splits its own command line at every argument that
//!   ends in `;` (a command separator): an extension arg `x;` followed by `kill-server`
//!   would run that command. Every argument after the server option is therefore passed
//!   through [`escape_tmux_arg`], which tmux turns back into the exact original.
//! - The runtime is resolved on `PATH` to an absolute path without whitespace
//!   ([`resolve_runtime`]), so the window runs exactly the file that was checked.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::PermissionsExt;

use std::path::{Path, PathBuf};

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use super::launcher::PaneExitStatus;
use super::launcher::{LaunchError, LaunchReceipt, LaunchRequest, Launcher};
use super::observe::watch_process_exit;
use crate::sys::{Bounded, CancelOnDrop, run_bounded};
use crate::watcher::BoxError;

/// The `-P -F` format: the server's pid, the pane's pid, pane, window id, window index,
/// then the session name last (it may contain spaces).
pub(crate) const TMUX_HANDLE_FORMAT: &str =
    "#{pid} #{pane_pid} #{pane_id} #{window_id} #{window_index} #{session_name}";

/// Which tmux server gets the window.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Server {
    /// The one the caller runs in: the value of `$TMUX` (`socket,pid,session`), if any.
    Caller(Option<OsString>),
    /// `-L name`, session given explicitly (tests, the live smoke, a dedicated server).
    Named { name: String, session: String },
}

/// Opens visible resume windows with tmux. See the module docs for the command and the
/// checks made before it runs; a failed check is a refusal with nothing launched.
#[derive(Debug, Clone)]
pub struct TmuxLauncher {
    server: Server,
    tmux: OsString,
    search_path: Option<OsString>,
    launch_timeout: Duration,
}

/// How long `tmux new-window` may take before its client is killed (default 10 s; it
/// answers in milliseconds, but a wedged server must not hold the lock forever).
pub(crate) const TMUX_LAUNCH_TIMEOUT: Duration = Duration::from_secs(10);

impl TmuxLauncher {
    /// The caller's own tmux, from `$TMUX` (read now). Without it every launch is refused
    /// with [`LaunchError::NoServer`]: there is no operator's window to open into.
    #[must_use]
    pub fn from_env() -> Self {
        Self::caller(std::env::var_os("TMUX"))
    }

    /// The caller's tmux, given the value `$TMUX` has (`socket,pid,session`); the window
    /// goes into that session.
    #[must_use]
    pub fn caller(tmux_env: Option<OsString>) -> Self {
        Self {
            server: Server::Caller(tmux_env.filter(|v| !v.is_empty())),
            tmux: OsString::from("tmux"),
            search_path: None,
            launch_timeout: TMUX_LAUNCH_TIMEOUT,
        }
    }

    /// A named server (`tmux -L name`) and a session in it.
    #[must_use]
    pub fn named_server(name: impl Into<String>, session: impl Into<String>) -> Self {
        Self {
            server: Server::Named {
                name: name.into(),
                session: session.into(),
            },
            tmux: OsString::from("tmux"),
            search_path: None,
            launch_timeout: TMUX_LAUNCH_TIMEOUT,
        }
    }

    /// The tmux program (default `tmux` on `PATH`).
    #[must_use]
    pub fn with_tmux_program(mut self, tmux: impl Into<OsString>) -> Self {
        self.tmux = tmux.into();
        self
    }

    /// How long the tmux command may run (default 10 s, `TMUX_LAUNCH_TIMEOUT`).
    #[must_use]
    pub fn with_launch_timeout(mut self, limit: Duration) -> Self {
        self.launch_timeout = limit;
        self
    }

    /// The `PATH` the runtime is resolved on (default: this process's `PATH` at launch).
    #[must_use]
    pub fn with_search_path(mut self, path: impl Into<OsString>) -> Self {
        self.search_path = Some(path.into());
        self
    }

    /// The server option and the `-t` target, or why there is none.
    fn target(&self) -> Result<(Vec<OsString>, String), LaunchError> {
        match &self.server {
            Server::Caller(None) => Err(LaunchError::NoServer),
            Server::Caller(Some(value)) => {
                let unparsable = || LaunchError::TmuxEnvUnparsable {
                    value: value.to_string_lossy().into_owned(),
                };
                let text = value.to_str().ok_or_else(unparsable)?;
                let mut fields = text.rsplitn(3, ',');
                let (Some(session), Some(pid), Some(socket)) =
                    (fields.next(), fields.next(), fields.next())
                else {
                    return Err(unparsable());
                };
                let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
                if !digits(session) || !digits(pid) || !Path::new(socket).is_absolute() {
                    return Err(unparsable());
                }
                Ok((
                    vec!["-S".into(), socket.into()],
                    format!("${session}:{{end}}"),
                ))
            }
            Server::Named { name, session } => {
                if name.is_empty() {
                    return Err(LaunchError::NoServer);
                }
                if session.is_empty() || session.contains([':', '.']) {
                    return Err(LaunchError::BadSession {
                        session: session.clone(),
                    });
                }
                Ok((vec!["-L".into(), name.into()], format!("{session}:{{end}}")))
            }
        }
    }

    /// The full tmux argv for `request`, after every check (nothing is run).
    ///
    /// # Errors
    ///
    /// The [`LaunchError`] refusal of a failed check (server, cwd, runtime).
    pub fn command_args(&self, request: &LaunchRequest) -> Result<Vec<OsString>, LaunchError> {
        let (mut argv, target) = self.target()?;
        check_tmux_cwd(&request.cwd)?;
        let search_path = self
            .search_path
            .clone()
            .or_else(|| std::env::var_os("PATH"))
            .unwrap_or_default();
        let runtime = resolve_runtime(&request.program, &search_path)?;
        let command: [OsString; 12] = [
            "new-window".into(),
            "-d".into(),
            "-a".into(),
            "-t".into(),
            target.clone().into(),
            "-n".into(),
            request.gid.as_str().into(),
            "-c".into(),
            request.cwd.clone().into(),
            "-P".into(),
            "-F".into(),
            TMUX_HANDLE_FORMAT.into(),
        ];
        argv.extend(command.into_iter().map(escape_tmux_arg));
        for (name, value) in &request.env {
            let mut assignment = name.clone();
            assignment.push("=");
            assignment.push(value);
            argv.push("-e".into());
            argv.push(escape_tmux_arg(assignment));
        }
        argv.push("--".into());
        argv.push(escape_tmux_arg(runtime.into()));
        argv.extend(request.args.iter().map(|a| escape_tmux_arg(a.into())));
        // A bare `;` (never escaped): the separator before the second command.
        let keep_dead_pane: [OsString; 7] = [
            ";".into(),
            "set-option".into(),
            "-w".into(),
            "-t".into(),
            target.into(),
            "remain-on-exit".into(),
            "on".into(),
        ];
        argv.extend(keep_dead_pane);
        Ok(argv)
    }

    /// `display-message -p -t <pane> <format>` on the launcher's server.
    fn pane_query_args(&self, pane_id: &str) -> Result<Vec<OsString>, LaunchError> {
        let (mut argv, _) = self.target()?;
        argv.extend(
            [
                "display-message",
                "-p",
                "-t",
                pane_id,
                "#{pane_dead} #{pane_dead_status} #{pane_dead_signal}",
            ]
            .map(OsString::from),
        );
        Ok(argv)
    }
}

/// How long [`Launcher::pane_exit_status`] waits for tmux to notice a pane's exit.
const PANE_STATUS_WAIT: Duration = Duration::from_secs(1);

/// The exit status of `pid` while it is a zombie child of `server` (the kernel keeps it
/// in `/proc/<pid>/stat`, field 52, in `waitpid` form until the parent reaps it); `None`
/// when it is not (running, reaped, not the server's child: its pid taken by a stranger),
/// and where there is no such file (macOS and FreeBSD have no Linux `/proc`): then the
/// server is asked.
fn zombie_status(pid: u32, server: u32) -> Option<PaneExitStatus> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: count from the last ')'.
    let fields: Vec<&str> = stat
        .get(stat.rfind(')')? + 1..)?
        .split_whitespace()
        .collect();
    // fields[0] is field 3 (state), fields[1] field 4 (ppid), fields[49] field 52.
    if fields.first() != Some(&"Z") || fields.get(1)?.parse::<u32>().ok()? != server {
        return None;
    }
    let status: i32 = fields.get(49)?.parse().ok()?;
    Some(if status & 0x7f == 0 {
        PaneExitStatus::Code((status >> 8) & 0xff)
    } else {
        PaneExitStatus::Signal(status & 0x7f)
    })
}

/// Parses `#{pane_dead} #{pane_dead_status} #{pane_dead_signal}`: `None` while the
/// pane is not dead yet (tmux has not handled the exit) or the row is not understood.
fn parse_dead_pane(row: &str) -> Option<PaneExitStatus> {
    let mut fields = row.trim_end_matches('\n').split(' ');
    let (dead, status, signal) = (fields.next()?, fields.next()?, fields.next()?);
    if dead != "1" {
        return None;
    }
    if let Ok(signal) = signal.parse::<i32>() {
        return Some(PaneExitStatus::Signal(signal));
    }
    status.parse::<i32>().ok().map(PaneExitStatus::Code)
}

impl Launcher for TmuxLauncher {
    /// Runs the checks, then tmux, and parses the handle it prints. Both the checks
    /// (the cwd's metadata, the runtime's lookup on `PATH`) and tmux (it waits for the
    /// server's answer) run on the blocking pool: file and process I/O never stall the
    /// runtime thread.
    async fn launch(&self, request: &LaunchRequest) -> Result<LaunchReceipt, LaunchError> {
        let (launcher, request) = (self.clone(), request.clone());
        let limit = self.launch_timeout;
        let cancelled = Arc::new(AtomicBool::new(false));
        let _cancel_on_drop = CancelOnDrop(cancelled.clone());
        let run = move || {
            let argv = launcher.command_args(&request)?;
            Ok(run_bounded(&launcher.tmux, &argv, &[], limit, &cancelled))
        };
        let ran = crate::sys::off_async(run)
            .await
            .map_err(|join| LaunchError::Other(Box::new(join)))??;
        let output = match ran {
            Ok(output) => output,
            Err(Bounded::Start(source)) => {
                return Err(LaunchError::TmuxStart {
                    tmux: self.tmux.clone(),
                    source,
                });
            }
            Err(Bounded::TimedOut | Bounded::Cancelled) => {
                return Err(LaunchError::TmuxTimedOut { after: limit });
            }
            Err(Bounded::Io(source)) => return Err(LaunchError::Other(Box::new(source))),
        };
        if !output.status.success() {
            // The window's handle printed means new-window made it, and only the
            // remain-on-exit after it failed: the window is open, so it is a launch (its
            // dead pane may close at once), never a refusal with "nothing launched".
            if let Ok(receipt) = parse_handle(&output.stdout) {
                return Ok(receipt);
            }
            return Err(LaunchError::TmuxFailed {
                status: output.status.to_string(),
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            });
        }
        parse_handle(&output.stdout)
    }

    /// The status of the pane's process: read from the kernel while it is a zombie the
    /// server has not reaped yet (Linux), else asked of the server (remain-on-exit keeps
    /// the dead pane, so tmux still knows it). The pidfd fires when the process exits,
    /// which can be a moment before the server has reaped it, so the server is asked
    /// again every 5 ms, up to 1 s (`PANE_STATUS_WAIT`); `None` when neither says (the pane
    /// was closed by hand, the server is gone). Both, because either alone misses: a
    /// server reaps within moments (no zombie left to read), and a `tmux -D` server
    /// (3.3a) now and then leaves the zombie unreaped for good, its pane dead without a
    /// status.
    async fn pane_exit_status(&self, receipt: &LaunchReceipt) -> Option<PaneExitStatus> {
        // `/proc` is read on the blocking pool too: a file read, like any other.
        let (pane, server) = (receipt.pane_pid, receipt.server_pid);
        if let Some(status) = crate::sys::off_async(move || zombie_status(pane, server))
            .await
            .ok()
            .flatten()
        {
            return Some(status);
        }
        let argv = self.pane_query_args(&receipt.pane_id).ok()?;
        let started = Instant::now();
        while started.elapsed() < PANE_STATUS_WAIT {
            let (tmux, argv) = (self.tmux.clone(), argv.clone());
            let cancelled = Arc::new(AtomicBool::new(false));
            let _cancel_on_drop = CancelOnDrop(cancelled.clone());
            let run = move || run_bounded(&tmux, &argv, &[], PANE_STATUS_WAIT, &cancelled);
            let output = match crate::sys::off_async(run).await {
                Ok(Ok(output)) if output.status.success() => output,
                _ => return None,
            };
            if let Some(status) = parse_dead_pane(&String::from_utf8_lossy(&output.stdout)) {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        None
    }

    fn watch_pane_exit(
        &self,
        receipt: &LaunchReceipt,
    ) -> Result<impl Future<Output = Result<(), BoxError>> + Send + 'static, BoxError> {
        let exited = watch_process_exit(receipt.pane_pid)?;
        // Opened first, checked second: the pidfd pins the process it names. A pane's
        // process is a child of the tmux server; one that is not has taken the pid of a
        // pane process that already exited (and was reaped) before the open. Checked in
        // the future, on the blocking pool (a `/proc` read), so starting does not wait.
        let (pane, server) = (receipt.pane_pid, receipt.server_pid);
        Ok(async move {
            let not_the_pane = crate::sys::off_async(move || {
                parent_pid(pane).is_some_and(|parent| parent != server)
            })
            .await
            .map_err(|join| Box::new(join) as BoxError)?;
            if not_the_pane {
                return Ok(());
            }
            exited.await.map_err(|e| Box::new(e) as BoxError)
        })
    }
}

/// The parent of `pid` from `/proc/<pid>/stat` (`None`: gone, unreadable, or no `/proc`;
/// the pidfd then decides alone).
fn parent_pid(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: count from the last ')'.
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// Parses the one row `-P -F` printed ([`TMUX_HANDLE_FORMAT`]); anything else is
/// [`LaunchError::UnparsableHandle`], because tmux succeeded and a window may be open.
pub(super) fn parse_handle(stdout: &[u8]) -> Result<LaunchReceipt, LaunchError> {
    let text = String::from_utf8_lossy(stdout);
    let unparsable = || LaunchError::UnparsableHandle {
        output: text.clone().into_owned(),
    };
    let row = text.strip_suffix('\n').unwrap_or(&text);
    if row.contains('\n') {
        return Err(unparsable());
    }
    let mut fields = row.splitn(6, ' ');
    let mut next = || fields.next().ok_or_else(unparsable);
    let (server, pid) = (next()?, next()?);
    let (pane, window, index, session) = (next()?, next()?, next()?, next()?);
    let id = |sigil: char, s: &str| {
        s.strip_prefix(sigil)
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    };
    let positive = |s: &str| s.parse::<u32>().ok().filter(|p| *p > 0);
    let pane_pid = positive(pid).ok_or_else(unparsable)?;
    let server_pid = positive(server).ok_or_else(unparsable)?;
    let window_index = index.parse::<u32>().map_err(|_| unparsable())?;
    if !id('%', pane) || !id('@', window) || session.is_empty() {
        return Err(unparsable());
    }
    Ok(LaunchReceipt {
        session: session.to_owned(),
        window_id: window.to_owned(),
        window_index,
        pane_id: pane.to_owned(),
        pane_pid,
        server_pid,
    })
}

/// Makes tmux read `arg` literally: an argument ending in `;` is a command separator to
/// tmux, and one ending in `\;` is turned into `…;`. Inserting a `\` before a final `;`
/// gives back exactly `arg` in both cases; every other argument is passed unchanged.
#[must_use]
pub(crate) fn escape_tmux_arg(arg: OsString) -> OsString {
    let mut bytes = arg.into_vec();
    if bytes.last() == Some(&b';') {
        let at = bytes.len() - 1;
        bytes.insert(at, b'\\');
    }
    OsString::from_vec(bytes)
}

/// Refuses a cwd tmux would not use as given: relative, containing `#` (a format to
/// tmux), missing (tmux silently falls back to another directory) or not a directory.
///
/// # Errors
///
/// The [`LaunchError`] naming the cwd and what is wrong with it.
pub(crate) fn check_tmux_cwd(cwd: &Path) -> Result<(), LaunchError> {
    if !cwd.is_absolute() {
        return Err(LaunchError::CwdNotAbsolute {
            cwd: cwd.to_path_buf(),
        });
    }
    if cwd.as_os_str().as_bytes().contains(&b'#') {
        return Err(LaunchError::CwdHasHash {
            cwd: cwd.to_path_buf(),
        });
    }
    match std::fs::metadata(cwd) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(LaunchError::CwdNotDirectory {
            cwd: cwd.to_path_buf(),
        }),
        Err(source) => Err(LaunchError::CwdMissing {
            cwd: cwd.to_path_buf(),
            source,
        }),
    }
}

/// Resolves the runtime to an absolute executable path without whitespace: an absolute
/// `program` as is, a bare name on `search_path` (relative entries of `PATH` are skipped:
/// they would name another file from the window's cwd).
///
/// # Errors
///
/// [`LaunchError::RuntimeRelative`], [`LaunchError::RuntimeNotFound`] or [`LaunchError::RuntimeWhitespace`].
pub(crate) fn resolve_runtime(
    program: &OsStr,
    search_path: &OsStr,
) -> Result<PathBuf, LaunchError> {
    let not_found = || LaunchError::RuntimeNotFound {
        program: program.to_owned(),
    };
    let path = if program.as_bytes().contains(&b'/') {
        let path = Path::new(program);
        if !path.is_absolute() {
            return Err(LaunchError::RuntimeRelative {
                program: program.to_owned(),
            });
        }
        Some(path.to_path_buf()).filter(|p| is_executable(p))
    } else if program.is_empty() {
        None
    } else {
        std::env::split_paths(search_path)
            .filter(|dir| dir.is_absolute())
            .map(|dir| dir.join(program))
            .find(|candidate| is_executable(candidate))
    };
    let path = path.ok_or_else(not_found)?;
    if path.to_string_lossy().chars().any(char::is_whitespace) {
        return Err(LaunchError::RuntimeWhitespace { path });
    }
    Ok(path)
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests;
