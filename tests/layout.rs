//! The workspace keeps its shape (issues #12 and #23), read from the sources and from cargo's own
//! account of the crates:
//! - the contract (`avbatch-api`) and the flag syntax (`avbatch-syntax`) depend on no crate of
//!   ours; the product (`avbatch-core`) on the contract alone, the double (`avbatch-serve`) on
//!   the contract and the flag syntax, so neither can shape the other;
//! - within each crate, no two modules import each other, even through others;
//! - a function fits in 100 lines and a file in 800, tests aside: each is one idea a reader can
//!   hold;
//! - every line of Rust fits in 100 columns, the width rustfmt keeps code to but cannot impose on
//!   string literals, attributes, macro arguments or comments;
//! - only the binary writes to the terminal.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

/// The longest a function may be, in lines from its `fn` to its closing brace.
const MAX_FUNCTION_LINES: usize = 100;
/// The longest a source file may be, in lines before its unit tests.
const MAX_FILE_LINES: usize = 800;
/// The widest a source line may be, in characters; rustfmt.toml's `max_width`.
const MAX_WIDTH: usize = 100;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The source folders of the workspace's crates: the binary's and each library's.
fn crate_sources() -> Vec<(String, PathBuf)> {
    let mut crates = vec![("avbatch".to_owned(), root().join("src"))];
    for entry in std::fs::read_dir(root().join("crates")).unwrap() {
        let dir = entry.unwrap().path();
        let name = format!("avbatch-{}", dir.file_name().unwrap().to_string_lossy());
        crates.push((name, dir.join("src")));
    }
    crates.sort();
    crates
}

/// A file's code without its unit tests (which may reach anywhere, and run as long as they
/// need): what comes before `mod tests` under a `#[cfg(...)]` that names `test`. A file of
/// tests alone has none.
fn code_of(path: &Path, text: &str) -> String {
    if path.file_name().is_some_and(|n| n == "tests.rs") {
        return String::new();
    }
    let lines: Vec<&str> = text.lines().collect();
    let tests = lines.windows(2).position(|w| {
        w[0].starts_with("#[cfg(") && w[0].contains("test") && w[1].starts_with("mod tests")
    });
    let end = tests.unwrap_or(lines.len());
    lines[..end].iter().map(|l| format!("{l}\n")).collect()
}

fn relative(path: &Path) -> String {
    path.strip_prefix(root()).unwrap().display().to_string()
}

/// Top-level module of one crate → the top-level modules its code names (`crate::name`).
fn imports(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for path in rust_files(src) {
        let rel = path.strip_prefix(src).unwrap();
        let first = rel.components().next().unwrap().as_os_str().to_string_lossy();
        let top = first.trim_end_matches(".rs").to_owned();
        if top == "lib" || top == "main" {
            continue;
        }
        let code = code_of(&path, &std::fs::read_to_string(&path).unwrap());
        let names = graph.entry(top.clone()).or_default();
        for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
            for (at, _) in line.match_indices("crate::") {
                if line[..at].ends_with('$') || line[..at].ends_with(|c: char| c.is_alphanumeric())
                {
                    continue;
                }
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
fn no_module_imports_itself_through_others() {
    let mut modules = 0;
    let mut circles = Vec::new();
    for (name, src) in crate_sources() {
        let graph = imports(&src);
        modules += graph.len();
        for m in graph.keys().filter(|m| reachable(&graph, m).contains(*m)) {
            let names: Vec<&str> = graph[m].iter().map(String::as_str).collect();
            circles.push(format!("{name}: {m} -> {}", names.join(" ")));
        }
    }
    assert!(modules > 25, "the sources were read: {modules} modules");
    assert!(circles.is_empty(), "modules in an import circle:\n{}", circles.join("\n"));
}

/// Each workspace crate → the workspace crates it depends on (normal, dev or build), as cargo
/// reads the manifests.
fn crate_dependencies() -> BTreeMap<String, BTreeSet<String>> {
    let out = std::process::Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline", "--manifest-path"])
        .arg(root().join("Cargo.toml"))
        .output()
        .expect("cargo metadata runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let metadata: Value = serde_json::from_slice(&out.stdout).unwrap();
    let packages = metadata["packages"].as_array().unwrap();
    let ours: BTreeSet<&str> = packages.iter().map(|p| p["name"].as_str().unwrap()).collect();
    let mut deps = BTreeMap::new();
    for package in packages {
        let names = package["dependencies"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["name"].as_str().unwrap())
            .filter(|d| ours.contains(d))
            .map(str::to_owned)
            .collect();
        deps.insert(package["name"].as_str().unwrap().to_owned(), names);
    }
    deps
}

#[test]
fn the_product_and_the_double_meet_only_in_the_contract() {
    let deps = crate_dependencies();
    let names = |c: &str| -> Vec<&str> {
        let of = deps.get(c).unwrap_or_else(|| panic!("{c} in {deps:?}"));
        of.iter().map(|s| s.as_str()).collect()
    };
    assert_eq!(names("avbatch-api"), Vec::<&str>::new(), "the contract depends on none of ours");
    assert_eq!(names("avbatch-syntax"), Vec::<&str>::new(), "flag syntax depends on none of ours");
    assert_eq!(names("avbatch-core"), ["avbatch-api"], "the product depends on the contract only");
    assert_eq!(
        names("avbatch-serve"),
        ["avbatch-api", "avbatch-syntax"],
        "the double depends on the contract (and how its flags are written) only"
    );
    // The binary is the one place that wires them together.
    let all = ["avbatch-api", "avbatch-core", "avbatch-serve", "avbatch-syntax"];
    assert_eq!(names("avbatch"), all);
}

/// Where a function that starts at `lines[start]` ends: the line of its closing brace, at the
/// indentation of its `fn`. `None` for a declaration without a body.
fn function_end(lines: &[&str], start: usize) -> Option<usize> {
    let indent = &lines[start][..lines[start].len() - lines[start].trim_start().len()];
    for (i, line) in lines.iter().enumerate().skip(start) {
        let line = line.trim_end();
        if line.ends_with(';') && !line.contains('{') {
            return None;
        }
        if line.contains('{') {
            if line.matches('{').count() == line.matches('}').count() {
                return Some(i);
            }
            break;
        }
    }
    let close = format!("{indent}}}");
    (start + 1..lines.len()).find(|&i| lines[i].trim_end() == close)
}

/// Whether `line` opens a function: `fn`, after any visibility and qualifiers.
fn opens_function(line: &str) -> bool {
    let mut rest = line.trim_start();
    if let Some(r) = rest.strip_prefix("pub") {
        rest = match r.strip_prefix('(') {
            Some(r) => r.split_once(')').map_or("", |(_, r)| r),
            None => r,
        }
        .trim_start();
    }
    for qualifier in ["const ", "async ", "unsafe ", "extern \"C\" "] {
        rest = rest.strip_prefix(qualifier).unwrap_or(rest);
    }
    rest.starts_with("fn ")
}

/// Every crate's source files, as (path, code outside unit tests).
fn product_code() -> Vec<(PathBuf, String)> {
    let mut files = Vec::new();
    for (_, src) in crate_sources() {
        for path in rust_files(&src) {
            let code = code_of(&path, &std::fs::read_to_string(&path).unwrap());
            files.push((path, code));
        }
    }
    files
}

#[test]
fn no_function_runs_over_100_lines() {
    let mut functions = 0;
    let mut long = Vec::new();
    for (path, code) in product_code() {
        let lines: Vec<&str> = code.lines().collect();
        for start in (0..lines.len()).filter(|&i| opens_function(lines[i])) {
            let Some(end) = function_end(&lines, start) else { continue };
            functions += 1;
            let length = end - start + 1;
            if length > MAX_FUNCTION_LINES {
                let name = lines[start].trim();
                long.push(format!("{}:{}: {length} lines: {name}", relative(&path), start + 1));
            }
        }
    }
    assert!(functions > 1000, "the sources were read: {functions} functions");
    assert!(long.is_empty(), "functions over {MAX_FUNCTION_LINES} lines:\n{}", long.join("\n"));
}

#[test]
fn no_file_runs_over_800_lines() {
    let files = product_code();
    assert!(files.len() > 100, "the sources were read: {} files", files.len());
    let long: Vec<(String, usize)> = files
        .iter()
        .map(|(path, code)| (relative(path), code.lines().count()))
        .filter(|(_, n)| *n > MAX_FILE_LINES)
        .collect();
    assert!(long.is_empty(), "files over {MAX_FILE_LINES} lines: {long:?}");
}

#[test]
fn every_source_line_fits_in_100_columns() {
    let rustfmt = std::fs::read_to_string(root().join("rustfmt.toml")).unwrap();
    assert!(
        rustfmt.lines().any(|l| l.replace(' ', "") == format!("max_width={MAX_WIDTH}")),
        "rustfmt.toml sets max_width = {MAX_WIDTH}:\n{rustfmt}"
    );
    let mut files = 0;
    let mut long = Vec::new();
    for dir in ["src", "crates", "tests", "benches", "examples"] {
        for path in rust_files(&root().join(dir)) {
            files += 1;
            let text = std::fs::read_to_string(&path).unwrap();
            for (n, line) in text.lines().enumerate() {
                let width = line.chars().count();
                if width > MAX_WIDTH {
                    long.push(format!("{}:{}: {width} characters", relative(&path), n + 1));
                }
            }
        }
    }
    assert!(files > 100, "the sources were read: {files} files");
    assert!(long.is_empty(), "lines over {MAX_WIDTH} characters:\n{}", long.join("\n"));
}

/// Whether a line of code writes to stdout or stderr itself (comments aside).
fn prints(line: &str) -> bool {
    let code = line.split("//").next().unwrap_or_default();
    ["print!(", "println!(", "eprint!(", "eprintln!(", "io::stdout()", "io::stderr()"]
        .iter()
        .any(|p| code.contains(p))
}

/// Terminal output has one owner: the binary. The product and the contract report through
/// return values and events, so what a person sees is decided in one place.
#[test]
fn only_the_binary_writes_to_the_terminal() {
    let mut found = Vec::new();
    for (name, src) in crate_sources() {
        // The binary owns the terminal; the double is a server whose logs are its own.
        if name == "avbatch" || name == "avbatch-serve" {
            continue;
        }
        for path in rust_files(&src) {
            let code = code_of(&path, &std::fs::read_to_string(&path).unwrap());
            for (i, line) in code.lines().enumerate().filter(|(_, l)| prints(l)) {
                found.push(format!("{}:{}: {}", relative(&path), i + 1, line.trim()));
            }
        }
    }
    assert!(found.is_empty(), "library code writing to the terminal:\n{}", found.join("\n"));
}

/// The rules above catch what they are meant to, on sources made up for them.
#[test]
fn the_shape_rules_see_what_they_look_for() {
    let lines = [
        "impl A {",
        "    pub(crate) async fn long(",
        "        x: u32,",
        "    ) -> u32 {",
        "        x",
        "    }",
        "    fn short() -> u32 { 1 }",
        "    fn declared(&self);",
        "}",
    ];
    let starts: Vec<usize> = (0..lines.len()).filter(|&i| opens_function(lines[i])).collect();
    assert_eq!(starts, [1, 6, 7]);
    assert_eq!(function_end(&lines, 1), Some(5));
    assert_eq!(function_end(&lines, 6), Some(6));
    assert_eq!(function_end(&lines, 7), None);
    assert!(!opens_function("    // fn in a comment"));
    assert!(!opens_function("    let f = \"fn x\";"));
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("a".to_owned(), BTreeSet::from(["b".to_owned()])),
        ("b".to_owned(), BTreeSet::from(["c".to_owned()])),
        ("c".to_owned(), BTreeSet::from(["a".to_owned()])),
    ]
    .into();
    assert!(reachable(&graph, "a").contains("a"), "a circle through others is seen");
    let code = code_of(Path::new("x.rs"), "fn a() {}\n#[cfg(test)]\nmod tests {\n}\n");
    assert_eq!(code, "fn a() {}\n");
    let gated = "fn a() {}\n#[cfg(all(test, feature = \"s3\"))]\nmod tests {\n}\n";
    assert_eq!(code_of(Path::new("x.rs"), gated), "fn a() {}\n");
    assert!(prints("    eprintln!(\"{}\", x);") && prints("let out = io::stdout();"));
    assert!(!prints("//! println!(\"{}\", id);") && !prints("    tracing::info!(\"x\");"));
}
