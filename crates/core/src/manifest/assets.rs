//! A row's assets besides its source: the thumbnail, caption and chapters tracks, as the
//! manifest names them, and their files read and checked: up front by the manifest check, and
//! again by the engine as it sends them (a file may change in between).

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::{Problem, ProblemKind, Row, CAPTIONS_PREFIX, CHAPTERS_PREFIX};
use crate::chunk::{open_regular, special_kind};
use crate::excerpt::quoted;
use crate::texttrack::{Kind, Track};
use avbatch_api::{ImageKind, THUMBNAIL_MAX_BYTES};

/// A row's thumbnail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Thumbnail {
    /// An image file (`thumbnail`): JPEG, PNG or WebP, at most 8 MB.
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

/// The largest WebVTT track sent (a day of dense captions is a few MiB): the one limit both
/// halves keep, [`avbatch_api::TRACK_MAX_BYTES`].
pub use avbatch_api::TRACK_MAX_BYTES;

/// The largest caption or chapters file read: twice what is sent, for a UTF-16 file, whose
/// WebVTT in UTF-8 is about half its size.
const TRACK_FILE_MAX_BYTES: u64 = 2 * TRACK_MAX_BYTES;

impl TrackFile {
    /// Reads and checks the file as a track of `kind`: what to send, or why not.
    pub fn load(&self, kind: Kind) -> Result<Track, String> {
        let bytes = read_small(&self.path, TRACK_FILE_MAX_BYTES, "32 MiB")?;
        let what = kind.segment();
        let shown = quoted(&self.path.display().to_string());
        let track = crate::texttrack::load(&bytes, kind)
            .map_err(|e| format!("{shown} does not parse as {what}: {e}"))?;
        if track.vtt.len() as u64 > TRACK_MAX_BYTES {
            return Err(format!(
                "{shown} makes {} bytes of WebVTT, over the 16 MiB a caption or chapters file \
                 may be",
                track.vtt.len()
            ));
        }
        Ok(track)
    }
}

/// A thumbnail image read and checked.
#[derive(Debug, Clone)]
pub struct Image {
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// Its kind, told from its first bytes.
    pub kind: ImageKind,
}

/// Reads and checks a thumbnail image: a JPEG, PNG or WebP of at most 8 MB.
pub fn load_image(path: &Path) -> Result<Image, String> {
    let bytes = read_small(path, THUMBNAIL_MAX_BYTES, "8 MB (8 000 000 bytes) api.video takes")?;
    let shown = quoted(&path.display().to_string());
    match ImageKind::sniff(&bytes) {
        Some(kind) => Ok(Image { bytes, kind }),
        None => Err(format!(
            "{shown} is not a JPEG, PNG or WebP image (it starts with {})",
            quoted(
                &String::from_utf8_lossy(&bytes[..bytes.len().min(8)]).escape_debug().to_string()
            )
        )),
    }
}

/// Reads a regular, non-empty file of at most `max` bytes (`limit` says the bound in words).
fn read_small(path: &Path, max: u64, limit: &str) -> Result<Vec<u8>, String> {
    let shown = quoted(&path.display().to_string());
    let metadata = fs::metadata(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory => format!("missing file {shown}"),
        _ => format!("cannot open {shown} ({e})"),
    })?;
    if metadata.is_dir() {
        return Err(format!("{shown} is a directory, not a file"));
    }
    if let Some(kind) = special_kind(metadata.file_type()) {
        return Err(format!("{shown} is {kind}, not a regular file"));
    }
    let (file, metadata) = open_regular(path).map_err(|e| format!("cannot open {shown} ({e})"))?;
    if metadata.len() == 0 {
        return Err(format!("empty file {shown}"));
    }
    if metadata.len() > max {
        return Err(format!("{shown} is {} bytes, over the {limit}", metadata.len()));
    }
    let mut bytes = Vec::with_capacity(metadata.len() as usize);
    file.take(max + 1).read_to_end(&mut bytes).map_err(|e| format!("cannot read {shown} ({e})"))?;
    if bytes.len() as u64 > max {
        return Err(format!("{shown} grew over the {limit} while it was read"));
    }
    Ok(bytes)
}

/// Checks every asset file of a row: each problem names the asset's column and file.
pub(crate) fn check_assets(row: &Row) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut problem = |column: String, path: &Path, message: String| {
        problems.push(Problem {
            line: row.line,
            column: Some(column),
            path: Some(path.display().to_string()),
            kind: ProblemKind::BadAsset,
            message,
        })
    };
    if let Some(Thumbnail::Image { path, .. }) = &row.thumbnail {
        if let Err(message) = load_image(path) {
            problem("thumbnail".into(), path, message);
        }
    }
    for (tracks, kind, prefix) in [
        (&row.captions, Kind::Captions, CAPTIONS_PREFIX),
        (&row.chapters, Kind::Chapters, CHAPTERS_PREFIX),
    ] {
        for track in tracks {
            if let Err(message) = track.load(kind) {
                problem(format!("{prefix}{}", track.language), &track.path, message);
            }
        }
    }
    problems
}
