//! The URL api.video fetches a pulled object from: the object's own for `http(s)://`, else one
//! its store signs, for as long as the wait for the fetch and no longer than the keys that sign
//! it when their end is known.

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::Url;

use super::{Remote, RemoteError};

impl Remote {
    /// A URL api.video can fetch the object from without credentials: the URL itself for
    /// `http(s)://`; for a bucket, a presigned GET valid for `ttl`, or until the keys that sign
    /// it expire when that is sooner and known ([`Remote::keys_expire`]). Signing makes no
    /// request (S3, Azure with a key) or one to fetch a signing key (GCS, Azure without a key).
    pub async fn pull_url(&self, ttl: Duration) -> Result<Url, RemoteError> {
        let Some(signer) = &self.store.signer else { return Ok(self.target.url.clone()) };
        let ttl = match self.store.expires {
            Some(at) => {
                let left = at.signed_duration_since(Utc::now()).to_std().unwrap_or_default();
                if left < Duration::from_secs(60) {
                    return Err(RemoteError::Other(format!(
                        "the session keys that would sign its URL expire at {} \
                         (AWS_CREDENTIAL_EXPIRATION): renew them",
                        at.to_rfc3339()
                    )));
                }
                ttl.min(left)
            }
            None => ttl,
        };
        signer
            .signed_url(http::Method::GET, &self.target.path, ttl)
            .await
            .map_err(|e| self.error(e))
    }

    /// When the keys that sign the object's URL stop working, when that is known.
    pub fn keys_expire(&self) -> Option<DateTime<Utc>> {
        self.store.expires
    }
}
