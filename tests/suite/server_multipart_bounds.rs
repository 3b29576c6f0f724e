//! Issue #11, item 18: one upload request can no longer fill the server's memory with text fields.
//!
//! A multipart body may carry at most 16 text fields besides the file, 64 KiB of them in all; past
//! either bound the request is refused with `400 invalid-attribute` while the rest of the body is
//! read and dropped. Boundaries and part headers are bounded too (1 MiB), since the parser holds a
//! part's header block whole. Checked over real HTTP, and on the real binary for its peak memory.

use crate::common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{basic_auth, multipart, pattern, spawn_server, spawn_server_process, KEY, MIB};
use serde_json::{json, Value};

const BOUNDARY: &str = "avbatchtestboundary7c1e0f";

async fn upload_token(http: &reqwest::Client, url: &str) -> String {
    let resp = http
        .post(format!("{url}/upload-tokens"))
        .header("Authorization", basic_auth(KEY))
        .json(&json!({"ttl": 0}))
        .send()
        .await;
    let token: Value = resp.expect("POST /upload-tokens").json().await.expect("a token as JSON");
    token["token"].as_str().expect("a token").to_owned()
}

async fn post_upload(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    content_type: String,
    body: reqwest::Body,
) -> (u16, Value) {
    let resp = http
        .post(format!("{url}/upload?token={token}"))
        .header("Content-Type", content_type)
        .body(body)
        .send()
        .await;
    let resp = resp.expect("POST /upload reaches the server");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn text_fields_are_bounded_in_number_and_size_and_a_normal_upload_still_works() {
    let s = spawn_server().await;
    let token = upload_token(&s.http, &s.url).await;
    let data = pattern(1000, 3);

    // A normal delegated upload into an existing video: the `videoId` field is read.
    let id = s.create_video("target").await;
    let (ct, body) = multipart(&[("videoId", &id)], Some(("file", "clip.mp4", &data)), &[]);
    let (status, video) = post_upload(&s.http, &s.url, &token, ct, body.into()).await;
    assert_eq!(status, 201, "{video}");
    assert_eq!(video["videoId"], id.as_str(), "the chunk went to the video named by the field");
    assert!(s.source_of(&id).await == data);

    // 16 text fields (the bound) pass; the 17th is refused, and no video is made.
    let names: Vec<String> = (0..17).map(|i| format!("extra{i}")).collect();
    let fields: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "x")).collect();
    let (ct, body) = multipart(&fields[..16], Some(("file", "sixteen.mp4", &data)), &[]);
    let (status, video) = post_upload(&s.http, &s.url, &token, ct, body.into()).await;
    assert_eq!(status, 201, "16 text fields are allowed: {video}");
    let before = s.all_videos().await.len();
    let (ct, body) = multipart(&fields, Some(("file", "seventeen.mp4", &data)), &[]);
    let (status, problem) = post_upload(&s.http, &s.url, &token, ct, body.into()).await;
    assert_eq!(status, 400, "17 text fields: {problem}");
    assert_eq!(problem["type"], "https://docs.api.video/reference/invalid-attribute", "{problem}");
    assert_eq!(problem["name"], "extra16", "the field past the bound is named: {problem}");

    // 64 KiB of values in all: one field of exactly 64 KiB passes, one more byte anywhere does not.
    let full = "v".repeat(64 * 1024);
    let (ct, body) = multipart(&[("note", &full)], Some(("file", "full.mp4", &data)), &[]);
    let (status, video) = post_upload(&s.http, &s.url, &token, ct, body.into()).await;
    assert_eq!(status, 201, "64 KiB of text is allowed: {video}");
    let half = "v".repeat(32 * 1024);
    let (ct, body) =
        multipart(&[("a", &half), ("b", &half)], Some(("file", "over.mp4", &data)), &[("c", "1")]);
    let (status, problem) = post_upload(&s.http, &s.url, &token, ct, body.into()).await;
    assert_eq!(status, 400, "64 KiB + 1 byte of text: {problem}");
    assert_eq!(problem["type"], "https://docs.api.video/reference/invalid-attribute", "{problem}");
    assert_eq!(problem["name"], "c", "{problem}");
    assert_eq!(
        s.all_videos().await.len(),
        before + 1,
        "only the 64 KiB upload made a video; the refused ones made none"
    );

    // The same bounds on `POST /videos/{id}/source`, where text fields are ignored.
    let id = s.create_video("direct").await;
    let (ct, body) = multipart(&fields, Some(("file", "direct.mp4", &data)), &[]);
    let resp = s
        .http
        .post(format!("{}/videos/{id}/source", s.url))
        .header("Authorization", s.basic())
        .header("Content-Type", ct)
        .body(body);
    let resp = resp.send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    assert_eq!(s.status_of(&id).await["ingest"].get("status"), None, "nothing was stored");
}

/// A body of `fields` text fields of `size` bytes each (names all different, so none replaces
/// another), then a small file, as a stream: the test never holds the body.
fn field_bomb(fields: usize, size: usize) -> reqwest::Body {
    let value = Bytes::from(vec![b'x'; size]);
    let parts = (0..fields).flat_map(move |i| {
        let head = Bytes::from(format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"f{i}\"\r\n\r\n"
        ));
        [head, value.clone(), Bytes::from_static(b"\r\n")]
    });
    let file = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"bomb.mp4\"\r\n\
         \r\n0123456789\r\n--{BOUNDARY}--\r\n"
    );
    let stream =
        futures::stream::iter(parts.chain([Bytes::from(file)]).map(Ok::<_, std::io::Error>));
    reqwest::Body::wrap_stream(stream)
}

/// Peak resident memory of a process (`VmHWM`), in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc/PID/status");
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).expect("a VmHWM line");
    line.split_whitespace().nth(1).and_then(|kb| kb.parse::<u64>().ok()).expect("VmHWM in kB")
        * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_field_bombs_at_once_keep_the_server_small() {
    let data = tempfile::tempdir().unwrap();
    let server = spawn_server_process(data.path(), &[]);
    let http = reqwest::Client::new();
    let token = upload_token(&http, &server.url).await;
    let pid = server.child.id();
    let idle = peak_rss(pid);

    // 3 500 fields of 64 KiB: 219 MiB per request, under the 264 MiB a multipart body may reach.
    let started = Instant::now();
    let bombs = (0..10).map(|_| {
        let ct = format!("multipart/form-data; boundary={BOUNDARY}");
        let (http, url, token) = (http.clone(), server.url.clone(), token.clone());
        async move {
            tokio::time::timeout(
                Duration::from_secs(120),
                post_upload(&http, &url, &token, ct, field_bomb(3500, 64 * 1024)),
            )
            .await
        }
    });
    let answers = futures::future::join_all(bombs).await;
    let peak = peak_rss(pid);
    println!(
        "peak RSS of avbatch serve: {:.1} MiB idle, {:.1} MiB after ten 219 MiB field bombs at \
         once ({:.1} s)",
        idle as f64 / MIB as f64,
        peak as f64 / MIB as f64,
        started.elapsed().as_secs_f64()
    );
    for answer in answers {
        let (status, problem) = answer.expect("each bomb is answered within 120 s");
        assert_eq!(status, 400, "a field bomb is refused: {problem}");
        assert_eq!(
            problem["type"], "https://docs.api.video/reference/invalid-attribute",
            "{problem}"
        );
    }
    assert!(
        peak < 128 * MIB as u64,
        "peak RSS {:.1} MiB: the text fields were kept in memory",
        peak as f64 / MIB as f64
    );
    let list: Value = http
        .get(format!("{}/videos", server.url))
        .header("Authorization", basic_auth(KEY))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["pagination"]["itemsTotal"], 0, "no bomb made a video: {list}");
}

/// A body whose first part's header block never ends: `size` bytes of one header line.
fn header_bomb(size: usize) -> reqwest::Body {
    let head = Bytes::from(format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"h.mp4\"\r\n\
         X-Pad: "
    ));
    let pad = Bytes::from(vec![b'a'; MIB]);
    let stream = futures::stream::iter(
        std::iter::once(head)
            .chain(std::iter::repeat_n(pad, size / MIB))
            .map(Ok::<_, std::io::Error>),
    );
    reqwest::Body::wrap_stream(stream)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn part_headers_that_never_end_are_refused_and_keep_the_server_small() {
    let data = tempfile::tempdir().unwrap();
    let server = spawn_server_process(data.path(), &[]);
    let http = reqwest::Client::new();
    let token = upload_token(&http, &server.url).await;
    let pid = server.child.id();

    // Ten bodies of 200 MiB whose first part header never ends.
    let started = Instant::now();
    let bombs = (0..10).map(|_| {
        let ct = format!("multipart/form-data; boundary={BOUNDARY}");
        let (http, url, token) = (http.clone(), server.url.clone(), token.clone());
        async move {
            let sent = http
                .post(format!("{url}/upload?token={token}"))
                .header("Content-Type", ct)
                .body(header_bomb(200 * MIB))
                .send();
            match tokio::time::timeout(Duration::from_secs(120), sent)
                .await
                .expect("each bomb ends within 120 s")
            {
                // Refused at once: the answer, or the connection closed under the rest of the body.
                Ok(resp) => Some((
                    resp.status().as_u16(),
                    resp.json::<Value>().await.unwrap_or(Value::Null),
                )),
                Err(_) => None,
            }
        }
    });
    let answers = futures::future::join_all(bombs).await;
    let peak = peak_rss(pid);
    println!(
        "peak RSS of avbatch serve: {:.1} MiB after ten 200 MiB part headers at once ({:.1} s)",
        peak as f64 / MIB as f64,
        started.elapsed().as_secs_f64()
    );
    let answered: Vec<_> = answers.into_iter().flatten().collect();
    println!("{} of 10 read their 400 before the connection closed", answered.len());
    for (status, problem) in answered {
        assert_eq!(status, 400, "{problem}");
        assert_eq!(
            problem["type"], "https://docs.api.video/reference/uploaded-file-invalid-file",
            "{problem}"
        );
    }
    assert!(
        peak < 128 * MIB as u64,
        "peak RSS {:.1} MiB: the part headers were kept in memory",
        peak as f64 / MIB as f64
    );

    // Big parts with ordinary framing still go through, in one request and through the token.
    let big = pattern(48 * MIB, 21);
    let (ct, body) = multipart(&[("videoId", "")], Some(("file", "big.mp4", &big)), &[]);
    let (status, video) = post_upload(&http, &server.url, &token, ct, body.into()).await;
    assert_eq!(status, 201, "{video}");
    let back = http
        .get(video["assets"]["mp4"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(back.as_ref() == big.as_slice());
}
