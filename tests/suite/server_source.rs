//! Issue #16, point 4: `POST /videos` with a `source` makes the local server fetch the URL (from
//! loopback addresses only) or copy the video named, and the bytes become the video's source as
//! if uploaded. Every test runs the real `avbatch serve` and, where it fetches, a file server of
//! its own on 127.0.0.1; nothing talks to any other address.

use crate::common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::routing::get;
use axum::Router;
use common::{basic_auth, multipart_file, spawn_server_process, KEY, MIB};
use rand::RngCore;
use serde_json::{json, Value};

/// Longest any ingest may take in these tests.
const LIMIT: Duration = Duration::from_secs(30);

/// A file server on 127.0.0.1:0: `/file` answers `data` (with a length), `/chunked` 2 MiB
/// without a length, `/slow` 1 KiB every 100 ms forever; anything else 404.
async fn file_server(data: Arc<Vec<u8>>) -> SocketAddr {
    let app = Router::new()
        .route("/file", get(move || async move { data.as_ref().clone() }))
        .route(
            "/chunked",
            get(|| async {
                let chunks =
                    (0..32).map(|i| Ok::<_, std::io::Error>(Bytes::from(vec![i; 64 * 1024])));
                Body::from_stream(futures::stream::iter(chunks))
            }),
        )
        .route(
            "/slow",
            get(|| async {
                let drip = futures::stream::unfold((), |()| async {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    Some((Ok::<_, std::io::Error>(Bytes::from(vec![7u8; 1024])), ()))
                });
                Body::from_stream(drip)
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

fn random(len: usize) -> Vec<u8> {
    let mut data = vec![0u8; len];
    rand::rng().fill_bytes(&mut data);
    data
}

fn http() -> reqwest::Client {
    // No proxy: the test talks to 127.0.0.1 only.
    reqwest::Client::builder().no_proxy().timeout(LIMIT).build().unwrap()
}

/// `POST /videos` with `source`; returns the status and the answer.
async fn create(url: &str, source: &str) -> (u16, Value) {
    let resp = http()
        .post(format!("{url}/videos"))
        .header("Authorization", basic_auth(KEY))
        .json(&json!({"title": "pulled", "source": source}))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

async fn create_ok(url: &str, source: &str) -> String {
    let (status, body) = create(url, source).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        body["source"]["uri"],
        format!("/videos/{}/source", body["videoId"].as_str().unwrap())
    );
    body["videoId"].as_str().unwrap().to_owned()
}

async fn status(url: &str, id: &str) -> Value {
    let resp = http()
        .get(format!("{url}/videos/{id}/status"))
        .header("Authorization", basic_auth(KEY))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

/// Polls until the double's record of the ingest leaves `ingesting` (its status answer may not
/// say a failure: `--source-failed-as`); returns the status then and the time taken.
async fn settled(url: &str, data: &Path, id: &str) -> (Value, Duration) {
    let start = Instant::now();
    loop {
        let s = status(url, id).await;
        if record(data, id)["ingest"]["state"] != "ingesting" {
            return (status(url, id).await, start.elapsed());
        }
        assert!(start.elapsed() < LIMIT, "still ingesting after {LIMIT:?}: {s}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn source_bytes(url: &str, id: &str) -> (u16, Vec<u8>) {
    let resp = http().get(format!("{url}/vod/{id}/mp4/source.mp4")).send().await.unwrap();
    (resp.status().as_u16(), resp.bytes().await.unwrap().to_vec())
}

/// A plain upload of a small file; returns the status and the answer.
async fn upload(url: &str, id: &str) -> (u16, Value) {
    let (ct, body) = multipart_file("file", "movie.mp4", b"a plain upload");
    let resp = http()
        .post(format!("{url}/videos/{id}/source"))
        .header("Authorization", basic_auth(KEY))
        .header("Content-Type", ct)
        .body(body)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

fn record(data: &Path, id: &str) -> Value {
    let path = data.join("videos").join(id).join("video.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// A failed ingest as api.video's documented states show it (`--source-failed-as ingesting`):
/// still `ingesting`, nothing received, no encoding.
fn assert_failed(s: &Value, what: &str) {
    assert_eq!(s["ingest"]["status"], "ingesting", "{what}: {s}");
    assert_eq!(s["ingest"]["filesize"], Value::Null, "{what}: {s}");
    assert_eq!(s["encoding"]["playable"], false, "{what}: {s}");
    assert_eq!(s["encoding"]["qualities"], json!([]), "{what}: {s}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_url_is_fetched_byte_for_byte() {
    let data = Arc::new(random(5 * MIB));
    let files = file_server(data.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let server = spawn_server_process(dir.path(), &[]);
    let url = server.url.clone();

    for host in [format!("127.0.0.1:{}", files.port()), format!("localhost:{}", files.port())] {
        let id = create_ok(&url, &format!("http://{host}/file")).await;
        let (s, took) = settled(&url, dir.path(), &id).await;
        assert_eq!(s["ingest"]["status"], "ingested", "{host}: {s}");
        assert_eq!(s["ingest"]["filesize"], 5 * MIB, "{host}");
        assert_eq!(s["encoding"]["playable"], true, "encoding-time 0: playable once stored");
        eprintln!("{host}: 5 MiB ingested in {took:?}");
        let (code, bytes) = source_bytes(&url, &id).await;
        assert_eq!(code, 200);
        assert!(bytes == *data, "{host}: the served source differs from the file");
        let stored = std::fs::read(dir.path().join("videos").join(&id).join("single.chunk"));
        assert!(stored.unwrap() == *data, "{host}: the stored source differs from the file");
        assert_eq!(record(dir.path(), &id)["ingest"]["state"], "ingested");

        let (code, body) = upload(&url, &id).await;
        assert_eq!(code, 400, "{body}");
        assert_eq!(
            body["type"],
            "https://docs.api.video/reference/video-source-already-downloaded"
        );
    }

    // A body without a length is counted as it streams.
    let id = create_ok(&url, &format!("http://127.0.0.1:{}/chunked", files.port())).await;
    let (s, _) = settled(&url, dir.path(), &id).await;
    assert_eq!(s["ingest"]["status"], "ingested", "{s}");
    assert_eq!(s["ingest"]["filesize"], 2 * MIB);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unfetchable_sources_fail_in_the_record_and_stay_ingesting_in_the_status() {
    let files = file_server(Arc::new(random(5 * MIB))).await;
    let port = files.port();
    // A port nothing listens on: bound, then released.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let server = spawn_server_process(
        dir.path(),
        &["--source-max-bytes", "1MiB", "--source-timeout", "1500ms"],
    );
    let url = server.url.clone();

    let cases = [
        ("404", format!("http://127.0.0.1:{port}/missing"), "404"),
        ("too big, with a length", format!("http://127.0.0.1:{port}/file"), "larger than"),
        ("too big, streamed", format!("http://127.0.0.1:{port}/chunked"), "larger than"),
        ("connection refused", format!("http://127.0.0.1:{closed}/x"), "cannot fetch"),
        ("too slow", format!("http://127.0.0.1:{port}/slow"), "--source-timeout"),
        // Not routable from here: a connection attempt would hang, not fail at once.
        ("not loopback", "http://10.255.255.1/x".to_owned(), "not a loopback address"),
        ("not loopback, v6", "https://[2001:db8::1]:8443/x".to_owned(), "not a loopback address"),
    ];
    for (what, source, reason) in cases {
        let id = create_ok(&url, &source).await;
        let (s, took) = settled(&url, dir.path(), &id).await;
        assert_failed(&s, what);
        let kept = record(dir.path(), &id);
        let why = kept["ingest"]["reason"].as_str().unwrap_or_default().to_owned();
        assert!(why.contains(reason), "{what}: the reason `{why}` should say `{reason}`");
        if what.starts_with("not loopback") {
            assert!(took < Duration::from_secs(1), "{what}: refused without connecting ({took:?})");
        }
        if what == "too slow" {
            assert!(took >= Duration::from_millis(1200), "{what}: failed too early ({took:?})");
        }
        assert_eq!(source_bytes(&url, &id).await.0, 404, "{what}: no source to serve");
        assert!(!dir.path().join("videos").join(&id).join("single.chunk").exists(), "{what}");
        let (code, body) = upload(&url, &id).await;
        assert_eq!(code, 400, "{what}: {body}");
        assert_eq!(
            body["type"], "https://docs.api.video/reference/video-source-already-downloaded",
            "{what}"
        );
        eprintln!("{what}: failed in {took:?}: {why}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_sources_are_refused_at_create() {
    let dir = tempfile::tempdir().unwrap();
    let server = spawn_server_process(dir.path(), &[]);
    let url = server.url.clone();
    for bad in
        ["ftp://127.0.0.1/a.mp4", "not a url", "http://", "file:///etc/passwd", "viNoSuchVideo0"]
    {
        let (status, body) = create(&url, bad).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert_eq!(body["type"], "https://docs.api.video/reference/invalid-attribute", "{bad}");
        assert_eq!(body["name"], "source", "{bad}");
    }
    let list: Value = http()
        .get(format!("{url}/videos"))
        .header("Authorization", basic_auth(KEY))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["pagination"]["itemsTotal"], 0, "a refused create makes no video");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_video_id_source_copies_its_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let server = spawn_server_process(dir.path(), &[]);
    let url = server.url.clone();
    let original = common::create_video_at(&http(), &url, "original").await;
    // Not complete yet: nothing to copy.
    let (status, body) = create(&url, &original).await;
    assert_eq!((status, body["name"].as_str()), (400, Some("source")), "{body}");
    assert_eq!(upload(&url, &original).await.0, 201);

    let copy = create_ok(&url, &original).await;
    let (s, _) = settled(&url, dir.path(), &copy).await;
    assert_eq!(s["ingest"]["status"], "ingested", "{s}");
    assert_eq!(s["ingest"]["filesize"], b"a plain upload".len());
    assert_eq!(source_bytes(&url, &copy).await, (200, b"a plain upload".to_vec()));
    let (code, body) = upload(&url, &copy).await;
    assert_eq!(code, 400, "{body}");
    assert_eq!(body["type"], "https://docs.api.video/reference/video-source-already-copied");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bandwidth_paces_the_fetch() {
    let data = Arc::new(random(2 * MIB));
    let files = file_server(data.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let server = spawn_server_process(dir.path(), &["--bandwidth", "1MiB"]);
    let url = server.url.clone();
    let id = create_ok(&url, &format!("http://127.0.0.1:{}/file", files.port())).await;
    let (s, took) = settled(&url, dir.path(), &id).await;
    assert_eq!(s["ingest"]["status"], "ingested", "{s}");
    eprintln!("2 MiB at 1 MiB/s ingested in {took:?}");
    assert!(took >= Duration::from_millis(1800), "--bandwidth 1MiB: 2 MiB took only {took:?}");
    assert!(source_bytes(&url, &id).await.1 == *data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_mid_fetch_fails_the_ingest() {
    let files = file_server(Arc::new(Vec::new())).await;
    let dir = tempfile::tempdir().unwrap();
    let server = spawn_server_process(dir.path(), &[]);
    let url = server.url.clone();
    let id = create_ok(&url, &format!("http://127.0.0.1:{}/slow", files.port())).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(status(&url, &id).await["ingest"]["status"], "ingesting");
    server.kill9();

    let server = spawn_server_process(dir.path(), &[]);
    let url = server.url.clone();
    let s = status(&url, &id).await;
    assert_failed(&s, "restarted mid-fetch");
    assert!(record(dir.path(), &id)["ingest"]["reason"].as_str().unwrap().contains("stopped"));
    assert_eq!(source_bytes(&url, &id).await.0, 404);
    assert_eq!(upload(&url, &id).await.0, 400, "still a video made from a URL");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_ingest_reads_as_source_failed_as_says() {
    // api.video documents no state for a source it could not fetch: the switch gives the two
    // other readings a client may meet, `missing` and no `ingest` at all.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    for (given, want) in [("missing", json!("missing")), ("absent", Value::Null)] {
        let dir = tempfile::tempdir().unwrap();
        let server = spawn_server_process(dir.path(), &["--source-failed-as", given]);
        let id = create_ok(&server.url, &format!("http://127.0.0.1:{closed}/x")).await;
        let (s, _) = settled(&server.url, dir.path(), &id).await;
        assert_eq!(s["ingest"]["status"], want, "{given}: {s}");
        assert_eq!(s["encoding"]["playable"], false, "{given}: {s}");
    }
}
