//! A row's assets besides its source: the thumbnail, caption and chapters tracks, as the
//! manifest names them.

use std::path::PathBuf;

/// A row's thumbnail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Thumbnail {
    /// An image file (`thumbnail`): JPEG, PNG or WebP, at most 8 MiB.
    Image {
        /// The file, resolved against the manifest's folder.
        path: PathBuf,
        /// The path as written in the manifest.
        path_text: String,
    },
    /// A frame of the video (`thumbnail_time`), as api.video's timecode.
    Frame(String),
}

/// A caption or chapters track: its language and its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackFile {
    /// The language tag, as in the column's name (`captions.fr-CA` → `fr-CA`).
    pub language: String,
    /// The file, resolved against the manifest's folder.
    pub path: PathBuf,
    /// The path as written in the manifest.
    pub path_text: String,
}
