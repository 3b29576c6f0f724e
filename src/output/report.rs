//! The report: every manifest row mapped to its video and how it ended, written as CSV or JSON
//! by the file's extension, and merged across shards; and the run's summary.
//!
//! Nothing here holds a report's rows. Results are spilled as rows finish ([`Results`]) and the
//! report is written in manifest order by one pass over the manifest's rows beside the results
//! sorted by row ([`write_run`]): rows never started come out as `pending` on the way. The
//! summary is counters, known before that pass, so a JSON report still opens with it. The same
//! pass prints the table (or the JSON report) on stdout. [`merge`] joins shards' reports by
//! sorting their rows by line on disk.

use std::io::{self, BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};

use indicatif::HumanBytes;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use crate::engine::{RowResult, RowStatus};
use crate::manifest::Row;
use crate::spill::{Record, Sorter};

/// The report's CSV columns, in order.
const CSV_COLUMNS: [&str; 27] = [
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
];

/// Finished rows held in memory before a sorted run of them goes to disk.
const RESULTS_IN_MEMORY: usize = 1 << 14;

/// Failed rows (and notes) the human summary lists.
const LISTED: usize = 10;

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
    /// The assets this run sent (`thumbnail captions.en chapters.en …`, space-separated).
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
    /// How the source went: `file`, `relay` or `pull`.
    #[serde(default)]
    pub transfer: Option<String>,
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
    /// Rows whose video's fields this run changed, nothing uploaded (`upsert`, `update`).
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
fn status_name(status: RowStatus) -> &'static str {
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

/// A finished row as the report needs it, kept on disk until the report is written.
#[derive(Debug, Serialize, Deserialize)]
struct Outcome {
    index: usize,
    #[serde(default)]
    started_at: Option<String>,
    #[serde(default)]
    ended_at: Option<String>,
    #[serde(default)]
    fingerprint: Option<String>,
    #[serde(default)]
    assets: Vec<String>,
    #[serde(default)]
    encoding: Option<String>,
    #[serde(default)]
    encoding_seconds: Option<f64>,
    #[serde(default)]
    updated: Vec<String>,
    #[serde(default)]
    transfer: Option<String>,
    status: RowStatus,
    video_id: Option<String>,
    bytes: u64,
    sent: u64,
    parts: u64,
    seconds: f64,
    error: Option<String>,
    note: Option<String>,
}

impl PartialEq for Outcome {
    fn eq(&self, other: &Self) -> bool {
        self.index == other.index
    }
}

impl Eq for Outcome {}

impl PartialOrd for Outcome {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Outcome {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.index.cmp(&other.index)
    }
}

/// One JSON document a line: records with free text, kept short-lived on disk.
fn write_json_line(value: &impl Serialize, out: &mut impl Write) -> io::Result<()> {
    serde_json::to_writer(&mut *out, value)?;
    out.write_all(b"\n")
}

fn read_json_line<T: for<'de> Deserialize<'de>>(input: &mut impl BufRead) -> io::Result<Option<T>> {
    let mut line = String::new();
    if input.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    Ok(Some(serde_json::from_str(&line)?))
}

impl Record for Outcome {
    fn write_to(&self, out: &mut impl Write) -> io::Result<()> {
        write_json_line(self, out)
    }

    fn read_from(input: &mut impl BufRead) -> io::Result<Option<Self>> {
        read_json_line(input)
    }
}

/// The results of a run as rows finish: spilled for the report, counted for the summary.
pub struct Results {
    outcomes: Sorter<Outcome>,
    summary: Summary,
    parts: u64,
    auth_failure: bool,
}

impl Default for Results {
    fn default() -> Self {
        Results::new()
    }
}

impl Results {
    /// No results yet.
    pub fn new() -> Results {
        Results {
            outcomes: Sorter::new(RESULTS_IN_MEMORY),
            summary: Summary::default(),
            parts: 0,
            auth_failure: false,
        }
    }

    /// A row's result.
    pub fn add(&mut self, r: RowResult) -> io::Result<()> {
        self.summary.count(r.status, r.sent);
        self.summary.assets += r.assets.len() as u64;
        self.parts += r.parts;
        self.auth_failure |= r.auth_failure;
        let (started_at, ended_at) = (r.started_at.map(rfc3339), r.ended_at.map(rfc3339));
        let fingerprint = r.fingerprint.clone();
        let encoding = r.encoding.map(str::to_owned);
        let encoding_seconds = r.encoding_seconds;
        let updated = r.updated.iter().map(|f| (*f).to_owned()).collect();
        let transfer = r.transfer.map(str::to_owned);
        let RowResult {
            index,
            status,
            video_id,
            bytes,
            sent,
            parts,
            seconds,
            error,
            note,
            assets,
            ..
        } = r;
        self.outcomes.push(Outcome {
            index,
            started_at,
            ended_at,
            fingerprint,
            assets,
            encoding,
            encoding_seconds,
            updated,
            transfer,
            status,
            video_id,
            bytes,
            sent,
            parts,
            seconds,
            error,
            note,
        })
    }

    /// Parts the server holds, all rows with a result together.
    pub fn parts(&self) -> u64 {
        self.parts
    }

    /// Whether some row failed because the server refused the credentials.
    pub fn auth_failure(&self) -> bool {
        self.auth_failure
    }

    /// The totals of `rows` rows, those without a result counted as not started.
    pub fn summary(&self, rows: usize) -> Summary {
        let mut s = self.summary.clone();
        s.pending += rows.saturating_sub(s.rows);
        s.rows = rows;
        s
    }
}

/// What a finished run's report came to, for callers that do not read the file.
#[derive(Debug, Clone)]
pub struct RunTotals {
    /// The summary, as in the report.
    pub summary: Summary,
    /// Parts the server holds, all rows together.
    pub parts: u64,
}

/// What goes to stdout while the report is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Show {
    /// Nothing.
    Nothing,
    /// One line per row: line, status, videoId, path.
    Table,
    /// The report as JSON.
    Json,
}

/// A JSON report written a row at a time, exactly as serde_json pretty-prints a whole
/// `{"summary": …, "rows": […]}` document.
struct JsonOut<W: Write> {
    out: W,
    rows: u64,
}

/// `text` pretty-printed at nesting `level`: every line after the first indented.
fn nest(text: &str, level: usize) -> String {
    text.replace('\n', &format!("\n{}", "  ".repeat(level)))
}

impl<W: Write> JsonOut<W> {
    fn start(mut out: W, summary: &Summary) -> io::Result<Self> {
        write!(
            out,
            "{{\n  \"summary\": {},\n  \"rows\": [",
            nest(&serde_json::to_string_pretty(summary)?, 1)
        )?;
        Ok(JsonOut { out, rows: 0 })
    }

    fn row(&mut self, row: &ReportRow) -> io::Result<()> {
        let sep = if self.rows == 0 { "" } else { "," };
        self.rows += 1;
        write!(self.out, "{sep}\n    {}", nest(&serde_json::to_string_pretty(row)?, 2))
    }

    fn end(mut self) -> io::Result<W> {
        if self.rows > 0 {
            self.out.write_all(b"\n  ")?;
        }
        self.out.write_all(b"]\n}\n")?;
        Ok(self.out)
    }
}

enum FileOut {
    Csv(Box<csv::Writer<BufWriter<std::fs::File>>>),
    Json(JsonOut<BufWriter<std::fs::File>>),
}

/// A report written row by row, in manifest order, to its file (through a temporary file renamed
/// at the end) and to stdout; the human summary's lists are gathered on the way.
pub struct ReportWriter {
    path: PathBuf,
    tmp: PathBuf,
    file: Option<FileOut>,
    error: Option<io::Error>,
    tell: bool,
    table: Option<BufWriter<io::Stdout>>,
    json: Option<JsonOut<BufWriter<io::Stdout>>>,
    summary: Summary,
    failed: Vec<(u64, String, String)>,
    notes: Vec<(u64, String, String)>,
    /// Rows done before this run, not listed on stdout.
    unlisted: u64,
    /// Whether an earlier report at the path is kept (renamed) rather than replaced.
    keep_earlier: bool,
}

/// `library.report.20261130T002900Z.csv`: the name an earlier report at `path` is kept under,
/// after the time it was written; `None` if there is none.
fn earlier_name(path: &Path) -> Option<PathBuf> {
    let written = std::fs::metadata(path).ok()?.modified().ok()?;
    let stamp = chrono::DateTime::<chrono::Utc>::from(written).format("%Y%m%dT%H%M%SZ");
    let stem = path.file_stem()?.to_string_lossy().into_owned();
    let ext = path.extension().map(|e| format!(".{}", e.to_string_lossy())).unwrap_or_default();
    (1..1000)
        .map(|n| {
            let again = if n == 1 { String::new() } else { format!("-{n}") };
            path.with_file_name(format!("{stem}.{stamp}{again}{ext}"))
        })
        .find(|p| !p.exists())
}

impl ReportWriter {
    /// Starts the report at `path` (JSON for `.json`, CSV otherwise) and on stdout per `show`;
    /// with `tell`, each failed row is also a `row failed` event under `--log-format json`, as
    /// the run's end is told. A file that cannot be written does not stop stdout;
    /// [`ReportWriter::finish`] tells.
    pub fn create(path: &Path, summary: &Summary, show: Show, tell: bool) -> ReportWriter {
        let tmp = path.with_extension("tmp-report");
        let mut writer = ReportWriter {
            path: path.to_owned(),
            tmp: tmp.clone(),
            file: None,
            error: None,
            tell,
            table: None,
            json: None,
            summary: summary.clone(),
            failed: Vec::new(),
            notes: Vec::new(),
            unlisted: 0,
            keep_earlier: false,
        };
        let file = std::fs::File::create(&tmp).and_then(|f| {
            let out = BufWriter::with_capacity(1 << 16, f);
            if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("json")) {
                Ok(FileOut::Json(JsonOut::start(out, summary)?))
            } else {
                let mut csv = csv::Writer::from_writer(out);
                csv.write_record(CSV_COLUMNS)?;
                Ok(FileOut::Csv(Box::new(csv)))
            }
        });
        match file {
            Ok(f) => writer.file = Some(f),
            Err(e) => writer.fail(e),
        }
        // A reader that stops early (`| head`) only stops what it would have read.
        match show {
            Show::Nothing => {}
            Show::Table => {
                let mut out = BufWriter::new(io::stdout());
                let _ = writeln!(out, "{:>6}  {:<11}  {:<24}  path", "line", "status", "videoId");
                writer.table = Some(out);
            }
            Show::Json => writer.json = JsonOut::start(BufWriter::new(io::stdout()), summary).ok(),
        }
        writer
    }

    fn fail(&mut self, e: io::Error) {
        if self.error.is_none() {
            self.error = Some(e);
        }
        self.file = None;
        let _ = std::fs::remove_file(&self.tmp);
    }

    /// The next row, in manifest order.
    pub fn row(&mut self, r: &ReportRow) {
        let written = match &mut self.file {
            Some(FileOut::Csv(csv)) => csv.write_record([
                r.id.as_deref().unwrap_or_default(),
                &r.line.to_string(),
                &r.path,
                r.video_id.as_deref().unwrap_or_default(),
                status_name(r.status),
                &r.bytes.to_string(),
                &r.sent.to_string(),
                &r.parts.to_string(),
                &r.seconds.to_string(),
                &r.mb_per_s.to_string(),
                r.error.as_deref().unwrap_or_default(),
                r.note.as_deref().unwrap_or_default(),
                &r.title,
                &r.key,
                &r.size.to_string(),
                r.mtime.as_deref().unwrap_or_default(),
                r.started_at.as_deref().unwrap_or_default(),
                r.ended_at.as_deref().unwrap_or_default(),
                r.destination.as_deref().unwrap_or_default(),
                r.run_id.as_deref().unwrap_or_default(),
                r.fingerprint.as_deref().unwrap_or_default(),
                r.assets.as_deref().unwrap_or_default(),
                r.encoding.as_deref().unwrap_or_default(),
                &r.encoding_seconds.map(|s| s.to_string()).unwrap_or_default(),
                r.action.as_deref().unwrap_or_default(),
                r.updated.as_deref().unwrap_or_default(),
                r.transfer.as_deref().unwrap_or_default(),
            ]),
            Some(FileOut::Json(json)) => json.row(r).map_err(csv::Error::from),
            None => Ok(()),
        };
        if let Err(e) = written {
            self.fail(io::Error::other(e));
        }
        if let (Some(_), RowStatus::Skipped) = (&self.table, r.status) {
            // Done before this run: in the report, but not news.
            self.unlisted += 1;
        } else if let Some(out) = &mut self.table {
            let video_id = r.video_id.as_deref().unwrap_or("-");
            if writeln!(
                out,
                "{:>6}  {:<11}  {:<24}  {}",
                r.line,
                status_name(r.status),
                video_id,
                r.path
            )
            .is_err()
            {
                self.table = None;
            }
        }
        if let Some(json) = &mut self.json {
            if json.row(r).is_err() {
                self.json = None;
            }
        }
        if r.status == RowStatus::Failed {
            if self.tell && super::json_logs() {
                tracing::warn!(
                    target: "avbatch::summary",
                    line = r.line,
                    path = %r.path,
                    "videoId" = r.video_id.as_deref(),
                    error = r.error.as_deref(),
                    "row failed"
                );
            }
            if self.failed.len() < LISTED {
                self.failed.push((
                    r.line,
                    r.path.clone(),
                    r.error.clone().unwrap_or_else(|| "failed".into()),
                ));
            }
        }
        if let (Some(note), true) = (&r.note, self.notes.len() < LISTED) {
            self.notes.push((r.line, r.path.clone(), note.clone()));
        }
    }

    /// Ends the file (renamed into place) and stdout; the file's error, if it could not be
    /// written. What the human summary needs is handed back.
    pub fn finish(mut self) -> (io::Result<()>, Announcement) {
        if let Some(mut out) = self.table.take() {
            if self.unlisted > 0 {
                let _ = writeln!(
                    out,
                    "({} row{} done before this run: in the report, not listed)",
                    self.unlisted,
                    if self.unlisted == 1 { "" } else { "s" }
                );
            }
            let _ = out.into_inner().map(|mut o| o.flush());
        }
        if let Some(json) = self.json.take() {
            let _ = json
                .end()
                .and_then(|o| o.into_inner().map_err(io::IntoInnerError::into_error))
                .and_then(|mut o| o.flush());
        }
        let ended = match self.file.take() {
            Some(FileOut::Csv(mut csv)) => {
                csv.flush().and_then(|()| csv.into_inner().map_err(|e| e.into_error()))
            }
            Some(FileOut::Json(json)) => json.end(),
            None => Err(self
                .error
                .take()
                .unwrap_or_else(|| io::Error::other("the report was not written"))),
        };
        let mut kept = None;
        let written = ended
            .and_then(|out| out.into_inner().map_err(io::IntoInnerError::into_error))
            .and_then(|f| f.sync_all())
            .and_then(|()| {
                // The earlier report stays, under the time it was written: a record of each run.
                if let Some(earlier) = earlier_name(&self.path).filter(|_| self.keep_earlier) {
                    std::fs::rename(&self.path, &earlier)?;
                    kept = Some(earlier);
                }
                std::fs::rename(&self.tmp, &self.path)
            });
        if written.is_err() {
            let _ = std::fs::remove_file(&self.tmp);
        }
        let announcement =
            Announcement { summary: self.summary, failed: self.failed, notes: self.notes, kept };
        (written, announcement)
    }

    /// Gives up the report: nothing is left at its path.
    pub fn abandon(mut self) {
        self.file = None;
        let _ = std::fs::remove_file(&self.tmp);
    }
}

/// The run's end as told on stderr: the summary and its first failed rows and notes.
pub struct Announcement {
    summary: Summary,
    failed: Vec<(u64, String, String)>,
    notes: Vec<(u64, String, String)>,
    kept: Option<PathBuf>,
}

impl Announcement {
    /// Where the report that was at the path before this run was kept, if there was one.
    pub fn kept(&self) -> Option<&Path> {
        self.kept.as_deref()
    }

    /// The summary.
    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    /// Tells the run's end on stderr: the human summary, or with `--log-format json` one
    /// `summary` event carrying every total (the `row failed` events went out with the rows).
    pub fn announce(&self) {
        if !super::json_logs() {
            eprintln!("{}", self.human_summary());
            return;
        }
        let s = &self.summary;
        tracing::info!(
            target: "avbatch::summary",
            rows = s.rows,
            uploaded = s.uploaded,
            skipped = s.skipped,
            updated = s.updated,
            deleted = s.deleted,
            failed = s.failed,
            interrupted = s.interrupted,
            pending = s.pending,
            bytes = s.bytes,
            seconds = s.seconds,
            "mbPerS" = s.mb_per_s,
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
            "{}; {} sent in {:.1} s ({}/s); {} requests, {} retries, {} answered 429",
            s.rows_text(),
            HumanBytes(s.bytes),
            s.seconds,
            HumanBytes((s.bytes as f64 / s.seconds.max(1e-3)) as u64),
            s.requests,
            s.retries,
            s.throttled
        );
        if s.assets > 0 {
            text.push_str(&format!(
                "; {} asset(s) sent (thumbnails, captions, chapters: the report's `assets`)",
                s.assets
            ));
        }
        for (line, path, error) in &self.failed {
            text.push_str(&format!("\n  line {line} `{path}`: {error}"));
        }
        for (line, path, note) in &self.notes {
            text.push_str(&format!("\n  note, line {line} `{path}`: {note}"));
        }
        text
    }
}

/// The report row of a manifest row and its outcome (none: not started, with `not_started` as
/// its error when given).
fn report_row(
    row: &Row,
    summary: &Summary,
    outcome: Option<Outcome>,
    not_started: Option<&str>,
) -> ReportRow {
    let mut r = ReportRow {
        id: row.id.clone(),
        line: row.line,
        // A URL without its query string: a presigned one's signature is a secret.
        path: crate::remote::shown(&row.path_text),
        video_id: None,
        status: RowStatus::Pending,
        bytes: 0,
        sent: 0,
        parts: 0,
        seconds: 0.0,
        mb_per_s: 0.0,
        error: not_started.map(str::to_owned),
        note: None,
        title: row.title.clone(),
        key: row.key(),
        size: row.size,
        mtime: row.mtime.map(rfc3339),
        started_at: None,
        ended_at: None,
        destination: summary.destination.clone(),
        run_id: summary.run_id.clone(),
        fingerprint: None,
        assets: None,
        encoding: None,
        encoding_seconds: None,
        action: Some(row.action.as_str().to_owned()),
        updated: None,
        transfer: None,
    };
    if let Some(o) = outcome {
        r.video_id = o.video_id;
        r.status = o.status;
        r.bytes = o.bytes;
        r.sent = o.sent;
        r.parts = o.parts;
        r.seconds = (o.seconds * 1000.0).round() / 1000.0;
        r.mb_per_s = mb_per_s(o.sent, o.seconds);
        r.error = o.error;
        r.note = o.note;
        r.started_at = o.started_at;
        r.ended_at = o.ended_at;
        r.fingerprint = o.fingerprint;
        r.assets = (!o.assets.is_empty()).then(|| o.assets.join(" "));
        r.encoding = o.encoding;
        r.encoding_seconds = o.encoding_seconds.map(|s| (s * 1000.0).round() / 1000.0);
        r.updated = (!o.updated.is_empty()).then(|| o.updated.join(" "));
        r.transfer = o.transfer;
    }
    r
}

/// Writes a run's report: `rows` are the run's rows in manifest order (row `i` of them is the
/// one whose result has index `i`), merged with the results sorted by index; rows without a
/// result were never started and come out `pending`, with `not_started` as their error when
/// given. `summary` is the run's ([`Results::summary`] with the times and request counts).
/// Returns the file's outcome and what to tell on stderr.
pub fn write_run(
    path: &Path,
    summary: &Summary,
    rows: impl Iterator<Item = io::Result<Row>>,
    results: Results,
    not_started: Option<&str>,
    show: Show,
) -> (io::Result<()>, Announcement) {
    let mut writer = ReportWriter::create(path, summary, show, show != Show::Nothing);
    writer.keep_earlier = true;
    let mut outcomes = match results.outcomes.finish() {
        Ok(sorted) => Some(sorted.peekable()),
        Err(e) => {
            writer.fail(e);
            None
        }
    };
    for (index, row) in rows.enumerate() {
        let row = match row {
            Ok(row) => row,
            Err(e) => {
                writer.fail(e);
                break;
            }
        };
        let mut outcome = None;
        if let Some(sorted) = &mut outcomes {
            match sorted.next_if(|o| o.as_ref().is_ok_and(|o| o.index <= index) || o.is_err()) {
                Some(Ok(o)) if o.index == index => outcome = Some(o),
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    writer.fail(e);
                    outcomes = None;
                }
                None => {}
            }
        }
        writer.row(&report_row(&row, summary, outcome, not_started));
    }
    writer.finish()
}

// ---------------------------------------------------------------------------------------------
// Merging shards' reports
// ---------------------------------------------------------------------------------------------

/// Why reports cannot be merged.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// A report could not be read.
    #[error("cannot read the report `{}`: {what}", path.display())]
    Read {
        /// The report.
        path: PathBuf,
        /// What went wrong.
        what: String,
    },
    /// Manifest lines in more than one report.
    #[error(
        "manifest line(s) {} appear in more than one report (the same shard twice, or shards of \
         different counts?)",
        list(lines, *count)
    )]
    Duplicate {
        /// The first lines found twice, at most 20.
        lines: Vec<u64>,
        /// How many times a line was found again, in all.
        count: usize,
    },
    /// The manifest could not be read.
    #[error("{0}")]
    Manifest(String),
    /// Manifest rows in no report.
    #[error(
        "{count} row(s) of `{}` are in no report (lines {}{})",
        manifest.display(),
        lines.iter().map(u64::to_string).collect::<Vec<_>>().join(", "),
        if *count > lines.len() { ", …" } else { "" }
    )]
    Missing {
        /// The manifest.
        manifest: PathBuf,
        /// The first lines missing, at most 20.
        lines: Vec<u64>,
        /// How many rows are missing.
        count: usize,
    },
    /// Sorting the rows on disk failed.
    #[error("cannot sort the reports' rows in the temporary folder")]
    Spill(#[source] io::Error),
}

/// Lines shown in a merge error.
const LINES_SHOWN: usize = 20;

fn list(lines: &[u64], count: usize) -> String {
    let shown: Vec<String> = lines.iter().take(LINES_SHOWN).map(u64::to_string).collect();
    if count > LINES_SHOWN {
        format!("{} … ({count} in all)", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

/// A report row on its way through the merge: by line, then in the order read.
#[derive(Debug, Serialize, Deserialize)]
struct ByLine {
    seq: u64,
    row: ReportRow,
}

impl PartialEq for ByLine {
    fn eq(&self, other: &Self) -> bool {
        (self.row.line, self.seq) == (other.row.line, other.seq)
    }
}

impl Eq for ByLine {}

impl PartialOrd for ByLine {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ByLine {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.row.line, self.seq).cmp(&(other.row.line, other.seq))
    }
}

impl Record for ByLine {
    fn write_to(&self, out: &mut impl Write) -> io::Result<()> {
        write_json_line(self, out)
    }

    fn read_from(input: &mut impl BufRead) -> io::Result<Option<Self>> {
        read_json_line(input)
    }
}

/// Reads a report written by a run, a row at a time: JSON for `.json`, CSV otherwise. Returns
/// its summary; a CSV report has no run totals, so its wall time is its longest row's.
fn read_report(
    path: &Path,
    each: &mut dyn FnMut(ReportRow) -> io::Result<()>,
) -> Result<Summary, MergeError> {
    let bad = |what: String| MergeError::Read { path: path.to_owned(), what };
    if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("json")) {
        let file = std::fs::File::open(path).map_err(|e| bad(e.to_string()))?;
        let mut de = serde_json::Deserializer::from_reader(io::BufReader::new(file));
        let mut failed = None;
        let summary = ReportSeed { each, failed: &mut failed }.deserialize(&mut de);
        if let Some(e) = failed {
            return Err(MergeError::Spill(e));
        }
        let summary = summary.and_then(|s| de.end().map(|()| s)).map_err(|e| bad(e.to_string()))?;
        return Ok(summary.unwrap_or_default());
    }
    let mut reader = csv::Reader::from_path(path).map_err(|e| bad(e.to_string()))?;
    // Columns are found by name, so reports written before a column existed still merge.
    let headers = reader.headers().map_err(|e| bad(e.to_string()))?.clone();
    let column = |name: &str| headers.iter().position(|h| h == name);
    let required = |name: &str| column(name).ok_or_else(|| bad(format!("no `{name}` column")));
    let (id, line, path_col, video, status_col) = (
        column("id"),
        required("line")?,
        required("path")?,
        column("videoId"),
        required("status")?,
    );
    let (bytes, sent, parts, seconds, mbps, error, note) = (
        column("bytes"),
        column("sent"),
        column("parts"),
        column("seconds"),
        column("mbPerS"),
        column("error"),
        column("note"),
    );
    let (title, key, size, mtime, started_at, ended_at, destination, run_id) = (
        column("title"),
        column("key"),
        column("size"),
        column("mtime"),
        column("startedAt"),
        column("endedAt"),
        column("destination"),
        column("runId"),
    );
    let (fingerprint, assets) = (column("fingerprint"), column("assets"));
    let (encoding, encoding_seconds) = (column("encoding"), column("encodingSeconds"));
    let (action, updated, transfer) = (column("action"), column("updated"), column("transfer"));
    let mut longest: f64 = 0.0;
    let mut r = csv::StringRecord::new();
    while reader.read_record(&mut r).map_err(|e| bad(e.to_string()))? {
        let field = |i: Option<usize>| i.and_then(|i| r.get(i)).unwrap_or_default().to_owned();
        let opt = |i: Option<usize>| Some(field(i)).filter(|s| !s.is_empty());
        let num = |i: Option<usize>| {
            let text = field(i);
            if text.is_empty() {
                return Ok(0.0);
            }
            text.parse::<f64>().map_err(|_| {
                bad(format!(
                    "line {}: `{text}` is not a number",
                    r.position().map_or(0, |p| p.line())
                ))
            })
        };
        let status: RowStatus =
            serde_json::from_value(serde_json::Value::String(field(Some(status_col))))
                .map_err(|e| bad(e.to_string()))?;
        let row = ReportRow {
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
            title: field(title),
            key: field(key),
            size: num(size)? as u64,
            mtime: opt(mtime),
            started_at: opt(started_at),
            ended_at: opt(ended_at),
            destination: opt(destination),
            run_id: opt(run_id),
            fingerprint: opt(fingerprint),
            assets: opt(assets),
            encoding: opt(encoding),
            encoding_seconds: opt(encoding_seconds).and_then(|s| s.parse().ok()),
            action: opt(action),
            updated: opt(updated),
            transfer: opt(transfer),
        };
        longest = longest.max(row.seconds);
        each(row).map_err(MergeError::Spill)?;
    }
    Ok(Summary { seconds: longest, ..Summary::default() })
}

/// A JSON report read with its rows handed over one by one, never all held.
struct ReportSeed<'a> {
    each: &'a mut dyn FnMut(ReportRow) -> io::Result<()>,
    failed: &'a mut Option<io::Error>,
}

impl<'de> DeserializeSeed<'de> for ReportSeed<'_> {
    type Value = Option<Summary>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ReportSeed<'_> {
    type Value = Option<Summary>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a report: an object with `summary` and `rows`")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut summary = None;
        let mut rows = false;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "summary" => summary = Some(map.next_value::<Summary>()?),
                "rows" => {
                    map.next_value_seed(RowsSeed {
                        each: &mut *self.each,
                        failed: &mut *self.failed,
                    })?;
                    rows = true;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if !rows {
            return Err(de::Error::missing_field("rows"));
        }
        if summary.is_none() {
            return Err(de::Error::missing_field("summary"));
        }
        Ok(summary)
    }
}

struct RowsSeed<'a> {
    each: &'a mut dyn FnMut(ReportRow) -> io::Result<()>,
    failed: &'a mut Option<io::Error>,
}

impl<'de> DeserializeSeed<'de> for RowsSeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for RowsSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a list of report rows")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(row) = seq.next_element::<ReportRow>()? {
            if let Err(e) = (self.each)(row) {
                *self.failed = Some(e);
                return Err(de::Error::custom("cannot sort the rows"));
            }
        }
        Ok(())
    }
}

/// Joins the reports of a manifest's shards into the manifest's report at `out`, rows sorted by
/// line. A line in two reports is an error (the same shard twice, or shards cut differently);
/// with `manifest`, so is a manifest row in none (`lines` are the manifest's rows' lines, in
/// order, or why they cannot be read). Totals are summed, wall time is the longest shard's.
/// Nothing is left at `out` on an error.
pub fn merge(
    reports: &[PathBuf],
    manifest: Option<(&Path, &mut dyn Iterator<Item = Result<u64, String>>)>,
    out: &Path,
) -> Result<(io::Result<()>, Announcement), MergeError> {
    let mut sorter = Sorter::new(RESULTS_IN_MEMORY);
    let mut summary = Summary::default();
    let mut seq = 0u64;
    for path in reports {
        let mut counts = Summary::default();
        let read = read_report(path, &mut |row| {
            counts.count(row.status, row.sent);
            seq += 1;
            sorter.push(ByLine { seq, row })
        })?;
        summary.requests += read.requests;
        summary.retries += read.retries;
        summary.throttled += read.throttled;
        summary.assets += read.assets;
        summary.seconds = summary.seconds.max(read.seconds);
        (summary.rows, summary.uploaded, summary.skipped, summary.failed) = (
            summary.rows + counts.rows,
            summary.uploaded + counts.uploaded,
            summary.skipped + counts.skipped,
            summary.failed + counts.failed,
        );
        (summary.interrupted, summary.pending, summary.bytes) = (
            summary.interrupted + counts.interrupted,
            summary.pending + counts.pending,
            summary.bytes + counts.bytes,
        );
        (summary.updated, summary.deleted) =
            (summary.updated + counts.updated, summary.deleted + counts.deleted);
    }
    summary.mb_per_s = mb_per_s(summary.bytes, summary.seconds);

    let mut writer = ReportWriter::create(out, &summary, Show::Nothing, true);
    let mut sorted = sorter.finish().map_err(MergeError::Spill)?.peekable();
    let (mut twice, mut twice_count, mut previous) = (Vec::new(), 0usize, None);
    let (mut missing, mut missing_count, mut manifest_error) = (Vec::new(), 0usize, None);
    // Writes the merged rows up to `line` (all with `None`); whether `line` was among them.
    let mut write_through =
        |line: Option<u64>, writer: &mut ReportWriter| -> Result<bool, MergeError> {
            let mut found = false;
            while let Some(next) = sorted
                .next_if(|r| line.is_none_or(|l| r.as_ref().map_or(true, |r| r.row.line <= l)))
            {
                let ByLine { row, .. } = next.map_err(MergeError::Spill)?;
                if previous == Some(row.line) {
                    twice_count += 1;
                    if twice.len() < LINES_SHOWN {
                        twice.push(row.line);
                    }
                }
                previous = Some(row.line);
                found |= Some(row.line) == line;
                writer.row(&row);
            }
            Ok(found)
        };
    let manifest_path = manifest.as_ref().map(|(m, _)| m.to_path_buf());
    if let Some((_, lines)) = manifest {
        for line in lines {
            match line {
                Ok(line) => {
                    if !write_through(Some(line), &mut writer)? {
                        missing_count += 1;
                        if missing.len() < LINES_SHOWN {
                            missing.push(line);
                        }
                    }
                }
                Err(e) => {
                    manifest_error = Some(e);
                    break;
                }
            }
        }
    }
    write_through(None, &mut writer)?;
    let failure = if twice_count > 0 {
        Some(MergeError::Duplicate { lines: twice, count: twice_count })
    } else if let Some(e) = manifest_error {
        Some(MergeError::Manifest(e))
    } else if missing_count > 0 {
        Some(MergeError::Missing {
            manifest: manifest_path.unwrap_or_default(),
            lines: missing,
            count: missing_count,
        })
    } else {
        None
    };
    if let Some(e) = failure {
        writer.abandon();
        return Err(e);
    }
    Ok(writer.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(line: u64, status: RowStatus) -> ReportRow {
        ReportRow {
            id: Some(format!("id-{line}")),
            line,
            path: format!("v{line}.mp4"),
            video_id: Some(format!("vi{line}")),
            status,
            bytes: 10,
            sent: 10,
            parts: 1,
            seconds: 0.5,
            mb_per_s: 0.0,
            error: (status == RowStatus::Failed).then(|| "boom \"quoted\"\nand a newline".into()),
            note: None,
            title: format!("Video {line}"),
            key: format!("{line:032x}"),
            size: 10,
            mtime: Some("2026-11-30T00:29:00.000Z".into()),
            started_at: Some("2026-11-30T00:30:00.000Z".into()),
            ended_at: Some("2026-11-30T00:30:01.000Z".into()),
            destination: Some("http://127.0.0.1:1".into()),
            run_id: Some("2026-11-30T00:29:59.000Z".into()),
            fingerprint: None,
            assets: line.is_multiple_of(2).then(|| "thumbnail captions.en".into()),
            encoding: line.is_multiple_of(3).then(|| "playable".into()),
            encoding_seconds: line.is_multiple_of(3).then_some(1.5),
            action: Some("create".into()),
            updated: line.is_multiple_of(4).then(|| "title tags".into()),
            transfer: Some("file".into()),
        }
    }

    #[derive(Serialize)]
    struct Whole<'a> {
        summary: &'a Summary,
        rows: &'a [ReportRow],
    }

    #[test]
    fn the_json_report_written_row_by_row_is_the_whole_document_pretty_printed() {
        let summary =
            Summary { rows: 3, uploaded: 2, shard: Some("1/4".into()), ..Summary::default() };
        for rows in [
            vec![],
            vec![row(2, RowStatus::Uploaded)],
            vec![
                row(2, RowStatus::Uploaded),
                row(5, RowStatus::Failed),
                row(9, RowStatus::Pending),
            ],
        ] {
            let mut json = JsonOut::start(Vec::new(), &summary).unwrap();
            for r in &rows {
                json.row(r).unwrap();
            }
            let streamed = String::from_utf8(json.end().unwrap()).unwrap();
            let whole = serde_json::to_string_pretty(&Whole { summary: &summary, rows: &rows })
                .unwrap()
                + "\n";
            assert_eq!(streamed, whole);
        }
    }

    #[test]
    fn results_arriving_out_of_order_come_back_by_row_and_rows_without_one_are_pending() {
        let dir = tempfile::tempdir().unwrap();
        let mut results = Results::new();
        // Spilled runs too: more results than are held in memory, finishing out of order.
        let n = RESULTS_IN_MEMORY * 2 + 7;
        for i in (0..n).rev().filter(|i| i % 3 != 0) {
            let mut r = RowResult::new(i, RowStatus::Uploaded);
            r.sent = 1;
            results.add(r).unwrap();
        }
        let summary = results.summary(n);
        assert_eq!(
            (summary.rows, summary.uploaded, summary.pending, summary.bytes),
            (n, n - n.div_ceil(3), n.div_ceil(3), (n - n.div_ceil(3)) as u64)
        );
        let rows = (0..n).map(|i| {
            let mut row = Row::new(i as u64 + 2);
            row.path_text = format!("v{i}.mp4");
            Ok(row)
        });
        let path = dir.path().join("r.csv");
        let (written, _) =
            write_run(&path, &summary, rows, results, Some("not started: stopped"), Show::Nothing);
        written.unwrap();
        let mut reader = csv::Reader::from_path(&path).unwrap();
        let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert_eq!(records.len(), n);
        for (i, r) in records.iter().enumerate() {
            assert_eq!(r[1], (i + 2).to_string());
            let (status, error) =
                if i % 3 == 0 { ("pending", "not started: stopped") } else { ("uploaded", "") };
            assert_eq!((&r[4], &r[10]), (status, error), "row {i}");
        }
    }
}
