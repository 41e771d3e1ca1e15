//! The list of checks: ids, labels and the scenario each belongs to.
//!
//! The catalog is the only list of checks: `--list` prints it (the README shows that
//! output, and a CLI test fails when the two differ); each variant of [`Check`] says what
//! its check proves about the OS.
//!
//! The list is fixed before the first check — the fixed checks ([`Check::FIXED`]) and
//! the P checks of the real pi runtimes found at setup ([`Catalog`]) — so that the TAP
//! plan (`1..N`) can be printed before the first check runs, results print in a stable order however the checks interleave, and a check that
//! never reported (a scenario bug) is caught as a failure instead of silently missing.
//!
//! The catalog is the one owner of scenario names and of each check's scenario: the
//! command line, the headers, `--list`, JUnit suites and the summary all ask here.

/// A scenario the command line can select (a subcommand).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scenario {
    /// `socket`: control socket observation (S1).
    Socket,
    /// `child`: real child processes (S2).
    Child,
    /// `watcher`: the watcher over production dependencies (S3).
    Watcher,
    /// `lock`: real lock files (L).
    Lock,
    /// `resume`: resume end to end with a stand-in `pi` (R).
    Resume,
    /// `visible`: visible resume in a private tmux server (V).
    Visible,
    /// `dispatch`: a message to a stand-in citizen, live or dormant (D).
    Dispatch,
    /// `pi`: resumes with the real `pi` runtimes, offline (P).
    Pi,
}

impl Scenario {
    /// Every scenario, in output order.
    #[cfg(test)]
    pub const ALL: [Self; 8] = [
        Self::Socket,
        Self::Child,
        Self::Watcher,
        Self::Lock,
        Self::Resume,
        Self::Visible,
        Self::Dispatch,
        Self::Pi,
    ];

    /// The subcommand name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Socket => "socket",
            Self::Child => "child",
            Self::Watcher => "watcher",
            Self::Lock => "lock",
            Self::Resume => "resume",
            Self::Visible => "visible",
            Self::Dispatch => "dispatch",
            Self::Pi => "pi",
        }
    }
}

/// Why `check` skips on `backend` whoever runs it, or `None`. One text for `--list` and
/// the check itself: S1.7's path is longer than `sun_path`, which only the native
/// backend (connect through `/proc/self/fd/N`) can reach.
pub fn backend_skip(check: Check, backend: entwurf_v2_spawn::Backend) -> Option<String> {
    (check == Check::SocketLongPath && backend == entwurf_v2_spawn::Backend::Portable).then(|| {
        format!(
            "the portable backend connects by path and sun_path holds {} bytes: a longer path is a PathTooLong error there (checked)",
            entwurf_v2_spawn::socket::SUN_PATH_MAX
        )
    })
}

/// One check of the live gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Check {
    /// S1.1 (seed S1): a listening unix socket is reported connectable through `O_PATH` +
    /// `/proc/self/fd/N`.
    SocketListening,
    /// S1.2 (seed S1): `O_PATH|O_NOFOLLOW` stops at a symlink: forged, and the target's
    /// listener never sees a connection.
    SocketSymlink,
    /// S1.3 (seed S1): an absent path is "wait", and cancellation ends the wait promptly.
    SocketAbsentCancel,
    /// S1.4: a regular file at the path is forged, never probed.
    SocketRegularFile,
    /// S1.5: a stale socket answers ECONNREFUSED (wait); inotify wakes the waiter when a
    /// new listener binds.
    SocketStale,
    /// S1.6: a full accept backlog gives EAGAIN: indeterminate, never dead; resolves once
    /// drained.
    SocketBacklogFull,
    /// S1.7: a path longer than `sun_path`'s 107 bytes is reachable through
    /// `/proc/self/fd/N` (portable backend: skips, after checking the typed `PathTooLong`).
    SocketLongPath,
    /// S1.8: a socket whose owner is another uid is forged (root only).
    SocketForeignOwner,
    /// S2.1 (seed S2): `spawn` returns only after `exec` succeeded, with the child in its own
    /// session.
    ChildSpawned,
    /// S2.2 (seed S2): SIGTERM to the group is observed through the pidfd as exit 0 or
    /// signal 15.
    ChildTerminated,
    /// S2.3: an exit before anyone awaits it is still observed (captured from spawn on).
    ChildEarlyExit,
    /// S3.1 (seed S3): a real timer fires, SIGTERM goes out, the real exit is observed.
    WatcherTimeout,
    /// S3.2 (seed S3): the real lock file is released exactly once on that exit.
    WatcherReleasedOnce,
    /// S3.3: ENOENT from `exec` becomes spawn-start-failed and releases once.
    WatcherMissingProgram,
    /// S3.4: a child ignoring SIGTERM is SIGKILLed after the grace and its exit observed.
    WatcherIgnoresTerm,
    /// S3.5: the group sweep leaves no grandchild alive after the kill.
    WatcherGrandchild,
    /// S3.6: socket-alive releases while the resident keeps running.
    WatcherSocketAlive,
    /// S3.7: a forged socket path triggers the backstop; only the observed exit releases.
    WatcherForgedBackstop,
    /// L1: `O_CREAT|O_EXCL` 0600 file, 0700 dir, the TypeScript dispatcher's JSON line.
    LockFormat,
    /// L2: a live holder is a conflict naming pid, host, createdAt, mtime and the fix.
    LockConflict,
    /// L3: release reads the nonce first: a successor's lock is never removed.
    LockNonceRelease,
    /// L4: `kill(pid, 0)` = ESRCH on our host makes a lock reclaimable.
    LockDeadReclaim,
    /// L5: a dead pid on another host is never trusted: conflict.
    LockOtherHost,
    /// L6: corrupt, empty or wrong-gid files are conflicts and stay byte-for-byte.
    LockCorrupt,
    /// L7: 8 real processes racing: exactly one wins.
    LockRace,
    /// L8: EPERM from `kill(pid, 0)` is a conflict (as root: a holder running as uid
    /// 65534, met from a thread without `CAP_KILL`).
    LockEperm,
    /// R1: saved session → identity → §9 argv (checked by the stand-in `pi`) →
    /// socket-alive → lock released.
    ResumeEndToEnd,
    /// R2: the resident outlives the release, then is stopped.
    ResumeResident,
    /// V1: a real tmux window runs the stand-in `pi` with the visible argv (an arg ending
    /// in `;` arrives intact); socket-alive in ms, lock released, window open.
    VisibleSocketAlive,
    /// V2: a `pi` that exits at once is reported `pane-exited` through a pidfd on the pane
    /// pid, in ms, with its exit code in the receipt.
    VisiblePaneExited,
    /// V3: a live socket → refused, the server's window list unchanged.
    VisibleLiveSocket,
    /// V4: a full backlog → refused, the server's window list unchanged.
    VisibleBacklogFull,
    /// V5: a symlink → refused, the server's window list unchanged.
    VisibleSymlink,
    /// V6: a held lock → refused, the server's window list unchanged.
    VisibleLockHeld,
    /// V7: a cwd holding a tmux command substitution is refused; no window, the command
    /// never runs.
    VisibleHashCwd,
    /// V8: the private server is reaped; the stand-in and the watchdog window are gone.
    VisibleNothingLeft,
    /// D1: live + fire-and-forget: one `get_info`, one `send`, the ack, the real lock
    /// file taken and released once.
    DispatchLiveSent,
    /// D2: live + owned-outcome: refused after the probe, no `send`.
    DispatchLiveOwned,
    /// D3: dormant + owned-outcome: the spawn-bg resume of the stand-in `pi`, the message
    /// its prompt.
    DispatchDormantResumed,
    /// D4: dormant + fire-and-forget: refused, nothing spawned.
    DispatchDormantFireForget,
    /// D5: a held lock: refused before any probe; the citizen never connected to.
    DispatchLocked,
    /// D6: a symlink at the socket path: refused before the lock, never connected.
    DispatchSymlink,
    /// D7: a listener answering `get_info` as another session: a conflict, no `send`.
    DispatchOtherSession,
    /// D8: a `send` never answered: failed, one attempt, the lock released.
    DispatchStalledSend,
    /// D9: the socket gone between probe and send: one re-resolve under the same lock.
    DispatchGoneBeforeSend,
    /// D10: a `send` refused in band: rejected, no second attempt.
    DispatchRefused,
    /// D11: owned-outcome to a listener that never answers `get_info`: indeterminate,
    /// nothing spawned.
    DispatchIndeterminate,
    /// D12: fire-and-forget to a listener that never answers `get_info`: indeterminate,
    /// no `send`.
    DispatchIndeterminateFireForget,
    /// P: no real pi runtime was found (a skip naming the install command; a failure on
    /// CI).
    PiMissing,
    /// `P<n>.<k>`: check `k` against runtime `n`.
    Pi(&'static PiRuntime, PiCheck),
    /// H1: no descriptor leaked over the run.
    HygieneFds,
    /// H2: no child unreaped, no group member alive.
    HygieneChildren,
    /// H3: every temp dir removed.
    HygieneTempDirs,
}

use crate::harness::needs::Needs;
use crate::harness::pi_runtimes::{PiCheck, PiRuntime};

/// How many processes race for one lock in [`Check::LockRace`].
pub const RACERS: usize = 8;

impl Check {
    /// Every check but those of the real pi runtimes (see [`Catalog`]), in output order.
    pub const FIXED: [Self; 51] = [
        Self::SocketListening,
        Self::SocketSymlink,
        Self::SocketAbsentCancel,
        Self::SocketRegularFile,
        Self::SocketStale,
        Self::SocketBacklogFull,
        Self::SocketLongPath,
        Self::SocketForeignOwner,
        Self::ChildSpawned,
        Self::ChildTerminated,
        Self::ChildEarlyExit,
        Self::WatcherTimeout,
        Self::WatcherReleasedOnce,
        Self::WatcherMissingProgram,
        Self::WatcherIgnoresTerm,
        Self::WatcherGrandchild,
        Self::WatcherSocketAlive,
        Self::WatcherForgedBackstop,
        Self::LockFormat,
        Self::LockConflict,
        Self::LockNonceRelease,
        Self::LockDeadReclaim,
        Self::LockOtherHost,
        Self::LockCorrupt,
        Self::LockRace,
        Self::LockEperm,
        Self::ResumeEndToEnd,
        Self::ResumeResident,
        Self::VisibleSocketAlive,
        Self::VisiblePaneExited,
        Self::VisibleLiveSocket,
        Self::VisibleBacklogFull,
        Self::VisibleSymlink,
        Self::VisibleLockHeld,
        Self::VisibleHashCwd,
        Self::VisibleNothingLeft,
        Self::DispatchLiveSent,
        Self::DispatchLiveOwned,
        Self::DispatchDormantResumed,
        Self::DispatchDormantFireForget,
        Self::DispatchLocked,
        Self::DispatchSymlink,
        Self::DispatchOtherSession,
        Self::DispatchStalledSend,
        Self::DispatchGoneBeforeSend,
        Self::DispatchRefused,
        Self::DispatchIndeterminate,
        Self::DispatchIndeterminateFireForget,
        Self::HygieneFds,
        Self::HygieneChildren,
        Self::HygieneTempDirs,
    ];

    /// The id printed in every format: unique, so `--only`, `--inject-*` and JUnit name
    /// exactly one check. The seven seed checks are `S1.1`–`S1.3`, `S2.1`–`S2.2` and
    /// `S3.1`–`S3.2`; their seed ids stay in their labels ([`Check::seed_id`]).
    pub fn id(self) -> &'static str {
        match self {
            Self::SocketListening => "S1.1",
            Self::SocketSymlink => "S1.2",
            Self::SocketAbsentCancel => "S1.3",
            Self::SocketRegularFile => "S1.4",
            Self::SocketStale => "S1.5",
            Self::SocketBacklogFull => "S1.6",
            Self::SocketLongPath => "S1.7",
            Self::SocketForeignOwner => "S1.8",
            Self::ChildSpawned => "S2.1",
            Self::ChildTerminated => "S2.2",
            Self::ChildEarlyExit => "S2.3",
            Self::WatcherTimeout => "S3.1",
            Self::WatcherReleasedOnce => "S3.2",
            Self::WatcherMissingProgram => "S3.3",
            Self::WatcherIgnoresTerm => "S3.4",
            Self::WatcherGrandchild => "S3.5",
            Self::WatcherSocketAlive => "S3.6",
            Self::WatcherForgedBackstop => "S3.7",
            Self::LockFormat => "L1",
            Self::LockConflict => "L2",
            Self::LockNonceRelease => "L3",
            Self::LockDeadReclaim => "L4",
            Self::LockOtherHost => "L5",
            Self::LockCorrupt => "L6",
            Self::LockRace => "L7",
            Self::LockEperm => "L8",
            Self::ResumeEndToEnd => "R1",
            Self::ResumeResident => "R2",
            Self::VisibleSocketAlive => "V1",
            Self::VisiblePaneExited => "V2",
            Self::VisibleLiveSocket => "V3",
            Self::VisibleBacklogFull => "V4",
            Self::VisibleSymlink => "V5",
            Self::VisibleLockHeld => "V6",
            Self::VisibleHashCwd => "V7",
            Self::VisibleNothingLeft => "V8",
            Self::DispatchLiveSent => "D1",
            Self::DispatchLiveOwned => "D2",
            Self::DispatchDormantResumed => "D3",
            Self::DispatchDormantFireForget => "D4",
            Self::DispatchLocked => "D5",
            Self::DispatchSymlink => "D6",
            Self::DispatchOtherSession => "D7",
            Self::DispatchStalledSend => "D8",
            Self::DispatchGoneBeforeSend => "D9",
            Self::DispatchRefused => "D10",
            Self::DispatchIndeterminate => "D11",
            Self::DispatchIndeterminateFireForget => "D12",
            Self::PiMissing => "P",
            Self::Pi(runtime, check) => runtime.id(check),
            Self::HygieneFds => "H1",
            Self::HygieneChildren => "H2",
            Self::HygieneTempDirs => "H3",
        }
    }

    /// The id the seed's parity table gives the check (`S1`, `S2`, `S3`: one for several
    /// checks), for the seven seed checks; their labels end in `[seed S1]` and so on, so
    /// every format, `--list` included, maps them back.
    pub fn seed_id(self) -> Option<&'static str> {
        match self {
            Self::SocketListening | Self::SocketSymlink | Self::SocketAbsentCancel => Some("S1"),
            Self::ChildSpawned | Self::ChildTerminated => Some("S2"),
            Self::WatcherTimeout | Self::WatcherReleasedOnce => Some("S3"),
            _ => None,
        }
    }

    /// What the check proves. No `#` (a TAP directive) and no newline.
    pub fn label(self) -> &'static str {
        match self {
            Self::SocketListening => {
                "a real listening unix socket → await_socket_alive resolves (connectable) [seed S1]"
            }
            Self::SocketSymlink => {
                "a symlink at the socket path → forged reject (never connected) [seed S1]"
            }
            Self::SocketAbsentCancel => {
                "an absent socket → waits, then cancellation settles it (no hang) [seed S1]"
            }
            Self::SocketRegularFile => "a regular file at the socket path → forged reject",
            Self::SocketStale => {
                "a stale socket file (nobody listening) → keeps waiting, resolves once a listener appears"
            }
            Self::SocketBacklogFull => {
                "a listener with a full accept backlog → indeterminate, keeps waiting, never dead"
            }
            Self::SocketLongPath => "a socket path longer than sun_path's 107 bytes → resolves",
            Self::SocketForeignOwner => "a socket owned by another uid → forged reject",
            Self::ChildSpawned => "spawn_child resolves once the real process started [seed S2]",
            Self::ChildTerminated => {
                "terminate → await_child_exit observes the exit (code 0, or killed by the signal) [seed S2]"
            }
            Self::ChildEarlyExit => "a child that exits before anyone awaits it → exit observed",
            Self::WatcherTimeout => {
                "timeout → terminate → child-exited (real timer + real child + watcher) [seed S3]"
            }
            Self::WatcherReleasedOnce => {
                "lock released exactly once on the observed exit [seed S3]"
            }
            Self::WatcherMissingProgram => {
                "a missing program → spawn-start-failed, lock released exactly once"
            }
            Self::WatcherIgnoresTerm => {
                "a child ignoring SIGTERM → SIGKILL after the term grace, exit observed"
            }
            Self::WatcherGrandchild => {
                "a grandchild ignoring SIGTERM → no survivor in the group after the kill"
            }
            Self::WatcherSocketAlive => {
                "a child that listens late → socket-alive, lock released, resident lives on"
            }
            Self::WatcherForgedBackstop => {
                "a forged socket path → backstop terminates → child-exited, lock released"
            }
            Self::LockFormat => {
                "acquire writes the shared claim (one JSON line, 0600 file, 0700 dir)"
            }
            Self::LockConflict => "a held lock → conflict with holder evidence",
            Self::LockNonceRelease => {
                "release is nonce-guarded: a successor's lock is never removed"
            }
            Self::LockDeadReclaim => "a holder pid dead on this host → reclaimed",
            Self::LockOtherHost => "a dead holder pid on another host → conflict, kept",
            Self::LockCorrupt => "a corrupt, empty or wrong-gid lock → conflict, never deleted",
            Self::LockRace => "8 processes racing for one lock → exactly one winner",
            Self::LockEperm => "a holder pid answering EPERM → conflict, kept",
            Self::ResumeEndToEnd => {
                "resume: saved session → identity → argv → socket-alive → lock file released"
            }
            Self::ResumeResident => {
                "resume: the resident is still alive after the release, then cleaned up"
            }
            Self::VisibleSocketAlive => {
                "visible: stand-in pi binds in a tmux window → socket-alive in ms, lock released, window still open"
            }
            Self::VisiblePaneExited => {
                "visible: stand-in pi exits at once → pane-exited in ms, lock released"
            }
            Self::VisibleLiveSocket => "visible: a live socket → refused (target-live), no window",
            Self::VisibleBacklogFull => {
                "visible: a full accept backlog → refused (indeterminate), no window"
            }
            Self::VisibleSymlink => {
                "visible: a symlink at the socket path → refused (address conflict), no window"
            }
            Self::VisibleLockHeld => {
                "visible: lock held → refused, no window, the holder's lock kept"
            }
            Self::VisibleHashCwd => {
                "visible: a cwd holding a tmux command substitution → refused, no window, nothing executed"
            }
            Self::VisibleNothingLeft => {
                "visible: the private tmux server, its windows and stand-ins are gone afterwards"
            }
            Self::DispatchLiveSent => {
                "dispatch: live + fire-and-forget → sent (acked followUp), one send received, lock taken and released once, no lock file left"
            }
            Self::DispatchLiveOwned => {
                "dispatch: live + owned-outcome → rejected owned-live-no-autosend, probed, nothing delivered"
            }
            Self::DispatchDormantResumed => {
                "dispatch: dormant + owned-outcome → resumed through spawn-bg, the message in the stand-in pi's argv, lock released once"
            }
            Self::DispatchDormantFireForget => {
                "dispatch: dormant + fire-and-forget → rejected dormant-fire-forget-unsupported, nothing spawned"
            }
            Self::DispatchLocked => {
                "dispatch: a held lock → target-locked, no probe (the citizen heard nothing), the holder's lock kept"
            }
            Self::DispatchSymlink => {
                "dispatch: a symlink at the socket path → target-address-conflict, no lock taken, nothing delivered"
            }
            Self::DispatchOtherSession => {
                "dispatch: a socket answering get_info as another session → target-address-conflict, nothing delivered"
            }
            Self::DispatchStalledSend => {
                "dispatch: a listener that never answers the send → failed, exactly one delivery attempt, lock released"
            }
            Self::DispatchGoneBeforeSend => {
                "dispatch: a socket gone between the probe and the send → re-resolved once under the same lock, rejected, nothing delivered"
            }
            Self::DispatchRefused => {
                "dispatch: an in-band refusal → rejected send-refused, no second attempt"
            }
            Self::DispatchIndeterminate => {
                "dispatch: owned-outcome to a listener that never answers get_info → rejected indeterminate-no-spawn, nothing spawned"
            }
            Self::DispatchIndeterminateFireForget => {
                "dispatch: fire-and-forget to a listener that never answers get_info → rejected indeterminate-no-spawn, nothing sent"
            }
            Self::PiMissing => "real pi runtimes: resumes of sessions pi wrote, offline",
            Self::Pi(runtime, check) => runtime.label(check),
            Self::HygieneFds => "no descriptor leaked since the start",
            Self::HygieneChildren => "no child left unreaped, no group member left alive",
            Self::HygieneTempDirs => "every temp dir removed",
        }
    }

    /// The scenario (subcommand) the check belongs to; `None` for hygiene, which runs
    /// after every selection.
    pub fn scenario(self) -> Option<Scenario> {
        use Check as C;
        match self {
            C::SocketListening
            | C::SocketSymlink
            | C::SocketAbsentCancel
            | C::SocketRegularFile
            | C::SocketStale
            | C::SocketBacklogFull
            | C::SocketLongPath
            | C::SocketForeignOwner => Some(Scenario::Socket),
            C::ChildSpawned | C::ChildTerminated | C::ChildEarlyExit => Some(Scenario::Child),
            C::WatcherTimeout
            | C::WatcherReleasedOnce
            | C::WatcherMissingProgram
            | C::WatcherIgnoresTerm
            | C::WatcherGrandchild
            | C::WatcherSocketAlive
            | C::WatcherForgedBackstop => Some(Scenario::Watcher),
            C::LockFormat
            | C::LockConflict
            | C::LockNonceRelease
            | C::LockDeadReclaim
            | C::LockOtherHost
            | C::LockCorrupt
            | C::LockRace
            | C::LockEperm => Some(Scenario::Lock),
            C::ResumeEndToEnd | C::ResumeResident => Some(Scenario::Resume),
            C::VisibleSocketAlive
            | C::VisiblePaneExited
            | C::VisibleLiveSocket
            | C::VisibleBacklogFull
            | C::VisibleSymlink
            | C::VisibleLockHeld
            | C::VisibleHashCwd
            | C::VisibleNothingLeft => Some(Scenario::Visible),
            C::DispatchLiveSent
            | C::DispatchLiveOwned
            | C::DispatchDormantResumed
            | C::DispatchDormantFireForget
            | C::DispatchLocked
            | C::DispatchSymlink
            | C::DispatchOtherSession
            | C::DispatchStalledSend
            | C::DispatchGoneBeforeSend
            | C::DispatchRefused
            | C::DispatchIndeterminate
            | C::DispatchIndeterminateFireForget => Some(Scenario::Dispatch),
            C::PiMissing | C::Pi(..) => Some(Scenario::Pi),
            C::HygieneFds | C::HygieneChildren | C::HygieneTempDirs => None,
        }
    }

    /// What the check needs from the user running it (`--list` tells ahead of a run).
    pub fn needs(self) -> Option<Needs> {
        match self {
            Self::SocketForeignOwner => Some(Needs::Root),
            Self::VisibleSocketAlive
            | Self::VisiblePaneExited
            | Self::VisibleLiveSocket
            | Self::VisibleBacklogFull
            | Self::VisibleSymlink
            | Self::VisibleLockHeld
            | Self::VisibleHashCwd
            | Self::VisibleNothingLeft
            | Self::Pi(_, PiCheck::Visible) => Some(Needs::Tmux),
            Self::Pi(_, PiCheck::NothingEscapes) => Some(Needs::Strace),
            _ => None,
        }
    }

    /// A check that inspects another check's run cannot run without it: `--only` brings
    /// the other one along.
    pub fn inspects(self) -> Option<Self> {
        match self {
            Self::ChildTerminated => Some(Self::ChildSpawned),
            Self::WatcherReleasedOnce => Some(Self::WatcherTimeout),
            Self::ResumeResident => Some(Self::ResumeEndToEnd),
            Self::Pi(runtime, PiCheck::ResumeTurn) => {
                Some(Self::Pi(runtime, PiCheck::ResumeSocketAlive))
            }
            _ => None,
        }
    }

    /// Whether the check is hygiene (runs after whatever was selected).
    pub fn is_hygiene(self) -> bool {
        self.scenario().is_none()
    }

    /// How long the check may run: `base` (`--check-timeout-ms`), six times that for a
    /// check against the real pi, whose Node start-up alone takes a second or two and
    /// which runs a resume or two per check.
    pub fn deadline(self, base: std::time::Duration) -> std::time::Duration {
        match self {
            Self::Pi(..) => base * 6,
            _ => base,
        }
    }
}

/// Every check of this run, in output order: the fixed ones, with the P checks of the
/// real pi runtimes found at setup (or the one `P` line saying none was) before hygiene.
#[derive(Debug, Clone)]
pub struct Catalog {
    checks: Vec<Check>,
}

impl Catalog {
    /// The catalog with one set of P checks per runtime (`runtimes` oldest first).
    pub fn new(runtimes: &'static [PiRuntime]) -> Self {
        let mut checks: Vec<Check> = Check::FIXED
            .into_iter()
            .filter(|c| !c.is_hygiene())
            .collect();
        if runtimes.is_empty() {
            checks.push(Check::PiMissing);
        }
        for runtime in runtimes {
            checks.extend(PiCheck::ALL.map(|k| Check::Pi(runtime, k)));
        }
        checks.extend(Check::FIXED.into_iter().filter(|c| c.is_hygiene()));
        Self { checks }
    }

    /// Every check.
    pub fn checks(&self) -> &[Check] {
        &self.checks
    }

    /// Every id (each names one check), in catalog order.
    pub fn ids(&self) -> Vec<&'static str> {
        self.checks.iter().map(|c| c.id()).collect()
    }

    /// The checks a seed id (`S1`, `S2`, `S3`) names, in catalog order: empty for any
    /// other id.
    pub fn seed_checks(&self, seed: &str) -> Vec<Check> {
        self.checks
            .iter()
            .copied()
            .filter(|c| c.seed_id() == Some(seed))
            .collect()
    }

    /// Which checks run for a scenario (`None`: all) and `--only` ids (empty: no
    /// filter): the matching checks, what they inspect, and hygiene, in catalog order.
    pub fn select(&self, scenario: Option<Scenario>, only: &[&str]) -> Vec<Check> {
        let wanted = |c: Check| {
            let in_scenario = scenario.is_none_or(|s| c.scenario() == Some(s));
            let by_id = only.is_empty() || only.contains(&c.id());
            in_scenario && by_id
        };
        self.checks
            .iter()
            .copied()
            .filter(|c| {
                c.is_hygiene()
                    || wanted(*c)
                    || self
                        .checks
                        .iter()
                        .any(|other| other.inspects() == Some(*c) && wanted(*other))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_runtime_has_its_own_p_checks_before_hygiene() {
        let runtimes = crate::harness::pi_runtimes::test_runtimes(&["0.79.1", "1.6.0"]);
        let catalog = Catalog::new(runtimes);
        let ids = catalog.ids();
        let mut unique = ids.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), ids.len(), "every id names one check: {ids:?}");
        let p: Vec<_> = ids.iter().filter(|id| id.starts_with('P')).collect();
        assert_eq!(p.len(), 16);
        assert_eq!(*p[0], "P1.1");
        assert_eq!(*p[15], "P2.8");
        assert!(!ids.contains(&"P"), "no P line when runtimes are there");
        assert!(
            Check::Pi(&runtimes[1], PiCheck::Legacy)
                .label()
                .starts_with("pi 1.6.0: legacy")
        );
        assert_eq!(ids.last(), Some(&"H3"));
        let turn = catalog.select(None, &["P2.2"]);
        assert_eq!(
            turn.iter().map(|c| c.id()).collect::<Vec<_>>(),
            ["P2.1", "P2.2", "H1", "H2", "H3"],
            "the turn check brings the resume it inspects"
        );
        for check in catalog.checks() {
            assert!(!check.label().contains('#'), "{check:?}");
        }
    }

    #[test]
    fn labels_are_tap_safe_and_scenarios_consistent() {
        for check in Check::FIXED {
            assert!(!check.label().contains('#'), "{check:?}");
            assert!(!check.label().contains('\n'), "{check:?}");
        }
        assert_eq!(Check::SocketForeignOwner.scenario(), Some(Scenario::Socket));
        assert_eq!(Check::ChildEarlyExit.scenario(), Some(Scenario::Child));
        assert_eq!(Check::WatcherTimeout.scenario(), Some(Scenario::Watcher));
        assert_eq!(Check::HygieneFds.scenario(), None);
        for check in Check::FIXED {
            if let Some(inspected) = check.inspects() {
                assert_eq!(inspected.scenario(), check.scenario(), "{check:?}");
            }
        }
        let mut sorted = Check::FIXED;
        sorted.sort();
        assert_eq!(sorted, Check::FIXED, "FIXED is in declaration order");
    }

    /// The seven seed checks have ids of their own and keep the seed's in their labels:
    /// `S1.1`–`S1.3`, `S2.1`–`S2.2`, `S3.1`–`S3.2`.
    #[test]
    fn seed_checks_have_unique_ids_and_name_their_seed_id() {
        let catalog = Catalog::new(&[]);
        let seeds: Vec<(&str, &str)> = catalog
            .checks()
            .iter()
            .filter_map(|c| Some((c.id(), c.seed_id()?)))
            .collect();
        assert_eq!(
            seeds,
            [
                ("S1.1", "S1"),
                ("S1.2", "S1"),
                ("S1.3", "S1"),
                ("S2.1", "S2"),
                ("S2.2", "S2"),
                ("S3.1", "S3"),
                ("S3.2", "S3"),
            ]
        );
        for check in catalog.checks() {
            let suffix = check.seed_id().map(|seed| format!(" [seed {seed}]"));
            assert_eq!(
                suffix
                    .as_deref()
                    .is_some_and(|s| check.label().ends_with(s)),
                suffix.is_some(),
                "{check:?}"
            );
            assert!(
                !check.label().contains("[seed") || suffix.is_some(),
                "{check:?}"
            );
        }
        assert_eq!(catalog.seed_checks("S2").len(), 2);
        assert!(catalog.seed_checks("S2.1").is_empty());
    }

    #[test]
    fn selection_brings_inspected_checks_and_hygiene() {
        let ids = |checks: Vec<Check>| checks.iter().map(|c| c.id()).collect::<Vec<_>>();
        let catalog = Catalog::new(&[]);
        let select = |s, only: &[&str]| catalog.select(s, only);
        assert_eq!(ids(select(None, &["R2"])), ["R1", "R2", "H1", "H2", "H3"]);
        assert_eq!(
            ids(select(Some(Scenario::Child), &[])),
            ["S2.1", "S2.2", "S2.3", "H1", "H2", "H3"]
        );
        assert_eq!(select(None, &[]), catalog.checks());
        assert_eq!(
            ids(select(Some(Scenario::Lock), &["S2.1"])),
            ["H1", "H2", "H3"]
        );
        assert_eq!(
            ids(select(Some(Scenario::Pi), &[])),
            ["P", "H1", "H2", "H3"]
        );
    }
}
