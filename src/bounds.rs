//! The range every numeric flag accepts, and the clap value parsers that hold flags to it.
//!
//! A value out of range is a usage error (exit 2) whose message says the range, caught while the
//! command line is parsed: nothing is sent, nothing waits on a network, and no absurd number gets
//! as far as a limiter, a semaphore or a timer that would panic on it. Each flag's `--help`
//! states its range too; a test checks that it matches the constant here.

use std::ops::RangeInclusive;
use std::time::Duration;

use avbatch_core::chunk::{MAX_PART_SIZE, MAX_VIDEO_SIZE, MIN_PART_SIZE};
#[cfg(feature = "serve")]
pub use avbatch_serve::flags::{LATENCY, SEED};
pub use avbatch_syntax::{duration, probability, show_duration, show_size, size, whole};

const KIB: u64 = 1024;
const GIB: u64 = 1024 * 1024 * 1024;
const HOUR: Duration = Duration::from_secs(3600);

/// `--concurrency`: videos at once. A thousand connections is more than any link needs, and
/// each prepared video holds a file open and a map.
pub const CONCURRENCY: RangeInclusive<usize> = 1..=1024;
/// `--retries`: retries per request.
pub const RETRIES: RangeInclusive<u32> = 0..=1000;
/// `--timeout`: how long a request may go without progress. Zero would fail every request.
pub const TIMEOUT: RangeInclusive<Duration> = Duration::from_millis(100)..=HOUR;
/// `--rate`: requests per second. Beyond these the limiter's period rounds to zero or to ages.
pub const RATE: RangeInclusive<f64> = 0.001..=1_000_000.0;
/// `--bandwidth`: bytes per second, from one pacing cell (1 KiB) to well past any network card
/// (as `serve --bandwidth`).
pub const BANDWIDTH: RangeInclusive<u64> = KIB..=100 * GIB;
/// `--chunk-size`: what api.video takes in one part.
pub const CHUNK_SIZE: RangeInclusive<u64> = MIN_PART_SIZE..=MAX_PART_SIZE;
/// `bench --files`: files in the synthetic library.
pub const BENCH_FILES: RangeInclusive<usize> = 1..=1_000_000;
/// `bench --size`, `--max-size`: one synthetic file, at most what api.video takes for a video.
pub const BENCH_SIZE: RangeInclusive<u64> = 1..=MAX_VIDEO_SIZE;
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
/// `upload --wait-timeout`, `--max-processing`: how long encoding is waited for.
pub const ENCODING_WAIT: RangeInclusive<Duration> =
    Duration::ZERO..=Duration::from_secs(7 * 24 * 3600);
/// `upload --pull-timeout`: how long api.video is given to fetch a source, beyond its size's due.
pub const PULL_TIMEOUT: RangeInclusive<Duration> =
    Duration::from_secs(1)..=Duration::from_secs(7 * 24 * 3600);
/// `upload --limit`: rows of a trial run. None would upload nothing.
pub const LIMIT: RangeInclusive<u64> = 1..=u64::MAX;

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

#[cfg(feature = "serve")]
/// `bench --rate-limit`: checked as `serve --rate-limit` checks it, kept as text for the
/// server's command line.
pub fn rate_limits_text(s: &str) -> Result<String, String> {
    avbatch_serve::flags::rate_limits(s).map(|_| s.to_owned())
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
    fn requests_per_second_keep_to_their_range() {
        assert_eq!((rate("2.5/s"), rate("0.001"), rate("1e6")), (Ok(2.5), Ok(0.001), Ok(1e6)));
        for bad in ["1e300", "1e-300", "0", "-1", "NaN", "inf", ""] {
            assert_eq!(
                rate(bad),
                Err("expected requests per second from 0.001 to 1000000, such as 10 or 2.5/s"
                    .to_owned()),
                "{bad}"
            );
        }
        let c = whole(CONCURRENCY);
        assert_eq!(c("1025"), Err("expected a whole number from 1 to 1024".to_owned()));
        for (range, shown) in
            [(CHUNK_SIZE, show_size(*CHUNK_SIZE.end())), (BENCH_SIZE, show_size(*BENCH_SIZE.end()))]
        {
            assert_eq!(show_size(size(range)(&shown).unwrap()), shown);
        }
    }
}
