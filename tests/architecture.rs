//! The layering of `ARCHITECTURE.md`, checked: every module of `src/` has a row in its
//! table "What may import what", imports only what its row lists, and no two rows import
//! each other, directly or around a loop.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    unreachable_pub,
    reason = "a test: a failed unwrap is a failed test, and its helpers are its own"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A row's module and what it may import.
type Rules = BTreeMap<String, BTreeSet<String>>;

/// The table of `ARCHITECTURE.md` under "What may import what".
fn rules(doc: &str) -> Rules {
    let section = doc
        .split("## What may import what")
        .nth(1)
        .expect("ARCHITECTURE.md has a section \"What may import what\"");
    let mut rules = Rules::new();
    for line in section.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        let [module, allowed] = cells[..] else {
            panic!("a row of two cells: {line}");
        };
        let names = |cell: &str| -> BTreeSet<String> {
            cell.split(',')
                .map(|n| n.trim().trim_matches('`').to_owned())
                .filter(|n| !n.is_empty() && n != "—")
                .collect()
        };
        let module = names(module).into_iter().next().expect("a module name");
        assert!(
            rules.insert(module.clone(), names(allowed)).is_none(),
            "{module} has two rows"
        );
    }
    assert!(!rules.is_empty(), "the table has rows");
    rules
}

/// The module a file of `src/` is: `src/a/b.rs` and `src/a/b/mod.rs` are `a::b`.
fn module_of(path: &Path) -> String {
    let rel = path.strip_prefix("src").expect("a file under src/");
    let mut parts: Vec<String> = rel
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts.join("::")
}

/// The source without comments, string literals and the test module (which clippy
/// keeps last in its file).
fn code(source: &str) -> String {
    let source = source.split("#[cfg(test)]").next().unwrap_or(source);
    let mut out = String::with_capacity(source.len());
    let mut chars = source.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                let mut last = ' ';
                for c in chars.by_ref() {
                    if last == '*' && c == '/' {
                        break;
                    }
                    last = c;
                }
            }
            '"' => {
                let mut escaped = false;
                for c in chars.by_ref() {
                    if !escaped && c == '"' {
                        break;
                    }
                    escaped = !escaped && c == '\\';
                }
                out.push_str("\"\"");
            }
            // a char literal such as '"' or '{', kept apart from a lifetime such as 'a
            '\'' => {
                let rest: String = chars.clone().take(3).collect();
                let len = if rest.starts_with('\\') {
                    rest.find('\'').map(|i| i + 1)
                } else if rest.chars().nth(1) == Some('\'') {
                    Some(2)
                } else {
                    None
                };
                match len {
                    Some(n) => {
                        for _ in 0..n {
                            chars.next();
                        }
                        out.push_str("' '");
                    }
                    None => out.push('\''),
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// Every module path the code names from the crate root, `super` resolved: for
/// `crate::a::{b::C, d}` both `a::b::C` and `a::d`.
fn named_paths(module: &str, code: &str) -> Vec<String> {
    let mut found = Vec::new();
    let bytes = code.as_bytes();
    for start in ["crate::", "super::"] {
        let mut from = 0;
        while let Some(i) = code[from..].find(start) {
            let at = from + i;
            from = at + start.len();
            if at > 0 && (bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_') {
                continue;
            }
            let base = if start == "super::" {
                let mut parts: Vec<&str> = module.split("::").collect();
                let mut rest = &code[at..];
                while let Some(r) = rest.strip_prefix("super::") {
                    parts.pop();
                    rest = r;
                }
                from = code.len() - rest.len();
                parts.join("::")
            } else {
                String::new()
            };
            for path in expand(&code[from..]) {
                found.push(if base.is_empty() {
                    path
                } else {
                    format!("{base}::{path}")
                });
            }
        }
    }
    found
}

/// The paths at the start of `text`: `a::b::c`, or each item of `a::{b, c::{d}}`.
fn expand(text: &str) -> Vec<String> {
    let mut path = String::new();
    let mut rest = text;
    loop {
        let ident: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        rest = &rest[ident.len()..];
        if !ident.is_empty() {
            if !path.is_empty() {
                path.push_str("::");
            }
            path.push_str(&ident);
        }
        if path.is_empty() || rest.starts_with("::") {
            rest = rest.strip_prefix("::").unwrap_or(rest);
            if let Some(r) = rest.strip_prefix('{') {
                let mut depth = 1;
                let end = r
                    .char_indices()
                    .find(|(_, c)| {
                        match c {
                            '{' => depth += 1,
                            '}' => depth -= 1,
                            _ => {}
                        }
                        depth == 0
                    })
                    .map_or(r.len(), |(i, _)| i);
                let inner = &r[..end];
                let mut items = Vec::new();
                let (mut depth, mut last) = (0, 0);
                for (i, c) in inner.char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' => depth -= 1,
                        ',' if depth == 0 => {
                            items.push(&inner[last..i]);
                            last = i + 1;
                        }
                        _ => {}
                    }
                }
                items.push(&inner[last..]);
                return items
                    .iter()
                    .map(|i| i.trim())
                    .filter(|i| !i.is_empty())
                    .flat_map(expand)
                    .map(|p| match p.as_str() {
                        "self" => path.clone(),
                        _ if path.is_empty() => p,
                        _ => format!("{path}::{p}"),
                    })
                    .collect();
            }
            if ident.is_empty() {
                return vec![path];
            }
            continue;
        }
        return vec![path];
    }
}

/// The row a module path falls under: the longest row that is it or holds it.
fn row_of<'a>(rules: &'a Rules, path: &str) -> Option<&'a str> {
    rules
        .keys()
        .filter(|row| path == row.as_str() || path.starts_with(&format!("{row}::")))
        .max_by_key(|row| row.len())
        .map(String::as_str)
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src/ is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Each row's imports of other rows, with the file and path that shows each.
type Imports = BTreeMap<String, BTreeMap<String, (String, String)>>;

/// What the sources import, row by row; the files whose module has no row.
fn imports(rules: &Rules, files: &[(String, String)]) -> (Imports, Vec<String>) {
    let mut graph = Imports::new();
    let mut unplaced = Vec::new();
    for (module, source) in files {
        if module.is_empty() || module == "lib" || module == "main" {
            continue;
        }
        let Some(from) = row_of(rules, module) else {
            unplaced.push(module.clone());
            continue;
        };
        for path in named_paths(module, &code(source)) {
            if let Some(to) = row_of(rules, &path)
                && to != from
            {
                graph
                    .entry(from.to_owned())
                    .or_default()
                    .entry(to.to_owned())
                    .or_insert_with(|| (module.clone(), path.clone()));
            }
        }
    }
    (graph, unplaced)
}

/// Imports the rules do not allow, each said as the line of a failure.
fn forbidden(rules: &Rules, graph: &Imports) -> Vec<String> {
    let mut out = Vec::new();
    for (from, tos) in graph {
        for (to, (module, path)) in tos {
            if !rules[from].contains(to) {
                out.push(format!(
                    "{module} imports crate::{path}: `{from}` may not import `{to}`"
                ));
            }
        }
    }
    out
}

/// A loop of rows importing each other, if there is one.
fn a_cycle(graph: &Imports) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &Imports,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|n| n == node) {
            let mut cycle = path[i..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if !done.insert(node.to_owned()) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flat_map(BTreeMap::keys) {
            if let Some(c) = visit(next, graph, path, done) {
                return Some(c);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|n| visit(n, graph, &mut Vec::new(), &mut done))
}

#[test]
fn modules_import_only_what_architecture_md_allows() {
    let doc = std::fs::read_to_string("ARCHITECTURE.md").expect("ARCHITECTURE.md at the root");
    let rules = rules(&doc);
    for (row, allowed) in &rules {
        for a in allowed {
            assert!(
                rules.contains_key(a),
                "{row} may import {a}, which has no row"
            );
        }
    }
    let mut paths = Vec::new();
    sources(Path::new("src"), &mut paths);
    let files: Vec<(String, String)> = paths
        .iter()
        .map(|p| {
            (
                module_of(p),
                std::fs::read_to_string(p).expect("readable source"),
            )
        })
        .collect();
    assert!(files.len() > 40, "the sources were found");
    let (graph, unplaced) = imports(&rules, &files);
    assert!(
        unplaced.is_empty(),
        "modules without a row in ARCHITECTURE.md: {unplaced:?}"
    );
    let bad = forbidden(&rules, &graph);
    assert!(bad.is_empty(), "forbidden imports:\n{}", bad.join("\n"));
    if let Some(cycle) = a_cycle(&graph) {
        panic!("modules import each other: {}", cycle.join(" → "));
    }
}

#[test]
fn the_check_sees_every_way_to_name_a_module() {
    let rules = rules(
        "## What may import what\n\
         | `a` | — |\n\
         | `b` | `a` |\n\
         | `b::c` | `a` |\n\
         | `d` | `b` |\n",
    );
    let file = |m: &str, s: &str| (m.to_owned(), s.to_owned());
    let clean = [
        file("a", "fn f() {}"),
        file("b", "use crate::a::X;\nuse self::inner::Y;"),
        file("b::c", "use super::super::a::Z;"),
        file(
            "d",
            "// crate::a::hidden\nconst S: &str = \"crate::a::quoted\";\nuse crate::b;",
        ),
    ];
    let (graph, unplaced) = imports(&rules, &clean);
    assert!(unplaced.is_empty());
    assert_eq!(forbidden(&rules, &graph), Vec::<String>::new());
    assert!(a_cycle(&graph).is_none());
    // a submodule with a row of its own reaches its parent through `super`
    let (graph, _) = imports(&rules, &[file("b::c", "use super::Q;")]);
    assert_eq!(
        forbidden(&rules, &graph),
        ["b::c imports crate::b::Q: `b::c` may not import `b`"]
    );
    for bad in [
        "use crate::d::X;",
        "use crate::{a, d::{X, Y}};",
        "fn f() { crate::d::g() }",
        "use crate::{self as root, d};",
    ] {
        let (graph, _) = imports(&rules, &[file("a", bad)]);
        let refused = forbidden(&rules, &graph);
        assert_eq!(refused.len(), 1, "{bad}: {refused:?}");
        assert!(refused[0].contains("`a` may not import `d`"), "{refused:?}");
    }
    let looped = [file("a", "use crate::b::X;"), file("b", "use crate::a::Y;")];
    let (graph, _) = imports(&rules, &looped);
    assert_eq!(a_cycle(&graph).unwrap(), ["a", "b", "a"]);
    let (_, unplaced) = imports(&rules, &[file("e", "fn f() {}")]);
    assert_eq!(unplaced, ["e"]);
}
