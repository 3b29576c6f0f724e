//! `avbatch report merge`: the reports of a manifest's shards joined into one.

use std::process::ExitCode;

use anyhow::Context;

use super::{invalid, Exit};
use crate::cli::MergeArgs;
use crate::manifest;
use crate::output::report::Report;
use crate::output::say;

/// Runs `avbatch report merge`.
pub fn run(args: &MergeArgs) -> anyhow::Result<ExitCode> {
    let mut reports = Vec::new();
    for path in &args.reports {
        match Report::read(path) {
            Ok(r) => reports.push(r),
            Err(e) => return Ok(invalid(&e.to_string(), None)),
        }
    }
    let merged = match Report::merge(reports) {
        Ok(m) => m,
        Err(e) => return Ok(invalid(&e.to_string(), Some("give each shard's report once, all from one shard count"))),
    };
    if let Some(manifest) = &args.manifest {
        let rows = match manifest::read_rows(manifest) {
            Ok(r) => r,
            Err(e) => return Ok(invalid(&crate::engine::error_chain(&e), None)),
        };
        let have: std::collections::HashSet<u64> = merged.rows.iter().map(|r| r.line).collect();
        let missing: Vec<String> = rows.iter().filter(|r| !have.contains(&r.line)).map(|r| r.line.to_string()).collect();
        if !missing.is_empty() {
            let shown = missing.iter().take(20).cloned().collect::<Vec<_>>().join(", ");
            return Ok(invalid(
                &format!(
                    "{} row(s) of `{}` are in no report (lines {shown}{})",
                    missing.len(),
                    manifest.display(),
                    if missing.len() > 20 { ", …" } else { "" }
                ),
                Some("a shard's report is missing, or a shard has not run yet"),
            ));
        }
    }
    merged.write(&args.output).with_context(|| format!("cannot write `{}`", args.output.display()))?;
    merged.announce();
    say(&format!("merged report: {}", args.output.display()));
    let s = &merged.summary;
    Ok(if s.uploaded + s.skipped == s.rows { Exit::Done } else { Exit::SomeFailed }.into())
}
