//! Captions and chapters: `/videos/{id}/captions[/{language}]` and
//! `/videos/{id}/chapters[/{language}]` (what is kept, and where: [`crate::assets`]).

use std::sync::Arc;

use avbatch_api::{Caption, CaptionUpdate, Chapter};
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::Serialize;

use super::source::{receive, refuse, Receiving};
use super::{blocking, json_response, page_params, paginate, payload, query_pairs};
use crate::assets::{
    already_exists, caption, chapter, check_language, set_default, track_file, CaptionState,
    TrackKind, TRACK_MAX_BYTES,
};
use crate::config::ExistingTracks;
use crate::problem::ApiError;
use crate::store::{place_file, VideoSlot};
use crate::video::VideoRecord;
use crate::App;

/// `400 uploaded-file-empty`.
pub(crate) fn empty_file() -> ApiError {
    ApiError::bad_request("uploaded-file-empty", "The uploaded file is empty.").name("file")
}

fn no_track(kind: TrackKind) -> ApiError {
    ApiError::not_found("language").detail(match kind {
        TrackKind::Captions => "the video has no caption in this language",
        TrackKind::Chapters => "the video has no chapters in this language",
    })
}

fn video(app: &App, id: &str) -> Result<Arc<VideoSlot>, ApiError> {
    app.store.video(id).ok_or_else(|| ApiError::not_found("videoId"))
}

fn has_track(record: &VideoRecord, kind: TrackKind, language: &str) -> bool {
    match kind {
        TrackKind::Captions => record.captions.contains_key(language),
        TrackKind::Chapters => record.chapters.contains(language),
    }
}

/// A caption or a chapter, as api.video sends either.
#[derive(Serialize)]
#[serde(untagged)]
enum Track {
    Caption(Caption),
    Chapter(Chapter),
}

fn track_json(app: &App, record: &VideoRecord, kind: TrackKind, language: &str) -> Track {
    let id = &record.video_id;
    match kind {
        TrackKind::Captions => {
            let state = record.captions.get(language).copied().unwrap_or_default();
            Track::Caption(caption(&app.public_url, id, language, state))
        }
        TrackKind::Chapters => Track::Chapter(chapter(&app.public_url, id, language)),
    }
}

async fn upload(
    app: Arc<App>,
    id: String,
    language: String,
    kind: TrackKind,
    req: Request,
) -> Result<Response, ApiError> {
    if let Err(e) = check_language(&language) {
        return refuse(e, req.into_body()).await;
    }
    let slot = match video(&app, &id) {
        Ok(s) => s,
        Err(e) => return refuse(e, req.into_body()).await,
    };
    let mut incoming = receive(&app, req, Receiving::asset(TRACK_MAX_BYTES)).await?;
    if incoming.len == 0 {
        return Err(empty_file());
    }
    let path = incoming.path.take().ok_or_else(empty_file)?;
    let refuse_existing = app.faults.config().existing_tracks == ExistingTracks::Refuse;
    let (store_app, lang) = (app.clone(), language.clone());
    let ((), record) = blocking(move || {
        let changed = store_app.store.change_record(&slot, |record, dir| {
            if refuse_existing && has_track(record, kind, &lang) {
                return Err(already_exists(kind));
            }
            place_file(&path, dir, &track_file(kind, &lang))
                .map_err(|e| ApiError::internal("storing the track", e))?;
            match kind {
                // A replaced caption keeps its default flag.
                TrackKind::Captions => {
                    record.captions.entry(lang.clone()).or_default();
                }
                TrackKind::Chapters => {
                    record.chapters.insert(lang.clone());
                }
            }
            record.updated_at = Utc::now();
            Ok(())
        });
        if changed.is_err() {
            let _ = std::fs::remove_file(&path);
        }
        changed
    })
    .await?;
    Ok(json_response(StatusCode::OK, &track_json(&app, &record, kind, &language)))
}

async fn get_one(
    app: Arc<App>,
    id: String,
    language: String,
    kind: TrackKind,
) -> Result<Response, ApiError> {
    check_language(&language)?;
    let slot = video(&app, &id)?;
    let state = slot.lock();
    if !has_track(&state.record, kind, &language) {
        return Err(no_track(kind));
    }
    let json = track_json(&app, &state.record, kind, &language);
    drop(state);
    Ok(json_response(StatusCode::OK, &json))
}

async fn list(app: Arc<App>, id: String, kind: TrackKind, uri: Uri) -> Result<Response, ApiError> {
    let pairs = query_pairs(&uri);
    let (page, size) = page_params(&pairs)?;
    let slot = video(&app, &id)?;
    let record = slot.lock().record.clone();
    let languages: Vec<&String> = match kind {
        TrackKind::Captions => record.captions.keys().collect(),
        TrackKind::Chapters => record.chapters.iter().collect(),
    };
    let path = format!("/videos/{id}/{}", kind.segment());
    let render = |l: &&String| track_json(&app, &record, kind, l);
    Ok(json_response(StatusCode::OK, &paginate(&languages, page, size, &path, &pairs, render)))
}

async fn delete(
    app: Arc<App>,
    id: String,
    language: String,
    kind: TrackKind,
) -> Result<Response, ApiError> {
    check_language(&language)?;
    let slot = video(&app, &id)?;
    blocking(move || {
        let (dir, _) = app.store.change_record(&slot, |record, dir| {
            let had = match kind {
                TrackKind::Captions => record.captions.remove(&language).is_some(),
                TrackKind::Chapters => record.chapters.remove(&language),
            };
            if !had {
                return Err(no_track(kind));
            }
            record.updated_at = Utc::now();
            Ok(dir.to_owned())
        })?;
        // The record no longer names the file: a crash before this leaves only a stray file.
        let _ = std::fs::remove_file(dir.join(track_file(kind, &language)));
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /videos/{id}/captions/{language}` (multipart, one file) → 200 Caption.
pub async fn upload_caption(
    State(app): State<Arc<App>>,
    Path((id, language)): Path<(String, String)>,
    req: Request,
) -> Result<Response, ApiError> {
    upload(app, id, language, TrackKind::Captions, req).await
}

/// `POST /videos/{id}/chapters/{language}` (multipart, one file) → 200 Chapter.
pub async fn upload_chapter(
    State(app): State<Arc<App>>,
    Path((id, language)): Path<(String, String)>,
    req: Request,
) -> Result<Response, ApiError> {
    upload(app, id, language, TrackKind::Chapters, req).await
}

/// `GET /videos/{id}/captions/{language}`.
pub async fn get_caption(
    State(app): State<Arc<App>>,
    Path((id, language)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    get_one(app, id, language, TrackKind::Captions).await
}

/// `GET /videos/{id}/chapters/{language}`.
pub async fn get_chapter(
    State(app): State<Arc<App>>,
    Path((id, language)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    get_one(app, id, language, TrackKind::Chapters).await
}

/// `GET /videos/{id}/captions`, paginated.
pub async fn list_captions(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    uri: Uri,
) -> Result<Response, ApiError> {
    list(app, id, TrackKind::Captions, uri).await
}

/// `GET /videos/{id}/chapters`, paginated.
pub async fn list_chapters(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    uri: Uri,
) -> Result<Response, ApiError> {
    list(app, id, TrackKind::Chapters, uri).await
}

/// `DELETE /videos/{id}/captions/{language}` → 204.
pub async fn delete_caption(
    State(app): State<Arc<App>>,
    Path((id, language)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    delete(app, id, language, TrackKind::Captions).await
}

/// `DELETE /videos/{id}/chapters/{language}` → 204.
pub async fn delete_chapter(
    State(app): State<Arc<App>>,
    Path((id, language)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    delete(app, id, language, TrackKind::Chapters).await
}

/// `PATCH /videos/{id}/captions/{language}` `{"default": bool}` → 200 Caption. Making one
/// caption the default clears the others' flag.
pub async fn update_caption(
    State(app): State<Arc<App>>,
    Path((id, language)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    check_language(&language)?;
    let slot = video(&app, &id)?;
    let CaptionUpdate { default } = payload(&body, "default", "This attribute must be a boolean.")?;
    let (store_app, lang) = (app.clone(), language.clone());
    let ((), record) = blocking(move || {
        store_app.store.change_record(&slot, |record, _| {
            if !record.captions.contains_key(&lang) {
                return Err(no_track(TrackKind::Captions));
            }
            if let Some(default) = default {
                set_default(&mut record.captions, &lang, default);
                record.updated_at = Utc::now();
            }
            Ok(())
        })
    })
    .await?;
    let state: CaptionState = record.captions.get(&language).copied().unwrap_or_default();
    Ok(json_response(StatusCode::OK, &caption(&app.public_url, &id, &language, state)))
}
