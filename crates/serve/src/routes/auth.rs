//! `POST /auth/api-key` and `POST /auth/refresh`.

use std::sync::Arc;

use avbatch_api::{Authenticate, Refresh};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::{blocking, json_response, payload};
use crate::problem::ApiError;
use crate::App;

/// Exchanges an API key for a token pair.
pub async fn api_key(State(app): State<Arc<App>>, body: Bytes) -> Result<Response, ApiError> {
    let Authenticate { api_key: key } =
        payload(&body, "apiKey", "This attribute must be a string.")?;
    let pair = blocking(move || app.auth.authenticate(&key)).await?;
    Ok(json_response(StatusCode::OK, &pair))
}

/// Spends a refresh token for a new pair.
pub async fn refresh(State(app): State<Arc<App>>, body: Bytes) -> Result<Response, ApiError> {
    let Refresh { refresh_token: token } =
        payload(&body, "refreshToken", "This attribute must be a string.")?;
    let pair = blocking(move || app.auth.refresh(&token)).await?;
    Ok(json_response(StatusCode::OK, &pair))
}
