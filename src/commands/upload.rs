//! `avbatch upload`: manifest → plan → engine → report, and the exit code a scheduler can trust.

use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::{Exit, Outcome, Stop};

use anyhow::Context;
use indicatif::HumanBytes;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::cli::UploadArgs;
use crate::config::{Destination, UploadConfig};
use crate::output::progress::{self, Progress};
use crate::output::report::{rfc3339, write_run, Results, RunTotals, Show, Summary};
use crate::output::{say, say_warning};
use avbatch_api::secret::ApiKey;
use avbatch_core::client::{ApiError, Client, ClientConfig};
use avbatch_core::engine::{self, error_chain, EngineConfig, Job, RowResult, RowStatus};
use avbatch_core::journal::Journal;
use avbatch_core::limit::Limiter;
use avbatch_core::manifest::{self, Checked, ManifestError, Row, RowRead};
use avbatch_core::plan::{Plan, RunShape};
use avbatch_core::retry::RetryConfig;

/// Rows read ahead of the engine, waiting for it to take them.
const ROWS_AHEAD: usize = 64;

/// Runs `avbatch upload`.
pub async fn run(args: &UploadArgs) -> Outcome {
    let config = UploadConfig::from_args(args, &|v| std::env::var(v).ok())?;
    let ran = execute(&config, true).await?;
    if let (Some(url), Some(totals)) = (&config.notify, &ran.totals) {
        let exit = ran.ended.as_ref().map_or_else(Stop::exit, |e| *e);
        notify(url, &config, &totals.summary, exit).await;
    }
    ran.ended
}

/// How a run that got as far as the API ended, and its totals once it wrote a report. A run
/// that ends on an error (the key refused, the report not written) still has its totals, for
/// `--notify`.
pub struct Ran {
    /// The exit code, or why the run stopped.
    pub ended: Outcome,
    /// What the report says, when one was written.
    pub totals: Option<RunTotals>,
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

/// Carries out an upload run: manifest, journal, destination, engine, report file. With `show`,
/// prints the per-row table (or the JSON report) on stdout and the summary on stderr, as
/// `avbatch upload` does; without, only progress per `config.quiet`. A manifest, journal or
/// flag that stops the run before the API is a [`Stop`]; past it, how the run [`Ran`].
///
/// Memory does not grow with the manifest: the check keeps counters (and spills what it must),
/// the engine reads rows again as it can take them, and results go to disk until the report is
/// written, in manifest order, by one more pass over the rows.
pub async fn execute(config: &UploadConfig, show: bool) -> Result<Ran, Stop> {
    // 1. The manifest, checked whole before anything is sent.
    let checked_at = Instant::now();
    let shape = run_shape(config);
    let (checked, plan) = super::preflight::check(config, shape).await?;
    if config.dry_run {
        let check_time = checked_at.elapsed();
        let ended = super::dry_run::print(config, &checked, shape, plan.acting > 0, check_time);
        return Ok(Ran { ended: ended.await, totals: None });
    }

    // 2. The journal, locked for this run; a second run, or a folder that takes no writes, stops
    //    here, before anything is sent.
    let run = RunLabel::now(config);
    let journal = open_journal(config, &run.destination).await?;
    if let Some(j) = &journal {
        j.set_run(&run.id);
    }

    // 3. Where to: a remote API, or the embedded server.
    let target = Target::reach(config).await?;

    // 4. The client, its limiter, the progress, and the two stop levels.
    let (session, shown) = Session::start(config, &target, &plan, journal.as_ref()).await?;
    let report = Report { config, show, shape, checked: &checked };
    if let Err(e) = session.authenticate().await {
        shown.finish().await;
        return session.refused(&target, e, &report, &run, plan.rows).await;
    }

    // 5. Upload, with progress: rows are read again as the engine can take them, and each
    //    result is kept (on disk past a few thousand) as its row ends.
    let started = Instant::now();
    let (results, kept, unfinished) =
        session.upload(&report, &plan, journal, shown, checked_at).await?;

    // 6. Report and exit code.
    let mut summary = results.summary(plan.rows as usize);
    summary.set_seconds(started.elapsed().as_secs_f64());
    summary.shard = config.shard.map(|s| s.to_string());
    (summary.destination, summary.run_id) = (Some(run.destination), Some(run.id));
    let stats = session.client.stats();
    summary.requests = stats.requests.load(Ordering::Relaxed);
    summary.retries = stats.retries.load(Ordering::Relaxed);
    summary.throttled = stats.throttled.load(Ordering::Relaxed);
    let (auth_failure, parts) = (results.auth_failure(), results.parts());
    let written = report.write(&summary, results, kept).await?;
    let ending = Ending { auth_failure, unanswered: unanswered(session.client.stats()) };
    let exit = ending.exit(config, show, &summary, session.stop.is_cancelled(), checked_at);
    let ended = written.and_then(|()| unfinished.ending(exit));
    Ok(Ran { ended, totals: Some(RunTotals { summary, parts }) })
}

/// What kept a run from taking every row, besides a stop or its time.
struct Unfinished {
    /// Why the manifest stopped being read.
    unread: Option<String>,
    /// Why the journal could not be written.
    broken: Option<String>,
}

impl Unfinished {
    /// The run's end once its report is written.
    fn ending(self, exit: Exit) -> Result<Exit, Stop> {
        if let Some(why) = self.broken {
            // As for a configuration problem: the disk (or volume) must be fixed first.
            let why = format!(
                "the journal cannot be written ({why}): no video was started after that, and the \
                 rows not started are left for the next run"
            );
            let hint = "free space on the journal's disk and run again: what it recorded resumes";
            return Err(Stop::new(Exit::Invalid, why).hint(hint));
        }
        match self.unread {
            // Rows the run could not read were not uploaded: never a success.
            Some(why) => {
                let exit = if exit == Exit::Done { Exit::SomeFailed } else { exit };
                Err(Stop::new(exit, why))
            }
            None => Ok(exit),
        }
    }
}

/// The rows a run covers and how they are cut, from its flags.
fn run_shape(config: &UploadConfig) -> RunShape {
    RunShape {
        shard: config.shard,
        chunk_size: config.chunk_size,
        token_only: config.upload_token.is_some()
            && config.api_key.is_none()
            && matches!(config.destination, Destination::Remote(_)),
        limit: config.limit,
        relay: config.relay,
    }
}

/// What a run is called in its report: when it started, and where it went.
struct RunLabel {
    id: String,
    destination: String,
}

impl RunLabel {
    fn now(config: &UploadConfig) -> RunLabel {
        let destination = match &config.destination {
            Destination::Remote(url) => url.clone(),
            Destination::Local(Some(dir)) => {
                let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.clone());
                format!("local:{}", dir.display())
            }
            Destination::Local(None) => "local:temporary".to_owned(),
        };
        RunLabel { id: rfc3339(std::time::SystemTime::now()), destination }
    }
}

/// Step 2: the journal, opened, locked and bound to the destination, its notes said.
async fn open_journal(
    config: &UploadConfig,
    destination: &str,
) -> Result<Option<Arc<Journal>>, Stop> {
    let Some(path) = config.journal.clone() else { return Ok(None) };
    let destination = destination.to_owned();
    let opened = tokio::task::spawn_blocking(move || {
        Journal::open(&path).and_then(|j| j.bind_destination(&destination).map(|()| j))
    });
    match opened.await.context("opening the journal panicked")? {
        Ok(j) => {
            for note in j.notes() {
                say(&note);
            }
            Ok(Some(Arc::new(j)))
        }
        Err(e) => Err(Stop::invalid(error_chain(&e)).hint(e.hint())),
    }
}

/// Step 3: the API the run talks to, and the key it uses; the embedded server (and its
/// temporary folder) lives as long as this.
struct Target {
    base_url: String,
    api_key: Option<ApiKey>,
    _server: Option<super::local::Local>,
    _temp_data: Option<tempfile::TempDir>,
}

impl Target {
    async fn reach(config: &UploadConfig) -> Result<Target, Stop> {
        let dir = match &config.destination {
            Destination::Remote(url) => {
                let (base_url, api_key) = (url.clone(), config.api_key.clone());
                return Ok(Target { base_url, api_key, _server: None, _temp_data: None });
            }
            Destination::Local(dir) => dir,
        };
        let (dir, temp_data) = match dir {
            Some(d) => (d.clone(), None),
            None => {
                let t = tempfile::Builder::new()
                    .prefix("avbatch-local-")
                    .tempdir()
                    .context("cannot create a data folder for the local server")?;
                (t.path().to_owned(), Some(t))
            }
        };
        let server = super::local::Local::start(&dir).await?;
        say(&match temp_data {
            Some(_) => format!(
                "local api.video at {} (data in the temporary folder {}, deleted when the run \
                 ends; --local-data DIR keeps it)",
                server.url(),
                dir.display()
            ),
            None => format!("local api.video at {} (data in {})", server.url(), dir.display()),
        });
        Ok(Target {
            base_url: server.url().to_owned(),
            api_key: server.generated_key().cloned(),
            _server: Some(server),
            _temp_data: temp_data,
        })
    }
}

/// Step 4: what the run's requests go through (the client, its limiter and the bandwidth
/// timetable), and the two stop levels.
struct Session {
    client: Client,
    limiter: Arc<Limiter>,
    _timetable: Option<super::schedule::Following>,
    stop: CancellationToken,
    abort: CancellationToken,
}

/// The progress on the terminal, fed by the engine's events until they end.
struct Shown {
    events: mpsc::Sender<engine::Event>,
    reporter: tokio::task::JoinHandle<()>,
}

impl Shown {
    /// Ends the progress, once its last event is drawn.
    async fn finish(self) {
        drop(self.events);
        let _ = self.reporter.await;
    }
}

impl Session {
    async fn start(
        config: &UploadConfig,
        target: &Target,
        plan: &Plan,
        journal: Option<&Arc<Journal>>,
    ) -> anyhow::Result<(Session, Shown)> {
        let now = super::schedule::local_minute();
        let bandwidth = config.bandwidth.as_ref().and_then(|b| b.at(now));
        let limiter = Arc::new(
            Limiter::new(config.rate, bandwidth).shared_by(config.shard.map_or(1, |s| s.count)),
        );
        let _timetable = super::schedule::follow(&limiter, config.bandwidth.as_ref());
        let (stop, abort) = (CancellationToken::new(), CancellationToken::new());
        let mut client_config = ClientConfig::new(&target.base_url, target.api_key.clone());
        client_config.retry = RetryConfig { max_retries: config.retries, ..RetryConfig::default() };
        client_config.timeout = config.timeout;
        client_config.limiter = limiter.clone();
        client_config.stop = stop.clone();
        client_config.abort = abort.clone();
        let client = Client::new(client_config);
        // Progress from here on, so retries reaching the API are said as they happen.
        let plan = progress::Plan { rows: plan.rows as usize, bytes: plan.bytes, held: 0 };
        let plan = with_journal(config, plan, journal).await?;
        let (events, progress) = mpsc::channel(1024);
        let (watching, stopping) = (limiter.clone(), stop.clone());
        let watched =
            progress::Watched { client: client.clone(), limiter: watching, stop: stopping };
        let mode = Progress::detect(config.quiet);
        let reporter = tokio::spawn(progress::show_progress(progress, plan, mode, watched));
        let session = Session { client, limiter, _timetable, stop, abort };
        Ok((session, Shown { events, reporter }))
    }

    /// The key exchanged for a token before anything is sent (nothing to do with a token alone).
    async fn authenticate(&self) -> Result<(), ApiError> {
        match self.client.has_api_key() {
            true => self.client.authenticate().await,
            false => Ok(()),
        }
    }

    /// The run ends on a key the API refused (or could not be asked about): said, with a report
    /// of every row not started, so a scheduler's "see the report" holds.
    async fn refused(
        &self,
        target: &Target,
        e: ApiError,
        report: &Report<'_>,
        run: &RunLabel,
        rows: u64,
    ) -> Result<Ran, Stop> {
        let unreachable = unanswered(self.client.stats());
        let why = format!("cannot authenticate with `{}`: {}", target.base_url, error_chain(&e));
        let hint = "check AVBATCH_API_KEY / --api-key-file, and that the key belongs to this \
                    environment";
        let not_started = format!("not started: {why}");
        let (summary, written) = report.write_not_started(run, rows, &not_started).await?;
        let totals = Some(RunTotals { summary, parts: 0 });
        let exit = match (e.is_auth(), unreachable) {
            (true, _) => Exit::Auth,
            (false, true) => Exit::Unreachable,
            (false, false) => Exit::SomeFailed,
        };
        let why = match written {
            Ok(()) => why,
            Err(unwritten) => format!("{why}\n{unwritten}"),
        };
        let stop = Stop::new(exit, why).maybe_hint(e.is_auth().then_some(hint));
        Ok(Ran { ended: Err(stop), totals })
    }

    /// Step 5: the engine runs the rows, read again from the manifest as it can take them;
    /// their results are kept as they end. Returns the results, whether they could all be
    /// kept, and why the manifest stopped being read if it did.
    async fn upload(
        &self,
        report: &Report<'_>,
        plan: &Plan,
        journal: Option<Arc<Journal>>,
        shown: Shown,
        began: Instant,
    ) -> anyhow::Result<(Results, io::Result<()>, Unfinished)> {
        let signals = tokio::spawn(watch_signals(self.stop.clone(), self.abort.clone()));
        let (jobs, taken) = mpsc::channel(ROWS_AHEAD);
        let (results_in, results_out) = mpsc::channel(1024);
        let collector = tokio::task::spawn_blocking(move || keep(results_out));
        let (shape, checked) = (report.shape, report.checked.clone());
        let left_out = (shown.events.clone(), results_in.clone());
        let producer = tokio::task::spawn_blocking(move || feed(shape, &checked, &jobs, &left_out));
        let config = engine_config(report.config, plan, journal, began);
        let (client, limiter, stop) =
            (self.client.clone(), self.limiter.clone(), self.stop.clone());
        let broken =
            engine::run(client, limiter, config, taken, shown.events, results_in, stop).await;
        let _ = shown.reporter.await;
        signals.abort();
        let unread = producer.await.context("reading the manifest panicked")?.err();
        let unread = unread.map(|e| format!("the run stopped reading rows: {}", error_chain(&e)));
        let (results, kept) = collector.await.context("keeping the results panicked")?;
        Ok((results, kept, Unfinished { unread, broken }))
    }
}

/// Hands the engine the run's rows as it takes them, read again from the manifest. A row left
/// out for problems of its own (--skip-invalid-rows) never reaches it: its result, failed with
/// every problem, goes straight to the progress and the results (`left_out`).
fn feed(
    shape: RunShape,
    checked: &Checked,
    jobs: &mpsc::Sender<Job>,
    left_out: &(mpsc::Sender<engine::Event>, mpsc::Sender<RowResult>),
) -> Result<(), ManifestError> {
    for (index, row) in shape.rows(checked)?.enumerate() {
        if jobs.is_closed() {
            // The engine took its last job (stopped): the rows not read stay pending.
            break;
        }
        match row? {
            RowRead::Valid(row) => {
                if jobs.blocking_send(Job { index, row: Arc::new(row) }).is_err() {
                    break;
                }
            }
            RowRead::Invalid(row, problems) => {
                let mut result = RowResult::new(index, RowStatus::Failed);
                let problems: Vec<String> = problems.iter().map(ToString::to_string).collect();
                result.error = Some(format!("invalid row, not started: {}", problems.join("; ")));
                let line = row.line;
                let finished =
                    engine::Event::Finished { result: Box::new(result.clone()), line, size: 0 };
                // Both are read until their last sender goes, and this holds one of each.
                let _ = left_out.0.blocking_send(finished);
                let _ = left_out.1.blocking_send(result);
            }
        }
    }
    Ok(())
}

/// The progress's plan with the bytes the journal holds from an earlier run, said.
async fn with_journal(
    config: &UploadConfig,
    mut plan: progress::Plan,
    journal: Option<&Arc<Journal>>,
) -> anyhow::Result<progress::Plan> {
    let Some(j) = journal.cloned() else { return Ok(plan) };
    let totals = tokio::task::spawn_blocking(move || j.totals())
        .await
        .context("reading the journal panicked")?;
    match totals {
        Ok(t) if t.rows > 0 => {
            plan.held = t.bytes_done;
            if !config.quiet {
                say(&resuming(&t, plan.rows as u64));
            }
        }
        Ok(_) => {}
        Err(e) => say_warning(&format!("cannot read the journal's totals: {}", error_chain(&e))),
    }
    Ok(plan)
}

/// Every result the engine sends, kept as it comes (on disk past a few thousand); the first
/// failure to keep one is returned beside them.
fn keep(mut results_out: mpsc::Receiver<RowResult>) -> (Results, io::Result<()>) {
    let mut results = Results::new();
    let mut kept = Ok(());
    while let Some(result) = results_out.blocking_recv() {
        if let (Err(e), Ok(())) = (results.add(result), &kept) {
            kept = Err(e);
        }
    }
    (results, kept)
}

/// The engine's settings, from the run's flags.
/// `--max-duration` counts from `began`.
fn engine_config(
    config: &UploadConfig,
    plan: &Plan,
    journal: Option<Arc<Journal>>,
    began: Instant,
) -> EngineConfig {
    EngineConfig {
        concurrency: config
            .concurrency
            .unwrap_or_else(|| crate::config::default_concurrency(plan.rows, plan.bytes)),
        chunk_size: config.chunk_size,
        mode: config.mode,
        upload_token: config.upload_token.clone(),
        journal,
        force: config.force,
        keep_old: config.keep_old,
        checksum: config.checksum,
        start_until: config.max_duration.map(|d| began + d),
        wait: config.encoding.wait,
        wait_timeout: config.encoding.wait_timeout,
        wait_poll: config.encoding.wait_poll,
        max_processing: config.encoding.max_processing,
        relay: config.relay,
        pull_timeout: config.pull_timeout,
    }
}

/// Step 6: the report of a run, written in manifest order by one more pass over its rows.
struct Report<'a> {
    config: &'a UploadConfig,
    /// Whether the per-row table (or the JSON report) goes to stdout and the summary to stderr.
    show: bool,
    shape: RunShape,
    checked: &'a Checked,
}

impl Report<'_> {
    /// Writes the report of the run's results, then says where it is (with `show`). Results
    /// that could not all be kept make no report: the run then ends with some rows failed.
    async fn write(
        &self,
        summary: &Summary,
        results: Results,
        kept: io::Result<()>,
    ) -> anyhow::Result<Result<(), Stop>> {
        let show = match (self.show, self.config.json) {
            (false, _) => Show::Nothing,
            (true, true) => Show::Json,
            (true, false) => Show::Table,
        };
        let (written, announcement) = match kept {
            Err(e) => {
                let why = format!("cannot keep the results in the temporary folder: {e}");
                (Err(io::Error::other(why)), None)
            }
            Ok(()) => {
                let (path, summary) = (self.config.report.clone(), summary.clone());
                let rows = rows_for_report(self.shape, self.checked);
                let (written, announcement) = tokio::task::spawn_blocking(move || {
                    write_run(&path, &summary, rows, results, None, show)
                })
                .await
                .context("writing the report panicked")?;
                (written, Some(announcement))
            }
        };
        if let (true, Some(a)) = (self.show, &announcement) {
            a.announce();
        }
        match written {
            Ok(()) if !self.show => {}
            Ok(()) => {
                say(&format!("report: {}", self.config.report.display()));
                if let Some(kept) = announcement.as_ref().and_then(|a| a.kept()) {
                    say(&format!("the earlier report is kept as {}", kept.display()));
                }
            }
            Err(e) => return Ok(Err(self.cannot_write(&e))),
        }
        Ok(Ok(()))
    }

    /// Writes a report of every row of the run marked `not_started`, and says where it is;
    /// returns its summary, and why it could not be written if it could not.
    async fn write_not_started(
        &self,
        run: &RunLabel,
        rows: u64,
        not_started: &str,
    ) -> anyhow::Result<(Summary, Result<(), Stop>)> {
        let results = Results::new();
        let mut summary = results.summary(rows as usize);
        summary.destination = Some(run.destination.clone());
        summary.run_id = Some(run.id.clone());
        let (path, for_report) = (self.config.report.clone(), summary.clone());
        let rows = rows_for_report(self.shape, self.checked);
        let not_started = not_started.to_owned();
        let written = tokio::task::spawn_blocking(move || {
            let shown = Show::Nothing;
            write_run(&path, &for_report, rows, results, Some(&not_started), shown).0
        })
        .await
        .context("writing the report panicked")?;
        match written {
            Ok(()) => say(&format!("report: {}", self.config.report.display())),
            Err(e) => return Ok((summary, Err(self.cannot_write(&e)))),
        }
        Ok((summary, Ok(())))
    }

    fn cannot_write(&self, e: &io::Error) -> Stop {
        let path = self.config.report.display();
        Stop::new(Exit::SomeFailed, format!("cannot write the report `{path}`: {e}"))
    }
}

/// What decides a finished run's exit code beside its summary.
struct Ending {
    /// A row failed on credentials the server refused.
    auth_failure: bool,
    /// Requests went out and not one answer came back.
    unanswered: bool,
}

impl Ending {
    /// The exit code a scheduler can trust: interrupted, out of time, done, the key refused,
    /// the API unreachable, or some rows failed.
    fn exit(
        &self,
        config: &UploadConfig,
        show: bool,
        s: &Summary,
        stopped: bool,
        began: Instant,
    ) -> Exit {
        let out_of_time = config.max_duration.is_some_and(|d| began.elapsed() >= d);
        let nothing_went_through = s.uploaded + s.updated + s.deleted == 0;
        if stopped && (s.interrupted > 0 || s.pending > 0) {
            Exit::Interrupted
        } else if out_of_time && s.pending > 0 {
            if show {
                let d = humantime::format_duration(config.max_duration.unwrap_or_default());
                say(&format!(
                    "--max-duration {d} reached: no video started after it; {} row(s) not \
                     started are left for the next run",
                    s.pending
                ));
            }
            Exit::OutOfTime
        } else if s.in_step() == s.rows {
            Exit::Done
        } else if nothing_went_through && self.auth_failure {
            // Nothing went through and the server refused the credentials (e.g. a bad upload
            // token).
            Exit::Auth
        } else if nothing_went_through && self.unanswered {
            // Not one answer came back: the network, the address or a proxy, not the rows.
            Exit::Unreachable
        } else {
            Exit::SomeFailed
        }
    }
}

/// The run's rows for its report, read again; a failure ends the report (as a write error).
fn rows_for_report(shape: RunShape, checked: &Checked) -> impl Iterator<Item = io::Result<Row>> {
    let rows = shape.rows(checked).map_err(|e| io::Error::other(error_chain(&e)));
    let (rows, failed) = match rows {
        Ok(rows) => (Some(rows), None),
        Err(e) => (None, Some(e)),
    };
    failed.map(Err).into_iter().chain(
        rows.into_iter()
            .flatten()
            .map(|r| r.map(RowRead::into_row).map_err(|e| io::Error::other(error_chain(&e)))),
    )
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

/// Whether requests went out and not one answer came back: the API could not be reached (rows
/// that failed before sending anything, e.g. on a changed file, do not count).
fn unanswered(stats: &avbatch_core::client::Stats) -> bool {
    stats.requests.load(Ordering::Relaxed) > 0 && stats.answers.load(Ordering::Relaxed) == 0
}

/// `resuming: 37 done, 3 partial (120.00 MiB held), 0 new`: what the journal says of a run
/// started before, said before anything is sent.
fn resuming(t: &avbatch_core::journal::Totals, rows: u64) -> String {
    let partial = t.rows - t.done;
    format!(
        "resuming: {} done, {partial} partial ({} held), {} new",
        t.done,
        HumanBytes(t.bytes_done.saturating_sub(t.bytes_of_done)),
        rows.saturating_sub(t.rows)
    )
}

/// First Ctrl-C or SIGTERM: stop starting work, let parts in flight finish. Second: abort.
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
