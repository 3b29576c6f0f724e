//! Shards' reports merged into one, their rows sorted by line on disk.

use super::*;

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
    let headers = reader.headers().map_err(|e| bad(e.to_string()))?.clone();
    let columns = Columns::find(&headers).map_err(|name| bad(format!("no `{name}` column")))?;
    let mut longest: f64 = 0.0;
    let mut r = csv::StringRecord::new();
    while reader.read_record(&mut r).map_err(|e| bad(e.to_string()))? {
        let row = columns.row(&r).map_err(bad)?;
        longest = longest.max(row.seconds);
        each(row).map_err(MergeError::Spill)?;
    }
    Ok(Summary { seconds: longest, ..Summary::default() })
}

/// Where each of a CSV report's columns is. Columns are found by name, so reports written
/// before a column existed still merge; `line`, `path` and `status` are required.
struct Columns {
    id: Option<usize>,
    line: usize,
    path: usize,
    video: Option<usize>,
    status: usize,
    bytes: Option<usize>,
    sent: Option<usize>,
    parts: Option<usize>,
    seconds: Option<usize>,
    mbps: Option<usize>,
    error: Option<usize>,
    note: Option<usize>,
    title: Option<usize>,
    key: Option<usize>,
    size: Option<usize>,
    mtime: Option<usize>,
    started_at: Option<usize>,
    ended_at: Option<usize>,
    destination: Option<usize>,
    run_id: Option<usize>,
    fingerprint: Option<usize>,
    assets: Option<usize>,
    encoding: Option<usize>,
    encoding_seconds: Option<usize>,
    action: Option<usize>,
    updated: Option<usize>,
    transfer: Option<usize>,
    done_at: Option<usize>,
    done_by: Option<usize>,
}

impl Columns {
    /// The columns of `headers`; the name of a required one missing.
    fn find(headers: &csv::StringRecord) -> Result<Columns, &'static str> {
        let column = |name: &str| headers.iter().position(|h| h == name);
        let required = |name: &'static str| column(name).ok_or(name);
        Ok(Columns {
            id: column("id"),
            line: required("line")?,
            path: required("path")?,
            video: column("videoId"),
            status: required("status")?,
            bytes: column("bytes"),
            sent: column("sent"),
            parts: column("parts"),
            seconds: column("seconds"),
            mbps: column("mbPerS"),
            error: column("error"),
            note: column("note"),
            title: column("title"),
            key: column("key"),
            size: column("size"),
            mtime: column("mtime"),
            started_at: column("startedAt"),
            ended_at: column("endedAt"),
            destination: column("destination"),
            run_id: column("runId"),
            fingerprint: column("fingerprint"),
            assets: column("assets"),
            encoding: column("encoding"),
            encoding_seconds: column("encodingSeconds"),
            action: column("action"),
            updated: column("updated"),
            transfer: column("transfer"),
            done_at: column("doneAt"),
            done_by: column("doneBy"),
        })
    }

    /// The report row of record `r`; what is wrong with it.
    fn row(&self, r: &csv::StringRecord) -> Result<ReportRow, String> {
        // Cells as the writer was given them: a formula's first character is read without the
        // quote that neutralised it.
        let field =
            |i: Option<usize>| restored(i.and_then(|i| r.get(i)).unwrap_or_default()).to_owned();
        let opt = |i: Option<usize>| Some(field(i)).filter(|s| !s.is_empty());
        let num = |i: Option<usize>| {
            let text = field(i);
            if text.is_empty() {
                return Ok(0.0);
            }
            let line = r.position().map_or(0, |p| p.line());
            text.parse::<f64>().map_err(|_| format!("line {line}: `{text}` is not a number"))
        };
        let status: RowStatus =
            serde_json::from_value(serde_json::Value::String(field(Some(self.status))))
                .map_err(|e| e.to_string())?;
        Ok(ReportRow {
            id: opt(self.id),
            line: num(Some(self.line))? as u64,
            path: field(Some(self.path)),
            video_id: opt(self.video),
            status,
            bytes: num(self.bytes)? as u64,
            sent: num(self.sent)? as u64,
            parts: num(self.parts)? as u64,
            seconds: num(self.seconds)?,
            mb_per_s: num(self.mbps)?,
            error: opt(self.error),
            note: opt(self.note),
            title: field(self.title),
            key: field(self.key),
            size: num(self.size)? as u64,
            mtime: opt(self.mtime),
            started_at: opt(self.started_at),
            ended_at: opt(self.ended_at),
            destination: opt(self.destination),
            run_id: opt(self.run_id),
            fingerprint: opt(self.fingerprint),
            assets: opt(self.assets),
            encoding: opt(self.encoding),
            encoding_seconds: opt(self.encoding_seconds).and_then(|s| s.parse().ok()),
            action: opt(self.action),
            updated: opt(self.updated),
            transfer: opt(self.transfer),
            done_at: opt(self.done_at),
            done_by: opt(self.done_by),
        })
    }
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

/// Reads every shard's report, its rows into `sorter`; their summed summary.
fn read_all(reports: &[PathBuf], sorter: &mut Sorter<ByLine>) -> Result<Summary, MergeError> {
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
    Ok(summary)
}

/// Joins the reports of a manifest's shards into the manifest's report at `out`, rows sorted by
/// line. A line in two reports is an error (the same shard twice, or shards cut differently);
/// with `manifest`, so is a manifest row in none (`lines` are the manifest's rows' lines, in
/// order, or why they cannot be read). Totals are summed, wall time is the longest shard's.
/// Nothing is left at `out` on an error. Each merged row is shown to `sink` as it is written.
pub fn merge(
    reports: &[PathBuf],
    manifest: Option<(&Path, &mut dyn Iterator<Item = Result<u64, String>>)>,
    out: &Path,
    sink: &mut dyn RowSink,
) -> Result<(io::Result<()>, Written), MergeError> {
    let mut sorter = Sorter::new(RESULTS_IN_MEMORY);
    let summary = read_all(reports, &mut sorter)?;
    let mut writer = ReportWriter::create(out, &summary);
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
                sink.row(&row);
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
