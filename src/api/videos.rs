//! `POST /videos`, `GET /videos?metadata[…]`, `GET /videos/{id}/status`.

use reqwest::Method;
use serde::{Deserialize, Serialize};

use super::{ApiError, Call, Client};
use crate::limit::Bucket;

/// One `{key, value}` metadata pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// Key.
    pub key: String,
    /// Value.
    pub value: String,
}

/// The creation payload (`VideoCreationPayload`).
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct NewVideo {
    /// Title (required by api.video).
    pub title: String,
    /// Description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Tags.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Metadata pairs.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub metadata: Vec<Metadata>,
    /// Public playback.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public: Option<bool>,
    /// 360° video.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub panoramic: Option<bool>,
    /// mp4 asset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mp4_support: Option<bool>,
    /// Player theme.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub player_id: Option<String>,
    /// Spoken language.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
}

impl NewVideo {
    /// A payload with only a title.
    pub fn titled(title: &str) -> Self {
        NewVideo { title: title.to_owned(), ..Default::default() }
    }
}

/// The parts of a Video avbatch reads.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Video {
    /// `vi…`.
    pub video_id: String,
    /// Title.
    #[serde(default)]
    pub title: String,
    /// Metadata.
    #[serde(default)]
    pub metadata: Vec<Metadata>,
}

/// One received byte range.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
pub struct BytesRange {
    /// First byte.
    pub from: u64,
    /// Last byte (inclusive).
    pub to: u64,
    /// Total.
    pub total: u64,
}

/// Parts received.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct ReceivedParts {
    /// Part numbers.
    #[serde(default)]
    pub parts: Vec<u64>,
    /// Total, once known.
    #[serde(default)]
    pub total: Option<u64>,
}

/// `ingest` of a status.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ingest {
    /// `uploading`, `uploaded`, `ingesting`, `ingested`; absent before any upload.
    #[serde(default)]
    pub status: Option<String>,
    /// Byte ranges received.
    #[serde(default)]
    pub received_bytes: Vec<BytesRange>,
    /// Parts received.
    #[serde(default)]
    pub received_parts: Option<ReceivedParts>,
}

/// `GET /videos/{id}/status`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct VideoStatus {
    /// Upload state.
    #[serde(default)]
    pub ingest: Option<Ingest>,
}

impl VideoStatus {
    /// Whether the whole source arrived.
    pub fn is_uploaded(&self) -> bool {
        self.ingest.as_ref().and_then(|i| i.status.as_deref()).is_some_and(|s| s != "uploading")
    }

    /// Whether bytes `from..=to` arrived as one chunk.
    pub fn has_range(&self, from: u64, to: u64) -> bool {
        self.ingest.as_ref().is_some_and(|i| i.received_bytes.iter().any(|r| r.from == from && r.to == to))
    }

    /// Whether part `n` arrived.
    pub fn has_part(&self, n: u64) -> bool {
        self.ingest.as_ref().and_then(|i| i.received_parts.as_ref()).is_some_and(|p| p.parts.contains(&n))
    }
}

#[derive(Deserialize)]
struct VideoPage {
    data: Vec<Video>,
}

fn encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

impl Client {
    /// Creates a video. Not idempotent: after a failure that may have reached the server the
    /// error says so (`maybe_sent`), and the caller looks the video up before trying again.
    pub async fn create_video(&self, video: &NewVideo) -> Result<Video, ApiError> {
        let build = |r: reqwest::RequestBuilder| r.json(video);
        let call = Call {
            method: Method::POST,
            path: "/videos".into(),
            route: "/videos".into(),
            bucket: Some(Bucket::Writes),
            authenticated: true,
            idempotent: false,
            body_len: 0,
            build: &build,
        };
        let response = self.execute(&call).await?;
        self.json(&call, response).await
    }

    /// Videos whose metadata has `key` = `value` (first page of 100, oldest first).
    pub async fn find_by_metadata(&self, key: &str, value: &str) -> Result<Vec<Video>, ApiError> {
        let path = format!("/videos?metadata%5B{}%5D={}&sortBy=createdAt&sortOrder=asc&pageSize=100", encode(key), encode(value));
        let build = |r: reqwest::RequestBuilder| r;
        let call = Call {
            method: Method::GET,
            path,
            route: "/videos".into(),
            bucket: Some(Bucket::Reads),
            authenticated: true,
            idempotent: true,
            body_len: 0,
            build: &build,
        };
        let response = self.execute(&call).await?;
        Ok(self.json::<VideoPage>(&call, response).await?.data)
    }

    /// `GET /videos/{id}/status`.
    pub async fn status(&self, video_id: &str) -> Result<VideoStatus, ApiError> {
        let path = format!("/videos/{}/status", encode(video_id));
        let build = |r: reqwest::RequestBuilder| r;
        let call = Call {
            method: Method::GET,
            route: path.clone(),
            path,
            bucket: Some(Bucket::Reads),
            authenticated: true,
            idempotent: true,
            body_len: 0,
            build: &build,
        };
        let response = self.execute(&call).await?;
        self.json(&call, response).await
    }
}
