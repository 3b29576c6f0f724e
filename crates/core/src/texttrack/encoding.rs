//! A track's bytes as text: UTF-8 (with or without a byte order mark), or UTF-16 or UTF-32 when
//! a byte order mark says so. Without a mark the bytes must be UTF-8: nothing else can be told
//! apart from them for sure.

use std::borrow::Cow;

use super::{cut, split_lines, Line, ParseError};

/// The byte order marks read, longest first (UTF-32 LE starts like UTF-16 LE).
const MARKS: [(&[u8], Unicode); 5] = [
    (b"\xef\xbb\xbf", Unicode::Utf8),
    (b"\xff\xfe\x00\x00", Unicode::Utf32 { big_endian: false }),
    (b"\x00\x00\xfe\xff", Unicode::Utf32 { big_endian: true }),
    (b"\xff\xfe", Unicode::Utf16 { big_endian: false }),
    (b"\xfe\xff", Unicode::Utf16 { big_endian: true }),
];

/// An encoding of Unicode a file can be in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unicode {
    Utf8,
    Utf16 { big_endian: bool },
    Utf32 { big_endian: bool },
}

impl Unicode {
    fn name(self) -> &'static str {
        match self {
            Unicode::Utf8 => "UTF-8",
            Unicode::Utf16 { .. } => "UTF-16",
            Unicode::Utf32 { .. } => "UTF-32",
        }
    }

    /// Bytes per code unit.
    fn unit(self) -> usize {
        match self {
            Unicode::Utf8 => 1,
            Unicode::Utf16 { .. } => 2,
            Unicode::Utf32 { .. } => 4,
        }
    }
}

/// The file as text, its byte order mark left out: borrowed when the file is UTF-8, decoded
/// when a mark says UTF-16 or UTF-32. Or where the first thing that does not decode is.
pub(super) fn decode(bytes: &[u8]) -> Result<Cow<'_, str>, ParseError> {
    let (body, unicode) = MARKS
        .iter()
        .find_map(|(mark, unicode)| bytes.strip_prefix(*mark).map(|body| (body, *unicode)))
        .unwrap_or((bytes, Unicode::Utf8));
    let mark = bytes.len() - body.len();
    match unicode {
        Unicode::Utf8 => match std::str::from_utf8(body) {
            Ok(text) => Ok(Cow::Borrowed(text)),
            Err(e) => {
                let good = std::str::from_utf8(&body[..e.valid_up_to()]).unwrap_or_default();
                let at = mark + e.valid_up_to();
                let message = format!(
                    "the file is not UTF-8 (byte 0x{:02X} at offset {at}); save it as UTF-8",
                    bytes[at]
                );
                Err(error_after(good, &body[e.valid_up_to()..], message))
            }
        },
        wide => decode_wide(body, wide).map(Cow::Owned).map_err(|(good, bad_at)| {
            let at = mark + bad_at;
            let end = bytes.len().min(at + wide.unit());
            let message = format!(
                "the file is not {} as its byte order mark says (bytes {} at offset {at}); \
                 save it as UTF-8",
                wide.name(),
                bytes[at..end].iter().map(|b| format!("0x{b:02X}")).collect::<Vec<_>>().join(" ")
            );
            error_after(&good, b"", message)
        }),
    }
}

/// `body` decoded as UTF-16 or UTF-32; or the text before the first code unit that does not
/// decode, and that unit's offset in `body`.
fn decode_wide(body: &[u8], unicode: Unicode) -> Result<String, (String, usize)> {
    let width = unicode.unit();
    let big_endian = matches!(
        unicode,
        Unicode::Utf16 { big_endian: true } | Unicode::Utf32 { big_endian: true }
    );
    let units = body.chunks(width).map(|chunk| {
        let value = |value: u32, b: &u8| value << 8 | u32::from(*b);
        match (chunk.len() == width, big_endian) {
            (false, _) => None,
            (true, true) => Some(chunk.iter().fold(0, value)),
            (true, false) => Some(chunk.iter().rev().fold(0, value)),
        }
    });
    let mut text = String::with_capacity(body.len() / width);
    let mut pending_high: Option<(u32, usize)> = None;
    for (n, unit) in units.enumerate() {
        let at = n * width;
        let Some(unit) = unit else {
            return Err((text, pending_high.map_or(at, |(_, at)| at)));
        };
        if width == 4 {
            text.push(char::from_u32(unit).ok_or_else(|| (text.clone(), at))?);
            continue;
        }
        match (pending_high.take(), unit) {
            (None, 0xD800..=0xDBFF) => pending_high = Some((unit, at)),
            (Some((high, _)), 0xDC00..=0xDFFF) => {
                let scalar = 0x10000 + ((high - 0xD800) << 10) + (unit - 0xDC00);
                text.push(char::from_u32(scalar).ok_or_else(|| (text.clone(), at))?);
            }
            (Some((_, high_at)), _) => return Err((text, high_at)),
            (None, 0xDC00..=0xDFFF) => return Err((text, at)),
            (None, _) => text.push(char::from_u32(unit).ok_or_else(|| (text.clone(), at))?),
        }
    }
    match pending_high {
        Some((_, at)) => Err((text, at)),
        None => Ok(text),
    }
}

/// An error at the end of `good` (the text before the failing bytes), showing the rest of the
/// failing line from `bad` (the bytes from the failing one on) as well as it can be.
fn error_after(good: &str, bad: &[u8], message: String) -> ParseError {
    // The line the bad byte is on: the valid text's last, or a new one after it.
    let lines = split_lines(good);
    let last = match lines.last() {
        Some(line) if !good.ends_with(['\r', '\n']) => *line,
        Some(line) => Line { number: line.number + 1, text: "" },
        None => Line { number: 1, text: "" },
    };
    let end = bad.iter().position(|b| *b == b'\n' || *b == b'\r').unwrap_or(bad.len());
    let shown = format!("{}{}", last.text, String::from_utf8_lossy(&bad[..end]));
    let mut error = last.error(last.text.len(), message);
    error.text = cut(&shown);
    error
}
