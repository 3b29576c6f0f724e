//! `avbatch serve`'s switches for client tests: `--gateway-error-rate`, `--metadata-match`,
//! `--stall-rate`, `--unfinished-ttl` and `--auth-after-body`, each shown over real HTTP against
//! the real binary.

use crate::common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use common::{basic_auth, multipart, multipart_file, pattern, KEY, MIB};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// `avbatch serve --addr 127.0.0.1:0 --api-key KEY --data DATA ARGS`; killed on drop.
struct Serve {
    child: Child,
    url: String,
}

impl Serve {
    fn start(data: &Path, args: &[&str]) -> Serve {
        let mut child = Command::new(env!("CARGO_BIN_EXE_avbatch"))
            .args(["serve", "--addr", "127.0.0.1:0", "--api-key", KEY, "--data"])
            .arg(data)
            .args(args)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn avbatch serve");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let url = loop {
            let line = lines.next().expect("the server printed its address").expect("read stdout");
            if let Some(rest) = line.strip_prefix("listening on ") {
                break rest.trim().to_owned();
            }
        };
        std::thread::spawn(move || for _ in lines {});
        Serve { child, url }
    }

    fn addr(&self) -> String {
        self.url.strip_prefix("http://").unwrap().to_owned()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap()
}

async fn get(url: &str) -> reqwest::Response {
    http()
        .get(url)
        .header("Authorization", basic_auth(KEY))
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

async fn get_json(url: &str) -> Value {
    let resp = get(url).await;
    assert_eq!(resp.status().as_u16(), 200, "GET {url}");
    resp.json().await.unwrap()
}

async fn create(url: &str, body: Value) -> String {
    let resp = http()
        .post(format!("{url}/videos"))
        .header("Authorization", basic_auth(KEY))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201, "POST /videos {body}");
    resp.json::<Value>().await.unwrap()["videoId"].as_str().unwrap().to_owned()
}

async fn upload(url: &str, id: &str, range: Option<&str>, data: &[u8]) -> reqwest::Response {
    let (ct, body) = multipart_file("file", "clip.mp4", data);
    let mut req = http()
        .post(format!("{url}/videos/{id}/source"))
        .header("Authorization", basic_auth(KEY))
        .header("Content-Type", ct);
    if let Some(r) = range {
        req = req.header("Content-Range", r);
    }
    req.body(body).send().await.unwrap()
}

fn titles(page: &Value) -> Vec<String> {
    let mut t: Vec<String> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["title"].as_str().unwrap().to_owned())
        .collect();
    t.sort();
    t
}

// ---------------------------------------------------------------------------------------------
// --gateway-error-rate
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_errors_replace_answers_of_requests_that_took_effect() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");

    // Half the answers replaced (seeded): every create takes effect, the answer is a 502 or a 504
    // in nginx's words, without the API's rate-limit headers.
    let server = Serve::start(
        &data,
        &["--rate-limit", "production", "--gateway-error-rate", "0.5", "--seed", "11"],
    );
    let mut seen = std::collections::BTreeMap::new();
    for i in 0..24 {
        let resp = http()
            .post(format!("{}/videos", server.url))
            .header("Authorization", basic_auth(KEY))
            .json(&json!({"title": format!("gw-{i:02}")}))
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        *seen.entry(status).or_insert(0) += 1;
        let has_limits = resp.headers().keys().any(|k| k.as_str().starts_with("x-ratelimit-"));
        let ct = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let body = resp.text().await.unwrap();
        match status {
            201 => assert!(has_limits, "a normal answer carries the rate-limit headers"),
            502 | 504 => {
                assert_eq!(ct, "text/html", "{status}: {body}");
                assert!(!has_limits, "{status}: a gateway error has no rate-limit headers");
                let title = if status == 502 { "502 Bad Gateway" } else { "504 Gateway Time-out" };
                assert!(
                    body.contains(&format!("<title>{title}</title>")) && body.contains("nginx"),
                    "{body}"
                );
            }
            other => panic!("POST /videos answered {other}: {body}"),
        }
    }
    assert!(
        seen.contains_key(&201) && seen.contains_key(&502) && seen.contains_key(&504),
        "both gateway errors and normal answers: {seen:?}"
    );
    drop(server);

    // Every create took effect, answered or not.
    let server = Serve::start(&data, &[]);
    let page = get_json(&format!("{}/videos?pageSize=100", server.url)).await;
    let want: Vec<String> = (0..24).map(|i| format!("gw-{i:02}")).collect();
    assert_eq!(titles(&page), want, "every POST /videos made its video");
    let done = create(&server.url, json!({"title": "done"})).await;
    let bytes = pattern(1000, 2);
    assert_eq!(upload(&server.url, &done, None, &bytes).await.status().as_u16(), 201);
    let pending = create(&server.url, json!({"title": "pending"})).await;
    drop(server);

    // With every answer replaced: an upload still takes effect, and the asset host is not behind
    // the load balancer.
    let server = Serve::start(&data, &["--gateway-error-rate", "1"]);
    let resp = upload(&server.url, &pending, None, &bytes).await;
    assert!(
        matches!(resp.status().as_u16(), 502 | 504),
        "an upload's answer is replaced too: {}",
        resp.status()
    );
    let asset =
        http().get(format!("{}/vod/{done}/mp4/source.mp4", server.url)).send().await.unwrap();
    assert_eq!(asset.status().as_u16(), 200, "/vod/ is not an API route");
    assert!(asset.bytes().await.unwrap().as_ref() == bytes.as_slice());
    drop(server);
    let server = Serve::start(&data, &[]);
    let status = get_json(&format!("{}/videos/{pending}/status", server.url)).await;
    assert_eq!(
        status["ingest"]["status"], "uploaded",
        "the upload answered 502/504 was stored: {status}"
    );
}

// ---------------------------------------------------------------------------------------------
// --metadata-match
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_filters_match_exactly_or_by_substring() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let server = Serve::start(&data, &["--rate-limit", "off"]);
    for (title, key, value) in [
        ("sky", "colour", "Blue Sky"),
        ("navy", "colour", "navy blue"),
        ("red", "colour", "red"),
        ("other key", "Colour", "blue"),
    ] {
        create(&server.url, json!({"title": title, "metadata": [{"key": key, "value": value}]}))
            .await;
    }
    let list = |url: String, q: &str| {
        let q = q.to_owned();
        async move { titles(&get_json(&format!("{url}/videos?{q}")).await) }
    };
    // Default: exact.
    assert_eq!(list(server.url.clone(), "metadata%5Bcolour%5D=Blue%20Sky").await, ["sky"]);
    assert!(
        list(server.url.clone(), "metadata%5Bcolour%5D=blue").await.is_empty(),
        "exact: no substring, no case folding"
    );
    drop(server);

    let server = Serve::start(&data, &["--rate-limit", "off", "--metadata-match", "contains"]);
    assert_eq!(
        list(server.url.clone(), "metadata%5Bcolour%5D=BLUE").await,
        ["navy", "sky"],
        "contains: a case-insensitive substring"
    );
    assert_eq!(list(server.url.clone(), "metadata%5Bcolour%5D=Blue%20Sky").await, ["sky"]);
    assert_eq!(
        list(server.url.clone(), "metadata%5BColour%5D=blu").await,
        ["other key"],
        "the key still matches exactly"
    );
    assert!(list(server.url.clone(), "metadata%5Bcol%5D=blue").await.is_empty());
    assert_eq!(
        list(server.url.clone(), "metadata%5Bcolour%5D=e&metadata%5Bcolour%5D=sky").await,
        ["sky"],
        "every filter must match"
    );
}

// ---------------------------------------------------------------------------------------------
// --stall-rate
// ---------------------------------------------------------------------------------------------

/// A client sending a request from a task that writes as far as the server reads.
struct Sender {
    answers: tokio::net::tcp::OwnedReadHalf,
    written: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Sender {
    /// Sends `head` and then `body` on a new connection to `addr`.
    async fn start(addr: &str, head: String, body: Vec<u8>) -> Sender {
        let (answers, mut writer) = TcpStream::connect(addr).await.unwrap().into_split();
        let written = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = written.clone();
        let task = tokio::spawn(async move {
            if writer.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            for piece in body.chunks(64 * 1024) {
                if writer.write_all(piece).await.is_err() {
                    return;
                }
                counter.fetch_add(piece.len(), std::sync::atomic::Ordering::SeqCst);
            }
            // Hold the connection open after the body, as a client waiting for its answer does.
            std::future::pending::<()>().await;
        });
        Sender { answers, written, task }
    }

    /// Looks at the connection for 300 ms.
    async fn probe(&mut self) -> Probe {
        let mut buf = [0u8; 1024];
        match tokio::time::timeout(Duration::from_millis(300), self.answers.read(&mut buf)).await {
            Err(_) => Probe::Quiet,
            Ok(Ok(0)) | Ok(Err(_)) => Probe::Closed,
            Ok(Ok(_)) => Probe::Answered,
        }
    }
}

impl Drop for Sender {
    /// The client gives up and closes, as its progress time-out would make it.
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Probe {
    /// Nothing to read and not closed.
    Quiet,
    Answered,
    Closed,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_uploads_are_never_answered_and_store_nothing() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    // A 1 s body time-out: a stall must outlast it (the server stops asking for the body).
    let server = Serve::start(
        &data,
        &["--rate-limit", "off", "--stall-rate", "1", "--seed", "5", "--body-timeout", "1s"],
    );
    let addr = server.addr();
    let id = create(&server.url, json!({"title": "stalled"})).await;
    let token: Value = http()
        .post(format!("{}/upload-tokens", server.url))
        .header("Authorization", basic_auth(KEY))
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["token"].as_str().unwrap().to_owned();

    // 32 MiB bodies: far more than the socket buffers hold, so a server that stops reading blocks
    // the client's writes.
    let source = pattern(32 * MIB, 8);
    let (ct, body) = multipart_file("file", "stalled.mp4", &source);
    let auth = basic_auth(KEY);
    let direct = format!(
        "POST /videos/{id}/source HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {auth}\r\n\
         Content-Type: {ct}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let (ct2, body2) = multipart(&[], Some(("file", "token.mp4", &source)), &[]);
    let delegated = format!(
        "POST /upload?token={token} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {ct2}\r\n\
         Content-Length: {}\r\n\r\n",
        body2.len()
    );
    let mut sent = Vec::new();
    for (what, head, body) in
        [("POST /videos/{id}/source", direct, body), ("POST /upload", delegated, body2)]
    {
        let total = body.len();
        let mut sender = Sender::start(&addr, head, body).await;
        assert_eq!(sender.probe().await, Probe::Quiet, "{what}: no answer at first");
        sent.push((what, sender, total));
    }
    // Past the body time-out (1 s) and well past what the writes needed: no answer, still open,
    // the bodies only part-way through.
    tokio::time::sleep(Duration::from_secs(3)).await;
    for (what, sender, total) in &mut sent {
        assert_eq!(
            sender.probe().await,
            Probe::Quiet,
            "{what}: after 3 s, no answer and the connection still open"
        );
        let w = sender.written.load(std::sync::atomic::Ordering::SeqCst);
        assert!(w < *total, "{what}: the server stopped reading ({w} of {total} bytes went out)");
    }
    // Other requests are not stalled, and nothing of the stalled uploads was stored.
    let status = get_json(&format!("{}/videos/{id}/status", server.url)).await;
    assert_eq!(status["ingest"].get("status"), None, "nothing stored: {status}");
    let page = get_json(&format!("{}/videos", server.url)).await;
    assert_eq!(titles(&page), ["stalled"], "the delegated upload made no video");
    // The client gives up: it closes, as its progress time-out would.
    drop(sent);
    let status = get_json(&format!("{}/videos/{id}/status", server.url)).await;
    assert_eq!(status["ingest"].get("status"), None);
}

// ---------------------------------------------------------------------------------------------
// --unfinished-ttl
// ---------------------------------------------------------------------------------------------

/// Sets `createdAt` in `DATA/videos/{id}/video.json`, as a test ages a video by hand.
fn set_created_at(data: &Path, id: &str, when: chrono::DateTime<Utc>) {
    let path = data.join("videos").join(id).join("video.json");
    let mut record: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    record["createdAt"] = json!(when.to_rfc3339_opts(SecondsFormat::Secs, false));
    std::fs::write(&path, serde_json::to_vec_pretty(&record).unwrap()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unfinished_uploads_are_deleted_after_the_ttl_even_when_aged_by_hand() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let server = Serve::start(&data, &["--rate-limit", "off"]);
    let url = server.url.clone();
    let never = create(&url, json!({"title": "never uploaded"})).await;
    let partial = create(&url, json!({"title": "part 1 of 2"})).await;
    assert_eq!(
        upload(&url, &partial, Some("part 1/2"), &pattern(5 * MIB, 1)).await.status().as_u16(),
        201
    );
    let complete = create(&url, json!({"title": "complete"})).await;
    assert_eq!(upload(&url, &complete, None, &pattern(1000, 2)).await.status().as_u16(), 201);
    let from_url =
        create(&url, json!({"title": "from a URL", "source": "https://example.com/a.mp4"})).await;
    let young = create(&url, json!({"title": "young"})).await;
    drop(server);

    // Eight days old, by hand, then a restart with api.video's 7 days.
    let eight_days_ago = Utc::now() - chrono::Duration::days(8);
    for id in [&never, &partial, &complete, &from_url] {
        set_created_at(&data, id, eight_days_ago);
    }
    let server = Serve::start(&data, &["--rate-limit", "off"]);
    let url = server.url.clone();
    let page = get_json(&format!("{url}/videos?pageSize=100")).await;
    assert_eq!(
        titles(&page),
        ["complete", "from a URL", "young"],
        "unfinished uploads past 7 days are gone from the list"
    );
    for id in [&never, &partial] {
        assert_eq!(get(&format!("{url}/videos/{id}")).await.status().as_u16(), 404, "{id}");
        assert_eq!(get(&format!("{url}/videos/{id}/status")).await.status().as_u16(), 404, "{id}");
        assert!(
            !data.join("videos").join(id).exists(),
            "{id}: its folder (and chunks) are removed"
        );
        let resp = upload(&url, id, Some("part 2/2"), &pattern(1000, 3)).await;
        assert_eq!(resp.status().as_u16(), 404, "{id}: no upload into a deleted video");
    }
    for id in [&complete, &from_url, &young] {
        assert_eq!(get(&format!("{url}/videos/{id}")).await.status().as_u16(), 200, "{id} stays");
    }
    drop(server);

    // A short ttl, checked on lookup without a restart.
    let server = Serve::start(&data, &["--rate-limit", "off", "--unfinished-ttl", "2s"]);
    let url = server.url.clone();
    let fresh = create(&url, json!({"title": "fresh"})).await;
    assert_eq!(get(&format!("{url}/videos/{fresh}")).await.status().as_u16(), 200);
    let start = Instant::now();
    tokio::time::sleep(Duration::from_millis(3100)).await;
    assert_eq!(
        get(&format!("{url}/videos/{fresh}")).await.status().as_u16(),
        404,
        "unfinished after {:?}",
        start.elapsed()
    );
    assert_eq!(
        get(&format!("{url}/videos/{young}")).await.status().as_u16(),
        404,
        "young was unfinished too, and older than 2 s"
    );
    assert!(!data.join("videos").join(&fresh).exists());
    let page = get_json(&format!("{url}/videos?pageSize=100")).await;
    assert_eq!(titles(&page), ["complete", "from a URL"]);
}

// ---------------------------------------------------------------------------------------------
// --auth-after-body
// ---------------------------------------------------------------------------------------------

/// An upload of `data` with `authorization`, whose body waits `pause` half-way.
async fn slow_upload(
    url: &str,
    id: &str,
    authorization: &str,
    data: &[u8],
    pause: Duration,
) -> reqwest::Response {
    use futures::StreamExt;
    let (ct, body) = multipart_file("file", "clip.mp4", data);
    let len = body.len();
    let (head, tail) = body.split_at(len / 2);
    let (head, tail) = (bytes::Bytes::copy_from_slice(head), bytes::Bytes::copy_from_slice(tail));
    let stream = futures::stream::iter([Ok::<_, std::io::Error>(head)]).chain(
        futures::stream::once(async move {
            tokio::time::sleep(pause).await;
            Ok(tail)
        }),
    );
    http()
        .post(format!("{url}/videos/{id}/source"))
        .header("Authorization", authorization)
        .header("Content-Type", ct)
        .header("Content-Length", len)
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap()
}

async fn bearer(url: &str) -> String {
    let resp = http()
        .post(format!("{url}/auth/api-key"))
        .json(&json!({"apiKey": KEY}))
        .send()
        .await
        .unwrap();
    format!("Bearer {}", resp.json::<Value>().await.unwrap()["access_token"].as_str().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_after_the_body_refuses_a_token_that_expired_under_it() {
    let data = pattern(64 * 1024, 9);
    let dir = tempfile::tempdir().unwrap();
    for (after_body, expect) in [(true, 401), (false, 201)] {
        let folder = dir.path().join(format!("after-{after_body}"));
        let mut args = vec!["--token-ttl", "1s", "--rate-limit", "off"];
        if after_body {
            args.push("--auth-after-body");
        }
        let server = Serve::start(&folder, &args);
        let id = create(&server.url, json!({"title": "t"})).await;
        // A token valid when the upload starts, expired (it lives 1 to 2 s) before its body ends
        // (2.5 s).
        let token = bearer(&server.url).await;
        let resp = slow_upload(&server.url, &id, &token, &data, Duration::from_millis(2500)).await;
        assert_eq!(resp.status().as_u16(), expect, "auth after the body: {after_body}");
        let status = get_json(&format!("{}/videos/{id}/status", server.url)).await;
        if expect == 401 {
            let v: Value = resp.json().await.unwrap();
            assert_eq!(
                v["type"], "https://docs.api.video/reference/authentication-invalid-access-token",
                "{v}"
            );
            assert!(status["ingest"].get("status").is_none(), "nothing was stored: {status}");
            // The key itself holds, whenever it is checked.
            let resp =
                slow_upload(&server.url, &id, &basic_auth(KEY), &data, Duration::from_millis(500))
                    .await;
            assert_eq!(resp.status().as_u16(), 201);
        } else {
            assert_eq!(status["ingest"]["status"], "uploaded");
        }
    }
}
