//! What `avbatch status` prints on stdout: per journal (the run's, or each shard's and their
//! total) whether a run holds it now, its rows and bytes, and with `--failed` the failed rows;
//! text for people, or `--json`.

use std::io::Write;

use indicatif::HumanBytes;
use serde_json::{json, Value};

use avbatch_core::journal::{Holder, Totals};

/// Whether a run holds a journal now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum RunView {
    /// There is no journal (a shard not started).
    #[default]
    NoJournal,
    /// No run holds it.
    Idle,
    /// A run holds it; who, when its lock file says.
    Active(Option<Holder>),
    /// The lock could not be asked (why).
    Unknown(String),
}

/// The manifest's rows of one journal's run, counted against it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ManifestView {
    /// Rows of the run (its shard's, for a shard).
    pub rows: u64,
    /// Their files' bytes.
    pub bytes: u64,
    /// Rows the journal has no entry for.
    pub rows_not_started: u64,
    /// Their bytes.
    pub bytes_not_started: u64,
    /// Bytes the server acknowledged of these rows.
    pub bytes_done: u64,
    /// Rows whose source is done and some of whose assets (thumbnail, tracks) are not recorded
    /// as sent: a run stopped between the two. Not done yet: the next run sends them.
    pub assets_pending: u64,
}

/// A failed row, as `--failed` lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FailedRow {
    /// Its manifest line, when the manifest was read.
    pub line: Option<u64>,
    /// Its path as the manifest writes it.
    pub path: String,
    /// The video it went to, if one was made.
    pub video_id: Option<String>,
    /// Why it failed.
    pub error: String,
}

/// One journal: the run's, or a shard's.
#[derive(Debug, Clone, Default)]
pub struct JournalView {
    /// Its path.
    pub journal: String,
    /// `K/N`, for a shard.
    pub shard: Option<String>,
    /// Whether it exists (a shard that has not started has none).
    pub exists: bool,
    /// Whether a run holds it now.
    pub run: RunView,
    /// Its own totals.
    pub totals: Totals,
    /// The manifest's rows counted against it, when the manifest was read.
    pub manifest: Option<ManifestView>,
    /// The failed rows, when asked for.
    pub failed: Option<Vec<FailedRow>>,
}

/// Everything `avbatch status` shows.
#[derive(Debug, Clone, Default)]
pub struct StatusView {
    /// One journal, or one per shard.
    pub journals: Vec<JournalView>,
    /// The journals are a run's shards, found beside the manifest: a total follows them.
    pub sharded: bool,
    /// `--failed`.
    pub list_failed: bool,
}

/// Prints the status on stdout.
pub fn print(view: &StatusView, json: bool) -> anyhow::Result<()> {
    let text = if json {
        let value = if view.sharded {
            json!({
                "shards": view.journals.iter().map(journal_json).collect::<Vec<_>>(),
                "total": journal_json(&total(view)),
            })
        } else {
            journal_json(&view.journals[0])
        };
        format!("{}\n", serde_json::to_string_pretty(&value)?)
    } else {
        let mut text = String::new();
        for j in &view.journals {
            journal_text(j, &mut text);
        }
        if view.sharded {
            let running = view.journals.iter().filter(|j| matches!(j.run, RunView::Active(_)));
            text.push_str(&format!(
                "total of {} shards ({} running now):\n",
                view.journals.len(),
                running.count()
            ));
            counts_text(&total(view), &mut text);
        }
        text
    };
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        // A reader that stops early (`| head`) is not an error.
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// The shards added up.
fn total(view: &StatusView) -> JournalView {
    let mut sum = JournalView { exists: true, run: RunView::Idle, ..JournalView::default() };
    let mut manifest = ManifestView::default();
    let mut failed = Vec::new();
    for j in &view.journals {
        let (a, b) = (&mut sum.totals, &j.totals);
        a.rows += b.rows;
        a.done += b.done;
        a.failed += b.failed;
        a.uploading += b.uploading;
        a.bytes_done += b.bytes_done;
        a.bytes_total += b.bytes_total;
        a.bytes_of_done += b.bytes_of_done;
        if let Some(m) = &j.manifest {
            manifest.rows += m.rows;
            manifest.bytes += m.bytes;
            manifest.rows_not_started += m.rows_not_started;
            manifest.bytes_not_started += m.bytes_not_started;
            manifest.bytes_done += m.bytes_done;
            manifest.assets_pending += m.assets_pending;
        }
        failed.extend(j.failed.iter().flatten().cloned());
        if matches!(j.run, RunView::Active(_)) {
            sum.run = RunView::Active(None);
        }
    }
    failed.sort_by_key(|f| f.line);
    sum.manifest = view.journals.iter().all(|j| j.manifest.is_some()).then_some(manifest);
    sum.failed = view.list_failed.then_some(failed);
    sum
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

fn journal_text(j: &JournalView, text: &mut String) {
    let name = match &j.shard {
        Some(s) => format!("shard {s}: {}", j.journal),
        None => format!("journal: {}", j.journal),
    };
    if !j.exists {
        let rows = j.manifest.as_ref().map_or(String::new(), |m| {
            format!(", {} rows ({}) not started", m.rows, HumanBytes(m.bytes))
        });
        text.push_str(&format!("{name}: not started (no journal yet){rows}\n"));
        return;
    }
    text.push_str(&format!("{name}\n"));
    let run = match &j.run {
        RunView::Active(Some(h)) => {
            format!("active now (pid {} on `{}`, since {})", h.pid, h.host, h.since)
        }
        RunView::Active(None) => "active now".to_owned(),
        RunView::Idle | RunView::NoJournal => "not running".to_owned(),
        RunView::Unknown(why) => format!("unknown ({why})"),
    };
    text.push_str(&format!("run: {run}\n"));
    counts_text(j, text);
}

fn counts_text(j: &JournalView, text: &mut String) {
    let t = &j.totals;
    match &j.manifest {
        Some(m) => {
            text.push_str(&format!(
                "manifest rows: {} ({} not started)\n",
                m.rows, m.rows_not_started
            ));
            let waiting = match m.assets_pending {
                0 => String::new(),
                n => format!(", {n} waiting for their assets"),
            };
            text.push_str(&format!(
                "rows: {} done{waiting}, {} failed, {} in progress, {} not started\n",
                t.done.saturating_sub(m.assets_pending),
                t.failed,
                t.uploading,
                m.rows_not_started
            ));
            text.push_str(&format!(
                "bytes: {} of {} acknowledged ({:.1} %), {} not started\n",
                HumanBytes(m.bytes_done),
                HumanBytes(m.bytes),
                percent(m.bytes_done, m.bytes),
                HumanBytes(m.bytes_not_started)
            ));
        }
        None => {
            text.push_str(&format!(
                "rows: {} done, {} failed, {} in progress\n",
                t.done, t.failed, t.uploading
            ));
            text.push_str(&format!(
                "bytes: {} of {} acknowledged ({:.1} %) of the rows in the journal (give MANIFEST \
                 to count the rows not started)\n",
                HumanBytes(t.bytes_done),
                HumanBytes(t.bytes_total),
                percent(t.bytes_done, t.bytes_total)
            ));
        }
    }
    if let Some(failed) = &j.failed {
        text.push_str(&format!("failed rows: {}\n", failed.len()));
        for f in failed {
            let line = f.line.map_or("line ?".to_owned(), |l| format!("line {l}"));
            let video = f.video_id.as_deref().unwrap_or("no video");
            text.push_str(&format!("  {line}  {}  {video}  {}\n", f.path, f.error));
        }
    }
}

fn journal_json(j: &JournalView) -> Value {
    let mut v = serde_json::to_value(&j.totals).unwrap_or_else(|_| json!({}));
    v["journal"] = json!(j.journal);
    v["shard"] = json!(j.shard);
    v["exists"] = json!(j.exists);
    let (active, holder, why) = match &j.run {
        RunView::Active(h) => (Some(true), h.as_ref(), None),
        RunView::Idle | RunView::NoJournal => (Some(false), None, None),
        RunView::Unknown(why) => (None, None, Some(why)),
    };
    v["active"] = json!(active);
    v["holder"] = json!(holder.map(|h| json!({"host": h.host, "pid": h.pid, "since": h.since})));
    if let Some(why) = why {
        v["activeUnknown"] = json!(why);
    }
    let m = j.manifest.as_ref();
    v["manifestRows"] = json!(m.map(|m| m.rows));
    v["notStarted"] = json!(m.map(|m| m.rows_not_started));
    if let Some(m) = m {
        // The journal's `done` counts a row once its source is done; its assets may not be.
        v["done"] = json!(j.totals.done.saturating_sub(m.assets_pending));
        v["assetsPending"] = json!(m.assets_pending);
    }
    v["manifestBytes"] = json!(m.map(|m| m.bytes));
    v["bytesNotStarted"] = json!(m.map(|m| m.bytes_not_started));
    v["bytesDoneOfManifest"] = json!(m.map(|m| m.bytes_done));
    v["percent"] = json!(match m {
        Some(m) => percent(m.bytes_done, m.bytes),
        None => percent(j.totals.bytes_done, j.totals.bytes_total),
    });
    if let Some(failed) = &j.failed {
        v["failedRows"] = json!(failed);
    }
    v
}
