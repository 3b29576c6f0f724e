//! The double's simulated encoding (#15): `GET /videos/{id}/status` goes through waiting,
//! encoding and encoded (or failed) over `--encoding-time`; after a restart in the binary's
//! `server_restart` tests.

use std::time::{Duration, Instant};

use avbatch_serve::testing::{spawn_server_with, status_at, upload_whole_at};
use serde_json::Value;

/// Sends a whole small source in one request.
async fn upload(http: &reqwest::Client, url: &str, id: &str) {
    upload_whole_at(http, url, id, b"not really a movie").await;
}

async fn status(http: &reqwest::Client, url: &str, id: &str) -> Value {
    status_at(http, url, id).await
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
