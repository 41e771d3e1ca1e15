//! L7: processes racing for one lock file. Each racer is this binary (`__stand-in
//! lock-racer`); the gate's unlock of a start file releases them all at once. Each says
//! `ready`, then its result, on its stdout (a pipe the gate reads without blocking).

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};
use nix::fcntl::{Flock, FlockArg};

use entwurf_v2_spawn::lock;

use super::shared::{Env, gid};
use crate::harness::catalog::{Check, RACERS};
use crate::harness::cleanup;
use crate::harness::runner::expect_that;
use crate::os;
use crate::stand_ins::args::RacerArgs;
use crate::stand_ins::{RACER_CONFLICT, RACER_WON};

/// Every racer waits for the start signal, then calls acquire once: exactly one may win.
/// Winners hold until every racer has answered (see `stand_ins`).
pub async fn race(env: &Env, dir: &Path) -> Result<()> {
    let race_dir = dir.join("race");
    std::fs::create_dir_all(&race_dir).context("race dir")?;
    let gid = gid(0x409)?;
    let (go, done) = (race_dir.join("go"), race_dir.join("done"));
    // The two signals: files this process holds an exclusive flock on, each dropped to
    // give it (the racers block on shared locks of them; nobody polls).
    let go_signal = exclusive(&go)?;
    let done_signal = exclusive(&done)?;
    // Each spawn waits for the racer's exec: off the runtime thread, like the lock I/O.
    let (exe, lifeline, race, gid_text, go_file, done_file) = (
        env.exe.clone(),
        env.gate,
        race_dir.clone(),
        gid.to_string(),
        go.clone(),
        done.clone(),
    );
    let mut racers = super::shared::off_thread(move || {
        let mut racers: Vec<Racer> = Vec::new();
        for _ in 0..RACERS {
            let args = RacerArgs {
                lifeline: Some(lifeline),
                dir: race.join("locks"),
                gid: gid_text.clone(),
                go: go_file.clone(),
                done: done_file.clone(),
            };
            let mut command = Command::new(&exe);
            command
                .args(args.to_args())
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .process_group(0);
            let mut child = cleanup::spawn_group(Check::LockRace, || command.spawn(), Child::id)?
                .context("starting a racer")?;
            let out = child.stdout.take().context("a racer's stdout")?;
            // Checked between polls of the runtime thread: never a blocking read there.
            nix::fcntl::fcntl(
                &out,
                nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
            )
            .context("a racer's stdout, non-blocking")?;
            racers.push(Racer {
                child,
                out,
                heard: Vec::new(),
            });
        }
        Ok(racers)
    })
    .await?;
    let step = Duration::from_millis(1);
    let ready = os::poll_until(Duration::from_secs(3), step, || {
        racers.iter_mut().all(|r| r.lines() >= 1)
    })
    .await;
    drop(go_signal);
    let answered = os::poll_until(Duration::from_secs(5), step, || {
        racers.iter_mut().all(|r| r.lines() >= 2)
    })
    .await;
    // The lock is read while every winner still holds it.
    let held = std::fs::read_to_string(lock::lock_path(&race_dir.join("locks"), &gid));
    drop(done_signal);
    let mut codes: Vec<Option<i32>> = vec![None; racers.len()];
    os::poll_until(Duration::from_secs(5), Duration::from_millis(2), || {
        for (racer, code) in racers.iter_mut().zip(codes.iter_mut()) {
            if code.is_none() {
                if let Ok(Some(status)) = racer.child.try_wait() {
                    *code = Some(status.code().unwrap_or(-1));
                }
            }
        }
        codes.iter().all(Option::is_some)
    })
    .await;
    for (racer, code) in racers.iter_mut().zip(&codes) {
        if code.is_none() {
            let _ = racer.child.kill();
            let _ = racer.child.wait();
        }
    }
    expect_that(ready, || "not every racer got ready".into())?;
    expect_that(answered, || "not every racer answered".into())?;
    let won = Some(i32::from(RACER_WON));
    let winners: Vec<usize> = codes
        .iter()
        .enumerate()
        .filter(|(_, c)| **c == won)
        .map(|(i, _)| i)
        .collect();
    let losers = codes
        .iter()
        .filter(|c| **c == Some(i32::from(RACER_CONFLICT)))
        .count();
    expect_that(winners.len() == 1 && losers == RACERS - 1, || {
        format!(
            "exit codes {codes:?}: expected one {RACER_WON} (won) and {} × {RACER_CONFLICT} (conflict)",
            RACERS - 1
        )
    })?;
    let winner_pid = racers[winners[0]].child.id();
    let v: serde_json::Value = serde_json::from_str(&held.context("reading the won lock")?)
        .context("the won lock is not JSON")?;
    expect_that(v["pid"].as_u64() == Some(u64::from(winner_pid)), || {
        format!(
            "the lock names pid {}, the winner was {winner_pid}",
            v["pid"]
        )
    })
}

/// Creates `path` and holds an exclusive `flock` on it until the returned guard drops.
fn exclusive(path: &Path) -> Result<Flock<std::fs::File>> {
    let file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    // Non-blocking: the file is new, so nobody else can hold it; if somebody does,
    // that is an error to report, not a wait on the runtime thread.
    Flock::lock(file, FlockArg::LockExclusiveNonblock)
        .map_err(|(_, e)| anyhow::anyhow!("flock {}: {e}", path.display()))
}

/// A racer and what it said so far on its stdout.
struct Racer {
    child: Child,
    out: ChildStdout,
    heard: Vec<u8>,
}

impl Racer {
    /// Reads what the racer has written since (its stdout is non-blocking) and counts
    /// the whole lines heard: 1 once it is ready, 2 once it has its result.
    fn lines(&mut self) -> usize {
        let mut buf = [0_u8; 64];
        while let Ok(n @ 1..) = self.out.read(&mut buf) {
            self.heard.extend_from_slice(&buf[..n]);
        }
        self.heard.iter().filter(|b| **b == b'\n').count()
    }
}
