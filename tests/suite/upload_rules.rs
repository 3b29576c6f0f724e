//! Every refusal of `POST /videos/{id}/source` (docs/server-contract.md, "Upload"), driven over
//! real HTTP: each case breaks one rule, gets the documented status and problem body, and leaves
//! the video's upload status exactly as it was.

use crate::common;

use common::{multipart, multipart_file, pattern, spawn_server, TestServer, MIB};
use serde_json::{json, Value};

/// Smallest chunk but the last: 5 MiB.
const P: usize = 5 * MIB;
const TYPE_BASE: &str = "https://docs.api.video/reference/";

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// What one request carries.
#[derive(Clone, Debug)]
enum Form {
    /// One file part of `len` bytes (field `file`, filename `clip.mp4`), content from `seed`.
    File { len: usize, seed: u8 },
    /// Only text fields, no file.
    NoFile,
    /// Two file parts.
    TwoFiles,
    /// A file part with zero bytes.
    EmptyFile,
    /// A file part called `file` that has no `filename`, plus a file part with a filename.
    FileFieldPlusNamedFile,
}

fn file(len: usize) -> Form {
    Form::File { len, seed: 1 }
}

fn file_seeded(len: usize, seed: u8) -> Form {
    Form::File { len, seed }
}

/// A raw multipart body (the helper in `common` always gives a file a `filename`).
fn raw_multipart(parts: &[(&str, Option<&str>, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "rawboundary93f0a1c4";
    let mut body = Vec::new();
    for (name, filename, data) in parts {
        let disp = match filename {
            Some(f) => format!("form-data; name=\"{name}\"; filename=\"{f}\""),
            None => format!("form-data; name=\"{name}\""),
        };
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: {disp}\r\n\r\n").as_bytes(),
        );
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

fn build(form: &Form) -> (String, Vec<u8>) {
    match form {
        Form::File { len, seed } => multipart_file("file", "clip.mp4", &pattern(*len, *seed)),
        Form::NoFile => {
            multipart(&[("videoId", "vi_whatever"), ("title", "not a file")], None, &[])
        }
        Form::TwoFiles => {
            let a = pattern(1000, 1);
            let b = pattern(1000, 2);
            raw_multipart(&[("file", Some("a.mp4"), &a), ("other", Some("b.mp4"), &b)])
        }
        Form::EmptyFile => multipart_file("file", "empty.mp4", &[]),
        Form::FileFieldPlusNamedFile => {
            let a = pattern(1000, 1);
            let b = pattern(1000, 2);
            raw_multipart(&[("file", None, &a), ("second", Some("b.mp4"), &b)])
        }
    }
}

/// Sends one chunk to `POST /videos/{id}/source`.
async fn send(ts: &TestServer, id: &str, range: Option<&str>, form: &Form) -> reqwest::Response {
    let (ct, body) = build(form);
    send_raw(ts, id, range, ct, body).await
}

async fn send_raw(
    ts: &TestServer,
    id: &str,
    range: Option<&str>,
    ct: String,
    body: Vec<u8>,
) -> reqwest::Response {
    let mut req = ts
        .http
        .post(format!("{}/videos/{id}/source", ts.url))
        .header("Authorization", ts.basic())
        .header("Content-Type", ct)
        .body(body);
    if let Some(r) = range {
        req = req.header("Content-Range", r);
    }
    req.send().await.unwrap_or_else(|e| {
        panic!("POST /videos/{id}/source (Content-Range {range:?}) failed at the HTTP level: {e}")
    })
}

/// Checks a problem answer; returns a description of every mismatch.
async fn check_problem(resp: reqwest::Response, status: u16, slug: &str) -> Result<Value, String> {
    let got_status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("<none>")
        .to_owned();
    let text = resp.text().await.map_err(|e| format!("reading the error body failed: {e}"))?;
    let mut errs = Vec::new();
    if got_status != status {
        errs.push(format!("HTTP status {got_status}, expected {status}"));
    }
    if !ct.starts_with("application/problem+json") {
        errs.push(format!("Content-Type {ct:?}, expected application/problem+json"));
    }
    let body: Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(_) => {
            errs.push(format!("body is not JSON: {text:?}"));
            return Err(errs.join("; "));
        }
    };
    let want_type = format!("{TYPE_BASE}{slug}");
    if body["type"] != json!(want_type) {
        errs.push(format!("type {}, expected {want_type:?}", body["type"]));
    }
    if body["status"] != json!(status) {
        errs.push(format!("body status {}, expected {status}", body["status"]));
    }
    if body["title"].as_str().is_none_or(str::is_empty) {
        errs.push(format!("body has no non-empty title: {body}"));
    }
    if errs.is_empty() {
        Ok(body)
    } else {
        Err(format!("{} (body {text})", errs.join("; ")))
    }
}

/// One rule case: chunks that must be accepted first, then the chunk that must be refused.
struct Case {
    name: &'static str,
    setup: Vec<(Option<String>, Form)>,
    range: Option<String>,
    form: Form,
    status: u16,
    slug: &'static str,
}

fn case(
    name: &'static str,
    setup: &[(&str, Form)],
    range: &str,
    form: Form,
    slug: &'static str,
) -> Case {
    Case {
        name,
        setup: setup.iter().map(|(r, f)| (Some(r.to_string()), f.clone())).collect(),
        range: Some(range.to_owned()),
        form,
        status: 400,
        slug,
    }
}

/// Runs one case on a fresh video. Errors name the case, what was sent and what came back.
async fn run_case(ts: &TestServer, c: &Case) -> Result<(), String> {
    let id = ts.create_video(c.name).await;
    for (i, (range, form)) in c.setup.iter().enumerate() {
        let resp = send(ts, &id, range.as_deref(), form).await;
        let st = resp.status().as_u16();
        if st != 201 {
            let text = resp.text().await.unwrap_or_default();
            return Err(format!(
                "[{}] setup chunk #{i} (Content-Range {range:?}) must be accepted with 201, got \
                 {st}: {text}",
                c.name
            ));
        }
    }
    let before = ts.status_of(&id).await;
    let resp = send(ts, &id, c.range.as_deref(), &c.form).await;
    let checked = check_problem(resp, c.status, c.slug).await;
    let after = ts.status_of(&id).await;
    let mut errs = Vec::new();
    if let Err(e) = checked {
        errs.push(format!("expected {} {}: {e}", c.status, c.slug));
    }
    if before != after {
        errs.push(format!("the refused chunk changed /status: before {before}, after {after}"));
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "[{}] sent Content-Range {:?} with {:?}: {}",
            c.name,
            c.range,
            short(&c.form),
            errs.join(" | ")
        ))
    }
}

fn short(f: &Form) -> String {
    match f {
        Form::File { len, .. } => format!("file of {len} bytes"),
        other => format!("{other:?}"),
    }
}

async fn run_cases(ts: &TestServer, cases: &[Case]) {
    assert!(!cases.is_empty());
    let mut failures = Vec::new();
    for c in cases {
        if let Err(e) = run_case(ts, c).await {
            failures.push(e);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// A video's mp4 asset URL, from the Video object.
fn mp4_url(video: &Value) -> String {
    video["assets"]["mp4"]
        .as_str()
        .unwrap_or_else(|| panic!("Video has no assets.mp4: {video}"))
        .to_owned()
}

async fn get_bytes(ts: &TestServer, url: &str) -> (u16, Vec<u8>) {
    let resp = ts.http.get(url).send().await.expect("GET asset");
    let st = resp.status().as_u16();
    (st, resp.bytes().await.expect("asset body").to_vec())
}

// ---------------------------------------------------------------------------------------------
// Content-Range grammar
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_content_range_variants() {
    let ts = spawn_server().await;
    let variants = [
        "",
        "part",
        "part ",
        "part 1",
        "part /2",
        "part 1/",
        "part -1/2",
        "part +1/2",
        "part 1/2/3",
        "part 1-2/3",
        "part a/2",
        "part 1/b",
        "part 1/**",
        "part 1.5/2",
        "parts 1/2",
        "chunk 1/2",
        "1/2",
        "bytes",
        "bytes 0-9",
        "bytes 9/10",
        "bytes 0-/10",
        "bytes -9/10",
        "bytes a-b/c",
        "bytes 0-9/x",
        "bytes 0-9/*",
        "bytes 0-9-10/11",
        "bytes=0-9/10",
        "bytes 0 - 9/10",
    ];
    let mut cases = Vec::new();
    for v in variants {
        cases.push(Case {
            name: Box::leak(format!("malformed {v:?} on a fresh video").into_boxed_str()),
            setup: vec![],
            range: Some(v.to_owned()),
            form: file(1000),
            status: 400,
            slug: "video-content-range-malformed",
        });
    }
    // Also in the middle of a part session and of a bytes session.
    cases.push(case(
        "malformed after part 1/* was accepted",
        &[("part 1/*", file(P))],
        "part 2",
        file(P),
        "video-content-range-malformed",
    ));
    cases.push(case(
        "malformed after bytes 0-(P-1)/3P was accepted",
        &[(&format!("bytes 0-{}/{}", P - 1, 3 * P), file(P))],
        &format!("bytes {}-{}", P, 2 * P - 1),
        file(P),
        "video-content-range-malformed",
    ));
    run_cases(&ts, &cases).await;
}

// ---------------------------------------------------------------------------------------------
// Session-level rules: already uploaded, already initiated, mode mixing
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn already_uploaded_already_initiated_and_mode_mixing() {
    let ts = spawn_server().await;
    let total3 = 3 * P;
    let b0 = format!("bytes 0-{}/{total3}", P - 1);
    let b1 = format!("bytes {}-{}/{total3}", P, 2 * P - 1);
    let small_total = 1234;
    let cases = vec![
        // Already uploaded: whole-file upload, then anything.
        Case {
            name: "single request after a complete single-request upload",
            setup: vec![(None, file(1234))],
            range: None,
            form: file(1000),
            status: 400,
            slug: "video-source-already-uploaded",
        },
        Case {
            name: "part 1/1 after a complete single-request upload",
            setup: vec![(None, file(1234))],
            range: Some("part 1/1".into()),
            form: file(1000),
            status: 400,
            slug: "video-source-already-uploaded",
        },
        Case {
            name: "bytes chunk after a complete single-request upload",
            setup: vec![(None, file(1234))],
            range: Some("bytes 0-999/1000".into()),
            form: file(1000),
            status: 400,
            slug: "video-source-already-uploaded",
        },
        Case {
            name: "single request after a complete part 1/1 upload",
            setup: vec![(Some("part 1/1".into()), file(1234))],
            range: None,
            form: file(1000),
            status: 400,
            slug: "video-source-already-uploaded",
        },
        case(
            "part 1/1 again after a complete part 1/1 upload",
            &[("part 1/1", file(1234))],
            "part 1/1",
            file(1234),
            "video-source-already-uploaded",
        ),
        case(
            "part 2/2 after a complete part 1/*, part 2/2 upload",
            &[("part 1/*", file(P)), ("part 2/2", file(10))],
            "part 2/2",
            file(10),
            "video-source-already-uploaded",
        ),
        case(
            "bytes chunk after a complete bytes upload",
            &[(&format!("bytes 0-{}/{}", small_total - 1, small_total), file(small_total))],
            &format!("bytes 0-{}/{}", small_total - 1, small_total),
            file(small_total),
            "video-source-already-uploaded",
        ),
        // Already initiated: no Content-Range once a chunked session started.
        Case {
            name: "no Content-Range after part 1/* was accepted",
            setup: vec![(Some("part 1/*".into()), file(P))],
            range: None,
            form: file(1000),
            status: 400,
            slug: "video-content-range-already-initiated",
        },
        Case {
            name: "no Content-Range after part 1/3 was accepted",
            setup: vec![(Some("part 1/3".into()), file(P))],
            range: None,
            form: file(1000),
            status: 400,
            slug: "video-content-range-already-initiated",
        },
        Case {
            name: "no Content-Range after a bytes chunk was accepted",
            setup: vec![(Some(b0.clone()), file(P))],
            range: None,
            form: file(1000),
            status: 400,
            slug: "video-content-range-already-initiated",
        },
        // Mode mixing.
        case(
            "bytes chunk on a part session",
            &[("part 1/*", file(P))],
            &b1,
            file(P),
            "video-content-range-started-with-part",
        ),
        case(
            "bytes chunk on a part session with a known total",
            &[("part 1/3", file(P))],
            &b1,
            file(P),
            "video-content-range-started-with-part",
        ),
        case(
            "part chunk on a bytes session",
            &[(&b0, file(P))],
            "part 2/*",
            file(P),
            "video-content-range-started-with-bytes",
        ),
        case(
            "part N/M chunk on a bytes session",
            &[(&b0, file(P))],
            "part 2/3",
            file(P),
            "video-content-range-started-with-bytes",
        ),
    ];
    run_cases(&ts, &cases).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_chunk_on_a_complete_video_keeps_the_source() {
    let ts = spawn_server().await;
    let id = ts.create_video("keep source").await;
    let original = pattern(4321, 9);
    let (ct, body) = multipart_file("file", "clip.mp4", &original);
    let resp = send_raw(&ts, &id, None, ct, body).await;
    assert_eq!(resp.status().as_u16(), 201, "single-request upload of 4321 bytes must answer 201");
    let video: Value = resp.json().await.expect("Video JSON");
    let url = mp4_url(&video);
    let before = ts.status_of(&id).await;

    let (ct, body) = multipart_file("file", "clip.mp4", &pattern(999, 3));
    let resp = send_raw(&ts, &id, None, ct, body).await;
    check_problem(resp, 400, "video-source-already-uploaded")
        .await
        .unwrap_or_else(|e| panic!("second single upload: {e}"));
    assert_eq!(ts.status_of(&id).await, before, "a refused second upload must not change /status");
    let (st, got) = get_bytes(&ts, &url).await;
    assert_eq!(st, 200, "GET {url} after the refused second upload");
    assert!(
        got == original,
        "assets.mp4 must still be the first upload (got {} bytes, expected 4321)",
        got.len()
    );
}

// ---------------------------------------------------------------------------------------------
// Part mode
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn part_mode_rules() {
    let ts = spawn_server().await;
    let pre = "video-content-range-by-part-";
    let slug = |s: &str| -> &'static str { Box::leak(format!("{pre}{s}").into_boxed_str()) };
    let cases = vec![
        case("part 0/* on a fresh video", &[], "part 0/*", file(P), slug("part-zero")),
        case("part 0/3 on a fresh video", &[], "part 0/3", file(P), slug("part-zero")),
        case(
            "part 0/* after part 1/*",
            &[("part 1/*", file(P))],
            "part 0/*",
            file(P),
            slug("part-zero"),
        ),
        // M=0 necessarily also makes N > M; total-parts-zero is checked first.
        case("part 1/0 on a fresh video", &[], "part 1/0", file(P), slug("total-parts-zero")),
        case(
            "part 10001/* on a fresh video",
            &[],
            "part 10001/*",
            file(P),
            slug("part-too-high-allowed"),
        ),
        case(
            "part 10001/* after part 1/*",
            &[("part 1/*", file(P))],
            "part 10001/*",
            file(P),
            slug("part-too-high-allowed"),
        ),
        case(
            "part 1/10001 on a fresh video",
            &[],
            "part 1/10001",
            file(P),
            slug("total-parts-too-high"),
        ),
        case(
            "part 2/4 after part 1/3",
            &[("part 1/3", file(P))],
            "part 2/4",
            file(P),
            slug("different-total-parts"),
        ),
        case(
            "part 2/2 after part 1/3",
            &[("part 1/3", file(P))],
            "part 2/2",
            file(10),
            slug("different-total-parts"),
        ),
        case(
            "part 2/4 after part 3/3 and part 1/*",
            &[("part 3/3", file(10)), ("part 1/*", file(P))],
            "part 2/4",
            file(P),
            slug("different-total-parts"),
        ),
        case(
            "part 4/* after part 1/3",
            &[("part 1/3", file(P))],
            "part 4/*",
            file(P),
            slug("part-too-high-total"),
        ),
        case("part 4/3 on a fresh video", &[], "part 4/3", file(P), slug("part-too-high-total")),
        case(
            "part 1/2 after part 3/*",
            &[("part 3/*", file(P))],
            "part 1/2",
            file(P),
            slug("total-parts-too-low"),
        ),
        case(
            "part 2/2 after part 1/* and part 3/*",
            &[("part 1/*", file(P)), ("part 3/*", file(P))],
            "part 2/2",
            file(10),
            slug("total-parts-too-low"),
        ),
        case(
            "part 1/* again",
            &[("part 1/*", file(P))],
            "part 1/*",
            file_seeded(P, 5),
            slug("part-already-sent"),
        ),
        case(
            "part 1/3 again",
            &[("part 1/3", file(P))],
            "part 1/3",
            file_seeded(P, 5),
            slug("part-already-sent"),
        ),
        case(
            "part 2/* again after part 1/*, 2/*",
            &[("part 1/*", file(P)), ("part 2/*", file(P))],
            "part 2/*",
            file(P),
            slug("part-already-sent"),
        ),
        case(
            "part 3/3 again",
            &[("part 3/3", file(10))],
            "part 3/3",
            file(10),
            slug("part-already-sent"),
        ),
        case(
            "part 1/* with 5 MiB - 1 bytes",
            &[],
            "part 1/*",
            file(P - 1),
            slug("uploaded-file-too-small"),
        ),
        case(
            "part 1/3 with 5 MiB - 1 bytes",
            &[],
            "part 1/3",
            file(P - 1),
            slug("uploaded-file-too-small"),
        ),
        case("part 1/2 with 1 byte", &[], "part 1/2", file(1), slug("uploaded-file-too-small")),
        case(
            "part 2/* with 1 byte after part 1/3 (2 is not the known total)",
            &[("part 1/3", file(P))],
            "part 2/*",
            file(1),
            slug("uploaded-file-too-small"),
        ),
    ];
    run_cases(&ts, &cases).await;
}

/// A refused duplicate part must not replace the stored one: finish the upload and compare.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_duplicate_part_keeps_the_first_one() {
    let ts = spawn_server().await;
    let id = ts.create_video("dup part").await;
    let part1 = pattern(P, 11);
    let part2 = pattern(77, 12);
    let (ct, body) = multipart_file("file", "clip.mp4", &part1);
    assert_eq!(
        send_raw(&ts, &id, Some("part 1/*"), ct, body).await.status().as_u16(),
        201,
        "part 1/* of 5 MiB"
    );
    let before = ts.status_of(&id).await;
    let (ct, body) = multipart_file("file", "clip.mp4", &pattern(P, 99));
    let resp = send_raw(&ts, &id, Some("part 1/2"), ct, body).await;
    check_problem(resp, 400, "video-content-range-by-part-part-already-sent")
        .await
        .unwrap_or_else(|e| panic!("resent part 1/2: {e}"));
    assert_eq!(ts.status_of(&id).await, before, "refused duplicate part changed /status");
    let (ct, body) = multipart_file("file", "clip.mp4", &part2);
    let resp = send_raw(&ts, &id, Some("part 2/2"), ct, body).await;
    assert_eq!(resp.status().as_u16(), 201, "part 2/2 completes the upload");
    let video: Value = resp.json().await.expect("Video");
    let (st, got) = get_bytes(&ts, &mp4_url(&video)).await;
    assert_eq!(st, 200, "assets.mp4 after completion");
    let mut want = part1;
    want.extend_from_slice(&part2);
    assert_eq!(got.len(), want.len(), "reassembled size");
    assert!(got == want, "the refused duplicate part 1 must not have replaced the first part 1");
}

// ---------------------------------------------------------------------------------------------
// Bytes mode
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_mode_rules() {
    let ts = spawn_server().await;
    let pre = "video-content-range-by-bytes-";
    let slug = |s: &str| -> &'static str { Box::leak(format!("{pre}{s}").into_boxed_str()) };
    const MAX_TOTAL: u64 = 52_428_800_000;
    let p = P as u64;
    let t3 = 3 * p;
    let first = format!("bytes 0-{}/{t3}", p - 1);
    let middle = format!("bytes {}-{}/{t3}", p, 2 * p - 1);
    let cases = vec![
        // TOTAL=0 necessarily also makes TO >= TOTAL; total-bytes-zero is checked first.
        case("bytes 0-0/0", &[], "bytes 0-0/0", file(1), slug("total-bytes-zero")),
        case(
            "total over 52428800000",
            &[],
            &format!("bytes 0-{}/{}", p - 1, MAX_TOTAL + 1),
            file(P),
            slug("total-bytes-too-high"),
        ),
        // TO > 52428799999 with TOTAL <= 52428800000 necessarily also makes TO >= TOTAL.
        case(
            "TO = 52428800000",
            &[],
            &format!("bytes {}-{}/{}", MAX_TOTAL - p + 1, MAX_TOTAL, MAX_TOTAL),
            file(P),
            slug("to-byte-too-high-allowed"),
        ),
        case(
            "FROM > TO",
            &[],
            &format!("bytes {}-{}/{t3}", p, p - 1),
            file(1),
            slug("from-byte-too-high"),
        ),
        case(
            "TO = TOTAL",
            &[],
            &format!("bytes 0-{}/{}", p - 1, p - 1),
            file(P),
            slug("to-byte-too-high-total"),
        ),
        case(
            "TO = TOTAL after a first chunk",
            &[(&first, file(P))],
            &format!("bytes {}-{}/{t3}", 2 * p, t3),
            file(P + 1),
            slug("to-byte-too-high-total"),
        ),
        // TOTAL <= a TO already received necessarily also differs from the known total.
        case(
            "TOTAL below a received TO",
            &[(&middle, file(P))],
            &format!("bytes 0-{}/{}", p - 1, 2 * p - 10),
            file(P),
            slug("total-bytes-too-low"),
        ),
        case(
            "TOTAL equal to a received TO",
            &[(&middle, file(P))],
            &format!("bytes 0-{}/{}", p - 1, 2 * p - 1),
            file(P),
            slug("total-bytes-too-low"),
        ),
        case(
            "TOTAL differs from the first chunk's (larger)",
            &[(&first, file(P))],
            &format!("bytes {}-{}/{}", p, 2 * p - 1, 4 * p),
            file(P),
            slug("different-total-bytes"),
        ),
        case(
            "TOTAL differs from the first chunk's (smaller, still above every TO)",
            &[(&first, file(P))],
            &format!("bytes {}-{}/{}", p, 2 * p - 1, 2 * p + 10),
            file(P),
            slug("different-total-bytes"),
        ),
        // The header alone is refused; the 5 MiB body is never compared with the range.
        case(
            "range of 200 MiB + 1",
            &[],
            &format!("bytes 0-{}/{}", 200 * MIB, 300 * MIB),
            file(P),
            slug("range-too-large"),
        ),
        case(
            "non-final range of 5 MiB - 1 on a fresh video",
            &[],
            &format!("bytes 0-{}/{t3}", p - 2),
            file(P - 1),
            slug("range-too-small"),
        ),
        case(
            "non-final middle range of 1000 bytes",
            &[(&first, file(P))],
            &format!("bytes {}-{}/{t3}", p, p + 999),
            file(1000),
            slug("range-too-small"),
        ),
        case(
            "the same range again",
            &[(&first, file(P))],
            &first,
            file_seeded(P, 5),
            slug("range-overlap"),
        ),
        case(
            "range overlapping one byte at the start",
            &[(&first, file(P))],
            &format!("bytes {}-{}/{t3}", p - 1, 2 * p - 2),
            file(P),
            slug("range-overlap"),
        ),
        case(
            "range overlapping one byte at the end",
            &[(&middle, file(P))],
            &format!("bytes 1-{}/{t3}", p),
            file(P),
            slug("range-overlap"),
        ),
        case(
            "range containing a received one",
            &[(&format!("bytes {}-{}/{}", p, 2 * p - 1, 4 * p), file(P))],
            &format!("bytes {}-{}/{}", p - 10, 3 * p - 1, 4 * p),
            file(2 * P + 10),
            slug("range-overlap"),
        ),
        case("file one byte short of the range", &[], &first, file(P - 1), slug("range-mismatch")),
        case("file one byte over the range", &[], &first, file(P + 1), slug("range-mismatch")),
        case(
            "final range with a short file",
            &[(&format!("bytes 0-{}/{}", p - 1, p + 100), file(P))],
            &format!("bytes {}-{}/{}", p, p + 99, p + 100),
            file(99),
            slug("range-mismatch"),
        ),
    ];
    run_cases(&ts, &cases).await;
}

/// A refused overlapping range must not replace stored bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_overlapping_range_keeps_the_stored_bytes() {
    let ts = spawn_server().await;
    let id = ts.create_video("overlap").await;
    let total = P + 500;
    let source = pattern(total, 21);
    let (ct, body) = multipart_file("file", "clip.mp4", &source[..P]);
    let resp = send_raw(&ts, &id, Some(&format!("bytes 0-{}/{total}", P - 1)), ct, body).await;
    assert_eq!(resp.status().as_u16(), 201, "first bytes chunk");
    let (ct, body) = multipart_file("file", "clip.mp4", &pattern(P, 99));
    let resp = send_raw(&ts, &id, Some(&format!("bytes 0-{}/{total}", P - 1)), ct, body).await;
    check_problem(resp, 400, "video-content-range-by-bytes-range-overlap")
        .await
        .unwrap_or_else(|e| panic!("resent range: {e}"));
    let (ct, body) = multipart_file("file", "clip.mp4", &source[P..]);
    let resp =
        send_raw(&ts, &id, Some(&format!("bytes {P}-{}/{total}", total - 1)), ct, body).await;
    assert_eq!(resp.status().as_u16(), 201, "final bytes chunk");
    let video: Value = resp.json().await.expect("Video");
    let (st, got) = get_bytes(&ts, &mp4_url(&video)).await;
    assert_eq!(st, 200);
    assert!(
        got == source,
        "assets.mp4 must be the accepted chunks only (got {} bytes, expected {total})",
        got.len()
    );
}

// ---------------------------------------------------------------------------------------------
// The file part
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_part_rules() {
    let ts = spawn_server().await;
    let single = |name: &'static str, form: Form, slug: &'static str| Case {
        name,
        setup: vec![],
        range: None,
        form,
        status: 400,
        slug,
    };
    let cases = vec![
        single("no file part, text fields only", Form::NoFile, "uploaded-file-no-file"),
        case("no file part with part 1/1", &[], "part 1/1", Form::NoFile, "uploaded-file-no-file"),
        single("two file parts", Form::TwoFiles, "uploaded-file-multiple-files"),
        single(
            "a `file` field without filename plus a named file",
            Form::FileFieldPlusNamedFile,
            "uploaded-file-multiple-files",
        ),
        case(
            "two file parts with part 1/1",
            &[],
            "part 1/1",
            Form::TwoFiles,
            "uploaded-file-multiple-files",
        ),
        single("an empty file", Form::EmptyFile, "uploaded-file-empty"),
        case("an empty file as part 1/1", &[], "part 1/1", Form::EmptyFile, "uploaded-file-empty"),
        case(
            "an empty file as part 2/2 after part 1/*",
            &[("part 1/*", file(P))],
            "part 2/2",
            Form::EmptyFile,
            "uploaded-file-empty",
        ),
    ];
    run_cases(&ts, &cases).await;
}

/// More than 200 MiB in one request → 400 uploaded-file-too-large, read to the end (the client
/// sees the answer, not a reset), and nothing stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_over_200_mib_is_too_large() {
    use futures::StreamExt;

    let ts = spawn_server().await;
    let id = ts.create_video("too large").await;
    let before = ts.status_of(&id).await;

    let boundary = "bigboundary5d2e";
    let head = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.mp4\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    );
    let tail = format!("\r\n--{boundary}--\r\n");
    let file_len: usize = 200 * MIB + 1;
    let block = bytes::Bytes::from(pattern(MIB, 3));
    let full_blocks = file_len / MIB;
    let rest = file_len % MIB;
    let mut pieces: Vec<bytes::Bytes> = vec![bytes::Bytes::from(head.clone())];
    pieces.extend(std::iter::repeat_n(block.clone(), full_blocks));
    pieces.push(block.slice(..rest));
    pieces.push(bytes::Bytes::from(tail.clone()));
    let stream = futures::stream::iter(pieces).map(Ok::<_, std::io::Error>);

    let resp = ts
        .http
        .post(format!("{}/videos/{id}/source", ts.url))
        .header("Authorization", ts.basic())
        .header("Content-Type", format!("multipart/form-data; boundary={boundary}"))
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .expect(
            "the server must read the whole 200 MiB + 1 body and answer, not reset the connection",
        );
    check_problem(resp, 400, "uploaded-file-too-large")
        .await
        .unwrap_or_else(|e| panic!("single request of 200 MiB + 1 bytes: {e}"));
    assert_eq!(ts.status_of(&id).await, before, "a refused too-large upload changed /status");

    // The video still takes a normal upload afterwards.
    let (ct, body) = multipart_file("file", "ok.mp4", &pattern(100, 1));
    let resp = send_raw(&ts, &id, None, ct, body).await;
    assert_eq!(
        resp.status().as_u16(),
        201,
        "after the refused too-large upload a normal upload must still be accepted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_video_is_404() {
    let ts = spawn_server().await;
    for (range, form) in
        [(None, file(1000)), (Some("part 1/*"), file(P)), (Some("bytes 0-999/1000"), file(1000))]
    {
        let resp = send(&ts, "vi0000000000000000000000", range, &form).await;
        check_problem(resp, 404, "resource-not-found").await.unwrap_or_else(|e| {
            panic!("upload to an unknown video (Content-Range {range:?}): {e}")
        });
    }
    let resp = ts
        .http
        .get(format!("{}/videos/vi0000000000000000000000", ts.url))
        .header("Authorization", ts.basic())
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status().as_u16(),
        404,
        "a refused upload to an unknown video must not create it"
    );
}

/// The file part is the one with a filename, under any field name (Node uses the basename),
/// and text fields around it are ignored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_part_under_any_field_name_and_text_fields_around_it() {
    let ts = spawn_server().await;

    // (description, content type + body, expected file content)
    let data = pattern(3000, 4);
    let mut forms: Vec<(&str, (String, Vec<u8>))> = vec![
        (
            "field named after the basename (Node)",
            multipart_file("my video.mp4", "my video.mp4", &data),
        ),
        ("field named `video`", multipart_file("video", "clip.mp4", &data)),
        (
            "text field before the file",
            multipart(&[("videoId", "vi_ignored_here")], Some(("file", "clip.mp4", &data)), &[]),
        ),
        (
            "text field after the file",
            multipart(&[], Some(("file", "clip.mp4", &data)), &[("videoId", "vi_ignored_here")]),
        ),
        (
            "text fields before and after the file",
            multipart(
                &[("title", "x"), ("videoId", "vi_x")],
                Some(("source", "a/b/clip.mp4", &data)),
                &[("tags", "y")],
            ),
        ),
        ("`file` field without a filename", raw_multipart(&[("file", None, &data)])),
        (
            "`file` field without a filename and a text field",
            raw_multipart(&[("note", None, b"hello"), ("file", None, &data)]),
        ),
    ];
    let mut failures = Vec::new();
    for (what, (ct, body)) in forms.drain(..) {
        let id = ts.create_video(what).await;
        let resp = send_raw(&ts, &id, None, ct, body).await;
        let st = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        if st != 201 {
            failures.push(format!("[{what}] expected 201, got {st}: {text}"));
            continue;
        }
        let video: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if video["videoId"] != json!(id) || video["assets"]["mp4"].as_str().is_none() {
            failures.push(format!(
                "[{what}] expected the full Video of {id} with assets.mp4, got {text}"
            ));
            continue;
        }
        let (st, got) = get_bytes(&ts, &mp4_url(&video)).await;
        if st != 200 || got != data {
            failures.push(format!(
                "[{what}] assets.mp4 answered {st} with {} bytes, expected 200 with the 3000 \
                 bytes sent",
                got.len()
            ));
        }
        let s = ts.status_of(&id).await;
        if s["ingest"]["status"] != json!("uploaded") || s["ingest"]["filesize"] != json!(3000) {
            failures.push(format!("[{what}] /status after the upload: {s}"));
        }
    }
    // Also as a chunk: a part under the basename field, with a text field after it.
    let id = ts.create_video("chunk under basename").await;
    let (ct, body) =
        multipart(&[], Some(("clip.mp4", "clip.mp4", &pattern(P, 1))), &[("videoId", "vi_other")]);
    let resp = send_raw(&ts, &id, Some("part 1/*"), ct, body).await;
    if resp.status().as_u16() != 201 {
        failures
            .push(format!("[part 1/* under field `clip.mp4`] expected 201, got {}", resp.status()));
    } else {
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        if v != json!({ "videoId": id }) {
            failures.push(format!(
                "[part 1/* under field `clip.mp4`] expected {{\"videoId\":\"{id}\"}}, got {v}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The same rules on `POST /upload?token=` (delegated upload): a refused first chunk leaves no
/// video behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delegated_upload_applies_the_same_rules() {
    let ts = spawn_server().await;
    let resp = ts
        .http
        .post(format!("{}/upload-tokens", ts.url))
        .header("Authorization", ts.basic())
        .json(&json!({"ttl": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200, "POST /upload-tokens");
    let tok: Value = resp.json().await.unwrap();
    let token = tok["token"].as_str().expect("token").to_owned();

    let count = || async {
        let v: Value = ts
            .http
            .get(format!("{}/videos?pageSize=100", ts.url))
            .header("Authorization", ts.basic())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["pagination"]["itemsTotal"].clone()
    };
    let before = count().await;
    let attempts: Vec<(&str, Option<&str>, Form, &str)> = vec![
        (
            "malformed Content-Range",
            Some("part one/2"),
            file(1000),
            "video-content-range-malformed",
        ),
        ("part 0/*", Some("part 0/*"), file(P), "video-content-range-by-part-part-zero"),
        (
            "part 1/* too small",
            Some("part 1/*"),
            file(1000),
            "video-content-range-by-part-uploaded-file-too-small",
        ),
        (
            "bytes range mismatch",
            Some("bytes 0-999/1000"),
            file(999),
            "video-content-range-by-bytes-range-mismatch",
        ),
        ("no file", None, Form::NoFile, "uploaded-file-no-file"),
        ("empty file", None, Form::EmptyFile, "uploaded-file-empty"),
    ];
    let mut failures = Vec::new();
    for (what, range, form, slug) in attempts {
        let (ct, body) = match &form {
            // Without videoId: each of these would start a new video.
            Form::NoFile => multipart(&[("title", "x")], None, &[]),
            f => build(f),
        };
        let mut req = ts
            .http
            .post(format!("{}/upload?token={token}", ts.url))
            .header("Content-Type", ct)
            .body(body);
        if let Some(r) = range {
            req = req.header("Content-Range", r);
        }
        let resp = req.send().await.unwrap();
        if let Err(e) = check_problem(resp, 400, slug).await {
            failures.push(format!("[/upload?token= {what}] expected 400 {slug}: {e}"));
        }
    }
    assert_eq!(count().await, before, "refused /upload chunks must not create videos");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
