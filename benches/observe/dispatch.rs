//! `dispatch`: a fire-and-forget dispatch to a live receiver, decision → ack, through
//! `ProductionDispatch` (saved session read, socket inspected, lock taken with its fsync,
//! probe with `get_info`, send, release), split into the receiver's share and the
//! library's.
//!
//! The receiver is a blocking std listener on its own thread that speaks the protocol
//! and stamps, per request, the time from reading the request line to having written
//! its answer: that is the receiver's share. The library's share is the whole call minus
//! it (the kernel's socket hops included: they are the cost of asking). The floor row is
//! the same two exchanges written by hand with blocking std calls (connect, write, read
//! a line), with no lock and no file read: what no dispatcher can go below here.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use entwurf_v2_spawn::GardenId;
use entwurf_v2_spawn::dispatch::{DispatchRequest, Intent, ProductionDispatch, Receipt, dispatch};
use entwurf_v2_spawn::production::ProductionOptions;

use crate::stats::{Row, ms};

const GID: &str = "20260613T000000-d15a7c";

pub struct Report {
    pub rows: Vec<Row>,
    pub failures: Vec<String>,
}

/// Serves the protocol on `listener` until the process ends, adding each request's
/// read → answered time to `handled`.
fn serve(listener: UnixListener, handled: Arc<Mutex<Duration>>) {
    for stream in listener.incoming() {
        let Ok(stream) = stream else { return };
        let handled = handled.clone();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut writer = stream;
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                let read = Instant::now();
                let request: serde_json::Value = serde_json::from_str(&line).expect("json");
                let kind = request["type"].as_str().unwrap_or_default().to_owned();
                let data = match kind.as_str() {
                    "get_info" => serde_json::json!({"sessionId": GID, "idle": true}),
                    _ => serde_json::json!({"delivered": true, "deliveredAs": "followUp"}),
                };
                let answer = serde_json::json!({"type":"response","command":kind,"success":true,"data":data,"id":request["id"]});
                let wrote = writer.write_all(format!("{answer}\n").as_bytes());
                *handled.lock().expect("handled") += read.elapsed();
                if wrote.is_err() {
                    return;
                }
                line.clear();
            }
        });
    }
}

/// Two exchanges by hand (get_info, then send), blocking.
fn floor(socket: &Path) -> Duration {
    let started = Instant::now();
    for request in [
        r#"{"type":"get_info","id":"f"}"#,
        r#"{"type":"send","message":"m","mode":"follow_up","id":"f"}"#,
    ] {
        let mut stream = UnixStream::connect(socket).expect("connect");
        stream
            .write_all(format!("{request}\n").as_bytes())
            .expect("write");
        let mut answer = String::new();
        BufReader::new(stream)
            .read_line(&mut answer)
            .expect("answer");
    }
    started.elapsed()
}

pub async fn run(trials: usize) -> Report {
    let root = tempfile::tempdir().expect("tempdir");
    let options = ProductionOptions::with_home(root.path(), None);
    let sessions = options.shared.agent_dir.join("sessions").join("--bench--");
    std::fs::create_dir_all(&sessions).expect("sessions");
    std::fs::write(
        sessions.join("s.jsonl"),
        format!(
            "{}\n{}\n",
            serde_json::json!({"type":"session","id":GID,"cwd":root.path()}),
            serde_json::json!({"type":"model_change","provider":"p","modelId":"m"})
        ),
    )
    .expect("session");
    std::fs::create_dir_all(&options.shared.control_dir).expect("control dir");
    let gid = GardenId::parse(GID).expect("gid");
    let socket = options.socket_path(&gid);
    let listener = UnixListener::bind(&socket).expect("bind");
    let handled = Arc::new(Mutex::new(Duration::ZERO));
    let served = handled.clone();
    std::thread::spawn(move || serve(listener, served));

    let deps = ProductionDispatch::new(options);
    let request = DispatchRequest::new(gid, "bench", Intent::FireAndForget);
    let (mut total, mut receiver, mut library, mut floors) = (vec![], vec![], vec![], vec![]);
    let mut locks = vec![];
    let lock_dir = deps.options().shared.lock_dir.clone();
    let mut failures = Vec::new();
    for trial in 0..trials + 3 {
        *handled.lock().expect("handled") = Duration::ZERO;
        let started = Instant::now();
        let done = dispatch(&request, &deps).await;
        let whole = started.elapsed();
        let theirs = *handled.lock().expect("handled");
        match done {
            Ok(done) if matches!(done.receipt, Receipt::Sent { .. }) => {}
            Ok(done) => failures.push(format!("not sent: {}", done.receipt.kind())),
            Err(e) => failures.push(e.to_string()),
        }
        let hand = tokio::task::spawn_blocking({
            let socket = socket.clone();
            move || floor(&socket)
        })
        .await
        .expect("floor");
        let lock = tokio::task::spawn_blocking({
            let (dir, gid) = (lock_dir.clone(), request.gid.clone());
            move || {
                let started = Instant::now();
                let claim = entwurf_v2_spawn::lock::acquire(&dir, &gid).expect("lock");
                entwurf_v2_spawn::lock::release(&claim).expect("release");
                started.elapsed()
            }
        })
        .await
        .expect("lock");
        // The first three warm the page cache and the allocator.
        if trial >= 3 {
            locks.push(ms(lock));
            total.push(ms(whole));
            receiver.push(ms(theirs));
            library.push(ms(whole.saturating_sub(theirs)));
            floors.push(ms(hand));
        }
    }
    Report {
        rows: vec![
            Row::new(
                "dispatch",
                "fire-and-forget to a live receiver, decision → ack",
                total,
            ),
            Row::new(
                "dispatch",
                "  the receiver's share (request read → answer written)",
                receiver,
            ),
            Row::new(
                "dispatch",
                "  the library's share (the rest: session read, lock, probe, send, release)",
                library,
            ),
            Row::new(
                "dispatch",
                "  of which the lock alone: acquire (fsync) + release",
                locks,
            ),
            Row::new(
                "dispatch",
                "floor: the two exchanges by hand (std, blocking, no lock)",
                floors,
            ),
        ],
        failures,
    }
}
