//! Everything before a row's first byte: its file or object at hand, the journal weighed, its
//! video found or made, and its parts planned around what the server holds.

use super::*;

use chrono::{DateTime, Utc};

/// A row made ready to send: its file mapped and checked, its video found or created and
/// recorded in the journal, and its parts planned around what the server already holds.
pub(super) struct Prepared {
    pub(super) key: String,
    pub(super) body: Body,
    pub(super) plan: Vec<Piece>,
    pub(super) target: UploadTarget,
    pub(super) mode: Mode,
    pub(super) name: String,
    pub(super) with_key: bool,
    pub(super) identity: FileIdentity,
    pub(super) chunk_size: u64,
    /// Videos to delete once this one is complete (see [`settle_replaced`]).
    pub(super) replaces: Vec<String>,
    /// Made with its object's URL as its source: api.video fetches it, nothing is sent.
    pub(super) pulled: bool,
    /// How long ago its video was made (zero for one made now): a pull is waited for until its
    /// bound has passed since then.
    pub(super) video_age: Duration,
}

/// Everything before the first byte of a row: the work of the requests that do not carry the
/// file (the lookup by key, the status, the create). It runs up to `--concurrency` rows ahead
/// of the lanes, so a lane goes from one video's last part straight to the next video's first
/// instead of spending those round trips idle.
pub(super) async fn prepare(
    ctx: &Ctx,
    job: &Job,
    result: &mut RowResult,
) -> Result<Prepared, SessionEnd> {
    if ctx.halted() {
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
    let (entry, before) = read_entry(ctx, &row, &key).await?;
    result.journal_held = entry.as_ref().map_or(0, |e| e.bytes_done);
    let with_key = ctx.client.has_api_key();
    let recorded = entry.as_ref().or(before.as_ref());
    fingerprint_if_moved(recorded, &body, &mut identity).await?;
    let (entry, before) = match (entry, before) {
        (Some(e), _) if touched(&e, &key, &identity) => {
            (Some(retouch(ctx, &row, e, &key, &identity, with_key, result).await?), None)
        }
        (None, Some(e)) if touched(&e, &key, &identity) => {
            (Some(retouch(ctx, &row, e, &key, &identity, with_key, result).await?), None)
        }
        other => other,
    };
    let held = Held::weigh(ctx, &row, &key, entry, before, &identity, result).await?;
    let name = display_name(&row);
    let pull = pull_url(ctx, &body, result).await?;

    // 3. The video: the journal's, else one already made for this key (the journal may have
    //    been lost, or another run made it), else a new one; and what the server holds of it.
    //    A changed file's new video replaces the old one: the old gives up the key first.
    let Held { entry, mut replaces, journal_video, chunk_size, fresh } = held;
    if fresh && with_key {
        retire(ctx, &row, &key, &mut replaces, result).await?;
    }
    let lookup = Lookup { journaled: journal_video.as_deref(), fresh, pull: pull.as_deref() };
    let (video_id, status, created_at, ours) =
        lookup.settle(ctx, &row, &key, body.len(), with_key, &mut replaces, result).await?;
    if entry.is_none() && with_key && !ctx.config.keep_old {
        let held = status.as_ref().is_some_and(|s| s.progress() != Progress::Empty);
        finish_stranded(ctx, &key, video_id.as_deref(), held, &mut replaces).await?;
    }
    let pulled = pull.is_some() && pulled_here(status.as_ref(), ours);
    result.video_id = video_id.clone();
    let resumed = video_id.is_some() && video_id == journal_video;

    // 4. The plan, around what the server holds: its record with a key, the journal's without.
    let mut mode = ctx.config.mode;
    let plan = match &status {
        _ if pulled => Vec::new(),
        Some(status) => {
            let id = video_id.as_deref().unwrap_or_default();
            plan_held(status, body.len(), chunk_size, &mut mode, id)?
        }
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
        video_age: pull::age(created_at),
    })
}

/// Whether a row made with its URL as its source is pulled by api.video: while it does not
/// hold the source, unless an earlier run relayed part of it. A video this run made from the URL
/// (its create's answer lost, found again by its key) was pulled by this run, even when api.video
/// holds its source by now.
fn pulled_here(status: Option<&VideoStatus>, ours: bool) -> bool {
    status.is_some_and(|s| (ours || !s.is_uploaded()) && s.progress() != Progress::Partial)
}

/// Why the video found for a row holds another file than the row's: the whole source it holds
/// is not the size of the row's. Two files given one `id` (two drop folders both holding
/// `intro.mp4`) would otherwise be reported done while the account holds the first one's bytes.
/// With what to do about it.
fn clash(
    row: &Row,
    len: u64,
    video_id: Option<&str>,
    status: Option<&VideoStatus>,
) -> Option<(String, &'static str)> {
    let held = status?.source_size().filter(|&size| size != len && len > 0)?;
    let why = format!(
        "video `{}` under this row's key holds a source of {held} bytes, not the {len} bytes of \
         `{}`: another file was uploaded with this row's key",
        video_id.unwrap_or("-"),
        crate::remote::shown(&row.path_text)
    );
    Some((
        why,
        "give each file its own `id` (`avbatch manifest --id-prefix`), or pass --force to \
         replace the video with this file",
    ))
}

/// Why the row's video `video_id`, found with `status`, cannot be the row's: it holds another
/// file than the row's of `len` bytes (a [`clash`]), or its encoding failed ([`unplayable`]);
/// with how to go on. The run then fails the row saying both, unless [`replaces_unusable`];
/// its plan says the same.
pub fn unusable(
    row: &Row,
    len: u64,
    video_id: Option<&str>,
    status: Option<&VideoStatus>,
) -> Option<(String, &'static str)> {
    clash(row, len, video_id, status).or_else(|| unplayable(video_id, status))
}

/// Whether a run replaces an [`unusable`] video with a new one (`--force`, an `upsert` row)
/// rather than failing the row.
pub fn replaces_unusable(row: &Row, force: bool) -> bool {
    force || row.action == RowAction::Upsert
}

/// Why the row's video, whole, will never play: api.video's encoding of it failed (qualities
/// `failed`). Nothing resumes that; the file must go again, to a new video. With how.
fn unplayable(
    video_id: Option<&str>,
    status: Option<&VideoStatus>,
) -> Option<(String, &'static str)> {
    let status = status.filter(|s| s.is_uploaded())?;
    let failed = status.encoding.as_ref().map(|e| e.failed()).filter(|f| !f.is_empty())?;
    let why = format!(
        "the encoding of video `{}` failed ({}): api.video cannot play it",
        video_id.unwrap_or("-"),
        failed.join(", ")
    );
    Some((why, "pass --force to upload the file again as a new video that replaces it"))
}

/// No journal of this row here: a replacement stopped half-way (by another run, or by one
/// whose journal this run has not) is finished by this one, whose video is `video_id`.
async fn finish_stranded(
    ctx: &Ctx,
    key: &str,
    video_id: Option<&str>,
    held: bool,
    replaces: &mut Vec<String>,
) -> Result<(), SessionEnd> {
    for id in video::stranded(ctx, key, held).await? {
        if video_id != Some(id.as_str()) && !replaces.contains(&id) {
            replaces.push(id);
        }
    }
    Ok(())
}

/// What the video of a row is looked for with.
#[derive(Clone, Copy)]
struct Lookup<'a> {
    /// The journal's video for the row.
    journaled: Option<&'a str>,
    /// A changed file's new video.
    fresh: bool,
    /// The URL api.video pulls the source from.
    pull: Option<&'a str>,
}

/// A row's video, what the server holds of it, when it was made, and whether this run made it.
type Settled = (Option<String>, Option<VideoStatus>, Option<DateTime<Utc>>, bool);

impl Lookup<'_> {
    /// [`Lookup::video`], and a new video in its place when the row sets what api.video cannot
    /// change (`--force` and a clip or watermark), or when the video found holds another file
    /// (a [`clash`]) and the row may replace it: as for a changed file, the old one goes once
    /// the new one is complete.
    #[allow(clippy::too_many_arguments)]
    async fn settle(
        self,
        ctx: &Ctx,
        row: &Row,
        key: &str,
        len: u64,
        with_key: bool,
        replaces: &mut Vec<String>,
        result: &mut RowResult,
    ) -> Result<Settled, SessionEnd> {
        let settled = self.video(ctx, row, key, with_key, result).await?;
        if self.fresh {
            return Ok(settled);
        }
        let (video_id, status) = (&settled.0, &settled.1);
        let unusable = unusable(row, len, video_id.as_deref(), status.as_ref());
        if let Some((why, hint)) = unusable.as_ref() {
            if !replaces_unusable(row, ctx.config.force) {
                return Err(SessionEnd::failed(format!("{why}; {hint}")));
            }
            result.add_note(format!("{why}: replaced"));
        }
        if unusable.is_none()
            && !actions::needs_new_video(ctx, row, video_id.as_deref(), status.as_ref()).await?
        {
            return Ok(settled);
        }
        retire(ctx, row, key, replaces, result).await?;
        Lookup { fresh: true, ..self }.video(ctx, row, key, with_key, result).await
    }

    /// The row's video and its status: found or made with a key; without one, the journal's
    /// (an upload token's first chunk makes a new one).
    async fn video(
        &self,
        ctx: &Ctx,
        row: &Row,
        key: &str,
        with_key: bool,
        result: &mut RowResult,
    ) -> Result<Settled, SessionEnd> {
        if with_key {
            let found =
                video::resolve(ctx, row, key, self.journaled, self.fresh, self.pull, result)
                    .await?;
            let video::Found { video_id, status, created_at, ours } = found;
            return Ok((Some(video_id), Some(status), created_at, ours));
        }
        if self.pull.is_some() {
            return Err(SessionEnd::failed(
                "a video pulled from its URL is made with an API key: an upload token only \
                 uploads (pass --relay to send the object from here)",
            ));
        }
        Ok((self.journaled.map(str::to_owned), None, None, false))
    }
}

/// The journal's entry for the row's key (or avbatch 0.1's key for it), and, for a row keyed by
/// its file that has none, what the row's path held before under another key.
async fn read_entry(
    ctx: &Ctx,
    row: &Row,
    key: &str,
) -> Result<(Option<crate::journal::Entry>, Option<crate::journal::Entry>), SessionEnd> {
    let (lookup_key, legacy_key) = (key.to_owned(), row.identity());
    let keyed_by_file = row.id.is_none();
    let lookup_path = row.path_text.clone();
    Ok(journal(ctx, move |j| {
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
    .unwrap_or_default())
}

/// A file whose size or time moved: with the fingerprint of its upload in the journal, the
/// contents decide (one read of the file, only for such rows). Touched, not changed: the journal
/// then takes its new identity and, keyed by the file, its new key.
async fn fingerprint_if_moved(
    recorded: Option<&crate::journal::Entry>,
    body: &Body,
    identity: &mut FileIdentity,
) -> Result<(), SessionEnd> {
    let (Some(e), Body::File(file)) = (recorded.filter(|e| !e.file.same_file(identity)), body)
    else {
        return Ok(());
    };
    let comparable = e.file.sha256.as_deref().is_some_and(crate::chunk::is_fingerprint);
    if e.file.size == identity.size && comparable && identity.sha256.is_none() {
        let file = file.clone();
        let sha = tokio::task::spawn_blocking(move || file.fingerprint())
            .await
            .map_err(|e| SessionEnd::failed(format!("hashing the file failed: {e}")))?;
        identity.sha256 = Some(sha);
    }
    Ok(())
}

/// What the journal's record of a row means for this run: the video to resume, the videos the
/// row's new one replaces, the part size, and whether the row starts afresh.
struct Held {
    entry: Option<crate::journal::Entry>,
    replaces: Vec<String>,
    journal_video: Option<String>,
    chunk_size: u64,
    /// A changed file uploaded again (`--force`, an upsert): a new video.
    fresh: bool,
}

impl Held {
    /// Weighs the journal's records of the row against its file as it is now. A row already
    /// done ends here ([`SessionEnd::AlreadyDone`]); a changed file is refused unless it is to
    /// be uploaded again.
    async fn weigh(
        ctx: &Ctx,
        row: &Row,
        key: &str,
        mut entry: Option<crate::journal::Entry>,
        before: Option<crate::journal::Entry>,
        identity: &FileIdentity,
        result: &mut RowResult,
    ) -> Result<Held, SessionEnd> {
        // An upsert row uploads a changed file again as `--force` does.
        let force = ctx.config.force || row.action == RowAction::Upsert;
        let with_key = ctx.client.has_api_key();
        // Keyed by the file, a changed file has a new key: its path's earlier upload is the one
        // it replaces.
        let mut replaces = Vec::new();
        if let Some(e) = before.as_ref().filter(|e| !e.file.same_file(identity)) {
            if !force {
                return Err(changed_since_uploaded(row, e, identity));
            }
            replaces = replaced(ctx, e, with_key, result);
        }
        let mut held = Held {
            entry: None,
            replaces,
            journal_video: None,
            chunk_size: ctx.config.chunk_size,
            fresh: false,
        };
        if let Some(e) = &mut entry {
            if !e.file.same_file(identity) {
                if !force {
                    return Err(changed_since_uploaded(row, e, identity));
                }
                held.replaces = replaced(ctx, e, with_key, result);
                held.fresh = true;
            } else {
                held.replaces = std::mem::take(&mut e.replaces);
                // With --force, an upsert row that sets a clip or a watermark looks at its
                // video: one holding another may need a new video (`needs_new_video`).
                let recheck = row.action == RowAction::Upsert
                    && ctx.config.force
                    && (row.clip.is_some() || row.watermark.is_some());
                if e.state == State::Done && !recheck {
                    result.video_id = e.video_id.clone();
                    result.fingerprint = e.file.sha256.clone();
                    result.bytes = e.bytes_done;
                    result.parts = e.parts_done;
                    result.parts_total = e.parts_done;
                    let k = key.to_owned();
                    result.earlier = journal(ctx, move |j| j.history(&k)).await?.flatten();
                    settle_replaced(ctx, key, held.replaces, result).await;
                    return Err(SessionEnd::AlreadyDone);
                }
                held.journal_video = e.video_id.clone();
                held.chunk_size = e.chunk_size;
            }
        }
        held.entry = entry;
        Ok(held)
    }
}

/// An object's name without its URL's query string (a presigned one's signature); a file's
/// name.
fn display_name(row: &Row) -> String {
    let shown = std::path::PathBuf::from(crate::remote::shown(&row.path_text).replace("?…", ""));
    shown
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| shown.display().to_string())
}

/// An object api.video can fetch itself is pulled (unless `--relay`): the URL its video is made
/// with as its source, nothing being sent from here. `None` for a body sent from here. Keys
/// that expire before the wait for the fetch ends are said: the URL works no longer than they.
async fn pull_url(
    ctx: &Ctx,
    body: &Body,
    result: &mut RowResult,
) -> Result<Option<String>, SessionEnd> {
    let Body::Object(object) = body else { return Ok(None) };
    if ctx.config.relay || !object.remote.pullable() {
        return Ok(None);
    }
    let lifetime = pull::url_lifetime(ctx.config.pull_timeout, body.len());
    let wait = pull::bound(ctx.config.pull_timeout, body.len());
    if let Some(at) = object.remote.keys_expire().filter(|at| {
        chrono::TimeDelta::from_std(wait).is_ok_and(|wait| *at < chrono::Utc::now() + wait)
    }) {
        result.add_note(format!(
            "the URL api.video fetches it from works only until {} (the session keys that sign \
             it expire then: AWS_CREDENTIAL_EXPIRATION); a fetch not done by then fails (--relay \
             sends it from here)",
            at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ));
    }
    let url = object.remote.pull_url(lifetime).await.map_err(|e| {
        SessionEnd::failed(format!(
            "`{}`: cannot make the signed URL api.video would fetch it from: {e} (`--relay` sends \
             it from here instead)",
            object.remote.shown()
        ))
    })?;
    Ok(Some(url.to_string()))
}

/// A changed file's new video replaces the old ones, which give up the key first; with
/// `--keep-old` they stay, under the replaced key, and are not deleted.
async fn retire(
    ctx: &Ctx,
    row: &Row,
    key: &str,
    replaces: &mut Vec<String>,
    result: &mut RowResult,
) -> Result<(), SessionEnd> {
    for id in video::retire(ctx, row, key).await? {
        if !replaces.contains(&id) {
            replaces.push(id);
        }
    }
    if ctx.config.keep_old {
        result.add_note(format!(
            "kept the video(s) of the file as it was, {}: their key moved to `{}`",
            listed(replaces),
            crate::marks::KEPT_KEY_METADATA
        ));
        replaces.clear();
    }
    Ok(())
}

/// Whether a journal entry's file is the row's file as it is now under another identity: the
/// same contents (by their fingerprint), a new modification time, path or key.
pub(super) fn touched(entry: &crate::journal::Entry, key: &str, now: &FileIdentity) -> bool {
    let then = &entry.file;
    then.sha256.is_some()
        && then.same_file(now)
        && (then.mtime_ns != now.mtime_ns || then.path != now.path || entry.key != key)
}

/// A touched file: its journal entry takes the file's new identity and the row's key, and,
/// when the key changed (a row keyed by its file), so does its video on the server, so a later
/// run finds it without the journal. Returns the entry as it now stands.
pub(super) async fn retouch(
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
pub(super) fn replaced(
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
pub(super) fn listed(ids: &[String]) -> String {
    ids.iter().map(|id| format!("`{id}`")).collect::<Vec<_>>().join(", ")
}

/// The row's video is complete: the videos it replaces are deleted, and the journal forgets
/// them. One that cannot be deleted stays in the journal for the next run, and is noted.
pub(super) async fn settle_replaced(
    ctx: &Ctx,
    key: &str,
    replaces: Vec<String>,
    result: &mut RowResult,
) {
    if replaces.is_empty() {
        return;
    }
    let mut left = Vec::new();
    for id in replaces {
        if result.video_id.as_deref() == Some(id.as_str()) {
            continue;
        }
        match ctx.client.delete_video(&id).await {
            Ok(()) => {
                ctx.keys.forget(key, &id);
                result.add_note(format!("replaced video `{id}`, which was deleted"));
            }
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
