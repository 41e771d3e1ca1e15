//! What must hold before any check runs, and the listing that runs nothing.
//!
//! A setup problem (no usable temp dir, no `/proc`, a `--record` target that cannot be
//! written) would otherwise surface as a wall of failed checks — and with `--record`,
//! as a recorded failed gate. It is found here instead: one message naming the problem
//! and the fix, exit 2, nothing run, nothing recorded.

use std::path::{Path, PathBuf};

use crate::catalog::{Catalog, Check, Scenario};
use crate::output::record::Target;
use crate::report::{COMMIT, PROGRAM};

/// A setup error: what is wrong and how to fix it, in one line.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SetupError(pub String);

/// `/proc` is where the checks see processes, descriptors and start times.
pub fn check_proc() -> Result<(), SetupError> {
    let usable = std::fs::read_to_string("/proc/self/stat").is_ok()
        && std::fs::read_dir("/proc/self/fd").is_ok();
    if usable {
        Ok(())
    } else {
        Err(SetupError(
            "/proc is not mounted or not readable: the checks read processes and descriptors there; mount procfs (mount -t proc proc /proc)".into(),
        ))
    }
}

/// The system temp dir must take a new dir (every scenario works in one).
pub fn check_temp_dir() -> Result<PathBuf, SetupError> {
    let root = std::env::temp_dir();
    tempfile::Builder::new()
        .prefix(&crate::tmp::name_prefix("probe"))
        .tempdir()
        .map_err(|e| {
            SetupError(format!(
                "temp dir {} is unusable ({e}): set TMPDIR to an existing writable directory, or unset it to use /tmp",
                root.display()
            ))
        })?;
    Ok(root)
}

/// The `--record` target, validated (see [`Target::validate`]).
pub fn check_record(file: &Path) -> Result<Target, SetupError> {
    Target::validate(file).map_err(|e| SetupError(format!("{e:#}")))
}

/// `--only` ids, checked against the catalog (and the scenario, when one is named):
/// deduplicated, in catalog order. An unknown id is a usage error listing the valid ones.
pub fn check_only(
    catalog: &Catalog,
    only: &[String],
    scenario: Option<Scenario>,
) -> Result<Vec<&'static str>, String> {
    let valid = catalog.ids();
    let mut ids = Vec::new();
    for id in only {
        let Some(known) = valid.iter().copied().find(|v| v == id) else {
            return Err(format!(
                "--only {id}: no such check id; valid ids: {}",
                valid.join(" ")
            ));
        };
        if let Some(s) = scenario {
            let in_scenario = catalog
                .checks()
                .iter()
                .any(|c| c.id() == known && (c.scenario() == Some(s) || c.is_hygiene()));
            if !in_scenario {
                return Err(format!(
                    "--only {id}: not a check of scenario {}; drop the scenario or pick one of its ids",
                    s.name()
                ));
            }
        }
        if !ids.contains(&known) {
            ids.push(known);
        }
    }
    ids.sort_by_key(|id| valid.iter().position(|v| v == id));
    Ok(ids)
}

/// `--list`: every check of the selection with its scenario, label, and whether it will
/// skip for `euid` and why. Runs nothing.
pub fn list(checks: &[Check], euid: u32, keep_tmp: bool, pi_missing: &str) -> String {
    let mut out = format!(
        "{PROGRAM} {} (commit {COMMIT}): {} checks; for euid {euid}\n",
        env!("CARGO_PKG_VERSION"),
        checks.len()
    );
    for check in checks {
        let scenario = check.scenario().map_or("hygiene", Scenario::name);
        let skip = match check.needs().and_then(|n| n.skip_reason(euid)) {
            Some(why) => Some(why),
            None if keep_tmp && *check == Check::HygieneTempDirs => {
                Some("--keep-tmp keeps the temp dirs")
            }
            None if *check == Check::PiMissing => Some(pi_missing),
            None => None,
        };
        let will = skip.map_or_else(|| "runs".to_owned(), |why| format!("skips: {why}"));
        out.push_str(&format!(
            "{:<5} {scenario:<8} {} — {will}\n",
            check.id(),
            check.label()
        ));
    }
    out
}
