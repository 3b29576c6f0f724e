//! Manifests of any length in bounded memory (issue #12, point 1): the check keeps digests, not
//! rows, yet still names both lines of a duplicate however far apart, keeps its first 200
//! problems with a count, and the report still lists every row in manifest order when a run is
//! interrupted. The real binary against `avbatch serve` on 127.0.0.1.

use crate::common;
use crate::common::text;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{run_bounded, spawn_server, spawn_server_with, KEY, MIB};
use serde_json::Value;

fn avbatch(args: &[&str]) -> Command {
    let mut cmd = common::batch::avbatch();
    cmd.args(args).env("AVBATCH_API_KEY", KEY);
    cmd
}

/// A folder with `files` small files `v{i}.mp4` and a manifest written by `rows`.
fn library(files: usize, rows: impl FnOnce(&mut String)) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..files {
        std::fs::write(dir.path().join(format!("v{i}.mp4")), format!("video {i}")).unwrap();
    }
    let mut csv = String::new();
    rows(&mut csv);
    let manifest = dir.path().join("manifest.csv");
    std::fs::write(&manifest, csv).unwrap();
    (dir, manifest)
}

fn upload(manifest: &Path, url: &str, extra: &[&str]) -> Output {
    let mut args = vec!["upload", manifest.to_str().unwrap(), "--base-url", url, "--no-journal"];
    args.extend_from_slice(extra);
    run_bounded(avbatch(&args), Duration::from_secs(120))
}

#[tokio::test(flavor = "multi_thread")]
async fn duplicates_far_apart_name_both_lines() {
    let server = spawn_server().await;
    // 30 000 rows: many check batches (and runs of digests) between the two rows of each pair.
    let (_dir, manifest) = library(10, |csv| {
        csv.push_str("path,id\n");
        for i in 0..30_000 {
            let id = match i {
                0 | 29_990 => "same-id".to_owned(),
                // Rows without an id are keyed by their path.
                7 | 29_995 => String::new(),
                _ => format!("row-{i}"),
            };
            let path = if i == 7 || i == 29_995 {
                "v7.mp4".to_owned()
            } else {
                format!("v{}.mp4", i % 10)
            };
            writeln!(csv, "{path},{id}").unwrap();
        }
    });
    let out = upload(&manifest, &server.url, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("has 2 problem(s); nothing was uploaded"), "{err}");
    assert!(
        err.contains("line 29992, column `id`: duplicate id `same-id` (first used on line 2)"),
        "{err}"
    );
    assert!(
        err.contains(
            "line 29997, column `path`: duplicate path `v7.mp4` in a row without an `id` (first \
             used on line 9, column `path`)"
        ),
        "{err}"
    );
    assert!(server.all_videos().await.is_empty(), "nothing may be sent");
}

#[tokio::test(flavor = "multi_thread")]
async fn problems_keep_the_first_200_by_line_and_count_the_rest() {
    let server = spawn_server().await;
    // 1500 problems of three kinds, found in different passes (cells as rows are parsed, files
    // a batch at a time, duplicates at the end), interleaved by line.
    let (_dir, manifest) = library(1, |csv| {
        csv.push_str("path,id,public\n");
        for i in 0..1500 {
            match i % 3 {
                0 => writeln!(csv, "missing-{i}.mp4,row-{i},").unwrap(),
                1 => writeln!(csv, "v0.mp4,row-{i},maybe").unwrap(),
                _ => writeln!(csv, "v0.mp4,row-1,").unwrap(),
            }
        }
    });
    for extra in [&["--dry-run"][..], &[]] {
        let out = upload(&manifest, &server.url, extra);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("has 1500 problem(s); nothing was uploaded"), "{err}");
        let shown: Vec<u64> = err
            .lines()
            .filter_map(|l| {
                l.trim_start()
                    .strip_prefix("line ")?
                    .split(',')
                    .next()?
                    .split(':')
                    .next()?
                    .parse()
                    .ok()
            })
            .collect();
        assert_eq!(
            shown,
            (2..202).collect::<Vec<u64>>(),
            "the first 200 problems by line, in order:\n{err}"
        );
        assert!(err.contains("line 2, column `path`: missing file `"), "{err}");
        assert!(err.contains("line 3, column `public`: bad boolean `maybe`"), "{err}");
        assert!(
            err.contains("line 4, column `id`: duplicate id `row-1` (first used on line 3)"),
            "{err}"
        );
        assert!(err.contains("\n  … and 1300 more"), "{err}");
        assert!(out.stdout.is_empty(), "no plan for a manifest with problems: {}", text(&out));
    }
    assert!(server.all_videos().await.is_empty(), "nothing may be sent");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_interrupted_run_still_reports_every_row_in_manifest_order() {
    // 1 MiB/s per connection: a 3 MiB file takes 3 s, so SIGINT lands with most rows unread.
    let server = spawn_server_with(|c| c.faults.bandwidth = Some(MIB as u64)).await;
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("id,path\n");
    for i in 0..400 {
        let len = if i % 50 == 0 { 3 * MIB } else { 100 + i };
        std::fs::write(dir.path().join(format!("f{i}.mp4")), vec![i as u8; len]).unwrap();
        writeln!(csv, "id-{i},f{i}.mp4").unwrap();
    }
    let manifest = dir.path().join("manifest.csv");
    std::fs::write(&manifest, csv).unwrap();
    let report = dir.path().join("report.csv");
    let child = avbatch(&[
        "upload",
        manifest.to_str().unwrap(),
        "--base-url",
        &server.url,
        "--no-journal",
        "-c",
        "2",
        "--json",
        "--report",
        report.to_str().unwrap(),
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap()).await.unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", text(&out));

    let rows: Vec<csv::StringRecord> =
        csv::Reader::from_path(&report).unwrap().records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 400, "one report row per manifest row");
    let mut counts = std::collections::BTreeMap::new();
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(
            (&r[0], &r[1]),
            (format!("id-{i}").as_str(), (i + 2).to_string().as_str()),
            "manifest order"
        );
        *counts.entry(r[4].to_owned()).or_insert(0) += 1;
    }
    assert!(
        counts.get("pending").copied().unwrap_or(0) > 300,
        "most rows were never started: {counts:?}"
    );
    assert!(counts.get("uploaded").copied().unwrap_or(0) > 0, "{counts:?}");
    // stdout carries the same report as JSON, its summary counting every row once.
    let json: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    let s = &json["summary"];
    assert_eq!(json["rows"].as_array().unwrap().len(), 400);
    assert_eq!(s["rows"], 400);
    let total: u64 = ["uploaded", "skipped", "failed", "interrupted", "pending"]
        .iter()
        .map(|k| s[k].as_u64().unwrap())
        .sum();
    assert_eq!(total, 400, "{s}");
    assert_eq!(s["pending"].as_u64(), counts.get("pending").map(|n| *n as u64), "{s}");
    for (i, row) in json["rows"].as_array().unwrap().iter().enumerate() {
        assert_eq!(
            (row["line"].as_u64(), row["status"].as_str()),
            (Some(i as u64 + 2), Some(&rows[i][4])),
            "{row}"
        );
    }
}

#[cfg(target_os = "linux")]
#[test]
fn a_dry_run_over_300_000_rows_stays_in_bounded_memory() {
    // Every row held used to cost about 1.2 KiB: 300 000 rows peaked near 400 MiB. Streaming, the
    // peak is the process's own (threads, buffers), whatever the row count.
    let rows = 300_000;
    let (dir, manifest) = library(100, |csv| {
        csv.push_str("path,id,title,tags,metadata,meta.source,public\n");
        for r in 0..rows {
            writeln!(
                csv,
                "v{}.mp4,row-{r},\"Video {r}, take {}\",a;b,k=v;n={r},cam-{},yes",
                r % 100,
                r % 7,
                r % 13
            )
            .unwrap();
        }
    });
    let stderr = dir.path().join("stderr");
    let (code, kib) = common::peak_rss_kib(
        &avbatch(&["upload", manifest.to_str().unwrap(), "--dry-run", "--env", "local"]),
        &stderr,
    );
    let err = std::fs::read_to_string(&stderr).unwrap();
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains(&format!("{rows} rows")), "{err}");
    eprintln!("dry run over {rows} rows: peak RSS {} MiB", kib / 1024);
    assert!(kib < 128 * 1024, "peak RSS {kib} KiB over 128 MiB for {rows} rows");
}
