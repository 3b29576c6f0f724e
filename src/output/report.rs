//! The report as a person sees it while it is written: the table (or the JSON report) on
//! stdout, a `row failed` event per failed row under `--log-format json`, and the run's end
//! told on stderr. The report itself (its rows, the file, the shards' merge) is
//! [`avbatch_core::report`]'s; this is the [`RowSink`] it shows each row to.

use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use indicatif::HumanBytes;

use avbatch_core::engine::RowStatus;
use avbatch_core::manifest::Row;
use avbatch_core::report::{self as data, status_name, JsonOut, RowSink, Written};
pub use avbatch_core::report::{rfc3339, MergeError, ReportRow, Results, RunTotals, Summary};

/// Failed rows (and notes) the human summary lists.
const LISTED: usize = 10;

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

/// Each row as it is written: on stdout per [`Show`], as a log event when it failed, and its
/// failure or note kept for the summary.
struct Shown {
    table: Option<BufWriter<io::Stdout>>,
    json: Option<JsonOut<BufWriter<io::Stdout>>>,
    /// Whether failed rows are `row failed` events under `--log-format json`.
    tell: bool,
    failed: Vec<(u64, String, String)>,
    notes: Vec<(u64, String, String)>,
    /// Rows done before this run, not listed on stdout.
    unlisted: u64,
}

impl Shown {
    /// Starts stdout per `show` (the table's head, or the JSON report's summary). A reader that
    /// stops early (`| head`) only stops what it would have read.
    fn start(summary: &Summary, show: Show, tell: bool) -> Shown {
        let mut shown = Shown {
            table: None,
            json: None,
            tell,
            failed: Vec::new(),
            notes: Vec::new(),
            unlisted: 0,
        };
        match show {
            Show::Nothing => {}
            Show::Table => {
                let mut out = BufWriter::new(io::stdout());
                let _ = writeln!(out, "{:>6}  {:<11}  {:<24}  path", "line", "status", "videoId");
                shown.table = Some(out);
            }
            Show::Json => shown.json = JsonOut::start(BufWriter::new(io::stdout()), summary).ok(),
        }
        shown
    }

    fn list(&mut self, r: &ReportRow) {
        if let (Some(_), RowStatus::Skipped) = (&self.table, r.status) {
            // Done before this run: in the report, but not news.
            self.unlisted += 1;
        } else if let Some(out) = &mut self.table {
            let video_id = r.video_id.as_deref().unwrap_or("-");
            let (line, status) = (r.line, status_name(r.status));
            if writeln!(out, "{line:>6}  {status:<11}  {video_id:<24}  {}", r.path).is_err() {
                self.table = None;
            }
        }
        if let Some(json) = &mut self.json {
            if json.row(r).is_err() {
                self.json = None;
            }
        }
    }

    /// Ends stdout, and hands back what the run's end tells.
    fn announcement(mut self, written: Written) -> Announcement {
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
        let Written { summary, kept } = written;
        Announcement { summary, failed: self.failed, notes: self.notes, kept }
    }
}

impl RowSink for Shown {
    fn row(&mut self, r: &ReportRow) {
        self.list(r);
        if r.status == RowStatus::Failed {
            if self.tell && crate::output::json_logs() {
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
                let error = r.error.clone().unwrap_or_else(|| "failed".into());
                self.failed.push((r.line, r.path.clone(), error));
            }
        }
        if let (Some(note), true) = (&r.note, self.notes.len() < LISTED) {
            self.notes.push((r.line, r.path.clone(), note.clone()));
        }
    }
}

/// Writes a run's report ([`data::write_run`]) and shows it per `show`; with anything shown,
/// failed rows are also log events. Returns the file's outcome and what to tell on stderr.
pub fn write_run(
    path: &Path,
    summary: &Summary,
    rows: impl Iterator<Item = io::Result<Row>>,
    results: Results,
    not_started: Option<&str>,
    show: Show,
) -> (io::Result<()>, Announcement) {
    let mut shown = Shown::start(summary, show, show != Show::Nothing);
    let (written, report) = data::write_run(path, summary, rows, results, not_started, &mut shown);
    (written, shown.announcement(report))
}

/// Joins the reports of a manifest's shards ([`data::merge`]); failed rows are log events.
pub fn merge(
    reports: &[PathBuf],
    manifest: Option<(&Path, &mut dyn Iterator<Item = Result<u64, String>>)>,
    out: &Path,
) -> Result<(io::Result<()>, Announcement), MergeError> {
    let mut shown = Shown::start(&Summary::default(), Show::Nothing, true);
    let (written, report) = data::merge(reports, manifest, out, &mut shown)?;
    Ok((written, shown.announcement(report)))
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
        if !crate::output::json_logs() {
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
