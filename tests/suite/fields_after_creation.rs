//! A video's fields after it is made (issue #24, point 6), through the real binary and the
//! double: the transcript fields are set by `PATCH` like the others (upsert sets them, check
//! compares them); `clip` and `watermark`, which api.video takes only when a video is made, are
//! never silently ignored when they change: the row says so and fails, and --force makes a new
//! video carrying them (the old one going once it is complete); a dry run says that changing
//! `language` starts a new transcript.

use crate::common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::batch::*;
use common::{spawn_server_with, TestServer, KEY};
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(60);

/// A folder with `v.mp4` and `manifest.csv` holding `header` and one row `row-0,v.mp4,…`.
fn library(header: &str, cells: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("v.mp4"), common::pattern(100_000, 4)).unwrap();
    write_row(dir.path(), header, cells);
    dir
}

fn write_row(dir: &Path, header: &str, cells: &str) {
    let manifest = format!("id,path,action,{header}\nrow-0,v.mp4,upsert,{cells}\n");
    std::fs::write(dir.join("manifest.csv"), manifest).unwrap();
}

fn upload(server: &TestServer, dir: &Path, extra: &[&str]) -> Command {
    let mut cmd = avbatch();
    cmd.args(["upload", "manifest.csv", "--base-url", &server.url, "--report", "report.json"])
        .args(extra)
        .current_dir(dir)
        .env("AVBATCH_API_KEY", KEY);
    cmd
}

fn first_row(dir: &Path) -> Value {
    let doc: Value =
        serde_json::from_slice(&std::fs::read(dir.join("report.json")).unwrap()).unwrap();
    doc["rows"][0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn transcript_fields_are_set_after_creation_and_language_says_its_consequence() {
    let server = spawn_server_with(|_| {}).await;
    let dir = library("title,language,transcript", "T,fr,false");
    let done = run(upload(&server, dir.path(), &[]), LIMIT).await;
    assert_eq!(done.code, Some(0), "{}", done.text());
    let id = first_row(dir.path())["videoId"].as_str().unwrap().to_owned();

    write_row(
        dir.path(),
        "title,language,transcript,transcript_summary,transcript_summary_attributes",
        "T,de,true,true,abstract",
    );
    let mut dry = upload(&server, dir.path(), &["--dry-run", "--json"]);
    dry.arg("--no-journal");
    let planned = run(dry, LIMIT).await;
    assert_eq!(planned.code, Some(0), "{}", planned.text());
    let plan: Value = serde_json::from_str(&planned.stdout).unwrap();
    let row = &plan["plan"][0];
    let fields: Vec<&str> =
        row["fields"].as_array().unwrap().iter().map(|f| f.as_str().unwrap()).collect();
    assert_eq!(
        fields,
        ["language", "transcript", "transcriptSummary", "transcriptSummaryAttributes"],
        "{plan}"
    );
    assert_eq!(row["consequences"][0], "language: api.video starts a new transcript", "{plan}");

    let done = run(upload(&server, dir.path(), &[]), LIMIT).await;
    assert_eq!(done.code, Some(0), "{}", done.text());
    let row = first_row(dir.path());
    assert_eq!(row["status"], "updated", "{row}");
    let video = server.get_json(&format!("/videos/{id}")).await;
    assert_eq!(
        (&video["language"], &video["transcript"], &video["transcriptSummary"]),
        (&"de".into(), &true.into(), &true.into()),
        "{video}"
    );
    assert_eq!(video["transcriptSummaryAttributes"], serde_json::json!(["abstract"]), "{video}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_changed_clip_is_said_and_force_makes_a_new_video_carrying_it() {
    let server = spawn_server_with(|_| {}).await;
    let dir = library("title,clip_start,clip_end", "T,00:00:01,00:00:05");
    let done = run(upload(&server, dir.path(), &[]), LIMIT).await;
    assert_eq!(done.code, Some(0), "{}", done.text());
    let old = first_row(dir.path())["videoId"].as_str().unwrap().to_owned();

    // The same clip written otherwise is the same clip.
    write_row(dir.path(), "title,clip_start,clip_end", "T,1,5");
    let same = run(upload(&server, dir.path(), &[]), LIMIT).await;
    assert_eq!(same.code, Some(0), "{}", same.text());

    // Another clip: the row fails, saying why and what to do; the video is left as it was.
    write_row(dir.path(), "title,clip_start,clip_end", "New title,00:00:02,00:00:05");
    let said = run(upload(&server, dir.path(), &[]), LIMIT).await;
    assert_eq!(said.code, Some(1), "{}", said.text());
    let error = first_row(dir.path())["error"].as_str().unwrap_or_default().to_owned();
    assert!(
        error.contains(&format!("`clip` of video `{old}` is 1s-5s where the row wants 2s-5s"))
            && error.contains("--force makes a new video"),
        "{error}"
    );
    let video = server.get_json(&format!("/videos/{old}")).await;
    assert_eq!(video["clip"]["startTimecode"], "00:00:01", "{video}");
    assert_eq!(video["title"], "New title", "the fields PATCH can set are set: {video}");
    // Said again by the next run: not recorded as in step.
    let again = run(upload(&server, dir.path(), &[]), LIMIT).await;
    assert_eq!(again.code, Some(1), "{}", again.text());

    // --force: a new video with the new clip; the old one deleted once it is complete.
    let forced = run(upload(&server, dir.path(), &["--force"]), LIMIT).await;
    assert_eq!(forced.code, Some(0), "{}", forced.text());
    let row = first_row(dir.path());
    let new = row["videoId"].as_str().unwrap();
    assert_ne!(new, old, "{row}");
    let videos = server.all_videos().await;
    assert_eq!(videos.len(), 1, "{videos:?}");
    assert_eq!(videos[0]["videoId"], new);
    assert_eq!(videos[0]["clip"]["startTimecode"], "00:00:02");
    assert_eq!(server.status_of(new).await["ingest"]["status"], "uploaded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn force_right_after_a_clip_change_makes_the_new_video() {
    // The journal says the row is done; --force still looks at its video's clip.
    let server = spawn_server_with(|_| {}).await;
    let dir = library("title,clip_start,clip_end", "T,00:00:01,00:00:05");
    let done = run(upload(&server, dir.path(), &[]), LIMIT).await;
    assert_eq!(done.code, Some(0), "{}", done.text());
    let old = first_row(dir.path())["videoId"].as_str().unwrap().to_owned();
    write_row(dir.path(), "title,clip_start,clip_end", "T,00:00:03,00:00:05");
    let forced = run(upload(&server, dir.path(), &["--force"]), LIMIT).await;
    assert_eq!(forced.code, Some(0), "{}", forced.text());
    let videos = server.all_videos().await;
    assert_eq!(videos.len(), 1, "{videos:?}");
    assert_ne!(videos[0]["videoId"], old.as_str());
    assert_eq!(videos[0]["clip"]["startTimecode"], "00:00:03");
}
