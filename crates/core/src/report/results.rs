//! Each finished row's result, kept in memory and then on disk until the report is written.

use super::*;

/// A finished row as the report needs it, kept on disk until the report is written.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Outcome {
    pub(super) index: usize,
    #[serde(default)]
    pub(super) started_at: Option<String>,
    #[serde(default)]
    pub(super) ended_at: Option<String>,
    #[serde(default)]
    pub(super) fingerprint: Option<String>,
    #[serde(default)]
    pub(super) assets: Vec<String>,
    #[serde(default)]
    pub(super) encoding: Option<String>,
    #[serde(default)]
    pub(super) encoding_seconds: Option<f64>,
    #[serde(default)]
    pub(super) updated: Vec<String>,
    #[serde(default)]
    pub(super) transfer: Option<String>,
    #[serde(default)]
    pub(super) earlier: Option<crate::journal::History>,
    pub(super) status: RowStatus,
    pub(super) video_id: Option<String>,
    pub(super) bytes: u64,
    pub(super) sent: u64,
    pub(super) parts: u64,
    pub(super) seconds: f64,
    pub(super) error: Option<String>,
    pub(super) note: Option<String>,
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
pub(super) fn write_json_line(value: &impl Serialize, out: &mut impl Write) -> io::Result<()> {
    serde_json::to_writer(&mut *out, value)?;
    out.write_all(b"\n")
}

pub(super) fn read_json_line<T: for<'de> Deserialize<'de>>(
    input: &mut impl BufRead,
) -> io::Result<Option<T>> {
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
    pub(super) outcomes: Sorter<Outcome>,
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
            earlier,
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
            earlier,
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
