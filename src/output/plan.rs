//! The plan of `avbatch upload --dry-run` on stdout, one row at a time (a manifest of any length
//! prints in bounded memory): a table for people, or with `--json` one JSON document.

use std::io::{self, BufWriter, StdoutLock, Write};

use indicatif::HumanBytes;
use serde_json::json;

/// What a run would do with a row, as the journal tells (the server, which a dry run does not
/// ask, may still hold a video for a row the journal has never seen: the run would find it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Not in the journal: looked up by its key and uploaded.
    Upload,
    /// Started by an earlier run: continued from what the server holds.
    Resume,
    /// Failed in an earlier run: tried again.
    Retry,
    /// Done by an earlier run, its file unchanged: nothing sent.
    Skip,
    /// Done by an earlier run, its file's time moved but not its size: read and compared with
    /// the upload's fingerprint, skipped when the contents are the same.
    Compare,
    /// Done by an earlier run, its file changed since: reported, uploaded again only with
    /// `--force`.
    Changed,
}

impl Action {
    const ALL: [Action; 6] = [
        Action::Upload,
        Action::Resume,
        Action::Retry,
        Action::Skip,
        Action::Compare,
        Action::Changed,
    ];

    /// The word the table and the JSON use.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Upload => "upload",
            Action::Resume => "resume",
            Action::Retry => "retry",
            Action::Skip => "skip",
            Action::Compare => "compare",
            Action::Changed => "changed",
        }
    }
}

/// What the plan is of.
#[derive(Debug, Clone)]
pub struct PlanHeader {
    /// The manifest.
    pub manifest: String,
    /// The journal the actions come from, when there is one.
    pub journal: Option<String>,
    /// `K/N`, for a shard's run.
    pub shard: Option<String>,
    /// `--limit`.
    pub limit: Option<u64>,
    /// Bytes per part.
    pub chunk_size: u64,
    /// Rows in the whole manifest.
    pub manifest_rows: u64,
}

/// One row of the plan.
#[derive(Debug, Clone, Copy)]
pub struct PlanRow<'a> {
    /// Its manifest line.
    pub line: u64,
    /// Its `id`, if any.
    pub id: Option<&'a str>,
    /// Its path as the manifest writes it.
    pub path: &'a str,
    /// Its file's size.
    pub bytes: u64,
    /// Parts it is cut into.
    pub parts: u64,
    /// What the run would do with it.
    pub action: Action,
}

/// Prints a plan as its rows come.
pub struct PlanPrinter {
    out: BufWriter<StdoutLock<'static>>,
    header: PlanHeader,
    json: bool,
    rows: u64,
    bytes: u64,
    parts: u64,
    actions: [u64; Action::ALL.len()],
}

impl PlanPrinter {
    /// Starts the plan: the table's header, or the JSON document's opening.
    pub fn start(header: PlanHeader, json: bool) -> PlanPrinter {
        let mut printer = PlanPrinter {
            out: BufWriter::new(io::stdout().lock()),
            header,
            json,
            rows: 0,
            bytes: 0,
            parts: 0,
            actions: [0; Action::ALL.len()],
        };
        // A reader that stops early (`| head`) is not an error: writes are not checked.
        if json {
            let h = &printer.header;
            let opening = json!({
                "dryRun": true,
                "manifest": h.manifest,
                "journal": h.journal,
                "shard": h.shard,
                "limit": h.limit,
                "chunkSize": h.chunk_size,
                "manifestRows": h.manifest_rows,
            })
            .to_string();
            // The object without its closing brace, then the rows as they come.
            let _ = write!(printer.out, "{},\"plan\":[", opening.trim_end_matches('}'));
        } else {
            let _ = writeln!(
                printer.out,
                "{:>6}  {:>14}  {:>5}  {:<7}  path",
                "line", "bytes", "parts", "action"
            );
        }
        printer
    }

    /// One row.
    pub fn row(&mut self, row: &PlanRow) {
        let first = self.rows == 0;
        self.rows += 1;
        self.bytes += row.bytes;
        self.parts += row.parts;
        self.actions[row.action as usize] += 1;
        if self.json {
            let value = json!({
                "line": row.line,
                "id": row.id,
                "path": row.path,
                "bytes": row.bytes,
                "parts": row.parts,
                "action": row.action.as_str(),
            });
            let _ = write!(self.out, "{}{value}", if first { "" } else { "," });
        } else {
            let _ = writeln!(
                self.out,
                "{:>6}  {:>14}  {:>5}  {:<7}  {}",
                row.line,
                row.bytes,
                row.parts,
                row.action.as_str(),
                row.path
            );
        }
    }

    /// The totals, and the end of the document.
    pub fn finish(mut self) {
        let actions: serde_json::Map<String, serde_json::Value> = Action::ALL
            .iter()
            .map(|a| (a.as_str().to_owned(), json!(self.actions[*a as usize])))
            .collect();
        if self.json {
            let totals = json!({
                "rows": self.rows,
                "bytes": self.bytes,
                "parts": self.parts,
                "actions": actions,
                "sent": 0,
            })
            .to_string();
            let _ = writeln!(self.out, "],{}", totals.trim_start_matches('{'));
        } else {
            let said: Vec<String> = Action::ALL
                .iter()
                .filter(|a| self.actions[**a as usize] > 0)
                .map(|a| format!("{} {}", self.actions[*a as usize], a.as_str()))
                .collect();
            let _ = writeln!(
                self.out,
                "plan: {} rows, {} ({} bytes), {} parts of up to {}{}; nothing was sent (dry run)",
                self.rows,
                HumanBytes(self.bytes),
                self.bytes,
                self.parts,
                HumanBytes(self.header.chunk_size),
                if said.is_empty() { String::new() } else { format!(" ({})", said.join(", ")) }
            );
        }
        let _ = self.out.flush();
    }
}
