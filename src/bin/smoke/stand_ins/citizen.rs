//! The stand-in citizen (`__stand-in citizen`): a pi citizen's control socket, as
//! entwurf's control extension serves it (SPEC §18), for the `dispatch` scenario.
//!
//! It binds `--listen` (any length), then serves every connection on a thread of its own,
//! newline-delimited JSON both ways: `get_info` answers `success: true` naming
//! `--session-id` (with a cwd, a model and `idle`); `send` with a message answers
//! `success: true`, `deliveredAs` `followUp` (or `steer` when asked), and an empty one
//! `"Missing message"`; any other type answers `success: false`, `"Unsupported command:
//! <type>"`. A request's `id` is echoed. The connection stays open for more requests
//! until the client closes it.
//!
//! `--record` is created once it listens: the gate waits for that file. Every accepted
//! connection and every request line is appended to it (one JSON line each, [`Heard`])
//! **before** it is answered, so once a client has its answer the record holds the
//! request: a check counts deliveries by reading it.
//!
//! `--misbehave` departs from the protocol ([`Misbehaviour`]): never answer a send,
//! refuse every send in band, unlink the socket and exit right after answering the first
//! `get_info` (gone between a probe and a send), or never answer anything.
//!
//! It watches the gate process (the lifeline) and has the lifetime cap; SIGTERM's default
//! action ends it.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::args::{CitizenArgs, Misbehaviour};
use super::lifeline::{MAX_LIFE_MS, Watched, lifeline, lifetime_cap};
use crate::os;

/// What a refusing citizen answers a send with.
pub const REFUSAL: &str = "refused by the stand-in citizen";

/// One line of a citizen's record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Heard {
    /// A connection was accepted.
    Connected,
    /// A request line arrived (the JSON value, or the line as a string when it was not
    /// JSON).
    Request {
        /// What came.
        request: Value,
    },
}

/// What a citizen heard, read back from its record.
#[derive(Debug, Clone, Default)]
pub struct Record {
    /// Every line, in the order written.
    pub heard: Vec<Heard>,
}

impl Record {
    /// Reads `path` (a missing file: nothing heard).
    pub fn read(path: &Path) -> Result<Self, String> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(format!("reading {}: {e}", path.display())),
        };
        let heard = text
            .lines()
            .map(|line| {
                serde_json::from_str(line)
                    .map_err(|e| format!("{}: a line that is not a record: {e}", path.display()))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { heard })
    }

    /// Every request, in order.
    pub fn requests(&self) -> Vec<&Value> {
        self.heard
            .iter()
            .filter_map(|h| match h {
                Heard::Request { request } => Some(request),
                Heard::Connected => None,
            })
            .collect()
    }

    /// The requests' types, in order (`?` for one without a string type).
    pub fn kinds(&self) -> Vec<String> {
        self.requests()
            .iter()
            .map(|r| {
                r.get("type")
                    .and_then(Value::as_str)
                    .unwrap_or("?")
                    .to_owned()
            })
            .collect()
    }

    /// The `send` requests, in order.
    pub fn sends(&self) -> Vec<&Value> {
        self.requests()
            .into_iter()
            .filter(|r| r.get("type").and_then(Value::as_str) == Some("send"))
            .collect()
    }
}

struct Citizen {
    args: CitizenArgs,
    record: Mutex<File>,
}

impl Citizen {
    /// Appends one line to the record, whole (one `write` on an `O_APPEND` file).
    fn note(&self, heard: &Heard) {
        let mut line = serde_json::to_string(heard).unwrap_or_else(|e| format!("{e}"));
        line.push('\n');
        let mut file = self
            .record
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Err(e) = file.write_all(line.as_bytes()) {
            eprintln!("stand-in citizen: recording: {e}");
        }
    }

    fn serve(&self, stream: &UnixStream) {
        let mut writer = stream;
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { return };
            let request = serde_json::from_str(&line).unwrap_or(Value::String(line));
            self.note(&Heard::Request {
                request: request.clone(),
            });
            let kind = request.get("type").and_then(Value::as_str).unwrap_or("");
            let dies = kind == "get_info" && self.args.misbehave == Misbehaviour::DieAfterInfo;
            if dies {
                // Gone before the answer leaves: whoever reads it finds nobody listening.
                let _ = std::fs::remove_file(&self.args.listen);
            }
            let Some(answer) = self.answer(kind, &request) else {
                // Never answers: hold the connection open until the client gives up.
                loop {
                    std::thread::park();
                }
            };
            let sent = writer
                .write_all(format!("{answer}\n").as_bytes())
                .and_then(|()| writer.flush());
            if dies {
                std::process::exit(0);
            }
            if sent.is_err() {
                return;
            }
        }
    }

    /// The answer to one request of type `kind`; `None` when it is never answered.
    fn answer(&self, kind: &str, request: &Value) -> Option<Value> {
        let reply: Result<Value, String> = match (kind, self.args.misbehave) {
            (_, Misbehaviour::Silent) | ("send", Misbehaviour::StallSend) => return None,
            ("get_info", _) => Ok(json!({
                "sessionId": self.args.session_id,
                "cwd": std::env::current_dir().ok(),
                "model": {"id": "smoke-citizen-model", "provider": "smoke-citizen"},
                "idle": true,
            })),
            ("send", Misbehaviour::RefuseSend) => Err(REFUSAL.to_owned()),
            ("send", _) => match request.get("message").and_then(Value::as_str) {
                Some(message) if !message.is_empty() => {
                    let steer = request.get("mode").and_then(Value::as_str) == Some("steer");
                    Ok(json!({
                        "delivered": true,
                        "deliveredAs": if steer { "steer" } else { "followUp" },
                    }))
                }
                _ => Err("Missing message".to_owned()),
            },
            (other, _) => Err(format!("Unsupported command: {other}")),
        };
        let mut answer = json!({"type": "response", "command": kind});
        match reply {
            Ok(data) => {
                answer["success"] = Value::Bool(true);
                answer["data"] = data;
            }
            Err(error) => {
                answer["success"] = Value::Bool(false);
                answer["error"] = Value::String(error);
            }
        }
        if let Some(id) = request.get("id") {
            answer["id"] = id.clone();
        }
        Some(answer)
    }
}

fn fail(why: &str) -> ExitCode {
    eprintln!("stand-in citizen: {why}");
    ExitCode::from(4)
}

/// Plays the citizen (see the module docs).
pub fn run(a: &CitizenArgs) -> ExitCode {
    lifeline(a.lifeline.map_or(Watched::Parent, Watched::Gate));
    lifetime_cap(MAX_LIFE_MS);
    let listener = match os::bind_any_len(&a.listen) {
        Ok(listener) => listener,
        Err(e) => return fail(&format!("{e:#}")),
    };
    // Its creation says "listening" (no ready file of its own: one inode fewer).
    let record = match OpenOptions::new().create(true).append(true).open(&a.record) {
        Ok(file) => file,
        Err(e) => return fail(&format!("opening {}: {e}", a.record.display())),
    };
    let citizen = Arc::new(Citizen {
        args: a.clone(),
        record: Mutex::new(record),
    });
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(stream) => stream,
            Err(e) => return fail(&format!("accept: {e}")),
        };
        citizen.note(&Heard::Connected);
        let serving = citizen.clone();
        let spawned = std::thread::Builder::new()
            .stack_size(128 * 1024)
            .spawn(move || serving.serve(&stream));
        if let Err(e) = spawned {
            return fail(&format!("a connection's thread: {e}"));
        }
    }
    ExitCode::SUCCESS
}
