//! The double's thumbnails, captions, chapters, watermarks and creation fields (#14), over real
//! HTTP on 127.0.0.1; the same surviving a kill -9 in the binary's `server_restart` tests.

use std::time::Duration;

use avbatch_serve::testing::{
    multipart, multipart_file, post_multipart_at, spawn_server_with, TestServer,
};
use avbatch_serve::ExistingTracks;
use serde_json::{json, Value};

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR a tiny png";

const JPEG: &[u8] = b"\xFF\xD8\xFF\xE0\0\x10JFIF\0 a tiny jpeg";

const VTT_EN: &[u8] = b"WEBVTT\n\n00:00.000 --> 00:01.000\nHello \xc3\xa9\n";

const VTT_FR: &[u8] = b"WEBVTT\n\n00:00.000 --> 00:01.000\nBonjour\n";

async fn send_file(
    http: &reqwest::Client,
    url: &str,
    path: &str,
    (content_type, body): (String, Vec<u8>),
) -> reqwest::Response {
    post_multipart_at(http, url, path, content_type, body).await
}

async fn post_file(s: &TestServer, path: &str, field: &str, name: &str, data: &[u8]) -> Value {
    let r = send_file(&s.http, &s.url, path, multipart_file(field, name, data)).await;
    assert_eq!(r.status(), 200, "POST {path}");
    r.json().await.unwrap()
}

async fn call(
    s: &TestServer,
    method: reqwest::Method,
    path: impl AsRef<str>,
    body: Option<Value>,
) -> Response {
    let mut r = s
        .http
        .request(method, format!("{}{}", s.url, path.as_ref()))
        .header("Authorization", s.basic());
    if let Some(b) = body {
        r = r.json(&b);
    }
    Response::of(r.send().await.unwrap()).await
}

struct Response {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

impl Response {
    async fn of(r: reqwest::Response) -> Response {
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        Response { status, headers, body: r.bytes().await.unwrap().to_vec() }
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// The problem body, byte for byte as the server writes it.
fn problem(status: u16, slug: &str, title: &str, name: &str, detail: Option<&str>) -> Vec<u8> {
    // The members in the order of the spec's examples: type, title, status, detail, name.
    let text = |s: &str| serde_json::to_string(s).unwrap();
    let kind = text(&format!("https://docs.api.video/reference/{slug}"));
    let detail = detail.map(|d| format!(",\"detail\":{}", text(d))).unwrap_or_default();
    let (title, name) = (text(title), text(name));
    format!(r#"{{"type":{kind},"title":{title},"status":{status}{detail},"name":{name}}}"#)
        .into_bytes()
}

async fn get_raw(s: &TestServer, url: &str) -> Response {
    Response::of(s.http.get(url).send().await.unwrap()).await
}

fn record(s: &TestServer, id: &str) -> Value {
    let path = s.data.path().join("videos").join(id).join("video.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// A private video's thumbnail, as api.video serves it: through the token each answer gives
/// (`/vod/{id}/token/T/thumbnail.jpg`), never at the plain URL (issue #25, point 17).
#[tokio::test]
async fn a_private_videos_thumbnail_is_served_through_its_token() {
    let s = spawn_server_with(|_| {}).await;
    let made =
        call(&s, reqwest::Method::POST, "/videos", Some(json!({"title": "p", "public": false})))
            .await;
    let id = made.json()["videoId"].as_str().unwrap().to_owned();
    let video = post_file(&s, &format!("/videos/{id}/thumbnail"), "file", "p.png", PNG).await;
    let url = video["assets"]["thumbnail"].as_str().unwrap().to_owned();
    let token = video["assets"]["player"].as_str().unwrap().split_once("?token=").unwrap().1;
    assert_eq!(url, format!("{}/vod/{id}/token/{token}/thumbnail.jpg", s.url));
    assert_eq!(get_raw(&s, &format!("{}/vod/{id}/thumbnail.jpg", s.url)).await.status, 403);
    let served = get_raw(&s, &url).await;
    assert_eq!((served.status, served.body.as_slice()), (200, PNG));
    assert_eq!(get_raw(&s, &url).await.status, 403, "the token's first use took it");
    // Made public, it is served plainly again.
    call(&s, reqwest::Method::PATCH, format!("/videos/{id}"), Some(json!({"public": true}))).await;
    let plain = get_raw(&s, &format!("{}/vod/{id}/thumbnail.jpg", s.url)).await;
    assert_eq!((plain.status, plain.body.as_slice()), (200, PNG));
}

#[tokio::test]
async fn thumbnail_upload_is_served_back_and_a_picked_frame_replaces_it() {
    let s = spawn_server_with(|_| {}).await;
    let id = s.create_video("thumbs").await;
    // Any field name, as for sources (Node names the field after the file).
    let video =
        post_file(&s, &format!("/videos/{id}/thumbnail"), "cover.png", "cover.png", PNG).await;
    assert_eq!(video["videoId"], id.as_str());
    let url = video["assets"]["thumbnail"].as_str().unwrap().to_owned();
    assert_eq!(url, format!("{}/vod/{id}/thumbnail.jpg", s.url));
    let served = get_raw(&s, &url).await;
    assert_eq!((served.status, served.body.as_slice()), (200, PNG));
    assert_eq!(served.headers["content-type"], "image/png");
    assert!(s.data.path().join("videos").join(&id).join("thumbnail.png").exists());

    let r = call(
        &s,
        reqwest::Method::PATCH,
        &format!("/videos/{id}/thumbnail"),
        Some(json!({"timecode": "00:00:02.5"})),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["assets"]["thumbnail"], url.as_str());
    assert_eq!(record(&s, &id)["thumbnail"], json!({"kind": "picked", "timecode": "00:00:02.5"}));
    assert!(!s.data.path().join("videos").join(&id).join("thumbnail.png").exists());
    assert_eq!(get_raw(&s, &url).await.status, 404, "the double renders no frames");

    // An uploaded image replaces the picked frame.
    post_file(&s, &format!("/videos/{id}/thumbnail"), "file", "c.jpg", JPEG).await;
    let served = get_raw(&s, &url).await;
    assert_eq!(
        (served.body.as_slice(), &served.headers["content-type"]),
        (JPEG, &reqwest::header::HeaderValue::from_static("image/jpeg"))
    );
    assert_eq!(record(&s, &id)["thumbnail"]["kind"], "uploaded");
}

#[tokio::test]
async fn thumbnail_refusals() {
    let s = spawn_server_with(|_| {}).await;
    let id = s.create_video("thumbs").await;
    let path = format!("/videos/{id}/thumbnail");
    let send = |parts: (String, Vec<u8>)| send_file(&s.http, &s.url, &path, parts);
    let r = Response::of(send(multipart_file("file", "a.gif", b"GIF89a......")).await).await;
    assert_eq!(r.status, 400);
    let detail = "the image must be JPEG, PNG or WebP, told by its first bytes";
    assert_eq!(
        r.body,
        problem(
            400,
            "uploaded-file-extension-invalid",
            "Only [jpeg, jpg, JPG, JPEG] extensions are supported.",
            "file",
            Some(detail)
        )
    );
    let r = Response::of(send(multipart_file("file", "a.png", b"")).await).await;
    assert_eq!(
        r.body,
        problem(400, "uploaded-file-empty", "The uploaded file is empty.", "file", None)
    );
    let r = Response::of(send(multipart(&[("title", "x")], None, &[])).await).await;
    assert_eq!(r.json()["type"], "https://docs.api.video/reference/uploaded-file-no-file");
    let mut big = PNG.to_vec();
    big.resize(8_000_001, 0);
    let r = Response::of(send(multipart_file("file", "big.png", &big)).await).await;
    assert_eq!(
        (r.status, r.json()["type"].as_str()),
        (400, Some("https://docs.api.video/reference/uploaded-file-too-large"))
    );
    let mut exact = PNG.to_vec();
    exact.resize(8_000_000, 0);
    assert_eq!(send(multipart_file("file", "ok.png", &exact)).await.status(), 200);
    let r = Response::of(
        send_file(&s.http, &s.url, "/videos/viNOPE/thumbnail", multipart_file("f", "a.png", PNG))
            .await,
    )
    .await;
    assert_eq!(
        r.body,
        problem(
            404,
            "resource-not-found",
            "The requested resource was not found.",
            "videoId",
            None
        )
    );

    let patch = |body: Value| call(&s, reqwest::Method::PATCH, &path, Some(body));
    let r = patch(json!({})).await;
    assert_eq!(
        r.body,
        problem(400, "attribute-required", "This attribute is required.", "timecode", None)
    );
    for bad in [json!({"timecode": "1:00"}), json!({"timecode": 3})] {
        let r = patch(bad).await;
        assert_eq!((r.status, r.json()["name"].as_str()), (400, Some("timecode")));
        assert_eq!(r.json()["type"], "https://docs.api.video/reference/invalid-attribute");
    }
    assert_eq!(record(&s, &id)["thumbnail"]["kind"], "uploaded", "refusals changed nothing");
}

#[tokio::test]
async fn captions_upload_get_list_default_replace_delete() {
    let s = spawn_server_with(|_| {}).await;
    let id = s.create_video("captions").await;
    let en = post_file(&s, &format!("/videos/{id}/captions/en"), "file", "en.vtt", VTT_EN).await;
    let src = format!("{}/vod/{id}/captions/en.vtt", s.url);
    assert_eq!(
        en,
        json!({"uri": format!("/videos/{id}/captions/en"), "src": src, "srclang": "en",
            "languageName": "English", "default": false})
    );
    let served = get_raw(&s, &src).await;
    assert_eq!((served.status, served.body.as_slice()), (200, VTT_EN));
    assert_eq!(served.headers["content-type"], "text/vtt; charset=utf-8");
    let fr = post_file(&s, &format!("/videos/{id}/captions/fr-CA"), "x.vtt", "x.vtt", VTT_FR).await;
    assert_eq!(
        (fr["srclang"].as_str(), fr["languageName"].as_str()),
        (Some("fr-CA"), Some("Français"))
    );

    let got = call(&s, reqwest::Method::GET, &format!("/videos/{id}/captions/en"), None).await;
    assert_eq!((got.status, got.json()), (200, en.clone()));
    let page = call(
        &s,
        reqwest::Method::GET,
        &format!("/videos/{id}/captions?pageSize=1&currentPage=2"),
        None,
    )
    .await
    .json();
    assert_eq!(page["data"][0]["srclang"], "fr-CA");
    assert_eq!(page["pagination"]["pagesTotal"], 2);
    assert_eq!(page["pagination"]["itemsTotal"], 2);

    let set = |lang: &str, default: bool| {
        call(
            &s,
            reqwest::Method::PATCH,
            format!("/videos/{id}/captions/{lang}"),
            Some(json!({"default": default})),
        )
    };
    assert_eq!(set("en", true).await.json()["default"], true);
    assert_eq!(set("fr-CA", true).await.json()["default"], true);
    let all = s.get_json(&format!("/videos/{id}/captions")).await;
    let defaults: Vec<bool> =
        all["data"].as_array().unwrap().iter().map(|c| c["default"].as_bool().unwrap()).collect();
    assert_eq!(defaults, [false, true], "at most one default: setting fr-CA cleared en");
    let r = call(
        &s,
        reqwest::Method::PATCH,
        &format!("/videos/{id}/captions/en"),
        Some(json!({"default": "yes"})),
    )
    .await;
    assert_eq!((r.status, r.json()["name"].as_str()), (400, Some("default")));

    // A second file for fr-CA replaces the first and keeps its default flag.
    let again =
        post_file(&s, &format!("/videos/{id}/captions/fr-CA"), "file", "b.vtt", VTT_EN).await;
    assert_eq!(again["default"], true);
    assert_eq!(get_raw(&s, again["src"].as_str().unwrap()).await.body, VTT_EN);

    let del = call(&s, reqwest::Method::DELETE, &format!("/videos/{id}/captions/en"), None).await;
    assert_eq!((del.status, del.body.len()), (204, 0));
    let del = call(&s, reqwest::Method::DELETE, &format!("/videos/{id}/captions/en"), None).await;
    assert_eq!((del.status, del.json()["name"].as_str()), (404, Some("language")));
    assert_eq!(
        call(&s, reqwest::Method::GET, &format!("/videos/{id}/captions/en"), None).await.status,
        404
    );
    assert_eq!(get_raw(&s, &src).await.status, 404);
    assert!(!s.data.path().join("videos").join(&id).join("captions/en.vtt").exists());

    let bad = send_file(
        &s.http,
        &s.url,
        &format!("/videos/{id}/captions/fr_CA"),
        multipart_file("file", "a.vtt", VTT_FR),
    )
    .await;
    let bad = Response::of(bad).await;
    assert_eq!(
        bad.body,
        problem(
            400,
            "invalid-attribute",
            "An attribute is invalid.",
            "language",
            Some(
                "The \"language\" attribute must contain only letters and dashes (for example \
              \"fr\", \"fr-BE\")."
            )
        )
    );
    let empty = send_file(
        &s.http,
        &s.url,
        &format!("/videos/{id}/captions/de"),
        multipart_file("file", "a.vtt", b""),
    )
    .await;
    assert_eq!(
        Response::of(empty).await.json()["type"],
        "https://docs.api.video/reference/uploaded-file-empty"
    );
    let nope = send_file(
        &s.http,
        &s.url,
        "/videos/viNOPE/captions/de",
        multipart_file("file", "a.vtt", VTT_FR),
    )
    .await;
    assert_eq!(Response::of(nope).await.json()["name"], "videoId");
    // api.video does not validate WebVTT: anything non-empty is kept as sent.
    let odd =
        post_file(&s, &format!("/videos/{id}/captions/de"), "file", "a.vtt", b"\0not vtt").await;
    assert_eq!(get_raw(&s, odd["src"].as_str().unwrap()).await.body, b"\0not vtt");
}

#[tokio::test]
async fn chapters_upload_get_list_delete() {
    let s = spawn_server_with(|_| {}).await;
    let id = s.create_video("chapters").await;
    let ch = post_file(&s, &format!("/videos/{id}/chapters/en"), "file", "en.vtt", VTT_EN).await;
    let src = format!("{}/vod/{id}/chapters/en.vtt", s.url);
    assert_eq!(
        ch,
        json!({"uri": format!("/videos/{id}/chapters/en"), "src": src, "language": "en"})
    );
    assert_eq!(get_raw(&s, &src).await.body, VTT_EN);
    let got = call(&s, reqwest::Method::GET, &format!("/videos/{id}/chapters/en"), None).await;
    assert_eq!(got.json(), ch);
    let list = s.get_json(&format!("/videos/{id}/chapters")).await;
    assert_eq!(list["data"], json!([ch]));
    let patch = call(
        &s,
        reqwest::Method::PATCH,
        &format!("/videos/{id}/chapters/en"),
        Some(json!({"default": true})),
    )
    .await;
    assert_eq!(patch.status, 405, "chapters have no PATCH");
    let del = call(&s, reqwest::Method::DELETE, &format!("/videos/{id}/chapters/en"), None).await;
    assert_eq!(del.status, 204);
    assert_eq!(get_raw(&s, &src).await.status, 404);
    assert_eq!(s.get_json(&format!("/videos/{id}/chapters")).await["data"], json!([]));
}

#[tokio::test]
async fn existing_tracks_refuse_keeps_the_first_file() {
    let s = spawn_server_with(|c| c.faults.existing_tracks = ExistingTracks::Refuse).await;
    let id = s.create_video("refuse").await;
    for (kind, detail) in [
        ("captions", "A caption already exists for this language."),
        ("chapters", "A chapter already exists for this language."),
    ] {
        let first =
            post_file(&s, &format!("/videos/{id}/{kind}/en"), "file", "a.vtt", VTT_EN).await;
        let second = send_file(
            &s.http,
            &s.url,
            &format!("/videos/{id}/{kind}/en"),
            multipart_file("file", "b.vtt", VTT_FR),
        )
        .await;
        let second = Response::of(second).await;
        assert_eq!(
            second.body,
            problem(400, "invalid-attribute", "An attribute is invalid.", "language", Some(detail))
        );
        assert_eq!(get_raw(&s, first["src"].as_str().unwrap()).await.body, VTT_EN);
        let del = call(&s, reqwest::Method::DELETE, &format!("/videos/{id}/{kind}/en"), None).await;
        assert_eq!(del.status, 204);
        post_file(&s, &format!("/videos/{id}/{kind}/en"), "file", "b.vtt", VTT_FR).await;
        assert_eq!(get_raw(&s, first["src"].as_str().unwrap()).await.body, VTT_FR);
    }
}

#[tokio::test]
async fn rate_limit_headers_on_every_asset_route_but_the_asset_host() {
    let s = spawn_server_with(|c| {
        c.rate_limits = "uploads=1000/60s,writes=1000/60s,reads=999/60s".parse().unwrap()
    })
    .await;
    let id = s.create_video("limits").await;
    let mut answers = Vec::new();
    for (path, data) in [
        (format!("/videos/{id}/thumbnail"), PNG),
        (format!("/videos/{id}/captions/en"), VTT_EN),
        (format!("/videos/{id}/chapters/en"), VTT_EN),
        ("/watermarks".to_owned(), PNG),
    ] {
        let r = send_file(&s.http, &s.url, &path, multipart_file("file", "f", data)).await;
        answers.push(("writes", Response::of(r).await));
    }
    let m = reqwest::Method::PATCH;
    answers.push((
        "writes",
        call(&s, m.clone(), &format!("/videos/{id}/captions/en"), Some(json!({"default": true})))
            .await,
    ));
    answers.push((
        "writes",
        call(&s, m, &format!("/videos/{id}/thumbnail"), Some(json!({"timecode": "1"}))).await,
    ));
    for path in [
        format!("/videos/{id}/captions"),
        format!("/videos/{id}/captions/en"),
        format!("/videos/{id}/chapters"),
        format!("/videos/{id}/chapters/en"),
        "/watermarks".to_owned(),
    ] {
        answers.push(("reads", call(&s, reqwest::Method::GET, &path, None).await));
    }
    answers.push((
        "writes",
        call(&s, reqwest::Method::DELETE, &format!("/videos/{id}/captions/en"), None).await,
    ));
    answers.push((
        "writes",
        call(&s, reqwest::Method::DELETE, &format!("/videos/{id}/chapters/en"), None).await,
    ));
    for (i, (bucket, r)) in answers.iter().enumerate() {
        assert!(r.status < 300, "answer {i}: {}", r.status);
        let limit = if *bucket == "reads" { "999" } else { "1000" };
        assert_eq!(r.headers["x-ratelimit-limit"], limit, "answer {i}");
        assert!(r.headers.contains_key("x-ratelimit-remaining"), "answer {i}");
        assert!(r.headers.contains_key("x-ratelimit-retry-after"), "answer {i}");
    }
    post_file(&s, &format!("/videos/{id}/captions/en"), "file", "a.vtt", VTT_EN).await;
    let asset = get_raw(&s, &format!("{}/vod/{id}/captions/en.vtt", s.url)).await;
    assert_eq!(asset.status, 200);
    assert!(!asset.headers.contains_key("x-ratelimit-limit"), "the asset host is not counted");
}

#[tokio::test]
async fn deleting_or_expiring_a_video_deletes_its_assets() {
    let s = spawn_server_with(|c| c.faults.unfinished_ttl = Duration::from_secs(2)).await;
    let kept = s.create_video("deleted").await;
    let expiring = s.create_video("expiring").await;
    for id in [&kept, &expiring] {
        post_file(&s, &format!("/videos/{id}/captions/en"), "file", "a.vtt", VTT_EN).await;
        post_file(&s, &format!("/videos/{id}/thumbnail"), "file", "a.png", PNG).await;
    }
    let dir = |id: &str| s.data.path().join("videos").join(id);
    assert!(dir(&kept).join("captions/en.vtt").exists());
    let r = call(&s, reqwest::Method::DELETE, &format!("/videos/{kept}"), None).await;
    assert_eq!(r.status, 204);
    assert!(!dir(&kept).exists());
    assert_eq!(get_raw(&s, &format!("{}/vod/{kept}/captions/en.vtt", s.url)).await.status, 404);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(get_raw(&s, &format!("{}/vod/{expiring}/thumbnail.jpg", s.url)).await.status, 404);
    assert!(!dir(&expiring).exists(), "an unfinished video expiring takes its assets along");
}

#[tokio::test]
async fn creation_fields_are_kept_or_refused() {
    let s = spawn_server_with(|_| {}).await;
    let wm = post_file(&s, "/watermarks", "file", "w.png", PNG).await;
    let wm_id = wm["watermarkId"].as_str().unwrap().to_owned();
    assert!(wm_id.starts_with("watermark_"));
    assert!(wm["createdAt"].as_str().unwrap().ends_with("+00:00"));
    let body = json!({
        "title": "fields",
        "clip": {"startTimecode": "00:00:01", "endTimecode": "00:00:04.500"},
        "watermark": {"id": wm_id, "top": "10px", "left": "5%", "width": "initial",
            "opacity": "70%"},
        "transcript": true,
        "transcriptSummary": false,
        "transcriptSummaryAttributes": ["abstract", "takeaways"],
    });
    let r = call(&s, reqwest::Method::POST, "/videos", Some(body.clone())).await;
    assert_eq!(r.status, 201);
    let id = r.json()["videoId"].as_str().unwrap().to_owned();
    let kept = record(&s, &id);
    for k in ["clip", "watermark", "transcript", "transcriptSummary", "transcriptSummaryAttributes"]
    {
        assert_eq!(kept[k], body[k], "{k} kept in video.json");
    }

    let refused = |body: Value| call(&s, reqwest::Method::POST, "/videos", Some(body));
    let names = |r: &Response| -> Vec<String> {
        r.json()["problems"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let r = refused(json!({"title": "t",
        "clip": {"startTimecode": "1:00", "endTimecode": "00:00:60"},
        "transcriptSummaryAttributes": ["summary"]}))
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        names(&r),
        ["clip.startTimecode", "clip.endTimecode", "transcriptSummaryAttributes"]
    );
    let r = refused(json!({"title": "t", "clip": {"startTimecode": "00:00:05",
        "endTimecode": "00:00:04"}}))
    .await;
    assert_eq!(names(&r), ["clip.endTimecode"]);
    let r = refused(json!({"title": "t", "watermark": {"top": "10px"}})).await;
    assert_eq!(r.json()["type"], "https://docs.api.video/reference/attribute-required");
    assert_eq!(r.json()["name"], "watermark.id");
    let r = refused(json!({"title": "t", "watermark": {"id": "watermark_nope", "top": "10",
        "opacity": "70px"}}))
    .await;
    assert_eq!(names(&r), ["watermark.id", "watermark.top", "watermark.opacity"]);
    assert_eq!(r.json()["type"], "https://docs.api.video/reference/invalid-attribute");
    let r = refused(json!({"title": "t", "transcript": "yes"})).await;
    assert_eq!(names(&r), ["transcript"]);

    // Watermarks: listed, deleted, and a deleted one can no longer be used.
    let list = s.get_json("/watermarks").await;
    assert_eq!(list["data"], json!([wm]));
    let gif = send_file(
        &s.http,
        &s.url,
        "/watermarks",
        multipart_file("f", "w.webp", b"RIFF\0\0\0\0WEBPVP8 "),
    )
    .await;
    assert_eq!(
        Response::of(gif).await.json()["title"],
        "Only [jpeg, jpg, JPG, JPEG, png, PNG] extensions are supported."
    );
    let del = call(&s, reqwest::Method::DELETE, &format!("/watermarks/{wm_id}"), None).await;
    assert_eq!(del.status, 204);
    let del = call(&s, reqwest::Method::DELETE, &format!("/watermarks/{wm_id}"), None).await;
    assert_eq!(
        del.body,
        problem(
            404,
            "resource-not-found",
            "The requested resource was not found.",
            "watermarkId",
            None
        )
    );
    let r = refused(json!({"title": "t", "watermark": {"id": wm_id}})).await;
    assert_eq!(names(&r), ["watermark.id"]);
}
