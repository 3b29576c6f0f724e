//! One bad row need not stop the others (issue #25, point 10). By default a manifest with an
//! invalid row is refused whole (exit 2, nothing sent); with `--skip-invalid-rows` every valid
//! row is uploaded and each invalid one is reported `failed` with its problems, by line and
//! column, in the report (JSON and CSV), the run exiting 1; the journal records nothing of it,
//! so a run after it is fixed uploads it. The real binary against `avbatch serve`.
//!
//! Before `--skip-invalid-rows`, clap refused the flag (exit 2, nothing sent): these tests
//! failed at their first run with it.

use crate::common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::batch::*;
use common::{pattern, KEY};
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(120);

/// Captions whose second cue ends at a minute that is not a number (`0x`).
const BROKEN_SRT: &str =
    "1\n00:00:01,000 --> 00:00:02,000\nHello\n\n2\n00:00:03,000 --> 00:0x:04,000\nAgain\n";

/// The same captions, mended.
const MENDED_SRT: &str =
    "1\n00:00:01,000 --> 00:00:02,000\nHello\n\n2\n00:00:03,000 --> 00:00:04,000\nAgain\n";

/// Six rows on lines 2 to 7: the second (line 3) has a caption file that does not parse, the
/// fourth (line 5) names a file that is not there. Returns each row's source.
fn library(dir: &Path) -> Vec<Vec<u8>> {
    let mut csv = String::from("id,path,title,captions.fr\n");
    let mut sources = Vec::new();
    for i in 0..6 {
        let data = pattern(3000 + 17 * i, 60 + i as u8);
        if i != 3 {
            std::fs::write(dir.join(format!("v{i}.mp4")), &data).unwrap();
        }
        let captions = if i == 1 { "broken.fr.srt" } else { "" };
        csv.push_str(&format!("row-{i},v{i}.mp4,Video {i},{captions}\n"));
        sources.push(data);
    }
    std::fs::write(dir.join("broken.fr.srt"), BROKEN_SRT).unwrap();
    std::fs::write(dir.join("manifest.csv"), csv).unwrap();
    sources
}

/// `avbatch upload manifest.csv` against `url`, its report as JSON on stdout and as CSV in
/// `report.csv`, then `extra`.
fn upload(dir: &Path, url: &str, extra: &[&str]) -> Command {
    let mut cmd = avbatch();
    cmd.args(["upload", "manifest.csv", "--base-url", url, "-q", "--json"])
        .args(["--report", "report.csv"])
        .args(extra)
        .current_dir(dir)
        .env("AVBATCH_API_KEY", KEY);
    cmd
}

/// The JSON report a run printed on stdout.
fn printed(done: &Done) -> Value {
    serde_json::from_str(&done.stdout).unwrap_or_else(|e| panic!("{e}: {}", done.text()))
}

/// Each row of `report.csv` as (line, status, error).
fn csv_rows(dir: &Path) -> Vec<(String, String, String)> {
    let mut reader = csv::Reader::from_path(dir.join("report.csv")).unwrap();
    let headers = reader.headers().unwrap().clone();
    let at = |name: &str| headers.iter().position(|h| h == name).expect(name);
    let (line, status, error) = (at("line"), at("status"), at("error"));
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            (r[line].to_owned(), r[status].to_owned(), r[error].to_owned())
        })
        .collect()
}

/// The problems the invalid rows are reported with: their line, their column, what is wrong.
const CAPTION_PROBLEM: &str = "line 3, column `captions.fr`: `broken.fr.srt` does not parse";
const MISSING_PROBLEM: &str = "line 5, column `path`: missing file";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn skip_invalid_rows_uploads_the_valid_rows_and_reports_the_invalid_ones_failed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let sources = library(dir);
    let serve = serve_on("127.0.0.1:0", &dir.join("data"), &[]).await;
    let url = serve.url.as_str();

    // The default stays: the whole manifest refused, both problems said, nothing sent.
    let done = run(upload(dir, url, &[]), LIMIT).await;
    assert_eq!(done.code, Some(2), "{}", done.text());
    for said in [CAPTION_PROBLEM, MISSING_PROBLEM, "hint: --skip-invalid-rows"] {
        assert!(done.stderr.contains(said), "{said}\n{}", done.text());
    }
    assert!(list_videos(url).await.is_empty(), "nothing was made");

    // With the flag: the four valid rows uploaded byte for byte, the two others failed.
    let done = run(upload(dir, url, &["--skip-invalid-rows"]), LIMIT).await;
    assert_eq!(done.code, Some(1), "some rows failed: {}", done.text());
    let report = printed(&done);
    let rows = report["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 6, "{report}");
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row["line"], i as u64 + 2, "{row}");
        match i {
            1 | 3 => {
                assert_eq!(row["status"], "failed", "{row}");
                assert!(row["videoId"].is_null(), "never started: {row}");
                let problem = if i == 1 { CAPTION_PROBLEM } else { MISSING_PROBLEM };
                let error = row["error"].as_str().unwrap_or_default();
                assert!(error.contains(problem), "{problem}\n{row}");
            }
            _ => {
                assert_eq!(row["status"], "uploaded", "{row}");
                let id = row["videoId"].as_str().expect("a video");
                assert_eq!(source_of(url, id).await, sources[i], "row {i}, byte for byte");
            }
        }
    }
    let summary = &report["summary"];
    assert_eq!((&summary["uploaded"], &summary["failed"]), (&4.into(), &2.into()), "{summary}");
    assert_eq!(list_videos(url).await.len(), 4, "one video per valid row, none for the others");
    let csv = csv_rows(dir);
    let statuses: Vec<&str> = csv.iter().map(|(_, status, _)| status.as_str()).collect();
    assert_eq!(statuses, ["uploaded", "failed", "uploaded", "failed", "uploaded", "uploaded"]);
    assert!(csv[1].0 == "3" && csv[1].2.contains(CAPTION_PROBLEM), "{:?}", csv[1]);
    assert!(csv[3].0 == "5" && csv[3].2.contains(MISSING_PROBLEM), "{:?}", csv[3]);
    for said in [CAPTION_PROBLEM, MISSING_PROBLEM, "2 row(s) of the manifest have problems"] {
        assert!(done.stderr.contains(said), "{said}\n{}", done.text());
    }

    // The journal records nothing of the invalid rows: `status` counts them not started.
    let status = avbatch().args(["status", "manifest.csv", "--json"]).current_dir(dir).output();
    let status: Value = serde_json::from_slice(&status.unwrap().stdout).expect("status JSON");
    let counts = (&status["done"], &status["failed"], &status["notStarted"]);
    assert_eq!(counts, (&4.into(), &0.into(), &2.into()), "{status}");

    // Mended, the second row goes up on the next run, alone; the fourth still fails.
    std::fs::write(dir.join("broken.fr.srt"), MENDED_SRT).unwrap();
    let done = run(upload(dir, url, &["--skip-invalid-rows"]), LIMIT).await;
    assert_eq!(done.code, Some(1), "{}", done.text());
    let report = printed(&done);
    let statuses: Vec<&str> =
        report["rows"].as_array().unwrap().iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["skipped", "uploaded", "skipped", "failed", "skipped", "skipped"]);
    let id = report["rows"][1]["videoId"].as_str().expect("the mended row's video");
    assert_eq!(source_of(url, id).await, sources[1], "the mended row, byte for byte");
    assert!(report["rows"][3]["error"].as_str().unwrap().contains(MISSING_PROBLEM), "{report}");
    assert_eq!(list_videos(url).await.len(), 5, "the mended row's video, and no other");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shards_with_skip_invalid_rows_report_each_invalid_row_once() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let sources = library(dir);
    let serve = serve_on("127.0.0.1:0", &dir.join("data"), &[]).await;
    let url = serve.url.as_str();
    let mut by_line = std::collections::BTreeMap::new();
    for shard in ["0/2", "1/2"] {
        let done = run(upload(dir, url, &["--skip-invalid-rows", "--shard", shard]), LIMIT).await;
        let report = printed(&done);
        let failed = report["summary"]["failed"].as_u64().unwrap();
        assert_eq!(done.code, Some(if failed > 0 { 1 } else { 0 }), "{}", done.text());
        for row in report["rows"].as_array().unwrap() {
            let line = row["line"].as_u64().unwrap();
            assert!(by_line.insert(line, row.clone()).is_none(), "line {line} in two shards");
        }
    }
    assert_eq!(by_line.keys().copied().collect::<Vec<_>>(), [2, 3, 4, 5, 6, 7], "every row");
    for (line, row) in &by_line {
        let i = *line as usize - 2;
        match i {
            1 | 3 => {
                let problem = if i == 1 { CAPTION_PROBLEM } else { MISSING_PROBLEM };
                assert_eq!(row["status"], "failed", "{row}");
                assert!(row["error"].as_str().unwrap().contains(problem), "{row}");
            }
            _ => {
                assert_eq!(row["status"], "uploaded", "{row}");
                let id = row["videoId"].as_str().unwrap();
                assert_eq!(source_of(url, id).await, sources[i], "row {i}, byte for byte");
            }
        }
    }
    assert_eq!(list_videos(url).await.len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn skip_invalid_rows_plans_invalid_rows_and_leaves_out_every_row_of_a_shared_id() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    for i in 0..4 {
        std::fs::write(dir.join(format!("v{i}.mp4")), pattern(2000 + i, i as u8)).unwrap();
    }
    let manifest = "id,path,title,language\n\
                    a,v0.mp4,A,\n\
                    b,v1.mp4,B,xx-nope\n\
                    a,v2.mp4,C,\n\
                    c,v3.mp4,D,\n";
    std::fs::write(dir.join("manifest.csv"), manifest).unwrap();
    let local = |extra: &[&str]| {
        let mut cmd = avbatch();
        cmd.args(["upload", "manifest.csv", "--env", "local", "-q", "--skip-invalid-rows"])
            .args(extra)
            .current_dir(dir);
        cmd
    };

    // The dry run plans the rows left out `invalid`, with their problems; both rows of id `a`.
    let done = run(local(&["--dry-run", "--json"]), LIMIT).await;
    assert_eq!(done.code, Some(0), "{}", done.text());
    let plan = printed(&done);
    let planned: Vec<(u64, &str)> = plan["plan"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["line"].as_u64().unwrap(), r["action"].as_str().unwrap()))
        .collect();
    assert_eq!(planned, [(2, "invalid"), (3, "invalid"), (4, "invalid"), (5, "upload")]);
    let problems = |i: usize| plan["plan"][i]["problems"].to_string();
    assert!(problems(0).contains("line 2, column `id`: duplicate id"), "{plan}");
    assert!(problems(0).contains("line 4"), "the first row names the other: {plan}");
    assert!(problems(1).contains("line 3, column `language`"), "{plan}");
    assert!(problems(2).contains("first used on line 2"), "{plan}");
    assert_eq!(plan["actions"]["invalid"], 3, "{plan}");

    // The run: one video, for the only valid row.
    let done = run(local(&["--json", "--report", "report.json"]), LIMIT).await;
    assert_eq!(done.code, Some(1), "{}", done.text());
    let report = printed(&done);
    let statuses: Vec<&str> =
        report["rows"].as_array().unwrap().iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["failed", "failed", "failed", "uploaded"], "{report}");

    // What puts the rows themselves in doubt still refuses the manifest.
    std::fs::write(dir.join("manifest.csv"), format!("{manifest}d,v3.mp4,E,en,extra\n")).unwrap();
    let done = run(local(&[]), LIMIT).await;
    assert_eq!(done.code, Some(2), "{}", done.text());
    let said = "put its rows themselves in doubt";
    assert!(done.stderr.contains(said) && done.stderr.contains("line 6"), "{}", done.text());
}
