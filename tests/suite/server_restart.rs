//! `kill -9` the server mid-upload, restart it on the same data folder, finish the upload (#3).

use crate::common;

use common::{
    basic_auth, create_video_at, multipart_file, pattern, spawn_server_process, KEY, MIB,
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
