//! Captions and chapters files (WebVTT, SRT), checked before anything is sent to api.video.
//!
//! api.video answers 200 to a malformed caption file and then never shows it, so avbatch reads
//! every track first. [`load`] takes a file's bytes, tells its format from its contents, checks
//! it (timestamps well formed, each cue ending after it starts, cues in order, cue settings
//! known, chapters titled and not overlapping) and returns the WebVTT to send: a WebVTT file
//! byte for byte, an SRT file converted. A file that does not pass gets a [`ParseError`] naming
//! the line and column of the failing token.
//!
//! WebVTT is read as the W3C WebVTT spec writes it: where a browser would drop or merge cues
//! silently, this module refuses the file. SRT has no spec; the common shape is read (a number,
//! a timing line with `,` or `.` before the milliseconds, optional `X1:…` coordinates, text).
//!
//! Pure: bytes in, result out, nothing else of the crate used. Written here rather than taken
//! from crates.io: `subparse`, `srtlib`, `srtparse`, `srt`, `subrip` (SRT only), `vtt`, `subtp`,
//! `aspasia` and `fasrt` were looked at; they read SRT only, skip bad blocks leniently, are
//! unmaintained, or report errors without a line and column, so none fit.

mod cue;
mod srt;
#[cfg(test)]
mod tests;
mod webvtt;

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
    /// The WebVTT bytes to send: a WebVTT file as it is (byte for byte, untouched), an SRT
    /// file converted.
    pub vtt: Vec<u8>,
    /// Number of cues.
    pub cues: usize,
}

/// Checks `bytes` as a track of `kind` and returns what to send.
pub fn load(bytes: &[u8], kind: Kind) -> Result<Track, ParseError> {
    let text = decode(bytes)?;
    let lines = split_lines(text);
    match detect(&lines)? {
        Format::WebVtt => {
            let cues = webvtt::check(&lines, kind)?;
            Ok(Track { format: Format::WebVtt, vtt: bytes.to_vec(), cues })
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

const BOM: &str = "\u{feff}";

/// The file as text, its byte order mark left out; or where its first byte that is not UTF-8 is.
fn decode(bytes: &[u8]) -> Result<&str, ParseError> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Ok(text.strip_prefix(BOM).unwrap_or(text)),
        Err(e) => {
            let good = std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default();
            let good = good.strip_prefix(BOM).unwrap_or(good);
            // The line the bad byte is on: the valid text's last, or a new one after it.
            let lines = split_lines(good);
            let last = match lines.last() {
                Some(line) if !good.ends_with(['\r', '\n']) => *line,
                Some(line) => Line { number: line.number + 1, text: "" },
                None => Line { number: 1, text: "" },
            };
            // The rest of the bad line, shown as well as it can be.
            let tail = &bytes[e.valid_up_to()..];
            let end = tail.iter().position(|b| *b == b'\n' || *b == b'\r').unwrap_or(tail.len());
            let shown = format!("{}{}", last.text, String::from_utf8_lossy(&tail[..end]));
            let mut error = last.error(last.text.len(), "the file is not UTF-8");
            error.message = format!(
                "the file is not UTF-8 (byte 0x{:02X} at offset {}); save it as UTF-8",
                bytes[e.valid_up_to()],
                e.valid_up_to()
            );
            error.text = cut(&shown);
            Err(error)
        }
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
    let trimmed = first.text.trim();
    if trimmed.bytes().all(|b| b.is_ascii_digit()) || trimmed.contains("-->") {
        return Ok(Format::Srt);
    }
    let signature = "missing the `WEBVTT` signature on the first line";
    if first.number == 1 && first.text.starts_with("WEBVTT") {
        let message =
            format!("{signature} (`WEBVTT` is followed by a space, a tab or the line's end)");
        return Err(first.error(6, message));
    }
    let message = format!("{signature} (and the file is not SRT either: no cue number)");
    Err(first.error(0, message))
}
