//! A video's creation `source` (issue #16, point 4): a URL fetched in the background, or another
//! video's source copied, becoming the video's source as if it had been uploaded.
//!
//! api.video fetches `source` URLs from the internet; this double must never leave the machine.
//! A URL is fetched only when its host is a loopback address (127.0.0.0/8, `::1`) or
//! `localhost` resolving to loopback addresses only (no other name is looked up); the
//! connection then goes to exactly those addresses (no second lookup, no proxy, redirects only
//! to the same host). Anything else fails without a connection being attempted. The body streams
//! to `incoming/`, bounded in size (`--source-max-bytes`) and time (`--source-timeout`), paced by
//! `--bandwidth` and delayed by `--latency` like a client's connection; once complete it is
//! fsynced and renamed into the video as its single chunk
//! ([`super::store::Store::finish_ingest`]).
//!
//! The state of the ingest is kept in the video's record ([`Ingest`]). A server that stops
//! mid-fetch loses the partial body (`incoming/` is emptied at start), and the ingest is then
//! marked failed rather than restarted: fetching again behind the client's back could hide a
//! source that went away, and a failed ingest is what a client must be able to handle anyway.
//! A failed ingest is the double's own record: api.video documents no state for it, so its
//! status answer reads as `--source-failed-as` says ([`ingest_status`]).

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use reqwest::Url;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;
use tokio::time::Instant;

use super::config::FailedPull;
use super::problem::ApiError;
use super::store::VideoSlot;
use super::upload::UploadState;
use super::video::VideoRecord;
use super::App;

/// How far a video's creation `source` has come; kept in its record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "camelCase")]
pub enum Ingest {
    /// Being fetched or copied.
    Ingesting,
    /// Stored: the video's source is complete.
    Ingested,
    /// Could not be fetched or copied; the video has no source and never will.
    Failed {
        /// Why, for the server's log and `video.json`.
        reason: String,
    },
}

/// What a `source` asks for, once checked at creation.
#[derive(Debug)]
pub enum Job {
    /// Fetch this http(s) URL.
    Fetch(Url),
    /// Copy these files (another video's complete source, in order).
    Copy(Vec<(PathBuf, u64)>),
}

/// Why a fetch or copy failed. The message ends up in the video's record.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    /// The host is not, or does not resolve only to, loopback addresses.
    #[error("`{host}` is not a loopback address: the local server fetches only from this machine")]
    NotLoopback {
        /// The host of the URL.
        host: String,
    },
    /// The host name could not be resolved.
    #[error("cannot resolve `{host}`")]
    Resolve {
        /// The host of the URL.
        host: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The request failed (connection refused, reset, bad answer).
    #[error("cannot fetch the source")]
    Request(#[source] reqwest::Error),
    /// The answer was not a success.
    #[error("the source answered `{0}`")]
    Status(reqwest::StatusCode),
    /// More bytes than `--source-max-bytes`.
    #[error("the source is larger than `{0}` bytes (--source-max-bytes)")]
    TooLarge(u64),
    /// Nothing arrived.
    #[error("the source is empty")]
    Empty,
    /// Not done within `--source-timeout`.
    #[error("the source was not fetched within `{0:?}` (--source-timeout)")]
    TimedOut(Duration),
    /// Writing or reading the local files failed.
    #[error("cannot store the source")]
    Io(#[from] std::io::Error),
}

/// Whether `source` names a video (`vi…`, letters and digits) rather than a URL.
fn is_video_id(source: &str) -> bool {
    source.len() > 2
        && source.starts_with("vi")
        && source.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn invalid_source(detail: impl Into<String>) -> ApiError {
    ApiError::invalid_attribute("source", detail)
}

/// Checks a creation `source`: an `http(s)` URL with a host, or the id of an existing video whose
/// source is complete. Refusals are `400 invalid-attribute` naming `source`.
pub fn prepare(app: &App, source: &str) -> Result<Job, ApiError> {
    if is_video_id(source) {
        let slot = app.store.video(source).ok_or_else(|| {
            invalid_source(format!("`{source}` is not a URL, nor the id of an existing video"))
        })?;
        let files = app.store.source_files(&slot).ok_or_else(|| {
            invalid_source(format!(
                "video `{source}` has no complete stored source to copy (or the server discards \
                 sources)"
            ))
        })?;
        return Ok(Job::Copy(files));
    }
    let url = Url::parse(source)
        .map_err(|e| invalid_source(format!("`{source}` is not a valid URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid_source(format!("`{source}` is not an http or https URL")));
    }
    if url.host().is_none() {
        return Err(invalid_source(format!("`{source}` has no host")));
    }
    Ok(Job::Fetch(url))
}

/// The refusal of an upload to a video made with a `source` (API.md §3.6).
pub fn upload_refusal(record: &VideoRecord) -> Option<ApiError> {
    let source = record.source.as_deref()?;
    Some(if is_video_id(source) {
        ApiError::bad_request("video-source-already-copied", "The source of the video is copied.")
            .detail(format!("the source is copied from video `{source}`"))
    } else {
        ApiError::bad_request(
            "video-source-already-downloaded",
            "The source of the video is downloaded.",
        )
        .detail("the video was created with a source URL")
    })
}

/// The `ingest` member of a status answer for a video made with a `source`: api.video's
/// `ingesting` while it is fetched or copied and `ingested` once stored (openapi `ingest.status`:
/// "ingesting - gathering the video source file from either a URL, or from cloning").
///
/// api.video documents no state for an ingest that failed, nor a webhook: what the answer says
/// then is `--source-failed-as` (by default `ingesting`, for ever); nothing is received, and the
/// encoding never starts (`encoding.playable` false, no qualities).
pub fn ingest_status(
    ingest: &Ingest,
    upload: &UploadState,
    failed_as: FailedPull,
) -> Option<avbatch_api::Ingest> {
    let status = match (ingest, failed_as) {
        (Ingest::Ingesting, _) => "ingesting",
        (Ingest::Ingested, _) => "ingested",
        (Ingest::Failed { .. }, FailedPull::Ingesting) => "ingesting",
        (Ingest::Failed { .. }, FailedPull::Missing) => "missing",
        (Ingest::Failed { .. }, FailedPull::Absent) => return None,
    };
    Some(avbatch_api::Ingest { status: Some(status.to_owned()), ..upload.ingest() })
}

/// Starts ingesting `job` into `slot` in the background.
pub fn start(app: Arc<App>, slot: Arc<VideoSlot>, job: Job) {
    tokio::spawn(ingest(app, slot, job));
}

/// Fetches or copies the source to a file in `incoming/`, then hands it to the store.
async fn ingest(app: Arc<App>, slot: Arc<VideoSlot>, job: Job) {
    let keep = !app.store.discards();
    let path = app.store.incoming_path();
    let dest = keep.then_some(path.as_path());
    let result = match job {
        Job::Fetch(url) => {
            let limits = app.faults.config().source_pull;
            match tokio::time::timeout(limits.timeout, fetch(&app, &url, dest)).await {
                Ok(r) => r,
                Err(_) => Err(PullError::TimedOut(limits.timeout)),
            }
        }
        Job::Copy(files) => copy(files, dest).await,
    };
    let result = result.and_then(|len| if len == 0 { Err(PullError::Empty) } else { Ok(len) });
    let id = slot.lock().record.video_id.clone();
    let store_app = app.clone();
    let stored = tokio::task::spawn_blocking(move || match result {
        Ok(len) => {
            tracing::info!(video = %id, bytes = len, "source ingested");
            store_app.store.finish_ingest(&slot, keep.then_some(path.as_path()), len)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&path);
            // The error and its causes, `a: b: c` (the double uses no client code).
            let reason = format!("{:#}", anyhow::Error::new(e));
            tracing::warn!(video = %id, %reason, "source not ingested");
            store_app.store.fail_ingest(&slot, reason)
        }
    })
    .await;
    match stored {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(%e, "cannot record the end of an ingest"),
        Err(e) => tracing::warn!(%e, "the task recording an ingest failed"),
    }
}

/// The loopback addresses `url`'s host stands for, or why it may not be fetched.
async fn loopback_addrs(url: &Url) -> Result<Vec<SocketAddr>, PullError> {
    let host = url.host_str().unwrap_or_default().to_owned();
    let port = url.port_or_known_default().unwrap_or(80);
    let addrs: Vec<SocketAddr> = match ip_literal(&host) {
        Some(ip) => vec![SocketAddr::new(ip, port)],
        // Only `localhost` is looked up (in the hosts file, as a rule): any other name is
        // refused before a query could leave the machine.
        None if host.eq_ignore_ascii_case("localhost") => {
            tokio::net::lookup_host((host.as_str(), port))
                .await
                .map_err(|source| PullError::Resolve { host: host.clone(), source })?
                .collect()
        }
        None => Vec::new(),
    };
    if addrs.is_empty() || !addrs.iter().all(|a| a.ip().is_loopback()) {
        return Err(PullError::NotLoopback { host });
    }
    Ok(addrs)
}

/// The address a URL host spells out (`127.0.0.1`, `[::1]`), if it is one rather than a name.
fn ip_literal(host: &str) -> Option<IpAddr> {
    host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host).parse().ok()
}

/// Streams `url` to `dest` (or nowhere, with `--discard`); returns the length.
async fn fetch(app: &App, url: &Url, dest: Option<&Path>) -> Result<u64, PullError> {
    let addrs = loopback_addrs(url).await?;
    let faults = app.faults.config();
    if !faults.latency.is_zero() {
        tokio::time::sleep(faults.latency).await;
    }
    let max = faults.source_pull.max_bytes;
    let host = url.host_str().unwrap_or_default().to_owned();
    let same_host = host.clone();
    let mut client = reqwest::Client::builder()
        .no_proxy()
        .connect_timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::custom(move |attempt| {
            // Another host would be resolved anew, past the loopback check.
            if attempt.url().host_str() == Some(same_host.as_str()) && attempt.previous().len() < 5
            {
                attempt.follow()
            } else {
                attempt.stop()
            }
        }));
    if ip_literal(&host).is_none() {
        client = client.resolve_to_addrs(&host, &addrs);
    }
    let client = client.build().map_err(PullError::Request)?;
    let resp = client.get(url.clone()).send().await.map_err(PullError::Request)?;
    if !resp.status().is_success() {
        return Err(PullError::Status(resp.status()));
    }
    if resp.content_length().is_some_and(|n| n > max) {
        return Err(PullError::TooLarge(max));
    }
    let mut file = match dest {
        Some(path) => Some(tokio::io::BufWriter::new(tokio::fs::File::create(path).await?)),
        None => None,
    };
    let mut pace = Pace::new(faults.bandwidth);
    let mut len = 0u64;
    let mut body = resp.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(PullError::Request)?;
        len += chunk.len() as u64;
        if len > max {
            return Err(PullError::TooLarge(max));
        }
        if let Some(f) = file.as_mut() {
            f.write_all(&chunk).await?;
        }
        pace.spent(len).await;
    }
    if let Some(mut f) = file {
        f.flush().await?;
        f.into_inner().sync_all().await?;
    }
    Ok(len)
}

/// Concatenates `files` into `dest` (or only measures them, with `--discard`).
async fn copy(files: Vec<(PathBuf, u64)>, dest: Option<&Path>) -> Result<u64, PullError> {
    let dest = dest.map(Path::to_owned);
    let copied = tokio::task::spawn_blocking(move || -> std::io::Result<u64> {
        let Some(dest) = dest else { return Ok(files.iter().map(|(_, len)| len).sum()) };
        let mut out = std::fs::File::create(&dest)?;
        let mut len = 0;
        for (path, _) in &files {
            len += std::io::copy(&mut std::fs::File::open(path)?, &mut out)?;
        }
        out.sync_all()?;
        Ok(len)
    })
    .await
    .map_err(std::io::Error::other)??;
    Ok(copied)
}

/// `--bandwidth` for a fetch: after `n` bytes, waits until `n / rate` seconds have passed since
/// the start, as the cap on a client's connection would make it.
struct Pace {
    rate: Option<u64>,
    start: Instant,
}

impl Pace {
    fn new(rate: Option<u64>) -> Pace {
        Pace { rate: rate.filter(|r| *r > 0), start: Instant::now() }
    }

    async fn spent(&mut self, total: u64) {
        if let Some(rate) = self.rate {
            let due = Duration::from_secs_f64(total as f64 / rate as f64);
            tokio::time::sleep_until(self.start + due).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn video_ids_and_urls_are_told_apart() {
        assert!(is_video_id("vi4blUQJFrYWbaG44NChkH27"));
        assert!(!is_video_id("http://127.0.0.1/vi"));
        assert!(!is_video_id("vi"));
        assert!(!is_video_id("video.mp4"));
    }

    #[tokio::test]
    async fn only_loopback_hosts_are_fetched() {
        let ok = |s: &str| Url::parse(s).unwrap();
        assert_eq!(loopback_addrs(&ok("http://127.0.0.1:9/x")).await.unwrap().len(), 1);
        assert!(loopback_addrs(&ok("http://127.3.4.5/x")).await.is_ok());
        assert!(loopback_addrs(&ok("http://[::1]:8080/x")).await.is_ok());
        for far in [
            "http://10.255.255.1/x",
            "https://8.8.8.8/x",
            "http://[2001:db8::1]/x",
            "http://example.com/x",
        ] {
            let e = loopback_addrs(&ok(far)).await.unwrap_err();
            assert!(matches!(e, PullError::NotLoopback { .. }), "{far}: {e}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn pace_follows_the_rate() {
        let mut pace = Pace::new(Some(1000));
        let start = Instant::now();
        pace.spent(500).await;
        pace.spent(2000).await;
        assert_eq!(start.elapsed(), Duration::from_secs(2));
        let mut free = Pace::new(None);
        free.spent(1 << 30).await;
        assert_eq!(start.elapsed(), Duration::from_secs(2));
    }
}
