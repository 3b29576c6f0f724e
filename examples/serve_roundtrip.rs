//! Starts `avbatch serve` in-process on 127.0.0.1, uploads a generated file to it the way
//! api.video expects (create the video, then `Content-Range: bytes` chunks of 5 MiB), downloads
//! the source back from `assets.mp4`, and checks it byte for byte. Exits 0 on success.
//!
//! `cargo run --release --example serve_roundtrip`

use std::time::Instant;

use anyhow::{bail, ensure, Context};
use avbatch_serve::{RateLimits, Server, ServerConfig};
use serde_json::{json, Value};

const CHUNK: usize = 5 * 1024 * 1024;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let mut config = ServerConfig::new(data.path());
    config.rate_limits = RateLimits::production();
    let server = Server::start(config, "127.0.0.1:0".parse()?).await?;
    let key = server.generated_key().context("a generated key")?.expose().to_owned();
    let url = server.url().to_owned();
    println!("server: {url} (data in {})", data.path().display());

    let http = reqwest::Client::new();
    let token: Value = http
        .post(format!("{url}/auth/api-key"))
        .json(&json!({"apiKey": key}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let bearer = format!("Bearer {}", token["access_token"].as_str().context("access_token")?);

    let source: Vec<u8> = (0..(2 * CHUNK + 123_457))
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).rotate_left(7) as u8)
        .collect();
    let video: Value = http
        .post(format!("{url}/videos"))
        .header("Authorization", &bearer)
        .json(&json!({
            "title": "Round trip",
            "tags": ["demo"],
            "metadata": [{"key": "origin", "value": "serve_roundtrip"}]
        }))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let id = video["videoId"].as_str().context("videoId")?.to_owned();

    let started = Instant::now();
    let total = source.len();
    for (n, chunk) in source.chunks(CHUNK).enumerate() {
        let from = n * CHUNK;
        let to = from + chunk.len() - 1;
        let form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(chunk.to_vec()).file_name("roundtrip.mp4"),
        );
        let resp = http
            .post(format!("{url}/videos/{id}/source"))
            .header("Authorization", &bearer)
            .header("Content-Range", format!("bytes {from}-{to}/{total}"))
            .multipart(form)
            .send()
            .await?;
        let status = resp.status();
        let body: Value = resp.json().await?;
        ensure!(status.as_u16() == 201, "chunk {} answered {status}: {body}", n + 1);
        println!("chunk {} bytes {from}-{to}/{total}: {status}", n + 1);
    }
    let status: Value = http
        .get(format!("{url}/videos/{id}/status"))
        .header("Authorization", &bearer)
        .send()
        .await?
        .json()
        .await?;
    ensure!(status["ingest"]["status"] == "uploaded", "status after the last chunk: {status}");

    let mp4 = video["assets"]["mp4"].as_str().context("assets.mp4")?;
    let back = http.get(mp4).send().await?.error_for_status()?.bytes().await?;
    if back.as_ref() != source.as_slice() {
        bail!(
            "assets.mp4 differs from what was sent ({} bytes back, {} sent)",
            back.len(),
            source.len()
        );
    }
    println!(
        "video {id}: {total} bytes in {} chunks, byte-exact through {mp4} ({:.0?})",
        total.div_ceil(CHUNK),
        started.elapsed()
    );
    server.shutdown().await?;
    Ok(())
}
