//! `--record FILE`: one dated entry under a `## Live smoke record` heading.
//!
//! The heading is created once, when missing (appended at the end of the file). Entries
//! go at the end of that section — after its last non-blank line, before the next `#`/`##`
//! heading — so a record section in the middle of `NEXT.md` keeps growing in place. Every
//! other byte of the file stays as it was; when the section is last, the file is only
//! appended to.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};

/// The heading entries live under.
pub const HEADING: &str = "## Live smoke record";

/// The facts one entry records.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The exact summary line.
    pub summary: String,
    /// Which scenario ran.
    pub scenario: &'static str,
    /// Wall time of the checks.
    pub wall: Duration,
    /// Who ran it: root and an ordinary user skip different checks.
    pub euid: u32,
}

/// Appends `entry` to `file` (created if missing).
pub fn record(file: &Path, entry: &Entry) -> Result<()> {
    let old = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", file.display())),
    };
    let line = entry_line(entry, SystemTime::now(), &platform(), git_head().as_deref());
    let new = insert(&old, &line);
    if let Some(suffix) = new.strip_prefix(old.as_str()) {
        let mut f = OpenOptions::new()
            .append(true)
            .create(true)
            .open(file)
            .with_context(|| format!("opening {}", file.display()))?;
        f.write_all(suffix.as_bytes())
            .with_context(|| format!("appending to {}", file.display()))?;
    } else {
        std::fs::write(file, new).with_context(|| format!("writing {}", file.display()))?;
    }
    Ok(())
}

/// One Markdown list item: UTC time, the summary line, scenario, platform, wall time and
/// the commit when known.
fn entry_line(e: &Entry, now: SystemTime, platform: &str, commit: Option<&str>) -> String {
    let mut line = format!(
        "- {} `{}` — scenario {} as {}, {platform}, wall {:.1} ms",
        humantime::format_rfc3339_seconds(now),
        e.summary,
        e.scenario,
        if e.euid == 0 {
            "root".to_string()
        } else {
            format!("uid {}", e.euid)
        },
        e.wall.as_secs_f64() * 1000.0
    );
    if let Some(commit) = commit {
        line.push_str(&format!(", commit {commit}"));
    }
    line
}

/// `sysname release machine` from uname(2).
fn platform() -> String {
    match nix::sys::utsname::uname() {
        Ok(u) => format!(
            "{} {} {}",
            u.sysname().to_string_lossy(),
            u.release().to_string_lossy(),
            u.machine().to_string_lossy()
        ),
        Err(e) => format!(
            "{} {} (uname failed: {e})",
            std::env::consts::OS,
            std::env::consts::ARCH
        ),
    }
}

/// `git rev-parse --short HEAD` in the current directory, when git and a repo are there.
fn git_head() -> Option<String> {
    let out = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let head = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (out.status.success() && !head.is_empty()).then_some(head)
}

fn is_section_end(line: &str) -> bool {
    line.starts_with("# ") || line.starts_with("## ") || line == "#" || line == "##"
}

/// The file with `entry` added (see the module docs for where).
fn insert(old: &str, entry: &str) -> String {
    // Line starts (byte offsets) with their text, newline excluded.
    let mut lines = Vec::new();
    let mut at = 0;
    for piece in old.split_inclusive('\n') {
        lines.push((at, piece.trim_end_matches(['\n', '\r'])));
        at += piece.len();
    }
    let Some(heading) = lines.iter().position(|(_, l)| l.trim_end() == HEADING) else {
        let mut new = old.to_owned();
        if !new.is_empty() {
            if !new.ends_with('\n') {
                new.push('\n');
            }
            new.push('\n');
        }
        new.push_str(&format!("{HEADING}\n\n{entry}\n"));
        return new;
    };
    // A `# comment` inside a fenced code block is not a heading.
    let mut fenced = false;
    let end = lines[heading + 1..]
        .iter()
        .position(|(_, l)| {
            if l.trim_start().starts_with("```") {
                fenced = !fenced;
            }
            !fenced && is_section_end(l)
        })
        .map_or(lines.len(), |i| heading + 1 + i);
    let last = (heading..end)
        .rev()
        .find(|&i| !lines[i].1.trim().is_empty())
        .unwrap_or(heading);
    // Byte offset just after the last non-blank line of the section (and its newline).
    let cut = lines.get(last + 1).map_or(old.len(), |(offset, _)| *offset);
    let (before, after) = old.split_at(cut);
    let mut new = before.to_owned();
    if !new.ends_with('\n') {
        new.push('\n');
    }
    if last == heading {
        new.push('\n');
    }
    new.push_str(entry);
    new.push('\n');
    new.push_str(after);
    new
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heading_is_created_once_and_other_text_kept() {
        let first = insert("# Next\n\nstuff", "- one");
        assert_eq!(first, "# Next\n\nstuff\n\n## Live smoke record\n\n- one\n");
        let second = insert(&first, "- two");
        assert_eq!(second, format!("{first}- two\n"));
        assert_eq!(insert("", "- x"), "## Live smoke record\n\n- x\n");
    }

    #[test]
    fn entries_stay_inside_a_middle_section() {
        let old = "# N\n\n## Live smoke record\n\n- a\n\n## Later\n\ntext\n";
        let new = insert(old, "- b");
        assert_eq!(
            new,
            "# N\n\n## Live smoke record\n\n- a\n- b\n\n## Later\n\ntext\n"
        );
        let fence = insert("## Live smoke record\n```sh\n# run\n```\n", "- b");
        assert_eq!(fence, "## Live smoke record\n```sh\n# run\n```\n- b\n");
        let bare = insert("## Live smoke record\n## Later\n", "- b");
        assert_eq!(bare, "## Live smoke record\n\n- b\n## Later\n");
    }

    #[test]
    fn entry_names_time_summary_platform_and_commit() {
        let e = Entry {
            summary: "smoke-entwurf-v2-spawn-live: 3 checks passed (real OS primitives)".into(),
            scenario: "all",
            wall: Duration::from_millis(212),
            euid: 0,
        };
        let line = entry_line(
            &e,
            SystemTime::UNIX_EPOCH,
            "Linux 6.1 x86_64",
            Some("abc1234"),
        );
        assert_eq!(
            line,
            "- 1970-01-01T00:00:00Z `smoke-entwurf-v2-spawn-live: 3 checks passed (real OS primitives)` — scenario all as root, Linux 6.1 x86_64, wall 212.0 ms, commit abc1234"
        );
    }
}
