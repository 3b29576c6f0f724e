//! The manifest's `action` column (issue #15): `upsert` changes only the fields that differ
//! (the server's request log names the members of each PATCH) and uploads only what is missing
//! or changed; `update` only patches, `delete` deletes every video under the row's key; each
//! journaled, so a re-run asks nothing; right through lost answers; and `--dry-run` says what
//! each row would do.
//!
//! Every test drives the real binary against `avbatch serve` run as a process.

use crate::common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use avbatch_core::manifest::id_key;
use common::batch::*;
use common::{basic_auth, KEY};
use serde_json::{json, Value};

/// The request log's lines from line `from` on.
fn logged(log: &Path, from: usize) -> Vec<Value> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines().skip(from).map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn lines(log: &Path) -> usize {
    std::fs::read_to_string(log).unwrap_or_default().lines().count()
}

/// The requests that change something (every method but GET, and not the key exchange), as
/// `METHOD path [fields]`, sorted.
fn changes(log: &[Value]) -> Vec<String> {
    let mut out: Vec<String> = log
        .iter()
        .filter(|l| l["method"] != "GET" && l["path"] != "/auth/api-key")
        .map(|l| {
            let fields = match l["fields"].as_array() {
                Some(f) => {
                    let names: Vec<&str> = f.iter().map(|n| n.as_str().unwrap()).collect();
                    format!(" {}", names.join(","))
                }
                None => String::new(),
            };
            format!("{} {}{fields}", l["method"].as_str().unwrap(), l["path"].as_str().unwrap())
        })
        .collect();
    out.sort();
    out
}

/// The video `id` as the server holds it.
async fn video(url: &str, id: &str) -> Value {
    let resp = get_api(format!("{url}/videos/{id}")).await;
    assert_eq!(resp.status().as_u16(), 200, "video {id}");
    resp.json().await.unwrap()
}

/// Whether the server still has video `id`.
async fn exists(url: &str, id: &str) -> bool {
    get_api(format!("{url}/videos/{id}")).await.status().as_u16() == 200
}

/// `rows` files of `size(i)` bytes uploaded by a first run to a double of their own, and that
/// run's report by id.
async fn uploaded(
    rows: usize,
    size: impl Fn(usize) -> usize,
) -> (Batch, ServeProcess, BTreeMap<String, (String, String, String)>) {
    let batch = Batch::new(rows, size);
    let data = batch.path("data");
    std::fs::create_dir(&data).unwrap();
    let server = serve_on("127.0.0.1:0", &data, &[]).await;
    let up = run(batch.upload(&server.url, &[]), Duration::from_secs(120)).await;
    assert_eq!(up.code, Some(0), "{}", up.text());
    let first = by_id(&batch.read_report());
    (batch, server, first)
}

/// The report's rows by id: `(status, videoId, updated)`.
fn by_id(report: &Value) -> BTreeMap<String, (String, String, String)> {
    report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let text = |k: &str| r[k].as_str().unwrap_or("").to_owned();
            (text("id"), (text("status"), text("videoId"), text("updated")))
        })
        .collect()
}

/// The user's metadata of a video as `k=v` pairs, sorted, avbatch's own left out.
fn user_metadata(v: &Value) -> Vec<String> {
    let mut pairs: Vec<String> = v["metadata"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| !m["key"].as_str().unwrap().starts_with("avbatch_"))
        .map(|m| format!("{}={}", m["key"].as_str().unwrap(), m["value"].as_str().unwrap()))
        .collect();
    pairs.sort();
    pairs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn upsert_changes_only_the_fields_that_differ_and_a_rerun_asks_nothing() {
    let batch = Batch::new(6, |i| 3000 + i);
    let data = batch.path("data");
    std::fs::create_dir(&data).unwrap();
    let log = batch.path("requests.jsonl");
    let server = serve_on("127.0.0.1:0", &data, &["--request-log", log.to_str().unwrap()]).await;
    let url = server.url.clone();
    let manifest = batch.manifest();
    let header = "id,path,title,description,tags,meta.genre,public,action\n";
    let mut csv = String::from(header);
    for i in 0..5 {
        csv.push_str(&format!("row-{i},f{i}.mp4,Video {i},About {i},a;b,g{i},false,\n"));
    }
    std::fs::write(&manifest, &csv).unwrap();
    let up = run(batch.upload(&url, &[]), Duration::from_secs(120)).await;
    assert_eq!(up.code, Some(0), "{}", up.text());
    let first = by_id(&batch.read_report());
    let id_of = |i: usize| first[&format!("row-{i}")].1.clone();

    // Someone changed row 3's description in the dashboard: an upsert puts the row's back.
    let patch = json!({"description": "Edited by hand"});
    let resp = http()
        .patch(format!("{url}/videos/{}", id_of(3)))
        .header("Authorization", basic_auth(KEY))
        .json(&patch)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);

    // Row 0: a new title; row 1: other tags and genre; row 2: as it was; row 3: as it was (the
    // server differs); row 4: a create row with a new title (left alone); row 5: new, upsert.
    let mut csv = String::from(header);
    csv.push_str("row-0,f0.mp4,Video zero,About 0,a;b,g0,false,upsert\n");
    csv.push_str("row-1,f1.mp4,Video 1,About 1,b;c,drama,false,upsert\n");
    csv.push_str("row-2,f2.mp4,Video 2,About 2,b;a,g2,false,upsert\n");
    csv.push_str("row-3,f3.mp4,Video 3,About 3,a;b,g3,false,upsert\n");
    csv.push_str("row-4,f4.mp4,Video four,About 4,a;b,g4,false,\n");
    csv.push_str("row-5,f5.mp4,Video 5,About 5,x,g5,true,upsert\n");
    std::fs::write(&manifest, &csv).unwrap();

    // The journal knows row 3's fields as they were set, so only a run without it sees the
    // hand edit: the first run uses the journal, the second goes without.
    let from = lines(&log);
    let up = run(batch.upload(&url, &[]), Duration::from_secs(120)).await;
    assert_eq!(up.code, Some(0), "{}", up.text());
    let sent = logged(&log, from);
    let ids = by_id(&batch.read_report());
    let new = ids["row-5"].1.clone();
    assert_eq!(
        changes(&sent),
        [
            "POST /videos".to_owned(),
            format!("PATCH /videos/{} metadata,tags", id_of(1)),
            format!("PATCH /videos/{} title", id_of(0)),
            format!("POST /videos/{new}/source"),
        ]
        .into_iter()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect::<Vec<_>>(),
        "only the differing fields of rows 0 and 1, and row 5's create and source"
    );
    // The unchanged rows were not even read: the journal holds the fields they were set with.
    for i in [2, 3, 4] {
        let read = sent.iter().any(|l| l["path"] == format!("/videos/{}", id_of(i)));
        assert!(!read, "row {i}'s video was read: {sent:#?}");
    }
    let expect =
        |status: &str, id: String, updated: &str| (status.to_owned(), id, updated.to_owned());
    assert_eq!(ids["row-0"], expect("updated", id_of(0), "title"));
    assert_eq!(ids["row-1"], expect("updated", id_of(1), "tags metadata"));
    assert_eq!(ids["row-2"], expect("skipped", id_of(2), ""));
    assert_eq!(ids["row-3"], expect("skipped", id_of(3), ""));
    assert_eq!(ids["row-4"], expect("skipped", id_of(4), ""));
    assert_eq!(ids["row-5"], expect("uploaded", new.clone(), ""));
    let report = batch.read_report();
    assert_eq!(report["summary"]["updated"], 2, "{:#}", report["summary"]);
    let actions: Vec<&str> =
        report["rows"].as_array().unwrap().iter().map(|r| r["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["upsert", "upsert", "upsert", "upsert", "create", "upsert"]);

    let v0 = video(&url, &id_of(0)).await;
    assert_eq!(v0["title"], "Video zero");
    let v1 = video(&url, &id_of(1)).await;
    assert_eq!(v1["tags"], json!(["b", "c"]));
    assert_eq!(user_metadata(&v1), ["genre=drama"]);
    let key = v1["metadata"].as_array().unwrap().iter().find(|m| m["key"] == "avbatch_key");
    assert_eq!(key.unwrap()["value"], id_key("row-1"), "the key survives the metadata's update");
    assert_eq!(video(&url, &id_of(4)).await["title"], "Video 4", "a create row changes nothing");
    assert_eq!(video(&url, &new).await["public"], true);
    assert_eq!(list_videos(&url).await.len(), 6, "no video made twice");

    // Again with the journal: not one request but the key exchange.
    let from = lines(&log);
    let again = run(batch.upload(&url, &[]), Duration::from_secs(120)).await;
    assert_eq!(again.code, Some(0), "{}", again.text());
    let asked: Vec<Value> =
        logged(&log, from).into_iter().filter(|l| l["path"] != "/auth/api-key").collect();
    assert!(asked.is_empty(), "a re-run with the journal asks nothing: {asked:#?}");

    // Without the journal: every upsert row's video read, and only row 3's hand edit undone.
    let from = lines(&log);
    let bare = run(batch.upload(&url, &["--no-journal"]), Duration::from_secs(120)).await;
    assert_eq!(bare.code, Some(0), "{}", bare.text());
    assert_eq!(
        changes(&logged(&log, from)),
        [format!("PATCH /videos/{} description", id_of(3))],
        "only the field someone changed"
    );
    assert_eq!(video(&url, &id_of(3)).await["description"], "About 3");
    let ids = by_id(&batch.read_report());
    assert_eq!(ids["row-3"], expect("updated", id_of(3), "description"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn update_and_delete_need_no_file_and_delete_every_video_under_the_key() {
    let batch = Batch::new(4, |i| 2000 + i);
    let data = batch.path("data");
    std::fs::create_dir(&data).unwrap();
    let log = batch.path("requests.jsonl");
    let server = serve_on("127.0.0.1:0", &data, &["--request-log", log.to_str().unwrap()]).await;
    let url = server.url.clone();
    let up = run(batch.upload(&url, &[]), Duration::from_secs(120)).await;
    assert_eq!(up.code, Some(0), "{}", up.text());
    let first = by_id(&batch.read_report());
    let id_of = |i: usize| first[&format!("row-{i}")].1.clone();
    // A second video under row 2's key, as a run elsewhere might have left.
    let twin = video_holding_under(&url, "avbatch_key", &id_key("row-2"), b"abc", 3).await;

    // Row 0's file is gone and its row only updates; rows 1 and 2 are deleted (row 1's file is
    // gone too); row 3 updates a key that has no video; row 4 updates nothing that differs.
    std::fs::remove_file(batch.path("f0.mp4")).unwrap();
    std::fs::remove_file(batch.path("f1.mp4")).unwrap();
    let csv = "id,path,title,description,action\n\
               row-0,f0.mp4,Fault video 0,Now described,update\n\
               row-1,f1.mp4,,,delete\n\
               row-2,,,,delete\n\
               row-9,,Nobody,,update\n\
               row-3,f3.mp4,Fault video 3,,update\n";
    std::fs::write(batch.manifest(), csv).unwrap();

    // The dry run reads the account and says what each row would do.
    let mut cmd = avbatch();
    cmd.args(["upload", batch.manifest().to_str().unwrap(), "--base-url", &url, "-n", "--json"])
        .env("AVBATCH_API_KEY", KEY);
    let from = lines(&log);
    let dry = run(cmd, Duration::from_secs(60)).await;
    assert_eq!(dry.code, Some(0), "{}", dry.text());
    let plan: Value = serde_json::from_str(&dry.stdout).expect("the plan is JSON");
    let said: Vec<String> = plan["plan"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let mut line = r["action"].as_str().unwrap().to_owned();
            for (k, v) in [("fields", &r["fields"]), ("videoIds", &r["videoIds"])] {
                if let Some(items) = v.as_array() {
                    let mut items: Vec<&str> = items.iter().map(|i| i.as_str().unwrap()).collect();
                    items.sort_unstable();
                    line.push_str(&format!(" {k}={}", items.join(",")));
                }
            }
            line
        })
        .collect();
    let mut twins = [id_of(2), twin.clone()];
    twins.sort();
    assert_eq!(
        said,
        [
            "update fields=description".to_owned(),
            format!("delete videoIds={}", id_of(1)),
            format!("delete videoIds={}", twins.join(",")),
            "missing".to_owned(),
            "skip".to_owned(),
        ]
    );
    assert_eq!(plan["estimate"]["requests"]["writes"], 4, "one PATCH, three DELETEs");
    let dry_sent = logged(&log, from);
    assert!(dry_sent.iter().all(|l| l["method"] == "GET" || l["path"] == "/auth/api-key"));

    let from = lines(&log);
    let done = run(batch.upload(&url, &[]), Duration::from_secs(120)).await;
    assert_eq!(done.code, Some(1), "row 9's failure fails the run: {}", done.text());
    assert!(done.stderr.contains("no video carries this row's key"), "{}", done.stderr);
    let mut expected = vec![
        format!("DELETE /videos/{}", id_of(1)),
        format!("DELETE /videos/{}", id_of(2)),
        format!("DELETE /videos/{twin}"),
        format!("PATCH /videos/{} description", id_of(0)),
    ];
    expected.sort();
    assert_eq!(changes(&logged(&log, from)), expected);
    let ids = by_id(&batch.read_report());
    assert_eq!(ids["row-0"].0, "updated");
    assert_eq!(ids["row-1"], ("deleted".into(), id_of(1), String::new()));
    assert_eq!(ids["row-2"].0, "deleted");
    assert_eq!(ids["row-9"].0, "failed");
    assert_eq!(ids["row-3"].0, "skipped");
    assert_eq!(video(&url, &id_of(0)).await["description"], "Now described");
    for gone in [id_of(1), id_of(2), twin] {
        assert!(!exists(&url, &gone).await, "{gone} deleted");
    }
    assert!(exists(&url, &id_of(3)).await);

    // Without row 9, again: the journal has it all, nothing is asked.
    let csv =
        std::fs::read_to_string(batch.manifest()).unwrap().replace("row-9,,Nobody,,update\n", "");
    std::fs::write(batch.manifest(), csv).unwrap();
    let from = lines(&log);
    let again = run(batch.upload(&url, &[]), Duration::from_secs(120)).await;
    assert_eq!(again.code, Some(0), "{}", again.text());
    let asked: Vec<Value> =
        logged(&log, from).into_iter().filter(|l| l["path"] != "/auth/api-key").collect();
    assert!(asked.is_empty(), "{asked:#?}");

    // A `delete` row without an `id` needs its file (its key is made of it): refused up front.
    std::fs::write(batch.manifest(), "path,action\nf1.mp4,delete\n,update\n").unwrap();
    let refused = run(batch.upload(&url, &[]), Duration::from_secs(60)).await;
    assert_eq!(refused.code, Some(2), "{}", refused.text());
    assert!(refused.stderr.contains("line 2, column `path`"), "{}", refused.stderr);
    assert!(refused.stderr.contains("missing file"), "{}", refused.stderr);
    let said = "empty `path` in a row without an `id` (action `update`)";
    assert!(refused.stderr.contains(said), "{}", refused.stderr);
    std::fs::write(batch.manifest(), "id,path,action\nrow-0,f0.mp4,Upsert\n").unwrap();
    let refused = run(batch.upload(&url, &[]), Duration::from_secs(60)).await;
    assert_eq!(refused.code, Some(2), "{}", refused.text());
    assert!(refused.stderr.contains("did you mean `upsert`?"), "{}", refused.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn updates_and_deletes_come_out_right_when_answers_are_lost() {
    let batch = Batch::new(8, |i| 1500 + i);
    let data = batch.path("data");
    std::fs::create_dir(&data).unwrap();
    let clean = serve_on("127.0.0.1:0", &data, &[]).await;
    let up = run(batch.upload(&clean.url, &[]), Duration::from_secs(120)).await;
    assert_eq!(up.code, Some(0), "{}", up.text());
    let first = by_id(&batch.read_report());
    let addr = clean.addr();
    drop(clean);

    // The same data, now answering a third of the requests with a dropped connection after
    // they took effect.
    let lossy = serve_on(&addr, &data, &["--lose-rate", "0.33", "--seed", "15"]).await;
    let url = lossy.url.clone();
    let mut csv = String::from("id,path,title,tags,action\n");
    for i in 0..8 {
        let action = if i % 2 == 0 { "update" } else { "delete" };
        csv.push_str(&format!("row-{i},f{i}.mp4,Retitled {i},t{i},{action}\n"));
    }
    std::fs::write(batch.manifest(), csv).unwrap();
    let done = run(batch.upload(&url, &["--no-journal"]), Duration::from_secs(180)).await;
    assert_eq!(done.code, Some(0), "{}", done.text());
    let ids = by_id(&batch.read_report());
    for i in 0..8 {
        let id = first[&format!("row-{i}")].1.clone();
        if i % 2 == 0 {
            assert_eq!(ids[&format!("row-{i}")].0, "updated");
            let v = video(&url, &id).await;
            assert_eq!(
                (v["title"].as_str(), &v["tags"]),
                (Some(&*format!("Retitled {i}")), &json!([format!("t{i}")]))
            );
        } else {
            assert!(!exists(&url, &id).await, "row {i}'s video deleted");
        }
    }
    assert_eq!(list_videos(&url).await.len(), 4);
}

/// The README's nightly recipe: `upsert` for the catalogue, `delete` for what left it. A file
/// rewritten under an `upsert` row is replaced (same size or not) beside a `delete` row, as it is
/// without one, and the next run has nothing left to do (#25, point 1).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_upsert_beside_a_delete_row_replaces_a_rewritten_file() {
    let (batch, server, first) = uploaded(4, |i| 4000 + i).await;
    let url = server.url.clone();
    let id_of = |i: usize| first[&format!("row-{i}")].1.clone();

    // Overnight: f0 rewritten in place (same size), f1 rewritten longer, f3 left the catalogue.
    let later = std::time::SystemTime::now() + Duration::from_secs(5);
    let rewritten = [(0, common::pattern(4000, 7)), (1, common::pattern(6000, 9))];
    for (i, bytes) in &rewritten {
        let path = batch.path(&format!("f{i}.mp4"));
        std::fs::write(&path, bytes).unwrap();
        std::fs::File::options().write(true).open(&path).unwrap().set_modified(later).unwrap();
    }
    let csv = "id,path,title,action\n\
               row-0,f0.mp4,Fault video 0,upsert\n\
               row-1,f1.mp4,Fault video 1,upsert\n\
               row-2,f2.mp4,Fault video 2,upsert\n\
               row-3,,,delete\n";
    std::fs::write(batch.manifest(), csv).unwrap();
    let night = run(batch.upload(&url, &[]), Duration::from_secs(120)).await;
    assert_eq!(night.code, Some(0), "{}", night.text());
    let ids = by_id(&batch.read_report());
    assert_eq!(ids["row-2"], ("skipped".into(), id_of(2), String::new()));
    assert_eq!(ids["row-3"].0, "deleted");
    for (i, bytes) in &rewritten {
        let (status, now, _) = &ids[&format!("row-{i}")];
        assert_eq!(status, "uploaded", "row {i} replaced: {}", night.text());
        assert_ne!(now, &id_of(*i), "row {i} has a new video");
        assert_eq!(&source_of(&url, now).await, bytes, "row {i} holds the new bytes");
        assert!(!exists(&url, &id_of(*i)).await, "row {i}'s old video is gone");
    }
    assert_eq!(list_videos(&url).await.len(), 3, "one video per row left");

    let again = run(batch.upload(&url, &[]), Duration::from_secs(120)).await;
    assert_eq!(again.code, Some(0), "{}", again.text());
    let ids_again = by_id(&batch.read_report());
    for i in 0..3 {
        let row = format!("row-{i}");
        assert_eq!(ids_again[&row].0, "skipped", "{row}: {}", again.text());
        assert_eq!(ids_again[&row].1, ids[&row].1, "{row} keeps its video");
    }
}

/// Issue #25, point 9: a row whose source was complete before the run and whose video this
/// run changed otherwise (its fields, or only its thumbnail and tracks) is `updated`, the
/// assets it sent named in `assets`; never `uploaded`, which says the source went. Whether the
/// row is `update`, `upsert` or `create`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_row_that_only_sent_assets_to_its_complete_video_is_reported_updated() {
    let (batch, server, first) = uploaded(4, |i| 3000 + i).await;
    let url = server.url.clone();

    // The same fields; a caption track for each row, and a new title for row 3.
    std::fs::write(batch.path("en.vtt"), "WEBVTT\n\n00:00.000 --> 00:01.000\nHello\n").unwrap();
    let mut csv = String::from("id,path,title,captions.en,action\n");
    csv.push_str("row-0,f0.mp4,Fault video 0,en.vtt,update\n");
    csv.push_str("row-1,f1.mp4,Fault video 1,en.vtt,upsert\n");
    csv.push_str("row-2,f2.mp4,Fault video 2,en.vtt,create\n");
    csv.push_str("row-3,f3.mp4,Video three,en.vtt,upsert\n");
    std::fs::write(batch.manifest(), csv).unwrap();
    let again = run(batch.upload(&url, &[]), Duration::from_secs(120)).await;
    assert_eq!(again.code, Some(0), "{}", again.text());
    let report = batch.read_report();
    let said: Vec<(&str, &str, &str, u64)> = report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let text = |k: &str| r[k].as_str().unwrap_or("");
            (text("status"), text("updated"), text("assets"), r["sent"].as_u64().unwrap())
        })
        .collect();
    assert_eq!(
        said,
        [
            ("updated", "", "captions.en", 0),
            ("updated", "", "captions.en", 0),
            ("updated", "", "captions.en", 0),
            ("updated", "title", "captions.en", 0),
        ],
        "{report:#}"
    );
    let summary = &report["summary"];
    assert_eq!((summary["uploaded"].as_u64(), summary["updated"].as_u64()), (Some(0), Some(4)));
    for (id, (_, video_id, _)) in &by_id(&report) {
        assert_eq!(video_id, &first[id].1, "{id}: the same video");
        let track = get_api(format!("{url}/videos/{video_id}/captions/en")).await;
        assert_eq!(track.status().as_u16(), 200, "{id}: its track is there");
    }
    assert_eq!(list_videos(&url).await.len(), 4, "no video made");
}
