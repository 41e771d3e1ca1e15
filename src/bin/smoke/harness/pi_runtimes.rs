//! The real `pi` runtimes this run resumes sessions with (the `pi` scenario, P checks),
//! found once before any check: `--pi PATH` (repeatable), else the launchers that
//! `./run.sh install-pi` writes to `<dir>/bin/pi-<version>`, where `<dir>` is
//! `$ENTWURF_REAL_PI_DIR` or the checkout's `target/real-pi` (the checkout this binary
//! was built from).
//!
//! Each runtime gets its own checks with ids `P<n>.<k>`: `n` its position (oldest
//! first), `k` the check (the catalog's per-runtime rows, [`PiRuntime`]).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use entwurf_v2_spawn::runtime::{ArgvDialect, RuntimeVersion, preflight};

use crate::harness::catalog::PiRuntime;
use crate::os::ProcessId;
use crate::stand_ins::guard;

/// A `--pi` runtime the preflight refused: what was found and the fix, in one line (a
/// setup error of the run).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SetupError(String);

/// The variable naming the install dir; set but empty, it says "no real pi in this run".
pub const DIR_VAR: &str = "ENTWURF_REAL_PI_DIR";

/// The install dir of the checkout this binary was built from.
const BUILT_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/target/real-pi");

/// What this run has: runtimes, or why none (the `P` line's skip).
#[derive(Debug, Clone)]
pub struct PiRuntimes {
    /// Oldest first.
    pub found: &'static [PiRuntime],
    /// Why none was found, naming the fix, when `found` is empty.
    pub missing: String,
    /// Set when `ENTWURF_REAL_PI_DIR` is set but empty: the run was told to use none, so
    /// the `P` line is a skip even on CI.
    pub opted_out: bool,
}

/// Where the `--pi` preflights' guarded launchers go: a dir of the run's own (marked,
/// so the next run sweeps it when this one is SIGKILLed), this binary, the gate process.
#[derive(Debug)]
pub struct Guarded {
    /// The dir.
    pub dir: PathBuf,
    /// This binary (the guard).
    pub exe: PathBuf,
    /// The gate process the guard watches.
    pub gate: ProcessId,
}

impl PiRuntimes {
    /// Why the `P` line does not run, when no runtime was found: a skip, or on CI a
    /// failure (unless the run opted out), by the rule of `harness::needs`.
    pub fn unmet(&self) -> crate::harness::needs::Unmet {
        crate::harness::needs::Unmet::new(self.missing.clone(), !self.opted_out)
    }
}

/// Finds the runtimes: `--pi` paths (each asked its `--version`, under the guard of
/// `guarded`), else the launchers in the install dir.
///
/// # Errors
///
/// A `--pi` runtime the preflight refuses: setup error, naming it and the fix.
pub fn discover(given: &[PathBuf], guarded: Option<&Guarded>) -> Result<PiRuntimes, SetupError> {
    if !given.is_empty() {
        // Each `pi --version` runs under the guard (`stand_ins::guard`), so it dies with
        // the gate whichever way the gate ends.
        let Some(Guarded { dir, exe, gate }) = guarded else {
            return Err(SetupError(
                "--pi needs a dir for its guarded launchers".into(),
            ));
        };
        let (dir, exe, gate) = (dir.as_path(), exe.as_path(), *gate);
        let mut found = Vec::new();
        for (n, path) in given.iter().enumerate() {
            // Absolute: the resumes run pi from the session's cwd, not ours.
            let path = absolute(path)?;
            let guarded = dir.join(format!("pi-{n}"));
            let script = guard::launcher_script(exe, gate, &path).ok_or_else(|| {
                SetupError(format!(
                    "--pi {}: a path with a ' in it is not supported",
                    path.display()
                ))
            })?;
            std::fs::write(&guarded, script)
                .and_then(|()| {
                    std::fs::set_permissions(&guarded, std::fs::Permissions::from_mode(0o700))
                })
                .map_err(|e| SetupError(format!("writing {}: {e}", guarded.display())))?;
            let version = preflight_blocking(&path, guarded.as_os_str())?;
            found.push((version, path));
        }
        return Ok(PiRuntimes {
            found: leak_sorted(found),
            missing: String::new(),
            opted_out: false,
        });
    }
    let dir = match std::env::var_os(DIR_VAR) {
        Some(dir) if dir.is_empty() => {
            return Ok(PiRuntimes {
                found: &[],
                missing: format!("{DIR_VAR} is set but empty: this run uses no real pi"),
                opted_out: true,
            });
        }
        Some(dir) => absolute(Path::new(&dir))?,
        None => PathBuf::from(BUILT_DIR),
    };
    let bin = dir.join("bin");
    let found: Vec<_> = std::fs::read_dir(&bin)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let version = RuntimeVersion::parse(name.strip_prefix("pi-")?)?;
            Some((version, entry.path()))
        })
        .collect();
    Ok(PiRuntimes {
        found: leak_sorted(found),
        missing: format!(
            "no real pi runtime in {}: run ./run.sh install-pi (or pass --pi PATH)",
            bin.display()
        ),
        opted_out: false,
    })
}

/// `path` made absolute against our cwd (without resolving links).
fn absolute(path: &Path) -> Result<PathBuf, SetupError> {
    std::path::absolute(path).map_err(|e| {
        SetupError(format!(
            "{}: cannot make it absolute ({e}): pass an absolute path",
            path.display()
        ))
    })
}

fn leak_sorted(mut found: Vec<(RuntimeVersion, PathBuf)>) -> &'static [PiRuntime] {
    found.sort();
    found.dedup_by(|a, b| a.1 == b.1);
    let runtimes: Vec<PiRuntime> = found
        .into_iter()
        .enumerate()
        .map(|(i, (version, launcher))| PiRuntime::new(i + 1, version, launcher))
        .collect();
    Box::leak(runtimes.into_boxed_slice())
}

/// The library's preflight of `path` (asked through `program`, its guarded launcher), on
/// a throwaway runtime: setup runs before the run's own.
fn preflight_blocking(
    path: &Path,
    program: &std::ffi::OsStr,
) -> Result<RuntimeVersion, SetupError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            SetupError(format!(
                "cannot start an async runtime for the pi preflight: {e}"
            ))
        })?;
    // A path that does not exist starts nothing, so it is asked directly (the refusal is
    // then `Missing`, not the guard's failed exec).
    let program = if path.exists() {
        program
    } else {
        path.as_os_str()
    };
    runtime
        .block_on(preflight(program, ArgvDialect::SpawnBg))
        .map_err(|refusal| {
            // The refusal names what was run, the guarded launcher: name the user's path.
            let ours = |text: String| {
                text.replace(
                    &program.to_string_lossy().into_owned(),
                    &path.to_string_lossy(),
                )
            };
            SetupError(format!(
                "--pi {}: {}: {}",
                path.display(),
                ours(entwurf_v2_spawn::error_chain(&refusal)),
                ours(refusal.advice())
            ))
        })
}

/// Runtimes with these versions (launchers that do not exist), for the catalog's tests.
#[cfg(test)]
pub fn test_runtimes(versions: &[&str]) -> &'static [PiRuntime] {
    leak_sorted(
        versions
            .iter()
            .filter_map(|v| {
                Some((
                    RuntimeVersion::parse(v)?,
                    PathBuf::from(format!("/nonexistent/pi-{v}")),
                ))
            })
            .collect(),
    )
}
