//! The up-front check of a manifest, in memory that does not grow with its rows.
//!
//! Rows are parsed one at a time and their files checked in parallel (rayon) a batch at a time.
//! Per row, only three things outlive its batch:
//!
//! - a 128-bit digest of its idempotency key (its `id`, or its path when it has none) with its
//!   line, for the duplicate checks. These are sorted externally ([`Sorter`]): equal digests end
//!   up side by side, the earliest line first. Two rows are called duplicates on equal digests
//!   alone: the digest is two SipHash-1-3 values under independent random keys, so for n rows
//!   the odds of any false duplicate are about n²/2¹²⁹ (10⁻²⁴ for 50 million rows), and a run
//!   that ever hit one would be refused, not mis-sent; the next run draws other keys.
//! - its file's size and modification time, on a [`Tape`] in row order, so the run and the
//!   report read the rows again with the file identity the check saw (a file that changes in
//!   between is caught by the engine, which compares them).
//! - its problems, of which only the first [`PROBLEMS_KEPT`] by line are kept, and a count.
//!   When rows with problems of their own are left out of the run ([`check_skipping`]), all of
//!   theirs are kept, spilled to disk past a bound ([`LeftOut`]), so each row is reported with
//!   every one of its problems.

use std::collections::hash_map::RandomState;
use std::collections::{BinaryHeap, HashMap};
use std::hash::BuildHasher;
use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rayon::prelude::*;

use super::left_out::{ByLine, Collector, LeftOut};
use super::records::{read_header, Records, RowReader, Source};
use super::{
    check_file, check_threads, LoadOptions, ManifestError, Problem, ProblemKind, Row, RowAction,
};
use crate::excerpt::quoted;
use crate::remote::Stores;
use crate::spill::{read_exact_or_end, Record, Recorded, Sorter, Tape, TapeReader};

/// Most problems kept (and shown); the others are counted.
pub const PROBLEMS_KEPT: usize = 200;

/// Rows parsed, then checked in parallel, at a time.
const BATCH: usize = 4096;

/// Key digests sorted in memory before a run of them goes to disk (24 bytes each).
const DIGESTS_IN_MEMORY: usize = 1 << 20;

/// Where a problem comes in the order of a line's problems: as the whole-manifest check that
/// held every row reported them (header, quotes, cells, duplicates, files).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    Header,
    Quote,
    Cell,
    Duplicate,
    File,
}

impl Phase {
    /// Whether a problem of `kind` found in this phase is the row's own, so the row alone can be
    /// left out for it. The header's problems and bad quotes are not: a quote changes which rows
    /// there are and what their cells hold. Nor is a record whose number of fields is not the
    /// header's: which cell is its `id` or its `path` is anyone's guess, so it cannot be named
    /// in the report or given to a shard, and a shifted cell may name another file
    /// ([`ProblemKind::puts_rows_in_doubt`]).
    fn of_a_row(self, kind: ProblemKind) -> bool {
        match self {
            Phase::Header | Phase::Quote => false,
            Phase::Cell | Phase::Duplicate | Phase::File => !kind.puts_rows_in_doubt(),
        }
    }
}

/// Where the check puts what it finds: every problem refuses the manifest, unless the rows with
/// problems of their own are left out (`left_out`), which then takes those.
struct Findings {
    refused: Problems,
    left_out: Option<Collector>,
}

impl Findings {
    fn add(&mut self, phase: Phase, problems: impl IntoIterator<Item = Problem>) {
        for problem in problems {
            match &mut self.left_out {
                Some(rows) if phase.of_a_row(problem.kind) => rows.add(phase as u8, problem),
                _ => self.refused.add(phase, Found::Problem(problem)),
            }
        }
    }
}

/// A problem whose message may still need the row's value (a duplicate, found at the end).
#[derive(Debug)]
enum Found {
    Problem(Problem),
    Duplicate { line: u64, first: u64, by_id: bool },
}

impl Found {
    fn line(&self) -> u64 {
        match self {
            Found::Problem(p) => p.line,
            Found::Duplicate { line, .. } => *line,
        }
    }
}

#[derive(Debug)]
struct Ranked {
    rank: (u64, Phase, u64),
    found: Found,
}

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.rank == other.rank
    }
}

impl Eq for Ranked {}

impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.rank.cmp(&other.rank)
    }
}

/// The first [`PROBLEMS_KEPT`] problems by line (then phase, then the order found), and how
/// many there are in all: the largest kept is dropped when a smaller one comes.
#[derive(Debug, Default)]
pub(crate) struct Problems {
    kept: BinaryHeap<Ranked>,
    total: usize,
    seq: u64,
}

impl Problems {
    fn add(&mut self, phase: Phase, found: Found) {
        self.total += 1;
        self.seq += 1;
        let ranked = Ranked { rank: (found.line(), phase, self.seq), found };
        if self.kept.len() < PROBLEMS_KEPT {
            self.kept.push(ranked);
        } else if self.kept.peek().is_some_and(|largest| ranked < *largest) {
            self.kept.pop();
            self.kept.push(ranked);
        }
    }

    fn extend(&mut self, phase: Phase, problems: impl IntoIterator<Item = Problem>) {
        for p in problems {
            self.add(phase, Found::Problem(p));
        }
    }

    pub(crate) fn total(&self) -> usize {
        self.total
    }

    /// The kept problems, sorted; duplicates get their messages from `describe`.
    fn into_sorted(
        self,
        describe: impl FnOnce(&[u64]) -> io::Result<HashMap<u64, String>>,
    ) -> io::Result<Vec<Problem>> {
        let kept = self.kept.into_sorted_vec();
        let lines: Vec<u64> = kept
            .iter()
            .filter_map(|r| matches!(r.found, Found::Duplicate { .. }).then_some(r.rank.0))
            .collect();
        let values = if lines.is_empty() { HashMap::new() } else { describe(&lines)? };
        Ok(kept
            .into_iter()
            .map(|r| match r.found {
                Found::Problem(p) => p,
                Found::Duplicate { line, first, by_id } => {
                    let value = values.get(&line).map_or_else(String::new, |v| quoted(v));
                    if by_id {
                        Problem::new(
                            line,
                            Some("id"),
                            ProblemKind::DuplicateId,
                            format!("duplicate id {value} (first used on line {first})"),
                        )
                    } else {
                        let message = format!(
                            "duplicate path {value} in a row without an `id` (first used on line \
                             {first}, column `path`): the two rows would be one video; give each \
                             row its own `id`"
                        );
                        Problem::new(line, Some("path"), ProblemKind::DuplicatePath, message)
                    }
                }
            })
            .collect())
    }

    /// The kept problems of a read without duplicate checks, sorted.
    pub(crate) fn sorted(self) -> Vec<Problem> {
        self.into_sorted(|_| Ok(HashMap::new())).unwrap_or_default()
    }

    pub(crate) fn quotes(&mut self, problems: impl IntoIterator<Item = Problem>) {
        self.extend(Phase::Quote, problems);
    }
}

/// A row's idempotency key as a digest, with its line (shifted left by one, the low bit set for
/// an `id` rather than a path).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Seen {
    digest: [u64; 2],
    line_kind: u64,
}

impl Record for Seen {
    fn write_to(&self, out: &mut impl Write) -> io::Result<()> {
        out.write_all(&self.digest[0].to_le_bytes())?;
        out.write_all(&self.digest[1].to_le_bytes())?;
        out.write_all(&self.line_kind.to_le_bytes())
    }

    fn read_from(input: &mut impl BufRead) -> io::Result<Option<Self>> {
        let mut buf = [0u8; 24];
        if !read_exact_or_end(input, &mut buf)? {
            return Ok(None);
        }
        let word =
            |i: usize| u64::from_le_bytes(buf[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
        Ok(Some(Seen { digest: [word(0), word(1)], line_kind: word(2) }))
    }
}

/// The two keyed hashes that make a 128-bit digest.
struct Digester(RandomState, RandomState);

impl Digester {
    fn new() -> Self {
        Digester(RandomState::new(), RandomState::new())
    }

    /// The row's key, if it has one to check (rows without a path were reported already).
    fn seen(&self, row: &Row) -> Option<Seen> {
        let (by_id, value) = match &row.id {
            Some(id) => (true, id.as_str()),
            None if row.path_text.is_empty() => return None,
            None => (false, row.path_text.as_str()),
        };
        let digest = [self.0.hash_one((by_id, value)), self.1.hash_one((by_id, value))];
        Some(Seen { digest, line_kind: row.line << 1 | u64::from(by_id) })
    }
}

/// What the check keeps of a row for the passes after it: where it is and its file's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Identity {
    line: u64,
    size: u64,
    /// Nanoseconds since the Unix epoch; `i64::MIN` when the platform gave no time.
    mtime: i64,
}

impl Identity {
    fn of(row: &Row) -> Identity {
        let mtime = row.mtime.map_or(i64::MIN, |t| match t.duration_since(UNIX_EPOCH) {
            Ok(after) => i64::try_from(after.as_nanos()).unwrap_or(i64::MAX),
            Err(before) => i64::try_from(before.duration().as_nanos()).map_or(i64::MIN + 1, |n| -n),
        });
        Identity { line: row.line, size: row.size, mtime }
    }

    fn mtime(&self) -> Option<SystemTime> {
        match self.mtime {
            i64::MIN => None,
            n if n >= 0 => Some(UNIX_EPOCH + Duration::from_nanos(n as u64)),
            n => UNIX_EPOCH.checked_sub(Duration::from_nanos(n.unsigned_abs())),
        }
    }
}

impl Record for Identity {
    fn write_to(&self, out: &mut impl Write) -> io::Result<()> {
        out.write_all(&self.line.to_le_bytes())?;
        out.write_all(&self.size.to_le_bytes())?;
        out.write_all(&self.mtime.to_le_bytes())
    }

    fn read_from(input: &mut impl BufRead) -> io::Result<Option<Self>> {
        let mut buf = [0u8; 24];
        if !read_exact_or_end(input, &mut buf)? {
            return Ok(None);
        }
        let word = |i: usize| buf[i * 8..i * 8 + 8].try_into().expect("8 bytes");
        Ok(Some(Identity {
            line: u64::from_le_bytes(word(0)),
            size: u64::from_le_bytes(word(1)),
            mtime: i64::from_le_bytes(word(2)),
        }))
    }
}

/// A manifest that passed the check: its counts, and what it takes to read its rows again.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The manifest file as given.
    pub path: PathBuf,
    source: Source,
    options: LoadOptions,
    identities: Recorded<Identity>,
    bytes: u64,
    left_out: LeftOut,
}

impl Checked {
    /// The number of rows.
    pub fn len(&self) -> u64 {
        self.identities.len()
    }

    /// Whether the manifest has no rows.
    pub fn is_empty(&self) -> bool {
        self.identities.is_empty()
    }

    /// The sum of all rows' file sizes.
    pub fn total_bytes(&self) -> u64 {
        self.bytes
    }

    /// The rows left out for problems of their own ([`check_skipping`]; none after [`check`]).
    pub fn left_out(&self) -> &LeftOut {
        &self.left_out
    }

    /// Reads the rows again, in order, each with its file's size and time as the check found
    /// them. Fails with [`ManifestError::Changed`] if the manifest is not the file checked.
    pub fn rows(&self) -> Result<CheckedRows, ManifestError> {
        let read_error = |source| ManifestError::Read { path: self.path.clone(), source };
        if !self.source.unchanged().map_err(read_error)? {
            return Err(ManifestError::Changed { path: self.path.clone() });
        }
        let mut records = Records::new(&self.source);
        let (mut ignored, mut quotes) = (Vec::new(), Vec::new());
        let Some(header) = read_header(&mut records, &self.options, &mut ignored, &mut quotes)
            .map_err(read_error)?
        else {
            return Err(ManifestError::Changed { path: self.path.clone() });
        };
        let dir = self.path.parent().unwrap_or(Path::new(""));
        let identities = self.identities.reader().map_err(read_error)?;
        let spill_error = |source| ManifestError::Spill { path: self.path.clone(), source };
        Ok(CheckedRows {
            path: self.path.clone(),
            rows: RowReader::new(records, header, dir),
            identities,
            left_out: self.left_out.by_line().map_err(spill_error)?,
            scratch: (Vec::new(), Vec::new()),
        })
    }
}

/// A row read again from a [`Checked`] manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowRead {
    /// A row the run takes.
    Valid(Row),
    /// A row left out of the run for problems of its own ([`check_skipping`]), with all of
    /// them, in the order a refused manifest lists them: never started, reported failed.
    Invalid(Row, Vec<Problem>),
}

impl RowRead {
    /// The row, valid or not.
    pub fn row(&self) -> &Row {
        match self {
            RowRead::Valid(row) | RowRead::Invalid(row, _) => row,
        }
    }

    /// The row, valid or not.
    pub fn into_row(self) -> Row {
        match self {
            RowRead::Valid(row) | RowRead::Invalid(row, _) => row,
        }
    }
}

/// The rows of a [`Checked`] manifest, read again one at a time.
pub struct CheckedRows {
    path: PathBuf,
    rows: RowReader,
    identities: TapeReader<Identity>,
    /// The problems of the rows left out, when some were.
    left_out: Option<ByLine>,
    scratch: (Vec<Problem>, Vec<Problem>),
}

impl Iterator for CheckedRows {
    type Item = Result<RowRead, ManifestError>;

    fn next(&mut self) -> Option<Self::Item> {
        let read_error = |source| ManifestError::Read { path: self.path.clone(), source };
        let row = match self.rows.next(&mut self.scratch.0, &mut self.scratch.1) {
            Ok(row) => row,
            Err(e) => return Some(Err(read_error(e))),
        };
        // The check found these rows sound: what the cells say again is not news.
        self.scratch.0.clear();
        self.scratch.1.clear();
        let identity = match self.identities.next().transpose() {
            Ok(identity) => identity,
            Err(e) => return Some(Err(read_error(e))),
        };
        match (row, identity) {
            (None, None) => None,
            (Some(mut row), Some(identity)) if identity.line == row.line => {
                row.size = identity.size;
                row.mtime = identity.mtime();
                let problems = match &mut self.left_out {
                    Some(by_line) => by_line.through(row.line),
                    None => Ok(Vec::new()),
                };
                Some(match problems {
                    Ok(problems) if problems.is_empty() => Ok(RowRead::Valid(row)),
                    Ok(problems) => Ok(RowRead::Invalid(row, problems)),
                    Err(source) => Err(ManifestError::Spill { path: self.path.clone(), source }),
                })
            }
            _ => Some(Err(ManifestError::Changed { path: self.path.clone() })),
        }
    }
}

/// Checks the manifest at `path`: every row parsed and its file checked, the keys compared,
/// before anything is sent. `visit` sees each row in order, with its file's size and time (on a
/// manifest with problems, what it saw is of no use: the check then fails).
pub fn check(
    path: &Path,
    options: &LoadOptions,
    visit: impl FnMut(&Row),
) -> Result<Checked, ManifestError> {
    check_with(path, options, None, visit)
}

/// Checks the manifest at `path` as [`check`] does, but leaves out of the run the rows with
/// problems of their own (a missing file, a caption that does not parse, a bad cell, a key two
/// rows share: every such row) instead of refusing the manifest: [`Checked::rows`] reads them
/// again as [`RowRead::Invalid`], with their problems. What puts the rows themselves in doubt
/// still refuses it: the header, an unbalanced quote, a record whose number of fields is not
/// the header's. `visit` sees every row, those left out too: which are is known once the check
/// returns ([`Checked::left_out`]; a duplicate key only at the end).
pub fn check_skipping(
    path: &Path,
    options: &LoadOptions,
    visit: impl FnMut(&Row),
) -> Result<Checked, ManifestError> {
    check_with(path, options, Some(Collector::new()), visit)
}

/// The check of [`check`], the rows with problems of their own left out when `left_out` takes
/// their problems.
fn check_with(
    path: &Path,
    options: &LoadOptions,
    left_out: Option<Collector>,
    mut visit: impl FnMut(&Row),
) -> Result<Checked, ManifestError> {
    let read_error = |source| ManifestError::Read { path: path.to_owned(), source };
    let spill_error = |source| ManifestError::Spill { path: path.to_owned(), source };
    let source = Source::open(path).map_err(read_error)?;
    let dir = path.parent().unwrap_or(Path::new(""));
    let mut problems = Findings { refused: Problems::default(), left_out };
    let mut records = Records::new(&source);
    let (mut found, mut quotes) = (Vec::new(), Vec::new());
    let header = read_header(&mut records, options, &mut found, &mut quotes).map_err(read_error)?;
    problems.add(Phase::Header, found.drain(..));
    problems.add(Phase::Quote, quotes.drain(..));
    let Some(header) = header else {
        return Err(invalid(path, &source, options, problems.refused));
    };
    let mut rows = RowReader::new(records, header, dir);

    // A pool of our own, sized for waiting rather than computing; the global one as a fallback.
    let threads = check_threads();
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().ok();
    let digester = Digester::new();
    let mut seen = Sorter::new(DIGESTS_IN_MEMORY);
    let mut identities = Tape::new();
    // Opened at the first row whose path is a URL; one store per bucket for the whole check.
    let mut stores: Option<Stores> = None;
    let mut bytes = 0u64;
    let mut batch: Vec<Row> = Vec::with_capacity(BATCH);
    let mut more = true;
    while more {
        batch.clear();
        while batch.len() < BATCH {
            let row = rows.next(&mut found, &mut quotes).map_err(read_error)?;
            problems.add(Phase::Quote, quotes.drain(..));
            problems.add(Phase::Cell, found.drain(..));
            let Some(row) = row else {
                more = false;
                break;
            };
            if let Some(s) = digester.seen(&row) {
                seen.push(s).map_err(spill_error)?;
            }
            batch.push(row);
        }
        let checks = match &pool {
            Some(pool) => pool.install(|| check_files(&mut batch)),
            None => check_files(&mut batch),
        };
        problems.add(Phase::File, checks);
        if batch.iter().any(|row| row.remote) {
            let stores = stores.get_or_insert_with(Stores::from_env);
            problems.add(Phase::File, super::objects::head_all(&mut batch, stores));
        }
        for row in &batch {
            identities.push(&Identity::of(row)).map_err(spill_error)?;
            bytes += row.size;
            visit(row);
        }
    }
    duplicates(seen, &mut problems).map_err(spill_error)?;
    if problems.refused.total() > 0 {
        return Err(invalid(path, &source, options, problems.refused));
    }
    let left_out = problems.left_out.map_or(Ok(LeftOut::default()), Collector::finish);
    let left_out = left_out.map_err(spill_error)?;
    let identities = identities.finish().map_err(spill_error)?;
    let options = *options;
    Ok(Checked { path: path.to_owned(), source, options, identities, bytes, left_out })
}

/// Checks every row's file (rows without a path were reported already; see
/// [`Row::needs_file`]), and its asset files, in parallel.
fn check_files(rows: &mut [Row]) -> Vec<Problem> {
    rows.par_iter_mut()
        .flat_map_iter(|row| {
            let file = if row.path_text.is_empty() { None } else { check_file(row) };
            // A deleted video's assets are deleted with it: its cells are not read.
            let assets = match row.action {
                RowAction::Delete => Vec::new(),
                _ => super::assets::check_assets(row),
            };
            file.into_iter().chain(assets)
        })
        .collect()
}

/// Reports every row whose idempotency key an earlier row already has: the same `id`, or, for
/// rows without one, the same `path` (the key is then made of the path and the file's size and
/// time, so both rows would be one video and the second row's fields would never be sent).
/// When rows are left out, the first row of each key is too: which of the rows was meant is
/// not for avbatch to guess, and uploading the first would make the others' fields vanish.
fn duplicates(seen: Sorter<Seen>, problems: &mut Findings) -> io::Result<()> {
    let mut first: Option<Seen> = None;
    // Whether the first row of the key being read was left out already.
    let mut first_left_out = false;
    for s in seen.finish()? {
        let s = s?;
        let Some(f) = first.filter(|f| f.digest == s.digest) else {
            (first, first_left_out) = (Some(s), false);
            continue;
        };
        let (line, first_line, by_id) = (s.line_kind >> 1, f.line_kind >> 1, s.line_kind & 1 == 1);
        let phase = Phase::Duplicate;
        match &mut problems.left_out {
            Some(rows) => {
                if !first_left_out {
                    rows.add(phase as u8, shared_key(first_line, by_id, ("used again", line)));
                    first_left_out = true;
                }
                rows.add(phase as u8, shared_key(line, by_id, ("first used", first_line)));
            }
            None => {
                let found = Found::Duplicate { line, first: first_line, by_id };
                problems.refused.add(phase, found)
            }
        }
    }
    Ok(())
}

/// The problem of a row left out for a key another row has (`by_id`: its `id`, else its
/// `path`), naming that row's line (`other`: how it relates, and its line).
fn shared_key(line: u64, by_id: bool, other: (&str, u64)) -> Problem {
    let (how, other) = other;
    let (column, kind, what, fix) = match by_id {
        true => ("id", ProblemKind::DuplicateId, "id", ""),
        false => (
            "path",
            ProblemKind::DuplicatePath,
            "path in a row without an `id`",
            "; give each row its own `id`",
        ),
    };
    let message = format!(
        "duplicate {what} ({how} on line {other}): the rows would be one video, so none of them \
         is uploaded{fix}"
    );
    Problem::new(line, Some(column), kind, message)
}

/// The error for a manifest with problems; duplicates kept for showing get the value they
/// repeat, read again from the manifest (the check kept only digests).
fn invalid(
    path: &Path,
    source: &Source,
    options: &LoadOptions,
    problems: Problems,
) -> ManifestError {
    let total = problems.total();
    let describe = |lines: &[u64]| -> io::Result<HashMap<u64, String>> {
        let wanted: std::collections::HashSet<u64> = lines.iter().copied().collect();
        let last = lines.iter().copied().max().unwrap_or(0);
        let mut values = HashMap::new();
        let mut records = Records::new(source);
        let (mut ignored, mut quotes) = (Vec::new(), Vec::new());
        let Some(header) = read_header(&mut records, options, &mut ignored, &mut quotes)? else {
            return Ok(values);
        };
        let mut rows = RowReader::new(records, header, path.parent().unwrap_or(Path::new("")));
        while let Some(row) = rows.next(&mut ignored, &mut quotes)? {
            ignored.clear();
            quotes.clear();
            if wanted.contains(&row.line) {
                values.insert(row.line, row.id.unwrap_or(row.path_text));
            }
            if row.line >= last {
                break;
            }
        }
        Ok(values)
    };
    match problems.into_sorted(describe) {
        Ok(problems) => ManifestError::Invalid { path: path.to_owned(), problems, total },
        Err(source) => ManifestError::Read { path: path.to_owned(), source },
    }
}
