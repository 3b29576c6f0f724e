//! The double over real HTTP: auth, videos, listing, rate limits and faults (issue #3).

use std::time::{Duration, Instant};

use avbatch_serve::testing::{
    basic_auth, multipart_file, pattern, spawn_server, spawn_server_with, TestServer, KEY, MIB,
};
use reqwest::StatusCode;
use serde_json::{json, Value};

const TYPE: &str = "https://docs.api.video/reference/";

async fn problem(resp: reqwest::Response, status: u16, slug: &str) -> Value {
    assert_eq!(resp.status().as_u16(), status, "expected {status} {slug}");
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["type"], format!("{TYPE}{slug}"), "{body}");
    assert_eq!(body["status"], status);
    body
}

async fn tokens(s: &TestServer) -> Value {
    let r = s
        .http
        .post(format!("{}/auth/api-key", s.url))
        .json(&json!({"apiKey": KEY}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

async fn create(s: &TestServer, body: Value) -> Value {
    let r = s
        .http
        .post(format!("{}/videos", s.url))
        .header("Authorization", s.basic())
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED, "create {body}");
    r.json().await.unwrap()
}

async fn list(s: &TestServer, query: &str) -> Value {
    let r = s
        .http
        .get(format!("{}/videos?{query}", s.url))
        .header("Authorization", s.basic())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "list {query}");
    r.json().await.unwrap()
}

fn titles(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["title"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn auth_api_key_bearer_basic_and_every_refusal() {
    let s = spawn_server().await;
    let t = tokens(&s).await;
    assert_eq!(t["token_type"], "Bearer");
    assert_eq!(t["expires_in"], 3600);
    let bearer = format!("Bearer {}", t["access_token"].as_str().unwrap());
    let get = |auth: Option<String>| {
        let mut r = s.http.get(format!("{}/videos", s.url));
        if let Some(a) = auth {
            r = r.header("Authorization", a);
        }
        r.send()
    };
    assert_eq!(get(Some(bearer.clone())).await.unwrap().status(), StatusCode::OK);
    assert_eq!(get(Some(basic_auth(KEY))).await.unwrap().status(), StatusCode::OK);
    problem(get(None).await.unwrap(), 401, "authentication-missing-authorization-header").await;
    problem(
        get(Some("Bearer".into())).await.unwrap(),
        401,
        "authentication-invalid-authorization-header-value",
    )
    .await;
    problem(
        get(Some("Digest abc".into())).await.unwrap(),
        401,
        "authentication-invalid-authorization-header-value",
    )
    .await;
    problem(
        get(Some(basic_auth("not-the-key"))).await.unwrap(),
        401,
        "authentication-invalid-api-key",
    )
    .await;
    problem(
        get(Some("Bearer abc.def.ghi".into())).await.unwrap(),
        401,
        "authentication-invalid-access-token",
    )
    .await;
    let wrong = s
        .http
        .post(format!("{}/auth/api-key", s.url))
        .json(&json!({"apiKey": "nope"}))
        .send()
        .await
        .unwrap();
    problem(wrong, 400, "authentication-invalid-user-credentials").await;
}

#[tokio::test]
async fn refresh_rotates_and_tokens_expire() {
    let s = spawn_server_with(|c| c.token_ttl = Duration::from_secs(1)).await;
    let t = tokens(&s).await;
    let refresh = |token: &str| {
        s.http.post(format!("{}/auth/refresh", s.url)).json(&json!({"refreshToken": token})).send()
    };
    let r1 = refresh(t["refresh_token"].as_str().unwrap()).await.unwrap();
    assert_eq!(r1.status(), StatusCode::OK);
    let t2: Value = r1.json().await.unwrap();
    assert_ne!(t2["refresh_token"], t["refresh_token"], "the refresh token rotates");
    problem(
        refresh(t["refresh_token"].as_str().unwrap()).await.unwrap(),
        400,
        "authentication-invalid-user-credentials",
    )
    .await;

    let bearer = format!("Bearer {}", t2["access_token"].as_str().unwrap());
    let ok = s
        .http
        .get(format!("{}/videos", s.url))
        .header("Authorization", &bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let expired = s
        .http
        .get(format!("{}/videos", s.url))
        .header("Authorization", &bearer)
        .send()
        .await
        .unwrap();
    problem(expired, 401, "authentication-invalid-access-token").await;
    // The rotated refresh token still gives a working access token after expiry.
    let t3: Value =
        refresh(t2["refresh_token"].as_str().unwrap()).await.unwrap().json().await.unwrap();
    let again = s
        .http
        .get(format!("{}/videos", s.url))
        .header("Authorization", format!("Bearer {}", t3["access_token"].as_str().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::OK);
}

#[tokio::test]
async fn create_keeps_every_field_and_update_and_delete_work() {
    let s = spawn_server().await;
    // A create names a watermark made with POST /watermarks (the double refuses unknown ids).
    let (ct, image) = multipart_file("file", "w.png", b"\x89PNG\r\n\x1a\n a watermark");
    let watermark: Value = s
        .http
        .post(format!("{}/watermarks", s.url))
        .header("Authorization", s.basic())
        .header("Content-Type", ct)
        .body(image)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let payload = json!({
        "title": "All fields", "description": "d", "tags": ["a", "b"],
        "metadata": [{"key": "k1", "value": "v1"}, {"key": "k2", "value": "v2"}],
        "public": false, "panoramic": true, "mp4Support": false, "playerId": "pl123",
        "language": "fr",
        "clip": {"startTimecode": "00:00:01", "endTimecode": "00:00:05"},
        "watermark": {"id": watermark["watermarkId"], "top": "10px", "opacity": "50%"},
        "transcript": true, "transcriptSummary": true, "transcriptSummaryAttributes": ["abstract"]
    });
    let v = create(&s, payload.clone()).await;
    let id = v["videoId"].as_str().unwrap().to_owned();
    assert!(id.starts_with("vi") && id.len() == 24, "{id}");
    let got: Value = s
        .http
        .get(format!("{}/videos/{id}", s.url))
        .header("Authorization", s.basic())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for (k, want) in payload.as_object().unwrap() {
        assert_eq!(&got[k], want, "field {k}");
    }
    assert_eq!(got["languageOrigin"], "api");
    assert!(got["assets"].get("mp4").is_none(), "no mp4 asset without mp4Support");

    let patched: Value = s
        .http
        .patch(format!("{}/videos/{id}", s.url))
        .header("Authorization", s.basic())
        .json(&json!({"tags": ["c"], "playerId": null, "title": "Renamed"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (patched["tags"].clone(), patched["title"].clone()),
        (json!(["c"]), json!("Renamed"))
    );
    assert!(patched.get("playerId").is_none(), "playerId: null detaches the player");
    assert_eq!(patched["metadata"], payload["metadata"], "members not sent are kept");

    let del = s
        .http
        .delete(format!("{}/videos/{id}", s.url))
        .header("Authorization", s.basic())
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), StatusCode::NO_CONTENT);
    let gone = s
        .http
        .get(format!("{}/videos/{id}", s.url))
        .header("Authorization", s.basic())
        .send()
        .await
        .unwrap();
    let body = problem(gone, 404, "resource-not-found").await;
    assert_eq!(body["name"], "videoId");
}

#[tokio::test]
async fn create_validation_errors() {
    let s = spawn_server().await;
    let post = |body: &'static str| {
        s.http
            .post(format!("{}/videos", s.url))
            .header("Authorization", s.basic())
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let b =
        problem(post(r#"{"description":"no title"}"#).await.unwrap(), 400, "attribute-required")
            .await;
    assert_eq!(b["name"], "title");
    let b =
        problem(post(r#"{"title":"t","tags":"a"}"#).await.unwrap(), 400, "invalid-attribute").await;
    assert_eq!(b["name"], "tags");
    let b =
        problem(post(r#"{"title":"t","language":"xx"}"#).await.unwrap(), 400, "invalid-attribute")
            .await;
    assert_eq!(b["name"], "language");
    problem(post("not json").await.unwrap(), 400, "invalid-payload").await;
    assert!(
        list(&s, "").await["data"].as_array().unwrap().is_empty(),
        "refused creates create nothing"
    );
}

#[tokio::test]
async fn list_filters_sorts_and_paginates() {
    let s = spawn_server().await;
    for i in 0..30 {
        let tags: Vec<&str> =
            [(i % 2 == 0).then_some("even"), (i % 3 == 0).then_some("three"), Some("all")]
                .into_iter()
                .flatten()
                .collect();
        create(
            &s,
            json!({
                "title": format!("Clip {i:02} {}", if i % 5 == 0 { "Sunset" } else { "day" }),
                "description": if i < 10 { "first batch" } else { "later" },
                "tags": tags,
                "metadata": [
                    {"key": "group", "value": format!("g{}", i % 4)},
                    {"key": "n", "value": i.to_string()},
                ],
            }),
        )
        .await;
    }
    assert_eq!(
        titles(&list(&s, "title=sunset&pageSize=100").await).len(),
        6,
        "title is a case-insensitive substring"
    );
    assert_eq!(titles(&list(&s, "description=first&pageSize=100").await).len(), 10);
    assert_eq!(
        titles(&list(&s, "tags[]=even&tags[]=three&pageSize=100").await).len(),
        5,
        "tags[] must all match"
    );
    assert_eq!(titles(&list(&s, "metadata[group]=g1&pageSize=100").await).len(), 8);
    assert_eq!(
        titles(&list(&s, "metadata[group]=g1&metadata[n]=5&pageSize=100").await),
        vec!["Clip 05 Sunset"]
    );
    assert_eq!(titles(&list(&s, "metadata[group]=g1&tags[]=even&pageSize=100").await).len(), 0);

    let asc = titles(&list(&s, "sortBy=title&sortOrder=asc&pageSize=100").await);
    let mut sorted = asc.clone();
    sorted.sort();
    assert_eq!(asc, sorted);
    let desc = titles(&list(&s, "sortBy=title&sortOrder=desc&pageSize=100").await);
    assert_eq!(desc, asc.iter().rev().cloned().collect::<Vec<_>>());
    let by_creation = titles(&list(&s, "pageSize=3").await);
    assert_eq!(
        by_creation,
        vec!["Clip 00 Sunset", "Clip 01 day", "Clip 02 day"],
        "default: oldest first"
    );

    let page = list(&s, "pageSize=7&currentPage=2&tags[]=all").await;
    let p = &page["pagination"];
    assert_eq!(
        (
            p["currentPage"].as_u64(),
            p["pageSize"].as_u64(),
            p["pagesTotal"].as_u64(),
            p["itemsTotal"].as_u64(),
            p["currentPageItems"].as_u64()
        ),
        (Some(2), Some(7), Some(5), Some(30), Some(7))
    );
    let rels: Vec<&str> =
        p["links"].as_array().unwrap().iter().map(|l| l["rel"].as_str().unwrap()).collect();
    assert_eq!(rels, ["self", "first", "previous", "next", "last"]);
    let next = p["links"][3]["uri"].as_str().unwrap();
    assert!(
        next.contains("currentPage=3") && next.contains("tags%5B%5D=all"),
        "links keep the filters: {next}"
    );
    let last = list(&s, "pageSize=7&currentPage=5").await;
    assert_eq!(last["pagination"]["currentPageItems"], 2);
    assert!(!last["pagination"]["links"].as_array().unwrap().iter().any(|l| l["rel"] == "next"));
    assert!(
        list(&s, "pageSize=7&currentPage=9").await["data"].as_array().unwrap().is_empty(),
        "past the end: empty page"
    );

    for bad in ["pageSize=0", "pageSize=101", "currentPage=0", "sortBy=size", "sortOrder=up"] {
        let r = s
            .http
            .get(format!("{}/videos?{bad}", s.url))
            .header("Authorization", s.basic())
            .send()
            .await
            .unwrap();
        problem(r, 400, "invalid-query-parameter").await;
    }
    assert_eq!(list(&s, "pageSize=100").await["data"].as_array().unwrap().len(), 30);
}

#[tokio::test]
async fn rate_limit_buckets_headers_and_reset() {
    let s = spawn_server_with(|c| c.rate_limits = "reads=3/2s,writes=2/2s".parse().unwrap()).await;
    let get = || s.http.get(format!("{}/videos", s.url)).header("Authorization", s.basic()).send();
    // Align with a fresh window so all three reads land in one.
    let first = get().await.unwrap();
    let reset: u64 = first.headers()["x-ratelimit-retry-after"].to_str().unwrap().parse().unwrap();
    tokio::time::sleep(Duration::from_secs(reset)).await;
    let mut remaining = Vec::new();
    for _ in 0..3 {
        let r = get().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["x-ratelimit-limit"], "3");
        remaining.push(r.headers()["x-ratelimit-remaining"].to_str().unwrap().to_owned());
    }
    assert_eq!(remaining, ["2", "1", "0"]);
    let refused = get().await.unwrap();
    let retry: u64 = refused.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry), "retry after {retry}");
    assert_eq!(refused.headers()["x-ratelimit-remaining"], "0");
    problem(refused, 429, "too-many-requests").await;
    // Writes have their own bucket.
    let w = s
        .http
        .post(format!("{}/videos", s.url))
        .header("Authorization", s.basic())
        .json(&json!({"title": "w"}))
        .send()
        .await
        .unwrap();
    assert_eq!(w.status(), StatusCode::CREATED);
    assert_eq!(w.headers()["x-ratelimit-limit"], "2");
    // Auth calls report the writes bucket without using it up.
    for _ in 0..3 {
        let a = s
            .http
            .post(format!("{}/auth/api-key", s.url))
            .json(&json!({"apiKey": KEY}))
            .send()
            .await
            .unwrap();
        assert_eq!(a.status(), StatusCode::OK);
        assert_eq!(a.headers()["x-ratelimit-limit"], "2");
        assert!(
            a.headers().contains_key("x-ratelimit-remaining")
                && a.headers().contains_key("x-ratelimit-retry-after")
        );
    }
    tokio::time::sleep(Duration::from_secs(retry)).await;
    assert_eq!(get().await.unwrap().status(), StatusCode::OK, "the window reset");
}

#[tokio::test]
async fn faults_fail_storm_reset_and_latency() {
    // 503s have no effect.
    let s = spawn_server_with(|c| {
        c.faults.fail_rate = 0.5;
        c.faults.seed = Some(7);
    })
    .await;
    let mut created = 0;
    let mut failed = 0;
    for i in 0..40 {
        let r = s
            .http
            .post(format!("{}/videos", s.url))
            .header("Authorization", s.basic())
            .json(&json!({"title": format!("f{i}")}))
            .send()
            .await
            .unwrap();
        match r.status().as_u16() {
            201 => created += 1,
            503 => failed += 1,
            other => panic!("unexpected {other}"),
        }
    }
    assert!(created > 0 && failed > 0, "{created} created, {failed} refused");
    let listed = loop {
        let r = s
            .http
            .get(format!("{}/videos?pageSize=100", s.url))
            .header("Authorization", s.basic())
            .send()
            .await
            .unwrap();
        if r.status() == StatusCode::OK {
            break r.json::<Value>().await.unwrap();
        }
    };
    assert_eq!(listed["pagination"]["itemsTotal"], created, "a 503 leaves nothing behind");

    // A storm answers 429 with Retry-After.
    let storm = spawn_server_with(|c| c.faults.storm = Some("10s:5s".parse().unwrap())).await;
    let r = storm
        .http
        .get(format!("{}/videos", storm.url))
        .header("Authorization", storm.basic())
        .send()
        .await
        .unwrap();
    assert!(r.headers().contains_key("retry-after"));
    problem(r, 429, "too-many-requests").await;

    // A reset drops the connection mid-body and stores nothing.
    let reset = spawn_server_with(|c| c.faults.reset_rate = 1.0).await;
    let v = create(&reset, json!({"title": "r"})).await;
    let id = v["videoId"].as_str().unwrap();
    let (ct, body) = multipart_file("file", "x.mp4", &pattern(6 * MIB, 1));
    let sent = reset
        .http
        .post(format!("{}/videos/{id}/source", reset.url))
        .header("Authorization", reset.basic())
        .header("Content-Type", ct)
        .header("Content-Range", format!("bytes 0-{}/{}", 6 * MIB - 1, 12 * MIB))
        .body(body)
        .send()
        .await;
    assert!(sent.is_err(), "the connection must break, not answer: {sent:?}");
    let status: Value = reset
        .http
        .get(format!("{}/videos/{id}/status", reset.url))
        .header("Authorization", reset.basic())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["ingest"]["receivedBytes"], json!([]), "nothing stored: {status}");
    assert_eq!(
        std::fs::read_dir(reset.data.path().join("incoming")).unwrap().count(),
        0,
        "no partial body left behind"
    );

    // Latency is added to every request.
    let slow = spawn_server_with(|c| c.faults.latency = Duration::from_millis(200)).await;
    let t = Instant::now();
    slow.http
        .get(format!("{}/videos", slow.url))
        .header("Authorization", slow.basic())
        .send()
        .await
        .unwrap();
    assert!(t.elapsed() >= Duration::from_millis(200));
}

#[tokio::test]
async fn unknown_routes_and_methods_are_problems() {
    let s = spawn_server().await;
    let r = s
        .http
        .get(format!("{}/nope", s.url))
        .header("Authorization", s.basic())
        .send()
        .await
        .unwrap();
    problem(r, 404, "unrecognized-request-url").await;
    let r = s
        .http
        .put(format!("{}/videos", s.url))
        .header("Authorization", s.basic())
        .send()
        .await
        .unwrap();
    problem(r, 405, "method-not-allowed").await;
}

#[tokio::test]
async fn every_api_request_is_counted_by_bucket() {
    // What benchmarks read to compare the requests each uploader needs per video.
    let s = spawn_server().await;
    let id = create(&s, json!({"title": "counted"})).await["videoId"].as_str().unwrap().to_owned();
    let (ctype, body) = multipart_file("file", "a.mp4", &pattern(1000, 1));
    let resp = s
        .http
        .post(format!("{}/videos/{id}/source", s.url))
        .header("Authorization", s.basic())
        .header("Content-Type", ctype)
        .body(body);
    assert_eq!(resp.send().await.unwrap().status().as_u16(), 201);
    list(&s, "").await;
    s.http
        .post(format!("{}/auth/api-key", s.url))
        .json(&json!({"apiKey": KEY}))
        .send()
        .await
        .unwrap();
    // The asset host is not the API.
    s.source_of(&id).await;
    assert_eq!(
        s.server.served().to_string(),
        "4 API requests: 1 uploads, 1 writes, 1 reads, 1 auth"
    );
}
