//! What `upsert`, `update` and `delete` rows do besides uploading: a video's fields brought in
//! step with its row, and a row's videos deleted. Each exactly once, like an upload:
//!
//! - **Fields.** The PATCH carries only the fields that differ ([`avbatch_api::update_for`], the
//!   comparison `avbatch check` makes), read from the video itself. Setting a value twice leaves
//!   the same video, so a PATCH whose answer was lost is simply sent again. Once the video holds
//!   the row's fields, the journal records their digest for that video (a create records it
//!   too, the video being made with them): a re-run whose row did not change asks nothing.
//! - **Delete.** Every video carrying the row's key (or the raw key avbatch 0.1 stored) goes,
//!   with the one the journal recorded; a video already gone counts as deleted. The journal then
//!   records the deletion and forgets the row's upload, so a later row with the key uploads
//!   anew, and a re-run asks nothing.

use super::video::{self, Found};
use super::{journal, new_video, Ctx, RowResult, SessionEnd, OWN_METADATA};
use crate::manifest::{Row, RowAction};
use avbatch_api::{differences, update_for, NewVideo, VideoStatus, VideoUpdate};

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

/// Brings video `video_id`'s fields in step with the row: a PATCH of those that differ, none
/// when the journal says it holds them already. Returns the fields changed, in
/// [`avbatch_api::differences`]' order.
pub(super) async fn settle_fields(
    ctx: &Ctx,
    row: &Row,
    key: &str,
    video_id: &str,
) -> Result<Vec<&'static str>, SessionEnd> {
    let wanted = new_video(row);
    let digest = fields_digest(&wanted);
    let k = key.to_owned();
    let recorded = journal(ctx, move |j| j.fields_set_on(&k)).await?.flatten();
    if recorded.is_some_and(|(v, d)| v == video_id && d == digest) {
        return Ok(Vec::new());
    }
    let Some(held) = ctx.client.video(video_id).await? else {
        return Err(SessionEnd::Gone { video_id: video_id.to_owned() });
    };
    let found = differences(&wanted, &held, &OWN_METADATA);
    let changed: Vec<&'static str> =
        found.iter().filter(|d| d.settable()).map(|d| d.field).collect();
    if !changed.is_empty() {
        if ctx.stop.is_cancelled() {
            return Err(SessionEnd::Stopped);
        }
        ctx.client.update_video(video_id, &update_for(&wanted, &held, &OWN_METADATA)).await?;
        tracing::debug!(row = row.line, video_id, ?changed, "fields updated");
    }
    if let Some(fixed) = found.iter().find(|d| !d.settable()) {
        // Not recorded as set: every run says it until a new video carries it.
        let how = match row.action {
            RowAction::Update => "an `upsert` row with --force makes a new video with it",
            _ => "--force makes a new video with it, and the old one goes once it is complete",
        };
        return Err(SessionEnd::failed(format!(
            "`{}` of video `{video_id}` is {} where the row wants {}, and api.video sets it \
             only when a video is made: {how}",
            fixed.field, fixed.held, fixed.wanted
        )));
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

/// A `delete` row: every video under its key deleted. `Err(AlreadyDone)` when there was none
/// (or the journal records the deletion).
pub(super) async fn delete(ctx: &Ctx, row: &Row, result: &mut RowResult) -> Result<(), SessionEnd> {
    let key = row.key();
    if !ctx.client.has_api_key() {
        return Err(SessionEnd::failed("deleting a video takes an API key, not an upload token"));
    }
    let (k, legacy) = (key.clone(), row.identity());
    let (deleted, uploaded) = journal(ctx, move |j| {
        let uploaded = j.get_or_migrate(&k, &legacy)?.and_then(|e| e.video_id);
        Ok((j.deleted(&k)?, uploaded))
    })
    .await?
    .unwrap_or_default();
    if let Some(ids) = deleted {
        result.video_id = ids.first().cloned();
        result.add_note(match ids.len() {
            0 => "an earlier run found no video under its key".to_owned(),
            _ => format!("deleted by an earlier run: {}", super::listed(&ids)),
        });
        return Err(SessionEnd::AlreadyDone);
    }
    let mut ids: Vec<String> = uploaded.into_iter().collect();
    for video in video::look_up(ctx, row, &key).await? {
        if !ids.contains(&video.video_id) {
            ids.push(video.video_id);
        }
    }
    for id in &ids {
        if ctx.stop.is_cancelled() {
            return Err(SessionEnd::Stopped);
        }
        ctx.client.delete_video(id).await?;
        ctx.keys.forget(&key, id);
        tracing::debug!(row = row.line, video_id = %id, "video deleted");
    }
    let (k, gone) = (key.clone(), ids.clone());
    journal(ctx, move |j| j.record_deleted(&k, &gone)).await?;
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
