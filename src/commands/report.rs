//! `avbatch report merge`: the reports of a manifest's shards joined into one.

use anyhow::Context;

use super::{Exit, Outcome, Stop};
use crate::cli::MergeArgs;
use crate::output::report::{self, MergeError};
use crate::output::say;
use avbatch_core::manifest;

/// Runs `avbatch report merge`: the shards' rows sorted by line on disk and written out, with
/// the manifest's lines (when given) read alongside to find rows in no report.
pub fn run(args: &MergeArgs) -> Outcome {
    let mut lines: Box<dyn Iterator<Item = Result<u64, String>>> = match &args.manifest {
        None => Box::new(std::iter::empty()),
        Some(m) => match manifest::read_rows(m) {
            Ok(rows) => Box::new(
                rows.map(|r| r.map(|r| r.line).map_err(|e| avbatch_core::engine::error_chain(&e))),
            ),
            Err(e) => return Err(Stop::invalid(avbatch_core::engine::error_chain(&e))),
        },
    };
    let manifest = args
        .manifest
        .as_deref()
        .map(|m| (m, &mut *lines as &mut dyn Iterator<Item = Result<u64, String>>));
    let (written, announcement) = match report::merge(&args.reports, manifest, &args.output) {
        Ok(done) => done,
        Err(e @ MergeError::Duplicate { .. }) => {
            let hint = "give each shard's report once, all from one shard count";
            return Err(Stop::invalid(e.to_string()).hint(hint));
        }
        Err(e @ MergeError::Missing { .. }) => {
            let hint = "a shard's report is missing, or a shard has not run yet";
            return Err(Stop::invalid(e.to_string()).hint(hint));
        }
        Err(e @ MergeError::Spill(_)) => {
            return Err(anyhow::Error::new(e).context("merging the reports").into())
        }
        Err(e) => return Err(Stop::invalid(e.to_string())),
    };
    written.with_context(|| format!("cannot write `{}`", args.output.display()))?;
    announcement.announce();
    say(&format!("merged report: {}", args.output.display()));
    let s = announcement.summary();
    Ok(if s.in_step() == s.rows { Exit::Done } else { Exit::SomeFailed })
}
