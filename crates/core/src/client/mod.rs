//! The api.video client: one connection pool, one limiter, Basic auth, retries, progress
//! time-outs.
//!
//! Every call goes through [`Client::execute`]: wait for the limiter, attach the key, send, read
//! the answer, learn from the rate-limit headers, and retry what [`crate::retry::classify`] says is
//! transient. Calls mark themselves idempotent or not: a call that is not (creating a video, the
//! first chunk of a delegated upload) is never repeated after a failure that may have taken
//! effect (a broken connection, a time-out, a 5xx or 408 from a gateway); the error says so
//! ([`ApiError::maybe_applied`]) and the caller looks for what the call made before trying again.
//!
//! Time-outs measure progress, not duration: a request is cut when its body stops moving, or
//! when its answer does not come, for `timeout` ([`ClientConfig::timeout`]). Any link that moves
//! completes, however slow, and a dead one is cut within about that time.
//!
//! ```no_run
//! # async fn demo() -> Result<(), avbatch_core::client::ApiError> {
//! use avbatch_api::NewVideo;
//! use avbatch_core::client::{Client, ClientConfig};
//! use avbatch_api::secret::ApiKey;
//! let client =
//!     Client::new(ClientConfig::new("https://sandbox.api.video", Some(ApiKey::new("KEY"))));
//! let video = client.create_video(&NewVideo::titled("My video")).await?;
//! println!("{}", video.video_id);
//! # Ok(()) }
//! ```

mod assets;
mod auth;
mod error;
mod progress;
pub mod upload;
mod videos;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use reqwest::{Method, RequestBuilder, StatusCode};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub use error::{error_chain, ApiError, CallSite};
pub(crate) use progress::Watch;
pub use upload::{ChunkAnswer, Framing, UploadTarget};

use crate::limit::Limiter;
use crate::retry::{classify, Outcome, RetryConfig, Verdict};
use avbatch_api::secret::ApiKey;
use avbatch_api::{rate_info, Bucket, Problem};

/// How to reach api.video.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `https://ws.api.video`, `https://sandbox.api.video`, or a local server.
    pub base_url: String,
    /// The API key; `None` when uploading with an upload token only.
    pub api_key: Option<ApiKey>,
    /// Retry policy for every call.
    pub retry: RetryConfig,
    /// How long a request may go without progress: no body bytes taken by the connection, or
    /// no answer after the body. Also the TCP user time-out (data unacknowledged that long
    /// breaks the connection).
    pub timeout: Duration,
    /// Request pacing, shared by every call.
    pub limiter: Arc<Limiter>,
    /// A stop (first Ctrl-C): calls under way finish, but a failed one is not tried again.
    pub stop: CancellationToken,
    /// Aborts every call under way (a second Ctrl-C).
    pub abort: CancellationToken,
}

impl ClientConfig {
    /// Defaults: 60 s without progress cuts a request, no rate limit.
    pub fn new(base_url: &str, api_key: Option<ApiKey>) -> Self {
        ClientConfig {
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key,
            retry: RetryConfig::default(),
            timeout: Duration::from_secs(60),
            limiter: Arc::new(Limiter::new(None, None)),
            stop: CancellationToken::new(),
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
    /// Answers received, whatever their status: none at all means the API was never reached.
    pub answers: AtomicU64,
    /// The latest retry: what failed and when the next attempt goes.
    pub last_retry: std::sync::Mutex<Option<Retrying>>,
}

/// A request about to be tried again, for the person watching the run.
#[derive(Debug, Clone)]
pub struct Retrying {
    /// What failed (the error, with where it was sent).
    pub error: String,
    /// The attempt that failed, and how many retries are allowed.
    pub attempt: u32,
    /// Retries allowed.
    pub max_retries: u32,
    /// How long until the next attempt.
    pub wait: Duration,
    /// How many retries this is, counted over the run.
    pub count: u64,
    /// When it was decided.
    pub at: Instant,
}

impl Stats {
    /// The latest retry, if any.
    pub fn last_retry(&self) -> Option<Retrying> {
        self.last_retry.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// The api.video client.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    config: Arc<ClientConfig>,
    /// `Basic base64(KEY:)`, marked sensitive; `None` without a key.
    authorization: Option<HeaderValue>,
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
    /// Safe to repeat after a failure that may have taken effect.
    pub idempotent: bool,
    /// Bytes in the body (0: none, or a small one that goes out at once).
    pub body_len: u64,
    /// Adds the body and headers to each attempt; a streamed body reports its progress to the
    /// [`Watch`].
    pub build: &'a (dyn Fn(RequestBuilder, &Arc<Watch>) -> RequestBuilder + Send + Sync),
}

impl Call<'static> {
    /// A GET of `path` (`route` in messages): authenticated, in the reads bucket, safe to
    /// repeat, no body.
    pub(crate) fn read(path: String, route: String) -> Call<'static> {
        Call {
            method: Method::GET,
            path,
            route,
            bucket: Some(Bucket::Reads),
            authenticated: true,
            idempotent: true,
            body_len: 0,
            build: &no_body,
        }
    }
}

/// No body: the calls that only read or delete.
pub(crate) fn no_body(r: RequestBuilder, _: &Arc<Watch>) -> RequestBuilder {
    r
}

/// A successful answer, read whole (api.video's answers are small JSON documents).
#[derive(Debug)]
pub(crate) struct Answer {
    pub body: Bytes,
}

impl Client {
    /// Sends a small JSON body with `method` to `path` (Writes bucket), safe to repeat; the
    /// answer's JSON.
    pub(crate) async fn send_json<B: serde::Serialize + Sync, T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        path: String,
        payload: &B,
    ) -> Result<T, ApiError> {
        let build = |r: RequestBuilder, _: &Arc<Watch>| r.json(payload);
        let call = Call {
            method,
            route: path.clone(),
            path,
            bucket: Some(Bucket::Writes),
            authenticated: true,
            idempotent: true,
            body_len: 0,
            build: &build,
        };
        let answer = self.execute(&call).await?;
        self.json(&call, &answer)
    }

    /// A client with its own connection pool.
    pub fn new(config: ClientConfig) -> Client {
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("avbatch/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .tcp_nodelay(true)
            // object_store (src/remote.rs) turns on reqwest's http2 feature; api.video is spoken
            // to over HTTP/1.1 as before, one upload per connection.
            .http1_only()
            // Under the 60 s after which servers commonly close an idle connection (avbatch
            // serve among them), so a request never goes out on one the server is closing.
            .pool_idle_timeout(Duration::from_secs(50));
        #[cfg(any(target_os = "android", target_os = "fuchsia", target_os = "linux"))]
        {
            // Data the peer does not acknowledge for this long breaks the connection, even when
            // it sits in the kernel's buffer after the body was handed over.
            builder = builder.tcp_user_timeout(config.timeout);
        }
        let http = builder.build().expect("a client with rustls and no custom certificates builds");
        let authorization = config.api_key.as_ref().map(auth::basic);
        Client { http, authorization, config: Arc::new(config), stats: Arc::new(Stats::default()) }
    }

    /// What the client did so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The base URL.
    pub fn base_url(&self) -> &str {
        &self.config.base_url
    }

    /// How calls are retried.
    pub fn retry_config(&self) -> &RetryConfig {
        &self.config.retry
    }

    /// The quota of `bucket` a minute, as the API's answers said (`X-RateLimit-Limit`), once
    /// one did.
    pub fn quota(&self, bucket: Bucket) -> Option<u64> {
        self.config.limiter.limit(bucket)
    }

    /// Whether calls carry an API key.
    pub fn has_api_key(&self) -> bool {
        self.config.api_key.is_some()
    }

    fn site(call: &Call<'_>) -> CallSite {
        CallSite { method: call.method.clone(), route: call.route.clone() }
    }

    /// Sends a call with limiting, auth and retries; returns the first 2xx answer.
    pub(crate) async fn execute(&self, call: &Call<'_>) -> Result<Answer, ApiError> {
        let started = SystemTime::now();
        let t0 = Instant::now();
        let url = format!("{}{}", self.config.base_url, call.path);
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let (failure, server_wait) = match self.attempt(call, &url, attempts, t0).await {
                Attempt::Answered(answer) => return Ok(answer),
                Attempt::Failed(err) => return Err(err),
                Attempt::Retry(err, wait) => (err, wait),
            };
            self.before_retry(call, started, attempts, failure, server_wait).await?;
        }
    }

    /// One attempt at a call: its quota waited for, the request sent and its answer judged.
    async fn attempt(&self, call: &Call<'_>, url: &str, attempts: u32, t0: Instant) -> Attempt {
        let abort = &self.config.abort;
        let cancelled = || Attempt::Failed(ApiError::Cancelled { site: Self::site(call) });
        if let Some(bucket) = call.bucket {
            // A request still waiting for its quota when the run stops is not sent: the row
            // is left to the next run.
            tokio::select! {
                () = self.config.limiter.acquire(bucket) => {}
                () = abort.cancelled() => return cancelled(),
                () = self.config.stop.cancelled() => return cancelled(),
            }
        }
        let mut request = self.http.request(call.method.clone(), url);
        if let (true, Some(value)) = (call.authenticated, &self.authorization) {
            request = request.header(AUTHORIZATION, value.clone());
        }
        let watch = Arc::new(Watch::new(call.body_len > 0));
        request = (call.build)(request, &watch);
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        let attempt = async {
            let response = request.send().await?;
            self.stats.answers.fetch_add(1, Ordering::Relaxed);
            watch.progress(0);
            let status = response.status();
            let headers = response.headers().clone();
            let body = response.bytes().await?;
            Ok::<_, reqwest::Error>((status, headers, body))
        };
        let outcome = tokio::select! {
            r = attempt => Some(r),
            () = watch.stalled(self.config.timeout) => None,
            () = abort.cancelled() => return cancelled(),
        };
        match outcome {
            Some(Ok((status, headers, body))) => {
                match self.judge(call, status, &headers, body, attempts, t0) {
                    Ok(answer) => Attempt::Answered(answer),
                    Err((err, Verdict::Retry, wait)) if call.idempotent || !err.maybe_applied() => {
                        Attempt::Retry(err, wait)
                    }
                    Err((err, _, _)) => Attempt::Failed(err),
                }
            }
            Some(Err(source)) => self.unsent(call, source, attempts, t0),
            None => {
                let err = ApiError::TimedOut {
                    site: Self::site(call),
                    attempts,
                    elapsed: t0.elapsed(),
                    idle: watch.allowance(self.config.timeout),
                    body_sent: watch.body_done(),
                };
                match call.idempotent {
                    true => Attempt::Retry(err, None),
                    false => Attempt::Failed(err),
                }
            }
        }
    }

    /// A request that failed on its way (no answer): tried again unless it fails the same way
    /// every time, or may have been applied and is not idempotent.
    fn unsent(
        &self,
        call: &Call<'_>,
        source: reqwest::Error,
        attempts: u32,
        t0: Instant,
    ) -> Attempt {
        // The URL may carry an upload token; the call site names the route instead.
        let source = source.without_url();
        let local = source.is_builder() || body_gave_up(&source);
        let maybe_sent = !source.is_connect();
        let err = ApiError::Transport {
            site: Self::site(call),
            attempts,
            elapsed: t0.elapsed(),
            maybe_sent,
            source,
        };
        // A request that could not be built, or whose body refused to go on (the file under
        // it changed), fails the same way every time.
        match local || (maybe_sent && !call.idempotent) {
            true => Attempt::Failed(err),
            false => Attempt::Retry(err, None),
        }
    }

    /// Waits before trying `failure`'s call again, at least as long as the server asked; the
    /// failure itself when the retries are spent or the run stops meanwhile.
    async fn before_retry(
        &self,
        call: &Call<'_>,
        started: SystemTime,
        attempts: u32,
        failure: ApiError,
        server_wait: Option<Duration>,
    ) -> Result<(), ApiError> {
        let cancelled = || ApiError::Cancelled { site: Self::site(call) };
        // After a stop, a failed request is not tried again: the row is left to the next run.
        if self.config.stop.is_cancelled() {
            tracing::debug!(error = %failure, "not retried: the run is stopping");
            return Err(cancelled());
        }
        let Some(backoff) = self.config.retry.backoff(started, attempts - 1) else {
            return Err(failure);
        };
        let wait = backoff.max(server_wait.unwrap_or_default());
        let max = self.config.retry.max_retries;
        tracing::debug!(error = %failure, wait = ?wait, "retry {attempts} of {max}");
        let count = self.stats.retries.fetch_add(1, Ordering::Relaxed) + 1;
        *self.stats.last_retry.lock().unwrap_or_else(|p| p.into_inner()) = Some(Retrying {
            error: error_chain(&failure),
            attempt: attempts,
            max_retries: self.config.retry.max_retries,
            wait,
            count,
            at: Instant::now(),
        });
        tokio::select! {
            () = tokio::time::sleep(wait) => Ok(()),
            () = self.config.abort.cancelled() => Err(cancelled()),
            () = self.config.stop.cancelled() => Err(cancelled()),
        }
    }

    /// What an answer means: the answer itself, or the error with whether to try again and how
    /// long the server asked to wait.
    #[allow(clippy::type_complexity)]
    fn judge(
        &self,
        call: &Call<'_>,
        status: StatusCode,
        headers: &HeaderMap,
        body: Bytes,
        attempts: u32,
        t0: Instant,
    ) -> Result<Answer, (ApiError, Verdict, Option<Duration>)> {
        let info = rate_info(headers);
        if let Some(bucket) = call.bucket {
            self.config.limiter.observe(bucket, info, status.as_u16() == 429);
        }
        if status.is_success() {
            return Ok(Answer { body });
        }
        if status.as_u16() == 429 {
            self.stats.throttled.fetch_add(1, Ordering::Relaxed);
        }
        // A gateway in front of the API answers in HTML: no problem to read, only the status.
        let problem = serde_json::from_slice::<Problem>(&body).ok().map(Box::new);
        let err = ApiError::Status {
            site: Self::site(call),
            status,
            problem,
            attempts,
            elapsed: t0.elapsed(),
        };
        Err((err, classify(Outcome::Status(status)), info.retry_after))
    }

    /// Reads a JSON answer.
    pub(crate) fn json<T: serde::de::DeserializeOwned>(
        &self,
        call: &Call<'_>,
        answer: &Answer,
    ) -> Result<T, ApiError> {
        serde_json::from_slice(&answer.body).map_err(|e| ApiError::Unexpected {
            site: Self::site(call),
            what: format!("the JSON is not as documented: {e}"),
        })
    }
}

/// Whether a request broke off because its body refused to go on (the file under it changed):
/// trying again cannot help.
pub(crate) fn body_gave_up(err: &(dyn std::error::Error + 'static)) -> bool {
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

/// A header value that is marked sensitive (never logged by the HTTP stack).
fn sensitive(value: String) -> HeaderValue {
    let mut v =
        HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("invalid"));
    v.set_sensitive(true);
    v
}

/// What one attempt at a call came to.
enum Attempt {
    /// A 2xx answer.
    Answered(Answer),
    /// A failure worth another try, with how long the server asked to wait.
    Retry(ApiError, Option<Duration>),
    /// A failure that ends the call.
    Failed(ApiError),
}
