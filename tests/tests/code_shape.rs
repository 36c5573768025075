//! The code's shape, as a newcomer meets it: no file imports from a file that imports it back
//! (directly or around a circle), and no runtime function is longer than a screen.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use emoedge_tests::workspace_root;

/// The crates whose `src/` is checked for import circles.
const CRATES: [&str; 11] = [
    "support",
    "models",
    "plot",
    "trainer",
    "exporter",
    "runtime/inference",
    "runtime/vision",
    "runtime/publish",
    "runtime/plugin",
    "runtime/cli",
    "tests",
];

/// The longest a runtime function may be (lines from its `fn` to its closing brace).
const MAX_FUNCTION_LINES: usize = 80;

fn rust_files(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}

/// A file's code before its `#[cfg(test)]` module, comment lines left out.
fn code(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .take_while(|l| l.trim() != "#[cfg(test)]")
        .filter(|l| !l.trim_start().starts_with("//"))
        .map(str::to_string)
        .collect()
}

/// The module path of a file below `src` (`a/b.rs` and `a/b/mod.rs` are `a::b`; the root is empty).
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let relative = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = relative.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib" | "main")) {
        parts.pop();
    }
    parts
}

/// The module paths a line names: after `crate::` or `super::` (`crate::{a, b::c}` names both),
/// and `use child::…` of a module declared in this file. A re-export (`pub use`) is the
/// module's public face, not something it uses: it names nothing.
fn named_paths(line: &str, here: &[String]) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    if line.trim_start().starts_with("pub") && line.contains(" use ") {
        return found;
    }
    for (at, _) in line.match_indices("crate::").chain(line.match_indices("super::")) {
        if line[..at].chars().last().is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let mut rest = &line[at..];
        let mut base = here.to_vec();
        if let Some(after) = rest.strip_prefix("crate::") {
            (base, rest) = (Vec::new(), after);
        }
        while let Some(after) = rest.strip_prefix("super::") {
            base.pop();
            rest = after;
        }
        match rest.strip_prefix('{') {
            Some(group) => {
                let inner = &group[..group.find('}').unwrap_or(group.len())];
                found.extend(inner.split(',').map(|item| [base.clone(), segments(item.trim())].concat()));
            }
            None => found.push([base, segments(rest)].concat()),
        }
    }
    if let Some(path) =
        line.trim_start().strip_prefix("use ").filter(|p| !p.starts_with("crate::") && !p.starts_with("super::"))
    {
        found.push([here.to_vec(), segments(path)].concat());
    }
    found
}

/// The leading module path of `path` (lower-case segments up to a type, a call or the end).
fn segments(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    for piece in path.split("::") {
        let name: String = piece.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        if !name.starts_with(|c: char| c.is_lowercase() || c == '_') || name == "self" {
            break;
        }
        let whole = name.len() == piece.len();
        out.push(name);
        if !whole {
            break;
        }
    }
    out
}

/// Each file's imports of other files of its crate (by the longest module path that is a file).
fn import_graph(src: &Path) -> BTreeMap<PathBuf, BTreeSet<PathBuf>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let modules: BTreeMap<Vec<String>, PathBuf> = files.iter().map(|f| (module_of(src, f), f.clone())).collect();
    let mut graph = BTreeMap::new();
    for file in &files {
        let here = module_of(src, file);
        let mut targets = BTreeSet::new();
        for line in code(file) {
            for mut path in named_paths(&line, &here) {
                // `use name::…` of a crate from outside names no file here: only the
                // crate-relative forms and declared children count.
                while !modules.contains_key(&path) && !path.is_empty() {
                    path.pop();
                }
                if let Some(target) = modules.get(&path).filter(|t| *t != file) {
                    targets.insert(target.clone());
                }
            }
        }
        graph.insert(file.clone(), targets);
    }
    graph
}

/// A circle through `from`, if there is one: the files around it.
fn circle(graph: &BTreeMap<PathBuf, BTreeSet<PathBuf>>, from: &Path) -> Option<Vec<PathBuf>> {
    let mut stack = vec![(from.to_path_buf(), vec![from.to_path_buf()])];
    let mut seen = BTreeSet::new();
    while let Some((file, path)) = stack.pop() {
        for next in graph.get(&file).into_iter().flatten() {
            if next == from {
                return Some(path);
            }
            if seen.insert(next.clone()) {
                stack.push((next.clone(), [path.clone(), vec![next.clone()]].concat()));
            }
        }
    }
    None
}

#[test]
fn no_file_imports_from_a_file_that_imports_it_back() {
    let root = workspace_root();
    let (mut circles, mut files) = (Vec::new(), 0);
    for krate in CRATES {
        let src = root.join(krate).join("src");
        let graph = import_graph(&src);
        files += graph.len();
        for file in graph.keys() {
            if let Some(around) = circle(&graph, file) {
                let names: Vec<String> =
                    around.iter().map(|f| f.strip_prefix(&root).unwrap().display().to_string()).collect();
                circles.push(names.join(" → "));
            }
        }
    }
    assert!(files > 100, "the scan found the crates' files ({files})");
    assert!(circles.is_empty(), "import circles:\n{}", circles.join("\n"));
}

#[test]
fn the_scan_sees_an_import_circle() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    std::fs::create_dir(dir.path().join("b")).unwrap();
    write("main.rs", "mod a;\nmod b;\nuse std::fmt;\n");
    write("a.rs", "use crate::b::Thing;\n");
    write("b/mod.rs", "mod c;\npub use c::Y;\nuse c::Z;\n");
    write("b/c.rs", "fn f() { crate::a::g(); super::super::x(); }\n");
    let file = |name: &str| dir.path().join(name);
    let graph = import_graph(dir.path());
    assert_eq!(graph[&file("b/c.rs")], [file("a.rs"), file("main.rs")].into(), "{graph:?}");
    assert_eq!(graph[&file("b/mod.rs")], [file("b/c.rs")].into());
    assert!(graph[&file("main.rs")].is_empty(), "std is not a module of the crate");
    // c → a → b → c
    assert!(circle(&graph, &file("a.rs")).is_some());
    write("b/c.rs", "use crate::{b, main};\n");
    write("b/mod.rs", "mod c;\npub use c::Y;\n");
    let graph = import_graph(dir.path());
    assert!(circle(&graph, &file("b/c.rs")).is_none(), "a re-export is no import: {graph:?}");
    write("b/mod.rs", "mod c;\nfn f() -> c::Z { c::Z }\nuse c::Z;\n");
    let graph = import_graph(dir.path());
    assert!(circle(&graph, &file("a.rs")).is_none(), "{graph:?}");
    assert!(circle(&graph, &file("b/c.rs")).is_some(), "b ↔ c");
}

/// Functions of `file` (before its tests) longer than `limit` lines: (name, lines).
fn long_functions(file: &Path, limit: usize) -> Vec<(String, usize)> {
    let lines = code(file);
    let mut long = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(name) = function_name(line) else { continue };
        let (mut depth, mut opened) = (0i64, false);
        for (j, l) in lines[i..].iter().enumerate() {
            for c in l.chars() {
                match c {
                    '{' => (depth, opened) = (depth + 1, true),
                    '}' => depth -= 1,
                    _ => {}
                }
            }
            if (opened && depth <= 0) || (!opened && l.trim_end().ends_with(';')) {
                if j + 1 > limit {
                    long.push((name, j + 1));
                }
                break;
            }
        }
    }
    long
}

fn function_name(line: &str) -> Option<String> {
    let mut words =
        line.split_whitespace().skip_while(|w| w.starts_with("pub") || ["const", "async", "unsafe"].contains(w));
    (words.next()? == "fn")
        .then(|| words.next().map(|w| w.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect()))?
}

#[test]
fn no_runtime_function_is_longer_than_a_screen() {
    let root = workspace_root();
    let mut files = Vec::new();
    rust_files(&root.join("runtime"), &mut files);
    let mut long = Vec::new();
    for file in files.iter().filter(|f| f.components().any(|c| c.as_os_str() == "src")) {
        // A module of tests (`x/tests.rs`) is a test, not runtime code.
        if file.file_name().is_some_and(|n| n == "tests.rs") {
            continue;
        }
        for (name, lines) in long_functions(file, MAX_FUNCTION_LINES) {
            long.push(format!("{} fn {name}: {lines} lines", file.strip_prefix(&root).unwrap().display()));
        }
    }
    assert!(files.len() > 40, "the scan found the runtime's files");
    assert!(long.is_empty(), "longer than {MAX_FUNCTION_LINES} lines:\n{}", long.join("\n"));
}

#[test]
fn the_scan_sees_a_long_function() {
    let dir = tempfile::tempdir().unwrap();
    let body = "    let x = 1;\n".repeat(90);
    let text = format!("pub(crate) fn short() {{}}\n\nfn long() {{\n{body}}}\n\nstruct S;\n");
    let file = dir.path().join("x.rs");
    std::fs::write(&file, text).unwrap();
    assert_eq!(long_functions(&file, MAX_FUNCTION_LINES), [("long".to_string(), 92)]);
}
