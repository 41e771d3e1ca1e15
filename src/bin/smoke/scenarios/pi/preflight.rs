//! `P<n>.6`: the library's preflight against a real runtime, checked against the version
//! its own `package.json` states.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};

use entwurf_v2_spawn::error_chain;
use entwurf_v2_spawn::runtime::{ArgvDialect, RuntimeError, preflight};

use super::world::World;
use crate::harness::runner::expect_that;

/// `P<n>.6`: the preflight names this runtime's version — the one its own `package.json`
/// states, a source independent of the preflight and of the launcher's name — and
/// refuses, typed, naming what it found, a missing runtime and one below the spawn-bg
/// floor (a stand-in answering `--version` as 0.73.1, the last release without
/// `--session-id`, does).
pub async fn preflight_refusals(world: &World) -> Result<()> {
    let (stated, manifest) = package_version(&world.runtime.launcher)?;
    let found = preflight(world.program.as_os_str(), ArgvDialect::SpawnBg)
        .await
        .map_err(|e| anyhow!("{}: {}", error_chain(&e), e.advice()))?;
    // As text: the preflight and the label's version both went through
    // `RuntimeVersion::parse`, which must not be what vouches for itself.
    expect_that(found.to_string() == stated, || {
        format!(
            "the preflight found {found}, {} states {stated}",
            manifest.display()
        )
    })?;
    expect_that(world.runtime.version.to_string() == stated, || {
        format!(
            "this runtime's checks are labelled pi {}, {} states {stated}",
            world.runtime.version,
            manifest.display()
        )
    })?;
    let missing = world.root.join("bin/no-such-pi");
    match preflight(missing.as_os_str(), ArgvDialect::SpawnBg).await {
        Err(RuntimeError::Missing { .. }) => {}
        other => bail!("a missing runtime: expected Missing, got {other:?}"),
    }
    let old = world.root.join("bin/pi-0.73.1");
    std::fs::create_dir_all(world.root.join("bin")).context("bin dir")?;
    std::fs::write(&old, "#!/bin/sh\necho 0.73.1\n").context("the 0.73.1 stand-in")?;
    std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o755))?;
    match preflight(old.as_os_str(), ArgvDialect::SpawnBg).await {
        Err(e @ RuntimeError::BelowFloor { .. }) => {
            let text = e.to_string();
            expect_that(text.contains("0.73.1") && text.contains("0.76.0"), || {
                format!("the refusal does not name both versions: {text}")
            })?;
            expect_that(e.advice().contains("upgrade"), || e.advice())
        }
        other => bail!("pi 0.73.1: expected BelowFloor, got {other:?}"),
    }
}

/// The version the runtime's own `package.json` states, verbatim, and that file: the pi
/// package found above the launcher's real path (npm's bin link), or above a script path
/// the launcher names (`./run.sh install-pi` writes `exec 'node' '…/dist/cli.js'`).
pub fn package_version(launcher: &Path) -> Result<(String, PathBuf)> {
    let mut starts: Vec<PathBuf> = std::fs::canonicalize(launcher).into_iter().collect();
    let script = std::fs::read(launcher).unwrap_or_default();
    if script.len() < 64 * 1024 {
        let text = String::from_utf8_lossy(&script);
        starts.extend(
            // Every piece between quote marks, not only every other one: a `"` elsewhere
            // in the launcher (install-pi's `"${NODE_COMPILE_CACHE:=…}"`) shifts the pairs.
            text.split(['\'', '"'])
                .filter(|p| p.starts_with('/') && p.ends_with(".js"))
                .map(PathBuf::from),
        );
    }
    for dir in starts.iter().flat_map(|start| start.ancestors().skip(1)) {
        let manifest = dir.join("package.json");
        let Ok(text) = std::fs::read_to_string(&manifest) else {
            continue;
        };
        let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) else {
            continue;
        };
        let is_pi = json["name"]
            .as_str()
            .is_some_and(|n| n.ends_with("/pi-coding-agent"));
        if let (true, Some(version)) = (is_pi, json["version"].as_str()) {
            return Ok((version.to_owned(), manifest));
        }
    }
    bail!(
        "no package.json of pi-coding-agent above {} or a script it names: nothing independent of the preflight to check its version against",
        launcher.display()
    )
}
