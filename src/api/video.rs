//! The video resource on the wire: what a create carries, what a video and its status look
//! like, and the languages api.video accepts. The client reads these; the server double checks
//! payloads against the same list.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Languages api.video accepts (`VideoCreationPayload.language`).
pub const LANGUAGES: &[&str] = &[
    "ar", "ca", "cs", "da", "de", "el", "en", "es", "fa", "fi", "fr", "he", "hi", "hr", "hu", "it",
    "ja", "ko", "ml", "nl", "nn", "no", "pl", "pt", "ru", "sk", "sl", "te", "tr", "uk", "ur", "vi",
    "zh",
];

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
    Ok(text
        .as_ref()
        .and_then(serde_json::Value::as_str)
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc)))
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
        } else if !ingest.received_bytes.is_empty()
            || ingest.received_parts.as_ref().is_some_and(|p| !p.parts.is_empty())
        {
            Progress::Partial
        } else {
            Progress::Empty
        }
    }

    /// Whether bytes `from..=to` arrived as one chunk.
    pub fn has_range(&self, from: u64, to: u64) -> bool {
        self.ingest
            .as_ref()
            .is_some_and(|i| i.received_bytes.iter().any(|r| r.from == from && r.to == to))
    }

    /// Whether part `n` arrived.
    pub fn has_part(&self, n: u64) -> bool {
        self.ingest
            .as_ref()
            .and_then(|i| i.received_parts.as_ref())
            .is_some_and(|p| p.parts.contains(&n))
    }
}
