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

use bytes::Bytes;
use memmap2::Mmap;

/// Smallest part but the last that api.video accepts: 5 MiB.
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
/// Largest request api.video accepts: 200 MiB.
pub const MAX_PART_SIZE: u64 = 200 * 1024 * 1024;
/// Most parts one video may have.
pub const MAX_PARTS: u64 = 10_000;

/// The map, shared by every `Bytes` cut from it.
struct SharedMap(Mmap);

impl AsRef<[u8]> for SharedMap {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// A read-only memory map of a whole file.
pub struct MappedFile {
    map: Arc<SharedMap>,
    bytes: Bytes,
}

impl std::fmt::Debug for MappedFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MappedFile").field("len", &self.bytes.len()).finish()
    }
}

impl MappedFile {
    /// Maps `path` read-only. Blocks (open, fstat, mmap): call from `spawn_blocking`.
    pub fn open(path: &Path) -> io::Result<MappedFile> {
        let file = File::open(path)?;
        // SAFETY: the map is read-only and private to this process. The one hazard is another
        // process truncating the file while it is mapped: touching a page past the new end
        // raises SIGBUS. The engine checks the file's size and mtime against the manifest before
        // mapping and after the last part, and the journal issue (#5) adds a guard for the
        // window in between.
        let map = unsafe { Mmap::map(&file)? };
        #[cfg(unix)]
        let _ = map.advise(memmap2::Advice::Sequential);
        let map = Arc::new(SharedMap(map));
        let bytes = Bytes::from_owner(ArcMap(map.clone()));
        Ok(MappedFile { map, bytes })
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
                    self.map.0.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, start as usize, (end - start) as usize)
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
        self.0.as_ref().as_ref()
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
    #[error("a file of {len} bytes needs {parts} parts of {chunk} bytes, over api.video's 10 000; use a larger --chunk-size")]
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
    Ok((0..parts).map(|i| PartPlan { number: i + 1, range: i * chunk..((i + 1) * chunk).min(len) }).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const MIB: u64 = 1024 * 1024;

    #[test]
    fn part_math() {
        let p = plan_parts(12 * MIB + 3, 5 * MIB).unwrap();
        assert_eq!(p.iter().map(|p| p.range.clone()).collect::<Vec<_>>(), vec![0..5 * MIB, 5 * MIB..10 * MIB, 10 * MIB..12 * MIB + 3]);
        assert_eq!(p.last().unwrap().number, 3);
        assert_eq!(plan_parts(1, 5 * MIB).unwrap(), vec![PartPlan { number: 1, range: 0..1 }]);
        assert_eq!(plan_parts(5 * MIB, 5 * MIB).unwrap().len(), 1);
        assert_eq!(plan_parts(5 * MIB + 1, 5 * MIB).unwrap().len(), 2);
        assert_eq!(plan_parts(1, 4 * MIB), Err(ChunkError::ChunkSize(4 * MIB)));
        assert!(matches!(plan_parts(10_001 * 5 * MIB, 5 * MIB), Err(ChunkError::TooManyParts { .. })));
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
}
