//! Launch identity from the saved session: where and with which model a dormant citizen
//! is resumed. Read-only: nothing on disk is touched.
//!
//! Saved sessions are JSON Lines files, `<agent dir>/sessions/<any dir>/<file>.jsonl`.
//! A file belongs to the session named by its **first** `{"type":"session"}` line (its
//! header): `id` is the garden id, `cwd` the working directory. Provider and model come
//! from the file's first `{"type":"model_change","provider":…,"modelId":…}` line.
//!
//! Choices where the format is loose, all fail-closed (a wrong launch is worse than an
//! error a person can read):
//! - Lines that are not JSON objects (a torn last line of a log being appended, a blank
//!   line, bad UTF-8, duplicate keys) are skipped — except before the file's first valid
//!   header when they mention the gid: that could be our header, corrupt, so the file
//!   counts as a candidate that cannot be verified ([`IdentityError::UnreadableHeader`],
//!   or [`IdentityError::Ambiguous`] next to another candidate). The same holds for a
//!   header whose `id` is missing or not a string but whose line mentions the gid.
//! - Only the first header counts; a later header with another id does not re-assign the
//!   file, and a later line mentioning our id does not make the file ours.
//! - `cwd` is required, must be a string and absolute; there is no fallback to the
//!   dispatcher's own directory.
//! - `provider` may be absent or `null` (then no `--provider`); when present it must be a
//!   non-empty string. `modelId` must be a non-empty string. A malformed `model_change`
//!   anywhere in the file is an error (it could hide drift).
//! - Non-regular files (FIFOs, devices) and dangling symlinks are skipped, never opened
//!   blocking; any other I/O error names its path and fails, because an unreadable file
//!   could be the second claimant that makes the id ambiguous.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use serde::Deserialize;
use serde_json::Value;

use crate::garden_id::GardenId;

/// What a resumed session is launched with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchIdentity {
    /// The session's working directory, from its header (absolute).
    pub cwd: PathBuf,
    /// `--provider`, when the model change names one.
    pub provider: Option<String>,
    /// `--model`.
    pub model: String,
    /// Extension args, verbatim.
    pub extension_args: Vec<String>,
}

/// A provider/model pair as a `model_change` line names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelRef {
    /// `provider`, if the line has one.
    pub provider: Option<String>,
    /// `modelId`.
    pub model: String,
}

impl fmt::Display for ModelRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.provider {
            Some(provider) => write!(f, "{provider}/{}", self.model),
            None => write!(f, "{} (no provider)", self.model),
        }
    }
}

/// Why the identity could not be resolved. Every variant names the file or directory a
/// person has to look at.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// No saved session has this id (or the sessions directory does not exist).
    #[error("no saved session for {gid} under {sessions_dir:?}")]
    NotFound {
        /// The gid.
        gid: GardenId,
        /// Where we looked.
        sessions_dir: PathBuf,
    },
    /// Several files claim this id; resuming either could be wrong.
    #[error("{} saved sessions claim {gid}: {}", files.len(), list(files))]
    Ambiguous {
        /// The gid.
        gid: GardenId,
        /// Every claimant, sorted.
        files: Vec<PathBuf>,
    },
    /// The only candidate mentions the id in a header line that cannot be parsed.
    #[error("a session header in {path:?} mentions {gid} but is not valid json")]
    UnreadableHeader {
        /// The gid.
        gid: GardenId,
        /// The file.
        path: PathBuf,
    },
    /// The header has no string `cwd`.
    #[error("the session header in {path:?} has no cwd")]
    MissingCwd {
        /// The file.
        path: PathBuf,
    },
    /// The header's `cwd` is not absolute.
    #[error("the session header in {path:?} has a relative cwd {cwd:?}")]
    RelativeCwd {
        /// The file.
        path: PathBuf,
        /// The value found.
        cwd: String,
    },
    /// The session never chose a model.
    #[error("no model_change line in {path:?}")]
    NoModel {
        /// The file.
        path: PathBuf,
    },
    /// A `model_change` line without a usable `modelId` or `provider`.
    #[error("model_change on line {line} of {path:?} has no usable provider/modelId")]
    MalformedModelChange {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
    },
    /// The session switched to a different model later: which one to resume is unclear.
    #[error("identity drift in {path:?}: started as {first}, line {line} switches to {later}")]
    IdentityDrift {
        /// The file.
        path: PathBuf,
        /// The first model (boxed to keep the error small).
        first: Box<ModelRef>,
        /// The later, different one.
        later: Box<ModelRef>,
        /// 1-based line number of the later one.
        line: u64,
    },
    /// A directory or file could not be read.
    #[error("cannot read {path:?}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// Resolves the launch identity of `gid` from `<agent_dir>/sessions/*/*.jsonl` (see the
/// module docs for the rules). `extension_args` are passed through verbatim.
pub fn resolve_launch_identity(
    agent_dir: &Path,
    gid: &GardenId,
    extension_args: &[String],
) -> Result<LaunchIdentity, IdentityError> {
    let sessions_dir = agent_dir.join("sessions");
    let not_found = || IdentityError::NotFound {
        gid: gid.clone(),
        sessions_dir: sessions_dir.clone(),
    };
    let files = match session_files(&sessions_dir) {
        Ok(files) => files,
        Err(IdentityError::Io { source, path }) if path == sessions_dir => {
            return Err(if source.kind() == io::ErrorKind::NotFound {
                not_found()
            } else {
                IdentityError::Io { path, source }
            });
        }
        Err(other) => return Err(other),
    };

    let mut candidates = Vec::new();
    for path in files {
        match scan_file(&path, gid)? {
            Scan::NotOurs => {}
            Scan::Suspect => candidates.push(Candidate::Suspect(path)),
            Scan::Ours { cwd, model } => candidates.push(Candidate::Ours { path, cwd, model }),
        }
    }

    let only = match candidates.len() {
        0 => return Err(not_found()),
        1 => candidates.pop(),
        _ => None,
    };
    match only {
        Some(Candidate::Ours { path, cwd, model }) => {
            let cwd = header_cwd(&path, cwd)?;
            let model = model?;
            Ok(LaunchIdentity {
                cwd,
                provider: model.provider,
                model: model.model,
                extension_args: extension_args.to_vec(),
            })
        }
        Some(Candidate::Suspect(path)) => Err(IdentityError::UnreadableHeader {
            gid: gid.clone(),
            path,
        }),
        None => Err(IdentityError::Ambiguous {
            gid: gid.clone(),
            files: candidates.into_iter().map(Candidate::into_path).collect(),
        }),
    }
}

/// One line of a saved session, as far as identity is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
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

enum Candidate {
    Ours {
        path: PathBuf,
        cwd: Option<String>,
        model: Result<ModelRef, IdentityError>,
    },
    Suspect(PathBuf),
}

impl Candidate {
    fn into_path(self) -> PathBuf {
        match self {
            Candidate::Ours { path, .. } | Candidate::Suspect(path) => path,
        }
    }
}

enum Scan {
    NotOurs,
    /// Mentions the gid where a header should be, but unparseably.
    Suspect,
    Ours {
        cwd: Option<String>,
        model: Result<ModelRef, IdentityError>,
    },
}

fn header_cwd(path: &Path, cwd: Option<String>) -> Result<PathBuf, IdentityError> {
    let cwd = cwd.ok_or_else(|| IdentityError::MissingCwd {
        path: path.to_path_buf(),
    })?;
    if Path::new(&cwd).is_absolute() {
        Ok(PathBuf::from(cwd))
    } else {
        Err(IdentityError::RelativeCwd {
            path: path.to_path_buf(),
            cwd,
        })
    }
}

/// `<sessions_dir>/<dir>/<file>.jsonl`, sorted. Symlinks are followed; dangling ones are
/// skipped.
fn session_files(sessions_dir: &Path) -> Result<Vec<PathBuf>, IdentityError> {
    let mut files = Vec::new();
    for dir in list_dir(sessions_dir)? {
        if !is_kind(&dir, std::fs::Metadata::is_dir)? {
            continue;
        }
        for file in list_dir(&dir)? {
            if file.extension().is_some_and(|ext| ext == "jsonl")
                && is_kind(&file, std::fs::Metadata::is_file)?
            {
                files.push(file);
            }
        }
    }
    files.sort();
    Ok(files)
}

fn list_dir(dir: &Path) -> Result<Vec<PathBuf>, IdentityError> {
    let io_error = |source| IdentityError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_error)? {
        paths.push(entry.map_err(io_error)?.path());
    }
    Ok(paths)
}

/// Whether `path` (followed) is of the kind; `false` for a dangling symlink or an entry
/// that vanished meanwhile.
fn is_kind(path: &Path, kind: fn(&std::fs::Metadata) -> bool) -> Result<bool, IdentityError> {
    match std::fs::metadata(path) {
        Ok(meta) => Ok(kind(&meta)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(IdentityError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Reads `path` line by line: up to its first header when it is not ours, to the end
/// when it is (for the model).
fn scan_file(path: &Path, gid: &GardenId) -> Result<Scan, IdentityError> {
    let io_error = |source| IdentityError::Io {
        path: path.to_path_buf(),
        source,
    };
    let Some(file) = open_regular(path).map_err(io_error)? else {
        return Ok(Scan::NotOurs);
    };
    let mut lines = Lines::new(file);
    let mut models = ModelTracker::new(path);

    let cwd = loop {
        let Some(line) = lines.next_line().map_err(io_error)? else {
            return Ok(Scan::NotOurs);
        };
        let mentions_gid = || contains(line, gid.as_str().as_bytes());
        match parse_bytes(line) {
            SessionLine::Header(SessionHeader { id: Some(id), cwd }) => {
                if id == gid.as_str() {
                    break cwd;
                }
                return Ok(Scan::NotOurs);
            }
            // The first header, but its id is unusable: ours only if it mentions us, and
            // then it cannot be verified.
            SessionLine::Header(SessionHeader { id: None, .. }) => {
                return Ok(if mentions_gid() {
                    Scan::Suspect
                } else {
                    Scan::NotOurs
                });
            }
            // Possibly a torn header: only a concern if it mentions us.
            SessionLine::Invalid => {
                if mentions_gid() {
                    return Ok(Scan::Suspect);
                }
            }
            SessionLine::ModelChange(change) => models.see(&change, lines.number),
            SessionLine::Other => {}
        }
    };

    while !models.settled() {
        let Some(line) = lines.next_line().map_err(io_error)? else {
            break;
        };
        if let SessionLine::ModelChange(change) = parse_bytes(line) {
            models.see(&change, lines.number);
        }
    }
    Ok(Scan::Ours {
        cwd,
        model: models.finish(),
    })
}

/// Opens without blocking (a FIFO planted in the sessions dir must not hang us) and
/// returns `None` for anything that is not a regular file.
fn open_regular(path: &Path) -> io::Result<Option<File>> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(OFlag::O_NONBLOCK.bits())
        .open(path)?;
    Ok(file.metadata()?.is_file().then_some(file))
}

fn parse_bytes(line: &[u8]) -> SessionLine {
    match std::str::from_utf8(line) {
        Ok(text) => parse_session_line(text),
        Err(_) => SessionLine::Invalid,
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// Byte lines (so bad UTF-8 is a skipped line, not an I/O error), numbered from 1.
struct Lines {
    reader: BufReader<File>,
    buf: Vec<u8>,
    number: u64,
}

impl Lines {
    fn new(file: File) -> Self {
        Self {
            reader: BufReader::new(file),
            buf: Vec::new(),
            number: 0,
        }
    }

    fn next_line(&mut self) -> io::Result<Option<&[u8]>> {
        self.buf.clear();
        if self.reader.read_until(b'\n', &mut self.buf)? == 0 {
            return Ok(None);
        }
        self.number += 1;
        Ok(Some(&self.buf))
    }
}

/// First model, drift and malformed lines, in file order.
struct ModelTracker<'a> {
    path: &'a Path,
    first: Option<ModelRef>,
    error: Option<IdentityError>,
}

impl<'a> ModelTracker<'a> {
    fn new(path: &'a Path) -> Self {
        Self {
            path,
            first: None,
            error: None,
        }
    }

    /// An error decides the outcome; nothing after it matters.
    fn settled(&self) -> bool {
        self.error.is_some()
    }

    fn see(&mut self, change: &ModelChangeLine, line: u64) {
        if self.settled() {
            return;
        }
        let Some(seen) = change.model_ref() else {
            self.error = Some(IdentityError::MalformedModelChange {
                path: self.path.to_path_buf(),
                line,
            });
            return;
        };
        match &self.first {
            None => self.first = Some(seen),
            Some(first) if *first == seen => {}
            Some(first) => {
                self.error = Some(IdentityError::IdentityDrift {
                    path: self.path.to_path_buf(),
                    first: Box::new(first.clone()),
                    later: Box::new(seen),
                    line,
                });
            }
        }
    }

    fn finish(self) -> Result<ModelRef, IdentityError> {
        if let Some(error) = self.error {
            return Err(error);
        }
        self.first.ok_or_else(|| IdentityError::NoModel {
            path: self.path.to_path_buf(),
        })
    }
}

fn list(files: &[PathBuf]) -> String {
    files
        .iter()
        .map(|f| format!("{f:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}
