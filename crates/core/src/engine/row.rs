//! One row's life: its session (prepared, then sent), its fields and assets, its encoding
//! followed, and the status it ends with; `update` and `delete` rows acted on.

use super::*;

/// One row, start to finish. Never panics on I/O or network failures: every one becomes the
/// row's error.
pub(super) async fn upload_row(
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
    outcome = settle_video(ctx, job, &mut result, outcome).await;
    result.seconds = started.elapsed().saturating_sub(waited).as_secs_f64();
    outcome = follow_encoding(ctx, &mut result, hold, source_at, outcome).await;
    if let Some(kept) = result.video_id.clone() {
        video::sweep_late_creates(ctx, &job.row.key(), &kept, &mut result).await;
    }
    result.ended_at = Some(std::time::SystemTime::now());
    conclude(ctx, job, &mut result, outcome).await;
    tracing::debug!(
        row = job.row.line,
        key = job.row.key(),
        status = ?result.status,
        video_id = result.video_id.as_deref(),
        "row ended"
    );
    result
}

/// Whether a row's source is complete: sent now, or held already.
fn source_complete(outcome: &Result<(), SessionEnd>) -> bool {
    matches!(outcome, Ok(()) | Err(SessionEnd::AlreadyDone))
}

/// The source is complete: the row's other fields (an upsert's) and assets follow, on the same
/// video. Returns the row's outcome with theirs.
async fn settle_video(
    ctx: &Ctx,
    job: &Job,
    result: &mut RowResult,
    mut outcome: Result<(), SessionEnd>,
) -> Result<(), SessionEnd> {
    let source_done = source_complete(&outcome);
    let Some(video_id) = result.video_id.clone().filter(|_| source_done) else {
        if source_done && assets::any(&job.row) {
            let why = "the row's video is not known: its assets were not sent";
            return Err(SessionEnd::failed(why));
        }
        return outcome;
    };
    // An upsert's video found complete may hold other fields than the row's: they change first
    // (the assets' record in its metadata is then written over the changed list).
    if job.row.action == RowAction::Upsert {
        match actions::settle_fields(ctx, &job.row, &job.row.key(), &video_id).await {
            Ok(changed) => result.updated = changed,
            Err(end) => outcome = Err(end),
        }
    }
    if source_complete(&outcome) {
        // A source complete before this run stays so: assets sent to it make the row `updated`.
        match assets::settle(ctx, &job.row, &job.row.key(), &video_id).await {
            Ok(sent) => result.assets = sent,
            Err(end) => outcome = Err(end),
        }
    }
    outcome
}

/// `--wait`, or a hold on the encoding queue (`--max-processing`): the row's video followed
/// until it plays, its encoding written in the result with `--wait`. Returns the row's
/// outcome with the encoding's.
async fn follow_encoding(
    ctx: &Ctx,
    result: &mut RowResult,
    mut hold: Option<encoding::Encoding>,
    source_at: Instant,
    mut outcome: Result<(), SessionEnd>,
) -> Result<(), SessionEnd> {
    let plays = source_complete(&outcome);
    let Some(video_id) = result.video_id.clone().filter(|_| plays) else { return outcome };
    if ctx.config.wait.is_none() && hold.is_none() {
        return outcome;
    }
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
    outcome
}

/// The row's status from its outcome; a failure journaled and said.
async fn conclude(ctx: &Ctx, job: &Job, result: &mut RowResult, outcome: Result<(), SessionEnd>) {
    // Its video changed otherwise than by its source: fields set, or assets sent.
    let changed = !result.updated.is_empty() || !result.assets.is_empty();
    match outcome {
        Ok(()) if result.sent == 0 && !result.updated.is_empty() => {
            result.status = RowStatus::Updated
        }
        Ok(()) => result.status = RowStatus::Uploaded,
        Err(SessionEnd::AlreadyDone) if changed => result.status = RowStatus::Updated,
        Err(SessionEnd::AlreadyDone) => result.status = RowStatus::Skipped,
        Err(SessionEnd::Stopped) if result.video_id.is_none() => result.status = RowStatus::Pending,
        Err(SessionEnd::Stopped) => result.status = RowStatus::Interrupted,
        Err(SessionEnd::Gone { video_id }) => {
            let why = format!("video `{video_id}` disappeared from the server twice");
            fail(ctx, job, result, why, false).await
        }
        Err(SessionEnd::Failed { message, auth }) => fail(ctx, job, result, message, auth).await,
    }
}

/// An `update` or `delete` row, start to finish: no file, no lane (its `ahead` permit bounds
/// how many run at once). A failure is the row's alone: the journal's record of an earlier
/// upload of the key stays as it was.
pub(super) async fn act_row(ctx: &Ctx, job: &Job, ahead: OwnedSemaphorePermit) -> RowResult {
    let started = Instant::now();
    let mut result = RowResult::new(job.index, RowStatus::Failed);
    result.started_at = Some(std::time::SystemTime::now());
    let outcome = match job.row.action {
        _ if ctx.halted() => Err(SessionEnd::Stopped),
        RowAction::Delete => actions::delete(ctx, &job.row, &mut result).await,
        _ => actions::update(ctx, &job.row, &mut result).await,
    };
    drop(ahead);
    result.seconds = started.elapsed().as_secs_f64();
    result.ended_at = Some(std::time::SystemTime::now());
    result.status = match outcome {
        Ok(()) if job.row.action == RowAction::Delete => RowStatus::Deleted,
        // Fields set, assets sent, or both: never an upload.
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
pub(super) async fn fail(
    ctx: &Ctx,
    job: &Job,
    result: &mut RowResult,
    message: String,
    auth: bool,
) {
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

pub(super) enum SessionEnd {
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
    pub(super) fn failed(message: impl Into<String>) -> Self {
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

/// Runs blocking journal work off the runtime; no journal, nothing to do. A journal that
/// fails (a full disk, a volume gone read-only) halts the run: a video started after it could
/// not be recorded, so every one would be made again by the next run, an empty video and a
/// write of the account's quota each.
pub(super) async fn journal<T: Send + 'static>(
    ctx: &Ctx,
    f: impl FnOnce(&Journal) -> Result<T, JournalError> + Send + 'static,
) -> Result<Option<T>, SessionEnd> {
    let Some(j) = ctx.config.journal.clone() else { return Ok(None) };
    match tokio::task::spawn_blocking(move || f(&j)).await {
        Err(e) => Err(SessionEnd::failed(format!("a journal task failed: {e}"))),
        Ok(Ok(done)) => Ok(Some(done)),
        Ok(Err(e)) => {
            let why = error_chain(&e);
            if ctx.journal_failure.set(why.clone()).is_ok() {
                tracing::error!(error = %why, "the journal cannot be written: no video is started");
            }
            ctx.halt.cancel();
            Err(SessionEnd::failed(why))
        }
    }
}

/// A row refused because its file is not the one the journal saw uploaded: what changed, as
/// far as the journal can tell.
pub(super) fn changed_since_uploaded(
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
        crate::remote::shown(&row.path_text),
        what.join(", ")
    ))
}

/// A modification time as the journal keeps it, for messages.
pub(super) fn timestamp(mtime_ns: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(mtime_ns)
        .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// The file's identity as the journal keeps it.
pub(super) fn identity(row: &Row) -> FileIdentity {
    let mtime_ns = row
        .mtime
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as i64);
    FileIdentity { path: row.path_text.clone(), size: row.size, mtime_ns, sha256: None }
}

/// A row's session: prepared ahead (holding an `ahead` permit, when it has one), then its parts
/// sent in a lane. `waited` accumulates the time spent waiting for a lane.
pub(super) async fn session(
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
        // api.video fetches the source from its URL: nothing to send, no lane to wait for; the
        // row is done once api.video holds it, and only then do the videos it replaces go.
        drop(ahead);
        let video_id = result.video_id.clone().unwrap_or_default();
        let size = prepared.body.len();
        super::pull::arrival(ctx, &video_id, size, prepared.video_age).await?;
        result.bytes = size;
        let key = prepared.key.clone();
        journal(ctx, move |j| j.done(&key, None, Some("pull"))).await?;
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
pub(super) fn pulls(ctx: &Ctx, row: &Row) -> bool {
    row.remote
        && !ctx.config.relay
        && crate::remote::pullable(&row.path_text)
        && ctx.client.has_api_key()
}
