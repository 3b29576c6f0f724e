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

impl Bucket {
    /// Every bucket.
    pub const ALL: [Bucket; 3] = [Bucket::Uploads, Bucket::Writes, Bucket::Reads];

    /// Its name in messages: `uploads`, `writes`, `reads`.
    pub fn name(self) -> &'static str {
        match self {
            Bucket::Uploads => "uploads",
            Bucket::Writes => "writes",
            Bucket::Reads => "reads",
        }
    }
}

/// Requests a minute each bucket allows (API.md §5.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quotas {
    /// Source uploads a minute.
    pub uploads: u64,
    /// Other writes a minute.
    pub writes: u64,
    /// Reads a minute.
    pub reads: u64,
}

impl Quotas {
    /// api.video's production quotas: 100 uploads, 200 writes, 500 reads a minute.
    pub const PRODUCTION: Quotas = Quotas { uploads: 100, writes: 200, reads: 500 };
    /// api.video's sandbox quotas: 40 uploads, 40 writes, 100 reads a minute.
    pub const SANDBOX: Quotas = Quotas { uploads: 40, writes: 40, reads: 100 };

    /// The quota of `bucket`.
    pub fn of(self, bucket: Bucket) -> u64 {
        match bucket {
            Bucket::Uploads => self.uploads,
            Bucket::Writes => self.writes,
            Bucket::Reads => self.reads,
        }
    }
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
