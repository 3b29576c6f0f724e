//! Step 1 of `avbatch upload` and of its dry run: the manifest checked whole before anything
//! is sent, the run's plan counted, and what the check found said. A manifest with problems is
//! refused (exit 2), unless `--skip-invalid-rows` leaves out the rows with problems of their own:
//! those are said here, and the run reports them failed.

use std::path::Path;

use anyhow::Context;

use super::Stop;
use crate::config::UploadConfig;
use crate::output::{say, say_warning};
use avbatch_core::engine::error_chain;
use avbatch_core::manifest::{self, Checked, LoadOptions, ManifestError, Row};
use avbatch_core::plan::{Plan, RunShape};
use tokio::time::Instant;

/// Most manifest problems printed; the rest are counted.
const MAX_PROBLEMS_SHOWN: usize = manifest::PROBLEMS_KEPT;

/// Step 1: the manifest checked whole, and the run's plan counted as it goes; a manifest with
/// problems, a file that cannot be cut, or fields a token alone cannot apply end the run here
/// (said, with the exit code).
pub(super) async fn check(config: &UploadConfig, shape: RunShape) -> Result<(Checked, Plan), Stop> {
    let checked_at = Instant::now();
    let path = config.manifest.clone();
    let options = LoadOptions { allow_unknown_columns: config.allow_unknown_columns };
    let skip = config.skip_invalid_rows;
    let checked = tokio::task::spawn_blocking(move || planned(&path, &options, shape, skip))
        .await
        .context("manifest check panicked")?;
    let (checked, plan) = match checked {
        Ok(m) => m,
        Err(e) => return Err(refused(&e, skip)),
    };
    say_shard_and_limit(config, &plan, checked.len());
    say_left_out(config, &checked, &plan)?;
    if let Some(why) = &plan.unplannable {
        return Err(Stop::invalid(why));
    }
    // A delegated upload without an API key makes each video from its first chunk alone: the
    // row's fields cannot go with it, and a private video would go up public.
    if plan.refused_count > 0 {
        let head = format!(
            "{} row(s) set fields that an upload token alone cannot apply (the video is made by \
             its first chunk, with the file name as its title and api.video's defaults, public \
             included); nothing was sent",
            plan.refused_count
        );
        let text = listed(head, plan.refused.iter().cloned(), plan.refused_count);
        let hint = "set AVBATCH_API_KEY (or --api-key-file) as well: each video is then made with \
                    its row's fields and its parts go through the token; or drop those columns";
        return Err(Stop::invalid(text).hint(hint));
    }
    tracing::info!(
        rows = plan.rows,
        bytes = plan.bytes,
        parts = plan.parts,
        elapsed = ?checked_at.elapsed(),
        "manifest checked"
    );
    Ok((checked, plan))
}

/// The manifest checked and the run's plan counted: as the check goes, or, when it left rows
/// out (`skip`: --skip-invalid-rows), by one more reading of the rows, since which rows are
/// left out is known only at its end (a key two rows share).
fn planned(
    path: &Path,
    options: &LoadOptions,
    shape: RunShape,
    skip: bool,
) -> Result<(Checked, Plan), ManifestError> {
    let mut plan = Plan::default();
    let visit = |row: &Row| plan.add(row, &shape);
    let checked = match skip {
        true => manifest::check_skipping(path, options, visit)?,
        false => manifest::check(path, options, visit)?,
    };
    if checked.left_out().rows() > 0 {
        plan = Plan::of(&checked, &shape)?;
    }
    Ok((checked, plan))
}

/// Why the run stops on a manifest the check refused: its problems (with `skip`, those no row
/// can be left out for), and when they are all rows' own, the flag that lets the others go on.
fn refused(e: &ManifestError, skip: bool) -> Stop {
    let ManifestError::Invalid { path, problems, total } = e else {
        return Stop::invalid(error_chain(e));
    };
    let path = path.display();
    let head = match skip {
        false => format!("the manifest `{path}` has {total} problem(s); nothing was uploaded"),
        true => format!(
            "the manifest `{path}` has {total} problem(s) that put its rows themselves in doubt \
             (the header, an unbalanced quote, a record's number of fields), which \
             --skip-invalid-rows leaves no row out for; nothing was uploaded"
        ),
    };
    let text = listed(head, problems.iter().map(|p| p.to_string()), *total);
    let rows_own = !skip && problems.iter().all(|p| !p.kind.puts_rows_in_doubt());
    let hint = "--skip-invalid-rows uploads the valid rows, and reports these failed with their \
                problems";
    Stop::invalid(text).maybe_hint(rows_own.then_some(hint))
}

/// Says that rows were left out (--skip-invalid-rows), and their first problems.
fn say_left_out(config: &UploadConfig, checked: &Checked, plan: &Plan) -> Result<(), Stop> {
    let left_out = checked.left_out();
    if left_out.rows() == 0 {
        return Ok(());
    }
    let first = left_out.first(MAX_PROBLEMS_SHOWN).context("reading the rows' problems again")?;
    let what = match config.dry_run {
        true => "planned `invalid`",
        false => "never started, and reported failed with their problems",
    };
    let whose = match plan.left_out == left_out.rows() {
        true => String::new(),
        false => format!(" (this run's {})", plan.left_out),
    };
    let head = format!(
        "{} row(s) of the manifest have problems of their own ({} in all), so \
         --skip-invalid-rows leaves them out{whose}: {what}; the other rows go on",
        left_out.rows(),
        left_out.problems()
    );
    let total = usize::try_from(left_out.problems()).unwrap_or(usize::MAX);
    say_warning(&listed(head, first.iter().map(ToString::to_string), total));
    Ok(())
}

/// `head`, then the first [`MAX_PROBLEMS_SHOWN`] of `lines` indented below it, and how many
/// more of `total` there are.
fn listed(mut text: String, lines: impl Iterator<Item = String>, total: usize) -> String {
    for line in lines.take(MAX_PROBLEMS_SHOWN) {
        text.push_str(&format!("\n  {line}"));
    }
    if total > MAX_PROBLEMS_SHOWN {
        text.push_str(&format!("\n  … and {} more", total - MAX_PROBLEMS_SHOWN));
    }
    text
}

/// Says which rows of the manifest the run covers, under `--shard` and `--limit`.
fn say_shard_and_limit(config: &UploadConfig, plan: &Plan, manifest_rows: u64) {
    if let Some(shard) = config.shard {
        let rows = plan.rows + plan.beyond_limit;
        say(&format!("shard {shard}: {rows} of the manifest's {manifest_rows} rows"));
    }
    if let Some(limit) = config.limit {
        let of = plan.rows + plan.beyond_limit;
        say(&format!(
            "--limit {limit}: a trial run of the first {} of {of} rows; the other {} are checked \
             but not uploaded, and left out of the report (a run without --limit uploads them)",
            plan.rows, plan.beyond_limit
        ));
    }
}
