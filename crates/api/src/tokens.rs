//! Authentication, upload tokens and watermarks: what a client sends (`POST /auth/api-key`,
//! `/auth/refresh`, `/upload-tokens`) and what api.video answers, some only the double writes
//! today, kept beside the rest so a client that reads them later reads the same shapes.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// `POST /auth/api-key` (`authenticate-payload`). Its `Debug` hides the key.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Authenticate {
    /// The account's API key.
    pub api_key: String,
}

impl std::fmt::Debug for Authenticate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Authenticate { api_key: <redacted> }")
    }
}

/// `POST /auth/refresh` (`refresh-token-payload`). Its `Debug` hides the token.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Refresh {
    /// The refresh token of an earlier pair.
    pub refresh_token: String,
}

impl std::fmt::Debug for Refresh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Refresh { refresh_token: <redacted> }")
    }
}

/// `POST /upload-tokens` (`token-creation-payload`).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct UploadTokenRequest {
    /// Seconds the token lives, at most 2 147 483 647 (absent or 0: until deleted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u64>,
}

/// `POST /auth/api-key` and `POST /auth/refresh`: a bearer token pair (`access-token`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessToken {
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds the access token lives.
    pub expires_in: u64,
    /// The bearer token.
    pub access_token: String,
    /// Trades for a new pair.
    pub refresh_token: String,
}

/// An upload token (`upload-token`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct UploadToken {
    /// `to…`.
    pub token: String,
    /// Seconds it lives (0: until deleted).
    pub ttl: u64,
    /// When it was made.
    #[serde(with = "crate::time::atom")]
    pub created_at: DateTime<Utc>,
    /// When it stops working (absent: never).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::time::lenient")]
    pub expires_at: Option<DateTime<Utc>>,
}

/// A watermark image (`watermark`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct WatermarkImage {
    /// `watermark…`.
    pub watermark_id: String,
    /// When it was uploaded.
    #[serde(with = "crate::time::atom")]
    pub created_at: DateTime<Utc>,
}
