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
//! Files: [`row`] (a row's life: its session, then its fields and assets, its encoding, the
//! status it ends with), [`prepare`], [`transfer`] and [`send`] (one part), [`video`] (found
//! or made, by key: [`keys`]), [`assets`], [`actions`] (`update`, `delete`), [`encoding`]
//! (`--wait`, `--max-processing`), [`body`] (a file or an object), [`pull`] (a source api.video
//! fetches, waited for until it holds it), [`fingerprint`].
//!
//! Stopping: `stop` (first Ctrl-C) starts no new video and no new part, and lets parts in flight
//! finish without trying a failed one again; the client's abort token (second Ctrl-C) cancels
//! the requests in flight.

mod actions;
mod assets;
mod body;
mod encoding;
mod fingerprint;
mod keys;
mod prepare;
mod pull;
mod row;
mod send;
mod transfer;
mod video;

pub use actions::{field_changes, fields_held, journaled_for_delete, to_delete, Journaled};
pub use assets::{digests as asset_digests, marked as assets_marked, names as asset_names};
use prepare::{listed, prepare, settle_replaced, Prepared};
pub use prepare::{replaces_unusable, unusable};
use row::{changed_since_uploaded, identity, journal, timestamp, upload_row, SessionEnd};
use transfer::{pieces, plan_held, record_start, transfer};

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::chunk::{plan_around, plan_parts, MappedFile, Piece};
pub use crate::client::error_chain;
use crate::client::{ApiError, Client, UploadTarget};
use crate::journal::{FileIdentity, Journal, JournalError, State};
use crate::limit::Limiter;
use crate::manifest::{Row, RowAction};
use crate::remote::Stores;
pub use assets::ASSETS_METADATA;
use avbatch_api::secret::Token;
use avbatch_api::{Metadata, NewVideo, Progress, VideoStatus};
use body::{Body, Object};
use encoding::Waited;
pub use encoding::{held_for_encoding, WaitFor};
pub use pull::fetching as pulls_being_fetched;
pub use video::REPLACED_KEY_METADATA;

pub use crate::marks::{KEY_METADATA, OWN_METADATA};

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
    /// `--pull-timeout`: how long api.video is given to fetch a pulled source, beyond a second
    /// per MiB of it.
    pub pull_timeout: Duration,
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
    /// Its video's fields were changed (`upsert`, `update`), or its thumbnail and tracks sent,
    /// its source complete before this run; nothing uploaded.
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
    /// A row the journal records as done before this run: when, by which run, how, and its
    /// assets.
    pub earlier: Option<crate::journal::History>,
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
    /// This run's mark on the videos it makes ([`crate::marks::RUN_METADATA`]).
    run_mark: String,
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
    /// Cancelled when the journal could not be written: no video is started after that, since
    /// none could be recorded (see [`row::journal`]).
    halt: CancellationToken,
    /// Why the journal could not be written, the first time.
    journal_failure: std::sync::OnceLock<String>,
}

impl Ctx {
    /// Whether rows must start nothing new: stopped, or the journal broke.
    fn halted(&self) -> bool {
        self.stop.is_cancelled() || self.halt.is_cancelled()
    }
}

/// Runs the jobs `jobs` yields, in their order, at most `concurrency` at once: the next job is
/// taken only when there is room to prepare it, so jobs can be read from a manifest of any length
/// as lanes free up. Each row's result goes to `results` as the row ends. Returns when every job
/// taken has ended; after `stop` no job is taken, and the jobs never taken have no result (they
/// were not started). Returns why the journal could not be written, if it could not: the run
/// then stopped taking jobs, and its rows under way started no video.
pub async fn run(
    client: Client,
    limiter: Arc<Limiter>,
    config: EngineConfig,
    mut jobs: mpsc::Receiver<Job>,
    events: mpsc::Sender<Event>,
    results: mpsc::Sender<RowResult>,
    stop: CancellationToken,
) -> Option<String> {
    let lanes = Arc::new(Semaphore::new(config.concurrency.max(1)));
    let ahead = Arc::new(Semaphore::new(config.concurrency.max(1)));
    let run_mark = crate::marks::run_mark();
    let keys = keys::Keys::new(client.clone(), run_mark.clone(), jobs.len() as u64);
    let processing = config.max_processing.map(|n| Arc::new(Semaphore::new(n.max(1))));
    let stores = Stores::from_env();
    let ctx = Arc::new(Ctx {
        client,
        run_mark,
        keys,
        config,
        limiter,
        events,
        stop,
        processing,
        stores,
        halt: CancellationToken::new(),
        journal_failure: std::sync::OnceLock::new(),
    });
    let mut tasks = JoinSet::new();
    // The row of each task, so a task that panics still gets a result.
    let mut rows: HashMap<tokio::task::Id, usize> = HashMap::new();
    loop {
        let permit = tokio::select! {
            p = ahead.clone().acquire_owned() => p.expect("the semaphore is never closed"),
            () = ctx.stop.cancelled() => break,
            () = ctx.halt.cancelled() => break,
            () = until(ctx.config.start_until) => break,
        };
        let job = tokio::select! {
            job = jobs.recv() => match job {
                Some(job) => job,
                None => break,
            },
            () = ctx.stop.cancelled() => break,
            () = ctx.halt.cancelled() => break,
            () = until(ctx.config.start_until) => break,
        };
        if ctx.halted() || ctx.config.start_until.is_some_and(|t| Instant::now() >= t) {
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
    ctx.journal_failure.get().cloned()
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
    pub fn new(index: usize, status: RowStatus) -> Self {
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
            earlier: None,
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
