//! Captions and chapters files (WebVTT, SRT), checked before anything is sent to api.video.
//!
//! api.video answers 200 to a malformed caption file and then never shows it, so avbatch reads
//! every track first. [`load`] takes a file's bytes ([`read`], a file as it streams in), tells
//! its format from its contents, checks it (timestamps well formed, each cue ending after it
//! starts, cues in order, cue settings and regions known and well formed, chapters titled and
//! not overlapping) and returns the WebVTT to send: a UTF-8 WebVTT file byte for byte, an SRT
//! file converted. A file that does not pass gets a [`ParseError`] naming the line and column
//! of the failing token.
//!
//! The bytes are UTF-8, or UTF-16 or UTF-32 when a byte order mark says so (the WebVTT sent is
//! then UTF-8); nothing else can be told from the bytes for sure, so nothing else is guessed.
//!
//! WebVTT is read as the W3C WebVTT spec writes it: where a browser would drop or merge cues
//! silently, or skip a cue setting or region setting the file writes, this module refuses the
//! file. A line of only whitespace ends a block where a browser's line collection makes it one
//! (before an empty line, a timing line or the end); elsewhere it is text, as browsers show it.
//! SRT has no spec; the common shape is read (an optional number, a timing line with `,` or `.`
//! before the milliseconds, optional `X1:…` coordinates, text), cues sorted by start time.
//! `-->` is the arrow in both, with whitespace around it or none.
//!
//! [`check`] reads a file as it streams in, as [`load`] would, and says what [`load`] would
//! make of it without making it: the manifest check holds a line of each file at a time, never
//! the file (issue #25, point 13).
//!
//! Pure: bytes or a reader in, result out, nothing else of the crate used. Written here rather
//! than taken from crates.io: `subparse`, `srtlib`, `srtparse`, `srt`, `subrip` (SRT only),
//! `vtt`, `subtp`, `aspasia` and `fasrt` were looked at; they read SRT only, skip bad blocks
//! leniently, are unmaintained, or report errors without a line and column, so none fit. The
//! files of public conformance suites in `tests/fixtures/captions-conformance` (its
//! `SOURCES.md` says which) load or are refused as its `expected.tsv` says.

mod cue;
mod lines;
mod region;
mod srt;
#[cfg(test)]
mod tests;
mod webvtt;

use std::fmt;
use std::io::{self, Read};

use lines::{Lines, OwnedLine, Unicode};

/// What a track is for: captions allow any cue text; chapters need a non-empty title per cue.
/// The kind api.video knows by its path, so both halves name the same two.
pub use avbatch_api::TrackKind as Kind;

/// The file's format, from its contents (a `WEBVTT` signature, else SRT numbering/arrows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    WebVtt,
    Srt,
}

/// The most characters of the file's line a [`ParseError`] keeps.
pub const MAX_TEXT_CHARS: usize = 120;

/// Where and why a file does not parse. `line` and `column` are 1-based (column counted in
/// characters, a leading byte order mark not counted), `text` is the file's own line (without
/// its line ending, cut to [`MAX_TEXT_CHARS`] characters and an ellipsis).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: u64,
    pub column: u64,
    pub message: String,
    pub text: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}: {}: `{}`", self.line, self.column, self.message, self.text)
    }
}

impl std::error::Error for ParseError {}

/// Why a file read as it streams in ([`check`]) is not a track: it does not parse, or it could
/// not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error("cannot read the file")]
    Io(#[from] io::Error),
}

/// A checked track, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Track {
    pub format: Format,
    /// The WebVTT bytes to send: a UTF-8 WebVTT file as it is (byte for byte, untouched), one in
    /// UTF-16 or UTF-32 as UTF-8 (its byte order mark left out), an SRT file converted.
    pub vtt: Vec<u8>,
    /// Number of cues.
    pub cues: usize,
}

/// A track checked as it streamed in ([`check`]): what [`load`] would make of it, without it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub format: Format,
    /// Number of cues.
    pub cues: usize,
    /// The bytes of WebVTT [`load`] makes of the file (its [`Track::vtt`]).
    pub vtt_len: u64,
    /// The bytes read.
    pub bytes: u64,
}

/// Checks the track `reader` holds as a track of `kind`, as [`load`] does, holding a line at a
/// time (and, for SRT chapters, each chapter's timing line, to sort them) rather than the file.
pub fn check(reader: impl Read, kind: Kind) -> Result<Summary, ReadError> {
    let mut lines = Lines::new(reader)?;
    let format = detect(&mut lines)?;
    let (cues, vtt_len) = match format {
        Format::WebVtt => {
            let cues = webvtt::check(&mut lines, kind)?;
            let vtt_len = match lines.unicode() {
                Unicode::Utf8 => lines.bytes_read(),
                _ => lines.decoded_len(),
            };
            (cues, vtt_len)
        }
        Format::Srt => srt::convert(&mut lines, kind, None)?,
    };
    Ok(Summary { format, cues, vtt_len, bytes: lines.bytes_read() })
}

/// Checks `bytes` as a track of `kind` and returns what to send.
pub fn load(bytes: &[u8], kind: Kind) -> Result<Track, ParseError> {
    match read(bytes, kind, bytes.len() as u64) {
        Ok(track) => Ok(track),
        Err(ReadError::Parse(e)) => Err(e),
        // Bytes in memory read without fail; said as an error at the start all the same.
        Err(ReadError::Io(e)) => Err(Line { number: 1, text: "" }.error(0, e.to_string())),
    }
}

/// [`load`] for a file as it streams in from `reader`, holding what is sent and not the file
/// besides (`size` is the file's, if known, to make room at once): the WebVTT of a UTF-8 file
/// is its bytes, that of a UTF-16 or UTF-32 one the text it decodes to, and only an SRT file's
/// cues are held apart from what they make.
pub fn read(reader: impl Read, kind: Kind, size: u64) -> Result<Track, ReadError> {
    let mut lines = Lines::new(reader)?;
    lines.keep(size);
    match detect(&mut lines)? {
        Format::WebVtt => {
            let cues = webvtt::check(&mut lines, kind)?;
            let vtt = lines.kept().unwrap_or_default();
            Ok(Track { format: Format::WebVtt, vtt, cues })
        }
        Format::Srt => {
            lines.forget();
            let mut vtt = String::new();
            let (cues, _) = srt::convert(&mut lines, kind, Some(&mut vtt))?;
            Ok(Track { format: Format::Srt, vtt: vtt.into_bytes(), cues })
        }
    }
}

/// One line of the file, without its line ending.
#[derive(Debug, Clone, Copy)]
struct Line<'a> {
    /// 1-based.
    pub number: u64,
    pub text: &'a str,
}

impl<'a> Line<'a> {
    /// An error at byte `at` of this line.
    pub fn error(&self, at: usize, message: impl Into<String>) -> ParseError {
        let column = self.text[..at.min(self.text.len())].chars().count() as u64 + 1;
        ParseError { line: self.number, column, message: message.into(), text: cut(self.text) }
    }
}

/// `text` cut to [`MAX_TEXT_CHARS`] characters, with an ellipsis when it was longer.
fn cut(text: &str) -> String {
    match text.char_indices().nth(MAX_TEXT_CHARS) {
        None => text.to_owned(),
        Some((at, _)) => format!("{}…", &text[..at]),
    }
}

/// The format of the file `lines` reads: WebVTT when the first line is the signature, SRT when
/// the first line that holds anything is a cue number or a timing line. The lines read are
/// handed back for the format's reader.
fn detect<R: Read>(lines: &mut Lines<R>) -> Result<Format, ReadError> {
    // The first line, for an empty file's error; the first line before anything that SRT does
    // not take for blank (U+00A0, say), for its error.
    let (mut opening, mut odd): (Option<OwnedLine>, Option<OwnedLine>) = (None, None);
    let first = loop {
        let Some(line) = lines.next()? else {
            let line = opening.unwrap_or(OwnedLine { number: 1, text: String::new() });
            return Err(line.view().error(0, "the file is empty (no cues)").into());
        };
        if !line.text.trim().is_empty() {
            break line;
        }
        if odd.is_none() && !srt::is_blank(&line.text) {
            odd = Some(line.clone());
        }
        opening.get_or_insert(line);
    };
    if first.number == 1 && webvtt::is_signature(&first.text) {
        lines.unread(first);
        return Ok(Format::WebVtt);
    }
    if srt::is_number(&first.text) || first.text.contains("-->") {
        // What SRT reads first: the odd line, which it refuses, else the first cue.
        if let Some(odd) = odd {
            lines.unread(odd);
        }
        lines.unread(first);
        return Ok(Format::Srt);
    }
    let first = first.view();
    let signature = "missing the `WEBVTT` signature on the first line";
    if first.number == 1 && first.text.starts_with("WEBVTT") {
        let message =
            format!("{signature} (`WEBVTT` is followed by a space, a tab or the line's end)");
        return Err(first.error(6, message).into());
    }
    let message =
        format!("{signature} (and the file is not SRT either: no cue number or timing line first)");
    Err(first.error(0, message).into())
}
