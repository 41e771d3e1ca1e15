//! Launch identity from synthetic saved sessions in temp agent dirs.

use std::path::{Path, PathBuf};

use entwurf_v2_spawn::GardenId;
use entwurf_v2_spawn::production::identity::{
    IdentityError, LaunchIdentity, ModelRef, resolve_launch_identity,
};
use entwurf_v2_spawn::resume_args::PassthroughArgs;

const GID: &str = "20260613T000000-aaaaaa";
const OTHER: &str = "20260613T000000-bbbbbb";

fn gid() -> GardenId {
    GardenId::parse(GID).unwrap()
}

fn header(id: &str, cwd: &str) -> String {
    format!(
        r#"{{"type":"session","version":3,"id":"{id}","timestamp":"2026-06-13T03:55:45.123Z","cwd":"{cwd}"}}"#
    )
}

fn model(provider: &str, model: &str) -> String {
    format!(
        r#"{{"type":"model_change","id":"m1","timestamp":"2026-06-13T03:55:46.000Z","provider":"{provider}","modelId":"{model}"}}"#
    )
}

const MESSAGE: &str = r#"{"type":"message","id":"x1","message":{"role":"user","content":"hello"}}"#;

/// Writes `<agent>/sessions/<dir>/<file>` with `lines`, each newline-terminated.
fn session(agent: &Path, dir: &str, file: &str, lines: &[&str]) -> PathBuf {
    let dir = agent.join("sessions").join(dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(file);
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(&path, text).unwrap();
    path
}

fn resolve(agent: &Path) -> Result<LaunchIdentity, IdentityError> {
    resolve_launch_identity(agent, &gid(), &PassthroughArgs::default())
}

/// A snapshot of every file under `dir` with its contents and mtime, to prove
/// resolution touches nothing.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>, std::time::SystemTime)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let meta = std::fs::symlink_metadata(&p).unwrap();
            if meta.is_dir() {
                stack.push(p);
            } else {
                out.push((
                    p.clone(),
                    std::fs::read(&p).unwrap(),
                    meta.modified().unwrap(),
                ));
            }
        }
    }
    out.sort();
    out
}

mod files;
mod headers;
