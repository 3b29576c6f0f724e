//! The crate's layout keeps its shape (issue #12): no two top-level modules import each other,
//! even through others; the client side never reaches into the server double; the double only
//! uses the wire (`api`) and secrets; the wire depends on nothing of the crate.
//!
//! Read from the sources: every `crate::MODULE` path outside comments and test modules counts.
//!
//! Every line of Rust under src/, tests/ and benches/ also fits in 100 columns, the width rustfmt
//! keeps code to but cannot impose on string literals, attributes, macro arguments or comments.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top-level module → the top-level modules its code names.
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(&src).unwrap();
            let top = rel
                .components()
                .next()
                .unwrap()
                .as_os_str()
                .to_string_lossy()
                .trim_end_matches(".rs")
                .to_owned();
            if top == "lib" || top == "main" {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            // Unit tests may reach anywhere; the shape is about the code they test.
            let code = text.split("#[cfg(test)]\nmod tests").next().unwrap_or_default();
            let names = graph.entry(top.clone()).or_default();
            for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
                for (at, _) in line.match_indices("crate::") {
                    let name: String = line[at + 7..]
                        .chars()
                        .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                        .collect();
                    if !name.is_empty() && name != top {
                        names.insert(name);
                    }
                }
            }
        }
    }
    graph
}

/// The modules `from` reaches, itself excluded unless through a circle.
fn reachable(graph: &BTreeMap<String, BTreeSet<String>>, from: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo: Vec<&str> = graph.get(from).into_iter().flatten().map(String::as_str).collect();
    while let Some(m) = todo.pop() {
        if seen.insert(m.to_owned()) {
            todo.extend(graph.get(m).into_iter().flatten().map(String::as_str));
        }
    }
    seen
}

#[test]
fn issue_12_no_module_imports_itself_through_others() {
    let graph = imports();
    assert!(graph.len() > 10, "the sources were read: {graph:?}");
    let circles: Vec<String> = graph
        .keys()
        .filter(|m| reachable(&graph, m).contains(*m))
        .map(|m| format!("{m} -> {}", graph[m].iter().cloned().collect::<Vec<_>>().join(" ")))
        .collect();
    assert!(circles.is_empty(), "modules in an import circle:\n{}", circles.join("\n"));
}

#[test]
fn issue_12_the_client_never_reaches_the_server_double() {
    let graph = imports();
    // The command line (`cli`, `bounds`, `config`, `commands`) declares and starts the server
    // too; everything below it is the product, and never touches the double.
    let client_side = [
        "api",
        "client",
        "engine",
        "manifest",
        "chunk",
        "journal",
        "limit",
        "retry",
        "shard",
        "output",
        "secret",
        "excerpt",
        "leftovers",
    ];
    for m in client_side {
        let reach = reachable(&graph, m);
        assert!(!reach.contains("server"), "`{m}` reaches the server double: {reach:?}");
    }
    let server = reachable(&graph, "server");
    assert!(
        server.iter().all(|m| m == "api" || m == "secret"),
        "the server double uses only the wire and secrets: {server:?}"
    );
    assert!(
        reachable(&graph, "api").is_empty(),
        "the wire depends on nothing of the crate: {:?}",
        graph["api"]
    );
}

/// The widest a source line may be, in characters; rustfmt.toml's `max_width`.
const MAX_WIDTH: usize = 100;

#[test]
fn every_source_line_fits_in_100_columns() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let rustfmt = std::fs::read_to_string(root.join("rustfmt.toml")).unwrap();
    assert!(
        rustfmt.lines().any(|l| l.replace(' ', "") == format!("max_width={MAX_WIDTH}")),
        "rustfmt.toml sets max_width = {MAX_WIDTH}:\n{rustfmt}"
    );
    let mut files = 0;
    let mut long = Vec::new();
    let mut stack: Vec<_> = ["src", "tests", "benches"].iter().map(|d| root.join(d)).collect();
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            files += 1;
            let text = std::fs::read_to_string(&path).unwrap();
            for (n, line) in text.lines().enumerate() {
                let width = line.chars().count();
                if width > MAX_WIDTH {
                    let rel = path.strip_prefix(root).unwrap().display();
                    long.push(format!("{rel}:{}: {width} characters", n + 1));
                }
            }
        }
    }
    assert!(files > 50, "the sources were read: {files} files");
    long.sort();
    assert!(long.is_empty(), "lines over {MAX_WIDTH} characters:\n{}", long.join("\n"));
}
