//! Touched and rewritten files (issue #13.7): content that did not change is not a change. Each
//! finished row keeps the fingerprint of the bytes it sent; a file whose time moved is compared by
//! it, a changed one is refused saying what changed, and `--force` replaces the old video
//! instead of adding a second one (`--keep-old` keeps both).

use crate::common;

use std::time::{Duration, SystemTime};

use common::batch::{run, Batch, Done};
use common::{spawn_server_with, TestServer, MIB};
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(120);

/// Two rows of two parts each, uploaded once.
async fn uploaded(server: &TestServer) -> Batch {
    let batch = Batch::new(2, |i| 6 * MIB + i);
    let out = upload(&batch, server, &[]).await;
    assert_eq!(out.code, Some(0), "{}", out.text());
    batch
}

async fn upload(batch: &Batch, server: &TestServer, extra: &[&str]) -> Done {
    run(batch.upload(&server.url, extra), LIMIT).await
}

/// Sets the modification time of `name` an hour (plus `secs`) ahead.
fn touch(batch: &Batch, name: &str, secs: u64) {
    let later = SystemTime::now() + Duration::from_secs(3600 + secs);
    let file = std::fs::File::options().write(true).open(batch.path(name)).unwrap();
    file.set_modified(later).unwrap();
}

/// Flips one byte of `name` in place: same size, a new modification time.
fn rewrite_one_byte(batch: &Batch, name: &str) -> Vec<u8> {
    let mut data = std::fs::read(batch.path(name)).unwrap();
    data[MIB + 7] ^= 0xff;
    std::fs::write(batch.path(name), &data).unwrap();
    touch(batch, name, 0);
    data
}

fn row(rep: &Value, i: usize) -> &Value {
    &rep["rows"][i]
}

fn ids(videos: &[Value]) -> Vec<&str> {
    videos.iter().map(|v| v["videoId"].as_str().unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_touched_file_is_skipped_not_failed() {
    let server = spawn_server_with(|_| {}).await;
    let batch = uploaded(&server).await;
    let first = batch.read_report();
    let sent = server.server.received_bytes();

    touch(&batch, "f0.mp4", 0);
    // The plan says the run will compare it, not that it changed.
    let plan = upload(&batch, &server, &["--dry-run", "--json"]).await;
    let plan: Value = serde_json::from_str(&plan.stdout).expect("a JSON plan");
    let actions: Vec<&str> =
        plan["plan"].as_array().unwrap().iter().map(|r| r["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["compare", "skip"], "{plan}");
    let out = upload(&batch, &server, &[]).await;
    assert_eq!(out.code, Some(0), "a touched file fails nothing: {}", out.text());
    let rep = batch.read_report();
    assert_eq!(row(&rep, 0)["status"], "skipped", "{rep}");
    assert_eq!(row(&rep, 0)["videoId"], row(&first, 0)["videoId"]);
    let note = row(&rep, 0)["note"].as_str().unwrap_or_default();
    assert!(note.contains("touched") && note.contains("contents unchanged"), "{rep}");
    assert_eq!(server.server.received_bytes(), sent, "nothing uploaded again");
    assert_eq!(server.all_videos().await.len(), 2, "no duplicate");

    // The journal took the new time: the next run has nothing to compare or say.
    let out = upload(&batch, &server, &[]).await;
    assert_eq!(out.code, Some(0), "{}", out.text());
    let rep = batch.read_report();
    assert_eq!(row(&rep, 0)["status"], "skipped", "{rep}");
    assert!(row(&rep, 0)["note"].as_str().unwrap_or_default().is_empty(), "{rep}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_touched_file_without_an_id_keeps_its_video_with_or_without_the_journal() {
    // Keyed by path, size and time, a touched file has a new key: the journal finds what its
    // path held, and the video takes the new key, so a run without the journal finds it too.
    let server = spawn_server_with(|_| {}).await;
    let batch = Batch::new(1, |_| 6 * MIB);
    std::fs::write(batch.manifest(), "path\nf0.mp4\n").unwrap();
    let out = upload(&batch, &server, &[]).await;
    assert_eq!(out.code, Some(0), "{}", out.text());
    let video = row(&batch.read_report(), 0)["videoId"].clone();
    let sent = server.server.received_bytes();

    touch(&batch, "f0.mp4", 0);
    let out = upload(&batch, &server, &[]).await;
    assert_eq!(out.code, Some(0), "{}", out.text());
    let rep = batch.read_report();
    assert_eq!((&row(&rep, 0)["status"], &row(&rep, 0)["videoId"]), (&"skipped".into(), &video));

    std::fs::remove_file(batch.path("manifest.journal.sqlite")).unwrap();
    let out = upload(&batch, &server, &[]).await;
    assert_eq!(out.code, Some(0), "{}", out.text());
    let rep = batch.read_report();
    assert_eq!((&row(&rep, 0)["status"], &row(&rep, 0)["videoId"]), (&"skipped".into(), &video));
    assert_eq!(server.server.received_bytes(), sent, "nothing uploaded again");
    assert_eq!(server.all_videos().await.len(), 1, "no duplicate");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rewritten_file_is_refused_saying_what_changed() {
    let server = spawn_server_with(|_| {}).await;
    let batch = uploaded(&server).await;
    rewrite_one_byte(&batch, "f1.mp4");
    let out = upload(&batch, &server, &[]).await;
    assert_eq!(out.code, Some(1), "{}", out.text());
    let rep = batch.read_report();
    assert_eq!(row(&rep, 0)["status"], "skipped", "{rep}");
    assert_eq!(row(&rep, 1)["status"], "failed", "{rep}");
    let error = row(&rep, 1)["error"].as_str().unwrap();
    assert!(
        error.contains("changed since it was uploaded")
            && error.contains("modification time from")
            && error.contains("contents differ")
            && !error.contains("size from")
            && error.contains("--force"),
        "{error}"
    );
    assert_eq!(server.all_videos().await.len(), 2, "nothing uploaded without --force");

    // Another size is said as such.
    std::fs::write(batch.path("f1.mp4"), b"shorter").unwrap();
    let out = upload(&batch, &server, &[]).await;
    assert_eq!(out.code, Some(1), "{}", out.text());
    let error = row(&batch.read_report(), 1)["error"].as_str().unwrap().to_owned();
    assert!(error.contains(&format!("size from {} to 7 bytes", 6 * MIB + 1)), "{error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn force_replaces_the_old_video() {
    let server = spawn_server_with(|_| {}).await;
    let batch = uploaded(&server).await;
    let old = row(&batch.read_report(), 1)["videoId"].as_str().unwrap().to_owned();
    let now = rewrite_one_byte(&batch, "f1.mp4");

    let out = upload(&batch, &server, &["--force"]).await;
    assert_eq!(out.code, Some(0), "{}", out.text());
    let rep = batch.read_report();
    assert_eq!(row(&rep, 1)["status"], "uploaded", "{rep}");
    let new = row(&rep, 1)["videoId"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    let note = row(&rep, 1)["note"].as_str().unwrap_or_default();
    assert!(note.contains(&format!("replaced video `{old}`, which was deleted")), "{rep}");
    let videos = server.all_videos().await;
    assert_eq!(videos.len(), 2, "one video per row: {:?}", ids(&videos));
    assert!(ids(&videos).contains(&new.as_str()) && !ids(&videos).contains(&old.as_str()));
    assert!(server.source_of(&new).await == now, "the file as it is now");

    // The next run takes the replacement as done.
    let out = upload(&batch, &server, &[]).await;
    assert_eq!(out.code, Some(0), "{}", out.text());
    assert_eq!(batch.read_report()["summary"]["skipped"], 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn force_keep_old_keeps_both() {
    let server = spawn_server_with(|_| {}).await;
    let batch = uploaded(&server).await;
    let old = row(&batch.read_report(), 1)["videoId"].as_str().unwrap().to_owned();
    let now = rewrite_one_byte(&batch, "f1.mp4");

    let out = upload(&batch, &server, &["--force", "--keep-old"]).await;
    assert_eq!(out.code, Some(0), "{}", out.text());
    let rep = batch.read_report();
    let new = row(&rep, 1)["videoId"].as_str().unwrap().to_owned();
    let note = row(&rep, 1)["note"].as_str().unwrap_or_default();
    assert!(note.contains(&format!("kept the video(s) of the file as it was, `{old}`")), "{rep}");
    let videos = server.all_videos().await;
    assert_eq!(videos.len(), 3, "both versions of row 1: {:?}", ids(&videos));
    assert!(ids(&videos).contains(&old.as_str()) && ids(&videos).contains(&new.as_str()));
    let kept = videos.iter().find(|v| v["videoId"] == old.as_str()).unwrap();
    assert!(
        kept["metadata"].as_array().unwrap().iter().any(|m| m["key"] == "avbatch_kept_key"),
        "the old video gave up the key, for good: {kept}"
    );
    assert!(server.source_of(&new).await == now);
    assert!(server.source_of(&old).await == batch.sources[1], "the old video kept its content");
}
