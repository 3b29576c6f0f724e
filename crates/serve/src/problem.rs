//! api.video's error bodies: `application/problem+json` with a documented slug per failure.
//!
//! Handlers return `Result<_, ApiError>`; the slug, title and status of each error come from
//! `shared/apivideo/API.md` (§1.4, §3, §5), so a client sees what api.video would send.

use avbatch_api::Problem;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

/// An error answer: status, slug, title and the optional `name` and `detail` members.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// The documented slug, e.g. `video-content-range-by-part-part-already-sent`.
    pub slug: &'static str,
    /// Human title as api.video words it.
    pub title: &'static str,
    /// The offending parameter, if any.
    pub name: Option<String>,
    /// Extra explanation for this occurrence.
    pub detail: Option<String>,
    /// Extra members (e.g. `range`).
    pub extra: Map<String, Value>,
}

impl ApiError {
    /// An error with status, slug and title.
    pub fn new(status: StatusCode, slug: &'static str, title: &'static str) -> Self {
        ApiError { status, slug, title, name: None, detail: None, extra: Map::new() }
    }

    /// A `400` with the given slug and title.
    pub fn bad_request(slug: &'static str, title: &'static str) -> Self {
        Self::new(StatusCode::BAD_REQUEST, slug, title)
    }

    /// Sets `name`.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Sets `detail`.
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// Adds an extra member to the body.
    pub fn with(mut self, key: &str, value: Value) -> Self {
        self.extra.insert(key.to_owned(), value);
        self
    }

    /// `404 resource-not-found` for the parameter `name`.
    pub fn not_found(name: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            avbatch_api::slug::RESOURCE_NOT_FOUND,
            "The requested resource was not found.",
        )
        .name(name)
    }

    /// `400 invalid-attribute` for the body member `name`.
    pub fn invalid_attribute(name: &str, detail: impl Into<String>) -> Self {
        Self::bad_request("invalid-attribute", "An attribute is invalid.").name(name).detail(detail)
    }

    /// `400 invalid-query-parameter` for the query parameter `name`.
    pub fn invalid_query(name: &str, detail: impl Into<String>) -> Self {
        Self::bad_request("invalid-query-parameter", "A query parameter is invalid.")
            .name(name)
            .detail(detail)
    }

    /// `400 invalid-payload`: the body is missing or is not the JSON expected.
    pub fn invalid_payload(detail: impl Into<String>) -> Self {
        Self::bad_request("invalid-payload", "The payload is invalid.").detail(detail)
    }

    /// `500` for a fault of the server itself (disk, I/O). The cause is logged, not sent.
    pub fn internal(context: &str, err: impl std::fmt::Display) -> Self {
        tracing::error!(%err, "{context}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal-server-error",
            "An internal error occurred.",
        )
        .detail(context.to_owned())
    }

    /// `429 too-many-requests`.
    pub fn too_many_requests() -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, "too-many-requests", "Too many requests.")
    }

    /// The problem+json body.
    pub fn problem(&self) -> Problem {
        let mut problem = Problem::new(self.status.as_u16(), self.slug, self.title);
        problem.name.clone_from(&self.name);
        problem.detail.clone_from(&self.detail);
        problem.extra.clone_from(&self.extra);
        problem
    }

    /// The problem+json body as JSON (what tests look into).
    pub fn body(&self) -> Value {
        serde_json::to_value(self.problem()).expect("a problem is plain JSON")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.problem()).unwrap_or_default();
        let mut response = (self.status, body).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        response
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.slug)?;
        if let Some(detail) = &self.detail {
            write!(f, ": {detail}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn body_has_documented_shape() {
        let e = ApiError::not_found("videoId");
        assert_eq!(
            e.body(),
            json!({"type": "https://docs.api.video/reference/resource-not-found",
                   "title": "The requested resource was not found.", "status": 404,
                   "name": "videoId"})
        );
    }
}
