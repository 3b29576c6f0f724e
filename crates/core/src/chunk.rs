//! Files as zero-copy parts: memory-map a file, cut it into `Bytes` slices of the map.
//!
//! A part is a `Bytes::slice` of one shared map, so sending it copies nothing in user space, and
//! a retry re-sends the same slice. Pages a part touched are handed back to the kernel once the
//! part is acknowledged ([`MappedFile::release`]), so resident memory follows the parts in
//! flight, not the size of the file.

use std::fs::File;
use std::io;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use memmap2::Mmap;

/// Smallest part but the last that api.video accepts: 5 MiB.
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
/// Largest request api.video accepts: 200 MiB.
pub const MAX_PART_SIZE: u64 = 200 * 1024 * 1024;
/// Most parts one video may have.
pub const MAX_PARTS: u64 = 10_000;
/// Largest video api.video documents: 30 GiB (API.md §3.3, "Account-level documented caps").
/// A larger file is refused before anything is sent, rather than failing after its video was
/// created.
pub const MAX_VIDEO_SIZE: u64 = 30 * 1024 * 1024 * 1024;
/// Largest `total` the API takes for a bytes-mode upload at all: 52 428 800 000 bytes (API.md
/// §3.3, `video-content-range-by-bytes-total-bytes-too-high`). [`MAX_VIDEO_SIZE`] is lower, so it
/// is the one checked; this one is the hard wall behind it.
pub const MAX_UPLOAD_TOTAL: u64 = 52_428_800_000;
const _: () =
    assert!(MAX_VIDEO_SIZE <= MAX_UPLOAD_TOTAL && MAX_VIDEO_SIZE / MIN_PART_SIZE <= MAX_PARTS);

/// The map, shared by every `Bytes` cut from it. The guard is declared first so it is dropped
/// (unregistered) before the map is unmapped.
struct SharedMap {
    #[cfg(target_os = "linux")]
    guard: Option<crate::sigbus::Guard>,
    map: Mmap,
}

impl AsRef<[u8]> for SharedMap {
    fn as_ref(&self) -> &[u8] {
        &self.map
    }
}

/// How a file differs from what was mapped; a part read from it must not be completed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{path}` {what} while it was being uploaded")]
pub struct FileChanged {
    /// The file, as given.
    pub path: String,
    /// What happened to it.
    pub what: String,
}

/// What identifies the file that was mapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
    #[cfg(unix)]
    inode: (u64, u64),
}

impl Stamp {
    fn of(meta: &std::fs::Metadata) -> Stamp {
        #[cfg(unix)]
        use std::os::unix::fs::MetadataExt;
        Stamp {
            len: meta.len(),
            modified: meta.modified().ok(),
            #[cfg(unix)]
            inode: (meta.dev(), meta.ino()),
        }
    }
}

/// A read-only memory map of a whole file, and what it takes to tell whether the file changed
/// since it was mapped.
pub struct MappedFile {
    map: Arc<SharedMap>,
    bytes: Bytes,
    file: File,
    path: std::path::PathBuf,
    stamp: Stamp,
}

impl std::fmt::Debug for MappedFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MappedFile").field("len", &self.bytes.len()).finish()
    }
}

/// What a file that is not a regular file is, for messages ("a FIFO (named pipe)"); `None` for a
/// regular file or a directory, which callers tell apart themselves.
pub fn special_kind(file_type: std::fs::FileType) -> Option<&'static str> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if file_type.is_fifo() {
            return Some("a FIFO (named pipe)");
        }
        if file_type.is_socket() {
            return Some("a socket");
        }
        if file_type.is_char_device() {
            return Some("a character device");
        }
        if file_type.is_block_device() {
            return Some("a block device");
        }
    }
    (!file_type.is_file() && !file_type.is_dir()).then_some("not a regular file")
}

/// Opens `path` for reading without ever blocking, and checks through the open handle that it
/// is a regular file; returns the handle and its metadata.
///
/// A plain `open` of a FIFO waits for a writer, possibly forever, before `fstat` could tell what
/// it is; with `O_NONBLOCK` the open returns at once (the flag changes nothing for a regular
/// file). A file swapped for a FIFO or a device after the manifest was checked is refused here.
pub fn open_regular(path: &Path) -> io::Result<(File, std::fs::Metadata)> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK);
    let file = options.open(path)?;
    let metadata = file.metadata()?;
    if metadata.is_dir() {
        return Err(io::Error::new(io::ErrorKind::IsADirectory, "a directory, not a regular file"));
    }
    if let Some(kind) = special_kind(metadata.file_type()) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{kind}, not a regular file"),
        ));
    }
    Ok((file, metadata))
}

impl MappedFile {
    /// Maps `path` read-only; anything but a regular file is refused (see [`open_regular`]).
    /// Blocks on the disk (open, fstat, mmap), never on a FIFO: call from `spawn_blocking`.
    pub fn open(path: &Path) -> io::Result<MappedFile> {
        let (file, metadata) = open_regular(path)?;
        let stamp = Stamp::of(&metadata);
        // SAFETY: the map is read-only and private to this process. The one hazard is another
        // process truncating the file while it is mapped: touching a page past the new end
        // raises SIGBUS. `crate::sigbus` turns such a fault into a page of zeros and a count,
        // and `check` (called before a part's last bytes go out) reports it, so the process
        // survives and no part read from a changed file is completed.
        let map = unsafe { Mmap::map(&file)? };
        #[cfg(unix)]
        let _ = map.advise(memmap2::Advice::Sequential);
        #[cfg(target_os = "linux")]
        let guard = crate::sigbus::Guard::register(map.as_ptr(), map.len());
        let map = Arc::new(SharedMap {
            #[cfg(target_os = "linux")]
            guard,
            map,
        });
        let bytes = Bytes::from_owner(ArcMap(map.clone()));
        Ok(MappedFile { map, bytes, file, path: path.to_owned(), stamp })
    }

    /// The file's modification time when it was mapped.
    pub fn modified(&self) -> Option<SystemTime> {
        self.stamp.modified
    }

    /// Whether the file is still the one that was mapped: same length and modification time,
    /// still at its path, and every page read so far was there. Two `stat` calls.
    pub fn check(&self) -> Result<(), FileChanged> {
        let changed = |what: String| FileChanged { path: self.path.display().to_string(), what };
        #[cfg(target_os = "linux")]
        if let Some(faults) = self.map.guard.as_ref().map(|g| g.faults()).filter(|f| *f > 0) {
            return Err(changed(format!("lost {faults} page(s) (it was truncated)")));
        }
        let now = self
            .file
            .metadata()
            .map(|m| Stamp::of(&m))
            .map_err(|e| changed(format!("could not be checked ({e})")))?;
        if now.len < self.stamp.len {
            return Err(changed(format!(
                "was truncated from {} to {} bytes",
                self.stamp.len, now.len
            )));
        }
        if now.len > self.stamp.len {
            return Err(changed(format!("grew from {} to {} bytes", self.stamp.len, now.len)));
        }
        if now.modified != self.stamp.modified {
            return Err(changed("was modified".to_owned()));
        }
        #[cfg(unix)]
        match std::fs::metadata(&self.path) {
            Ok(m) if Stamp::of(&m).inode == self.stamp.inode => {}
            Ok(_) => return Err(changed("was replaced by another file".to_owned())),
            Err(e) => return Err(changed(format!("was removed or moved ({e})"))),
        }
        Ok(())
    }

    /// The contents' fingerprint ([`ContentHash`]); reads the whole file, handing pages back as
    /// it goes. Blocks: call from `spawn_blocking`.
    pub fn fingerprint(&self) -> String {
        let mut hasher = ContentHash::new();
        self.hash_range(&mut hasher, 0..self.len());
        hasher.finish()
    }

    /// Feeds the bytes of `range` to `hasher`, handing pages back as it goes. Blocks: call from
    /// `spawn_blocking`.
    pub fn hash_range(&self, hasher: &mut ContentHash, range: Range<u64>) {
        const STEP: u64 = 8 * 1024 * 1024;
        let mut at = range.start;
        let end = range.end.min(self.len());
        while at < end {
            let to = (at + STEP).min(end);
            hasher.update(&self.bytes[at as usize..to as usize]);
            self.release(at..to);
            at = to;
        }
    }

    /// The file's length.
    pub fn len(&self) -> u64 {
        self.bytes.len() as u64
    }

    /// Whether the file is empty.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The bytes of `range`, without copying.
    pub fn slice(&self, range: Range<u64>) -> Bytes {
        self.bytes.slice(range.start as usize..range.end as usize)
    }

    /// Hands the pages of `range` back to the kernel. Reading them again later re-reads the
    /// file, so this is always correct, only possibly slower.
    pub fn release(&self, range: Range<u64>) {
        #[cfg(target_os = "linux")]
        {
            let page = 4096u64;
            let start = range.start.div_ceil(page) * page;
            let end = range.end.min(self.len()) / page * page;
            if end > start {
                // SAFETY: MADV_DONTNEED on a private, read-only file mapping only drops pages;
                // the next access faults them back in from the file, so no `Bytes` cut from the
                // map ever observes different contents.
                let _ = unsafe {
                    self.map.map.unchecked_advise_range(
                        memmap2::UncheckedAdvice::DontNeed,
                        start as usize,
                        (end - start) as usize,
                    )
                };
            }
        }
        #[cfg(not(target_os = "linux"))]
        let _ = range;
    }
}

/// `Bytes::from_owner` needs an owner that is `AsRef<[u8]>`; this one shares the map.
struct ArcMap(Arc<SharedMap>);

impl AsRef<[u8]> for ArcMap {
    fn as_ref(&self) -> &[u8] {
        &self.0.map
    }
}

/// One part of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartPlan {
    /// 1-based part number.
    pub number: u64,
    /// Byte range in the file.
    pub range: Range<u64>,
}

/// Why a file cannot be cut with a chunk size.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChunkError {
    /// Outside api.video's bounds.
    #[error("chunk size `{0}` is outside 5 MiB..=200 MiB")]
    ChunkSize(u64),
    /// More than 10 000 parts.
    #[error(
        "a file of {len} bytes needs {parts} parts of {chunk} bytes, over api.video's 10 000; use \
         a larger --chunk-size"
    )]
    TooManyParts {
        /// File length.
        len: u64,
        /// Chunk size.
        chunk: u64,
        /// Parts it would need.
        parts: u64,
    },
}

/// Checks a chunk size against api.video's bounds.
pub fn check_chunk_size(chunk: u64) -> Result<u64, ChunkError> {
    if (MIN_PART_SIZE..=MAX_PART_SIZE).contains(&chunk) {
        Ok(chunk)
    } else {
        Err(ChunkError::ChunkSize(chunk))
    }
}

/// Cuts `len` bytes into parts of `chunk` bytes; the last takes the rest. A file of at most one
/// chunk is one part.
pub fn plan_parts(len: u64, chunk: u64) -> Result<Vec<PartPlan>, ChunkError> {
    let chunk = check_chunk_size(chunk)?;
    let parts = len.div_ceil(chunk).max(1);
    if parts > MAX_PARTS {
        return Err(ChunkError::TooManyParts { len, chunk, parts });
    }
    Ok((0..parts)
        .map(|i| PartPlan { number: i + 1, range: i * chunk..((i + 1) * chunk).min(len) })
        .collect())
}

/// A part of a plan: one to send, or one the server already holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    /// Its number and byte range.
    pub part: PartPlan,
    /// Whether the server already holds these bytes.
    pub held: bool,
}

/// Why what the server holds cannot be completed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "the server holds bytes around a gap of {} bytes at {}, under api.video's 5 MiB minimum for a \
     chunk that is not the last",
    .0.end - .0.start,
    .0.start
)]
pub struct GapTooSmall(pub Range<u64>);

/// Plans a `len`-byte file around the byte ranges the server already holds (sorted, disjoint,
/// within the file): the held ranges as they are, and every gap between them cut into parts of
/// `chunk` bytes. The cut of an earlier run does not matter, so a partial upload continues with
/// any part size. A part that ends before the end of the file is never under
/// [`MIN_PART_SIZE`] (a short remainder joins the part before it), nor over [`MAX_PART_SIZE`].
pub fn plan_around(len: u64, chunk: u64, held: &[Range<u64>]) -> Result<Vec<Piece>, GapTooSmall> {
    let mut ranges: Vec<(Range<u64>, bool)> = Vec::new();
    let mut at = 0;
    for h in held.iter().filter(|h| h.start < h.end) {
        if h.start > at {
            ranges.extend(cut_gap(at..h.start, chunk, false)?.into_iter().map(|r| (r, false)));
        }
        ranges.push((h.clone(), true));
        at = at.max(h.end);
    }
    if at < len {
        ranges.extend(cut_gap(at..len, chunk, true)?.into_iter().map(|r| (r, false)));
    }
    Ok(ranges
        .into_iter()
        .enumerate()
        .map(|(i, (range, held))| Piece { part: PartPlan { number: i as u64 + 1, range }, held })
        .collect())
}

/// Cuts one gap into parts of `chunk` bytes; only the gap at the end of the file may end with a
/// short part.
fn cut_gap(gap: Range<u64>, chunk: u64, at_end: bool) -> Result<Vec<Range<u64>>, GapTooSmall> {
    if !at_end && gap.end - gap.start < MIN_PART_SIZE {
        return Err(GapTooSmall(gap));
    }
    let mut parts: Vec<Range<u64>> = Vec::new();
    let mut at = gap.start;
    while at < gap.end {
        let end = (at + chunk).min(gap.end);
        parts.push(at..end);
        at = end;
    }
    let short = parts.last().is_some_and(|p| p.end - p.start < MIN_PART_SIZE);
    if !at_end && short && parts.len() > 1 {
        let last = parts.pop().expect("more than one part");
        let before = parts.pop().expect("more than one part");
        if last.end - before.start <= MAX_PART_SIZE {
            parts.push(before.start..last.end);
        } else {
            // Only with parts near the 200 MiB maximum: two halves, each well over 5 MiB.
            let middle = before.start + (last.end - before.start) / 2;
            parts.extend([before.start..middle, middle..last.end]);
        }
    }
    Ok(parts)
}

/// A file's content fingerprint: XXH3-128 of its bytes, written `xxh3-128:` and 32 hex digits.
/// It tells a touched file from a changed one, which needs no cryptographic strength, and it runs
/// at memory speed (SHA-256 on the send path halved loopback throughput: 2.2 to 1.0 GiB/s).
#[derive(Clone, Default)]
pub struct ContentHash(xxhash_rust::xxh3::Xxh3);

/// What every fingerprint [`ContentHash::finish`] writes starts with.
pub const FINGERPRINT_PREFIX: &str = "xxh3-128:";

/// Whether `text` is a fingerprint of this kind (journals of earlier versions hold SHA-256s).
pub fn is_fingerprint(text: &str) -> bool {
    text.starts_with(FINGERPRINT_PREFIX)
}

impl ContentHash {
    /// An empty hash.
    pub fn new() -> Self {
        ContentHash::default()
    }

    /// Adds bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// `xxh3-128:` and the digest in hex.
    pub fn finish(&self) -> String {
        format!("{FINGERPRINT_PREFIX}{:032x}", self.0.digest128())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const MIB: u64 = 1024 * 1024;

    #[test]
    fn part_math() {
        let p = plan_parts(12 * MIB + 3, 5 * MIB).unwrap();
        assert_eq!(
            p.iter().map(|p| p.range.clone()).collect::<Vec<_>>(),
            vec![0..5 * MIB, 5 * MIB..10 * MIB, 10 * MIB..12 * MIB + 3]
        );
        assert_eq!(p.last().unwrap().number, 3);
        assert_eq!(plan_parts(1, 5 * MIB).unwrap(), vec![PartPlan { number: 1, range: 0..1 }]);
        assert_eq!(plan_parts(5 * MIB, 5 * MIB).unwrap().len(), 1);
        assert_eq!(plan_parts(5 * MIB + 1, 5 * MIB).unwrap().len(), 2);
        assert_eq!(plan_parts(1, 4 * MIB), Err(ChunkError::ChunkSize(4 * MIB)));
        assert!(matches!(
            plan_parts(10_001 * 5 * MIB, 5 * MIB),
            Err(ChunkError::TooManyParts { .. })
        ));
    }

    #[test]
    fn a_partial_upload_continues_with_any_part_size() {
        let ranges =
            |p: &[Piece]| p.iter().map(|p| (p.part.range.clone(), p.held)).collect::<Vec<_>>();
        // Nothing held: the plain cut.
        let p = plan_around(12 * MIB, 5 * MIB, &[]).unwrap();
        assert_eq!(
            ranges(&p),
            vec![(0..5 * MIB, false), (5 * MIB..10 * MIB, false), (10 * MIB..12 * MIB, false)]
        );
        // 20 MiB held from 10 MiB parts, continued with 8 MiB parts.
        let p = plan_around(50 * MIB, 8 * MIB, &[0..10 * MIB, 10 * MIB..20 * MIB]).unwrap();
        assert_eq!(
            ranges(&p),
            vec![
                (0..10 * MIB, true),
                (10 * MIB..20 * MIB, true),
                (20 * MIB..28 * MIB, false),
                (28 * MIB..36 * MIB, false),
                (36 * MIB..44 * MIB, false),
                (44 * MIB..50 * MIB, false)
            ]
        );
        assert_eq!(p.iter().map(|p| p.part.number).collect::<Vec<_>>(), [1, 2, 3, 4, 5, 6]);
        // A gap in the middle: its short remainder joins the part before it.
        let p = plan_around(40 * MIB, 5 * MIB, &[0..5 * MIB, 17 * MIB..40 * MIB]).unwrap();
        assert_eq!(
            ranges(&p),
            vec![
                (0..5 * MIB, true),
                (5 * MIB..10 * MIB, false),
                (10 * MIB..17 * MIB, false),
                (17 * MIB..40 * MIB, true)
            ]
        );
        // Next to the maximum, the two last parts of a gap share it instead.
        let p =
            plan_around(400 * MIB + MIB, 200 * MIB, &[0..0, 400 * MIB + MIB - 10..400 * MIB + MIB])
                .unwrap();
        assert!(p.iter().all(|p| p.part.range.end - p.part.range.start <= MAX_PART_SIZE), "{p:?}");
        assert!(
            p.iter().all(|p| p.held || p.part.range.end - p.part.range.start >= MIN_PART_SIZE),
            "{p:?}"
        );
        assert_eq!(
            p.iter().map(|p| p.part.range.end - p.part.range.start).sum::<u64>(),
            400 * MIB + MIB
        );
        // A gap under 5 MiB that is not at the end cannot be filled.
        assert_eq!(
            plan_around(20 * MIB, 5 * MIB, &[0..5 * MIB, 6 * MIB..20 * MIB]),
            Err(GapTooSmall(5 * MIB..6 * MIB))
        );
        // Everything held: nothing to send.
        let everything: Vec<Range<u64>> = vec![Range { start: 0, end: 3 }];
        assert!(plan_around(3, 5 * MIB, &everything).unwrap().iter().all(|p| p.held));
    }

    #[test]
    fn slices_are_views_of_the_file() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        f.write_all(&data).unwrap();
        let m = MappedFile::open(f.path()).unwrap();
        assert_eq!(m.len(), 100_000);
        let s = m.slice(4096..50_000);
        assert_eq!(&s[..], &data[4096..50_000]);
        m.release(0..100_000);
        assert_eq!(&s[..], &data[4096..50_000], "released pages read back from the file");
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn a_file_truncated_under_the_map_reads_as_zeros_and_reports_itself() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(&vec![7u8; 5 * 4096]).unwrap();
        let m = MappedFile::open(f.path()).unwrap();
        let s = m.slice(0..5 * 4096);
        assert_eq!(m.check(), Ok(()));
        f.as_file().set_len(4096).unwrap();
        // Reading past the new end raises SIGBUS; the guard turns it into zeros, not a crash.
        assert!(s[..4096].iter().all(|b| *b == 7));
        assert!(s[4096..].iter().all(|b| *b == 0));
        let e = m.check().unwrap_err();
        assert_eq!(e.what, "lost 4 page(s) (it was truncated)", "{e}");
    }

    /// Runs `open` on another thread and waits at most 10 s: a regression fails, never hangs.
    #[cfg(unix)]
    fn open_within_a_bound(path: &Path) -> Result<(), String> {
        let (tx, rx) = std::sync::mpsc::channel();
        let path = path.to_owned();
        std::thread::spawn(move || {
            tx.send(MappedFile::open(&path).map(drop).map_err(|e| e.to_string()))
        });
        rx.recv_timeout(std::time::Duration::from_secs(10)).expect("opening must not block")
    }

    #[test]
    #[cfg(unix)]
    fn fifos_and_devices_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe.mp4");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status().expect("run mkfifo");
        assert!(made.success());
        assert_eq!(
            open_within_a_bound(&fifo),
            Err("a FIFO (named pipe), not a regular file".to_owned())
        );
        assert_eq!(
            open_within_a_bound(Path::new("/dev/null")),
            Err("a character device, not a regular file".to_owned())
        );
        assert!(open_within_a_bound(dir.path()).unwrap_err().contains("directory"));
        std::fs::write(dir.path().join("v.mp4"), b"abc").unwrap();
        assert_eq!(open_within_a_bound(&dir.path().join("v.mp4")), Ok(()));
    }

    #[test]
    fn growth_rewrites_and_replacement_are_seen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.mp4");
        std::fs::write(&path, b"0123456789").unwrap();
        let m = MappedFile::open(&path).unwrap();
        std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(b"more").unwrap();
        assert!(m.check().unwrap_err().what.contains("grew from 10 to 14"), "{:?}", m.check());

        std::fs::write(&path, b"0123456789").unwrap();
        let m = MappedFile::open(&path).unwrap();
        let f = std::fs::File::options().write(true).open(&path).unwrap();
        f.set_modified(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1)).unwrap();
        assert_eq!(m.check().unwrap_err().what, "was modified");

        let m = MappedFile::open(&path).unwrap();
        let other = dir.path().join("other");
        std::fs::write(&other, b"0123456789").unwrap();
        let f = std::fs::File::options().write(true).open(&other).unwrap();
        f.set_modified(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1)).unwrap();
        std::fs::rename(&other, &path).unwrap();
        assert_eq!(m.check().unwrap_err().what, "was replaced by another file");
        assert_eq!(
            m.check().unwrap_err().to_string(),
            format!(
                "`{}` was replaced by another file while it was being uploaded",
                path.display()
            )
        );
    }
}
