//! The range every numeric flag accepts, and the clap value parsers that hold flags to it.
//!
//! A value out of range is a usage error (exit 2) whose message says the range, caught while the
//! command line is parsed: nothing is sent, nothing waits on a network, and no absurd number gets
//! as far as a limiter, a semaphore or a timer that would panic on it. Each flag's `--help`
//! states its range too; a test checks that it matches the constant here.

use std::fmt::Display;
use std::ops::RangeInclusive;
use std::str::FromStr;
use std::time::Duration;

use avbatch_core::chunk::{MAX_PART_SIZE, MAX_VIDEO_SIZE, MIN_PART_SIZE};
use avbatch_core::excerpt::cut;
use avbatch_serve::{RateLimits, Storm};

const KIB: u64 = 1024;
const GIB: u64 = 1024 * 1024 * 1024;
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(24 * 3600);

/// `--concurrency`: videos at once. A thousand connections is more than any link needs, and
/// each prepared video holds a file open and a map.
pub const CONCURRENCY: RangeInclusive<usize> = 1..=1024;
/// `--retries`: retries per request.
pub const RETRIES: RangeInclusive<u32> = 0..=1000;
/// `--timeout`: how long a request may go without progress. Zero would fail every request.
pub const TIMEOUT: RangeInclusive<Duration> = Duration::from_millis(100)..=HOUR;
/// `--rate`: requests per second. Beyond these the limiter's period rounds to zero or to ages.
pub const RATE: RangeInclusive<f64> = 0.001..=1_000_000.0;
/// `--bandwidth`, `serve --bandwidth`: bytes per second, from one pacing cell (1 KiB) to well
/// past any network card.
pub const BANDWIDTH: RangeInclusive<u64> = KIB..=100 * GIB;
/// `--chunk-size`: what api.video takes in one part.
pub const CHUNK_SIZE: RangeInclusive<u64> = MIN_PART_SIZE..=MAX_PART_SIZE;
/// `serve --latency`, `bench --latency`: delay per request.
pub const LATENCY: RangeInclusive<Duration> = Duration::ZERO..=HOUR;
/// `serve --token-ttl`: access token lifetime (api.video's is an hour).
pub const TOKEN_TTL: RangeInclusive<Duration> =
    Duration::from_secs(1)..=Duration::from_secs(7 * 24 * 3600);
/// `serve --rate-limit`: requests per window in one bucket.
pub const QUOTA_COUNT: RangeInclusive<u32> = 1..=1_000_000;
/// `serve --rate-limit`: a bucket's window (api.video's is a minute).
pub const QUOTA_WINDOW: RangeInclusive<Duration> = Duration::from_millis(1)..=DAY;
/// `serve --storm`: how long a storm lasts (at least), and how often one starts (at most).
pub const STORM: RangeInclusive<Duration> = Duration::from_millis(1)..=DAY;
/// `bench --files`: files in the synthetic library.
pub const BENCH_FILES: RangeInclusive<usize> = 1..=1_000_000;
/// `bench --size`, `--max-size`: one synthetic file, at most what api.video takes for a video.
pub const BENCH_SIZE: RangeInclusive<u64> = 1..=MAX_VIDEO_SIZE;
/// `serve --max-connections`: connections held at once (each is a file descriptor).
pub const CONNECTIONS: RangeInclusive<usize> = 1..=1_000_000;
/// `serve --head-timeout`, `--idle-timeout`, `--body-timeout`: a connection's time-outs.
pub const CONNECTION_TIMEOUT: RangeInclusive<Duration> = Duration::from_millis(100)..=HOUR;
/// `serve --shutdown-grace`: time for requests in flight at a shutdown.
pub const SHUTDOWN_GRACE: RangeInclusive<Duration> = Duration::ZERO..=HOUR;
/// `serve --unfinished-ttl`: age at which an unfinished upload is dropped (api.video: 7 days).
pub const UNFINISHED_TTL: RangeInclusive<Duration> =
    Duration::from_secs(1)..=Duration::from_secs(365 * 24 * 3600);
/// `clean --older-than`: how old a leftover video must be. Zero takes every one, a run under
/// way included; a year (365.25 days, as `1year` reads) is far past the 7 days api.video keeps an
/// unfinished upload.
pub const OLDER_THAN: RangeInclusive<Duration> = Duration::ZERO..=Duration::from_secs(31_557_600);
/// `upload --max-duration`: how long a run may start videos.
pub const MAX_DURATION: RangeInclusive<Duration> =
    Duration::from_secs(1)..=Duration::from_secs(30 * 24 * 3600);
/// `upload --notify-timeout`: the whole of a notification, tries and backoff included.
pub const NOTIFY_TIMEOUT: RangeInclusive<Duration> =
    Duration::from_secs(1)..=Duration::from_secs(600);
/// Seeds: any 64-bit number.
pub const SEED: RangeInclusive<u64> = 0..=u64::MAX;
/// `serve --encoding-time`, `--encoding-per-gb`; `upload --wait-timeout`.
pub const ENCODING_TIME: RangeInclusive<Duration> =
    Duration::ZERO..=Duration::from_secs(7 * 24 * 3600);
/// `upload --limit`: rows of a trial run. None would upload nothing.
pub const LIMIT: RangeInclusive<u64> = 1..=u64::MAX;

/// A clap value parser: a whole number within `range`.
pub fn whole<T>(
    range: RangeInclusive<T>,
) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync + 'static
where
    T: FromStr + PartialOrd + Display + Clone + Send + Sync + 'static,
{
    move |s| match s.trim().parse::<T>() {
        Ok(n) if range.contains(&n) => Ok(n),
        _ => Err(format!("expected a whole number from {} to {}", range.start(), range.end())),
    }
}

/// A clap value parser: a size (`10MiB`, `1048576`) within `range`.
pub fn size(
    range: RangeInclusive<u64>,
) -> impl Fn(&str) -> Result<u64, String> + Clone + Send + Sync + 'static {
    move |s| {
        let expected = || {
            format!(
                "expected a size from {} to {}, such as 10MiB",
                show_size(*range.start()),
                show_size(*range.end())
            )
        };
        match parse_size::parse_size(s) {
            Ok(n) if range.contains(&n) => Ok(n),
            Ok(_) => Err(expected()),
            Err(e) => Err(format!("not a size ({e}); {}", expected())),
        }
    }
}

/// The clap value parser of `--assume-bandwidth`: bits a second (`200Mbit`, `1Gbit`,
/// `500kbit`, `100Mbps`, decimal, a trailing `/s` allowed) or a size a second (`25MiB`), in
/// bytes a second within [`BANDWIDTH`].
pub fn link_rate(s: &str) -> Result<u64, String> {
    let text = s.trim().trim_end_matches("/s");
    let lower = text.to_ascii_lowercase();
    let lower = match lower.strip_suffix("bps") {
        Some(number) => format!("{number}bit"),
        None => lower,
    };
    let bits = [("gbit", 1e9), ("mbit", 1e6), ("kbit", 1e3), ("bit", 1.0)]
        .into_iter()
        .find_map(|(unit, scale)| lower.strip_suffix(unit).map(|n| (n.trim().to_owned(), scale)));
    let bytes = match bits {
        Some((number, scale)) => match number.parse::<f64>() {
            Ok(n) if n.is_finite() && n > 0.0 => (n * scale / 8.0).round() as u64,
            _ => return Err(format!("not a rate: `{s}` (expected e.g. 200Mbit or 25MiB)")),
        },
        None => size(BANDWIDTH)(text)?,
    };
    if BANDWIDTH.contains(&bytes) {
        Ok(bytes)
    } else {
        Err(format!(
            "expected a rate from {} to {} a second, such as 200Mbit or 25MiB",
            show_size(*BANDWIDTH.start()),
            show_size(*BANDWIDTH.end())
        ))
    }
}

/// The clap value parser of `upload --bandwidth`: a size per second within [`BANDWIDTH`], or a
/// timetable of them (`08:00,10MiB 19:00,off`).
pub fn bandwidth(s: &str) -> Result<avbatch_core::limit::timetable::Bandwidth, String> {
    use avbatch_core::limit::timetable::{Bandwidth, Timetable};
    if s.contains(',') {
        Timetable::parse(s, size(BANDWIDTH)).map(Bandwidth::Timetable)
    } else {
        size(BANDWIDTH)(s).map(Bandwidth::Fixed)
    }
}

/// A clap value parser: a duration (`250ms`, `5s`, `1h`) within `range`.
pub fn duration(
    range: RangeInclusive<Duration>,
) -> impl Fn(&str) -> Result<Duration, String> + Clone + Send + Sync + 'static {
    move |s| {
        let expected = || {
            format!(
                "expected a duration from {} to {}, such as 250ms, 5s or 1h",
                show_duration(*range.start()),
                show_duration(*range.end())
            )
        };
        match humantime::parse_duration(s) {
            Ok(d) if range.contains(&d) => Ok(d),
            Ok(_) => Err(expected()),
            Err(e) => Err(format!("not a duration ({e}); {}", expected())),
        }
    }
}

/// The clap value parser of `--rate`: requests per second (`10`, `2.5/s`) within [`RATE`].
pub fn rate(s: &str) -> Result<f64, String> {
    match s.trim().trim_end_matches("/s").trim().parse::<f64>() {
        Ok(r) if RATE.contains(&r) => Ok(r),
        _ => Err(format!(
            "expected requests per second from {} to {}, such as 10 or 2.5/s",
            RATE.start(),
            RATE.end()
        )),
    }
}

/// The clap value parser of fault probabilities: a number from 0 to 1.
pub fn probability(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
        _ => Err("expected a probability from 0 to 1".to_owned()),
    }
}

/// The clap value parser of `--rate-limit`: the server's syntax, with every bucket's count in
/// [`QUOTA_COUNT`] and its window in [`QUOTA_WINDOW`].
pub fn rate_limits(s: &str) -> Result<RateLimits, String> {
    // The parser's message quotes the whole value; a long one is cut.
    let limits: RateLimits =
        s.parse().map_err(|e: avbatch_serve::config::ParseRateLimitsError| {
            e.to_string().replace(s, &cut(s))
        })?;
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

/// `bench --rate-limit`: checked like [`rate_limits`], kept as text for the server's command line.
pub fn rate_limits_text(s: &str) -> Result<String, String> {
    rate_limits(s).map(|_| s.to_owned())
}

/// The clap value parser of `--storm`: EVERY:FOR with FOR at least, and EVERY at most, as
/// [`STORM`] says.
pub fn storm(s: &str) -> Result<Storm, String> {
    let storm: Storm = s
        .parse()
        .map_err(|e: avbatch_serve::config::ParseStormError| e.to_string().replace(s, &cut(s)))?;
    if storm.duration < *STORM.start() || storm.every > *STORM.end() {
        return Err(format!(
            "a storm lasts at least {} and starts at most every {}, such as 30s:3s",
            show_duration(*STORM.start()),
            show_duration(*STORM.end())
        ));
    }
    Ok(storm)
}

/// `n` bytes the way the size flags are written: `5MiB`, `100GiB`, `1 byte`.
pub fn show_size(n: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(GIB, "GiB"), (1024 * 1024, "MiB"), (KIB, "KiB")];
    match UNITS.iter().find(|(unit, _)| n >= *unit && n.is_multiple_of(*unit)) {
        Some((unit, name)) => format!("{}{name}", n / unit),
        None if n == 1 => "1 byte".to_owned(),
        None => format!("{n} bytes"),
    }
}

/// `d` the way the duration flags are written: `100ms`, `1h`, `7days`.
pub fn show_duration(d: Duration) -> String {
    if d.is_zero() {
        "0s".to_owned()
    } else {
        humantime::format_duration(d).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_rates_in_bits_or_bytes() {
        assert_eq!(link_rate("200Mbit"), Ok(25_000_000));
        assert_eq!(link_rate("1Gbit/s"), Ok(125_000_000));
        assert_eq!(link_rate("100 Mbps"), Ok(12_500_000));
        assert_eq!(link_rate("25MiB"), Ok(25 * 1024 * 1024));
        for bad in ["fast", "0Mbit", "-1Gbit", "1bit", "1000Gbit"] {
            assert!(link_rate(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn parsers_take_the_range_and_refuse_the_rest() {
        let c = whole(CONCURRENCY);
        assert_eq!((c("1"), c("1024")), (Ok(1), Ok(1024)));
        for bad in ["0", "1025", "18446744073709551615", "99999999999999999999999", "-1", "x"] {
            assert_eq!(c(bad), Err("expected a whole number from 1 to 1024".to_owned()), "{bad}");
        }
        let b = size(BANDWIDTH);
        assert_eq!(b("1KiB"), Ok(1024));
        assert_eq!(b("0").unwrap_err(), "expected a size from 1KiB to 100GiB, such as 10MiB");
        assert!(b("lots").unwrap_err().starts_with("not a size ("), "{:?}", b("lots"));
        let t = duration(TIMEOUT);
        assert_eq!(t("100ms"), Ok(Duration::from_millis(100)));
        assert_eq!(
            t("0s").unwrap_err(),
            "expected a duration from 100ms to 1h, such as 250ms, 5s or 1h"
        );
        assert!(t("18446744073709551615s").is_err());
        assert_eq!(duration(LATENCY)("0ms"), Ok(Duration::ZERO));
        assert_eq!((rate("2.5/s"), rate("0.001"), rate("1e6")), (Ok(2.5), Ok(0.001), Ok(1e6)));
        for bad in ["1e300", "1e-300", "0", "-1", "NaN", "inf", ""] {
            assert_eq!(
                rate(bad),
                Err("expected requests per second from 0.001 to 1000000, such as 10 or 2.5/s"
                    .to_owned()),
                "{bad}"
            );
        }
        assert!(probability("NaN").is_err() && probability("1").is_ok());
        assert!(rate_limits("uploads=5/1s").is_ok());
        for bad in
            ["all=4294967295/1s", "all=1/18446744073709551615s", "uploads=1/1ns", "all=1000001/1s"]
        {
            assert!(
                rate_limits(bad)
                    .unwrap_err()
                    .starts_with("a bucket takes from 1 to 1000000 requests"),
                "{bad}"
            );
        }
        let long = format!("{}=1/1s", "u".repeat(100_000));
        assert!(rate_limits(&long).unwrap_err().len() < 500);
        assert!(storm("30s:3s").is_ok());
        assert!(storm("2s:1ns")
            .unwrap_err()
            .starts_with("a storm lasts at least 1ms and starts at most every 1day"));
        assert!(storm("18446744073709551615s:1s").is_err());
    }

    #[test]
    fn sizes_and_durations_show_as_flags_take_them() {
        assert_eq!(
            [show_size(5 << 20), show_size(100 << 30), show_size(1), show_size(1500)],
            ["5MiB", "100GiB", "1 byte", "1500 bytes"]
        );
        assert_eq!(
            [show_duration(HOUR), show_duration(Duration::ZERO), show_duration(*TOKEN_TTL.end())],
            ["1h", "0s", "7days"]
        );
        for shown in [show_size(*CHUNK_SIZE.end()), show_size(*BENCH_SIZE.end())] {
            assert_eq!(show_size(parse_size::parse_size(&shown).unwrap()), shown);
        }
    }
}
