//! A video's content fingerprint ([`ContentHash`]), taken from the bytes as they are sent.
//!
//! Parts go strictly in order, so one running hash follows them through the file. Each attempt
//! of a part hashes its body as the connection takes it, starting from a copy of the hash as it
//! stood before the part ([`Fingerprint::part`]); the attempt that streamed the whole body
//! leaves its hash in a [`Slot`], which becomes the running hash once the part is acknowledged.
//! A part the server acknowledged without this run streaming all of it (it was already there)
//! and the parts it held before this run are hashed from the map instead: only a resumed upload
//! reads any of its file twice. The result is the same digest `--checksum` takes before an
//! upload, so the journal keeps either in one place.

use std::ops::Range;
use std::sync::{Arc, Mutex};

use crate::chunk::{ContentHash, MappedFile};

/// Where the attempt of a part that streamed its whole body leaves its hash.
#[derive(Clone, Default)]
pub(super) struct Slot(Arc<Mutex<Option<ContentHash>>>);

impl Slot {
    fn take(&self) -> Option<ContentHash> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// Where the hash stood before a part, for each of its attempts to start from.
#[derive(Clone)]
pub(super) struct PartStart {
    from: ContentHash,
    slot: Slot,
}

impl PartStart {
    /// A new attempt's hash.
    pub(super) fn attempt(&self) -> PartHash {
        PartHash { hasher: self.from.clone(), slot: self.slot.clone() }
    }
}

/// The hash of one attempt of a part's body, slice by slice.
pub(super) struct PartHash {
    hasher: ContentHash,
    slot: Slot,
}

impl PartHash {
    /// Adds a slice the connection is about to take.
    pub(super) fn update(&mut self, slice: &[u8]) {
        self.hasher.update(slice);
    }

    /// The whole body went out: this attempt's hash is the part's.
    pub(super) fn complete(self) {
        *self.slot.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(self.hasher);
    }
}

/// The running hash of a video's file, and how far into the file it got.
pub(super) struct Fingerprint {
    hasher: ContentHash,
    at: u64,
}

impl Fingerprint {
    pub(super) fn new() -> Self {
        Fingerprint { hasher: ContentHash::new(), at: 0 }
    }

    /// What each attempt of the part that starts at `start` hashes its body from. `None` when
    /// the hash did not reach the part's start (parts are planned in order, so only a bug gets
    /// here): the row then records no fingerprint.
    pub(super) fn part(&self, start: u64) -> Option<PartStart> {
        (start == self.at).then(|| PartStart { from: self.hasher.clone(), slot: Slot::default() })
    }

    /// The part `range` was acknowledged: takes the hash of the attempt that sent all of it.
    /// `false` when no attempt did (the server had it already): then [`Fingerprint::read`] it.
    pub(super) fn streamed(&mut self, range: Range<u64>, part: Option<&PartStart>) -> bool {
        if range.start != self.at {
            // A gap: no fingerprint for this row, and nothing to read for it.
            return true;
        }
        match part.and_then(|p| p.slot.take()) {
            Some(hasher) => {
                self.hasher = hasher;
                self.at = range.end;
                true
            }
            None => false,
        }
    }

    /// Hashes `range` from the map (a part the server held before this run). Reads the disk:
    /// call from `spawn_blocking`.
    pub(super) fn read(&mut self, file: &MappedFile, range: Range<u64>) {
        if range.start != self.at {
            return;
        }
        file.hash_range(&mut self.hasher, range.clone());
        self.at = range.end;
    }

    /// The fingerprint, hex, once the hash covers the whole file of `len` bytes.
    pub(super) fn finish(self, len: u64) -> Option<String> {
        (self.at == len).then(|| self.hasher.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_streamed_retried_or_read_give_the_file_s_fingerprint() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let file = MappedFile::open(&path).unwrap();
        let mut fp = Fingerprint::new();
        // Held before the run: read from the map.
        fp.read(&file, 0..30_000);
        // Streamed, after an attempt that broke off half-way.
        let part = fp.part(30_000).unwrap();
        let mut broken = part.attempt();
        broken.update(&data[30_000..40_000]);
        drop(broken);
        let mut whole = part.attempt();
        whole.update(&data[30_000..50_000]);
        whole.update(&data[50_000..60_000]);
        whole.complete();
        assert!(fp.streamed(30_000..60_000, Some(&part)));
        // Acknowledged without being streamed (the server already had it).
        let part = fp.part(60_000).unwrap();
        assert!(!fp.streamed(60_000..100_000, Some(&part)));
        fp.read(&file, 60_000..100_000);
        assert!(fp.part(1).is_none(), "a gap is never hashed over");
        assert_eq!(fp.finish(100_000), Some(file.fingerprint()));
    }

    #[test]
    fn a_hash_short_of_the_end_is_no_fingerprint() {
        let fp = Fingerprint::new();
        assert_eq!(fp.finish(10), None);
    }
}
