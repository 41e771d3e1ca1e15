//! Reading one session file: up to its first header when it is not ours, to the end when
//! it is (for the model). Line by line, so large logs cost little memory.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use nix::fcntl::OFlag;

use super::line::{ModelChangeLine, SessionHeader, SessionLine, parse_session_line};
use super::{IdentityError, ModelRef};
use crate::garden_id::GardenId;

/// What one file says about the gid.
pub(super) enum Scan {
    /// Another session's file, or no header at all.
    NotOurs,
    /// Mentions the gid where a header should be, but unparseably.
    Suspect,
    /// Its first header names the gid; `cwd` unvalidated, the model (or why not).
    Ours {
        cwd: Option<String>,
        model: Result<ModelRef, IdentityError>,
    },
}

/// Reads `path` line by line: up to its first header when it is not ours, to the end
/// when it is (for the model).
pub(super) fn scan_file(path: &Path, gid: &GardenId) -> Result<Scan, IdentityError> {
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
