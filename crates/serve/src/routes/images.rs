//! Images: `POST|PATCH /videos/{id}/thumbnail` and `/watermarks` (what is kept, and where:
//! [`crate::assets`]).

use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chrono::Utc;

use super::source::{receive, refuse, Receiving};
use super::tracks::empty_file;
use super::{blocking, json_response, page_params, paginate, payload, query_pairs};
use crate::assets::{thumbnail_kind, watermark_kind, Thumbnail, THUMBNAIL_MAX_BYTES};
use crate::problem::ApiError;
use crate::store::place_file;
use crate::App;
use avbatch_api::{valid_thumbnail_timecode, ImageKind, ThumbnailPick};

/// The first bytes of a received file, to tell its kind.
fn head(path: &std::path::Path) -> Result<Vec<u8>, ApiError> {
    let mut head = Vec::with_capacity(16);
    std::fs::File::open(path)
        .and_then(|f| f.take(16).read_to_end(&mut head))
        .map_err(|e| ApiError::internal("reading the image", e))?;
    Ok(head)
}

/// Receives the one image file of a multipart body and tells its kind with `kind` from its
/// first bytes and the extension of the name it was sent under, when it has one (api.video
/// checks either, its documentation says, and its refusal names extensions); the file is in
/// `incoming/` (the caller places or removes it).
async fn receive_image(
    app: &App,
    req: Request,
    kind: fn(&[u8]) -> Result<ImageKind, ApiError>,
) -> Result<(PathBuf, u64, ImageKind), ApiError> {
    let mut incoming = receive(app, req, Receiving::asset(THUMBNAIL_MAX_BYTES)).await?;
    if incoming.len == 0 {
        return Err(empty_file());
    }
    let len = incoming.len;
    let path = incoming.path.take().ok_or_else(empty_file)?;
    let name = incoming.file_name.take();
    let checked = {
        let path = path.clone();
        blocking(move || {
            let found = kind(&head(&path)?)?;
            name_fits(name.as_deref(), found).map(|()| found)
        })
        .await
    };
    match checked {
        Ok(k) => Ok((path, len, k)),
        Err(e) => {
            let _ = std::fs::remove_file(&path);
            Err(e)
        }
    }
}

/// Whether the name an image was sent under says its kind: no extension, or one of its kind's
/// (`jpg`/`jpeg` for a JPEG, `png`, `webp`, in any case); else `uploaded-file-extension-invalid`.
fn name_fits(name: Option<&str>, kind: ImageKind) -> Result<(), ApiError> {
    let Some((_, extension)) = name.and_then(|n| n.rsplit_once('.')) else { return Ok(()) };
    if kind.named_by(extension) {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "uploaded-file-extension-invalid",
            "Only [jpeg, jpg, JPG, JPEG] extensions are supported.",
        )
        .name("file")
        .detail(format!(
            "the file is named `.{extension}` but holds {}: its extension must say its type",
            kind.mime()
        )))
    }
}

/// Makes `thumbnail` the video's, under its lock; the file of the one it replaces, if any, is
/// removed once the record no longer names it.
async fn set_thumbnail(
    app: &Arc<App>,
    id: &str,
    thumbnail: Thumbnail,
    file: Option<PathBuf>,
) -> Result<Response, ApiError> {
    let slot = app.store.video(id).ok_or_else(|| ApiError::not_found("videoId"))?;
    let store_app = app.clone();
    let record = blocking(move || {
        let changed = store_app.store.change_record(&slot, |record, dir| {
            if let (Some(file), Thumbnail::Uploaded { file: name, .. }) = (&file, &thumbnail) {
                place_file(file, dir, name)
                    .map_err(|e| ApiError::internal("storing the thumbnail", e))?;
            }
            let old = match record.thumbnail.replace(thumbnail.clone()) {
                Some(Thumbnail::Uploaded { file: old, .. })
                    if !matches!(&thumbnail, Thumbnail::Uploaded { file, .. } if *file == old) =>
                {
                    Some(dir.join(old))
                }
                _ => None,
            };
            record.updated_at = Utc::now();
            Ok(old)
        });
        match changed {
            Ok((old, record)) => {
                if let Some(old) = old {
                    let _ = std::fs::remove_file(old);
                }
                Ok(record)
            }
            Err(e) => {
                if let Some(file) = &file {
                    let _ = std::fs::remove_file(file);
                }
                Err(e)
            }
        }
    })
    .await?;
    Ok(json_response(StatusCode::OK, &app.video(&record)))
}

/// `POST /videos/{id}/thumbnail`: multipart, one JPEG, PNG or WebP image of at most 8 MB →
/// 200 Video.
pub async fn upload_thumbnail(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    req: Request,
) -> Result<Response, ApiError> {
    if app.store.video(&id).is_none() {
        return refuse(ApiError::not_found("videoId"), req.into_body()).await;
    }
    let (path, size, kind) = receive_image(&app, req, thumbnail_kind).await?;
    let thumbnail = Thumbnail::Uploaded {
        file: format!("thumbnail.{}", kind.extension()),
        mime: kind.mime().to_owned(),
        size,
    };
    set_thumbnail(&app, &id, thumbnail, Some(path)).await
}

/// `PATCH /videos/{id}/thumbnail` `{"timecode": "…"}` → 200 Video. The timecode is kept in
/// the video's record (the double has no frames to render).
pub async fn pick_thumbnail(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    if app.store.video(&id).is_none() {
        return Err(ApiError::not_found("videoId"));
    }
    let rule =
        "This attribute must be a timecode like \"00:01:00.000\", \"00:00:03:12\" or \"124\".";
    let ThumbnailPick { timecode } = payload(&body, "timecode", rule)?;
    if !valid_thumbnail_timecode(&timecode) {
        return Err(ApiError::invalid_attribute("timecode", rule));
    }
    set_thumbnail(&app, &id, Thumbnail::Picked { timecode }, None).await
}

/// `POST /watermarks`: multipart, one JPEG or PNG image → 200 `{watermarkId, createdAt}`.
pub async fn create_watermark(
    State(app): State<Arc<App>>,
    req: Request,
) -> Result<Response, ApiError> {
    let (path, _, kind) = receive_image(&app, req, watermark_kind).await?;
    let store_app = app.clone();
    let record = blocking(move || {
        let made = store_app.store.create_watermark(&path, kind, Utc::now());
        if made.is_err() {
            let _ = std::fs::remove_file(&path);
        }
        made.map_err(|e| ApiError::internal("storing the watermark", e))
    })
    .await?;
    Ok(json_response(StatusCode::OK, &record.image()))
}

/// `GET /watermarks?sortBy=createdAt&sortOrder=asc|desc`, paginated.
pub async fn list_watermarks(State(app): State<Arc<App>>, uri: Uri) -> Result<Response, ApiError> {
    let pairs = query_pairs(&uri);
    let mut desc = false;
    for (k, v) in &pairs {
        match (k.as_str(), v.as_str()) {
            ("sortBy", "createdAt") | ("sortOrder", "asc") => {}
            ("sortOrder", "desc") => desc = true,
            ("sortBy", _) => {
                return Err(ApiError::invalid_query("sortBy", "sortBy must be createdAt"))
            }
            ("sortOrder", _) => {
                return Err(ApiError::invalid_query("sortOrder", "sortOrder must be asc or desc"))
            }
            _ => {}
        }
    }
    let (page, size) = page_params(&pairs)?;
    let mut all = app.store.watermarks();
    all.sort_by(|a, b| (a.created_at, &a.watermark_id).cmp(&(b.created_at, &b.watermark_id)));
    if desc {
        all.reverse();
    }
    let page =
        paginate(&all, page, size, "/watermarks", &pairs, crate::assets::WatermarkRecord::image);
    Ok(json_response(StatusCode::OK, &page))
}

/// `DELETE /watermarks/{id}` → 204, or 404 naming `watermarkId`.
pub async fn delete_watermark(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let deleted = blocking(move || {
        app.store.delete_watermark(&id).map_err(|e| ApiError::internal("deleting a watermark", e))
    })
    .await?;
    if !deleted {
        return Err(ApiError::not_found("watermarkId"));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
