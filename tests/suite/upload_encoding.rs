//! `avbatch upload --wait` and `--max-processing` against `avbatch serve`'s simulated encoding
//! (#15), through the real binary.

use crate::common;
use crate::common::text;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{run_bounded, spawn_server_process, ServerProcess, KEY};
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(120);

/// A folder with `n` small files and a manifest of them.
struct Library {
    dir: tempfile::TempDir,
}

impl Library {
    fn new(n: usize) -> Library {
        let dir = tempfile::tempdir().unwrap();
        let mut csv = String::from("path,title\n");
        for i in 0..n {
            std::fs::write(dir.path().join(format!("v{i}.mp4")), vec![i as u8; 1000 + i]).unwrap();
            csv.push_str(&format!("v{i}.mp4,Video {i}\n"));
        }
        std::fs::write(dir.path().join("manifest.csv"), csv).unwrap();
        Library { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs an upload to `url` with `extra` flags; the JSON report's rows and the output.
    fn upload(&self, url: &str, extra: &[&str]) -> (std::process::Output, Vec<Value>) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_avbatch"));
        cmd.arg("upload")
            .arg(self.path("manifest.csv"))
            .args(["--base-url", url, "-q", "--wait-poll", "50ms", "--report"])
            .arg(self.path("report.json"))
            .args(extra)
            .env("AVBATCH_API_KEY", KEY);
        let out = run_bounded(cmd, LIMIT);
        let report: Value =
            serde_json::from_slice(&std::fs::read(self.path("report.json")).unwrap()).unwrap();
        (out, report["rows"].as_array().unwrap().clone())
    }
}

fn serve(data: &Path, extra: &[&str]) -> ServerProcess {
    spawn_server_process(data, extra)
}

#[test]
fn wait_playable_then_encoded_and_a_rerun_verifies() {
    let data = tempfile::tempdir().unwrap();
    let server = serve(data.path(), &["--encoding-time", "1s"]);
    let lib = Library::new(3);
    let (out, rows) = lib.upload(&server.url, &["--wait", "playable", "-c", "3"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    for row in &rows {
        assert_eq!(row["status"], "uploaded", "{row}");
        assert_eq!(row["encoding"], "playable", "{row}");
        let secs = row["encodingSeconds"].as_f64().unwrap();
        assert!((0.45..10.0).contains(&secs), "playable halfway through 1s: {row}");
    }
    // A re-run with --wait encoded: every row is skipped, and waited for all the same.
    let (out, rows) = lib.upload(&server.url, &["--wait", "encoded"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    for row in &rows {
        assert_eq!(row["status"], "skipped", "{row}");
        assert_eq!(row["encoding"], "encoded", "{row}");
    }
    let csv = std::fs::read_to_string(lib.path("manifest.report.csv")).ok();
    assert!(csv.is_none(), "the report went where --report said");
}

#[test]
fn encoded_waits_longer_than_playable() {
    let data = tempfile::tempdir().unwrap();
    let server = serve(data.path(), &["--encoding-time", "1s"]);
    let lib = Library::new(2);
    let start = Instant::now();
    let (out, rows) = lib.upload(&server.url, &["--wait", "encoded"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(start.elapsed() >= Duration::from_secs(1));
    for row in &rows {
        assert_eq!(row["encoding"], "encoded", "{row}");
        assert!(row["encodingSeconds"].as_f64().unwrap() >= 0.95, "{row}");
    }
    // Without --wait, nothing is waited for and the columns stay empty.
    let lib = Library::new(1);
    let (out, rows) = lib.upload(&server.url, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(rows[0]["encoding"].is_null() && rows[0]["encodingSeconds"].is_null(), "{rows:?}");
}

#[test]
fn failed_encodings_fail_their_rows() {
    let data = tempfile::tempdir().unwrap();
    let args = ["--encoding-time", "400ms", "--encoding-fail-rate", "0.5", "--seed", "9"];
    let server = serve(data.path(), &args);
    let lib = Library::new(8);
    let (out, rows) = lib.upload(&server.url, &["--wait", "playable", "-c", "8"]);
    let mut failed = 0;
    for row in &rows {
        if row["status"] == "failed" {
            failed += 1;
            assert_eq!(row["encoding"], "failed", "{row}");
            let error = row["error"].as_str().unwrap();
            assert!(error.starts_with("encoding failed: hls 240p"), "{row}");
            assert!(row["videoId"].is_string(), "the video is kept: {row}");
        } else {
            assert_eq!(
                (&row["status"], &row["encoding"]),
                (&"uploaded".into(), &"playable".into())
            );
        }
    }
    assert_eq!(out.status.code(), Some(if failed > 0 { 1 } else { 0 }), "{}", text(&out));
    // Every video fails on this one.
    let data = tempfile::tempdir().unwrap();
    let server = serve(data.path(), &["--encoding-time", "200ms", "--encoding-fail-rate", "1"]);
    let lib = Library::new(2);
    let (out, rows) = lib.upload(&server.url, &["--wait", "playable"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(rows.iter().all(|r| r["status"] == "failed" && r["encoding"] == "failed"), "{rows:?}");
    assert!(text(&out).contains("encoding failed"), "{}", text(&out));
}

#[test]
fn a_bound_ends_the_wait() {
    let data = tempfile::tempdir().unwrap();
    let server = serve(data.path(), &["--encoding-time", "1h"]);
    let lib = Library::new(1);
    let (out, rows) = lib.upload(&server.url, &["--wait", "playable", "--wait-timeout", "500ms"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(rows[0]["encoding"], "timeout", "{rows:?}");
    assert!(rows[0]["error"].as_str().unwrap().starts_with("still encoding after 500ms"));
}

/// The request log's lines: (method, path).
fn requests(log: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|v| (v["method"].as_str().unwrap().into(), v["path"].as_str().unwrap().into()))
        .collect()
}

#[test]
fn max_processing_holds_new_sources_while_videos_encode() {
    let data = tempfile::tempdir().unwrap();
    let log = data.path().join("requests.jsonl");
    let log_arg = log.to_str().unwrap();
    let server =
        serve(&data.path().join("d"), &["--encoding-time", "2s", "--request-log", log_arg]);
    let lib = Library::new(4);
    let start = Instant::now();
    let (out, rows) = lib.upload(&server.url, &["--max-processing", "1", "-c", "4"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // Playable 1 s after each source: the four follow each other.
    assert!(start.elapsed() >= Duration::from_secs(3), "{:?}", start.elapsed());
    assert!(rows.iter().all(|r| r["status"] == "uploaded" && r["encoding"].is_null()));
    let log = requests(&log);
    let video = |path: &str| path.split('/').nth(2).unwrap_or_default().to_owned();
    let sources: Vec<(usize, String)> = log
        .iter()
        .enumerate()
        .filter(|(_, (m, p))| m == "POST" && p.ends_with("/source"))
        .map(|(i, (_, p))| (i, video(p)))
        .collect();
    assert_eq!(sources.len(), 4, "{log:?}");
    for pair in sources.windows(2) {
        let ((_, before), (next_source, _)) = (&pair[0], &pair[1]);
        let polls: Vec<usize> = log
            .iter()
            .enumerate()
            .filter(|(_, (m, p))| m == "GET" && p == &format!("/videos/{before}/status"))
            .map(|(i, _)| i)
            .collect();
        assert!(!polls.is_empty(), "video {before} was polled");
        // Polling stops only once the video plays: all of it came before the next source.
        assert!(polls.iter().all(|i| i < next_source), "{log:?}");
    }
}

/// A video whose encoding failed (#25, point 6): the next run says so and how to upload the
/// file again, where it reported the row `skipped` and sent nothing (`--force` did nothing
/// either); `--force` then uploads it to a new video, which replaces the one that failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_encoding_is_said_and_force_uploads_the_file_again() {
    use common::batch::{list_videos, run, serve_on, source_of, Batch};
    let data = tempfile::tempdir().unwrap();
    let failing = ["--encoding-time", "100ms", "--encoding-fail-rate", "1"];
    let server = serve_on("127.0.0.1:0", data.path(), &failing).await;
    let batch = Batch::new(1, |_| 3000);
    let wait = ["--wait", "playable", "--wait-poll", "50ms"];
    let first = run(batch.upload(&server.url, &wait), LIMIT).await;
    assert_eq!(first.code, Some(1), "{}", first.text());
    let old = batch.read_report()["rows"][0]["videoId"].as_str().unwrap().to_owned();

    let again = run(batch.upload(&server.url, &[]), LIMIT).await;
    assert_eq!(again.code, Some(1), "the row is not done: {}", again.text());
    let row = &batch.read_report()["rows"][0];
    assert_eq!(row["status"], "failed", "{row}");
    let error = row["error"].as_str().unwrap_or_default();
    assert!(error.contains(&format!("the encoding of video `{old}` failed")), "{row}");
    assert!(error.contains("pass --force to upload the file again"), "{row}");

    // `check`, the proof of completion, says it too.
    let mut check = common::batch::avbatch();
    check.args(["check", batch.manifest().to_str().unwrap(), "--base-url", &server.url]);
    check.env("AVBATCH_API_KEY", KEY);
    let checked = run(check, LIMIT).await;
    assert_eq!(checked.code, Some(1), "not in step: {}", checked.text());
    assert!(checked.stdout.contains("its encoding failed"), "{}", checked.text());

    // --force makes a new video for the file and drops the one that failed (whose encoding
    // this double fails too: not waited for here).
    let forced = run(batch.upload(&server.url, &["--force"]), LIMIT).await;
    assert_eq!(forced.code, Some(0), "{}", forced.text());
    let row = &batch.read_report()["rows"][0];
    let new = row["videoId"].as_str().unwrap();
    assert_eq!(row["status"], "uploaded", "{row}");
    assert_ne!(new, old, "{row}");
    assert!(row["note"].as_str().unwrap_or_default().contains(&old), "{row}");
    let videos = list_videos(&server.url).await;
    assert_eq!(videos.len(), 1, "the failed video was replaced: {videos:#?}");
    assert!(source_of(&server.url, new).await == batch.sources[0]);
}
