//! A row's assets besides its source: the thumbnail, caption and chapters tracks, as the
//! manifest names them, and their files read and checked: up front by the manifest check, as
//! they stream in, and again by the engine as it sends them (a file may change in between).

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, PoisonError};

use super::{Problem, ProblemKind, Row, CAPTIONS_PREFIX, CHAPTERS_PREFIX};
use crate::chunk::{open_regular, special_kind};
use crate::excerpt::quoted;
use crate::texttrack::{self, Kind, ReadError, Track};
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

/// Caption and chapters files read at once, at most, in this process: by the manifest check and
/// by the engine (issue #25, point 13: the check read whole 26 MB files on its 32 threads at
/// once, and peaked at 2.3 GB). The check holds a line of a file at a time, the engine what it
/// will send (at most [`TRACK_MAX_BYTES`]), so reading tracks takes a few buffers and lines, or
/// at worst, for files of very long lines, this many times a file's worth of memory.
const TRACKS_AT_ONCE: usize = 4;

/// The places of the [`TRACKS_AT_ONCE`] tracks read at once: the number taken, and the signal a
/// place was given back. One for the process, as the memory it bounds is. A place is held only
/// while a file is read, which depends on nothing else held: no wait for one can deadlock.
static PLACES: (Mutex<usize>, Condvar) = (Mutex::new(0), Condvar::new());

/// A place among the [`TRACKS_AT_ONCE`] tracks read at once, given back when dropped.
struct TrackPlace;

impl TrackPlace {
    /// Waits for a place. Blocks: call off the async runtime.
    fn take() -> TrackPlace {
        let (taken, given_back) = &PLACES;
        // The count is whole even if a holder panicked: it is changed in single steps.
        let mut taken = taken.lock().unwrap_or_else(PoisonError::into_inner);
        while *taken >= TRACKS_AT_ONCE {
            taken = given_back.wait(taken).unwrap_or_else(PoisonError::into_inner);
        }
        *taken += 1;
        TrackPlace
    }
}

impl Drop for TrackPlace {
    fn drop(&mut self) {
        let (taken, given_back) = &PLACES;
        *taken.lock().unwrap_or_else(PoisonError::into_inner) -= 1;
        given_back.notify_one();
    }
}

impl TrackFile {
    /// Reads and checks the file as a track of `kind`, as it streams in: what to send, or why
    /// not. Waits for a place among the tracks read ([`TRACKS_AT_ONCE`]); blocks.
    pub fn load(&self, kind: Kind) -> Result<Track, String> {
        let _place = TrackPlace::take();
        let (file, size) = open_small(&self.path, TRACK_FILE_MAX_BYTES, "32 MiB")?;
        let shown = quoted(&self.path.display().to_string());
        let mut file = Counted { inner: file.take(TRACK_FILE_MAX_BYTES + 1), read: 0 };
        let track = match texttrack::read(&mut file, kind, size) {
            Ok(track) => track,
            Err(ReadError::Parse(e)) => return Err(self.unparsed(kind, &e.to_string())),
            Err(ReadError::Io(e)) => return Err(format!("cannot read {shown} ({e})")),
        };
        if file.read > TRACK_FILE_MAX_BYTES {
            return Err(format!("{shown} grew over the 32 MiB while it was read"));
        }
        self.within_bounds(track.vtt.len() as u64)?;
        Ok(track)
    }

    /// Checks the file as a track of `kind` as it streams in, as [`TrackFile::load`] would,
    /// without holding it. Waits for a place among the tracks read ([`TRACKS_AT_ONCE`]); blocks.
    pub fn check(&self, kind: Kind) -> Result<texttrack::Summary, String> {
        let _place = TrackPlace::take();
        let (file, _) = open_small(&self.path, TRACK_FILE_MAX_BYTES, "32 MiB")?;
        let shown = quoted(&self.path.display().to_string());
        let summary = match texttrack::check(file.take(TRACK_FILE_MAX_BYTES + 1), kind) {
            Ok(summary) => summary,
            Err(ReadError::Parse(e)) => return Err(self.unparsed(kind, &e.to_string())),
            Err(ReadError::Io(e)) => return Err(format!("cannot read {shown} ({e})")),
        };
        if summary.bytes > TRACK_FILE_MAX_BYTES {
            return Err(format!("{shown} grew over the 32 MiB while it was read"));
        }
        self.within_bounds(summary.vtt_len)?;
        Ok(summary)
    }

    /// Why the file does not parse as a track of `kind`.
    fn unparsed(&self, kind: Kind, error: &str) -> String {
        let shown = quoted(&self.path.display().to_string());
        format!("{shown} does not parse as {}: {error}", kind.segment())
    }

    /// Whether WebVTT of `len` bytes made of the file may be sent.
    fn within_bounds(&self, len: u64) -> Result<(), String> {
        if len > TRACK_MAX_BYTES {
            let shown = quoted(&self.path.display().to_string());
            return Err(format!(
                "{shown} makes {len} bytes of WebVTT, over the 16 MiB a caption or chapters file \
                 may be"
            ));
        }
        Ok(())
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

/// A reader that counts the bytes read.
struct Counted<R> {
    inner: R,
    read: u64,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

/// Opens a regular, non-empty file of at most `max` bytes (`limit` says the bound in words);
/// the file and its size.
fn open_small(path: &Path, max: u64, limit: &str) -> Result<(fs::File, u64), String> {
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
    Ok((file, metadata.len()))
}

/// Reads a regular, non-empty file of at most `max` bytes (`limit` says the bound in words).
fn read_small(path: &Path, max: u64, limit: &str) -> Result<Vec<u8>, String> {
    let shown = quoted(&path.display().to_string());
    let (file, len) = open_small(path, max, limit)?;
    let mut bytes = Vec::with_capacity(len as usize);
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
            if let Err(message) = track.check(kind) {
                problem(format!("{prefix}{}", track.language), &track.path, message);
            }
        }
    }
    problems
}
