//! Request and byte rates shared by every upload session.
//!
//! One governor limiter paces requests (`--rate`), an optional second one paces bytes
//! (`--bandwidth`). On top, each api.video bucket (uploads, writes, reads) follows what the
//! server says of it in `X-RateLimit-Limit`, `-Remaining` and `-Retry-After`:
//! - in windows shorter than [`BURST_WINDOW`] (test servers' per-second quotas), requests keep
//!   to 98 % of the bucket's steady rate (`Limit` per window, the window being the longest
//!   `Retry-After` seen), each of N shards to 1/N of it, since a whole-second `Retry-After` cannot
//!   place the end of a one-second window; api.video's minute windows are spent at once;
//! - a process never sends more in a window than its share of what the server said was left, and
//!   waits for the window's end when that is spent (seen precisely when `Remaining` goes up);
//! - until the first answer of a bucket arrives, one request probes it and the others wait (at
//!   most [`PROBE_WAIT`]), so a fleet of shards starting together does not open with a burst.
//!   api.video puts the rate-limit headers on every answer; once two buckets have answered
//!   without them (and no answer came with them), the server has no limits to learn, and no
//!   bucket is probed;
//! - a 429 holds the bucket for its `Retry-After`.
//!
pub mod timetable;

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::time::Instant;

use avbatch_api::{Bucket, RateInfo};

/// Bytes per governor cell for the bandwidth limiter.
const BYTE_CELL: u64 = 1024;
/// Windows at least this long are spent at once (their end is known to a second); shorter ones
/// are paced evenly.
pub const BURST_WINDOW: Duration = Duration::from_secs(10);
/// Longest wait for a bucket's first answer before the other requests go anyway (a first
/// upload of 200 MiB answers only after its body is sent).
pub const PROBE_WAIT: Duration = Duration::from_millis(500);

/// A limiter of `bandwidth` bytes per second (burst: a quarter second's worth), and its burst in
/// cells; `None` for no limit.
fn byte_limiter(bandwidth: Option<u64>) -> Option<Arc<(DefaultDirectRateLimiter, u32)>> {
    bandwidth.filter(|b| *b > 0).map(|b| {
        let cells_per_sec = (b / BYTE_CELL).max(1);
        let burst = ((cells_per_sec / 4).max(1)).min(u32::MAX as u64) as u32;
        let period = Duration::from_secs_f64(1.0 / cells_per_sec as f64);
        let limiter = RateLimiter::direct(
            Quota::with_period(period)
                .expect("a positive period")
                .allow_burst(NonZeroU32::new(burst).expect("at least 1")),
        );
        Arc::new((limiter, burst))
    })
}

/// What is known of one bucket.
#[derive(Debug, Default)]
struct BucketState {
    /// Held until then (a 429, or an empty bucket).
    paused_until: Option<Instant>,
    /// Requests this process may still send in the current window: its share of what the server
    /// said was left, less what it sent since. `None`: unknown, send and learn.
    budget: Option<u64>,
    /// `Remaining` in the last answer, to see the window reset (it goes up).
    last_remaining: Option<u64>,
    /// When the current window ends: learnt from a reset seen (precise), else from the
    /// whole-second `Retry-After` (late by up to a second).
    window_ends: Option<Instant>,
    /// The window's length: the longest `Retry-After` seen.
    window: Duration,
    /// Spacing between requests: 98 % of the bucket's steady rate (`Limit` per window), this
    /// process's share of it; and the next free slot.
    interval: Duration,
    next: Option<Instant>,
    /// Until when a request waits for the bucket's quota (a 429's pause, or a spent window);
    /// for the progress display.
    waiting_until: Option<Instant>,
    /// An answer of this bucket has arrived; until then one request probes.
    learned: bool,
    /// `X-RateLimit-Limit` in the last answer that had it: the bucket's quota a window.
    limit: Option<u64>,
    probe_started: Option<Instant>,
}

/// The shared limiter.
#[derive(Debug)]
pub struct Limiter {
    requests: Option<DefaultDirectRateLimiter>,
    /// The byte limiter and its burst in cells; replaced when `--bandwidth`'s timetable moves
    /// to another entry.
    bytes: RwLock<Option<Arc<(DefaultDirectRateLimiter, u32)>>>,
    buckets: [Mutex<BucketState>; 3],
    /// Processes sharing the account's limits (shards); each paces to its share.
    share: u32,
    /// What answers have said of limits: a bit per bucket that answered without rate-limit
    /// headers, and [`HEADERS_SEEN`] once any answer carried them.
    headers: AtomicU8,
}

/// Some answer carried rate-limit headers.
const HEADERS_SEEN: u8 = 0x80;

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
            RateLimiter::direct(
                Quota::with_period(period).expect("a positive period").allow_burst(burst),
            )
        });
        Limiter {
            requests,
            bytes: RwLock::new(byte_limiter(bandwidth)),
            buckets: Default::default(),
            share: 1,
            headers: AtomicU8::new(0),
        }
    }

    /// Paces each bucket to 1/`share` of what the server has left: for `share` shards of one
    /// account.
    pub fn shared_by(mut self, share: u32) -> Limiter {
        self.share = share.max(1);
        self
    }

    /// Paces bytes to `bandwidth` per second from now on (`None`: unlimited), as a `--bandwidth`
    /// timetable moves to another entry. Slices already waiting finish at the old rate; parts
    /// started from now on are cut to the new rate's slices.
    pub fn set_bandwidth(&self, bandwidth: Option<u64>) {
        *self.bytes.write().unwrap_or_else(|p| p.into_inner()) = byte_limiter(bandwidth);
    }

    fn byte_limiter(&self) -> Option<Arc<(DefaultDirectRateLimiter, u32)>> {
        self.bytes.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn state(&self, bucket: Bucket) -> std::sync::MutexGuard<'_, BucketState> {
        self.buckets[index(bucket)].lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Largest slice worth pacing at once: a burst of the byte limiter.
    pub fn byte_slice(&self) -> Option<u64> {
        self.byte_limiter().map(|b| b.1 as u64 * BYTE_CELL)
    }

    /// Whether the server limits nothing: two buckets answered without rate-limit headers (a
    /// lookup and a create do before any upload), and no answer ever carried them. api.video
    /// puts them on every answer, and a test server limiting only some buckets puts them on
    /// those; either way the buckets are probed.
    fn unlimited(&self) -> bool {
        let h = self.headers.load(Ordering::Relaxed);
        h & HEADERS_SEEN == 0 && h.count_ones() >= 2
    }

    /// Waits until a request of `bucket` may go.
    pub async fn acquire(&self, bucket: Bucket) {
        loop {
            let now = Instant::now();
            // (when, and whether to go then or to look again)
            let (at, go): (Instant, bool) = {
                let mut st = self.state(bucket);
                if let Some(end) = st.window_ends.filter(|e| *e <= now) {
                    // A new window: what was left of the old one says nothing of it.
                    let w = st.window.max(Duration::from_millis(1));
                    let behind = (now - end).as_nanos() / w.as_nanos() + 1;
                    st.window_ends = Some(end + w * behind.min(u128::from(u32::MAX)) as u32);
                    st.budget = None;
                }
                let learned = st.learned || self.unlimited();
                match (st.paused_until, learned, st.probe_started, st.budget) {
                    (Some(t), ..) if t > now => {
                        st.waiting_until = st.waiting_until.max(Some(t));
                        (t, false)
                    }
                    (_, false, None, _) => {
                        st.probe_started = Some(now);
                        (now, true)
                    }
                    (_, false, Some(p), _) if now < p + PROBE_WAIT => {
                        ((now + Duration::from_millis(10)).min(p + PROBE_WAIT), false)
                    }
                    // This window's share is spent: wait for the next one.
                    (_, _, _, Some(0)) => {
                        let end = st.window_ends.unwrap_or(now + Duration::from_secs(1));
                        st.waiting_until = st.waiting_until.max(Some(end));
                        (end, false)
                    }
                    (_, _, _, budget) => {
                        st.budget = budget.map(|b| b - 1);
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

    /// The bucket a request waits the longest for, and how much longer, when one is held by
    /// its quota (a 429's pause, or a window spent) for more than a second.
    pub fn waiting(&self) -> Option<(Bucket, Duration)> {
        let now = Instant::now();
        Bucket::ALL
            .into_iter()
            .filter_map(|b| {
                let until = self.state(b).waiting_until?;
                Some((b, until.checked_duration_since(now)?))
            })
            .filter(|(_, left)| *left > Duration::from_secs(1))
            .max_by_key(|(_, left)| *left)
    }

    /// Waits until `n` more bytes may be sent (paced a burst, [`Limiter::byte_slice`], at a
    /// time).
    pub async fn take_bytes(&self, n: u64) {
        if let Some(bytes) = self.byte_limiter() {
            let (l, burst) = &*bytes;
            // More than a burst (a store's piece may be) is taken a burst at a time.
            let mut cells = n.div_ceil(BYTE_CELL).max(1);
            while cells > 0 {
                let now = cells.min(u64::from((*burst).max(1))) as u32;
                let _ = l.until_n_ready(NonZeroU32::new(now).expect("at least 1")).await;
                cells -= u64::from(now);
            }
        }
    }

    /// Learns from a response: this process's share of what is left of the bucket's window, when
    /// the window ends, and a pause when the server refused (429).
    pub fn observe(&self, bucket: Bucket, info: RateInfo, was_429: bool) {
        let now = Instant::now();
        if info.limit.is_some() || info.remaining.is_some() {
            self.headers.fetch_or(HEADERS_SEEN, Ordering::Relaxed);
        } else if !was_429 {
            self.headers.fetch_or(1 << index(bucket), Ordering::Relaxed);
        }
        {
            let mut st = self.state(bucket);
            st.learned = true;
            st.limit = info.limit.or(st.limit);
            if let (Some(left), Some(reset)) = (info.remaining, info.retry_after) {
                st.window = st.window.max(reset);
                let share = left / u64::from(self.share);
                if st.last_remaining.is_some_and(|before| left > before) {
                    // The window reset just before this answer: the next ends one window later.
                    st.window_ends = Some(now + st.window);
                    st.budget = Some(share);
                } else {
                    if st.window_ends.is_none() {
                        st.window_ends = Some(now + reset);
                    }
                    // Answers come back out of order; the smallest share seen this window holds.
                    st.budget = Some(st.budget.map_or(share, |b| b.min(share)));
                }
                st.last_remaining = Some(left);
                // Retry-After is whole seconds, so a window's end is known to about a second: for
                // api.video's minute windows that is close enough to spend the share at once and
                // wait for the reset; for windows of a few seconds it is not, and an even pace
                // sustains the rate instead.
                if let Some(limit) = info.limit.filter(|l| *l > 0 && st.window < BURST_WINDOW) {
                    st.interval = st.window * self.share * 50
                        / (limit.min(u64::from(u32::MAX / 64)) as u32 * 49);
                } else {
                    st.interval = Duration::ZERO;
                }
            }
        }
        if was_429 {
            self.pause(bucket, info.retry_after.unwrap_or(Duration::from_secs(1)));
        }
    }

    /// The quota of `bucket` a window, as the server's last answer in it said
    /// (`X-RateLimit-Limit`), if one did.
    pub fn limit(&self, bucket: Bucket) -> Option<u64> {
        self.state(bucket).limit
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
        l.observe(
            Bucket::Uploads,
            RateInfo {
                limit: Some(10),
                remaining: Some(0),
                retry_after: Some(Duration::from_secs(3)),
            },
            false,
        );
        let start = Instant::now();
        l.acquire(Bucket::Reads).await;
        assert_eq!(start.elapsed(), Duration::ZERO);
        l.acquire(Bucket::Uploads).await;
        assert!(start.elapsed() >= Duration::from_secs(3));
    }

    #[tokio::test(start_paused = true)]
    async fn requests_keep_to_98_percent_of_the_steady_rate_and_shards_take_their_share() {
        for share in [1u32, 4] {
            let l = Limiter::new(None, None).shared_by(share);
            l.acquire(Bucket::Writes).await; // the probe
            l.observe(
                Bucket::Writes,
                RateInfo {
                    limit: Some(100),
                    remaining: Some(99),
                    retry_after: Some(Duration::from_secs(5)),
                },
                false,
            );
            let start = Instant::now();
            for _ in 0..10 {
                l.acquire(Bucket::Writes).await;
            }
            // 100 per 5 s window: one every 50 ms at the full rate, 51 ms at 98 %.
            let interval = Duration::from_secs(5) * share * 50 / (100 * 49);
            let took = start.elapsed();
            assert!(
                took >= interval * 9 && took < interval * 9 + Duration::from_millis(10),
                "share {share}: {took:?}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_minute_window_is_spent_at_once() {
        let l = Limiter::new(None, None);
        l.acquire(Bucket::Uploads).await;
        l.observe(
            Bucket::Uploads,
            RateInfo {
                limit: Some(100),
                remaining: Some(99),
                retry_after: Some(Duration::from_secs(60)),
            },
            false,
        );
        let start = Instant::now();
        for _ in 0..99 {
            l.acquire(Bucket::Uploads).await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
        l.acquire(Bucket::Uploads).await;
        assert_eq!(start.elapsed(), Duration::from_secs(60), "the 100th waits for the reset");
    }

    #[tokio::test(start_paused = true)]
    async fn a_spent_share_waits_for_the_next_window_seen_by_its_reset() {
        let l = Limiter::new(None, None).shared_by(2);
        l.acquire(Bucket::Uploads).await;
        let start = Instant::now();
        let info = |left| RateInfo {
            limit: None,
            remaining: Some(left),
            retry_after: Some(Duration::from_secs(1)),
        };
        l.observe(Bucket::Uploads, info(6), false);
        for _ in 0..3 {
            l.acquire(Bucket::Uploads).await; // half of the 6 left
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
        l.acquire(Bucket::Uploads).await;
        assert_eq!(
            start.elapsed(),
            Duration::from_secs(1),
            "the fourth waits for the window's end"
        );
        // Remaining going up shows the reset: the share is fresh and the next end is a window on.
        l.observe(Bucket::Uploads, info(10), false);
        let t = Instant::now();
        for _ in 0..5 {
            l.acquire(Bucket::Uploads).await;
        }
        assert_eq!(t.elapsed(), Duration::ZERO);
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
        assert!(
            went >= Duration::from_millis(100) && went < Duration::from_millis(150),
            "{went:?}"
        );
        // Without any answer the others go after PROBE_WAIT.
        let l = Limiter::new(None, None);
        let start = Instant::now();
        l.acquire(Bucket::Reads).await;
        l.acquire(Bucket::Reads).await;
        assert_eq!(start.elapsed(), PROBE_WAIT);
    }

    #[tokio::test(start_paused = true)]
    async fn a_server_that_answers_without_limits_is_not_probed_again() {
        let l = Limiter::new(None, None);
        l.acquire(Bucket::Reads).await;
        l.observe(Bucket::Reads, RateInfo::default(), false);
        l.acquire(Bucket::Writes).await;
        l.observe(Bucket::Writes, RateInfo::default(), false);
        // Another bucket, never answered: no probe, since the server sends no limits at all.
        let start = Instant::now();
        for _ in 0..4 {
            l.acquire(Bucket::Uploads).await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
        // One bucket answered without limits says nothing of the others.
        let l = Limiter::new(None, None);
        l.observe(Bucket::Reads, RateInfo::default(), false);
        let start = Instant::now();
        l.acquire(Bucket::Uploads).await;
        l.acquire(Bucket::Uploads).await;
        assert_eq!(start.elapsed(), PROBE_WAIT);
        // A server that sent limits once keeps its buckets probed.
        let l = Limiter::new(None, None);
        l.observe(
            Bucket::Writes,
            RateInfo {
                limit: Some(100),
                remaining: Some(99),
                retry_after: Some(Duration::from_secs(60)),
            },
            false,
        );
        l.observe(Bucket::Reads, RateInfo::default(), false);
        let start = Instant::now();
        l.acquire(Bucket::Uploads).await;
        l.acquire(Bucket::Uploads).await;
        assert_eq!(start.elapsed(), PROBE_WAIT);
    }

    #[test]
    fn byte_slices_follow_the_bandwidth() {
        let l = Limiter::new(Some(10.0), Some(4 * 1024 * 1024));
        assert_eq!(l.byte_slice(), Some(1024 * 1024));
        assert_eq!(Limiter::new(None, None).byte_slice(), None);
    }
}
