//! What the P checks read from the session files pi writes: where they are, their
//! header line, and their user and assistant turns.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

pub fn collect_sessions(dir: &Path, suffix: &str, into: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_sessions(&path, suffix, into);
        } else if path.to_string_lossy().ends_with(suffix) {
            into.push(path);
        }
    }
}

/// The user and assistant messages of a session file, `(role, text)`, in order.
pub fn turns(file: &Path) -> Result<Vec<(String, String)>> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let mut turns = Vec::new();
    for line in text.lines() {
        let entry: serde_json::Value =
            serde_json::from_str(line).with_context(|| format!("a line of {}", file.display()))?;
        let message = &entry["message"];
        let Some(role) = message["role"].as_str() else {
            continue;
        };
        if entry["type"] != "message" || (role != "user" && role != "assistant") {
            continue;
        }
        let said = match &message["content"] {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Array(parts) => {
                parts.iter().filter_map(|p| p["text"].as_str()).collect()
            }
            _ => String::new(),
        };
        turns.push((role.to_owned(), said));
    }
    Ok(turns)
}

pub fn header(file: &Path) -> Result<String> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    Ok(text.lines().next().unwrap_or_default().to_owned())
}
