//! The binary's memory under hostile upload bodies (issue #11, item 18): ten bodies of thousands
//! of text fields at once, and part headers that never end, keep `avbatch serve` small (its peak
//! RSS), and a normal upload still works after. The bounds themselves, over HTTP: the double's
//! `bounds` tests.

use crate::common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{
    basic_auth, multipart, pattern, post_upload_at as post_upload, spawn_server_process,
    upload_token_at as upload_token, KEY, MIB,
};
use serde_json::Value;

const BOUNDARY: &str = "avbatchtestboundary7c1e0f";

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
