//! `avbatch upload`: manifest → plan → engine → report, and the exit code a scheduler can trust.

use std::process::ExitCode;

use super::{invalid, Exit};
use std::sync::Arc;

use anyhow::Context;
use indicatif::HumanBytes;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::chunk::plan_parts;
use crate::cli::UploadArgs;
use crate::client::{Client, ClientConfig};
use crate::config::{Destination, UploadConfig};
use crate::engine::{self, EngineConfig, Job, RowStatus};
use crate::journal::Journal;
use crate::limit::Limiter;
use crate::manifest::{self, LoadOptions, ManifestError, Row};
use crate::output::progress::{self, Progress};
use crate::output::report::Report;
use crate::output::{say, say_error};
use crate::retry::RetryConfig;
use crate::server::{Server, ServerConfig};

/// Most manifest problems printed; the rest are counted.
const MAX_PROBLEMS_SHOWN: usize = 200;

/// Runs `avbatch upload`.
pub async fn run(args: &UploadArgs) -> anyhow::Result<ExitCode> {
    let config = match UploadConfig::from_args(args, &|v| std::env::var(v).ok()) {
        Ok(c) => c,
        Err(e) => return Ok(invalid(&e.message, e.hint.as_deref())),
    };
    Ok(execute(&config, true).await?.0)
}

/// Carries out an upload run: manifest, journal, destination, engine, report file. With `show`,
/// prints the per-row table (or the JSON report) on stdout and the summary on stderr, as
/// `avbatch upload` does; without, only progress per `config.quiet`. Returns the exit code and,
/// when the run got as far as uploading, its report.
pub async fn execute(config: &UploadConfig, show: bool) -> anyhow::Result<(ExitCode, Option<Report>)> {
    // 1. The manifest, checked whole before anything is sent.
    let checked = Instant::now();
    let path = config.manifest.clone();
    let options = LoadOptions { allow_unknown_columns: config.allow_unknown_columns };
    let manifest = match tokio::task::spawn_blocking(move || manifest::load(&path, &options)).await.context("manifest check panicked")? {
        Ok(m) => m,
        Err(ManifestError::Invalid { path, problems }) => {
            let mut text = format!("the manifest `{}` has {} problem(s); nothing was uploaded", path.display(), problems.len());
            for p in problems.iter().take(MAX_PROBLEMS_SHOWN) {
                text.push_str(&format!("\n  {p}"));
            }
            if problems.len() > MAX_PROBLEMS_SHOWN {
                text.push_str(&format!("\n  … and {} more", problems.len() - MAX_PROBLEMS_SHOWN));
            }
            say_error(&text, None);
            return Ok((Exit::Invalid.into(), None));
        }
        Err(e) => return Ok((invalid(&crate::engine::error_chain(&e), None), None)),
    };
    let manifest_rows = manifest.rows.len();
    let rows: Vec<Arc<Row>> =
        manifest.rows.into_iter().filter(|r| config.shard.is_none_or(|s| s.contains(&r.identity()))).map(Arc::new).collect();
    if let Some(shard) = config.shard {
        say(&format!("shard {shard}: {} of the manifest's {manifest_rows} rows", rows.len()));
    }
    let total_bytes: u64 = rows.iter().map(|r| r.size).sum();
    let mut total_parts = 0u64;
    for row in &rows {
        match plan_parts(row.size, config.chunk_size) {
            Ok(p) => total_parts += p.len() as u64,
            Err(e) => return Ok((invalid(&format!("line {}: `{}`: {e}", row.line, row.path_text), None), None)),
        }
    }
    // A delegated upload without an API key makes each video from its first chunk alone: the
    // row's fields cannot go with it, and a private video would go up public.
    if config.upload_token.is_some() && config.api_key.is_none() && matches!(config.destination, Destination::Remote(_)) {
        let refused: Vec<String> = rows
            .iter()
            .filter_map(|r| {
                let columns = columns_needing_a_key(r);
                (!columns.is_empty()).then(|| format!("line {}: {}", r.line, columns.join(", ")))
            })
            .collect();
        if !refused.is_empty() {
            let mut text = format!(
                "{} row(s) set fields that an upload token alone cannot apply (the video is made by its first chunk, with the file name as its title and api.video's defaults, public included); nothing was sent",
                refused.len()
            );
            for line in refused.iter().take(MAX_PROBLEMS_SHOWN) {
                text.push_str(&format!("\n  {line}"));
            }
            if refused.len() > MAX_PROBLEMS_SHOWN {
                text.push_str(&format!("\n  … and {} more", refused.len() - MAX_PROBLEMS_SHOWN));
            }
            let hint = "set AVBATCH_API_KEY (or --api-key-file) as well: each video is then made with its row's fields and its parts go through the token; or drop those columns";
            return Ok((invalid(&text, Some(hint)), None));
        }
    }
    let check_time = checked.elapsed();
    tracing::info!(rows = rows.len(), bytes = total_bytes, parts = total_parts, elapsed = ?check_time, "manifest checked");

    if config.dry_run {
        println!("{:>6}  {:>14}  {:>5}  path", "line", "bytes", "parts");
        for row in &rows {
            let parts = plan_parts(row.size, config.chunk_size).map(|p| p.len()).unwrap_or(0);
            println!("{:>6}  {:>14}  {:>5}  {}", row.line, row.size, parts, row.path_text);
        }
        println!(
            "plan: {} rows, {} ({} bytes), {} parts of up to {}; nothing was sent (dry run)",
            rows.len(),
            HumanBytes(total_bytes),
            total_bytes,
            total_parts,
            HumanBytes(config.chunk_size)
        );
        let secs = check_time.as_secs_f64();
        say(&format!(
            "manifest checked in {secs:.2} s: {manifest_rows} rows, {:.0} rows/s on {} threads",
            manifest_rows as f64 / secs.max(1e-9),
            std::thread::available_parallelism().map_or(1, usize::from).max(manifest::MIN_CHECK_THREADS)
        ));
        return Ok((Exit::Done.into(), None));
    }

    // 2. The journal, locked for this run; a second run, or a folder that takes no writes, stops
    //    here, before anything is sent.
    let journal = match &config.journal {
        None => None,
        Some(path) => {
            let path = path.clone();
            let destination = match &config.destination {
                Destination::Remote(url) => url.clone(),
                Destination::Local(Some(dir)) => format!("local:{}", std::path::absolute(dir).unwrap_or_else(|_| dir.clone()).display()),
                Destination::Local(None) => "local:temporary".to_owned(),
            };
            let opened =
                tokio::task::spawn_blocking(move || Journal::open(&path).and_then(|j| j.bind_destination(&destination).map(|()| j)));
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
            let server = Server::start(ServerConfig::new(&dir), "127.0.0.1:0".parse().expect("a valid address"))
                .await
                .context("cannot start the local server")?;
            let key = server.generated_key().cloned();
            say(&format!("local api.video at {} (data in {})", server.url(), dir.display()));
            let url = server.url().to_owned();
            _server = Some(server);
            (url, key)
        }
    };

    // 4. The client, its limiter, and the two stop levels.
    let limiter = Arc::new(Limiter::new(config.rate, config.bandwidth).shared_by(config.shard.map_or(1, |s| s.count)));
    let stop = CancellationToken::new();
    let abort = CancellationToken::new();
    let mut client_config = ClientConfig::new(&base_url, api_key);
    client_config.retry = RetryConfig { max_retries: config.retries, ..RetryConfig::default() };
    client_config.timeout = config.timeout;
    client_config.limiter = limiter.clone();
    client_config.stop = stop.clone();
    client_config.abort = abort.clone();
    let client = Client::new(client_config);
    if client.has_api_key() {
        if let Err(e) = client.authenticate().await {
            let why = format!("cannot authenticate with `{base_url}`: {}", crate::engine::error_chain(&e));
            say_error(&why, e.is_auth().then_some("check AVBATCH_API_KEY / --api-key-file, and that the key belongs to this environment"));
            // Still a report, so a scheduler's "see the report" holds: every row not started.
            let results: Vec<engine::RowResult> = (0..rows.len())
                .map(|i| {
                    let mut r = engine::RowResult::new(i, RowStatus::Pending);
                    r.error = Some(format!("not started: {why}"));
                    r
                })
                .collect();
            let report = Report::new(&rows, &results, 0.0);
            match report.write(&config.report) {
                Ok(()) => say(&format!("report: {}", config.report.display())),
                Err(e) => say_error(&format!("cannot write the report `{}`: {e}", config.report.display()), None),
            }
            if e.is_auth() {
                return Ok((Exit::Auth.into(), None));
            }
            return Ok((Exit::SomeFailed.into(), None));
        }
    }
    let signals = tokio::spawn(watch_signals(stop.clone(), abort.clone()));

    // 5. Upload, with progress.
    let started = Instant::now();
    let (events, progress) = mpsc::channel(1024);
    let reporter = tokio::spawn(progress::show_progress(progress, rows.len(), total_bytes, Progress::detect(config.quiet)));
    let jobs: Vec<Job> = rows.iter().enumerate().map(|(index, row)| Job { index, row: row.clone() }).collect();
    let engine_config = EngineConfig {
        concurrency: config.concurrency,
        chunk_size: config.chunk_size,
        mode: config.mode,
        upload_token: config.upload_token.clone(),
        journal,
        force: config.force,
        checksum: config.checksum,
    };
    let results = engine::run(client.clone(), limiter, engine_config, jobs, events, stop.clone()).await;
    let _ = reporter.await;
    signals.abort();

    // 6. Report and exit code.
    let mut report = Report::new(&rows, &results, started.elapsed().as_secs_f64());
    report.summary.shard = config.shard.map(|s| s.to_string());
    let stats = client.stats();
    report.summary.requests = stats.requests.load(std::sync::atomic::Ordering::Relaxed);
    report.summary.retries = stats.retries.load(std::sync::atomic::Ordering::Relaxed);
    report.summary.throttled = stats.throttled.load(std::sync::atomic::Ordering::Relaxed);
    let written = report.write(&config.report);
    if show && config.json {
        println!("{}", serde_json::to_string_pretty(&report).context("serialising the report")?);
    } else if show {
        println!("{:>6}  {:<11}  {:<24}  path", "line", "status", "videoId");
        for r in &report.rows {
            let status = serde_json::to_value(r.status).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
            println!("{:>6}  {:<11}  {:<24}  {}", r.line, status, r.video_id.as_deref().unwrap_or("-"), r.path);
        }
    }
    if show {
        report.announce();
    }
    match written {
        Ok(()) if !show => {}
        Ok(()) => say(&format!("report: {}", config.report.display())),
        Err(e) => {
            say_error(&format!("cannot write the report `{}`: {e}", config.report.display()), None);
            return Ok((Exit::SomeFailed.into(), None));
        }
    }
    let s = &report.summary;
    let code = if stop.is_cancelled() && (s.interrupted > 0 || s.pending > 0) {
        Exit::Interrupted
    } else if s.uploaded + s.skipped == s.rows {
        Exit::Done
    } else if s.uploaded == 0 && results.iter().any(|r| r.auth_failure) {
        // Nothing went through and the server refused the credentials (e.g. a bad upload token).
        Exit::Auth
    } else {
        Exit::SomeFailed
    };
    debug_assert!(results.iter().all(|r| r.status != RowStatus::Pending) || stop.is_cancelled());
    Ok((code.into(), Some(report)))
}

/// The columns of a row that only an API key can apply (`title` counts when it differs from
/// the file's stem, the default).
fn columns_needing_a_key(row: &Row) -> Vec<&'static str> {
    let stem = std::path::Path::new(&row.path_text).file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
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
    ]
    .into_iter()
    .filter_map(|(name, set)| set.then_some(name))
    .collect()
}

/// First Ctrl-C or SIGTERM: stop starting work, let parts in flight finish. Second: abort.
async fn watch_signals(stop: CancellationToken, abort: CancellationToken) {
    super::shutdown_signal().await;
    say("stopping: no new videos or parts; finishing parts in flight (press Ctrl-C again to abort them)");
    stop.cancel();
    super::shutdown_signal().await;
    say("aborting requests in flight");
    abort.cancel();
}
