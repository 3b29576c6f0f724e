//! `avbatch status`: how far an upload run got, from its journal, and whether it runs now (safe
//! while the run goes on: nothing is locked or written).
//!
//! Which journal: `--journal FILE`; else MANIFEST's (`NAME.journal.sqlite`, or with `--shard K/N`
//! `NAME.shard-K-of-N.journal.sqlite`); else, when only shard journals lie beside MANIFEST, all of
//! them, each shown and then their total. With MANIFEST, its rows are checked (as `upload` does)
//! so the rows and bytes not started yet count: the percentage is over the manifest's bytes.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::{Exit, Outcome, Stop};
use crate::cli::StatusArgs;
use crate::output::say_warning;
use crate::output::status::{FailedRow, JournalView, ManifestView, RunView, StatusView};
use avbatch_core::journal::{self, Entry, Journal, RunState, State};
use avbatch_core::manifest::{self, LoadOptions, Row};
use avbatch_core::shard::Shard;

/// Failed rows listed at most, per journal, by `--failed`.
const MOST_FAILED: usize = 1000;

/// Journals to show, each with its shard.
type Journals = Vec<(PathBuf, Option<Shard>)>;

/// One journal to show: the whole run's, or a shard's.
struct Target {
    path: PathBuf,
    shard: Option<Shard>,
    journal: Option<Journal>,
    view: JournalView,
}

/// Runs `avbatch status`.
pub fn run(args: &StatusArgs) -> Outcome {
    let shard = args.shard.filter(|s| s.count > 1);
    let paths: Journals = match (&args.journal, &args.manifest) {
        (Some(j), _) => vec![(j.clone(), shard)],
        (None, Some(m)) if shard.is_some() => vec![(journal::default_path(m, shard), shard)],
        (None, Some(m)) => {
            let whole = journal::default_path(m, None);
            match shard_journals(m)? {
                Ok(shards) if !whole.exists() && !shards.is_empty() => shards,
                Err(counts) if !whole.exists() => {
                    let message = format!(
                        "the journals beside `{}` are of runs cut into {} shards",
                        m.display(),
                        counts.iter().map(u32::to_string).collect::<Vec<_>>().join(" and ")
                    );
                    return Err(Stop::invalid(message).hint("choose one with --shard K/N"));
                }
                _ => vec![(whole, None)],
            }
        }
        (None, None) => return Err(Stop::invalid("give a MANIFEST or --journal FILE")),
    };
    let sharded = paths.len() > 1;
    let mut targets = Vec::with_capacity(paths.len());
    for (path, shard) in paths {
        // A shard that has not started has no journal yet: all its rows are not started.
        let journal = match Journal::open_read_only(&path) {
            Ok(j) => Some(j),
            Err(_) if sharded && !path.exists() => None,
            Err(e) => {
                let hint = "no run has recorded anything there yet; the journal is created by \
                            `avbatch upload`";
                return Err(Stop::invalid(avbatch_core::engine::error_chain(&e)).hint(hint));
            }
        };
        let mut view = JournalView {
            journal: path.display().to_string(),
            shard: shard.map(|s| s.to_string()),
            exists: journal.is_some(),
            ..JournalView::default()
        };
        if let Some(j) = &journal {
            view.totals = j.totals().with_context(|| format!("reading `{}`", path.display()))?;
            view.run = match Journal::run_state(&path) {
                Ok(RunState::Idle) => RunView::Idle,
                Ok(RunState::Active(holder)) => RunView::Active(holder),
                Err(e) => RunView::Unknown(avbatch_core::engine::error_chain(&e)),
            };
        }
        targets.push(Target { path, shard, journal, view });
    }
    if let Some(manifest) = &args.manifest {
        count_manifest(manifest, &mut targets, args.failed)?;
    }
    if args.failed {
        for t in targets.iter_mut().filter(|t| t.view.manifest.is_none()) {
            // Without the manifest, the journal's failed rows, without their lines.
            if let Some(j) = &t.journal {
                let failed = j
                    .failed(MOST_FAILED)
                    .with_context(|| format!("reading `{}`", t.path.display()))?;
                t.view.failed = Some(failed.iter().map(|e| failed_row(None, e)).collect());
            }
        }
    }
    let view = StatusView {
        journals: targets.into_iter().map(|t| t.view).collect(),
        sharded,
        list_failed: args.failed,
    };
    crate::output::status::print(&view, args.json)?;
    Ok(Exit::Done)
}

/// The shard journals beside `manifest` (`NAME.shard-K-of-N.journal.sqlite`), one per shard of
/// their count, found or not; `Err` with the counts when runs of several counts left journals.
fn shard_journals(manifest: &Path) -> anyhow::Result<Result<Journals, Vec<u32>>> {
    let stem = manifest.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let dir = match manifest.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    let mut counts = BTreeSet::new();
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(_) => return Ok(Ok(Vec::new())),
    };
    for entry in entries {
        let entry = entry.with_context(|| format!("listing `{}`", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let tag = name
            .strip_prefix(&format!("{stem}.shard-"))
            .and_then(|rest| rest.strip_suffix(".journal.sqlite"));
        if let Some((k, n)) = tag.and_then(|t| t.split_once("-of-")) {
            if let (Ok(k), Ok(n)) = (k.parse::<u32>(), n.parse::<u32>()) {
                if Shard::new(k, n).is_ok() && n > 1 {
                    counts.insert(n);
                }
            }
        }
    }
    match counts.len() {
        0 => Ok(Ok(Vec::new())),
        1 => {
            let n = *counts.first().expect("one count");
            Ok(Ok((0..n)
                .map(|k| {
                    let shard = Shard::new(k, n).expect("k < n");
                    (journal::default_path(manifest, Some(shard)), Some(shard))
                })
                .collect()))
        }
        _ => Ok(Err(counts.into_iter().collect())),
    }
}

/// Checks the manifest, as `upload` does, and counts each row against the journal of the run
/// (or shard) it belongs to: started or not, the bytes acknowledged of it, its line when failed.
fn count_manifest(manifest: &Path, targets: &mut [Target], failed: bool) -> anyhow::Result<()> {
    for t in targets.iter_mut() {
        t.view.manifest = Some(ManifestView::default());
        if failed {
            t.view.failed = Some(Vec::new());
        }
    }
    let mut lookup_error = None;
    let checked = manifest::check(manifest, &LoadOptions { allow_unknown_columns: true }, |row| {
        if lookup_error.is_some() {
            return;
        }
        let Some(target) = targets.iter_mut().find(|t| t.shard.is_none_or(|s| covers(s, row)))
        else {
            return;
        };
        let entry = match &target.journal {
            Some(j) => match j.get(&row.key()) {
                Ok(e) => e,
                Err(e) => {
                    lookup_error = Some(e);
                    return;
                }
            },
            None => None,
        };
        let m = target.view.manifest.as_mut().expect("set above");
        m.rows += 1;
        m.bytes += row.size;
        match entry {
            None => {
                m.rows_not_started += 1;
                m.bytes_not_started += row.size;
            }
            Some(e) => {
                m.bytes_done += e.bytes_done.min(row.size);
                if e.state == State::Done {
                    match assets_pending(target.journal.as_ref(), row, &e) {
                        Ok(pending) => m.assets_pending += u64::from(pending),
                        Err(e) => {
                            lookup_error = Some(e);
                            return;
                        }
                    }
                }
                if e.state == State::Failed {
                    if let Some(list) = target.view.failed.as_mut() {
                        if list.len() < MOST_FAILED {
                            list.push(failed_row(Some(row.line), &e));
                        }
                    }
                }
            }
        }
    });
    if let Some(e) = lookup_error {
        return Err(anyhow::anyhow!(avbatch_core::engine::error_chain(&e)));
    }
    match checked {
        Ok(_) => {}
        Err(manifest::ManifestError::Invalid { problems, total, .. }) => {
            let first = problems.first().map(ToString::to_string).unwrap_or_default();
            say_warning(&format!(
                "the manifest `{}` has {total} problem(s) now (the first: {first}); rows whose \
                 file cannot be read count no bytes",
                manifest.display()
            ));
        }
        Err(e) => {
            say_warning(&format!(
                "cannot read the manifest: {}; the figures are the journal's alone",
                avbatch_core::engine::error_chain(&e)
            ));
            for t in targets.iter_mut() {
                t.view.manifest = None;
                t.view.failed = None;
            }
        }
    }
    Ok(())
}

/// Whether a row whose source is done has assets the journal does not record as sent to its
/// video (a run stopped between the source and them).
fn assets_pending(
    journal: Option<&Journal>,
    row: &Row,
    entry: &Entry,
) -> Result<bool, avbatch_core::journal::JournalError> {
    let names = avbatch_core::engine::asset_names(row);
    let (Some(journal), Some(video_id), false) = (journal, &entry.video_id, names.is_empty())
    else {
        return Ok(false);
    };
    let sent = journal.assets(&entry.key, video_id)?.unwrap_or_default();
    Ok(names.iter().any(|n| !sent.contains_key(n)))
}

/// Whether `row` is in `shard`.
fn covers(shard: Shard, row: &Row) -> bool {
    shard.contains(&row.identity())
}

fn failed_row(line: Option<u64>, e: &Entry) -> FailedRow {
    FailedRow {
        line,
        path: e.file.path.clone(),
        video_id: e.video_id.clone(),
        error: e.error.clone().unwrap_or_default(),
    }
}
