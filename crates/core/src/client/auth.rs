//! Authentication: the API key as HTTP Basic on every call, checked once up front.
//!
//! api.video takes `Authorization: Basic base64(KEY:)` on every endpoint (the spec declares it on
//! all of them, and the official Node client sends nothing else). avbatch does the same rather
//! than trade the key for 1-hour bearer tokens: a token can expire while a large part is still
//! going up a slow link, and the server then refuses a part that was sent in full. With Basic
//! there is nothing to expire and nothing to refresh.

use base64::Engine;
use reqwest::header::HeaderValue;
use reqwest::Method;

use super::{sensitive, ApiError, Call, Client};
use avbatch_api::secret::ApiKey;

/// `Basic base64(KEY:)`: the key as user name, an empty password.
pub(super) fn basic(key: &ApiKey) -> HeaderValue {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{}:", key.expose()));
    sensitive(format!("Basic {encoded}"))
}

impl Client {
    /// Checks the API key now (`POST /auth/api-key`, whose answer is dropped), so a wrong key
    /// fails the run before any upload starts, with api.video's own words for it.
    pub async fn authenticate(&self) -> Result<(), ApiError> {
        let key = self.config.api_key.as_ref().map(|k| k.expose().to_owned()).unwrap_or_default();
        let body = avbatch_api::Authenticate { api_key: key };
        let build =
            move |r: reqwest::RequestBuilder, _: &std::sync::Arc<super::Watch>| r.json(&body);
        let call = Call {
            method: Method::POST,
            path: "/auth/api-key".to_owned(),
            route: "/auth/api-key".to_owned(),
            bucket: None,
            authenticated: false,
            idempotent: true,
            body_len: 0,
            build: &build,
        };
        // A wrong key is answered 400 `authentication-invalid-user-credentials` here, which
        // `ApiError::is_auth` counts as a refused key.
        self.execute(&call).await.map(drop)
    }
}
