//! The double answers in the contract's types: every answer it sends, read into the
//! `avbatch-api` type the product reads it as and written back, is the same bytes. A member the
//! double sends that the contract does not know (or a `null` the contract would drop, or a
//! time in another format) fails here, so the two halves cannot drift apart silently.

use std::fmt::Debug;

use avbatch_api::{
    AccessToken, Caption, Chapter, Page, Problem, UploadToken, Video, VideoId, VideoStatus,
    WatermarkImage,
};
use avbatch_serve::testing::{basic_auth, multipart_file, spawn_server, TestServer, KEY};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, to_value};

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR a tiny png";
const VTT: &[u8] = b"WEBVTT\n\n00:00.000 --> 00:01.000\nHello\n";

/// What one answer was: its status and its exact body.
struct Answer {
    status: u16,
    body: Vec<u8>,
}

/// The requests this test makes of the double, each answer kept whole.
struct Double(TestServer);

impl Double {
    async fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        let response = request.header("Authorization", basic_auth(KEY)).send().await.unwrap();
        let status = response.status().as_u16();
        Answer { status, body: response.bytes().await.unwrap().to_vec() }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.0.url)
    }

    async fn json(&self, method: reqwest::Method, path: &str, body: serde_json::Value) -> Answer {
        self.send(self.0.http.request(method, self.url(path)).json(&body)).await
    }

    async fn get(&self, path: &str) -> Answer {
        self.send(self.0.http.get(self.url(path))).await
    }

    async fn file(&self, path: &str, name: &str, bytes: &[u8], range: Option<&str>) -> Answer {
        let (content_type, body) = multipart_file("file", name, bytes);
        let mut request =
            self.0.http.post(self.url(path)).header("Content-Type", content_type).body(body);
        if let Some(range) = range {
            request = request.header("Content-Range", range);
        }
        self.send(request).await
    }
}

/// Reads `answer` as `T` and writes it back: the same bytes, or the test fails naming both.
fn round_trips<T: DeserializeOwned + Serialize + Debug>(what: &str, answer: &Answer) -> T {
    let text = String::from_utf8_lossy(&answer.body);
    let value: T = serde_json::from_slice(&answer.body)
        .unwrap_or_else(|e| panic!("{what}: the contract cannot read {text}: {e}"));
    let again = serde_json::to_vec(&value).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&again),
        text,
        "{what}: the double sent members the contract does not carry (or carries otherwise)"
    );
    value
}

#[tokio::test]
async fn every_answer_of_the_double_is_a_contract_type_byte_for_byte() {
    use reqwest::Method;
    let d = Double(spawn_server().await);

    let token = d.json(Method::POST, "/auth/api-key", json!({"apiKey": KEY})).await;
    round_trips::<AccessToken>("POST /auth/api-key", &token);

    let watermark = d.file("/watermarks", "mark.png", PNG, None).await;
    let watermark: WatermarkImage = round_trips("POST /watermarks", &watermark);

    let everything = json!({
        "title": "Every field", "description": "All of them", "tags": ["a", "b"],
        "metadata": [{"key": "k", "value": "v"}], "public": false, "panoramic": true,
        "mp4Support": false, "playerId": "pt123", "language": "fr",
        "clip": {"startTimecode": "00:00:01", "endTimecode": "00:00:05"},
        "watermark": {"id": watermark.watermark_id, "top": "10px", "opacity": "50%"},
        "transcript": true, "transcriptSummary": true,
        "transcriptSummaryAttributes": ["abstract"],
    });
    let created = d.json(Method::POST, "/videos", everything).await;
    assert_eq!(created.status, 201);
    let full: Video = round_trips("POST /videos (every field)", &created);
    let plain = d.json(Method::POST, "/videos", json!({"title": "Plain"})).await;
    let plain: Video = round_trips("POST /videos (a title)", &plain);
    let status = d.get(&format!("/videos/{}/status", plain.video_id)).await;
    round_trips::<VideoStatus>("GET /videos/{id}/status (empty)", &status);

    // A first chunk of two (bytes), then a whole source in one request.
    let chunk = vec![7u8; 5 * 1024 * 1024];
    let path = format!("/videos/{}/source", full.video_id);
    let first = d.file(&path, "a.mp4", &chunk, Some("bytes 0-5242879/5242890")).await;
    assert_eq!(first.status, 201, "{}", String::from_utf8_lossy(&first.body));
    round_trips::<VideoId>("a chunk that does not complete the source", &first);
    let status = d.get(&format!("/videos/{}/status", full.video_id)).await;
    round_trips::<VideoStatus>("GET /videos/{id}/status (part of it)", &status);
    let path = format!("/videos/{}/source", plain.video_id);
    let whole = d.file(&path, "b.mp4", b"a whole small source", None).await;
    round_trips::<Video>("the chunk that completes the source", &whole);
    let status = d.get(&format!("/videos/{}/status", plain.video_id)).await;
    round_trips::<VideoStatus>("GET /videos/{id}/status (uploaded)", &status);

    let id = &plain.video_id;
    let thumb = d.file(&format!("/videos/{id}/thumbnail"), "t.png", PNG, None).await;
    round_trips::<Video>("POST /videos/{id}/thumbnail", &thumb);
    let caption = d.file(&format!("/videos/{id}/captions/en"), "en.vtt", VTT, None).await;
    round_trips::<Caption>("POST /videos/{id}/captions/en", &caption);
    let chapter = d.file(&format!("/videos/{id}/chapters/en"), "c.vtt", VTT, None).await;
    round_trips::<Chapter>("POST /videos/{id}/chapters/en", &chapter);
    let path = format!("/videos/{id}/captions/en");
    let default = d.json(Method::PATCH, &path, json!({"default": true}));
    round_trips::<Caption>("PATCH /videos/{id}/captions/en", &default.await);

    round_trips::<Page<Video>>("GET /videos", &d.get("/videos?pageSize=1&currentPage=2").await);
    round_trips::<Page<Caption>>("GET captions", &d.get(&format!("/videos/{id}/captions")).await);
    round_trips::<Page<Chapter>>("GET chapters", &d.get(&format!("/videos/{id}/chapters")).await);
    round_trips::<Page<WatermarkImage>>("GET /watermarks", &d.get("/watermarks").await);
    let upload_token = d.json(Method::POST, "/upload-tokens", json!({"ttl": 60})).await;
    round_trips::<UploadToken>("POST /upload-tokens", &upload_token);
    round_trips::<Page<UploadToken>>("GET /upload-tokens", &d.get("/upload-tokens").await);

    let missing = d.get("/videos/viNOSUCHVIDEO").await;
    assert_eq!(missing.status, 404);
    round_trips::<Problem>("404", &missing);
    let bad = d.json(Method::POST, "/videos", json!({"tags": 1, "public": "yes"})).await;
    let problem: Problem = round_trips("400 with every problem listed", &bad);
    assert_eq!(problem.status, Some(400));
    assert!(problem.extra["problems"].as_array().is_some_and(|p| p.len() == 3), "{problem:?}");
}

/// The problem an answer carries: its type's slug and the member it names.
fn problem_of(answer: &Answer) -> (u16, String, Option<String>) {
    let p: Problem = serde_json::from_slice(&answer.body).expect("a problem");
    let slug = p.kind.rsplit('/').next().unwrap_or_default().to_owned();
    (answer.status, slug, p.name)
}

#[tokio::test]
async fn the_double_reads_each_request_body_as_the_contract_writes_it_and_names_what_is_wrong() {
    use reqwest::Method;
    let double = Double(spawn_server().await);
    // What the contract's request types write is taken.
    let auth = avbatch_api::Authenticate { api_key: KEY.into() };
    let answer = double.json(Method::POST, "/auth/api-key", to_value(&auth).unwrap()).await;
    let pair: AccessToken = round_trips("auth", &answer);
    let refresh = avbatch_api::Refresh { refresh_token: pair.refresh_token };
    let answer = double.json(Method::POST, "/auth/refresh", to_value(&refresh).unwrap()).await;
    round_trips::<AccessToken>("refresh", &answer);
    let ttl = avbatch_api::UploadTokenRequest { ttl: Some(60) };
    let answer = double.json(Method::POST, "/upload-tokens", to_value(ttl).unwrap()).await;
    assert_eq!(round_trips::<UploadToken>("token", &answer).ttl, 60);

    // A body that is not the payload is answered with the member it names.
    let id = double.json(Method::POST, "/videos", json!({"title": "t"})).await;
    let id = round_trips::<Video>("video", &id).video_id;
    let thumbnail = format!("/videos/{id}/thumbnail");
    let cases = [
        ("/auth/api-key", json!({}), (400, "attribute-required", Some("apiKey"))),
        ("/auth/api-key", json!({"apiKey": 7}), (400, "invalid-attribute", Some("apiKey"))),
        ("/auth/refresh", json!([1]), (400, "invalid-payload", None)),
        ("/upload-tokens", json!({"ttl": -1}), (400, "invalid-attribute", Some("ttl"))),
        ("/upload-tokens", json!({"ttl": 2147483648u64}), (400, "invalid-attribute", Some("ttl"))),
        (&thumbnail, json!({}), (400, "attribute-required", Some("timecode"))),
        (&thumbnail, json!({"timecode": 3}), (400, "invalid-attribute", Some("timecode"))),
        (&thumbnail, json!({"timecode": "soon"}), (400, "invalid-attribute", Some("timecode"))),
    ];
    for (path, body, (status, slug, name)) in cases {
        let method = if path == thumbnail { Method::PATCH } else { Method::POST };
        let got = problem_of(&double.json(method, path, body.clone()).await);
        let want = (status, slug.to_owned(), name.map(str::to_owned));
        assert_eq!(got, want, "{path} {body}");
    }
}
