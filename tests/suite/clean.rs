//! `avbatch clean` (issue #13, item 8): the unfinished videos runs leave behind (empty ones made
//! ahead of their upload, partial ones of failed rows) are listed per manifest or across the
//! account, only past `--older-than`, never a complete one; `--delete` deletes exactly those,
//! and an upload afterwards still ends with one complete video per row.
//!
//! Every test drives the real binary against a server it starts, and checks the server after.

use crate::common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use avbatch_core::manifest::id_key;
use common::batch::*;
use common::{spawn_server, spawn_server_with, KEY, MIB};
use serde_json::{json, Value};

/// `avbatch clean ARGS --base-url URL` with the test key in the environment.
fn clean(url: &str, args: &[&str]) -> std::process::Command {
    let mut cmd = avbatch();
    cmd.arg("clean").args(args).args(["--base-url", url]).env("AVBATCH_API_KEY", KEY);
    cmd
}

/// Runs `clean … --json` and returns its exit code and document.
async fn clean_json(url: &str, args: &[&str]) -> (Option<i32>, Value, Done) {
    let mut cmd = clean(url, args);
    cmd.arg("--json");
    let done = run(cmd, Duration::from_secs(60)).await;
    let doc = serde_json::from_str(&done.stdout)
        .unwrap_or_else(|e| panic!("clean --json prints JSON ({e})\n{}", done.text()));
    (done.code, doc, done)
}

/// The ids of the leftovers a `clean --json` document lists.
fn listed(doc: &Value) -> BTreeSet<String> {
    doc["leftovers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["videoId"].as_str().unwrap().to_owned())
        .collect()
}

fn ids(ids: &[&String]) -> BTreeSet<String> {
    ids.iter().map(|s| (*s).clone()).collect()
}

/// Every video id on the server.
async fn on_server(url: &str) -> BTreeSet<String> {
    list_videos(url).await.iter().map(|v| v["videoId"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn clean_lists_and_deletes_exactly_the_unfinished_videos_of_a_manifest() {
    let server = spawn_server().await;
    let url = server.url.clone();
    let batch = Batch::new(4, |i| 6 * MIB + i);
    let src = &batch.sources;
    // Row 0 finished; an empty duplicate under its key is a leftover all the same.
    let done0 =
        video_holding_under(&url, "avbatch_key", &id_key("row-0"), &src[0], src[0].len()).await;
    let dup0 = video_holding_under(&url, "avbatch_key", &id_key("row-0"), &src[0], 0).await;
    // Row 1: made ahead of its upload by a run that was interrupted.
    let empty1 = video_holding_under(&url, "avbatch_key", &id_key("row-1"), &src[1], 0).await;
    // Row 2: a failed row's partial video.
    let partial2 =
        video_holding_under(&url, "avbatch_key", &id_key("row-2"), &src[2], 5 * MIB).await;
    // Row 3: the raw key avbatch 0.1 stored.
    let legacy3 = video_holding_under(&url, "avbatch_key", "row-3", &src[3], 0).await;
    // Not the manifest's: a video of another library, and one with no key at all.
    let stranger = video_holding_under(&url, "avbatch_key", &id_key("elsewhere"), &src[0], 0).await;
    let unkeyed = server.create_video("not avbatch's").await;
    let manifest = batch.manifest();
    let manifest = manifest.to_str().unwrap();

    // All of them are younger than a day (the default) and than an hour.
    for age in [&[][..], &["--older-than", "1h"][..]] {
        let (code, doc, done) = clean_json(&url, &[&[manifest][..], age].concat()).await;
        assert_eq!(code, Some(0), "{}", done.text());
        assert!(listed(&doc).is_empty(), "nothing old enough: {doc}");
        assert_eq!((doc["keyedVideos"].as_u64(), doc["younger"].as_u64()), (Some(5), Some(5)));
    }

    // Every age: exactly the unfinished videos under the manifest's keys.
    let (code, doc, done) = clean_json(&url, &[manifest, "--older-than", "0s"]).await;
    assert_eq!(code, Some(0), "{}", done.text());
    assert_eq!(listed(&doc), ids(&[&dup0, &empty1, &partial2, &legacy3]), "{doc}");
    assert_eq!((doc["complete"].as_u64(), doc["scope"].as_str()), (Some(1), Some("manifest")));
    let by_id = |id: &str| {
        doc["leftovers"].as_array().unwrap().iter().find(|l| l["videoId"] == id).unwrap().clone()
    };
    let p = by_id(&partial2);
    assert_eq!((p["state"].as_str(), p["heldBytes"].as_u64()), (Some("partial"), Some(5 << 20)));
    assert_eq!((p["line"].as_u64(), p["outcome"].as_str()), (Some(4), Some("listed")));
    assert_eq!(
        (by_id(&empty1)["state"].as_str(), by_id(&dup0)["line"].as_u64()),
        (Some("empty"), Some(2))
    );
    assert_eq!(by_id(&legacy3)["line"].as_u64(), Some(5), "the raw key of row 3");
    assert_eq!(on_server(&url).await.len(), 7, "listing deletes nothing");

    // The table, for people.
    let table = run(clean(&url, &[manifest, "--older-than", "0s"]), Duration::from_secs(60)).await;
    assert_eq!(table.code, Some(0), "{}", table.text());
    assert!(table.stdout.starts_with("videoId"), "{}", table.text());
    for id in [&dup0, &empty1, &partial2, &legacy3] {
        assert!(table.stdout.contains(id.as_str()), "{id} in the table\n{}", table.text());
    }
    assert!(table.stderr.contains("4 leftover(s)") && table.stderr.contains("--delete"));
    assert!(!table.stdout.contains(KEY) && !table.stderr.contains(KEY), "the key never prints");

    // Account-wide: every keyed video, the stranger too, never the unkeyed one.
    let (code, doc, _) = clean_json(&url, &["--all", "--older-than", "0s"]).await;
    assert_eq!(code, Some(0));
    assert_eq!(listed(&doc), ids(&[&dup0, &empty1, &partial2, &legacy3, &stranger]), "{doc}");

    // --delete: exactly the manifest's leftovers go, and say so.
    let deleted =
        run(clean(&url, &[manifest, "--older-than", "0s", "--delete"]), Duration::from_secs(60))
            .await;
    assert_eq!(deleted.code, Some(0), "{}", deleted.text());
    for id in [&dup0, &empty1, &partial2, &legacy3] {
        let line = deleted.stdout.lines().find(|l| l.contains(id.as_str())).unwrap_or_default();
        assert!(line.starts_with("deleted"), "{id} deleted\n{}", deleted.text());
    }
    assert_eq!(on_server(&url).await, ids(&[&done0, &stranger, &unkeyed]));
    let (_, doc, _) = clean_json(&url, &[manifest, "--older-than", "0s"]).await;
    assert!(listed(&doc).is_empty(), "nothing left: {doc}");

    // --all --delete takes the stranger; then an upload still makes one complete video a row,
    // keeping the finished one.
    let (code, doc, done) = clean_json(&url, &["--all", "--older-than", "0s", "--delete"]).await;
    assert_eq!(code, Some(0), "{}", done.text());
    assert_eq!((listed(&doc), doc["deleted"].as_u64()), (ids(&[&stranger]), Some(1)));
    let up = run(batch.upload(&url, &[]), Duration::from_secs(60)).await;
    assert_eq!(up.code, Some(0), "{}", up.text());
    assert_exactly_once_besides(&url, &batch, 1).await;
    assert_eq!(batch.read_report()["rows"][0]["videoId"], done0.as_str(), "row 0 kept its video");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_small_manifest_in_a_large_account_looks_its_keys_up_and_all_reads_every_page() {
    let server = spawn_server().await;
    let url = server.url.clone();
    // Over three pages of 100 that are none of avbatch's: a one-row manifest costs fewer calls
    // looking its three keys up than reading them.
    for chunk in 0..8 {
        let titles: Vec<String> = (0..40).map(|i| format!("other {chunk}-{i}")).collect();
        futures::future::join_all(titles.iter().map(|t| server.create_video(t))).await;
    }
    let batch = Batch::new(1, |_| 1000);
    let src = &batch.sources[0];
    let key = id_key("row-0");
    let complete = video_holding_under(&url, "avbatch_key", &key, src, src.len()).await;
    let empty = video_holding_under(&url, "avbatch_key", &key, src, 0).await;
    let legacy = video_holding_under(&url, "avbatch_key", "row-0", src, 0).await;
    let replaced = video_holding_under(&url, "avbatch_replaced_key", &key, src, 0).await;
    let stranger = video_holding_under(&url, "avbatch_key", &id_key("other"), src, 0).await;
    let manifest = batch.manifest();

    let reads = || server.server.served().reads.load(std::sync::atomic::Ordering::Relaxed);
    let before = reads();
    let (code, doc, done) =
        clean_json(&url, &[manifest.to_str().unwrap(), "--older-than", "0s"]).await;
    assert_eq!(code, Some(0), "{}", done.text());
    assert_eq!(listed(&doc), ids(&[&empty, &legacy, &replaced]), "{doc}");
    assert_eq!(doc["complete"], 1, "{doc}");
    assert_eq!(
        reads() - before,
        1 + 3 + 4,
        "the first page, three lookups, four statuses: the other pages are not read"
    );

    let before = reads();
    let (code, doc, done) = clean_json(&url, &["--all", "--older-than", "0s"]).await;
    assert_eq!(code, Some(0), "{}", done.text());
    assert_eq!(listed(&doc), ids(&[&empty, &legacy, &replaced, &stranger]), "{doc}");
    assert_eq!(reads() - before, 4 + 5, "every page, and the keyed videos' statuses");
    assert!(on_server(&url).await.contains(&complete));
}

/// Sets `createdAt` in `DATA/videos/{id}/video.json`, as a test ages a video by hand.
fn set_created_at(data: &Path, id: &str, when: chrono::DateTime<chrono::Utc>) {
    let path = data.join("videos").join(id).join("video.json");
    let mut record: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    record["createdAt"] = json!(when.to_rfc3339());
    std::fs::write(&path, serde_json::to_vec_pretty(&record).unwrap()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn only_videos_older_than_the_age_are_leftovers() {
    let data = tempfile::tempdir().unwrap();
    let batch = Batch::new(3, |_| 6 * MIB);
    let src = &batch.sources;
    let server = common::spawn_server_process(data.path(), &[]);
    let key = |i: usize| id_key(&format!("row-{i}"));
    let old_empty = video_holding_under(&server.url, "avbatch_key", &key(0), &src[0], 0).await;
    let old_partial =
        video_holding_under(&server.url, "avbatch_key", &key(1), &src[1], 5 * MIB).await;
    let old_complete =
        video_holding_under(&server.url, "avbatch_key", &key(2), &src[2], 6 * MIB).await;
    // A video that gave its key to a new one (`--force`), left unfinished.
    let old_replaced =
        video_holding_under(&server.url, "avbatch_replaced_key", &key(2), &src[2], 0).await;
    let young = video_holding_under(&server.url, "avbatch_key", &key(0), &src[0], 0).await;
    server.kill9();
    let two_days_ago = chrono::Utc::now() - chrono::TimeDelta::days(2);
    for id in [&old_empty, &old_partial, &old_complete, &old_replaced] {
        set_created_at(data.path(), id, two_days_ago);
    }
    let server = common::spawn_server_process(data.path(), &[]);
    let manifest = batch.manifest();
    let manifest = manifest.to_str().unwrap();

    // The default age, a day: the two-day-old unfinished ones, not the young one.
    let (code, doc, done) = clean_json(&server.url, &[manifest]).await;
    assert_eq!(code, Some(0), "{}", done.text());
    assert_eq!(listed(&doc), ids(&[&old_empty, &old_partial, &old_replaced]), "{doc}");
    assert_eq!((doc["younger"].as_u64(), doc["complete"].as_u64()), (Some(1), Some(1)));
    let replaced =
        doc["leftovers"].as_array().unwrap().iter().find(|l| l["videoId"] == *old_replaced);
    assert_eq!(replaced.unwrap()["keyField"], "avbatch_replaced_key");
    let (_, doc, _) = clean_json(&server.url, &[manifest, "--older-than", "3d"]).await;
    assert!(listed(&doc).is_empty(), "none is three days old: {doc}");

    let (code, doc, done) = clean_json(&server.url, &["--all", "--delete"]).await;
    assert_eq!(code, Some(0), "{}", done.text());
    assert_eq!(doc["deleted"], 3, "{doc}");
    assert_eq!(on_server(&server.url).await, ids(&[&old_complete, &young]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn what_a_killed_run_leaves_is_cleaned_and_a_rerun_uploads_each_row_once() {
    // 4 MiB/s a connection: an 11 MiB file takes about three seconds.
    let server = spawn_server_with(|c| c.faults.bandwidth = Some(4 * MIB as u64)).await;
    let url = server.url.clone();
    let batch = Batch::new(6, |i| 11 * MIB + i);
    let mut running = Running::start(batch.upload(&url, &["-c", "2"]));
    // Until the server holds a part of some video: then videos made ahead sit empty beside it.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        assert!(std::time::Instant::now() < deadline, "no part arrived within 30 s");
        assert!(running.running(), "the run ended before it could be killed");
        let mut held = 0;
        for v in list_videos(&url).await {
            held += held_bytes(&url, v["videoId"].as_str().unwrap()).await;
        }
        if held >= 5 * MIB as u64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let killed = running.kill9();
    let mut unfinished = BTreeSet::new();
    for v in list_videos(&url).await {
        let id = v["videoId"].as_str().unwrap().to_owned();
        if server.status_of(&id).await["ingest"]["status"] != "uploaded" {
            unfinished.insert(id);
        }
    }
    assert!(unfinished.len() >= 2, "a part-way video and one made ahead: {}", killed.text());

    let manifest = batch.manifest();
    let manifest = manifest.to_str().unwrap();
    let (code, doc, done) = clean_json(&url, &[manifest, "--older-than", "0s"]).await;
    assert_eq!(code, Some(0), "{}", done.text());
    assert_eq!(listed(&doc), unfinished, "exactly the unfinished videos: {doc}");
    let (code, doc, done) = clean_json(&url, &[manifest, "--older-than", "0s", "--delete"]).await;
    assert_eq!(code, Some(0), "{}", done.text());
    assert_eq!(doc["deleted"].as_u64(), Some(unfinished.len() as u64), "{doc}");
    assert!(on_server(&url).await.is_disjoint(&unfinished), "every one of them is gone");

    // The journal still names deleted videos: the next run makes new ones, once per row.
    let up = run(batch.upload(&url, &[]), Duration::from_secs(120)).await;
    assert_eq!(up.code, Some(0), "{}", up.text());
    assert_exactly_once(&url, &batch).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_before_anything_is_deleted() {
    let server = spawn_server().await;
    let url = server.url.clone();
    let batch = Batch::new(1, |_| 1000);
    let empty =
        video_holding_under(&url, "avbatch_key", &id_key("row-0"), &batch.sources[0], 0).await;
    let manifest = batch.manifest();
    let manifest = manifest.to_str().unwrap();
    let missing = batch.path("no-such.csv");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec![missing.to_str().unwrap(), "--delete"], "cannot read the manifest"),
        (vec![manifest, "--older-than", "soon", "--delete"], "expected a duration"),
        (vec![manifest, "--older-than", "400days", "--delete"], "from 0s to 1year"),
        (vec![manifest, "--all", "--delete"], "cannot be used with"),
        (vec!["--delete"], "required"),
    ];
    for (args, says) in cases {
        let done = run(clean(&url, &args), Duration::from_secs(30)).await;
        assert_eq!(done.code, Some(2), "{args:?}\n{}", done.text());
        assert!(done.stderr.contains(says), "{args:?} says `{says}`\n{}", done.text());
    }
    // No key; a refused key; a local server without its folder.
    let mut no_key = avbatch();
    no_key.args(["clean", manifest, "--base-url", &url, "--delete"]);
    let done = run(no_key, Duration::from_secs(30)).await;
    assert_eq!(done.code, Some(2), "{}", done.text());
    assert!(done.stderr.contains("no API key"), "{}", done.text());
    let mut refused = clean(&url, &[manifest, "--older-than", "0s", "--delete"]);
    refused.env("AVBATCH_API_KEY", "not-the-key-0123456789");
    let done = run(refused, Duration::from_secs(30)).await;
    assert_eq!(done.code, Some(3), "{}", done.text());
    assert!(!done.stderr.contains("not-the-key"), "the key never prints\n{}", done.text());
    let mut local = avbatch();
    local.args(["clean", manifest, "--env", "local"]);
    let done = run(local, Duration::from_secs(30)).await;
    assert_eq!(done.code, Some(2), "{}", done.text());
    assert!(done.stderr.contains("--local-data"), "{}", done.text());
    assert!(on_server(&url).await.contains(&empty), "nothing was deleted");

    // An unreachable API: exit 4.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let done = run(clean(&dead, &["--all", "--retries", "0"]), Duration::from_secs(30)).await;
    assert_eq!(done.code, Some(4), "{}", done.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_whose_key_cannot_be_known_is_said_and_the_others_are_cleaned() {
    let server = spawn_server().await;
    let url = server.url.clone();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("here.mp4"), b"some bytes").unwrap();
    let manifest = dir.path().join("m.csv");
    std::fs::write(&manifest, "path,id\nhere.mp4,\ngone.mp4,\ngone.mp4,kept-id\n").unwrap();
    // The file row's key, as the upload computes it.
    let rows = avbatch_core::manifest::load(
        &{
            let only = dir.path().join("only.csv");
            std::fs::write(&only, "path\nhere.mp4\n").unwrap();
            only
        },
        &Default::default(),
    )
    .unwrap()
    .rows;
    let by_file = video_holding_under(&url, "avbatch_key", &rows[0].key(), b"x", 0).await;
    let by_id = video_holding_under(&url, "avbatch_key", &id_key("kept-id"), b"x", 0).await;
    let (code, doc, done) =
        clean_json(&url, &[manifest.to_str().unwrap(), "--older-than", "0s"]).await;
    assert_eq!(code, Some(0), "{}", done.text());
    assert_eq!(listed(&doc), ids(&[&by_file, &by_id]), "{doc}");
    assert!(
        done.stderr.contains("1 row(s) without an `id` whose file cannot be read")
            && done.stderr.contains("line 3"),
        "{}",
        done.text()
    );
}

#[test]
fn help_and_man_page_explain_clean() {
    let out = avbatch().args(["clean", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    for word in ["--older-than", "--delete", "--all", "--json", "avbatch_key", "Exit codes"] {
        assert!(help.contains(word), "`{word}` in the help:\n{help}");
    }
    let out = avbatch().arg("man").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("clean"), "the man page lists it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_before_anything_is_deleted_says_so_as_a_plain_line_and_exits_130() {
    // Every answer takes 3 s: the interrupt lands while the command talks to the API.
    let server = spawn_server_with(|c| c.faults.latency = Duration::from_secs(3)).await;
    let mut running = Running::start(clean(&server.url, &["--all", "--delete"]));
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(running.running(), "clean ended before the interrupt");
    running.signal("-INT");
    let done = running.finish(Duration::from_secs(30)).await;
    assert_eq!(done.code, Some(130), "{}", done.text());
    assert!(done.stderr.contains("stopped; nothing was deleted"), "{}", done.text());
    assert!(
        !done.stderr.contains("error:"),
        "a stop that was asked for is no error\n{}",
        done.text()
    );
}
