//! The answers only the double writes today, kept beside the rest so a client that reads them
//! later reads the same shapes: `POST /auth/api-key` and `/auth/refresh`, upload tokens,
//! watermarks.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

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
