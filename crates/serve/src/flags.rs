//! The range each of `avbatch serve`'s numeric flags takes, and the value parsers that hold the
//! flags to them. The flags themselves are the fields of [`ServerConfig`](super::ServerConfig)
//! and the settings in it (`#[derive(clap::Args)]`), declared once: the command line is the
//! double's own configuration.

use std::ops::RangeInclusive;
use std::time::Duration;

use avbatch_syntax::show_duration;

use super::config::{RateLimits, Storm};

const KIB: u64 = 1024;
const GIB: u64 = 1024 * 1024 * 1024;
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(24 * 3600);
const WEEK: Duration = Duration::from_secs(7 * 24 * 3600);

/// `--token-ttl`: access token lifetime (api.video's is an hour).
pub const TOKEN_TTL: RangeInclusive<Duration> = Duration::from_secs(1)..=WEEK;
/// `--rate-limit`: requests per window in one bucket.
pub const QUOTA_COUNT: RangeInclusive<u32> = 1..=1_000_000;
/// `--rate-limit`: a bucket's window (api.video's is a minute).
pub const QUOTA_WINDOW: RangeInclusive<Duration> = Duration::from_millis(1)..=DAY;
/// `--storm`: how long a storm lasts (at least), and how often one starts (at most).
pub const STORM: RangeInclusive<Duration> = Duration::from_millis(1)..=DAY;
/// `--max-connections`: connections held at once (each is a file descriptor).
pub const CONNECTIONS: RangeInclusive<usize> = 1..=1_000_000;
/// `--head-timeout`, `--idle-timeout`, `--body-timeout`: a connection's time-outs.
pub const CONNECTION_TIMEOUT: RangeInclusive<Duration> = Duration::from_millis(100)..=HOUR;
/// `--shutdown-grace`: time for requests in flight at a shutdown.
pub const SHUTDOWN_GRACE: RangeInclusive<Duration> = Duration::ZERO..=HOUR;
/// `--unfinished-ttl`: age at which an unfinished upload is dropped (api.video: 7 days).
pub const UNFINISHED_AGE: RangeInclusive<Duration> =
    Duration::from_secs(1)..=Duration::from_secs(365 * 24 * 3600);
/// `--latency`: delay per request.
pub const LATENCY: RangeInclusive<Duration> = Duration::ZERO..=HOUR;
/// `--bandwidth`: bytes per second, from one pacing cell (1 KiB) to well past any network card.
pub const BANDWIDTH: RangeInclusive<u64> = KIB..=100 * GIB;
/// `--seed`: any 64-bit number.
pub const SEED: RangeInclusive<u64> = 0..=u64::MAX;
/// `--encoding-time`, `--encoding-per-gb`.
pub const ENCODING_TIME: RangeInclusive<Duration> = Duration::ZERO..=WEEK;
/// `--source-max-bytes`: 1 byte to 1 TiB.
pub const SOURCE_MAX_BYTES: RangeInclusive<u64> = 1..=1024 * GIB;
/// `--source-timeout`: 100 ms to 1 day.
pub const SOURCE_TIMEOUT: RangeInclusive<Duration> = Duration::from_millis(100)..=DAY;

/// The value parser of `--rate-limit`: [`RateLimits`]' syntax, with every bucket's count in
/// [`QUOTA_COUNT`] and its window in [`QUOTA_WINDOW`].
pub fn rate_limits(s: &str) -> Result<RateLimits, String> {
    let limits: RateLimits =
        s.parse().map_err(|e: super::config::ParseRateLimitsError| e.to_string())?;
    for quota in [limits.uploads, limits.writes, limits.reads].into_iter().flatten() {
        if !QUOTA_COUNT.contains(&quota.limit) || !QUOTA_WINDOW.contains(&quota.window) {
            return Err(format!(
                "a bucket takes from {} to {} requests in a window from {} to {}, such as \
                 uploads=100/60s",
                QUOTA_COUNT.start(),
                QUOTA_COUNT.end(),
                show_duration(*QUOTA_WINDOW.start()),
                show_duration(*QUOTA_WINDOW.end())
            ));
        }
    }
    Ok(limits)
}

/// The value parser of `--storm`: EVERY:FOR with FOR at least, and EVERY at most, as [`STORM`]
/// says.
pub fn storm(s: &str) -> Result<Storm, String> {
    let storm: Storm = s.parse().map_err(|e: super::config::ParseStormError| e.to_string())?;
    if storm.duration < *STORM.start() || storm.every > *STORM.end() {
        return Err(format!(
            "a storm lasts at least {} and starts at most every {}, such as 30s:3s",
            show_duration(*STORM.start()),
            show_duration(*STORM.end())
        ));
    }
    Ok(storm)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotas_and_storms_keep_to_their_ranges() {
        assert!(rate_limits("uploads=5/1s").is_ok());
        for bad in
            ["all=4294967295/1s", "all=1/18446744073709551615s", "uploads=1/1ns", "all=1000001/1s"]
        {
            let e = rate_limits(bad).unwrap_err();
            assert!(e.starts_with("a bucket takes from 1 to 1000000 requests"), "{bad}: {e}");
        }
        let long = format!("{}=1/1s", "u".repeat(100_000));
        assert!(rate_limits(&long).unwrap_err().len() < 500, "the value is not echoed");
        assert!(storm("30s:3s").is_ok());
        let e = storm("2s:1ns").unwrap_err();
        assert!(e.starts_with("a storm lasts at least 1ms and starts at most every 1day"), "{e}");
        assert!(storm("18446744073709551615s:1s").is_err());
    }
}
