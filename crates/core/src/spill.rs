//! Records kept on disk instead of in memory, so a run's memory does not grow with its manifest:
//! [`Sorter`], an external sort (sorted runs spilled to temporary files, then merged), and
//! [`Tape`], a file of records written once in order and read back as often as needed.
//!
//! Temporary files go to the system's temporary folder (`TMPDIR` on Unix), as `sort(1)`'s do,
//! and are deleted when dropped. A manifest of 10 million rows spills a few hundred megabytes.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::sync::Arc;

/// A record that can be written to a spill file and read back.
pub trait Record: Sized {
    /// Appends the record to `out`.
    fn write_to(&self, out: &mut impl Write) -> io::Result<()>;
    /// Reads the next record, `None` at the end of the input.
    fn read_from(input: &mut impl BufRead) -> io::Result<Option<Self>>;
}

/// Reads exactly `buf.len()` bytes, or none at the end of the input: `Ok(false)`.
pub fn read_exact_or_end(input: &mut impl Read, buf: &mut [u8]) -> io::Result<bool> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) if filled == 0 => return Ok(false),
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "a spilled record is cut short",
                ))
            }
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// Records of any number, sorted with a bounded amount of memory: `capacity` records are held,
/// sorted and written out as a run whenever the buffer fills; [`Sorter::finish`] merges the runs.
/// Equal records come out in the order they were pushed only if their `Ord` says so: give each
/// a tie-breaker (a line, an index).
pub struct Sorter<T: Record + Ord> {
    buffer: Vec<T>,
    capacity: usize,
    runs: Vec<File>,
}

impl<T: Record + Ord> Sorter<T> {
    /// A sorter that holds at most `capacity` records in memory.
    pub fn new(capacity: usize) -> Self {
        Sorter { buffer: Vec::new(), capacity: capacity.max(1), runs: Vec::new() }
    }

    /// Adds a record.
    pub fn push(&mut self, record: T) -> io::Result<()> {
        self.buffer.push(record);
        if self.buffer.len() >= self.capacity {
            self.spill()?;
        }
        Ok(())
    }

    /// How many runs went to disk so far.
    pub fn runs(&self) -> usize {
        self.runs.len()
    }

    fn spill(&mut self) -> io::Result<()> {
        self.buffer.sort_unstable();
        let mut out = BufWriter::with_capacity(1 << 16, tempfile::tempfile()?);
        for record in self.buffer.drain(..) {
            record.write_to(&mut out)?;
        }
        let mut file = out.into_inner().map_err(io::IntoInnerError::into_error)?;
        file.seek(SeekFrom::Start(0))?;
        self.runs.push(file);
        Ok(())
    }

    /// Every record pushed, in order.
    pub fn finish(mut self) -> io::Result<Sorted<T>> {
        if self.runs.is_empty() {
            // Everything fit in memory: no file at all.
            self.buffer.sort_unstable();
            return Ok(Sorted {
                memory: self.buffer.into_iter(),
                heap: BinaryHeap::new(),
                readers: Vec::new(),
            });
        }
        if !self.buffer.is_empty() {
            self.spill()?;
        }
        let mut readers: Vec<BufReader<File>> =
            self.runs.into_iter().map(|f| BufReader::with_capacity(1 << 16, f)).collect();
        let mut heap = BinaryHeap::with_capacity(readers.len());
        for (run, reader) in readers.iter_mut().enumerate() {
            if let Some(record) = T::read_from(reader)? {
                heap.push(Reverse(Head { record, run }));
            }
        }
        Ok(Sorted { memory: Vec::new().into_iter(), heap, readers })
    }
}

/// The next record of one run, ordered by the record, then by run.
struct Head<T> {
    record: T,
    run: usize,
}

impl<T: Ord> PartialEq for Head<T> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == std::cmp::Ordering::Equal
    }
}

impl<T: Ord> Eq for Head<T> {}

impl<T: Ord> PartialOrd for Head<T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl<T: Ord> Ord for Head<T> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.record.cmp(&other.record).then(self.run.cmp(&other.run))
    }
}

/// The records of a [`Sorter`], in order: from memory, or merged from its runs on disk.
pub struct Sorted<T: Record + Ord> {
    memory: std::vec::IntoIter<T>,
    heap: BinaryHeap<Reverse<Head<T>>>,
    readers: Vec<BufReader<File>>,
}

impl<T: Record + Ord> Iterator for Sorted<T> {
    type Item = io::Result<T>;

    fn next(&mut self) -> Option<io::Result<T>> {
        if let Some(record) = self.memory.next() {
            return Some(Ok(record));
        }
        let Reverse(Head { record, run }) = self.heap.pop()?;
        match T::read_from(&mut self.readers[run]) {
            Ok(Some(next)) => self.heap.push(Reverse(Head { record: next, run })),
            Ok(None) => {}
            Err(e) => return Some(Err(e)),
        }
        Some(Ok(record))
    }
}

/// Records written once, in order, then read back from the start by any number of
/// [`TapeReader`]s, each at its own place. They stay in memory up to [`TAPE_IN_MEMORY`] bytes
/// (a manifest of some tens of thousands of rows never touches the temporary folder), then go
/// to a temporary file.
pub struct Tape<T: Record> {
    store: TapeStore,
    written: u64,
    _records: std::marker::PhantomData<T>,
}

/// Bytes of records a [`Tape`] keeps in memory before it moves them to a file.
pub const TAPE_IN_MEMORY: usize = 4 << 20;

enum TapeStore {
    Memory(Vec<u8>),
    File(BufWriter<tempfile::NamedTempFile>),
}

impl<T: Record> Default for Tape<T> {
    fn default() -> Self {
        Tape::new()
    }
}

impl<T: Record> Tape<T> {
    /// An empty tape.
    pub fn new() -> Self {
        Tape {
            store: TapeStore::Memory(Vec::new()),
            written: 0,
            _records: std::marker::PhantomData,
        }
    }

    /// Appends a record.
    pub fn push(&mut self, record: &T) -> io::Result<()> {
        self.written += 1;
        match &mut self.store {
            TapeStore::Memory(buffer) => {
                record.write_to(buffer)?;
                if buffer.len() > TAPE_IN_MEMORY {
                    let mut out =
                        BufWriter::with_capacity(1 << 16, tempfile::NamedTempFile::new()?);
                    out.write_all(buffer)?;
                    self.store = TapeStore::File(out);
                }
                Ok(())
            }
            TapeStore::File(out) => record.write_to(out),
        }
    }

    /// Ends the writing: the tape can now be read, by as many readers as wanted.
    pub fn finish(self) -> io::Result<Recorded<T>> {
        let backing = match self.store {
            TapeStore::Memory(buffer) => Backing::Memory(bytes::Bytes::from(buffer)),
            TapeStore::File(out) => {
                Backing::File(Arc::new(out.into_inner().map_err(io::IntoInnerError::into_error)?))
            }
        };
        Ok(Recorded { backing, len: self.written, _records: std::marker::PhantomData })
    }
}

/// Where a finished tape's records are.
#[derive(Clone)]
enum Backing {
    Memory(bytes::Bytes),
    File(Arc<tempfile::NamedTempFile>),
}

/// A finished [`Tape`]; its file, if it has one, is deleted when the last reader and this are
/// dropped.
pub struct Recorded<T: Record> {
    backing: Backing,
    len: u64,
    _records: std::marker::PhantomData<T>,
}

impl<T: Record> Clone for Recorded<T> {
    fn clone(&self) -> Self {
        Recorded {
            backing: self.backing.clone(),
            len: self.len,
            _records: std::marker::PhantomData,
        }
    }
}

impl<T: Record> std::fmt::Debug for Recorded<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("Recorded");
        match &self.backing {
            Backing::Memory(b) => d.field("memory", &b.len()),
            Backing::File(file) => d.field("path", &file.path()),
        };
        d.field("len", &self.len).finish()
    }
}

impl<T: Record> Recorded<T> {
    /// How many records the tape holds.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the tape holds no record.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// A reader from the first record, at its own place (with its own file handle).
    pub fn reader(&self) -> io::Result<TapeReader<T>> {
        let input: Box<dyn BufRead + Send> = match &self.backing {
            Backing::Memory(b) => Box::new(io::Cursor::new(b.clone())),
            Backing::File(file) => {
                let reader = BufReader::with_capacity(1 << 16, file.reopen()?);
                Box::new(KeepOpen { reader, _file: file.clone() })
            }
        };
        Ok(TapeReader { input, _records: std::marker::PhantomData })
    }
}

/// A reader of a tape's file that keeps the file from being deleted while it reads.
struct KeepOpen {
    reader: BufReader<File>,
    _file: Arc<tempfile::NamedTempFile>,
}

impl Read for KeepOpen {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.reader.read(buf)
    }
}

impl BufRead for KeepOpen {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.reader.fill_buf()
    }

    fn consume(&mut self, amount: usize) {
        self.reader.consume(amount);
    }
}

/// Reads a [`Recorded`] tape from its start.
pub struct TapeReader<T: Record> {
    input: Box<dyn BufRead + Send>,
    _records: std::marker::PhantomData<T>,
}

impl<T: Record> Iterator for TapeReader<T> {
    type Item = io::Result<T>;

    fn next(&mut self) -> Option<io::Result<T>> {
        T::read_from(&mut self.input).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
    struct Pair(u64, u64);

    impl Record for Pair {
        fn write_to(&self, out: &mut impl Write) -> io::Result<()> {
            out.write_all(&self.0.to_le_bytes())?;
            out.write_all(&self.1.to_le_bytes())
        }

        fn read_from(input: &mut impl BufRead) -> io::Result<Option<Self>> {
            let mut buf = [0u8; 16];
            if !read_exact_or_end(input, &mut buf)? {
                return Ok(None);
            }
            let (a, b) = buf.split_at(8);
            Ok(Some(Pair(
                u64::from_le_bytes(a.try_into().unwrap()),
                u64::from_le_bytes(b.try_into().unwrap()),
            )))
        }
    }

    fn scrambled(n: u64) -> Vec<Pair> {
        (0..n).map(|i| Pair(i.wrapping_mul(0x9e37_79b9_7f4a_7c15) % 1000, i)).collect()
    }

    #[test]
    fn sorts_in_memory_and_across_spilled_runs_alike() {
        let input = scrambled(10_000);
        let mut expected = input.clone();
        expected.sort();
        for capacity in [1, 7, 1000, 100_000] {
            let mut sorter = Sorter::new(capacity);
            for p in &input {
                sorter.push(*p).unwrap();
            }
            assert_eq!(sorter.runs() == 0, capacity > input.len(), "capacity {capacity}");
            let out: Vec<Pair> = sorter.finish().unwrap().map(Result::unwrap).collect();
            assert_eq!(out, expected, "capacity {capacity}");
        }
        assert_eq!(Sorter::<Pair>::new(3).finish().unwrap().count(), 0);
    }

    #[test]
    fn a_tape_reads_back_in_order_from_several_readers() {
        // 16 bytes a record: the first stays in memory, the second goes to a file.
        for n in [5000, (TAPE_IN_MEMORY / 16 + 1000) as u64] {
            let mut tape = Tape::new();
            for p in scrambled(n) {
                tape.push(&p).unwrap();
            }
            let recorded = tape.finish().unwrap();
            let on_disk = format!("{recorded:?}").contains("path");
            assert_eq!(on_disk, n as usize * 16 > TAPE_IN_MEMORY, "{recorded:?}");
            assert_eq!(recorded.len(), n);
            let mut first = recorded.reader().unwrap();
            let mut second = recorded.reader().unwrap();
            assert_eq!(first.next().unwrap().unwrap(), scrambled(1)[0]);
            let all: Vec<Pair> = second.by_ref().map(Result::unwrap).collect();
            assert_eq!(all, scrambled(n));
            assert_eq!(first.count() as u64, n - 1, "each reader keeps its own place");
        }
    }

    #[test]
    fn a_record_cut_short_is_an_error() {
        let mut input: &[u8] = &[1, 2, 3];
        assert!(Pair::read_from(&mut input).is_err());
        let mut empty: &[u8] = &[];
        assert!(Pair::read_from(&mut empty).unwrap().is_none());
    }
}
