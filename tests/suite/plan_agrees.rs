//! The plan and the run agree (issue #25, point 8): for each row, `upload --dry-run --json`
//! says what the run then does, and after the run the plan says `skip`. A resumed row costs
//! the bytes it has left, a failed encoding is planned as the failure the run reports (and
//! with `--force` as the upload it makes), assets added or changed since are planned and
//! sent (by an `update` row too), fields the journal records as set are skipped by both, and
//! a `delete` row names exactly the videos the run deletes, its file touched or not.
//!
//! The real binary, against servers on 127.0.0.1 the tests start.

use crate::common;

use std::time::{Duration, SystemTime};

use common::batch::*;
use common::{basic_auth, spawn_server_with, KEY, MIB};
use serde_json::{json, Value};

const LIMIT: Duration = Duration::from_secs(120);

/// `upload MANIFEST --dry-run --json EXTRA`: the plan, with the test key.
async fn plan(batch: &Batch, url: &str, extra: &[&str]) -> Value {
    let mut cmd = batch.upload(url, &["--dry-run", "--json"]);
    cmd.args(extra);
    let done = run(cmd, LIMIT).await;
    assert_eq!(done.code, Some(0), "{}", done.text());
    serde_json::from_str(&done.stdout).unwrap_or_else(|e| panic!("{e}: {}", done.text()))
}

/// The plan's first row.
async fn first_row(batch: &Batch, url: &str, extra: &[&str]) -> Value {
    plan(batch, url, extra).await["plan"][0].clone()
}

/// The run with `extra`, to its end: its exit code and the report's first row.
async fn upload(batch: &Batch, url: &str, extra: &[&str]) -> (Option<i32>, Value) {
    let done = run(batch.upload(url, extra), LIMIT).await;
    (done.code, batch.read_report()["rows"][0].clone())
}

/// Whether the server still has video `id`.
async fn exists(url: &str, id: &str) -> bool {
    get_api(format!("{url}/videos/{id}")).await.status().as_u16() == 200
}

/// The strings of a JSON array, sorted.
fn sorted(v: &Value) -> Vec<String> {
    let mut items: Vec<String> =
        v.as_array().into_iter().flatten().map(|i| i.as_str().unwrap().to_owned()).collect();
    items.sort();
    items
}

#[tokio::test(flavor = "multi_thread")]
async fn a_resumed_row_is_planned_for_the_bytes_it_has_left() {
    // 4 MiB/s and one video at a time: a part of 5 MiB takes more than a second.
    let server = spawn_server_with(|c| c.faults.bandwidth = Some(4 * MIB as u64)).await;
    let batch = Batch::new(1, |_| 12 * MIB);
    let mut running = Running::start(batch.upload(&server.url, &["-c", "1"]));
    let held = batch.wait_for_progress(&mut running, 5 * MIB as u64, LIMIT).await;
    let killed = running.kill9();
    assert_eq!(killed.code, None, "killed mid-upload: {}", killed.text());
    assert_eq!(batch.journal_bytes(), held);
    let left = batch.total() - held;
    assert!(left > 0 && left < batch.total(), "{held} of {}", batch.total());

    // 1 000 000 bytes a second: the link's time is the bytes to send.
    let v = plan(&batch, &server.url, &["--assume-bandwidth", "8Mbit"]).await;
    assert_eq!(v["plan"][0]["action"], "resume", "{v}");
    let link = (left as f64 / 1e5).round() / 10.0;
    assert_eq!(v["estimate"]["linkSeconds"].as_f64(), Some(link), "{v}");
    assert_eq!(v["estimate"]["bytesToSend"], left, "{v}");

    let (code, row) = upload(&batch, &server.url, &["-c", "1"]).await;
    assert_eq!(code, Some(0), "{row}");
    assert_eq!(row["sent"], left, "the run sent what the plan said: {row}");
    assert_eq!(first_row(&batch, &server.url, &[]).await["action"], "skip");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_encoding_is_planned_as_the_failure_and_force_as_the_upload() {
    let data = tempfile::tempdir().unwrap();
    let failing = ["--encoding-time", "100ms", "--encoding-fail-rate", "1"];
    let server = serve_on("127.0.0.1:0", data.path(), &failing).await;
    let batch = Batch::new(1, |_| 3000);
    let (code, row) =
        upload(&batch, &server.url, &["--wait", "playable", "--wait-poll", "50ms"]).await;
    assert_eq!(code, Some(1), "{row}");
    let old = row["videoId"].as_str().unwrap().to_owned();

    // The plan says the run fails it, and how to upload it again; the run does.
    let planned = first_row(&batch, &server.url, &[]).await;
    assert_eq!(planned["action"], "fail", "{planned}");
    let why = planned["error"].as_str().unwrap_or_default();
    assert!(why.contains(&format!("the encoding of video `{old}` failed")), "{planned}");
    assert!(why.contains("pass --force"), "{planned}");
    let (code, row) = upload(&batch, &server.url, &[]).await;
    assert_eq!((code, &row["status"]), (Some(1), &json!("failed")), "{row}");
    // The same error, but for the qualities failed so far (the double fails them in turn).
    let said = |v: &Value| {
        let text = v["error"].as_str().unwrap_or_default().to_owned();
        match (text.find(" failed ("), text.find("): ")) {
            (Some(from), Some(to)) if from < to => format!("{}{}", &text[..from], &text[to..]),
            _ => text,
        }
    };
    assert_eq!(said(&row), said(&planned), "the run fails it as planned: {row}");

    // With --force: the file goes again, all of it, to a new video.
    let forced = plan(&batch, &server.url, &["--force"]).await;
    assert_eq!(forced["plan"][0]["action"], "upload", "{forced}");
    assert_eq!(forced["estimate"]["bytesToSend"], 3000, "{forced}");
    assert_eq!(forced["estimate"]["requests"]["uploads"], 1, "{forced}");
    let (code, row) = upload(&batch, &server.url, &["--force"]).await;
    assert_eq!((code, &row["status"], &row["sent"]), (Some(0), &json!("uploaded"), &json!(3000)));
    assert_ne!(row["videoId"], old, "{row}");
}

#[tokio::test(flavor = "multi_thread")]
async fn captions_added_or_changed_since_are_planned_and_sent() {
    let server = spawn_server_with(|_| {}).await;
    let batch = Batch::new(1, |_| 2000);
    let (code, row) = upload(&batch, &server.url, &[]).await;
    assert_eq!(code, Some(0), "{row}");

    // A caption added to the done row: the run sends it, so the plan says it goes.
    let vtt = |text: &str| format!("WEBVTT\n\n00:00.000 --> 00:01.000\n{text}\n");
    std::fs::write(batch.path("en.vtt"), vtt("Hello")).unwrap();
    let csv = "id,path,title,captions.en\nrow-0,f0.mp4,Fault video 0,en.vtt\n";
    std::fs::write(batch.manifest(), csv).unwrap();
    for text in ["first", "changed"] {
        let v = plan(&batch, &server.url, &[]).await;
        assert_eq!(v["plan"][0]["action"], "assets", "{text}: {v}");
        assert_eq!(sorted(&v["plan"][0]["assets"]), ["captions.en"], "{text}: {v}");
        // The caption, then the record of the assets in the video's metadata.
        assert_eq!(v["estimate"]["requests"]["writes"], 2, "{text}: {v}");
        let (code, row) = upload(&batch, &server.url, &[]).await;
        assert_eq!(code, Some(0), "{text}: {row}");
        assert_eq!((&row["status"], &row["assets"]), (&json!("updated"), &json!("captions.en")));
        assert_eq!(first_row(&batch, &server.url, &[]).await["action"], "skip", "{text}");
        // The caption's file changes: its new digest goes.
        std::fs::write(batch.path("en.vtt"), vtt("Hello again")).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_update_row_s_new_caption_is_planned_and_sent() {
    let server = spawn_server_with(|_| {}).await;
    let batch = Batch::new(1, |_| 2000);
    let (code, row) = upload(&batch, &server.url, &[]).await;
    assert_eq!(code, Some(0), "{row}");
    std::fs::write(batch.path("en.vtt"), "WEBVTT\n\n00:00.000 --> 00:01.000\nHi\n").unwrap();
    let csv = "id,path,title,captions.en,action\nrow-0,f0.mp4,Fault video 0,en.vtt,update\n";
    std::fs::write(batch.manifest(), csv).unwrap();

    // Its fields are as the journal set them; its caption is new: that alone goes.
    let v = plan(&batch, &server.url, &[]).await;
    assert_eq!(v["plan"][0]["action"], "assets", "{v}");
    assert_eq!(sorted(&v["plan"][0]["assets"]), ["captions.en"], "{v}");
    assert_eq!(v["estimate"]["requests"]["writes"], 2, "{v}");
    let (code, row) = upload(&batch, &server.url, &[]).await;
    assert_eq!(code, Some(0), "{row}");
    assert_eq!((&row["status"], &row["assets"]), (&json!("updated"), &json!("captions.en")));
    assert_eq!(first_row(&batch, &server.url, &[]).await["action"], "skip");
    // Without the journal, the video's own record of its assets says the same.
    assert_eq!(first_row(&batch, &server.url, &["--no-journal"]).await["action"], "skip");
}

#[tokio::test(flavor = "multi_thread")]
async fn fields_the_journal_records_as_set_are_skipped_by_plan_and_run_alike() {
    let server = spawn_server_with(|_| {}).await;
    let batch = Batch::new(1, |_| 2000);
    std::fs::write(batch.manifest(), "id,path,title,tags,action\nrow-0,f0.mp4,V0,a;b,upsert\n")
        .unwrap();
    let (code, row) = upload(&batch, &server.url, &[]).await;
    assert_eq!(code, Some(0), "{row}");
    let id = row["videoId"].as_str().unwrap().to_owned();
    // Changed by hand in the dashboard.
    let resp = http()
        .patch(format!("{}/videos/{id}", server.url))
        .header("Authorization", basic_auth(KEY))
        .json(&json!({"title": "By hand", "tags": ["x"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);

    // The journal records the row's fields as set on its video: neither reads it again.
    let planned = first_row(&batch, &server.url, &[]).await;
    assert_eq!(planned["action"], "skip", "{planned}");
    let (code, row) = upload(&batch, &server.url, &[]).await;
    assert_eq!((code, &row["status"]), (Some(0), &json!("skipped")), "{row}");

    // Without the journal both read the video, and the hand edit is undone.
    let planned = first_row(&batch, &server.url, &["--no-journal"]).await;
    assert_eq!(planned["action"], "update", "{planned}");
    assert_eq!(sorted(&planned["fields"]), ["tags", "title"], "{planned}");
    let (code, row) = upload(&batch, &server.url, &["--no-journal"]).await;
    assert_eq!(
        (code, &row["status"], &row["updated"]),
        (Some(0), &json!("updated"), &json!("title tags"))
    );
    assert_eq!(first_row(&batch, &server.url, &["--no-journal"]).await["action"], "skip");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_delete_row_plans_the_videos_the_run_deletes_and_then_skips() {
    let server = spawn_server_with(|_| {}).await;
    let url = server.url.clone();
    let batch = Batch::new(1, |_| 2000);
    let (code, row) = upload(&batch, &url, &[]).await;
    assert_eq!(code, Some(0), "{row}");
    let id = row["videoId"].as_str().unwrap().to_owned();
    // A video under the raw key avbatch 0.1 stored for the row, beside the row's own.
    let old = video_holding_under(&url, "avbatch_key", "row-0", b"abc", 3).await;

    std::fs::write(batch.manifest(), "id,path,action\nrow-0,,delete\n").unwrap();
    let planned = first_row(&batch, &url, &[]).await;
    assert_eq!(planned["action"], "delete", "{planned}");
    let (code, row) = upload(&batch, &url, &[]).await;
    assert_eq!((code, &row["status"]), (Some(0), &json!("deleted")), "{row}");
    let mut gone = Vec::new();
    for video in [&id, &old] {
        if !exists(&url, video).await {
            gone.push(video.clone());
        }
    }
    gone.sort();
    assert_eq!(sorted(&planned["videoIds"]), gone, "the plan named what the run deleted");
    let mut both = vec![id.clone(), old.clone()];
    both.sort();
    assert_eq!(gone, both, "the row's video under each of its keys went");
    assert_eq!(first_row(&batch, &url, &[]).await["action"], "skip");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_delete_row_keyed_by_its_touched_file_deletes_the_video_it_was_uploaded_as() {
    let server = spawn_server_with(|_| {}).await;
    let url = server.url.clone();
    let batch = Batch::new(2, |i| 2000 + i);
    std::fs::write(batch.manifest(), "path,title\nf0.mp4,V0\nf1.mp4,V1\n").unwrap();
    let done = run(batch.upload(&url, &[]), LIMIT).await;
    assert_eq!(done.code, Some(0), "{}", done.text());
    let rows = batch.read_report()["rows"].clone();
    let (v0, v1) = (rows[0]["videoId"].as_str().unwrap(), rows[1]["videoId"].as_str().unwrap());
    let (v0, v1) = (v0.to_owned(), v1.to_owned());

    // Touched: its time moves, so does its key (path, size and time).
    let later = SystemTime::now() + Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(batch.path("f0.mp4"))
        .unwrap()
        .set_modified(later)
        .unwrap();
    std::fs::write(batch.manifest(), "path,action\nf0.mp4,delete\n").unwrap();
    let planned = first_row(&batch, &url, &[]).await;
    assert_eq!(
        (&planned["action"], sorted(&planned["videoIds"])),
        (&json!("delete"), vec![v0.clone()])
    );
    let (code, row) = upload(&batch, &url, &[]).await;
    assert_eq!((code, &row["status"], &row["videoId"]), (Some(0), &json!("deleted"), &json!(v0)));
    assert!(!exists(&url, &v0).await && exists(&url, &v1).await, "only f0.mp4's video went");
    assert_eq!(first_row(&batch, &url, &[]).await["action"], "skip");

    // The path uploads anew afterwards, as a row whose key met a delete does.
    std::fs::write(batch.manifest(), "path,title\nf0.mp4,V0\n").unwrap();
    assert_eq!(first_row(&batch, &url, &[]).await["action"], "upload");
    let (code, row) = upload(&batch, &url, &[]).await;
    assert_eq!((code, &row["status"]), (Some(0), &json!("uploaded")), "{row}");
    assert!(source_of(&url, row["videoId"].as_str().unwrap()).await == batch.sources[0]);
}
