//! The list of checks: one table, [`ROWS`], one row per check holding everything the gate
//! knows about it but its body — id, label, scenario, what it needs, its seed id, which
//! check's run it inspects, its deadline. [`Check`] is only the key a scenario names a
//! check by; every fact about it is read from its row.
//!
//! The table is the only list of checks: `--list` prints it (the README shows that
//! output, and a CLI test fails when the two differ). The P checks are per real pi
//! runtime: their rows ([`Key::PerRuntime`]) are templates, `P{n}.<k>` and
//! `pi {version}: …`, filled in once per runtime found at setup ([`PiRuntime`]).
//!
//! The list is fixed before the first check ([`Catalog`]), so that the TAP plan (`1..N`)
//! can be printed before the first check runs, results print in a stable order however
//! the checks interleave, and a check that never reported (a scenario bug) is caught as
//! a failure instead of silently missing.
//!
//! [`Scenario`] is the one list of scenarios: clap derives the subcommands from it (the
//! command line flattens it into its own), and the headers, `--list`, JUnit suites and the
//! summary take their names from it.

use std::path::PathBuf;
use std::sync::OnceLock;

use clap::ValueEnum;
use entwurf_v2_spawn::runtime::RuntimeVersion;

use crate::harness::needs::Needs;

/// A scenario the command line can select: each variant is a subcommand (its doc comment
/// the subcommand's help) and has the same name everywhere else.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, clap::Subcommand, clap::ValueEnum,
)]
pub enum Scenario {
    /// Control socket observation (S1.x).
    Socket,
    /// Real child processes (S2.x).
    Child,
    /// The watcher over production dependencies (S3.x).
    Watcher,
    /// Real lock files (L).
    Lock,
    /// Resume end to end with a stand-in `pi` (R).
    Resume,
    /// Visible resume in a private tmux server (V; skipped without tmux).
    Visible,
    /// A message to a stand-in citizen, live or dormant (D).
    Dispatch,
    /// Resumes with the real pi runtimes, offline (P; `./run.sh install-pi`).
    Pi,
}

impl Scenario {
    /// Every scenario, in output order.
    pub fn all() -> &'static [Self] {
        Self::value_variants()
    }

    /// The subcommand's name: clap's, from the variant's (asked once; clap hands it out
    /// borrowed from a value it makes on each call).
    pub fn name(self) -> &'static str {
        static NAMES: OnceLock<Vec<String>> = OnceLock::new();
        let names = NAMES.get_or_init(|| {
            Self::value_variants()
                .iter()
                .map(|s| {
                    s.to_possible_value()
                        .map(|v| v.get_name().to_owned())
                        .unwrap_or_default()
                })
                .collect()
        });
        names.get(self as usize).map_or("", String::as_str)
    }

    /// The fixed checks of this scenario, in catalog order (not the per-runtime ones).
    pub fn checks(self) -> Vec<Check> {
        ROWS.iter()
            .filter(|row| row.scenario == Some(self))
            .filter_map(|row| match row.key {
                Key::Fixed(check) => Some(check),
                Key::PerRuntime(_) => None,
            })
            .collect()
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

/// One check of the live gate: the key of its row in [`ROWS`], named after it. Its row
/// says what the check proves; the doc here, how.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Check {
    /// A listening unix socket is reported connectable through `O_PATH` +
    /// `/proc/self/fd/N`.
    SocketListening,
    /// `O_PATH|O_NOFOLLOW` stops at a symlink: forged, and the target's
    /// listener never sees a connection.
    SocketSymlink,
    /// An absent path is "wait", and cancellation ends the wait promptly.
    SocketAbsentCancel,
    /// A regular file at the path is forged, never probed.
    SocketRegularFile,
    /// A stale socket answers ECONNREFUSED (wait); inotify wakes the waiter when a
    /// new listener binds.
    SocketStale,
    /// A full accept backlog gives EAGAIN: indeterminate, never dead; resolves once
    /// drained.
    SocketBacklogFull,
    /// A path longer than `sun_path`'s 107 bytes is reachable through
    /// `/proc/self/fd/N` (portable backend: skips, after checking the typed `PathTooLong`).
    SocketLongPath,
    /// A socket whose owner is another uid is forged (root only).
    SocketForeignOwner,
    /// `spawn` returns only after `exec` succeeded, with the child in its own
    /// session.
    ChildSpawned,
    /// SIGTERM to the group is observed through the pidfd as exit 0 or
    /// signal 15.
    ChildTerminated,
    /// An exit before anyone awaits it is still observed (captured from spawn on).
    ChildEarlyExit,
    /// A real timer fires, SIGTERM goes out, the real exit is observed.
    WatcherTimeout,
    /// The real lock file is released exactly once on that exit.
    WatcherReleasedOnce,
    /// ENOENT from `exec` becomes spawn-start-failed and releases once.
    WatcherMissingProgram,
    /// A child ignoring SIGTERM is SIGKILLed after the grace and its exit observed.
    WatcherIgnoresTerm,
    /// The group sweep leaves no grandchild alive after the kill.
    WatcherGrandchild,
    /// Socket-alive releases while the resident keeps running.
    WatcherSocketAlive,
    /// A forged socket path triggers the backstop; only the observed exit releases.
    WatcherForgedBackstop,
    /// `O_CREAT|O_EXCL` 0600 file, 0700 dir, the TypeScript dispatcher's JSON line.
    LockFormat,
    /// A live holder is a conflict naming pid, host, createdAt, mtime and the fix.
    LockConflict,
    /// Release reads the nonce first: a successor's lock is never removed.
    LockNonceRelease,
    /// `kill(pid, 0)` = ESRCH on our host makes a lock reclaimable.
    LockDeadReclaim,
    /// A dead pid on another host is never trusted: conflict.
    LockOtherHost,
    /// Corrupt, empty or wrong-gid files are conflicts and stay byte-for-byte.
    LockCorrupt,
    /// 8 real processes racing: exactly one wins.
    LockRace,
    /// EPERM from `kill(pid, 0)` is a conflict (as root: a holder running as uid
    /// 65534, met from a thread without `CAP_KILL`).
    LockEperm,
    /// Saved session → identity → §9 argv (checked by the stand-in `pi`) →
    /// socket-alive → lock released.
    ResumeEndToEnd,
    /// The resident outlives the release, then is stopped.
    ResumeResident,
    /// A real tmux window runs the stand-in `pi` with the visible argv (an arg ending
    /// in `;` arrives intact); socket-alive in ms, lock released, window open.
    VisibleSocketAlive,
    /// A `pi` that exits at once is reported `pane-exited` through a pidfd on the pane
    /// pid, in ms, with its exit code in the receipt.
    VisiblePaneExited,
    /// A live socket → refused, the server's window list unchanged.
    VisibleLiveSocket,
    /// A full backlog → refused, the server's window list unchanged.
    VisibleBacklogFull,
    /// A symlink → refused, the server's window list unchanged.
    VisibleSymlink,
    /// A held lock → refused, the server's window list unchanged.
    VisibleLockHeld,
    /// A cwd holding a tmux command substitution is refused; no window, the command
    /// never runs.
    VisibleHashCwd,
    /// The private server is reaped; the stand-in and the watchdog window are gone.
    VisibleNothingLeft,
    /// Live + fire-and-forget: one `get_info`, one `send`, the ack, the real lock
    /// file taken and released once.
    DispatchLiveSent,
    /// Live + owned-outcome: refused after the probe, no `send`.
    DispatchLiveOwned,
    /// Dormant + owned-outcome: the spawn-bg resume of the stand-in `pi`, the message
    /// its prompt.
    DispatchDormantResumed,
    /// Dormant + fire-and-forget: refused, nothing spawned.
    DispatchDormantFireForget,
    /// A held lock: refused before any probe; the citizen never connected to.
    DispatchLocked,
    /// A symlink at the socket path: refused before the lock, never connected.
    DispatchSymlink,
    /// A listener answering `get_info` as another session: a conflict, no `send`.
    DispatchOtherSession,
    /// A `send` never answered: failed, one attempt, the lock released.
    DispatchStalledSend,
    /// The socket gone between probe and send: one re-resolve under the same lock.
    DispatchGoneBeforeSend,
    /// A `send` refused in band: rejected, no second attempt.
    DispatchRefused,
    /// Owned-outcome to a listener that never answers `get_info`: indeterminate,
    /// nothing spawned.
    DispatchIndeterminate,
    /// Fire-and-forget to a listener that never answers `get_info`: indeterminate,
    /// no `send`.
    DispatchIndeterminateFireForget,
    /// No real pi runtime was found (a skip naming the install command; a failure on
    /// CI).
    PiMissing,
    /// A per-runtime row ([`Key::PerRuntime`]) against one real pi runtime: `P<n>.<k>`.
    Pi(&'static PiRuntime, PiCheck),
    /// No descriptor leaked over the run.
    HygieneFds,
    /// No child unreaped, no group member alive.
    HygieneChildren,
    /// Every temp dir removed.
    HygieneTempDirs,
}

/// A per-runtime row of the catalog: one check, run once per runtime. Its row says what
/// it proves; the doc here, how. Its position here numbers its garden ids (`World::gid`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PiCheck {
    /// spawn-bg `v2-control` resume of a session pi wrote → socket-alive.
    ResumeSocketAlive,
    /// The resident's offline turn: exit 0, one turn appended, header unchanged.
    ResumeTurn,
    /// `legacy`: no socket; the exit releases; the turn is in the file.
    Legacy,
    /// Visible resume in a private tmux server.
    Visible,
    /// A runtime refusing the argv: its stderr line in the outcome.
    RefusedArgv,
    /// The preflight: the version named; missing and too old refused before the lock.
    Preflight,
    /// Cell C1 of the dispatch matrix: a fire-and-forget dispatch reaches a resident over
    /// its socket; an owned-outcome dispatch resumes a dormant citizen with the message.
    Dispatch,
    /// Nothing on the network, nothing written outside the scratch dir, nothing left.
    NothingEscapes,
}

/// Which checks a row stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// One check, once per run.
    Fixed(Check),
    /// One check per real pi runtime found at setup: `{n}` in the id is the runtime's
    /// position, `{version}` in the label its version.
    PerRuntime(PiCheck),
}

/// One row of the catalog: everything about a check but its body.
#[derive(Debug, Clone, Copy)]
pub struct CheckSpec {
    /// The check (or checks, one per runtime) the row stands for.
    pub key: Key,
    /// The id printed in every format: unique, so `--only`, `--inject-*` and JUnit name
    /// exactly one check. The seven seed checks are `S1.1`–`S1.3`, `S2.1`–`S2.2` and
    /// `S3.1`–`S3.2` (their seed ids in [`CheckSpec::seed`]).
    pub id: &'static str,
    /// What the check proves. No `#` (a TAP directive) and no newline.
    pub label: &'static str,
    /// The scenario (subcommand) the check belongs to; `None` for hygiene, which runs
    /// after every selection.
    pub scenario: Option<Scenario>,
    /// What the check needs from the user running it (`--list` tells ahead of a run).
    pub needs: Option<Needs>,
    /// The id the seed's parity table gives the check (`S1`, `S2`, `S3`: one for several
    /// checks), for the seven seed checks; their labels end in `[seed S1]` and so on, so
    /// every format, `--list` included, maps them back.
    pub seed: Option<&'static str>,
    /// The check whose run this one inspects, which cannot run without it: `--only`
    /// brings it along. A per-runtime row names one of the same runtime.
    pub inspects: Option<Key>,
    /// How long the check may run, in `--check-timeout-ms`: six for a check against the
    /// real pi, whose Node start-up alone takes a second or two and which runs a resume
    /// or two per check.
    pub deadline_factor: u32,
}

impl CheckSpec {
    const fn new(
        key: Key,
        id: &'static str,
        scenario: Option<Scenario>,
        label: &'static str,
    ) -> Self {
        Self {
            key,
            id,
            label,
            scenario,
            needs: None,
            seed: None,
            inspects: None,
            deadline_factor: 1,
        }
    }

    const fn seed(self, seed: &'static str) -> Self {
        Self {
            seed: Some(seed),
            ..self
        }
    }

    const fn needs(self, needs: Needs) -> Self {
        Self {
            needs: Some(needs),
            ..self
        }
    }

    const fn inspects(self, check: Check) -> Self {
        Self {
            inspects: Some(Key::Fixed(check)),
            ..self
        }
    }

    const fn inspects_same_runtime(self, check: PiCheck) -> Self {
        Self {
            inspects: Some(Key::PerRuntime(check)),
            ..self
        }
    }

    const fn deadline(self, factor: u32) -> Self {
        Self {
            deadline_factor: factor,
            ..self
        }
    }
}

/// A row of a scenario's check.
const fn check(
    check: Check,
    id: &'static str,
    scenario: Scenario,
    label: &'static str,
) -> CheckSpec {
    CheckSpec::new(Key::Fixed(check), id, Some(scenario), label)
}

/// A row of a hygiene check (no scenario: it runs after every selection).
const fn hygiene(check: Check, id: &'static str, label: &'static str) -> CheckSpec {
    CheckSpec::new(Key::Fixed(check), id, None, label)
}

/// A row run once per real pi runtime (`pi` scenario).
const fn per_runtime(check: PiCheck, id: &'static str, label: &'static str) -> CheckSpec {
    CheckSpec::new(Key::PerRuntime(check), id, Some(Scenario::Pi), label)
}

use Check as C;
use PiCheck as P;
use Scenario as S;

/// Every check, in output order: the scenarios' checks, the `P` line (only when no real
/// pi runtime was found) and the per-runtime rows in its place otherwise, then hygiene.
pub const ROWS: &[CheckSpec] = &[
    check(C::SocketListening, "S1.1", S::Socket, "a real listening unix socket → await_socket_alive resolves (connectable) [seed S1]").seed("S1"),
    check(C::SocketSymlink, "S1.2", S::Socket, "a symlink at the socket path → forged reject (never connected) [seed S1]").seed("S1"),
    check(C::SocketAbsentCancel, "S1.3", S::Socket, "an absent socket → waits, then cancellation settles it (no hang) [seed S1]").seed("S1"),
    check(C::SocketRegularFile, "S1.4", S::Socket, "a regular file at the socket path → forged reject"),
    check(C::SocketStale, "S1.5", S::Socket, "a stale socket file (nobody listening) → keeps waiting, resolves once a listener appears"),
    check(C::SocketBacklogFull, "S1.6", S::Socket, "a listener with a full accept backlog → indeterminate, keeps waiting, never dead"),
    check(C::SocketLongPath, "S1.7", S::Socket, "a socket path longer than sun_path's 107 bytes → resolves"),
    check(C::SocketForeignOwner, "S1.8", S::Socket, "a socket owned by another uid → forged reject").needs(Needs::Root),
    check(C::ChildSpawned, "S2.1", S::Child, "spawn_child resolves once the real process started [seed S2]").seed("S2"),
    check(C::ChildTerminated, "S2.2", S::Child, "terminate → await_child_exit observes the exit (code 0, or killed by the signal) [seed S2]").seed("S2").inspects(C::ChildSpawned),
    check(C::ChildEarlyExit, "S2.3", S::Child, "a child that exits before anyone awaits it → exit observed"),
    check(C::WatcherTimeout, "S3.1", S::Watcher, "timeout → terminate → child-exited (real timer + real child + watcher) [seed S3]").seed("S3"),
    check(C::WatcherReleasedOnce, "S3.2", S::Watcher, "lock released exactly once on the observed exit [seed S3]").seed("S3").inspects(C::WatcherTimeout),
    check(C::WatcherMissingProgram, "S3.3", S::Watcher, "a missing program → spawn-start-failed, lock released exactly once"),
    check(C::WatcherIgnoresTerm, "S3.4", S::Watcher, "a child ignoring SIGTERM → SIGKILL after the term grace, exit observed"),
    check(C::WatcherGrandchild, "S3.5", S::Watcher, "a grandchild ignoring SIGTERM → no survivor in the group after the kill"),
    check(C::WatcherSocketAlive, "S3.6", S::Watcher, "a child that listens late → socket-alive, lock released, resident lives on"),
    check(C::WatcherForgedBackstop, "S3.7", S::Watcher, "a forged socket path → backstop terminates → child-exited, lock released"),
    check(C::LockFormat, "L1", S::Lock, "acquire writes the shared claim (one JSON line, 0600 file, 0700 dir)"),
    check(C::LockConflict, "L2", S::Lock, "a held lock → conflict with holder evidence"),
    check(C::LockNonceRelease, "L3", S::Lock, "release is nonce-guarded: a successor's lock is never removed"),
    check(C::LockDeadReclaim, "L4", S::Lock, "a holder pid dead on this host → reclaimed"),
    check(C::LockOtherHost, "L5", S::Lock, "a dead holder pid on another host → conflict, kept"),
    check(C::LockCorrupt, "L6", S::Lock, "a corrupt, empty or wrong-gid lock → conflict, never deleted"),
    check(C::LockRace, "L7", S::Lock, "8 processes racing for one lock → exactly one winner"),
    check(C::LockEperm, "L8", S::Lock, "a holder pid answering EPERM → conflict, kept"),
    check(C::ResumeEndToEnd, "R1", S::Resume, "resume: saved session → identity → argv → socket-alive → lock file released"),
    check(C::ResumeResident, "R2", S::Resume, "resume: the resident is still alive after the release, then cleaned up").inspects(C::ResumeEndToEnd),
    check(C::VisibleSocketAlive, "V1", S::Visible, "visible: stand-in pi binds in a tmux window → socket-alive in ms, lock released, window still open").needs(Needs::Tmux),
    check(C::VisiblePaneExited, "V2", S::Visible, "visible: stand-in pi exits at once → pane-exited in ms, lock released").needs(Needs::Tmux),
    check(C::VisibleLiveSocket, "V3", S::Visible, "visible: a live socket → refused (target-live), no window").needs(Needs::Tmux),
    check(C::VisibleBacklogFull, "V4", S::Visible, "visible: a full accept backlog → refused (indeterminate), no window").needs(Needs::Tmux),
    check(C::VisibleSymlink, "V5", S::Visible, "visible: a symlink at the socket path → refused (address conflict), no window").needs(Needs::Tmux),
    check(C::VisibleLockHeld, "V6", S::Visible, "visible: lock held → refused, no window, the holder's lock kept").needs(Needs::Tmux),
    check(C::VisibleHashCwd, "V7", S::Visible, "visible: a cwd holding a tmux command substitution → refused, no window, nothing executed").needs(Needs::Tmux),
    check(C::VisibleNothingLeft, "V8", S::Visible, "visible: the private tmux server, its windows and stand-ins are gone afterwards").needs(Needs::Tmux),
    check(C::DispatchLiveSent, "D1", S::Dispatch, "dispatch: live + fire-and-forget → sent (acked followUp), one send received, lock taken and released once, no lock file left"),
    check(C::DispatchLiveOwned, "D2", S::Dispatch, "dispatch: live + owned-outcome → rejected owned-live-no-autosend, probed, nothing delivered"),
    check(C::DispatchDormantResumed, "D3", S::Dispatch, "dispatch: dormant + owned-outcome → resumed through spawn-bg, the message in the stand-in pi's argv, lock released once"),
    check(C::DispatchDormantFireForget, "D4", S::Dispatch, "dispatch: dormant + fire-and-forget → rejected dormant-fire-forget-unsupported, nothing spawned"),
    check(C::DispatchLocked, "D5", S::Dispatch, "dispatch: a held lock → target-locked, no probe (the citizen heard nothing), the holder's lock kept"),
    check(C::DispatchSymlink, "D6", S::Dispatch, "dispatch: a symlink at the socket path → target-address-conflict, no lock taken, nothing delivered"),
    check(C::DispatchOtherSession, "D7", S::Dispatch, "dispatch: a socket answering get_info as another session → target-address-conflict, nothing delivered"),
    check(C::DispatchStalledSend, "D8", S::Dispatch, "dispatch: a listener that never answers the send → failed, exactly one delivery attempt, lock released"),
    check(C::DispatchGoneBeforeSend, "D9", S::Dispatch, "dispatch: a socket gone between the probe and the send → re-resolved once under the same lock, rejected, nothing delivered"),
    check(C::DispatchRefused, "D10", S::Dispatch, "dispatch: an in-band refusal → rejected send-refused, no second attempt"),
    check(C::DispatchIndeterminate, "D11", S::Dispatch, "dispatch: owned-outcome to a listener that never answers get_info → rejected indeterminate-no-spawn, nothing spawned"),
    check(C::DispatchIndeterminateFireForget, "D12", S::Dispatch, "dispatch: fire-and-forget to a listener that never answers get_info → rejected indeterminate-no-spawn, nothing sent"),
    check(C::PiMissing, "P", S::Pi, "real pi runtimes: resumes of sessions pi wrote, offline"),
    per_runtime(P::ResumeSocketAlive, "P{n}.1", "pi {version}: spawn-bg v2-control resume of a session pi wrote → identity from its file, socket-alive for that gid, released once, resident not signalled").deadline(6),
    per_runtime(P::ResumeTurn, "P{n}.2", "pi {version}: the resident runs its offline turn and exits 0 → exactly that turn appended, header unchanged, no second session").inspects_same_runtime(P::ResumeSocketAlive).deadline(6),
    per_runtime(P::Legacy, "P{n}.3", "pi {version}: legacy resume (discovery off, fixture as extension arg, no control flag) → no socket, the exit releases, the turn is in the file").deadline(6),
    per_runtime(P::Visible, "P{n}.4", "pi {version}: visible resume in a private tmux window → socket-alive, released, window open, transcript byte-identical; window closed → pane-exited").needs(Needs::Tmux).deadline(6),
    per_runtime(P::RefusedArgv, "P{n}.5", "pi {version}: pi refusing the argv (no extension defines --entwurf-control) → the exit releases, pi's stderr line in the outcome").deadline(6),
    per_runtime(P::Preflight, "P{n}.6", "pi {version}: preflight names this version, the one its package.json states; a missing runtime and one below 0.76.0 are refused, typed, naming what was found").deadline(6),
    per_runtime(P::Dispatch, "P{n}.7", "pi {version}: dispatch C1: fire-and-forget to a resident the library resumed → sent over its socket, lock taken and released once, the message in its file as a follow-up (custom_message + the turn it triggers), nothing else; owned-outcome to a dormant citizen → resumed with the message as its turn").deadline(6),
    per_runtime(P::NothingEscapes, "P{n}.8", "pi {version}: under strace: no inet socket, nothing written outside the scratch dir (relative paths resolved); pi carries the run's marker, and no process with it is left").needs(Needs::Strace).deadline(6),
    hygiene(C::HygieneFds, "H1", "no descriptor leaked since the start"),
    hygiene(C::HygieneChildren, "H2", "no child left unreaped, no group member left alive"),
    hygiene(C::HygieneTempDirs, "H3", "every temp dir removed"),
];

/// How many processes race for one lock in [`Check::LockRace`].
pub const RACERS: usize = 8;

impl Check {
    /// The check's row.
    ///
    /// # Panics
    ///
    /// When the check has no row in [`ROWS`]: a variant added without one, which the
    /// first run of its scenario (every CLI test run) reports.
    pub fn spec(self) -> &'static CheckSpec {
        let key = match self {
            Self::Pi(_, k) => Key::PerRuntime(k),
            check => Key::Fixed(check),
        };
        match ROWS.iter().find(|row| row.key == key) {
            Some(row) => row,
            None => panic!("{self:?} has no row in the catalog (harness::catalog::ROWS)"),
        }
    }

    /// The id printed in every format ([`CheckSpec::id`]; a P check's with its runtime's
    /// position).
    pub fn id(self) -> &'static str {
        match self {
            Self::Pi(runtime, k) => runtime.text(k).0,
            check => check.spec().id,
        }
    }

    /// What the check proves ([`CheckSpec::label`]; a P check's with its runtime's
    /// version).
    pub fn label(self) -> &'static str {
        match self {
            Self::Pi(runtime, k) => runtime.text(k).1,
            check => check.spec().label,
        }
    }

    /// The seed id ([`CheckSpec::seed`]).
    pub fn seed_id(self) -> Option<&'static str> {
        self.spec().seed
    }

    /// The scenario ([`CheckSpec::scenario`]); `None` for hygiene.
    pub fn scenario(self) -> Option<Scenario> {
        self.spec().scenario
    }

    /// What the check needs ([`CheckSpec::needs`]).
    pub fn needs(self) -> Option<Needs> {
        self.spec().needs
    }

    /// The check whose run this one inspects ([`CheckSpec::inspects`]).
    pub fn inspects(self) -> Option<Self> {
        match (self.spec().inspects?, self) {
            (Key::Fixed(check), _) => Some(check),
            (Key::PerRuntime(k), Self::Pi(runtime, _)) => Some(Self::Pi(runtime, k)),
            (Key::PerRuntime(_), _) => None,
        }
    }

    /// Whether the check is hygiene (runs after whatever was selected).
    pub fn is_hygiene(self) -> bool {
        self.scenario().is_none()
    }

    /// How long the check may run: `base` (`--check-timeout-ms`) times its row's factor.
    pub fn deadline(self, base: std::time::Duration) -> std::time::Duration {
        base * self.spec().deadline_factor
    }
}

/// A real pi runtime as the catalog sees it: its position and version name its checks.
#[derive(Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PiRuntime {
    /// 1-based, oldest first: the `n` of `P<n>.<k>`.
    pub position: usize,
    /// What it is (from the launcher's name, or its `--version` for `--pi`).
    pub version: RuntimeVersion,
    /// The program the resumes launch.
    pub launcher: PathBuf,
    /// Each per-runtime row's id and label with `{n}` and `{version}` filled in, made
    /// once and kept as long as the process (leaked: a handful of short strings), so the
    /// catalog hands out `&'static str` for these checks like for the fixed ones.
    texts: Vec<(PiCheck, &'static str, &'static str)>,
}

impl PiRuntime {
    /// The runtime at `position` (1-based, oldest first).
    pub fn new(position: usize, version: RuntimeVersion, launcher: PathBuf) -> Self {
        let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
        let texts = ROWS
            .iter()
            .filter_map(|row| match row.key {
                Key::PerRuntime(k) => Some((
                    k,
                    leak(row.id.replace("{n}", &position.to_string())),
                    leak(row.label.replace("{version}", &version.to_string())),
                )),
                Key::Fixed(_) => None,
            })
            .collect();
        Self {
            position,
            version,
            launcher,
            texts,
        }
    }

    /// This runtime's checks, one per per-runtime row, in catalog order.
    pub fn checks(&'static self) -> Vec<Check> {
        self.texts
            .iter()
            .map(|(k, ..)| Check::Pi(self, *k))
            .collect()
    }

    /// The id and label of check `k` on this runtime.
    fn text(&self, k: PiCheck) -> (&'static str, &'static str) {
        match self.texts.iter().find(|(key, ..)| *key == k) {
            Some((_, id, label)) => (id, label),
            None => panic!("{k:?} has no row in the catalog (harness::catalog::ROWS)"),
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
    /// The catalog with one set of P checks per runtime (`runtimes` oldest first), in
    /// the place of the per-runtime rows.
    pub fn new(runtimes: &'static [PiRuntime]) -> Self {
        let per_runtime: Vec<PiCheck> = ROWS
            .iter()
            .filter_map(|row| match row.key {
                Key::PerRuntime(k) => Some(k),
                Key::Fixed(_) => None,
            })
            .collect();
        let mut checks = Vec::new();
        for row in ROWS {
            match row.key {
                Key::Fixed(Check::PiMissing) if !runtimes.is_empty() => {}
                Key::Fixed(check) => checks.push(check),
                Key::PerRuntime(k) if per_runtime.first() == Some(&k) => {
                    for runtime in runtimes {
                        checks.extend(per_runtime.iter().map(|k| Check::Pi(runtime, *k)));
                    }
                }
                Key::PerRuntime(_) => {}
            }
        }
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
    fn rows_are_unique_tap_safe_and_consistent() {
        for (i, row) in ROWS.iter().enumerate() {
            assert!(!row.label.contains('#'), "{row:?}");
            assert!(!row.label.contains('\n'), "{row:?}");
            for other in &ROWS[i + 1..] {
                assert_ne!(row.key, other.key, "two rows of one check");
                assert_ne!(row.id, other.id, "two rows with one id");
            }
            if let Some(inspected) = row.inspects {
                let inspected = ROWS.iter().find(|r| r.key == inspected);
                assert_eq!(inspected.map(|r| r.scenario), Some(row.scenario), "{row:?}");
            }
            let per_runtime = matches!(row.key, Key::PerRuntime(_));
            assert_eq!(row.id.contains("{n}"), per_runtime, "{row:?}");
            assert_eq!(row.label.contains("{version}"), per_runtime, "{row:?}");
        }
        assert_eq!(Check::SocketForeignOwner.scenario(), Some(Scenario::Socket));
        assert_eq!(Check::ChildEarlyExit.scenario(), Some(Scenario::Child));
        assert_eq!(Check::WatcherTimeout.scenario(), Some(Scenario::Watcher));
        assert_eq!(Check::HygieneFds.scenario(), None);
        assert_eq!(
            Scenario::Child.checks(),
            [
                Check::ChildSpawned,
                Check::ChildTerminated,
                Check::ChildEarlyExit
            ]
        );
    }

    /// Clap names the subcommands and the scenarios alike: each name is one scenario's.
    #[test]
    fn every_scenario_has_a_name_of_its_own() {
        let names: Vec<&str> = Scenario::all().iter().map(|s| s.name()).collect();
        assert_eq!(
            names,
            [
                "socket", "child", "watcher", "lock", "resume", "visible", "dispatch", "pi"
            ]
        );
        for scenario in Scenario::all() {
            assert_eq!(Scenario::from_str(scenario.name(), false), Ok(*scenario));
        }
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
