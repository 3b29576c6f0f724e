//! Issue #25, point 17: what `avbatch serve` lets others reach. It serves a private video (`public:
//! false`) as api.video does (`docs.api.video/delivery/video-privacy-access-management`): every GET
//! of the video gives a fresh private token, in the player's query (`/vod/{id}?token=T`) and as a
//! path segment of the media (`/vod/{id}/token/T/mp4/source.mp4`); the media without a token is
//! refused; a token is good for one session (24 h), opened by its first use (which answers the
//! session token as an `avh` cookie) or by `/vod/{id}/token/T/session`, and kept by `avh`. A public
//! video's assets stay plain. Listening on an address other machines can reach is said on stderr.
//! Through the real binaries: `avbatch upload` to `avbatch serve`.

use crate::common;

use std::time::Duration;

use common::batch::*;
use common::{pattern, KEY};
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(120);

async fn video(url: &str, id: &str) -> Value {
    let resp = get_api(format!("{url}/videos/{id}")).await;
    assert_eq!(resp.status().as_u16(), 200);
    resp.json().await.unwrap()
}

/// `GET url` by a client of its own (no cookies): status, `avh` cookie set, body.
async fn fetch(url: &str, range: Option<&str>) -> (u16, Option<String>, Vec<u8>) {
    let mut request = http().get(url);
    if let Some(range) = range {
        request = request.header("Range", range);
    }
    let resp = request.send().await.unwrap();
    let cookie = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok()?.strip_prefix("avh=")?.split(';').next().map(str::to_owned))
        .next();
    (resp.status().as_u16(), cookie, resp.bytes().await.unwrap().to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_private_videos_media_needs_the_token_a_get_of_it_gives() {
    let dir = tempfile::tempdir().unwrap();
    let serve = serve_on("127.0.0.1:0", &dir.path().join("data"), &[]).await;
    let url = serve.url.clone();
    let (hidden, open) = (pattern(200_000, 1), pattern(150_000, 2));
    std::fs::write(dir.path().join("f0.mp4"), &hidden).unwrap();
    std::fs::write(dir.path().join("f1.mp4"), &open).unwrap();
    let manifest = "id,path,title,public\nhidden,f0.mp4,Private,false\nopen,f1.mp4,Public,true\n";
    std::fs::write(dir.path().join("manifest.csv"), manifest).unwrap();
    let mut upload = avbatch();
    upload
        .args(["upload", "manifest.csv", "--base-url", &url, "-q", "--report", "report.json"])
        .current_dir(dir.path())
        .env("AVBATCH_API_KEY", KEY);
    let done = run(upload, LIMIT).await;
    assert_eq!(done.code, Some(0), "{}", done.text());
    let report: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("report.json")).unwrap()).unwrap();
    let id_of = |row: usize| report["rows"][row]["videoId"].as_str().unwrap().to_owned();
    let (private, public) = (id_of(0), id_of(1));

    // The private video's assets carry a token: in the player's query, a segment of the media.
    let v = video(&url, &private).await;
    assert_eq!(v["public"], false, "{v}");
    let player = v["assets"]["player"].as_str().unwrap().to_owned();
    let mp4 = v["assets"]["mp4"].as_str().unwrap().to_owned();
    let token = player.split_once("?token=").map(|(_, t)| t.to_owned());
    let token = token.unwrap_or_else(|| panic!("a private video's player has a token: {v}"));
    assert_eq!(mp4, format!("{url}/vod/{private}/token/{token}/mp4/source.mp4"), "{v}");
    assert!(v["assets"]["iframe"].as_str().unwrap().contains(&player), "{v}");

    // Without its token, nothing of it is served.
    for plain in ["mp4/source.mp4", "thumbnail.jpg"] {
        let (status, ..) = fetch(&format!("{url}/vod/{private}/{plain}"), None).await;
        assert_eq!(status, 403, "{plain} without the token");
    }
    assert_eq!(fetch(&format!("{url}/vod/{private}"), None).await.0, 403, "the player");
    let wrong = mp4.replace(&token, "00000000-0000-4000-8000-000000000000");
    assert_eq!(fetch(&wrong, None).await.0, 403, "another token");

    // With it: the bytes, once; its session (the `avh` cookie) keeps it, for 24 hours.
    let (status, session, bytes) = fetch(&mp4, None).await;
    assert_eq!(status, 200);
    assert!(bytes == hidden, "the private source through its token");
    let session = session.expect("the first use opens a session: an avh cookie");
    assert_eq!(fetch(&mp4, None).await.0, 403, "a token is consumed by its first use");
    let (status, _, part) = fetch(&format!("{mp4}?avh={session}"), Some("bytes=0-9")).await;
    assert_eq!((status, part.as_slice()), (206, &hidden[..10]), "the session plays on");

    // Every GET gives a new token; `/session` opens its session without fetching the media.
    let again = video(&url, &private).await;
    let fresh = again["assets"]["mp4"].as_str().unwrap().to_owned();
    assert_ne!(fresh, mp4, "a fresh token");
    let base = fresh.strip_suffix("/mp4/source.mp4").unwrap();
    let resp = http().get(format!("{base}/session")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let opened: Value = resp.json().await.unwrap();
    let avh = opened["session_token"].as_str().expect("a session token").to_owned();
    assert_eq!(fetch(&fresh, None).await.0, 403, "the session took the token");
    assert_eq!(fetch(&format!("{fresh}?avh={avh}"), None).await.0, 200);
    let page = again["assets"]["player"].as_str().unwrap();
    assert_eq!(fetch(&format!("{page}&avh={avh}"), None).await.0, 200, "the player");

    // The public video: plain URLs, no token, served to anyone.
    let v = video(&url, &public).await;
    assert_eq!(v["assets"]["mp4"], format!("{url}/vod/{public}/mp4/source.mp4"), "{v}");
    assert_eq!(v["assets"]["player"], format!("{url}/vod/{public}"), "{v}");
    let (status, _, bytes) = fetch(v["assets"]["mp4"].as_str().unwrap(), None).await;
    assert!(status == 200 && bytes == open);
    // The tests' own reader goes through the token as a player would.
    assert!(source_of(&url, &private).await == hidden);
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_on_an_address_other_machines_reach_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key");
    std::fs::write(&key, KEY).unwrap();
    for (addr, warned) in [("0.0.0.0:0", true), ("127.0.0.1:0", false)] {
        let log = dir.path().join(format!("{addr}.log"));
        let data = dir.path().join(format!("{addr}.data"));
        let (key, data) = (key.to_str().unwrap(), data.to_str().unwrap());
        let args = ["--addr", addr, "--api-key-file", key, "--data", data];
        let serve = ServeProcess::start(&args, &log).unwrap_or_else(|log| panic!("{log}"));
        let said = std::fs::read_to_string(&log).unwrap();
        drop(serve);
        let warning = said.lines().find(|l| l.starts_with("warning:"));
        assert_eq!(warning.is_some(), warned, "{addr}: {said}");
        if let Some(warning) = warning {
            assert!(warning.contains("other machines") && warning.contains("127.0.0.1"), "{said}");
        }
    }
}
