//! Request and byte rates shared by every upload session.
//!
//! One governor limiter paces requests (`--rate`), an optional second one paces bytes
//! (`--bandwidth`). On top, each api.video bucket (uploads, writes, reads) adapts to what the
//! server says of it:
//! - its requests are spread over the window: with `Remaining` requests left and the reset
//!   `Retry-After` seconds away, one goes every `Retry-After / Remaining` (times the number of
//!   shards sharing the account, each taking its share), instead of a burst and then 429s;
//! - until the first answer of a bucket arrives, one request probes it and the others wait (at
//!   most [`PROBE_WAIT`]), so a fleet of shards starting together does not open with a burst;
//! - an empty bucket (`Remaining: 0`, or a 429) holds its requests until the announced reset.

use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::time::Instant;

pub use crate::server::ratelimit::Bucket;

/// Bytes per governor cell for the bandwidth limiter.
const BYTE_CELL: u64 = 1024;
/// Longest wait for a bucket's first answer before the other requests go anyway (a first
/// upload of 200 MiB answers only after its body is sent).
pub const PROBE_WAIT: Duration = Duration::from_millis(500);

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

/// What is known of one bucket.
#[derive(Debug, Default)]
struct BucketState {
    /// Held until the server's reset (empty bucket).
    paused_until: Option<Instant>,
    /// The next request's slot, and the spacing between slots.
    next: Option<Instant>,
    interval: Duration,
    /// An answer of this bucket has arrived; until then one request probes.
    learned: bool,
    probe_started: Option<Instant>,
}

/// The shared limiter.
#[derive(Debug)]
pub struct Limiter {
    requests: Option<DefaultDirectRateLimiter>,
    bytes: Option<(DefaultDirectRateLimiter, u32)>,
    buckets: [Mutex<BucketState>; 3],
    /// Processes sharing the account's limits (shards); each paces to its share.
    share: u32,
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
        Limiter { requests, bytes, buckets: Default::default(), share: 1 }
    }

    /// Paces each bucket to 1/`share` of what the server has left: for `share` shards of one
    /// account.
    pub fn shared_by(mut self, share: u32) -> Limiter {
        self.share = share.max(1);
        self
    }

    fn state(&self, bucket: Bucket) -> std::sync::MutexGuard<'_, BucketState> {
        self.buckets[index(bucket)].lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Largest slice worth pacing at once: a burst of the byte limiter.
    pub fn byte_slice(&self) -> Option<u64> {
        self.bytes.as_ref().map(|(_, burst)| *burst as u64 * BYTE_CELL)
    }

    /// Waits until a request of `bucket` may go.
    pub async fn acquire(&self, bucket: Bucket) {
        loop {
            let now = Instant::now();
            // (when to look again, or when to go)
            let (at, go) = {
                let mut st = self.state(bucket);
                match (st.paused_until, st.learned, st.probe_started) {
                    (Some(t), _, _) if t > now => (t, false),
                    (_, false, None) => {
                        st.probe_started = Some(now);
                        (now, true)
                    }
                    (_, false, Some(p)) if now < p + PROBE_WAIT => ((now + Duration::from_millis(10)).min(p + PROBE_WAIT), false),
                    _ => {
                        let slot = st.next.map_or(now, |n| n.max(now));
                        st.next = Some(slot + st.interval);
                        (slot, true)
                    }
                }
            };
            tokio::time::sleep_until(at).await;
            if go {
                break;
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

    /// Learns from a response: the spacing that spreads what is left of the bucket over the
    /// rest of its window, and a pause when it is empty.
    pub fn observe(&self, bucket: Bucket, info: RateInfo, was_429: bool) {
        {
            let mut st = self.state(bucket);
            st.learned = true;
            if let (Some(left), Some(reset)) = (info.remaining, info.retry_after) {
                // Retry-After is whole seconds: count the current one as a full second.
                let window = reset.max(Duration::from_secs(1));
                st.interval = (window * self.share / left.max(1).min(u64::from(u32::MAX)) as u32).min(window);
            }
        }
        if was_429 || info.remaining == Some(0) {
            self.pause(bucket, info.retry_after.unwrap_or(Duration::from_secs(1)));
        }
    }

    /// Holds every request of `bucket` for `wait`.
    pub fn pause(&self, bucket: Bucket, wait: Duration) {
        let until = Instant::now() + wait;
        let mut st = self.state(bucket);
        st.learned = true;
        if st.paused_until.is_none_or(|t| t < until) {
            st.paused_until = Some(until);
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

    #[tokio::test(start_paused = true)]
    async fn requests_spread_what_is_left_over_the_window_and_shards_take_their_share() {
        for share in [1u32, 4] {
            let l = Limiter::new(None, None).shared_by(share);
            let start = Instant::now();
            l.acquire(Bucket::Writes).await; // the probe
            l.observe(
                Bucket::Writes,
                RateInfo { limit: Some(100), remaining: Some(50), retry_after: Some(Duration::from_secs(10)) },
                false,
            );
            for _ in 0..10 {
                l.acquire(Bucket::Writes).await;
            }
            // 50 left over 10 s: one every 200 ms, times the shards sharing them.
            let expected = Duration::from_millis(200) * share * 9;
            assert_eq!(start.elapsed(), expected, "share {share}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn before_the_first_answer_one_request_probes_and_the_rest_wait_a_little() {
        let l = std::sync::Arc::new(Limiter::new(None, None));
        let start = Instant::now();
        l.acquire(Bucket::Uploads).await;
        assert_eq!(start.elapsed(), Duration::ZERO);
        let l2 = l.clone();
        let second = tokio::spawn(async move {
            l2.acquire(Bucket::Uploads).await;
            Instant::now()
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        l.observe(Bucket::Uploads, RateInfo::default(), false);
        let went = second.await.unwrap() - start;
        assert!(went >= Duration::from_millis(100) && went < Duration::from_millis(150), "{went:?}");
        // Without any answer the others go after PROBE_WAIT.
        let l = Limiter::new(None, None);
        let start = Instant::now();
        l.acquire(Bucket::Reads).await;
        l.acquire(Bucket::Reads).await;
        assert_eq!(start.elapsed(), PROBE_WAIT);
    }

    #[test]
    fn byte_slices_follow_the_bandwidth() {
        let l = Limiter::new(Some(10.0), Some(4 * 1024 * 1024));
        assert_eq!(l.byte_slice(), Some(1024 * 1024));
        assert_eq!(Limiter::new(None, None).byte_slice(), None);
    }
}
