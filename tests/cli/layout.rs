//! The smoke's module graph, read from its sources: no module uses another that uses it
//! back (directly or around a cycle, parent and child included), the checks never import
//! the command line's parser, and the stand-ins import neither the harness nor the checks.
//!
//! Each source is parsed as Rust (`syn`), so a `use` tree of any shape — nested groups,
//! `self`, renames, globs, on one line or in rustfmt's layout — is expanded into the
//! paths it names, and no text after a test module or inside a comment or string is
//! misread or skipped. An edge is a path that starts with `crate`, `super`, `self` or
//! the name of a child module the file declares, in a `use` or anywhere inline; it
//! points at the longest module prefix of the resolved path. Items under `#[cfg(test)]`
//! are left out (a unit test may reach across the layers it tests).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use syn::visit::Visit;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/bin/smoke");

/// Module path (`crate::harness::cleanup`) → its source.
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
            let name = ["crate".to_owned()]
                .into_iter()
                .chain(parts)
                .collect::<Vec<_>>()
                .join("::");
            out.insert(name, std::fs::read_to_string(&path).unwrap());
        }
    }
    let mut out = BTreeMap::new();
    walk(Path::new(ROOT), &mut out);
    out
}

fn is_cfg_test(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("cfg")
            && a.parse_args::<syn::Meta>()
                .is_ok_and(|m| m.path().is_ident("test"))
    })
}

/// Collects the module-relative paths one file names, each with the module it was
/// named in (the file's, or an inline `mod` inside it).
struct Named {
    /// The module being read, as segments (`["crate", "harness", "runner"]`).
    scope: Vec<String>,
    /// Per scope depth: the child modules declared there.
    children: Vec<BTreeSet<String>>,
    /// Resolved absolute paths.
    found: Vec<Vec<String>>,
}

impl Named {
    /// `path` (segments as written) resolved against the current scope, when it is one
    /// this test follows.
    fn push(&mut self, path: &[String]) {
        let Some(first) = path.first() else { return };
        let mut abs = self.scope.clone();
        let mut rest = path;
        match first.as_str() {
            "crate" => {
                abs.truncate(1);
                rest = &rest[1..];
            }
            "self" => rest = &rest[1..],
            "super" => {
                while rest.first().is_some_and(|p| p == "super") {
                    abs.pop();
                    rest = &rest[1..];
                }
            }
            child if self.children.last().is_some_and(|c| c.contains(child)) => {}
            _ => return,
        }
        abs.extend(rest.iter().cloned());
        self.found.push(abs);
    }

    /// Every path a `use` tree names, `prefix` the segments above it.
    fn use_tree(&mut self, prefix: &mut Vec<String>, tree: &syn::UseTree) {
        match tree {
            syn::UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                self.use_tree(prefix, &p.tree);
                prefix.pop();
            }
            syn::UseTree::Name(n) => self.use_leaf(prefix, &n.ident),
            syn::UseTree::Rename(r) => self.use_leaf(prefix, &r.ident),
            syn::UseTree::Glob(_) => self.push(&prefix.clone()),
            syn::UseTree::Group(g) => {
                for item in &g.items {
                    self.use_tree(prefix, item);
                }
            }
        }
    }

    /// `a::b::{self}` names `a::b`; `a::b::c` names `a::b::c`.
    fn use_leaf(&mut self, prefix: &[String], ident: &syn::Ident) {
        let mut path = prefix.to_vec();
        if ident != "self" || path.is_empty() {
            path.push(ident.to_string());
        }
        self.push(&path);
    }
}

impl<'ast> Visit<'ast> for Named {
    fn visit_file(&mut self, file: &'ast syn::File) {
        self.children.push(declared(&file.items));
        for item in &file.items {
            self.visit_item(item);
        }
        self.children.pop();
    }

    fn visit_item(&mut self, item: &'ast syn::Item) {
        let attrs: &[syn::Attribute] = match item {
            syn::Item::Use(i) => &i.attrs,
            syn::Item::Mod(i) => &i.attrs,
            syn::Item::Fn(i) => &i.attrs,
            syn::Item::Impl(i) => &i.attrs,
            syn::Item::Struct(i) => &i.attrs,
            syn::Item::Enum(i) => &i.attrs,
            syn::Item::Const(i) => &i.attrs,
            syn::Item::Static(i) => &i.attrs,
            syn::Item::Trait(i) => &i.attrs,
            syn::Item::Type(i) => &i.attrs,
            syn::Item::Macro(i) => &i.attrs,
            _ => &[],
        };
        if !is_cfg_test(attrs) {
            syn::visit::visit_item(self, item);
        }
    }

    fn visit_item_mod(&mut self, item: &'ast syn::ItemMod) {
        // `mod child;` is a declaration, not a use; an inline module is a scope.
        if let Some((_, items)) = &item.content {
            self.scope.push(item.ident.to_string());
            self.children.push(declared(items));
            for inner in items {
                self.visit_item(inner);
            }
            self.children.pop();
            self.scope.pop();
        }
    }

    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        self.use_tree(&mut Vec::new(), &item.tree);
    }

    // `pub(crate)`, `pub(super)`: who may see an item, not a use of another module.
    fn visit_visibility(&mut self, _: &'ast syn::Visibility) {}

    fn visit_path(&mut self, path: &'ast syn::Path) {
        if path.leading_colon.is_none() {
            let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
            self.push(&segments);
        }
        syn::visit::visit_path(self, path);
    }

    // Paths inside macro calls (`format!`, `tokio::join!`) are tokens, not syntax: read
    // them as a sequence of `ident :: ident …` runs.
    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        self.visit_path(&mac.path);
        self.tokens(mac.tokens.clone());
    }
}

impl Named {
    /// The `a::b::c` runs of a macro's tokens (a lone ident is no path).
    fn tokens(&mut self, tokens: proc_macro2::TokenStream) {
        fn flush(named: &mut Named, run: &mut Vec<String>) {
            if run.len() > 1 {
                named.push(run);
            }
            run.clear();
        }
        let (mut run, mut colons) = (Vec::new(), 0);
        for token in tokens {
            match token {
                proc_macro2::TokenTree::Ident(ident) => {
                    if colons != 2 {
                        flush(self, &mut run);
                    }
                    colons = 0;
                    run.push(ident.to_string());
                }
                proc_macro2::TokenTree::Punct(p) if p.as_char() == ':' => colons += 1,
                proc_macro2::TokenTree::Group(group) => {
                    flush(self, &mut run);
                    colons = 0;
                    self.tokens(group.stream());
                }
                proc_macro2::TokenTree::Punct(_) | proc_macro2::TokenTree::Literal(_) => {
                    flush(self, &mut run);
                    colons = 0;
                }
            }
        }
        flush(self, &mut run);
    }
}

/// The names of the non-test child modules `items` declare.
fn declared(items: &[syn::Item]) -> BTreeSet<String> {
    items
        .iter()
        .filter_map(|item| match item {
            syn::Item::Mod(m) if !is_cfg_test(&m.attrs) => Some(m.ident.to_string()),
            _ => None,
        })
        .collect()
}

/// Module → the modules it names, from `sources` (module path → Rust source).
fn graph(sources: &BTreeMap<String, String>) -> BTreeMap<String, BTreeSet<String>> {
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (name, text) in sources {
        let file = syn::parse_file(text).unwrap_or_else(|e| panic!("{name} does not parse: {e}"));
        let mut named = Named {
            scope: name.split("::").map(str::to_owned).collect(),
            children: Vec::new(),
            found: Vec::new(),
        };
        named.visit_file(&file);
        for abs in named.found {
            let target = (1..=abs.len())
                .rev()
                .map(|k| abs[..k].join("::"))
                .find(|m| sources.contains_key(m));
            if let Some(target) = target.filter(|t| t != name) {
                edges.entry(name.clone()).or_default().insert(target);
            }
        }
    }
    edges
}

/// A module that reaches itself, if any: the way round, `a → b → … → a`.
fn cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<String> {
    edges.keys().find_map(|start| {
        // Depth-first from `start`, each path remembered by its predecessor.
        let mut came_from: BTreeMap<&String, &String> = BTreeMap::new();
        let mut todo: Vec<(&String, &String)> = edges[start].iter().map(|m| (m, start)).collect();
        while let Some((m, from)) = todo.pop() {
            if m == start {
                let mut way = vec![start.as_str()];
                let mut at = from;
                while at != start {
                    way.push(at);
                    at = came_from[at];
                }
                way.push(start);
                way.reverse();
                return Some(way.join(" → "));
            }
            if !came_from.contains_key(m) {
                came_from.insert(m, from);
                todo.extend(edges.get(m).into_iter().flatten().map(|n| (n, m)));
            }
        }
        None
    })
}

#[test]
fn the_smoke_has_no_module_cycle_and_its_folders_point_one_way() {
    let edges = graph(&modules());
    assert!(edges.len() > 20, "the graph was not read: {edges:?}");
    if let Some(way) = cycle(&edges) {
        panic!("module cycle: {way}");
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

/// The test above, tested: a cycle planted in `os.rs` (which the harness uses) is found
/// however the `use` is written, and also when it follows a test module.
#[test]
fn a_planted_cycle_is_found_in_every_use_form() {
    let plain = "use crate::harness::runner::skip;";
    let nested_one_line = "use crate::{os::{self as _me}, harness::runner::skip};";
    let nested_rustfmt = "use crate::{\n    harness::runner::skip,\n    os::{self as _me},\n};";
    let inline = "fn planted() { let _ = crate::harness::runner::skip; }";
    let in_a_macro = "fn planted() { let _ = format!(\"{:?}\", crate::harness::runner::skip); }";
    let after_tests = "#[cfg(test)]\nmod tests {\n    #[test]\n    fn t() {}\n}\n\nuse crate::harness::runner::skip;";
    let sources = modules();
    assert!(
        cycle(&graph(&sources)).is_none(),
        "the sources have a cycle already"
    );
    for planted in [
        plain,
        nested_one_line,
        nested_rustfmt,
        inline,
        in_a_macro,
        after_tests,
    ] {
        let mut sources = sources.clone();
        let os = sources.get_mut("crate::os").expect("os.rs");
        os.push('\n');
        os.push_str(planted);
        os.push('\n');
        assert!(
            cycle(&graph(&sources)).is_some(),
            "a cycle planted as `{planted}` was not found"
        );
    }
    // Under `#[cfg(test)]` it is no edge: tests may reach across the layers.
    let mut sources = sources.clone();
    let os = sources.get_mut("crate::os").expect("os.rs");
    os.push_str("\n#[cfg(test)]\nmod tests {\n    use crate::harness::runner::skip;\n}\n");
    assert!(
        cycle(&graph(&sources)).is_none(),
        "a test module's use counted"
    );
}
