//! The double at hand for tests, its own and the product's: an in-process server on
//! 127.0.0.1:0 with its own data folder and a known key, and the requests tests make of it
//! (Basic auth, multipart bodies, byte patterns, raw HTTP/1.1 on a socket). Tests only: it
//! unwraps freely.

use std::time::Duration;

use avbatch_api::secret::ApiKey;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::{RateLimits, Server, ServerConfig};

/// The API key every test server accepts.
pub const KEY: &str = "test-key-0123456789";
pub const MIB: usize = 1024 * 1024;

/// An in-process server on 127.0.0.1:0 with its own temporary data folder; shuts down on drop.
pub struct TestServer {
    pub server: Server,
    pub url: String,
    pub data: tempfile::TempDir,
    pub http: reqwest::Client,
}

/// A server with no rate limits and no faults.
pub async fn spawn_server() -> TestServer {
    spawn_server_with(|_| {}).await
}

/// A server whose config the caller adjusts (rate limits, faults, token ttl, …).
pub async fn spawn_server_with(adjust: impl FnOnce(&mut ServerConfig)) -> TestServer {
    let data = tempfile::tempdir().expect("temp dir");
    let mut config = ServerConfig::new(data.path());
    config.api_keys = vec![ApiKey::new(KEY)];
    config.rate_limits = RateLimits::off();
    adjust(&mut config);
    let server =
        Server::start(config, "127.0.0.1:0".parse().unwrap()).await.expect("server starts");
    let url = server.url().to_owned();
    TestServer { server, url, data, http: reqwest::Client::new() }
}

impl TestServer {
    /// `Authorization` value for Basic auth with the test key.
    pub fn basic(&self) -> String {
        basic_auth(KEY)
    }

    /// `GET path` with Basic auth; the answer must be 200 JSON. Tried again while the server's
    /// injected faults (503s, 429 storms) refuse it: the checks look at the server, not its dice.
    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        for _ in 0..100 {
            let resp = self
                .http
                .get(format!("{}{path}", self.url))
                .header("Authorization", self.basic())
                .send()
                .await
                .expect("GET reaches the server");
            if matches!(resp.status().as_u16(), 429 | 503) {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                continue;
            }
            assert_eq!(resp.status().as_u16(), 200, "GET {path} must answer 200");
            return resp.json().await.expect("GET answers JSON");
        }
        panic!("GET {path} kept answering 503/429")
    }

    /// `GET /videos/{id}/status`.
    pub async fn status_of(&self, id: &str) -> serde_json::Value {
        self.get_json(&format!("/videos/{id}/status")).await
    }

    /// Every video (first 100).
    pub async fn all_videos(&self) -> Vec<serde_json::Value> {
        self.get_json("/videos?pageSize=100").await["data"]
            .as_array()
            .expect("a data array")
            .clone()
    }

    /// A POST of `body` as JSON with Basic auth; the answer's JSON (whatever the status).
    pub async fn post_json(&self, path: &str, body: &serde_json::Value) -> serde_json::Value {
        let resp = self
            .http
            .post(format!("{}{path}", self.url))
            .header("Authorization", self.basic())
            .json(body)
            .send()
            .await;
        resp.unwrap_or_else(|e| panic!("POST {path} reaches the server: {e}"))
            .json()
            .await
            .unwrap_or_else(|e| panic!("POST {path} answers JSON: {e}"))
    }

    /// `POST /videos` with a title; returns the new video's id.
    pub async fn create_video(&self, title: &str) -> String {
        create_video_at(&self.http, &self.url, title).await
    }

    /// The stored source of a video, through the asset host: a private video's through the
    /// token a GET of it gives, as a player reads it.
    pub async fn source_of(&self, id: &str) -> Vec<u8> {
        let plain = format!("{}/vod/{id}/mp4/source.mp4", self.url);
        let mut resp = self.http.get(plain).send().await.expect("GET source");
        if resp.status() == reqwest::StatusCode::FORBIDDEN {
            let video = self.get_json(&format!("/videos/{id}")).await;
            let url = private_source_url(&self.url, id, &video).expect("a private video's token");
            resp = self.http.get(url).send().await.expect("GET source");
        }
        resp.bytes().await.expect("source bytes").to_vec()
    }
}

/// The source URL of the private video `id` on the server at `url`, with the token `video` (its
/// answer to a GET) carries, whether or not its `assets` offer an mp4; `None` for a public one.
pub fn private_source_url(url: &str, id: &str, video: &serde_json::Value) -> Option<String> {
    let player = video["assets"]["player"].as_str()?;
    let (_, token) = player.split_once("?token=")?;
    Some(format!("{url}/vod/{id}/token/{token}/mp4/source.mp4"))
}

/// `POST /videos` with a title on any server taking the test key (in-process or a child
/// process); returns the new video's id.
pub async fn create_video_at(http: &reqwest::Client, url: &str, title: &str) -> String {
    let resp = http
        .post(format!("{url}/videos"))
        .header("Authorization", basic_auth(KEY))
        .json(&serde_json::json!({ "title": title }))
        .send()
        .await
        .expect("POST /videos reaches the server");
    assert_eq!(resp.status().as_u16(), 201, "POST /videos {{title:{title:?}}} must answer 201");
    let v: serde_json::Value = resp.json().await.expect("POST /videos answers JSON");
    v["videoId"]
        .as_str()
        .unwrap_or_else(|| panic!("POST /videos answer has no videoId: {v}"))
        .to_owned()
}

pub fn basic_auth(key: &str) -> String {
    use base64::Engine;
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{key}:")))
}

/// Deterministic test content: `len` bytes that differ at every offset and between seeds.
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((i as u64).wrapping_mul(2654435761) >> 7) as u8 ^ seed ^ (i / 4093) as u8)
        .collect()
}

/// A multipart/form-data body with one file part (field `name`, file name `filename`).
/// Returns (content type, body).
pub fn multipart_file(name: &str, filename: &str, data: &[u8]) -> (String, Vec<u8>) {
    multipart(&[], Some((name, filename, data)), &[])
}

/// A multipart body: text fields before the file, an optional file, text fields after it.
pub fn multipart(
    before: &[(&str, &str)],
    file: Option<(&str, &str, &[u8])>,
    after: &[(&str, &str)],
) -> (String, Vec<u8>) {
    let boundary = "avbatchtestboundary7c1e0f";
    let mut body = Vec::new();
    let text = |body: &mut Vec<u8>, name: &str, value: &str| {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n\
                 {value}\r\n"
            )
            .as_bytes(),
        );
    };
    for (n, v) in before {
        text(&mut body, n, v);
    }
    if let Some((name, filename, data)) = file {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; \
                 filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    for (n, v) in after {
        text(&mut body, n, v);
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// `GET /videos/{id}/status` on any server taking the test key; it must answer 200.
pub async fn status_at(http: &reqwest::Client, url: &str, id: &str) -> serde_json::Value {
    let resp = http
        .get(format!("{url}/videos/{id}/status"))
        .header("Authorization", basic_auth(KEY))
        .send()
        .await
        .expect("GET /videos/{id}/status reaches the server");
    assert_eq!(resp.status().as_u16(), 200, "GET /videos/{id}/status must answer 200");
    resp.json().await.expect("a status as JSON")
}

/// Sends `data` as a video's whole source in one request; it must answer 201.
pub async fn upload_whole_at(http: &reqwest::Client, url: &str, id: &str, data: &[u8]) {
    let (content_type, body) = multipart_file("file", "movie.mp4", data);
    let path = format!("/videos/{id}/source");
    let resp = post_multipart_at(http, url, &path, content_type, body).await;
    assert_eq!(resp.status().as_u16(), 201, "a whole source is answered 201");
}

/// `POST path` of a multipart body with Basic auth, on any server taking the test key.
pub async fn post_multipart_at(
    http: &reqwest::Client,
    url: &str,
    path: &str,
    content_type: String,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    http.post(format!("{url}{path}"))
        .header("Authorization", basic_auth(KEY))
        .header("Content-Type", content_type)
        .body(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {path} reaches the server: {e}"))
}

/// A new upload token that never expires.
pub async fn upload_token_at(http: &reqwest::Client, url: &str) -> String {
    let resp = http
        .post(format!("{url}/upload-tokens"))
        .header("Authorization", basic_auth(KEY))
        .json(&serde_json::json!({"ttl": 0}))
        .send()
        .await;
    let token: serde_json::Value =
        resp.expect("POST /upload-tokens").json().await.expect("a token as JSON");
    token["token"].as_str().expect("a token").to_owned()
}

/// `POST /upload?token=…` of a multipart body: the status and the JSON answer (null if none).
pub async fn post_upload_at(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    content_type: String,
    body: reqwest::Body,
) -> (u16, serde_json::Value) {
    let resp = http
        .post(format!("{url}/upload?token={token}"))
        .header("Content-Type", content_type)
        .body(body)
        .send()
        .await;
    let resp = resp.expect("POST /upload reaches the server");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(serde_json::Value::Null))
}

// Raw HTTP/1.1 on a socket: what connection handling is tested with (a request left half-sent,
// a connection kept idle), where a client library would hide the socket.

/// `GET /videos` with the test key on `stream`, keeping the connection open; the status.
pub async fn get_videos(stream: &mut TcpStream) -> std::io::Result<u16> {
    let head =
        format!("GET /videos HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\n\r\n", basic_auth(KEY));
    stream.write_all(head.as_bytes()).await?;
    read_answer(stream).await
}

/// Reads one answer (head and `Content-Length` body) from `stream`; its status.
pub async fn read_answer(stream: &mut TcpStream) -> std::io::Result<u16> {
    let mut got = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
            let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            while got.len() < end + 4 + len {
                let n = stream.read(&mut buf).await?;
                if n == 0 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
                got.extend_from_slice(&buf[..n]);
            }
            return Ok(status);
        }
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        got.extend_from_slice(&buf[..n]);
    }
}

/// Whether the server closed `stream` (EOF or reset) within `limit`, reading and dropping
/// anything it sends first.
pub async fn closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
    let mut buf = [0u8; 4096];
    tokio::time::timeout(limit, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

/// The head of a `POST /videos/{id}/source` carrying `len` body bytes of `content_type`.
pub fn upload_head(id: &str, content_type: &str, len: usize) -> String {
    format!(
        "POST /videos/{id}/source HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\n\
         Content-Type: {content_type}\r\nContent-Length: {len}\r\n\r\n",
        basic_auth(KEY)
    )
}
