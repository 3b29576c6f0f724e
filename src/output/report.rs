//! The report: every manifest row mapped to its video and how it ended, written as CSV or JSON
//! by the file's extension, read back and merged across shards; and the run's summary.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::Path;

use indicatif::HumanBytes;
use serde::{Deserialize, Serialize};

use crate::engine::{RowResult, RowStatus};
use crate::manifest::Row;

/// The report's CSV columns, in order.
const CSV_COLUMNS: [&str; 12] = ["id", "line", "path", "videoId", "status", "bytes", "sent", "parts", "seconds", "mbPerS", "error", "note"];

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
    /// The shard of the manifest this run covered (`K/N`); absent for the whole manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
}

/// Every row with its outcome.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// Totals.
    pub summary: Summary,
    /// One entry per manifest row, in manifest order.
    pub rows: Vec<ReportRow>,
}

/// Why reports cannot be merged.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// A report could not be read.
    #[error("cannot read the report `{}`: {what}", path.display())]
    Read {
        /// The report.
        path: std::path::PathBuf,
        /// What went wrong.
        what: String,
    },
    /// Manifest lines in more than one report.
    #[error("manifest line(s) {} appear in more than one report (the same shard twice, or shards of different counts?)", list(.0))]
    Duplicate(Vec<u64>),
}

fn list(lines: &[u64]) -> String {
    let shown: Vec<String> = lines.iter().take(20).map(u64::to_string).collect();
    if lines.len() > 20 {
        format!("{} … ({} in all)", shown.join(", "), lines.len())
    } else {
        shown.join(", ")
    }
}

impl Summary {
    /// Counts rows by status, and the bytes this run sent.
    fn recount(&mut self, rows: &[ReportRow]) {
        self.rows = rows.len();
        (self.uploaded, self.skipped, self.failed, self.interrupted, self.pending, self.bytes) = (0, 0, 0, 0, 0, 0);
        for r in rows {
            match r.status {
                RowStatus::Uploaded => self.uploaded += 1,
                RowStatus::Skipped => self.skipped += 1,
                RowStatus::Failed => self.failed += 1,
                RowStatus::Interrupted => self.interrupted += 1,
                RowStatus::Pending => self.pending += 1,
            }
            self.bytes += r.sent;
        }
    }
}

fn mb_per_s(bytes: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        (bytes as f64 / 1e6 / seconds * 100.0).round() / 100.0
    } else {
        0.0
    }
}

impl Report {
    /// Joins rows and results (matched by index) into a report.
    pub fn new(rows: &[std::sync::Arc<Row>], results: &[RowResult], seconds: f64) -> Report {
        let by_index: BTreeMap<usize, &RowResult> = results.iter().map(|r| (r.index, r)).collect();
        let mut summary = Summary { seconds: (seconds * 1000.0).round() / 1000.0, ..Default::default() };
        let rows: Vec<ReportRow> = rows
            .iter()
            .enumerate()
            .map(|(i, row)| {
                let r = by_index.get(&i);
                let status = r.map_or(RowStatus::Failed, |r| r.status);
                let sent = r.map_or(0, |r| r.sent);
                let secs = r.map_or(0.0, |r| r.seconds);
                ReportRow {
                    id: row.id.clone(),
                    line: row.line,
                    path: row.path_text.clone(),
                    video_id: r.and_then(|r| r.video_id.clone()),
                    status,
                    bytes: r.map_or(0, |r| r.bytes),
                    sent,
                    parts: r.map_or(0, |r| r.parts),
                    seconds: (secs * 1000.0).round() / 1000.0,
                    mb_per_s: mb_per_s(sent, secs),
                    error: r.map_or_else(|| Some("the upload task ended without a result".into()), |r| r.error.clone()),
                    note: r.and_then(|r| r.note.clone()),
                }
            })
            .collect();
        summary.recount(&rows);
        summary.mb_per_s = mb_per_s(summary.bytes, seconds);
        Report { summary, rows }
    }

    /// Writes the report: JSON for `.json`, CSV otherwise.
    pub fn write(&self, path: &Path) -> io::Result<()> {
        let tmp = path.with_extension("tmp-report");
        {
            let mut out = io::BufWriter::new(std::fs::File::create(&tmp)?);
            if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("json")) {
                serde_json::to_writer_pretty(&mut out, self)?;
                out.write_all(b"\n")?;
            } else {
                let mut csv = csv::Writer::from_writer(&mut out);
                csv.write_record(CSV_COLUMNS)?;
                for r in &self.rows {
                    let status = serde_json::to_value(r.status).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
                    csv.write_record([
                        r.id.clone().unwrap_or_default(),
                        r.line.to_string(),
                        r.path.clone(),
                        r.video_id.clone().unwrap_or_default(),
                        status,
                        r.bytes.to_string(),
                        r.sent.to_string(),
                        r.parts.to_string(),
                        r.seconds.to_string(),
                        r.mb_per_s.to_string(),
                        r.error.clone().unwrap_or_default(),
                        r.note.clone().unwrap_or_default(),
                    ])?;
                }
                csv.flush()?;
            }
            out.flush()?;
        }
        std::fs::rename(tmp, path)
    }

    /// Reads a report written by [`Report::write`]: JSON for `.json`, CSV otherwise (a CSV
    /// report has no run totals, so they are counted from its rows).
    pub fn read(path: &Path) -> Result<Report, MergeError> {
        let bad = |what: String| MergeError::Read { path: path.to_owned(), what };
        if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("json")) {
            let file = std::fs::File::open(path).map_err(|e| bad(e.to_string()))?;
            return serde_json::from_reader(io::BufReader::new(file)).map_err(|e| bad(e.to_string()));
        }
        let mut reader = csv::Reader::from_path(path).map_err(|e| bad(e.to_string()))?;
        // Columns are found by name, so reports written before a column existed still merge.
        let headers = reader.headers().map_err(|e| bad(e.to_string()))?.clone();
        let column = |name: &str| headers.iter().position(|h| h == name);
        let required = |name: &str| column(name).ok_or_else(|| bad(format!("no `{name}` column")));
        let (id, line, path_col, video, status_col) =
            (column("id"), required("line")?, required("path")?, column("videoId"), required("status")?);
        let (bytes, sent, parts, seconds, mbps, error, note) =
            (column("bytes"), column("sent"), column("parts"), column("seconds"), column("mbPerS"), column("error"), column("note"));
        let mut rows = Vec::new();
        for record in reader.records() {
            let r = record.map_err(|e| bad(e.to_string()))?;
            let field = |i: Option<usize>| i.and_then(|i| r.get(i)).unwrap_or_default().to_owned();
            let opt = |i: Option<usize>| Some(field(i)).filter(|s| !s.is_empty());
            let num = |i: Option<usize>| {
                let text = field(i);
                if text.is_empty() {
                    return Ok(0.0);
                }
                text.parse::<f64>().map_err(|_| bad(format!("line {}: `{text}` is not a number", r.position().map_or(0, |p| p.line()))))
            };
            let status: RowStatus =
                serde_json::from_value(serde_json::Value::String(field(Some(status_col)))).map_err(|e| bad(e.to_string()))?;
            rows.push(ReportRow {
                id: opt(id),
                line: num(Some(line))? as u64,
                path: field(Some(path_col)),
                video_id: opt(video),
                status,
                bytes: num(bytes)? as u64,
                sent: num(sent)? as u64,
                parts: num(parts)? as u64,
                seconds: num(seconds)?,
                mb_per_s: num(mbps)?,
                error: opt(error),
                note: opt(note),
            });
        }
        let mut summary = Summary::default();
        summary.recount(&rows);
        summary.seconds = rows.iter().map(|r| r.seconds).fold(0.0, f64::max);
        summary.mb_per_s = mb_per_s(summary.bytes, summary.seconds);
        Ok(Report { summary, rows })
    }

    /// Joins the reports of a manifest's shards into the manifest's report. A line in two
    /// reports is an error (the same shard twice, or shards cut differently). Rows are sorted by
    /// line; totals are summed, wall time is the longest shard's.
    pub fn merge(reports: Vec<Report>) -> Result<Report, MergeError> {
        let mut by_line: BTreeMap<u64, ReportRow> = BTreeMap::new();
        let mut summary = Summary::default();
        let mut twice = Vec::new();
        for report in reports {
            summary.requests += report.summary.requests;
            summary.retries += report.summary.retries;
            summary.throttled += report.summary.throttled;
            summary.seconds = summary.seconds.max(report.summary.seconds);
            for row in report.rows {
                let line = row.line;
                if by_line.insert(line, row).is_some() {
                    twice.push(line);
                }
            }
        }
        if !twice.is_empty() {
            return Err(MergeError::Duplicate(twice));
        }
        let rows: Vec<ReportRow> = by_line.into_values().collect();
        summary.recount(&rows);
        summary.mb_per_s = mb_per_s(summary.bytes, summary.seconds);
        Ok(Report { summary, rows })
    }

    /// Tells the run's end on stderr: the human summary, or with `--log-format json` one
    /// `summary` event carrying every total (and one `row failed` event per failed row).
    pub fn announce(&self) {
        if !super::json_logs() {
            eprintln!("{}", self.human_summary());
            return;
        }
        for r in self.rows.iter().filter(|r| r.status == RowStatus::Failed) {
            tracing::warn!(target: "avbatch::summary", line = r.line, path = %r.path, video_id = r.video_id.as_deref(), error = r.error.as_deref(), "row failed");
        }
        let s = &self.summary;
        tracing::info!(
            target: "avbatch::summary",
            rows = s.rows,
            uploaded = s.uploaded,
            skipped = s.skipped,
            failed = s.failed,
            interrupted = s.interrupted,
            pending = s.pending,
            bytes = s.bytes,
            seconds = s.seconds,
            mb_per_s = s.mb_per_s,
            requests = s.requests,
            retries = s.retries,
            throttled = s.throttled,
            shard = s.shard.as_deref(),
            "summary"
        );
    }

    /// The human summary, for stderr.
    pub fn human_summary(&self) -> String {
        let s = &self.summary;
        let mut text = format!(
            "{} of {} rows uploaded, {} already done, {} failed, {} interrupted, {} not started; {} in {:.1} s ({:.1} MB/s); {} requests, {} retries, {} answered 429",
            s.uploaded,
            s.rows,
            s.skipped,
            s.failed,
            s.interrupted,
            s.pending,
            HumanBytes(s.bytes),
            s.seconds,
            s.mb_per_s,
            s.requests,
            s.retries,
            s.throttled
        );
        for r in self.rows.iter().filter(|r| r.status == RowStatus::Failed).take(10) {
            text.push_str(&format!("\n  line {} `{}`: {}", r.line, r.path, r.error.as_deref().unwrap_or("failed")));
        }
        for r in self.rows.iter().filter(|r| r.note.is_some()).take(10) {
            text.push_str(&format!("\n  note, line {} `{}`: {}", r.line, r.path, r.note.as_deref().unwrap_or_default()));
        }
        text
    }
}
