//! The upload engine: many video sessions at once, each sending its parts strictly in order.
//!
//! One task per video, in two steps. [`prepare`] does everything before the first byte: map and
//! check the file, consult the journal, find the video by its key or create it, ask what the
//! server holds. [`transfer`] then sends the parts in a *lane*. `--concurrency` bounds both: at
//! most N videos send parts at once (so at most N parts are in flight), and at most N more are
//! prepared ahead of them. A lane thus goes from one video's last part straight to the next
//! video's first part, and the lookup and create round trips overlap the uploads instead of
//! leaving a connection idle. Tasks share one [`Client`] (one connection pool, one limiter) and
//! report through [`Event`]s; the reporter is the only code that touches the terminal.
//!
//! Stopping: `stop` (first Ctrl-C) starts no new video and no new part, and lets parts in flight
//! finish; the client's abort token (second Ctrl-C) cancels the requests in flight.

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::api::{ApiError, Client, Metadata, NewVideo, UploadTarget, Video, VideoStatus};
use crate::chunk::{plan_parts, MappedFile, PartPlan};
use crate::journal::{FileIdentity, Journal, JournalError, State};
use crate::limit::Limiter;
use crate::manifest::Row;
use crate::secret::Token;

/// Metadata key under which each video carries its row's idempotency key.
pub const KEY_METADATA: &str = "avbatch_key";

/// How many times a create that may have reached the server is looked up and tried again.
const CREATE_LOOKUPS: u32 = 3;

/// Pages are handed back to the kernel in slices of this size, two slices behind the one being
/// sent, so at most three slices (12 MiB) of a video's file are resident at once. 8 MiB slices
/// held 60 MiB at `-c 4`, 4 MiB hold 41 MiB; 2 MiB held 25 MiB but cost one stream of 4 GiB
/// about a tenth of its speed on loopback.
const RELEASE_SLICE: u64 = 4 * 1024 * 1024;
/// The short last slice of a part, sent after the file is checked one last time.
const CHECK_TAIL: u64 = 64 * 1024;

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
    /// Upload rows whose file changed since the journal recorded them, as new videos.
    pub force: bool,
    /// Identify files by SHA-256 of their contents too.
    pub checksum: bool,
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
    /// Every byte is on the server.
    Uploaded,
    /// Already uploaded by an earlier run (per the journal): nothing sent.
    Skipped,
    /// A permanent error, or retries exhausted.
    Failed,
    /// Stopped by Ctrl-C or SIGTERM; a re-run resumes it.
    Interrupted,
    /// Not started (the run stopped first).
    Pending,
}

/// The outcome of one row.
#[derive(Debug, Clone)]
pub struct RowResult {
    /// Index of the row in the manifest.
    pub index: usize,
    /// How it ended.
    pub status: RowStatus,
    /// The video, once created.
    pub video_id: Option<String>,
    /// Bytes the server acknowledged.
    pub bytes: u64,
    /// Parts the server acknowledged.
    pub parts: u64,
    /// Parts planned.
    pub parts_total: u64,
    /// Time spent on the row.
    pub seconds: f64,
    /// What went wrong.
    pub error: Option<String>,
    /// Whether it failed because the server refused the credentials.
    pub auth_failure: bool,
}

/// Progress, sent by video tasks to the reporter.
#[derive(Debug, Clone)]
pub enum Event {
    /// A video session started.
    Started {
        /// Row index.
        index: usize,
        /// Display name.
        name: String,
        /// File size.
        bytes: u64,
        /// Parts planned.
        parts: u64,
    },
    /// A part was acknowledged.
    PartDone {
        /// Row index.
        index: usize,
        /// Its size.
        bytes: u64,
    },
    /// A row ended.
    Finished(RowResult),
}

/// Shared by every video task.
struct Ctx {
    client: Client,
    config: EngineConfig,
    limiter: Arc<Limiter>,
    events: mpsc::Sender<Event>,
    stop: CancellationToken,
}

/// Runs `jobs`, at most `concurrency` at once, and returns one result per job (in job order).
pub async fn run(
    client: Client,
    limiter: Arc<Limiter>,
    config: EngineConfig,
    jobs: Vec<Job>,
    events: mpsc::Sender<Event>,
    stop: CancellationToken,
) -> Vec<RowResult> {
    let lanes = Arc::new(Semaphore::new(config.concurrency.max(1)));
    let ahead = Arc::new(Semaphore::new(config.concurrency.max(1)));
    let ctx = Arc::new(Ctx { client, config, limiter, events, stop });
    let mut tasks = JoinSet::new();
    let mut results: Vec<RowResult> = Vec::with_capacity(jobs.len());
    let mut pending = jobs.into_iter();
    for job in pending.by_ref() {
        let permit = tokio::select! {
            p = ahead.clone().acquire_owned() => p.expect("the semaphore is never closed"),
            () = ctx.stop.cancelled() => { results.push(not_started(&job)); break; }
        };
        if ctx.stop.is_cancelled() {
            results.push(not_started(&job));
            break;
        }
        let ctx = ctx.clone();
        let lanes = lanes.clone();
        tasks.spawn(async move {
            let result = upload_row(&ctx, &job, permit, lanes).await;
            let _ = ctx.events.send(Event::Finished(result.clone())).await;
            result
        });
    }
    results.extend(pending.map(|job| not_started(&job)));
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(result) => results.push(result),
            // A panic in one task must not hide the others' results; it is logged and that row
            // is missing from the results, which the caller reports as failed.
            Err(e) => tracing::error!(%e, "an upload task panicked"),
        }
    }
    results.sort_by_key(|r| r.index);
    results
}

impl RowResult {
    /// A result with nothing done yet.
    pub(crate) fn new(index: usize, status: RowStatus) -> Self {
        RowResult { index, status, video_id: None, bytes: 0, parts: 0, parts_total: 0, seconds: 0.0, error: None, auth_failure: false }
    }
}

fn not_started(job: &Job) -> RowResult {
    RowResult::new(job.index, RowStatus::Pending)
}

/// The creation payload for a row, with its idempotency key in the metadata.
pub fn new_video(row: &Row) -> NewVideo {
    let mut metadata: Vec<Metadata> = row.metadata.iter().map(|(k, v)| Metadata { key: k.clone(), value: v.clone() }).collect();
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
    }
}

/// One video session, start to finish. Never panics on I/O or network failures: every one
/// becomes the row's error.
async fn upload_row(ctx: &Ctx, job: &Job, ahead: OwnedSemaphorePermit, lanes: Arc<Semaphore>) -> RowResult {
    let started = Instant::now();
    let mut result = RowResult::new(job.index, RowStatus::Failed);
    let mut waited = Duration::ZERO;
    let outcome = session(ctx, job, ahead, lanes, &mut result, &mut waited).await;
    result.seconds = started.elapsed().saturating_sub(waited).as_secs_f64();
    match outcome {
        Ok(()) => result.status = RowStatus::Uploaded,
        Err(SessionEnd::AlreadyDone) => result.status = RowStatus::Skipped,
        Err(SessionEnd::Stopped) if result.video_id.is_none() => result.status = RowStatus::Pending,
        Err(SessionEnd::Stopped) => result.status = RowStatus::Interrupted,
        Err(SessionEnd::Failed { message, auth }) => {
            if result.video_id.is_some() {
                let (key, error) = (job.row.key(), message.clone());
                if let Err(SessionEnd::Failed { message, .. }) = journal(ctx, move |j| j.finish(&key, State::Failed, Some(&error))).await {
                    tracing::warn!(row = job.row.line, "cannot record the failure in the journal: {message}");
                }
            }
            result.status = RowStatus::Failed;
            result.error = Some(message);
            result.auth_failure = auth;
        }
    }
    tracing::debug!(row = job.row.line, key = job.row.key(), status = ?result.status, video_id = result.video_id.as_deref(), "row ended");
    result
}

enum SessionEnd {
    /// The journal says an earlier run finished this row.
    AlreadyDone,
    Stopped,
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

/// An error and its causes on one line.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cause = c.source();
    }
    s
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

/// A row refused because its file is not the one the journal saw uploaded.
fn changed_since_uploaded(row: &Row, before: &crate::journal::Entry, now: &FileIdentity) -> SessionEnd {
    SessionEnd::failed(format!(
        "`{}` changed since it was uploaded to video `{}` ({} bytes then, {} now, or other contents or modification time); pass --force to upload it again as a new video",
        row.path_text,
        before.video_id.as_deref().unwrap_or("-"),
        before.file.size,
        now.size
    ))
}

/// The file's identity as the journal keeps it.
fn identity(row: &Row) -> FileIdentity {
    let mtime_ns = row.mtime.and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map_or(0, |d| d.as_nanos() as i64);
    FileIdentity { path: row.path_text.clone(), size: row.size, mtime_ns, sha256: None }
}

/// What the server already holds of a video, per planned part; `None` if the video is gone.
async fn server_holds(ctx: &Ctx, video_id: &str, plan: &[PartPlan], mode: &mut Mode) -> Result<Option<(Vec<bool>, bool)>, SessionEnd> {
    let status = match ctx.client.status(video_id).await {
        Ok(s) => s,
        Err(e) if e.status().map(|s| s.as_u16()) == Some(404) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let ingest = status.ingest.clone().unwrap_or_default();
    let parts = ingest.received_parts.clone().unwrap_or_default().parts;
    // Follow the mode the video was started in, whatever this run's flag says.
    if !parts.is_empty() {
        *mode = Mode::Parts;
    } else if !ingest.received_bytes.is_empty() {
        *mode = Mode::Bytes;
    }
    let held: Vec<bool> = plan
        .iter()
        .map(|p| match mode {
            Mode::Bytes => status.has_range(p.range.start, p.range.end - 1),
            Mode::Parts => status.has_part(p.number),
        })
        .collect();
    let matched = held.iter().filter(|h| **h).count();
    if matched < parts.len().max(ingest.received_bytes.len()) {
        return Err(SessionEnd::failed(format!(
            "video `{video_id}` holds chunks cut differently from parts of {} bytes; re-run with the --chunk-size it was started with, or delete the video",
            plan.first().map_or(0, |p| p.range.end - p.range.start)
        )));
    }
    Ok(Some((held, status.is_uploaded())))
}

/// A row's session: prepared ahead (holding an `ahead` permit), then its parts sent in a lane.
/// `waited` is the time spent between the two, waiting for a lane.
async fn session(
    ctx: &Ctx,
    job: &Job,
    ahead: OwnedSemaphorePermit,
    lanes: Arc<Semaphore>,
    result: &mut RowResult,
    waited: &mut Duration,
) -> Result<(), SessionEnd> {
    let prepared = prepare(ctx, job, result).await?;
    if prepared.held.iter().all(|h| *h) {
        // The server holds every part (a re-run without its journal): nothing to send, so no
        // lane to wait for behind long uploads.
        drop(ahead);
        return transfer(ctx, job, prepared, result).await;
    }
    let wait = Instant::now();
    let _lane = tokio::select! {
        p = lanes.acquire_owned() => p.expect("the semaphore is never closed"),
        () = ctx.stop.cancelled() => return Err(SessionEnd::Stopped),
    };
    drop(ahead);
    *waited = wait.elapsed();
    if ctx.stop.is_cancelled() {
        return Err(SessionEnd::Stopped);
    }
    transfer(ctx, job, prepared, result).await
}

/// A row made ready to send: its file mapped and checked, its video found or created and
/// recorded in the journal, and what the server already holds of it known.
struct Prepared {
    key: String,
    file: Arc<MappedFile>,
    plan: Vec<PartPlan>,
    held: Vec<bool>,
    target: UploadTarget,
    mode: Mode,
    name: String,
    identity: FileIdentity,
    chunk_size: u64,
    with_key: bool,
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
    let key = row.key();
    let identity = identity(&row);

    // 1. The file, mapped (and hashed with --checksum).
    let path = row.path.clone();
    let mut file = tokio::task::spawn_blocking(move || MappedFile::open(&path))
        .await
        .map_err(|e| SessionEnd::failed(format!("mapping the file failed: {e}")))?
        .map_err(|e| SessionEnd::failed(format!("cannot open `{}`: {e}", row.path_text)))?;
    if file.len() != row.size || (row.mtime.is_some() && file.modified() != row.mtime) {
        return Err(SessionEnd::failed(format!(
            "`{}` changed since the manifest was checked ({} bytes then, {} now, or a new modification time); nothing was sent",
            row.path_text,
            row.size,
            file.len()
        )));
    }
    let mut identity = identity;
    if ctx.config.checksum {
        let (f, sha) = tokio::task::spawn_blocking(move || {
            let sha = file.sha256();
            (file, sha)
        })
        .await
        .map_err(|e| SessionEnd::failed(format!("hashing the file failed: {e}")))?;
        file = f;
        identity.sha256 = Some(sha);
    }

    // 2. The journal: a finished row is skipped, a changed file refused unless --force, and a
    //    started video resumed.
    let lookup_key = key.clone();
    let keyed_by_file = row.id.is_none();
    let lookup_path = row.path_text.clone();
    let (entry, before) = journal(ctx, move |j| {
        let entry = j.get(&lookup_key)?;
        // Without an `id` the key changes with the file: find what this path held before.
        let before = if entry.is_none() && keyed_by_file { j.latest_for_path(&lookup_path, &lookup_key)? } else { None };
        Ok::<_, crate::journal::JournalError>((entry, before))
    })
    .await?
    .unwrap_or_default();
    if let Some(e) = before.as_ref().filter(|e| !e.file.same_file(&identity) && !ctx.config.force) {
        return Err(changed_since_uploaded(&row, e, &identity));
    }
    // The same contents under a new key (a touched file, with --checksum): the earlier upload
    // stands for it.
    let entry = entry.or_else(|| before.filter(|e| e.file.same_file(&identity)));
    let mut video_id = None;
    let mut chunk_size = ctx.config.chunk_size;
    let mut fresh = false;
    if let Some(e) = &entry {
        if !e.file.same_file(&identity) {
            if !ctx.config.force {
                return Err(changed_since_uploaded(&row, e, &identity));
            }
            fresh = true;
        } else {
            if e.state == State::Done {
                result.video_id = e.video_id.clone();
                result.bytes = e.bytes_done;
                result.parts = e.parts_done;
                result.parts_total = e.parts_done;
                return Err(SessionEnd::AlreadyDone);
            }
            video_id = e.video_id.clone();
            chunk_size = e.chunk_size;
        }
    }

    // 3. The plan.
    let file = Arc::new(file);
    let plan = plan_parts(file.len(), chunk_size).map_err(|e| SessionEnd::failed(e.to_string()))?;
    result.parts_total = plan.len() as u64;
    let name = row.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| row.path_text.clone());

    // 4. The video: the journal's, else one already made for this key (the journal may have
    //    been lost), else a new one; and what the server already holds of it.
    let mut mode = ctx.config.mode;
    let mut held = vec![false; plan.len()];
    let with_key = ctx.client.has_api_key();
    if with_key && video_id.is_none() && !fresh {
        video_id = ctx.client.find_by_metadata(KEY_METADATA, &key).await?.into_iter().next().map(|v| v.video_id);
    }
    if let (Some(id), true) = (video_id.clone(), with_key) {
        match server_holds(ctx, &id, &plan, &mut mode).await? {
            Some((h, uploaded)) => {
                held = h;
                if uploaded {
                    held = vec![true; plan.len()];
                }
            }
            None => video_id = None,
        }
    } else if let (Some(e), Some(_)) = (&entry, &video_id) {
        // Without an API key the server cannot be asked; the journal's count is the record.
        for h in held.iter_mut().take(e.parts_done as usize) {
            *h = true;
        }
    }
    let resumed = video_id.is_some();
    if video_id.is_none() && with_key {
        video_id = Some(create_video(ctx, &row).await?);
    }
    let target = match (&ctx.config.upload_token, video_id.clone()) {
        (Some(token), id) => UploadTarget::Token { token: token.clone(), video_id: id },
        (None, Some(id)) => UploadTarget::Video(id),
        (None, None) => return Err(SessionEnd::failed("no API key and no upload token")),
    };
    result.video_id = video_id.clone();
    if let Some(id) = &video_id {
        record_start(ctx, &key, &identity, id, chunk_size, resumed, &plan, &held).await?;
    }
    Ok(Prepared { key, file, plan, held, target, mode, name, identity, chunk_size, with_key })
}

/// The parts of a prepared row that the server does not hold yet, in order.
async fn transfer(ctx: &Ctx, job: &Job, prepared: Prepared, result: &mut RowResult) -> Result<(), SessionEnd> {
    let Prepared { key, file, plan, held, mut target, mode, name, identity, chunk_size, with_key } = prepared;
    let _ = ctx.events.send(Event::Started { index: job.index, name: name.clone(), bytes: file.len(), parts: plan.len() as u64 }).await;
    for (part, _) in plan.iter().zip(&held).filter(|(_, h)| **h) {
        result.parts += 1;
        result.bytes += part.range.end - part.range.start;
        let _ = ctx.events.send(Event::PartDone { index: job.index, bytes: part.range.end - part.range.start }).await;
    }

    let total = file.len();
    let mut complete = held.iter().all(|h| *h);
    for (part, _) in plan.iter().zip(&held).filter(|(_, h)| !**h) {
        if ctx.stop.is_cancelled() {
            return Err(SessionEnd::Stopped);
        }
        complete = send_part(ctx, &file, &mut target, part, total, plan.len() as u64, &name, mode).await?;
        if let (UploadTarget::Token { video_id: Some(id), .. }, None) = (&target, &result.video_id) {
            // A token upload's first chunk made the video: from now on it can be resumed.
            result.video_id = Some(id.clone());
            record_start(ctx, &key, &identity, id, chunk_size, false, &plan, &held).await?;
        }
        file.release(part.range.clone());
        result.parts += 1;
        result.bytes += part.range.end - part.range.start;
        let (k, parts, bytes) = (key.clone(), result.parts, result.bytes);
        journal(ctx, move |j| j.acknowledged(&k, parts, bytes)).await?;
        let _ = ctx.events.send(Event::PartDone { index: job.index, bytes: part.range.end - part.range.start }).await;
    }
    if !complete && with_key {
        // The last answer was not the full Video: ask the server before calling it done.
        let id = result.video_id.clone().unwrap_or_default();
        let status = ctx.client.status(&id).await?;
        if !status.is_uploaded() {
            return Err(SessionEnd::failed(format!("every part was acknowledged but the server does not report video `{id}` as uploaded")));
        }
    }
    let k = key.clone();
    journal(ctx, move |j| j.finish(&k, State::Done, None)).await?;
    Ok(())
}

/// Writes the row's video and what is already on the server to the journal.
#[allow(clippy::too_many_arguments)]
async fn record_start(
    ctx: &Ctx,
    key: &str,
    identity: &FileIdentity,
    video_id: &str,
    chunk_size: u64,
    resumed: bool,
    plan: &[PartPlan],
    held: &[bool],
) -> Result<(), SessionEnd> {
    let (parts, bytes) = plan.iter().zip(held).filter(|(_, h)| **h).fold((0, 0), |(n, b), (p, _)| (n + 1, b + p.range.end - p.range.start));
    let (k, f, v) = (key.to_owned(), identity.clone(), video_id.to_owned());
    tracing::debug!(key, video_id, resumed, parts, "journal: row started");
    journal(ctx, move |j| {
        j.start(&k, &f, &v, chunk_size)?;
        j.acknowledged(&k, parts, bytes)
    })
    .await
    .map(drop)
}

/// Creates the row's video. If the create may have reached the server before failing, looks
/// the video up by its key rather than risk a duplicate.
async fn create_video(ctx: &Ctx, row: &Row) -> Result<String, SessionEnd> {
    let payload = new_video(row);
    let key = row.key();
    for _ in 0..=CREATE_LOOKUPS {
        match ctx.client.create_video(&payload).await {
            Ok(video) => return Ok(video.video_id),
            Err(ApiError::Transport { maybe_sent: true, .. }) => {
                tracing::debug!(row = row.line, "create may have reached the server; looking it up by key");
                let found: Vec<Video> = ctx.client.find_by_metadata(KEY_METADATA, &key).await?;
                if let Some(video) = found.into_iter().next() {
                    return Ok(video.video_id);
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(SessionEnd::failed("creating the video kept failing after the request was sent"))
}

/// A refusal that may only mean "these bytes are already there": an earlier attempt of this run
/// got through before its connection broke, or a killed run's last request was still in the
/// kernel's buffers and the server finished receiving it after that run died (and after this
/// run asked what the server holds). Either way the server's own record decides, not the slug.
fn already_received(e: &ApiError) -> bool {
    matches!(
        e.slug(),
        Some(
            "video-content-range-by-part-part-already-sent"
                | "video-content-range-by-bytes-range-overlap"
                | "video-source-already-uploaded"
        )
    )
}

/// The row's end when its file changed under a part.
fn file_changed(e: crate::chunk::FileChanged, target: &UploadTarget, part: &PartPlan) -> SessionEnd {
    let video = match target {
        UploadTarget::Video(id) | UploadTarget::Token { video_id: Some(id), .. } => format!("video `{id}`"),
        UploadTarget::Token { video_id: None, .. } => "no video".to_owned(),
    };
    SessionEnd::failed(format!(
        "{e}: part {} was broken off, so {video} stays incomplete and never plays; re-run with --force to upload the file as it is now as a new video",
        part.number
    ))
}

/// Sends one part (with the client's retries). Returns whether the server called the source
/// complete.
#[allow(clippy::too_many_arguments)]
async fn send_part(
    ctx: &Ctx,
    file: &Arc<MappedFile>,
    target: &mut UploadTarget,
    part: &PartPlan,
    total: u64,
    count: u64,
    name: &str,
    mode: Mode,
) -> Result<bool, SessionEnd> {
    let range = part.range.clone();
    file.check().map_err(|e| file_changed(e, target, part))?;
    let header = match mode {
        Mode::Bytes => format!("bytes {}-{}/{}", range.start, range.end - 1, total),
        Mode::Parts => format!("part {}/{}", part.number, count),
    };
    let bytes = file.slice(range.clone());
    let limiter = ctx.limiter.clone();
    let map = file.clone();
    let start = range.start;
    let body = move || paced(bytes.clone(), start, limiter.clone(), map.clone());
    match ctx.client.upload_chunk(target, Some(&header), name, range.end - range.start, &body).await {
        Ok(answer) => {
            if let UploadTarget::Token { video_id, .. } = target {
                video_id.get_or_insert(answer.video_id);
            }
            Ok(answer.complete)
        }
        Err(e) if file.check().is_err() => {
            tracing::debug!(error = %e, "the part failed because its file changed");
            Err(file.check().map_err(|e| file_changed(e, target, part)).unwrap_err())
        }
        Err(e) if already_received(&e) => {
            // Some earlier request delivered this part (see `already_received`). Confirm it from
            // the server's own record rather than trusting the refusal.
            let id = match target {
                UploadTarget::Video(id) | UploadTarget::Token { video_id: Some(id), .. } => id.clone(),
                UploadTarget::Token { video_id: None, .. } => return Err(e.into()),
            };
            let status: VideoStatus = ctx.client.status(&id).await?;
            let there = match mode {
                Mode::Bytes => status.has_range(range.start, range.end - 1),
                Mode::Parts => status.has_part(part.number),
            };
            if there || status.is_uploaded() {
                tracing::debug!(video = %id, header, "part confirmed by status after a retry");
                Ok(status.is_uploaded())
            } else {
                Err(e.into())
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// The part's bytes as a stream of slices: paced by the byte limiter when there is one, and
/// handing pages back to the kernel two slices behind the one being sent.
fn paced(bytes: Bytes, file_offset: u64, limiter: Arc<Limiter>, map: Arc<MappedFile>) -> BoxStream<'static, Result<Bytes, std::io::Error>> {
    let slice = limiter.byte_slice().unwrap_or(RELEASE_SLICE).clamp(1, RELEASE_SLICE);
    let len = bytes.len() as u64;
    let mut ranges: Vec<Range<u64>> = (0..len.div_ceil(slice)).map(|i| i * slice..((i + 1) * slice).min(len)).collect();
    // The last check (below) comes before a short last slice, so what leaves after it is that
    // slice and what the HTTP stack still holds of earlier ones (a few hundred KiB at most).
    if let Some(last) = ranges.pop() {
        let cut = last.end.saturating_sub(CHECK_TAIL).max(last.start);
        ranges.extend([last.start..cut, cut..last.end].into_iter().filter(|r| !r.is_empty()));
    }
    let ranges = Arc::new(ranges);
    stream::iter(0..ranges.len())
        .then(move |i| {
            let bytes = bytes.clone();
            let limiter = limiter.clone();
            let map = map.clone();
            let ranges = ranges.clone();
            async move {
                let r = ranges[i].clone();
                // Before the first and the last slice: a part read from a file that changed must
                // never be completed, so its body breaks off and the server drops it.
                if i == 0 || r.end == len {
                    map.check().map_err(std::io::Error::other)?;
                }
                if let Some(behind) = i.checked_sub(2).map(|j| &ranges[j]) {
                    map.release(file_offset + behind.start..file_offset + behind.end);
                }
                limiter.take_bytes(r.end - r.start).await;
                Ok(bytes.slice(r.start as usize..r.end as usize))
            }
        })
        .boxed()
}
