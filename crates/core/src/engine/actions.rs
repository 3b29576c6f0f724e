//! What `upsert`, `update` and `delete` rows do besides uploading: a video's fields brought in
//! step with its row, and a row's videos deleted. Each exactly once, like an upload:
//!
//! - **Fields.** The PATCH carries only the fields that differ ([`avbatch_api::update_for`], the
//!   comparison `avbatch check` makes), read from the video itself. Setting a value twice leaves
//!   the same video, so a PATCH whose answer was lost is simply sent again. Once the video holds
//!   the row's fields, the journal records their digest for that video (a create records it
//!   too, the video being made with them): a re-run whose row did not change asks nothing.
//! - **Delete.** Every video carrying the row's key (else, when none does, the raw key avbatch
//!   0.1 stored) goes, with the one the journal recorded: for a row keyed by its file, whose key
//!   moves with the file's time, the latest upload of its path. A video already gone counts as
//!   deleted. The journal then records the deletion and forgets the row's upload, so a later
//!   row with the key (or the path) uploads anew, and a re-run asks nothing.
//!
//! The rules are public ([`fields_held`], [`field_changes`], [`journaled_for_delete`],
//! [`to_delete`]): `--dry-run` plans each row with them, so the plan and the run agree.

use super::video::{self, Found};
use super::{journal, new_video, Ctx, RowResult, SessionEnd, OWN_METADATA};
use crate::journal::{Journal, JournalError};
use crate::manifest::{Row, RowAction};
use avbatch_api::{differences, update_for, NewVideo, Video, VideoStatus, VideoUpdate};

/// The digest of the fields a row sets that [`avbatch_api::differences`] compares, as a create
/// or an update sends them (tags and metadata in a set's order, as they are compared), and the
/// creation-only `clip` and `watermark`, so a change to any of them is looked at again.
pub(super) fn fields_digest(video: &NewVideo) -> String {
    let mut tags = video.tags.clone();
    tags.sort_unstable();
    tags.dedup();
    // The mark of the run that made the video is not one of the row's fields.
    let mut metadata: Vec<_> =
        video.metadata.iter().filter(|m| m.key != crate::marks::RUN_METADATA).cloned().collect();
    metadata.sort_by(|a, b| (&a.key, &a.value).cmp(&(&b.key, &b.value)));
    metadata.dedup();
    let fields = VideoUpdate {
        title: Some(video.title.clone()),
        description: video.description.clone(),
        tags: Some(tags),
        metadata: Some(metadata),
        public: video.public,
        panoramic: video.panoramic,
        mp4_support: video.mp4_support,
        player_id: video.player_id.clone(),
        language: video.language.clone(),
        transcript: video.transcript,
        transcript_summary: video.transcript_summary,
        transcript_summary_attributes: Some(video.transcript_summary_attributes.clone()),
    };
    let json = serde_json::to_vec(&(fields, &video.clip, &video.watermark))
        .expect("a video's fields serialize");
    super::assets::digest(&[&json])
}

/// Records that video `video_id` of row `key` holds the fields of `payload`.
pub(super) async fn record_fields(
    ctx: &Ctx,
    key: &str,
    video_id: &str,
    payload: &NewVideo,
) -> Result<(), SessionEnd> {
    let (k, v, d) = (key.to_owned(), video_id.to_owned(), fields_digest(payload));
    journal(ctx, move |j| j.fields_set(&k, &v, &d)).await.map(drop)
}

/// Whether the journal's record of the fields set on the row's video (`recorded`: the video
/// and their digest) says video `video_id` holds the row's fields: then a run neither reads
/// it nor changes it, and neither does its plan.
pub fn fields_held(row: &Row, video_id: &str, recorded: Option<&(String, String)>) -> bool {
    recorded.is_some_and(|(v, d)| v == video_id && *d == fields_digest(&new_video(row)))
}

/// What bringing `held`, the row's video, in step with the row takes: the fields one PATCH
/// changes, in [`avbatch_api::differences`]' order, and, when a field api.video sets only when
/// a video is made differs too, why the row fails (its other fields are set all the same).
/// The run does this, and its plan says it.
pub fn field_changes(row: &Row, held: &Video) -> (Vec<&'static str>, Option<String>) {
    let found = differences(&new_video(row), held, &OWN_METADATA);
    let changed = found.iter().filter(|d| d.settable()).map(|d| d.field).collect();
    let fixed = found.iter().find(|d| !d.settable()).map(|fixed| {
        // Not recorded as set: every run says it until a new video carries it.
        let how = match row.action {
            RowAction::Update => "an `upsert` row with --force makes a new video with it",
            _ => "--force makes a new video with it, and the old one goes once it is complete",
        };
        format!(
            "`{}` of video `{}` is {} where the row wants {}, and api.video sets it only when a \
             video is made: {how}",
            fixed.field, held.video_id, fixed.held, fixed.wanted
        )
    });
    (changed, fixed)
}

/// Brings video `video_id`'s fields in step with the row: a PATCH of those that differ, none
/// when the journal says it holds them already ([`fields_held`], [`field_changes`]). Returns
/// the fields changed, in [`avbatch_api::differences`]' order.
pub(super) async fn settle_fields(
    ctx: &Ctx,
    row: &Row,
    key: &str,
    video_id: &str,
) -> Result<Vec<&'static str>, SessionEnd> {
    let k = key.to_owned();
    let recorded = journal(ctx, move |j| j.fields_set_on(&k)).await?.flatten();
    if fields_held(row, video_id, recorded.as_ref()) {
        return Ok(Vec::new());
    }
    let Some(held) = ctx.client.video(video_id).await? else {
        return Err(SessionEnd::Gone { video_id: video_id.to_owned() });
    };
    let wanted = new_video(row);
    let (changed, fixed) = field_changes(row, &held);
    if !changed.is_empty() {
        if ctx.stop.is_cancelled() {
            return Err(SessionEnd::Stopped);
        }
        ctx.client.update_video(video_id, &update_for(&wanted, &held, &OWN_METADATA)).await?;
        tracing::debug!(row = row.line, video_id, ?changed, "fields updated");
    }
    if let Some(why) = fixed {
        return Err(SessionEnd::failed(why));
    }
    record_fields(ctx, key, video_id, &wanted).await?;
    Ok(changed)
}

/// Whether an `upsert` row run with --force must go to a new video: the complete one its key
/// has holds a creation-only field (`clip`, `watermark`) other than the row's.
pub(super) async fn needs_new_video(
    ctx: &Ctx,
    row: &Row,
    video_id: Option<&str>,
    status: Option<&VideoStatus>,
) -> Result<bool, SessionEnd> {
    let (Some(video_id), Some(status)) = (video_id, status) else { return Ok(false) };
    if row.action != RowAction::Upsert || !ctx.config.force || !status.is_uploaded() {
        return Ok(false);
    }
    let Some(held) = ctx.client.video(video_id).await? else { return Ok(false) };
    Ok(differences(&new_video(row), &held, &OWN_METADATA).iter().any(|d| !d.settable()))
}

/// An `update` row: its video's fields in step, then its assets; never an upload. Fails when
/// its key has no video.
pub(super) async fn update(ctx: &Ctx, row: &Row, result: &mut RowResult) -> Result<(), SessionEnd> {
    let key = row.key();
    if !ctx.client.has_api_key() {
        return Err(SessionEnd::failed("updating a video takes an API key, not an upload token"));
    }
    // The journal's video: the row's upload, else the video its fields were last set on.
    let (k, legacy) = (key.clone(), row.identity());
    let (uploaded, fields) = journal(ctx, move |j| {
        let uploaded = j.get_or_migrate(&k, &legacy)?.and_then(|e| e.video_id);
        Ok((uploaded, j.fields_set_on(&k)?))
    })
    .await?
    .unwrap_or_default();
    if let Some((video_id, digest)) = &fields {
        let current = uploaded.as_ref().is_none_or(|u| u == video_id);
        if current && *digest == fields_digest(&new_video(row)) && !super::assets::any(row) {
            // Nothing changed since this journal's run set them: nothing to ask.
            result.video_id = Some(video_id.clone());
            return Err(SessionEnd::AlreadyDone);
        }
    }
    let recorded = uploaded.or(fields.map(|(video, _)| video));
    let Some(Found { video_id, status, .. }) =
        video::existing(ctx, row, &key, recorded.as_deref(), result).await?
    else {
        return Err(SessionEnd::failed(
            "no video carries this row's key: `update` changes only videos that exist (`upsert` \
             creates them)",
        ));
    };
    result.video_id = Some(video_id.clone());
    result.updated = settle_fields(ctx, row, &key, &video_id).await?;
    if super::assets::any(row) {
        if status.is_uploaded() {
            result.assets = super::assets::settle(ctx, row, &key, &video_id).await?;
        } else {
            result.add_note(
                "its source is not complete: its thumbnail, captions and chapters wait for an \
                 upload",
            );
        }
    }
    if result.updated.is_empty() && result.assets.is_empty() {
        return Err(SessionEnd::AlreadyDone);
    }
    Ok(())
}

/// What the journal says of a `delete` row.
#[derive(Debug, Default)]
pub struct Journaled {
    /// The videos an earlier run deleted for it, when one did: nothing is left to do.
    pub deleted: Option<Vec<String>>,
    /// The videos the row's uploads went to: under its key, or, for a row keyed by its file
    /// whose key moved with the file's time, the latest upload of its path.
    pub uploaded: Vec<String>,
    /// That latest upload's key, which is forgotten with the row's.
    pub path_key: Option<String>,
}

/// What the journal says of `row`, a `delete` row. `migrate`: an entry under avbatch 0.1's key
/// moves to the row's (a run's journal; a dry run reads its own without writing).
pub fn journaled_for_delete(
    j: &Journal,
    row: &Row,
    migrate: bool,
) -> Result<Journaled, JournalError> {
    let (key, legacy) = (row.key(), row.identity());
    let entry = match migrate {
        true => j.get_or_migrate(&key, &legacy)?,
        false => j.get(&key)?.map_or_else(|| j.get(&legacy), |e| Ok(Some(e)))?,
    };
    let mut out = Journaled { deleted: j.deleted(&key)?, ..Journaled::default() };
    match entry {
        Some(e) => out.uploaded.extend(e.video_id),
        // Keyed by its file (no `id`), the key moves with the file's time: its path's upload.
        None if row.id.is_none() => {
            if let Some(e) = j.latest_for_path(&row.path_text, &key)? {
                out.uploaded.extend(e.video_id);
                out.path_key = Some(e.key);
            }
        }
        None => {}
    }
    Ok(out)
}

/// The videos a `delete` row deletes: the journal's (`uploaded`), then those the row owns
/// (`found`: under its key and under avbatch 0.1's raw key), each once. The run deletes these,
/// and its plan names them.
pub fn to_delete(uploaded: &[String], found: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut ids = uploaded.to_vec();
    for id in found {
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    ids
}

/// A `delete` row: every video under its key deleted. `Err(AlreadyDone)` when there was none
/// (or the journal records the deletion).
pub(super) async fn delete(ctx: &Ctx, row: &Row, result: &mut RowResult) -> Result<(), SessionEnd> {
    let key = row.key();
    if !ctx.client.has_api_key() {
        return Err(SessionEnd::failed("deleting a video takes an API key, not an upload token"));
    }
    let r = row.clone();
    let said = journal(ctx, move |j| journaled_for_delete(j, &r, true)).await?.unwrap_or_default();
    if let Some(ids) = said.deleted {
        result.video_id = ids.first().cloned();
        result.add_note(match ids.len() {
            0 => "an earlier run found no video under its key".to_owned(),
            _ => format!("deleted by an earlier run: {}", super::listed(&ids)),
        });
        return Err(SessionEnd::AlreadyDone);
    }
    let found = video::owned(ctx, row, &key).await?;
    let ids = to_delete(&said.uploaded, found.into_iter().map(|v| v.video_id));
    for id in &ids {
        if ctx.stop.is_cancelled() {
            return Err(SessionEnd::Stopped);
        }
        ctx.client.delete_video(id).await?;
        ctx.keys.forget(&key, id);
        ctx.keys.forget(&row.identity(), id);
        tracing::debug!(row = row.line, video_id = %id, "video deleted");
    }
    let (k, gone, path_key) = (key.clone(), ids.clone(), said.path_key);
    journal(ctx, move |j| {
        j.record_deleted(&k, &gone)?;
        // The path's upload under its old key is gone too: a later row for the path uploads.
        path_key.map_or(Ok(()), |old| j.record_deleted(&old, &gone))
    })
    .await?;
    result.video_id = ids.first().cloned();
    if ids.len() > 1 {
        result.add_note(format!("deleted every video under its key: {}", super::listed(&ids)));
    }
    if ids.is_empty() {
        result.add_note("no video carries its key");
        return Err(SessionEnd::AlreadyDone);
    }
    result.deleted = ids;
    Ok(())
}
