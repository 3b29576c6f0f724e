//! `POST /auth/api-key` and `POST /auth/refresh`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::Value;

use super::{blocking, json_response};
use crate::problem::ApiError;
use crate::App;

/// The string member `name` of a JSON body, or the documented 400.
fn member(body: &[u8], name: &str) -> Result<String, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid_payload(format!("the body is not valid JSON: {e}")))?;
    value.get(name).and_then(Value::as_str).map(str::to_owned).ok_or_else(|| {
        ApiError::bad_request("attribute-required", "This attribute is required.").name(name)
    })
}

/// Exchanges an API key for a token pair.
pub async fn api_key(State(app): State<Arc<App>>, body: Bytes) -> Result<Response, ApiError> {
    let key = member(&body, "apiKey")?;
    let pair = blocking(move || app.auth.authenticate(&key)).await?;
    Ok(json_response(StatusCode::OK, &pair))
}

/// Spends a refresh token for a new pair.
pub async fn refresh(State(app): State<Arc<App>>, body: Bytes) -> Result<Response, ApiError> {
    let token = member(&body, "refreshToken")?;
    let pair = blocking(move || app.auth.refresh(&token)).await?;
    Ok(json_response(StatusCode::OK, &pair))
}
