//! Private videos (`public: false`), as api.video documents them
//! (`docs.api.video/delivery/video-privacy-access-management`, `…/private-video-session-tokens`):
//! every answer that shows a private video gives it a fresh private token, which its asset URLs
//! carry (`/vod/{id}?token=T` for the player, `/vod/{id}/token/T/…` for the media, see
//! [`crate::video::VideoRecord::to_video`]); the media without a valid token is refused. A token
//! is good for one session: its first use opens it (`/vod/{id}/token/T/session` answers its
//! session token; any other first use sets it as the `avh` cookie), and the session, kept by
//! `?avh=` or that cookie, lasts 24 hours. Without it, a token already used is refused: "the
//! same url is not accessible the second time … from a different browser".
//!
//! Tokens live in memory: a restart forgets them, as a client then asks the video again. At
//! most [`MAX_TOKENS`] are kept, the oldest forgotten first, so listing a library of private
//! videos again and again does not grow the server.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use rand::RngCore;
use tokio::time::Instant;

use crate::problem::ApiError;

/// How long a session lasts from the token's first use.
pub const SESSION_TTL: Duration = Duration::from_secs(24 * 3600);
/// Tokens kept at most; the oldest are forgotten first.
pub const MAX_TOKENS: usize = 100_000;

/// The private tokens given out, and the sessions their first uses opened.
#[derive(Debug, Default)]
pub struct PrivateTokens {
    inner: Mutex<Tokens>,
}

#[derive(Debug, Default)]
struct Tokens {
    by_token: HashMap<String, Grant>,
    /// Tokens in the order given, to forget the oldest.
    order: VecDeque<String>,
}

#[derive(Debug)]
struct Grant {
    video_id: String,
    /// The session its first use opened: its token and its end.
    session: Option<(String, Instant)>,
}

/// A token in api.video's shape: a UUID (`8fd70443-d9f0-45d2-b01c-12c8cfc707c9`).
fn new_token() -> String {
    let mut b = [0u8; 16];
    rand::rng().fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex = hex::encode(b);
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
}

/// Why a request for a private video's asset is refused: 403.
pub fn refused(detail: &str) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "private-video", "This video is private.").detail(detail)
}

/// The session token a request carries: `?avh=` in `query`, else its `avh` cookie.
pub fn session_of(query: Option<&str>, headers: &HeaderMap) -> Option<String> {
    let in_query = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "avh")
        .map(|(_, v)| v.into_owned());
    in_query.or_else(|| {
        headers
            .get_all(axum::http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .find_map(|c| c.trim().strip_prefix("avh=").map(str::to_owned))
    })
}

impl PrivateTokens {
    /// A fresh token for `video_id`, as each GET of a private video gives.
    pub fn issue(&self, video_id: &str) -> String {
        let token = new_token();
        let mut tokens = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        while tokens.order.len() >= MAX_TOKENS {
            if let Some(oldest) = tokens.order.pop_front() {
                tokens.by_token.remove(&oldest);
            }
        }
        let grant = Grant { video_id: video_id.to_owned(), session: None };
        tokens.by_token.insert(token.clone(), grant);
        tokens.order.push_back(token.clone());
        token
    }

    /// Lets a request with `token` (and the session token `session`, if any) at `video_id`'s
    /// assets: the token's first use opens its session, later ones must carry it. Answers the
    /// session token, and whether this request opened it.
    pub fn admit(
        &self,
        video_id: &str,
        token: &str,
        session: Option<&str>,
    ) -> Result<(String, bool), ApiError> {
        let mut tokens = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let grant = tokens
            .by_token
            .get_mut(token)
            .filter(|g| g.video_id == video_id)
            .ok_or_else(|| refused("the private token is not one a GET of this video gave"))?;
        let now = Instant::now();
        match &grant.session {
            None => {
                let opened = new_token();
                grant.session = Some((opened.clone(), now + SESSION_TTL));
                Ok((opened, true))
            }
            Some((kept, until)) if session == Some(kept.as_str()) && now < *until => {
                Ok((kept.clone(), false))
            }
            Some((_, until)) if now >= *until => {
                Err(refused("the private token's session has ended: GET the video for another"))
            }
            Some(_) => Err(refused(
                "the private token was used already: its session (`avh`) is needed, or a new \
                 token from a GET of the video",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_token_opens_one_session_for_a_day() {
        let tokens = PrivateTokens::default();
        let t = tokens.issue("vi1");
        assert_eq!(t.len(), 36);
        assert_eq!(tokens.admit("vi2", &t, None).unwrap_err().status, StatusCode::FORBIDDEN);
        let (session, opened) = tokens.admit("vi1", &t, None).unwrap();
        assert!(opened);
        assert!(tokens.admit("vi1", &t, None).is_err(), "used: the session is needed");
        assert!(tokens.admit("vi1", &t, Some("other")).is_err());
        assert_eq!(tokens.admit("vi1", &t, Some(&session)).unwrap(), (session.clone(), false));
        tokio::time::advance(SESSION_TTL).await;
        assert!(tokens.admit("vi1", &t, Some(&session)).is_err(), "a day later");
        assert_ne!(tokens.issue("vi1"), t, "each GET a new one");
    }

    #[test]
    fn the_session_comes_from_the_query_or_the_cookie() {
        let mut headers = HeaderMap::new();
        assert_eq!(session_of(Some("token=x&avh=s1"), &headers).as_deref(), Some("s1"));
        headers.insert(axum::http::header::COOKIE, "a=b; avh=s2".parse().unwrap());
        assert_eq!(session_of(None, &headers).as_deref(), Some("s2"));
        assert_eq!(session_of(Some("avh=s1"), &headers).as_deref(), Some("s1"));
    }
}
