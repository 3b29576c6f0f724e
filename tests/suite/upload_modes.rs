//! Successful uploads over real HTTP (docs/server-contract.md, "Upload" and "Delegated upload"):
//! single request, `bytes`, `part N/M`, `part N/*` … `part N/N`, out of order, what `/status`
//! shows on the way, byte-exact reassembly through `assets.mp4` (with Range), and upload tokens.

use crate::common;

use common::{basic_auth, multipart, multipart_file, pattern, spawn_server, TestServer, MIB};
use serde_json::{json, Value};

/// Smallest chunk but the last: 5 MiB.
const P: usize = 5 * MIB;
/// Tail of the three-chunk test files.
const TAIL: usize = 1234;
const TYPE_BASE: &str = "https://docs.api.video/reference/";

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

async fn get_video(ts: &TestServer, id: &str) -> (u16, Value) {
    let resp = ts
        .http
        .get(format!("{}/videos/{id}", ts.url))
        .header("Authorization", ts.basic())
        .send()
        .await
        .expect("GET video");
    let st = resp.status().as_u16();
    (st, resp.json().await.unwrap_or(Value::Null))
}

async fn ingest_of(ts: &TestServer, id: &str) -> Value {
    let resp = ts
        .http
        .get(format!("{}/videos/{id}/status", ts.url))
        .header("Authorization", ts.basic())
        .send()
        .await
        .expect("GET status reaches the server");
    assert_eq!(resp.status().as_u16(), 200, "GET /videos/{id}/status must answer 200");
    let v: Value = resp.json().await.expect("status is JSON");
    assert!(v["ingest"].is_object(), "/status has no ingest object: {v}");
    v["ingest"].clone()
}

/// Sends `data` as the file of one `POST /videos/{id}/source` request; returns (status, JSON body).
async fn send_chunk(ts: &TestServer, id: &str, range: Option<&str>, data: &[u8]) -> (u16, Value) {
    let (ct, body) = multipart_file("file", "clip.mp4", data);
    let mut req = ts
        .http
        .post(format!("{}/videos/{id}/source", ts.url))
        .header("Authorization", ts.basic())
        .header("Content-Type", ct)
        .body(body);
    if let Some(r) = range {
        req = req.header("Content-Range", r);
    }
    let resp = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST /videos/{id}/source (Content-Range {range:?}): {e}"));
    let st = resp.status().as_u16();
    let text = resp.text().await.expect("read answer");
    let v = serde_json::from_str(&text).unwrap_or_else(|_| json!({ "<not json>": text }));
    (st, v)
}

/// A non-completing chunk: 201 and exactly `{"videoId": id}`.
async fn send_partial(ts: &TestServer, id: &str, range: &str, data: &[u8]) {
    let (st, v) = send_chunk(ts, id, Some(range), data).await;
    assert_eq!(
        st,
        201,
        "non-completing chunk `{range}` ({} bytes) must answer 201; body {v}",
        data.len()
    );
    assert_eq!(
        v,
        json!({ "videoId": id }),
        "non-completing chunk `{range}` must answer {{\"videoId\"}} only"
    );
}

/// The completing chunk: 201 and the full Video. Returns the Video.
async fn send_final(ts: &TestServer, id: &str, range: Option<&str>, data: &[u8]) -> Value {
    let (st, v) = send_chunk(ts, id, range, data).await;
    assert_eq!(
        st,
        201,
        "completing chunk {range:?} ({} bytes) must answer 201; body {v}",
        data.len()
    );
    assert_full_video(&v, id, ts, &format!("completing chunk {range:?}"));
    v
}

fn assert_full_video(v: &Value, id: &str, ts: &TestServer, what: &str) {
    assert_eq!(v["videoId"], json!(id), "{what}: Video.videoId; body {v}");
    assert!(v["title"].is_string(), "{what}: a full Video has a title; body {v}");
    assert!(v["createdAt"].is_string(), "{what}: a full Video has createdAt; body {v}");
    let want = format!("{}/vod/{id}/mp4/source.mp4", ts.url);
    assert_eq!(v["assets"]["mp4"], json!(want), "{what}: assets.mp4; body {v}");
    assert_eq!(
        v["assets"]["player"],
        json!(format!("{}/vod/{id}", ts.url)),
        "{what}: assets.player; body {v}"
    );
}

/// GET without any Authorization (assets need none).
async fn fetch(
    ts: &TestServer,
    url: &str,
    range: Option<&str>,
) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let mut req = ts.http.get(url);
    if let Some(r) = range {
        req = req.header("Range", r);
    }
    let resp = req.send().await.unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let st = resp.status().as_u16();
    let headers = resp.headers().clone();
    (st, headers, resp.bytes().await.expect("asset body").to_vec())
}

fn assert_same_bytes(got: &[u8], want: &[u8], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    if let Some(i) = got.iter().zip(want).position(|(a, b)| a != b) {
        panic!(
            "{what}: first difference at byte {i} (got {:#04x}, expected {:#04x})",
            got[i], want[i]
        );
    }
}

async fn assert_asset_is(ts: &TestServer, video: &Value, want: &[u8], what: &str) {
    let url = video["assets"]["mp4"]
        .as_str()
        .unwrap_or_else(|| panic!("{what}: no assets.mp4 in {video}"));
    let (st, _, got) = fetch(ts, url, None).await;
    assert_eq!(st, 200, "{what}: GET {url} once the upload is complete");
    assert_same_bytes(&got, want, &format!("{what}: GET assets.mp4 vs the file sent"));
}

async fn assert_asset_missing(ts: &TestServer, id: &str, what: &str) {
    let url = format!("{}/vod/{id}/mp4/source.mp4", ts.url);
    let (st, _, _) = fetch(ts, &url, None).await;
    assert_eq!(st, 404, "{what}: GET {url} must be 404 before the upload is complete");
}

/// The three-chunk test file: 5 MiB, 5 MiB, 1234 bytes.
fn three_chunk_file(seed: u8) -> Vec<u8> {
    pattern(2 * P + TAIL, seed)
}

fn parts_of(data: &[u8]) -> [&[u8]; 3] {
    [&data[..P], &data[P..2 * P], &data[2 * P..]]
}

fn received_bytes_sorted(ingest: &Value) -> Vec<(u64, u64, u64)> {
    let arr = ingest["receivedBytes"]
        .as_array()
        .unwrap_or_else(|| panic!("receivedBytes is not an array: {ingest}"));
    let mut out: Vec<(u64, u64, u64)> = arr
        .iter()
        .map(|r| {
            let n = |k: &str| {
                r[k].as_u64()
                    .unwrap_or_else(|| panic!("receivedBytes entry without numeric {k}: {ingest}"))
            };
            (n("from"), n("to"), n("total"))
        })
        .collect();
    out.sort();
    out
}

async fn check_problem(resp: reqwest::Response, status: u16, slug: &str, what: &str) {
    let got = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("<none>")
        .to_owned();
    let text = resp.text().await.unwrap_or_default();
    assert_eq!(got, status, "{what}: HTTP status (body {text})");
    assert!(
        ct.starts_with("application/problem+json"),
        "{what}: Content-Type {ct:?} (body {text})"
    );
    let v: Value =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("{what}: body is not JSON: {text}"));
    assert_eq!(
        v["type"],
        json!(format!("{TYPE_BASE}{slug}")),
        "{what}: problem type (body {text})"
    );
    assert_eq!(v["status"], json!(status), "{what}: problem status (body {text})");
}

async fn video_count(ts: &TestServer) -> u64 {
    let resp = ts
        .http
        .get(format!("{}/videos?pageSize=100", ts.url))
        .header("Authorization", ts.basic())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200, "GET /videos");
    let v: Value = resp.json().await.unwrap();
    v["pagination"]["itemsTotal"]
        .as_u64()
        .unwrap_or_else(|| panic!("GET /videos without pagination.itemsTotal: {v}"))
}

// ---------------------------------------------------------------------------------------------
// Source uploads
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_request_upload() {
    let ts = spawn_server().await;
    let id = ts.create_video("single").await;
    let before = ingest_of(&ts, &id).await;
    assert!(before.get("status").is_none(), "before any chunk ingest has no status key: {before}");
    assert_asset_missing(&ts, &id, "single request").await;

    let data = pattern(MIB + 7, 3);
    let video = send_final(&ts, &id, None, &data).await;
    let ingest = ingest_of(&ts, &id).await;
    assert_eq!(ingest["status"], json!("uploaded"), "single request: ingest.status; {ingest}");
    assert_eq!(ingest["filesize"], json!(data.len()), "single request: ingest.filesize; {ingest}");
    assert_eq!(ingest["receivedBytes"], json!([]), "single request: receivedBytes; {ingest}");
    assert_eq!(
        ingest["receivedParts"],
        json!({"parts": [], "total": null}),
        "single request: receivedParts; {ingest}"
    );
    assert_asset_is(&ts, &video, &data, "single request").await;
    let (st, v) = get_video(&ts, &id).await;
    assert_eq!(st, 200);
    assert_eq!(
        v["assets"]["mp4"], video["assets"]["mp4"],
        "GET /videos/{{id}} shows the same assets.mp4"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_mode_three_chunks_in_order() {
    let ts = spawn_server().await;
    let id = ts.create_video("bytes").await;
    let data = three_chunk_file(5);
    let t = data.len() as u64;
    let p = P as u64;
    let [a, b, c] = parts_of(&data);
    let ranges = [(0, p - 1), (p, 2 * p - 1), (2 * p, t - 1)];

    send_partial(&ts, &id, &format!("bytes 0-{}/{t}", p - 1), a).await;
    let ingest = ingest_of(&ts, &id).await;
    assert_eq!(ingest["status"], json!("uploading"), "after bytes chunk 1 of 3; {ingest}");
    assert_eq!(
        ingest["filesize"],
        json!(t),
        "bytes mode: filesize is the total once known (from the first chunk); {ingest}"
    );
    assert_eq!(
        received_bytes_sorted(&ingest),
        vec![(ranges[0].0, ranges[0].1, t)],
        "receivedBytes after chunk 1; {ingest}"
    );
    assert_eq!(
        ingest["receivedParts"]["parts"],
        json!([]),
        "bytes mode has no receivedParts; {ingest}"
    );
    assert_asset_missing(&ts, &id, "bytes after chunk 1").await;

    send_partial(&ts, &id, &format!("bytes {p}-{}/{t}", 2 * p - 1), b).await;
    let ingest = ingest_of(&ts, &id).await;
    assert_eq!(ingest["status"], json!("uploading"), "after bytes chunk 2 of 3; {ingest}");
    assert_eq!(ingest["filesize"], json!(t), "after bytes chunk 2; {ingest}");
    assert_eq!(
        received_bytes_sorted(&ingest),
        vec![(ranges[0].0, ranges[0].1, t), (ranges[1].0, ranges[1].1, t)],
        "receivedBytes after chunk 2; {ingest}"
    );
    assert_asset_missing(&ts, &id, "bytes after chunk 2").await;

    let video = send_final(&ts, &id, Some(&format!("bytes {}-{}/{t}", 2 * p, t - 1)), c).await;
    let ingest = ingest_of(&ts, &id).await;
    assert_eq!(ingest["status"], json!("uploaded"), "after the last bytes chunk; {ingest}");
    assert_eq!(ingest["filesize"], json!(t), "after the last bytes chunk; {ingest}");
    assert_eq!(
        received_bytes_sorted(&ingest),
        ranges.iter().map(|&(f, to)| (f, to, t)).collect::<Vec<_>>(),
        "receivedBytes after the last chunk: one entry per chunk; {ingest}"
    );
    assert_asset_is(&ts, &video, &data, "bytes in order").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_mode_out_of_order() {
    let ts = spawn_server().await;
    let id = ts.create_video("bytes out of order").await;
    let data = three_chunk_file(6);
    let t = data.len() as u64;
    let p = P as u64;
    let [a, b, c] = parts_of(&data);
    send_partial(&ts, &id, &format!("bytes {}-{}/{t}", 2 * p, t - 1), c).await;
    send_partial(&ts, &id, &format!("bytes {p}-{}/{t}", 2 * p - 1), b).await;
    let ingest = ingest_of(&ts, &id).await;
    assert_eq!(ingest["status"], json!("uploading"), "tail and middle received; {ingest}");
    assert_eq!(received_bytes_sorted(&ingest).len(), 2, "two receivedBytes entries; {ingest}");
    let video = send_final(&ts, &id, Some(&format!("bytes 0-{}/{t}", p - 1)), a).await;
    assert_eq!(
        ingest_of(&ts, &id).await["status"],
        json!("uploaded"),
        "after the first range, sent last"
    );
    assert_asset_is(&ts, &video, &data, "bytes out of order").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn part_mode_with_known_total() {
    let ts = spawn_server().await;
    let id = ts.create_video("part N/M").await;
    let data = three_chunk_file(7);
    let [a, b, c] = parts_of(&data);

    send_partial(&ts, &id, "part 1/3", a).await;
    let ingest = ingest_of(&ts, &id).await;
    assert_eq!(ingest["status"], json!("uploading"), "after part 1/3; {ingest}");
    assert_eq!(
        ingest["receivedParts"],
        json!({"parts": [1], "total": 3}),
        "after part 1/3; {ingest}"
    );
    assert_eq!(ingest["receivedBytes"], json!([]), "part mode has no receivedBytes; {ingest}");
    assert_eq!(
        ingest["filesize"],
        Value::Null,
        "part mode: the size is unknown until every part arrived; {ingest}"
    );
    assert_asset_missing(&ts, &id, "part N/M after part 1").await;

    send_partial(&ts, &id, "part 2/3", b).await;
    let ingest = ingest_of(&ts, &id).await;
    assert_eq!(ingest["status"], json!("uploading"), "after part 2/3; {ingest}");
    assert_eq!(
        ingest["receivedParts"],
        json!({"parts": [1, 2], "total": 3}),
        "after part 2/3; {ingest}"
    );

    let video = send_final(&ts, &id, Some("part 3/3"), c).await;
    let ingest = ingest_of(&ts, &id).await;
    assert_eq!(ingest["status"], json!("uploaded"), "after part 3/3; {ingest}");
    assert_eq!(
        ingest["receivedParts"],
        json!({"parts": [1, 2, 3], "total": 3}),
        "after part 3/3; {ingest}"
    );
    assert_eq!(
        ingest["filesize"],
        json!(data.len()),
        "after part 3/3: filesize is the whole size; {ingest}"
    );
    assert_asset_is(&ts, &video, &data, "part N/M").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn part_mode_with_unknown_total_until_the_last() {
    let ts = spawn_server().await;
    let id = ts.create_video("part N/*").await;
    let data = three_chunk_file(8);
    let [a, b, c] = parts_of(&data);

    send_partial(&ts, &id, "part 1/*", a).await;
    let ingest = ingest_of(&ts, &id).await;
    assert_eq!(ingest["status"], json!("uploading"), "after part 1/*; {ingest}");
    assert_eq!(
        ingest["receivedParts"],
        json!({"parts": [1], "total": null}),
        "after part 1/*; {ingest}"
    );
    assert_eq!(ingest["filesize"], Value::Null, "after part 1/*; {ingest}");

    send_partial(&ts, &id, "part 2/*", b).await;
    let ingest = ingest_of(&ts, &id).await;
    assert_eq!(
        ingest["receivedParts"],
        json!({"parts": [1, 2], "total": null}),
        "after part 2/*; {ingest}"
    );
    assert_asset_missing(&ts, &id, "part N/* after part 2").await;

    let video = send_final(&ts, &id, Some("part 3/3"), c).await;
    let ingest = ingest_of(&ts, &id).await;
    assert_eq!(ingest["status"], json!("uploaded"), "after part 3/3; {ingest}");
    assert_eq!(
        ingest["receivedParts"],
        json!({"parts": [1, 2, 3], "total": 3}),
        "after part 3/3; {ingest}"
    );
    assert_eq!(ingest["filesize"], json!(data.len()), "after part 3/3; {ingest}");
    assert_asset_is(&ts, &video, &data, "part N/* … N/N").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn part_mode_out_of_order_reassembles_in_part_order() {
    let ts = spawn_server().await;

    // Last part first (it carries the total), then 1, then 2.
    let id = ts.create_video("parts 3,1,2").await;
    let data = three_chunk_file(9);
    let [a, b, c] = parts_of(&data);
    send_partial(&ts, &id, "part 3/3", c).await;
    let ingest = ingest_of(&ts, &id).await;
    assert_eq!(
        ingest["receivedParts"],
        json!({"parts": [3], "total": 3}),
        "after part 3/3 sent first; {ingest}"
    );
    assert_eq!(ingest["status"], json!("uploading"), "after part 3/3 sent first; {ingest}");
    send_partial(&ts, &id, "part 1/3", a).await;
    let ingest = ingest_of(&ts, &id).await;
    assert_eq!(
        ingest["receivedParts"],
        json!({"parts": [1, 3], "total": 3}),
        "receivedParts are sorted; {ingest}"
    );
    let video = send_final(&ts, &id, Some("part 2/*"), b).await;
    let ingest = ingest_of(&ts, &id).await;
    assert_eq!(
        ingest["receivedParts"],
        json!({"parts": [1, 2, 3], "total": 3}),
        "after the missing part 2; {ingest}"
    );
    assert_eq!(ingest["status"], json!("uploaded"), "order 3,1,2; {ingest}");
    assert_asset_is(&ts, &video, &data, "parts sent 3,1,2").await;

    // 2 with no total, then the last, then 1.
    let id = ts.create_video("parts 2,3,1").await;
    let data = three_chunk_file(10);
    let [a, b, c] = parts_of(&data);
    send_partial(&ts, &id, "part 2/*", b).await;
    send_partial(&ts, &id, "part 3/3", c).await;
    let ingest = ingest_of(&ts, &id).await;
    assert_eq!(
        ingest["receivedParts"],
        json!({"parts": [2, 3], "total": 3}),
        "order 2,3; {ingest}"
    );
    let video = send_final(&ts, &id, Some("part 1/*"), a).await;
    assert_asset_is(&ts, &video, &data, "parts sent 2,3,1").await;
}

/// `part 1/1` (how Python and Node send a small file) completes at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn part_one_of_one_completes() {
    let ts = spawn_server().await;
    let id = ts.create_video("part 1/1").await;
    let data = pattern(4096, 2);
    let video = send_final(&ts, &id, Some("part 1/1"), &data).await;
    let ingest = ingest_of(&ts, &id).await;
    assert_eq!(ingest["status"], json!("uploaded"), "after part 1/1; {ingest}");
    assert_eq!(
        ingest["receivedParts"],
        json!({"parts": [1], "total": 1}),
        "after part 1/1; {ingest}"
    );
    assert_eq!(ingest["filesize"], json!(4096), "after part 1/1; {ingest}");
    assert_asset_is(&ts, &video, &data, "part 1/1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn range_requests_on_the_mp4_asset() {
    let ts = spawn_server().await;
    let id = ts.create_video("ranges").await;
    let data = three_chunk_file(11);
    let [a, b, c] = parts_of(&data);
    send_partial(&ts, &id, "part 1/3", a).await;
    send_partial(&ts, &id, "part 2/3", b).await;
    let video = send_final(&ts, &id, Some("part 3/3"), c).await;
    let url = video["assets"]["mp4"].as_str().expect("assets.mp4").to_owned();
    let t = data.len();

    // (Range header, first byte, last byte inclusive)
    let cases: Vec<(String, usize, usize)> = vec![
        ("bytes=0-0".into(), 0, 0),
        ("bytes=100-199".into(), 100, 199),
        (format!("bytes={}-{}", P - 10, P + 9), P - 10, P + 9),
        (format!("bytes={}-{}", 2 * P - 5, 2 * P + 4), 2 * P - 5, 2 * P + 4),
        (format!("bytes={}-", t - 10), t - 10, t - 1),
        ("bytes=-500".into(), t - 500, t - 1),
        (format!("bytes=0-{}", t - 1), 0, t - 1),
    ];
    for (range, first, last) in &cases {
        let (st, headers, body) = fetch(&ts, &url, Some(range)).await;
        assert_eq!(st, 206, "GET assets.mp4 with Range: {range}");
        let cr = headers.get("content-range").and_then(|v| v.to_str().ok()).unwrap_or("<none>");
        assert_eq!(
            cr,
            format!("bytes {first}-{last}/{t}"),
            "Content-Range of the 206 to Range: {range}"
        );
        assert_same_bytes(&body, &data[*first..=*last], &format!("206 body for Range: {range}"));
    }
    for range in [format!("bytes={t}-"), format!("bytes={}-{}", t + 100, t + 200)] {
        let (st, _, _) = fetch(&ts, &url, Some(&range)).await;
        assert_eq!(st, 416, "GET assets.mp4 with Range: {range} (past the end, size {t})");
    }

    // HEAD: headers only.
    let resp = ts.http.head(&url).send().await.expect("HEAD assets.mp4");
    assert_eq!(resp.status().as_u16(), 200, "HEAD assets.mp4");
    let len = resp.headers().get("content-length").and_then(|v| v.to_str().ok()).map(str::to_owned);
    assert_eq!(
        len.as_deref(),
        Some(t.to_string().as_str()),
        "HEAD assets.mp4: Content-Length is the file size"
    );
    assert!(resp.bytes().await.expect("HEAD body").is_empty(), "HEAD assets.mp4 must have no body");

    let resp =
        ts.http.head(&url).header("Range", "bytes=10-19").send().await.expect("HEAD with Range");
    assert_eq!(resp.status().as_u16(), 206, "HEAD assets.mp4 with Range: bytes=10-19");
    let cr = resp.headers().get("content-range").and_then(|v| v.to_str().ok()).map(str::to_owned);
    assert_eq!(
        cr.as_deref(),
        Some(format!("bytes 10-19/{t}").as_str()),
        "HEAD with Range: Content-Range"
    );

    // No Range: the whole file, no auth needed.
    let (st, _, body) = fetch(&ts, &url, None).await;
    assert_eq!(st, 200, "GET assets.mp4 without Range");
    assert_same_bytes(&body, &data, "GET assets.mp4 without Range");
}

// ---------------------------------------------------------------------------------------------
// Upload tokens
// ---------------------------------------------------------------------------------------------

async fn create_token(ts: &TestServer, body: Value) -> Value {
    let resp = ts
        .http
        .post(format!("{}/upload-tokens", ts.url))
        .header("Authorization", ts.basic())
        .json(&body)
        .send()
        .await
        .expect("POST /upload-tokens");
    let st = resp.status().as_u16();
    let v: Value = resp.json().await.unwrap_or(Value::Null);
    assert_eq!(st, 200, "POST /upload-tokens {body} must answer 200; got {v}");
    assert!(
        v["token"].as_str().is_some_and(|t| t.starts_with("to") && t.len() > 2),
        "token must be a string starting with `to`: {v}"
    );
    v
}

async fn list_tokens(ts: &TestServer) -> Vec<String> {
    let resp = ts
        .http
        .get(format!("{}/upload-tokens", ts.url))
        .header("Authorization", ts.basic())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200, "GET /upload-tokens");
    let v: Value = resp.json().await.unwrap();
    assert!(v["pagination"].is_object(), "GET /upload-tokens has the pagination envelope: {v}");
    let data = v["data"]
        .as_array()
        .unwrap_or_else(|| panic!("GET /upload-tokens data is not an array: {v}"));
    assert_eq!(
        v["pagination"]["itemsTotal"],
        json!(data.len()),
        "itemsTotal on a single page: {v}"
    );
    data.iter().map(|t| t["token"].as_str().expect("token in list").to_owned()).collect()
}

/// `POST /upload?token=` with one file; `video_id` goes before or after the file.
async fn upload_with_token(
    ts: &TestServer,
    token: Option<&str>,
    range: Option<&str>,
    filename: &str,
    data: &[u8],
    video_id: Option<(&str, bool)>,
) -> reqwest::Response {
    let (ct, body) = match video_id {
        Some((id, true)) => multipart(&[("videoId", id)], Some(("file", filename, data)), &[]),
        Some((id, false)) => multipart(&[], Some(("file", filename, data)), &[("videoId", id)]),
        None => multipart(&[], Some(("file", filename, data)), &[]),
    };
    let url = match token {
        Some(t) => format!("{}/upload?token={t}", ts.url),
        None => format!("{}/upload", ts.url),
    };
    let mut req = ts.http.post(url).header("Content-Type", ct).body(body);
    if let Some(r) = range {
        req = req.header("Content-Range", r);
    }
    req.send().await.expect("POST /upload")
}

async fn json_201(resp: reqwest::Response, what: &str) -> Value {
    let st = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    assert_eq!(st, 201, "{what}: expected 201, body {text}");
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("{what}: body is not JSON: {text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_token_lifecycle() {
    let ts = spawn_server().await;
    let t1 = create_token(&ts, json!({"ttl": 3600})).await;
    assert_eq!(t1["ttl"], json!(3600), "ttl echoed: {t1}");
    let created =
        chrono::DateTime::parse_from_rfc3339(t1["createdAt"].as_str().expect("createdAt"))
            .expect("createdAt is RFC 3339");
    let expires = chrono::DateTime::parse_from_rfc3339(
        t1["expiresAt"].as_str().unwrap_or_else(|| panic!("ttl 3600 has expiresAt: {t1}")),
    )
    .expect("expiresAt is RFC 3339");
    assert_eq!((expires - created).num_seconds(), 3600, "expiresAt = createdAt + ttl: {t1}");

    let t2 = create_token(&ts, json!({"ttl": 0})).await;
    assert_eq!(t2["ttl"], json!(0), "{t2}");
    assert!(t2.get("expiresAt").is_none_or(Value::is_null), "ttl 0: expiresAt omitted: {t2}");
    let t3 = create_token(&ts, json!({})).await;
    assert_eq!(t3["ttl"], json!(0), "absent ttl means 0: {t3}");
    assert!(t3.get("expiresAt").is_none_or(Value::is_null), "absent ttl: expiresAt omitted: {t3}");

    let tokens: Vec<String> =
        [&t1, &t2, &t3].iter().map(|t| t["token"].as_str().unwrap().to_owned()).collect();
    assert!(
        tokens[0] != tokens[1] && tokens[1] != tokens[2] && tokens[0] != tokens[2],
        "tokens are distinct: {tokens:?}"
    );
    let mut listed = list_tokens(&ts).await;
    listed.sort();
    let mut want = tokens.clone();
    want.sort();
    assert_eq!(listed, want, "GET /upload-tokens lists the three tokens");

    for (t, created) in tokens.iter().zip([&t1, &t2, &t3]) {
        let resp = ts
            .http
            .get(format!("{}/upload-tokens/{t}", ts.url))
            .header("Authorization", ts.basic())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200, "GET /upload-tokens/{t}");
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["token"], created["token"], "GET /upload-tokens/{t}: {v}");
        assert_eq!(v["ttl"], created["ttl"], "GET /upload-tokens/{t}: {v}");
    }
    let resp = ts
        .http
        .get(format!("{}/upload-tokens/to0000nonexistent", ts.url))
        .header("Authorization", ts.basic())
        .send()
        .await
        .unwrap();
    check_problem(resp, 404, "resource-not-found", "GET an unknown upload token").await;

    // The token works before it is deleted.
    let data = pattern(2000, 1);
    let v = json_201(
        upload_with_token(&ts, Some(&tokens[0]), None, "before.mp4", &data, None).await,
        "upload with a live token",
    )
    .await;
    assert!(v["videoId"].is_string(), "upload with a live token answers a Video: {v}");

    let del = |t: String| {
        let req = ts
            .http
            .delete(format!("{}/upload-tokens/{t}", ts.url))
            .header("Authorization", ts.basic());
        async move { req.send().await.unwrap() }
    };
    let resp = del(tokens[0].clone()).await;
    assert_eq!(resp.status().as_u16(), 204, "DELETE /upload-tokens/{{t}}");
    assert!(resp.bytes().await.unwrap().is_empty(), "204 has no body");
    let resp = ts
        .http
        .get(format!("{}/upload-tokens/{}", ts.url, tokens[0]))
        .header("Authorization", ts.basic())
        .send()
        .await
        .unwrap();
    check_problem(resp, 404, "resource-not-found", "GET a deleted upload token").await;
    check_problem(
        del(tokens[0].clone()).await,
        404,
        "resource-not-found",
        "DELETE a deleted upload token",
    )
    .await;
    let listed = list_tokens(&ts).await;
    assert!(!listed.contains(&tokens[0]), "a deleted token is not listed: {listed:?}");
    assert_eq!(listed.len(), 2, "the other two tokens stay: {listed:?}");

    let videos = video_count(&ts).await;
    let resp = upload_with_token(&ts, Some(&tokens[0]), None, "after.mp4", &data, None).await;
    check_problem(
        resp,
        401,
        "authentication-invalid-upload-token",
        "POST /upload with a deleted token",
    )
    .await;
    assert_eq!(video_count(&ts).await, videos, "a refused /upload must not create a video");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_endpoint_needs_a_valid_token_and_no_authorization() {
    let ts = spawn_server().await;
    let data = pattern(3000, 2);
    let resp = upload_with_token(&ts, None, None, "a.mp4", &data, None).await;
    check_problem(resp, 401, "authentication-missing-upload-token", "POST /upload without ?token")
        .await;
    let resp =
        upload_with_token(&ts, Some("to1tcmSFHeYY5KzyhOqVKMKb"), None, "a.mp4", &data, None).await;
    check_problem(
        resp,
        401,
        "authentication-invalid-upload-token",
        "POST /upload with an unknown token",
    )
    .await;
    assert_eq!(video_count(&ts).await, 0, "refused /upload requests must not create videos");

    // A valid token works without Authorization, and a wrong Authorization is ignored.
    let token = create_token(&ts, json!({"ttl": 0})).await["token"].as_str().unwrap().to_owned();
    let (ct, body) = multipart_file("file", "holiday clip.mp4", &data);
    let resp = ts
        .http
        .post(format!("{}/upload?token={token}", ts.url))
        .header("Authorization", basic_auth("not-the-key"))
        .header("Content-Type", ct)
        .body(body)
        .send()
        .await
        .unwrap();
    let v =
        json_201(resp, "/upload?token= with a wrong Authorization header (must be ignored)").await;
    let id = v["videoId"].as_str().unwrap_or_else(|| panic!("no videoId: {v}")).to_owned();
    assert_full_video(&v, &id, &ts, "single-request /upload");
    assert_eq!(
        v["title"],
        json!("holiday clip.mp4"),
        "a video created by /upload is titled with the file name: {v}"
    );
    assert_asset_is(&ts, &v, &data, "single-request /upload").await;
    let ingest = ingest_of(&ts, &id).await;
    assert_eq!(ingest["status"], json!("uploaded"), "{ingest}");
    assert_eq!(video_count(&ts).await, 1, "one video made by /upload");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_token_upload_chained_by_video_id() {
    let ts = spawn_server().await;
    let token = create_token(&ts, json!({"ttl": 600})).await["token"].as_str().unwrap().to_owned();
    let data = three_chunk_file(12);
    let [a, b, c] = parts_of(&data);

    let v = json_201(
        upload_with_token(&ts, Some(&token), Some("part 1/3"), "trip.mp4", a, None).await,
        "/upload part 1/3",
    )
    .await;
    let id = v["videoId"]
        .as_str()
        .unwrap_or_else(|| panic!("first chunk answers a videoId: {v}"))
        .to_owned();
    assert_eq!(
        v,
        json!({ "videoId": id }),
        "a non-completing /upload chunk answers {{\"videoId\"}} only"
    );
    let (st, video) = get_video(&ts, &id).await;
    assert_eq!(st, 200, "the video made by the first /upload chunk exists");
    assert_eq!(video["title"], json!("trip.mp4"), "title = the file name: {video}");

    // videoId BEFORE the file.
    let v = json_201(
        upload_with_token(&ts, Some(&token), Some("part 2/3"), "trip.mp4", b, Some((&id, true)))
            .await,
        "/upload part 2/3",
    )
    .await;
    assert_eq!(
        v,
        json!({ "videoId": id }),
        "part 2/3 with videoId before the file goes to the same video"
    );
    let ingest = ingest_of(&ts, &id).await;
    assert_eq!(ingest["receivedParts"], json!({"parts": [1, 2], "total": 3}), "{ingest}");

    // videoId AFTER the file.
    let v = json_201(
        upload_with_token(&ts, Some(&token), Some("part 3/3"), "trip.mp4", c, Some((&id, false)))
            .await,
        "/upload part 3/3",
    )
    .await;
    assert_full_video(&v, &id, &ts, "/upload part 3/3 with videoId after the file");
    let ingest = ingest_of(&ts, &id).await;
    assert_eq!(ingest["status"], json!("uploaded"), "{ingest}");
    assert_eq!(ingest["receivedParts"], json!({"parts": [1, 2, 3], "total": 3}), "{ingest}");
    assert_asset_is(&ts, &v, &data, "/upload chained by videoId").await;
    assert_eq!(video_count(&ts).await, 1, "a chained /upload session makes exactly one video");

    // Into a video made with POST /videos, in bytes mode, videoId after then before the file.
    let id2 = ts.create_video("made first").await;
    let data2 = three_chunk_file(13);
    let [a, b, c] = parts_of(&data2);
    let t = data2.len();
    let v = json_201(
        upload_with_token(
            &ts,
            Some(&token),
            Some(&format!("bytes 0-{}/{t}", P - 1)),
            "x.mp4",
            a,
            Some((&id2, false)),
        )
        .await,
        "/upload bytes chunk 1 into an existing video",
    )
    .await;
    assert_eq!(v, json!({ "videoId": id2 }), "bytes chunk 1 into the existing video");
    let v = json_201(
        upload_with_token(
            &ts,
            Some(&token),
            Some(&format!("bytes {}-{}/{t}", 2 * P, t - 1)),
            "x.mp4",
            c,
            Some((&id2, true)),
        )
        .await,
        "/upload bytes chunk 3",
    )
    .await;
    assert_eq!(v, json!({ "videoId": id2 }), "bytes chunk 3 into the existing video");
    let v = json_201(
        upload_with_token(
            &ts,
            Some(&token),
            Some(&format!("bytes {P}-{}/{t}", 2 * P - 1)),
            "x.mp4",
            b,
            Some((&id2, true)),
        )
        .await,
        "/upload bytes chunk 2",
    )
    .await;
    assert_full_video(&v, &id2, &ts, "/upload completing bytes chunk");
    assert_eq!(v["title"], json!("made first"), "an existing video keeps its title");
    assert_asset_is(&ts, &v, &data2, "/upload bytes into an existing video").await;
    assert_eq!(video_count(&ts).await, 2, "no extra video was made");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_upload_token_is_refused() {
    let ts = spawn_server().await;
    let short = create_token(&ts, json!({"ttl": 1})).await["token"].as_str().unwrap().to_owned();
    let long = create_token(&ts, json!({"ttl": 3600})).await["token"].as_str().unwrap().to_owned();
    tokio::time::sleep(std::time::Duration::from_millis(2200)).await;

    let data = pattern(1500, 4);
    let resp = upload_with_token(&ts, Some(&short), None, "late.mp4", &data, None).await;
    check_problem(
        resp,
        401,
        "authentication-invalid-upload-token",
        "POST /upload with a token past its 1 s ttl",
    )
    .await;
    assert_eq!(video_count(&ts).await, 0, "an expired token must not create a video");
    let listed = list_tokens(&ts).await;
    assert_eq!(
        listed,
        vec![long.clone()],
        "only the active token is listed after the 1 s one expired"
    );

    let v = json_201(
        upload_with_token(&ts, Some(&long), None, "ok.mp4", &data, None).await,
        "upload with the 3600 s token",
    )
    .await;
    assert!(v["videoId"].is_string(), "{v}");
}
