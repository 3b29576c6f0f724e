//! A video's other assets: its thumbnail, its caption and chapters tracks, and the account's
//! watermarks: what is kept of them and the JSON api.video sends for them.
//!
//! Where they live in the data folder (next to the source chunks of [`super::store`]):
//! ```text
//! videos/{videoId}/thumbnail.{jpg,png,webp}   the uploaded image, as sent
//! videos/{videoId}/captions/{language}.vtt    each caption file, as sent
//! videos/{videoId}/chapters/{language}.vtt    each chapters file, as sent
//! watermarks/{watermarkId}.json               a watermark's record
//! watermarks/{watermarkId}.{jpg,png}          its image
//! ```
//! and in the video's record (`videos/{videoId}/video.json`):
//! - `"thumbnail": {"kind": "uploaded", "file": "thumbnail.png", "mime": "image/png", "size": N}`
//!   after `POST /videos/{id}/thumbnail`, or `{"kind": "picked", "timecode": "00:00:02"}` after
//!   `PATCH /videos/{id}/thumbnail`: the double renders no frames, so the picked timecode is only
//!   kept there, for tests to read, and `assets.thumbnail` then answers 404. Either replaces the
//!   other.
//! - `"captions": {"en": {"default": true}, …}` and `"chapters": ["en", …]`: the tracks the
//!   video has. A file is written (atomically) before the record names it, and the record stops
//!   naming it before it is removed, so a crash never leaves a track without its file.
//!
//! Deleting a video removes its folder, so its assets go with it (and with an unfinished video
//! that expires).
//!
//! Undocumented behaviour, decided here:
//! - A caption or chapters file for a language that already has one replaces it (a caption keeps
//!   its `default` flag), unless the server runs with `--existing-tracks refuse`
//!   ([`super::config::ExistingTracks`]).
//! - api.video does not validate WebVTT (it answers 200 to a malformed caption file), so any
//!   non-empty bytes are kept as given; at most [`TRACK_MAX_BYTES`] (its limit is undocumented:
//!   the contract states one, which avbatch checks before a run).
//! - A caption or chapters language is one of api.video's documented list
//!   ([`avbatch_api::caption_language`]); any other is `400 invalid-attribute`.
//! - A create whose `watermark.id` names no watermark of `POST /watermarks` is refused with
//!   `400 invalid-attribute` naming `watermark.id`, not a 404: it is a member of the payload
//!   like every other creation refusal (and joins them in `problems`), and a 404 on `POST
//!   /videos` would read to clients as a missing route or video.
//! - A watermark image is at most [`THUMBNAIL_MAX_BYTES`] (8 MB, as for thumbnails; its own limit
//!   is undocumented), JPEG or PNG told by its first bytes.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::problem::ApiError;
use avbatch_api::{Caption, Chapter, ImageKind, WatermarkImage};
pub use avbatch_api::{TrackKind, THUMBNAIL_MAX_BYTES, TRACK_MAX_BYTES};

/// A video's thumbnail as kept in its record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Thumbnail {
    /// An image sent with `POST /videos/{id}/thumbnail`.
    Uploaded {
        /// Its file in the video's folder.
        file: String,
        /// Its media type, from its first bytes.
        mime: String,
        /// Its length.
        size: u64,
    },
    /// A frame picked with `PATCH /videos/{id}/thumbnail`.
    Picked {
        /// The timecode as sent.
        timecode: String,
    },
}

/// A caption track as kept in the record (its file is `captions/{language}.vtt`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaptionState {
    /// Whether it is the video's default caption.
    #[serde(default)]
    pub default: bool,
}

/// The file of `language`'s track of `kind`, relative to the video's folder.
pub fn track_file(kind: TrackKind, language: &str) -> String {
    format!("{}/{language}.vtt", kind.segment())
}

/// The refusal of a second track of `kind` under `--existing-tracks refuse`.
pub fn already_exists(kind: TrackKind) -> ApiError {
    let detail = match kind {
        TrackKind::Captions => "A caption already exists for this language.",
        TrackKind::Chapters => "A chapter already exists for this language.",
    };
    ApiError::invalid_attribute("language", detail)
}

/// `400 invalid-attribute` for a language tag api.video does not take: the spec's example
/// bodies, word for word, one for a tag that is not letters and dashes, one for a tag that is
/// not in its list (which also holds digits: `es-419`).
pub fn check_language(language: &str) -> Result<(), ApiError> {
    if !avbatch_api::language_tag_shape(language) {
        return Err(ApiError::invalid_attribute(
            "language",
            "The \"language\" attribute must contain only letters and dashes (for example \"fr\", \
             \"fr-BE\").",
        ));
    }
    match avbatch_api::caption_language(language) {
        Some(_) => Ok(()),
        None => {
            Err(ApiError::invalid_attribute("language", "The \"language\" attribute is not valid."))
        }
    }
}

/// The language's own name, as api.video's list gives it: of the tag's primary language
/// (`fr-CA` → `Français`), or the whole tag's when the list has no primary one.
pub fn language_name(tag: &str) -> String {
    let primary = tag.split('-').next().unwrap_or(tag);
    avbatch_api::caption_language(primary)
        .or_else(|| avbatch_api::caption_language(tag))
        .map_or_else(|| tag.to_owned(), |l| l.native.to_owned())
}

/// The `caption` api.video sends; `base` is the server's public URL.
pub fn caption(base: &str, video_id: &str, language: &str, state: CaptionState) -> Caption {
    Caption {
        uri: format!("/videos/{video_id}/captions/{language}"),
        src: format!("{base}/vod/{video_id}/captions/{language}.vtt"),
        srclang: language.to_owned(),
        language_name: Some(language_name(language)),
        default: state.default,
    }
}

/// The `chapter` api.video sends; `base` is the server's public URL.
pub fn chapter(base: &str, video_id: &str, language: &str) -> Chapter {
    Chapter {
        uri: format!("/videos/{video_id}/chapters/{language}"),
        src: format!("{base}/vod/{video_id}/chapters/{language}.vtt"),
        language: language.to_owned(),
    }
}

/// Makes `language` the only default caption (`default` true), or clears it.
pub fn set_default(captions: &mut BTreeMap<String, CaptionState>, language: &str, default: bool) {
    for (tag, state) in captions.iter_mut() {
        if tag == language {
            state.default = default;
        } else if default {
            state.default = false;
        }
    }
}

/// `400 uploaded-file-extension-invalid` for an image that is not one of `kinds`, worded as
/// the spec's example for the route (`title`).
pub fn image_refused(title: &'static str, kinds: &str) -> ApiError {
    ApiError::bad_request("uploaded-file-extension-invalid", title)
        .name("file")
        .detail(format!("the image must be {kinds}, told by its first bytes"))
}

/// The kind of thumbnail image `head` starts, or the refusal.
pub fn thumbnail_kind(head: &[u8]) -> Result<ImageKind, ApiError> {
    ImageKind::sniff(head).ok_or_else(|| {
        image_refused("Only [jpeg, jpg, JPG, JPEG] extensions are supported.", "JPEG, PNG or WebP")
    })
}

/// The kind of watermark image `head` starts (JPEG or PNG), or the refusal.
pub fn watermark_kind(head: &[u8]) -> Result<ImageKind, ApiError> {
    match ImageKind::sniff(head) {
        Some(k @ (ImageKind::Jpeg | ImageKind::Png)) => Ok(k),
        _ => Err(image_refused(
            "Only [jpeg, jpg, JPG, JPEG, png, PNG] extensions are supported.",
            "JPEG or PNG",
        )),
    }
}

/// A watermark as stored in `watermarks/{id}.json` and sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WatermarkRecord {
    /// `watermark_…`.
    pub watermark_id: String,
    /// When it was uploaded.
    pub created_at: DateTime<Utc>,
    /// Its image file in `watermarks/`.
    pub file: String,
}

impl WatermarkRecord {
    /// The `watermark` api.video sends.
    pub fn image(&self) -> WatermarkImage {
        WatermarkImage { watermark_id: self.watermark_id.clone(), created_at: self.created_at }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_defaults() {
        assert_eq!(language_name("fr-CA"), "Français");
        assert_eq!(language_name("ja"), "日本語");
        assert_eq!(language_name("tlh"), "tlh");
        let mut c = BTreeMap::new();
        c.insert("en".to_owned(), CaptionState { default: true });
        c.insert("fr".to_owned(), CaptionState::default());
        set_default(&mut c, "fr", true);
        assert!(!c["en"].default && c["fr"].default);
        set_default(&mut c, "en", false);
        assert!(c["fr"].default, "clearing one leaves the others");
        for (tag, detail) in [("fr_CA", "only letters and dashes"), ("zz", "is not valid")] {
            let refused = check_language(tag).unwrap_err().body();
            assert_eq!(refused["name"], "language");
            assert!(refused["detail"].as_str().unwrap().contains(detail), "{tag}: {refused}");
        }
        for tag in ["es-419", "en-001", "ja-JP-TRADITIONAL", "fr-CA"] {
            assert!(check_language(tag).is_ok(), "{tag} is documented");
        }
        assert_eq!(
            thumbnail_kind(b"GIF89a....").unwrap_err().slug,
            "uploaded-file-extension-invalid"
        );
        assert!(watermark_kind(b"RIFF\0\0\0\0WEBPVP8 ").is_err());
    }
}
