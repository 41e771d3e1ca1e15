//! The REAL `pi` runtimes that `./run.sh install-pi` puts in `target/real-pi/bin/` (one
//! launcher `pi-<version>` per pinned version), the fixture extension next to them in
//! `real-pi/fixture/`, and a scratch world to run them in: its own `HOME`, agent dir and
//! project cwd, so nothing reaches the user's `~/.pi`.
//!
//! Without an installed runtime a test skips with a message naming the install command,
//! except on CI (`CI` set), where that is a failure.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// One installed runtime.
#[derive(Debug, Clone)]
pub struct Runtime {
    /// Its version, from the launcher's name (`pi-0.84.1` → `0.84.1`).
    pub version: String,
    /// The launcher: runs that version's CLI on a Node ≥ 22.19, offline.
    pub launcher: PathBuf,
}

/// The project's root (this crate lives in `tests/support`).
#[must_use]
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Where the install command puts the launchers: `$ENTWURF_REAL_PI_DIR/bin`, by default
/// `<repo>/target/real-pi/bin`.
#[must_use]
pub fn launcher_dir() -> PathBuf {
    let dir = std::env::var_os("ENTWURF_REAL_PI_DIR")
        .filter(|d| !d.is_empty())
        .map_or_else(|| repo_root().join("target/real-pi"), PathBuf::from)
        .join("bin");
    // Absolute: pi runs from the session's cwd, not ours.
    std::path::absolute(&dir).unwrap_or(dir)
}

/// The fixture extension (`real-pi/fixture/entwurf-control-fixture.ts`).
#[must_use]
pub fn fixture() -> PathBuf {
    repo_root().join("real-pi/fixture/entwurf-control-fixture.ts")
}

/// Every installed runtime, oldest first. None installed: the test skips, naming the
/// install command, unless `CI` is set, where it fails.
#[must_use]
pub fn runtimes_or_skip(test: &str) -> Vec<Runtime> {
    let dir = launcher_dir();
    let mut found: Vec<Runtime> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let version = name.strip_prefix("pi-")?.to_owned();
            Some(Runtime {
                version,
                launcher: entry.path(),
            })
        })
        .collect();
    found.sort_by_key(|r| version_key(&r.version));
    if found.is_empty() {
        let why = format!(
            "{test}: no real pi runtime in {} (run ./run.sh install-pi)",
            dir.display()
        );
        crate::ci::skip_unless_ci(&why);
    }
    found
}

fn version_key(version: &str) -> Vec<u64> {
    version.split('.').map(|p| p.parse().unwrap_or(0)).collect()
}

/// A scratch world: `home`, an agent dir (pi's default under `home`, or another one),
/// and the project dir `work` the session belongs to.
#[derive(Debug)]
pub struct PiWorld {
    /// Owns everything below; removed on drop.
    pub dir: tempfile::TempDir,
    /// The child's `HOME`.
    pub home: PathBuf,
    /// The agent dir the session is saved under.
    pub agent_dir: PathBuf,
    /// The session's cwd.
    pub work: PathBuf,
}

impl PiWorld {
    /// A world whose agent dir is pi's default (`<home>/.pi/agent`) or, with
    /// `custom_agent_dir`, a directory pi would not look in unless told.
    #[must_use]
    pub fn new(custom_agent_dir: bool) -> Self {
        // Short: the control socket node binds sits a few dirs deep under it (sun_path).
        let dir = crate::short_dir::short_tempdir();
        let home = dir.path().join("home");
        let agent_dir = if custom_agent_dir {
            dir.path().join("agents/elsewhere")
        } else {
            home.join(".pi/agent")
        };
        let work = dir.path().join("work");
        for d in [&home, &agent_dir, &work] {
            std::fs::create_dir_all(d).expect("world dirs");
        }
        Self {
            dir,
            home,
            agent_dir,
            work,
        }
    }

    /// Runs `runtime` with `args` in `work`, `HOME` and the agent dir set, bounded.
    ///
    /// # Panics
    ///
    /// When it cannot start or runs past 60 s.
    #[must_use]
    pub fn run(&self, runtime: &Runtime, args: &[&str]) -> Output {
        let mut child = Command::new(&runtime.launcher)
            .args(args)
            .current_dir(&self.work)
            .env("HOME", &self.home)
            .env("TMPDIR", self.dir.path())
            .env("PI_CODING_AGENT_DIR", &self.agent_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start pi");
        let start = Instant::now();
        while child.try_wait().expect("wait pi").is_none() {
            if start.elapsed() > Duration::from_secs(60) {
                let _ = child.kill();
                let _ = child.wait();
                panic!("pi {} ran past 60 s: {args:?}", runtime.version);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        child.wait_with_output().expect("pi output")
    }

    /// Lets `runtime` write a new session `gid` in `work` with one offline turn, and
    /// returns its file.
    ///
    /// # Panics
    ///
    /// When pi fails or writes anything but exactly one new session file.
    #[must_use]
    pub fn create_session(&self, runtime: &Runtime, gid: &str, prompt: &str) -> PathBuf {
        let earlier = self.session_files();
        let fixture = fixture();
        let fixture = fixture.to_str().expect("utf-8 fixture path");
        let out = self.run(
            runtime,
            &[
                "--mode",
                "json",
                "-p",
                "-e",
                fixture,
                "--session-id",
                gid,
                "--provider",
                "fixture",
                "--model",
                "echo",
                prompt,
            ],
        );
        assert!(
            out.status.success(),
            "pi {} could not write the session: {}",
            runtime.version,
            String::from_utf8_lossy(&out.stderr)
        );
        let files: Vec<PathBuf> = self
            .session_files()
            .into_iter()
            .filter(|f| !earlier.contains(f))
            .collect();
        assert_eq!(files.len(), 1, "one new session file: {files:?}");
        files.into_iter().next().expect("one file")
    }

    /// Every `*.jsonl` below the world's agent dirs (its own and pi's default).
    #[must_use]
    pub fn session_files(&self) -> Vec<PathBuf> {
        let mut files = Vec::new();
        let mut roots = vec![self.agent_dir.join("sessions")];
        let default = self.home.join(".pi/agent/sessions");
        if !roots.contains(&default) {
            roots.push(default);
        }
        for root in roots {
            collect_jsonl(&root, &mut files);
        }
        files.sort();
        files
    }
}

fn collect_jsonl(dir: &Path, into: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_jsonl(&path, into);
        } else if path.extension().is_some_and(|e| e == "jsonl") {
            into.push(path);
        }
    }
}

/// The conversation in a session file: `(role, text)` of every user and assistant
/// message entry, in order.
///
/// # Panics
///
/// When the file cannot be read or holds a line that is not JSON.
#[must_use]
pub fn turns(file: &Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(file).expect("read session");
    text.lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).expect("jsonl line"))
        .filter(|entry| entry["type"] == "message")
        .filter_map(|entry| {
            let message = &entry["message"];
            let role = message["role"].as_str()?;
            if role != "user" && role != "assistant" {
                return None;
            }
            let text = match &message["content"] {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Array(parts) => {
                    parts.iter().filter_map(|p| p["text"].as_str()).collect()
                }
                _ => String::new(),
            };
            Some((role.to_owned(), text))
        })
        .collect()
}

/// The first line of a session file (its header).
///
/// # Panics
///
/// When the file cannot be read.
#[must_use]
pub fn header(file: &Path) -> String {
    let text = std::fs::read_to_string(file).expect("read session");
    text.lines().next().unwrap_or_default().to_owned()
}

/// The extension args that load the fixture: `-e <fixture>`.
///
/// # Panics
///
/// When the checkout's path is not UTF-8.
#[must_use]
pub fn fixture_extension_args() -> Vec<String> {
    let fixture = fixture().to_str().expect("utf-8 fixture path").to_owned();
    vec!["-e".into(), fixture]
}

/// What the fixture answers `get_info` (the protocol's fields the tests read, and the
/// fixture's own extras).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixtureInfo {
    /// `sessionId`: the session pi runs (the garden id of a resume).
    pub session_id: String,
    /// `cwd`: the session's cwd.
    pub cwd: Option<String>,
    /// `pid` (fixture extra): pi's pid.
    pub pid: u32,
    /// `listeningMonotonicNs` (fixture extra): `CLOCK_MONOTONIC` (ns) when the socket
    /// started listening.
    pub listening_monotonic_ns: i128,
}

/// Asks the fixture's socket `get_info` through the library's control-socket client
/// (`entwurf_v2_spawn::dispatch::exchange`, default bounds).
///
/// # Errors
///
/// What went wrong, in words: the exchange failed, was refused, or lacked a field.
pub async fn fixture_info(socket: &Path) -> Result<FixtureInfo, String> {
    use entwurf_v2_spawn::dispatch::{Answer, Command, ExchangeLimits, exchange};
    let answer = exchange(
        socket,
        entwurf_v2_spawn::Backend::default(),
        &Command::GetInfo,
        &ExchangeLimits::default(),
    )
    .await
    .map_err(|e| format!("get_info: {}", entwurf_v2_spawn::error_chain(&e)))?;
    let data = match answer {
        Answer::Success(data) => data,
        Answer::Refused { error } => return Err(format!("get_info refused: {error:?}")),
        other => return Err(format!("get_info: {other:?}")),
    };
    let field = |name: &str| {
        data.get(name)
            .ok_or_else(|| format!("no {name} in {data:?}"))
    };
    Ok(FixtureInfo {
        session_id: field("sessionId")?
            .as_str()
            .ok_or("sessionId is not a string")?
            .to_owned(),
        cwd: data.get("cwd").and_then(|c| c.as_str()).map(str::to_owned),
        pid: field("pid")?
            .as_u64()
            .and_then(|p| u32::try_from(p).ok())
            .ok_or("pid is not a pid")?,
        listening_monotonic_ns: field("listeningMonotonicNs")?
            .as_str()
            .and_then(|n| n.parse().ok())
            .ok_or("listeningMonotonicNs is not a decimal string")?,
    })
}

/// Tells the resident to run its turn: the fixture holds it until a client asks
/// `{"type":"fixture_release_turn"}`, so the turn never races the observation.
///
/// The library's client speaks only the protocol's own requests (`get_info`, `send`), so
/// this one fixture-only request is written here: one line, one answer line, closed.
///
/// # Errors
///
/// What went wrong, in words (no answer within 5 s, or not `success: true`).
pub fn release_turn(socket: &Path) -> Result<(), String> {
    use std::io::{BufRead, BufReader, Write};
    let stream = std::os::unix::net::UnixStream::connect(socket)
        .map_err(|e| format!("connecting to {}: {e}", socket.display()))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .and_then(|()| stream.set_write_timeout(Some(Duration::from_secs(5))))
        .map_err(|e| format!("timeouts: {e}"))?;
    (&stream)
        .write_all(b"{\"type\":\"fixture_release_turn\",\"id\":\"release\"}\n")
        .map_err(|e| format!("writing the request: {e}"))?;
    let mut line = String::new();
    BufReader::new(&stream)
        .read_line(&mut line)
        .map_err(|e| format!("reading the answer: {e}"))?;
    let answer: serde_json::Value =
        serde_json::from_str(line.trim()).map_err(|e| format!("{e}: {line:?}"))?;
    let expected = serde_json::json!({"type": "response", "command": "fixture_release_turn",
        "success": true, "data": {"released": true}, "id": "release"});
    if answer == expected {
        Ok(())
    } else {
        Err(format!("fixture_release_turn answered {line:?}"))
    }
}
