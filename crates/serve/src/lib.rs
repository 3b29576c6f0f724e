//! `avbatch serve`: a local server that behaves like api.video.
//!
//! Same routes, JSON shapes, problem+json errors, rate-limit headers and chunk rules as the real
//! API (`shared/apivideo/`), with sources stored on disk so that a restart loses nothing, and
//! switches for latency, bandwidth, errors, resets and 429 storms. Every test and benchmark of
//! avbatch runs against it, and the official clients upload to it unchanged.
//!
//! Layout: [`config`] (what it is told: its flags, declared once) and [`flags`] (their ranges),
//! [`serve`] (accept loop, each connection's life, shutdown), [`conns`] (the connection table and
//! its limit), [`net`] (socket, pacing, resets, read watchdog), the gate in this file (faults,
//! auth, rate limits: one place for what every request goes through), [`routes`] (handlers),
//! [`store`] (disk), [`upload`] (chunk rules), [`video`], [`assets`] (thumbnails, captions,
//! chapters, watermarks), [`auth`], [`ratelimit`], [`faults`], [`problem`], [`pull`] (a creation
//! `source` fetched or copied), [`private`] (a private video's tokens and sessions); [`testing`]:
//! the double at hand for tests (its own, in `tests/`, and the product's).
//!
//! It depends on `avbatch-api` (the wire) alone (and `avbatch-syntax`, how its flags' values are
//! written), never on the product (`avbatch-core`), so what it
//! answers is what api.video is believed to answer, not what the client expects;
//! `tests/layout.rs` keeps it so. Every answer is built from `avbatch-api`'s types (videos,
//! statuses, captions, chapters, pages, problems, tokens), the ones the client reads:
//! `tests/double/contract.rs` reads each answer into its type and checks it writes back byte
//! for byte.

pub mod assets;
pub mod auth;
pub mod config;
pub mod conns;
mod dirsync;
pub mod encoding;
pub mod faults;
pub mod flags;
pub mod net;
pub mod private;
pub mod problem;
pub mod pull;
pub mod ratelimit;
mod routes;
pub mod serve;
pub mod store;
pub mod testing;
pub mod upload;
pub mod video;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use futures::StreamExt;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use config::{
    ConnectionConfig, ExistingTracks, FailedPull, FaultConfig, MetadataMatch, Quota, RateLimits,
    ServerConfig, Storm,
};
use net::ConnMeta;
use problem::ApiError;
use ratelimit::{Bucket, RateLimiter};

use avbatch_api::secret::ApiKey;

/// Everything a handler can reach.
#[derive(Debug)]
pub struct App {
    /// Videos, chunks, tokens.
    pub store: store::Store,
    /// Keys and tokens.
    pub auth: auth::Auth,
    /// Quotas.
    pub limits: RateLimiter,
    /// Fault dice.
    pub faults: faults::Faults,
    /// Base URL for asset links.
    pub public_url: String,
    /// The tokens of private videos' assets.
    pub private: private::PrivateTokens,
    /// Connection limits and time-outs.
    pub connections: ConnectionConfig,
    /// API requests received, by bucket.
    pub served: Served,
    /// `--request-log`: one JSON line per API request answered.
    pub request_log: Option<std::sync::Mutex<std::fs::File>>,
}

impl App {
    /// The Video api.video answers for `record`: a private one's assets carry a fresh token.
    pub fn video(&self, record: &video::VideoRecord) -> avbatch_api::Video {
        let token = (!record.public).then(|| self.private.issue(&record.video_id));
        record.to_video(&self.public_url, token.as_deref())
    }

    /// Appends a request to the request log, if there is one. One `write` per line, so lines
    /// never interleave; a failed write is logged, not fatal.
    fn log_request(
        &self,
        method: &axum::http::Method,
        path: &str,
        status: u16,
        answered: bool,
        fields: Option<Vec<String>>,
    ) {
        let Some(log) = &self.request_log else { return };
        let mut line = serde_json::json!({
            "method": method.as_str(), "path": path, "status": status, "answered": answered,
        });
        if let Some(fields) = fields {
            line["fields"] = serde_json::json!(fields);
        }
        let mut file = log.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = std::io::Write::write_all(&mut *file, format!("{line}\n").as_bytes()) {
            tracing::warn!(%e, "cannot write the request log");
        }
    }
}

/// API requests received since start, by what they count against: what benchmarks read to
/// compare how many requests each uploader needs per video.
#[derive(Debug, Default)]
pub struct Served {
    /// Source uploads.
    pub uploads: std::sync::atomic::AtomicU64,
    /// Other POST, PATCH, DELETE.
    pub writes: std::sync::atomic::AtomicU64,
    /// GET.
    pub reads: std::sync::atomic::AtomicU64,
    /// `/auth/*`.
    pub auth: std::sync::atomic::AtomicU64,
}

impl Served {
    fn count(&self, class: &RouteClass) {
        let counter = match (class.api, class.counted, class.bucket) {
            (false, _, _) => return,
            (true, false, _) => &self.auth,
            (true, true, Some(Bucket::Uploads)) => &self.uploads,
            (true, true, Some(Bucket::Writes)) => &self.writes,
            (true, true, _) => &self.reads,
        };
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

impl std::fmt::Display for Served {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
        let (u, w, r, a) = (n(&self.uploads), n(&self.writes), n(&self.reads), n(&self.auth));
        write!(f, "{} API requests: {u} uploads, {w} writes, {r} reads, {a} auth", u + w + r + a)
    }
}

/// Errors starting the server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The address could not be bound.
    #[error("cannot listen on `{addr}`")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The data folder could not be opened or written.
    #[error("cannot use the data folder `{}`", path.display())]
    Data {
        /// The folder.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// What the gate knows about a route before its handler runs.
struct RouteClass {
    bucket: Option<Bucket>,
    /// Whether the request uses up its bucket; auth calls only report the writes bucket.
    counted: bool,
    needs_auth: bool,
    /// Part of the API (faults apply), as opposed to the asset host.
    api: bool,
}

fn classify(method: &Method, path: &str) -> RouteClass {
    if path.starts_with("/vod/") {
        return RouteClass { bucket: None, counted: false, needs_auth: false, api: false };
    }
    if path.starts_with("/auth/") {
        return RouteClass {
            bucket: Some(Bucket::Writes),
            counted: false,
            needs_auth: false,
            api: true,
        };
    }
    let upload = *method == Method::POST
        && (path == "/upload" || (path.starts_with("/videos/") && path.ends_with("/source")));
    let bucket = if upload {
        Bucket::Uploads
    } else if *method == Method::GET || *method == Method::HEAD {
        Bucket::Reads
    } else {
        Bucket::Writes
    };
    RouteClass { bucket: Some(bucket), counted: true, needs_auth: path != "/upload", api: true }
}

/// Reads and drops a request body, so the client gets the answer instead of a reset. Stops after
/// a bound: past it, closing the connection is the right answer.
pub(crate) async fn drain(body: Body) {
    let limit = config::MAX_CHUNK_BYTES + 64 * 1024 * 1024;
    let mut seen = 0u64;
    let mut stream = body.into_data_stream();
    while let Some(Ok(chunk)) = stream.next().await {
        seen += chunk.len() as u64;
        if seen > limit {
            break;
        }
    }
}

/// Most header bytes a request may carry (names and values); hyper's own buffer limit
/// (about 400 KiB) closes the connection on anything larger before it is parsed.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;
/// Most headers a request may carry.
pub const MAX_HEADERS: usize = 100;
/// Largest JSON body the API routes read (uploads stream and have their own limits).
pub const MAX_JSON_BODY: usize = 1024 * 1024;

/// Refuses requests no client sends: oversized headers, and path segments that try to leave
/// their folder (`..`, slashes or NUL once percent-decoded) or are absurdly long. Ids only ever
/// reach the disk after they were found in memory, so this is defence in depth.
fn hostile(req: &Request) -> Option<ApiError> {
    let headers = req.headers();
    let header_bytes: usize = headers.iter().map(|(k, v)| k.as_str().len() + v.len()).sum();
    if headers.len() > MAX_HEADERS || header_bytes > MAX_HEADER_BYTES {
        return Some(
            ApiError::new(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "request-header-fields-too-large",
                "Request header fields too large.",
            )
            .detail(format!("at most {MAX_HEADERS} headers and {MAX_HEADER_BYTES} bytes of them")),
        );
    }
    for segment in req.uri().path().split('/') {
        let decoded = percent_decode(segment);
        if decoded == ".."
            || decoded == "."
            || decoded.contains(['/', '\\', '\0'])
            || decoded.len() > 256
        {
            return Some(ApiError::new(
                StatusCode::NOT_FOUND,
                "unrecognized-request-url",
                "Unrecognized request URL.",
            ));
        }
    }
    None
}

fn percent_decode(segment: &str) -> String {
    form_urlencoded::parse(format!("x={}", segment.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Axum answers its own refusals (a JSON body over the limit, say) in plain text; api.video
/// answers everything in problem+json, so this rewrites them, keeping status and text.
async fn as_problem(resp: Response) -> Response {
    let plain = resp
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/plain"));
    if !plain || !(resp.status().is_client_error() || resp.status().is_server_error()) {
        return resp;
    }
    let status = resp.status();
    let text = axum::body::to_bytes(resp.into_body(), 64 * 1024).await.unwrap_or_default();
    let (slug, title) = match status {
        StatusCode::PAYLOAD_TOO_LARGE => ("payload-too-large", "The payload is too large."),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            ("unsupported-media-type", "The media type is not supported.")
        }
        s if s.is_server_error() => ("internal-error", "An internal error occurred."),
        _ => ("invalid-payload", "The payload is invalid."),
    };
    ApiError::new(status, slug, title)
        .detail(String::from_utf8_lossy(&text).into_owned())
        .into_response()
}

/// The largest PATCH body whose members the request log names.
const PATCH_LOGGED_MAX: usize = 1 << 20;

/// Faults, auth and rate limits, in that order, for every request.
async fn gate(State(app): State<Arc<App>>, mut req: Request, next: Next) -> Response {
    if let Some(e) = hostile(&req) {
        drain(req.into_body()).await;
        return e.into_response();
    }
    let class = classify(req.method(), req.uri().path());
    app.served.count(&class);
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    // The request log names the members a PATCH sets (its JSON body is small; it is read here
    // and handed on whole).
    let mut fields = None;
    if app.request_log.is_some() && method == axum::http::Method::PATCH && class.api {
        let (parts, body) = req.into_parts();
        let bytes = axum::body::to_bytes(body, PATCH_LOGGED_MAX).await.unwrap_or_default();
        fields = serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&bytes)
            .ok()
            .map(|members| members.keys().cloned().collect());
        req = Request::from_parts(parts, axum::body::Body::from(bytes));
    }
    let latency = app.faults.config().latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let refuse = |err: ApiError, req: Request| async move {
        drain(req.into_body()).await;
        err.into_response()
    };
    if class.api {
        if let Some(left) = app.faults.storm_remaining() {
            let secs = left.as_secs_f64().ceil().max(1.0) as u64;
            let mut resp =
                refuse(ApiError::too_many_requests().detail("injected 429 storm"), req).await;
            for name in ["retry-after", "x-ratelimit-retry-after"] {
                resp.headers_mut().insert(name, secs.into());
            }
            return resp;
        }
        if app.faults.should_fail() {
            let err = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "service-unavailable",
                "The service is temporarily unavailable.",
            )
            .detail("injected fault (--fail-rate)");
            return refuse(err, req).await;
        }
    }
    let mut late_refusal = None;
    if class.needs_auth {
        if app.faults.config().auth_after_body && has_body(&req) {
            let (checked, refusal) = check_auth_at_end(&app, req);
            req = checked;
            late_refusal = Some(refusal);
        } else if let Err(e) = app.auth.check(req.headers()) {
            return refuse(e, req).await;
        }
    }
    let decision = match class.bucket {
        Some(b) if class.counted => app.limits.take(b),
        Some(b) => app.limits.peek(b),
        None => None,
    };
    let conn = req.extensions().get::<ConnectInfo<ConnMeta>>().map(|c| c.0.clone());
    let handled = decision.as_ref().is_none_or(|d| d.allowed);
    let mut resp = if handled {
        as_problem(next.run(req).await).await
    } else {
        refuse(ApiError::too_many_requests(), req).await
    };
    if let Some(refused) =
        late_refusal.and_then(|r| r.lock().unwrap_or_else(|p| p.into_inner()).take())
    {
        // The body ended with credentials that no longer hold: the handler saw a broken body and
        // stored nothing; the client gets the refusal.
        return refused.into_response();
    }
    let lost = class.api && app.faults.should_lose();
    if class.api {
        app.log_request(&method, &path, resp.status().as_u16(), !lost, fields);
    }
    if lost {
        // `--lose-rate`: the request took effect; drop the connection instead of answering.
        if let Some(conn) = conn {
            conn.kill();
        }
    } else if class.api && handled {
        if let Some(status) = app.faults.gateway_error() {
            // `--gateway-error-rate`: the request took effect; the load balancer in front answers
            // instead, in its own words and without the API's rate-limit headers.
            return gateway_error(status);
        }
    }
    if let Some(d) = decision {
        d.write_headers(resp.headers_mut());
    }
    resp
}

/// Whether a request carries a body (a length over 0, or a chunked one).
fn has_body(req: &Request) -> bool {
    let headers = req.headers();
    headers.contains_key(axum::http::header::TRANSFER_ENCODING)
        || headers
            .get(axum::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
            .is_some_and(|n| n > 0)
}

/// `--auth-after-body`: the request's body, its credentials checked when its last byte has
/// arrived (by its length; at its end when it is chunked), before that byte is passed on. A
/// refusal breaks the body off there (so the handler stores nothing) and is left in the returned
/// slot for the gate to answer.
fn check_auth_at_end(
    app: &Arc<App>,
    req: Request,
) -> (Request, Arc<std::sync::Mutex<Option<ApiError>>>) {
    let refusal = Arc::new(std::sync::Mutex::new(None));
    let (parts, body) = req.into_parts();
    let expected = parts
        .headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let check = {
        let (app, headers, slot) = (app.clone(), parts.headers.clone(), refusal.clone());
        move || match app.auth.check(&headers) {
            Ok(()) => Ok(()),
            Err(e) => {
                *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                Err(axum::Error::new(std::io::Error::other(
                    "the credentials no longer hold at the end of the body",
                )))
            }
        }
    };
    let mut received = 0u64;
    let last_check = check.clone();
    let data = body.into_data_stream().map(move |chunk| {
        let chunk = chunk?;
        received += chunk.len() as u64;
        if expected.is_some_and(|n| received >= n) {
            check()?;
        }
        Ok(chunk)
    });
    let end = futures::stream::once(async move {
        if expected.is_none() {
            last_check().err().map(Err)
        } else {
            None
        }
    })
    .filter_map(futures::future::ready);
    let body = Body::from_stream(data.chain(end));
    (Request::from_parts(parts, body), refusal)
}

/// What nginx, as the load balancer in front of an API, answers when its upstream fails (502) or
/// does not answer in time (504): an HTML page, not problem+json.
fn gateway_error(status: StatusCode) -> Response {
    let title = match status {
        StatusCode::GATEWAY_TIMEOUT => "504 Gateway Time-out",
        _ => "502 Bad Gateway",
    };
    let body = format!(
        "<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n\
         <center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    );
    (
        status,
        [(axum::http::header::CONTENT_TYPE, "text/html"), (axum::http::header::SERVER, "nginx")],
        body,
    )
        .into_response()
}

/// The router with every route and the gate, over `app`.
pub fn router(app: Arc<App>) -> Router {
    routes::routes()
        .layer(axum::extract::DefaultBodyLimit::max(MAX_JSON_BODY))
        .layer(axum::middleware::from_fn_with_state(app.clone(), gate))
        .with_state(app)
}

/// Builds the shared state: opens the data folder, loads keys, starts the limiter and dice.
/// Blocks (disk); call from `spawn_blocking` or before the runtime is busy.
pub fn open_app(
    config: &ServerConfig,
    public_url: String,
) -> Result<(App, Option<ApiKey>), ServerError> {
    let data_err = |source| ServerError::Data { path: config.data_dir.clone(), source };
    // Its keys, tokens and the source URLs of its videos are secrets: the owner's alone.
    store::private_dir(&config.data_dir).map_err(data_err)?;
    let mut keys = config.api_keys.clone();
    let mut generated = None;
    if keys.is_empty() {
        let key = load_or_generate_key(&config.data_dir).map_err(data_err)?;
        generated = Some(key.clone());
        keys.push(key);
    }
    let store = store::Store::open(&config.data_dir, config.discard)
        .map_err(data_err)?
        .with_unfinished_ttl(config.faults.unfinished_ttl);
    let auth = auth::Auth::open(&config.data_dir, keys, config.token_ttl).map_err(data_err)?;
    let app = App {
        store,
        auth,
        limits: RateLimiter::new(config.rate_limits),
        faults: faults::Faults::new(config.faults.clone()),
        public_url,
        private: private::PrivateTokens::default(),
        connections: config.connections,
        served: Served::default(),
        request_log: match &config.request_log {
            Some(path) => Some(std::sync::Mutex::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|source| ServerError::Data { path: path.clone(), source })?,
            )),
            None => None,
        },
    };
    Ok((app, generated))
}

/// The key kept in `DATA/api-key`, made on first use, so a restarted server accepts the same one.
fn load_or_generate_key(data: &std::path::Path) -> std::io::Result<ApiKey> {
    let path = data.join("api-key");
    if let Ok(key) = std::fs::read_to_string(&path) {
        let key = ApiKey::new(key);
        if !key.is_empty() {
            return Ok(key);
        }
    }
    let key = ApiKey::new(store::new_id("").to_lowercase() + &store::new_id("").to_lowercase());
    // 0600, as every record the store writes.
    store::write_atomic(&path, key.expose().as_bytes())?;
    Ok(key)
}

/// Serves `app` on `listener` until `shutdown` completes; then stops accepting, lets requests in
/// flight finish for `app.connections.shutdown_grace`, closes every connection still open and
/// returns. `bandwidth` caps each connection, each way, in bytes per second.
pub async fn run(
    listener: TcpListener,
    app: Arc<App>,
    bandwidth: Option<u64>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let connections = app.connections;
    serve::serve(listener, router(app), connections, bandwidth, shutdown).await
}

/// A running server: its address, and a handle that stops it (also on drop).
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    url: String,
    generated_key: Option<ApiKey>,
    app: Arc<App>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl Server {
    /// Binds `addr` (port 0 picks a free one), opens the data folder and starts serving.
    pub async fn start(config: ServerConfig, addr: SocketAddr) -> Result<Server, ServerError> {
        let listener =
            TcpListener::bind(addr).await.map_err(|source| ServerError::Bind { addr, source })?;
        let local = listener.local_addr().map_err(|source| ServerError::Bind { addr, source })?;
        let url = format!("http://{local}");
        let public_url = config
            .public_url
            .clone()
            .unwrap_or_else(|| url.clone())
            .trim_end_matches('/')
            .to_owned();
        let bandwidth = config.faults.bandwidth;
        let (app, generated_key) =
            tokio::task::spawn_blocking(move || open_app(&config, public_url))
                .await
                .expect("opening the data folder does not panic")?;
        let app = Arc::new(app);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(run(listener, app.clone(), bandwidth, async move {
            let _ = stopped.await;
        }));
        tracing::info!(%url, "serving");
        Ok(Server { addr: local, url, generated_key, app, stop: Some(stop), task: Some(task) })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The key the server made because none was configured.
    pub fn generated_key(&self) -> Option<&ApiKey> {
        self.generated_key.as_ref()
    }

    /// Source bytes accepted since start.
    pub fn received_bytes(&self) -> u64 {
        self.app.store.received_bytes()
    }

    /// API requests received since start.
    pub fn served(&self) -> &Served {
        &self.app.served
    }

    /// Stops accepting, lets in-flight requests finish within the grace period, closes what is
    /// still open, and waits.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task.await.unwrap_or_else(|e| Err(std::io::Error::other(e))),
            None => Ok(()),
        }
    }

    /// Serves until the task ends (it ends only on shutdown or a fatal error).
    pub async fn wait(mut self) -> std::io::Result<()> {
        match self.task.take() {
            Some(task) => task.await.unwrap_or_else(|e| Err(std::io::Error::other(e))),
            None => Ok(()),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
