//! Runs racing to make a row's video, and creates that take effect late, leave one video per
//! row (issue #25, point 4).
//!
//! - A run that saw only its own video after its create kept it there and then; a run that made
//!   one a moment later must give its own up for it, even when its own pull has already arrived
//!   and the first one's has not.
//! - A create a gateway gave up on (504) may take effect after the run looked for it and made
//!   another: the run deletes it once the row ends.
//!
//! The races are made exact, not hoped for: the run talks to the double through a relay, which
//! steps in at the run's creates and listings as each test says.

use crate::common;

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{to_bytes, Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use common::batch::*;
use common::web::{web_server, WebObject};
use common::{pattern, spawn_server_with, TestServer, KEY};
use serde_json::{json, Value};
use tokio::sync::watch;

const LIMIT: Duration = Duration::from_secs(120);

/// How the relay steps in.
#[derive(Clone, Copy, PartialEq)]
enum Race {
    /// At the run's create, another run's video for the row is made first.
    OtherRunFirst,
    /// The run's first create is answered 504 and held; it takes effect once the run made
    /// another video and listed the key.
    LateCreate,
}

/// The relay between the run and the double, and what it did.
struct Relay {
    race: Race,
    server: TestServer,
    http: reqwest::Client,
    /// Where the other run's video fetches its source from: held until released.
    held_source: String,
    /// How far the race went: 0 before the run's first create.
    stage: AtomicU8,
    /// The video the relay made: the other run's, or the late create's.
    other: Mutex<Option<String>>,
    /// The create held back.
    held_create: Mutex<Option<Vec<u8>>>,
}

impl Relay {
    fn new(race: Race, server: TestServer, held_source: String) -> Arc<Relay> {
        Arc::new(Relay {
            race,
            server,
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
            held_source,
            stage: AtomicU8::new(0),
            other: Mutex::new(None),
            held_create: Mutex::new(None),
        })
    }

    /// Serves the relay; its address.
    async fn start(self: &Arc<Relay>) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = axum::Router::new().fallback(pass_on).with_state(self.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    }

    /// Makes a video from a create's `body`, as the double's own client; its id.
    async fn make(&self, body: &Value) -> String {
        let made = self.server.post_json("/videos", body).await;
        let id = made["videoId"].as_str().expect("a video was made").to_owned();
        *self.other.lock().unwrap() = Some(id.clone());
        id
    }

    fn stage(&self) -> u8 {
        self.stage.load(Ordering::SeqCst)
    }

    /// Moves from stage `from` to the next; whether it was there.
    fn step(&self, from: u8) -> bool {
        self.stage.compare_exchange(from, from + 1, Ordering::SeqCst, Ordering::SeqCst).is_ok()
    }
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

/// Passes `request` on to the double, stepping in as the relay's race says.
async fn pass_on(State(relay): State<Arc<Relay>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = to_bytes(body, usize::MAX).await.expect("a request body");
    let creates = parts.method == Method::POST && parts.uri.path() == "/videos";
    let lists = parts.method == Method::GET && parts.uri.path() == "/videos";
    match relay.race {
        Race::OtherRunFirst if creates && relay.step(0) => {
            let mut other: Value = serde_json::from_slice(&body).expect("a create is JSON");
            other["source"] = json!(relay.held_source);
            for entry in other["metadata"].as_array_mut().expect("the run's metadata") {
                if entry["key"] == "avbatch_run" {
                    entry["value"] = json!("0-other-run");
                }
            }
            relay.make(&other).await;
        }
        // The run's own pull lands before it reads where each video is.
        Race::OtherRunFirst if lists && relay.step(1) => {
            tokio::time::sleep(Duration::from_millis(800)).await
        }
        Race::LateCreate if creates && relay.step(0) => {
            *relay.held_create.lock().unwrap() = Some(body.to_vec());
            return StatusCode::GATEWAY_TIMEOUT.into_response();
        }
        Race::LateCreate if creates && relay.step(1) => {}
        Race::LateCreate if lists && relay.stage() == 2 => {
            // The run made its second video and lists the key: the first create lands now.
            let answer = forward(&relay, parts, body).await;
            let held = relay.held_create.lock().unwrap().take().expect("the held create");
            relay.make(&serde_json::from_slice(&held).unwrap()).await;
            relay.step(2);
            return answer;
        }
        _ => {}
    }
    forward(&relay, parts, body).await
}

/// Sends the request on to the double; its answer.
async fn forward(relay: &Relay, parts: axum::http::request::Parts, body: Bytes) -> Response {
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
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

/// `avbatch upload manifest.csv` in `dir` through `relay_url`.
fn upload(dir: &std::path::Path, relay_url: &str) -> std::process::Command {
    let mut cmd = avbatch();
    cmd.args(["upload", "manifest.csv", "--base-url", relay_url, "--report", "report.json"])
        .args(["--wait-poll", "100ms"])
        .current_dir(dir)
        .env("AVBATCH_API_KEY", KEY);
    cmd
}

/// The first row of the report in `dir`.
fn first_row(dir: &std::path::Path) -> Value {
    let text = std::fs::read(dir.join("report.json")).expect("the report was written");
    serde_json::from_slice::<Value>(&text).unwrap()["rows"][0].clone()
}

/// The ids of every video on `server`.
async fn video_ids(server: &TestServer) -> Vec<Value> {
    server.all_videos().await.iter().map(|v| v["videoId"].clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_run_gives_its_video_up_for_one_made_first_though_its_own_pull_landed_first() {
    let server = spawn_server_with(|_| {}).await;
    let source = pattern(300_000, 4);
    let origin = web_server(WebObject::new(source.clone(), None)).await;
    let (release, released) = watch::channel(false);
    let relay =
        Relay::new(Race::OtherRunFirst, server, held_object(source.clone(), released).await);
    let relay_url = relay.start().await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = format!("id,path,title\nrow-0,{origin}/films/a.mp4,Raced\n");
    std::fs::write(dir.path().join("manifest.csv"), manifest).unwrap();
    let running = tokio::spawn(run(upload(dir.path(), &relay_url), LIMIT));
    // The other run's source arrives a while after both creates, as a slower fetch would.
    while relay.stage() < 2 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    release.send(true).unwrap();
    let ended = running.await.unwrap();
    assert_eq!(ended.code, Some(0), "{}", ended.text());
    let other = relay.other.lock().unwrap().clone().expect("the other video was made");

    // The other run kept its video, the first made; this run gave its own up for it.
    let row = first_row(dir.path());
    assert_eq!(row["videoId"], json!(other), "the run continued in the first video: {row}");
    let server = &relay.server;
    for _ in 0..200 {
        if server.status_of(&other).await["ingest"]["status"] == "ingested" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(video_ids(server).await, vec![json!(other)], "one video for the row");
    assert!(server.source_of(&other).await == source, "its source, byte for byte");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_create_a_gateway_gave_up_on_that_lands_late_is_deleted() {
    let relay = Relay::new(Race::LateCreate, spawn_server_with(|_| {}).await, String::new());
    let relay_url = relay.start().await;
    let dir = tempfile::tempdir().unwrap();
    let source = pattern(300_000, 5);
    std::fs::write(dir.path().join("a.mp4"), &source).unwrap();
    std::fs::write(dir.path().join("manifest.csv"), "id,path,title\nrow-0,a.mp4,Late\n").unwrap();
    let ended = run(upload(dir.path(), &relay_url), LIMIT).await;
    assert_eq!(ended.code, Some(0), "{}", ended.text());
    assert_eq!(relay.stage(), 3, "the held create landed after the run listed the key");
    let late = relay.other.lock().unwrap().clone().expect("the late create made a video");

    let row = first_row(dir.path());
    let kept = row["videoId"].as_str().expect("the row's video").to_owned();
    assert_ne!(kept, late, "{row}");
    assert_eq!(video_ids(&relay.server).await, vec![json!(kept)], "the late video went: {row}");
    assert!(relay.server.source_of(&kept).await == source, "its source, byte for byte");
}
