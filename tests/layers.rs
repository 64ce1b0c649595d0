//! The crate docs' "Layout" says the arrows point one way. This test makes
//! it true between modules: it reads the library's sources, draws an arrow
//! from a module to every module whose items it names (`crate::…` and
//! `super::…` paths, outside comments and unit tests), and fails on a cycle,
//! naming it. Top-level modules are compared with each other, and so are
//! the files of one folder. A path through a folder's `mod.rs` (its
//! re-exports) counts as an arrow to the folder.
//!
//! Run it alone with `cargo test --test layers`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Module path (`["runtime", "lockstep"]`) → the source without comments
/// and without its `#[cfg(test)] mod tests`.
fn library_modules() -> BTreeMap<Vec<String>, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut modules = BTreeMap::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let rel = path.strip_prefix(&root).unwrap().with_extension("");
            let mut name: Vec<String> = rel
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect();
            if name.last().is_some_and(|n| n == "mod") {
                name.pop();
            }
            // The binary is above every layer.
            if matches!(name[0].as_str(), "lib" | "main" | "cli") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let code: Vec<&str> = text
                .lines()
                .take_while(|l| !l.trim_start().starts_with("mod tests"))
                .map(|l| l.find("//").map_or(l, |i| &l[..i]))
                .collect();
            modules.insert(name, code.join("\n"));
        }
    }
    modules
}

/// Every module path a source names: `crate::a::b` and `super::c`, with
/// the members of a braced group (`crate::{a, b::c}`).
fn named_paths(me: &[String], code: &str) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    for (prefix, base) in [
        ("crate::", Vec::new()),
        ("super::", me[..me.len() - 1].to_vec()),
    ] {
        let mut rest = code;
        while let Some(i) = rest.find(prefix) {
            rest = &rest[i + prefix.len()..];
            let group = if let Some(inner) = rest.strip_prefix('{') {
                inner[..inner.find('}').unwrap_or(inner.len())]
                    .split(',')
                    .collect()
            } else {
                vec![rest]
            };
            for item in group {
                let path: Vec<String> = item
                    .trim()
                    .split("::")
                    .map(|s| {
                        s.chars()
                            .take_while(|c| c.is_alphanumeric() || *c == '_')
                            .collect()
                    })
                    .take_while(|s: &String| !s.is_empty())
                    .collect();
                found.push(base.iter().cloned().chain(path).collect());
            }
        }
    }
    found
}

#[test]
fn no_module_imports_a_module_that_imports_it_back() {
    let modules = library_modules();
    let known: BTreeSet<&Vec<String>> = modules.keys().collect();
    // Arrows between top-level modules, and between files of one folder.
    let mut arrows: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for (me, code) in &modules {
        for path in named_paths(me, code) {
            // The longest prefix of the path that is a module.
            let Some(target) = (1..=path.len())
                .rev()
                .map(|n| path[..n].to_vec())
                .find(|p| known.contains(p))
            else {
                continue;
            };
            let shared = me.iter().zip(&target).take_while(|(a, b)| a == b).count();
            if shared == me.len() || shared == target.len() {
                continue; // itself, an ancestor's re-exports, or a child
            }
            arrows
                .entry(me[..=shared].to_vec())
                .or_default()
                .insert(target[..=shared].to_vec());
        }
    }
    assert!(
        arrows.contains_key(&vec!["runtime".to_string()]),
        "the scan found no arrows: {arrows:?}"
    );
    // Depth-first search; a node on the stack reached again closes a cycle.
    fn visit(
        node: &Vec<String>,
        arrows: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        stack: &mut Vec<Vec<String>>,
        done: &mut BTreeSet<Vec<String>>,
    ) -> Option<Vec<Vec<String>>> {
        if let Some(i) = stack.iter().position(|n| n == node) {
            return Some(stack[i..].iter().chain([node]).cloned().collect());
        }
        if !done.insert(node.clone()) {
            return None;
        }
        stack.push(node.clone());
        for next in arrows.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, arrows, stack, done) {
                return Some(cycle);
            }
        }
        stack.pop();
        None
    }
    let mut done = BTreeSet::new();
    for node in arrows.keys() {
        if let Some(cycle) = visit(node, &arrows, &mut Vec::new(), &mut done) {
            let names: Vec<String> = cycle.iter().map(|m| m.join("::")).collect();
            panic!("an import cycle: {}", names.join(" → "));
        }
    }
}
