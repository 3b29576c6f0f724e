//! What `avbatch serve` is told: data folder, keys, token lifetime, rate limits and faults.
//!
//! Parsers for the flag syntaxes live here too (`production`, `uploads=10/1s`, `10s:2s`), so the
//! CLI and the tests build the same [`ServerConfig`].

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use avbatch_api::secret::ApiKey;

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
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Folder where videos, sources, upload tokens and auth state live. Created if missing.
    pub data_dir: PathBuf,
    /// Accepted API keys. Empty: the server generates one, keeps it in the data folder and
    /// reports it (see [`super::Server::generated_key`]).
    pub api_keys: Vec<ApiKey>,
    /// Lifetime of access tokens from `/auth/api-key` and `/auth/refresh`.
    pub token_ttl: Duration,
    /// Per-bucket request quotas.
    pub rate_limits: RateLimits,
    /// Injected latency, bandwidth caps, errors and resets.
    pub faults: FaultConfig,
    /// Validate and count source bytes but store none of them (throughput runs).
    pub discard: bool,
    /// Base URL used in asset links; default `http://<bound address>`.
    pub public_url: Option<String>,
    /// Connection limits, time-outs and the shutdown grace period.
    pub connections: ConnectionConfig,
    /// Where to append one JSON line per API request answered (`--request-log`).
    pub request_log: Option<PathBuf>,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionConfig {
    /// Most connections held at once; `None` derives it from the open-file limit (see
    /// [`super::conns::connection_budget`]).
    pub max_connections: Option<usize>,
    /// A request head must be complete this long after its first byte (and a new connection must
    /// complete its first head this long after it was accepted).
    pub head_timeout: Duration,
    /// An idle keep-alive connection (last answer sent, no new request begun) is closed after this.
    pub idle_timeout: Duration,
    /// A request body that brings no byte for this long while the server waits for it is cut.
    pub body_timeout: Duration,
    /// On shutdown, how long requests in flight may take to finish before every connection still
    /// open is closed.
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
#[error("invalid rate limit `{input}`: {reason}")]
pub struct ParseRateLimitsError {
    input: String,
    reason: &'static str,
}

impl FromStr for RateLimits {
    type Err = ParseRateLimitsError;

    /// `production`, `sandbox`, `off`, or a comma list such as `uploads=10/1s,reads=100/60s`
    /// (`all=N/W` sets the three; buckets not named stay unlimited).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| ParseRateLimitsError { input: s.to_owned(), reason };
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
#[derive(Debug, Clone)]
pub struct FaultConfig {
    /// Added before every request is handled.
    pub latency: Duration,
    /// Cap in bytes per second on each connection, both directions.
    pub bandwidth: Option<u64>,
    /// Probability that an API request is answered `503` without effect.
    pub fail_rate: f64,
    /// Probability that a source upload's connection is dropped part-way through its body.
    pub reset_rate: f64,
    /// Probability that an API request is carried out but its answer is lost: the connection
    /// drops instead of the response going out (the client cannot tell whether it worked).
    pub lose_rate: f64,
    /// Probability that an API request takes effect and its answer is then replaced by a load
    /// balancer's `502` or `504` (HTML body, no rate-limit headers).
    pub gateway_error_rate: f64,
    /// Probability that an upload stops being read part-way through its body and is never
    /// answered (the connection stays open until the client gives up).
    pub stall_rate: f64,
    /// How `GET /videos?metadata[KEY]=VALUE` matches.
    pub metadata_match: MetadataMatch,
    /// Age past which a video whose source is not complete is deleted (api.video: 7 days).
    pub unfinished_ttl: Duration,
    /// Check the credentials of a request with a body once the body has arrived, not before: a
    /// bearer token valid when a long upload began may have expired when it ends. api.video does
    /// not document which it does.
    pub auth_after_body: bool,
    /// Periodic 429 storms.
    pub storm: Option<Storm>,
    /// Seed for the fault dice; the same seed and request order give the same faults.
    pub seed: Option<u64>,
    /// What a caption or chapters upload does for a language that already has one.
    pub existing_tracks: ExistingTracks,
    /// How long encoding takes once a source is complete, and how often it fails.
    pub encoding: super::encoding::EncodingSim,
    /// Bounds on fetching a creation `source` URL ([`super::pull`]).
    pub source_pull: SourcePull,
}

/// Bounds on fetching a `source` URL given at creation (`--source-max-bytes`,
/// `--source-timeout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourcePull {
    /// Largest source fetched; a larger one fails the ingest.
    pub max_bytes: u64,
    /// Longest a fetch may take, from the create to its last byte.
    pub timeout: Duration,
}

impl Default for SourcePull {
    /// 64 GiB (more than api.video's 30 GiB cap per video) and 10 minutes.
    fn default() -> Self {
        SourcePull { max_bytes: 64 * 1024 * 1024 * 1024, timeout: Duration::from_secs(600) }
    }
}

/// The values `--source-max-bytes` accepts: 1 byte to 1 TiB.
pub const SOURCE_MAX_BYTES: std::ops::RangeInclusive<u64> = 1..=1024 * 1024 * 1024 * 1024;
/// The values `--source-timeout` accepts: 100 ms to 1 day.
pub const SOURCE_TIMEOUT: std::ops::RangeInclusive<Duration> =
    Duration::from_millis(100)..=Duration::from_secs(24 * 3600);

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
#[error("invalid storm `{0}`: expected EVERY:FOR with FOR shorter than EVERY, e.g. 10s:2s")]
pub struct ParseStormError(String);

impl FromStr for Storm {
    type Err = ParseStormError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseStormError(s.to_owned());
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
