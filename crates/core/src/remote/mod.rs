//! Objects and URLs a row's video is read from, when its `path` is not on the local disk
//! (issue #16): `https://…`, `http://…`, `s3://bucket/key`, `gs://bucket/key` and
//! `az://container/key`.
//!
//! [`Stores`] opens one [`ObjectStore`] per bucket (a manifest has thousands of rows in the same
//! bucket) with the credentials each cloud's own tools find: `AWS_*`, then a profile in
//! `~/.aws` ([`aws`]), then a role's, for S3; `GOOGLE_*` or the application default credentials
//! for Google Cloud Storage; `AZURE_*` or a managed identity for Azure. [`Remote`] is one row's
//! object: its size and version ([`Remote::head`]), any byte range of it, refused once the object
//! was replaced ([`Remote::range`]), and a URL api.video can fetch it from ([`Remote::pull_url`],
//! in [`signed`]).
//!
//! Nothing here prints a credential: [`Remote::shown`] drops user names, passwords and query
//! strings (a presigned URL's signature is a secret), and error messages never hold a URL.

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::stream::{self, BoxStream, StreamExt};
#[cfg(feature = "s3")]
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
#[cfg(feature = "azure")]
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::client::{HttpClient, HttpConnector, ReqwestConnector};
#[cfg(feature = "gcs")]
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::http::HttpBuilder;
use object_store::path::Path;
use object_store::signer::Signer;
use object_store::{
    ClientConfigKey, ClientOptions, GetOptions, GetRange, ObjectStore, ObjectStoreExt, RetryConfig,
};
use reqwest::Url;

#[cfg(feature = "s3")]
mod aws;
mod dot_segments;
mod keys;
mod signed;

/// Tries of one request to a store before its error is returned: connection errors and 5xx are
/// retried, within [`RETRY_TIMEOUT`]. object_store's own default (10 tries in 3 minutes) would
/// hold a failing row for minutes; the engine has its own retries above this.
const MAX_RETRIES: usize = 3;
const RETRY_TIMEOUT: Duration = Duration::from_secs(30);
/// The whole of one request, a ranged read of a part included. object_store's default (30 s)
/// is too short for a 128 MiB part on a slow link.
const REQUEST_TIMEOUT: &str = "300s";
/// One request to a metadata service for keys (an instance's), as [`SharedHttp`] connects them.
/// The AWS SDKs give it 1 s.
const METADATA_TIMEOUT: Duration = Duration::from_secs(2);

/// The longest URL a row may name, in bytes as parsed (percent-encoded): web servers refuse
/// longer request lines (nginx and Apache take 8 KiB), S3 keys are at most 1 KiB, and a URL
/// past 64 KiB made the HTTP client panic building the request (issue #25, point 11). Well
/// under that even when object_store percent-encodes every character of the key again.
const MAX_URL_BYTES: usize = 8192;

/// Where an object lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RemoteKind {
    /// `http://` or `https://`: any web server.
    Http,
    /// `s3://bucket/key`: Amazon S3 or an S3-compatible server (`AWS_ENDPOINT_URL`).
    S3,
    /// `gs://bucket/key`: Google Cloud Storage.
    Gcs,
    /// `az://container/key`: Azure Blob Storage (the account from `AZURE_STORAGE_ACCOUNT_NAME`).
    Azure,
}

impl RemoteKind {
    /// The environment variables that give this kind of store its credentials, for messages.
    fn credential_vars(self) -> &'static str {
        match self {
            RemoteKind::Http => "the URL itself",
            RemoteKind::S3 => {
                "`AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` (and `AWS_SESSION_TOKEN` for \
                 temporary keys), `AWS_REGION`, or a profile in ~/.aws (`AWS_PROFILE`)"
            }
            RemoteKind::Gcs => {
                "`GOOGLE_SERVICE_ACCOUNT` (a service account JSON file) or \
                 `GOOGLE_APPLICATION_CREDENTIALS`"
            }
            RemoteKind::Azure => {
                "`AZURE_STORAGE_ACCOUNT_NAME` with `AZURE_STORAGE_ACCOUNT_KEY` or \
                 `AZURE_STORAGE_SAS_KEY`"
            }
        }
    }
}

impl fmt::Display for RemoteKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RemoteKind::Http => "HTTP",
            RemoteKind::S3 => "S3",
            RemoteKind::Gcs => "Google Cloud Storage",
            RemoteKind::Azure => "Azure Blob Storage",
        })
    }
}

/// Why an object cannot be used. The messages never hold the URL (the caller names it with
/// [`Remote::shown`]) nor any credential.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The object is not there.
    #[error("no such object: it was deleted, or the bucket or key is wrong")]
    NotFound,
    /// The store refused the credentials, or they give no access to this object; then what to
    /// check, naming where the credentials came from.
    #[error("access denied: {1}")]
    Denied(RemoteKind, String),
    /// The object is not the one first read: it was replaced since (its ETag changed).
    #[error("the object changed since it was first read; run again to send the new one")]
    Changed,
    /// A URL avbatch does not read from, or cannot use as written.
    #[error("{0}")]
    Unsupported(String),
    /// No keys: the last sources of the chain (a role's) gave none; what was looked for.
    #[error("{0}")]
    NoKeys(String),
    /// Anything else: the network, the server, a store that cannot be opened.
    #[error("{0}")]
    Other(String),
}

/// What [`Remote::head`] learns about an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Bytes.
    pub size: u64,
    /// The store's version tag, when it gives one; [`Remote::range`] checks it.
    pub etag: Option<String>,
    /// When the object was last written, when the store says.
    pub last_modified: Option<DateTime<Utc>>,
}

/// One store, and what signs URLs for it (every store but a plain web server).
#[derive(Clone)]
struct Store {
    objects: Arc<dyn ObjectStore>,
    signer: Option<Arc<dyn Signer>>,
    /// Where its credentials come from, when known (S3): what messages tell to check.
    keys: Option<Arc<keys::Source>>,
    /// For a store whose keys are fetched (a role's), the outcome of its first request: the
    /// others wait for it, and fail at once with its error when it found no keys. object_store
    /// forgets a failed fetch and tries again for every request, one at a time, each try
    /// taking up to seconds (an instance metadata address that does not answer): a manifest of
    /// a thousand rows would wait an hour to hear that there are no keys.
    first: Option<Arc<tokio::sync::OnceCell<Option<String>>>>,
    /// When its keys stop working, when known (S3 session keys with
    /// `AWS_CREDENTIAL_EXPIRATION`): a URL they sign works no longer.
    expires: Option<DateTime<Utc>>,
}

/// The stores opened so far, one per bucket, and the environment they take credentials from.
/// Cheap to clone; clones share the stores.
#[derive(Clone)]
pub struct Stores {
    env: Arc<Vec<(String, String)>>,
    clients: SharedHttp,
    open: Arc<Mutex<HashMap<(RemoteKind, String), Store>>>,
}

impl fmt::Debug for Stores {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The environment holds secrets: only the names of the variables read.
        let names: Vec<&str> = self.env.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("Stores").field("env", &names).finish_non_exhaustive()
    }
}

impl Stores {
    /// Stores taking their credentials from this process's environment.
    pub fn from_env() -> Stores {
        Stores::with_env(std::env::vars())
    }

    /// Stores taking their credentials from exactly these variables (`AWS_*`, `GOOGLE_*`,
    /// `AZURE_*`, and `HOME` for the files the clouds' tools keep them in; others are
    /// ignored), as if they were the environment.
    pub fn with_env(vars: impl IntoIterator<Item = (String, String)>) -> Stores {
        let env = vars
            .into_iter()
            .filter(|(k, _)| {
                k == "HOME" || ["AWS_", "GOOGLE_", "AZURE_"].iter().any(|p| k.starts_with(p))
            })
            .collect();
        Stores { env: Arc::new(env), clients: Default::default(), open: Arc::default() }
    }

    /// The object `text` names, or `None` when `text` is not a URL (a local path). Errors for a
    /// URL of a scheme avbatch does not read, a malformed one, or one without a bucket or key.
    /// Opening a bucket's store makes no request; its credentials are first used by
    /// [`Remote::head`].
    pub fn parse(&self, text: &str) -> Result<Option<Remote>, RemoteError> {
        let Some(target) = Target::parse(text)? else { return Ok(None) };
        let store = self.store(&target)?;
        Ok(Some(Remote { text: text.to_owned(), target, store }))
    }

    fn store(&self, target: &Target) -> Result<Store, RemoteError> {
        // A URL with a query string (a presigned URL) is a store of its own: object_store
        // paths have no query. Every other URL shares its bucket's or server's store.
        let key = (target.kind, target.store_key.clone());
        let shared = target.url.query().is_none();
        if shared {
            if let Some(store) = self.lock().get(&key) {
                return Ok(store.clone());
            }
        }
        // Built outside the lock: a builder reads files (GCS keys) and must not stall others.
        let store = self.build(target)?;
        if shared {
            // Two rows may race to open the same bucket: the first store in is kept.
            return Ok(self.lock().entry(key).or_insert(store).clone());
        }
        Ok(store)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(RemoteKind, String), Store>> {
        // A panic while holding this lock leaves the map whole (inserts are single calls).
        self.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    #[cfg(any(feature = "s3", feature = "gcs", feature = "azure"))]
    fn vars<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (String, &'a str)> + 'a {
        self.env
            .iter()
            .filter(move |(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.to_ascii_lowercase(), v.as_str()))
    }

    fn build(&self, target: &Target) -> Result<Store, RemoteError> {
        let retry = RetryConfig {
            max_retries: MAX_RETRIES,
            retry_timeout: RETRY_TIMEOUT,
            ..RetryConfig::default()
        };
        let timeout = ClientConfigKey::Timeout;
        let unusable = |e: object_store::Error| {
            RemoteError::Other(format!(
                "cannot open the {} store: {}; its settings come from {}",
                target.kind,
                scrub(&e.to_string()),
                target.kind.credential_vars()
            ))
        };
        let store = match target.kind {
            RemoteKind::S3 => self.s3(target, retry, &unusable)?,
            RemoteKind::Gcs => self.gcs(target, retry, &unusable)?,
            RemoteKind::Azure => self.azure(target, retry, &unusable)?,
            RemoteKind::Http => {
                let options = ClientOptions::new()
                    .with_config(timeout, REQUEST_TIMEOUT)
                    .with_allow_http(true);
                let http = HttpBuilder::new()
                    .with_http_connector(self.clients.clone())
                    .with_retry(retry)
                    .with_client_options(options)
                    .with_url(target.store_url())
                    .build()
                    .map_err(unusable)?;
                Store {
                    objects: Arc::new(http),
                    signer: None,
                    keys: None,
                    first: None,
                    expires: None,
                }
            }
        };
        Ok(store)
    }

    /// An S3 bucket's store, its keys found as the AWS CLI finds them ([`aws`]).
    #[cfg(feature = "s3")]
    fn s3(&self, target: &Target, retry: RetryConfig, unusable: Unusable) -> StoreResult {
        let timeout = ClientConfigKey::Timeout;
        let mut b = AmazonS3Builder::new()
            .with_http_connector(self.clients.clone())
            .with_retry(retry)
            .with_config(AmazonS3ConfigKey::Client(timeout), REQUEST_TIMEOUT);
        let settings = aws::settings(&self.env).map_err(RemoteError::Other)?;
        let from_env = self.vars("AWS_").filter_map(|(key, value)| {
            key.parse::<AmazonS3ConfigKey>().ok().map(|key| (key, value.to_owned()))
        });
        let config: Vec<_> = from_env.chain(settings.config).collect();
        let endpoint = aws::endpoint(&config).map_err(RemoteError::Other)?;
        for (key, value) in config {
            b = b.with_config(key, value);
        }
        if endpoint {
            // A local or other-vendor S3 server answers at one address for every bucket:
            // `ENDPOINT/bucket/key`, not `bucket.ENDPOINT/key`.
            b = b.with_virtual_hosted_style_request(false);
        }
        let s3 = Arc::new(b.with_url(target.store_url()).build().map_err(unusable)?);
        let first = settings.source.fetch_hint().map(|_| Arc::default());
        let keys = Some(settings.source.into());
        let expires = settings.expires;
        Ok(Store { objects: s3.clone(), signer: Some(s3), keys, first, expires })
    }

    /// A Google Cloud Storage bucket's store, its settings from `GOOGLE_*`.
    #[cfg(feature = "gcs")]
    fn gcs(&self, target: &Target, retry: RetryConfig, unusable: Unusable) -> StoreResult {
        let timeout = ClientConfigKey::Timeout;
        let mut b = GoogleCloudStorageBuilder::new()
            .with_http_connector(self.clients.clone())
            .with_retry(retry)
            .with_config(GoogleConfigKey::Client(timeout), REQUEST_TIMEOUT);
        for (key, value) in self.vars("GOOGLE_") {
            if let Ok(key) = key.parse::<GoogleConfigKey>() {
                b = b.with_config(key, value);
            }
        }
        let gcs = Arc::new(b.with_url(target.store_url()).build().map_err(unusable)?);
        Ok(Store {
            objects: gcs.clone(),
            signer: Some(gcs),
            keys: None,
            first: None,
            expires: None,
        })
    }

    /// An Azure Blob Storage container's store, its settings from `AZURE_*`.
    #[cfg(feature = "azure")]
    fn azure(&self, target: &Target, retry: RetryConfig, unusable: Unusable) -> StoreResult {
        let timeout = ClientConfigKey::Timeout;
        let mut b = MicrosoftAzureBuilder::new()
            .with_http_connector(self.clients.clone())
            .with_retry(retry)
            .with_config(AzureConfigKey::Client(timeout), REQUEST_TIMEOUT);
        for (key, value) in self.vars("AZURE_") {
            if let Ok(key) = key.parse::<AzureConfigKey>() {
                b = b.with_config(key, value);
            }
        }
        let az = Arc::new(b.with_url(target.store_url()).build().map_err(unusable)?);
        Ok(Store { objects: az.clone(), signer: Some(az), keys: None, first: None, expires: None })
    }

    #[cfg(not(feature = "s3"))]
    fn s3(&self, _: &Target, _: RetryConfig, _: Unusable) -> StoreResult {
        Err(not_built(RemoteKind::S3, "s3"))
    }

    #[cfg(not(feature = "gcs"))]
    fn gcs(&self, _: &Target, _: RetryConfig, _: Unusable) -> StoreResult {
        Err(not_built(RemoteKind::Gcs, "gcs"))
    }

    #[cfg(not(feature = "azure"))]
    fn azure(&self, _: &Target, _: RetryConfig, _: Unusable) -> StoreResult {
        Err(not_built(RemoteKind::Azure, "azure"))
    }
}

/// One HTTP client for every store opened with the same options. A client each would
/// cost a connection pool and a load of the system's root certificates each (1.7 ms): a manifest
/// of presigned URLs opens a store per row (object_store paths have no query string), and one of
/// many buckets a store per bucket. A store's builder also connects with other options (its
/// credential endpoints allow plain HTTP), so clients are kept per set of options.
#[derive(Clone, Debug, Default)]
struct SharedHttp(Arc<Mutex<HashMap<String, HttpClient>>>);

impl HttpConnector for SharedHttp {
    fn connect(&self, options: &ClientOptions) -> object_store::Result<HttpClient> {
        // object_store gives the clients of metadata services (an instance's keys) a 1 s
        // connect timeout and otherwise the store's options, whose request timeout is made for
        // reading parts. A metadata address that takes connections but never answers (a
        // container one hop too far for IMDSv2) would hold every try 300 s: they get
        // METADATA_TIMEOUT. No store of ours sets a connect timeout.
        let metadata = options.get_config_value(&ClientConfigKey::ConnectTimeout).is_some();
        let timed;
        let options = if metadata {
            timed = options.clone().with_timeout(METADATA_TIMEOUT);
            &timed
        } else {
            options
        };
        // ClientOptions has no Eq or Hash; its Debug text lists every option. Only a map key:
        // never shown.
        let key = format!("{options:?}");
        // Held across no await: connect is synchronous.
        let mut clients = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(client) = clients.get(&key) {
            return Ok(client.clone());
        }
        let made = ReqwestConnector::default().connect(options)?;
        clients.insert(key, made.clone());
        Ok(made)
    }
}

/// What a URL names, checked: the kind of store, the bucket (or web server) and the key.
#[derive(Clone, Debug)]
struct Target {
    kind: RemoteKind,
    url: Url,
    /// `bucket` for the clouds; `scheme://host:port` for a web server.
    store_key: String,
    /// The object within its store.
    path: Path,
}

impl Target {
    fn parse(text: &str) -> Result<Option<Target>, RemoteError> {
        let Some((scheme, _)) = text.split_once("://") else { return Ok(None) };
        // `C:\x.mp4` and `./a://b.mp4` are paths: a scheme is a letter then letters, digits,
        // `+`, `-` or `.`, and at least two long (a single letter is a Windows drive).
        let is_scheme = scheme.len() >= 2
            && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
        if !is_scheme {
            return Ok(None);
        }
        let kind = match scheme.to_ascii_lowercase().as_str() {
            "http" | "https" => RemoteKind::Http,
            "s3" => RemoteKind::S3,
            "gs" => RemoteKind::Gcs,
            "az" => RemoteKind::Azure,
            other => {
                return Err(RemoteError::Unsupported(format!(
                    "avbatch does not read `{other}://` URLs: give a local path, or an \
                     `https://`, `http://`, `s3://`, `gs://` or `az://` URL"
                )))
            }
        };
        if kind != RemoteKind::Http {
            dot_segments::refuse(text)?;
        }
        let url = Url::parse(text).map_err(|e| {
            RemoteError::Unsupported(format!("this is not a URL avbatch can read: {e}"))
        })?;
        let len = text.len().max(url.as_str().len());
        if len > MAX_URL_BYTES {
            return Err(RemoteError::Unsupported(format!(
                "the URL is {len} bytes long, over the {MAX_URL_BYTES} bytes a request to a \
                 store or web server may carry"
            )));
        }
        let host = match url.host_str() {
            Some(host) if !host.is_empty() => host.to_owned(),
            _ if kind == RemoteKind::Http => {
                return Err(RemoteError::Unsupported("the URL has no host".into()))
            }
            _ => {
                return Err(RemoteError::Unsupported(format!(
                    "the URL names no bucket: write `{scheme}://BUCKET/KEY`"
                )))
            }
        };
        let path = Path::from_url_path(url.path()).map_err(|e| {
            RemoteError::Unsupported(format!("the URL's path is not an object key: {e}"))
        })?;
        if path.as_ref().is_empty() || url.path().ends_with('/') {
            return Err(RemoteError::Unsupported(format!(
                "the URL names a {} but no object in it: write `{scheme}://{}/KEY`",
                if kind == RemoteKind::Http { "server" } else { "bucket" },
                if kind == RemoteKind::Http { "HOST" } else { "BUCKET" },
            )));
        }
        let store_key = match kind {
            RemoteKind::Http => {
                let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
                format!("{}://{host}{port}", url.scheme())
            }
            _ => host,
        };
        Ok(Some(Target { kind, url, store_key, path }))
    }

    /// The URL a store is opened with: the bucket for the clouds; for a web server its root,
    /// or, for a URL with a query string, the whole URL (then the object's path is empty).
    /// See [`pullable`].
    fn pullable(&self) -> bool {
        self.kind != RemoteKind::Azure || !self.url.path().contains('%')
    }

    fn store_url(&self) -> String {
        match self.kind {
            RemoteKind::Http if self.url.query().is_some() => {
                let mut url = self.url.clone();
                url.set_fragment(None);
                url.to_string()
            }
            RemoteKind::Http => format!("{}/", self.store_key),
            _ => format!("{}://{}", self.url.scheme(), self.store_key),
        }
    }

    /// The object's path within the store [`Target::store_url`] opens.
    fn object(&self) -> Path {
        match self.kind {
            RemoteKind::Http if self.url.query().is_some() => Path::default(),
            _ => self.path.clone(),
        }
    }
}

/// A row's `path` as reports and messages show it: a URL without its user, password, query
/// string or fragment ([`Remote::shown`]); a local path as written.
pub fn shown(text: &str) -> String {
    match Target::parse(text) {
        Ok(Some(target)) => shown_url(&target.url),
        Ok(None) => text.to_owned(),
        // Not a URL avbatch reads (the check refused it): not shown whole either.
        Err(_) => text.split(['?', '#']).next().unwrap_or_default().to_owned(),
    }
}

fn shown_url(url: &Url) -> String {
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    let host = url.host_str().unwrap_or_default();
    let query = if url.query().is_some() { "?…" } else { "" };
    format!("{}://{host}{port}{}{query}", url.scheme(), url.path())
}

/// Whether `text` names an object or a URL rather than a local path, without opening a store;
/// an error for a URL avbatch cannot read (another scheme, malformed, no bucket or key).
pub fn is_remote(text: &str) -> Result<bool, RemoteError> {
    Ok(Target::parse(text)?.is_some())
}

/// Whether api.video can be handed a URL to fetch `text` from ([`Remote::pull_url`]); `false`
/// for a local path. An Azure blob whose name must be percent-encoded in a URL (a space, a
/// non-ASCII letter) cannot: object_store signs the encoded path where Azure signs the name as
/// it is, so Azure refuses the SAS (object_store 0.13 and 0.14). Such a blob is relayed.
pub fn pullable(text: &str) -> bool {
    Target::parse(text).ok().flatten().is_some_and(|t| t.pullable())
}

/// The name of the file a URL names: the last segment of its path, percent-decoded
/// (`My%20Show.mp4` → `My Show.mp4`), never anything of its query string. `None` for a local
/// path, or a URL whose path ends in `/`.
pub fn file_name(text: &str) -> Option<String> {
    let target = Target::parse(text).ok()??;
    let last = target.url.path_segments()?.next_back()?;
    let name = percent_encoding::percent_decode_str(last).decode_utf8_lossy().into_owned();
    (!name.is_empty()).then_some(name)
}

/// One row's video in a bucket or on a web server.
#[derive(Clone)]
pub struct Remote {
    text: String,
    target: Target,
    store: Store,
}

impl fmt::Debug for Remote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Remote")
            .field("url", &self.shown())
            .field("kind", &self.target.kind)
            .finish_non_exhaustive()
    }
}

impl Remote {
    /// The object `text` names, with credentials from this process's environment; see
    /// [`Stores::parse`], which a run uses so that rows of one bucket share its store.
    pub fn parse(text: &str) -> Result<Option<Remote>, RemoteError> {
        Stores::from_env().parse(text)
    }

    /// Where the object lives.
    pub fn kind(&self) -> RemoteKind {
        self.target.kind
    }

    /// Whether api.video can be handed a URL to fetch it from: see [`pullable`].
    pub fn pullable(&self) -> bool {
        self.target.pullable()
    }

    /// The URL as written in the manifest. It may hold a secret (a presigned query string):
    /// never print it; print [`Remote::shown`].
    pub fn as_written(&self) -> &str {
        &self.text
    }

    /// The URL for messages and reports: scheme, host (or bucket) and path, without any user
    /// name, password, query string or fragment.
    pub fn shown(&self) -> String {
        shown_url(&self.target.url)
    }

    /// The object's size and version, one request.
    pub async fn head(&self) -> Result<ObjectInfo, RemoteError> {
        let Some(first) = &self.store.first else { return self.head_once().await };
        let mut mine = None;
        let no_keys = first
            .get_or_init(|| async {
                let head = self.head_once().await;
                let no_keys = match &head {
                    Err(RemoteError::NoKeys(why)) => Some(why.clone()),
                    _ => None,
                };
                mine = Some(head);
                no_keys
            })
            .await;
        match (mine, no_keys) {
            (Some(head), _) => head,
            (None, Some(why)) => Err(RemoteError::NoKeys(why.clone())),
            (None, None) => self.head_once().await,
        }
    }

    async fn head_once(&self) -> Result<ObjectInfo, RemoteError> {
        let meta =
            self.store.objects.head(&self.target.object()).await.map_err(|e| self.error(e))?;
        // Stores that send no `Last-Modified` (plain web servers may not) report the epoch.
        let last_modified = (meta.last_modified.timestamp() != 0).then_some(meta.last_modified);
        Ok(ObjectInfo { size: meta.size, etag: meta.e_tag, last_modified })
    }

    /// Bytes `range` of the object. With `etag` (from [`Remote::head`]) the store is asked for
    /// that version only, so an object replaced since is [`RemoteError::Changed`], not a mix of
    /// two files.
    pub async fn range(&self, range: Range<u64>, etag: Option<&str>) -> Result<Bytes, RemoteError> {
        let mut pieces = self.range_stream(range.clone(), etag).await?;
        let mut bytes = bytes::BytesMut::with_capacity((range.end - range.start) as usize);
        while let Some(piece) = pieces.next().await {
            bytes.extend_from_slice(&piece?);
        }
        Ok(bytes.freeze())
    }

    /// Bytes `range` of the object as a stream of the pieces the store sends, for a body that
    /// holds no more than a few of them at once; `etag` as in [`Remote::range`]. The stream
    /// ends in an error when the store sends fewer bytes than asked for.
    pub async fn range_stream(
        &self,
        range: Range<u64>,
        etag: Option<&str>,
    ) -> Result<BoxStream<'static, Result<Bytes, RemoteError>>, RemoteError> {
        let wanted = range.end.saturating_sub(range.start);
        let options = GetOptions {
            // `If-Match` compares strongly: a weak tag (`W/"…"`, web servers that compress)
            // never matches, so it is only compared with the answer's tag below.
            if_match: etag.filter(|e| !e.starts_with("W/")).map(str::to_owned),
            range: Some(GetRange::Bounded(range)),
            ..GetOptions::default()
        };
        let result = self
            .store
            .objects
            .get_opts(&self.target.object(), options)
            .await
            .map_err(|e| self.error(e))?;
        if let (Some(etag), Some(now)) = (etag, result.meta.e_tag.as_deref()) {
            // A web server may ignore `If-Match`: the answer's own tag still tells.
            if etag != now {
                return Err(RemoteError::Changed);
            }
        }
        let this = self.clone();
        let got = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counted = got.clone();
        let pieces = result.into_stream().map(move |piece| {
            let piece = piece.map_err(|e| this.error(e))?;
            let sum = counted.fetch_add(piece.len() as u64, Ordering::Relaxed) + piece.len() as u64;
            if sum > wanted {
                return Err(RemoteError::Other(format!(
                    "the store sent more than the {wanted} bytes asked for"
                )));
            }
            Ok(piece)
        });
        // After the last piece: fewer bytes than asked for is an error, not a shorter part.
        let tail = stream::once(async move {
            let got = got.load(Ordering::Relaxed);
            (got != wanted).then(|| {
                Err(RemoteError::Other(format!(
                    "the store sent {got} bytes where {wanted} were asked for (the object is \
                     shorter?)"
                )))
            })
        })
        .filter_map(std::future::ready);
        Ok(pieces.chain(tail).boxed())
    }

    fn error(&self, e: object_store::Error) -> RemoteError {
        match e {
            object_store::Error::NotFound { .. } => RemoteError::NotFound,
            object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. } => {
                RemoteError::Denied(self.kind(), self.denied_hint())
            }
            object_store::Error::Precondition { .. } => RemoteError::Changed,
            other => {
                let text = scrub(&describe(&other));
                // When the chain's last sources (a role's) give no keys, object_store names
                // the request that failed (`/latest/api/token` of the instance metadata
                // service) or says "credentials": say what was looked for before them.
                let fetching = text.contains("credential") || text.contains("/latest/");
                match self.store.keys.as_deref().and_then(keys::Source::fetch_hint) {
                    Some(hint) if fetching => RemoteError::NoKeys(format!("{hint}: {text}")),
                    _ => RemoteError::Other(text),
                }
            }
        }
    }

    /// What to check when access is denied.
    fn denied_hint(&self) -> String {
        match (self.kind(), self.store.keys.as_deref()) {
            (RemoteKind::Http, _) => {
                "the web server refused the URL (an expired or wrong signature or token?)".into()
            }
            (_, Some(keys)) => keys.denied_hint(),
            (kind, None) => format!("check the credentials, set by {}", kind.credential_vars()),
        }
    }
}

/// What makes an object_store error opening a store into the row's error.
type Unusable<'a> = &'a dyn Fn(object_store::Error) -> RemoteError;
type StoreResult = Result<Store, RemoteError>;

/// The refusal of a row whose store this avbatch was built without.
#[cfg(not(all(feature = "s3", feature = "gcs", feature = "azure")))]
fn not_built(kind: RemoteKind, feature: &str) -> RemoteError {
    RemoteError::Other(format!(
        "this avbatch was built without {kind} (the cargo feature `{feature}`, on by default): \
         build it with `cargo install --path . --features {feature}`"
    ))
}

/// An object_store error and its causes, on one line.
fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}

/// `text` with every URL in it cut before its query string and stripped of any user name or
/// password: object_store errors name the URL requested, and a presigned URL's query is a
/// secret.
fn scrub(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let start = rest[..at]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || "+-.".contains(c)))
            .map_or(0, |i| i + 1);
        let end = rest[at..]
            .find(|c: char| c.is_whitespace() || "\"'<>()`,".contains(c))
            .map_or(rest.len(), |i| at + i);
        out.push_str(&rest[..start]);
        let url = &rest[start..end];
        match Url::parse(url) {
            Ok(mut parsed) => {
                let had_query = parsed.query().is_some();
                parsed.set_query(None);
                parsed.set_fragment(None);
                // Both only fail for URLs that cannot have credentials.
                let _ = parsed.set_username("");
                let _ = parsed.set_password(None);
                out.push_str(parsed.as_str());
                if had_query {
                    out.push_str("?…");
                }
            }
            // Not a URL after all: keep only what comes before `://`, never what follows.
            Err(_) => out.push_str(&rest[start..at + 3]),
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

// Stores of every kind are opened here.
#[cfg(all(test, feature = "s3", feature = "gcs", feature = "azure"))]
mod tests {
    use super::*;

    fn stores() -> Stores {
        // Keys set, so no store ever looks for instance credentials.
        Stores::with_env([
            ("AWS_ACCESS_KEY_ID".into(), "AKIDEXAMPLE".into()),
            ("AWS_SECRET_ACCESS_KEY".into(), "s3cr3t".into()),
            ("AWS_REGION".into(), "us-east-1".into()),
            ("AZURE_STORAGE_ACCOUNT_NAME".into(), "acct".into()),
            ("AZURE_STORAGE_ACCOUNT_KEY".into(), "a2V5".into()),
        ])
    }

    fn remote(text: &str) -> Remote {
        stores().parse(text).expect("a usable URL").expect("a URL, not a path")
    }

    #[test]
    fn schemes_give_kinds() {
        for (text, kind) in [
            ("https://cdn.example.com/v/a.mp4", RemoteKind::Http),
            ("http://127.0.0.1:8080/a.mp4", RemoteKind::Http),
            ("HTTPS://cdn.example.com/a.mp4", RemoteKind::Http),
            ("s3://bucket/videos/a.mp4", RemoteKind::S3),
            ("gs://bucket/a.mp4", RemoteKind::Gcs),
            ("az://container/dir/a.mp4", RemoteKind::Azure),
        ] {
            assert_eq!(remote(text).kind(), kind, "{text}");
        }
    }

    #[test]
    fn local_paths_are_not_urls() {
        for text in ["media/a.mp4", "/abs/a.mp4", r"C:\x.mp4", "C:/x.mp4", r"C://x.mp4", ""] {
            assert!(stores().parse(text).expect("a path is no error").is_none(), "{text}");
        }
    }

    #[test]
    fn unusable_urls_are_refused() {
        for text in [
            "ftp://host/a.mp4",
            "file:///tmp/a.mp4",
            "s3:///key.mp4",
            "s3://bucket",
            "s3://bucket/",
            "s3://bucket/dir/",
            "gs://",
            "https:///a.mp4",
            "https://host",
            "s3://bucket/dots/../o1.mp4",
            "s3://bucket/./o1.mp4",
            "gs://bucket/a/%2E%2E/o1.mp4",
            "az://container/a/.%2e/b/o1.mp4",
        ] {
            let err = stores().parse(text).expect_err(text);
            assert!(matches!(err, RemoteError::Unsupported(_)), "{text}: {err:?}");
        }
        let dots = stores().parse("s3://bucket/dots/../o1.mp4?x=1").unwrap_err().to_string();
        assert!(dots.contains("`dots/../o1.mp4` has a `..` segment"), "{dots}");
        // Dots inside a segment are a name like any other; a web server resolves `..`.
        assert_eq!(remote("s3://bucket/a..b/.c.mp4").target.path.as_ref(), "a..b/.c.mp4");
        assert_eq!(remote("https://h/a/../b.mp4").shown(), "https://h/b.mp4");
        let ftp = stores().parse("ftp://u:pw@host/a.mp4").unwrap_err().to_string();
        assert!(ftp.contains("`ftp://`") && !ftp.contains("pw"), "{ftp}");
    }

    #[test]
    fn azure_blobs_with_encoded_names_are_not_pulled() {
        assert!(pullable("az://lib/show/ep1.mp4"));
        assert!(!pullable("az://lib/show/ep%201.mp4"));
        assert!(!pullable("az://lib/show/ep 1.mp4"), "the URL encodes the space itself");
        assert!(pullable("s3://lib/show/ep%201.mp4"), "SigV4 signs the encoded path");
        assert!(pullable("https://example.com/a%20b.mp4"), "the URL as written");
        assert!(!pullable("media/a.mp4"));
    }

    #[test]
    fn file_names_are_decoded_and_never_hold_the_query() {
        for (text, name) in [
            ("https://cdn.example.com/My%20Show/ep%2001.mp4?sig=a.b.c", Some("ep 01.mp4")),
            ("s3://bucket/dir/caf%C3%A9.mov", Some("café.mov")),
            ("https://example.com/dir/", None),
            ("media/clip.mp4", None),
        ] {
            assert_eq!(file_name(text).as_deref(), name, "{text}");
        }
    }

    #[test]
    fn shown_has_no_credentials_or_query() {
        let presigned = "https://user:hunter2@b.s3.amazonaws.com:8443/k%20x.mp4\
                         ?X-Amz-Signature=abcdef&X-Amz-Credential=AKID#frag";
        let shown = remote(presigned).shown();
        assert_eq!(shown, "https://b.s3.amazonaws.com:8443/k%20x.mp4?…");
        assert_eq!(remote("s3://bucket/v/a.mp4").shown(), "s3://bucket/v/a.mp4");
        assert_eq!(remote("http://h/a.mp4").shown(), "http://h/a.mp4");
        let debug = format!("{:?}", remote(presigned));
        assert!(!debug.contains("hunter2") && !debug.contains("abcdef"), "{debug}");
        assert!(!format!("{:?}", stores()).contains("s3cr3t"));
    }

    #[test]
    fn stores_are_shared_per_bucket() {
        let stores = stores();
        let a = stores.parse("s3://one/a.mp4").unwrap().unwrap();
        let b = stores.parse("s3://one/b/c.mp4").unwrap().unwrap();
        let c = stores.parse("s3://two/a.mp4").unwrap().unwrap();
        assert!(Arc::ptr_eq(&a.store.objects, &b.store.objects));
        assert!(!Arc::ptr_eq(&a.store.objects, &c.store.objects));
        let h1 = stores.parse("https://h/a.mp4").unwrap().unwrap();
        let h2 = stores.parse("https://h/b.mp4").unwrap().unwrap();
        let signed = stores.parse("https://h/b.mp4?sig=1").unwrap().unwrap();
        assert!(Arc::ptr_eq(&h1.store.objects, &h2.store.objects));
        assert!(!Arc::ptr_eq(&h1.store.objects, &signed.store.objects));
        stores.parse("https://h/c.mp4?sig=2").unwrap().unwrap();
        // Five stores, two HTTP clients: one for S3's options, one for web servers'.
        assert_eq!(stores.clients.0.lock().unwrap().len(), 2);
    }

    #[test]
    fn errors_are_scrubbed() {
        let text = "Error performing GET https://u:pw@h.example/k.mp4?X-Amz-Signature=s3cr3t \
                    in 2s, after 3 retries";
        let clean = scrub(text);
        assert_eq!(clean, "Error performing GET https://h.example/k.mp4?… in 2s, after 3 retries");
        assert_eq!(scrub("no url here"), "no url here");
    }

    #[tokio::test]
    async fn azure_pull_url_is_a_sas_url_made_offline() {
        // Signing with the account key makes no request: this runs with no network.
        let blob = remote("az://container/dir/a.mp4");
        let url = blob.pull_url(Duration::from_secs(3600)).await.expect("a SAS URL");
        assert_eq!(url.host_str(), Some("acct.blob.core.windows.net"));
        assert_eq!(url.path(), "/container/dir/a.mp4");
        let query = url.query().unwrap_or_default();
        assert!(query.contains("sig=") && query.contains("sp=r"), "{query}");
    }

    #[tokio::test]
    async fn http_pull_url_is_the_url_itself() {
        let text = "https://cdn.example.com/v/a.mp4?token=abc";
        let url = remote(text).pull_url(Duration::from_secs(60)).await.unwrap();
        assert_eq!(url.as_str(), text);
    }
}

/// A build without a cloud's feature refuses its rows with what to build instead.
#[cfg(all(test, not(feature = "s3")))]
mod without_s3 {
    use super::*;

    #[test]
    fn an_s3_row_is_refused_naming_the_feature() {
        let err = Stores::with_env([]).parse("s3://bucket/a.mp4").expect_err("no S3 store");
        let text = err.to_string();
        assert!(text.contains("built without S3") && text.contains("`s3`"), "{text}");
    }
}
