//! `avbatch status`: how far an upload run got, from its journal (safe while the run goes on).

use std::process::ExitCode;

use anyhow::Context;
use indicatif::HumanBytes;

use super::{invalid, Exit};
use crate::cli::StatusArgs;
use crate::journal::Journal;
use crate::manifest::{self, LoadOptions};

/// Runs `avbatch status`: the journal's totals, and the manifest's row count when given.
pub fn run(args: &StatusArgs) -> anyhow::Result<ExitCode> {
    let path = match (&args.journal, &args.manifest) {
        (Some(j), _) => j.clone(),
        (None, Some(m)) => crate::journal::default_path(m, args.shard.filter(|s| s.count > 1)),
        (None, None) => return Ok(invalid("give a MANIFEST or --journal FILE", None)),
    };
    let journal = match Journal::open_read_only(&path) {
        Ok(j) => j,
        Err(e) => {
            return Ok(invalid(
                &crate::engine::error_chain(&e),
                Some(
                    "no run has recorded anything there yet; the journal is created by \
                     `avbatch upload`",
                ),
            ))
        }
    };
    let totals = journal.totals().with_context(|| format!("reading `{}`", path.display()))?;
    // Rows of the manifest the journal has not seen yet have not started.
    let manifest_rows = match (&args.manifest, args.shard.filter(|s| s.count > 1)) {
        (Some(m), None) => Some(
            csv::Reader::from_path(m)
                .with_context(|| format!("reading `{}`", m.display()))?
                .byte_records()
                .count() as u64,
        ),
        // A shard's rows are known by their keys, which may need the files' sizes and times: the
        // check finds them, and counts the shard's rows as it goes.
        (Some(m), Some(shard)) => {
            let mut rows = 0u64;
            let checked = manifest::check(m, &LoadOptions { allow_unknown_columns: true }, |r| {
                rows += u64::from(shard.contains(&r.identity()))
            });
            checked.ok().map(|_| rows)
        }
        (None, _) => None,
    };
    let not_started = manifest_rows.map(|n| n.saturating_sub(totals.rows));
    if args.json {
        let mut v = serde_json::to_value(&totals)?;
        v["journal"] = serde_json::json!(path.display().to_string());
        v["manifestRows"] = serde_json::json!(manifest_rows);
        v["notStarted"] = serde_json::json!(not_started);
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        let pct = if totals.bytes_total > 0 {
            totals.bytes_done as f64 * 100.0 / totals.bytes_total as f64
        } else {
            0.0
        };
        println!("journal: {}", path.display());
        if let (Some(rows), Some(pending)) = (manifest_rows, not_started) {
            println!("manifest rows: {rows} ({pending} not started)");
        }
        println!(
            "rows: {} done, {} failed, {} in progress",
            totals.done, totals.failed, totals.uploading
        );
        println!(
            "bytes: {} of {} acknowledged ({pct:.1} %)",
            HumanBytes(totals.bytes_done),
            HumanBytes(totals.bytes_total)
        );
    }
    Ok(Exit::Done.into())
}
