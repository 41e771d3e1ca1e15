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
use std::io;
use std::path::{Path, PathBuf};

use crate::garden_id::GardenId;
use crate::resume_args::PassthroughArgs;

mod line;
mod scan;

use scan::{Scan, scan_file};

pub use line::{ModelChangeLine, ProviderField, SessionHeader, SessionLine, parse_session_line};

/// What a resumed session is launched with.
///
/// A custom [`IdentityResolver`](crate::production::IdentityResolver) builds one with
/// [`LaunchIdentity::new`] and the `with_*` methods; `#[non_exhaustive]`, so a field
/// added later breaks no resolver. The fields stay readable and assignable.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LaunchIdentity {
    /// The session's working directory, from its header (absolute).
    pub cwd: PathBuf,
    /// `--provider`, when the model change names one.
    pub provider: Option<String>,
    /// `--model`.
    pub model: String,
    /// Extension args, verbatim (checked: see [`PassthroughArgs`]).
    pub extension_args: PassthroughArgs,
}

impl LaunchIdentity {
    /// A session run in `cwd` with `model`, no provider and no extension args.
    #[must_use]
    pub fn new(cwd: impl Into<PathBuf>, model: impl Into<String>) -> Self {
        Self {
            cwd: cwd.into(),
            provider: None,
            model: model.into(),
            extension_args: PassthroughArgs::default(),
        }
    }

    /// Sets `--provider` (`None`: the argv names none).
    #[must_use]
    pub fn with_provider(mut self, provider: Option<String>) -> Self {
        self.provider = provider;
        self
    }

    /// Sets the extension args, already checked ([`PassthroughArgs::new`]).
    #[must_use]
    pub fn with_extension_args(mut self, extension_args: PassthroughArgs) -> Self {
        self.extension_args = extension_args;
        self
    }
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

/// A launch identity together with the saved session file it was read from: a visible
/// resume names the session by its file (`--session <file>`), not by its id.
///
/// A custom [`SessionResolver`](crate::visible::SessionResolver) builds one with
/// [`SessionIdentity::new`] (`#[non_exhaustive]`, as [`LaunchIdentity`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionIdentity {
    /// The saved session file, absolute.
    pub session_file: PathBuf,
    /// What the session is launched with.
    pub launch: LaunchIdentity,
}

impl SessionIdentity {
    /// `launch`, read from the saved session `session_file`.
    #[must_use]
    pub fn new(session_file: impl Into<PathBuf>, launch: LaunchIdentity) -> Self {
        Self {
            session_file: session_file.into(),
            launch,
        }
    }
}

/// Resolves the launch identity of `gid` from `<agent_dir>/sessions/*/*.jsonl` (see the
/// module docs for the rules). `extension_args` are passed through verbatim.
///
/// # Errors
///
/// [`IdentityError`] when no file or several files claim `gid`, when the header or the
/// model lines are unusable, on identity drift, or when a file cannot be read; each
/// variant names the path to look at.
pub fn resolve_launch_identity(
    agent_dir: &Path,
    gid: &GardenId,
    extension_args: &PassthroughArgs,
) -> Result<LaunchIdentity, IdentityError> {
    resolve_session_identity(agent_dir, gid, extension_args).map(|found| found.launch)
}

/// [`resolve_launch_identity`], also saying which file the identity came from (made
/// absolute, so it still names the file from the session's own cwd).
///
/// # Errors
///
/// As [`resolve_launch_identity`].
pub fn resolve_session_identity(
    agent_dir: &Path,
    gid: &GardenId,
    extension_args: &PassthroughArgs,
) -> Result<SessionIdentity, IdentityError> {
    let sessions_dir = agent_dir.join("sessions");
    let not_found = || IdentityError::NotFound {
        gid: gid.clone(),
        sessions_dir: sessions_dir.clone(),
    };
    // No sessions dir: no saved session. Any other failure to read it, or a failure
    // below it, is an I/O error naming its path.
    let dirs = match list_dir(&sessions_dir) {
        Err(IdentityError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
            return Err(not_found());
        }
        dirs => dirs?,
    };
    let files = session_files(dirs)?;

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
            let session_file = std::path::absolute(&path).unwrap_or(path);
            Ok(SessionIdentity {
                session_file,
                launch: LaunchIdentity {
                    cwd,
                    provider: model.provider,
                    model: model.model,
                    extension_args: extension_args.clone(),
                },
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

/// `<dir>/<file>.jsonl` for each of `dirs` (the sessions dir's entries) that is a
/// directory, sorted. Symlinks are followed; dangling ones are skipped.
fn session_files(dirs: Vec<PathBuf>) -> Result<Vec<PathBuf>, IdentityError> {
    let mut files = Vec::new();
    for dir in dirs {
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

fn list(files: &[PathBuf]) -> String {
    files
        .iter()
        .map(|f| format!("{f:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}
