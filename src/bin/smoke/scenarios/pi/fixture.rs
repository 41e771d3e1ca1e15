//! The fixture extension's control socket, as the P checks ask it: `get_info` through the
//! library's control-socket client ([`entwurf_v2_spawn::dispatch::exchange`]), and the
//! fixture-only `fixture_release_turn`, which lets a resident the fixture holds run its
//! turn (the library's client speaks only the protocol's own requests, so that one line
//! is written here).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};

use entwurf_v2_spawn::dispatch::{Answer, Command, ExchangeLimits, exchange};
use entwurf_v2_spawn::{Backend, error_chain};

use crate::os;
use crate::scenarios::shared::off_thread;

/// The fixture extension, built into the binary so a copied binary (CI runs one as an
/// ordinary user) needs nothing from the checkout but the runtimes; written into each
/// run's scratch dir.
pub const FIXTURE_SOURCE: &str =
    include_str!("../../../../../real-pi/fixture/entwurf-control-fixture.ts");
/// The fixture's file name.
pub const FIXTURE_NAME: &str = "entwurf-control-fixture.ts";

/// The fixture's text and a place for it: `<dir>/entwurf-control-fixture.ts`.
pub fn write_fixture(dir: &Path) -> std::io::Result<PathBuf> {
    let path = dir.join(FIXTURE_NAME);
    std::fs::write(&path, FIXTURE_SOURCE)?;
    Ok(path)
}

/// `-e <fixture>` as extension args.
pub fn fixture_args(fixture: &Path) -> Vec<String> {
    vec!["-e".into(), fixture.to_string_lossy().into_owned()]
}

/// What the fixture answers `get_info`, as far as the checks read it.
#[derive(Debug)]
pub struct Info {
    /// `sessionId`: the session pi runs.
    pub session_id: String,
    /// `pid`, the fixture's extra: pi's.
    pub pid: u32,
}

/// Asks `socket` `get_info` (the library's client, its default bounds).
pub async fn info(socket: &Path, backend: Backend) -> Result<Info> {
    let answer = exchange(
        socket,
        backend,
        &Command::GetInfo,
        &ExchangeLimits::default(),
    )
    .await
    .map_err(|e| anyhow!("get_info on {}: {}", socket.display(), error_chain(&e)))?;
    let data = match answer {
        Answer::Success(data) => data,
        Answer::Refused { error } => bail!("get_info was refused: {error:?}"),
        other => bail!("get_info answered {other:?}"),
    };
    let session_id = data["sessionId"].as_str().map(str::to_owned);
    let pid = data
        .get("pid")
        .and_then(serde_json::Value::as_u64)
        .and_then(|p| u32::try_from(p).ok());
    match (session_id, pid) {
        (Some(session_id), Some(pid)) => Ok(Info { session_id, pid }),
        _ => bail!("get_info's data is not the fixture's: {data:?}"),
    }
}

/// Tells the resident the fixture holds to run its turn: one request line, one answer
/// line (`success: true`), closed.
pub async fn release_turn(socket: &Path) -> Result<()> {
    let socket = socket.to_path_buf();
    off_thread(move || {
        let (address, _dir) = os::socket_alias(&socket)?;
        let stream = UnixStream::connect(&address)
            .with_context(|| format!("connecting to {}", socket.display()))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        stream.set_write_timeout(Some(Duration::from_secs(5)))?;
        (&stream)
            .write_all(b"{\"type\":\"fixture_release_turn\",\"id\":\"gate\"}\n")
            .context("asking the resident to run its turn")?;
        let mut line = String::new();
        BufReader::new(&stream)
            .read_line(&mut line)
            .context("reading the fixture's answer")?;
        let answer: serde_json::Value = serde_json::from_str(line.trim())
            .with_context(|| format!("the fixture answered {line:?}"))?;
        let released = serde_json::json!({"type": "response", "command": "fixture_release_turn",
            "success": true, "data": {"released": true}, "id": "gate"});
        if answer != released {
            bail!("fixture_release_turn answered {line:?}");
        }
        Ok(())
    })
    .await
}
