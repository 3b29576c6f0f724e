//! `avbatch check` (issue #15): a manifest compared with the account by key, reading only. A
//! library uploaded with `avbatch upload` is in step (exit 0); one holding every kind of
//! difference at once (a row's video deleted, a title and tags changed on the server, a second,
//! incomplete video under a row's key, a video whose row left the manifest) has each found,
//! exactly, in the JSON report (exit 1); and the server's request log shows only GETs. Tracks
//! deleted by hand are seen; two manifests sharing one account, each naming the other
//! (`--shared-with`), see only their own extras.
//!
//! Every test drives the real binary against `avbatch serve` run as a process.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use avbatch_core::manifest::id_key;
use common::batch::*;
use common::{basic_auth, KEY, MIB};
use serde_json::{json, Value};

/// `avbatch check MANIFEST --base-url URL --json EXTRA` with the test key: its exit code and
/// the JSON it printed.
async fn check(url: &str, manifest: &Path, extra: &[&str]) -> (Option<i32>, Value, Done) {
    let mut cmd = avbatch();
    cmd.arg("check")
        .arg(manifest)
        .args(["--base-url", url, "--json"])
        .args(extra)
        .env("AVBATCH_API_KEY", KEY);
    let done = run(cmd, Duration::from_secs(60)).await;
    let doc = serde_json::from_str(&done.stdout)
        .unwrap_or_else(|e| panic!("check --json prints JSON ({e})\n{}", done.text()));
    (done.code, doc, done)
}

/// The manifest of rows `row-{i}` for each `i` of `rows`, each with tags and metadata.
fn write_manifest(path: &Path, rows: &[usize]) {
    let mut csv = String::from("id,path,title,tags,metadata\n");
    for i in rows {
        csv.push_str(&format!("row-{i},f{i}.mp4,Video {i},a;b{i},genre=g{i}\n"));
    }
    std::fs::write(path, csv).unwrap();
}

/// The server's videos by the key they carry (`avbatch_key`).
async fn by_key(url: &str) -> BTreeMap<String, Vec<String>> {
    let mut keyed: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for v in list_videos(url).await {
        let key = v["metadata"].as_array().unwrap().iter().find(|m| m["key"] == "avbatch_key");
        if let Some(m) = key {
            let id = v["videoId"].as_str().unwrap().to_owned();
            keyed.entry(m["value"].as_str().unwrap().to_owned()).or_default().push(id);
        }
    }
    keyed
}

/// A call with the test key that must succeed.
async fn call(method: reqwest::Method, url: String, body: Option<Value>) {
    let mut req = http().request(method, url).header("Authorization", basic_auth(KEY));
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req.send().await.unwrap();
    assert!(resp.status().is_success(), "{}", resp.text().await.unwrap());
}

/// The request log's lines from byte `from` on.
fn logged(log: &Path, from: usize) -> Vec<Value> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text[from..].lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// What a finding names, in one comparable line: kind, line, videos, fields or state.
fn said(f: &Value) -> String {
    let videos = match &f["videoIds"] {
        Value::Array(ids) => {
            let mut ids: Vec<&str> = ids.iter().map(|i| i.as_str().unwrap()).collect();
            ids.sort_unstable();
            ids.join(",")
        }
        _ => f["videoId"].as_str().unwrap_or("-").to_owned(),
    };
    let extra = match f["kind"].as_str().unwrap() {
        "differs" => f["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| format!("{}={}", d["field"].as_str().unwrap(), d["server"].as_str().unwrap()))
            .collect::<Vec<_>>()
            .join(","),
        "incomplete" => f["state"].as_str().unwrap().to_owned(),
        _ => String::new(),
    };
    format!("{} {} {videos} {extra}", f["kind"].as_str().unwrap(), f["line"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn check_finds_every_difference_and_only_reads() {
    let batch = Batch::new(7, |i| if i == 4 { 6 * MIB } else { 2000 + i });
    let data = batch.path("data");
    std::fs::create_dir(&data).unwrap();
    let log = batch.path("requests.jsonl");
    let server = serve_on("127.0.0.1:0", &data, &["--request-log", log.to_str().unwrap()]).await;
    let url = server.url.clone();
    let manifest = batch.manifest();
    write_manifest(&manifest, &[0, 1, 2, 3, 4, 5, 6]);
    let up = run(batch.upload(&url, &[]), Duration::from_secs(120)).await;
    assert_eq!(up.code, Some(0), "{}", up.text());

    // Just uploaded: in step, and said so through a CSV report too.
    let csv = batch.path("check.csv");
    let (code, doc, done) = check(&url, &manifest, &["--report", csv.to_str().unwrap()]).await;
    assert_eq!(code, Some(0), "{}", done.text());
    assert_eq!(doc["inStep"], true, "{doc:#}");
    assert_eq!((doc["rows"].as_u64(), doc["keyedVideos"].as_u64()), (Some(7), Some(7)));
    assert_eq!(doc["findings"], json!([]));
    assert!(done.stderr.contains("in step"), "{}", done.stderr);
    let text = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(text.trim(), "kind,line,id,key,videoId,title,fields,detail");

    // Every kind of difference at once.
    let keys = by_key(&url).await;
    let video = |i: usize| keys[&id_key(&format!("row-{i}"))][0].clone();
    // Row 1 (line 3): its video deleted.
    call(reqwest::Method::DELETE, format!("{url}/videos/{}", video(1)), None).await;
    // Row 2 (line 4): its title changed.
    let patch = |body| call(reqwest::Method::PATCH, format!("{url}/videos/{}", video(2)), body);
    patch(Some(json!({"title": "Renamed"}))).await;
    // Row 3 (line 5): a tag changed.
    let patch = |body| call(reqwest::Method::PATCH, format!("{url}/videos/{}", video(3)), body);
    patch(Some(json!({"tags": ["a", "changed"]}))).await;
    // Row 4 (line 6): a second video under its key, its upload left incomplete.
    let src = &batch.sources[4];
    let second = video_holding_under(&url, "avbatch_key", &id_key("row-4"), src, 5 * MIB).await;
    // Row 5: left out of the manifest, its video is an extra.
    write_manifest(&manifest, &[0, 1, 2, 3, 4, 6]);
    // Row 6 (line 7): nothing changed, and not reported.

    let before = std::fs::metadata(&log).unwrap().len() as usize;
    let json_report = batch.path("check.json");
    let (code, doc, done) =
        check(&url, &manifest, &["--report", json_report.to_str().unwrap()]).await;
    assert_eq!(code, Some(1), "{}", done.text());
    assert_eq!(doc["inStep"], false);
    let file: Value = serde_json::from_slice(&std::fs::read(&json_report).unwrap()).unwrap();
    assert_eq!(file, doc, "the report file holds what --json prints");
    let found: BTreeSet<String> = doc["findings"].as_array().unwrap().iter().map(said).collect();
    let mut dup = [video(4), second.clone()];
    dup.sort();
    let expected: BTreeSet<String> = [
        "missing 3 - ".to_owned(),
        format!("differs 4 {} title=Renamed", video(2)),
        format!("differs 5 {} tags=a;changed", video(3)),
        format!("duplicate 6 {} ", dup.join(",")),
        // The second video was made with another title and none of the row's fields.
        format!("differs 6 {second} title=held {},tags=,metadata=", 5 * MIB),
        format!("incomplete 6 {second} partial"),
        format!("extra null {} ", video(5)),
    ]
    .into_iter()
    .collect();
    assert_eq!(found, expected, "{doc:#}");
    assert_eq!(doc["findings"].as_array().unwrap().len(), expected.len());
    let counts = &doc["counts"];
    assert_eq!(
        counts,
        &json!({"missing": 1, "duplicate": 1, "differs": 3, "incomplete": 1, "unknown": 0,
                "extra": 1})
    );
    let missing = doc["findings"].as_array().unwrap().iter().find(|f| f["kind"] == "missing");
    assert_eq!(missing.unwrap()["key"], id_key("row-1"));
    assert_eq!(missing.unwrap()["id"], "row-1");
    assert!(done.stderr.contains("not in step"), "{}", done.stderr);

    // Only reads: the list, and one status per video found under a row's key.
    let requests = logged(&log, before);
    assert!(!requests.is_empty());
    let methods: BTreeSet<&str> = requests.iter().map(|r| r["method"].as_str().unwrap()).collect();
    assert_eq!(methods, BTreeSet::from(["GET"]), "{requests:#?}");
    let statuses =
        requests.iter().filter(|r| r["path"].as_str().unwrap().ends_with("/status")).count();
    assert_eq!(statuses, 6, "rows 0, 2, 3, 6 and both videos of row 4: {requests:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_manifest_or_key_reads_nothing() {
    let batch = Batch::new(1, |_| 100);
    let data = batch.path("data");
    std::fs::create_dir(&data).unwrap();
    let log = batch.path("requests.jsonl");
    let server = serve_on("127.0.0.1:0", &data, &["--request-log", log.to_str().unwrap()]).await;
    let bad = batch.path("bad.csv");
    std::fs::write(&bad, "id,path,public\nrow-0,f0.mp4,maybe\n").unwrap();
    let mut cmd = avbatch();
    cmd.arg("check").arg(&bad).args(["--base-url", &server.url]).env("AVBATCH_API_KEY", KEY);
    let done = run(cmd, Duration::from_secs(60)).await;
    assert_eq!(done.code, Some(2), "{}", done.text());
    assert!(done.stderr.contains("public"), "{}", done.stderr);
    assert!(logged(&log, 0).is_empty(), "a bad manifest reads nothing");

    let mut cmd = avbatch();
    cmd.arg("check").arg(batch.manifest()).args(["--base-url", &server.url]);
    cmd.env("AVBATCH_API_KEY", "wrong-key-0123456789");
    let done = run(cmd, Duration::from_secs(60)).await;
    assert_eq!(done.code, Some(3), "{}", done.text());
}

/// Captions and chapters deleted by hand leave a row out of step (#25, point 7): `check`
/// compares the tracks the manifest names with those its video holds, where it said `in step`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn check_sees_tracks_deleted_by_hand() {
    let batch = Batch::new(2, |i| 3000 + i);
    let data = batch.path("data");
    std::fs::create_dir(&data).unwrap();
    let server = serve_on("127.0.0.1:0", &data, &[]).await;
    let url = server.url.clone();
    let track = "WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nHello.\n";
    std::fs::write(batch.path("en.vtt"), track).unwrap();
    std::fs::write(batch.path("fr.vtt"), track.replace("Hello", "Bonjour")).unwrap();
    std::fs::write(
        batch.manifest(),
        "id,path,title,captions.en,captions.fr,chapters.en\n\
         row-0,f0.mp4,Video 0,en.vtt,fr.vtt,en.vtt\n\
         row-1,f1.mp4,Video 1,en.vtt,,\n",
    )
    .unwrap();
    let up = run(batch.upload(&url, &[]), Duration::from_secs(60)).await;
    assert_eq!(up.code, Some(0), "{}", up.text());
    let (code, doc, done) = check(&url, &batch.manifest(), &[]).await;
    assert_eq!(code, Some(0), "in step after the upload: {}", done.text());
    assert_eq!(doc["inStep"], true);

    let ids: Vec<String> = batch.read_report()["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["videoId"].as_str().unwrap().to_owned())
        .collect();
    call(reqwest::Method::DELETE, format!("{url}/videos/{}/captions/fr", ids[0]), None).await;
    call(reqwest::Method::DELETE, format!("{url}/videos/{}/chapters/en", ids[0]), None).await;
    call(reqwest::Method::DELETE, format!("{url}/videos/{}/captions/en", ids[1]), None).await;
    let (code, doc, done) = check(&url, &batch.manifest(), &[]).await;
    assert_eq!(code, Some(1), "{}", done.text());
    let mut found: Vec<String> = doc["findings"].as_array().unwrap().iter().map(said).collect();
    found.sort();
    assert_eq!(
        found,
        [
            format!("differs 2 {} captions=en,chapters=", ids[0]),
            format!("differs 3 {} captions=", ids[1]),
        ],
        "{}",
        done.text()
    );
}

/// Two manifests upload to one account (#25, point 7): each one's `check` lists the other's
/// videos as extras, unless it names the other with `--shared-with`; then only a video no row
/// of either owns is an extra, and the other's are counted apart.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_manifest_sharing_the_account_names_the_other_and_sees_only_its_own_extras() {
    let batch = Batch::new(5, |i| 2000 + i);
    let data = batch.path("data");
    std::fs::create_dir(&data).unwrap();
    let server = serve_on("127.0.0.1:0", &data, &[]).await;
    let url = server.url.clone();
    let (east, west) = (batch.path("east.csv"), batch.path("west.csv"));
    write_manifest(&east, &[0, 1, 2]);
    write_manifest(&west, &[3, 4]);
    for manifest in [&east, &west] {
        let mut up = avbatch();
        up.arg("upload").arg(manifest).args(["--base-url", &url, "-q"]);
        up.env("AVBATCH_API_KEY", KEY);
        let done = run(up, Duration::from_secs(60)).await;
        assert_eq!(done.code, Some(0), "{}", done.text());
    }
    let keys = by_key(&url).await;
    let video = |i: usize| keys[&id_key(&format!("row-{i}"))][0].clone();
    let extras = |doc: &Value| -> BTreeSet<String> {
        let findings = doc["findings"].as_array().unwrap().iter();
        findings.filter(|f| f["kind"] == "extra").map(said).collect()
    };
    let extra = |i: usize| format!("extra null {} ", video(i));

    // Row 2 leaves east's manifest: its video is east's one true extra.
    write_manifest(&east, &[0, 1]);
    // Alone, east takes west's videos for its own extras too (the default, unchanged).
    let (code, doc, done) = check(&url, &east, &[]).await;
    assert_eq!(code, Some(1), "{}", done.text());
    assert_eq!(extras(&doc), BTreeSet::from([extra(2), extra(3), extra(4)]), "{doc:#}");
    assert_eq!(doc["sharedVideos"], 0);

    // Naming west: west's two videos are its own, counted apart; row 2's is still an extra.
    let shared = ["--shared-with", west.to_str().unwrap()];
    let (code, doc, done) = check(&url, &east, &shared).await;
    assert_eq!(code, Some(1), "{}", done.text());
    assert_eq!(extras(&doc), BTreeSet::from([extra(2)]), "{doc:#}");
    assert_eq!(doc["findings"].as_array().unwrap().len(), 1, "{doc:#}");
    assert_eq!((doc["keyedVideos"].as_u64(), doc["sharedVideos"].as_u64()), (Some(5), Some(2)));
    assert!(done.stderr.contains("(2 of the manifests it shares the account with, not compared)"));

    // Row 2 back in east: each manifest, naming the other, is in step.
    write_manifest(&east, &[0, 1, 2]);
    let (code, doc, done) = check(&url, &east, &shared).await;
    assert_eq!(code, Some(0), "{}", done.text());
    assert_eq!((doc["inStep"].as_bool(), doc["sharedVideos"].as_u64()), (Some(true), Some(2)));
    let (code, doc, done) = check(&url, &west, &["--shared-with", east.to_str().unwrap()]).await;
    assert_eq!(code, Some(0), "{}", done.text());
    assert_eq!((doc["inStep"].as_bool(), doc["sharedVideos"].as_u64()), (Some(true), Some(3)));

    // A manifest named that cannot be read stops the check before any call (exit 2).
    let mut cmd = avbatch();
    cmd.arg("check").arg(&east).args(["--base-url", &url, "--shared-with"]);
    cmd.arg(batch.path("north.csv")).env("AVBATCH_API_KEY", KEY);
    let done = run(cmd, Duration::from_secs(60)).await;
    assert_eq!(done.code, Some(2), "{}", done.text());
    assert!(done.stderr.contains("north.csv"), "{}", done.stderr);
}
