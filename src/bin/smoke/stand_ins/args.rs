//! The stand-ins' command lines, typed: the check that starts a stand-in builds its argv
//! from the same struct the stand-in parses (`to_args`), so the two cannot drift apart.
//! The command line of the live gate embeds [`StandInRole`] as its hidden `__stand-in`
//! subcommand; checks build these without knowing that parser.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

use crate::os::ProcessId;

/// The stand-in roles (the stand-in `pi` is recognized by argv\[0\], see `stand_ins`).
#[derive(Debug, Subcommand)]
pub enum StandInRole {
    /// A resident child: exits 0 on SIGTERM, otherwise waits.
    Resident(ResidentArgs),
    /// One of the processes racing for a lock.
    LockRacer(RacerArgs),
    /// A real runtime started so that it dies with the gate (`stand_ins::guard`).
    Guard(GuardArgs),
    /// The guard's watcher.
    GuardWatch(WatchArgs),
    /// A pi citizen's control socket: speaks the control protocol (or misbehaves).
    Citizen(CitizenArgs),
}

/// Variants of the stand-in resident.
#[derive(Debug, Clone, Default, PartialEq, Eq, Args)]
pub struct ResidentArgs {
    /// The gate process (pid:start time): the stand-in exits as soon as it is gone.
    #[arg(long, value_name = "PID:START")]
    pub lifeline: Option<ProcessId>,
    /// Keep SIGTERM blocked forever (only SIGKILL ends it).
    #[arg(long)]
    pub ignore_term: bool,
    /// Exit at once with this code.
    #[arg(long, value_name = "CODE")]
    pub exit_code: Option<u8>,
    /// Start a grandchild (this binary again, as a resident ignoring SIGTERM) and write
    /// its pid into the ready file.
    #[arg(long)]
    pub grandchild: bool,
    /// Listen on this unix socket path (any length)...
    #[arg(long, value_name = "PATH")]
    pub listen: Option<PathBuf>,
    /// ...after this many milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub listen_after_ms: u64,
    /// Create this file once signals are set up (content: the grandchild pid, if any).
    #[arg(long, value_name = "FILE")]
    pub ready: Option<PathBuf>,
    /// Exit 3 after this long no matter what (default 120000): the last safety net
    /// behind the lifeline.
    #[arg(long, value_name = "MS")]
    pub max_life_ms: Option<u64>,
    /// Become this uid (and gid, no supplementary groups) before anything else runs:
    /// a live process of another user, for L8 as root. Needs root.
    #[arg(long, value_name = "UID")]
    pub become_uid: Option<u32>,
    /// Sleep this long first (SIGTERM already blocked): a start as slow as on a loaded
    /// machine (`--inject-slow-start`, test only).
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub start_delay_ms: u64,
}

impl ResidentArgs {
    /// The argv (after the program) that `__stand-in resident` parses back into `self`.
    pub fn to_args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec!["__stand-in".into(), "resident".into()];
        let mut flag = |name: &str, value: Option<OsString>| {
            args.push(format!("--{name}").into());
            args.extend(value);
        };
        if let Some(l) = self.lifeline {
            flag("lifeline", Some(l.to_string().into()));
        }
        if self.ignore_term {
            flag("ignore-term", None);
        }
        if let Some(code) = self.exit_code {
            flag("exit-code", Some(code.to_string().into()));
        }
        if self.grandchild {
            flag("grandchild", None);
        }
        if let Some(path) = &self.listen {
            flag("listen", Some(path.into()));
        }
        if self.listen_after_ms != 0 {
            flag(
                "listen-after-ms",
                Some(self.listen_after_ms.to_string().into()),
            );
        }
        if let Some(ready) = &self.ready {
            flag("ready", Some(ready.into()));
        }
        if let Some(ms) = self.max_life_ms {
            flag("max-life-ms", Some(ms.to_string().into()));
        }
        if let Some(uid) = self.become_uid {
            flag("become-uid", Some(uid.to_string().into()));
        }
        if self.start_delay_ms != 0 {
            flag(
                "start-delay-ms",
                Some(self.start_delay_ms.to_string().into()),
            );
        }
        args
    }
}

/// A lock racer: waits for the start line, then calls `lock::acquire` once.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct RacerArgs {
    /// The gate process (pid:start time): the racer exits as soon as it is gone.
    #[arg(long, value_name = "PID:START")]
    pub lifeline: Option<ProcessId>,
    /// The lock dir.
    #[arg(long)]
    pub dir: PathBuf,
    /// The garden id.
    #[arg(long)]
    pub gid: String,
    /// A file the gate holds an exclusive `flock` on until every racer is ready: each
    /// racer blocks on a shared lock of it, and the gate's unlock wakes them all at once.
    #[arg(long)]
    pub go: PathBuf,
    /// The same, released when every racer has a result; until then a winner keeps
    /// running, so a late racer meets a live holder rather than a dead one it may
    /// rightly reclaim.
    #[arg(long)]
    pub done: PathBuf,
}

impl RacerArgs {
    /// The argv (after the program) that `__stand-in lock-racer` parses back into `self`.
    pub fn to_args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec!["__stand-in".into(), "lock-racer".into()];
        if let Some(l) = self.lifeline {
            args.extend(["--lifeline".into(), l.to_string().into()]);
        }
        args.extend([
            "--dir".into(),
            self.dir.clone().into(),
            "--gid".into(),
            self.gid.clone().into(),
            "--go".into(),
            self.go.clone().into(),
            "--done".into(),
            self.done.clone().into(),
        ]);
        args
    }
}

/// `__stand-in guard`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct GuardArgs {
    /// The gate process (pid:start time).
    #[arg(long, value_name = "PID:START")]
    pub lifeline: ProcessId,
    /// The program and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "PROGRAM")]
    pub program: Vec<OsString>,
}

impl GuardArgs {
    /// The argv (after this binary) that `__stand-in guard` parses back into `self`.
    pub fn to_args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec![
            "__stand-in".into(),
            "guard".into(),
            "--lifeline".into(),
            self.lifeline.to_string().into(),
            "--".into(),
        ];
        args.extend(self.program.iter().cloned());
        args
    }
}

/// `__stand-in guard-watch`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct WatchArgs {
    /// The gate process (pid:start time).
    #[arg(long, value_name = "PID:START")]
    pub lifeline: ProcessId,
}

impl WatchArgs {
    /// The argv (after this binary) that `__stand-in guard-watch` parses back into `self`.
    pub fn to_args(&self) -> Vec<OsString> {
        vec![
            "__stand-in".into(),
            "guard-watch".into(),
            "--lifeline".into(),
            self.lifeline.to_string().into(),
        ]
    }
}
/// How the stand-in citizen departs from the control protocol (see `stand_ins::citizen`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Misbehaviour {
    /// None: it speaks the protocol.
    #[default]
    None,
    /// Answers `get_info`, reads a `send` and never answers it.
    StallSend,
    /// Answers every `send` with `success: false` (reached, and refusing).
    RefuseSend,
    /// Answers the first `get_info`, having unlinked its socket first, then exits: it is
    /// gone by the time the client can send.
    DieAfterInfo,
    /// Accepts and reads, never answers anything.
    Silent,
}

impl Misbehaviour {
    /// The command-line spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::StallSend => "stall-send",
            Self::RefuseSend => "refuse-send",
            Self::DieAfterInfo => "die-after-info",
            Self::Silent => "silent",
        }
    }
}

/// The stand-in citizen: a listener on a control socket that answers as a session.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct CitizenArgs {
    /// The gate process (pid:start time): the citizen exits as soon as it is gone.
    #[arg(long, value_name = "PID:START")]
    pub lifeline: Option<ProcessId>,
    /// The control socket to listen on (any length).
    #[arg(long, value_name = "PATH")]
    pub listen: PathBuf,
    /// The `sessionId` its `get_info` answers.
    #[arg(long, value_name = "ID")]
    pub session_id: String,
    /// Every connection and request it receives is appended here, one JSON line each,
    /// before it answers. Created once it listens: the gate waits for the file.
    #[arg(long, value_name = "FILE")]
    pub record: PathBuf,
    /// How it departs from the protocol.
    #[arg(long, value_enum, default_value_t = Misbehaviour::None)]
    pub misbehave: Misbehaviour,
}

impl CitizenArgs {
    /// The argv (after the program) that `__stand-in citizen` parses back into `self`.
    pub fn to_args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec!["__stand-in".into(), "citizen".into()];
        if let Some(l) = self.lifeline {
            args.extend(["--lifeline".into(), l.to_string().into()]);
        }
        args.extend([
            "--listen".into(),
            self.listen.clone().into(),
            "--session-id".into(),
            self.session_id.clone().into(),
            "--record".into(),
            self.record.clone().into(),
            "--misbehave".into(),
            self.misbehave.as_str().into(),
        ]);
        args
    }
}
