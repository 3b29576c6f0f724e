//! `avbatch serve` flags: the local api.video, its keys, rate limits, faults and connections.

use super::*;

/// `avbatch serve` flags.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free port (printed at start).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0", env = "AVBATCH_SERVE_ADDR")]
    pub addr: SocketAddr,

    /// Folder for videos, sources, upload tokens and auth state; created if missing.
    #[arg(long, value_name = "DIR", default_value = "avbatch-data", env = "AVBATCH_SERVE_DATA")]
    pub data: PathBuf,

    /// An accepted API key (repeatable; comma-separated in AVBATCH_SERVE_API_KEYS). Prefer the
    /// variable or --api-key-file: a key given here is visible to every local user (`ps`). With
    /// none, a key is generated, kept in DIR/api-key and printed.
    #[arg(
        long = "api-key",
        value_name = "KEY",
        env = "AVBATCH_SERVE_API_KEYS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub api_keys: Vec<String>,

    /// File holding the accepted API keys, one per line (surrounding white space is ignored);
    /// instead of --api-key and AVBATCH_SERVE_API_KEYS, not with them.
    #[arg(long, value_name = "FILE")]
    pub api_key_file: Option<PathBuf>,

    /// Lifetime of access tokens from /auth/api-key and /auth/refresh, from 1s to 7days.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "1h",
        value_parser = bounds::duration(bounds::TOKEN_TTL)
    )]
    pub token_ttl: Duration,

    /// Request quotas: `production` (100 uploads, 200 writes, 500 reads a minute), `sandbox`
    /// (40/40/100), `off`, or a list like `uploads=10/1s,writes=50/60s,reads=100/60s`
    /// (`all=N/W` sets the three); each bucket from 1 to 1000000 requests in a window from 1ms
    /// to 1day.
    #[arg(
        long,
        value_name = "LIMITS",
        default_value = "production",
        value_parser = bounds::rate_limits
    )]
    pub rate_limit: RateLimits,

    /// Discard source bytes after checking and counting them (throughput runs); assets then
    /// answer 404.
    #[arg(long)]
    pub discard: bool,

    /// Append one JSON line to FILE per API request that got past the credentials check and
    /// the injected 503s and storms: `{"method", "path", "status", "answered"}` (`answered`
    /// false when --lose-rate dropped the answer), so tests and people can see which requests a
    /// client made. The query string and credentials are left out.
    #[arg(long, value_name = "FILE")]
    pub request_log: Option<std::path::PathBuf>,

    /// Base URL written into asset links (default: the listening address).
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,

    /// Most connections held at once, from 1 to 1000000 [default: from the open-file limit,
    /// raised to its hard limit at start, less a quarter kept for files]. At the limit, the
    /// connection idle the longest is closed to make room; one with a request in flight never is.
    #[arg(
        long,
        value_name = "N",
        value_parser = bounds::whole(bounds::CONNECTIONS),
        help_heading = "Connections"
    )]
    pub max_connections: Option<usize>,

    /// A request head must be complete this long after its first byte, and a new connection
    /// must send its first head this long after it is accepted; else it is closed. From 100ms
    /// to 1h.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "10s",
        value_parser = bounds::duration(bounds::CONNECTION_TIMEOUT),
        help_heading = "Connections"
    )]
    pub head_timeout: Duration,

    /// An idle keep-alive connection (its last answer sent, no new request begun) is closed after
    /// this long, from 100ms to 1h.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "60s",
        value_parser = bounds::duration(bounds::CONNECTION_TIMEOUT),
        help_heading = "Connections"
    )]
    pub idle_timeout: Duration,

    /// A request whose body brings no byte for this long while the server waits for it is cut
    /// (a body arriving slowly, at any rate, is not); from 100ms to 1h.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "60s",
        value_parser = bounds::duration(bounds::CONNECTION_TIMEOUT),
        help_heading = "Connections"
    )]
    pub body_timeout: Duration,

    /// On SIGTERM or Ctrl-C: how long requests in flight may take to finish before every
    /// connection still open is closed and the server exits; from 0s to 1h.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "3s",
        value_parser = bounds::duration(bounds::SHUTDOWN_GRACE),
        help_heading = "Connections"
    )]
    pub shutdown_grace: Duration,

    /// Delay added before every request is handled, from 0s to 1h.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "0ms",
        value_parser = bounds::duration(bounds::LATENCY),
        help_heading = "Fault injection"
    )]
    pub latency: Duration,

    /// Cap on each connection, each way, in bytes per second (e.g. 10MiB), from 1KiB to 100GiB.
    #[arg(
        long,
        value_name = "BYTES",
        value_parser = bounds::size(bounds::BANDWIDTH),
        help_heading = "Fault injection"
    )]
    pub bandwidth: Option<u64>,

    /// Probability (from 0 to 1) that an API request is answered 503 without effect.
    #[arg(
        long,
        value_name = "P",
        default_value = "0",
        value_parser = bounds::probability,
        help_heading = "Fault injection"
    )]
    pub fail_rate: f64,

    /// Probability (from 0 to 1) that an upload's connection is dropped part-way through its
    /// body.
    #[arg(
        long,
        value_name = "P",
        default_value = "0",
        value_parser = bounds::probability,
        help_heading = "Fault injection"
    )]
    pub reset_rate: f64,

    /// Probability (from 0 to 1) that an API request takes effect but its answer is lost (the
    /// connection drops instead), so the client cannot tell whether it worked.
    #[arg(
        long,
        value_name = "P",
        default_value = "0",
        value_parser = bounds::probability,
        help_heading = "Fault injection"
    )]
    pub lose_rate: f64,

    /// Probability (from 0 to 1) that an API request (not the /vod/ asset host) takes effect and
    /// its answer is then replaced by a gateway error, 502 or 504 at random, as a load balancer
    /// in front of api.video would send: a text/html nginx page, no X-RateLimit-* headers.
    #[arg(
        long,
        value_name = "P",
        default_value = "0",
        value_parser = bounds::probability,
        help_heading = "Fault injection"
    )]
    pub gateway_error_rate: f64,

    /// Probability (from 0 to 1) that an upload (POST /videos/{id}/source or POST /upload) stops
    /// being read part-way through its body and is never answered: the connection stays open
    /// (for up to 10 minutes) until the client gives up; nothing of it is stored.
    #[arg(
        long,
        value_name = "P",
        default_value = "0",
        value_parser = bounds::probability,
        help_heading = "Fault injection"
    )]
    pub stall_rate: f64,

    /// How GET /videos?metadata[KEY]=VALUE matches: `exact` (KEY and VALUE equal a pair of the
    /// video's) or `contains` (KEY equal, VALUE a case-insensitive substring of the pair's value).
    /// api.video does not document which (its title filter matches substrings).
    #[arg(
        long,
        value_name = "MODE",
        default_value = "exact",
        value_parser = parse_metadata_match,
        help_heading = "Fault injection"
    )]
    pub metadata_match: MetadataMatch,

    /// What a caption or chapters upload does when the video already has a track in that
    /// language: `replace` it (a caption keeps its default flag), or `refuse` with 400
    /// invalid-attribute naming `language`. api.video does not document which it does.
    #[arg(
        long,
        value_name = "MODE",
        default_value = "replace",
        value_parser = parse_existing_tracks,
        help_heading = "Fault injection"
    )]
    pub existing_tracks: ExistingTracks,

    /// Age at which a video whose source is not complete (and that was not created from a source
    /// URL) is deleted, from 1s to 365days: afterwards it answers 404 and is absent from lists,
    /// its chunks removed. api.video's rule is 7 days. Checked when the video is looked up or
    /// listed, against its createdAt (also as edited in DIR/videos/{id}/video.json before a
    /// restart).
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "7d",
        value_parser = bounds::duration(bounds::UNFINISHED_TTL),
        help_heading = "Fault injection"
    )]
    pub unfinished_ttl: Duration,

    /// Check the credentials of a request with a body once its body has arrived, as a proxy that
    /// reads whole requests first would: a bearer token valid when a long upload began is then
    /// refused at its end if it expired meanwhile. api.video does not document which it does.
    #[arg(long, help_heading = "Fault injection")]
    pub auth_after_body: bool,

    /// 429 storms: every EVERY, all API requests get 429 for FOR (e.g. 30s:3s); FOR at least
    /// 1ms, EVERY at most 1day.
    #[arg(
        long,
        value_name = "EVERY:FOR",
        value_parser = bounds::storm,
        help_heading = "Fault injection"
    )]
    pub storm: Option<Storm>,

    /// Seed for the fault dice, for repeatable runs (any 64-bit number).
    #[arg(
        long,
        value_name = "N",
        value_parser = bounds::whole(bounds::SEED),
        help_heading = "Fault injection"
    )]
    pub seed: Option<u64>,

    /// Time a video takes to encode once its source is complete, from 0s to 7days: its qualities
    /// go waiting, encoding, encoded; it is playable halfway through. 0s: playable at once.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "0s",
        value_parser = bounds::duration(bounds::ENCODING_TIME),
        help_heading = "Encoding"
    )]
    pub encoding_time: Duration,

    /// Encoding time added per GiB of source, from 0s to 7days.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "0s",
        value_parser = bounds::duration(bounds::ENCODING_TIME),
        help_heading = "Encoding"
    )]
    pub encoding_per_gb: Duration,

    /// Fraction (from 0 to 1) of videos whose encoding fails: their qualities end `failed` and
    /// they never become playable. Which ones follows --seed and the video id.
    #[arg(
        long,
        value_name = "P",
        default_value = "0",
        value_parser = bounds::probability,
        help_heading = "Encoding"
    )]
    pub encoding_fail_rate: f64,

    /// Largest source a video created with a `source` URL may fetch, from 1B to 1TiB; a larger
    /// one fails its ingest. Such URLs are fetched only from loopback addresses.
    #[arg(
        long,
        value_name = "BYTES",
        default_value = "64GiB",
        value_parser = bounds::size(avbatch_serve::config::SOURCE_MAX_BYTES),
        help_heading = "Source URLs"
    )]
    pub source_max_bytes: u64,

    /// Longest the fetch of a `source` URL may take, from 100ms to 1day; a slower one fails its
    /// ingest.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "10m",
        value_parser = bounds::duration(avbatch_serve::config::SOURCE_TIMEOUT),
        help_heading = "Source URLs"
    )]
    pub source_timeout: Duration,
}
