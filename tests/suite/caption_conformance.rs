//! Issue #24: caption files from public conformance suites (W3C web-platform-tests, mozilla's
//! vtt.js, glut23/webvtt-py, cdown/srt), vendored under `tests/fixtures/captions-conformance`
//! with each file's verdict in its `expected.tsv` (`SOURCES.md` there says where each comes
//! from and what the verdicts mean). Each file is a manifest row's `captions.en` (or
//! `chapters.en`) track, and the real binary checks the manifest with `upload --dry-run`
//! against an in-process `avbatch serve`: every valid file passes, every invalid one is refused
//! on its own row with the line and column in the file. The counts per suite are printed.

use crate::common;
use crate::common::text;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use common::{run_bounded, spawn_server, KEY};

/// The most rows of invalid files one run checks: the binary lists the first 200 problems.
const INVALID_PER_RUN: usize = 150;

/// One vendored file and its verdict.
struct Fixture {
    /// Its path under the conformance folder, as `expected.tsv` writes it.
    name: String,
    path: PathBuf,
    valid: bool,
    /// The manifest column it goes in.
    column: &'static str,
}

impl Fixture {
    /// The suite it comes from: its path's first folder.
    fn suite(&self) -> &str {
        self.name.split('/').next().unwrap_or_default()
    }
}

fn conformance_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/captions-conformance")
}

/// Every row of `expected.tsv`.
fn fixtures() -> Vec<Fixture> {
    let dir = conformance_dir();
    let tsv = std::fs::read_to_string(dir.join("expected.tsv")).expect("read expected.tsv");
    let mut lines = tsv.lines();
    assert_eq!(lines.next(), Some("path\tverdict\tkind\twhy"), "expected.tsv's header");
    lines
        .map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            assert_eq!(fields.len(), 4, "expected.tsv: {line:?}");
            assert!(!fields[3].is_empty(), "expected.tsv gives no reason: {line:?}");
            let valid = match fields[1] {
                "valid" => true,
                "invalid" => false,
                other => panic!("expected.tsv: verdict {other:?} in {line:?}"),
            };
            let column = match fields[2] {
                "captions" => "captions.en",
                "chapters" => "chapters.en",
                other => panic!("expected.tsv: kind {other:?} in {line:?}"),
            };
            let path = dir.join(fields[0]);
            assert!(path.is_file(), "expected.tsv names a missing file: {}", path.display());
            Fixture { name: fields[0].to_owned(), path, valid, column }
        })
        .collect()
}

/// A manifest in `dir` with one row per fixture (line 2 on), each its own video `v.mp4`.
fn manifest(dir: &Path, rows: &[&Fixture]) -> PathBuf {
    let mut csv = String::from("id,path,captions.en,chapters.en\n");
    for (n, fixture) in rows.iter().enumerate() {
        let track = fixture.path.to_str().expect("a UTF-8 path");
        assert!(!track.contains([',', '"', '\n']), "a path CSV would need to quote: {track}");
        let (captions, chapters) =
            if fixture.column == "captions.en" { (track, "") } else { ("", track) };
        csv.push_str(&format!("conformance-{n},v.mp4,{captions},{chapters}\n"));
    }
    let path = dir.join(format!("manifest-{}.csv", rows.len()));
    std::fs::write(&path, csv).expect("write the manifest");
    path
}

/// `avbatch upload MANIFEST --dry-run --json`.
fn dry_run(manifest: &Path, url: &str) -> Output {
    let mut cmd = common::batch::avbatch();
    cmd.args(["upload", manifest.to_str().unwrap(), "--base-url", url, "--no-journal"])
        .args(["--dry-run", "--json"])
        .env("AVBATCH_API_KEY", KEY);
    run_bounded(cmd, Duration::from_secs(120))
}

/// Whether `text` starts with `line N, column M: ` (numbers), the place a track error names.
fn names_line_and_column(text: &str) -> bool {
    let number = |s: &str, then: &str| -> Option<usize> {
        let digits = s.len() - s.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        (digits > 0 && s[digits..].starts_with(then)).then_some(digits + then.len())
    };
    text.strip_prefix("line ")
        .and_then(|rest| number(rest, ", column ").map(|n| &rest[n..]))
        .is_some_and(|rest| number(rest, ": ").is_some())
}

/// Checks that the run of `rows` (all invalid) refused each on its own manifest line, with the
/// line and column in the file (an empty file is refused before it is read, as empty).
fn assert_each_refused(out: &Output, rows: &[&Fixture]) {
    assert_eq!(out.status.code(), Some(2), "{}", text(out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let head = format!("has {} problem(s); nothing was uploaded", rows.len());
    assert!(stderr.contains(&head), "expected {head:?}:\n{stderr}");
    for (n, fixture) in rows.iter().enumerate() {
        let prefix = format!("  line {}, column `{}`: ", n + 2, fixture.column);
        let problem = stderr
            .lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("{}: no problem on its row:\n{stderr}", fixture.name));
        let shown = fixture.path.display().to_string();
        let what = if fixture.column == "captions.en" { "captions" } else { "chapters" };
        let parsed = format!("`{shown}` does not parse as {what}: ");
        let empty = std::fs::metadata(&fixture.path).unwrap().len() == 0;
        let ok = match problem.strip_prefix(&parsed) {
            Some(error) => names_line_and_column(error),
            None => empty && problem == format!("empty file `{shown}`"),
        };
        assert!(ok, "{}: not refused with a line and column: {problem}", fixture.name);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn conformance_suites_pass_the_manifest_check_as_their_verdicts_say() {
    let all = fixtures();
    assert!(all.len() >= 400, "{} fixtures", all.len());
    let server = spawn_server().await;
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("v.mp4"), b"a video").unwrap();
    // counts[suite] = [valid, invalid]
    let mut counts: BTreeMap<&str, [usize; 2]> = BTreeMap::new();
    for fixture in &all {
        counts.entry(fixture.suite()).or_default()[usize::from(!fixture.valid)] += 1;
    }

    // The valid files: one run, each row planned.
    let valid: Vec<&Fixture> = all.iter().filter(|f| f.valid).collect();
    let out = dry_run(&manifest(dir.path(), &valid), &server.url);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("the dry run's JSON: {e}\n{}", text(&out)));
    assert_eq!(plan["plan"].as_array().map(Vec::len), Some(valid.len()), "{plan}");

    // The invalid ones: a few runs, each listing every problem.
    let invalid: Vec<&Fixture> = all.iter().filter(|f| !f.valid).collect();
    for rows in invalid.chunks(INVALID_PER_RUN) {
        let out = dry_run(&manifest(dir.path(), rows), &server.url);
        assert_each_refused(&out, rows);
    }
    assert!(server.all_videos().await.is_empty(), "a dry run sends nothing");

    println!("suite\tvalid accepted\tinvalid refused (with line and column)");
    for (suite, [valid, invalid]) in &counts {
        println!("{suite}\t{valid}/{valid}\t{invalid}/{invalid}");
    }
    println!("total\t{0}/{0}\t{1}/{1}", valid.len(), invalid.len());
}
