//! `POST /videos`, `GET /videos?metadata[…]`, `GET|DELETE /videos/{id}`,
//! `GET /videos/{id}/status`.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use reqwest::{Method, RequestBuilder};
use serde::{Deserialize, Serialize};

use super::{ApiError, Call, Client, Watch};
use crate::limit::Bucket;

/// Pages of a metadata lookup read at most: 50 pages of 100 videos. A key is a fixed-length
/// digest, so more than a handful of videos under one key means something else is wrong.
const MAX_LOOKUP_PAGES: u32 = 50;

/// No body: the calls that only read or delete.
fn no_body(r: RequestBuilder, _: &Arc<Watch>) -> RequestBuilder {
    r
}

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
    /// When it was created (absent from some of api.video's examples; a value that does not
    /// parse is taken as absent rather than failing the whole answer).
    #[serde(default, deserialize_with = "lenient_time")]
    pub created_at: Option<DateTime<Utc>>,
}

fn lenient_time<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    let text = Option::<serde_json::Value>::deserialize(d)?;
    Ok(text.as_ref().and_then(serde_json::Value::as_str).and_then(|t| DateTime::parse_from_rfc3339(t).ok()).map(|t| t.with_timezone(&Utc)))
}

impl Video {
    /// The value of metadata `key`, if the video has it.
    pub fn metadata_value(&self, key: &str) -> Option<&str> {
        self.metadata.iter().find(|m| m.key == key).map(|m| m.value.as_str())
    }
}

/// How far a video's source got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Progress {
    /// Nothing received.
    Empty,
    /// Some chunks received.
    Partial,
    /// The whole source arrived.
    Complete,
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

    /// How far the source got.
    pub fn progress(&self) -> Progress {
        let Some(ingest) = &self.ingest else { return Progress::Empty };
        if self.is_uploaded() {
            Progress::Complete
        } else if !ingest.received_bytes.is_empty() || ingest.received_parts.as_ref().is_some_and(|p| !p.parts.is_empty()) {
            Progress::Partial
        } else {
            Progress::Empty
        }
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
    #[serde(default)]
    pagination: Option<Pagination>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Pagination {
    #[serde(default)]
    pages_total: Option<u32>,
}

fn encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

impl Client {
    /// Creates a video. Not idempotent: after a failure that may have reached the server the
    /// error says so (`maybe_sent`), and the caller looks the video up before trying again.
    pub async fn create_video(&self, video: &NewVideo) -> Result<Video, ApiError> {
        let build = |r: RequestBuilder, _: &Arc<Watch>| r.json(video);
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
        let answer = self.execute(&call).await?;
        self.json(&call, &answer)
    }

    /// The videos whose metadata `key` is exactly `value`, oldest first (in the server's order).
    ///
    /// How api.video matches `metadata[KEY]=VALUE` is not documented (its `title` filter matches
    /// substrings), so every page the filter returns is read and only exact matches are kept.
    pub async fn find_by_metadata(&self, key: &str, value: &str) -> Result<Vec<Video>, ApiError> {
        let mut found = Vec::new();
        for page in 1..=MAX_LOOKUP_PAGES {
            let path = format!(
                "/videos?metadata%5B{}%5D={}&sortBy=createdAt&sortOrder=asc&pageSize=100&currentPage={page}",
                encode(key),
                encode(value)
            );
            let call = Call {
                method: Method::GET,
                path,
                route: "/videos".into(),
                bucket: Some(Bucket::Reads),
                authenticated: true,
                idempotent: true,
                body_len: 0,
                build: &no_body,
            };
            let answer = self.execute(&call).await?;
            let listed: VideoPage = self.json(&call, &answer)?;
            let full = listed.data.len() >= 100;
            found.extend(listed.data.into_iter().filter(|v| v.metadata_value(key) == Some(value)));
            let last = listed.pagination.and_then(|p| p.pages_total).map_or(!full, |total| page >= total);
            if last {
                break;
            }
        }
        Ok(found)
    }

    /// `GET /videos/{id}`; `None` when there is no such video.
    pub async fn video(&self, video_id: &str) -> Result<Option<Video>, ApiError> {
        let path = format!("/videos/{}", encode(video_id));
        let call = Call {
            method: Method::GET,
            route: path.clone(),
            path,
            bucket: Some(Bucket::Reads),
            authenticated: true,
            idempotent: true,
            body_len: 0,
            build: &no_body,
        };
        match self.execute(&call).await {
            Ok(answer) => self.json(&call, &answer).map(Some),
            Err(e) if e.status().map(|s| s.as_u16()) == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Replaces a video's metadata (`PATCH /videos/{id}` with `metadata` only: api.video
    /// replaces the whole list).
    pub async fn set_metadata(&self, video_id: &str, metadata: &[Metadata]) -> Result<(), ApiError> {
        let path = format!("/videos/{}", encode(video_id));
        let body = serde_json::json!({ "metadata": metadata });
        let build = |r: RequestBuilder, _: &Arc<Watch>| r.json(&body);
        let call = Call {
            method: Method::PATCH,
            route: path.clone(),
            path,
            bucket: Some(Bucket::Writes),
            authenticated: true,
            idempotent: true,
            body_len: 0,
            build: &build,
        };
        self.execute(&call).await.map(drop)
    }

    /// `DELETE /videos/{id}`; a video already gone counts as deleted.
    pub async fn delete_video(&self, video_id: &str) -> Result<(), ApiError> {
        let path = format!("/videos/{}", encode(video_id));
        let call = Call {
            method: Method::DELETE,
            route: path.clone(),
            path,
            bucket: Some(Bucket::Writes),
            authenticated: true,
            idempotent: true,
            body_len: 0,
            build: &no_body,
        };
        match self.execute(&call).await {
            Ok(_) => Ok(()),
            Err(e) if e.status().map(|s| s.as_u16()) == Some(404) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// `GET /videos/{id}/status`.
    pub async fn status(&self, video_id: &str) -> Result<VideoStatus, ApiError> {
        let path = format!("/videos/{}/status", encode(video_id));
        let call = Call {
            method: Method::GET,
            route: path.clone(),
            path,
            bucket: Some(Bucket::Reads),
            authenticated: true,
            idempotent: true,
            body_len: 0,
            build: &no_body,
        };
        let answer = self.execute(&call).await?;
        self.json(&call, &answer)
    }
}
