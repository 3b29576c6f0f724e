//! Runs racing to make a row's video keep the one made first (issue #25, point 4), however far
//! along each video is when a run reads it. A run that saw only its own video after its create
//! kept it there and then; a run that made one a moment later must give its own up for it,
//! even when its own pull has already arrived and the first one's has not.
//!
//! The race is made exact, not hoped for: the run talks to the double through a relay, which
//! at the run's own `POST /videos` first makes another run's video for the same row (its key,
//! another run's mark, a source that does not arrive until released), then lets the run's
//! create through, and holds the run's next listing until the run's own pull has landed.

use crate::common;

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use common::batch::*;
use common::web::{web_server, WebObject};
use common::{pattern, spawn_server_with, TestServer, KEY};
use serde_json::{json, Value};
use tokio::sync::watch;

const LIMIT: Duration = Duration::from_secs(120);

/// The relay between the run and the double, and what it did.
struct Relay {
    server: TestServer,
    http: reqwest::Client,
    /// Where the other run's video fetches its source from: held until released.
    held_source: String,
    /// 0: before the run's create; 1: the other video made, the run's listing to hold; 2: after.
    stage: AtomicU8,
    /// The other run's video.
    other: Mutex<Option<String>>,
}

/// A web object whose every request waits until `released` says so.
async fn held_object(bytes: Vec<u8>, released: watch::Receiver<bool>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("an address");
    let app = axum::Router::new().fallback(move || {
        let (bytes, mut released) = (bytes.clone(), released.clone());
        async move {
            released.wait_for(|r| *r).await.expect("the test holds the sender");
            Response::new(Body::from(bytes))
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{address}/other-run.mp4")
}

/// Passes `request` on to the double, making the other run's video first at the run's create.
async fn pass_on(State(relay): State<Arc<Relay>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = to_bytes(body, usize::MAX).await.expect("a request body");
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
    let creates = parts.method == Method::POST && parts.uri.path() == "/videos";
    if creates && relay.stage.load(Ordering::SeqCst) == 0 {
        let mut other: Value = serde_json::from_slice(&body).expect("a create is JSON");
        other["source"] = json!(relay.held_source);
        for entry in other["metadata"].as_array_mut().expect("the run's metadata") {
            if entry["key"] == "avbatch_run" {
                entry["value"] = json!("0-other-run");
            }
        }
        let made = relay.server.post_json("/videos", &other).await;
        let id = made["videoId"].as_str().expect("the other run's video").to_owned();
        *relay.other.lock().unwrap() = Some(id);
        relay.stage.store(1, Ordering::SeqCst);
    } else if parts.method == Method::GET
        && parts.uri.path() == "/videos"
        && relay.stage.compare_exchange(1, 2, Ordering::SeqCst, Ordering::SeqCst).is_ok()
    {
        // The run's own pull lands before it reads where each video is.
        tokio::time::sleep(Duration::from_millis(800)).await;
    }
    let mut forward = relay.http.request(parts.method, format!("{}{path}", relay.server.url));
    for (name, value) in &parts.headers {
        if name != "host" {
            forward = forward.header(name, value);
        }
    }
    let answer = forward.body(body).send().await.expect("the double answers");
    let mut response = Response::builder().status(answer.status());
    for (name, value) in answer.headers() {
        if name != "transfer-encoding" && name != "content-length" {
            response = response.header(name, value);
        }
    }
    let bytes = answer.bytes().await.expect("the double's answer");
    response.body(Body::from(bytes)).unwrap_or_else(|_| StatusCode::BAD_GATEWAY.into_response())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_run_gives_its_video_up_for_one_made_first_though_its_own_pull_landed_first() {
    let server = spawn_server_with(|_| {}).await;
    let source = pattern(300_000, 4);
    let origin = web_server(WebObject::new(source.clone(), None)).await;
    let (release, released) = watch::channel(false);
    let held_source = held_object(source.clone(), released).await;
    let relay = Arc::new(Relay {
        server,
        http: reqwest::Client::builder().no_proxy().build().unwrap(),
        held_source,
        stage: AtomicU8::new(0),
        other: Mutex::new(None),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let relay_url = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().fallback(pass_on).with_state(relay.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = tempfile::tempdir().unwrap();
    let manifest = format!("id,path,title\nrow-0,{origin}/films/a.mp4,Raced\n");
    std::fs::write(dir.path().join("manifest.csv"), manifest).unwrap();
    let mut cmd = avbatch();
    cmd.args(["upload", "manifest.csv", "--base-url", &relay_url, "--report", "report.json"])
        .args(["--wait-poll", "100ms"])
        .current_dir(dir.path())
        .env("AVBATCH_API_KEY", KEY);
    let running = tokio::spawn(run(cmd, LIMIT));
    // The other run's source arrives a while after both creates, as a slower fetch would.
    while relay.stage.load(Ordering::SeqCst) < 2 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    release.send(true).unwrap();
    let ended = running.await.unwrap();
    assert_eq!(ended.code, Some(0), "{}", ended.text());
    let other = relay.other.lock().unwrap().clone().expect("the other video was made");

    // The other run kept its video, the first made; this run gave its own up for it.
    let report: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("report.json")).unwrap()).unwrap();
    let row = &report["rows"][0];
    assert_eq!(row["videoId"], json!(other), "the run continued in the first video: {row}");
    let server = &relay.server;
    for _ in 0..200 {
        if server.status_of(&other).await["ingest"]["status"] == "ingested" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ids: Vec<Value> = server.all_videos().await.iter().map(|v| v["videoId"].clone()).collect();
    assert_eq!(ids, vec![json!(other)], "one video for the row");
    assert!(server.source_of(&other).await == source, "its source, byte for byte");
}
