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

/// Issue #25, point 16: report cells beginning with `=`, `+`, `-` or `@` (a manifest cell's
/// leading tab is trimmed, so `\t=1+1` is `=1+1`) ran as formulas in a spreadsheet. The run's
/// CSV report and `check`'s CSV prefix such text cells with `'` (OWASP's advice), numbers stay
/// numbers, a JSON report keeps the values as they are, and merging the CSV report reads them
/// back exactly: to JSON as the values, to CSV as the same file.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn report_cells_a_spreadsheet_would_run_are_neutralised_and_read_back_exactly() {
    // (id, path, title) as written in the manifest, and as the CSV report must say them.
    let cells = [
        (("=id1", "=a.mp4", "=1+1"), ("'=id1", "'=a.mp4", "'=1+1")),
        (("+id2", "+b.mp4", "+1+1"), ("'+id2", "'+b.mp4", "'+1+1")),
        (("-5", "-c.mp4", "-1+1"), ("'-5", "'-c.mp4", "'-1+1")),
        (("@id4", "@d.mp4", "@SUM(1)"), ("'@id4", "'@d.mp4", "'@SUM(1)")),
        (("\t=id5", "e.mp4", "\t=1+1"), ("'=id5", "e.mp4", "'=1+1")),
        (("'=id6", "f.mp4", "'plain"), ("''=id6", "f.mp4", "'plain")),
    ];
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut manifest = String::from("id,path,title\n");
    for (i, ((id, path, title), _)) in cells.iter().enumerate() {
        std::fs::write(d.join(path), vec![i as u8; 1000 + i]).unwrap();
        manifest.push_str(&format!("{id},{path},{title}\n"));
    }
    std::fs::write(d.join("manifest.csv"), manifest).unwrap();
    let serve = common::batch::serve_on("127.0.0.1:0", &d.join("data"), &[]).await;
    let avbatch_in = |args: &[&str]| {
        let mut cmd = avbatch();
        cmd.args(args).current_dir(d).env("AVBATCH_API_KEY", KEY);
        cmd
    };
    let limit = Duration::from_secs(120);

    // `check` before the upload: every row missing, its id and title in the CSV.
    let check = ["check", "manifest.csv", "--base-url", &serve.url, "--report", "check.csv"];
    let done = run(avbatch_in(&check), limit).await;
    assert_eq!(done.code, Some(1), "{}", done.text());
    let found = rows(&d.join("check.csv"));
    let (id, title) = (column(&d.join("check.csv"), "id"), column(&d.join("check.csv"), "title"));
    let said: Vec<(&str, &str)> = found.iter().map(|r| (&r[id], &r[title])).collect();
    let want: Vec<(&str, &str)> = cells.iter().map(|(_, (i, _, t))| (*i, *t)).collect();
    assert_eq!(said, want, "check's CSV");

    let upload = ["upload", "manifest.csv", "--base-url", &serve.url, "--report", "report.csv"];
    let done = run(avbatch_in(&upload), limit).await;
    assert_eq!(done.code, Some(0), "{}", done.text());
    let report = d.join("report.csv");
    let written = rows(&report);
    let cell = |name: &str| column(&report, name);
    let said: Vec<(&str, &str, &str)> =
        written.iter().map(|r| (&r[cell("id")], &r[cell("path")], &r[cell("title")])).collect();
    let want: Vec<(&str, &str, &str)> = cells.iter().map(|(_, csv)| *csv).collect();
    assert_eq!(said, want, "the run's CSV report");
    for (i, r) in written.iter().enumerate() {
        assert_eq!(r[cell("bytes")], (1000 + i).to_string(), "a number stays a number");
    }

    // Read back: JSON holds the values (a manifest cell trimmed), CSV the same cells again.
    let merge = ["report", "merge", "report.csv", "-o", "merged.json"];
    let done = run(avbatch_in(&merge), limit).await;
    assert_eq!(done.code, Some(0), "{}", done.text());
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("merged.json")).unwrap()).unwrap();
    let values: Vec<(&str, &str, &str)> = doc["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let text = |k: &str| r[k].as_str().unwrap();
            (text("id"), text("path"), text("title"))
        })
        .collect();
    let trimmed: Vec<(&str, &str, &str)> =
        cells.iter().map(|((i, p, t), _)| (i.trim(), p.trim(), t.trim())).collect();
    assert_eq!(values, trimmed, "the JSON report holds the values as they are");
    let merge = ["report", "merge", "report.csv", "-o", "merged.csv"];
    let done = run(avbatch_in(&merge), limit).await;
    assert_eq!(done.code, Some(0), "{}", done.text());
    let again = std::fs::read_to_string(d.join("merged.csv")).unwrap();
    assert_eq!(again, std::fs::read_to_string(&report).unwrap(), "a CSV round trip is exact");
}

/// Issue #25, point 9: the latest report proves completion alone. A row an earlier run did is
/// still `skipped` (this run sent nothing for it), and carries what its journal knows: its
/// video, bytes, fingerprint, assets and transfer, when its source was complete (`doneAt`) and
/// by which run (`doneBy`, that run's `runId`); `avbatch report merge` keeps both columns.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_latest_report_carries_what_earlier_runs_did_of_each_row() {
    let server = spawn_server().await;
    let batch = Batch::new(3, |i| 4000 + i);
    std::fs::write(batch.path("en.vtt"), "WEBVTT\n\n00:00.000 --> 00:01.000\nHello\n").unwrap();
    let mut csv = String::from("id,path,title,captions.en\n");
    csv.push_str("row-0,f0.mp4,Zero,en.vtt\nrow-1,f1.mp4,One,\nrow-2,f2.mp4,Two,\n");
    std::fs::write(batch.manifest(), csv).unwrap();
    let first = run(batch.upload(&server.url, &[]), Duration::from_secs(60)).await;
    assert_eq!(first.code, Some(0), "{}", first.text());
    let before = batch.read_report();
    std::thread::sleep(Duration::from_millis(1100));
    let second = run(batch.upload(&server.url, &[]), Duration::from_secs(60)).await;
    assert_eq!(second.code, Some(0), "{}", second.text());
    let after = batch.read_report();
    assert_ne!(after["summary"]["runId"], before["summary"]["runId"], "another run");

    let time = |v: &serde_json::Value| chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap());
    for (was, now) in
        before["rows"].as_array().unwrap().iter().zip(after["rows"].as_array().unwrap())
    {
        assert_eq!((&was["status"], &now["status"]), (&"uploaded".into(), &"skipped".into()));
        assert_eq!(now["sent"], 0, "this run sent nothing: {now}");
        for same in ["videoId", "bytes", "parts", "fingerprint", "assets", "transfer"] {
            assert_eq!(now[same], was[same], "{same}: {now}");
        }
        assert_eq!(now["transfer"], "file", "{now}");
        // Done by the first run, while it worked on the row.
        assert_eq!(now["doneBy"], before["summary"]["runId"], "{now}");
        assert_eq!(was["doneBy"], before["summary"]["runId"], "{was}");
        let done = time(&now["doneAt"]).unwrap_or_else(|e| panic!("doneAt: {e}: {now}"));
        assert!(time(&was["startedAt"]).unwrap() <= done, "{was}\n{now}");
        assert!(done <= time(&was["endedAt"]).unwrap(), "{was}\n{now}");
    }
    assert_eq!(after["rows"][0]["assets"], "captions.en", "{:#}", after["rows"][0]);

    // Merged to CSV, the history stays in its columns.
    let merged = batch.path("merged.csv");
    let mut merge = avbatch();
    merge.args(["report", "merge", batch.report().to_str().unwrap(), "-o"]).arg(&merged);
    let done = run(merge, Duration::from_secs(60)).await;
    assert_eq!(done.code, Some(0), "{}", done.text());
    let (done_by, assets) = (column(&merged, "doneBy"), column(&merged, "assets"));
    let cells: Vec<(String, String)> =
        rows(&merged).iter().map(|r| (r[done_by].to_owned(), r[assets].to_owned())).collect();
    let run_id = before["summary"]["runId"].as_str().unwrap().to_owned();
    assert_eq!(
        cells,
        [
            (run_id.clone(), "captions.en".to_owned()),
            (run_id.clone(), String::new()),
            (run_id, String::new())
        ]
    );
}
