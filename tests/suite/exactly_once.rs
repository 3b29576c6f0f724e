//! Exactly once, and true, against what the real api.video can do that a friendly rehearsal does
//! not (issue #11): rows complete before the run, partial uploads cut another way, several runs
//! at once, videos tagged by an older avbatch, delegated uploads whose answers get lost, slow
//! uplinks, stops on a failing link, unfinished uploads the service will drop.
//!
//! Every test drives the real binary against `avbatch serve` on 127.0.0.1 and checks the server
//! afterwards: how many videos, under which keys, and every source byte for byte.

use crate::common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use avbatch_core::manifest::id_key;
use common::batch::*;
use common::{basic_auth, multipart_file, spawn_server, spawn_server_with, TestServer, KEY, MIB};
use serde_json::{json, Value};

/// The value of a video's `avbatch_key`.
fn key_of(video: &Value) -> Option<&str> {
    video["metadata"].as_array()?.iter().find(|m| m["key"] == "avbatch_key")?["value"].as_str()
}

/// Makes a video under `key` (as avbatch or another run would) on the server at `url`, holding
/// the first `upto` bytes of `data` in bytes mode (`upto` = 0: nothing, `data.len()`: all of
/// it). Returns its id.
async fn video_holding(url: &str, key: &str, data: &[u8], upto: usize) -> String {
    video_holding_under(url, "avbatch_key", key, data, upto).await
}

/// Uploads part 1 of `count` (the first `len` bytes of `data`) in part mode.
async fn part_one(server: &TestServer, id: &str, data: &[u8], len: usize, count: u64) {
    let (ctype, body) = multipart_file("file", "f.mp4", &data[..len]);
    let resp = server
        .http
        .post(format!("{}/videos/{id}/source", server.url))
        .header("Authorization", server.basic())
        .header("Content-Type", ctype)
        .header("Content-Range", format!("part 1/{count}"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
}

// =============================================================================================
// Rows complete before the run are skipped, and count no bytes (item 3)
// =============================================================================================

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rows_already_on_the_server_are_skipped_and_send_nothing() {
    let server = spawn_server().await;
    let batch = Batch::new(4, |i| 6 * MIB + i);
    let done = run(batch.upload(&server.url, &[]), Duration::from_secs(60)).await;
    assert_eq!(done.code, Some(0), "{}", done.text());
    let first = batch.read_report();
    let received = server.server.received_bytes();

    // Without the journal (lost, or another shard's): the server says every row is complete.
    let done = run(batch.upload(&server.url, &["--no-journal"]), Duration::from_secs(60)).await;
    assert_eq!(done.code, Some(0), "{}", done.text());
    let rep = batch.read_report();
    let s = &rep["summary"];
    assert_eq!(
        (s["uploaded"].as_u64(), s["skipped"].as_u64(), s["bytes"].as_u64()),
        (Some(0), Some(4), Some(0)),
        "{rep}"
    );
    assert_eq!(s["mbPerS"], 0.0, "{rep}");
    for (i, row) in rep["rows"].as_array().unwrap().iter().enumerate() {
        assert_eq!(row["status"], "skipped", "{row}");
        assert_eq!((row["sent"].as_u64(), row["mbPerS"].as_f64()), (Some(0), Some(0.0)), "{row}");
        assert_eq!(
            row["bytes"].as_u64(),
            Some(batch.sources[i].len() as u64),
            "the server holds the whole file: {row}"
        );
        assert_eq!(row["videoId"], first["rows"][i]["videoId"], "{row}");
    }
    assert!(done.stderr.contains("0 of 4 rows uploaded, 4 already done"), "{}", done.text());
    assert_eq!(server.server.received_bytes(), received, "nothing was sent");
    assert_exactly_once(&server.url, &batch).await;
}

// =============================================================================================
// Complete videos, partial ones cut another way, and failed rows' videos (item 4)
// =============================================================================================

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn another_chunk_size_skips_complete_videos_and_continues_partial_ones() {
    let server = spawn_server().await;
    let batch = Batch::new(3, |i| 17 * MIB + i);
    let key = |i: usize| id_key(&format!("row-{i}"));
    // Row 0 complete (cut in 5 MiB parts by the first run below), row 1 holding its first 5 MiB
    // in bytes mode, row 2 holding part 1 of 4 in part mode.
    let one = video_holding(&server.url, &key(1), &batch.sources[1], 5 * MIB).await;
    let two = video_holding(&server.url, &key(2), &batch.sources[2], 0).await;
    part_one(&server, &two, &batch.sources[2], 5 * MIB, 4).await;
    let zero = video_holding(&server.url, &key(0), &batch.sources[0], batch.sources[0].len()).await;

    let received = server.server.received_bytes();
    let done =
        run(batch.upload_cut(&server.url, "6MiB", &["--no-journal"]), Duration::from_secs(60))
            .await;
    assert_eq!(done.code, Some(1), "row 2 cannot go on with another cut\n{}", done.text());
    let rep = batch.read_report();
    let rows = rep["rows"].as_array().unwrap();
    assert_eq!(
        (rows[0]["status"].as_str(), rows[0]["videoId"].as_str()),
        (Some("skipped"), Some(zero.as_str())),
        "{rep}"
    );
    assert_eq!(
        (rows[1]["status"].as_str(), rows[1]["videoId"].as_str()),
        (Some("uploaded"), Some(one.as_str())),
        "{rep}"
    );
    let rest = (batch.sources[1].len() - 5 * MIB) as u64;
    assert_eq!(
        (rows[1]["sent"].as_u64(), rows[1]["bytes"].as_u64()),
        (Some(rest), Some(batch.sources[1].len() as u64)),
        "{rep}"
    );
    assert_eq!(server.server.received_bytes() - received, rest, "only what row 1 lacked went up");
    assert!(
        source_of(&server.url, &one).await == batch.sources[1],
        "row 1 continued byte for byte in 6 MiB parts"
    );
    // Row 2 failed, and says which video it knows.
    assert_eq!(
        (rows[2]["status"].as_str(), rows[2]["videoId"].as_str()),
        (Some("failed"), Some(two.as_str())),
        "{rep}"
    );
    assert!(rows[2]["error"].as_str().unwrap().contains("--chunk-size"), "{rep}");
    // With the cut it was started with, row 2 goes on.
    let done = run(
        batch.upload(&server.url, &["--no-journal", "--mode", "parts"]),
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(done.code, Some(0), "{}", done.text());
    assert_exactly_once(&server.url, &batch).await;
}

// =============================================================================================
// Runs at once, each with its own journal (item 7)
// =============================================================================================

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_runs_at_once_leave_one_video_per_row() {
    // An empty account: each run indexes it and lists the newest videos after its creates.
    three_runs_at_once(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_runs_at_once_in_a_large_account_leave_one_video_per_row() {
    // 150 other videos, more than an 8-row run would read: each row looks its key up and lists
    // it again after its create.
    three_runs_at_once(150).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_runs_at_once_behind_gateway_errors_leave_one_video_per_row() {
    // A fifth of the answers lost to a gateway's 502/504 after the request took effect: a run
    // whose create's answer was lost adopts another run's video, and must take back its own
    // (#25, point 4: 31 to 38 videos for 30 rows before).
    let server = spawn_server_with(|c| {
        c.faults.latency = Duration::from_millis(20);
        c.faults.gateway_error_rate = 0.2;
        c.faults.seed = Some(25);
    })
    .await;
    let batch = Batch::new(24, |i| if i % 6 == 0 { 6 * MIB + i } else { 200 * 1024 + i });
    three_runs_over(&server, &batch, 0, &["--retries", "20"]).await;
}

async fn three_runs_at_once(others: usize) {
    // A little latency widens every window between a lookup and a create.
    let server = spawn_server_with(|c| c.faults.latency = Duration::from_millis(20)).await;
    for i in 0..others {
        server.create_video(&format!("other {i}")).await;
    }
    let batch = Batch::new(8, |i| 6 * MIB + i * 7);
    three_runs_over(&server, &batch, others, &[]).await;
}

/// Three runs of `batch` at once, each with its own journal: one video per row on the server,
/// beside its `others`, and every run names the same one.
async fn three_runs_over(server: &TestServer, batch: &Batch, others: usize, extra: &[&str]) {
    let runs: Vec<Running> = (0..3)
        .map(|k| {
            let journal = batch.path(&format!("run{k}.journal.sqlite"));
            let report = batch.path(&format!("run{k}.report.json"));
            let mut args = vec!["--journal", journal.to_str().unwrap(), "-c", "4"];
            args.extend_from_slice(extra);
            Running::start(batch.upload_reporting(&server.url, &report, &args))
        })
        .collect();
    let mut reports = Vec::new();
    for (k, running) in runs.into_iter().enumerate() {
        let done = running.finish(Duration::from_secs(120)).await;
        assert_eq!(done.code, Some(0), "run {k}\n{}", done.text());
        reports.push(
            serde_json::from_slice::<Value>(
                &std::fs::read(batch.path(&format!("run{k}.report.json"))).unwrap(),
            )
            .unwrap(),
        );
    }
    // Every run names the same video for a row, and the server holds that one, complete.
    std::fs::copy(batch.path("run0.report.json"), batch.report()).unwrap();
    assert_exactly_once_besides(&server.url, batch, others).await;
    for rep in &reports[1..] {
        for (a, b) in
            rep["rows"].as_array().unwrap().iter().zip(reports[0]["rows"].as_array().unwrap())
        {
            assert_eq!(a["videoId"], b["videoId"], "two runs name different videos for one row");
        }
    }
}

// =============================================================================================
// Fixed-length keys, and videos an older avbatch tagged with the raw key (items 9, 15)
// =============================================================================================

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn videos_tagged_with_the_old_raw_key_are_found_and_new_ones_get_a_digest() {
    let server = spawn_server().await;
    let batch = Batch::new(3, |i| 11 * MIB + i);
    // A library half-migrated by avbatch 0.1: row 0 complete and row 1 half done, under the raw
    // `id` as key; row 2 never started.
    let zero = video_holding(&server.url, "row-0", &batch.sources[0], batch.sources[0].len()).await;
    let one = video_holding(&server.url, "row-1", &batch.sources[1], 5 * MIB).await;
    let done = run(batch.upload(&server.url, &["--no-journal"]), Duration::from_secs(60)).await;
    assert_eq!(done.code, Some(0), "{}", done.text());
    let rep = batch.read_report();
    let rows = rep["rows"].as_array().unwrap();
    assert_eq!(
        (rows[0]["status"].as_str(), rows[0]["videoId"].as_str()),
        (Some("skipped"), Some(zero.as_str())),
        "{rep}"
    );
    assert_eq!(
        (rows[1]["status"].as_str(), rows[1]["videoId"].as_str()),
        (Some("uploaded"), Some(one.as_str())),
        "{rep}"
    );
    let videos = list_videos(&server.url).await;
    assert_eq!(videos.len(), 3, "one video per row");
    let by_id: BTreeMap<&str, &Value> =
        videos.iter().map(|v| (v["videoId"].as_str().unwrap(), v)).collect();
    let new = by_id[rows[2]["videoId"].as_str().unwrap()];
    assert_eq!(
        key_of(new),
        Some(id_key("row-2").as_str()),
        "a new video carries the digest: {new}"
    );
    for (i, row) in rows.iter().enumerate() {
        assert!(
            source_of(&server.url, row["videoId"].as_str().unwrap()).await == batch.sources[i],
            "row {i}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_ten_mib_id_is_a_key_like_any_other() {
    let server = spawn_server().await;
    let batch = Batch::new(1, |_| 1000);
    let id = "i".repeat(10 * MIB);
    std::fs::write(batch.manifest(), format!("id,path\n{id},f0.mp4\n")).unwrap();
    let started = Instant::now();
    let done = run(batch.upload(&server.url, &["--no-journal"]), Duration::from_secs(60)).await;
    assert_eq!(done.code, Some(0), "{}", &done.text()[..2000.min(done.text().len())]);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "no retries of a request that cannot change: {:?}",
        started.elapsed()
    );
    assert_eq!(batch.read_report()["summary"]["retries"], 0);
    let videos = list_videos(&server.url).await;
    assert_eq!(videos.len(), 1);
    assert_eq!(
        key_of(&videos[0]).map(str::len),
        Some(32),
        "a fixed-length key: {}",
        videos[0]["metadata"]
    );
    assert!(
        done.stderr.len() < 4096,
        "the id is not echoed: {} bytes of stderr",
        done.stderr.len()
    );
}

// =============================================================================================
// Delegated uploads whose answers get lost (item 10)
// =============================================================================================

/// A new upload token, asked for again while the server's dice lose the answer.
async fn upload_token(server: &TestServer) -> String {
    for _ in 0..50 {
        let sent = server
            .http
            .post(format!("{}/upload-tokens", server.url))
            .header("Authorization", server.basic())
            .json(&json!({}))
            .send();
        if let Ok(resp) = sent.await {
            let v: Value = resp.json().await.unwrap();
            return v["token"].as_str().unwrap().to_owned();
        }
    }
    panic!("no upload token in 50 tries")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lost_answer_to_a_token_upload_never_makes_a_second_video() {
    // 30 % of API answers are lost after the request took effect.
    let server = spawn_server_with(|c| {
        c.faults.lose_rate = 0.3;
        c.faults.seed = Some(1);
    })
    .await;
    let token = upload_token(&server).await;
    let batch = Batch::new(8, |i| 6 * MIB + i);
    let plain = batch.path("plain.csv");
    std::fs::write(
        &plain,
        (0..8).fold("id,path\n".to_owned(), |csv, i| csv + &format!("row-{i},f{i}.mp4\n")),
    )
    .unwrap();

    // Without an API key: a row whose first chunk's answer is lost fails and says why; no row
    // ever gets two videos, and the others complete (later chunks confirmed by the refusals).
    // One row at a time, so the seeded dice fall on the same requests every time.
    let mut cmd = avbatch();
    cmd.args([
        "upload",
        plain.to_str().unwrap(),
        "--base-url",
        &server.url,
        "--chunk-size",
        "5MiB",
        "-q",
        "--no-journal",
        "-c",
        "1",
    ])
    .args(["--report", batch.report().to_str().unwrap(), "--upload-token", &token]);
    let done = run(cmd, Duration::from_secs(120)).await;
    let rep = batch.read_report();
    let rows = rep["rows"].as_array().unwrap();
    let failed: Vec<&Value> = rows.iter().filter(|r| r["status"] == "failed").collect();
    assert!(
        !failed.is_empty() && failed.len() < 8,
        "the dice lose some first answers, not all: {rep}"
    );
    assert_eq!(done.code, Some(1), "{}", done.text());
    for row in &failed {
        assert!(row["error"].as_str().unwrap().contains("at most one"), "{row}");
    }
    let videos = list_videos(&server.url).await;
    let mut per_file: BTreeMap<String, usize> = BTreeMap::new();
    for v in &videos {
        *per_file.entry(v["title"].as_str().unwrap().to_owned()).or_default() += 1;
    }
    assert!(per_file.values().all(|n| *n == 1), "a row got two videos: {per_file:?}");
    for row in rows.iter().filter(|r| r["status"] == "uploaded") {
        let i: usize = row["id"].as_str().unwrap()[4..].parse().unwrap();
        assert!(
            source_of(&server.url, row["videoId"].as_str().unwrap()).await == batch.sources[i],
            "row {i}"
        );
    }

    // With the API key too: every video is made (and found again) by its key, so every row
    // ends with exactly one complete video, whatever answers are lost.
    let second = spawn_server_with(|c| {
        c.faults.lose_rate = 0.3;
        c.faults.seed = Some(12);
    })
    .await;
    let token = upload_token(&second).await;
    let done = run(
        batch.upload(&second.url, &["--no-journal", "--upload-token", &token]),
        Duration::from_secs(120),
    )
    .await;
    assert_eq!(done.code, Some(0), "{}", done.text());
    assert_exactly_once(&second.url, &batch).await;
}

// =============================================================================================
// Slow uplinks, and stopping on a failing link (item 11)
// =============================================================================================

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_slow_uplink_that_moves_is_never_cut() {
    // 64 KiB/s: the 1 MiB body takes 16 s, far more than the 5 s time-out, but it keeps moving.
    let server = spawn_server_with(|c| c.faults.bandwidth = Some(64 * 1024)).await;
    let batch = Batch::new(1, |_| MIB);
    let done = run(batch.upload(&server.url, &["--timeout", "5s"]), Duration::from_secs(120)).await;
    assert_eq!(done.code, Some(0), "{}", done.text());
    let rep = batch.read_report();
    assert_eq!(rep["summary"]["retries"], 0, "no attempt was cut: {rep}");
    assert!(rep["summary"]["seconds"].as_f64().unwrap() > 10.0, "the link was that slow: {rep}");
    assert_exactly_once(&server.url, &batch).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn after_a_stop_a_failing_part_is_not_tried_again() {
    // Every upload is cut part-way: the run keeps trying, until it is told to stop.
    let server = spawn_server_with(|c| {
        c.faults.reset_rate = 1.0;
        c.faults.bandwidth = Some(2 * MIB as u64);
        c.faults.seed = Some(3);
    })
    .await;
    let batch = Batch::new(2, |_| 6 * MIB);
    let mut running = Running::start(batch.upload(&server.url, &["-c", "2", "--retries", "20"]));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(running.running(), "still trying when the stop comes");
    running.signal("-TERM");
    let stopped = Instant::now();
    let done = running.finish(Duration::from_secs(120)).await;
    assert_eq!(done.code, Some(130), "{}", done.text());
    assert!(
        stopped.elapsed() < Duration::from_secs(8),
        "the stop waited for retries: {:?}\n{}",
        stopped.elapsed(),
        done.text()
    );
    let rep = batch.read_report();
    assert_eq!(rep["summary"]["interrupted"], 2, "both rows are left for the next run: {rep}");
}

// =============================================================================================
// Unfinished uploads the service will drop (item 14)
// =============================================================================================

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unfinished_video_near_its_deletion_is_replaced() {
    let data = tempfile::tempdir().unwrap();
    let batch = Batch::new(1, |_| 11 * MIB);
    let server = common::spawn_server_process(data.path(), &[]);
    let old = video_holding(&server.url, &id_key("row-0"), &batch.sources[0], 5 * MIB).await;
    drop(server);
    // The server's own record, aged six and a half days: still there, but api.video deletes
    // unfinished uploads at seven, likely under the rest of this one.
    let record = data.path().join("videos").join(&old).join("video.json");
    let mut video: Value = serde_json::from_slice(&std::fs::read(&record).unwrap()).unwrap();
    let aged = chrono::Utc::now() - chrono::TimeDelta::hours(6 * 24 + 12);
    video["createdAt"] = json!(aged.to_rfc3339());
    std::fs::write(&record, serde_json::to_vec(&video).unwrap()).unwrap();
    let server = common::spawn_server_process(data.path(), &[]);

    let done = run(batch.upload(&server.url, &["--no-journal"]), Duration::from_secs(60)).await;
    assert_eq!(done.code, Some(0), "{}", done.text());
    let rep = batch.read_report();
    let row = &rep["rows"][0];
    assert_ne!(row["videoId"], old.as_str(), "a new video: {row}");
    let note = row["note"].as_str().unwrap_or_default();
    assert!(note.contains(&format!("replaced unfinished video `{old}`")), "{row}");
    assert!(done.stderr.contains(&old), "the summary names the replaced video\n{}", done.text());
    let videos = list_videos(&server.url).await;
    assert_eq!(videos.len(), 1, "the replaced video is gone: {videos:?}");
    assert!(source_of(&server.url, row["videoId"].as_str().unwrap()).await == batch.sources[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_video_that_disappears_mid_upload_is_uploaded_again() {
    // 4 MiB/s: three 5 MiB parts take about 4 s, time enough to delete the video under them, as
    // api.video does with an upload left unfinished for 7 days.
    let server = spawn_server_with(|c| c.faults.bandwidth = Some(4 * MIB as u64)).await;
    let batch = Batch::new(1, |_| 15 * MIB + 3);
    let mut running = Running::start(batch.upload(&server.url, &[]));
    let gone = loop {
        let videos = list_videos(&server.url).await;
        if let Some(v) = videos.first() {
            let id = v["videoId"].as_str().unwrap().to_owned();
            if held_bytes(&server.url, &id).await > 0 {
                break id;
            }
        }
        assert!(running.running(), "the run ended before its video got a part");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let resp = http()
        .delete(format!("{}/videos/{gone}", server.url))
        .header("Authorization", basic_auth(KEY))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204);
    let done = running.finish(Duration::from_secs(120)).await;
    assert_eq!(done.code, Some(0), "{}", done.text());
    let rep = batch.read_report();
    let row = &rep["rows"][0];
    assert_ne!(row["videoId"], gone.as_str(), "{row}");
    assert!(
        row["note"].as_str().unwrap_or_default().contains(&format!("video `{gone}` disappeared")),
        "{row}"
    );
    assert_exactly_once(&server.url, &batch).await;
}

// =============================================================================================
// Creates a gateway answered 502/504 after they took effect (item 6)
// =============================================================================================

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gateway_errors_after_a_create_took_effect_leave_one_video_per_row() {
    // 30 % of API answers are replaced by a gateway's 502/504 after the request took effect.
    let server = spawn_server_with(|c| {
        c.faults.gateway_error_rate = 0.3;
        c.faults.seed = Some(6);
    })
    .await;
    let batch = Batch::new(40, |i| 100 * 1024 + i);
    let done =
        run(batch.upload(&server.url, &["-c", "8", "--retries", "20"]), Duration::from_secs(180))
            .await;
    assert_eq!(done.code, Some(0), "{}", done.text());
    let rep = batch.read_report();
    assert!(
        rep["summary"]["retries"].as_u64().unwrap() > 10,
        "the gateway failed many requests: {rep}"
    );
    assert_exactly_once(&server.url, &batch).await;
}

// =============================================================================================
// A lookup takes exact keys only, and the furthest along of several (item 8)
// =============================================================================================

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_loose_metadata_filter_never_adopts_another_rows_video() {
    // The server's filter matches substrings, as api.video's title filter does.
    let server =
        spawn_server_with(|c| c.faults.metadata_match = avbatch_serve::MetadataMatch::Contains)
            .await;
    // More videos than a 3-row run would index: each row asks the server's filter.
    for i in 0..150 {
        server.create_video(&format!("other {i}")).await;
    }
    let batch = Batch::new(4, |i| 6 * MIB + i);
    std::fs::write(batch.manifest(), "id,path\nclip-1,f0.mp4\nclip-2,f1.mp4\nclip-3,f2.mp4\n")
        .unwrap();
    let other = common::pattern(6 * MIB, 200);
    // avbatch 0.1 stored `clip-10` raw: a substring match for `clip-1`'s old key.
    video_holding(&server.url, "clip-10", &other, other.len()).await;
    // A key that contains `clip-2`'s.
    video_holding(&server.url, &format!("{}-old", id_key("clip-2")), &other, other.len()).await;
    // `clip-3` has two videos under its exact key: an empty one, then a complete one.
    let empty = video_holding(&server.url, &id_key("clip-3"), &batch.sources[2], 0).await;
    let complete =
        video_holding(&server.url, &id_key("clip-3"), &batch.sources[2], batch.sources[2].len())
            .await;

    let done = run(batch.upload(&server.url, &["--no-journal"]), Duration::from_secs(60)).await;
    assert_eq!(done.code, Some(0), "{}", done.text());
    let rep = batch.read_report();
    let rows = rep["rows"].as_array().unwrap();
    for (i, row) in rows.iter().take(2).enumerate() {
        assert_eq!(row["status"], "uploaded", "row {i} got a video of its own: {row}");
        assert!(
            source_of(&server.url, row["videoId"].as_str().unwrap()).await == batch.sources[i],
            "row {i}"
        );
    }
    assert_eq!(
        (rows[2]["status"].as_str(), rows[2]["videoId"].as_str()),
        (Some("skipped"), Some(complete.as_str())),
        "{rep}"
    );
    assert!(
        rows[2]["note"].as_str().unwrap_or_default().contains(&empty),
        "the other video is reported: {}",
        rows[2]
    );
    assert_eq!(
        list_videos(&server.url).await.len(),
        156,
        "two new videos, nothing deleted that the run did not make"
    );
}

// =============================================================================================
// Expired tokens under long parts, and stalled connections (items 11, 12)
// =============================================================================================

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_part_is_refused_for_a_token_that_expired_under_it() {
    // Tokens live 2 s, credentials are checked when a body ends, and each 5 MiB part takes 5 s.
    let server = spawn_server_with(|c| {
        c.token_ttl = Duration::from_secs(2);
        c.faults.auth_after_body = true;
        c.faults.bandwidth = Some(MIB as u64);
    })
    .await;
    let batch = Batch::new(1, |_| 10 * MIB + 1);
    let done = run(batch.upload(&server.url, &[]), Duration::from_secs(120)).await;
    assert_eq!(done.code, Some(0), "{}", done.text());
    let rep = batch.read_report();
    assert_eq!(rep["summary"]["retries"], 0, "no part refused and sent again: {rep}");
    assert_exactly_once(&server.url, &batch).await;
    assert_eq!(server.server.received_bytes(), batch.total(), "every byte went up once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_connection_that_stops_moving_is_cut_and_the_part_sent_again() {
    // Half the uploads stop being read part-way and are never answered.
    let server = spawn_server_with(|c| {
        c.faults.stall_rate = 0.5;
        c.faults.seed = Some(3);
    })
    .await;
    let batch = Batch::new(4, |i| 20 * MIB + i);
    let started = Instant::now();
    let done = run(
        batch.upload_cut(&server.url, "20MiB", &["--timeout", "2s", "-c", "4"]),
        Duration::from_secs(240),
    )
    .await;
    assert_eq!(done.code, Some(0), "{}", done.text());
    let rep = batch.read_report();
    let retries = rep["summary"]["retries"].as_u64().unwrap();
    assert!(retries > 0, "some uploads stalled: {rep}");
    let took = started.elapsed();
    eprintln!("{retries} stalled attempt(s) cut, run took {took:?}");
    // A link that moved fast and stopped is cut after about the time-out, not after the minute
    // its buffers would need on the slowest link.
    assert!(took < Duration::from_secs(2 * retries + 30), "{retries} stalls took {took:?}");
    assert_exactly_once(&server.url, &batch).await;
}

// =============================================================================================
// An unfinished video the service deleted (item 14)
// =============================================================================================

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_journal_video_the_service_dropped_is_made_anew() {
    let data = tempfile::tempdir().unwrap();
    let batch = Batch::new(1, |_| 16 * MIB);
    // A run stopped after its first part, at 2 MiB/s.
    let server = serve_on("127.0.0.1:0", data.path(), &["--bandwidth", "2MiB"]).await;
    let addr = server.addr();
    let mut running = Running::start(batch.upload(&server.url, &[]));
    batch.wait_for_progress(&mut running, 5 * MIB as u64, Duration::from_secs(30)).await;
    running.signal("-TERM");
    let done = running.finish(Duration::from_secs(30)).await;
    assert_eq!(done.code, Some(130), "{}", done.text());
    let old = batch.read_report()["rows"][0]["videoId"].as_str().unwrap().to_owned();
    drop(server);
    // Eight days later the service has dropped the unfinished upload (api.video: after 7).
    let record = data.path().join("videos").join(&old).join("video.json");
    let mut video: Value = serde_json::from_slice(&std::fs::read(&record).unwrap()).unwrap();
    video["createdAt"] = json!((chrono::Utc::now() - chrono::TimeDelta::days(8)).to_rfc3339());
    std::fs::write(&record, serde_json::to_vec(&video).unwrap()).unwrap();
    // The same address: the journal belongs to its destination.
    let server = serve_on(&addr, data.path(), &[]).await;

    let done = run(batch.upload(&server.url, &[]), Duration::from_secs(60)).await;
    assert_eq!(done.code, Some(0), "{}", done.text());
    let row = &batch.read_report()["rows"][0];
    assert_ne!(row["videoId"], old.as_str(), "{row}");
    assert!(
        row["note"]
            .as_str()
            .unwrap_or_default()
            .contains(&format!("`{old}` recorded in the journal is no longer on the server")),
        "{row}"
    );
    assert_exactly_once(&server.url, &batch).await;
}

// =============================================================================================
// A default part with a margin under 200 MiB (item 13)
// =============================================================================================

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_default_part_leaves_room_under_200_mib() {
    // A 300 MiB sparse file: three parts of at most 128 MiB, where 200 MiB parts made two whose
    // requests, envelope included, went over 200 MiB.
    let batch = Batch::new(1, |_| 1);
    std::fs::File::options()
        .write(true)
        .open(batch.path("f0.mp4"))
        .unwrap()
        .set_len(300 * MIB as u64)
        .unwrap();
    let mut cmd = avbatch();
    cmd.args(["upload", batch.manifest().to_str().unwrap(), "--dry-run"]);
    let done = run(cmd, Duration::from_secs(30)).await;
    assert_eq!(done.code, Some(0), "{}", done.text());
    assert!(done.stdout.contains("3 parts of up to 128.00 MiB"), "{}", done.text());
    let help = avbatch().args(["upload", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("[default: 128MiB]"), "{help}");
}

// =============================================================================================
// A replacement finished without its journal (#25, point 4)
// =============================================================================================

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_replacement_is_finished_by_a_run_without_its_journal() {
    let batch = Batch::new(1, |_| 300 * 1024);
    let data = tempfile::tempdir().unwrap();
    let server = serve_on("127.0.0.1:0", data.path(), &["--bandwidth", "2MiB"]).await;
    let done = run(batch.upload(&server.url, &[]), Duration::from_secs(60)).await;
    assert_eq!(done.code, Some(0), "{}", done.text());
    let old = batch.read_report()["rows"][0]["videoId"].as_str().unwrap().to_owned();

    // The file is rewritten, and its `--force` replacement killed mid-upload: the old video has
    // given up the key, the new one holds part of the new file.
    let new = common::pattern(16 * MIB, 99);
    std::fs::write(batch.path("f0.mp4"), &new).unwrap();
    let mut running = Running::start(batch.upload(&server.url, &["--force"]));
    batch.wait_for_progress(&mut running, 5 * MIB as u64, Duration::from_secs(30)).await;
    running.kill9();
    assert_eq!(list_videos(&server.url).await.len(), 2, "the old video and the new one");

    // A run elsewhere, without that journal, finishes the new video: the old one goes too.
    let done = run(batch.upload(&server.url, &["--no-journal"]), Duration::from_secs(60)).await;
    assert_eq!(done.code, Some(0), "{}", done.text());
    let row = &batch.read_report()["rows"][0];
    let kept = row["videoId"].as_str().unwrap();
    assert_ne!(kept, old, "{row}");
    assert!(row["note"].as_str().unwrap_or_default().contains(&old), "the note names it: {row}");
    let videos = list_videos(&server.url).await;
    assert_eq!(videos.len(), 1, "the replaced video was deleted: {videos:#?}");
    assert!(source_of(&server.url, kept).await == new);

    // `--keep-old` keeps the old video, for good: a later run without the journal leaves it.
    std::fs::write(batch.path("f0.mp4"), common::pattern(300 * 1024, 5)).unwrap();
    let done =
        run(batch.upload(&server.url, &["--force", "--keep-old"]), Duration::from_secs(60)).await;
    assert_eq!(done.code, Some(0), "{}", done.text());
    let done = run(batch.upload(&server.url, &["--no-journal"]), Duration::from_secs(60)).await;
    assert_eq!(done.code, Some(0), "{}", done.text());
    assert_eq!(list_videos(&server.url).await.len(), 2, "the kept video stays");
}
