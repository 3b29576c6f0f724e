//! What `avbatch serve` is told: data folder, keys, token lifetime, rate limits and faults.
//!
//! The settings are the command's flags (`#[derive(clap::Args)]`, each field's doc its help),
//! declared once: `avbatch serve` flattens [`ServerConfig`] into its arguments, and tests build
//! the same struct by hand. The syntaxes (`production`, `uploads=10/1s`, `10s:2s`) parse here;
//! their ranges are in [`super::flags`].

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use avbatch_api::secret::ApiKey;
use avbatch_syntax::{duration, probability, size, whole};
use clap::Args;

use super::flags;

/// Largest body of one source request api.video accepts: 200 MiB (API.md §3.1).
pub const MAX_CHUNK_BYTES: u64 = 200 * 1024 * 1024;
/// Smallest chunk but the last: 5 MiB (API.md §3.2, §3.3).
pub const MIN_CHUNK_BYTES: u64 = 5 * 1024 * 1024;
/// Most parts one video may have (API.md §3.2).
pub const MAX_PARTS: u64 = 10_000;
/// Largest `total` of a bytes-mode upload (API.md §3.3).
pub const MAX_TOTAL_BYTES: u64 = 52_428_800_000;
/// Room for multipart framing and small text fields around the 200 MiB of file data.
pub const MULTIPART_OVERHEAD: u64 = 64 * 1024;

/// Everything the compatible server needs to run.
#[derive(Debug, Clone, Args)]
pub struct ServerConfig {
    /// Folder for videos, sources, upload tokens and auth state; created if missing.
    #[arg(
        long = "data",
        value_name = "DIR",
        default_value = "avbatch-data",
        env = "AVBATCH_SERVE_DATA"
    )]
    pub data_dir: PathBuf,
    /// Accepted API keys. Empty: the server generates one, keeps it in the data folder and
    /// reports it (see [`super::Server::generated_key`]). Read by the command from its own
    /// flags, which keep keys off the command line.
    #[arg(skip)]
    pub api_keys: Vec<ApiKey>,
    /// Lifetime of access tokens from /auth/api-key and /auth/refresh, from 1s to 7days.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "1h",
        value_parser = duration(flags::TOKEN_TTL)
    )]
    pub token_ttl: Duration,
    /// Request quotas: `production` (100 uploads, 200 writes, 500 reads a minute), `sandbox`
    /// (40/40/100), `off`, or a list like `uploads=10/1s,writes=50/60s,reads=100/60s`
    /// (`all=N/W` sets the three); each bucket from 1 to 1000000 requests in a window from 1ms
    /// to 1day.
    #[arg(
        long = "rate-limit",
        value_name = "LIMITS",
        default_value = "production",
        value_parser = flags::rate_limits
    )]
    pub rate_limits: RateLimits,
    /// Discard source bytes after checking and counting them (throughput runs); assets then
    /// answer 404.
    #[arg(long)]
    pub discard: bool,
    /// Base URL written into asset links (default: the listening address).
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,
    /// Append one JSON line to FILE per API request that got past the credentials check and
    /// the injected 503s and storms: `{"method", "path", "status", "answered"}` (`answered`
    /// false when --lose-rate dropped the answer), so tests and people can see which requests a
    /// client made. The query string and credentials are left out.
    #[arg(long, value_name = "FILE")]
    pub request_log: Option<PathBuf>,
    // The flattened groups last: each names its own heading, which the flags after it would
    // otherwise take.
    /// Injected latency, bandwidth caps, errors and resets, and api.video's undocumented rules.
    #[command(flatten)]
    pub faults: FaultConfig,
    /// Connection limits, time-outs and the shutdown grace period.
    #[command(flatten)]
    pub connections: ConnectionConfig,
}

impl ServerConfig {
    /// A server on `data_dir` with production rate limits, no faults and a 3600 s token ttl.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        ServerConfig {
            data_dir: data_dir.into(),
            api_keys: Vec::new(),
            token_ttl: Duration::from_secs(3600),
            rate_limits: RateLimits::production(),
            faults: FaultConfig::default(),
            discard: false,
            public_url: None,
            connections: ConnectionConfig::default(),
            request_log: None,
        }
    }
}

/// How long the server waits for its clients, how many it holds, and how it stops.
///
/// The defaults are those of API gateways in front of services like api.video, chosen so that no
/// client that is making progress is ever cut: nginx closes a connection whose body brings nothing
/// for 60 s (`client_body_timeout`) and an idle keep-alive connection after 75 s; AWS load
/// balancers after 60 s idle; HAProxy's recommended `timeout http-request` is 10 s. A body that
/// trickles in at a few KiB/s never waits 60 s for its next byte, and a request head (at most
/// 32 KiB here) takes under 2 s even at 16 KiB/s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Args)]
#[command(next_help_heading = "Connections")]
pub struct ConnectionConfig {
    /// Most connections held at once, from 1 to 1000000 [default: from the open-file limit,
    /// raised to its hard limit at start, less a quarter kept for files]. At the limit, the
    /// connection idle the longest is closed to make room; one with a request in flight never is.
    #[arg(long, value_name = "N", value_parser = whole(flags::CONNECTIONS))]
    pub max_connections: Option<usize>,
    /// A request head must be complete this long after its first byte, and a new connection
    /// must send its first head this long after it is accepted; else it is closed. From 100ms
    /// to 1h.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "10s",
        value_parser = duration(flags::CONNECTION_TIMEOUT)
    )]
    pub head_timeout: Duration,
    /// An idle keep-alive connection (its last answer sent, no new request begun) is closed after
    /// this long, from 100ms to 1h.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "60s",
        value_parser = duration(flags::CONNECTION_TIMEOUT)
    )]
    pub idle_timeout: Duration,
    /// A request whose body brings no byte for this long while the server waits for it is cut
    /// (a body arriving slowly, at any rate, is not); from 100ms to 1h.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "60s",
        value_parser = duration(flags::CONNECTION_TIMEOUT)
    )]
    pub body_timeout: Duration,
    /// On SIGTERM or Ctrl-C: how long requests in flight may take to finish before every
    /// connection still open is closed and the server exits; from 0s to 1h.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "3s",
        value_parser = duration(flags::SHUTDOWN_GRACE)
    )]
    pub shutdown_grace: Duration,
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        ConnectionConfig {
            max_connections: None,
            head_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(60),
            // Short, so `kill -TERM` (a test's or an orchestrator's) ends the process in seconds;
            // long enough for a request that is being answered to be answered.
            shutdown_grace: Duration::from_secs(3),
        }
    }
}

impl ConnectionConfig {
    /// The limits a connection's watchdogs enforce.
    pub fn timeouts(&self) -> super::conns::Timeouts {
        super::conns::Timeouts {
            head: self.head_timeout,
            idle: self.idle_timeout,
            body: self.body_timeout,
        }
    }
}

/// A number of requests per window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Requests allowed in one window.
    pub limit: u32,
    /// Length of the window; api.video uses one minute.
    pub window: Duration,
}

/// Request quotas per bucket (API.md §5.3). `None` leaves that bucket unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RateLimits {
    /// `POST /videos/{id}/source` and `POST /upload`.
    pub uploads: Option<Quota>,
    /// Every other POST, PATCH and DELETE.
    pub writes: Option<Quota>,
    /// Every GET.
    pub reads: Option<Quota>,
}

const MINUTE: Duration = Duration::from_secs(60);

impl RateLimits {
    /// api.video production: 100 uploads, 200 writes, 500 reads a minute.
    pub fn production() -> Self {
        Self::per_minute(100, 200, 500)
    }

    /// api.video sandbox: 40 uploads, 40 writes, 100 reads a minute.
    pub fn sandbox() -> Self {
        Self::per_minute(40, 40, 100)
    }

    /// No limits at all.
    pub fn off() -> Self {
        RateLimits::default()
    }

    fn per_minute(uploads: u32, writes: u32, reads: u32) -> Self {
        let q = |limit| Some(Quota { limit, window: MINUTE });
        RateLimits { uploads: q(uploads), writes: q(writes), reads: q(reads) }
    }
}

/// Why a `--rate-limit` value was refused.
#[derive(Debug, thiserror::Error)]
#[error("invalid rate limit: {reason}")]
pub struct ParseRateLimitsError {
    reason: &'static str,
}

impl FromStr for RateLimits {
    type Err = ParseRateLimitsError;

    /// `production`, `sandbox`, `off`, or a comma list such as `uploads=10/1s,reads=100/60s`
    /// (`all=N/W` sets the three; buckets not named stay unlimited).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| ParseRateLimitsError { reason };
        match s.trim() {
            "production" => return Ok(Self::production()),
            "sandbox" => return Ok(Self::sandbox()),
            "off" | "none" => return Ok(Self::off()),
            _ => {}
        }
        let mut limits = RateLimits::off();
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (bucket, quota) =
                item.split_once('=').ok_or_else(|| err("expected BUCKET=N/WINDOW"))?;
            let (limit, window) =
                quota.split_once('/').ok_or_else(|| err("expected N/WINDOW, e.g. 100/60s"))?;
            let limit: u32 =
                limit.trim().parse().map_err(|_| err("the count must be a whole number"))?;
            if limit == 0 {
                return Err(err("the count must be at least 1"));
            }
            let window = humantime::parse_duration(window.trim())
                .map_err(|_| err("the window must be a duration, e.g. 1s or 60s"))?;
            if window.is_zero() {
                return Err(err("the window must be longer than zero"));
            }
            let quota = Some(Quota { limit, window });
            match bucket.trim() {
                "uploads" => limits.uploads = quota,
                "writes" => limits.writes = quota,
                "reads" => limits.reads = quota,
                "all" => limits = RateLimits { uploads: quota, writes: quota, reads: quota },
                _ => return Err(err("buckets are uploads, writes, reads or all")),
            }
        }
        Ok(limits)
    }
}

/// Faults the server injects, for tests and benchmarks, and rules of api.video that tests need to
/// tighten or loosen.
#[derive(Debug, Clone, PartialEq, Args)]
#[command(next_help_heading = "Fault injection")]
pub struct FaultConfig {
    /// Delay added before every request is handled, from 0s to 1h.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "0ms",
        value_parser = duration(flags::LATENCY)
    )]
    pub latency: Duration,
    /// Cap on each connection, each way, in bytes per second (e.g. 10MiB), from 1KiB to 100GiB.
    #[arg(long, value_name = "BYTES", value_parser = size(flags::BANDWIDTH))]
    pub bandwidth: Option<u64>,
    /// Probability (from 0 to 1) that an API request is answered 503 without effect.
    #[arg(long, value_name = "P", default_value = "0", value_parser = probability)]
    pub fail_rate: f64,
    /// Probability (from 0 to 1) that an upload's connection is dropped part-way through its
    /// body.
    #[arg(long, value_name = "P", default_value = "0", value_parser = probability)]
    pub reset_rate: f64,
    /// Probability (from 0 to 1) that an API request takes effect but its answer is lost (the
    /// connection drops instead), so the client cannot tell whether it worked.
    #[arg(long, value_name = "P", default_value = "0", value_parser = probability)]
    pub lose_rate: f64,
    /// Probability (from 0 to 1) that an API request (not the /vod/ asset host) takes effect and
    /// its answer is then replaced by a gateway error, 502 or 504 at random, as a load balancer
    /// in front of api.video would send: a text/html nginx page, no X-RateLimit-* headers.
    #[arg(long, value_name = "P", default_value = "0", value_parser = probability)]
    pub gateway_error_rate: f64,
    /// Probability (from 0 to 1) that an upload (POST /videos/{id}/source or POST /upload) stops
    /// being read part-way through its body and is never answered: the connection stays open
    /// (for up to 10 minutes) until the client gives up; nothing of it is stored.
    #[arg(long, value_name = "P", default_value = "0", value_parser = probability)]
    pub stall_rate: f64,
    /// How GET /videos?metadata[KEY]=VALUE matches: `exact` (KEY and VALUE equal a pair of the
    /// video's) or `contains` (KEY equal, VALUE a case-insensitive substring of the pair's value).
    /// api.video does not document which (its title filter matches substrings).
    #[arg(long, value_name = "MODE", default_value = "exact")]
    pub metadata_match: MetadataMatch,
    /// Age at which a video whose source is not complete (and that was not created from a source
    /// URL) is deleted, from 1s to 365days: afterwards it answers 404 and is absent from lists,
    /// its chunks removed. api.video's rule is 7 days. Checked when the video is looked up or
    /// listed, against its createdAt (also as edited in DIR/videos/{id}/video.json before a
    /// restart).
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "7d",
        value_parser = duration(flags::UNFINISHED_AGE)
    )]
    pub unfinished_ttl: Duration,
    /// Check the credentials of a request with a body once its body has arrived, as a proxy that
    /// reads whole requests first would: a bearer token valid when a long upload began is then
    /// refused at its end if it expired meanwhile. api.video does not document which it does.
    #[arg(long)]
    pub auth_after_body: bool,
    /// 429 storms: every EVERY, all API requests get 429 for FOR (e.g. 30s:3s); FOR at least
    /// 1ms, EVERY at most 1day.
    #[arg(long, value_name = "EVERY:FOR", value_parser = flags::storm)]
    pub storm: Option<Storm>,
    /// Seed for the fault dice, for repeatable runs (any 64-bit number).
    #[arg(long, value_name = "N", value_parser = whole(flags::SEED))]
    pub seed: Option<u64>,
    /// What a caption or chapters upload does when the video already has a track in that
    /// language: `replace` it (a caption keeps its default flag), or `refuse` with 400
    /// invalid-attribute naming `language`. api.video does not document which it does.
    #[arg(long, value_name = "MODE", default_value = "replace")]
    pub existing_tracks: ExistingTracks,
    /// How long encoding takes once a source is complete, and how often it fails.
    #[command(flatten)]
    pub encoding: super::encoding::EncodingSim,
    /// Bounds on fetching a creation `source` URL ([`super::pull`]).
    #[command(flatten)]
    pub source_pull: SourcePull,
}

/// Bounds on fetching a `source` URL given at creation (`--source-max-bytes`,
/// `--source-timeout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Args)]
#[command(next_help_heading = "Source URLs")]
pub struct SourcePull {
    /// Largest source a video created with a `source` URL may fetch, from 1B to 1TiB; a larger
    /// one fails its ingest. Such URLs are fetched only from loopback addresses.
    #[arg(
        id = "source-max-bytes",
        long = "source-max-bytes",
        value_name = "BYTES",
        default_value = "64GiB",
        value_parser = size(flags::SOURCE_MAX_BYTES)
    )]
    pub max_bytes: u64,
    /// Longest the fetch of a `source` URL may take, from 100ms to 1day; a slower one fails its
    /// ingest.
    #[arg(
        id = "source-timeout",
        long = "source-timeout",
        value_name = "DURATION",
        default_value = "10m",
        value_parser = duration(flags::SOURCE_TIMEOUT)
    )]
    pub timeout: Duration,
    /// What `GET /videos/{id}/status` says of a source that could not be fetched or copied.
    /// api.video documents no state for it (`ingest.status` is `uploading`, `uploaded`,
    /// `ingesting` or `ingested`), so a client must be right whichever it meets.
    #[arg(
        id = "source-failed-as",
        long = "source-failed-as",
        value_name = "STATE",
        default_value = "ingesting",
        value_enum
    )]
    pub failed_as: FailedPull,
}

/// How the status of a video whose `source` never arrives reads (`--source-failed-as`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum FailedPull {
    /// `ingesting`, for ever: only the states api.video documents.
    #[default]
    Ingesting,
    /// `missing`: a state api.video's clients listed until 2024.
    Missing,
    /// No `ingest` member at all.
    Absent,
}

impl Default for SourcePull {
    /// 64 GiB (more than api.video's 30 GiB cap per video), 10 minutes, and `ingesting`.
    fn default() -> Self {
        SourcePull {
            max_bytes: 64 * 1024 * 1024 * 1024,
            timeout: Duration::from_secs(600),
            failed_as: FailedPull::Ingesting,
        }
    }
}

/// api.video deletes videos that never got their whole source 7 days after their creation
/// (API.md §2.1).
pub const UNFINISHED_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

impl Default for FaultConfig {
    fn default() -> Self {
        FaultConfig {
            latency: Duration::ZERO,
            bandwidth: None,
            fail_rate: 0.0,
            reset_rate: 0.0,
            lose_rate: 0.0,
            gateway_error_rate: 0.0,
            stall_rate: 0.0,
            metadata_match: MetadataMatch::Exact,
            unfinished_ttl: UNFINISHED_TTL,
            auth_after_body: false,
            storm: None,
            seed: None,
            existing_tracks: ExistingTracks::Replace,
            encoding: Default::default(),
            source_pull: SourcePull::default(),
        }
    }
}

/// What `POST /videos/{id}/captions/{language}` (and `/chapters/…`) does when the video already
/// has a track in that language. api.video does not document it; both readings are offered so
/// that clients can be tested against each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExistingTracks {
    /// `replace`: the new file replaces the old one (a caption keeps its `default` flag).
    #[default]
    Replace,
    /// `refuse`: `400 invalid-attribute` naming `language`; the old track stays.
    Refuse,
}

/// Why an `--existing-tracks` value was refused.
#[derive(Debug, thiserror::Error)]
#[error("invalid existing-tracks mode `{0}`: expected `replace` or `refuse`")]
pub struct ParseExistingTracksError(String);

impl FromStr for ExistingTracks {
    type Err = ParseExistingTracksError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "replace" => Ok(ExistingTracks::Replace),
            "refuse" => Ok(ExistingTracks::Refuse),
            _ => Err(ParseExistingTracksError(s.to_owned())),
        }
    }
}

/// How a `metadata[KEY]=VALUE` filter of `GET /videos` matches a video's metadata.
///
/// api.video does not document it (its `title` filter matches substrings); both readings are
/// offered so that clients can be tested against the stricter and the looser one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MetadataMatch {
    /// `exact`: KEY and VALUE equal a pair of the video's, exactly.
    #[default]
    Exact,
    /// `contains`: KEY equals a pair's key exactly; VALUE is a case-insensitive substring of its
    /// value.
    Contains,
}

impl MetadataMatch {
    /// Whether a video's pair `key`/`value` matches the filter `want_key`/`want_value`.
    pub fn matches(self, want_key: &str, want_value: &str, key: &str, value: &str) -> bool {
        key == want_key
            && match self {
                MetadataMatch::Exact => value == want_value,
                MetadataMatch::Contains => {
                    value.to_lowercase().contains(&want_value.to_lowercase())
                }
            }
    }
}

/// Why a `--metadata-match` value was refused.
#[derive(Debug, thiserror::Error)]
#[error("invalid metadata match `{0}`: expected `exact` or `contains`")]
pub struct ParseMetadataMatchError(String);

impl FromStr for MetadataMatch {
    type Err = ParseMetadataMatchError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "exact" => Ok(MetadataMatch::Exact),
            "contains" => Ok(MetadataMatch::Contains),
            _ => Err(ParseMetadataMatchError(s.to_owned())),
        }
    }
}

/// A 429 storm: for the first `duration` of every `every`, every API request gets `429`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Storm {
    /// Period between the starts of two storms.
    pub every: Duration,
    /// How long each storm lasts.
    pub duration: Duration,
}

/// Why a `--storm` value was refused.
#[derive(Debug, thiserror::Error)]
#[error("invalid storm: expected EVERY:FOR with FOR shorter than EVERY, e.g. 10s:2s")]
pub struct ParseStormError;

impl FromStr for Storm {
    type Err = ParseStormError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseStormError;
        let (every, duration) = s.split_once(':').ok_or_else(err)?;
        let every = humantime::parse_duration(every.trim()).map_err(|_| err())?;
        let duration = humantime::parse_duration(duration.trim()).map_err(|_| err())?;
        if duration.is_zero() || duration >= every {
            return Err(err());
        }
        Ok(Storm { every, duration })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_presets_and_lists() {
        assert_eq!("production".parse::<RateLimits>().unwrap(), RateLimits::production());
        assert_eq!("off".parse::<RateLimits>().unwrap(), RateLimits::off());
        let l: RateLimits = "uploads=10/1s, reads=5/2s".parse().unwrap();
        assert_eq!(l.uploads, Some(Quota { limit: 10, window: Duration::from_secs(1) }));
        assert_eq!(l.reads, Some(Quota { limit: 5, window: Duration::from_secs(2) }));
        assert_eq!(l.writes, None);
        let all: RateLimits = "all=3/1s".parse().unwrap();
        assert_eq!(all.writes, all.uploads);
        for bad in ["uploads", "uploads=0/1s", "uploads=3/0s", "foo=1/1s", "uploads=x/1s"] {
            assert!(bad.parse::<RateLimits>().is_err(), "{bad}");
        }
    }

    #[test]
    fn metadata_matches() {
        let exact: MetadataMatch = "exact".parse().unwrap();
        let contains: MetadataMatch = "contains".parse().unwrap();
        assert!("fuzzy".parse::<MetadataMatch>().is_err());
        assert!(
            exact.matches("k", "Blue", "k", "Blue") && !exact.matches("k", "blue", "k", "Blue")
        );
        assert!(!exact.matches("k", "Bl", "k", "Blue"));
        assert!(contains.matches("k", "lU", "k", "Blue") && contains.matches("k", "", "k", "Blue"));
        assert!(!contains.matches("K", "Blue", "k", "Blue"), "the key matches exactly either way");
        assert_eq!(FaultConfig::default().unfinished_ttl, Duration::from_secs(604_800));
    }

    #[test]
    fn storms_parse() {
        let s: Storm = "10s:2s".parse().unwrap();
        assert_eq!(s.every, Duration::from_secs(10));
        assert_eq!(s.duration, Duration::from_secs(2));
        assert!("2s:2s".parse::<Storm>().is_err());
        assert!("2s".parse::<Storm>().is_err());
    }
}
