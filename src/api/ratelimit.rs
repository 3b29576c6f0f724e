//! api.video's rate limits on the wire: the buckets requests count against, and what the
//! `X-RateLimit-*` headers say of them (API.md §5.3).

use std::time::Duration;

use http::HeaderMap;

/// Which quota a request counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    /// Source uploads.
    Uploads,
    /// Other POST, PATCH, DELETE.
    Writes,
    /// GET.
    Reads,
}

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

/// Reads the `X-RateLimit-*` (and `Retry-After`) headers.
pub fn rate_info(headers: &HeaderMap) -> RateInfo {
    let num = |name: &str| {
        headers.get(name).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok())
    };
    RateInfo {
        limit: num("x-ratelimit-limit"),
        remaining: num("x-ratelimit-remaining"),
        retry_after: num("x-ratelimit-retry-after")
            .or_else(|| num("retry-after"))
            .map(Duration::from_secs),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_headers() {
        let mut h = HeaderMap::new();
        h.insert("x-ratelimit-remaining", "0".parse().unwrap());
        h.insert("x-ratelimit-retry-after", "7".parse().unwrap());
        let info = rate_info(&h);
        assert_eq!((info.remaining, info.retry_after), (Some(0), Some(Duration::from_secs(7))));
    }
}
