//! The smoke's module graph, read from its sources: no module uses another that uses it
//! back (directly or around a cycle, parent and child included), the checks never import
//! the command line's parser, and the stand-ins import neither the harness nor the checks.
//!
//! An edge is a `use crate::…`, `use super::…` or inline `crate::…`/`super::…` path, or a
//! parent naming a child module it declares; it points at the longest module prefix of
//! the path. `#[cfg(test)] mod tests` blocks and comments are left out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/bin/smoke");

/// Module path (`crate::harness::cleanup`) → its source, without tests and comments.
fn modules() -> BTreeMap<String, String> {
    fn walk(dir: &Path, out: &mut BTreeMap<String, String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
                continue;
            }
            let rel = path.strip_prefix(ROOT).unwrap().with_extension("");
            let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into()).collect();
            if parts == ["main"] || parts.last().is_some_and(|p| p == "mod") {
                parts.pop();
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let text = text.split("#[cfg(test)]\nmod tests").next().unwrap();
            let text: String = text
                .lines()
                .map(|l| l.split("//").next().unwrap_or(""))
                .collect::<Vec<_>>()
                .join("\n");
            out.insert(
                ["crate".to_owned()]
                    .into_iter()
                    .chain(parts)
                    .collect::<Vec<_>>()
                    .join("::"),
                text,
            );
        }
    }
    let mut out = BTreeMap::new();
    walk(Path::new(ROOT), &mut out);
    out
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Every path a module names that starts with `crate` or `super`, `use` groups expanded
/// one level (`use crate::{a, b::c}`).
fn paths(text: &str) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    let split = |s: &str| {
        s.split("::")
            .map(|p| p.trim().to_owned())
            .filter(|p| !p.is_empty())
            .collect::<Vec<_>>()
    };
    for (i, _) in text.match_indices(['c', 's']) {
        let rest = &text[i..];
        if !(rest.starts_with("crate::") || rest.starts_with("super::")) {
            continue;
        }
        if text[..i].ends_with(|c: char| is_ident(c) || c == ':') {
            continue;
        }
        let end = rest
            .find(|c: char| {
                !(is_ident(c)
                    || c == ':'
                    || c == '{'
                    || c == '}'
                    || c == ','
                    || c == ' '
                    || c == '\n')
            })
            .unwrap_or(rest.len());
        let path = &rest[..end];
        match path.split_once('{') {
            Some((head, group)) => {
                let group = group.split('}').next().unwrap_or("");
                for item in group.split(',') {
                    let mut p = split(head);
                    p.extend(split(item.split(" as ").next().unwrap_or("")));
                    found.push(p);
                }
            }
            None => found.push(split(
                path.split([' ', '\n', '}', ',']).next().unwrap_or(""),
            )),
        }
    }
    found
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let modules = modules();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (name, text) in &modules {
        let me: Vec<&str> = name.split("::").collect();
        let mut targets = paths(text);
        // A parent naming a child it declares (`child::run`).
        for line in text.lines() {
            let line = line
                .trim_start()
                .trim_start_matches("pub ")
                .trim_start_matches("pub(crate) ");
            if let Some(child) = line.strip_prefix("mod ").and_then(|l| l.strip_suffix(';')) {
                let named = text.lines().any(|l| {
                    !l.trim_start().contains("mod ")
                        && l.match_indices(&format!("{child}::"))
                            .any(|(i, _)| !l[..i].ends_with(|c: char| is_ident(c) || c == ':'))
                });
                if named {
                    targets.push(
                        me.iter()
                            .map(|s| s.to_string())
                            .chain([child.to_owned()])
                            .collect(),
                    );
                }
            }
        }
        for path in targets {
            let mut abs: Vec<String> = me.iter().map(|s| s.to_string()).collect();
            let mut rest = path.as_slice();
            if rest.first().is_some_and(|p| p == "crate") {
                abs.clear();
            } else {
                while rest.first().is_some_and(|p| p == "super") {
                    abs.pop();
                    rest = &rest[1..];
                }
            }
            abs.extend(rest.iter().cloned());
            let target = (1..=abs.len())
                .rev()
                .map(|k| abs[..k].join("::"))
                .find(|m| modules.contains_key(m));
            if let Some(target) = target.filter(|t| t != name) {
                edges.entry(name.clone()).or_default().insert(target);
            }
        }
    }
    edges
}

#[test]
fn the_smoke_has_no_module_cycle_and_its_folders_point_one_way() {
    let edges = graph();
    assert!(edges.len() > 20, "the graph was not read: {edges:?}");
    // A cycle exists iff some module reaches itself.
    for start in edges.keys() {
        let mut seen = BTreeSet::new();
        let mut todo: Vec<&String> = edges[start].iter().collect();
        while let Some(m) = todo.pop() {
            assert!(m != start, "module cycle through {start}: {edges:#?}");
            if seen.insert(m) {
                todo.extend(edges.get(m).into_iter().flatten());
            }
        }
    }
    for (from, to) in edges
        .iter()
        .flat_map(|(f, ts)| ts.iter().map(move |t| (f, t)))
    {
        if from.starts_with("crate::scenarios") {
            assert!(to != "crate::harness::cli", "{from} imports the CLI parser");
        }
        if from.starts_with("crate::stand_ins") {
            assert!(
                !to.starts_with("crate::harness") && !to.starts_with("crate::scenarios"),
                "{from} → {to}: the stand-ins use neither the harness nor the checks"
            );
        }
    }
}
