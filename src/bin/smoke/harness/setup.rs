//! What must hold before any check runs, and the listing that runs nothing.
//!
//! A setup problem (no usable temp dir, no `/proc`, a `--record` target that cannot be
//! written) would otherwise surface as a wall of failed checks — and with `--record`,
//! as a recorded failed gate. It is found here instead: one message naming the problem
//! and the fix, exit 2, nothing run, nothing recorded.

use std::path::{Path, PathBuf};

use entwurf_v2_spawn::Backend;

use crate::harness::catalog::{Catalog, Check, Scenario, backend_skip};
use crate::harness::cleanup::temp_dirs;
use crate::harness::cli::Format;
use crate::harness::needs::Unmet;
use crate::harness::output::record::Target;
use crate::harness::report::{COMMIT, PROGRAM};

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

/// What the checks add to their scratch dir's path at most, beyond the dir itself:
/// nested dirs, a gid, a socket name. V7 also puts the scratch dir's whole path inside
/// a cwd (`<dir>/v7/#(touch <dir>/v7-marker)/…`), so the visible scenario needs the
/// dir's length twice.
const DEEPEST_SUFFIX: usize = 200;

/// The system temp dir must take a new dir (every scenario works in one), and the
/// deepest path the selected checks build under it must fit the OS's path limit: a
/// TMPDIR of a few thousand bytes takes a dir, and then a check fails half-way with
/// "File name too long". The probe builds a path that long for real.
pub fn check_temp_dir(selected: &[Check]) -> Result<PathBuf, SetupError> {
    let root = std::env::temp_dir();
    let unusable = |e: &dyn std::fmt::Display| {
        SetupError(format!(
            "temp dir {} is unusable ({e}): set TMPDIR to an existing writable directory, or unset it to use /tmp",
            root.display()
        ))
    };
    // Named like a scenario's dir, and at least as long as the longest (`visible`).
    let probe = tempfile::Builder::new()
        .prefix(&crate::harness::cleanup::temp_dirs::name_prefix("probe--"))
        .tempdir()
        .map_err(|e| unusable(&e))?;
    let dir_len = probe.path().as_os_str().len();
    let twice = selected
        .iter()
        .any(|c| c.scenario() == Some(Scenario::Visible));
    let deepest = if twice { 2 * dir_len } else { dir_len } + DEEPEST_SUFFIX;
    let mut path = probe.path().to_path_buf();
    while path.as_os_str().len() < deepest {
        path.push("d".repeat(100));
    }
    std::fs::create_dir_all(&path).map_err(|e| {
        SetupError(format!(
            "temp dir {} is {} bytes long: the selected checks build paths of up to {deepest} bytes under it, and making one failed ({e}); set TMPDIR to a shorter directory, or unset it to use /tmp",
            root.display(),
            root.as_os_str().len()
        ))
    })?;
    Ok(root)
}

/// Every check's sockets go in a short dir of the run's own under
/// [`temp_dirs::socket_root`] (see there). The probe makes one for real and binds a
/// socket as deep as any check nests one: a root that cannot take a dir, resolves to
/// something longer than the budget, or cannot hold a socket is one setup error here
/// rather than a wall of failed checks. Returns the root, for the header and `--list`.
pub fn check_socket_root() -> Result<PathBuf, SetupError> {
    let root = temp_dirs::socket_root();
    let fix = if root == std::env::temp_dir() {
        "set TMPDIR to a writable directory of a few bytes, such as /tmp".to_owned()
    } else {
        format!(
            "the system temp dir is too long for sockets, so they go in {}: make it a writable directory (or set TMPDIR to a short writable one)",
            root.display()
        )
    };
    let unusable = |what: &str, e: &dyn std::fmt::Display| {
        SetupError(format!(
            "no short dir for the checks' sockets in {}: {what} ({e}); {fix}",
            root.display()
        ))
    };
    let probe = tempfile::Builder::new()
        .prefix(&temp_dirs::name_prefix("probe"))
        .tempdir_in(&root)
        .map_err(|e| unusable("making a dir failed", &e))?;
    let dir =
        std::fs::canonicalize(probe.path()).map_err(|e| unusable("resolving it failed", &e))?;
    temp_dirs::fits_socket_budget(&dir).map_err(|e| SetupError(format!("{e}")))?;
    let socket = dir.join("s".repeat(temp_dirs::DEEPEST_SOCKET - 1));
    std::os::unix::net::UnixListener::bind(&socket).map_err(|e| {
        unusable(
            &format!("binding a socket at {} failed", socket.display()),
            &e,
        )
    })?;
    Ok(root)
}

/// The `--record` target, validated (see [`Target::validate`]).
pub fn check_record(file: &Path) -> Result<Target, SetupError> {
    Target::validate(file).map_err(|e| SetupError(format!("{e:#}")))
}

/// `--only` ids, checked against the catalog (and the scenario, when one is named):
/// deduplicated, in catalog order. An unknown id is a usage error listing the valid ones;
/// a seed id (`S1`, which names three checks) one listing the checks it became.
pub fn check_only(
    catalog: &Catalog,
    only: &[String],
    scenario: Option<Scenario>,
) -> Result<Vec<&'static str>, String> {
    let valid = catalog.ids();
    let mut ids = Vec::new();
    for id in only {
        let Some(known) = valid.iter().copied().find(|v| v == id) else {
            let seed = catalog.seed_checks(id);
            if !seed.is_empty() {
                let ids: Vec<&str> = seed.iter().map(|c| c.id()).collect();
                return Err(format!(
                    "--only {id}: the seed's {id} is {} checks with ids of their own, {}: name one (repeat --only for more)",
                    ids.len(),
                    ids.join(" ")
                ));
            }
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

/// What `--list` lists, and for whom.
pub struct Listing<'a> {
    /// The selected checks.
    pub checks: &'a [Check],
    /// Who would run them (root and ordinary users skip different checks).
    pub euid: u32,
    /// `--keep-tmp` (H3 skips).
    pub keep_tmp: bool,
    /// The backend they would use (S1.7 skips on portable).
    pub backend: Backend,
    /// Why no real pi runtime was found (the `P` line skips, or fails on CI), when none
    /// was.
    pub pi_missing: Unmet,
    /// Where the checks' sockets would go (`temp_dirs::socket_root`).
    pub sockets: PathBuf,
}

impl Listing<'_> {
    /// Why `check` would not run in this run (a skip, or on CI a failure), or `None`
    /// when it runs: the same answer the check itself gets.
    fn unmet(&self, check: Check) -> Option<Unmet> {
        if let Some(unmet) = check.needs().and_then(|n| n.unmet(self.euid)) {
            return Some(unmet);
        }
        if let Some(why) = backend_skip(check, self.backend) {
            return Some(Unmet::new(why, false));
        }
        if check == Check::PiMissing {
            return Some(self.pi_missing.clone());
        }
        (self.keep_tmp && check == Check::HygieneTempDirs)
            .then(|| Unmet::new("--keep-tmp keeps the temp dirs", false))
    }
}

/// `--list`: every check of the selection with its scenario, label, and whether it will
/// skip (or, on CI, fail) for this euid and backend, and why. Runs nothing. Text, or with `--format json`
/// JSON Lines (a `list` object, then one `check` object per check); TAP and JUnit report
/// runs, so they are a usage error here rather than text under their name.
pub fn list(listing: &Listing<'_>, format: Format) -> Result<String, String> {
    let Listing {
        checks,
        euid,
        backend,
        ..
    } = *listing;
    let backend = backend.as_str();
    match format {
        Format::Text => {
            let mut out = format!(
                "{PROGRAM} {} (commit {COMMIT}): {} checks; for euid {euid}, backend {backend}, sockets under {}\n",
                env!("CARGO_PKG_VERSION"),
                checks.len(),
                listing.sockets.display()
            );
            for check in checks {
                let scenario = check.scenario().map_or("hygiene", Scenario::name);
                let will = listing
                    .unmet(*check)
                    .map_or_else(|| "runs".to_owned(), |unmet| unmet.listing());
                out.push_str(&format!(
                    "{:<5} {scenario:<8} {} — {will}\n",
                    check.id(),
                    check.label()
                ));
            }
            Ok(out)
        }
        Format::Json => {
            let mut out = serde_json::json!({
                "type": "list",
                "version": env!("CARGO_PKG_VERSION"),
                "commit": COMMIT,
                "euid": euid,
                "backend": backend,
                "sockets": listing.sockets,
                "total": checks.len(),
            })
            .to_string();
            out.push('\n');
            for check in checks {
                let unmet = listing.unmet(*check);
                let skip = unmet.as_ref().filter(|u| !u.required).map(|u| &u.why);
                let fail = unmet.as_ref().filter(|u| u.required).map(Unmet::failure);
                let line = serde_json::json!({
                    "type": "check",
                    "id": check.id(),
                    "seed": check.seed_id(),
                    "scenario": check.scenario().map_or("hygiene", Scenario::name),
                    "label": check.label(),
                    "runs": unmet.is_none(),
                    "skip_reason": skip,
                    "fail_reason": fail,
                });
                out.push_str(&line.to_string());
                out.push('\n');
            }
            Ok(out)
        }
        Format::Tap | Format::Junit => Err(
            "--list prints text or json (--format text|json); tap and junit report runs".to_owned(),
        ),
    }
}
