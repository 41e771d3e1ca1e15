//! Launch identity from the saved session header. STUB.

use std::path::{Path, PathBuf};

use crate::garden_id::GardenId;

/// What a resumed session is launched with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchIdentity {
    /// The session's working directory, from its header.
    pub cwd: PathBuf,
    /// `--provider`, when the model change names one.
    pub provider: Option<String>,
    /// `--model`.
    pub model: String,
    /// Extension args, verbatim.
    pub extension_args: Vec<String>,
}

/// Why the identity could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// No saved session has this id.
    #[error("no saved session for {gid} under {sessions_dir:?}")]
    NotFound {
        /// The gid.
        gid: String,
        /// Where we looked.
        sessions_dir: PathBuf,
    },
}

/// Resolves the launch identity of `gid` from `<agent_dir>/sessions/*/*.jsonl`.
pub fn resolve_launch_identity(
    _agent_dir: &Path,
    _gid: &GardenId,
    _extension_args: &[String],
) -> Result<LaunchIdentity, IdentityError> {
    todo!()
}
