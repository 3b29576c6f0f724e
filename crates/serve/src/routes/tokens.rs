//! Upload tokens: `POST/GET /upload-tokens`, `GET/DELETE /upload-tokens/{token}`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chrono::Utc;

use super::{blocking, json_response, page_params, paginate, payload, query_pairs};
use crate::problem::ApiError;
use crate::store::UploadToken;
use crate::App;
use avbatch_api::UploadTokenRequest;

fn token_json(t: &UploadToken) -> avbatch_api::UploadToken {
    avbatch_api::UploadToken {
        token: t.token.clone(),
        ttl: t.ttl,
        created_at: t.created_at,
        expires_at: t.expires_at,
    }
}

/// Creates a token; `ttl` seconds (0 or absent: never expires). Answers 200, as api.video does.
pub async fn create(State(app): State<Arc<App>>, body: Bytes) -> Result<Response, ApiError> {
    let ttl = if body.iter().all(u8::is_ascii_whitespace) {
        0
    } else {
        let rule = "This attribute must be an integer from 0 to 2147483647.";
        let UploadTokenRequest { ttl } = payload(&body, "ttl", rule)?;
        let ttl = ttl.unwrap_or(0);
        if ttl > i32::MAX as u64 {
            return Err(ApiError::invalid_attribute("ttl", rule));
        }
        ttl
    };
    let token = blocking(move || {
        app.store
            .create_token(ttl, Utc::now())
            .map_err(|e| ApiError::internal("storing the upload token", e))
    })
    .await?;
    Ok(json_response(StatusCode::OK, &token_json(&token)))
}

/// Lists active tokens, sorted by `createdAt` (default) or `ttl`.
pub async fn list(State(app): State<Arc<App>>, uri: Uri) -> Result<Response, ApiError> {
    let pairs = query_pairs(&uri);
    let (page, size) = page_params(&pairs)?;
    let mut tokens = app.store.active_tokens(Utc::now());
    let mut desc = false;
    let mut by_ttl = false;
    for (k, v) in &pairs {
        match (k.as_str(), v.as_str()) {
            ("sortBy", "createdAt") => by_ttl = false,
            ("sortBy", "ttl") => by_ttl = true,
            ("sortBy", _) => {
                return Err(ApiError::invalid_query("sortBy", "sortBy must be createdAt or ttl"))
            }
            ("sortOrder", "asc") => desc = false,
            ("sortOrder", "desc") => desc = true,
            ("sortOrder", _) => {
                return Err(ApiError::invalid_query("sortOrder", "sortOrder must be asc or desc"))
            }
            _ => {}
        }
    }
    tokens.sort_by(|a, b| {
        if by_ttl { a.ttl.cmp(&b.ttl) } else { a.created_at.cmp(&b.created_at) }
            .then_with(|| a.token.cmp(&b.token))
    });
    if desc {
        tokens.reverse();
    }
    Ok(json_response(
        StatusCode::OK,
        &paginate(&tokens, page, size, "/upload-tokens", &pairs, token_json),
    ))
}

/// One active token.
pub async fn get(
    State(app): State<Arc<App>>,
    Path(token): Path<String>,
) -> Result<Response, ApiError> {
    let t = app
        .store
        .active_token(&token, Utc::now())
        .ok_or_else(|| ApiError::not_found("uploadToken"))?;
    Ok(json_response(StatusCode::OK, &token_json(&t)))
}

/// Deletes a token: 204, or 404 if there is none.
pub async fn delete(
    State(app): State<Arc<App>>,
    Path(token): Path<String>,
) -> Result<Response, ApiError> {
    let deleted = blocking(move || {
        app.store
            .delete_token(&token)
            .map_err(|e| ApiError::internal("deleting the upload token", e))
    })
    .await?;
    if !deleted {
        return Err(ApiError::not_found("uploadToken"));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
