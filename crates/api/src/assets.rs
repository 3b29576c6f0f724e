//! A video's other assets on the wire: its thumbnail, its captions and its chapters
//! (`/videos/{id}/thumbnail`, `/videos/{id}/captions/{language}`,
//! `/videos/{id}/chapters/{language}`).

use serde::{Deserialize, Serialize};

/// The largest thumbnail image api.video takes: its documentation says 8 MB, the spec's
/// `video-thumbnail-upload-payload` 8 MiB; the stricter, 8 000 000 bytes.
pub const THUMBNAIL_MAX_BYTES: u64 = 8_000_000;

/// The largest caption or chapters file: api.video documents none, so one limit, stated here,
/// is what the double enforces and what avbatch checks before a run.
pub const TRACK_MAX_BYTES: u64 = 16 * 1024 * 1024;

/// A caption track (`caption`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Caption {
    /// `/videos/{id}/captions/{language}`.
    #[serde(default)]
    pub uri: String,
    /// Where the WebVTT file is served.
    #[serde(default)]
    pub src: String,
    /// The language tag.
    #[serde(default)]
    pub srclang: String,
    /// The language's own name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language_name: Option<String>,
    /// Whether players show it without being asked.
    #[serde(default)]
    pub default: bool,
}

/// A chapters track (`chapter`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Chapter {
    /// `/videos/{id}/chapters/{language}`.
    #[serde(default)]
    pub uri: String,
    /// Where the WebVTT file is served.
    #[serde(default)]
    pub src: String,
    /// The language tag.
    #[serde(default)]
    pub language: String,
}

/// Captions or chapters: the two kinds of text track a video holds, each under its own path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrackKind {
    /// `/videos/{id}/captions/{language}`: any cue text.
    Captions,
    /// `/videos/{id}/chapters/{language}`: a title per cue.
    Chapters,
}

impl TrackKind {
    /// The path segment (`captions`, `chapters`).
    pub fn segment(self) -> &'static str {
        match self {
            TrackKind::Captions => "captions",
            TrackKind::Chapters => "chapters",
        }
    }
}

/// `PATCH /videos/{id}/captions/{language}` (`captions-update-payload`).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct CaptionUpdate {
    /// Make it the default track (or not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<bool>,
}

/// `PATCH /videos/{id}/thumbnail` (`video-thumbnail-pick-payload`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ThumbnailPick {
    /// The frame to show: [`valid_thumbnail_timecode`].
    pub timecode: String,
}

/// Whether `value` picks a frame as api.video documents: `hh:mm:ss`, `hh:mm:ss.ms` (1 to 3
/// digits), `hh:mm:ss:frame`, or whole seconds.
pub fn valid_thumbnail_timecode(value: &str) -> bool {
    thumbnail_seconds(value).is_some()
}

/// The second a thumbnail timecode picks (a frame number counts as nothing), when it is one.
pub fn thumbnail_seconds(value: &str) -> Option<f64> {
    let digits = |s: &str, lo: usize, hi: usize| {
        (lo..=hi).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
    };
    if digits(value, 1, 7) {
        return value.parse().ok();
    }
    let fields: Vec<&str> = value.split(':').collect();
    let (h, m, s, frame) = match fields.as_slice() {
        [h, m, s] => (*h, *m, *s, None),
        [h, m, s, f] => (*h, *m, *s, Some(*f)),
        _ => return None,
    };
    let (s, fraction) = match s.split_once('.') {
        Some((s, f)) if digits(f, 1, 3) && frame.is_none() => (s, format!("0.{f}")),
        Some(_) => return None,
        None => (s, "0".to_owned()),
    };
    if !digits(h, 2, 2)
        || !digits(m, 2, 2)
        || !digits(s, 2, 2)
        || !frame.is_none_or(|f| digits(f, 1, 3))
    {
        return None;
    }
    let (h, m, s): (f64, f64, f64) = (h.parse().ok()?, m.parse().ok()?, s.parse().ok()?);
    if m >= 60.0 || s >= 60.0 {
        return None;
    }
    Some(h * 3600.0 + m * 60.0 + s + fraction.parse::<f64>().ok()?)
}

/// The kinds of image api.video takes as a thumbnail (`image/jpeg`, `image/png`,
/// `image/webp`), told from their first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageKind {
    /// `FF D8 FF`.
    Jpeg,
    /// `89 PNG CR LF SUB LF`.
    Png,
    /// `RIFF….WEBP`.
    Webp,
}

impl ImageKind {
    /// The kind of image `head` (the file's first 12 bytes or more) starts, if any.
    pub fn sniff(head: &[u8]) -> Option<ImageKind> {
        if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(ImageKind::Jpeg)
        } else if head.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(ImageKind::Png)
        } else if head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP" {
            Some(ImageKind::Webp)
        } else {
            None
        }
    }

    /// Its media type.
    pub fn mime(self) -> &'static str {
        match self {
            ImageKind::Jpeg => "image/jpeg",
            ImageKind::Png => "image/png",
            ImageKind::Webp => "image/webp",
        }
    }

    /// The file name extension that goes with it.
    pub fn extension(self) -> &'static str {
        match self {
            ImageKind::Jpeg => "jpg",
            ImageKind::Png => "png",
            ImageKind::Webp => "webp",
        }
    }

    /// Whether a file name's `extension` (without its dot, any case) says this kind: `jpg` or
    /// `jpeg` for a JPEG, `png`, `webp`. api.video checks an image's type or its extension.
    pub fn named_by(self, extension: &str) -> bool {
        let extension = extension.to_ascii_lowercase();
        match self {
            ImageKind::Jpeg => matches!(extension.as_str(), "jpg" | "jpeg"),
            _ => extension == self.extension(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbnail_timecodes() {
        assert_eq!(thumbnail_seconds("00:01:00.000"), Some(60.0));
        assert_eq!(thumbnail_seconds("00:00:02.5"), Some(2.5));
        assert_eq!(thumbnail_seconds("00:00:03:12"), Some(3.0));
        assert_eq!(thumbnail_seconds("124"), Some(124.0));
        for bad in ["", "1:00", "00:61:00", "00:00:01.", "00:00:01:1234", "a", "00:00:01.5:2"] {
            assert!(!valid_thumbnail_timecode(bad), "{bad}");
        }
    }

    #[test]
    fn images_are_told_by_their_first_bytes() {
        assert_eq!(ImageKind::sniff(&[0xFF, 0xD8, 0xFF, 0xE0]), Some(ImageKind::Jpeg));
        assert_eq!(ImageKind::sniff(b"\x89PNG\r\n\x1a\n\0\0"), Some(ImageKind::Png));
        assert_eq!(ImageKind::sniff(b"RIFF\0\0\0\0WEBPVP8 "), Some(ImageKind::Webp));
        assert_eq!(ImageKind::sniff(b"GIF89a"), None);
    }
}
