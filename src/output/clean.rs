//! What `avbatch clean` shows: the leftovers found (a table on stdout, or JSON), what became of
//! each with `--delete`, and a summary on stderr.

use std::io::{self, Write};

use indicatif::HumanBytes;
use serde_json::{json, Value};

use super::say;
use avbatch_api::Progress;
use avbatch_core::leftovers::{Found, Leftover};

/// What became of a leftover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Only listed (no `--delete`).
    Listed,
    /// Deleted (or already gone).
    Deleted,
    /// Not deleted: its upload completed since it was listed, or it went away.
    Kept,
    /// The delete failed: why.
    Failed(String),
    /// Not tried: the command stopped first.
    NotTried,
}

impl Outcome {
    fn word(&self) -> &'static str {
        match self {
            Outcome::Listed => "listed",
            Outcome::Deleted => "deleted",
            Outcome::Kept => "kept",
            Outcome::Failed(_) => "failed",
            Outcome::NotTried => "not tried",
        }
    }
}

/// Where the leftovers were looked for, for the JSON and the summary.
#[derive(Debug, Clone)]
pub struct Scope {
    /// The manifest, or `None` for the whole account.
    pub manifest: Option<String>,
    /// `--older-than`, as given.
    pub older_than: String,
    /// Whether `--delete` was given.
    pub delete: bool,
}

fn state(progress: Progress) -> &'static str {
    match progress {
        Progress::Empty => "empty",
        Progress::Partial => "partial",
        Progress::Complete => "complete",
    }
}

/// What the server holds of a leftover, for a person.
fn held(l: &Leftover) -> String {
    match (l.held_bytes, l.held_parts) {
        (0, 0) => "-".to_owned(),
        (0, parts) => format!("{parts} part(s)"),
        (bytes, _) => HumanBytes(bytes).to_string(),
    }
}

/// Prints the leftovers with what became of each (`outcomes`, in the same order) on stdout: a
/// table, or one JSON document with `json`. A reader that stops early (`| head`) is not an error.
pub fn show(scope: &Scope, found: &Found, outcomes: &[Outcome], json: bool) {
    let mut out = io::BufWriter::new(io::stdout().lock());
    if json {
        let _ = serde_json::to_writer_pretty(&mut out, &document(scope, found, outcomes));
        let _ = writeln!(out);
    } else if !found.leftovers.is_empty() {
        let _ = table(&mut out, scope, found, outcomes);
    }
    let _ = out.flush();
}

fn table(
    out: &mut impl Write,
    scope: &Scope,
    found: &Found,
    outcomes: &[Outcome],
) -> io::Result<()> {
    let action = |text: &str| if scope.delete { format!("{text:<10}  ") } else { String::new() };
    writeln!(
        out,
        "{}{:<24}  {:<7}  {:>11}  {:<25}  {:>6}  title",
        action("action"),
        "videoId",
        "state",
        "held",
        "createdAt",
        "line"
    )?;
    for (l, outcome) in found.leftovers.iter().zip(outcomes) {
        writeln!(
            out,
            "{}{:<24}  {:<7}  {:>11}  {:<25}  {:>6}  {}",
            action(outcome.word()),
            l.video_id,
            state(l.progress),
            held(l),
            l.created_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            l.line.map_or_else(|| "-".to_owned(), |n| n.to_string()),
            avbatch_core::excerpt::cut(&l.title)
        )?;
    }
    Ok(())
}

fn document(scope: &Scope, found: &Found, outcomes: &[Outcome]) -> Value {
    let leftovers: Vec<Value> = found
        .leftovers
        .iter()
        .zip(outcomes)
        .map(|(l, outcome)| {
            let mut v = json!({
                "videoId": l.video_id,
                "title": l.title,
                "keyField": l.field,
                "key": l.key,
                "state": state(l.progress),
                "heldBytes": l.held_bytes,
                "heldParts": l.held_parts,
                "createdAt": l.created_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                "line": l.line,
                "outcome": outcome.word(),
            });
            if let Outcome::Failed(why) = outcome {
                v["error"] = json!(why);
            }
            v
        })
        .collect();
    let count = |word: &str| outcomes.iter().filter(|o| o.word() == word).count();
    json!({
        "scope": if scope.manifest.is_some() { "manifest" } else { "account" },
        "manifest": scope.manifest,
        "olderThan": scope.older_than,
        "keyedVideos": found.keyed,
        "complete": found.complete,
        "younger": found.young,
        "leftovers": leftovers,
        "deleted": count("deleted"),
        "failed": count("failed"),
        "kept": count("kept"),
    })
}

/// Says what was found and done, on stderr.
pub fn summarize(scope: &Scope, found: &Found, outcomes: &[Outcome]) {
    let n = found.leftovers.len();
    let empty = found.leftovers.iter().filter(|l| l.progress == Progress::Empty).count();
    let bytes: u64 = found.leftovers.iter().map(|l| l.held_bytes).sum();
    let looked = format!(
        "{} video(s) with an avbatch key{}: {} complete, {} younger than {} (left alone)",
        found.keyed,
        scope.manifest.as_ref().map_or_else(String::new, |m| format!(" for `{m}`")),
        found.complete,
        found.young,
        scope.older_than
    );
    say(&looked);
    let what = format!(
        "{n} leftover(s) older than {}: {empty} empty, {} partial ({} held)",
        scope.older_than,
        n - empty,
        HumanBytes(bytes)
    );
    if !scope.delete {
        let hint = if n > 0 { "; `--delete` deletes them" } else { "" };
        say(&format!("{what}{hint}"));
        return;
    }
    let count = |word: &str| outcomes.iter().filter(|o| o.word() == word).count();
    let mut text = format!("{what}; deleted {}", count("deleted"));
    for (word, said) in [
        ("failed", "could not be deleted"),
        ("kept", "completed or went away since listed, kept"),
        ("not tried", "not tried (stopped)"),
    ] {
        if count(word) > 0 {
            text.push_str(&format!(", {} {said}", count(word)));
        }
    }
    say(&text);
    for (l, outcome) in found.leftovers.iter().zip(outcomes) {
        if let Outcome::Failed(why) = outcome {
            super::say_error(&format!("could not delete `{}`: {why}", l.video_id), None);
        }
    }
}
