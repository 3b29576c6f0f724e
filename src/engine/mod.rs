//! The upload engine: many video sessions at once, each sending its parts strictly in order.
//!
//! One task per row, in two steps. [`prepare`] does everything before the first byte: map and
//! check the file, consult the journal, find the row's video by its key or create it
//! ([`video`]), and plan its parts around what the server already holds. [`transfer`] then
//! sends the parts in a *lane* ([`send`]). `--concurrency` bounds both: at most N videos send
//! parts at once (so at most N parts are in flight), and at most N more are prepared ahead of
//! them. A lane thus goes from one video's last part straight to the next video's first part,
//! and the lookup and create round trips overlap the uploads instead of leaving a connection
//! idle. Tasks share one [`Client`] (one connection pool, one limiter) and report through
//! [`Event`]s; the reporter is the only code that touches the terminal.
//!
//! Stopping: `stop` (first Ctrl-C) starts no new video and no new part, and lets parts in flight
//! finish without trying a failed one again; the client's abort token (second Ctrl-C) cancels
//! the requests in flight.

mod actions;
mod assets;
mod body;
pub mod cost;
mod encoding;
mod fingerprint;
mod keys;
mod send;
mod video;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::api::{Metadata, NewVideo, Progress, VideoStatus};
use crate::chunk::{plan_around, plan_parts, MappedFile, Piece};
pub use crate::client::error_chain;
use crate::client::{ApiError, Client, UploadTarget};
use crate::journal::{FileIdentity, Journal, JournalError, State};
use crate::limit::Limiter;
use crate::manifest::{Row, RowAction};
use crate::remote::Stores;
use crate::secret::Token;
pub use assets::ASSETS_METADATA;
use body::{Body, Object};
use encoding::Waited;
pub use encoding::{held_for_encoding, WaitFor};
pub use video::REPLACED_KEY_METADATA;

/// Metadata key under which each video carries its row's idempotency key.
pub const KEY_METADATA: &str = "avbatch_key";

/// The metadata keys avbatch keeps on a video for itself: never the row's to compare or change.
pub const OWN_METADATA: [&str; 3] = [KEY_METADATA, ASSETS_METADATA, REPLACED_KEY_METADATA];

/// How the parts of a video are described to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// `Content-Range: bytes FROM-TO/TOTAL` (api.video's documented progressive upload).
    Bytes,
    /// `Content-Range: part N/M` (what the official clients send).
    Parts,
}

/// What the engine needs besides the client.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Videos in flight at once.
    pub concurrency: usize,
    /// Bytes per part.
    pub chunk_size: u64,
    /// Content-Range style.
    pub mode: Mode,
    /// Delegated upload token, if parts go to `/upload?token=`.
    pub upload_token: Option<Token>,
    /// Where progress is recorded for resuming; `None` runs without one.
    pub journal: Option<Arc<Journal>>,
    /// Upload rows whose file changed since the journal recorded them, as new videos that
    /// replace the old ones (deleted once the new one is complete).
    pub force: bool,
    /// With `force`, keep the old videos (their key moved aside) instead of deleting them.
    pub keep_old: bool,
    /// Identify files by SHA-256 of their contents too.
    pub checksum: bool,
    /// `--max-duration`: no row is taken from this instant on; the rows taken before it (their
    /// videos found or made, their parts under way) go on to their end.
    pub start_until: Option<Instant>,
    /// `--wait`: poll each row's video until it plays (or is encoded) before the row ends.
    pub wait: Option<WaitFor>,
    /// `--wait-timeout`: how long a row's encoding is waited for.
    pub wait_timeout: Duration,
    /// First pause between two polls of a video's status (doubling up to 30 s).
    pub wait_poll: Duration,
    /// `--max-processing`: most of this run's videos encoding at once before a new source starts.
    pub max_processing: Option<usize>,
    /// `--relay`: rows whose `path` is a URL are read here and sent as parts, not pulled by
    /// api.video.
    pub relay: bool,
}

/// A row to upload: its position in the manifest and its content.
#[derive(Debug, Clone)]
pub struct Job {
    /// Index of the row in the manifest.
    pub index: usize,
    /// The row.
    pub row: Arc<Row>,
}

/// How a row ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RowStatus {
    /// This run sent what the server lacked, and the video is complete.
    Uploaded,
    /// Already complete before this run (per the journal, or per the server): nothing sent.
    Skipped,
    /// A permanent error, or retries exhausted.
    Failed,
    /// Stopped by Ctrl-C or SIGTERM; a re-run resumes it.
    Interrupted,
    /// Not started (the run stopped first).
    Pending,
    /// Its video's fields were changed (`upsert`, `update`); nothing uploaded.
    Updated,
    /// Its videos were deleted (`delete`).
    Deleted,
}

/// The outcome of one row.
#[derive(Debug, Clone)]
pub struct RowResult {
    /// Index of the row in the manifest.
    pub index: usize,
    /// How it ended.
    pub status: RowStatus,
    /// The video, once known (kept when the row fails after it was found or created).
    pub video_id: Option<String>,
    /// Bytes of the file the server holds.
    pub bytes: u64,
    /// Bytes this run sent and the server acknowledged.
    pub sent: u64,
    /// Parts the server holds.
    pub parts: u64,
    /// Parts planned.
    pub parts_total: u64,
    /// Time spent on the row.
    pub seconds: f64,
    /// What went wrong.
    pub error: Option<String>,
    /// What the person running avbatch should know although the row went well: other videos
    /// under its key left in place, an unfinished upload replaced by a new video.
    pub note: Option<String>,
    /// Whether it failed because the server refused the credentials.
    pub auth_failure: bool,
    /// Bytes the journal said the server held when the run began (what a resumed run's
    /// progress counted as done before the row came up).
    pub journal_held: u64,
    /// When the row's work began and ended (its report's `startedAt` and `endedAt`).
    pub started_at: Option<std::time::SystemTime>,
    /// See `started_at`.
    pub ended_at: Option<std::time::SystemTime>,
    /// The fingerprint of the file's contents the journal holds for the row, once done.
    pub fingerprint: Option<String>,
    /// The assets this run sent (`thumbnail`, `captions.LANG`, `chapters.LANG`,
    /// `captions.default`), in the order sent.
    pub assets: Vec<String>,
    /// With `--wait`: `playable`, `encoded`, `failed` or `timeout`.
    pub encoding: Option<&'static str>,
    /// With `--wait`: seconds from the source's completion (or the wait's start, for a row
    /// complete before this run) to the encoding's outcome.
    pub encoding_seconds: Option<f64>,
    /// The fields this run changed on the video (`upsert`, `update`), as api.video names them.
    pub updated: Vec<&'static str>,
    /// The videos this run deleted (`delete`).
    pub deleted: Vec<String>,
    /// How the source went: `file`, `relay` (an object read here and sent) or `pull` (api.video
    /// fetches it from its URL); none when no source was needed.
    pub transfer: Option<&'static str>,
}

/// Progress, sent by video tasks to the reporter.
#[derive(Debug, Clone)]
pub enum Event {
    /// A video session started sending.
    Started {
        /// Row index.
        index: usize,
        /// Display name.
        name: String,
        /// File size.
        bytes: u64,
        /// Parts planned.
        parts: u64,
        /// Bytes the server already held: not this run's to send.
        held: u64,
        /// Bytes the journal said the server held when the run began (taken off the run's
        /// total then).
        counted: u64,
        /// Whether the run's total counted the row's size: not for an object to be pulled that
        /// an earlier run had begun to relay (its rest is sent here after all).
        planned: bool,
    },
    /// Bytes of the part being sent that the connection took so far (this attempt: a retry
    /// starts again from 0). Sent when the channel has room; [`Event::PartDone`] settles it.
    Sending {
        /// Row index.
        index: usize,
        /// Bytes of the part handed to the connection.
        bytes: u64,
    },
    /// A part was acknowledged.
    PartDone {
        /// Row index.
        index: usize,
        /// Its size.
        bytes: u64,
    },
    /// A row ended.
    Finished {
        /// How.
        result: Box<RowResult>,
        /// Its line in the manifest.
        line: u64,
        /// What the run's total counted of it: its file's size, or 0 for a row whose bytes
        /// are not sent from here.
        size: u64,
    },
}

/// Shared by every video task.
struct Ctx {
    client: Client,
    keys: keys::Keys,
    config: EngineConfig,
    limiter: Arc<Limiter>,
    events: mpsc::Sender<Event>,
    stop: CancellationToken,
    /// `--max-processing`: a permit per video of this run between its source's start and the
    /// end of its encoding.
    processing: Option<Arc<Semaphore>>,
    /// The buckets and web servers rows are read from, one store each.
    stores: Stores,
}

/// Runs the jobs `jobs` yields, in their order, at most `concurrency` at once: the next job is
/// taken only when there is room to prepare it, so jobs can be read from a manifest of any length
/// as lanes free up. Each row's result goes to `results` as the row ends. Returns when every job
/// taken has ended; after `stop` no job is taken, and the jobs never taken have no result (they
/// were not started).
pub async fn run(
    client: Client,
    limiter: Arc<Limiter>,
    config: EngineConfig,
    mut jobs: mpsc::Receiver<Job>,
    events: mpsc::Sender<Event>,
    results: mpsc::Sender<RowResult>,
    stop: CancellationToken,
) {
    let lanes = Arc::new(Semaphore::new(config.concurrency.max(1)));
    let ahead = Arc::new(Semaphore::new(config.concurrency.max(1)));
    let keys = keys::Keys::new(client.clone(), jobs.len() as u64);
    let processing = config.max_processing.map(|n| Arc::new(Semaphore::new(n.max(1))));
    let stores = Stores::from_env();
    let ctx = Arc::new(Ctx { client, keys, config, limiter, events, stop, processing, stores });
    let mut tasks = JoinSet::new();
    // The row of each task, so a task that panics still gets a result.
    let mut rows: HashMap<tokio::task::Id, usize> = HashMap::new();
    loop {
        let permit = tokio::select! {
            p = ahead.clone().acquire_owned() => p.expect("the semaphore is never closed"),
            () = ctx.stop.cancelled() => break,
            () = until(ctx.config.start_until) => break,
        };
        let job = tokio::select! {
            job = jobs.recv() => match job {
                Some(job) => job,
                None => break,
            },
            () = ctx.stop.cancelled() => break,
            () = until(ctx.config.start_until) => break,
        };
        if ctx.stop.is_cancelled() || ctx.config.start_until.is_some_and(|t| Instant::now() >= t) {
            break;
        }
        // Finished tasks are reaped as the run goes, so a long run holds only the live ones.
        while let Some(joined) = tasks.try_join_next_with_id() {
            ended(joined, &mut rows, &results).await;
        }
        let (ctx, lanes, results) = (ctx.clone(), lanes.clone(), results.clone());
        let index = job.index;
        let task = tasks.spawn(async move {
            let result = upload_row(&ctx, &job, permit, lanes).await;
            // What the plan counted of it: nothing for a row that sends nothing from here.
            let size = if job.row.sent_here(ctx.config.relay) { job.row.size } else { 0 };
            let line = job.row.line;
            let finished = Event::Finished { result: Box::new(result.clone()), line, size };
            let _ = ctx.events.send(finished).await;
            let _ = results.send(result).await;
        });
        rows.insert(task.id(), index);
    }
    // No more jobs: whatever reads them can stop.
    drop(jobs);
    while let Some(joined) = tasks.join_next_with_id().await {
        ended(joined, &mut rows, &results).await;
    }
}

/// Completes at `at`; never without one.
async fn until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// A task ended: it sent its row's result itself, unless it panicked.
async fn ended(
    joined: Result<(tokio::task::Id, ()), tokio::task::JoinError>,
    rows: &mut HashMap<tokio::task::Id, usize>,
    results: &mpsc::Sender<RowResult>,
) {
    match joined {
        Ok((id, ())) => {
            rows.remove(&id);
        }
        // A panic in one task must not hide the others' results: it is logged, and its row
        // fails.
        Err(e) => {
            tracing::error!(%e, "an upload task panicked");
            if let Some(index) = rows.remove(&e.id()) {
                let mut result = RowResult::new(index, RowStatus::Failed);
                result.error = Some("the upload task ended without a result".into());
                let _ = results.send(result).await;
            }
        }
    }
}

impl RowResult {
    /// A result with nothing done yet.
    pub(crate) fn new(index: usize, status: RowStatus) -> Self {
        RowResult {
            index,
            status,
            video_id: None,
            bytes: 0,
            sent: 0,
            parts: 0,
            parts_total: 0,
            seconds: 0.0,
            error: None,
            note: None,
            auth_failure: false,
            journal_held: 0,
            started_at: None,
            ended_at: None,
            fingerprint: None,
            assets: Vec::new(),
            encoding: None,
            encoding_seconds: None,
            updated: Vec::new(),
            deleted: Vec::new(),
            transfer: None,
        }
    }

    /// Adds a sentence to the row's note.
    fn add_note(&mut self, text: impl Into<String>) {
        let text = text.into();
        self.note = Some(match self.note.take() {
            Some(before) => format!("{before}; {text}"),
            None => text,
        });
    }
}

/// The creation payload for a row, with its idempotency key in the metadata.
pub fn new_video(row: &Row) -> NewVideo {
    let mut metadata: Vec<Metadata> =
        row.metadata.iter().map(|(k, v)| Metadata { key: k.clone(), value: v.clone() }).collect();
    metadata.push(Metadata { key: KEY_METADATA.to_owned(), value: row.key() });
    NewVideo {
        title: row.title.clone(),
        description: row.description.clone(),
        tags: row.tags.clone(),
        metadata,
        public: row.public,
        panoramic: row.panoramic,
        mp4_support: row.mp4_support,
        player_id: row.player_id.clone(),
        language: row.language.clone(),
        clip: row.clip.clone(),
        watermark: row.watermark.clone(),
        transcript: row.transcript,
        transcript_summary: row.transcript_summary,
        transcript_summary_attributes: row.transcript_summary_attributes.clone(),
        source: None,
    }
}

/// One row, start to finish. Never panics on I/O or network failures: every one becomes the
/// row's error.
async fn upload_row(
    ctx: &Ctx,
    job: &Job,
    ahead: OwnedSemaphorePermit,
    lanes: Arc<Semaphore>,
) -> RowResult {
    if !job.row.action.uploads() {
        return act_row(ctx, job, ahead).await;
    }
    let started = Instant::now();
    let mut result = RowResult::new(job.index, RowStatus::Failed);
    result.started_at = Some(std::time::SystemTime::now());
    let mut waited = Duration::ZERO;
    let mut hold = None;
    let mut outcome =
        session(ctx, job, Some(ahead), &lanes, &mut result, &mut waited, &mut hold).await;
    if let Err(SessionEnd::Gone { video_id }) = &outcome {
        // The video went away under the upload (api.video deletes unfinished uploads 7 days
        // after they start): once, the row starts over in a new video.
        result.add_note(format!(
            "video `{video_id}` disappeared from the server mid-upload; the row was uploaded again"
        ));
        // What went to the lost video was sent all the same: `sent` keeps counting it.
        result.video_id = None;
        (result.bytes, result.parts) = (0, 0);
        outcome = session(ctx, job, None, &lanes, &mut result, &mut waited, &mut hold).await;
    }
    let source_at = Instant::now();
    // The source is complete: the row's other assets follow, on the same video.
    let source_done = matches!(outcome, Ok(()) | Err(SessionEnd::AlreadyDone));
    if let (true, Some(video_id)) = (source_done, result.video_id.clone()) {
        // An upsert's video found complete may hold other fields than the row's: they change
        // first (the assets' record in its metadata is then written over the changed list).
        if job.row.action == RowAction::Upsert {
            match actions::settle_fields(ctx, &job.row, &job.row.key(), &video_id).await {
                Ok(changed) => result.updated = changed,
                Err(end) => outcome = Err(end),
            }
        }
        if matches!(outcome, Ok(()) | Err(SessionEnd::AlreadyDone)) {
            match assets::settle(ctx, &job.row, &job.row.key(), &video_id).await {
                Ok(sent) if sent.is_empty() => {}
                Ok(sent) => {
                    result.assets = sent;
                    outcome = Ok(());
                }
                Err(end) => outcome = Err(end),
            }
        }
    } else if source_done && assets::any(&job.row) {
        outcome = Err(SessionEnd::failed("the row's video is not known: its assets were not sent"));
    }
    result.seconds = started.elapsed().saturating_sub(waited).as_secs_f64();
    let plays = matches!(outcome, Ok(()) | Err(SessionEnd::AlreadyDone));
    if let (true, Some(video_id)) = (plays, result.video_id.clone()) {
        if ctx.config.wait.is_some() || hold.is_some() {
            let what = ctx.config.wait.unwrap_or(WaitFor::Playable);
            let waited = encoding::wait(ctx, &video_id, what).await;
            drop(hold.take());
            if ctx.config.wait.is_some() {
                result.encoding = waited.column();
                if result.encoding.is_some() {
                    result.encoding_seconds = Some(source_at.elapsed().as_secs_f64());
                }
                match waited {
                    Waited::Done(_) | Waited::Stopped => {}
                    Waited::Failed(m) | Waited::Timeout(m) | Waited::Unknown(m) => {
                        outcome = Err(SessionEnd::failed(m))
                    }
                }
            }
        }
    }
    drop(hold);
    result.ended_at = Some(std::time::SystemTime::now());
    match outcome {
        Ok(()) if result.sent == 0 && !result.updated.is_empty() => {
            result.status = RowStatus::Updated
        }
        Ok(()) => result.status = RowStatus::Uploaded,
        Err(SessionEnd::AlreadyDone) if !result.updated.is_empty() => {
            result.status = RowStatus::Updated
        }
        Err(SessionEnd::AlreadyDone) => result.status = RowStatus::Skipped,
        Err(SessionEnd::Stopped) if result.video_id.is_none() => result.status = RowStatus::Pending,
        Err(SessionEnd::Stopped) => result.status = RowStatus::Interrupted,
        Err(SessionEnd::Gone { video_id }) => {
            fail(
                ctx,
                job,
                &mut result,
                format!("video `{video_id}` disappeared from the server twice"),
                false,
            )
            .await
        }
        Err(SessionEnd::Failed { message, auth }) => {
            fail(ctx, job, &mut result, message, auth).await
        }
    }
    tracing::debug!(
        row = job.row.line,
        key = job.row.key(),
        status = ?result.status,
        video_id = result.video_id.as_deref(),
        "row ended"
    );
    result
}

/// An `update` or `delete` row, start to finish: no file, no lane (its `ahead` permit bounds
/// how many run at once). A failure is the row's alone: the journal's record of an earlier
/// upload of the key stays as it was.
async fn act_row(ctx: &Ctx, job: &Job, ahead: OwnedSemaphorePermit) -> RowResult {
    let started = Instant::now();
    let mut result = RowResult::new(job.index, RowStatus::Failed);
    result.started_at = Some(std::time::SystemTime::now());
    let outcome = match job.row.action {
        _ if ctx.stop.is_cancelled() => Err(SessionEnd::Stopped),
        RowAction::Delete => actions::delete(ctx, &job.row, &mut result).await,
        _ => actions::update(ctx, &job.row, &mut result).await,
    };
    drop(ahead);
    result.seconds = started.elapsed().as_secs_f64();
    result.ended_at = Some(std::time::SystemTime::now());
    result.status = match outcome {
        Ok(()) if job.row.action == RowAction::Delete => RowStatus::Deleted,
        Ok(()) if result.updated.is_empty() => RowStatus::Uploaded,
        Ok(()) => RowStatus::Updated,
        Err(SessionEnd::AlreadyDone) => RowStatus::Skipped,
        Err(SessionEnd::Stopped) if result.video_id.is_none() => RowStatus::Pending,
        Err(SessionEnd::Stopped) => RowStatus::Interrupted,
        Err(SessionEnd::Gone { video_id }) => {
            result.error = Some(format!("video `{video_id}` disappeared from the server"));
            RowStatus::Failed
        }
        Err(SessionEnd::Failed { message, auth }) => {
            result.error = Some(message);
            result.auth_failure = auth;
            RowStatus::Failed
        }
    };
    tracing::debug!(row = job.row.line, status = ?result.status, "row ended");
    result
}

/// Records a failed row (in the journal too, once it has a video).
async fn fail(ctx: &Ctx, job: &Job, result: &mut RowResult, message: String, auth: bool) {
    if result.video_id.is_some() {
        let (key, error) = (job.row.key(), message.clone());
        if let Err(SessionEnd::Failed { message, .. }) =
            journal(ctx, move |j| j.finish(&key, State::Failed, Some(&error))).await
        {
            tracing::warn!(
                row = job.row.line,
                "cannot record the failure in the journal: {message}"
            );
        }
    }
    result.status = RowStatus::Failed;
    result.error = Some(message);
    result.auth_failure = auth;
}

enum SessionEnd {
    /// Complete before this run: the journal or the server says so.
    AlreadyDone,
    Stopped,
    /// The row's video is no longer on the server.
    Gone {
        video_id: String,
    },
    Failed {
        message: String,
        auth: bool,
    },
}

impl SessionEnd {
    fn failed(message: impl Into<String>) -> Self {
        SessionEnd::Failed { message: message.into(), auth: false }
    }
}

impl From<ApiError> for SessionEnd {
    fn from(e: ApiError) -> Self {
        if matches!(e, ApiError::Cancelled { .. }) {
            return SessionEnd::Stopped;
        }
        SessionEnd::Failed { message: error_chain(&e), auth: e.is_auth() }
    }
}

/// Runs blocking journal work off the runtime; no journal, nothing to do.
async fn journal<T: Send + 'static>(
    ctx: &Ctx,
    f: impl FnOnce(&Journal) -> Result<T, JournalError> + Send + 'static,
) -> Result<Option<T>, SessionEnd> {
    let Some(j) = ctx.config.journal.clone() else { return Ok(None) };
    tokio::task::spawn_blocking(move || f(&j))
        .await
        .map_err(|e| SessionEnd::failed(format!("a journal task failed: {e}")))?
        .map(Some)
        .map_err(|e| SessionEnd::failed(error_chain(&e)))
}

/// A row refused because its file is not the one the journal saw uploaded: what changed, as
/// far as the journal can tell.
fn changed_since_uploaded(
    row: &Row,
    before: &crate::journal::Entry,
    now: &FileIdentity,
) -> SessionEnd {
    let then = &before.file;
    let mut what = Vec::new();
    if then.size != now.size {
        what.push(format!("size from {} to {} bytes", then.size, now.size));
    }
    if then.mtime_ns != now.mtime_ns {
        what.push(format!(
            "modification time from {} to {}",
            timestamp(then.mtime_ns),
            timestamp(now.mtime_ns)
        ));
    }
    if then.size == now.size {
        what.push(match (&then.sha256, &now.sha256) {
            (Some(a), Some(b)) if a != b => "contents differ (another fingerprint)".to_owned(),
            (Some(_), Some(_)) => "contents the same".to_owned(),
            _ => "contents not compared: the journal holds no fingerprint of the upload (made \
                  by an earlier avbatch, or not finished by this one)"
                .to_owned(),
        });
    }
    let video = before.video_id.as_deref().unwrap_or("-");
    SessionEnd::failed(format!(
        "`{}` changed since it was uploaded to video `{video}`: {}; pass --force to upload it \
         again as a new video that replaces `{video}`",
        row.path_text,
        what.join(", ")
    ))
}

/// A modification time as the journal keeps it, for messages.
fn timestamp(mtime_ns: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(mtime_ns)
        .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// The file's identity as the journal keeps it.
fn identity(row: &Row) -> FileIdentity {
    let mtime_ns = row
        .mtime
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as i64);
    FileIdentity { path: row.path_text.clone(), size: row.size, mtime_ns, sha256: None }
}

/// A row's session: prepared ahead (holding an `ahead` permit, when it has one), then its parts
/// sent in a lane. `waited` accumulates the time spent waiting for a lane.
async fn session(
    ctx: &Ctx,
    job: &Job,
    ahead: Option<OwnedSemaphorePermit>,
    lanes: &Arc<Semaphore>,
    result: &mut RowResult,
    waited: &mut Duration,
    hold: &mut Option<encoding::Encoding>,
) -> Result<(), SessionEnd> {
    if let (Some(processing), None, true) = (&ctx.processing, &hold, pulls(ctx, &job.row)) {
        // `--max-processing`: a pulled video starts encoding as soon as it is made.
        *hold = Some(tokio::select! {
            e = encoding::Encoding::start(processing) => e,
            () = ctx.stop.cancelled() => return Err(SessionEnd::Stopped),
        });
    }
    let prepared = prepare(ctx, job, result).await?;
    if prepared.pulled {
        // api.video fetches the source from its URL: nothing to send, no lane to wait for.
        drop(ahead);
        result.bytes = prepared.body.len();
        let key = prepared.key.clone();
        journal(ctx, move |j| j.done(&key, None)).await?;
        settle_replaced(ctx, &prepared.key, prepared.replaces, result).await;
        return Ok(());
    }
    if prepared.plan.iter().all(|p| p.held) {
        // The server holds everything (a re-run without its journal, or another run's work):
        // nothing to send, so no lane to wait for behind long uploads.
        drop(ahead);
        result.parts = prepared.plan.len() as u64;
        result.bytes = prepared.body.len();
        let key = prepared.key.clone();
        journal(ctx, move |j| j.finish(&key, State::Done, None)).await?;
        settle_replaced(ctx, &prepared.key, prepared.replaces, result).await;
        return Err(SessionEnd::AlreadyDone);
    }
    let wait = Instant::now();
    if let (Some(processing), None) = (&ctx.processing, &hold) {
        // `--max-processing`: the source starts once fewer of this run's videos are encoding.
        *hold = Some(tokio::select! {
            e = encoding::Encoding::start(processing) => e,
            () = ctx.stop.cancelled() => return Err(SessionEnd::Stopped),
        });
    }
    let _lane = tokio::select! {
        p = lanes.clone().acquire_owned() => p.expect("the semaphore is never closed"),
        () = ctx.stop.cancelled() => return Err(SessionEnd::Stopped),
    };
    drop(ahead);
    *waited += wait.elapsed();
    if ctx.stop.is_cancelled() {
        return Err(SessionEnd::Stopped);
    }
    transfer(ctx, job, prepared, result).await
}

/// Whether the row's source is pulled by api.video from its URL (unless it turns out to be
/// partly relayed already).
fn pulls(ctx: &Ctx, row: &Row) -> bool {
    row.remote
        && !ctx.config.relay
        && crate::remote::pullable(&row.path_text)
        && ctx.client.has_api_key()
}

/// A row made ready to send: its file mapped and checked, its video found or created and
/// recorded in the journal, and its parts planned around what the server already holds.
struct Prepared {
    key: String,
    body: Body,
    plan: Vec<Piece>,
    target: UploadTarget,
    mode: Mode,
    name: String,
    with_key: bool,
    identity: FileIdentity,
    chunk_size: u64,
    /// Videos to delete once this one is complete (see [`settle_replaced`]).
    replaces: Vec<String>,
    /// Made with its object's URL as its source: api.video fetches it, nothing is sent.
    pulled: bool,
}

/// Everything before the first byte of a row: the work of the requests that do not carry the
/// file (the lookup by key, the status, the create). It runs up to `--concurrency` rows ahead
/// of the lanes, so a lane goes from one video's last part straight to the next video's first
/// instead of spending those round trips idle.
async fn prepare(ctx: &Ctx, job: &Job, result: &mut RowResult) -> Result<Prepared, SessionEnd> {
    if ctx.stop.is_cancelled() {
        return Err(SessionEnd::Stopped);
    }
    let row = job.row.clone();
    let mut identity = identity(&row);

    // 1. The file, mapped (and hashed with --checksum); or the object, looked at.
    if row.remote {
        let object = Arc::new(Object::open(ctx, &row).await?);
        return prepare_from(ctx, job, result, Body::Object(object), identity).await;
    }
    let path = row.path.clone();
    let mut file = tokio::task::spawn_blocking(move || MappedFile::open(&path))
        .await
        .map_err(|e| SessionEnd::failed(format!("mapping the file failed: {e}")))?
        .map_err(|e| SessionEnd::failed(format!("cannot open `{}`: {e}", row.path_text)))?;
    if file.len() != row.size || (row.mtime.is_some() && file.modified() != row.mtime) {
        return Err(SessionEnd::failed(format!(
            "`{}` changed since the manifest was checked ({} bytes then, {} now, or a new \
             modification time); nothing was sent",
            row.path_text,
            row.size,
            file.len()
        )));
    }
    if ctx.config.checksum {
        let (f, sha) = tokio::task::spawn_blocking(move || {
            let sha = file.fingerprint();
            (file, sha)
        })
        .await
        .map_err(|e| SessionEnd::failed(format!("hashing the file failed: {e}")))?;
        file = f;
        identity.sha256 = Some(sha);
    }
    prepare_from(ctx, job, result, Body::File(Arc::new(file)), identity).await
}

/// [`prepare`] once the row's bytes are at hand.
async fn prepare_from(
    ctx: &Ctx,
    job: &Job,
    result: &mut RowResult,
    body: Body,
    mut identity: FileIdentity,
) -> Result<Prepared, SessionEnd> {
    let row = job.row.clone();
    let key = row.key();

    // 2. The journal: a finished row is skipped, a changed file refused unless --force, and a
    //    started video resumed. Entries written by avbatch 0.1 are found by its key too.
    let (lookup_key, legacy_key) = (key.clone(), row.identity());
    let keyed_by_file = row.id.is_none();
    let lookup_path = row.path_text.clone();
    let (entry, before) = journal(ctx, move |j| {
        let entry = j.get_or_migrate(&lookup_key, &legacy_key)?;
        // Without an `id` the key changes with the file: find what this path held before.
        let before = if entry.is_none() && keyed_by_file {
            j.latest_for_path(&lookup_path, &lookup_key)?
        } else {
            None
        };
        Ok::<_, JournalError>((entry, before))
    })
    .await?
    .unwrap_or_default();
    result.journal_held = entry.as_ref().map_or(0, |e| e.bytes_done);
    let with_key = ctx.client.has_api_key();
    // A file whose size or time moved: with the fingerprint of its upload in the journal, the
    // contents decide (one read of the file, only for such rows). Touched, not changed: the
    // journal takes its new identity and, keyed by the file, its new key.
    let recorded = entry.as_ref().or(before.as_ref());
    if let (Some(e), Body::File(file)) = (recorded.filter(|e| !e.file.same_file(&identity)), &body)
    {
        let comparable = e.file.sha256.as_deref().is_some_and(crate::chunk::is_fingerprint);
        if e.file.size == identity.size && comparable && identity.sha256.is_none() {
            let file = file.clone();
            let sha = tokio::task::spawn_blocking(move || file.fingerprint())
                .await
                .map_err(|e| SessionEnd::failed(format!("hashing the file failed: {e}")))?;
            identity.sha256 = Some(sha);
        }
    }
    let (mut entry, before) = match (entry, before) {
        (Some(e), _) if touched(&e, &key, &identity) => {
            (Some(retouch(ctx, &row, e, &key, &identity, with_key, result).await?), None)
        }
        (None, Some(e)) if touched(&e, &key, &identity) => {
            (Some(retouch(ctx, &row, e, &key, &identity, with_key, result).await?), None)
        }
        other => other,
    };
    // An upsert row uploads a changed file again as `--force` does.
    let force = ctx.config.force || row.action == RowAction::Upsert;
    // Keyed by the file, a changed file has a new key: its path's earlier upload is the one it
    // replaces.
    let mut replaces = Vec::new();
    if let Some(e) = before.as_ref().filter(|e| !e.file.same_file(&identity)) {
        if !force {
            return Err(changed_since_uploaded(&row, e, &identity));
        }
        replaces = replaced(ctx, e, with_key, result);
    }
    let mut journal_video = None;
    let mut chunk_size = ctx.config.chunk_size;
    let mut fresh = false;
    if let Some(e) = &mut entry {
        if !e.file.same_file(&identity) {
            if !force {
                return Err(changed_since_uploaded(&row, e, &identity));
            }
            replaces = replaced(ctx, e, with_key, result);
            fresh = true;
        } else {
            replaces = std::mem::take(&mut e.replaces);
            if e.state == State::Done {
                result.video_id = e.video_id.clone();
                result.fingerprint = e.file.sha256.clone();
                result.bytes = e.bytes_done;
                result.parts = e.parts_done;
                result.parts_total = e.parts_done;
                settle_replaced(ctx, &key, replaces, result).await;
                return Err(SessionEnd::AlreadyDone);
            }
            journal_video = e.video_id.clone();
            chunk_size = e.chunk_size;
        }
    }
    // An object's name without its URL's query string (a presigned one's signature).
    let shown = std::path::PathBuf::from(crate::remote::shown(&row.path_text).replace("?…", ""));
    let name = shown
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| shown.display().to_string());
    // An object api.video can fetch itself is pulled (unless `--relay`): its video is made with
    // the URL as its source, and nothing is sent from here.
    let pull = match &body {
        Body::Object(object) if !ctx.config.relay && object.remote.pullable() => Some(
            object
                .remote
                .pull_url(body::PULL_TTL)
                .await
                .map_err(|e| {
                    SessionEnd::failed(format!(
                        "`{}`: cannot make the signed URL api.video would fetch it from: {e} \
                         (`--relay` sends it from here instead)",
                        object.remote.shown()
                    ))
                })?
                .to_string(),
        ),
        _ => None,
    };

    // 3. The video: the journal's, else one already made for this key (the journal may have
    //    been lost, or another run made it), else a new one; and what the server holds of it.
    //    A changed file's new video replaces the old one: the old gives up the key first.
    if fresh && with_key {
        for id in video::retire(ctx, &row, &key).await? {
            if !replaces.contains(&id) {
                replaces.push(id);
            }
        }
        if ctx.config.keep_old {
            result.add_note(format!(
                "kept the video(s) of the file as it was, {}: their key moved to \
                 `{}`",
                listed(&replaces),
                video::REPLACED_KEY_METADATA
            ));
            replaces.clear();
        }
    }
    let (video_id, status) = if with_key {
        let found = video::resolve(
            ctx,
            &row,
            &key,
            journal_video.as_deref(),
            fresh,
            pull.as_deref(),
            result,
        )
        .await?;
        (Some(found.video_id), Some(found.status))
    } else if pull.is_some() {
        return Err(SessionEnd::failed(
            "a video pulled from its URL is made with an API key: an upload token only uploads \
             (pass --relay to send the object from here)",
        ));
    } else {
        (journal_video.clone(), None)
    };
    // Pulled: api.video fetches (or fetched) it, unless an earlier run relayed part of it.
    let pulled = pull.is_some()
        && status.as_ref().is_some_and(|s| !s.is_uploaded() && s.progress() != Progress::Partial);
    result.video_id = video_id.clone();
    let resumed = video_id.is_some() && video_id == journal_video;

    // 4. The plan, around what the server holds: its record with a key, the journal's without.
    let mut mode = ctx.config.mode;
    let plan = match &status {
        _ if pulled => Vec::new(),
        Some(status) => plan_held(
            status,
            body.len(),
            chunk_size,
            &mut mode,
            video_id.as_deref().unwrap_or_default(),
        )?,
        None => {
            let mut plan = pieces(body.len(), chunk_size)?;
            let done = entry.as_ref().filter(|_| resumed).map_or(0, |e| e.parts_done);
            for piece in plan.iter_mut().take(done as usize) {
                piece.held = true;
            }
            plan
        }
    };
    result.parts_total = plan.len() as u64;
    let target = match (&ctx.config.upload_token, video_id.clone()) {
        (Some(token), id) => UploadTarget::Token { token: token.clone(), video_id: id },
        (None, Some(id)) => UploadTarget::Video(id),
        (None, None) => return Err(SessionEnd::failed("no API key and no upload token")),
    };
    if let Some(id) = &video_id {
        replaces.retain(|r| r != id);
        record_start(ctx, &key, &identity, id, chunk_size, &plan).await?;
        if !replaces.is_empty() {
            let (k, ids) = (key.clone(), replaces.clone());
            journal(ctx, move |j| j.set_replaces(&k, &ids)).await?;
        }
    }
    result.transfer = Some(body.transfer(pulled));
    Ok(Prepared {
        key,
        body,
        plan,
        target,
        mode,
        name,
        with_key,
        identity,
        chunk_size,
        replaces,
        pulled,
    })
}

/// Whether a journal entry's file is the row's file as it is now under another identity: the
/// same contents (by their fingerprint), a new modification time, path or key.
fn touched(entry: &crate::journal::Entry, key: &str, now: &FileIdentity) -> bool {
    let then = &entry.file;
    then.sha256.is_some()
        && then.same_file(now)
        && (then.mtime_ns != now.mtime_ns || then.path != now.path || entry.key != key)
}

/// A touched file: its journal entry takes the file's new identity and the row's key, and,
/// when the key changed (a row keyed by its file), so does its video on the server, so a later
/// run finds it without the journal. Returns the entry as it now stands.
async fn retouch(
    ctx: &Ctx,
    row: &Row,
    mut entry: crate::journal::Entry,
    key: &str,
    now: &FileIdentity,
    with_key: bool,
    result: &mut RowResult,
) -> Result<crate::journal::Entry, SessionEnd> {
    if entry.key != key && with_key {
        if let Some(id) = &entry.video_id {
            video::rekey(ctx, id, &entry.key, key).await?;
        }
    }
    let (old, k, f) = (entry.key.clone(), key.to_owned(), now.clone());
    journal(ctx, move |j| j.retouch(&old, &k, &f)).await?;
    if entry.file.mtime_ns != now.mtime_ns {
        result.add_note(format!(
            "touched: modification time from {} to {}, contents unchanged",
            timestamp(entry.file.mtime_ns),
            timestamp(now.mtime_ns)
        ));
    }
    tracing::debug!(row = row.line, "a touched file keeps its upload");
    entry.key = key.to_owned();
    entry.file = FileIdentity { sha256: now.sha256.clone().or(entry.file.sha256), ..now.clone() };
    Ok(entry)
}

/// The videos a changed file's new video replaces (`--force`): the journal's, and those it was
/// to replace itself. Only with an API key, which deleting them takes.
fn replaced(
    ctx: &Ctx,
    entry: &crate::journal::Entry,
    with_key: bool,
    result: &mut RowResult,
) -> Vec<String> {
    let mut ids = entry.replaces.clone();
    ids.extend(entry.video_id.iter().filter(|id| !ids.contains(id)).cloned().collect::<Vec<_>>());
    if with_key && !ctx.config.keep_old {
        return ids;
    }
    if !with_key && !ids.is_empty() {
        result.add_note(format!(
            "kept the video(s) of the file as it was, {}: deleting them takes an API key",
            listed(&ids)
        ));
    }
    Vec::new()
}

/// Video ids for a note: `a`, `b`.
fn listed(ids: &[String]) -> String {
    ids.iter().map(|id| format!("`{id}`")).collect::<Vec<_>>().join(", ")
}

/// The row's video is complete: the videos it replaces are deleted, and the journal forgets
/// them. One that cannot be deleted stays in the journal for the next run, and is noted.
async fn settle_replaced(ctx: &Ctx, key: &str, replaces: Vec<String>, result: &mut RowResult) {
    if replaces.is_empty() {
        return;
    }
    let mut left = Vec::new();
    for id in replaces {
        if result.video_id.as_deref() == Some(id.as_str()) {
            continue;
        }
        match ctx.client.delete_video(&id).await {
            Ok(()) => result.add_note(format!("replaced video `{id}`, which was deleted")),
            Err(e) => {
                result.add_note(format!(
                    "could not delete video `{id}`, which this one replaces ({}); a re-run tries \
                     again",
                    error_chain(&e)
                ));
                left.push(id);
            }
        }
    }
    let k = key.to_owned();
    if let Err(SessionEnd::Failed { message, .. }) =
        journal(ctx, move |j| j.set_replaces(&k, &left)).await
    {
        tracing::warn!("cannot record the replaced videos in the journal: {message}");
    }
}

/// The plain cut of a file, nothing held.
fn pieces(len: u64, chunk_size: u64) -> Result<Vec<Piece>, SessionEnd> {
    let plan = plan_parts(len, chunk_size).map_err(|e| SessionEnd::failed(e.to_string()))?;
    Ok(plan.into_iter().map(|part| Piece { part, held: false }).collect())
}

/// Plans a video's parts from what the server says it holds. A complete video needs nothing,
/// whatever the part size. A partial one continues in the mode it was started in: in bytes
/// mode from the byte ranges it holds, with any part size; in part mode only with the cut it
/// was started with, since part numbers say nothing of where a part began.
fn plan_held(
    status: &VideoStatus,
    len: u64,
    chunk_size: u64,
    mode: &mut Mode,
    video_id: &str,
) -> Result<Vec<Piece>, SessionEnd> {
    if status.is_uploaded() {
        let mut plan = pieces(len, chunk_size)?;
        plan.iter_mut().for_each(|p| p.held = true);
        return Ok(plan);
    }
    let ingest = status.ingest.clone().unwrap_or_default();
    let parts = ingest.received_parts.clone().unwrap_or_default();
    if !parts.parts.is_empty() {
        *mode = Mode::Parts;
        let mut plan = pieces(len, chunk_size)?;
        let cut_differently = parts.total.is_some_and(|t| t != plan.len() as u64)
            || parts.parts.iter().any(|n| *n > plan.len() as u64);
        if cut_differently {
            return Err(SessionEnd::failed(format!(
                "video `{video_id}` holds parts of an upload cut into {} parts, not the {} parts \
                 of {chunk_size} bytes of this run; re-run with the --chunk-size it was started \
                 with, or delete the video",
                parts.total.map_or_else(|| "an unknown number of".to_owned(), |t| t.to_string()),
                plan.len()
            )));
        }
        for piece in &mut plan {
            piece.held = status.has_part(piece.part.number);
        }
        return Ok(plan);
    }
    if ingest.received_bytes.is_empty() {
        return pieces(len, chunk_size);
    }
    *mode = Mode::Bytes;
    if let Some(other) = ingest.received_bytes.iter().find(|r| r.total != len) {
        return Err(SessionEnd::failed(format!(
            "video `{video_id}` holds the start of a source of {} bytes, but the file has {len}; \
             delete the video or check the row's file",
            other.total
        )));
    }
    let mut held: Vec<std::ops::Range<u64>> =
        ingest.received_bytes.iter().map(|r| r.from..r.to + 1).collect();
    held.sort_by_key(|r| r.start);
    plan_around(len, chunk_size, &held).map_err(|e| {
        SessionEnd::failed(format!("video `{video_id}`: {e}; delete the video to upload it anew"))
    })
}

/// The parts of a prepared row that the server does not hold yet, in order.
async fn transfer(
    ctx: &Ctx,
    job: &Job,
    prepared: Prepared,
    result: &mut RowResult,
) -> Result<(), SessionEnd> {
    let Prepared {
        key,
        body,
        plan,
        mut target,
        mode,
        name,
        with_key,
        identity,
        chunk_size,
        replaces,
        pulled: _,
    } = prepared;
    let total = body.len();
    // A file's contents are fingerprinted as they go out (and what the server held, read from
    // the file); an object's are not: its store's version tag stands for them.
    let file = body.file().cloned();
    let held: u64 =
        plan.iter().filter(|p| p.held).map(|p| p.part.range.end - p.part.range.start).sum();
    let parts = plan.len() as u64;
    let (counted, planned) = (result.journal_held, job.row.sent_here(ctx.config.relay));
    let (index, shown) = (job.index, name.clone());
    let started =
        Event::Started { index, name: shown, bytes: total, parts, held, counted, planned };
    let _ = ctx.events.send(started).await;
    result.parts = plan.iter().filter(|p| p.held).count() as u64;
    result.bytes = held;

    let mut complete = false;
    let mut fingerprint = fingerprint::Fingerprint::new();
    // Pieces before this one are in the fingerprint.
    let mut hashed = 0;
    for (i, piece) in plan.iter().enumerate() {
        if piece.held {
            continue;
        }
        if ctx.stop.is_cancelled() {
            return Err(SessionEnd::Stopped);
        }
        // What the server held before this run is hashed from the file (a resumed upload);
        // what this run sends, as it goes.
        let part = &piece.part;
        let mut hash = None;
        if let Some(file) = &file {
            fingerprint = read_held(fingerprint, file, &plan[hashed..i]).await?;
            hashed = i + 1;
            hash = fingerprint.part(part.range.start);
        }
        complete = send::part(
            ctx,
            job.index,
            &body,
            &mut target,
            part,
            total,
            parts,
            &name,
            mode,
            hash.clone(),
        )
        .await?;
        if let (UploadTarget::Token { video_id: Some(id), .. }, None) = (&target, &result.video_id)
        {
            // A token upload's first chunk made the video: from now on it can be resumed.
            result.video_id = Some(id.clone());
            record_start(ctx, &key, &identity, id, chunk_size, &plan).await?;
        }
        if let Some(file) = &file {
            if !fingerprint.streamed(part.range.clone(), hash.as_ref()) {
                fingerprint = read_held(fingerprint, file, std::slice::from_ref(piece)).await?;
            }
        }
        body.release(part.range.clone());
        let len = part.range.end - part.range.start;
        result.parts += 1;
        result.bytes += len;
        result.sent += len;
        let (k, parts, bytes) = (key.clone(), result.parts, result.bytes);
        journal(ctx, move |j| j.acknowledged(&k, parts, bytes)).await?;
        let _ = ctx.events.send(Event::PartDone { index: job.index, bytes: len }).await;
    }
    if !complete && with_key {
        // The last answer was not the full Video: ask the server before calling it done.
        let id = result.video_id.clone().unwrap_or_default();
        let status = ctx.client.status(&id).await?;
        if !status.is_uploaded() {
            return Err(SessionEnd::failed(format!(
                "every part was acknowledged but the server does not report video `{id}` as \
                 uploaded"
            )));
        }
    }
    let fingerprint = match &file {
        Some(file) => read_held(fingerprint, file, &plan[hashed..]).await?.finish(total),
        None => None,
    };
    result.fingerprint = fingerprint.clone().or(identity.sha256.clone());
    let k = key.clone();
    journal(ctx, move |j| j.done(&k, fingerprint.as_deref())).await?;
    settle_replaced(ctx, &key, replaces, result).await;
    Ok(())
}

/// Adds `pieces` to the fingerprint, read from the file (off the runtime: it reads the disk).
async fn read_held(
    mut fingerprint: fingerprint::Fingerprint,
    file: &Arc<MappedFile>,
    pieces: &[Piece],
) -> Result<fingerprint::Fingerprint, SessionEnd> {
    if pieces.is_empty() {
        return Ok(fingerprint);
    }
    let ranges: Vec<_> = pieces.iter().map(|p| p.part.range.clone()).collect();
    let file = file.clone();
    tokio::task::spawn_blocking(move || {
        for range in ranges {
            fingerprint.read(&file, range);
        }
        fingerprint
    })
    .await
    .map_err(|e| SessionEnd::failed(format!("hashing the file failed: {e}")))
}

/// Writes the row's video and what is already on the server to the journal.
async fn record_start(
    ctx: &Ctx,
    key: &str,
    identity: &FileIdentity,
    video_id: &str,
    chunk_size: u64,
    plan: &[Piece],
) -> Result<(), SessionEnd> {
    let (parts, bytes) = plan
        .iter()
        .filter(|p| p.held)
        .fold((0, 0), |(n, b), p| (n + 1, b + p.part.range.end - p.part.range.start));
    let (k, f, v) = (key.to_owned(), identity.clone(), video_id.to_owned());
    tracing::debug!(key, video_id, parts, "journal: row started");
    journal(ctx, move |j| {
        j.start(&k, &f, &v, chunk_size)?;
        j.acknowledged(&k, parts, bytes)
    })
    .await
    .map(drop)
}
