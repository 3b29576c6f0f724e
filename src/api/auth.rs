//! Bearer tokens: fetched with the API key, refreshed ahead of expiry and after a 401.
//!
//! One refresh at a time: the cache is behind a tokio `Mutex` because the lock is held across
//! the refresh request, so concurrent sessions wait for one new token instead of each fetching
//! their own.

use std::time::Duration;

use reqwest::header::HeaderValue;
use reqwest::Method;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::{sensitive, ApiError, Call, Client};
use crate::secret::{ApiKey, Token};

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    refresh_token: String,
    expires_in: u64,
}

struct Tokens {
    access: Token,
    refresh: Token,
    expires_at: Instant,
    ttl: Duration,
}

/// The current token pair.
pub(super) struct TokenCache {
    key: Option<ApiKey>,
    tokens: Mutex<Option<Tokens>>,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenCache((redacted))")
    }
}

impl TokenCache {
    pub(super) fn new(key: Option<ApiKey>) -> Self {
        TokenCache { key, tokens: Mutex::new(None) }
    }

    /// The header for the next call. Refreshes when the token is within a tenth of its life
    /// (at most a minute) of expiring, or when `force` says the server refused it.
    pub(super) async fn header(&self, client: &Client, force: bool) -> Result<HeaderValue, ApiError> {
        let mut guard = self.tokens.lock().await;
        let fresh = guard.as_ref().is_some_and(|t| {
            let margin = (t.ttl / 10).min(Duration::from_secs(60));
            t.expires_at.saturating_duration_since(Instant::now()) > margin
        });
        if force || !fresh {
            let refreshed = match guard.as_ref() {
                Some(t) => self.fetch(client, "/auth/refresh", json!({"refreshToken": t.refresh.expose()})).await.ok(),
                None => None,
            };
            let tokens = match refreshed {
                Some(t) => t,
                None => {
                    let key = self.key.as_ref().map(|k| k.expose().to_owned()).unwrap_or_default();
                    self.fetch(client, "/auth/api-key", json!({"apiKey": key})).await?
                }
            };
            *guard = Some(tokens);
        }
        let access = guard.as_ref().map(|t| t.access.expose().to_owned()).unwrap_or_default();
        Ok(sensitive(format!("Bearer {access}")))
    }

    async fn fetch(&self, client: &Client, path: &str, body: serde_json::Value) -> Result<Tokens, ApiError> {
        let build = move |r: reqwest::RequestBuilder| r.json(&body);
        let call = Call {
            method: Method::POST,
            path: path.to_owned(),
            route: path.to_owned(),
            bucket: None,
            authenticated: false,
            idempotent: true,
            body_len: 0,
            build: &build,
        };
        let response = client.execute(&call).await?;
        let answer: TokenAnswer = client.json(&call, response).await?;
        let ttl = Duration::from_secs(answer.expires_in);
        tracing::debug!(route = path, ttl = ?ttl, "new access token");
        Ok(Tokens {
            access: Token::new(answer.access_token),
            refresh: Token::new(answer.refresh_token),
            expires_at: Instant::now() + ttl,
            ttl,
        })
    }
}
