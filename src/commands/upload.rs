//! `avbatch upload`: manifest → plan → engine → report, and the exit code a scheduler can trust.

use std::io;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::{invalid, Exit};

use anyhow::Context;
use indicatif::HumanBytes;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::chunk::plan_parts;
use crate::cli::UploadArgs;
use crate::client::{Client, ClientConfig};
use crate::config::{Destination, UploadConfig};
use crate::engine::{self, EngineConfig, Job};
use crate::journal::Journal;
use crate::limit::Limiter;
use crate::manifest::{self, Checked, LoadOptions, ManifestError, Row};
use crate::output::progress::{self, Progress};
use crate::output::report::{write_run, Results, RunTotals, Show, Summary};
use crate::output::{say, say_error, say_warning};
use crate::retry::RetryConfig;
use crate::server::{Server, ServerConfig};
use crate::shard::Shard;

/// Most manifest problems printed; the rest are counted.
const MAX_PROBLEMS_SHOWN: usize = manifest::PROBLEMS_KEPT;

/// Rows read ahead of the engine, waiting for it to take them.
const ROWS_AHEAD: usize = 64;

/// Runs `avbatch upload`.
pub async fn run(args: &UploadArgs) -> anyhow::Result<ExitCode> {
    let config = match UploadConfig::from_args(args, &|v| std::env::var(v).ok()) {
        Ok(c) => c,
        Err(e) => return Ok(invalid(&e.message, e.hint.as_deref())),
    };
    let (code, totals) = execute(&config, true).await?;
    if let (Some(url), Some(totals), Some(exit)) = (&config.notify, &totals, Exit::of(code)) {
        notify(url, &config, &totals.summary, exit).await;
    }
    Ok(code)
}

/// `--notify`: the summary POSTed to `url`, said on stderr; never changes the exit code. A
/// Ctrl-C or SIGTERM meanwhile gives it up.
async fn notify(url: &reqwest::Url, config: &UploadConfig, summary: &Summary, exit: Exit) {
    let body = super::notify::body(summary, exit, &config.manifest, &config.report);
    let shown = super::notify::shown(url);
    tokio::select! {
        sent = super::notify::send(url, &body, config.notify_timeout) => match sent {
            Ok(_) if config.quiet => {}
            Ok(tries) => say(&format!("notified {shown} ({tries} tries)")),
            Err(why) => say_warning(&format!("cannot notify {shown}: {why}")),
        },
        () = super::shutdown_signal() => say_warning(&format!("not notifying {shown}: stopped")),
    }
}

/// What the check counts of the rows this run covers (its shard's), as it goes.
#[derive(Debug, Default)]
struct Plan {
    rows: u64,
    bytes: u64,
    parts: u64,
    /// Rows of the run past `--limit`: checked, not uploaded.
    beyond_limit: u64,
    /// The first row whose file cannot be cut into parts.
    unplannable: Option<String>,
    /// Rows whose `action` is not `create`.
    acting: u64,
    /// Rows setting fields a token alone cannot apply: the first few, and how many.
    refused: Vec<String>,
    refused_count: usize,
}

impl Plan {
    fn add(&mut self, row: &Row, config: &RunShape) {
        if !config.covers(row) {
            return;
        }
        if config.limit.is_some_and(|n| self.rows >= n) {
            self.beyond_limit += 1;
            return;
        }
        self.rows += 1;
        if row.action != crate::manifest::RowAction::Create {
            self.acting += 1;
        }
        // What this machine sends: an object api.video pulls is not the progress's to count.
        if row.sent_here(config.relay) {
            self.bytes += row.size;
        }
        match plan_parts(row.size, config.chunk_size) {
            _ if !row.sent_here(config.relay) => {}
            Ok(p) => self.parts += p.len() as u64,
            Err(e) => {
                self.unplannable
                    .get_or_insert_with(|| format!("line {}: `{}`: {e}", row.line, row.path_text));
            }
        }
        if config.token_only {
            let columns = columns_needing_a_key(row);
            if !columns.is_empty() {
                self.refused_count += 1;
                if self.refused.len() < MAX_PROBLEMS_SHOWN {
                    self.refused.push(format!("line {}: {}", row.line, columns.join(", ")));
                }
            }
        }
    }
}

/// What decides which rows a run covers and how they are cut.
#[derive(Debug, Clone, Copy)]
pub(super) struct RunShape {
    shard: Option<Shard>,
    pub(super) chunk_size: u64,
    /// A delegated upload without an API key: each video is made from its first chunk alone.
    token_only: bool,
    /// `--limit`: only the first this many rows of the shard.
    limit: Option<u64>,
    /// `--relay`: objects are sent from here, not pulled by api.video.
    pub(super) relay: bool,
}

impl RunShape {
    fn covers(&self, row: &Row) -> bool {
        self.shard.is_none_or(|s| s.contains(&row.identity()))
    }

    /// The rows of the run, in manifest order, read again from the checked manifest: the
    /// shard's, and of those the first `--limit`.
    pub(super) fn rows(
        self,
        checked: &Checked,
    ) -> Result<impl Iterator<Item = Result<Row, ManifestError>> + Send + 'static, ManifestError>
    {
        let limit = self.limit.map_or(usize::MAX, |n| usize::try_from(n).unwrap_or(usize::MAX));
        Ok(checked
            .rows()?
            .filter(move |row| row.as_ref().map_or(true, |r| self.covers(r)))
            .take(limit))
    }
}

/// Carries out an upload run: manifest, journal, destination, engine, report file. With `show`,
/// prints the per-row table (or the JSON report) on stdout and the summary on stderr, as
/// `avbatch upload` does; without, only progress per `config.quiet`. Returns the exit code and,
/// when the run got as far as uploading, its totals.
///
/// Memory does not grow with the manifest: the check keeps counters (and spills what it must),
/// the engine reads rows again as it can take them, and results go to disk until the report is
/// written, in manifest order, by one more pass over the rows.
pub async fn execute(
    config: &UploadConfig,
    show: bool,
) -> anyhow::Result<(ExitCode, Option<RunTotals>)> {
    // 1. The manifest, checked whole before anything is sent.
    let checked_at = Instant::now();
    let path = config.manifest.clone();
    let options = LoadOptions { allow_unknown_columns: config.allow_unknown_columns };
    let shape = RunShape {
        shard: config.shard,
        chunk_size: config.chunk_size,
        token_only: config.upload_token.is_some()
            && config.api_key.is_none()
            && matches!(config.destination, Destination::Remote(_)),
        limit: config.limit,
        relay: config.relay,
    };
    let (checked, plan) = tokio::task::spawn_blocking(move || {
        let mut plan = Plan::default();
        let checked = manifest::check(&path, &options, |row| plan.add(row, &shape));
        (checked, plan)
    })
    .await
    .context("manifest check panicked")?;
    let checked = match checked {
        Ok(m) => m,
        Err(ManifestError::Invalid { path, problems, total }) => {
            let mut text = format!(
                "the manifest `{}` has {total} problem(s); nothing was uploaded",
                path.display()
            );
            for p in problems.iter().take(MAX_PROBLEMS_SHOWN) {
                text.push_str(&format!("\n  {p}"));
            }
            if total > MAX_PROBLEMS_SHOWN {
                text.push_str(&format!("\n  … and {} more", total - MAX_PROBLEMS_SHOWN));
            }
            say_error(&text, None);
            return Ok((Exit::Invalid.into(), None));
        }
        Err(e) => return Ok((invalid(&crate::engine::error_chain(&e), None), None)),
    };
    let manifest_rows = checked.len();
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
    if let Some(why) = &plan.unplannable {
        return Ok((invalid(why, None), None));
    }
    // A delegated upload without an API key makes each video from its first chunk alone: the
    // row's fields cannot go with it, and a private video would go up public.
    if plan.refused_count > 0 {
        let mut text = format!(
            "{} row(s) set fields that an upload token alone cannot apply (the video is made by \
             its first chunk, with the file name as its title and api.video's defaults, public \
             included); nothing was sent",
            plan.refused_count
        );
        for line in &plan.refused {
            text.push_str(&format!("\n  {line}"));
        }
        if plan.refused_count > MAX_PROBLEMS_SHOWN {
            text.push_str(&format!("\n  … and {} more", plan.refused_count - MAX_PROBLEMS_SHOWN));
        }
        let hint = "set AVBATCH_API_KEY (or --api-key-file) as well: each video is then made with \
                    its row's fields and its parts go through the token; or drop those columns";
        return Ok((invalid(&text, Some(hint)), None));
    }
    let check_time = checked_at.elapsed();
    let (total_rows, total_bytes, total_parts) = (plan.rows, plan.bytes, plan.parts);
    tracing::info!(
        rows = total_rows,
        bytes = total_bytes,
        parts = total_parts,
        elapsed = ?check_time,
        "manifest checked"
    );

    if config.dry_run {
        let code =
            super::dry_run::print(config, &checked, shape, plan.acting > 0, check_time).await?;
        return Ok((code, None));
    }

    // 2. The journal, locked for this run; a second run, or a folder that takes no writes, stops
    //    here, before anything is sent.
    let run_id = crate::output::report::rfc3339(std::time::SystemTime::now());
    let destination = match &config.destination {
        Destination::Remote(url) => url.clone(),
        Destination::Local(Some(dir)) => {
            format!("local:{}", std::path::absolute(dir).unwrap_or_else(|_| dir.clone()).display())
        }
        Destination::Local(None) => "local:temporary".to_owned(),
    };
    let journal = match &config.journal {
        None => None,
        Some(path) => {
            let path = path.clone();
            let destination = destination.clone();
            let opened = tokio::task::spawn_blocking(move || {
                Journal::open(&path).and_then(|j| j.bind_destination(&destination).map(|()| j))
            });
            match opened.await.context("opening the journal panicked")? {
                Ok(j) => {
                    for note in j.notes() {
                        say(&note);
                    }
                    Some(Arc::new(j))
                }
                Err(e) => {
                    return Ok((invalid(&crate::engine::error_chain(&e), Some(&e.hint())), None));
                }
            }
        }
    };

    // 3. Where to: a remote API, or the embedded server.
    let mut _temp_data = None;
    let mut _server = None;
    let (base_url, api_key) = match &config.destination {
        Destination::Remote(url) => (url.clone(), config.api_key.clone()),
        Destination::Local(dir) => {
            let dir = match dir {
                Some(d) => d.clone(),
                None => {
                    let t = tempfile::Builder::new()
                        .prefix("avbatch-local-")
                        .tempdir()
                        .context("cannot create a data folder for the local server")?;
                    let p = t.path().to_owned();
                    _temp_data = Some(t);
                    p
                }
            };
            let server = Server::start(
                ServerConfig::new(&dir),
                "127.0.0.1:0".parse().expect("a valid address"),
            )
            .await
            .context("cannot start the local server")?;
            let key = server.generated_key().cloned();
            say(&match _temp_data {
                Some(_) => format!(
                    "local api.video at {} (data in the temporary folder {}, deleted when the run \
                     ends; --local-data DIR keeps it)",
                    server.url(),
                    dir.display()
                ),
                None => format!("local api.video at {} (data in {})", server.url(), dir.display()),
            });
            let url = server.url().to_owned();
            _server = Some(server);
            (url, key)
        }
    };

    // 4. The client, its limiter, and the two stop levels.
    let bandwidth = config.bandwidth.as_ref().and_then(|b| b.at(super::schedule::local_minute()));
    let limiter = Arc::new(
        Limiter::new(config.rate, bandwidth).shared_by(config.shard.map_or(1, |s| s.count)),
    );
    let _timetable = super::schedule::follow(&limiter, config.bandwidth.as_ref());
    let stop = CancellationToken::new();
    let abort = CancellationToken::new();
    let mut client_config = ClientConfig::new(&base_url, api_key);
    client_config.retry = RetryConfig { max_retries: config.retries, ..RetryConfig::default() };
    client_config.timeout = config.timeout;
    client_config.limiter = limiter.clone();
    client_config.stop = stop.clone();
    client_config.abort = abort.clone();
    let client = Client::new(client_config);
    let report_show = match (show, config.json) {
        (false, _) => Show::Nothing,
        (true, true) => Show::Json,
        (true, false) => Show::Table,
    };
    // Progress from here on, so retries reaching the API are said as they happen.
    let mut plan = progress::Plan { rows: total_rows as usize, bytes: total_bytes, held: 0 };
    if let Some(j) = &journal {
        let j = j.clone();
        let totals = tokio::task::spawn_blocking(move || j.totals())
            .await
            .context("reading the journal panicked")?;
        match totals {
            Ok(t) if t.rows > 0 => {
                plan.held = t.bytes_done;
                if !config.quiet {
                    say(&resuming(&t, total_rows));
                }
            }
            Ok(_) => {}
            Err(e) => say_warning(&format!(
                "cannot read the journal's totals: {}",
                crate::engine::error_chain(&e)
            )),
        }
    }
    let (events, progress) = mpsc::channel(1024);
    let watched =
        progress::Watched { client: client.clone(), limiter: limiter.clone(), stop: stop.clone() };
    let reporter = tokio::spawn(progress::show_progress(
        progress,
        plan,
        Progress::detect(config.quiet),
        watched,
    ));
    if client.has_api_key() {
        if let Err(e) = client.authenticate().await {
            drop(events);
            let _ = reporter.await;
            let unreachable = unanswered(client.stats());
            let why = format!(
                "cannot authenticate with `{base_url}`: {}",
                crate::engine::error_chain(&e)
            );
            let hint = "check AVBATCH_API_KEY / --api-key-file, and that the key belongs to this \
                        environment";
            say_error(&why, e.is_auth().then_some(hint));
            // Still a report, so a scheduler's "see the report" holds: every row not started.
            let (report, checked) = (config.report.clone(), checked.clone());
            let (written, summary) = tokio::task::spawn_blocking(move || {
                let results = Results::new();
                let mut summary = results.summary(total_rows as usize);
                summary.destination = Some(destination);
                summary.run_id = Some(run_id);
                let rows = rows_for_report(shape, &checked);
                let not_started = format!("not started: {why}");
                let show = Show::Nothing;
                let written = write_run(&report, &summary, rows, results, Some(&not_started), show);
                (written.0, summary)
            })
            .await
            .context("writing the report panicked")?;
            match written {
                Ok(()) => say(&format!("report: {}", config.report.display())),
                Err(e) => say_error(
                    &format!("cannot write the report `{}`: {e}", config.report.display()),
                    None,
                ),
            }
            let totals = Some(RunTotals { summary, parts: 0 });
            if e.is_auth() {
                return Ok((Exit::Auth.into(), totals));
            }
            if unreachable {
                return Ok((Exit::Unreachable.into(), totals));
            }
            return Ok((Exit::SomeFailed.into(), totals));
        }
    }
    let signals = tokio::spawn(watch_signals(stop.clone(), abort.clone()));

    // 5. Upload, with progress: rows are read again as the engine can take them, and each
    //    result is kept (on disk past a few thousand) as its row ends.
    let started = Instant::now();
    let (jobs, taken) = mpsc::channel(ROWS_AHEAD);
    let producer = {
        let checked = checked.clone();
        tokio::task::spawn_blocking(move || -> Result<(), ManifestError> {
            for (index, row) in shape.rows(&checked)?.enumerate() {
                if jobs.blocking_send(Job { index, row: Arc::new(row?) }).is_err() {
                    // The engine took its last job (stopped): nothing more to read.
                    break;
                }
            }
            Ok(())
        })
    };
    let (results_in, mut results_out) = mpsc::channel(1024);
    let collector = tokio::task::spawn_blocking(move || {
        let mut results = Results::new();
        let mut kept = Ok(());
        while let Some(result) = results_out.blocking_recv() {
            if let (Err(e), Ok(())) = (results.add(result), &kept) {
                kept = Err(e);
            }
        }
        (results, kept)
    });
    let engine_config = EngineConfig {
        concurrency: config
            .concurrency
            .unwrap_or_else(|| crate::config::default_concurrency(total_rows, total_bytes)),
        chunk_size: config.chunk_size,
        mode: config.mode,
        upload_token: config.upload_token.clone(),
        journal,
        force: config.force,
        keep_old: config.keep_old,
        checksum: config.checksum,
        start_until: config.max_duration.map(|d| checked_at + d),
        wait: config.encoding.wait,
        wait_timeout: config.encoding.wait_timeout,
        wait_poll: config.encoding.wait_poll,
        max_processing: config.encoding.max_processing,
        relay: config.relay,
    };
    engine::run(client.clone(), limiter, engine_config, taken, events, results_in, stop.clone())
        .await;
    let _ = reporter.await;
    signals.abort();
    if let Err(e) = producer.await.context("reading the manifest panicked")? {
        say_error(
            &format!("the run stopped reading rows: {}", crate::engine::error_chain(&e)),
            None,
        );
    }
    let (results, kept) = collector.await.context("keeping the results panicked")?;

    // 6. Report and exit code.
    let mut summary = results.summary(total_rows as usize);
    summary.set_seconds(started.elapsed().as_secs_f64());
    summary.shard = config.shard.map(|s| s.to_string());
    summary.destination = Some(destination);
    summary.run_id = Some(run_id);
    let stats = client.stats();
    summary.requests = stats.requests.load(Ordering::Relaxed);
    summary.retries = stats.retries.load(Ordering::Relaxed);
    summary.throttled = stats.throttled.load(Ordering::Relaxed);
    let (auth_failure, parts) = (results.auth_failure(), results.parts());
    let (written, announcement) = match kept {
        Err(e) => (
            Err(io::Error::other(format!("cannot keep the results in the temporary folder: {e}"))),
            None,
        ),
        Ok(()) => {
            let (report, summary) = (config.report.clone(), summary.clone());
            let checked = checked.clone();
            let (written, announcement) = tokio::task::spawn_blocking(move || {
                write_run(
                    &report,
                    &summary,
                    rows_for_report(shape, &checked),
                    results,
                    None,
                    report_show,
                )
            })
            .await
            .context("writing the report panicked")?;
            (written, Some(announcement))
        }
    };
    if let (true, Some(a)) = (show, &announcement) {
        a.announce();
    }
    match written {
        Ok(()) if !show => {}
        Ok(()) => {
            say(&format!("report: {}", config.report.display()));
            if let Some(kept) = announcement.as_ref().and_then(|a| a.kept()) {
                say(&format!("the earlier report is kept as {}", kept.display()));
            }
        }
        Err(e) => {
            say_error(&format!("cannot write the report `{}`: {e}", config.report.display()), None);
            return Ok((Exit::SomeFailed.into(), Some(RunTotals { summary, parts })));
        }
    }
    let s = &summary;
    let out_of_time = config.max_duration.is_some_and(|d| checked_at.elapsed() >= d);
    let code = if stop.is_cancelled() && (s.interrupted > 0 || s.pending > 0) {
        Exit::Interrupted
    } else if out_of_time && s.pending > 0 {
        if show {
            let d = humantime::format_duration(config.max_duration.unwrap_or_default());
            say(&format!(
                "--max-duration {d} reached: no video started after it; {} row(s) not started \
                 are left for the next run",
                s.pending
            ));
        }
        Exit::OutOfTime
    } else if s.in_step() == s.rows {
        Exit::Done
    } else if s.uploaded + s.updated + s.deleted == 0 && auth_failure {
        // Nothing went through and the server refused the credentials (e.g. a bad upload token).
        Exit::Auth
    } else if s.uploaded + s.updated + s.deleted == 0 && unanswered(client.stats()) {
        // Not one answer came back: the network, the address or a proxy, not the rows.
        Exit::Unreachable
    } else {
        Exit::SomeFailed
    };
    Ok((code.into(), Some(RunTotals { summary, parts })))
}

/// The run's rows for its report, read again; a failure ends the report (as a write error).
fn rows_for_report(shape: RunShape, checked: &Checked) -> impl Iterator<Item = io::Result<Row>> {
    let rows = shape.rows(checked).map_err(|e| io::Error::other(crate::engine::error_chain(&e)));
    let (rows, failed) = match rows {
        Ok(rows) => (Some(rows), None),
        Err(e) => (None, Some(e)),
    };
    failed.map(Err).into_iter().chain(
        rows.into_iter()
            .flatten()
            .map(|r| r.map_err(|e| io::Error::other(crate::engine::error_chain(&e)))),
    )
}

/// The columns of a row that only an API key can apply (`title` counts when it differs from
/// the file's stem, the default).
fn columns_needing_a_key(row: &Row) -> Vec<&'static str> {
    let stem = crate::manifest::default_title(&row.path_text);
    [
        ("title", row.title != stem),
        ("description", row.description.is_some()),
        ("tags", !row.tags.is_empty()),
        ("metadata", !row.metadata.is_empty()),
        ("public", row.public.is_some()),
        ("panoramic", row.panoramic.is_some()),
        ("mp4_support", row.mp4_support.is_some()),
        ("player_id", row.player_id.is_some()),
        ("language", row.language.is_some()),
        ("clip_start/clip_end", row.clip.is_some()),
        ("watermark", row.watermark.is_some()),
        ("transcript", row.transcript.is_some()),
        ("transcript_summary", row.transcript_summary.is_some()),
        ("transcript_summary_attributes", !row.transcript_summary_attributes.is_empty()),
        ("thumbnail", row.thumbnail.is_some()),
        ("captions", !row.captions.is_empty()),
        ("chapters", !row.chapters.is_empty()),
        ("action", row.action != crate::manifest::RowAction::Create),
    ]
    .into_iter()
    .filter_map(|(name, set)| set.then_some(name))
    .collect()
}

/// The threads the manifest check ran on, and why there are more than cores: `32 threads
/// (waiting on files, 2 cores)`.
pub(super) fn check_threads() -> String {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let threads = manifest::check_threads();
    if threads > cores {
        format!("{threads} threads (waiting on files, {cores} cores)")
    } else {
        format!("{threads} threads ({cores} cores)")
    }
}

/// First Ctrl-C or SIGTERM: stop starting work, let parts in flight finish. Second: abort.
/// Whether requests went out and not one answer came back: the API could not be reached (rows
/// that failed before sending anything, e.g. on a changed file, do not count).
fn unanswered(stats: &crate::client::Stats) -> bool {
    stats.requests.load(Ordering::Relaxed) > 0 && stats.answers.load(Ordering::Relaxed) == 0
}

/// `resuming: 37 done, 3 partial (120.00 MiB held), 0 new`: what the journal says of a run
/// started before, said before anything is sent.
fn resuming(t: &crate::journal::Totals, rows: u64) -> String {
    let partial = t.rows - t.done;
    format!(
        "resuming: {} done, {partial} partial ({} held), {} new",
        t.done,
        HumanBytes(t.bytes_done.saturating_sub(t.bytes_of_done)),
        rows.saturating_sub(t.rows)
    )
}

async fn watch_signals(stop: CancellationToken, abort: CancellationToken) {
    super::shutdown_signal().await;
    say(
        "stopping: no new videos or parts; finishing parts in flight (press Ctrl-C again to abort \
         them)",
    );
    stop.cancel();
    super::shutdown_signal().await;
    say("aborting requests in flight");
    abort.cancel();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::RowAction;

    /// The progress counts the bytes this machine sends: not an object api.video pulls.
    #[test]
    fn the_plan_counts_only_the_bytes_sent_from_here() {
        let row = |line, remote, action| {
            let mut row = Row::new(line);
            (row.remote, row.action, row.size) = (remote, action, 1000);
            row.path_text = if remote { "s3://b/v.mp4".into() } else { "v.mp4".into() };
            row
        };
        let shape = |relay| RunShape {
            shard: None,
            chunk_size: 5 << 20,
            token_only: false,
            limit: None,
            relay,
        };
        for (relay, bytes, parts) in [(false, 1000, 1), (true, 2000, 2)] {
            let mut plan = Plan::default();
            for r in [
                row(2, false, RowAction::Create),
                row(3, true, RowAction::Upsert),
                row(4, false, RowAction::Update),
                row(5, true, RowAction::Delete),
            ] {
                plan.add(&r, &shape(relay));
            }
            assert_eq!((plan.rows, plan.bytes, plan.parts), (4, bytes, parts), "relay {relay}");
        }
    }
}
