//! The report as the migration's record (issue #13.10): each row's title, key, destination,
//! start and end, file size and time; the report of every run kept; only what changed on stdout.

use crate::common;

use std::time::Duration;

use avbatch_core::manifest::id_key;
use common::batch::{avbatch, run, Batch};
use common::{spawn_server, KEY};

fn rows(report: &std::path::Path) -> Vec<csv::StringRecord> {
    let mut reader = csv::Reader::from_path(report).unwrap();
    reader.records().map(Result::unwrap).collect()
}

fn column(report: &std::path::Path, name: &str) -> usize {
    let mut reader = csv::Reader::from_path(report).unwrap();
    let headers = reader.headers().unwrap().clone();
    headers.iter().position(|h| h == name).unwrap_or_else(|| panic!("no `{name}` in {headers:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_report_is_a_record_kept_run_after_run() {
    let server = spawn_server().await;
    let batch = Batch::new(3, |i| 2000 + i);
    let report = batch.path("library.report.csv");
    let upload = || {
        let mut cmd = avbatch();
        cmd.args(["upload", batch.manifest().to_str().unwrap(), "--base-url", &server.url]);
        cmd.args(["--report", report.to_str().unwrap(), "--no-journal"]);
        cmd.env("AVBATCH_API_KEY", KEY);
        cmd
    };
    let first = run(upload(), Duration::from_secs(60)).await;
    assert_eq!(first.code, Some(0), "{}", first.text());

    // Every row carries what a record needs.
    let written = rows(&report);
    assert_eq!(written.len(), 3);
    let col = |name| column(&report, name);
    for (i, r) in written.iter().enumerate() {
        let file = batch.path(&format!("f{i}.mp4"));
        let meta = std::fs::metadata(&file).unwrap();
        assert_eq!(&r[col("title")], format!("Fault video {i}"), "{r:?}");
        assert_eq!(&r[col("key")], id_key(&format!("row-{i}")), "{r:?}");
        assert_eq!(r[col("size")].parse::<u64>().unwrap(), meta.len(), "{r:?}");
        let mtime = chrono::DateTime::<chrono::Utc>::from(meta.modified().unwrap())
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        assert_eq!(&r[col("mtime")], mtime, "{r:?}");
        assert_eq!(&r[col("destination")], server.url, "{r:?}");
        let (started, ended) = (&r[col("startedAt")], &r[col("endedAt")]);
        let parse = |t: &str| chrono::DateTime::parse_from_rfc3339(t).unwrap();
        assert!(parse(started) <= parse(ended), "{r:?}");
        assert!(parse(&r[col("runId")]) <= parse(started), "the run began first: {r:?}");
        // No journal: the fingerprint of the bytes as they were sent.
        assert!(r[col("fingerprint")].starts_with("xxh3-128:"), "{r:?}");
    }
    let first_text = std::fs::read(&report).unwrap();

    // The next run keeps the first run's report, byte for byte, under the time it was written,
    // and lists on stdout only what changed: nothing.
    std::thread::sleep(Duration::from_millis(1100));
    let second = run(upload(), Duration::from_secs(60)).await;
    assert_eq!(second.code, Some(0), "{}", second.text());
    let kept: Vec<_> = std::fs::read_dir(batch.dir.path())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("library.report.") && n != "library.report.csv")
        .collect();
    assert_eq!(kept.len(), 1, "the first report is kept: {kept:?}");
    assert!(kept[0].ends_with("Z.csv"), "named after its time: {kept:?}");
    assert_eq!(std::fs::read(batch.path(&kept[0])).unwrap(), first_text, "unchanged");
    assert!(second.stderr.contains(&format!("kept as {}", batch.path(&kept[0]).display())));
    assert!(
        !second.stdout.contains("skipped") && second.stdout.contains("3 rows done before this run"),
        "unchanged rows are not listed on stdout\n{}",
        second.text()
    );
    let again = rows(&report);
    assert!(again.iter().all(|r| &r[column(&report, "status")] == "skipped"), "{again:?}");
    assert_ne!(
        &again[0][column(&report, "runId")],
        &written[0][column(&report, "runId")],
        "each run has its own id"
    );
}
