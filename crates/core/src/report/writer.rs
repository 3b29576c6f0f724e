//! The report written in manifest order, as CSV or JSON, each row shown to a [`RowSink`] in the
//! same pass.

use std::borrow::Cow;

use super::*;

/// A JSON report written a row at a time, exactly as serde_json pretty-prints a whole
/// `{"summary": …, "rows": […]}` document.
pub struct JsonOut<W: Write> {
    out: W,
    rows: u64,
}

/// `text` pretty-printed at nesting `level`: every line after the first indented.
fn nest(text: &str, level: usize) -> String {
    text.replace('\n', &format!("\n{}", "  ".repeat(level)))
}

impl<W: Write> JsonOut<W> {
    /// Starts the document: its summary, and the rows' opening bracket.
    pub fn start(mut out: W, summary: &Summary) -> io::Result<Self> {
        write!(
            out,
            "{{\n  \"summary\": {},\n  \"rows\": [",
            nest(&serde_json::to_string_pretty(summary)?, 1)
        )?;
        Ok(JsonOut { out, rows: 0 })
    }

    /// The next row.
    pub fn row(&mut self, row: &ReportRow) -> io::Result<()> {
        let sep = if self.rows == 0 { "" } else { "," };
        self.rows += 1;
        write!(self.out, "{sep}\n    {}", nest(&serde_json::to_string_pretty(row)?, 2))
    }

    /// Ends the document; the writer, to flush.
    pub fn end(mut self) -> io::Result<W> {
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
/// at the end).
pub struct ReportWriter {
    path: PathBuf,
    tmp: PathBuf,
    file: Option<FileOut>,
    error: Option<io::Error>,
    summary: Summary,
    /// Whether an earlier report at the path is kept (renamed) rather than replaced.
    keep_earlier: bool,
}

/// What a written report came to: its summary, and where the report that was at its path before
/// was kept, if there was one.
#[derive(Debug, Clone)]
pub struct Written {
    /// The summary, as in the report.
    pub summary: Summary,
    /// The earlier report, renamed after the time it was written.
    pub kept: Option<PathBuf>,
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
    /// Starts the report at `path` (JSON for `.json`, CSV otherwise). A file that cannot be
    /// written does not stop the rows going to the sink; [`ReportWriter::finish`] tells.
    pub fn create(path: &Path, summary: &Summary) -> ReportWriter {
        let tmp = path.with_extension("tmp-report");
        let mut writer = ReportWriter {
            path: path.to_owned(),
            tmp: tmp.clone(),
            file: None,
            error: None,
            summary: summary.clone(),
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
            Some(FileOut::Csv(csv)) => csv.write_record(csv_record(r).iter().map(|c| c.as_bytes())),
            Some(FileOut::Json(json)) => json.row(r).map_err(csv::Error::from),
            None => Ok(()),
        };
        if let Err(e) = written {
            self.fail(io::Error::other(e));
        }
    }

    /// Ends the file (renamed into place); the file's error, if it could not be written, and
    /// what the report came to.
    pub fn finish(mut self) -> (io::Result<()>, Written) {
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
        (written, Written { summary: self.summary, kept })
    }

    /// Gives up the report: nothing is left at its path.
    pub fn abandon(mut self) {
        self.file = None;
        let _ = std::fs::remove_file(&self.tmp);
    }
}

/// A report row's CSV cells, in [`CSV_COLUMNS`] order. Text cells are [`neutralised`] so that no
/// spreadsheet runs them as formulas; numbers are written as numbers.
fn csv_record(r: &ReportRow) -> [Cow<'_, str>; CSV_COLUMNS.len()] {
    fn text(t: Option<&str>) -> Cow<'_, str> {
        neutralised(t.unwrap_or_default())
    }
    fn number(n: &dyn ToString) -> Cow<'static, str> {
        Cow::Owned(n.to_string())
    }
    [
        text(r.id.as_deref()),
        number(&r.line),
        text(Some(&r.path)),
        text(r.video_id.as_deref()),
        Cow::Borrowed(status_name(r.status)),
        number(&r.bytes),
        number(&r.sent),
        number(&r.parts),
        number(&r.seconds),
        number(&r.mb_per_s),
        text(r.error.as_deref()),
        text(r.note.as_deref()),
        text(Some(&r.title)),
        text(Some(&r.key)),
        number(&r.size),
        text(r.mtime.as_deref()),
        text(r.started_at.as_deref()),
        text(r.ended_at.as_deref()),
        text(r.destination.as_deref()),
        text(r.run_id.as_deref()),
        text(r.fingerprint.as_deref()),
        text(r.assets.as_deref()),
        text(r.encoding.as_deref()),
        Cow::Owned(r.encoding_seconds.map(|s| s.to_string()).unwrap_or_default()),
        text(r.action.as_deref()),
        text(r.updated.as_deref()),
        text(r.transfer.as_deref()),
        text(r.done_at.as_deref()),
        text(r.done_by.as_deref()),
    ]
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
        done_at: None,
        done_by: None,
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
        if r.status == RowStatus::Uploaded {
            (r.done_at, r.done_by) = (r.ended_at.clone(), r.run_id.clone());
        } else if let Some(e) = o.earlier {
            // Done before this run: what its journal knows of it, so the last report proves
            // completion alone.
            (r.done_at, r.done_by) = (e.done_at, e.done_run);
            r.transfer = r.transfer.or(e.transfer);
            if r.assets.is_none() && !e.assets.is_empty() {
                r.assets = Some(e.assets.join(" "));
            }
        }
    }
    r
}

/// Writes a run's report: `rows` are the run's rows in manifest order (row `i` of them is the
/// one whose result has index `i`), merged with the results sorted by index; rows without a
/// result were never started and come out `pending`, with `not_started` as their error when
/// given. `summary` is the run's ([`Results::summary`] with the times and request counts). Each
/// row is shown to `sink` as it is written. Returns the file's outcome and what it came to.
pub fn write_run(
    path: &Path,
    summary: &Summary,
    rows: impl Iterator<Item = io::Result<Row>>,
    results: Results,
    not_started: Option<&str>,
    sink: &mut dyn RowSink,
) -> (io::Result<()>, Written) {
    let mut writer = ReportWriter::create(path, summary);
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
        let row = report_row(&row, summary, outcome, not_started);
        writer.row(&row);
        sink.row(&row);
    }
    writer.finish()
}
