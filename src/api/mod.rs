//! The api.video client: one connection pool, one limiter, bearer tokens, retries.
//!
//! Every call goes through [`Client::execute`]: wait for the limiter, attach the token, send,
//! learn from the rate-limit headers, and retry what [`crate::retry::classify`] says is
//! transient. Calls mark themselves idempotent or not: a create that may have reached the server
//! is never blindly repeated (the caller looks the video up by its key instead).
//!
//! ```no_run
//! # async fn demo() -> Result<(), avbatch::api::ApiError> {
//! use avbatch::api::{Client, ClientConfig, NewVideo};
//! use avbatch::secret::ApiKey;
//! let client = Client::new(ClientConfig::new("https://sandbox.api.video", Some(ApiKey::new("KEY"))));
//! let video = client.create_video(&NewVideo::titled("My video")).await?;
//! println!("{}", video.video_id);
//! # Ok(()) }
//! ```

mod auth;
mod error;
pub mod upload;
mod videos;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderValue, AUTHORIZATION};
use reqwest::{Method, RequestBuilder, Response};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub use error::{rate_info, ApiError, CallSite, Problem};
pub use upload::{ChunkAnswer, Framing, UploadTarget};
pub use videos::{BytesRange, Ingest, Metadata, NewVideo, ReceivedParts, Video, VideoStatus};

use crate::limit::{Bucket, Limiter};
use crate::retry::{classify, Outcome, RetryConfig, Verdict};
use crate::secret::ApiKey;

/// How to reach api.video.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `https://ws.api.video`, `https://sandbox.api.video`, or a local server.
    pub base_url: String,
    /// The API key; `None` when uploading with an upload token only.
    pub api_key: Option<ApiKey>,
    /// Retry policy for every call.
    pub retry: RetryConfig,
    /// Time allowed for a call without a body, and added to the body's allowance.
    pub timeout: Duration,
    /// Slowest transfer rate tolerated before a body upload times out, in bytes/s.
    pub min_rate: u64,
    /// Request pacing, shared by every call.
    pub limiter: Arc<Limiter>,
    /// Aborts every call under way (a second Ctrl-C).
    pub abort: CancellationToken,
}

impl ClientConfig {
    /// Defaults: 60 s per call plus time for the body at 256 KiB/s, no rate limit.
    pub fn new(base_url: &str, api_key: Option<ApiKey>) -> Self {
        ClientConfig {
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key,
            retry: RetryConfig::default(),
            timeout: Duration::from_secs(60),
            min_rate: 256 * 1024,
            limiter: Arc::new(Limiter::new(None, None)),
            abort: CancellationToken::new(),
        }
    }
}

/// Counters of what the client did, for the report and benchmarks.
#[derive(Debug, Default)]
pub struct Stats {
    /// Requests sent (every attempt).
    pub requests: AtomicU64,
    /// Answers with status 429.
    pub throttled: AtomicU64,
    /// Attempts that were retries.
    pub retries: AtomicU64,
}

/// The api.video client.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    config: Arc<ClientConfig>,
    auth: Arc<auth::TokenCache>,
    stats: Arc<Stats>,
}

/// One call, as [`Client::execute`] needs it.
pub(crate) struct Call<'a> {
    pub method: Method,
    /// Path and query, e.g. `/videos?metadata[k]=v`.
    pub path: String,
    /// Path for messages (no query: it may hold an upload token).
    pub route: String,
    pub bucket: Option<Bucket>,
    pub authenticated: bool,
    /// Safe to repeat after a failure that may have reached the server.
    pub idempotent: bool,
    /// Bytes in the body, to scale the timeout.
    pub body_len: u64,
    /// Adds the body and headers to each attempt.
    pub build: &'a (dyn Fn(RequestBuilder) -> RequestBuilder + Send + Sync),
}

impl Client {
    /// A client with its own connection pool.
    pub fn new(config: ClientConfig) -> Client {
        let http = reqwest::Client::builder()
            .user_agent(concat!("avbatch/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .expect("a client with rustls and no custom certificates builds");
        Client {
            http,
            auth: Arc::new(auth::TokenCache::new(config.api_key.clone())),
            config: Arc::new(config),
            stats: Arc::new(Stats::default()),
        }
    }

    /// What the client did so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The base URL.
    pub fn base_url(&self) -> &str {
        &self.config.base_url
    }

    /// Whether calls carry an API key (or its tokens).
    pub fn has_api_key(&self) -> bool {
        self.config.api_key.is_some()
    }

    /// Checks the API key now (`POST /auth/api-key`), so a wrong key fails the run before any
    /// upload starts.
    pub async fn authenticate(&self) -> Result<(), ApiError> {
        self.bearer(true).await.map(drop)
    }

    /// `Authorization: Bearer …`, refreshed ahead of expiry; `force` fetches a new one.
    async fn bearer(&self, force: bool) -> Result<HeaderValue, ApiError> {
        // Boxed: token calls go through `execute`, which calls back here for other calls.
        Box::pin(self.auth.header(self, force)).await
    }

    fn site(call: &Call<'_>) -> CallSite {
        CallSite { method: call.method.clone(), route: call.route.clone() }
    }

    /// Sends a call with limiting, auth and retries; returns the first 2xx response.
    pub(crate) async fn execute(&self, call: &Call<'_>) -> Result<Response, ApiError> {
        let started = SystemTime::now();
        let t0 = Instant::now();
        let url = format!("{}{}", self.config.base_url, call.path);
        let timeout = self.config.timeout + Duration::from_secs_f64(call.body_len as f64 / self.config.min_rate.max(1) as f64);
        let abort = &self.config.abort;
        let mut attempts = 0u32;
        let mut refreshed = false;
        loop {
            attempts += 1;
            if let Some(bucket) = call.bucket {
                tokio::select! {
                    () = self.config.limiter.acquire(bucket) => {}
                    () = abort.cancelled() => return Err(ApiError::Cancelled { site: Self::site(call) }),
                }
            }
            let mut request = self.http.request(call.method.clone(), &url).timeout(timeout);
            if call.authenticated && self.config.api_key.is_some() {
                request = request.header(AUTHORIZATION, self.bearer(false).await?);
            }
            request = (call.build)(request);
            self.stats.requests.fetch_add(1, Ordering::Relaxed);
            let sent = tokio::select! {
                r = request.send() => r,
                () = abort.cancelled() => return Err(ApiError::Cancelled { site: Self::site(call) }),
            };
            let (failure, server_wait) = match sent {
                Ok(response) => {
                    let status = response.status();
                    let info = rate_info(response.headers());
                    if let Some(bucket) = call.bucket {
                        self.config.limiter.observe(bucket, info, status.as_u16() == 429);
                    }
                    if status.is_success() {
                        return Ok(response);
                    }
                    if status.as_u16() == 429 {
                        self.stats.throttled.fetch_add(1, Ordering::Relaxed);
                    }
                    let problem = response.json::<Problem>().await.ok();
                    let err = ApiError::Status { site: Self::site(call), status, problem, attempts, elapsed: t0.elapsed() };
                    match classify(Outcome::Status(status)) {
                        Verdict::Refresh if call.authenticated && !refreshed && self.config.api_key.is_some() => {
                            refreshed = true;
                            tracing::debug!(site = %Self::site(call), "401: fetching a new token and trying again");
                            self.bearer(true).await?;
                            self.stats.retries.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                        Verdict::Retry => (err, info.retry_after),
                        _ => return Err(err),
                    }
                }
                Err(source) => {
                    // The URL may carry an upload token; the call site names the route instead.
                    let source = source.without_url();
                    let maybe_sent = !source.is_connect();
                    let err = ApiError::Transport { site: Self::site(call), attempts, elapsed: t0.elapsed(), maybe_sent, source };
                    if (maybe_sent && !call.idempotent) || body_gave_up(&err) {
                        return Err(err);
                    }
                    (err, None)
                }
            };
            let Some(backoff) = self.config.retry.backoff(started, attempts - 1) else {
                return Err(failure);
            };
            let wait = backoff.max(server_wait.unwrap_or_default());
            tracing::debug!(error = %failure, wait = ?wait, "retry {} of {}", attempts, self.config.retry.max_retries);
            self.stats.retries.fetch_add(1, Ordering::Relaxed);
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = abort.cancelled() => return Err(ApiError::Cancelled { site: Self::site(call) }),
            }
        }
    }

    /// Reads a JSON answer.
    pub(crate) async fn json<T: serde::de::DeserializeOwned>(&self, call: &Call<'_>, response: Response) -> Result<T, ApiError> {
        let body = response
            .bytes()
            .await
            .map_err(|e| ApiError::Unexpected { site: Self::site(call), what: format!("the body could not be read: {e}") })?;
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::Unexpected { site: Self::site(call), what: format!("the JSON is not as documented: {e}") })
    }
}

/// Whether a request broke off because its body refused to go on (the file under it changed):
/// trying again cannot help.
fn body_gave_up(err: &ApiError) -> bool {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = next {
        if e.downcast_ref::<crate::chunk::FileChanged>().is_some() {
            return true;
        }
        // `io::Error::source` skips the error it wraps, so look inside it too.
        if let Some(inner) = e.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()) {
            if inner.downcast_ref::<crate::chunk::FileChanged>().is_some() {
                return true;
            }
        }
        next = e.source();
    }
    false
}

/// A token wrapped for a header that is marked sensitive (never logged by the HTTP stack).
fn sensitive(value: String) -> HeaderValue {
    let mut v = HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("invalid"));
    v.set_sensitive(true);
    v
}
