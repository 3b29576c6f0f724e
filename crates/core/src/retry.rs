//! Which failures are retried, and how long to wait between tries.
//!
//! Connection errors, timeouts, 408, 429 and 5xx are transient; every 4xx but those is final (a
//! 401 is a refused key: avbatch sends the key itself, there is no token to refresh) and the row
//! fails with the server's detail. Whether a transient failure may be retried also depends on
//! the call: one that is not idempotent is not repeated after a failure that may have taken
//! effect (`ApiError::maybe_applied`). The
//! backoff schedule is exponential with full jitter (retry-policies), never shorter than what
//! the server asked for in `Retry-After` / `X-RateLimit-Retry-After`.

use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use retry_policies::policies::ExponentialBackoff;
use retry_policies::{Jitter, RetryDecision, RetryPolicy};

/// How hard to try.
#[derive(Debug, Clone)]
pub struct RetryConfig {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// No retry starts later than this after the first attempt.
    pub retry_timeout: Duration,
    /// Shortest backoff.
    pub min_backoff: Duration,
    /// Longest backoff.
    pub max_backoff: Duration,
}

impl Default for RetryConfig {
    /// 10 retries within 10 minutes, backing off from 250 ms up to 30 s: enough to ride out a
    /// server restart or a minute of 429s, short enough that a dead target fails the row.
    fn default() -> Self {
        RetryConfig {
            max_retries: 10,
            retry_timeout: Duration::from_secs(600),
            min_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(30),
        }
    }
}

impl RetryConfig {
    /// No waiting between retries, for tests.
    pub fn immediate(max_retries: u32) -> Self {
        RetryConfig {
            max_retries,
            retry_timeout: Duration::from_secs(3600),
            min_backoff: Duration::ZERO,
            max_backoff: Duration::ZERO,
        }
    }

    /// How long to wait before retry number `retries_so_far + 1`, or `None` when retries are
    /// exhausted (by count or by time since `started`).
    pub fn backoff(&self, started: SystemTime, retries_so_far: u32) -> Option<Duration> {
        if retries_so_far >= self.max_retries
            || started.elapsed().unwrap_or_default() >= self.retry_timeout
        {
            return None;
        }
        if self.max_backoff.is_zero() {
            return Some(Duration::ZERO);
        }
        let policy = ExponentialBackoff::builder()
            .retry_bounds(self.min_backoff, self.max_backoff)
            .jitter(Jitter::Full)
            .base(2)
            .build_with_max_retries(self.max_retries);
        // The policy measures from the time it is asked, so ask with `now` and keep only the delay.
        let now = SystemTime::now();
        match policy.should_retry(now, retries_so_far) {
            RetryDecision::Retry { execute_after } => {
                Some(execute_after.duration_since(now).unwrap_or_default())
            }
            RetryDecision::DoNotRetry => None,
        }
    }
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Try again after a backoff.
    Retry,
    /// Give up: the failure will not go away by itself.
    Fail,
}

/// What an attempt ended with, as far as classification cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The server answered with this status.
    Status(StatusCode),
    /// No connection could be made: the request was never sent.
    ConnectFailed,
    /// The connection broke or timed out after the request may have been sent.
    Broken,
}

/// The one place that decides which failures are worth another try.
pub fn classify(outcome: Outcome) -> Verdict {
    match outcome {
        Outcome::ConnectFailed | Outcome::Broken => Verdict::Retry,
        Outcome::Status(s)
            if s == StatusCode::REQUEST_TIMEOUT
                || s == StatusCode::TOO_MANY_REQUESTS
                || s.is_server_error() =>
        {
            Verdict::Retry
        }
        Outcome::Status(_) => Verdict::Fail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_table() {
        let s = |c: u16| Outcome::Status(StatusCode::from_u16(c).unwrap());
        let table = [
            (Outcome::ConnectFailed, Verdict::Retry),
            (Outcome::Broken, Verdict::Retry),
            (s(408), Verdict::Retry),
            (s(429), Verdict::Retry),
            (s(500), Verdict::Retry),
            (s(502), Verdict::Retry),
            (s(503), Verdict::Retry),
            (s(504), Verdict::Retry),
            (s(401), Verdict::Fail),
            (s(400), Verdict::Fail),
            (s(403), Verdict::Fail),
            (s(404), Verdict::Fail),
            (s(409), Verdict::Fail),
        ];
        for (outcome, verdict) in table {
            assert_eq!(classify(outcome), verdict, "{outcome:?}");
        }
    }

    #[test]
    fn backoff_is_bounded_and_jittered() {
        let cfg = RetryConfig {
            max_retries: 5,
            retry_timeout: Duration::from_secs(60),
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
        };
        let start = SystemTime::now();
        for n in 0..5 {
            let d = cfg.backoff(start, n).expect("within the retry budget");
            assert!(d <= Duration::from_secs(2), "retry {n}: {d:?}");
        }
        assert_eq!(cfg.backoff(start, 5), None, "retries exhausted");
        let old = SystemTime::now() - Duration::from_secs(61);
        assert_eq!(cfg.backoff(old, 0), None, "time budget exhausted");
        assert_eq!(RetryConfig::immediate(3).backoff(start, 2), Some(Duration::ZERO));
    }
}
