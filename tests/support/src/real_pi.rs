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
    /// When pi fails or writes anything but exactly one session file.
    #[must_use]
    pub fn create_session(&self, runtime: &Runtime, gid: &str, prompt: &str) -> PathBuf {
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
        let files = self.session_files();
        assert_eq!(files.len(), 1, "one session file: {files:?}");
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

/// What the fixture's control socket says to every connection.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Hello {
    /// The session id pi runs (the garden id of a resume).
    pub session: String,
    /// pi's pid.
    pub pid: u32,
    /// `CLOCK_MONOTONIC` (ns, as a decimal string) when the socket started listening.
    pub listening_monotonic_ns: String,
}

/// Connects to the fixture's socket, reads its greeting, and tells the resident to run
/// its turn (the fixture holds it until told, so the turn never races the observation).
///
/// # Panics
///
/// When the socket does not answer within 5 s or greets with something else.
#[must_use]
pub fn greet_and_release_turn(socket: &Path) -> Hello {
    use std::io::{BufRead, BufReader, Write};
    let stream = std::os::unix::net::UnixStream::connect(socket).expect("connect to the fixture");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("read timeout");
    let mut line = String::new();
    BufReader::new(&stream)
        .read_line(&mut line)
        .expect("the fixture's greeting");
    let hello: Hello = serde_json::from_str(&line).expect("a JSON greeting");
    (&stream).write_all(b"turn\n").expect("release the turn");
    hello
}
