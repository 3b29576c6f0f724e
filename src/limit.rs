//! Request and byte rates shared by every upload session.
//!
//! One governor limiter paces requests (`--rate`), an optional second one paces bytes
//! (`--bandwidth`). On top, each api.video bucket (uploads, writes, reads) can be paused: when
//! the server says a bucket is empty (`X-RateLimit-Remaining: 0`, or a 429), every request of
//! that bucket waits for the reset the server announced instead of hammering it into 429s.

use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::time::Instant;

pub use crate::server::ratelimit::Bucket;

/// Bytes per governor cell for the bandwidth limiter.
const BYTE_CELL: u64 = 1024;

/// What a response said about its bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateInfo {
    /// `X-RateLimit-Limit`.
    pub limit: Option<u64>,
    /// `X-RateLimit-Remaining`.
    pub remaining: Option<u64>,
    /// `X-RateLimit-Retry-After` or `Retry-After`.
    pub retry_after: Option<Duration>,
}

/// The shared limiter.
#[derive(Debug)]
pub struct Limiter {
    requests: Option<DefaultDirectRateLimiter>,
    bytes: Option<(DefaultDirectRateLimiter, u32)>,
    paused_until: [Mutex<Option<Instant>>; 3],
}

fn index(bucket: Bucket) -> usize {
    match bucket {
        Bucket::Uploads => 0,
        Bucket::Writes => 1,
        Bucket::Reads => 2,
    }
}

impl Limiter {
    /// `rate` requests per second (burst: one second's worth, at least 1) and `bandwidth` bytes
    /// per second (burst: a quarter second's worth); `None` leaves either unlimited.
    pub fn new(rate: Option<f64>, bandwidth: Option<u64>) -> Limiter {
        let requests = rate.filter(|r| *r > 0.0).map(|r| {
            let period = Duration::from_secs_f64(1.0 / r);
            let burst = NonZeroU32::new((r.floor() as u32).max(1)).expect("at least 1");
            RateLimiter::direct(Quota::with_period(period).expect("a positive period").allow_burst(burst))
        });
        let bytes = bandwidth.filter(|b| *b > 0).map(|b| {
            let cells_per_sec = (b / BYTE_CELL).max(1);
            let burst = ((cells_per_sec / 4).max(1)).min(u32::MAX as u64) as u32;
            let period = Duration::from_secs_f64(1.0 / cells_per_sec as f64);
            let limiter = RateLimiter::direct(
                Quota::with_period(period).expect("a positive period").allow_burst(NonZeroU32::new(burst).expect("at least 1")),
            );
            (limiter, burst)
        });
        Limiter { requests, bytes, paused_until: Default::default() }
    }

    /// Largest slice worth pacing at once: a burst of the byte limiter.
    pub fn byte_slice(&self) -> Option<u64> {
        self.bytes.as_ref().map(|(_, burst)| *burst as u64 * BYTE_CELL)
    }

    /// Waits until a request of `bucket` may go.
    pub async fn acquire(&self, bucket: Bucket) {
        loop {
            let until = *self.paused_until[index(bucket)].lock().unwrap_or_else(|p| p.into_inner());
            match until {
                Some(t) if t > Instant::now() => tokio::time::sleep_until(t).await,
                _ => break,
            }
        }
        if let Some(l) = &self.requests {
            l.until_ready().await;
        }
    }

    /// Waits until `n` more bytes may be sent (`n` at most [`Limiter::byte_slice`]).
    pub async fn take_bytes(&self, n: u64) {
        if let Some((l, burst)) = &self.bytes {
            let cells = (n.div_ceil(BYTE_CELL) as u32).clamp(1, *burst);
            let _ = l.until_n_ready(NonZeroU32::new(cells).expect("at least 1")).await;
        }
    }

    /// Learns from a response: an empty bucket pauses its requests until the announced reset.
    pub fn observe(&self, bucket: Bucket, info: RateInfo, was_429: bool) {
        let exhausted = was_429 || info.remaining == Some(0);
        if !exhausted {
            return;
        }
        let wait = info.retry_after.unwrap_or(Duration::from_secs(1));
        self.pause(bucket, wait);
    }

    /// Holds every request of `bucket` for `wait`.
    pub fn pause(&self, bucket: Bucket, wait: Duration) {
        let until = Instant::now() + wait;
        let mut slot = self.paused_until[index(bucket)].lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none_or(|t| t < until) {
            *slot = Some(until);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn an_empty_bucket_pauses_only_itself() {
        let l = Limiter::new(None, None);
        l.observe(Bucket::Uploads, RateInfo { limit: Some(10), remaining: Some(0), retry_after: Some(Duration::from_secs(3)) }, false);
        let start = Instant::now();
        l.acquire(Bucket::Reads).await;
        assert_eq!(start.elapsed(), Duration::ZERO);
        l.acquire(Bucket::Uploads).await;
        assert!(start.elapsed() >= Duration::from_secs(3));
    }

    #[test]
    fn byte_slices_follow_the_bandwidth() {
        let l = Limiter::new(Some(10.0), Some(4 * 1024 * 1024));
        assert_eq!(l.byte_slice(), Some(1024 * 1024));
        assert_eq!(Limiter::new(None, None).byte_slice(), None);
    }
}
