//! The report: every manifest row mapped to its video and how it ended, written as CSV or JSON
//! by the file's extension, and merged across shards; and the run's summary. The last step of
//! manifest → plan → engine → report.
//!
//! Nothing here holds a report's rows. Results are spilled as rows finish ([`Results`]) and the
//! report is written in manifest order by one pass over the manifest's rows beside the results
//! sorted by row ([`write_run`]): rows never started come out as `pending` on the way. The
//! summary is counters, known before that pass, so a JSON report still opens with it. Each row
//! is also shown to a [`RowSink`] in the same pass: what a person sees of it (a table, the JSON
//! on stdout) is the binary's, not this module's. [`merge`] joins shards' reports by sorting
//! their rows by line on disk.

use std::io::{self, BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use crate::engine::{RowResult, RowStatus};
use crate::manifest::Row;
use crate::spill::{Record, Sorter};

mod formula;
mod merge;
mod results;
#[cfg(test)]
mod tests;
mod writer;

pub use formula::{neutralised, restored};
pub use merge::{merge, MergeError};
use results::{read_json_line, write_json_line, Outcome};
pub use results::{Results, RunTotals};
pub use writer::{write_run, JsonOut, ReportWriter, Written};

/// What else sees each row as the report is written, in manifest order: a table on a terminal,
/// the JSON report on stdout, a log event.
pub trait RowSink {
    /// The next row.
    fn row(&mut self, row: &ReportRow);
}

/// Nothing sees the rows.
impl RowSink for () {
    fn row(&mut self, _: &ReportRow) {}
}

/// The report's CSV columns, in order.
const CSV_COLUMNS: [&str; 29] = [
    "id",
    "line",
    "path",
    "videoId",
    "status",
    "bytes",
    "sent",
    "parts",
    "seconds",
    "mbPerS",
    "error",
    "note",
    "title",
    "key",
    "size",
    "mtime",
    "startedAt",
    "endedAt",
    "destination",
    "runId",
    "fingerprint",
    "assets",
    "encoding",
    "encodingSeconds",
    "action",
    "updated",
    "transfer",
    "doneAt",
    "doneBy",
];

/// Finished rows held in memory before a sorted run of them goes to disk.
const RESULTS_IN_MEMORY: usize = 1 << 14;

/// One line of the report.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportRow {
    /// The row's `id` column.
    pub id: Option<String>,
    /// Line of the row in the manifest.
    pub line: u64,
    /// The path as written.
    pub path: String,
    /// The api.video video id.
    pub video_id: Option<String>,
    /// How the row ended.
    pub status: RowStatus,
    /// Bytes of the file the server holds.
    pub bytes: u64,
    /// Bytes this run sent (what the server already held is not counted).
    #[serde(default)]
    pub sent: u64,
    /// Parts the server holds.
    pub parts: u64,
    /// Seconds spent.
    pub seconds: f64,
    /// This run's throughput for the row in MB/s (10^6 bytes): `sent` over `seconds`.
    pub mb_per_s: f64,
    /// What went wrong.
    pub error: Option<String>,
    /// What else to know: other videos under the row's key, an unfinished upload replaced.
    #[serde(default)]
    pub note: Option<String>,
    /// The row's title.
    #[serde(default)]
    pub title: String,
    /// The row's idempotency key, as carried in its video's metadata.
    #[serde(default)]
    pub key: String,
    /// The file's size when the run read the manifest.
    #[serde(default)]
    pub size: u64,
    /// The file's modification time then (RFC 3339, UTC).
    #[serde(default)]
    pub mtime: Option<String>,
    /// When this run began and ended the row (RFC 3339, UTC); none for rows not started.
    #[serde(default)]
    pub started_at: Option<String>,
    /// See `started_at`.
    #[serde(default)]
    pub ended_at: Option<String>,
    /// Where the row went: the API's base URL, or the embedded server.
    #[serde(default)]
    pub destination: Option<String>,
    /// The run that wrote the row: when it started (RFC 3339, UTC).
    #[serde(default)]
    pub run_id: Option<String>,
    /// The fingerprint of the file's contents the journal keeps for the row, once done.
    #[serde(default)]
    pub fingerprint: Option<String>,
    /// The assets this run sent (`thumbnail captions.en chapters.en …`, space-separated); for a
    /// row done before the run, those the journal records on its video.
    #[serde(default)]
    pub assets: Option<String>,
    /// With `--wait`: `playable`, `encoded`, `failed` or `timeout`.
    #[serde(default)]
    pub encoding: Option<String>,
    /// With `--wait`: seconds from the source's completion to the encoding's outcome.
    #[serde(default)]
    pub encoding_seconds: Option<f64>,
    /// The row's `action`: `create`, `upsert`, `update` or `delete`.
    #[serde(default)]
    pub action: Option<String>,
    /// The fields this run changed on the video (`title tags …`, space-separated).
    #[serde(default)]
    pub updated: Option<String>,
    /// How the source went: `file`, `relay` or `pull` (for a row done before the run, as the
    /// journal recorded it then).
    #[serde(default)]
    pub transfer: Option<String>,
    /// When the row's source was complete (RFC 3339, UTC): this run's end of it, or, for a row
    /// done before the run, as its journal recorded it.
    #[serde(default)]
    pub done_at: Option<String>,
    /// The run that completed it (its `runId`): this run, or an earlier one per the journal.
    #[serde(default)]
    pub done_by: Option<String>,
}

/// `2026-11-30T00:29:00.123Z`.
pub fn rfc3339(t: std::time::SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The run's totals.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Rows in the manifest.
    pub rows: usize,
    /// Rows uploaded by this run.
    pub uploaded: usize,
    /// Rows already complete before this run (per the journal or the server): nothing sent.
    pub skipped: usize,
    /// Rows failed.
    pub failed: usize,
    /// Rows interrupted part-way.
    pub interrupted: usize,
    /// Rows not started.
    pub pending: usize,
    /// Rows whose video's fields, thumbnail or tracks this run changed, its source complete
    /// before the run: nothing uploaded.
    #[serde(default)]
    pub updated: usize,
    /// Rows whose videos this run deleted (`delete`).
    #[serde(default)]
    pub deleted: usize,
    /// Bytes this run sent.
    pub bytes: u64,
    /// Wall time.
    pub seconds: f64,
    /// Overall throughput in MB/s (10^6 bytes).
    pub mb_per_s: f64,
    /// Requests sent, retries among them, and 429 answers.
    pub requests: u64,
    /// Attempts that were retries.
    pub retries: u64,
    /// 429 answers.
    pub throttled: u64,
    /// Thumbnails, tracks and default captions sent.
    #[serde(default)]
    pub assets: u64,
    /// The shard of the manifest this run covered (`K/N`); absent for the whole manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    /// Where the rows went: the API's base URL, or the embedded server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
    /// The run: when it started (RFC 3339, UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
}

impl Summary {
    /// Counts one row by its status, and the bytes this run sent for it.
    fn count(&mut self, status: RowStatus, sent: u64) {
        self.rows += 1;
        match status {
            RowStatus::Uploaded => self.uploaded += 1,
            RowStatus::Skipped => self.skipped += 1,
            RowStatus::Failed => self.failed += 1,
            RowStatus::Interrupted => self.interrupted += 1,
            RowStatus::Pending => self.pending += 1,
            RowStatus::Updated => self.updated += 1,
            RowStatus::Deleted => self.deleted += 1,
        }
        self.bytes += sent;
    }

    /// Rows that ended as asked: uploaded, already done, updated or deleted.
    pub fn in_step(&self) -> usize {
        self.uploaded + self.skipped + self.updated + self.deleted
    }

    /// `3 of 8 rows uploaded, 2 already done, 1 updated, 0 failed, 0 interrupted, 2 not
    /// started`: how the rows ended, as the summary and the notification say it.
    pub fn rows_text(&self) -> String {
        format!(
            "{} of {} rows uploaded, {} already done{}, {} failed, {} interrupted, {} not started",
            self.uploaded,
            self.rows,
            self.skipped,
            self.changed_text(),
            self.failed,
            self.interrupted,
            self.pending
        )
    }

    /// `, 2 updated, 1 deleted`: the rows whose videos changed otherwise than by an upload,
    /// when there are any.
    fn changed_text(&self) -> String {
        let mut text = String::new();
        for (n, what) in [(self.updated, "updated"), (self.deleted, "deleted")] {
            if n > 0 {
                text.push_str(&format!(", {n} {what}"));
            }
        }
        text
    }

    /// Sets the wall time, and the throughput from it.
    pub fn set_seconds(&mut self, seconds: f64) {
        self.seconds = (seconds * 1000.0).round() / 1000.0;
        self.mb_per_s = mb_per_s(self.bytes, seconds);
    }
}

fn mb_per_s(bytes: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        (bytes as f64 / 1e6 / seconds * 100.0).round() / 100.0
    } else {
        0.0
    }
}

/// The name a status has in reports.
pub fn status_name(status: RowStatus) -> &'static str {
    match status {
        RowStatus::Uploaded => "uploaded",
        RowStatus::Skipped => "skipped",
        RowStatus::Failed => "failed",
        RowStatus::Interrupted => "interrupted",
        RowStatus::Pending => "pending",
        RowStatus::Updated => "updated",
        RowStatus::Deleted => "deleted",
    }
}
