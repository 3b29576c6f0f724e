//! `kill -9` the server mid-upload, restart it on the same data folder, finish the upload (#3);
//! assets and the encoding's clock survive the same (#14, #15).

use crate::common;

use common::{
    basic_auth, create_video_at, multipart_file, pattern, post_multipart_at, spawn_server_process,
    status_at as status, upload_whole_at, KEY, MIB,
};
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread")]
async fn everything_acknowledged_survives_kill_9() {
    let data = tempfile::tempdir().unwrap();
    let http = reqwest::Client::new();
    let auth = basic_auth(KEY);
    let server = spawn_server_process(data.path(), &[]);
    let url = server.url.clone();

    // State before the crash: a part-mode video with parts 1 and 2 of 3, a bytes-mode video with
    // its first chunk, an upload token, a bearer token.
    let source = pattern(10 * MIB + 4321, 5);
    let parts_video = create_video_at(&http, &url, "parts").await;
    let bytes_video = create_video_at(&http, &url, "bytes").await;
    let send = |url: String, video: String, range: String, chunk: Vec<u8>| {
        let http = http.clone();
        let auth = auth.clone();
        async move {
            let (ct, body) = multipart_file("file", "movie.mp4", &chunk);
            http.post(format!("{url}/videos/{video}/source"))
                .header("Authorization", auth)
                .header("Content-Type", ct)
                .header("Content-Range", range)
                .body(body)
                .send()
                .await
                .unwrap()
        }
    };
    let (p1, p2, p3) = (&source[..5 * MIB], &source[5 * MIB..10 * MIB], &source[10 * MIB..]);
    for (n, chunk) in [(1, p1), (2, p2)] {
        let r = send(url.clone(), parts_video.clone(), format!("part {n}/3"), chunk.to_vec()).await;
        assert_eq!(r.status(), 201);
    }
    let total = source.len();
    let r = send(
        url.clone(),
        bytes_video.clone(),
        format!("bytes 0-{}/{total}", 5 * MIB - 1),
        p1.to_vec(),
    )
    .await;
    assert_eq!(r.status(), 201);
    let token: Value = http
        .post(format!("{url}/upload-tokens"))
        .header("Authorization", &auth)
        .json(&json!({"ttl": 0}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let bearer: Value = http
        .post(format!("{url}/auth/api-key"))
        .json(&json!({"apiKey": KEY}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let bearer = format!("Bearer {}", bearer["access_token"].as_str().unwrap());

    server.kill9();
    let server = spawn_server_process(data.path(), &[]);
    let url = server.url.clone();

    // After the restart: the bearer token, the videos, their chunks and the token are all there.
    let status: Value = http
        .get(format!("{url}/videos/{parts_video}/status"))
        .header("Authorization", &bearer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["ingest"]["receivedParts"], json!({"parts": [1, 2], "total": 3}), "{status}");
    assert_eq!(status["ingest"]["status"], "uploading");
    let status: Value = http
        .get(format!("{url}/videos/{bytes_video}/status"))
        .header("Authorization", &bearer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        status["ingest"]["receivedBytes"],
        json!([{"from": 0, "to": 5 * MIB - 1, "total": total}])
    );
    let t = http
        .get(format!("{url}/upload-tokens/{}", token["token"].as_str().unwrap()))
        .header("Authorization", &bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(t.status(), 200, "the upload token survived");

    // Finish both uploads and read them back byte for byte.
    let done = send(url.clone(), parts_video.clone(), "part 3/3".into(), p3.to_vec()).await;
    assert_eq!(done.status(), 201);
    let video: Value = done.json().await.unwrap();
    let back = http
        .get(video["assets"]["mp4"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(back.as_ref() == source.as_slice(), "part-mode source differs after the restart");
    let r = send(
        url.clone(),
        bytes_video.clone(),
        format!("bytes {}-{}/{total}", 5 * MIB, total - 1),
        source[5 * MIB..].to_vec(),
    )
    .await;
    assert_eq!(r.status(), 201);
    let back = http
        .get(format!("{url}/vod/{bytes_video}/mp4/source.mp4"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(back.as_ref() == source.as_slice(), "bytes-mode source differs after the restart");
    // A chunk acknowledged before the crash is still refused as already sent.
    let again = send(url.clone(), parts_video.clone(), "part 1/3".into(), p1.to_vec()).await;
    assert_eq!(again.status(), 400);
}

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR a tiny png";
const VTT_EN: &[u8] = b"WEBVTT\n\n00:00.000 --> 00:01.000\nHello \xc3\xa9\n";
const VTT_FR: &[u8] = b"WEBVTT\n\n00:00.000 --> 00:01.000\nBonjour\n";

#[tokio::test(flavor = "multi_thread")]
async fn assets_survive_kill_9() {
    let data = tempfile::tempdir().unwrap();
    let http = reqwest::Client::new();
    let server = spawn_server_process(data.path(), &[]);
    let id = create_video_at(&http, &server.url, "restart").await;
    let url = server.url.clone();
    for (path, name, data) in [
        (format!("/videos/{id}/thumbnail"), "a", PNG),
        (format!("/videos/{id}/captions/en"), "a", VTT_EN),
        (format!("/videos/{id}/chapters/fr"), "a", VTT_FR),
    ] {
        let (ct, body) = multipart_file("f", name, data);
        let r = post_multipart_at(&http, &url, &path, ct, body).await;
        assert_eq!(r.status(), 200, "POST {path}");
    }
    let r = http
        .patch(format!("{url}/videos/{id}/captions/en"))
        .header("Authorization", basic_auth(KEY))
        .json(&json!({"default": true}))
        .send()
        .await;
    assert_eq!(r.unwrap().status(), 200);
    let (ct, body) = multipart_file("f", "w.png", PNG);
    let r = post_multipart_at(&http, &url, "/watermarks", ct, body).await;
    assert_eq!(r.status(), 200);
    let wm: Value = r.json().await.unwrap();
    server.kill9();

    let server = spawn_server_process(data.path(), &[]);
    let url = server.url.clone();
    let get = |p: String| {
        let http = http.clone();
        async move { http.get(p).header("Authorization", basic_auth(KEY)).send().await.unwrap() }
    };
    let thumb = get(format!("{url}/vod/{id}/thumbnail.jpg")).await;
    assert_eq!(thumb.bytes().await.unwrap().as_ref(), PNG);
    let caption: Value = get(format!("{url}/videos/{id}/captions/en")).await.json().await.unwrap();
    assert_eq!(caption["default"], true);
    assert_eq!(get(format!("{url}/vod/{id}/captions/en.vtt")).await.bytes().await.unwrap(), VTT_EN);
    assert_eq!(get(format!("{url}/vod/{id}/chapters/fr.vtt")).await.bytes().await.unwrap(), VTT_FR);
    let marks: Value = get(format!("{url}/watermarks")).await.json().await.unwrap();
    assert_eq!(marks["data"][0]["watermarkId"], wm["watermarkId"]);
}

/// The state of each quality of a status.
fn statuses(v: &Value) -> Vec<String> {
    let q = v["encoding"]["qualities"].as_array().expect("qualities");
    q.iter().map(|q| q["status"].as_str().unwrap().to_owned()).collect()
}

/// Sends a whole small source in one request.
async fn upload(http: &reqwest::Client, url: &str, id: &str) {
    upload_whole_at(http, url, id, b"not really a movie").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn encoding_goes_on_across_a_restart() {
    // The encoding's clock is the source's completion as stored on disk: a restart neither
    // starts it again nor jumps it. Read without timing the machine: an hour's encoding is
    // still under way after a kill -9 and a restart, and is done at once when the stored
    // completion is moved an hour back while the server is down.
    let data = tempfile::tempdir().unwrap();
    let http = reqwest::Client::new();
    let hour = ["--encoding-time", "1h"];
    let server = spawn_server_process(data.path(), &hour);
    let id = create_video_at(&http, &server.url, "restart").await;
    upload(&http, &server.url, &id).await;
    assert_eq!(status(&http, &server.url, &id).await["encoding"]["playable"], false);
    server.kill9();
    let server = spawn_server_process(data.path(), &hour);
    let s = status(&http, &server.url, &id).await;
    assert_eq!(s["encoding"]["playable"], false, "the clock did not jump: {s}");
    assert!(statuses(&s).iter().all(|q| q == "waiting"), "{s}");
    server.kill9();

    let record = data.path().join("videos").join(&id).join("video.json");
    let mut video: Value = serde_json::from_slice(&std::fs::read(&record).unwrap()).unwrap();
    let completed = video["sourceCompletedAt"].as_str().expect("the completion is stored");
    let completed = chrono::DateTime::parse_from_rfc3339(completed).unwrap();
    let earlier = completed - chrono::Duration::seconds(3601);
    video["sourceCompletedAt"] = Value::String(earlier.to_rfc3339());
    std::fs::write(&record, serde_json::to_vec(&video).unwrap()).unwrap();
    let server = spawn_server_process(data.path(), &hour);
    let s = status(&http, &server.url, &id).await;
    assert!(statuses(&s).iter().all(|q| q == "encoded"), "counted from the stored completion: {s}");
    assert_eq!(s["encoding"]["playable"], true);
}
