//! api.video's rate limits: fixed windows per bucket, reported in `X-RateLimit-*` headers.
//!
//! Each bucket (uploads, writes, reads; API.md §5.3) counts requests in fixed windows that start
//! when the server starts. A request that finds its bucket empty is answered `429` and told, in
//! whole seconds, when the window resets.

use std::sync::Mutex;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use tokio::time::Instant;

use super::config::{Quota, RateLimits};

pub use avbatch_api::Bucket;

/// The state of a bucket after a request was counted (or refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request may go on.
    pub allowed: bool,
    /// Requests per window.
    pub limit: u32,
    /// Requests left in this window.
    pub remaining: u32,
    /// Time until the window resets.
    pub reset_in: Duration,
}

impl Decision {
    /// Whole seconds until the reset, at least 1, as the headers carry it.
    pub fn retry_after_secs(&self) -> u64 {
        self.reset_in.as_secs_f64().ceil().max(1.0) as u64
    }

    /// Adds `X-RateLimit-Limit`, `-Remaining` and `-Retry-After` (and `Retry-After` when refused).
    pub fn write_headers(&self, headers: &mut HeaderMap) {
        let mut put = |name: &'static str, v: u64| {
            headers.insert(HeaderName::from_static(name), HeaderValue::from(v));
        };
        put("x-ratelimit-limit", self.limit.into());
        put("x-ratelimit-remaining", self.remaining.into());
        put("x-ratelimit-retry-after", self.retry_after_secs());
        if !self.allowed {
            put("retry-after", self.retry_after_secs());
        }
    }
}

#[derive(Debug)]
struct Window {
    quota: Quota,
    /// (index of the current window, requests counted in it)
    used: Mutex<(u64, u32)>,
}

/// The three buckets.
#[derive(Debug)]
pub struct RateLimiter {
    start: Instant,
    uploads: Option<Window>,
    writes: Option<Window>,
    reads: Option<Window>,
}

impl RateLimiter {
    /// Limits starting now.
    pub fn new(limits: RateLimits) -> Self {
        let w = |q: Option<Quota>| q.map(|quota| Window { quota, used: Mutex::new((0, 0)) });
        RateLimiter {
            start: Instant::now(),
            uploads: w(limits.uploads),
            writes: w(limits.writes),
            reads: w(limits.reads),
        }
    }

    fn window(&self, bucket: Bucket) -> Option<&Window> {
        match bucket {
            Bucket::Uploads => self.uploads.as_ref(),
            Bucket::Writes => self.writes.as_ref(),
            Bucket::Reads => self.reads.as_ref(),
        }
    }

    /// Counts a request against `bucket` if it has room. `None` when the bucket is unlimited.
    pub fn take(&self, bucket: Bucket) -> Option<Decision> {
        self.decide(bucket, true)
    }

    /// The bucket's state without counting anything.
    pub fn peek(&self, bucket: Bucket) -> Option<Decision> {
        self.decide(bucket, false)
    }

    fn decide(&self, bucket: Bucket, take: bool) -> Option<Decision> {
        let w = self.window(bucket)?;
        let elapsed = self.start.elapsed();
        let window_nanos = w.quota.window.as_nanos().max(1);
        let index = (elapsed.as_nanos() / window_nanos) as u64;
        let reset_at =
            Duration::from_nanos(((index as u128 + 1) * window_nanos).min(u64::MAX as u128) as u64);
        let reset_in = reset_at.saturating_sub(elapsed);
        let mut used = w.used.lock().unwrap_or_else(|p| p.into_inner());
        if used.0 != index {
            *used = (index, 0);
        }
        let allowed = used.1 < w.quota.limit;
        if allowed && take {
            used.1 += 1;
        }
        Some(Decision {
            allowed,
            limit: w.quota.limit,
            remaining: w.quota.limit - used.1,
            reset_in,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn fixed_windows_refill() {
        let limits: RateLimits = "uploads=2/10s".parse().unwrap();
        let rl = RateLimiter::new(limits);
        assert!(rl.take(Bucket::Reads).is_none(), "unlimited bucket");
        let a = rl.take(Bucket::Uploads).unwrap();
        assert!(a.allowed && a.remaining == 1);
        assert!(rl.take(Bucket::Uploads).unwrap().allowed);
        tokio::time::advance(Duration::from_millis(2500)).await;
        let refused = rl.take(Bucket::Uploads).unwrap();
        assert!(!refused.allowed);
        assert_eq!(refused.remaining, 0);
        assert_eq!(refused.retry_after_secs(), 8);
        tokio::time::advance(refused.reset_in).await;
        assert!(rl.take(Bucket::Uploads).unwrap().allowed);
    }
}
