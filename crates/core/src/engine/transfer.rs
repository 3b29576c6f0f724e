//! A row's parts sent in order, each acknowledged in the journal before it is counted, and its
//! fingerprint taken as they go.

use super::*;

/// The plain cut of a file, nothing held.
pub(super) fn pieces(len: u64, chunk_size: u64) -> Result<Vec<Piece>, SessionEnd> {
    let plan = plan_parts(len, chunk_size).map_err(|e| SessionEnd::failed(e.to_string()))?;
    Ok(plan.into_iter().map(|part| Piece { part, held: false }).collect())
}

/// Plans a video's parts from what the server says it holds. A complete video needs nothing,
/// whatever the part size. A partial one continues in the mode it was started in: in bytes
/// mode from the byte ranges it holds, with any part size; in part mode only with the cut it
/// was started with, since part numbers say nothing of where a part began.
pub(super) fn plan_held(
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
pub(super) async fn transfer(
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
        video_age: _,
    } = prepared;
    let total = body.len();
    // A file's contents are fingerprinted as they go out (and what the server held, read from
    // the file); an object's are not: its store's version tag stands for them.
    let file = body.file().cloned();
    let parts = plan.len() as u64;
    announce(ctx, job, &plan, total, &name, result).await;
    let mut complete = false;
    let mut hashing = Hashing { fingerprint: fingerprint::Fingerprint::new(), hashed: 0 };
    for (i, piece) in plan.iter().enumerate() {
        if piece.held {
            continue;
        }
        if ctx.stop.is_cancelled() {
            return Err(SessionEnd::Stopped);
        }
        let part = &piece.part;
        let hash = hashing.up_to(file.as_ref(), &plan, i).await?;
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
        hashing.sent(file.as_ref(), piece, hash.as_ref()).await?;
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
        confirm_uploaded(ctx, result).await?;
    }
    let fingerprint = match &file {
        Some(file) => {
            read_held(hashing.fingerprint, file, &plan[hashing.hashed..]).await?.finish(total)
        }
        None => None,
    };
    result.fingerprint = fingerprint.clone().or(identity.sha256.clone());
    let (k, how) = (key.clone(), result.transfer);
    journal(ctx, move |j| j.done(&k, fingerprint.as_deref(), how)).await?;
    settle_replaced(ctx, &key, replaces, result).await;
    Ok(())
}

/// Tells the progress a row's transfer starts, with what the server already holds of it; the
/// result starts from that.
async fn announce(
    ctx: &Ctx,
    job: &Job,
    plan: &[Piece],
    total: u64,
    name: &str,
    result: &mut RowResult,
) {
    let held: u64 =
        plan.iter().filter(|p| p.held).map(|p| p.part.range.end - p.part.range.start).sum();
    let parts = plan.len() as u64;
    let (counted, planned) = (result.journal_held, job.row.sent_here(ctx.config.relay));
    let (index, name) = (job.index, name.to_owned());
    let started = Event::Started { index, name, bytes: total, parts, held, counted, planned };
    let _ = ctx.events.send(started).await;
    result.parts = plan.iter().filter(|p| p.held).count() as u64;
    result.bytes = held;
}

/// The fingerprint of a file's contents as its parts go out: what the server held before this
/// run is read from the file (a resumed upload), what this run sends is hashed as it goes.
struct Hashing {
    fingerprint: fingerprint::Fingerprint,
    /// Pieces before this one are in the fingerprint.
    hashed: usize,
}

impl Hashing {
    /// The fingerprint so far, for [`read_held`] to add to off the runtime.
    fn take(&mut self) -> fingerprint::Fingerprint {
        std::mem::replace(&mut self.fingerprint, fingerprint::Fingerprint::new())
    }

    /// Takes in the held pieces before piece `i`; the hash piece `i`'s part is sent with.
    async fn up_to(
        &mut self,
        file: Option<&Arc<MappedFile>>,
        plan: &[Piece],
        i: usize,
    ) -> Result<Option<fingerprint::PartStart>, SessionEnd> {
        let Some(file) = file else { return Ok(None) };
        // Most parts follow one this run sent: nothing held to read, and the hash stays put.
        let held = &plan[self.hashed..i];
        if !held.is_empty() {
            self.fingerprint = read_held(self.take(), file, held).await?;
        }
        self.hashed = i + 1;
        Ok(self.fingerprint.part(plan[i].part.range.start))
    }

    /// Takes in a piece once sent: read from the file when it was not hashed on its way.
    async fn sent(
        &mut self,
        file: Option<&Arc<MappedFile>>,
        piece: &Piece,
        hash: Option<&fingerprint::PartStart>,
    ) -> Result<(), SessionEnd> {
        let Some(file) = file else { return Ok(()) };
        if !self.fingerprint.streamed(piece.part.range.clone(), hash) {
            self.fingerprint = read_held(self.take(), file, std::slice::from_ref(piece)).await?;
        }
        Ok(())
    }
}

/// The last answer was not the full Video: the server is asked before the row is called done.
async fn confirm_uploaded(ctx: &Ctx, result: &RowResult) -> Result<(), SessionEnd> {
    let id = result.video_id.clone().unwrap_or_default();
    let status = ctx.client.status(&id).await?;
    if !status.is_uploaded() {
        return Err(SessionEnd::failed(format!(
            "every part was acknowledged but the server does not report video `{id}` as uploaded"
        )));
    }
    Ok(())
}

/// Adds `pieces` to the fingerprint, read from the file (off the runtime: it reads the disk).
pub(super) async fn read_held(
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
pub(super) async fn record_start(
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
