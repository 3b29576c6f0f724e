//! Captions and chapters files (WebVTT, SRT), checked before anything is sent to api.video.
//!
//! api.video answers 200 to a malformed caption file and then never shows it, so avbatch reads
//! every track first. [`load`] takes a file's bytes, tells its format from its contents, checks
//! it (timestamps well formed, each cue ending after it starts, cues in order, cue settings and
//! regions known and well formed, chapters titled and not overlapping) and returns the WebVTT to
//! send: a UTF-8 WebVTT file byte for byte, an SRT file converted. A file that does not pass
//! gets a [`ParseError`] naming the line and column of the failing token.
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
//! Pure: bytes in, result out, nothing else of the crate used. Written here rather than taken
//! from crates.io: `subparse`, `srtlib`, `srtparse`, `srt`, `subrip` (SRT only), `vtt`, `subtp`,
//! `aspasia` and `fasrt` were looked at; they read SRT only, skip bad blocks leniently, are
//! unmaintained, or report errors without a line and column, so none fit. The files of public
//! conformance suites in `tests/fixtures/captions-conformance` (its `SOURCES.md` says which)
//! load or are refused as its `expected.tsv` says.

mod cue;
mod encoding;
mod region;
mod srt;
#[cfg(test)]
mod tests;
mod webvtt;

use std::borrow::Cow;
use std::fmt;

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

/// Checks `bytes` as a track of `kind` and returns what to send.
pub fn load(bytes: &[u8], kind: Kind) -> Result<Track, ParseError> {
    let text = encoding::decode(bytes)?;
    let lines = split_lines(&text);
    match detect(&lines)? {
        Format::WebVtt => {
            let cues = webvtt::check(&lines, kind)?;
            let vtt = match text {
                Cow::Borrowed(_) => bytes.to_vec(),
                Cow::Owned(text) => text.into_bytes(),
            };
            Ok(Track { format: Format::WebVtt, vtt, cues })
        }
        Format::Srt => {
            let (vtt, cues) = srt::convert_lines(&lines, kind)?;
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
    /// Whether the line holds nothing at all.
    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

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

/// `text`'s lines, ended by CRLF, LF or a lone CR; no line after a final line ending.
fn split_lines(text: &str) -> Vec<Line<'_>> {
    let mut lines = Vec::new();
    let mut rest = text;
    let mut number = 1;
    while !rest.is_empty() {
        let end = rest.find(['\r', '\n']).unwrap_or(rest.len());
        lines.push(Line { number, text: &rest[..end] });
        number += 1;
        rest = &rest[end..];
        rest =
            rest.strip_prefix("\r\n").or_else(|| rest.strip_prefix(['\r', '\n'])).unwrap_or(rest);
    }
    lines
}

/// The format `lines` are in: WebVTT when the first line is the signature, SRT when the first
/// line that holds anything is a cue number or a timing line.
fn detect(lines: &[Line<'_>]) -> Result<Format, ParseError> {
    let Some(first) = lines.iter().find(|l| !l.text.trim().is_empty()) else {
        let line = lines.first().copied().unwrap_or(Line { number: 1, text: "" });
        return Err(line.error(0, "the file is empty (no cues)"));
    };
    if first.number == 1 && webvtt::is_signature(first.text) {
        return Ok(Format::WebVtt);
    }
    if srt::is_number(first.text) || first.text.contains("-->") {
        return Ok(Format::Srt);
    }
    let signature = "missing the `WEBVTT` signature on the first line";
    if first.number == 1 && first.text.starts_with("WEBVTT") {
        let message =
            format!("{signature} (`WEBVTT` is followed by a space, a tab or the line's end)");
        return Err(first.error(6, message));
    }
    let message =
        format!("{signature} (and the file is not SRT either: no cue number or timing line first)");
    Err(first.error(0, message))
}
