//! `P<n>.7`, cell C1 of the dispatch matrix on the real pi: the library's `dispatch` through
//! `ProductionDispatch`, against citizens the library itself resumed (spawn-bg,
//! `v2-control`, the fixture speaking the control protocol).
//!
//! Both parts use the runtime's one session (the one every P check resumes in turn).
//!
//! 1. **Live, fire-and-forget.** The library resumes the session (the
//!    resident's turn is held by the fixture); a dispatch of `MESSAGE` is answered
//!    `sent` (`deliveredAs: followUp`) on the liveness `alive` (its `get_info` named the
//!    gid and the session's cwd), having taken the lock and released it once (the
//!    release found its own claim, no lock file is left). Then the resident's turn is
//!    released: it exits 0, and the session file gained exactly the resumed turn, the
//!    message as a `custom_message` entry and the turn it triggered, nothing else (the
//!    earlier bytes kept, no other session, the socket gone).
//! 2. **Dormant, owned-outcome.** The same session, dormant again (its resident ended in
//!    part 1, its socket gone, nobody runs it); a dispatch
//!    of `WAKE` finds it dead and hands the lock to the spawn-bg resume, whose resident
//!    comes up (socket-alive, released once); its turn is the message.
//!
//! What the check needs from its runtime's dirs comes through [`Ground`], which the
//! scenario's world provides.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};

use entwurf_v2_spawn::dispatch::{
    DispatchRequest, Intent, LockFate, ObservedLiveness, ProductionDispatch, Receipt, dispatch,
};
use entwurf_v2_spawn::lock::{LockClaim, ReleaseOutcome, lock_path};
use entwurf_v2_spawn::production::child::ChildHandle;
use entwurf_v2_spawn::production::{ProductionOptions, ProductionOutcome};
use entwurf_v2_spawn::{Backend, GardenId, error_chain};

use super::fixture;
use crate::harness::runner::expect_that;
use crate::scenarios::shared::{
    bounded, expect_background_resume, expect_resident, kill_child, stderr_note,
};

/// What the dispatch to the live resident says.
const MESSAGE: &str = "a word for the resident, over its socket";
/// What the dispatch to the dormant citizen says.
const WAKE: &str = "a word that wakes the dormant one";
/// How long a real pi may take to come up or to finish (only a failure waits this long).
const OBSERVE: Duration = Duration::from_secs(30);

/// What the check needs from its runtime's world.
pub trait Ground {
    /// The session's cwd (where pi wrote it, and runs it).
    fn work(&self) -> &Path;
    /// The library backend of this run.
    fn backend(&self) -> Backend;
    /// Production options for this runtime with the fixture loaded, and a counted release.
    fn options(&self) -> Result<(ProductionOptions, Arc<AtomicUsize>)>;
    /// The runtime's session (pi wrote it, one offline turn; nobody runs it now): its
    /// garden id and its file.
    async fn session(&self) -> Result<(GardenId, PathBuf)>;
    /// The library's spawn-bg resume of `gid` with the scenario's prompt, under its lock;
    /// the outcome, the claim and the socket path.
    async fn resume(
        &self,
        options: ProductionOptions,
        gid: &GardenId,
    ) -> Result<(ProductionOutcome, LockClaim, PathBuf)>;
    /// The scenario's prompt (what [`Ground::resume`] asks).
    fn prompt(&self) -> &'static str;
    /// Every session file saved under `gid`.
    fn sessions_of(&self, gid: &GardenId) -> Vec<PathBuf>;
    /// The resume's stderr log of `gid`.
    fn log(&self, gid: &GardenId) -> PathBuf;
}

/// The check (module docs).
pub async fn c1(ground: &impl Ground) -> Result<()> {
    let (gid, file) = ground.session().await?;
    live_fire_and_forget(ground, &gid, &file).await?;
    dormant_owned_outcome(ground, &gid, &file).await
}

/// Part 1: a fire-and-forget dispatch to a resident the library resumed.
async fn live_fire_and_forget(ground: &impl Ground, gid: &GardenId, file: &Path) -> Result<()> {
    let before = std::fs::read(file).context("reading the session")?;
    let (options, _) = ground.options()?;
    let (outcome, _claim, socket) = ground.resume(options, gid).await?;
    let (pid, _, resident) = expect_resident(outcome, &ground.log(gid)).await?;
    let sent = async {
        let (options, releases) = ground.options()?;
        let lock = lock_path(&options.shared.lock_dir, gid);
        let deps = ProductionDispatch::new(options);
        let request = DispatchRequest::new(gid.clone(), MESSAGE, Intent::FireAndForget);
        let done = bounded(OBSERVE, "the dispatch", dispatch(&request, &deps))
            .await?
            .map_err(|e| anyhow!("the dispatch failed: {}", error_chain(&e)))?;
        let Receipt::Sent { ack, observed } = &done.receipt else {
            bail!("expected the receipt sent, got {:?}", done.receipt);
        };
        expect_that(ack.delivered_as() == Some("followUp"), || {
            format!("the ack is {:?}, not delivered as followUp", ack.data)
        })?;
        let ObservedLiveness::Alive(info) = observed else {
            bail!("the send rested on {observed}, not alive");
        };
        expect_that(
            info.session_id == gid.as_str()
                && info.cwd.as_deref().map(Path::new) == Some(ground.work()),
            || {
                format!(
                    "get_info named {info:?}, not {gid} in {}",
                    ground.work().display()
                )
            },
        )?;
        expect_that(
            done.lock == LockFate::Released(ReleaseOutcome::Released),
            || format!("the lock's fate is {:?}, not taken and released", done.lock),
        )?;
        released_once(&releases, &lock)?;
        // The same resident took it: its socket still names it.
        let info = fixture::info(&socket, ground.backend()).await?;
        expect_that(info.pid == pid, || {
            format!("the socket is pid {}'s, not the resident's {pid}", info.pid)
        })?;
        fixture::release_turn(&socket).await?;
        exits_zero(&resident, &ground.log(gid)).await
    }
    .await;
    if let Err(e) = sent {
        kill_child(&resident).await;
        return Err(e);
    }
    let prompt = ground.prompt();
    let expected = [
        entry("message", "user", prompt),
        entry("message", "assistant", &format!("echo: {prompt}")),
        entry("custom_message", "", MESSAGE),
        entry("message", "assistant", &format!("echo: {MESSAGE}")),
    ];
    let gained = gained(file, &before)?;
    expect_that(gained == expected, || {
        format!(
            "expected the resumed turn, then the message as a follow-up and its turn; the file gained {gained:?}"
        )
    })?;
    only_session(ground, gid, file)?;
    expect_that(!socket.exists(), || {
        format!("{} outlived pi", socket.display())
    })
}

/// Part 2: an owned-outcome dispatch to a dormant citizen resumes it with the message.
async fn dormant_owned_outcome(ground: &impl Ground, gid: &GardenId, file: &Path) -> Result<()> {
    let before = std::fs::read(file).context("reading the session")?;
    let (options, releases) = ground.options()?;
    let lock = lock_path(&options.shared.lock_dir, gid);
    let socket = options.socket_path(gid);
    let deps = ProductionDispatch::new(options);
    let request =
        DispatchRequest::new(gid.clone(), WAKE, Intent::OwnedOutcome).with_observe_timeout(OBSERVE);
    let done = bounded(OBSERVE * 2, "the dispatch", dispatch(&request, &deps))
        .await?
        .map_err(|e| anyhow!("the dispatch failed: {}", error_chain(&e)))?;
    let (observed, outcome) = expect_background_resume(done).await?;
    let (_, release, resident) = expect_resident(outcome, &ground.log(gid)).await?;
    let resumed = async {
        expect_that(matches!(observed, ObservedLiveness::Dead(_)), || {
            format!("the resume rested on {observed}, not dead")
        })?;
        expect_that(release == ReleaseOutcome::Released, || {
            format!("the resume's release said {release:?}")
        })?;
        released_once(&releases, &lock)?;
        fixture::release_turn(&socket).await?;
        exits_zero(&resident, &ground.log(gid)).await
    }
    .await;
    if let Err(e) = resumed {
        kill_child(&resident).await;
        return Err(e);
    }
    let expected = [
        entry("message", "user", WAKE),
        entry("message", "assistant", &format!("echo: {WAKE}")),
    ];
    let gained = gained(file, &before)?;
    expect_that(gained == expected, || {
        format!("expected the message as the resumed turn; the file gained {gained:?}")
    })?;
    only_session(ground, gid, file)
}

fn released_once(releases: &AtomicUsize, lock: &Path) -> Result<()> {
    let n = releases.load(Ordering::SeqCst);
    expect_that(n == 1, || format!("release was called {n} times, not once"))?;
    expect_that(!lock.exists(), || {
        format!("{} is still there", lock.display())
    })
}

async fn exits_zero(resident: &ChildHandle, log: &Path) -> Result<()> {
    let exit = bounded(
        OBSERVE,
        "the resident's exit after its turn",
        resident.exit(),
    )
    .await?
    .map_err(|e| anyhow!("{}", error_chain(&e)))?;
    expect_that(exit.code == Some(0), || {
        format!("pi ended with {exit}{}", stderr_note(log))
    })
}

fn only_session(ground: &impl Ground, gid: &GardenId, file: &Path) -> Result<()> {
    let files = ground.sessions_of(gid);
    expect_that(files == [file.to_path_buf()], || {
        format!("another session was minted: {files:?}")
    })
}

/// `(type, role, text)` of a session entry.
type Entry = (String, String, String);

fn entry(kind: &str, role: &str, text: &str) -> Entry {
    (kind.to_owned(), role.to_owned(), text.to_owned())
}

/// Every entry `file` gained after its earlier bytes `before` (which must be kept).
fn gained(file: &Path, before: &[u8]) -> Result<Vec<Entry>> {
    let after = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let Some(added) = after.strip_prefix(before) else {
        bail!("the session's earlier bytes changed");
    };
    let mut entries = Vec::new();
    for line in String::from_utf8_lossy(added).lines() {
        let value: serde_json::Value = serde_json::from_str(line)
            .with_context(|| format!("a line of {}: {line:?}", file.display()))?;
        let kind = value["type"].as_str().unwrap_or_default();
        let (role, content) = if kind == "message" {
            (
                value["message"]["role"].as_str().unwrap_or_default(),
                &value["message"]["content"],
            )
        } else {
            ("", &value["content"])
        };
        let text = match content {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Array(parts) => {
                parts.iter().filter_map(|p| p["text"].as_str()).collect()
            }
            _ => String::new(),
        };
        entries.push(entry(kind, role, &text));
    }
    Ok(entries)
}
