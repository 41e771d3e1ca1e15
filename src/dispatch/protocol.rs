//! The control socket's wire format, as entwurf's control extension speaks it.
//!
//! Newline-delimited JSON over the citizen's unix stream socket. A request is one object
//! with a `type` and an optional string `id`, which the answer echoes. The answer is one
//! object `{"type":"response","command":<the request's type>,"success":bool, "data"?,
//! "error"?, "id"?}`. This module only writes requests and reads answers; the exchange
//! (connect, bounds, close) is [`super::client`].

use std::fmt;

use serde::Deserialize;
use serde_json::{Map, Value, json};

/// How the receiver delivers a message relative to the turn it may be running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum DeliveryMode {
    /// Interrupt the current turn.
    Steer,
    /// Queue after the current turn (the default).
    #[default]
    FollowUp,
}

impl DeliveryMode {
    /// The request's spelling (`steer`, `follow_up`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Steer => "steer",
            Self::FollowUp => "follow_up",
        }
    }
}

impl fmt::Display for DeliveryMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A request this crate sends.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command {
    /// `{"type":"get_info"}`: who is listening (session id, cwd, model, idle).
    GetInfo,
    /// `{"type":"send","message":…,"mode":…}`: deliver a message.
    Send {
        /// The text.
        message: String,
        /// Steer or follow up.
        mode: DeliveryMode,
    },
}

impl Command {
    /// The request's `type`, which the answer's `command` names.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Self::GetInfo => "get_info",
            Self::Send { .. } => "send",
        }
    }

    /// The request line, newline included, carrying `id`.
    #[must_use]
    pub fn to_line(&self, id: &str) -> String {
        let mut request = match self {
            Self::GetInfo => json!({ "type": "get_info" }),
            Self::Send { message, mode } => {
                json!({ "type": "send", "message": message, "mode": mode.as_str() })
            }
        };
        request["id"] = Value::String(id.to_owned());
        let mut line = request.to_string();
        line.push('\n');
        line
    }
}

/// An answer that parsed and belongs to the request it answers.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Answer {
    /// `success: true`, with the answer's `data` (an empty object when absent).
    Success(Map<String, Value>),
    /// `success: false`: the receiver was reached and refused, saying why.
    Refused {
        /// The answer's `error` text (empty when it gave none).
        error: String,
    },
}

/// Why an answer line is not the protocol's answer to our request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MalformedAnswer {
    /// Not a JSON object.
    #[error("the answer is not a JSON object: {0}")]
    NotJson(String),
    /// An object, but not `{"type":"response", "success": bool, …}`.
    #[error("the answer is not a response: {0}")]
    NotAResponse(String),
    /// A response to another command.
    #[error("the answer is for command {got:?}, not {expected:?}")]
    OtherCommand {
        /// The request's type.
        expected: &'static str,
        /// What the answer names.
        got: String,
    },
    /// A response carrying another request's id.
    #[error("the answer echoes id {got:?}, not {expected:?}")]
    OtherId {
        /// Ours.
        expected: String,
        /// The answer's.
        got: String,
    },
    /// `success: true` with a `data` that is not an object.
    #[error("the answer's data is not an object")]
    DataNotObject,
}

#[derive(Deserialize)]
struct Response {
    #[serde(rename = "type")]
    kind: String,
    command: Option<String>,
    success: bool,
    data: Option<Value>,
    error: Option<Value>,
    id: Option<Value>,
}

/// Reads one answer line (without its newline) to `command` sent with `id`.
///
/// The answer must be a response object; its `command`, when present, must be the
/// request's type, and its `id`, when present, ours (a receiver that echoes nothing is
/// accepted: the id is optional in the protocol, and the connection carries one
/// request). Extra fields are ignored.
///
/// # Errors
///
/// [`MalformedAnswer`] when the line is not that.
pub fn parse_answer(line: &[u8], command: &Command, id: &str) -> Result<Answer, MalformedAnswer> {
    let value: Value =
        serde_json::from_slice(line).map_err(|e| MalformedAnswer::NotJson(e.to_string()))?;
    if !value.is_object() {
        return Err(MalformedAnswer::NotJson(format!(
            "a JSON {}",
            kind_of(&value)
        )));
    }
    let response: Response =
        serde_json::from_value(value).map_err(|e| MalformedAnswer::NotAResponse(e.to_string()))?;
    if response.kind != "response" {
        return Err(MalformedAnswer::NotAResponse(format!(
            "type is {:?}",
            response.kind
        )));
    }
    if let Some(got) = response.command
        && got != command.name()
    {
        return Err(MalformedAnswer::OtherCommand {
            expected: command.name(),
            got,
        });
    }
    match response.id {
        None => {}
        Some(Value::String(got)) if got == id => {}
        Some(other) => {
            return Err(MalformedAnswer::OtherId {
                expected: id.to_owned(),
                got: match other {
                    Value::String(text) => text,
                    other => other.to_string(),
                },
            });
        }
    }
    if !response.success {
        let error = match response.error {
            Some(Value::String(text)) => text,
            Some(Value::Null) | None => String::new(),
            Some(other) => other.to_string(),
        };
        return Ok(Answer::Refused { error });
    }
    match response.data {
        None | Some(Value::Null) => Ok(Answer::Success(Map::new())),
        Some(Value::Object(data)) => Ok(Answer::Success(data)),
        Some(_) => Err(MalformedAnswer::DataNotObject),
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// What `get_info` says about the listener.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CitizenInfo {
    /// The session it runs (`data.sessionId`): for a pi citizen, its garden id.
    pub session_id: String,
    /// Its working directory, when given.
    pub cwd: Option<String>,
    /// Its model id, when given.
    pub model: Option<String>,
    /// Its provider, when given.
    pub provider: Option<String>,
    /// Whether it is between turns, when given.
    pub idle: Option<bool>,
}

impl CitizenInfo {
    /// Reads a `get_info` answer's data; `None` without a string `sessionId` (then the
    /// answer proves nothing about who listens).
    #[must_use]
    pub fn from_data(data: &Map<String, Value>) -> Option<Self> {
        let text = |value: Option<&Value>| value.and_then(Value::as_str).map(str::to_owned);
        let model = data.get("model");
        Some(Self {
            session_id: text(data.get("sessionId"))?,
            cwd: text(data.get("cwd")),
            model: text(model.and_then(|m| m.get("id"))),
            provider: text(model.and_then(|m| m.get("provider"))),
            idle: data.get("idle").and_then(Value::as_bool),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send() -> Command {
        Command::Send {
            message: "hi \"there\"\n".to_owned(),
            mode: DeliveryMode::FollowUp,
        }
    }

    #[test]
    fn requests_are_one_json_line_with_the_id() {
        let line = send().to_line("d-1");
        assert!(line.ends_with('\n'));
        assert_eq!(line.matches('\n').count(), 1, "{line:?}");
        let value: Value = serde_json::from_str(line.trim_end()).expect("json");
        assert_eq!(
            value,
            json!({"type":"send","message":"hi \"there\"\n","mode":"follow_up","id":"d-1"})
        );
        let info: Value =
            serde_json::from_str(Command::GetInfo.to_line("x").trim_end()).expect("json");
        assert_eq!(info, json!({"type":"get_info","id":"x"}));
        assert_eq!(DeliveryMode::Steer.to_string(), "steer");
    }

    #[test]
    fn answers_are_read_strictly() {
        let ok = br#"{"type":"response","command":"send","success":true,"data":{"delivered":true,"deliveredAs":"followUp"},"id":"d-1"}"#;
        let Ok(Answer::Success(data)) = parse_answer(ok, &send(), "d-1") else {
            panic!("success expected");
        };
        assert_eq!(data["deliveredAs"], "followUp");
        // No id echoed, no data: still the answer.
        assert_eq!(
            parse_answer(
                br#"{"type":"response","command":"send","success":true}"#,
                &send(),
                "d-1"
            ),
            Ok(Answer::Success(Map::new()))
        );
        assert_eq!(
            parse_answer(
                br#"{"type":"response","command":"send","success":false,"error":"Missing message"}"#,
                &send(),
                "d-1"
            ),
            Ok(Answer::Refused {
                error: "Missing message".to_owned()
            })
        );
        assert_eq!(
            parse_answer(br#"{"type":"response","success":false}"#, &send(), "d-1"),
            Ok(Answer::Refused {
                error: String::new()
            })
        );
        let malformed: [(&[u8], &str); 8] = [
            (b"not json", "not a JSON object"),
            (b"[1]", "a JSON array"),
            (br#"{"type":"event","success":true}"#, "not a response"),
            (br#"{"type":"response"}"#, "not a response"),
            (br#"{"type":"response","success":"yes"}"#, "not a response"),
            (
                br#"{"type":"response","command":"get_info","success":true}"#,
                "for command \"get_info\"",
            ),
            (
                br#"{"type":"response","command":"send","success":true,"id":"other"}"#,
                "echoes id \"other\"",
            ),
            (
                br#"{"type":"response","command":"send","success":true,"data":[1]}"#,
                "data is not an object",
            ),
        ];
        for (line, says) in malformed {
            let error = parse_answer(line, &send(), "d-1").expect_err("malformed");
            assert!(
                error.to_string().contains(says),
                "{}: {error}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn get_info_data_names_the_session() {
        let data = json!({"sessionId":"20260613T000000-aaaaaa","cwd":"/w","model":{"id":"echo","provider":"fixture"},"idle":true});
        let info = CitizenInfo::from_data(data.as_object().expect("object")).expect("info");
        assert_eq!(info.session_id, "20260613T000000-aaaaaa");
        assert_eq!(info.cwd.as_deref(), Some("/w"));
        assert_eq!(info.model.as_deref(), Some("echo"));
        assert_eq!(info.provider.as_deref(), Some("fixture"));
        assert_eq!(info.idle, Some(true));
        let nameless = json!({"cwd":"/w"});
        assert_eq!(
            CitizenInfo::from_data(nameless.as_object().expect("object")),
            None
        );
    }
}
