//! What a row costs in requests, bucket by bucket, as the engine makes them: what `--dry-run`
//! adds up to tell how long the account's quotas let a run take.
//!
//! Uploads and writes are exact for a run that meets no fault (no retry, no conflict with
//! another run): a part is one upload; a create, each asset and the asset record in the
//! video's metadata are one write each. Reads depend on what the run finds, so they are a
//! range: a lookup before a create and a listing after it may be answered by the account's
//! index, or gathered with other rows' ([`crate::engine::keys`]).

use std::collections::HashSet;

use crate::manifest::Row;
use avbatch_api::{Bucket, Quotas};

/// Requests per bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cost {
    /// Source uploads: one a part.
    pub uploads: u64,
    /// Creates, assets, the asset record.
    pub writes: u64,
    /// Reads at the least.
    pub reads_min: u64,
    /// Reads at the most.
    pub reads_max: u64,
}

/// What the run would do of a row's source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Not started: looked up, created, all its parts sent.
    New,
    /// Not started, its object pulled by api.video from its URL: looked up and created, with
    /// nothing sent.
    Pull,
    /// Started or failed with a video: the video and its status read, its missing parts sent.
    Started,
    /// Complete already: nothing sent.
    Done,
}

impl std::ops::AddAssign for Cost {
    fn add_assign(&mut self, other: Cost) {
        self.uploads += other.uploads;
        self.writes += other.writes;
        self.reads_min += other.reads_min;
        self.reads_max += other.reads_max;
    }
}

impl Cost {
    /// The requests of `bucket` (reads: at the most).
    pub fn of(&self, bucket: Bucket) -> u64 {
        match bucket {
            Bucket::Uploads => self.uploads,
            Bucket::Writes => self.writes,
            Bucket::Reads => self.reads_max,
        }
    }

    /// The least time `quotas` allow for these requests, in seconds: each bucket's requests
    /// at its pace, the buckets at once (the slowest decides), the first minute's quota free.
    pub fn seconds_at_least(&self, quotas: Quotas) -> f64 {
        Bucket::ALL
            .iter()
            .map(|b| {
                let (n, per_minute) = (self.of(*b), quotas.of(*b).max(1));
                n.saturating_sub(per_minute) as f64 * 60.0 / per_minute as f64
            })
            .fold(0.0, f64::max)
    }
}

/// The reads of a run that creates videos, whatever its rows: the account's first page (how
/// large it is decides whether the run indexes it), and one listing after the creates at the
/// least.
pub const CREATING_RUN: Cost = Cost { uploads: 0, writes: 0, reads_min: 2, reads_max: 2 };

/// The requests a row costs: `parts` of its source to send, as `source` says, and its assets
/// not in `held` (by name, as the journal records them).
pub fn of_row(row: &Row, source: Source, parts: u64, held: &HashSet<String>) -> Cost {
    let mut cost = Cost { uploads: parts, ..Cost::default() };
    match source {
        Source::New | Source::Pull => {
            cost.writes += 1;
            // The lookup (by its key, then by avbatch 0.1's) and the listing after the create,
            // unless the account's index answers them.
            cost.reads_max += 3;
        }
        // The journal's video and its status.
        Source::Started => {
            cost.reads_min += 2;
            cost.reads_max += 2;
        }
        Source::Done => {}
    }
    let assets = crate::engine::asset_names(row).into_iter().filter(|n| !held.contains(n)).count();
    if assets > 0 {
        // Each asset, then the video read and its asset record written.
        cost.writes += assets as u64 + 1;
        cost.reads_min += 1;
        cost.reads_max += 1;
    }
    cost
}

/// An `update` row, or an `upsert` whose video is complete: the video found (its key looked
/// up unless the journal knows it, its status, the video read) and, when its fields differ
/// from the row's, one PATCH. A journal that set these fields asks nothing.
pub fn of_update(patch: bool) -> Cost {
    Cost { uploads: 0, writes: u64::from(patch), reads_min: u64::from(patch), reads_max: 4 }
}

/// A `delete` row: its key looked up (by its key, then by avbatch 0.1's), each of its
/// `videos` deleted.
pub fn of_delete(videos: u64) -> Cost {
    Cost { uploads: 0, writes: videos, reads_min: 0, reads_max: 2 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slowest_bucket_decides() {
        let cost = Cost { uploads: 51_234, writes: 1_000, reads_min: 0, reads_max: 2_000 };
        // 51 134 uploads past the first minute's 100, at 100 a minute: 511.34 minutes.
        let s = cost.seconds_at_least(Quotas::PRODUCTION);
        assert!((s - 51_134.0 * 0.6).abs() < 1e-6, "{s}");
        assert_eq!(Cost::default().seconds_at_least(Quotas::SANDBOX), 0.0);
    }
}
