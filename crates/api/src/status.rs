//! `GET /videos/{id}/status`: how far a video's source got (`ingest`) and its encoding. The
//! client reads it; the double writes it; both through these types, so a member one half knows
//! and the other does not cannot pass unnoticed (the double's answers are checked to survive a
//! round trip through them byte for byte).

use serde::{Deserialize, Serialize};

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
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct BytesRange {
    /// First byte.
    pub from: u64,
    /// Last byte (inclusive).
    pub to: u64,
    /// Total.
    pub total: u64,
}

/// Parts received.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ReceivedParts {
    /// Part numbers.
    #[serde(default)]
    pub parts: Vec<u64>,
    /// Total, once known.
    #[serde(default)]
    pub total: Option<u64>,
}

/// `ingest` of a status.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ingest {
    /// `uploading`, `uploaded`, `ingesting`, `ingested`; absent before any upload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// The source's size once known (`null` before).
    #[serde(default)]
    pub filesize: Option<u64>,
    /// Byte ranges received.
    #[serde(default)]
    pub received_bytes: Vec<BytesRange>,
    /// Parts received.
    #[serde(default)]
    pub received_parts: Option<ReceivedParts>,
}

/// `GET /videos/{id}/status`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct VideoStatus {
    /// Upload state.
    #[serde(default)]
    pub ingest: Option<Ingest>,
    /// Encoding state.
    #[serde(default)]
    pub encoding: Option<Encoding>,
}

/// `encoding` of a status: whether the video plays yet, and each quality's state.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Encoding {
    /// At least one quality can be played.
    #[serde(default)]
    pub playable: bool,
    /// Each quality produced.
    #[serde(default)]
    pub qualities: Vec<Quality>,
    /// What api.video measured of the source (each member `null` until it knows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<SourceMetadata>,
}

/// `encoding.metadata`: the source's measurements.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SourceMetadata {
    /// Pixels.
    #[serde(default)]
    pub width: Option<u64>,
    /// Pixels.
    #[serde(default)]
    pub height: Option<u64>,
    /// Kilobits a second.
    #[serde(default)]
    pub bitrate: Option<f64>,
    /// Seconds.
    #[serde(default)]
    pub duration: Option<u64>,
    /// Frames a second.
    #[serde(default)]
    pub framerate: Option<u64>,
    /// Audio samples a second.
    #[serde(default)]
    pub samplerate: Option<u64>,
    /// E.g. `h264`.
    #[serde(default)]
    pub video_codec: Option<String>,
    /// E.g. `aac`.
    #[serde(default)]
    pub audio_codec: Option<String>,
    /// E.g. `16/9`.
    #[serde(default)]
    pub aspect_ratio: Option<String>,
}

/// One quality in `encoding.qualities`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Quality {
    /// `hls` or `mp4`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// `240p` … `2160p`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<String>,
    /// `waiting`, `encoding`, `encoded` or `failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

impl Encoding {
    /// The qualities whose encoding failed, as `type quality` (e.g. `hls 720p`).
    pub fn failed(&self) -> Vec<String> {
        self.qualities
            .iter()
            .filter(|q| q.status.as_deref() == Some("failed"))
            .map(|q| {
                let kind = q.kind.as_deref().unwrap_or("?");
                format!("{kind} {}", q.quality.as_deref().unwrap_or("?"))
            })
            .collect()
    }

    /// Every quality is encoded (and there is at least one).
    pub fn all_encoded(&self) -> bool {
        !self.qualities.is_empty()
            && self.qualities.iter().all(|q| q.status.as_deref() == Some("encoded"))
    }
}

impl VideoStatus {
    /// Whether api.video holds the whole source: `uploaded`, or `ingested` from a URL or another
    /// video, the two states it documents for a source it holds (`video-status-ingest`). Any
    /// other (`uploading`, `ingesting`, a state it does not document, none) is a source that is
    /// not there, or not yet: api.video documents no state, and no webhook, for a source it
    /// could not fetch, so a pull that fails looks like one still under way.
    pub fn is_uploaded(&self) -> bool {
        matches!(self.ingest_state(), Some("uploaded" | "ingested"))
    }

    /// The source's `ingest.status`, if the video has one.
    pub fn ingest_state(&self) -> Option<&str> {
        self.ingest.as_ref().and_then(|i| i.status.as_deref())
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

    /// The size of the whole source api.video holds, when it says: its `ingest.filesize`, else
    /// the total its received byte ranges name. `None` for a source not all there.
    pub fn source_size(&self) -> Option<u64> {
        let ingest = self.ingest.as_ref().filter(|_| self.is_uploaded())?;
        ingest.filesize.or_else(|| ingest.received_bytes.first().map(|r| r.total))
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
