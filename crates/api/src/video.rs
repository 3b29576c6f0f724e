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
    /// The part of the source to keep; only settable at creation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clip: Option<Clip>,
    /// An existing watermark and where it goes; only settable at creation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub watermark: Option<Watermark>,
    /// Whether api.video makes a transcript.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transcript: Option<bool>,
    /// Whether api.video makes a summary of the transcript.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transcript_summary: Option<bool>,
    /// What the summary holds: [`SUMMARY_ATTRIBUTES`].
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub transcript_summary_attributes: Vec<String>,
    /// A URL api.video fetches the source from (instead of an upload).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// The values `transcriptSummaryAttributes` takes.
pub const SUMMARY_ATTRIBUTES: &[&str] = &["abstract", "takeaways"];

/// `clip`: timecodes `HH:MM:SS`, `HH:MM:SS.mmm`, `HH:MM:SS:FF` or plain seconds
/// ([`valid_clip_timecode`]).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Clip {
    /// Where the kept part starts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_timecode: Option<String>,
    /// Where it ends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_timecode: Option<String>,
}

/// `watermark`: an existing watermark's id and its placement; every placement is a string with
/// a unit (`10px`, `5%`; `initial` keeps the image's size for width and height).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Watermark {
    /// `watermark…`, from `POST /watermarks`.
    pub id: String,
    /// Distance from the top.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top: Option<String>,
    /// Distance from the left.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub left: Option<String>,
    /// Distance from the bottom.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bottom: Option<String>,
    /// Distance from the right.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub right: Option<String>,
    /// Width.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub width: Option<String>,
    /// Height.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub height: Option<String>,
    /// Opacity, a percentage.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opacity: Option<String>,
}

/// The placement names of a [`Watermark`].
pub const WATERMARK_PLACEMENT: &[&str] =
    &["top", "left", "bottom", "right", "width", "height", "opacity"];

impl Watermark {
    /// Sets placement `name` (one of [`WATERMARK_PLACEMENT`]); false when there is no such one.
    pub fn set(&mut self, name: &str, value: String) -> bool {
        let slot = match name {
            "top" => &mut self.top,
            "left" => &mut self.left,
            "bottom" => &mut self.bottom,
            "right" => &mut self.right,
            "width" => &mut self.width,
            "height" => &mut self.height,
            "opacity" => &mut self.opacity,
            _ => return false,
        };
        *slot = Some(value);
        true
    }
}

/// Whether `value` is a placement api.video takes: a number with `px` or `%` (`initial` for
/// width and height; opacity is a percentage).
pub fn valid_placement(name: &str, value: &str) -> bool {
    let number = |n: &str| {
        !n.is_empty()
            && n.bytes().all(|b| b.is_ascii_digit() || b == b'.')
            && n.bytes().filter(|b| *b == b'.').count() <= 1
    };
    match name {
        "width" | "height" if value == "initial" => true,
        "opacity" => value.strip_suffix('%').is_some_and(number),
        _ => value.strip_suffix("px").or_else(|| value.strip_suffix('%')).is_some_and(number),
    }
}

/// Whether `value` is a clip timecode as api.video's pattern allows
/// (`^(?:\d{2,3}:[0-5]\d:[0-5]\d(?:\.\d{1,3}|:\d{1,2})?|\d{1,7})$`): `HH:MM:SS` with
/// milliseconds or a frame number, or plain seconds.
pub fn valid_clip_timecode(value: &str) -> bool {
    clip_seconds(value).is_some()
}

/// A clip timecode in seconds (a frame number counts as nothing), when it is one
/// ([`valid_clip_timecode`]).
pub fn clip_seconds(value: &str) -> Option<f64> {
    let digits = |s: &str, lo: usize, hi: usize| {
        (lo..=hi).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
    };
    if digits(value, 1, 7) {
        return value.parse().ok();
    }
    let (hours, rest) = value.split_once(':')?;
    let (minutes, rest) = rest.split_once(':')?;
    let (seconds, fraction) = match rest.split_once(['.', ':']) {
        Some((s, f)) => (s, Some((rest.as_bytes()[s.len()], f))),
        None => (rest, None),
    };
    if !digits(hours, 2, 3) || !digits(minutes, 2, 2) || !digits(seconds, 2, 2) {
        return None;
    }
    let (h, m, s): (f64, f64, f64) =
        (hours.parse().ok()?, minutes.parse().ok()?, seconds.parse().ok()?);
    if m >= 60.0 || s >= 60.0 {
        return None;
    }
    let extra = match fraction {
        None => 0.0,
        Some((b'.', f)) if digits(f, 1, 3) => format!("0.{f}").parse().ok()?,
        Some((b':', f)) if digits(f, 1, 2) => 0.0,
        Some(_) => return None,
    };
    Some(h * 3600.0 + m * 60.0 + s + extra)
}

impl NewVideo {
    /// A payload with only a title.
    pub fn titled(title: &str) -> Self {
        NewVideo { title: title.to_owned(), ..Default::default() }
    }
}

/// A video (`Video`): what api.video answers to a create, a read, an update or a listing. The
/// client reads it; the double writes it from this type. `null` members are sent as api.video
/// sends them; the others only when known. The larger members the client never reads (links,
/// creation-only settings) are boxed: a run holds every video of an account it indexes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Video {
    /// `vi…`.
    pub video_id: String,
    /// When it was created (absent from some of api.video's examples; a value that does not
    /// parse is taken as absent rather than failing the whole answer).
    #[serde(default, with = "crate::time::lenient")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
    /// When it last changed.
    #[serde(default, with = "crate::time::lenient")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<DateTime<Utc>>,
    /// When it was published.
    #[serde(default, with = "crate::time::lenient")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub published_at: Option<DateTime<Utc>>,
    /// Title.
    #[serde(default)]
    pub title: String,
    /// Description (what `avbatch check` compares, like the fields below).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// Metadata.
    #[serde(default)]
    pub metadata: Vec<Metadata>,
    /// Public playback (api.video answers its default, true, when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public: Option<bool>,
    /// 360° video (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub panoramic: Option<bool>,
    /// mp4 asset (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mp4_support: Option<bool>,
    /// Player theme.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub player_id: Option<String>,
    /// Spoken language (`null` when not set).
    #[serde(default)]
    pub language: Option<String>,
    /// Who set the language: `api` or `auto` (`null` when not set).
    #[serde(default)]
    pub language_origin: Option<String>,
    /// Whether the video is in the recycle bin.
    #[serde(default)]
    pub discarded: bool,
    /// When it was discarded (`null`: it was not).
    #[serde(default)]
    pub discarded_at: Option<String>,
    /// When the recycle bin deletes it (`null`: never).
    #[serde(default)]
    pub deletes_at: Option<String>,
    /// Where its source is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Box<SourceLink>>,
    /// Where it plays.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assets: Option<Box<VideoAssets>>,
    /// `clip` as given at creation (echoed only when given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clip: Option<Box<Clip>>,
    /// `watermark` as given at creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watermark: Option<Box<Watermark>>,
    /// Transcript requested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transcript: Option<bool>,
    /// Summary requested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transcript_summary: Option<bool>,
    /// Summary attributes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transcript_summary_attributes: Option<Vec<String>>,
}

/// The answer to a chunk that does not complete the source: only the video's id (the last
/// chunk is answered with the whole [`Video`]).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct VideoId {
    /// `vi…`.
    pub video_id: String,
}

/// `source` of a video: where its source is (`/videos/{id}/source`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct SourceLink {
    /// The source's path.
    #[serde(default)]
    pub uri: String,
}

/// `assets` of a video: where it plays.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct VideoAssets {
    /// HLS manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hls: Option<String>,
    /// The player's embed code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iframe: Option<String>,
    /// The player page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub player: Option<String>,
    /// The thumbnail image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbnail: Option<String>,
    /// The mp4 file (with `mp4Support`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mp4: Option<String>,
}

impl Video {
    /// The value of metadata `key`, if the video has it.
    pub fn metadata_value(&self, key: &str) -> Option<&str> {
        self.metadata.iter().find(|m| m.key == key).map(|m| m.value.as_str())
    }

    /// Every value the video carries under `key`, in order: a video may carry a key twice (a
    /// pair written by an import beside the one a tool keeps).
    pub fn metadata_values<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.metadata.iter().filter(move |m| m.key == key).map(|m| m.value.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_timecodes_follow_the_documented_pattern() {
        for (text, seconds) in [
            ("00:01:15", 75.0),
            ("100:00:00", 360_000.0),
            ("00:00:01.5", 1.5),
            ("00:00:01.250", 1.25),
            ("00:00:02:12", 2.0),
            ("42", 42.0),
            ("1234567", 1_234_567.0),
        ] {
            assert_eq!(clip_seconds(text), Some(seconds), "{text}");
        }
        for bad in [
            "",
            "1:00:00",
            "00:60:00",
            "00:00:60",
            "00:00:01.",
            "00:00:01.1234",
            "00:00:01:123",
            "12345678",
            "00:01",
            "-1",
            "00:00:01,5",
            "0000:00:00",
        ] {
            assert!(!valid_clip_timecode(bad), "{bad}");
        }
    }

    #[test]
    fn watermark_placements() {
        assert!(valid_placement("top", "10px") && valid_placement("left", "5.5%"));
        assert!(valid_placement("width", "initial") && valid_placement("opacity", "70%"));
        assert!(!valid_placement("top", "initial") && !valid_placement("opacity", "70px"));
        assert!(!valid_placement("top", "10") && !valid_placement("top", "px"));
        let mut w = Watermark::default();
        assert!(w.set("bottom", "10px".into()) && !w.set("middle", "1px".into()));
        assert_eq!(w.bottom.as_deref(), Some("10px"));
    }
}
