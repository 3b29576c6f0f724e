//! A run without its journal's word on a video (issue #25, points 7 and 9): the video's own
//! record of its assets (`avbatch_assets`) is taken for what the server confirms. A track
//! deleted by hand on the account is sent again by `upload --no-journal` and by a run with a
//! fresh journal, byte for byte, and nothing else is; a fresh journal over an account in step
//! sends no asset at all. The real binary against `avbatch serve` as a process, its request
//! log counting every write.

use crate::common;

use std::path::Path;
use std::time::Duration;

use common::batch::{get_api, http, run, serve_on, Batch, Done, ServeProcess};
use common::{basic_auth, KEY};
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(120);

const EN: &str = "WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nHello.\n";
const FR: &str = "WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nBonjour.\n";
const CHAPTERS: &str = "WEBVTT\n\n00:00:00.000 --> 00:00:02.000\nOpening\n";

/// Two rows on a server with a request log, uploaded with the journal: row 0 with a
/// thumbnail, captions in English and French (the default) and English chapters; row 1 with
/// English captions only.
struct Library {
    batch: Batch,
    server: ServeProcess,
    log: std::path::PathBuf,
    ids: Vec<String>,
}

impl Library {
    async fn uploaded() -> Library {
        let batch = Batch::new(2, |i| 3000 + i);
        let data = batch.path("data");
        std::fs::create_dir(&data).unwrap();
        let log = batch.path("requests.jsonl");
        let server =
            serve_on("127.0.0.1:0", &data, &["--request-log", log.to_str().unwrap()]).await;
        let poster =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/library/assets/intro-poster.png");
        std::fs::copy(poster, batch.path("poster.png")).unwrap();
        for (name, text) in [("en.vtt", EN), ("fr.vtt", FR), ("chapters.vtt", CHAPTERS)] {
            std::fs::write(batch.path(name), text).unwrap();
        }
        std::fs::write(
            batch.manifest(),
            "id,path,title,thumbnail,captions.en,captions.fr,captions_default,chapters.en\n\
             row-0,f0.mp4,Video 0,poster.png,en.vtt,fr.vtt,fr,chapters.vtt\n\
             row-1,f1.mp4,Video 1,,en.vtt,,,\n",
        )
        .unwrap();
        let mut library = Library { batch, server, log, ids: Vec::new() };
        let done = library.upload(&[]).await;
        assert_eq!(done.code, Some(0), "{}", done.text());
        let rows = library.rows();
        library.ids = rows.iter().map(|r| r["videoId"].as_str().unwrap().to_owned()).collect();
        assert_eq!(
            rows[0]["assets"],
            "thumbnail captions.en captions.fr chapters.en \
                                       captions.default"
        );
        library
    }

    async fn upload(&self, extra: &[&str]) -> Done {
        run(self.batch.upload(&self.server.url, extra), LIMIT).await
    }

    fn rows(&self) -> Vec<Value> {
        self.batch.read_report()["rows"].as_array().unwrap().clone()
    }

    /// Where the request log ends now.
    fn mark(&self) -> usize {
        std::fs::metadata(&self.log).map_or(0, |m| m.len() as usize)
    }

    /// Every write (not a GET, not `/auth`) answered since `from`: `METHOD path`, in order.
    fn writes_since(&self, from: usize) -> Vec<String> {
        let text = std::fs::read_to_string(&self.log).unwrap();
        text[from..]
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|e| e["method"] != "GET" && !e["path"].as_str().unwrap().starts_with("/auth"))
            .map(|e| format!("{} {}", e["method"].as_str().unwrap(), e["path"].as_str().unwrap()))
            .collect()
    }

    /// Deletes a video's track by hand, through the API.
    async fn delete_by_hand(&self, video: usize, track: &str) {
        let url = format!("{}/videos/{}/{track}", self.server.url, self.ids[video]);
        let resp = http().delete(&url).header("Authorization", basic_auth(KEY)).send().await;
        assert_eq!(resp.unwrap().status().as_u16(), 204, "DELETE {url}");
    }

    /// A video's track as the server serves it, and whether it is the default one.
    async fn track(&self, video: usize, track: &str) -> (String, bool) {
        let url = format!("{}/videos/{}/{track}", self.server.url, self.ids[video]);
        let resp = get_api(url.clone()).await;
        assert_eq!(resp.status().as_u16(), 200, "GET {url}");
        let listed: Value = resp.json().await.unwrap();
        let file = http().get(listed["src"].as_str().unwrap()).send().await.unwrap();
        let text = file.text().await.unwrap();
        (text, listed["default"].as_bool().unwrap_or(false))
    }

    /// Each row's status and the assets the run sent it.
    fn said(&self) -> Vec<(String, String)> {
        let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
        self.rows().iter().map(|r| (text(&r["status"]), text(&r["assets"]))).collect()
    }
}

fn pair(status: &str, assets: &str) -> (String, String) {
    (status.to_owned(), assets.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tracks_deleted_by_hand_are_sent_again_without_the_journal_and_nothing_else() {
    let library = Library::uploaded().await;
    let (v0, v1) = (&library.ids[0], &library.ids[1]);

    // Row 0's default French captions and its chapters deleted by hand.
    library.delete_by_hand(0, "captions/fr").await;
    library.delete_by_hand(0, "chapters/en").await;
    let from = library.mark();
    let done = library.upload(&["--no-journal"]).await;
    assert_eq!(done.code, Some(0), "{}", done.text());
    assert_eq!(
        library.writes_since(from),
        [
            format!("POST /videos/{v0}/captions/fr"),
            format!("POST /videos/{v0}/chapters/en"),
            format!("PATCH /videos/{v0}/captions/fr"),
        ],
        "exactly the tracks deleted, and the default caption's flag"
    );
    assert_eq!(
        library.said(),
        [pair("updated", "captions.fr chapters.en captions.default"), pair("skipped", "")]
    );
    assert_eq!(library.track(0, "captions/fr").await, (FR.to_owned(), true));
    assert_eq!(library.track(0, "chapters/en").await, (CHAPTERS.to_owned(), false));
    assert_eq!(library.track(0, "captions/en").await, (EN.to_owned(), false));

    // Row 1's only track deleted: a run with a fresh journal sends it again, and only it.
    library.delete_by_hand(1, "captions/en").await;
    let fresh = library.batch.path("fresh.journal.sqlite");
    let from = library.mark();
    let done = library.upload(&["--journal", fresh.to_str().unwrap()]).await;
    assert_eq!(done.code, Some(0), "{}", done.text());
    assert_eq!(library.writes_since(from), [format!("POST /videos/{v1}/captions/en")]);
    assert_eq!(library.said(), [pair("skipped", ""), pair("updated", "captions.en")]);
    assert_eq!(library.track(1, "captions/en").await, (EN.to_owned(), false));

    // In step now: a run without the journal sends nothing.
    let from = library.mark();
    let done = library.upload(&["--no-journal"]).await;
    assert_eq!(done.code, Some(0), "{}", done.text());
    assert_eq!(library.writes_since(from), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_fresh_journal_sends_no_asset_the_videos_already_hold() {
    let library = Library::uploaded().await;
    let fresh = library.batch.path("fresh.journal.sqlite");
    let from = library.mark();
    let done = library.upload(&["--journal", fresh.to_str().unwrap()]).await;
    assert_eq!(done.code, Some(0), "{}", done.text());
    assert_eq!(library.writes_since(from), Vec::<String>::new(), "no asset sent again");
    assert_eq!(library.said(), [pair("skipped", ""), pair("skipped", "")]);

    // That journal now records what the videos hold: a run with it reads no track list.
    let from = library.mark();
    let done = library.upload(&["--journal", fresh.to_str().unwrap()]).await;
    assert_eq!(done.code, Some(0), "{}", done.text());
    assert_eq!(library.writes_since(from), Vec::<String>::new());
    let text = std::fs::read_to_string(&library.log).unwrap();
    let lists = text[from..].lines().filter(|l| l.contains("/captions") || l.contains("/chapters"));
    assert_eq!(lists.count(), 0, "{}", &text[from..]);
}
