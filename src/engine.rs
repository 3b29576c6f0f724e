//! The upload engine: many video sessions at once, each sending its parts strictly in order.
//!
//! One task per video. A `--concurrency` permit is taken before the task is spawned and lives as
//! long as the task, so at most that many videos (and so that many parts) are in flight. Tasks
//! share one [`Client`] (one connection pool, one limiter) and report through [`Event`]s; the
//! reporter is the only code that touches the terminal.
//!
//! Stopping: `stop` (first Ctrl-C) starts no new video and no new part, and lets parts in flight
//! finish; the client's abort token (second Ctrl-C) cancels the requests in flight.

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::api::{ApiError, Client, Metadata, NewVideo, UploadTarget, Video, VideoStatus};
use crate::chunk::{plan_parts, MappedFile, PartPlan};
use crate::limit::Limiter;
use crate::manifest::Row;
use crate::secret::Token;

/// Metadata key under which each video carries its row's idempotency key.
pub const KEY_METADATA: &str = "avbatch_key";

/// How many times a create that may have reached the server is looked up and tried again.
const CREATE_LOOKUPS: u32 = 3;

/// Pages are handed back to the kernel in slices of this size, one slice behind the sender.
const RELEASE_SLICE: u64 = 8 * 1024 * 1024;

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RowStatus {
    /// Every byte is on the server.
    Uploaded,
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
    let permits = Arc::new(Semaphore::new(config.concurrency.max(1)));
    let ctx = Arc::new(Ctx { client, config, limiter, events, stop });
    let mut tasks = JoinSet::new();
    let mut results: Vec<RowResult> = Vec::with_capacity(jobs.len());
    let mut pending = jobs.into_iter();
    for job in pending.by_ref() {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => p.expect("the semaphore is never closed"),
            () = ctx.stop.cancelled() => { results.push(not_started(&job)); break; }
        };
        if ctx.stop.is_cancelled() {
            results.push(not_started(&job));
            break;
        }
        let ctx = ctx.clone();
        tasks.spawn(async move {
            let _permit = permit;
            let result = upload_row(&ctx, &job).await;
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
    fn new(index: usize, status: RowStatus) -> Self {
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
async fn upload_row(ctx: &Ctx, job: &Job) -> RowResult {
    let started = Instant::now();
    let mut result = RowResult::new(job.index, RowStatus::Failed);
    let outcome = session(ctx, job, &mut result).await;
    result.seconds = started.elapsed().as_secs_f64();
    match outcome {
        Ok(()) => result.status = RowStatus::Uploaded,
        Err(SessionEnd::Stopped) if result.video_id.is_none() => result.status = RowStatus::Pending,
        Err(SessionEnd::Stopped) => result.status = RowStatus::Interrupted,
        Err(SessionEnd::Failed { message, auth }) => {
            result.status = RowStatus::Failed;
            result.error = Some(message);
            result.auth_failure = auth;
        }
    }
    result
}

enum SessionEnd {
    Stopped,
    Failed { message: String, auth: bool },
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

async fn session(ctx: &Ctx, job: &Job, result: &mut RowResult) -> Result<(), SessionEnd> {
    if ctx.stop.is_cancelled() {
        return Err(SessionEnd::Stopped);
    }
    let row = job.row.clone();
    let path = row.path.clone();
    let file = tokio::task::spawn_blocking(move || MappedFile::open(&path))
        .await
        .map_err(|e| SessionEnd::failed(format!("mapping the file failed: {e}")))?
        .map_err(|e| SessionEnd::failed(format!("cannot open `{}`: {e}", row.path_text)))?;
    if file.len() != row.size {
        return Err(SessionEnd::failed(format!(
            "`{}` changed since the manifest was checked: {} bytes then, {} now",
            row.path_text,
            row.size,
            file.len()
        )));
    }
    let file = Arc::new(file);
    let plan = plan_parts(file.len(), ctx.config.chunk_size).map_err(|e| SessionEnd::failed(e.to_string()))?;
    result.parts_total = plan.len() as u64;
    let name = row.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| row.path_text.clone());
    let _ = ctx.events.send(Event::Started { index: job.index, name: name.clone(), bytes: file.len(), parts: plan.len() as u64 }).await;

    let mut target = match (&ctx.config.upload_token, ctx.client.has_api_key()) {
        (Some(token), true) => UploadTarget::Token { token: token.clone(), video_id: Some(create_video(ctx, &row).await?) },
        (Some(token), false) => UploadTarget::Token { token: token.clone(), video_id: None },
        (None, _) => UploadTarget::Video(create_video(ctx, &row).await?),
    };
    if let UploadTarget::Video(id) | UploadTarget::Token { video_id: Some(id), .. } = &target {
        result.video_id = Some(id.clone());
    }

    let total = file.len();
    let mut complete = false;
    for part in &plan {
        if ctx.stop.is_cancelled() {
            return Err(SessionEnd::Stopped);
        }
        complete = send_part(ctx, &file, &mut target, part, total, plan.len() as u64, &name).await?;
        if let UploadTarget::Token { video_id: Some(id), .. } = &target {
            result.video_id = Some(id.clone());
        }
        file.release(part.range.clone());
        result.parts += 1;
        result.bytes += part.range.end - part.range.start;
        let _ = ctx.events.send(Event::PartDone { index: job.index, bytes: part.range.end - part.range.start }).await;
    }
    if !complete {
        // The last answer was not the full Video: ask the server before calling it done.
        let id = result.video_id.clone().unwrap_or_default();
        let status = ctx.client.status(&id).await?;
        if !status.is_uploaded() {
            return Err(SessionEnd::failed(format!("every part was acknowledged but the server does not report video `{id}` as uploaded")));
        }
    }
    Ok(())
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

/// The slug of a refusal that, after a retry, may only mean "the first attempt got through".
fn already_received(e: &ApiError) -> bool {
    e.attempts() > 1
        && matches!(
            e.slug(),
            Some(
                "video-content-range-by-part-part-already-sent"
                    | "video-content-range-by-bytes-range-overlap"
                    | "video-source-already-uploaded"
            )
        )
}

/// Sends one part (with the client's retries). Returns whether the server called the source
/// complete.
async fn send_part(
    ctx: &Ctx,
    file: &Arc<MappedFile>,
    target: &mut UploadTarget,
    part: &PartPlan,
    total: u64,
    count: u64,
    name: &str,
) -> Result<bool, SessionEnd> {
    let range = part.range.clone();
    let header = match ctx.config.mode {
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
        Err(e) if already_received(&e) => {
            // An earlier attempt reached the server before its connection broke. Confirm it from
            // the server's own record rather than trusting the refusal.
            let id = match target {
                UploadTarget::Video(id) | UploadTarget::Token { video_id: Some(id), .. } => id.clone(),
                UploadTarget::Token { video_id: None, .. } => return Err(e.into()),
            };
            let status: VideoStatus = ctx.client.status(&id).await?;
            let there = match ctx.config.mode {
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
/// handing pages back to the kernel one slice behind what was sent.
fn paced(bytes: Bytes, file_offset: u64, limiter: Arc<Limiter>, map: Arc<MappedFile>) -> BoxStream<'static, Result<Bytes, std::io::Error>> {
    let slice = limiter.byte_slice().unwrap_or(RELEASE_SLICE).clamp(1, RELEASE_SLICE);
    let len = bytes.len() as u64;
    let ranges: Vec<Range<u64>> = (0..len.div_ceil(slice)).map(|i| i * slice..((i + 1) * slice).min(len)).collect();
    stream::iter(ranges.into_iter().enumerate())
        .then(move |(i, r)| {
            let bytes = bytes.clone();
            let limiter = limiter.clone();
            let map = map.clone();
            async move {
                if i >= 2 {
                    let behind = (i as u64 - 2) * slice;
                    map.release(file_offset + behind..file_offset + behind + slice);
                }
                limiter.take_bytes(r.end - r.start).await;
                Ok(bytes.slice(r.start as usize..r.end as usize))
            }
        })
        .boxed()
}
