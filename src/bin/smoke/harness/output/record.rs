//! `--record FILE`: one dated entry under a `## Live smoke record` heading.
//!
//! The heading is created once, when missing (appended at the end of the file). Entries
//! go at the end of that section — after its last non-blank line, before the next `#`/`##`
//! heading — so a record section in the middle of `NEXT.md` keeps growing in place. Every
//! other byte of the file stays as it was.
//!
//! # Never a truncated file, never a lost entry
//!
//! The target is checked before any check runs ([`Target::validate`]), so a run whose
//! record cannot be written never starts. The entry is then written as a whole new file
//! next to the old one (same directory, so the rename cannot cross filesystems), fsynced,
//! given the old file's mode (and owner, when root records into a user's file) and
//! renamed over it: a Ctrl-C or a crash leaves either the old or the new file, never half
//! of one. Two recorders at once would each read the old text and the second rename would
//! drop the first entry, so the read-modify-rename runs under an exclusive `flock` on the
//! target's directory — a lock on the file itself would not do, since the rename replaces
//! the inode the lock sits on, and a side lock file would be left in the user's tree.

use std::fs::{File, Permissions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, anyhow};
use nix::fcntl::{Flock, FlockArg};

use crate::harness::report::COMMIT;

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
    /// The real pi versions the P checks of the run met (empty: none ran).
    pub pi_versions: Vec<String>,
}

/// A validated `--record` target: an absolute path (symlinks resolved) in a writable
/// directory.
#[derive(Debug, Clone)]
pub struct Target {
    file: PathBuf,
    dir: PathBuf,
}

impl Target {
    /// Checks, before any check runs, that an entry could be written: the directory
    /// exists and takes new files, and an existing FILE is a readable, writable regular
    /// file. The error says what is wrong and how to fix it.
    pub fn validate(file: &Path) -> Result<Self> {
        let absolute = std::path::absolute(file)
            .with_context(|| format!("--record {}: cannot resolve the path", file.display()))?;
        // Write through a symlink to its target, as an editor would.
        let file = match std::fs::canonicalize(&absolute) {
            Ok(real) => real,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => absolute,
            Err(e) => {
                return Err(anyhow!(
                    "--record {}: {e}; pass a FILE you can read and write",
                    file.display()
                ));
            }
        };
        let dir = file
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .ok_or_else(|| anyhow!("--record {}: names no file", file.display()))?
            .to_path_buf();
        if !dir.is_dir() {
            return Err(anyhow!(
                "--record {}: directory {} does not exist; create it or record elsewhere",
                file.display(),
                dir.display()
            ));
        }
        match std::fs::metadata(&file) {
            Ok(meta) if !meta.is_file() => {
                return Err(anyhow!(
                    "--record {}: not a regular file; pass a Markdown file such as NEXT.md",
                    file.display()
                ));
            }
            Ok(_) => {
                std::fs::OpenOptions::new()
                    .read(true)
                    .append(true)
                    .open(&file)
                    .map_err(|e| {
                        anyhow!(
                            "--record {}: cannot read and write it ({e}); fix its permissions or record elsewhere",
                            file.display()
                        )
                    })?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(anyhow!("--record {}: {e}", file.display())),
        }
        // The entry arrives by rename, so the directory must take a new file: try it.
        tempfile::Builder::new()
            .prefix(".smoke-record-probe-")
            .tempfile_in(&dir)
            .map_err(|e| {
                anyhow!(
                    "--record {}: cannot create files in {} ({e}); make it writable or record elsewhere",
                    file.display(),
                    dir.display()
                )
            })?;
        Ok(Self { file, dir })
    }

    /// The file entries go to.
    pub fn file(&self) -> &Path {
        &self.file
    }
}

/// Adds `entry` to the target (created if missing), atomically and under the lock (see
/// the module docs).
pub fn record(target: &Target, entry: &Entry) -> Result<()> {
    let dir = File::open(&target.dir)
        .with_context(|| format!("opening {} to lock it", target.dir.display()))?;
    let dir = Flock::lock(dir, FlockArg::LockExclusive)
        .map_err(|(_, e)| anyhow!("locking {}: {e}", target.dir.display()))?;
    let file = &target.file;
    let (old, meta) = match std::fs::read_to_string(file) {
        Ok(text) => (text, Some(std::fs::metadata(file)?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (String::new(), None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", file.display())),
    };
    let line = entry_line(entry, SystemTime::now(), &platform(), COMMIT);
    let new = insert(&old, &line);
    // 0666 for a new file: the umask applies at creation, as for any new file.
    let mut tmp = tempfile::Builder::new()
        .prefix(".smoke-record-")
        .permissions(Permissions::from_mode(0o666))
        .tempfile_in(&target.dir)
        .with_context(|| format!("creating a temp file in {}", target.dir.display()))?;
    tmp.write_all(new.as_bytes())
        .with_context(|| format!("writing {}", tmp.path().display()))?;
    if let Some(meta) = &meta {
        let f = tmp.as_file();
        f.set_permissions(Permissions::from_mode(meta.mode() & 0o7777))
            .context("keeping the file's mode")?;
        if nix::unistd::geteuid().is_root() {
            let _ = nix::unistd::fchown(
                f,
                Some(nix::unistd::Uid::from_raw(meta.uid())),
                Some(nix::unistd::Gid::from_raw(meta.gid())),
            );
        }
    }
    tmp.as_file()
        .sync_all()
        .context("fsync of the new record")?;
    tmp.persist(file)
        .map_err(|e| anyhow!("replacing {}: {}", file.display(), e.error))?;
    // The rename itself must reach the disk too.
    dir.sync_all()
        .with_context(|| format!("fsync of {}", target.dir.display()))?;
    drop(dir);
    Ok(())
}

/// One Markdown list item: UTC time, the summary line, scenario, platform, wall time and
/// the commit the binary was built from.
fn entry_line(e: &Entry, now: SystemTime, platform: &str, commit: &str) -> String {
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
    if !e.pi_versions.is_empty() {
        line.push_str(&format!(", real pi {}", e.pi_versions.join(", ")));
    }
    line.push_str(&format!(", built from commit {commit}"));
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
    // The heading is a line of its own outside any fenced code block: a `## Live smoke
    // record` quoted inside ``` (say, in docs showing the format) is text, not the section.
    let mut fenced = false;
    let heading = lines.iter().position(|(_, l)| {
        if l.trim_start().starts_with("```") {
            fenced = !fenced;
            return false;
        }
        !fenced && l.trim_end() == HEADING
    });
    let Some(heading) = heading else {
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
        let quoted = insert("```md\n## Live smoke record\n```\n", "- b");
        assert_eq!(
            quoted,
            "```md\n## Live smoke record\n```\n\n## Live smoke record\n\n- b\n"
        );
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
            pi_versions: Vec::new(),
        };
        let line = entry_line(
            &e,
            SystemTime::UNIX_EPOCH,
            "Linux 6.1 x86_64",
            "abc1234-dirty",
        );
        assert_eq!(
            line,
            "- 1970-01-01T00:00:00Z `smoke-entwurf-v2-spawn-live: 3 checks passed (real OS primitives)` — scenario all as root, Linux 6.1 x86_64, wall 212.0 ms, built from commit abc1234-dirty"
        );
        let with_pi = Entry {
            pi_versions: vec!["0.79.1".into(), "1.6.0".into()],
            ..e
        };
        let line = entry_line(&with_pi, SystemTime::UNIX_EPOCH, "Linux", "abc1234");
        assert!(
            line.ends_with(", real pi 0.79.1, 1.6.0, built from commit abc1234"),
            "{line}"
        );
    }
}
