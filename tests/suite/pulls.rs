//! Rows api.video pulls from their URL (issue #24, points 1 to 3), through the real binary and
//! a double that answers as api.video documents: a source it could not fetch reads `ingesting`
//! for ever (or `missing`, or no state: `--source-failed-as`). A pulled row is done once the
//! double holds its source, never when the create is answered; one whose source does not arrive
//! within `--pull-timeout` fails with the reason, and the next run replaces its video; an old
//! complete video goes only once the new one holds its source; the row's assets follow its
//! source; a pull whose create's answer was lost is still reported as this run's pull; a bucket's
//! presigned URL lives as long as the wait, and no longer than the session keys that sign it.

use crate::common;

use std::path::Path;
use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use avbatch_serve::FailedPull;
use common::batch::*;
use common::web::{web_server, WebObject};
use common::{pattern, spawn_server_with, TestServer, KEY};
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(120);

/// `avbatch upload manifest.csv --base-url URL --report report.json EXTRA` in `dir`.
fn upload(server: &TestServer, dir: &Path, extra: &[&str]) -> Command {
    let mut cmd = avbatch();
    cmd.args(["upload", "manifest.csv", "--base-url", &server.url, "--report", "report.json"])
        .args(["--wait-poll", "100ms"])
        .args(extra)
        .current_dir(dir)
        .env("AVBATCH_API_KEY", KEY);
    cmd
}

/// The first row of the report.
fn first_row(dir: &Path) -> Value {
    let text = std::fs::read(dir.join("report.json")).expect("the report was written");
    let doc: Value = serde_json::from_slice(&text).unwrap();
    doc["rows"][0].clone()
}

/// Every video on the server: `(id, ingest status)`.
async fn videos(server: &TestServer) -> Vec<(String, Value)> {
    let mut all = Vec::new();
    for v in server.all_videos().await {
        let id = v["videoId"].as_str().unwrap().to_owned();
        let state = server.status_of(&id).await["ingest"]["status"].clone();
        all.push((id, state));
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pull_api_video_cannot_fetch_fails_and_each_next_run_replaces_its_video() {
    for failed_as in [FailedPull::Ingesting, FailedPull::Missing, FailedPull::Absent] {
        let server = spawn_server_with(|c| c.faults.source_pull.failed_as = failed_as).await;
        let source = pattern(300_000, 7);
        let web = WebObject::new(source.clone(), None);
        web.refuse_gets.store(true, Ordering::SeqCst);
        let origin = web_server(web.clone()).await;
        let dir = tempfile::tempdir().unwrap();
        let manifest = format!("id,path,title\nrow-0,{origin}/films/a.mp4,Pulled\n");
        std::fs::write(dir.path().join("manifest.csv"), manifest).unwrap();
        let case = format!("{failed_as:?}");

        // The first run: the video is made, api.video never holds its source.
        let started = Instant::now();
        let first = run(upload(&server, dir.path(), &["--pull-timeout", "2s"]), LIMIT).await;
        assert_eq!(first.code, Some(1), "{case}: {}", first.text());
        assert!(started.elapsed() >= Duration::from_secs(2), "{case}: waited for the source");
        let row = first_row(dir.path());
        assert_eq!(row["status"], "failed", "{case}: {row}");
        let error = row["error"].as_str().unwrap_or_default();
        assert!(error.contains("has not fetched the source from its URL within 2s"), "{error}");
        let stuck = row["videoId"].as_str().expect("the row names its video").to_owned();
        eprintln!("{case}: first run: {error}");

        // The second run does not say "already done": it replaces the video, and fails again.
        let second = run(upload(&server, dir.path(), &["--pull-timeout", "2s"]), LIMIT).await;
        assert_eq!(second.code, Some(1), "{case}: {}", second.text());
        let row = first_row(dir.path());
        assert_eq!(row["status"], "failed", "{case}: {row}");
        let notes = row["note"].to_string();
        assert!(notes.contains(&format!("replaced video `{stuck}`")), "{case}: {row}");
        assert!(notes.contains("(deleted)"), "{case}: {row}");
        eprintln!("{case}: second run: {notes}");
        let listed = videos(&server).await;
        assert_eq!(listed.len(), 1, "{case}: the stuck video went: {listed:?}");

        // Once the URL answers, the next run ends with one complete video holding the bytes.
        web.refuse_gets.store(false, Ordering::SeqCst);
        let third = run(upload(&server, dir.path(), &["--pull-timeout", "2s"]), LIMIT).await;
        assert_eq!(third.code, Some(0), "{case}: {}", third.text());
        let row = first_row(dir.path());
        assert_eq!(row["status"], "uploaded", "{case}: {row}");
        let id = row["videoId"].as_str().unwrap();
        let listed = videos(&server).await;
        assert_eq!(listed, vec![(id.to_owned(), "ingested".into())], "{case}");
        assert!(server.source_of(id).await == source, "{case}: the source byte for byte");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replacement_whose_new_source_fails_leaves_the_old_video_in_place() {
    let server = spawn_server_with(|_| {}).await;
    let (v1, v2) = (pattern(200_000, 1), pattern(250_000, 2));
    let web = WebObject::new(v1.clone(), None);
    let origin = web_server(web.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = format!("id,path,title,action\nrow-0,{origin}/a.mp4,Pulled,upsert\n");
    std::fs::write(dir.path().join("manifest.csv"), manifest).unwrap();
    let done = run(upload(&server, dir.path(), &[]), LIMIT).await;
    assert_eq!(done.code, Some(0), "{}", done.text());
    let old = first_row(dir.path())["videoId"].as_str().unwrap().to_owned();

    // The object changes, and api.video cannot fetch the new one: the old video stays whole.
    web.replace(v2.clone());
    web.refuse_gets.store(true, Ordering::SeqCst);
    let replaced = run(upload(&server, dir.path(), &["--pull-timeout", "2s"]), LIMIT).await;
    assert_eq!(replaced.code, Some(1), "{}", replaced.text());
    let row = first_row(dir.path());
    assert_eq!(row["status"], "failed", "{row}");
    assert_ne!(row["videoId"], old.as_str(), "a new video was made for the new object: {row}");
    assert_eq!(server.status_of(&old).await["ingest"]["status"], "ingested");
    assert!(server.source_of(&old).await == v1, "the old video still plays the old object");

    // Once the new object can be fetched, the next run completes it and only then deletes the
    // old video.
    web.refuse_gets.store(false, Ordering::SeqCst);
    let done = run(upload(&server, dir.path(), &["--pull-timeout", "2s"]), LIMIT).await;
    assert_eq!(done.code, Some(0), "{}", done.text());
    let new = first_row(dir.path())["videoId"].as_str().unwrap().to_owned();
    let listed = videos(&server).await;
    assert_eq!(listed, vec![(new.clone(), "ingested".into())], "{}", done.text());
    assert!(server.source_of(&new).await == v2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pulled_rows_assets_follow_its_source() {
    // 200 KiB/s: the double takes about 3 s to fetch the 600 KiB source.
    let server = spawn_server_with(|c| c.faults.bandwidth = Some(200 * 1024)).await;
    let web = WebObject::new(pattern(600 * 1024, 3), None);
    let origin = web_server(web).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("en.vtt"), "WEBVTT\n\n00:00.000 --> 00:01.000\nHello\n")
        .unwrap();
    let manifest = format!(
        "id,path,title,thumbnail_time,captions.en\nrow-0,{origin}/a.mp4,Pulled,00:00:01,en.vtt\n"
    );
    std::fs::write(dir.path().join("manifest.csv"), manifest).unwrap();
    let done = run(upload(&server, dir.path(), &[]), LIMIT).await;
    assert_eq!(done.code, Some(0), "{}", done.text());
    let row = first_row(dir.path());
    let id = row["videoId"].as_str().unwrap();
    // The run ended once the source was there, its assets sent after it.
    assert_eq!(server.status_of(id).await["ingest"]["status"], "ingested", "{row}");
    let record = server.get_json(&format!("/videos/{id}/captions/en")).await;
    assert_eq!(record["srclang"], "en", "{record}");
    let assets = row["assets"].to_string();
    assert!(assets.contains("thumbnail") && assets.contains("captions.en"), "{row}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pull_that_did_not_arrive_is_sent_from_here_with_relay() {
    let server = spawn_server_with(|_| {}).await;
    let source = pattern(400_000, 9);
    let web = WebObject::new(source.clone(), None);
    web.refuse_gets.store(true, Ordering::SeqCst);
    let origin = web_server(web.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = format!("id,path,title\nrow-0,{origin}/b.mp4,Relayed\n");
    std::fs::write(dir.path().join("manifest.csv"), manifest).unwrap();
    let first = run(upload(&server, dir.path(), &["--pull-timeout", "1s"]), LIMIT).await;
    assert_eq!(first.code, Some(1), "{}", first.text());
    let stuck = first_row(dir.path())["videoId"].as_str().unwrap().to_owned();

    // The video made to fetch its source takes no parts: --relay makes a new one, sent here.
    web.refuse_gets.store(false, Ordering::SeqCst);
    let relayed = run(upload(&server, dir.path(), &["--relay"]), LIMIT).await;
    assert_eq!(relayed.code, Some(0), "{}", relayed.text());
    let row = first_row(dir.path());
    assert_eq!(
        (row["status"].as_str(), row["transfer"].as_str()),
        (Some("uploaded"), Some("relay"))
    );
    let note = row["note"].to_string();
    assert!(note.contains(&format!("replaced video `{stuck}`, which was made to fetch")), "{row}");
    let id = row["videoId"].as_str().unwrap();
    assert_eq!(videos(&server).await, vec![(id.to_owned(), "uploaded".into())]);
    assert!(server.source_of(id).await == source);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_screen_says_while_api_video_fetches_a_pulled_source() {
    // 200 KiB/s: the double takes about 4 s to fetch 800 KiB, while nothing is sent from here.
    let server = spawn_server_with(|c| c.faults.bandwidth = Some(200 * 1024)).await;
    let origin = web_server(WebObject::new(pattern(800 * 1024, 5), None)).await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = format!("id,path,title\nrow-0,{origin}/c.mp4,Pulled\n");
    std::fs::write(dir.path().join("manifest.csv"), manifest).unwrap();
    let args: Vec<String> = ["upload", "manifest.csv", "--base-url", &server.url, "--no-journal"]
        .iter()
        .map(|a| a.to_string())
        .collect();
    let mut term = crate::terminal::Terminal::start(dir.path(), &args, &[("AVBATCH_API_KEY", KEY)]);
    let screens = term.watch(LIMIT, |s| s.contains("rows uploaded"));
    assert_eq!(term.exit(Duration::from_secs(30)), Some(0), "{}", term.screen());
    let said = "waiting: api.video is fetching 1 source from its URL";
    assert!(screens.iter().any(|s| s.contains(said)), "{}", term.screen());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_presigned_url_lives_as_long_as_the_wait_and_no_longer_than_its_session_keys() {
    let source = pattern(200_000, 6);
    let moto = common::s3::start();
    moto.create_bucket("lib").await;
    moto.put("lib", "m/a.mp4", source.clone()).await;
    moto.put("lib", "m/b.mp4", source.clone()).await;
    let server = spawn_server_with(|_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let url_of = |id: &str| -> String {
        let record = server.data.path().join("videos").join(id).join("video.json");
        let record: Value = serde_json::from_slice(&std::fs::read(record).unwrap()).unwrap();
        record["source"].as_str().expect("the video keeps its source URL").to_owned()
    };
    let expires = |url: &str| -> u64 {
        let query = url.split_once('?').unwrap().1;
        let value = query.split('&').find_map(|p| p.strip_prefix("X-Amz-Expires="));
        value.expect("a presigned URL").parse().unwrap()
    };

    // Long-lived keys: the URL lives for the wait (--pull-timeout 2h here) and an hour more.
    std::fs::write(dir.path().join("manifest.csv"), "id,path,title\na,s3://lib/m/a.mp4,A\n")
        .unwrap();
    let mut cmd = upload(&server, dir.path(), &["--pull-timeout", "2h"]);
    cmd.envs(moto.env());
    let done = run(cmd, LIMIT).await;
    assert_eq!(done.code, Some(0), "{}", done.text());
    assert_eq!(expires(&url_of(first_row(dir.path())["videoId"].as_str().unwrap())), 3 * 3600);

    // Session keys that expire in 20 minutes: the URL lives no longer, and the row says so.
    let in_20_min = chrono::Utc::now() + chrono::Duration::minutes(20);
    std::fs::write(dir.path().join("manifest.csv"), "id,path,title\nb,s3://lib/m/b.mp4,B\n")
        .unwrap();
    let mut cmd = upload(&server, dir.path(), &["--pull-timeout", "2h"]);
    cmd.envs(moto.env())
        .env("AWS_SESSION_TOKEN", "a-session-token")
        .env("AWS_CREDENTIAL_EXPIRATION", in_20_min.to_rfc3339());
    let done = run(cmd, LIMIT).await;
    assert_eq!(done.code, Some(0), "{}", done.text());
    let row = first_row(dir.path());
    let lives = expires(&url_of(row["videoId"].as_str().unwrap()));
    assert!((1140..=1200).contains(&lives), "{lives} s: no longer than the keys");
    let note = row["note"].as_str().unwrap_or_default();
    assert!(note.contains("the session keys that sign it expire then"), "{row}");
    assert!(!done.stderr.contains("a-session-token"), "the token is never printed");
}

/// Issue #25, point 9: a pulled row whose create's answer was lost finds its video again by
/// its key, api.video having fetched the source meanwhile. This run made and pulled it: the
/// report says `uploaded` by `pull`, as for a create whose answer came, never `skipped` by
/// `relay` (nothing was relayed, and the video did not exist before the run).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pull_whose_create_answer_was_lost_is_reported_as_this_runs_pull() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let log = d.join("requests.jsonl");
    // A third of the API's answers lost once the request took effect; each request answered
    // after 300 ms, by when the double has fetched a small source.
    let log_arg = log.to_str().unwrap();
    let extra =
        ["--lose-rate", "0.3", "--seed", "25", "--latency", "300ms", "--request-log", log_arg];
    let serve = serve_on("127.0.0.1:0", &d.join("data"), &extra).await;
    let origin = web_server(WebObject::new(pattern(50_000, 4), None)).await;
    let rows = 12;
    let mut manifest = String::from("id,path,title\n");
    for i in 0..rows {
        manifest.push_str(&format!("row-{i},{origin}/films/{i}.mp4,Pulled {i}\n"));
    }
    std::fs::write(d.join("manifest.csv"), manifest).unwrap();
    let mut cmd = avbatch();
    cmd.args(["upload", "manifest.csv", "--base-url", &serve.url, "--report", "report.json"])
        .args(["--wait-poll", "100ms", "--no-journal"])
        .current_dir(d)
        .env("AVBATCH_API_KEY", KEY);
    let done = run(cmd, LIMIT).await;
    assert_eq!(done.code, Some(0), "{}", done.text());

    // Some creates' answers were lost (the double took them): the case at hand happened.
    let requests = std::fs::read_to_string(&log).unwrap();
    let lost_creates = requests
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| r["method"] == "POST" && r["path"] == "/videos" && r["answered"] == false)
        .count();
    assert!(lost_creates > 0, "no create's answer was lost:\n{requests}");

    let doc: Value =
        serde_json::from_slice(&std::fs::read(d.join("report.json")).unwrap()).unwrap();
    let said: Vec<(String, String)> = doc["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["status"].to_string(), r["transfer"].to_string()))
        .collect();
    let pulled = ("\"uploaded\"".to_owned(), "\"pull\"".to_owned());
    assert_eq!(said, vec![pulled; rows], "{lost_creates} creates' answers lost");
    assert_eq!(doc["summary"]["uploaded"], rows, "{}", doc["summary"]);
    let listed = list_videos(&serve.url).await;
    assert_eq!(listed.len(), rows, "one video a row");
}
