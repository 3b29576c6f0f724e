//! Errors of api.video calls, with the context of the call.

use std::fmt;
use std::time::Duration;

use reqwest::{Method, StatusCode};

use avbatch_api::Problem;

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
    #[error(
        "{site} answered {} after {attempts} attempt(s) in {:.1?}{}",
        status.as_u16(),
        elapsed,
        problem.as_ref().map(|p| format!(": {p}")).unwrap_or_default()
    )]
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
    #[error(
        "{site} timed out: nothing moved for {idle:.0?} ({}) after {attempts} attempt(s) in {:.1?}",
        if *body_sent {
            "no answer after the body"
        } else {
            "the connection took no more of the body"
        },
        elapsed
    )]
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
            ApiError::Status { attempts, .. }
            | ApiError::Transport { attempts, .. }
            | ApiError::TimedOut { attempts, .. } => *attempts,
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
            ApiError::Status { status, .. } => {
                status.is_server_error() || *status == StatusCode::REQUEST_TIMEOUT
            }
            ApiError::Unexpected { .. } | ApiError::Cancelled { .. } => false,
        }
    }

    /// Whether the failure is an authentication failure (bad key, bad token).
    pub fn is_auth(&self) -> bool {
        matches!(self.status(), Some(StatusCode::UNAUTHORIZED) | Some(StatusCode::FORBIDDEN))
            || self.slug().is_some_and(|s| s.starts_with("authentication-"))
    }
}

/// An error and its causes on one line.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cause = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_may_have_taken_effect() {
        let site = CallSite { method: Method::POST, route: "/videos".into() };
        let status = |code: u16| ApiError::Status {
            site: site.clone(),
            status: StatusCode::from_u16(code).unwrap(),
            problem: None,
            attempts: 1,
            elapsed: Duration::ZERO,
        };
        // A gateway's 5xx or a 408 may stand in front of a request the API carried out.
        for code in [500, 502, 503, 504, 408] {
            assert!(status(code).maybe_applied(), "{code}");
        }
        for code in [400, 401, 404, 409, 429] {
            assert!(!status(code).maybe_applied(), "{code}");
        }
        let timed_out = ApiError::TimedOut {
            site: site.clone(),
            attempts: 1,
            elapsed: Duration::ZERO,
            idle: Duration::ZERO,
            body_sent: false,
        };
        assert!(timed_out.maybe_applied());
        assert!(!ApiError::Cancelled { site }.maybe_applied());
    }
}
