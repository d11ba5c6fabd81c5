//! The library's modules form a layered graph with no cycle (the layers are drawn in
//! docs/ARCHITECTURE.md, "Module layers"). A module's dependencies are the `crate::name` paths in
//! its code (comments left out), including `use crate::{a, b}` lists; a directory module counts as
//! one, with every file under it.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

fn code_of(path: &Path, out: &mut String) {
    if path.is_dir() {
        let mut entries: Vec<_> = fs::read_dir(path)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for e in entries {
            code_of(&e, out);
        }
    } else if path.extension().is_some_and(|x| x == "rs") {
        for line in fs::read_to_string(path).unwrap().lines() {
            let t = line.trim_start();
            if !t.starts_with("//") {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The `crate::name` and `use crate::{a, b::c}` names in `code`.
fn deps_in(code: &str) -> BTreeSet<String> {
    let mut deps = BTreeSet::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        let before_ok = rest[..i].chars().next_back().is_none_or(|c| !is_ident(c));
        rest = &rest[i + "crate::".len()..];
        if !before_ok {
            continue;
        }
        if let Some(list) = rest.strip_prefix('{') {
            let end = list.find('}').unwrap_or(list.len());
            for item in list[..end].split(',') {
                let name: String = item.trim().chars().take_while(|c| is_ident(*c)).collect();
                if !name.is_empty() {
                    deps.insert(name);
                }
            }
        } else {
            let name: String = rest.chars().take_while(|c| is_ident(*c)).collect();
            if !name.is_empty() {
                deps.insert(name);
            }
        }
    }
    deps
}

#[test]
fn modules_form_a_layered_graph_without_cycles() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut modules = BTreeMap::new();
    for e in fs::read_dir(&src).unwrap() {
        let path = e.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        let is_module = if path.is_dir() {
            path.join("mod.rs").exists()
        } else {
            path.extension().is_some_and(|x| x == "rs") && name != "lib" && name != "main"
        };
        if is_module {
            let mut code = String::new();
            code_of(&path, &mut code);
            modules.insert(name, code);
        }
    }
    assert!(modules.contains_key("sync") && modules.contains_key("fork"));
    let names: BTreeSet<String> = modules.keys().cloned().collect();
    let graph: BTreeMap<String, BTreeSet<String>> = modules
        .iter()
        .map(|(m, code)| {
            let d = deps_in(code)
                .into_iter()
                .filter(|d| d != m && names.contains(d))
                .collect();
            (m.clone(), d)
        })
        .collect();

    // Peel off layers from the bottom: modules whose dependencies are all placed already.
    let mut placed: BTreeSet<String> = BTreeSet::new();
    let mut layers: Vec<Vec<String>> = Vec::new();
    while placed.len() < graph.len() {
        let layer: Vec<String> = graph
            .iter()
            .filter(|(m, d)| !placed.contains(*m) && d.iter().all(|x| placed.contains(x)))
            .map(|(m, _)| m.clone())
            .collect();
        if layer.is_empty() {
            let left: BTreeMap<_, _> = graph
                .iter()
                .filter(|(m, _)| !placed.contains(*m))
                .map(|(m, d)| {
                    (
                        m,
                        d.iter()
                            .filter(|x| !placed.contains(*x))
                            .collect::<Vec<_>>(),
                    )
                })
                .collect();
            panic!("module cycle among: {left:#?}");
        }
        placed.extend(layer.iter().cloned());
        layers.push(layer);
    }
    // The leaves that the fork design relies on depend on nothing in the crate.
    for leaf in ["sync", "memlock", "error", "alloc"] {
        if let Some(d) = graph.get(leaf) {
            assert!(d.is_empty(), "{leaf} must be a leaf, uses {d:?}");
        }
    }
    // The coordinator is above what it orders, and none of them reaches back to it.
    for m in graph.keys() {
        if m != "fork" {
            assert!(
                !graph[m].contains("fork"),
                "{m} calls into the fork coordinator"
            );
        }
    }
    for (i, layer) in layers.iter().enumerate().rev() {
        println!("layer {}: {}", layers.len() - i, layer.join(" "));
    }
}
