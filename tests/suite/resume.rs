//! Crash-safe resume: the journal, kill -9 of avbatch, re-runs, locks, changed files (issue #5).

use crate::common;
use crate::common::text;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use common::{pattern, spawn_server_with, TestServer, KEY, MIB};
use serde_json::Value;

struct Batch {
    dir: tempfile::TempDir,
    sources: Vec<Vec<u8>>,
}

impl Batch {
    /// `n` files of about 11 MiB (3 parts of 5 MiB) and a manifest with ids.
    fn new(n: usize) -> Batch {
        let dir = tempfile::tempdir().unwrap();
        let mut csv = String::from("id,path\n");
        let mut sources = Vec::new();
        for i in 0..n {
            let data = pattern(11 * MIB + i * 13, i as u8);
            std::fs::write(dir.path().join(format!("f{i}.mp4")), &data).unwrap();
            csv.push_str(&format!("row-{i},f{i}.mp4\n"));
            sources.push(data);
        }
        std::fs::write(dir.path().join("manifest.csv"), csv).unwrap();
        Batch { dir, sources }
    }

    fn manifest(&self) -> PathBuf {
        self.dir.path().join("manifest.csv")
    }

    fn report(&self) -> PathBuf {
        self.dir.path().join("report.json")
    }

    fn command(&self, server: &TestServer, extra: &[&str]) -> Command {
        let mut cmd = common::batch::avbatch();
        cmd.args([
            "upload",
            self.manifest().to_str().unwrap(),
            "--base-url",
            &server.url,
            "--chunk-size",
            "5MiB",
            "-q",
            "--report",
            self.report().to_str().unwrap(),
        ])
        .args(extra)
        .env("AVBATCH_API_KEY", KEY)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        cmd
    }

    fn run(&self, server: &TestServer, extra: &[&str]) -> Output {
        self.command(server, extra).output().unwrap()
    }

    fn spawn(&self, server: &TestServer, extra: &[&str]) -> Child {
        self.command(server, extra).spawn().unwrap()
    }

    /// Waits until `avbatch status` says a run holds the manifest's journal, at most 30 s.
    fn wait_until_active(&self) {
        let started = std::time::Instant::now();
        loop {
            let out = common::batch::avbatch()
                .args(["status", self.manifest().to_str().unwrap(), "--json"])
                .output()
                .unwrap();
            let status: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
            if status["active"] == true {
                return;
            }
            assert!(started.elapsed() < Duration::from_secs(30), "no run became active");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn report(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Every row exactly once on the server, byte for byte.
async fn assert_exactly_once(s: &TestServer, batch: &Batch) {
    let all = s.all_videos().await;
    assert_eq!(all.len(), batch.sources.len(), "one video per row, no duplicates");
    let rep = report(&batch.report());
    for (i, row) in rep["rows"].as_array().unwrap().iter().enumerate() {
        assert!(row["status"] == "uploaded" || row["status"] == "skipped", "row {i}: {row}");
        let id = row["videoId"].as_str().unwrap_or_else(|| panic!("row {i} has no videoId: {row}"));
        let back = s.source_of(id).await;
        assert!(back == batch.sources[i].as_slice(), "video of row {i} differs");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_again_and_again_then_a_final_run_uploads_each_row_once() {
    // 8 MiB/s per connection: an 11 MiB file takes over a second, so kills land mid-part.
    let server = spawn_server_with(|c| c.faults.bandwidth = Some(8 * MIB as u64)).await;
    let batch = Batch::new(8);
    let mut kills = 0;
    for round in 0..6u64 {
        let mut child = batch.spawn(&server, &["-c", "3"]);
        tokio::time::sleep(Duration::from_millis(400 + round * 170)).await;
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            kills += 1;
        }
        let _ = child.wait();
    }
    assert!(kills >= 4, "the kills must land while avbatch runs ({kills})");
    let out = batch.run(&server, &["-c", "3"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_exactly_once(&server, &batch).await;

    // A re-run of a finished batch sends nothing and reports every row as done before.
    let before = server.server.received_bytes();
    let out = batch.run(&server, &[]);
    assert!(out.status.success(), "{}", text(&out));
    let rep = report(&batch.report());
    assert_eq!(rep["summary"]["skipped"], 8, "{rep}");
    assert_eq!(server.server.received_bytes(), before, "nothing is sent again");
    assert_eq!(server.all_videos().await.len(), 8);

    // `avbatch status` reads the journal.
    let status = Command::new(env!("CARGO_BIN_EXE_avbatch"))
        .args(["status", batch.manifest().to_str().unwrap(), "--json"])
        .output()
        .unwrap();
    assert!(status.status.success(), "{}", text(&status));
    let s: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(
        (s["done"].as_u64(), s["manifestRows"].as_u64(), s["notStarted"].as_u64()),
        (Some(8), Some(8), Some(0)),
        "{s}"
    );
    assert_eq!(s["bytesDone"], s["bytesTotal"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_partly_uploaded_video_continues_from_the_servers_record() {
    let server = spawn_server_with(|c| c.faults.bandwidth = Some(4 * MIB as u64)).await;
    let batch = Batch::new(1);
    let mut child = batch.spawn(&server, &[]);
    // Wait until the server holds at least one part, then kill.
    let id = loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if let Some(v) = server.all_videos().await.first() {
            let id = v["videoId"].as_str().unwrap().to_owned();
            let st = server.status_of(&id).await;
            if !st["ingest"]["receivedBytes"].as_array().unwrap().is_empty() {
                break id;
            }
        }
    };
    child.kill().unwrap();
    let _ = child.wait();
    let held = server.server.received_bytes();
    assert!(
        held >= 5 * MIB as u64 && held < batch.sources[0].len() as u64,
        "killed part-way: {held} bytes held"
    );

    let out = batch.run(&server, &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert_exactly_once(&server, &batch).await;
    assert_eq!(
        report(&batch.report())["rows"][0]["videoId"],
        id.as_str(),
        "the same video was continued"
    );
    assert_eq!(
        server.server.received_bytes(),
        batch.sources[0].len() as u64,
        "no byte the server held was sent again"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn without_the_journal_a_rerun_finds_the_videos_by_key() {
    let server = spawn_server_with(|_| {}).await;
    let batch = Batch::new(3);
    let out = batch.run(&server, &[]);
    assert!(out.status.success(), "{}", text(&out));
    let journal = batch.dir.path().join("manifest.journal.sqlite");
    assert!(journal.exists(), "the journal sits beside the manifest");
    std::fs::remove_file(&journal).unwrap();
    let before = server.server.received_bytes();
    let out = batch.run(&server, &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert_exactly_once(&server, &batch).await;
    assert_eq!(
        server.server.received_bytes(),
        before,
        "found complete videos are not uploaded again"
    );
    // And with no journal at all.
    let out = batch.run(&server, &["--no-journal"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(server.all_videos().await.len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn two_runs_on_one_journal_and_a_changed_file() {
    let server = spawn_server_with(|c| c.faults.bandwidth = Some(4 * MIB as u64)).await;
    let batch = Batch::new(2);
    let first = batch.spawn(&server, &[]);
    batch.wait_until_active();
    let second = batch.run(&server, &[]);
    assert_eq!(second.status.code(), Some(2), "{}", text(&second));
    assert!(
        String::from_utf8_lossy(&second.stderr).contains("in use by another avbatch run"),
        "{}",
        text(&second)
    );
    let out = tokio::task::spawn_blocking(move || first.wait_with_output().unwrap()).await.unwrap();
    assert!(out.status.success(), "{}", text(&out));

    // The file of row 0 changes: reported, not uploaded, until --force.
    let changed = pattern(6 * MIB, 99);
    std::fs::write(batch.dir.path().join("f0.mp4"), &changed).unwrap();
    let out = batch.run(&server, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let rep = report(&batch.report());
    assert!(rep["rows"][0]["error"].as_str().unwrap().contains("--force"), "{rep}");
    assert_eq!(rep["rows"][1]["status"], "skipped");
    assert_eq!(server.all_videos().await.len(), 2);
    let out = batch.run(&server, &["--force"]);
    assert!(out.status.success(), "{}", text(&out));
    let rep = report(&batch.report());
    let id = rep["rows"][0]["videoId"].as_str().unwrap();
    let back = server.source_of(id).await;
    assert!(back == changed.as_slice(), "the changed file went up as a new video");
    assert_eq!(server.all_videos().await.len(), 2, "the new video replaced the old one");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_journal_is_not_taken_to_another_destination() {
    let sandbox = spawn_server_with(|_| {}).await;
    let production = spawn_server_with(|_| {}).await;
    let batch = Batch::new(1);
    let out = batch.run(&sandbox, &[]);
    assert!(out.status.success(), "{}", text(&out));
    let out = batch.run(&production, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("records uploads to"), "{}", text(&out));
    assert!(production.all_videos().await.is_empty(), "nothing sent to the other destination");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_part_a_dead_run_left_in_flight_is_not_sent_twice() {
    // A run killed with its last part still in the kernel's buffers: the server goes on
    // receiving that part after the run died, and commits it while the next run sends the same
    // part. The next run must take the server's refusal as "already there", not fail the row.
    let server = spawn_server_with(|c| c.faults.bandwidth = Some(4 * MIB as u64)).await;
    let batch = Batch::new(1);
    let data = batch.sources[0].clone();
    let created = server
        .post_json(
            "/videos",
            &serde_json::json!({
                "title": "f0",
                "metadata": [{"key": "avbatch_key", "value": "row-0"}]
            }),
        )
        .await;
    let id = created["videoId"].as_str().unwrap().to_owned();
    let (ctype, body) = common::multipart_file("file", "f0.mp4", &data[..5 * MIB]);
    let ghost = server
        .http
        .post(format!("{}/videos/{id}/source", server.url))
        .header("Authorization", server.basic())
        .header("Content-Type", ctype)
        .header("Content-Range", format!("bytes 0-{}/{}", 5 * MIB - 1, data.len()))
        .body(body)
        .send();
    let ghost = tokio::spawn(ghost);
    tokio::time::sleep(Duration::from_millis(150)).await;

    let out = batch.run(&server, &["--no-journal"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        ghost.await.unwrap().unwrap().status().as_u16(),
        201,
        "the dead run's part went in first"
    );
    assert_exactly_once(&server, &batch).await;
    assert_eq!(
        report(&batch.report())["rows"][0]["videoId"],
        id.as_str(),
        "the video made for the key was continued"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn checksum_tells_a_touched_file_from_a_rewritten_one() {
    let server = spawn_server_with(|_| {}).await;
    let batch = Batch::new(2);
    let out = batch.run(&server, &["--checksum"]);
    assert!(out.status.success(), "{}", text(&out));
    let before = server.server.received_bytes();
    let path = |i: usize| batch.dir.path().join(format!("f{i}.mp4"));
    let later = std::time::SystemTime::now() + Duration::from_secs(3600);

    // Row 0 touched (same bytes, new mtime); row 1 rewritten in place with its old size and mtime.
    std::fs::File::options().write(true).open(path(0)).unwrap().set_modified(later).unwrap();
    let old_mtime = std::fs::metadata(path(1)).unwrap().modified().unwrap();
    let mut rewritten = batch.sources[1].clone();
    rewritten[7] ^= 0xff;
    std::fs::write(path(1), &rewritten).unwrap();
    std::fs::File::options().write(true).open(path(1)).unwrap().set_modified(old_mtime).unwrap();

    let out = batch.run(&server, &["--checksum"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let rep = report(&batch.report());
    assert_eq!(rep["rows"][0]["status"], "skipped", "same contents: {rep}");
    assert_eq!(rep["rows"][1]["status"], "failed", "{rep}");
    assert!(rep["rows"][1]["error"].as_str().unwrap().contains("--force"), "{rep}");
    assert_eq!(server.server.received_bytes(), before, "nothing sent");

    // Without --checksum size and mtime decide first: row 1 looks unchanged (only --checksum
    // catches a rewrite that kept its time), and row 0's new time was taken by the run before.
    let out = batch.run(&server, &[]);
    let rep = report(&batch.report());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        (&rep["rows"][0]["status"], &rep["rows"][1]["status"]),
        (&"skipped".into(), &"skipped".into()),
        "{rep}"
    );

    let out = batch.run(&server, &["--checksum", "--force"]);
    assert!(out.status.success(), "{}", text(&out));
    let rep = report(&batch.report());
    assert!(server.source_of(rep["rows"][1]["videoId"].as_str().unwrap()).await == rewritten);
    assert_eq!(
        server.all_videos().await.len(),
        2,
        "only the rewritten file went up again, replacing its old video"
    );

    // Without an `id` column the key holds the mtime, so a touched file gets a new key; with
    // --checksum its earlier upload still stands.
    std::fs::write(batch.manifest(), "path\nf0.mp4\n").unwrap();
    std::fs::remove_file(batch.dir.path().join("manifest.journal.sqlite")).unwrap();
    let out = batch.run(&server, &["--checksum"]);
    assert!(out.status.success(), "{}", text(&out));
    let first = report(&batch.report())["rows"][0]["videoId"].clone();
    std::fs::File::options()
        .write(true)
        .open(path(0))
        .unwrap()
        .set_modified(later + Duration::from_secs(60))
        .unwrap();
    let out = batch.run(&server, &["--checksum"]);
    assert!(out.status.success(), "{}", text(&out));
    let rep = report(&batch.report());
    assert_eq!(
        (&rep["rows"][0]["status"], &rep["rows"][0]["videoId"]),
        (&"skipped".into(), &first),
        "{rep}"
    );
    assert_eq!(
        server.all_videos().await.len(),
        3,
        "one video for the id-less row, none for its touch"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn without_an_id_column_a_changed_file_still_needs_force() {
    // Keyed by path, size and mtime, a changed file gets a new key; the journal still knows
    // what its path held.
    let server = spawn_server_with(|_| {}).await;
    let batch = Batch::new(2);
    std::fs::write(batch.manifest(), "path\nf0.mp4\nf1.mp4\n").unwrap();
    let out = batch.run(&server, &[]);
    assert!(out.status.success(), "{}", text(&out));
    std::fs::File::options()
        .append(true)
        .open(batch.dir.path().join("f1.mp4"))
        .unwrap()
        .write_all(b"+")
        .unwrap();
    let out = batch.run(&server, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let rep = report(&batch.report());
    assert_eq!(rep["rows"][0]["status"], "skipped");
    assert!(
        rep["rows"][1]["error"].as_str().unwrap().contains("changed since it was uploaded"),
        "{rep}"
    );
    assert_eq!(server.all_videos().await.len(), 2, "nothing uploaded without --force");
    let out = batch.run(&server, &["--force"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = batch.run(&server, &[]);
    assert!(
        out.status.success(),
        "a run after --force takes the new upload as done: {}",
        text(&out)
    );
    assert_eq!(report(&batch.report())["summary"]["skipped"], 2);
    assert_eq!(server.all_videos().await.len(), 2, "the new video replaced the old one");
}
