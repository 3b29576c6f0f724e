//! Which video a row goes to: the one it already has, or a new one, exactly once.
//!
//! api.video has no create-if-absent, so exactly-once rests on the row's key, stored on its
//! video (`metadata.avbatch_key`), and on three rules every run follows alike:
//! - **Look before making.** A row without a video in the journal is looked up by its key first
//!   (and by the raw key avbatch 0.1 stored, so a library half-migrated before the upgrade is
//!   not uploaded twice); a create that may have taken effect although it failed (a broken
//!   connection, a time-out, a gateway's 5xx or 408) is looked up before it is sent again.
//! - **Converge after making.** Two runs can both find nothing and both create. So after a
//!   create the run lists the key again, and when it holds several videos made since it looked,
//!   every run keeps the same one: the first made (the earliest created, in the server's own
//!   order). How far along each is does not count there: a run that saw only its own video kept
//!   it at once, and a pull's progress depends on when it is read, so ranking by it let two
//!   runs keep two videos (issue #25, point 4). A run deletes only the videos it made itself
//!   (those carrying its mark, `metadata.avbatch_run`, so also one whose create's answer was
//!   lost), and continues in the kept one; videos it did not make are reported, never deleted.
//! - **Sweep a late create.** A create a gateway gave up on may take effect after the run looked
//!   it up and made another; once such a row ends its key is listed again and the run's own
//!   videos there, but the kept one, deleted ([`sweep_late_creates`]).
//! - **Continue the furthest along.** Among the videos a row finds when it looks (made by
//!   earlier runs), it continues the furthest along (complete, then partial, then empty), then
//!   the earliest created.
//! - **Do not continue what the server will drop.** api.video deletes uploads left unfinished
//!   7 days after they start, so an unfinished video over 6 days old is replaced, not resumed.
//!
//! The lookup accepts only videos whose key is exactly the row's: how the real
//! `metadata[KEY]=VALUE` filter matches is undocumented
//! ([`crate::client::Client::find_by_metadata`]).

use std::cmp::Reverse;
use std::time::SystemTime;

use chrono::{DateTime, Utc};

use super::keys::Listed;
use super::{new_video, Ctx, RowResult, SessionEnd, KEY_METADATA};
use crate::manifest::Row;
use crate::marks::{KEPT_KEY_METADATA, RUN_METADATA};
use avbatch_api::{Metadata, NewVideo, Progress, VideoStatus};

/// Metadata key to which a replaced video's key moves (see [`retire`]).
pub use crate::marks::REPLACED_KEY_METADATA;

/// api.video deletes a video whose upload did not finish this long after it was created.
pub const UNFINISHED_LIFETIME: chrono::TimeDelta = chrono::TimeDelta::days(7);
/// An unfinished video older than this is replaced rather than continued: a day's margin, so
/// the server does not delete it under the rest of its upload.
pub const REPLACE_AFTER: chrono::TimeDelta = chrono::TimeDelta::days(6);

/// Raw keys longer than this were never stored by avbatch 0.1 in practice (its lookup URL would
/// not have been accepted), so they are not looked up.
const MAX_LEGACY_KEY: usize = 1024;

/// The row's video and what the server holds of it.
pub(super) struct Found {
    pub video_id: String,
    pub status: VideoStatus,
    /// When it was made, when known (not for a video made just now).
    pub created_at: Option<DateTime<Utc>>,
    /// Made by this run (also when its create's answer was lost: it carries the run's mark).
    pub ours: bool,
}

impl From<Candidate> for Found {
    fn from(c: Candidate) -> Found {
        let Listed { video_id, created_at, ours } = c.video;
        Found { video_id, status: c.status, created_at, ours }
    }
}

/// A candidate video, with how far its upload got.
struct Candidate {
    video: Listed,
    status: VideoStatus,
}

impl Candidate {
    fn progress(&self) -> Progress {
        self.status.progress()
    }
}

/// Finds the row's video, or makes it. `journal_video` is the video the journal recorded;
/// `fresh` (a changed file with `--force`, whose old videos were [`retire`]d) skips both it and
/// the lookup. Notes for the person running avbatch go to `result`.
pub(super) async fn resolve(
    ctx: &Ctx,
    row: &Row,
    key: &str,
    journal_video: Option<&str>,
    fresh: bool,
    pull: Option<&str>,
    result: &mut RowResult,
) -> Result<Found, SessionEnd> {
    let mut candidates =
        if fresh { Vec::new() } else { candidates(ctx, row, key, journal_video, result).await? };
    // What was there before this run makes one: not a rival of the video it makes.
    let found: Vec<String> = candidates.iter().map(|c| c.video.video_id.clone()).collect();
    // Every video found may have been deleted since (by a run converging): then none is kept.
    if !candidates.is_empty() {
        let kept = candidates.remove(0);
        report_others(result, &candidates);
        if let Some(why) = unfit(ctx, row, pull, &kept) {
            // A video under this key that will not get its source this way. It holds none, and
            // it is this library's own: a new one is made.
            let id = kept.video.video_id.clone();
            let deleted =
                if drop_video(ctx, key, &id).await { "deleted" } else { "could not delete it" };
            result.add_note(format!("replaced video `{id}`, {why} ({deleted})"));
            return create(ctx, row, key, pull, &found, result).await;
        }
        if replace(&kept) {
            let id = kept.video.video_id.clone();
            let started = kept.video.created_at.map_or_else(|| "-".to_owned(), |t| t.to_rfc3339());
            // It carries this row's key, so it is this library's own; removing it keeps the
            // next lookup from finding two videos.
            let deleted = drop_video(ctx, key, &id).await;
            result.add_note(format!(
                "replaced unfinished video `{id}` (started {started}; api.video deletes uploads \
                 left unfinished for {} days){}",
                UNFINISHED_LIFETIME.num_days(),
                if deleted { ", deleted it" } else { ", could not delete it" }
            ));
        } else {
            return Ok(kept.into());
        }
    }
    create(ctx, row, key, pull, &found, result).await
}

/// Deletes a video found under `key` that this row replaces; whether it went.
async fn drop_video(ctx: &Ctx, key: &str, id: &str) -> bool {
    let deleted = ctx.client.delete_video(id).await.is_ok();
    if deleted {
        ctx.keys.forget(key, id);
    }
    deleted
}

/// Why `kept`, the video a row found under its key, cannot be continued, though unfinished.
/// Sending parts from here, one made to fetch its source takes none. Pulling, its source has
/// not arrived within the source's bound ([`super::pull::bound`]) since it was made, whatever
/// its state says. `None` for a video that holds its source, part of it (sent from here), or
/// is younger than its bound: another run may have just made it, its fetch not begun.
fn unfit(ctx: &Ctx, row: &Row, pull: Option<&str>, kept: &Candidate) -> Option<String> {
    if kept.status.is_uploaded() || kept.progress() == Progress::Partial {
        return None;
    }
    let state = kept.status.ingest_state();
    if pull.is_none() {
        return match state {
            None | Some("uploading") => None,
            Some(s) => Some(format!(
                "which was made to fetch its source from a URL (`{s}`) and takes no parts"
            )),
        };
    }
    let bound = super::pull::bound(ctx.config.pull_timeout, row.size);
    if super::pull::age(kept.video.created_at) < bound {
        // Within its fetch's time, whatever its state says: a fetch not begun yet may show none,
        // and the run that made it is waiting for it.
        return None;
    }
    match state {
        Some("ingesting") => Some(format!(
            "whose source api.video had not fetched within {} of making it",
            humantime::format_duration(bound)
        )),
        Some(s) => Some(format!("whose source api.video does not hold (`{s}`)")),
        None => Some("which held no source".into()),
    }
}

/// The row's video, if its key has one: the one [`resolve`] would continue in. Never makes one.
pub(super) async fn existing(
    ctx: &Ctx,
    row: &Row,
    key: &str,
    journal_video: Option<&str>,
    result: &mut RowResult,
) -> Result<Option<Found>, SessionEnd> {
    let mut candidates = candidates(ctx, row, key, journal_video, result).await?;
    if candidates.is_empty() {
        return Ok(None);
    }
    let kept = candidates.remove(0);
    report_others(result, &candidates);
    Ok(Some(kept.into()))
}

/// The videos the row may continue in, ranked: the journal's while the server still has it,
/// else those under its key.
async fn candidates(
    ctx: &Ctx,
    row: &Row,
    key: &str,
    journal_video: Option<&str>,
    result: &mut RowResult,
) -> Result<Vec<Candidate>, SessionEnd> {
    let mut found: Vec<Listed> = Vec::new();
    if let Some(id) = journal_video {
        match ctx.client.video(id).await? {
            Some(video) => found.push(Listed::of(&video, &ctx.run_mark)),
            None => result.add_note(format!(
                "video `{id}` recorded in the journal is no longer on the server"
            )),
        }
    }
    if found.is_empty() {
        found = look_up(ctx, row, key).await?;
    }
    if found.is_empty() {
        return Ok(Vec::new());
    }
    let mut candidates = with_status(ctx, found).await?;
    rank(&mut candidates);
    Ok(candidates)
}

/// A changed file uploaded again with `--force` goes to a new video under the same key (an
/// `id` does not change with the file). The videos made for the old file give up the key (it
/// moves to [`REPLACED_KEY_METADATA`]) before the new one is made, so neither this run's
/// convergence nor a later lookup takes them for the new file's; they are deleted once the new
/// one is complete (by this run, or any run that completes it without this one's journal:
/// [`stranded`]), or kept with `--keep-old` (their key then moves to [`KEPT_KEY_METADATA`]).
/// Returns their ids.
pub(super) async fn retire(ctx: &Ctx, row: &Row, key: &str) -> Result<Vec<String>, SessionEnd> {
    let to = if ctx.config.keep_old { KEPT_KEY_METADATA } else { REPLACED_KEY_METADATA };
    let mut retired = Vec::new();
    for video in ctx.client.find_by_metadata(KEY_METADATA, key).await? {
        let metadata: Vec<Metadata> = video
            .metadata
            .iter()
            .map(|m| {
                if m.key == KEY_METADATA {
                    Metadata { key: to.to_owned(), value: m.value.clone() }
                } else {
                    m.clone()
                }
            })
            .collect();
        ctx.client.set_metadata(&video.video_id, &metadata).await?;
        ctx.keys.forget(key, &video.video_id);
        tracing::debug!(
            row = row.line,
            video = %video.video_id,
            "the old file's video gives up the key"
        );
        retired.push(video.video_id);
    }
    Ok(retired)
}

/// The videos a replacement of the row left under [`REPLACED_KEY_METADATA`] unfinished (a run
/// stopped between making the new video and deleting the old ones): the run that completes the
/// row's video deletes them, its journal or not. Read from the run's index of the account when
/// it has one; else asked only for a video found with something of its source (`held`), since a
/// new video's row had no replacement under way, but for a run stopped between two requests.
pub(super) async fn stranded(ctx: &Ctx, key: &str, held: bool) -> Result<Vec<String>, SessionEnd> {
    if let Some(ids) = ctx.keys.replaced(key).await? {
        return Ok(ids);
    }
    if !held {
        return Ok(Vec::new());
    }
    let found = ctx.client.find_by_metadata(REPLACED_KEY_METADATA, key).await?;
    Ok(found.into_iter().map(|v| v.video_id).collect())
}

/// A touched file keyed by path, size and time has a new key, and its contents did not change:
/// its video takes the new key, so a run without the journal finds it under the key the file
/// has now.
pub(super) async fn rekey(
    ctx: &Ctx,
    video_id: &str,
    old: &str,
    new: &str,
) -> Result<(), SessionEnd> {
    let Some(video) = ctx.client.video(video_id).await? else { return Ok(()) };
    let mut metadata = video.metadata.clone();
    let mut changed = false;
    for m in metadata.iter_mut().filter(|m| m.key == KEY_METADATA && m.value == old) {
        m.value = new.to_owned();
        changed = true;
    }
    if changed {
        ctx.client.set_metadata(video_id, &metadata).await?;
        ctx.keys.moved(&video, old, new);
    }
    Ok(())
}

/// The videos carrying exactly this key (or avbatch 0.1's raw key for the row), oldest first:
/// from the run's index of the account when it has one, else from the server.
pub(super) async fn look_up(ctx: &Ctx, row: &Row, key: &str) -> Result<Vec<Listed>, SessionEnd> {
    let legacy = row.identity();
    if let Some(found) = ctx.keys.find(key, &legacy).await? {
        return Ok(found);
    }
    let found = ctx.client.find_by_metadata(KEY_METADATA, key).await?;
    if !found.is_empty() || legacy.len() > MAX_LEGACY_KEY {
        return Ok(found.iter().map(|v| Listed::of(v, &ctx.run_mark)).collect());
    }
    let old = ctx.client.find_by_metadata(KEY_METADATA, &legacy).await?;
    if !old.is_empty() {
        tracing::debug!(row = row.line, "found under the raw key avbatch 0.1 stored");
    }
    Ok(old.iter().map(|v| Listed::of(v, &ctx.run_mark)).collect())
}

/// Every video the row owns, oldest first under each key: under its key, and under the raw key
/// avbatch 0.1 stored for it (a `delete` row deletes them all). From the run's index of the
/// account when it has one, else from the server.
pub(super) async fn owned(ctx: &Ctx, row: &Row, key: &str) -> Result<Vec<Listed>, SessionEnd> {
    let legacy = row.identity();
    if let Some(found) = ctx.keys.find_every(key, &legacy).await? {
        return Ok(found);
    }
    let mut found = ctx.client.find_by_metadata(KEY_METADATA, key).await?;
    if legacy != key && legacy.len() <= MAX_LEGACY_KEY {
        found.extend(ctx.client.find_by_metadata(KEY_METADATA, &legacy).await?);
    }
    Ok(found.iter().map(|v| Listed::of(v, &ctx.run_mark)).collect())
}

/// Each video's status, in the order given.
async fn with_status(ctx: &Ctx, videos: Vec<Listed>) -> Result<Vec<Candidate>, SessionEnd> {
    let mut candidates = Vec::with_capacity(videos.len());
    for video in videos {
        match ctx.client.status(&video.video_id).await {
            Ok(status) => candidates.push(Candidate { video, status }),
            // Deleted between the list and now (by another run converging): not a candidate.
            Err(e) if e.status().map(|s| s.as_u16()) == Some(404) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(candidates)
}

/// The order in which a row continues the videos it found: furthest along, then earliest
/// created, then the server's own order (a stable sort keeps it), which breaks ties between
/// videos made in the same second.
fn rank(candidates: &mut [Candidate]) {
    candidates
        .sort_by_key(|c| (Reverse(c.progress()), c.video.created_at.is_none(), c.video.created_at));
}

/// The order every run racing to make a row's video computes alike: the first made first
/// (earliest created, then the server's own order, which a stable sort keeps).
fn first_made(candidates: &mut [Candidate]) {
    candidates.sort_by_key(|c| (c.video.created_at.is_none(), c.video.created_at));
}

/// Whether an unfinished video is too old to continue.
fn replace(candidate: &Candidate) -> bool {
    let age = |t: DateTime<Utc>| Utc::now().signed_duration_since(t);
    candidate.progress() != Progress::Complete
        && candidate.video.created_at.is_some_and(|t| age(t) > REPLACE_AFTER)
}

/// Notes the videos under the row's key that are left in place.
fn report_others(result: &mut RowResult, others: &[Candidate]) {
    let left: Vec<String> = others.iter().map(|c| format!("`{}`", c.video.video_id)).collect();
    if !left.is_empty() {
        result.add_note(format!(
            "other video(s) under this row's key, left in place: {}",
            left.join(", ")
        ));
    }
}

/// Creates the row's video, then converges with any other run that made one for the same key
/// since the row looked; the videos `found` then are not counted.
async fn create(
    ctx: &Ctx,
    row: &Row,
    key: &str,
    pull: Option<&str>,
    found: &[String],
    result: &mut RowResult,
) -> Result<Found, SessionEnd> {
    let (own, listed) = make(ctx, row, key, pull, found, result).await?;
    if let ([only], Some(own)) = (listed.as_slice(), &own) {
        if &only.video_id == own {
            // The common case: the video just made is the only one. It holds nothing yet.
            return Ok(Found {
                video_id: own.clone(),
                status: VideoStatus::default(),
                created_at: None,
                ours: true,
            });
        }
    }
    converge(ctx, row, key, own, listed, result).await
}

/// Sends the create (again, while it fails in a way that may not have taken effect and nothing
/// new is found under the key) and lists the key after it. Returns the video made, when its
/// answer came, and every video under the key but those `found` before.
async fn make(
    ctx: &Ctx,
    row: &Row,
    key: &str,
    pull: Option<&str>,
    found: &[String],
    result: &mut RowResult,
) -> Result<(Option<String>, Vec<Listed>), SessionEnd> {
    let mut payload = NewVideo { source: pull.map(str::to_owned), ..new_video(row) };
    payload.metadata.push(Metadata { key: RUN_METADATA.to_owned(), value: ctx.run_mark.clone() });
    let listed_under = |under: Vec<avbatch_api::Video>| -> Vec<Listed> {
        let new = under.iter().filter(|v| !found.contains(&v.video_id));
        new.map(|v| Listed::of(v, &ctx.run_mark)).collect()
    };
    let started = SystemTime::now();
    let mut attempt = 0;
    loop {
        if ctx.halted() {
            // Stopped, or the journal broke: a video made now would not be recorded.
            return Err(SessionEnd::Stopped);
        }
        let creating = ctx.keys.creating();
        match ctx.client.create_video(&payload).await {
            Ok(video) => {
                let id = video.video_id.clone();
                result.video_id = Some(id.clone());
                super::actions::record_fields(ctx, key, &id, &payload).await?;
                let mut listed = match ctx.keys.after_create(&video, creating).await? {
                    Some(mut listed) => {
                        listed.retain(|v| !found.contains(&v.video_id));
                        listed
                    }
                    None => listed_under(ctx.client.find_by_metadata(KEY_METADATA, key).await?),
                };
                if !listed.iter().any(|v| v.video_id == id) {
                    // Not listed yet (a list that lags behind a create): it exists all the same.
                    listed.push(Listed::of(&video, &ctx.run_mark));
                }
                return Ok((Some(id), listed));
            }
            Err(e) if e.maybe_applied() => {
                ctx.keys.unsure(key);
                tracing::debug!(
                    row = row.line,
                    error = %e,
                    "the create may have taken effect; looking it up by key"
                );
                let made = listed_under(ctx.client.find_by_metadata(KEY_METADATA, key).await?);
                if !made.is_empty() {
                    return Ok((None, made));
                }
                if ctx.stop.is_cancelled() {
                    return Err(SessionEnd::Stopped);
                }
                let Some(wait) = ctx.client.retry_config().backoff(started, attempt) else {
                    return Err(e.into());
                };
                attempt += 1;
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = ctx.stop.cancelled() => return Err(SessionEnd::Stopped),
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// A create that failed in a way that may have taken effect can take effect late: after the run
/// looked for it, found nothing and made another (a gateway gave up on a request the API went on
/// with). So when a create of the row was unsure, its key is listed again once the row ends,
/// and any video there but `kept` that carries this run's mark is deleted.
pub(super) async fn sweep_late_creates(ctx: &Ctx, key: &str, kept: &str, result: &mut RowResult) {
    if !ctx.keys.take_unsure(key) {
        return;
    }
    let found = match ctx.client.find_by_metadata(KEY_METADATA, key).await {
        Ok(found) => found,
        Err(e) => {
            let why = crate::client::error_chain(&e);
            result.add_note(format!(
                "a create of this row may have taken effect late; listing its key to find out \
                 failed ({why}): `avbatch check` shows any extra video"
            ));
            return;
        }
    };
    let listed = found.iter().map(|v| Listed::of(v, &ctx.run_mark));
    for late in listed.filter(|v| v.ours && v.video_id != kept) {
        let id = late.video_id;
        match ctx.client.delete_video(&id).await {
            Ok(()) => {
                let row = result.index;
                tracing::debug!(row, video = %id, "deleted a create that took effect late");
                ctx.keys.forget(key, &id);
            }
            Err(e) => result.add_note(format!(
                "video `{id}`, made by a create of this run that took effect late, could not be \
                 deleted ({}): delete it by hand",
                crate::client::error_chain(&e)
            )),
        }
    }
}

/// Several videos made under the row's key since it looked: every run keeps the same one, the
/// first made, and deletes the others it made itself, the one whose create it saw answered and
/// any whose answer was lost (they carry its mark). The others were made later by runs racing
/// this one, each of which deletes its own as this run does here. Not a leftover to report.
async fn converge(
    ctx: &Ctx,
    row: &Row,
    key: &str,
    own: Option<String>,
    listed: Vec<Listed>,
    result: &mut RowResult,
) -> Result<Found, SessionEnd> {
    let mut candidates = with_status(ctx, listed).await?;
    first_made(&mut candidates);
    if candidates.is_empty() {
        return Err(SessionEnd::failed(
            "every video made for this row's key was deleted while it was being made; run it again",
        ));
    }
    let kept = candidates.remove(0);
    let ours = candidates
        .iter()
        .map(|c| &c.video)
        .filter(|v| v.ours || own.as_deref() == Some(v.video_id.as_str()));
    for video in ours {
        // Another video was made first: this run continues in it, and takes its own back.
        tracing::debug!(
            row = row.line,
            own = %video.video_id,
            kept = %kept.video.video_id,
            "another video under this key wins; deleting ours"
        );
        ctx.client.delete_video(&video.video_id).await?;
        ctx.keys.forget(key, &video.video_id);
    }
    result.video_id = Some(kept.video.video_id.clone());
    Ok(kept.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use avbatch_api::Ingest;

    fn candidate(id: &str, created: Option<&str>, status: Option<&str>) -> Candidate {
        let video = Listed {
            video_id: id.into(),
            created_at: created
                .map(|t| DateTime::parse_from_rfc3339(t).unwrap().with_timezone(&Utc)),
            ours: false,
        };
        let ingest = status.map(|s| Ingest {
            status: Some(s.into()),
            filesize: Some(20),
            received_bytes: vec![avbatch_api::BytesRange { from: 0, to: 9, total: 20 }],
            received_parts: None,
        });
        Candidate { video, status: VideoStatus { ingest, ..Default::default() } }
    }

    #[test]
    fn a_row_continues_the_furthest_along_video_it_finds() {
        let order = |mut c: Vec<Candidate>| {
            rank(&mut c);
            c.into_iter().map(|c| c.video.video_id).collect::<Vec<_>>()
        };
        let t1 = Some("2026-11-29T10:00:00+00:00");
        let t2 = Some("2026-11-29T10:00:01+00:00");
        // Furthest along first, whatever the age.
        assert_eq!(
            order(vec![
                candidate("a", t1, None),
                candidate("b", t2, Some("uploading")),
                candidate("c", t2, Some("uploaded"))
            ]),
            ["c", "b", "a"]
        );
        // Among equals the earliest; in the same second, the server's order.
        assert_eq!(
            order(vec![
                candidate("z", t2, None),
                candidate("y", t1, None),
                candidate("x", t1, None)
            ]),
            ["y", "x", "z"]
        );
        // A video whose creation time is unknown comes after those with one.
        assert_eq!(order(vec![candidate("n", None, None), candidate("m", t2, None)]), ["m", "n"]);
    }

    /// Runs racing to make a row's video keep the first made, however far along the others
    /// are when read: the run that made it saw only its own, and kept it.
    #[test]
    fn racing_runs_keep_the_first_made_whatever_its_progress() {
        let order = |mut c: Vec<Candidate>| {
            first_made(&mut c);
            c.into_iter().map(|c| c.video.video_id).collect::<Vec<_>>()
        };
        let t1 = Some("2026-11-29T10:00:00+00:00");
        let t2 = Some("2026-11-29T10:00:01+00:00");
        assert_eq!(
            order(vec![candidate("b", t2, Some("uploaded")), candidate("a", t1, None)]),
            ["a", "b"]
        );
        // In the same second, the server's order.
        assert_eq!(
            order(vec![candidate("y", t1, Some("uploaded")), candidate("x", t1, None)]),
            ["y", "x"]
        );
        assert_eq!(order(vec![candidate("n", None, None), candidate("m", t2, None)]), ["m", "n"]);
    }

    #[test]
    fn only_an_old_unfinished_video_is_replaced() {
        let days_ago = |d: i64| (Utc::now() - chrono::TimeDelta::days(d)).to_rfc3339();
        assert!(replace(&candidate("a", Some(&days_ago(7)), Some("uploading"))));
        assert!(replace(&candidate("a", Some(&days_ago(7)), None)));
        assert!(!replace(&candidate("a", Some(&days_ago(5)), Some("uploading"))));
        assert!(
            !replace(&candidate("a", Some(&days_ago(30)), Some("uploaded"))),
            "a complete video stays"
        );
        assert!(!replace(&candidate("a", None, Some("uploading"))), "no creation time, no grounds");
    }
}
