//! Shards (issue #7): N runs over one manifest upload every row exactly once between them, each
//! with its own journal and report, chosen by --shard or by the scheduler's environment;
//! `avbatch report merge` joins their reports; a fleet of shards stays within one server's limit.

use crate::common;
use crate::common::text;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use common::{pattern, spawn_server_with, TestServer, KEY};
use serde_json::Value;

/// `n` small files (one part each) and a manifest: even rows with an `id`, odd rows keyed by
/// path, size and mtime.
fn library(n: usize) -> (tempfile::TempDir, Vec<Vec<u8>>) {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("path,id,title\n");
    let mut sources = Vec::new();
    for i in 0..n {
        let data = pattern(20_000 + i * 977, i as u8);
        let path = dir.path().join(format!("v{i:02}.mp4"));
        std::fs::write(&path, &data).unwrap();
        // Rows without an `id` are keyed by their file, its modification time included: a
        // fixed time gives every run the same shards (a random one left a shard empty about
        // one run in a hundred).
        let mtime =
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000 + i as u64);
        std::fs::File::options().write(true).open(&path).unwrap().set_modified(mtime).unwrap();
        let id = if i % 2 == 0 { format!("src-{i}") } else { String::new() };
        csv.push_str(&format!("v{i:02}.mp4,{id},Video {i}\n"));
        sources.push(data);
    }
    std::fs::write(dir.path().join("m.csv"), csv).unwrap();
    (dir, sources)
}

fn avbatch(dir: &Path, server: &TestServer, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = crate::common::batch::avbatch();
    cmd.args([
        "upload",
        dir.join("m.csv").to_str().unwrap(),
        "--base-url",
        &server.url,
        "-q",
        "--chunk-size",
        "5MiB",
    ])
    .args(args)
    .env("AVBATCH_API_KEY", KEY)
    .env_remove("AVBATCH_SHARD")
    .env_remove("JOB_COMPLETION_INDEX")
    .env_remove("SLURM_ARRAY_TASK_ID")
    .envs(env.iter().copied())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    cmd
}

fn wait(children: Vec<Child>) -> Vec<Output> {
    children.into_iter().map(|c| c.wait_with_output().unwrap()).collect()
}

fn merge(dir: &Path, reports: &[PathBuf], out: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_avbatch"))
        .args([
            "report",
            "merge",
            "-o",
            dir.join(out).to_str().unwrap(),
            "--manifest",
            dir.join("m.csv").to_str().unwrap(),
        ])
        .args(reports)
        .output()
        .unwrap()
}

async fn assert_every_row_once(server: &TestServer, merged: &Value, sources: &[Vec<u8>]) {
    let rows = merged["rows"].as_array().unwrap();
    assert_eq!(rows.len(), sources.len(), "{merged}");
    assert_eq!(server.all_videos().await.len(), sources.len(), "one video per row");
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row["line"], i as u64 + 2);
        assert_eq!(row["status"], "uploaded", "{row}");
        let back = server.source_of(row["videoId"].as_str().unwrap()).await;
        assert!(back == sources[i], "row {i} byte-exact");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn three_shards_from_flag_kubernetes_and_slurm_cover_every_row_once() {
    let server = spawn_server_with(|_| {}).await;
    let (dir, sources) = library(24);
    let d = dir.path();
    let children = vec![
        avbatch(d, &server, &["--shard", "0/3"], &[]).spawn().unwrap(),
        avbatch(d, &server, &[], &[("JOB_COMPLETION_INDEX", "1"), ("AVBATCH_SHARD_COUNT", "3")])
            .spawn()
            .unwrap(),
        // A Slurm array numbered 1-3.
        avbatch(
            d,
            &server,
            &[],
            &[
                ("SLURM_ARRAY_TASK_ID", "3"),
                ("SLURM_ARRAY_TASK_COUNT", "3"),
                ("SLURM_ARRAY_TASK_MIN", "1"),
            ],
        )
        .spawn()
        .unwrap(),
    ];
    let outs = wait(children);
    let mut sizes = Vec::new();
    for (k, out) in outs.iter().enumerate() {
        assert!(out.status.success(), "shard {k}: {}", text(out));
        assert!(
            d.join(format!("m.shard-{k}-of-3.report.csv")).exists(),
            "each shard writes its own report"
        );
        assert!(
            d.join(format!("m.shard-{k}-of-3.journal.sqlite")).exists(),
            "each shard keeps its own journal"
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        let line = stderr
            .lines()
            .find(|l| l.starts_with(&format!("shard {k}/3: ")))
            .unwrap_or_else(|| panic!("{stderr}"));
        sizes.push(line.split_whitespace().nth(2).unwrap().parse::<usize>().unwrap());
    }
    assert_eq!(sizes.iter().sum::<usize>(), 24, "{sizes:?}");
    assert!(sizes.iter().all(|n| *n > 0), "{sizes:?}");

    let reports: Vec<PathBuf> =
        (0..3).map(|k| d.join(format!("m.shard-{k}-of-3.report.csv"))).collect();
    let out = merge(d, &reports, "merged.json");
    assert!(out.status.success(), "{}", text(&out));
    let merged: Value =
        serde_json::from_slice(&std::fs::read(d.join("merged.json")).unwrap()).unwrap();
    assert_eq!(merged["summary"]["uploaded"], 24);
    assert_every_row_once(&server, &merged, &sources).await;

    // A shard re-run is a no-op; `status --shard` reads that shard's journal.
    let out = avbatch(d, &server, &["--shard", "2/3", "--json"], &[]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let rep: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (rep["summary"]["skipped"].as_u64(), rep["summary"]["shard"].as_str()),
        (Some(sizes[2] as u64), Some("2/3"))
    );
    let status = Command::new(env!("CARGO_BIN_EXE_avbatch"))
        .args(["status", d.join("m.csv").to_str().unwrap(), "--shard", "1/3", "--json"])
        .output()
        .unwrap();
    let st: Value =
        serde_json::from_slice(&status.stdout).unwrap_or_else(|_| panic!("{}", text(&status)));
    assert_eq!(
        (st["done"].as_u64(), st["manifestRows"].as_u64()),
        (Some(sizes[1] as u64), Some(sizes[1] as u64)),
        "{st}"
    );

    // The same report twice, or a missing shard, is refused.
    let twice = merge(d, &[reports[0].clone(), reports[0].clone(), reports[1].clone()], "bad.csv");
    assert_eq!(twice.status.code(), Some(2), "{}", text(&twice));
    assert!(
        String::from_utf8_lossy(&twice.stderr).contains("more than one report"),
        "{}",
        text(&twice)
    );
    let missing = merge(d, &reports[..2], "bad.csv");
    assert_eq!(missing.status.code(), Some(2), "{}", text(&missing));
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains(&format!("{} row(s)", sizes[2])),
        "{}",
        text(&missing)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fleet_of_shards_stays_within_one_servers_rate_limit() {
    // 4 shards, 40 videos (80 write/upload requests), a server allowing 10 uploads and 10
    // writes a second: the shards learn the shared budget from the rate-limit headers.
    let server =
        spawn_server_with(|c| c.rate_limits = "uploads=10/1s,writes=10/1s".parse().unwrap()).await;
    let (dir, sources) = library(40);
    let d = dir.path();
    let children: Vec<Child> = (0..4)
        .map(|k| {
            avbatch(
                d,
                &server,
                &[
                    "--shard",
                    &format!("{k}/4"),
                    "--report",
                    d.join(format!("r{k}.json")).to_str().unwrap(),
                ],
                &[],
            )
            .spawn()
            .unwrap()
        })
        .collect();
    let outs = wait(children);
    for out in &outs {
        assert!(out.status.success(), "{}", text(out));
    }
    let reports: Vec<PathBuf> = (0..4).map(|k| d.join(format!("r{k}.json"))).collect();
    let out = merge(d, &reports, "merged.json");
    assert!(out.status.success(), "{}", text(&out));
    let merged: Value =
        serde_json::from_slice(&std::fs::read(d.join("merged.json")).unwrap()).unwrap();
    assert_every_row_once(&server, &merged, &sources).await;
    let (requests, throttled) = (
        merged["summary"]["requests"].as_u64().unwrap(),
        merged["summary"]["throttled"].as_u64().unwrap(),
    );
    eprintln!("fleet: {requests} requests, {throttled} answered 429");
    assert!(
        throttled * 20 <= requests,
        "at most 5 % of requests refused: {throttled} of {requests} answered 429"
    );
}
