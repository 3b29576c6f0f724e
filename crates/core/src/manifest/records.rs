//! The manifest read one record at a time, in bounded memory: the `csv` crate parses, and a scan
//! of the same bytes as they stream past tells the line each record starts on and finds the
//! quotes the crate would read past ([`BadQuote`]). [`Schema`] turns records into [`Row`]s.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use csv::ByteRecord;

use super::schema::Schema;
use super::{LoadOptions, Problem, ProblemKind, Row};

const UTF8_BOM: &[u8] = b"\xef\xbb\xbf";

/// The manifest file, read by position: every pass over it (the check, the run, the report)
/// reads the file that was checked, even if another is renamed over its path meanwhile.
#[derive(Debug, Clone)]
pub(crate) struct Source {
    file: Arc<File>,
    /// Its length when it was opened: a pass that finds another knows the file was rewritten.
    pub(crate) len: u64,
}

impl Source {
    pub(crate) fn open(path: &Path) -> io::Result<Source> {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        Ok(Source { file: Arc::new(file), len })
    }

    /// Whether the file still has the length it had when opened.
    pub(crate) fn unchanged(&self) -> io::Result<bool> {
        Ok(self.file.metadata()?.len() == self.len)
    }

    fn reader(&self) -> At {
        At { file: self.file.clone(), pos: 0 }
    }
}

/// A reader of a shared file with its own position.
struct At {
    file: Arc<File>,
    pos: u64,
}

impl Read for At {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        #[cfg(unix)]
        let n = std::os::unix::fs::FileExt::read_at(&*self.file, buf, self.pos)?;
        #[cfg(windows)]
        let n = std::os::windows::fs::FileExt::seek_read(&*self.file, buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// A quote the csv crate would read past: one that opens a field and is never closed, or one
/// that closes a field with more of the field after it (`"a"b`). Either way the rows around it
/// are not what the user wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BadQuote {
    /// The line where the record holding the quote starts.
    pub(crate) record_line: u64,
    /// The field (0-based) the quote opens.
    field: usize,
    /// The opening quote's line and character.
    open: (u64, usize),
    /// The closing quote's line and character, when there is one; else the manifest's last line.
    close: Result<(u64, usize), u64>,
}

impl BadQuote {
    /// The problem to report, on the quote's own line; `names` are the header's column names
    /// (empty when the quote is in the header).
    pub(crate) fn problem(&self, names: &[String]) -> Problem {
        let (line, character) = self.open;
        let mut message = match names.get(self.field) {
            Some(_) => String::new(),
            None if names.is_empty() => format!("in the header, field {}: ", self.field + 1),
            None => format!("in field {} (the header has {}): ", self.field + 1, names.len()),
        };
        match self.close {
            Err(last) => {
                message.push_str(&format!(
                    "unbalanced quote: the quote at character {character} opens a field that is \
                     never closed, so the field would take in the rest of the manifest (through \
                     line {last}); close it, or double a quote meant as text (`\"\"`)"
                ));
            }
            Ok((close_line, close_character)) => {
                let closes = if close_line == line {
                    format!("character {close_character}")
                } else {
                    format!("line {close_line}, character {close_character}")
                };
                message.push_str(&format!(
                    "unbalanced quote: the quote at character {character} opens a field that the \
                     quote at {closes} closes, but the field goes on after it; a quote inside a \
                     quoted field is doubled (`\"\"`)"
                ));
            }
        }
        Problem::new(
            line,
            names.get(self.field).map(String::as_str),
            ProblemKind::UnbalancedQuote,
            message,
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    StartRecord,
    StartField,
    InField,
    Quoted,
    QuotedQuote,
}

/// Reads the manifest for the csv crate while watching every byte go by, so what needs the raw
/// text is known without holding it:
///
/// - **Lines.** csv's own `Position::line()` is taken before skipped blank lines and, with CRLF
///   line ends, before the previous record's `\n`, so it can be a line or more early. The line a
///   record starts on is the number of newlines before its first byte that is not `\r` or `\n`.
///   Every run of line ends between fields is noted (where it starts, how many newlines it
///   holds), and so is each quoted field that holds newlines (at its opening quote, where no
///   record can start). A record read from byte `from` starts after every noted place at or
///   before `from`; places are forgotten once passed, so only what csv has read ahead is kept.
/// - **Quotes.** The csv crate reads an unbalanced quote leniently (to the end of the file, or on
///   to the next quote) and says nothing. The scan follows its reading of quotes (RFC 4180 with
///   its leniencies: a quote opens a field only as its first byte, `""` inside a quoted field is
///   one quote, a record ends at `\r`, `\n` or `\r\n`, blank lines are skipped) only far enough
///   to tell where quotes open and close, and notes each [`BadQuote`].
struct Scan<R> {
    inner: R,
    /// Bytes read so far.
    offset: u64,
    /// Noted places: (offset, newlines there), in file order.
    places: VecDeque<(u64, u64)>,
    /// Newlines at places already passed.
    passed: u64,
    /// Whether the last byte was a line end between fields, so the next one extends its run.
    in_run: bool,
    /// Whether that open run was already passed (its further newlines count at once).
    run_passed: bool,
    state: State,
    /// The line of the byte being read, 1-based.
    line: u64,
    /// Characters before the byte being read, on its line.
    column: usize,
    /// UTF-8 continuation bytes still expected, to count characters rather than bytes.
    expect: u8,
    record_line: u64,
    field: usize,
    /// Offset, line and character of the quote that opened the current quoted field.
    open: (u64, u64, usize),
    /// Line and character of the last quote seen inside it.
    quote: (u64, usize),
    found: VecDeque<BadQuote>,
    newlines: u64,
    last: Option<u8>,
    eof: bool,
}

impl<R: Read> Scan<R> {
    fn new(inner: R) -> Self {
        Scan {
            inner,
            offset: 0,
            places: VecDeque::new(),
            passed: 0,
            in_run: false,
            run_passed: false,
            state: State::StartRecord,
            line: 1,
            column: 0,
            expect: 0,
            record_line: 1,
            field: 0,
            open: (0, 0, 0),
            quote: (0, 0),
            found: VecDeque::new(),
            newlines: 0,
            last: None,
            eof: false,
        }
    }

    /// The line where the record that csv began reading at byte `from` starts.
    fn line_of(&mut self, from: u64) -> u64 {
        // A leading byte order mark is no part of the first record.
        let from = from.max(UTF8_BOM.len() as u64);
        while let Some(&(at, newlines)) = self.places.front() {
            if at > from {
                break;
            }
            self.passed += newlines;
            self.places.pop_front();
            if self.places.is_empty() && self.in_run {
                self.run_passed = true;
            }
        }
        self.passed + 1
    }

    fn note_run_newline(&mut self, at: u64, newline: bool) {
        let n = u64::from(newline);
        if self.in_run {
            if self.run_passed {
                self.passed += n;
            } else if let Some(back) = self.places.back_mut() {
                back.1 += n;
            }
        } else {
            self.places.push_back((at, n));
            (self.in_run, self.run_passed) = (true, false);
        }
    }

    fn byte(&mut self, at: u64, byte: u8) {
        let character = self.column + 1;
        if self.state == State::StartRecord && !matches!(byte, b'\r' | b'\n') {
            (self.state, self.record_line, self.field) = (State::StartField, self.line, 0);
        }
        let quoted = self.state == State::Quoted;
        self.state = match (self.state, byte) {
            (State::StartRecord, _) => State::StartRecord,
            (State::StartField, b'"') => {
                self.open = (at, self.line, character);
                State::Quoted
            }
            (State::Quoted, b'"') => {
                self.quote = (self.line, character);
                State::QuotedQuote
            }
            (State::Quoted, _) => State::Quoted,
            (State::QuotedQuote, b'"') => State::Quoted,
            (State::StartField | State::InField | State::QuotedQuote, b',') => {
                self.field += 1;
                State::StartField
            }
            (State::StartField | State::InField | State::QuotedQuote, b'\r' | b'\n') => {
                State::StartRecord
            }
            (State::QuotedQuote, _) => {
                let (_, line, character) = self.open;
                self.found.push_back(BadQuote {
                    record_line: self.record_line,
                    field: self.field,
                    open: (line, character),
                    close: Ok(self.quote),
                });
                State::InField
            }
            (State::StartField | State::InField, _) => State::InField,
        };
        if quoted {
            self.in_run = false;
            if byte == b'\n' {
                // Inside a quoted field no record starts: its newlines count from its quote on.
                let open = self.open.0;
                match self.places.back_mut() {
                    Some(back) if back.0 == open => back.1 += 1,
                    _ => self.places.push_back((open, 1)),
                }
            }
        } else if matches!(byte, b'\r' | b'\n') {
            self.note_run_newline(at, byte == b'\n');
        } else {
            self.in_run = false;
        }
        if byte == b'\n' {
            (self.line, self.column, self.expect) = (self.line + 1, 0, 0);
            self.newlines += 1;
        } else if self.expect > 0 && byte & 0xc0 == 0x80 {
            self.expect -= 1;
        } else {
            self.column += 1;
            self.expect = match byte {
                0xc2..=0xdf => 1,
                0xe0..=0xef => 2,
                0xf0..=0xf4 => 3,
                _ => 0,
            };
        }
        self.last = Some(byte);
    }

    fn end(&mut self) {
        if self.eof {
            return;
        }
        self.eof = true;
        if self.state == State::Quoted {
            let (_, line, character) = self.open;
            let last = self.newlines + u64::from(self.last.is_some_and(|b| b != b'\n'));
            self.found.push_back(BadQuote {
                record_line: self.record_line,
                field: self.field,
                open: (line, character),
                close: Err(last),
            });
        }
    }
}

impl<R: Read> Read for Scan<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut n = self.inner.read(buf)?;
        if self.offset == 0 && n > 0 {
            // The byte order mark is told from the first three bytes, whatever the first read gave.
            let want = UTF8_BOM.len().min(buf.len());
            while n < want {
                match self.inner.read(&mut buf[n..want])? {
                    0 => break,
                    more => n += more,
                }
            }
        }
        let skip =
            if self.offset == 0 && buf[..n].starts_with(UTF8_BOM) { UTF8_BOM.len() } else { 0 };
        for (i, &byte) in buf[..n].iter().enumerate().skip(skip) {
            self.byte(self.offset + i as u64, byte);
        }
        self.offset += n as u64;
        if n == 0 && !buf.is_empty() {
            self.end();
        }
        Ok(n)
    }
}

/// The manifest's records, one at a time, each with the line it starts on; records that a bad
/// quote spoils are left out (their fields are an accident of where the next quote happens to
/// be) and the quote is handed over instead.
pub(crate) struct Records {
    csv: csv::Reader<Scan<At>>,
    record: ByteRecord,
    /// Lines of records known to be spoiled, not yet reached.
    spoiled: VecDeque<u64>,
}

/// What [`Records::next`] found.
pub(crate) enum Next<'a> {
    /// A record and the line it starts on.
    Record(u64, &'a ByteRecord),
    /// The end of the manifest.
    End,
}

impl Records {
    pub(crate) fn new(source: &Source) -> Records {
        let csv = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .buffer_capacity(1 << 16)
            .from_reader(Scan::new(source.reader()));
        Records { csv, record: ByteRecord::new(), spoiled: VecDeque::new() }
    }

    /// The next record, with the line it starts on; records a bad quote spoils are skipped
    /// when `skip_spoiled`. Every bad quote found on the way goes to `quotes`, in file order.
    pub(crate) fn next(
        &mut self,
        quotes: &mut Vec<BadQuote>,
        skip_spoiled: bool,
    ) -> io::Result<Next<'_>> {
        loop {
            let more = self.csv.read_byte_record(&mut self.record).map_err(csv_to_io)?;
            for quote in self.csv.get_mut().found.drain(..) {
                self.spoiled.push_back(quote.record_line);
                quotes.push(quote);
            }
            if !more {
                return Ok(Next::End);
            }
            let from = self.record.position().map_or(0, |p| p.byte());
            let line = self.csv.get_mut().line_of(from);
            while self.spoiled.front().is_some_and(|&l| l < line) {
                self.spoiled.pop_front();
            }
            if skip_spoiled && self.spoiled.front() == Some(&line) {
                continue;
            }
            return Ok(Next::Record(line, &self.record));
        }
    }

    /// Whether a bad quote found so far spoils the record starting on `line`.
    fn spoils(&self, line: u64) -> bool {
        self.spoiled.contains(&line)
    }

    /// Reads the rest of the manifest for its bad quotes alone.
    fn drain(&mut self, quotes: &mut Vec<BadQuote>) -> io::Result<()> {
        while let Next::Record(..) = self.next(quotes, true)? {}
        Ok(())
    }
}

fn csv_to_io(error: csv::Error) -> io::Error {
    match error.into_kind() {
        csv::ErrorKind::Io(error) => error,
        other => io::Error::other(format!("{other:?}")),
    }
}

/// Where the header is, and what it says.
pub(crate) struct Header {
    schema: Schema,
}

/// Reads the header: `Ok(None)` when there is no usable header (none at all, or one a bad
/// quote spoils, in which case the whole manifest is read for its quotes). Problems with the
/// header go to `problems`, bad quotes found on the way to `quotes`.
pub(crate) fn read_header(
    records: &mut Records,
    options: &LoadOptions,
    problems: &mut Vec<Problem>,
    quotes: &mut Vec<Problem>,
) -> io::Result<Option<Header>> {
    let mut found = Vec::new();
    let (line, record) = match records.next(&mut found, false)? {
        Next::Record(line, record) => (line, record.clone()),
        Next::End => {
            let message = "missing the header row (a `path` column is required)".into();
            problems.push(Problem::new(1, None, ProblemKind::MissingPathColumn, message));
            return Ok(None);
        }
    };
    if records.spoils(line) {
        records.drain(&mut found)?;
        quotes.extend(found.iter().map(|q| q.problem(&[])));
        return Ok(None);
    }
    let schema = Schema::parse(&record, line, options, problems);
    quotes.extend(found.iter().map(|q| q.problem(&schema.names)));
    Ok(Some(Header { schema }))
}

/// The manifest's rows as written, parsed but without looking at their files.
pub(crate) struct RowReader {
    records: Records,
    schema: Schema,
    dir: PathBuf,
    quotes: Vec<BadQuote>,
}

impl RowReader {
    pub(crate) fn new(records: Records, header: Header, dir: &Path) -> RowReader {
        RowReader { records, schema: header.schema, dir: dir.to_owned(), quotes: Vec::new() }
    }

    /// The next row. Problems with its cells go to `cells`, bad quotes found on the way to
    /// `quotes`; records whose field count differs from the header's are reported and skipped.
    pub(crate) fn next(
        &mut self,
        cells: &mut Vec<Problem>,
        quotes: &mut Vec<Problem>,
    ) -> io::Result<Option<Row>> {
        loop {
            let next = self.records.next(&mut self.quotes, true)?;
            quotes.extend(self.quotes.drain(..).map(|q| q.problem(&self.schema.names)));
            match next {
                Next::End => return Ok(None),
                Next::Record(line, record) => {
                    if let Some(row) = self.schema.row(record, line, &self.dir, cells) {
                        return Ok(Some(row));
                    }
                }
            }
        }
    }
}
