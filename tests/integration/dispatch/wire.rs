//! REAL unix sockets: the control-socket client against in-test receivers that speak
//! (or break) the protocol, and `ProductionDispatch` end to end over a real saved
//! session, a real lock file and a real listener (and, for the dormant cell, the
//! stand-in `pi` of the watcher fault tests).

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::time::Duration;

use entwurf_test_support::world::{Child, World, gid, world};
use entwurf_v2_spawn::backend::Backend;
use entwurf_v2_spawn::dispatch::{
    Answer, CitizenProbe, Command, DeliveryMode, DispatchRequest, ExchangeError, ExchangeLimits,
    Intent, Liveness, LockFate, NotConnected, ObservedLiveness, ProductionDispatch, Receipt,
    ResumeOutcome, TargetConflict, dispatch, exchange, probe_citizen,
};
use entwurf_v2_spawn::lock::ReleaseOutcome;
use entwurf_v2_spawn::watcher::SpawnBgOutcome;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixListener;
use tokio::sync::mpsc;

/// How an in-test receiver answers each request line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Receiver {
    /// The protocol, as the control extension speaks it, for `session`.
    Speaks(&'static str),
    /// Accepts, reads the request, never answers.
    Stalls,
    /// Reads the request and closes without answering.
    Hangs,
    /// Answers with a line longer than any cap used here.
    Floods,
    /// Answers with another request's id.
    WrongId,
    /// The protocol for `session`, each answer padded (a field of its own) to a line of
    /// exactly this many bytes, newline excluded.
    PaddedTo(&'static str, usize),
}

/// A receiver on `path`; every request it read is sent to the returned channel.
fn receiver(path: &Path, how: Receiver) -> mpsc::UnboundedReceiver<Value> {
    let listener = UnixListener::bind(path).expect("bind");
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let tx = tx.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = BufReader::new(read).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let request: Value = serde_json::from_str(&line).expect("a json request");
                    let _ = tx.send(request.clone());
                    let answer = match how {
                        Receiver::Speaks(session) => answer(&request, session),
                        Receiver::PaddedTo(session, length) => {
                            let mut padded: Value =
                                serde_json::from_str(&answer(&request, session)).expect("json");
                            padded["pad"] = "".into();
                            let pad = length - padded.to_string().len();
                            padded["pad"] = "x".repeat(pad).into();
                            padded.to_string()
                        }
                        Receiver::Stalls => {
                            tokio::time::sleep(Duration::from_secs(60)).await;
                            return;
                        }
                        Receiver::Hangs => return,
                        Receiver::Floods => format!("{{\"pad\":\"{}\"}}", "x".repeat(100_000)),
                        Receiver::WrongId => json!({"type":"response","command":request["type"],"success":true,"id":"nope"}).to_string(),
                    };
                    if write
                        .write_all(format!("{answer}\n").as_bytes())
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    rx
}

fn answer(request: &Value, session: &str) -> String {
    let id = request.get("id").cloned().unwrap_or(Value::Null);
    let kind = request["type"].as_str().unwrap_or_default();
    let body = match kind {
        "get_info" => {
            json!({"success":true,"data":{"sessionId":session,"cwd":"/w","model":{"id":"echo","provider":"fixture"},"idle":true}})
        }
        "send" if request["message"].as_str().is_some_and(|m| !m.is_empty()) => {
            let as_ = if request["mode"] == "steer" {
                "steer"
            } else {
                "followUp"
            };
            json!({"success":true,"data":{"delivered":true,"deliveredAs":as_}})
        }
        "send" => json!({"success":false,"error":"Missing message"}),
        other => json!({"success":false,"error":format!("Unsupported command: {other}")}),
    };
    let mut body = body.as_object().expect("object").clone();
    body.insert("type".into(), "response".into());
    body.insert("command".into(), kind.into());
    if !id.is_null() {
        body.insert("id".into(), id);
    }
    Value::Object(body).to_string()
}

fn limits() -> ExchangeLimits {
    ExchangeLimits::default()
        .with_answer(Duration::from_millis(300))
        .with_max_answer_bytes(4096)
}

fn send(message: &str) -> Command {
    Command::Send {
        message: message.to_owned(),
        mode: DeliveryMode::FollowUp,
    }
}

fn socket_in(dir: &Path) -> PathBuf {
    dir.join(format!("{}.sock", gid()))
}

per_backend!(
    #[tokio::test]
    the_answer_cap_counts_the_line_without_its_newline,
    the_client_speaks_the_protocol_and_closes,
    what_an_exchange_error_proves,
    a_path_that_cannot_be_looked_at_is_never_dead
);

/// When unsure, never say dead: a socket path whose parent is a regular file (ENOTDIR)
/// proves nothing about the citizen, so the probe is indeterminate, not dead (which a
/// resume would act on).
async fn a_path_that_cannot_be_looked_at_is_never_dead(backend: Backend) {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, "").expect("file");
    let path = socket_in(&file);
    match probe_citizen(&path, &gid(), backend, &limits()).await {
        CitizenProbe::Observed(observed) => {
            assert_eq!(observed.liveness(), Liveness::Indeterminate, "{observed}");
        }
        other => panic!("indeterminate expected: {other:?}"),
    }
}

async fn the_client_speaks_the_protocol_and_closes(backend: Backend) {
    let dir = tempfile::tempdir().expect("dir");
    let path = socket_in(dir.path());
    let mut heard = receiver(&path, Receiver::Speaks("20260613T000000-eeeeee"));
    let Ok(Answer::Success(data)) = exchange(&path, backend, &send("hi"), &limits()).await else {
        panic!("an ack");
    };
    assert_eq!(data["deliveredAs"], "followUp");
    let request = heard.recv().await.expect("the request");
    assert_eq!(request["type"], "send");
    assert_eq!(request["message"], "hi");
    assert_eq!(request["mode"], "follow_up");
    assert!(
        request["id"].as_str().is_some_and(|id| !id.is_empty()),
        "{request}"
    );
    // An in-band refusal is an answer, not an error.
    let refused = exchange(&path, backend, &send(""), &limits())
        .await
        .expect("answer");
    assert_eq!(
        refused,
        Answer::Refused {
            error: "Missing message".into()
        }
    );
    // The probe: get_info naming the gid is alive; the same socket for another gid
    // is a conflict.
    match probe_citizen(&path, &gid(), backend, &limits()).await {
        CitizenProbe::Observed(ObservedLiveness::Alive(info)) => {
            assert_eq!(info.session_id, gid().as_str());
            assert_eq!(info.cwd.as_deref(), Some("/w"));
        }
        other => panic!("alive expected: {other:?}"),
    }
    let other = entwurf_v2_spawn::GardenId::parse("20260613T000000-0000ff").expect("gid");
    match probe_citizen(&path, &other, backend, &limits()).await {
        CitizenProbe::Conflict(TargetConflict::OtherSession { answered }) => {
            assert_eq!(answered, gid().as_str());
        }
        other => panic!("a conflict expected: {other:?}"),
    }
}

/// The cap on an answer is its line's length, newline excluded: a line of exactly the cap
/// is read, one byte more is refused, whether it arrives in one read or in many, and when
/// a read ends exactly at the cap with the newline still to come (12288 bytes: three of
/// the client's 4 KiB reads).
async fn the_answer_cap_counts_the_line_without_its_newline(backend: Backend) {
    let dir = tempfile::tempdir().expect("dir");
    for length in [200, 20_000, 3 * 4096] {
        let path = dir.path().join(format!("padded-{length}.sock"));
        let _heard = receiver(&path, Receiver::PaddedTo("s-1", length));
        let exact = limits().with_max_answer_bytes(length);
        exchange(&path, backend, &Command::GetInfo, &exact)
            .await
            .unwrap_or_else(|e| panic!("a {length}-byte answer under a {length}-byte cap: {e}"));
        let short = limits().with_max_answer_bytes(length - 1);
        let error = exchange(&path, backend, &Command::GetInfo, &short)
            .await
            .expect_err("one byte over the cap");
        assert!(
            matches!(error, ExchangeError::AnswerTooLong(max) if max == length - 1),
            "{length} bytes: {error:?}"
        );
    }
    let limits = ExchangeLimits::default()
        .with_connect(Duration::from_millis(7))
        .with_write(Duration::from_millis(8));
    assert_eq!(
        (limits.connect, limits.write),
        (Duration::from_millis(7), Duration::from_millis(8))
    );
}

async fn what_an_exchange_error_proves(backend: Backend) {
    let dir = tempfile::tempdir().expect("dir");
    // Nothing there, a stale socket file, a symlink: nothing was written.
    let absent = dir.path().join("absent.sock");
    let error = exchange(&absent, backend, &send("hi"), &limits())
        .await
        .expect_err("absent");
    assert!(
        matches!(error, ExchangeError::NotConnected(NotConnected::Absent)),
        "{error:?}"
    );
    assert!(error.proves_not_delivered());
    let stale = dir.path().join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).expect("bind"));
    let error = exchange(&stale, backend, &send("hi"), &limits())
        .await
        .expect_err("stale");
    assert!(
        matches!(error, ExchangeError::NotConnected(NotConnected::Refused(_))),
        "{error:?}"
    );
    assert!(error.proves_not_delivered());
    let link = dir.path().join("link.sock");
    symlink(&stale, &link).expect("symlink");
    let error = exchange(&link, backend, &send("hi"), &limits())
        .await
        .expect_err("symlink");
    assert!(
        matches!(
            error,
            ExchangeError::NotConnected(NotConnected::Conflict(_))
        ),
        "{error:?}"
    );

    // After the request was written, nothing proves non-delivery.
    let cases = [
        (Receiver::Stalls, "no answer within"),
        (Receiver::Hangs, "closed after the request"),
        (Receiver::Floods, "longer than 4096 bytes"),
        (Receiver::WrongId, "malformed"),
    ];
    for (how, says) in cases {
        let path = dir.path().join(format!("{how:?}.sock"));
        let mut heard = receiver(&path, how);
        let started = std::time::Instant::now();
        let error = exchange(&path, backend, &send("hi"), &limits())
            .await
            .expect_err("error");
        assert!(error.to_string().contains(says), "{how:?}: {error}");
        assert!(!error.proves_not_delivered(), "{how:?}: proves nothing");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{how:?}: bounded"
        );
        assert_eq!(
            heard.recv().await.expect("the request")["message"],
            "hi",
            "{how:?}"
        );
    }
}

/// Each request carries an id of its own (`entwurf-<pid>-<n>`), so an answer can only ever be
/// matched to the request it answers.
#[tokio::test]
async fn every_request_has_an_id_of_its_own() {
    let dir = tempfile::tempdir().expect("dir");
    let path = socket_in(dir.path());
    let mut heard = receiver(&path, Receiver::Speaks("s-1"));
    let mut ids = Vec::new();
    for _ in 0..2 {
        exchange(&path, Backend::Native, &Command::GetInfo, &limits())
            .await
            .expect("an answer");
        let request = heard.recv().await.expect("the request");
        ids.push(request["id"].as_str().expect("an id").to_owned());
    }
    let ours = format!("entwurf-{}-", std::process::id());
    assert!(ids.iter().all(|id| id.starts_with(&ours)), "{ids:?}");
    assert_ne!(ids[0], ids[1]);
}

/// The production dispatch bounds its connect by the options' probe timeout unless told
/// otherwise, and keeps the bounds it is given.
#[test]
fn the_exchange_bounds_follow_the_options() {
    let mut options =
        entwurf_v2_spawn::production::ProductionOptions::with_home(Path::new("/h"), None);
    options.shared.probe_timeout = Duration::from_millis(123);
    let production = ProductionDispatch::new(options);
    assert_eq!(production.limits().connect, Duration::from_millis(123));
    let given = ExchangeLimits::default().with_answer(Duration::from_millis(9));
    assert_eq!(production.with_limits(given).limits(), &given);
}

/// A saved session for the world's gid, with cwd = the world's dir.
fn save_session(world: &World) {
    let dir = world
        .options
        .shared
        .agent_dir
        .join("sessions")
        .join("--w--");
    std::fs::create_dir_all(&dir).expect("sessions dir");
    let lines = [
        json!({"type":"session","id":gid().as_str(),"cwd":world.dir.path()}),
        json!({"type":"model_change","provider":"p","modelId":"m"}),
    ];
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(dir.join("s.jsonl"), text).expect("session file");
}

fn production(world: &World) -> ProductionDispatch {
    ProductionDispatch::new(world.options.clone()).with_limits(limits())
}

#[tokio::test]
async fn a_live_citizen_gets_the_message_and_the_lock_is_released_once() {
    let world = world(Child::Sleeper, "");
    save_session(&world);
    let mut heard = receiver(
        &world.options.socket_path(&gid()),
        Receiver::Speaks(entwurf_test_support::world::GID),
    );
    let request = DispatchRequest::new(gid(), "good morning", Intent::FireAndForget)
        .with_mode(DeliveryMode::Steer);
    let done = dispatch(&request, &production(&world))
        .await
        .expect("receipt");
    let Receipt::Sent { ack, observed } = &done.receipt else {
        panic!("sent: {:?}", done.receipt);
    };
    assert_eq!(ack.delivered_as(), Some("steer"));
    assert_eq!(observed.liveness(), Liveness::Alive);
    assert_eq!(done.lock, LockFate::Released(ReleaseOutcome::Released));
    assert_eq!(world.releases(), 1);
    assert!(!world.lock_file().exists());
    // One get_info (the probe), one send: one delivery.
    let kinds: Vec<Value> = std::iter::from_fn(|| heard.try_recv().ok())
        .map(|r| r["type"].clone())
        .collect();
    assert_eq!(kinds, [json!("get_info"), json!("send")]);

    // The owned outcome to the same live citizen: refused, nothing delivered.
    let request = DispatchRequest::new(gid(), "own it", Intent::OwnedOutcome);
    let done = dispatch(&request, &production(&world))
        .await
        .expect("receipt");
    assert_eq!(
        done.receipt.rejected().map(|r| r.reason().as_str()),
        Some("owned-live-no-autosend")
    );
    let kinds: Vec<Value> = std::iter::from_fn(|| heard.try_recv().ok())
        .map(|r| r["type"].clone())
        .collect();
    assert_eq!(kinds, [json!("get_info")], "probed, never sent");
    assert_eq!(world.releases(), 2);
    assert!(!world.lock_file().exists());
}

#[tokio::test]
async fn a_stalled_receiver_fails_after_one_delivery_attempt() {
    let world = world(Child::Sleeper, "");
    save_session(&world);
    let path = world.options.socket_path(&gid());
    // get_info answered, the send never: a receiver that answers its probe and stalls
    // on the message.
    let listener = UnixListener::bind(&path).expect("bind");
    let (tx, mut sends) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = BufReader::new(read).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let request: Value = serde_json::from_str(&line).expect("json");
                    if request["type"] == "send" {
                        let _ = tx.send(());
                        tokio::time::sleep(Duration::from_secs(60)).await;
                    }
                    let _ = write
                        .write_all(
                            format!("{}\n", answer(&request, entwurf_test_support::world::GID))
                                .as_bytes(),
                        )
                        .await;
                }
            });
        }
    });
    let request = DispatchRequest::new(gid(), "hello", Intent::FireAndForget);
    let done = dispatch(&request, &production(&world))
        .await
        .expect("receipt");
    assert_eq!(done.receipt.kind(), "failed", "{:?}", done.receipt);
    assert_eq!(done.lock, LockFate::Released(ReleaseOutcome::Released));
    assert_eq!(world.releases(), 1);
    sends.recv().await.expect("one send");
    assert!(sends.try_recv().is_err(), "exactly one delivery attempt");
}

#[tokio::test]
async fn a_dormant_citizen_with_an_owned_outcome_is_resumed_with_the_message() {
    // The stand-in checks its whole argv against the plan (the message is the prompt,
    // `--approve` the launch arg), binds and listens, and exits 1 after 400 ms.
    let world = world(
        Child::StandIn("listen-then-fail-later"),
        "faults_watch::stand_in_pi",
    );
    save_session(&world);
    let request = DispatchRequest::new(
        gid(),
        entwurf_test_support::world::PROMPT,
        Intent::OwnedOutcome,
    )
    .with_launch_args(["--approve"])
    .expect("launch args")
    .with_observe_timeout(Duration::from_secs(10));
    let done = dispatch(&request, &production(&world))
        .await
        .expect("receipt");
    assert_eq!(done.lock, LockFate::HandedToResume);
    let Receipt::Resumed { observed, outcome } = done.receipt else {
        panic!("resumed: {:?}", done.receipt);
    };
    assert_eq!(observed.liveness(), Liveness::Dead);
    match outcome.expect("resume") {
        ResumeOutcome::Background(SpawnBgOutcome::SocketAlive { release, .. }) => {
            assert_eq!(release, ReleaseOutcome::Released);
        }
        other => panic!("socket-alive expected (the argv matched): {other:?}"),
    }
    assert_eq!(world.releases(), 1, "released once, by the resume");
    assert!(!world.lock_file().exists());

    // Fire-and-forget to a dormant citizen: refused, nothing spawned.
    let world = world_without_child();
    save_session(&world);
    let request = DispatchRequest::new(gid(), "hello", Intent::FireAndForget);
    let done = dispatch(&request, &production(&world))
        .await
        .expect("receipt");
    assert_eq!(
        done.receipt.rejected().map(|r| r.reason().as_str()),
        Some("dormant-fire-forget-unsupported")
    );
    assert!(world.pid.lock().expect("pid").is_none(), "nothing spawned");
}

fn world_without_child() -> World {
    world(Child::Sleeper, "")
}
