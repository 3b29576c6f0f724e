//! A track's lines as they stream in, decoded: UTF-8 (with or without a byte order mark), or
//! UTF-16 or UTF-32 when a byte order mark says so. Without a mark the bytes must be UTF-8:
//! nothing else can be told apart from them for sure.
//!
//! One line is held at a time (issue #25, point 13: checking whole files on 32 threads held
//! gigabytes), so a file of any length is read in the memory of its longest line. Lines end at
//! CRLF, LF or a lone CR; there is no line after a final line ending. What does not decode is
//! an error on the line it is on, as far as that line decoded.

use std::collections::VecDeque;
use std::io::{self, Read};

use super::{cut, Line, ReadError};

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
pub(super) enum Unicode {
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

    fn big_endian(self) -> bool {
        matches!(self, Unicode::Utf16 { big_endian: true } | Unicode::Utf32 { big_endian: true })
    }
}

/// One line of the file, owned, without its line ending.
#[derive(Debug, Clone)]
pub(super) struct OwnedLine {
    /// 1-based.
    pub number: u64,
    pub text: String,
}

impl OwnedLine {
    /// The line as the checks read it.
    pub fn view(&self) -> Line<'_> {
        Line { number: self.number, text: &self.text }
    }
}

/// How much of the file is read at a time.
const BUFFER: usize = 64 * 1024;

/// The lines of a file, decoded, one at a time.
pub(super) struct Lines<R> {
    reader: R,
    /// What was read and not yet used: `buf[start..end]`.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// The reader said the file ends.
    eof: bool,
    unicode: Unicode,
    /// The byte order mark's length.
    mark: u64,
    /// Bytes of the file used past the mark.
    offset: u64,
    /// The next line's number.
    number: u64,
    /// Lines handed back ([`Lines::unread`]), read again first.
    unread: VecDeque<OwnedLine>,
    /// The previous line ended with a CR: a LF first is part of that ending.
    after_cr: bool,
    /// The file as WebVTT in UTF-8, when asked to keep it ([`Lines::keep`]).
    kept: Option<Vec<u8>>,
    /// Bytes of UTF-8 the decoded text takes, line endings included, the mark not.
    decoded: u64,
    /// Lines given back once read ([`Lines::recycle`]), whose room the next lines take: a
    /// file's lines in many threads at once, each allocated anew, kept the allocator's locks
    /// busy (the check of 128 files took twice as long).
    spare: Vec<String>,
}

/// The most room made at once for the file kept ([`Lines::keep`]): what a track sent may be,
/// twice (more is refused, but is read first to say what it holds).
const MAX_ROOM: u64 = 32 * 1024 * 1024;

/// The most lines kept for their room ([`Lines::recycle`]).
const SPARE: usize = 8;

impl<R: Read> Lines<R> {
    /// Reads the byte order mark, if any, from `reader`.
    pub fn new(reader: R) -> io::Result<Self> {
        let mut lines = Lines {
            reader,
            buf: vec![0; BUFFER],
            start: 0,
            end: 0,
            eof: false,
            unicode: Unicode::Utf8,
            mark: 0,
            offset: 0,
            number: 1,
            unread: VecDeque::new(),
            after_cr: false,
            kept: None,
            decoded: 0,
            spare: Vec::new(),
        };
        lines.fill(4)?;
        let head = &lines.buf[..lines.end];
        if let Some((mark, unicode)) = MARKS.iter().find(|(mark, _)| head.starts_with(mark)) {
            (lines.start, lines.mark, lines.unicode) = (mark.len(), mark.len() as u64, *unicode);
        }
        Ok(lines)
    }

    /// Keeps the file, from its start, as WebVTT in UTF-8 to send ([`Lines::kept`]): a UTF-8
    /// file byte for byte, its mark included; a UTF-16 or UTF-32 one decoded, its mark left out.
    /// `size` is the file's, if known, to make room for it at once. Call it before reading a
    /// line: the mark is still at the start of the buffer, and nothing else was used.
    pub fn keep(&mut self, size: u64) {
        debug_assert_eq!(self.offset, 0, "keep() after reading");
        let room = match self.unicode {
            Unicode::Utf8 => size,
            _ => size / 2,
        };
        let mut kept = Vec::with_capacity(room.min(MAX_ROOM) as usize);
        if self.unicode == Unicode::Utf8 {
            kept.extend_from_slice(&self.buf[..self.mark as usize]);
        }
        self.kept = Some(kept);
    }

    /// Stops keeping the file.
    pub fn forget(&mut self) {
        self.kept = None;
    }

    /// The file kept, when asked to keep it.
    pub fn kept(&mut self) -> Option<Vec<u8>> {
        self.kept.take()
    }

    pub fn unicode(&self) -> Unicode {
        self.unicode
    }

    /// The bytes of the file read so far, its mark included.
    pub fn bytes_read(&self) -> u64 {
        self.mark + self.offset
    }

    /// The bytes of UTF-8 the text read so far takes, line endings included.
    pub fn decoded_len(&self) -> u64 {
        self.decoded
    }

    /// Hands `line` back: the next [`Lines::next`] returns it (lines handed back come in the
    /// order they were handed back).
    pub fn unread(&mut self, line: OwnedLine) {
        self.unread.push_back(line);
    }

    /// Gives back a line read and no longer needed, so that a line read later takes its room.
    pub fn recycle(&mut self, line: OwnedLine) {
        self.recycle_text(line.text);
    }

    /// Gives back text no longer needed, as [`Lines::recycle`] does a line.
    pub fn recycle_text(&mut self, mut text: String) {
        if self.spare.len() < SPARE {
            text.clear();
            self.spare.push(text);
        }
    }

    /// Room for text: some given back, else new.
    pub fn spare_text(&mut self) -> String {
        self.spare.pop().unwrap_or_default()
    }

    /// The next line, `None` past the last.
    pub fn next(&mut self) -> Result<Option<OwnedLine>, ReadError> {
        if let Some(line) = self.unread.pop_front() {
            return Ok(Some(line));
        }
        let line = match self.unicode {
            Unicode::Utf8 => self.next_utf8()?,
            _ => self.next_wide()?,
        };
        if line.is_some() {
            self.number += 1;
        }
        Ok(line)
    }

    /// Reads until at least `want` bytes (at most [`BUFFER`]) are there to use, or the file
    /// ends.
    fn fill(&mut self, want: usize) -> io::Result<()> {
        while self.end - self.start < want && !self.eof {
            if self.end == self.buf.len() {
                self.buf.copy_within(self.start..self.end, 0);
                (self.start, self.end) = (0, self.end - self.start);
            }
            match self.reader.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn consume(&mut self, n: usize) {
        if let (Unicode::Utf8, Some(kept)) = (self.unicode, &mut self.kept) {
            kept.extend_from_slice(&self.buf[self.start..self.start + n]);
        }
        self.start += n;
        self.offset += n as u64;
    }

    /// The next line of a UTF-8 file.
    fn next_utf8(&mut self) -> Result<Option<OwnedLine>, ReadError> {
        if std::mem::take(&mut self.after_cr) {
            self.fill(1)?;
            if self.buf[self.start..self.end].first() == Some(&b'\n') {
                self.consume(1);
            }
        }
        let start = self.offset;
        let mut raw = self.spare_text().into_bytes();
        loop {
            self.fill(1)?;
            let buf = &self.buf[self.start..self.end];
            if buf.is_empty() {
                if raw.is_empty() {
                    return Ok(None);
                }
                break;
            }
            match buf.iter().position(|b| *b == b'\n' || *b == b'\r') {
                Some(end) => {
                    raw.extend_from_slice(&buf[..end]);
                    self.after_cr = buf[end] == b'\r';
                    self.consume(end + 1);
                    break;
                }
                None => {
                    let len = buf.len();
                    raw.extend_from_slice(buf);
                    self.consume(len);
                }
            }
        }
        match String::from_utf8(raw) {
            Ok(text) => Ok(Some(OwnedLine { number: self.number, text })),
            Err(e) => {
                let valid = e.utf8_error().valid_up_to();
                let raw = e.into_bytes();
                let at = self.mark + start + valid as u64;
                let message = format!(
                    "the file is not UTF-8 (byte 0x{:02X} at offset {at}); save it as UTF-8",
                    raw[valid]
                );
                let good = String::from_utf8_lossy(&raw[..valid]);
                let mut error = Line { number: self.number, text: &good }.error(valid, message);
                error.text = cut(&String::from_utf8_lossy(&raw));
                Err(error.into())
            }
        }
    }

    /// The next line of a UTF-16 or UTF-32 file.
    fn next_wide(&mut self) -> Result<Option<OwnedLine>, ReadError> {
        let mut text = self.spare_text();
        let mut first = true;
        loop {
            let Some(c) = self.next_char(&text)? else {
                return Ok((!first).then_some(OwnedLine { number: self.number, text }));
            };
            if first && std::mem::take(&mut self.after_cr) && c == '\n' {
                continue;
            }
            first = false;
            match c {
                '\n' => break,
                '\r' => {
                    self.after_cr = true;
                    break;
                }
                c => text.push(c),
            }
            self.plain_utf16(&mut text);
        }
        Ok(Some(OwnedLine { number: self.number, text }))
    }

    /// Decodes the UTF-16 code units in the buffer up to the next line ending, surrogate or
    /// the buffer's end, onto `text`: the common case, without [`Lines::next_char`]'s care.
    fn plain_utf16(&mut self, text: &mut String) {
        let Unicode::Utf16 { big_endian } = self.unicode else { return };
        let before = text.len();
        let mut used = 0;
        for unit in self.buf[self.start..self.end].chunks_exact(2) {
            let unit = match big_endian {
                true => u16::from_be_bytes([unit[0], unit[1]]),
                false => u16::from_le_bytes([unit[0], unit[1]]),
            };
            let Some(c) = char::from_u32(u32::from(unit)) else { break };
            if c == '\n' || c == '\r' {
                break;
            }
            text.push(c);
            used += 2;
        }
        self.consume(used);
        self.decoded += (text.len() - before) as u64;
        if let Some(kept) = &mut self.kept {
            kept.extend_from_slice(&text.as_bytes()[before..]);
        }
    }

    /// The next character of a UTF-16 or UTF-32 file, `None` at its end; `line` is the text of
    /// the line it is on, so far, for an error.
    fn next_char(&mut self, line: &str) -> Result<Option<char>, ReadError> {
        let width = self.unicode.unit();
        if self.end - self.start < 2 * width {
            self.fill(2 * width)?;
        }
        let there = &self.buf[self.start..self.end];
        if there.is_empty() {
            return Ok(None);
        }
        if there.len() < width {
            return Err(self.undecodable(line, there.len()));
        }
        let unit = self.unit(&there[..width]);
        let (c, used) = match (self.unicode, unit) {
            (Unicode::Utf16 { .. }, 0xD800..=0xDBFF) => {
                match there.get(width..2 * width).map(|low| self.unit(low)) {
                    Some(low @ 0xDC00..=0xDFFF) => (
                        char::from_u32(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)),
                        2 * width,
                    ),
                    _ => (None, width),
                }
            }
            (Unicode::Utf16 { .. }, 0xDC00..=0xDFFF) => (None, width),
            (_, unit) => (char::from_u32(unit), width),
        };
        let Some(c) = c else { return Err(self.undecodable(line, width)) };
        self.consume(used);
        self.decoded += c.len_utf8() as u64;
        if let Some(kept) = &mut self.kept {
            kept.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
        }
        Ok(Some(c))
    }

    /// The code unit `bytes` (as long as one) hold.
    fn unit(&self, bytes: &[u8]) -> u32 {
        let value = |value: u32, b: &u8| value << 8 | u32::from(*b);
        match self.unicode.big_endian() {
            true => bytes.iter().fold(0, value),
            false => bytes.iter().rev().fold(0, value),
        }
    }

    /// The error for the `len` bytes of the code unit next in the buffer, on the line whose
    /// text decoded so far is `line`.
    fn undecodable(&self, line: &str, len: usize) -> ReadError {
        let bytes = &self.buf[self.start..self.start + len];
        let message = format!(
            "the file is not {} as its byte order mark says (bytes {} at offset {}); save it as \
             UTF-8",
            self.unicode.name(),
            bytes.iter().map(|b| format!("0x{b:02X}")).collect::<Vec<_>>().join(" "),
            self.mark + self.offset
        );
        Line { number: self.number, text: line }.error(line.len(), message).into()
    }
}
