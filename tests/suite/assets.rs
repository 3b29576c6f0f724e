//! Issue #14: a library's thumbnails, captions (WebVTT and SRT), chapters and creation fields go
//! with its videos, each exactly once. The real binary against `avbatch serve` processes on
//! 127.0.0.1: a run killed with -9 midway through the assets resumes and sends only what is
//! missing; without the journal the video says what it holds; a changed caption file replaces
//! the old track; a server that refuses a second track for a language (`--existing-tracks
//! refuse`) and one that loses answers end the same. Every asset is compared byte for byte with
//! what the server serves back (captions from SRT with the expected WebVTT).

use crate::common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::batch::{avbatch, get_api, http, list_videos, run, serve_on, Running};
use common::{pattern, KEY, MIB};
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(180);

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/texttrack").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn poster() -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/library/assets/intro-poster.png"),
    )
    .unwrap()
}

/// A library of `n` videos of 6 MiB (two parts of 5 MiB), each with a thumbnail (an image, or
/// a frame for every third), captions in English (WebVTT) and French (SRT, the default),
/// chapters in English, and every creation field.
struct Library {
    dir: tempfile::TempDir,
    n: usize,
}

impl Library {
    fn new(n: usize, watermark: &str) -> Library {
        let dir = tempfile::tempdir().unwrap();
        let at = |name: &str| dir.path().join(name);
        std::fs::write(at("poster.png"), poster()).unwrap();
        std::fs::write(at("en.vtt"), fixture("sample.en.vtt")).unwrap();
        std::fs::write(at("fr.srt"), fixture("sample.fr.srt")).unwrap();
        std::fs::write(at("chapters.vtt"), fixture("chapters.en.vtt")).unwrap();
        let mut csv = String::from(
            "id,path,title,thumbnail,thumbnail_time,captions.en,captions.fr,captions_default,\
             chapters.en,transcript,transcript_summary,transcript_summary_attributes,clip_start,\
             clip_end,watermark,watermark.top,watermark.right,watermark.opacity\n",
        );
        for i in 0..n {
            std::fs::write(at(&format!("v{i}.mp4")), pattern(6 * MIB + i, i as u8)).unwrap();
            let (image, frame) = if i % 3 == 2 { ("", "00:00:02.500") } else { ("poster.png", "") };
            csv.push_str(&format!(
                "row-{i},v{i}.mp4,Video {i},{image},{frame},en.vtt,fr.srt,fr,chapters.vtt,true,\
                 true,abstract;takeaways,00:00:01,00:00:04,{watermark},10px,5%,70%\n"
            ));
        }
        std::fs::write(at("manifest.csv"), csv).unwrap();
        Library { dir, n }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn upload(&self, url: &str, extra: &[&str]) -> std::process::Command {
        let mut cmd = avbatch();
        cmd.args(["upload"])
            .arg(self.path("manifest.csv"))
            .args(["--base-url", url, "--chunk-size", "5MiB", "-q", "--report"])
            .arg(self.path("report.json"))
            .args(extra)
            .env("AVBATCH_API_KEY", KEY);
        cmd
    }

    fn report(&self) -> Vec<Value> {
        let report: Value =
            serde_json::from_slice(&std::fs::read(self.path("report.json")).unwrap()).unwrap();
        report["rows"].as_array().unwrap().clone()
    }

    /// Assets the journal records as acknowledged.
    fn journaled_assets(&self) -> u64 {
        self.journaled("assets")
    }

    /// Entries of a table of the journal (0 while there is none).
    fn journaled(&self, table: &str) -> u64 {
        let path = self.path("manifest.journal.sqlite");
        let Ok(conn) = rusqlite::Connection::open_with_flags(
            &path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        ) else {
            return 0;
        };
        conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get::<_, i64>(0))
            .map_or(0, |n| n as u64)
    }
}

/// The server's request log: (method, path) → count, for the asset routes.
fn asset_requests(log: &Path) -> BTreeMap<(String, String), usize> {
    let mut counts = BTreeMap::new();
    for line in std::fs::read_to_string(log).unwrap_or_default().lines() {
        let entry: Value = serde_json::from_str(line).expect("a JSON line");
        let (method, path) = (entry["method"].as_str().unwrap(), entry["path"].as_str().unwrap());
        let asset = ["/thumbnail", "/captions", "/chapters"].iter().any(|a| path.contains(a));
        if asset && method != "GET" && entry["status"].as_u64().is_some_and(|s| s < 300) {
            *counts.entry((method.to_owned(), path.to_owned())).or_insert(0) += 1;
        }
    }
    counts
}

async fn get_json(url: String) -> Value {
    let resp = get_api(url.clone()).await;
    assert_eq!(resp.status().as_u16(), 200, "GET {url}");
    resp.json().await.unwrap()
}

async fn fetch(url: &str) -> Vec<u8> {
    let resp = http().get(url).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200, "GET {url}");
    resp.bytes().await.unwrap().to_vec()
}

/// Every row's video holds exactly its assets, byte for byte, and its creation fields.
async fn assert_assets(url: &str, data: &Path, library: &Library) {
    let videos = list_videos(url).await;
    assert_eq!(videos.len(), library.n, "one video per row");
    let rows = library.report();
    let expected_fr = fixture("sample.fr.expected.vtt");
    for (i, row) in rows.iter().enumerate() {
        let id = row["videoId"].as_str().expect("a video id");
        let captions = get_json(format!("{url}/videos/{id}/captions")).await;
        let captions = captions["data"].as_array().unwrap();
        let mut langs: Vec<&str> =
            captions.iter().map(|c| c["srclang"].as_str().unwrap()).collect();
        langs.sort();
        assert_eq!(langs, ["en", "fr"], "row {i}: {captions:?}");
        for c in captions {
            let lang = c["srclang"].as_str().unwrap();
            let bytes = fetch(c["src"].as_str().unwrap()).await;
            let want = if lang == "en" { fixture("sample.en.vtt") } else { expected_fr.clone() };
            assert_eq!(bytes, want, "row {i}: captions {lang} byte for byte");
            assert_eq!(c["default"].as_bool(), Some(lang == "fr"), "row {i}: default {lang}");
        }
        let chapters = get_json(format!("{url}/videos/{id}/chapters")).await;
        let chapters = chapters["data"].as_array().unwrap();
        assert_eq!(chapters.len(), 1, "row {i}: {chapters:?}");
        assert_eq!(chapters[0]["language"], "en");
        assert_eq!(fetch(chapters[0]["src"].as_str().unwrap()).await, fixture("chapters.en.vtt"));
        let video = get_json(format!("{url}/videos/{id}")).await;
        let record: Value = serde_json::from_slice(
            &std::fs::read(data.join("videos").join(id).join("video.json")).unwrap(),
        )
        .unwrap();
        if i % 3 == 2 {
            assert_eq!(
                record.to_string().matches("00:00:02.500").count(),
                1,
                "row {i}: the frame picked is stored: {record}"
            );
        } else {
            let thumb = fetch(video["assets"]["thumbnail"].as_str().unwrap()).await;
            assert_eq!(thumb, poster(), "row {i}: the thumbnail byte for byte");
        }
        let text = record.to_string();
        for field in ["\"transcript\":true", "\"transcriptSummary\":true", "\"takeaways\""] {
            assert!(text.contains(field), "row {i}: {field} in {text}");
        }
        for field in ["\"startTimecode\":\"00:00:01\"", "\"opacity\":\"70%\"", "\"right\":\"5%\""] {
            assert!(text.contains(field), "row {i}: {field} in {text}");
        }
    }
}

/// A watermark on the server, for the rows' `watermark` column (asked again while answers are
/// lost: a lost answer leaves an unused watermark behind, which harms nothing).
async fn watermark(url: &str) -> String {
    for _ in 0..50 {
        let form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(poster())
                .file_name("wm.png")
                .mime_str("image/png")
                .unwrap(),
        );
        let sent = http()
            .post(format!("{url}/watermarks"))
            .header("Authorization", common::basic_auth(KEY))
            .multipart(form)
            .send()
            .await;
        if let Ok(resp) = sent {
            assert!(resp.status().is_success(), "POST /watermarks: {}", resp.status());
            let v: Value = resp.json().await.unwrap();
            return v["watermarkId"].as_str().unwrap().to_owned();
        }
    }
    panic!("POST /watermarks never answered");
}

fn free_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_run_resumes_its_assets_and_sends_each_once() {
    let data = tempfile::tempdir().unwrap();
    let log = data.path().join("requests.jsonl");
    let log_arg = log.to_str().unwrap().to_owned();
    // Each request waits 150 ms: the kill lands among the assets.
    let serve = serve_on(
        &free_addr(),
        &data.path().join("d"),
        &["--latency", "150ms", "--request-log", &log_arg],
    )
    .await;
    let url = serve.url.clone();
    let library = Library::new(6, &watermark(&url).await);
    let per_row = 5; // thumbnail, two captions, chapters, the default caption

    let mut running = Running::start(library.upload(&url, &["-c", "2"]));
    let deadline = Instant::now() + LIMIT;
    while library.journaled_assets() < 4 {
        assert!(running.running(), "the run ended before it could be killed");
        assert!(Instant::now() < deadline, "no asset was ever acknowledged");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    running.kill9();
    let before = library.journaled_assets();
    assert!(before < (library.n * per_row) as u64, "killed too late: {before} assets");

    let done = run(library.upload(&url, &["-c", "2"]), LIMIT).await;
    assert_eq!(done.code, Some(0), "{}", done.text());
    assert_assets(&url, &data.path().join("d"), &library).await;
    // Each asset sent once, but for those in flight at the kill (at most one per lane).
    let sent = asset_requests(&log);
    let total: usize = sent.values().sum();
    assert!(
        total <= library.n * per_row + 2,
        "{total} asset requests for {} assets: {sent:#?}",
        library.n * per_row
    );
    // The resumed run sent what the journal lacked, and no asset the killed run had finished.
    let resumed: usize = library
        .report()
        .iter()
        .map(|r| r["assets"].as_str().map_or(0, |a| a.split(' ').count()))
        .sum();
    assert_eq!(
        resumed as u64,
        library.n as u64 * per_row as u64 - before,
        "{:#?}",
        library.report()
    );

    // Once more, with the journal: nothing is sent.
    let count = |log: &Path| asset_requests(log).values().sum::<usize>();
    let done = run(library.upload(&url, &[]), LIMIT).await;
    assert_eq!(done.code, Some(0), "{}", done.text());
    assert_eq!(count(&log), total, "a run over a library in step sends no asset");
    assert!(library.report().iter().all(|r| r["status"] == "skipped"));

    // Without the journal, the videos' metadata says what they hold: nothing is sent.
    let done = run(library.upload(&url, &["--no-journal"]), LIMIT).await;
    assert_eq!(done.code, Some(0), "{}", done.text());
    assert_eq!(count(&log), total, "without the journal no asset is sent again");

    // A changed caption file: that track, and only it, is sent again (its old one replaced).
    std::fs::write(
        library.path("en.vtt"),
        "WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nA new first line.\n",
    )
    .unwrap();
    let done = run(library.upload(&url, &[]), LIMIT).await;
    assert_eq!(done.code, Some(0), "{}", done.text());
    for row in library.report() {
        assert_eq!(row["assets"], "captions.en", "{row}");
        assert_eq!(row["status"], "updated", "the source stays as it was: {row}");
    }
    // Each row's old English track deleted, the new one sent: two requests a row.
    let now = asset_requests(&log);
    assert_eq!(now.values().sum::<usize>(), total + 2 * library.n, "{now:#?}");
    for row in library.report() {
        let id = row["videoId"].as_str().unwrap();
        let path = format!("/videos/{id}/captions/en");
        assert_eq!(now[&("DELETE".to_owned(), path.clone())], 1, "{now:#?}");
    }
    let id = library.report()[0]["videoId"].as_str().unwrap().to_owned();
    let en = get_json(format!("{url}/videos/{id}/captions/en")).await;
    assert_eq!(
        fetch(en["src"].as_str().unwrap()).await,
        b"WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nA new first line.\n"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_journal_a_killed_run_reads_back_what_the_videos_hold() {
    let data = tempfile::tempdir().unwrap();
    let log = data.path().join("requests.jsonl");
    let log_arg = log.to_str().unwrap().to_owned();
    let serve = serve_on(
        &free_addr(),
        &data.path().join("d"),
        &["--latency", "150ms", "--request-log", &log_arg],
    )
    .await;
    let url = serve.url.clone();
    let library = Library::new(3, &watermark(&url).await);
    // No journal: the kill is timed on the server's log of caption uploads.
    let mut running = Running::start(library.upload(&url, &["-c", "1", "--no-journal"]));
    let deadline = Instant::now() + LIMIT;
    loop {
        let captions = asset_requests(&log)
            .keys()
            .filter(|(m, p)| m == "POST" && p.contains("/captions/"))
            .count();
        if captions >= 2 {
            break;
        }
        assert!(running.running(), "the run ended before it could be killed");
        assert!(Instant::now() < deadline, "no caption was ever sent");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    running.kill9();
    let before = asset_requests(&log);
    let done = run(library.upload(&url, &["--no-journal"]), LIMIT).await;
    assert_eq!(done.code, Some(0), "{}", done.text());
    assert_assets(&url, &data.path().join("d"), &library).await;
    let after = asset_requests(&log);
    // A caption track the killed run finished is read back and not sent again.
    for ((method, path), n) in &before {
        if method == "POST" && (path.contains("/captions/") || path.contains("/chapters/")) {
            assert_eq!(after[&(method.clone(), path.clone())], *n, "{path} sent again");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn servers_that_refuse_a_second_track_or_lose_answers_end_the_same() {
    for extra in [&["--existing-tracks", "refuse"][..], &[][..]] {
        // Requests go out concurrently, so a seed does not fix which ones lose their answer:
        // runs go on (at most 6) until one lost the answer to a track's upload.
        let mut lost = 0;
        for seed in 1..=6u32 {
            let data = tempfile::tempdir().unwrap();
            let log = data.path().join("requests.jsonl");
            let seed = seed.to_string();
            let mut args = vec!["--lose-rate", "0.25", "--seed", &seed, "--request-log"];
            args.push(log.to_str().unwrap());
            args.extend_from_slice(extra);
            let serve = serve_on(&free_addr(), &data.path().join("d"), &args).await;
            let url = serve.url.clone();
            let library = Library::new(3, &watermark(&url).await);
            let done = run(library.upload(&url, &[]), LIMIT).await;
            assert_eq!(done.code, Some(0), "{extra:?}: {}", done.text());
            assert_assets(&url, &data.path().join("d"), &library).await;
            // The answer to a track's upload was lost, so it was sent again: refused as a
            // second track (then found to be the one sent), or taken as a replacement.
            let entries: Vec<Value> = std::fs::read_to_string(&log)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            let track = |e: &&Value| {
                let path = e["path"].as_str().unwrap();
                e["method"] == "POST"
                    && (path.contains("/captions/") || path.contains("/chapters/"))
            };
            lost = entries.iter().filter(track).filter(|e| e["answered"] == false).count();
            let refused = entries.iter().filter(track).filter(|e| e["status"] == 400).count();
            assert!(
                extra.is_empty() || refused >= lost,
                "{extra:?}: {refused} refused, {lost} lost"
            );
            assert!(!extra.is_empty() || refused == 0, "{extra:?}: {refused} refused");
            if lost > 0 {
                break;
            }
        }
        assert!(lost > 0, "{extra:?}: no track upload lost its answer in 6 runs");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_asset_that_fails_fails_its_row_and_leaves_the_video_for_the_next_run() {
    let data = tempfile::tempdir().unwrap();
    let serve = serve_on(&free_addr(), &data.path().join("d"), &["--latency", "200ms"]).await;
    let url = serve.url.clone();
    let library = Library::new(2, &watermark(&url).await);
    // Row 1's French captions go bad once the manifest was checked: as row 0 starts (its
    // parts, then row 1's, go before row 1's assets are read: 800 ms at least).
    std::fs::copy(library.path("fr.srt"), library.path("fr1.srt")).unwrap();
    let manifest = std::fs::read_to_string(library.path("manifest.csv")).unwrap();
    let mut lines: Vec<String> = manifest.lines().map(str::to_owned).collect();
    lines[2] = lines[2].replace("fr.srt", "fr1.srt");
    std::fs::write(library.path("manifest.csv"), lines.join("\n") + "\n").unwrap();
    let mut running = Running::start(library.upload(&url, &["-c", "1"]));
    let deadline = Instant::now() + LIMIT;
    while library.journaled("rows") < 1 {
        assert!(running.running(), "the run ended before row 0 began");
        assert!(Instant::now() < deadline, "row 0 never began");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    std::fs::write(library.path("fr1.srt"), "1\n00:00:02,000 --> 00:00:01,000\nBackwards\n")
        .unwrap();
    let done = running.finish(LIMIT).await;
    assert_eq!(done.code, Some(1), "{}", done.text());
    assert!(
        done.stderr.contains("line 3 `v1.mp4`: captions.fr: `")
            && done.stderr.contains("fr1.srt` does not parse as captions: line 2, column 1"),
        "{}",
        done.text()
    );
    let rows = library.report();
    assert_eq!(
        (rows[0]["status"].as_str(), rows[1]["status"].as_str()),
        (Some("uploaded"), Some("failed"))
    );
    let id = rows[1]["videoId"].as_str().expect("the failed row keeps its video").to_owned();
    let status = get_json(format!("{url}/videos/{id}/status")).await;
    assert_eq!(status["ingest"]["status"], "uploaded", "the video stays, complete");

    // Fixed, the next run sends row 1's assets to the same video, and nothing of row 0's.
    std::fs::copy(library.path("fr.srt"), library.path("fr1.srt")).unwrap();
    let done = run(library.upload(&url, &[]), LIMIT).await;
    assert_eq!(done.code, Some(0), "{}", done.text());
    let rows = library.report();
    assert_eq!(rows[0]["status"], "skipped");
    assert_eq!(rows[1]["videoId"].as_str(), Some(id.as_str()));
    assert_eq!(rows[1]["assets"], "thumbnail captions.en captions.fr chapters.en captions.default");
    assert_assets(&url, &data.path().join("d"), &library).await;
}
