//! The plan of `avbatch upload --dry-run` on stdout, one row at a time (a manifest of any length
//! prints in bounded memory): a table for people, or with `--json` one JSON document.

use std::io::{self, BufWriter, StdoutLock, Write};

use indicatif::HumanBytes;
use serde_json::json;

use avbatch_api::{Bucket, Quotas};
use avbatch_core::plan::cost::Cost;

/// What a run would do with a row, as the journal tells (the server, which a dry run does not
/// ask, may still hold a video for a row the journal has never seen: the run would find it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Not in the journal: looked up by its key and uploaded.
    Upload,
    /// Not in the journal, its `path` a URL: looked up by its key and made with the URL as its
    /// source, api.video fetching it.
    Pull,
    /// Started by an earlier run: continued from what the server holds.
    Resume,
    /// Failed in an earlier run: tried again.
    Retry,
    /// Done by an earlier run, its file unchanged: nothing sent.
    Skip,
    /// Done by an earlier run, its file unchanged, but assets added or changed since (its
    /// thumbnail, captions, chapters): those sent, not its source.
    Assets,
    /// Done by an earlier run, its file's time moved but not its size: read and compared with
    /// the upload's fingerprint, skipped when the contents are the same.
    Compare,
    /// Done by an earlier run, its file changed since: reported, uploaded again only with
    /// `--force` (or as an `upsert` row).
    Changed,
    /// Its video's fields differ from the row's: those fields changed (`upsert`, `update`).
    Update,
    /// Its videos deleted (`delete`).
    Delete,
    /// An `update` row whose key has no video: the run fails it.
    Missing,
    /// What the run finds makes it fail the row, saying why and how to go on (a video whose
    /// encoding failed, one holding another file, a field set only when a video is made).
    Fail,
    /// A row with problems of its own, left out with `--skip-invalid-rows`: the run reports it
    /// failed with them and sends nothing for it.
    Invalid,
}

impl Action {
    const ALL: [Action; 13] = [
        Action::Upload,
        Action::Pull,
        Action::Resume,
        Action::Retry,
        Action::Skip,
        Action::Assets,
        Action::Compare,
        Action::Changed,
        Action::Update,
        Action::Delete,
        Action::Missing,
        Action::Fail,
        Action::Invalid,
    ];

    /// The word the table and the JSON use.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Upload => "upload",
            Action::Pull => "pull",
            Action::Resume => "resume",
            Action::Retry => "retry",
            Action::Skip => "skip",
            Action::Assets => "assets",
            Action::Compare => "compare",
            Action::Changed => "changed",
            Action::Update => "update",
            Action::Delete => "delete",
            Action::Missing => "missing",
            Action::Fail => "fail",
            Action::Invalid => "invalid",
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
    /// With [`Action::Update`]: the fields that would change.
    pub fields: &'a [&'static str],
    /// With [`Action::Delete`]: the videos that would be deleted.
    pub videos: &'a [String],
    /// With [`Action::Invalid`]: the row's problems, each with its line and column.
    pub problems: &'a [String],
    /// The assets the run would send (a thumbnail, captions, chapters), when any.
    pub assets: &'a [String],
    /// With [`Action::Fail`]: the error the run would fail the row with.
    pub error: Option<&'a str>,
}

impl PlanRow<'_> {
    /// `title,tags` or `vi1 vi2`: what an update or a delete touches, for the table.
    fn detail(&self) -> String {
        match self.action {
            Action::Update => {
                let said = |f: &&str| match avbatch_api::consequence(f) {
                    Some(then) => format!("{f}: {then}"),
                    None => (*f).to_owned(),
                };
                format!("  ({})", self.fields.iter().map(said).collect::<Vec<_>>().join(", "))
            }
            Action::Delete => format!("  ({})", self.videos.join(" ")),
            Action::Invalid => format!("  ({})", self.problems.join("; ")),
            Action::Assets => format!("  ({})", self.assets.join(" ")),
            Action::Fail => format!("  ({})", self.error.unwrap_or_default()),
            _ => String::new(),
        }
    }
}

/// How long the plan's requests and bytes take at the least.
#[derive(Debug, Clone)]
pub struct Estimate {
    /// The requests, by bucket.
    pub cost: Cost,
    /// The quotas they are paced to.
    pub quotas: Quotas,
    /// Whose quotas: `api.video's production`, `this account's`, …
    pub quotas_of: String,
    /// The bytes to send: what the rows' uploads have left.
    pub bytes: u64,
    /// The link's rate, when known (`--assume-bandwidth`, `--bandwidth`).
    pub bytes_per_s: Option<u64>,
}

impl Estimate {
    /// Seconds the bytes take on the link, when its rate is known.
    fn link_seconds(&self) -> Option<f64> {
        self.bytes_per_s.map(|r| self.bytes as f64 / r.max(1) as f64)
    }

    /// The least time in all: the quotas' and the link's, whichever is longer.
    fn seconds(&self) -> f64 {
        self.cost.seconds_at_least(self.quotas).max(self.link_seconds().unwrap_or(0.0))
    }

    fn json(&self) -> serde_json::Value {
        let c = &self.cost;
        json!({
            "quotas": {
                "of": self.quotas_of,
                "uploadsPerMinute": self.quotas.uploads,
                "writesPerMinute": self.quotas.writes,
                "readsPerMinute": self.quotas.reads,
            },
            "requests": {
                "uploads": c.uploads,
                "writes": c.writes,
                "readsAtLeast": c.reads_min,
                "readsAtMost": c.reads_max,
            },
            "quotaSeconds": round(c.seconds_at_least(self.quotas)),
            "bytesToSend": self.bytes,
            "bytesPerSecond": self.bytes_per_s,
            "linkSeconds": self.link_seconds().map(round),
            "secondsAtLeast": round(self.seconds()),
        })
    }

    fn lines(&self) -> Vec<String> {
        let q = &self.quotas;
        let mut lines = vec![format!(
            "estimate at {} quotas ({} uploads, {} writes, {} reads a minute):",
            self.quotas_of, q.uploads, q.writes, q.reads
        )];
        for bucket in Bucket::ALL {
            let n = self.cost.of(bucket);
            if n == 0 {
                continue;
            }
            let per_minute = q.of(bucket).max(1);
            let at_least = n.saturating_sub(per_minute) as f64 * 60.0 / per_minute as f64;
            let count = match bucket {
                Bucket::Reads if self.cost.reads_min != n => {
                    format!("{} to {}", grouped(self.cost.reads_min), grouped(n))
                }
                _ => grouped(n),
            };
            let time = if at_least > 0.0 {
                format!("at least {} at {per_minute} a minute", span(at_least))
            } else {
                format!("within the first minute's {per_minute}")
            };
            lines.push(format!(
                "  {count} {} requests: {time}",
                bucket.name().trim_end_matches('s')
            ));
        }
        if let (Some(rate), Some(secs)) = (self.bytes_per_s, self.link_seconds()) {
            lines.push(format!(
                "  {} at {}/s ({:.0} Mbit/s): {}",
                HumanBytes(self.bytes),
                HumanBytes(rate),
                rate as f64 * 8.0 / 1e6,
                span(secs)
            ));
        }
        lines.push(format!("  at least {} in all", span(self.seconds())));
        lines
    }
}

fn round(seconds: f64) -> f64 {
    (seconds * 10.0).round() / 10.0
}

/// `51 234`: thousands set apart, as people read counts.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

/// `8 h 32 min`, `4 min`, `under a minute`, `2 d 3 h`.
fn span(seconds: f64) -> String {
    let minutes = (seconds / 60.0).ceil() as u64;
    match minutes {
        0 => "no time".to_owned(),
        1 if seconds < 60.0 => "under a minute".to_owned(),
        m if m < 60 => format!("{m} min"),
        m if m < 48 * 60 => match m % 60 {
            0 => format!("{} h", m / 60),
            r => format!("{} h {r} min", m / 60),
        },
        m => format!("{} d {} h", m / (24 * 60), m % (24 * 60) / 60),
    }
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
            let mut value = value;
            if row.action == Action::Update {
                value["fields"] = json!(row.fields);
                let then: Vec<String> = row
                    .fields
                    .iter()
                    .filter_map(|f| avbatch_api::consequence(f).map(|c| format!("{f}: {c}")))
                    .collect();
                if !then.is_empty() {
                    value["consequences"] = json!(then);
                }
            }
            if row.action == Action::Delete {
                value["videoIds"] = json!(row.videos);
            }
            if row.action == Action::Invalid {
                value["problems"] = json!(row.problems);
            }
            if !row.assets.is_empty() {
                value["assets"] = json!(row.assets);
            }
            if let Some(error) = row.error {
                value["error"] = json!(error);
            }
            let _ = write!(self.out, "{}{value}", if first { "" } else { "," });
        } else {
            let _ = writeln!(
                self.out,
                "{:>6}  {:>14}  {:>5}  {:<7}  {}{}",
                row.line,
                row.bytes,
                row.parts,
                row.action.as_str(),
                row.path,
                row.detail()
            );
        }
    }

    /// The totals, the estimate, and the end of the document.
    pub fn finish(mut self, estimate: &Estimate) {
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
                "estimate": estimate.json(),
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
            for line in estimate.lines() {
                let _ = writeln!(self.out, "{line}");
            }
        }
        let _ = self.out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_and_counts_read_as_people_say_them() {
        assert_eq!(span(0.0), "no time");
        assert_eq!(span(20.0), "under a minute");
        assert_eq!(span(61.0), "2 min");
        assert_eq!(span(511.34 * 60.0), "8 h 32 min");
        assert_eq!(span(3.0 * 86_400.0 + 7_200.0), "3 d 2 h");
        assert_eq!(grouped(51_234), "51 234");
        assert_eq!(grouped(1_000_000), "1 000 000");
        assert_eq!(grouped(999), "999");
    }
}
