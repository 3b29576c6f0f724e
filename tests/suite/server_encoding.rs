//! The local server's simulated encoding (#15): `GET /videos/{id}/status` goes through
//! waiting, encoding and encoded (or failed) over `--encoding-time`, and after a restart.

use crate::common;

use std::time::{Duration, Instant};

use common::{
    basic_auth, create_video_at, multipart_file, spawn_server_process, spawn_server_with, KEY,
};
use serde_json::Value;

/// Sends a whole small source in one request.
async fn upload(http: &reqwest::Client, url: &str, id: &str) {
    let (ct, body) = multipart_file("file", "movie.mp4", b"not really a movie");
    let resp = http
        .post(format!("{url}/videos/{id}/source"))
        .header("Authorization", basic_auth(KEY))
        .header("Content-Type", ct)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
}

async fn status(http: &reqwest::Client, url: &str, id: &str) -> Value {
    let resp = http
        .get(format!("{url}/videos/{id}/status"))
        .header("Authorization", basic_auth(KEY))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

fn statuses(v: &Value) -> Vec<String> {
    let q = v["encoding"]["qualities"].as_array().expect("qualities");
    q.iter().map(|q| q["status"].as_str().unwrap().to_owned()).collect()
}

/// Polls until `done` holds (within `limit`); returns the status that satisfied it.
async fn until(
    http: &reqwest::Client,
    url: &str,
    id: &str,
    limit: Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let start = Instant::now();
    loop {
        let s = status(http, url, id).await;
        if done(&s) {
            return s;
        }
        assert!(start.elapsed() < limit, "still {s} after {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn states_progress_with_time() {
    let server = spawn_server_with(|c| c.faults.encoding.time = Duration::from_millis(600)).await;
    let http = reqwest::Client::new();
    let id = server.create_video("enc").await;
    let before = server.status_of(&id).await;
    assert_eq!(before["encoding"]["playable"], false);
    assert!(before["encoding"]["qualities"].as_array().unwrap().is_empty());
    let sent = Instant::now();
    upload(&http, &server.url, &id).await;
    let first = server.status_of(&id).await;
    assert_eq!(first["ingest"]["status"], "uploaded");
    assert_eq!(first["encoding"]["playable"], false);
    for q in first["encoding"]["qualities"].as_array().unwrap() {
        assert_eq!(q["type"], "hls");
        assert!(q["quality"].as_str().unwrap().ends_with('p'));
        assert!(["waiting", "encoding"].contains(&q["status"].as_str().unwrap()), "{q}");
    }
    assert!(first["encoding"]["metadata"].is_object());
    let limit = Duration::from_secs(5);
    let encoding =
        until(&http, &server.url, &id, limit, |s| statuses(s).contains(&"encoding".into())).await;
    assert_eq!(encoding["encoding"]["playable"], false);
    let playable =
        until(&http, &server.url, &id, limit, |s| s["encoding"]["playable"] == true).await;
    assert!(sent.elapsed() >= Duration::from_millis(300), "playable halfway, not sooner");
    assert_eq!(statuses(&playable)[0], "encoded");
    until(&http, &server.url, &id, limit, |s| statuses(s).iter().all(|q| q == "encoded")).await;
    assert!(sent.elapsed() >= Duration::from_millis(600));
}

#[tokio::test(flavor = "multi_thread")]
async fn default_is_playable_at_once() {
    let server = spawn_server_with(|_| {}).await;
    let id = server.create_video("now").await;
    upload(&reqwest::Client::new(), &server.url, &id).await;
    let s = server.status_of(&id).await;
    assert_eq!(s["encoding"]["playable"], true);
    assert!(statuses(&s).iter().all(|q| q == "encoded"), "{s}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fail_rate_fails_videos_for_good() {
    let server = spawn_server_with(|c| {
        c.faults.encoding.time = Duration::from_millis(300);
        c.faults.encoding.fail_rate = 1.0;
    })
    .await;
    let http = reqwest::Client::new();
    let id = server.create_video("bad").await;
    upload(&http, &server.url, &id).await;
    let failed = until(&http, &server.url, &id, Duration::from_secs(5), |s| {
        statuses(s).iter().all(|q| q == "failed")
    })
    .await;
    assert_eq!(failed["encoding"]["playable"], false);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(server.status_of(&id).await["encoding"]["playable"], false);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_seed_fails_the_same_share() {
    let server = spawn_server_with(|c| {
        c.faults.encoding.fail_rate = 0.5;
        c.faults.seed = Some(3);
    })
    .await;
    let http = reqwest::Client::new();
    let mut failed = 0;
    for i in 0..20 {
        let id = server.create_video(&format!("v{i}")).await;
        upload(&http, &server.url, &id).await;
        let s = server.status_of(&id).await;
        if s["encoding"]["playable"] == false {
            assert!(statuses(&s).iter().all(|q| q == "failed"));
            failed += 1;
        }
        assert_eq!(server.status_of(&id).await, s, "a video's outcome does not change");
    }
    assert!((3..=17).contains(&failed), "{failed} of 20 failed at 0.5");
}

#[tokio::test(flavor = "multi_thread")]
async fn encoding_goes_on_across_a_restart() {
    // The encoding's clock is the source's completion as stored on disk: a restart neither
    // starts it again nor jumps it. Read without timing the machine: an hour's encoding is
    // still under way after a kill -9 and a restart, and is done at once when the stored
    // completion is moved an hour back while the server is down.
    let data = tempfile::tempdir().unwrap();
    let http = reqwest::Client::new();
    let hour = ["--encoding-time", "1h"];
    let server = spawn_server_process(data.path(), &hour);
    let id = create_video_at(&http, &server.url, "restart").await;
    upload(&http, &server.url, &id).await;
    assert_eq!(status(&http, &server.url, &id).await["encoding"]["playable"], false);
    server.kill9();
    let server = spawn_server_process(data.path(), &hour);
    let s = status(&http, &server.url, &id).await;
    assert_eq!(s["encoding"]["playable"], false, "the clock did not jump: {s}");
    assert!(statuses(&s).iter().all(|q| q == "waiting"), "{s}");
    server.kill9();

    let record = data.path().join("videos").join(&id).join("video.json");
    let mut video: Value = serde_json::from_slice(&std::fs::read(&record).unwrap()).unwrap();
    let completed = video["sourceCompletedAt"].as_str().expect("the completion is stored");
    let completed = chrono::DateTime::parse_from_rfc3339(completed).unwrap();
    let earlier = completed - chrono::Duration::seconds(3601);
    video["sourceCompletedAt"] = Value::String(earlier.to_rfc3339());
    std::fs::write(&record, serde_json::to_vec(&video).unwrap()).unwrap();
    let server = spawn_server_process(data.path(), &hour);
    let s = status(&http, &server.url, &id).await;
    assert!(statuses(&s).iter().all(|q| q == "encoded"), "counted from the stored completion: {s}");
    assert_eq!(s["encoding"]["playable"], true);
}
