//! Errors of api.video calls: problem+json bodies, rate-limit headers, and the context of a call.

use std::fmt;
use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde::Deserialize;

use crate::limit::RateInfo;

/// An api.video problem+json body (API.md §5.1).
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct Problem {
    /// `https://docs.api.video/reference/<slug>`.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// Human title.
    #[serde(default)]
    pub title: String,
    /// The offending parameter.
    #[serde(default)]
    pub name: Option<String>,
    /// More detail.
    #[serde(default)]
    pub detail: Option<String>,
}

impl Problem {
    /// The slug at the end of `type`.
    pub fn slug(&self) -> &str {
        self.kind.rsplit('/').next().unwrap_or_default()
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.title.trim_end_matches('.'))?;
        if let Some(detail) = &self.detail {
            write!(f, ": {detail}")?;
        }
        if !self.slug().is_empty() {
            write!(f, " (`{}`)", self.slug())?;
        }
        Ok(())
    }
}

/// Reads the `X-RateLimit-*` (and `Retry-After`) headers.
pub fn rate_info(headers: &HeaderMap) -> RateInfo {
    let num = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok());
    RateInfo {
        limit: num("x-ratelimit-limit"),
        remaining: num("x-ratelimit-remaining"),
        retry_after: num("x-ratelimit-retry-after").or_else(|| num("retry-after")).map(Duration::from_secs),
    }
}

/// Where a call went, for messages: method and route, with ids kept and tokens left out.
#[derive(Debug, Clone)]
pub struct CallSite {
    /// HTTP method.
    pub method: Method,
    /// Path as sent, without the query string (which may carry an upload token).
    pub route: String,
}

impl fmt::Display for CallSite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, self.route)
    }
}

/// A failed api.video call.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The server answered with an error status.
    #[error("{site} answered {} after {attempts} attempt(s) in {:.1?}{}", status.as_u16(), elapsed, problem.as_ref().map(|p| format!(": {p}")).unwrap_or_default())]
    Status {
        /// The call.
        site: CallSite,
        /// HTTP status.
        status: StatusCode,
        /// The problem+json body, when there was one (boxed: errors travel in every `Result`).
        problem: Option<Box<Problem>>,
        /// Attempts made.
        attempts: u32,
        /// Time from the first attempt to the last answer.
        elapsed: Duration,
    },
    /// No answer: connection refused, reset, timed out.
    #[error("{site} failed after {attempts} attempt(s) in {:.1?}", elapsed)]
    Transport {
        /// The call.
        site: CallSite,
        /// Attempts made.
        attempts: u32,
        /// Time from the first attempt to the last failure.
        elapsed: Duration,
        /// Whether the request may have reached the server (not a connect failure).
        maybe_sent: bool,
        /// The last transport error.
        #[source]
        source: reqwest::Error,
    },
    /// The request stopped moving: its body was not taken, or no answer came, for `idle` (plus
    /// the time the kernel may need to send the tail of a body).
    #[error("{site} timed out: nothing moved for {idle:.0?} ({}) after {attempts} attempt(s) in {:.1?}", if *body_sent { "no answer after the body" } else { "the connection took no more of the body" }, elapsed)]
    TimedOut {
        /// The call.
        site: CallSite,
        /// Attempts made.
        attempts: u32,
        /// Time from the first attempt to the last failure.
        elapsed: Duration,
        /// The time-out.
        idle: Duration,
        /// Whether the whole body had been handed to the connection.
        body_sent: bool,
    },
    /// The answer could not be read as expected.
    #[error("{site} answered something unexpected: {what}")]
    Unexpected {
        /// The call.
        site: CallSite,
        /// What was wrong.
        what: String,
    },
    /// The run was aborted while the call was under way.
    #[error("{site} was cancelled")]
    Cancelled {
        /// The call.
        site: CallSite,
    },
}

impl ApiError {
    /// The HTTP status, if the server answered.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            ApiError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The api.video error slug, if any.
    pub fn slug(&self) -> Option<&str> {
        match self {
            ApiError::Status { problem: Some(p), .. } => Some(p.slug()),
            _ => None,
        }
    }

    /// How many attempts the call made.
    pub fn attempts(&self) -> u32 {
        match self {
            ApiError::Status { attempts, .. } | ApiError::Transport { attempts, .. } | ApiError::TimedOut { attempts, .. } => *attempts,
            _ => 1,
        }
    }

    /// Whether the call may have taken effect although it failed: the request may have reached
    /// the server before the connection broke or the time-out struck, or a gateway answered
    /// 5xx or 408 for a request the API behind it may have carried out.
    pub fn maybe_applied(&self) -> bool {
        match self {
            ApiError::Transport { maybe_sent, .. } => *maybe_sent,
            ApiError::TimedOut { .. } => true,
            ApiError::Status { status, .. } => status.is_server_error() || *status == StatusCode::REQUEST_TIMEOUT,
            ApiError::Unexpected { .. } | ApiError::Cancelled { .. } => false,
        }
    }

    /// Whether the failure is an authentication failure (bad key, bad token).
    pub fn is_auth(&self) -> bool {
        matches!(self.status(), Some(StatusCode::UNAUTHORIZED) | Some(StatusCode::FORBIDDEN))
            || self.slug().is_some_and(|s| s.starts_with("authentication-"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_display_and_slug() {
        let p: Problem = serde_json::from_str(
            r#"{"type":"https://docs.api.video/reference/too-many-requests","title":"Too many requests.","status":429}"#,
        )
        .unwrap();
        assert_eq!(p.slug(), "too-many-requests");
        assert_eq!(p.to_string(), "Too many requests (`too-many-requests`)");
    }

    #[test]
    fn rate_headers() {
        let mut h = HeaderMap::new();
        h.insert("x-ratelimit-remaining", "0".parse().unwrap());
        h.insert("x-ratelimit-retry-after", "7".parse().unwrap());
        let info = rate_info(&h);
        assert_eq!((info.remaining, info.retry_after), (Some(0), Some(Duration::from_secs(7))));
        let _ = Method::GET;
    }
}
