//! The library's module graph, read from its sources with a Rust parser: in every folder
//! (the crate root, `socket`, `production::child`, …) the sub-modules import one another
//! without a circle.
//!
//! A module's imports are its `use` trees (every leaf of a group), every `crate::…`,
//! `super::…` and `self::…` path in its items, and every path that starts with one of
//! the child modules it declares. Each import points at the longest module prefix of its
//! path. An import from `a::x::…` to `a::y::…` counts as `x → y` among the sub-modules of
//! `a`: a folder is acyclic only if what lies inside its sub-modules is taken into
//! account. A module naming its own ancestor (a child using its parent's items, as Rust's
//! privacy invites) or its own descendant is no edge among siblings and is left out.
//! `#[cfg(test)]` items and modules are left out (tests may reach anywhere), and so are
//! paths inside macro invocations (their tokens are not parsed as Rust).
//!
//! Parsed with `syn` (a dev-dependency): a text scan misreads nested `use` groups,
//! `as` renames, paths inside strings and comments, and inline modules.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use syn::visit::Visit;

type Module = Vec<String>;

/// Every module of the library (by path from `crate`) and the paths it names.
#[derive(Default)]
struct Library {
    modules: BTreeMap<Module, Vec<Module>>,
}

fn attrs(item: &syn::Item) -> &[syn::Attribute] {
    match item {
        syn::Item::Const(i) => &i.attrs,
        syn::Item::Enum(i) => &i.attrs,
        syn::Item::Fn(i) => &i.attrs,
        syn::Item::Impl(i) => &i.attrs,
        syn::Item::Macro(i) => &i.attrs,
        syn::Item::Mod(i) => &i.attrs,
        syn::Item::Static(i) => &i.attrs,
        syn::Item::Struct(i) => &i.attrs,
        syn::Item::Trait(i) => &i.attrs,
        syn::Item::Type(i) => &i.attrs,
        syn::Item::Use(i) => &i.attrs,
        _ => &[],
    }
}

fn is_test_only(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("cfg")
            && a.parse_args::<syn::Meta>()
                .is_ok_and(|m| m.path().is_ident("test"))
    })
}

/// Every leaf of a `use` tree, as the path that names it (a glob names its parent).
fn use_leaves(tree: &syn::UseTree, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match tree {
        syn::UseTree::Path(p) => {
            prefix.push(p.ident.to_string());
            use_leaves(&p.tree, prefix, out);
            prefix.pop();
        }
        // `use a::{self}` names `a` itself.
        syn::UseTree::Name(n) if n.ident == "self" => out.push(prefix.clone()),
        syn::UseTree::Name(n) => out.push(with(prefix, &n.ident)),
        syn::UseTree::Rename(r) => out.push(with(prefix, &r.ident)),
        syn::UseTree::Glob(_) => out.push(prefix.clone()),
        syn::UseTree::Group(g) => {
            for tree in &g.items {
                use_leaves(tree, prefix, out);
            }
        }
    }
}

fn with(prefix: &[String], ident: &syn::Ident) -> Vec<String> {
    let mut path = prefix.to_vec();
    path.push(ident.to_string());
    path
}

/// The paths named inside one item (inline modules are walked on their own).
#[derive(Default)]
struct Paths(Vec<Vec<String>>);

impl<'ast> Visit<'ast> for Paths {
    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        use_leaves(&item.tree, &mut Vec::new(), &mut self.0);
    }
    fn visit_path(&mut self, path: &'ast syn::Path) {
        self.0
            .push(path.segments.iter().map(|s| s.ident.to_string()).collect());
        syn::visit::visit_path(self, path);
    }
}

impl Library {
    fn read(root: &Path) -> Self {
        let mut library = Self::default();
        library.file(&root.join("lib.rs"), root, vec!["crate".into()]);
        library
    }

    /// Reads the module in `file`, whose child modules' files live in `dir`.
    fn file(&mut self, file: &Path, dir: &Path, module: Module) {
        let text =
            std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let parsed = syn::parse_file(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        self.items(&parsed.items, dir, module);
    }

    fn items(&mut self, items: &[syn::Item], dir: &Path, module: Module) {
        let mut paths = Paths::default();
        let mut children = BTreeSet::new();
        for item in items {
            if is_test_only(attrs(item)) {
                continue;
            }
            let syn::Item::Mod(child) = item else {
                paths.visit_item(item);
                continue;
            };
            let name = child.ident.to_string();
            children.insert(name.clone());
            let mut child_module = module.clone();
            child_module.push(name.clone());
            let child_dir = dir.join(&name);
            match &child.content {
                Some((_, inner)) => self.items(inner, &child_dir, child_module),
                None => {
                    let flat = dir.join(format!("{name}.rs"));
                    let file = if flat.exists() {
                        flat
                    } else {
                        child_dir.join("mod.rs")
                    };
                    self.file(&file, &child_dir, child_module);
                }
            }
        }
        let named = paths
            .0
            .into_iter()
            .filter_map(|path| absolute(&module, &children, path))
            .collect();
        self.modules.insert(module, named);
    }

    /// The module that `path` (named in `module`) points into: its longest module prefix.
    fn target(&self, path: &[String]) -> Option<Module> {
        (1..=path.len())
            .rev()
            .map(|k| path[..k].to_vec())
            .find(|m| self.modules.contains_key(m))
    }

    /// For each folder, its sub-modules' imports of one another (with one path that
    /// makes each edge, for the message).
    fn sibling_edges(&self) -> BTreeMap<Module, BTreeMap<(String, String), String>> {
        let mut folders: BTreeMap<Module, BTreeMap<(String, String), String>> = BTreeMap::new();
        for (from, paths) in &self.modules {
            for path in paths {
                let Some(to) = self.target(path) else {
                    continue;
                };
                let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
                // An ancestor or a descendant: not an edge between siblings.
                if common == from.len() || common == to.len() {
                    continue;
                }
                folders
                    .entry(from[..common].to_vec())
                    .or_default()
                    .entry((from[common].clone(), to[common].clone()))
                    .or_insert_with(|| format!("{} names {}", from.join("::"), path.join("::")));
            }
        }
        folders
    }
}

/// `path` as named from `module`, from `crate` on; `None` for what is not the crate's
/// (std, dependencies, local items, generic parameters).
fn absolute(
    module: &Module,
    children: &BTreeSet<String>,
    path: Vec<String>,
) -> Option<Vec<String>> {
    let first = path.first()?;
    let mut abs = module.clone();
    let mut rest = path.as_slice();
    match first.as_str() {
        "crate" => return Some(path),
        "self" => rest = &rest[1..],
        "super" => {
            while rest.first().is_some_and(|p| p == "super") {
                abs.pop();
                rest = &rest[1..];
            }
        }
        child if children.contains(child) => {}
        _ => return None,
    }
    abs.extend(rest.iter().cloned());
    Some(abs)
}

/// A circle among `edges`, as the names around it, if there is one.
fn circle(edges: &BTreeMap<(String, String), String>) -> Option<Vec<String>> {
    let mut next: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (from, to) in edges.keys() {
        next.entry(from).or_default().push(to);
    }
    // Depth-first from each start, along paths that do not repeat a module.
    fn walk<'a>(
        next: &BTreeMap<&'a str, Vec<&'a str>>,
        path: &mut Vec<&'a str>,
    ) -> Option<Vec<String>> {
        let here = *path.last()?;
        for &to in next.get(here).into_iter().flatten() {
            if to == path[0] {
                let mut around: Vec<String> = path.iter().map(|s| s.to_string()).collect();
                around.push(to.to_owned());
                return Some(around);
            }
            if !path.contains(&to) {
                path.push(to);
                if let Some(found) = walk(next, path) {
                    return Some(found);
                }
                path.pop();
            }
        }
        None
    }
    next.keys().find_map(|&start| walk(&next, &mut vec![start]))
}

fn library() -> Library {
    Library::read(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src"))
}

#[test]
fn no_folder_of_the_library_has_an_import_circle() {
    let library = library();
    let modules: Vec<String> = library.modules.keys().map(|m| m.join("::")).collect();
    // The graph was read, down to the folders the rule was written for.
    for expected in [
        "crate::production::child::reap",
        "crate::socket::notify::kqueue",
        "crate::visible::observe",
    ] {
        assert!(
            modules.iter().any(|m| m == expected),
            "{expected} not read: {modules:?}"
        );
    }
    let mut circles = Vec::new();
    for (folder, edges) in library.sibling_edges() {
        if let Some(around) = circle(&edges) {
            let because: Vec<&str> = around
                .windows(2)
                .map(|pair| edges[&(pair[0].clone(), pair[1].clone())].as_str())
                .collect();
            circles.push(format!(
                "in {}: {} ({})",
                folder.join("::"),
                around.join(" → "),
                because.join("; ")
            ));
        }
    }
    assert!(
        circles.is_empty(),
        "import circles:\n{}",
        circles.join("\n")
    );
}

#[test]
fn a_circle_is_found_when_there_is_one() {
    let edges: BTreeMap<(String, String), String> =
        [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")]
            .into_iter()
            .map(|(f, t)| ((f.to_owned(), t.to_owned()), String::new()))
            .collect();
    assert_eq!(circle(&edges).expect("a circle").join(" "), "a b c a");
    let mut one_way = edges;
    one_way.remove(&("c".to_owned(), "a".to_owned()));
    assert_eq!(circle(&one_way), None);
}

#[test]
fn uses_are_read_through_groups_renames_and_relative_paths() {
    let module: Module = vec!["crate".into(), "a".into(), "b".into()];
    let children = BTreeSet::from(["kid".to_owned()]);
    let parsed: syn::File = syn::parse_quote! {
        use super::{x::{self, One, Two as Three}, *};
        use kid::Thing;
        use std::io;
        fn f() { crate::top::call(); }
    };
    let mut paths = Paths::default();
    paths.visit_file(&parsed);
    let named: Vec<String> = paths
        .0
        .into_iter()
        .filter_map(|p| absolute(&module, &children, p))
        .map(|p| p.join("::"))
        .collect();
    assert_eq!(
        named,
        [
            "crate::a::x",
            "crate::a::x::One",
            "crate::a::x::Two",
            "crate::a",
            "crate::a::b::kid::Thing",
            "crate::top::call"
        ]
    );
}
