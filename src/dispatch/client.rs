//! The control-socket client: one request per connection, every step bounded.
//!
//! The connection is made the way the socket waiter probes (the exact path inspected
//! without following a final symlink, the same inode connected to on Linux, the
//! listener's uid checked), so a request never reaches a listener the probe would call
//! forged. Then one request line is written, one answer line read (capped in size), and
//! the connection closed: a receiver keeps a print-mode `pi` alive while a client holds
//! its connection open.
//!
//! Errors say what they prove about delivery ([`ExchangeError::proves_not_delivered`]):
//! only a connect that never happened proves the message did not arrive; anything after
//! the request was (or may have been) written proves nothing, and a retry could deliver
//! twice.

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use super::protocol::{Answer, Command, MalformedAnswer, parse_answer};
use crate::backend::Backend;
use crate::socket::{AddressConflict, Inspection, OsError, Probe, ProbeDoubt, inspect_for_probe};

/// Bounds of one exchange. `#[non_exhaustive]`: start from [`ExchangeLimits::default`]
/// and set what differs with the `with_*` methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExchangeLimits {
    /// How long the connect may take (default 300 ms, the probe timeout).
    pub connect: Duration,
    /// How long writing the request may take (default 1 s).
    pub write: Duration,
    /// How long the answer may take to arrive whole (default 5 s).
    pub answer: Duration,
    /// The longest answer line accepted, newline excluded (default 64 KiB).
    pub max_answer_bytes: usize,
}

impl Default for ExchangeLimits {
    fn default() -> Self {
        Self {
            connect: Duration::from_millis(300),
            write: Duration::from_secs(1),
            answer: Duration::from_secs(5),
            max_answer_bytes: 64 * 1024,
        }
    }
}

impl ExchangeLimits {
    /// Sets [`connect`](Self::connect).
    #[must_use]
    pub fn with_connect(mut self, limit: Duration) -> Self {
        self.connect = limit;
        self
    }

    /// Sets [`write`](Self::write).
    #[must_use]
    pub fn with_write(mut self, limit: Duration) -> Self {
        self.write = limit;
        self
    }

    /// Sets [`answer`](Self::answer).
    #[must_use]
    pub fn with_answer(mut self, limit: Duration) -> Self {
        self.answer = limit;
        self
    }

    /// Sets [`max_answer_bytes`](Self::max_answer_bytes).
    #[must_use]
    pub fn with_max_answer_bytes(mut self, max: usize) -> Self {
        self.max_answer_bytes = max;
        self
    }
}

/// Why no connection was made. Nothing was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NotConnected {
    /// Nothing at the path (ENOENT): nobody listens.
    #[error("no socket at the path")]
    Absent,
    /// A socket file nobody listens on (ECONNREFUSED, or ENOENT once it went away).
    #[error("nobody listens ({0})")]
    Refused(OsError),
    /// Something that can never be this citizen's socket.
    #[error("address conflict: {0}")]
    Conflict(AddressConflict),
    /// The path could not be looked at (EACCES, ENOTDIR, …).
    #[error("the path could not be inspected ({0})")]
    Uninspectable(OsError),
    /// The connect proved nothing (timeout, full backlog, EACCES, …).
    #[error("the connect proved nothing ({0})")]
    Doubt(ProbeDoubt),
}

impl NotConnected {
    /// True when it proves that nobody listens (absent, refused).
    #[must_use]
    pub fn is_dead(&self) -> bool {
        matches!(self, Self::Absent | Self::Refused(_))
    }
}

/// Why an exchange did not bring an answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExchangeError {
    /// No connection was made; nothing was written.
    #[error("not connected: {0}")]
    NotConnected(NotConnected),
    /// Writing the request failed; part of it may have arrived.
    #[error("writing the request failed")]
    Write(#[source] io::Error),
    /// Writing the request did not finish in time; part of it may have arrived.
    #[error("writing the request did not finish within {0:?}")]
    WriteTimedOut(Duration),
    /// The request was written and no whole answer came in time.
    #[error("no answer within {0:?} after the request was written")]
    AnswerTimedOut(Duration),
    /// The receiver closed the connection after the request, before a whole answer.
    #[error("the connection closed after the request, before a whole answer")]
    ClosedBeforeAnswer,
    /// Reading the answer failed.
    #[error("reading the answer failed")]
    Read(#[source] io::Error),
    /// The answer line is longer than the cap.
    #[error("the answer line is longer than {0} bytes")]
    AnswerTooLong(usize),
    /// The answer is not the protocol's answer to the request.
    #[error("malformed answer")]
    Malformed(#[source] MalformedAnswer),
}

impl ExchangeError {
    /// True only when the request provably never reached a receiver: no connection was
    /// made because nobody listens, or because the path is not this citizen's at all.
    /// Every other error proves nothing (the request may have been read).
    #[must_use]
    pub fn proves_not_delivered(&self) -> bool {
        match self {
            Self::NotConnected(not) => not.is_dead() || matches!(not, NotConnected::Conflict(_)),
            _ => false,
        }
    }
}

/// A connection to a citizen's socket whose listener runs as our effective uid.
#[derive(Debug)]
pub struct Connection {
    stream: UnixStream,
}

impl Connection {
    /// Connects to `socket` (see the module docs for how).
    ///
    /// # Errors
    ///
    /// [`NotConnected`] saying what the path or the connect showed.
    pub async fn open(
        socket: &Path,
        backend: Backend,
        limit: Duration,
    ) -> Result<Self, NotConnected> {
        let (inspection, file) = inspect_for_probe(socket, backend);
        let file = match (inspection, file) {
            (_, Some(file)) => file,
            (Inspection::Absent, None) => return Err(NotConnected::Absent),
            (Inspection::AddressConflict(conflict), None) => {
                return Err(NotConnected::Conflict(conflict));
            }
            (Inspection::Indeterminate(error), None) => {
                return Err(NotConnected::Uninspectable(error));
            }
            // `inspect_for_probe` holds a file exactly for a socket file.
            (Inspection::SocketFile, None) => {
                return Err(NotConnected::Uninspectable(OsError::new(
                    "inspect",
                    nix::errno::Errno::EIO,
                )));
            }
        };
        match file.connect(limit).await {
            Ok(stream) => Ok(Self { stream }),
            Err(Probe::Dead(error)) => Err(NotConnected::Refused(error)),
            Err(Probe::ForeignListener { uid }) => {
                Err(NotConnected::Conflict(AddressConflict::ForeignListener {
                    uid,
                }))
            }
            Err(Probe::Indeterminate(doubt)) => Err(NotConnected::Doubt(doubt)),
            // `connect` never fails with `Alive`; should it, the connect proved nothing.
            Err(Probe::Alive) => Err(NotConnected::Doubt(ProbeDoubt::Os(OsError::new(
                "connect",
                nix::errno::Errno::EIO,
            )))),
        }
    }

    /// Writes `command`, reads its answer, and closes the connection (by dropping it).
    ///
    /// # Errors
    ///
    /// [`ExchangeError`] when the write or the answer failed, ran out of time, or the
    /// answer is not the protocol's.
    pub async fn request(
        mut self,
        command: &Command,
        limits: &ExchangeLimits,
    ) -> Result<Answer, ExchangeError> {
        let id = next_id();
        let line = command.to_line(&id);
        match tokio::time::timeout(limits.write, self.stream.write_all(line.as_bytes())).await {
            Err(_elapsed) => return Err(ExchangeError::WriteTimedOut(limits.write)),
            Ok(Err(error)) => return Err(ExchangeError::Write(error)),
            Ok(Ok(())) => {}
        }
        let answer = tokio::time::timeout(
            limits.answer,
            read_line(&mut self.stream, limits.max_answer_bytes),
        )
        .await
        .map_err(|_elapsed| ExchangeError::AnswerTimedOut(limits.answer))??;
        parse_answer(&answer, command, &id).map_err(ExchangeError::Malformed)
    }
}

/// Connects to `socket`, sends `command`, reads the answer and closes the connection.
///
/// # Errors
///
/// As [`Connection::open`] (wrapped in [`ExchangeError::NotConnected`]) and
/// [`Connection::request`].
pub async fn exchange(
    socket: &Path,
    backend: Backend,
    command: &Command,
    limits: &ExchangeLimits,
) -> Result<Answer, ExchangeError> {
    let connection = Connection::open(socket, backend, limits.connect)
        .await
        .map_err(ExchangeError::NotConnected)?;
    connection.request(command, limits).await
}

/// One line, newline excluded, at most `max` bytes before it.
async fn read_line(stream: &mut UnixStream, max: usize) -> Result<Vec<u8>, ExchangeError> {
    let mut line = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let read = stream.read(&mut chunk).await.map_err(ExchangeError::Read)?;
        if read == 0 {
            return Err(ExchangeError::ClosedBeforeAnswer);
        }
        let got = &chunk[..read];
        if let Some(end) = got.iter().position(|&b| b == b'\n') {
            line.extend_from_slice(&got[..end]);
            return if line.len() > max {
                Err(ExchangeError::AnswerTooLong(max))
            } else {
                Ok(line)
            };
        }
        line.extend_from_slice(got);
        if line.len() > max {
            return Err(ExchangeError::AnswerTooLong(max));
        }
    }
}

/// A request id unique within this process, so an answer can be matched to its request
/// (`<pid>-<n>`).
fn next_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!(
        "entwurf-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}
