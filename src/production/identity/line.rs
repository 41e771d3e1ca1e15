//! One line of a saved session, classified for identity. Separate so the parser can be
//! fuzzed on its own; it is total over any input.

use serde::Deserialize;
use serde_json::Value;

use super::ModelRef;

/// One line of a saved session, as far as identity is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionLine {
    /// `{"type":"session",…}`.
    Header(SessionHeader),
    /// `{"type":"model_change",…}`.
    ModelChange(ModelChangeLine),
    /// A JSON object of another type (or without a string `type`).
    Other,
    /// Not a JSON object at all (torn write, blank line, garbage).
    Invalid,
}

/// The fields of a session header that identity needs. `None` = missing, `null` or not
/// a string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionHeader {
    /// `id`.
    pub id: Option<String>,
    /// `cwd`, unvalidated.
    pub cwd: Option<String>,
}

/// A `model_change` line. `None` = unusable (missing, not a string, or empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelChangeLine {
    /// `provider`.
    pub provider: ProviderField,
    /// `modelId`.
    pub model: Option<String>,
}

/// A `model_change` line's `provider`, which is optional.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProviderField {
    /// Absent or `null`: launch without `--provider`.
    Absent,
    /// A non-empty string.
    Named(String),
    /// Present but not a non-empty string: the line is malformed.
    Unusable,
}

impl ModelChangeLine {
    /// The pair, if both fields are usable.
    #[must_use]
    pub fn model_ref(&self) -> Option<ModelRef> {
        let provider = match &self.provider {
            ProviderField::Absent => None,
            ProviderField::Named(p) => Some(p.clone()),
            ProviderField::Unusable => return None,
        };
        Some(ModelRef {
            provider,
            model: self.model.clone()?,
        })
    }
}

/// Classifies one line of a session file. Total: never panics, whatever the input
/// (fuzzed by a property test), because session files are written by another program and
/// may be torn or corrupt.
pub fn parse_session_line(line: &str) -> SessionLine {
    // A struct would also deserialize from a JSON array; only objects are lines.
    if !line.trim_start().starts_with('{') {
        return SessionLine::Invalid;
    }
    let Ok(raw) = serde_json::from_str::<RawLine>(line) else {
        return SessionLine::Invalid;
    };
    let text = |v: Option<Value>| match v {
        Some(Value::String(s)) => Some(s),
        _ => None,
    };
    match raw.kind.as_ref().and_then(Value::as_str) {
        Some("session") => SessionLine::Header(SessionHeader {
            id: text(raw.id),
            cwd: text(raw.cwd),
        }),
        Some("model_change") => SessionLine::ModelChange(ModelChangeLine {
            provider: match raw.provider {
                None | Some(Value::Null) => ProviderField::Absent,
                Some(Value::String(s)) if !s.is_empty() => ProviderField::Named(s),
                Some(_) => ProviderField::Unusable,
            },
            model: text(raw.model_id).filter(|m| !m.is_empty()),
        }),
        _ => SessionLine::Other,
    }
}

/// Only the fields identity reads; everything else is skipped without being stored.
#[derive(Deserialize)]
struct RawLine {
    #[serde(rename = "type")]
    kind: Option<Value>,
    id: Option<Value>,
    cwd: Option<Value>,
    provider: Option<Value>,
    #[serde(rename = "modelId")]
    model_id: Option<Value>,
}

#[cfg(test)]
mod tests {
    use super::{ProviderField, SessionLine, parse_session_line};

    /// A provider is a non-empty string or absent; an empty one makes the line unusable
    /// rather than naming a provider called "".
    #[test]
    fn an_empty_provider_is_unusable_not_a_name() {
        let provider = |value: &str| match parse_session_line(&format!(
            r#"{{"type":"model_change","provider":{value},"modelId":"m"}}"#
        )) {
            SessionLine::ModelChange(line) => (line.provider.clone(), line.model_ref()),
            other => panic!("{value}: {other:?}"),
        };
        assert_eq!(provider(r#""""#), (ProviderField::Unusable, None));
        assert_eq!(provider("null").0, ProviderField::Absent);
        assert_eq!(provider(r#""p""#).0, ProviderField::Named("p".into()));
    }
}
