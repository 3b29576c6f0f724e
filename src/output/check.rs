//! What `avbatch check` shows: each way the account is out of step with the manifest (a table on
//! stdout, or JSON), the same as a report file (CSV, or JSON by extension), and a summary on
//! stderr.

use std::io::{self, Write};
use std::path::Path;

use serde_json::{json, Value};

use super::say;
use avbatch_api::Difference;
use avbatch_core::report::neutralised;

/// How a row or a video is out of step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// No video carries the row's key.
    Missing,
    /// Two or more videos carry one key.
    Duplicate,
    /// A video's fields are not its row's.
    Differs,
    /// A video's source is not complete.
    Incomplete,
    /// A video's status could not be read: it may be fine or not.
    Unknown,
    /// A video carries an avbatch key no row owns.
    Extra,
}

impl Kind {
    /// Every kind, in the order the counts are given.
    pub const ALL: [Kind; 6] = [
        Kind::Missing,
        Kind::Duplicate,
        Kind::Differs,
        Kind::Incomplete,
        Kind::Unknown,
        Kind::Extra,
    ];

    /// The kind's name in the report.
    pub fn word(self) -> &'static str {
        match self {
            Kind::Missing => "missing",
            Kind::Duplicate => "duplicate",
            Kind::Differs => "differs",
            Kind::Incomplete => "incomplete",
            Kind::Unknown => "unknown",
            Kind::Extra => "extra",
        }
    }
}

/// One way the account is out of step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// What is wrong.
    pub kind: Kind,
    /// The row's manifest line (none for an extra, or a duplicate no row owns).
    pub line: Option<u64>,
    /// The row's `id` column.
    pub id: Option<String>,
    /// The key (`avbatch_key`).
    pub key: String,
    /// The video concerned: none for a missing row, several for a duplicate.
    pub video_ids: Vec<String>,
    /// The video's title (extras), else the row's.
    pub title: String,
    /// The fields that differ.
    pub fields: Vec<Difference>,
    /// The source's state (`empty`, `partial`) when incomplete; why the status is unknown.
    pub detail: String,
}

/// What was compared, for the summary.
#[derive(Debug, Clone, Default)]
pub struct Compared {
    /// The manifest as given.
    pub manifest: String,
    /// Its rows.
    pub rows: u64,
    /// Videos of the account carrying an avbatch key.
    pub keyed_videos: u64,
    /// Of those, videos a `--force` run is replacing (`avbatch_replaced_key` of a row's key):
    /// deleted by the run that completes their replacement, not compared.
    pub replaced: u64,
    /// Of those, videos the rows of the manifests named by `--shared-with` own: not compared.
    pub shared: u64,
}

fn count(findings: &[Finding], kind: Kind) -> usize {
    findings.iter().filter(|f| f.kind == kind).count()
}

/// The findings as one JSON document.
pub fn document(compared: &Compared, findings: &[Finding]) -> Value {
    let counts: serde_json::Map<String, Value> =
        Kind::ALL.iter().map(|k| (k.word().to_owned(), json!(count(findings, *k)))).collect();
    let listed: Vec<Value> = findings
        .iter()
        .map(|f| {
            let mut v = json!({
                "kind": f.kind.word(),
                "line": f.line,
                "id": f.id,
                "key": f.key,
                "title": f.title,
            });
            match f.kind {
                Kind::Missing => v["videoId"] = Value::Null,
                Kind::Duplicate => v["videoIds"] = json!(f.video_ids),
                _ => v["videoId"] = json!(f.video_ids.first()),
            }
            match f.kind {
                Kind::Differs => {
                    v["fields"] = f
                        .fields
                        .iter()
                        .map(|d| json!({"field": d.field, "manifest": d.wanted, "server": d.held}))
                        .collect();
                }
                Kind::Incomplete => v["state"] = json!(f.detail),
                Kind::Unknown => v["error"] = json!(f.detail),
                _ => {}
            }
            v
        })
        .collect();
    json!({
        "manifest": compared.manifest,
        "inStep": findings.is_empty(),
        "rows": compared.rows,
        "keyedVideos": compared.keyed_videos,
        "replacedVideos": compared.replaced,
        "sharedVideos": compared.shared,
        "counts": counts,
        "findings": listed,
    })
}

/// What a finding says besides its kind and ids, in one line.
fn detail(f: &Finding) -> String {
    match f.kind {
        Kind::Differs => f
            .fields
            .iter()
            .map(|d| {
                format!(
                    "{}: {:?} in the manifest, {:?} on the server",
                    d.field,
                    avbatch_core::excerpt::cut(&d.wanted),
                    avbatch_core::excerpt::cut(&d.held)
                )
            })
            .collect::<Vec<_>>()
            .join("; "),
        Kind::Incomplete => format!("source {}", f.detail),
        Kind::Unknown => format!("status unknown: {}", f.detail),
        Kind::Duplicate => format!("{} videos under one key", f.video_ids.len()),
        Kind::Missing => "no video under the row's key".to_owned(),
        Kind::Extra => "no row owns its key".to_owned(),
    }
}

/// Prints the findings on stdout: a table, or one JSON document with `json`. A reader that
/// stops early (`| head`) is not an error.
pub fn show(compared: &Compared, findings: &[Finding], json: bool) {
    let mut out = io::BufWriter::new(io::stdout().lock());
    if json {
        let _ = serde_json::to_writer_pretty(&mut out, &document(compared, findings));
        let _ = writeln!(out);
    } else if !findings.is_empty() {
        let _ = table(&mut out, findings);
    }
    let _ = out.flush();
}

fn table(out: &mut impl Write, findings: &[Finding]) -> io::Result<()> {
    writeln!(out, "{:<10}  {:>6}  {:<24}  what", "kind", "line", "videoId")?;
    for f in findings {
        let line = f.line.map_or_else(|| "-".to_owned(), |n| n.to_string());
        let video = if f.video_ids.is_empty() { "-".to_owned() } else { f.video_ids.join(",") };
        writeln!(out, "{:<10}  {line:>6}  {video:<24}  {}", f.kind.word(), detail(f))?;
    }
    Ok(())
}

/// Writes the findings to `path`: JSON when it ends in `.json`, else CSV (`kind, line, id, key,
/// videoId, title, fields, detail`; a duplicate's videos and the fields `;`-separated).
pub fn write_report(path: &Path, compared: &Compared, findings: &[Finding]) -> io::Result<()> {
    let json = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("json"));
    let mut out = io::BufWriter::new(std::fs::File::create(path)?);
    if json {
        serde_json::to_writer_pretty(&mut out, &document(compared, findings))?;
        writeln!(out)?;
    } else {
        let mut csv = csv::Writer::from_writer(&mut out);
        csv.write_record(["kind", "line", "id", "key", "videoId", "title", "fields", "detail"])?;
        for f in findings {
            let fields: Vec<&str> = f.fields.iter().map(|d| d.field).collect();
            // Text cells neutralised as the run's report does, so no spreadsheet runs a title
            // `=1+1` as a formula; the line is a number.
            csv.write_record([
                f.kind.word(),
                &f.line.map_or_else(String::new, |n| n.to_string()),
                &neutralised(f.id.as_deref().unwrap_or("")),
                &neutralised(&f.key),
                &neutralised(&f.video_ids.join(";")),
                &neutralised(&f.title),
                &neutralised(&fields.join(";")),
                &neutralised(&detail(f)),
            ])?;
        }
        csv.flush()?;
    }
    out.flush()
}

/// The keyed videos not compared, in parentheses (empty when none).
fn aside(compared: &Compared) -> String {
    let mut parts = Vec::new();
    if compared.replaced > 0 {
        parts.push(format!("{} being replaced", compared.replaced));
    }
    if compared.shared > 0 {
        parts.push(format!("{} of the manifests it shares the account with", compared.shared));
    }
    match parts.is_empty() {
        true => String::new(),
        false => format!(" ({}, not compared)", parts.join(", ")),
    }
}

/// Says on stderr whether the account is in step, and if not, how.
pub fn summarize(compared: &Compared, findings: &[Finding]) {
    let looked = format!(
        "{} row(s) of `{}` against {} video(s) with an avbatch key{}",
        compared.rows,
        compared.manifest,
        compared.keyed_videos,
        aside(compared)
    );
    say(&looked);
    if findings.is_empty() {
        say("in step: every row has one complete video that matches it, and no video is extra");
        return;
    }
    let parts: Vec<String> = [
        (Kind::Missing, "row(s) without a video"),
        (Kind::Duplicate, "key(s) held by more than one video"),
        (Kind::Differs, "video(s) that differ from their row"),
        (Kind::Incomplete, "video(s) with an incomplete source"),
        (Kind::Unknown, "video(s) whose status could not be read"),
        (Kind::Extra, "video(s) whose key no row owns"),
    ]
    .iter()
    .filter_map(|(kind, what)| {
        let n = count(findings, *kind);
        (n > 0).then(|| format!("{n} {what}"))
    })
    .collect();
    say(&format!("not in step: {}", parts.join(", ")));
}
