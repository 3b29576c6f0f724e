//! The rules of `POST /videos/{id}/source`: `Content-Range` grammar and the per-video session.
//!
//! Pure logic, no I/O: [`UploadState::precheck`] runs on the headers before the body is read,
//! [`UploadState::admit`] once its length is known, and [`UploadState::apply`] records an
//! accepted chunk. Every refusal is the slug API.md §3 documents. The store persists each chunk
//! as a file whose name is its [`ChunkKey`], so the state can be rebuilt from a folder listing.

use std::collections::BTreeMap;

use super::config::{MAX_CHUNK_BYTES, MAX_PARTS, MAX_TOTAL_BYTES, MIN_CHUNK_BYTES};
use super::problem::ApiError;
use avbatch_api::{slug, BytesRange, Ingest, ReceivedParts};

/// A parsed `Content-Range` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentRange {
    /// `part N/M` or `part N/*`.
    Part { part: u64, total: Option<u64> },
    /// `bytes FROM-TO/TOTAL`, `to` inclusive.
    Bytes { from: u64, to: u64, total: u64 },
}

fn malformed(value: &str) -> ApiError {
    ApiError::bad_request(
        "video-content-range-malformed",
        "The \"Content-Range\" header is malformed.",
    )
    .name("Content-Range")
    .detail(format!("`{value}` is neither `bytes FROM-TO/TOTAL` nor `part N/TOTAL` nor `part N/*`"))
}

/// Parses `bytes FROM-TO/TOTAL`, `part N/TOTAL` or `part N/*` (spec grammar, API.md §3.1).
///
/// The spec's regex would also admit `bytes FROM-TO/*`; api.video documents bytes ranges only with
/// a known total and the completion rule needs one, so that form is refused as malformed.
pub fn parse_content_range(value: &str) -> Result<ContentRange, ApiError> {
    let number = |s: &str| -> Option<u64> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    let err = || malformed(value);
    let v = value.trim();
    if let Some(rest) = v.strip_prefix("part ") {
        let (part, total) = rest.split_once('/').ok_or_else(err)?;
        let part = number(part).ok_or_else(err)?;
        let total = if total == "*" { None } else { Some(number(total).ok_or_else(err)?) };
        return Ok(ContentRange::Part { part, total });
    }
    if let Some(rest) = v.strip_prefix("bytes ") {
        let (range, total) = rest.split_once('/').ok_or_else(err)?;
        let (from, to) = range.split_once('-').ok_or_else(err)?;
        return Ok(ContentRange::Bytes {
            from: number(from).ok_or_else(err)?,
            to: number(to).ok_or_else(err)?,
            total: number(total).ok_or_else(err)?,
        });
    }
    Err(err())
}

/// What a video has received so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Session {
    /// Nothing yet.
    #[default]
    Empty,
    /// The whole source in one request, of this size.
    Single { size: u64 },
    /// Part mode: part number → (its length, the total its header carried); the total once
    /// some part carried it.
    Parts { parts: BTreeMap<u64, (u64, Option<u64>)>, total: Option<u64> },
    /// Bytes mode: `from` → `to` (inclusive) of every chunk, and the total.
    Bytes { ranges: BTreeMap<u64, u64>, total: u64 },
}

/// One stored chunk; its file name encodes it, so a folder listing rebuilds the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkKey {
    /// The whole source.
    Single,
    /// Part `part` of `total` (`None` = `*`).
    Part { part: u64, total: Option<u64> },
    /// Bytes `from..=to` of `total`.
    Bytes { from: u64, to: u64, total: u64 },
}

impl ChunkKey {
    /// The chunk's file name in the video's folder.
    pub fn file_name(&self) -> String {
        match *self {
            ChunkKey::Single => "single.chunk".to_owned(),
            ChunkKey::Part { part, total: Some(t) } => format!("part-{part}-of-{t}.chunk"),
            ChunkKey::Part { part, total: None } => format!("part-{part}-of-x.chunk"),
            ChunkKey::Bytes { from, to, total } => format!("bytes-{from}-{to}-of-{total}.chunk"),
        }
    }

    /// Reads a file name written by [`ChunkKey::file_name`].
    pub fn from_file_name(name: &str) -> Option<ChunkKey> {
        let stem = name.strip_suffix(".chunk")?;
        if stem == "single" {
            return Some(ChunkKey::Single);
        }
        if let Some(rest) = stem.strip_prefix("part-") {
            let (part, total) = rest.split_once("-of-")?;
            let total = if total == "x" { None } else { Some(total.parse().ok()?) };
            return Some(ChunkKey::Part { part: part.parse().ok()?, total });
        }
        let rest = stem.strip_prefix("bytes-")?;
        let (range, total) = rest.split_once("-of-")?;
        let (from, to) = range.split_once('-')?;
        Some(ChunkKey::Bytes {
            from: from.parse().ok()?,
            to: to.parse().ok()?,
            total: total.parse().ok()?,
        })
    }
}

/// The upload state of one video.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UploadState {
    /// Chunks received.
    pub session: Session,
}

fn part_error(slug: &'static str, title: &'static str) -> ApiError {
    ApiError::bad_request(slug, title).name("Content-Range")
}

fn file_error(slug: &'static str, title: &'static str) -> ApiError {
    ApiError::bad_request(slug, title).name("file")
}

/// `400 uploaded-file-too-large`: one request carried more than 200 MiB.
pub fn too_large() -> ApiError {
    file_error("uploaded-file-too-large", "The uploaded file is too large.")
        .detail(format!("a request may carry at most {MAX_CHUNK_BYTES} bytes"))
}

/// `400 uploaded-file-no-file`.
pub fn no_file() -> ApiError {
    file_error("uploaded-file-no-file", "There is no uploaded file in the request.")
}

/// `400 uploaded-file-multiple-files`.
pub fn multiple_files() -> ApiError {
    file_error(
        "uploaded-file-multiple-files",
        "There is more than one uploaded file in the request.",
    )
}

impl UploadState {
    /// Rebuilds the state from the chunk keys found on disk.
    pub fn from_chunks(chunks: impl IntoIterator<Item = (ChunkKey, u64)>) -> UploadState {
        let mut state = UploadState::default();
        for (key, len) in chunks {
            state.apply(key, len);
        }
        state
    }

    /// Whether the whole source has arrived.
    pub fn is_complete(&self) -> bool {
        match &self.session {
            Session::Empty => false,
            Session::Single { .. } => true,
            Session::Parts { parts, total } => total.is_some_and(|t| parts.len() as u64 == t),
            Session::Bytes { ranges, total } => {
                ranges.iter().map(|(f, t)| t - f + 1).sum::<u64>() == *total
            }
        }
    }

    /// The header rules, checked before the body is read (API.md §3).
    pub fn precheck(&self, range: Option<ContentRange>) -> Result<(), ApiError> {
        if self.is_complete() {
            return Err(ApiError::bad_request(
                slug::SOURCE_ALREADY_UPLOADED,
                "The source of the video is already uploaded.",
            ));
        }
        match (range, &self.session) {
            (None, Session::Empty) => Ok(()),
            (None, _) => Err(ApiError::bad_request(
                "video-content-range-already-initiated",
                "This video source has already been initiated with a \"Content-Range\" upload.",
            )),
            (Some(ContentRange::Bytes { .. }), Session::Parts { .. }) => Err(part_error(
                "video-content-range-started-with-part",
                "This video upload has been started with a \"part\" Content-Range; it cannot go \
                 on with \"bytes\".",
            )),
            (Some(ContentRange::Part { .. }), Session::Bytes { .. }) => Err(part_error(
                "video-content-range-started-with-bytes",
                "This video upload has been started with a \"bytes\" Content-Range; it cannot go \
                 on with \"part\".",
            )),
            (Some(ContentRange::Part { part, total }), session) => {
                let (received, known) = match session {
                    Session::Parts { parts, total } => (Some(parts), *total),
                    _ => (None, None),
                };
                check_part(part, total, known, received)
            }
            (Some(ContentRange::Bytes { from, to, total }), session) => {
                let received = match session {
                    Session::Bytes { ranges, total } => Some((ranges, *total)),
                    _ => None,
                };
                check_bytes(from, to, total, received)
            }
        }
    }

    /// All rules, now that the file's length is known. Returns the key to store it under.
    pub fn admit(&self, range: Option<ContentRange>, len: u64) -> Result<ChunkKey, ApiError> {
        self.precheck(range)?;
        if len == 0 {
            return Err(file_error("uploaded-file-empty", "The uploaded file is empty."));
        }
        if len > MAX_CHUNK_BYTES {
            return Err(too_large());
        }
        match range {
            None => Ok(ChunkKey::Single),
            Some(ContentRange::Part { part, total }) => {
                let known = match &self.session {
                    Session::Parts { total, .. } => *total,
                    _ => None,
                };
                let is_last = total.or(known) == Some(part);
                if !is_last && len < MIN_CHUNK_BYTES {
                    return Err(part_error(
                        "video-content-range-by-part-uploaded-file-too-small",
                        "The uploaded file is too small.",
                    )
                    .detail(format!(
                        "part {part} has {len} bytes; every part but the last needs at least \
                         {MIN_CHUNK_BYTES}"
                    )));
                }
                Ok(ChunkKey::Part { part, total })
            }
            Some(ContentRange::Bytes { from, to, total }) => {
                if len != to - from + 1 {
                    return Err(part_error(
                        "video-content-range-by-bytes-range-mismatch",
                        "The Content-Range does not match the uploaded file size.",
                    )
                    .detail(format!(
                        "the range {from}-{to} holds {} bytes but the file has {len}",
                        to - from + 1
                    )));
                }
                Ok(ChunkKey::Bytes { from, to, total })
            }
        }
    }

    /// Records an accepted chunk of `len` bytes.
    pub fn apply(&mut self, key: ChunkKey, len: u64) {
        match key {
            ChunkKey::Single => self.session = Session::Single { size: len },
            ChunkKey::Part { part, total } => {
                if !matches!(self.session, Session::Parts { .. }) {
                    self.session = Session::Parts { parts: BTreeMap::new(), total: None };
                }
                if let Session::Parts { parts, total: known } = &mut self.session {
                    parts.insert(part, (len, total));
                    if total.is_some() {
                        *known = total;
                    }
                }
            }
            ChunkKey::Bytes { from, to, total } => {
                if !matches!(self.session, Session::Bytes { .. }) {
                    self.session = Session::Bytes { ranges: BTreeMap::new(), total };
                }
                if let Session::Bytes { ranges, .. } = &mut self.session {
                    ranges.insert(from, to);
                }
            }
        }
    }

    /// The stored chunks in source order, with their lengths.
    pub fn segments(&self) -> Vec<(ChunkKey, u64)> {
        match &self.session {
            Session::Empty => Vec::new(),
            Session::Single { size } => vec![(ChunkKey::Single, *size)],
            Session::Parts { parts, .. } => parts
                .iter()
                .map(|(&part, &(len, total))| (ChunkKey::Part { part, total }, len))
                .collect(),
            Session::Bytes { ranges, total } => ranges
                .iter()
                .map(|(&from, &to)| (ChunkKey::Bytes { from, to, total: *total }, to - from + 1))
                .collect(),
        }
    }

    /// Total size of the source when known.
    pub fn filesize(&self) -> Option<u64> {
        match &self.session {
            Session::Empty => None,
            Session::Single { size } => Some(*size),
            Session::Parts { parts, .. } => {
                self.is_complete().then(|| parts.values().map(|(len, _)| len).sum())
            }
            Session::Bytes { total, .. } => Some(*total),
        }
    }

    /// The `ingest` member of `GET /videos/{id}/status`.
    pub fn ingest(&self) -> Ingest {
        let status = match &self.session {
            Session::Empty => None,
            _ if self.is_complete() => Some("uploaded"),
            _ => Some("uploading"),
        };
        let received_bytes = match &self.session {
            Session::Bytes { ranges, total } => {
                ranges.iter().map(|(&from, &to)| BytesRange { from, to, total: *total }).collect()
            }
            _ => Vec::new(),
        };
        let received_parts = match &self.session {
            Session::Parts { parts, total } => {
                ReceivedParts { parts: parts.keys().copied().collect(), total: *total }
            }
            _ => ReceivedParts::default(),
        };
        Ingest {
            status: status.map(str::to_owned),
            filesize: self.filesize(),
            received_bytes,
            received_parts: Some(received_parts),
        }
    }
}

fn check_part(
    part: u64,
    total: Option<u64>,
    known: Option<u64>,
    received: Option<&BTreeMap<u64, (u64, Option<u64>)>>,
) -> Result<(), ApiError> {
    if part == 0 {
        return Err(part_error(
            "video-content-range-by-part-part-zero",
            "The part number must be greater than 0.",
        ));
    }
    if total == Some(0) {
        return Err(part_error(
            "video-content-range-by-part-total-parts-zero",
            "The total number of parts must be greater than 0.",
        ));
    }
    if part > MAX_PARTS {
        return Err(part_error(
            "video-content-range-by-part-part-too-high-allowed",
            "The part number is too high.",
        )
        .detail(format!("the part number must be lower than or equal to {MAX_PARTS}")));
    }
    if total.is_some_and(|t| t > MAX_PARTS) {
        return Err(part_error(
            "video-content-range-by-part-total-parts-too-high",
            "The total number of parts is too high.",
        )
        .detail(format!("the total number of parts must be lower than or equal to {MAX_PARTS}")));
    }
    if let (Some(t), Some(k)) = (total, known) {
        if t != k {
            return Err(part_error(
                "video-content-range-by-part-different-total-parts",
                "The total number of parts is different from the previous one.",
            )
            .detail(format!("the total number of parts was {k} in a previous part")));
        }
    }
    if let Some(t) = total.or(known) {
        if part > t {
            return Err(part_error(
                "video-content-range-by-part-part-too-high-total",
                "The part number is higher than the total number of parts.",
            )
            .detail(format!("part {part} of {t}")));
        }
    }
    if let (Some(t), Some(max)) = (total, received.and_then(|r| r.keys().next_back())) {
        if t < *max {
            return Err(part_error(
                "video-content-range-by-part-total-parts-too-low",
                "The total number of parts is too low.",
            )
            .detail(format!("part {max} was already received")));
        }
    }
    if received.is_some_and(|r| r.contains_key(&part)) {
        return Err(part_error(slug::PART_ALREADY_SENT, "This part has already been sent.")
            .detail(format!("part {part} was already received")));
    }
    Ok(())
}

fn check_bytes(
    from: u64,
    to: u64,
    total: u64,
    received: Option<(&BTreeMap<u64, u64>, u64)>,
) -> Result<(), ApiError> {
    let e = part_error;
    if total == 0 {
        return Err(e(
            "video-content-range-by-bytes-total-bytes-zero",
            "The total number of bytes must be greater than 0.",
        ));
    }
    if total > MAX_TOTAL_BYTES {
        return Err(e(
            "video-content-range-by-bytes-total-bytes-too-high",
            "The total number of bytes is too high.",
        )
        .detail(format!("the total must be lower than or equal to {MAX_TOTAL_BYTES}")));
    }
    if to > MAX_TOTAL_BYTES - 1 {
        return Err(e(
            "video-content-range-by-bytes-to-byte-too-high-allowed",
            "The range end is too high.",
        )
        .detail(format!("the range end must be lower than or equal to {}", MAX_TOTAL_BYTES - 1)));
    }
    if from > to {
        return Err(e(
            "video-content-range-by-bytes-from-byte-too-high",
            "The range start is higher than the range end.",
        ));
    }
    if to >= total {
        return Err(e(
            "video-content-range-by-bytes-to-byte-too-high-total",
            "The range end must be lower than the total number of bytes.",
        ));
    }
    if let Some((ranges, known)) = received {
        if let Some(max_to) = ranges.values().max() {
            if total <= *max_to {
                return Err(e(
                    "video-content-range-by-bytes-total-bytes-too-low",
                    "The total number of bytes is too low.",
                )
                .detail(format!("byte {max_to} was already received")));
            }
        }
        if total != known {
            return Err(e(
                "video-content-range-by-bytes-different-total-bytes",
                "The total number of bytes is different from the previous one.",
            )
            .detail(format!("the total was {known} in a previous chunk")));
        }
    }
    let len = to - from + 1;
    if len > MAX_CHUNK_BYTES {
        return Err(e("video-content-range-by-bytes-range-too-large", "The range is too large.")
            .detail(format!("the range must be lower than or equal to {MAX_CHUNK_BYTES} bytes")));
    }
    if to != total - 1 && len < MIN_CHUNK_BYTES {
        return Err(e("video-content-range-by-bytes-range-too-small", "The range is too small.")
            .detail(format!("every chunk but the last needs at least {MIN_CHUNK_BYTES} bytes")));
    }
    if let Some((ranges, _)) = received {
        // Ranges never overlap each other, so only the last one starting at or before `to` can
        // reach into [from, to].
        if let Some((&f, &t)) = ranges.range(..=to).next_back() {
            if t >= from {
                return Err(e(slug::RANGE_OVERLAP, "The range overlaps a range already received.")
                    .detail(format!("bytes {f}-{t} were already received")));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const MIB: u64 = 1024 * 1024;

    fn slug(r: Result<impl std::fmt::Debug, ApiError>) -> &'static str {
        r.expect_err("expected a refusal").slug
    }

    #[test]
    fn parses_the_spec_grammar() {
        assert_eq!(
            parse_content_range("part 3/*").unwrap(),
            ContentRange::Part { part: 3, total: None }
        );
        assert_eq!(
            parse_content_range("part 1/1").unwrap(),
            ContentRange::Part { part: 1, total: Some(1) }
        );
        assert_eq!(
            parse_content_range("bytes 0-9/10").unwrap(),
            ContentRange::Bytes { from: 0, to: 9, total: 10 }
        );
        for bad in [
            "",
            "part",
            "part 1",
            "part -1/2",
            "part 1/2/3",
            "bytes 0-9",
            "bytes 0-9/*",
            "bytes 9/10",
            "bytes a-b/c",
            "parts 1/2",
            "part 99999999999999999999999/1",
        ] {
            assert_eq!(slug(parse_content_range(bad)), "video-content-range-malformed", "{bad:?}");
        }
    }

    #[test]
    fn chunk_keys_round_trip_through_file_names() {
        for key in [
            ChunkKey::Single,
            ChunkKey::Part { part: 3, total: None },
            ChunkKey::Part { part: 2, total: Some(7) },
            ChunkKey::Bytes { from: 5, to: 9, total: 10 },
        ] {
            assert_eq!(ChunkKey::from_file_name(&key.file_name()), Some(key));
        }
        assert_eq!(ChunkKey::from_file_name("part-1-of-x.tmp"), None);
    }

    #[test]
    fn part_session_completes_when_all_parts_arrive() {
        let mut s = UploadState::default();
        for (part, total, len) in [(2, None, 5 * MIB), (1, None, 6 * MIB), (3, Some(3), 10)] {
            let key = s.admit(Some(ContentRange::Part { part, total }), len).unwrap();
            assert!(!s.is_complete());
            s.apply(key, len);
        }
        assert!(s.is_complete());
        assert_eq!(s.filesize(), Some(11 * MIB + 10));
        let order: Vec<u64> = s
            .segments()
            .iter()
            .map(|(k, _)| if let ChunkKey::Part { part, .. } = k { *part } else { 0 })
            .collect();
        assert_eq!(order, vec![1, 2, 3]);
        assert_eq!(
            slug(s.precheck(Some(ContentRange::Part { part: 1, total: Some(3) }))),
            "video-source-already-uploaded"
        );
    }

    #[test]
    fn part_rules() {
        let mut s = UploadState::default();
        s.apply(ChunkKey::Part { part: 1, total: None }, 5 * MIB);
        s.apply(ChunkKey::Part { part: 2, total: None }, 5 * MIB);
        let p = |part, total| Some(ContentRange::Part { part, total });
        assert_eq!(slug(s.precheck(p(0, None))), "video-content-range-by-part-part-zero");
        assert_eq!(slug(s.precheck(p(1, Some(0)))), "video-content-range-by-part-total-parts-zero");
        assert_eq!(
            slug(s.precheck(p(10_001, None))),
            "video-content-range-by-part-part-too-high-allowed"
        );
        assert_eq!(
            slug(s.precheck(p(3, Some(10_001)))),
            "video-content-range-by-part-total-parts-too-high"
        );
        assert_eq!(
            slug(s.precheck(p(1, Some(1)))),
            "video-content-range-by-part-total-parts-too-low"
        );
        assert_eq!(slug(s.precheck(p(2, None))), "video-content-range-by-part-part-already-sent");
        assert_eq!(
            slug(s.precheck(p(5, Some(4)))),
            "video-content-range-by-part-part-too-high-total"
        );
        assert_eq!(
            slug(s.admit(p(3, None), MIB)),
            "video-content-range-by-part-uploaded-file-too-small"
        );
        assert_eq!(slug(s.admit(p(3, Some(3)), 0)), "uploaded-file-empty");
        s.apply(ChunkKey::Part { part: 4, total: Some(4) }, 10);
        assert_eq!(
            slug(s.precheck(p(3, Some(5)))),
            "video-content-range-by-part-different-total-parts"
        );
        assert_eq!(slug(s.precheck(p(5, None))), "video-content-range-by-part-part-too-high-total");
        assert_eq!(
            slug(s.precheck(Some(ContentRange::Bytes { from: 0, to: 9, total: 10 }))),
            "video-content-range-started-with-part"
        );
        assert_eq!(slug(s.precheck(None)), "video-content-range-already-initiated");
        // The part whose number is the known total is the last one and may be small.
        assert!(s.admit(p(3, None), 5 * MIB).is_ok());
    }

    #[test]
    fn bytes_rules() {
        let mut s = UploadState::default();
        let total = 20 * MIB;
        s.apply(ChunkKey::Bytes { from: 0, to: 5 * MIB - 1, total }, 5 * MIB);
        let b = |from, to, total| Some(ContentRange::Bytes { from, to, total });
        assert_eq!(slug(s.precheck(b(0, 0, 0))), "video-content-range-by-bytes-total-bytes-zero");
        assert_eq!(
            slug(s.precheck(b(0, 1, MAX_TOTAL_BYTES + 1))),
            "video-content-range-by-bytes-total-bytes-too-high"
        );
        assert_eq!(
            slug(s.precheck(b(0, MAX_TOTAL_BYTES, MAX_TOTAL_BYTES))),
            "video-content-range-by-bytes-to-byte-too-high-allowed"
        );
        assert_eq!(
            slug(s.precheck(b(9, 8, total))),
            "video-content-range-by-bytes-from-byte-too-high"
        );
        assert_eq!(
            slug(s.precheck(b(0, total, total))),
            "video-content-range-by-bytes-to-byte-too-high-total"
        );
        assert_eq!(
            slug(s.precheck(b(0, 10, 4 * MIB))),
            "video-content-range-by-bytes-total-bytes-too-low"
        );
        assert_eq!(
            slug(s.precheck(b(5 * MIB, 10 * MIB - 1, 21 * MIB))),
            "video-content-range-by-bytes-different-total-bytes"
        );
        assert_eq!(
            slug(UploadState::default().precheck(b(0, 201 * MIB, 300 * MIB))),
            "video-content-range-by-bytes-range-too-large"
        );
        assert_eq!(
            slug(s.precheck(b(5 * MIB, 6 * MIB, total))),
            "video-content-range-by-bytes-range-too-small"
        );
        assert_eq!(
            slug(s.precheck(b(5 * MIB - 1, 10 * MIB, total))),
            "video-content-range-by-bytes-range-overlap"
        );
        assert_eq!(
            slug(s.admit(b(5 * MIB, 10 * MIB - 1, total), 5 * MIB - 1)),
            "video-content-range-by-bytes-range-mismatch"
        );
        assert_eq!(
            slug(s.precheck(Some(ContentRange::Part { part: 1, total: None }))),
            "video-content-range-started-with-bytes"
        );
        // The last chunk may be small, and the ranges may come in any order.
        let key = s.admit(b(20 * MIB - 3, 20 * MIB - 1, total), 3).unwrap();
        s.apply(key, 3);
        let key = s.admit(b(5 * MIB, 20 * MIB - 4, total), 15 * MIB - 3).unwrap();
        s.apply(key, 15 * MIB - 3);
        assert!(s.is_complete());
        assert_eq!(s.filesize(), Some(total));
    }

    #[test]
    fn single_request_rules() {
        let mut s = UploadState::default();
        assert_eq!(slug(s.admit(None, 0)), "uploaded-file-empty");
        assert_eq!(slug(s.admit(None, MAX_CHUNK_BYTES + 1)), "uploaded-file-too-large");
        let key = s.admit(None, 10).unwrap();
        s.apply(key, 10);
        assert!(s.is_complete());
        assert_eq!(slug(s.precheck(None)), "video-source-already-uploaded");
        assert_eq!(s.ingest().status.as_deref(), Some("uploaded"));
    }

    #[test]
    fn status_before_any_chunk_has_no_ingest_status() {
        let s = UploadState::default();
        let ingest = serde_json::to_value(s.ingest()).unwrap();
        assert!(ingest.get("status").is_none());
        assert_eq!(ingest["receivedParts"], json!({"parts": [], "total": null}));
    }
}
