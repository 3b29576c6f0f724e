//! `/videos`: create (refusing a `watermark.id` no watermark has), get, update, delete, list
//! with filters, and `/status`.

use std::cmp::Ordering;
use std::sync::Arc;

use avbatch_api::VideoStatus;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chrono::Utc;

use super::{blocking, json_response, page_params, paginate, query_pairs};
use crate::config::MetadataMatch;
use crate::problem::ApiError;
use crate::pull::{self, Ingest};
use crate::store::{new_id, VideoSlot};
use crate::video::VideoRecord;
use crate::App;

/// `POST /videos` → 201 Video.
pub async fn create(State(app): State<Arc<App>>, body: Bytes) -> Result<Response, ApiError> {
    let exists = |id: &str| app.store.watermark_exists(id);
    let mut record = VideoRecord::create_checked(
        new_id("vi"),
        app.store.next_seq(),
        Utc::now(),
        &body,
        &exists,
    )?;
    // A `source` is checked now (400 for a bad one) and ingested once the video exists; the
    // answer does not wait for it, as api.video's does not.
    let job = match &record.source {
        Some(source) => {
            record.ingest = Some(Ingest::Ingesting);
            Some(pull::prepare(&app, source)?)
        }
        None => None,
    };
    let json = app.video(&record);
    let store_app = app.clone();
    let slot = blocking(move || {
        store_app.store.insert_video(record).map_err(|e| ApiError::internal("storing the video", e))
    })
    .await?;
    if let Some(job) = job {
        pull::start(app, slot, job);
    }
    Ok(json_response(StatusCode::CREATED, &json))
}

/// `GET /videos/{id}`.
pub async fn get(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let slot = app.store.video(&id).ok_or_else(|| ApiError::not_found("videoId"))?;
    let json = app.video(&slot.lock().record);
    Ok(json_response(StatusCode::OK, &json))
}

/// `PATCH /videos/{id}`: members present replace the stored ones.
pub async fn update(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let slot = app.store.video(&id).ok_or_else(|| ApiError::not_found("videoId"))?;
    let app2 = app.clone();
    let record = blocking(move || {
        let mut state = slot.lock();
        if state.deleted {
            return Err(ApiError::not_found("videoId"));
        }
        let mut record = state.record.clone();
        record.update(Utc::now(), &body)?;
        app2.store
            .save_record(&slot, &record)
            .map_err(|e| ApiError::internal("storing the video", e))?;
        state.record = record.clone();
        Ok(record)
    })
    .await?;
    Ok(json_response(StatusCode::OK, &app.video(&record)))
}

/// `DELETE /videos/{id}` → 204.
pub async fn delete(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let deleted = blocking(move || {
        app.store.delete_video(&id).map_err(|e| ApiError::internal("deleting the video", e))
    })
    .await?;
    if !deleted {
        return Err(ApiError::not_found("videoId"));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /videos/{id}/status`.
pub async fn status(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let slot = app.store.video(&id).ok_or_else(|| ApiError::not_found("videoId"))?;
    let state = slot.lock();
    let complete = state.upload.is_complete();
    // A record from before `sourceCompletedAt` was kept: its last change is the best guess.
    let completed =
        complete.then(|| state.record.source_completed_at.unwrap_or(state.record.updated_at));
    let faults = app.faults.config();
    let encoding = faults.encoding.status(
        faults.seed.unwrap_or(0),
        &state.record.video_id,
        completed,
        state.upload.filesize().unwrap_or(0),
        Utc::now(),
    );
    let ingest = match &state.record.ingest {
        Some(ingest) => pull::ingest_status(ingest, &state.upload, faults.source_pull.failed_as),
        None => Some(state.upload.ingest()),
    };
    let body = VideoStatus { ingest, encoding: Some(encoding) };
    drop(state);
    Ok(json_response(StatusCode::OK, &body))
}

/// What `GET /videos` filters and sorts by.
#[derive(Default)]
struct Filter {
    title: Option<String>,
    description: Option<String>,
    tags: Vec<String>,
    metadata: Vec<(String, String)>,
    live_stream: Option<String>,
    sort_by: SortBy,
    desc: bool,
    metadata_match: MetadataMatch,
}

#[derive(Default, Clone, Copy)]
enum SortBy {
    Title,
    #[default]
    CreatedAt,
    PublishedAt,
    UpdatedAt,
}

impl Filter {
    fn from_query(
        pairs: &[(String, String)],
        metadata_match: MetadataMatch,
    ) -> Result<Filter, ApiError> {
        let mut f = Filter { metadata_match, ..Filter::default() };
        for (k, v) in pairs {
            match k.as_str() {
                "title" => f.title = Some(v.to_lowercase()),
                "description" => f.description = Some(v.to_lowercase()),
                "tags[]" | "tags" => f.tags.push(v.clone()),
                "liveStreamId" => f.live_stream = Some(v.clone()),
                "sortBy" => {
                    f.sort_by =
                        match v.as_str() {
                            "title" => SortBy::Title,
                            "createdAt" => SortBy::CreatedAt,
                            "publishedAt" => SortBy::PublishedAt,
                            "updatedAt" => SortBy::UpdatedAt,
                            _ => return Err(ApiError::invalid_query(
                                "sortBy",
                                "sortBy must be one of title, createdAt, publishedAt, updatedAt",
                            )),
                        }
                }
                "sortOrder" => {
                    f.desc = match v.as_str() {
                        "asc" => false,
                        "desc" => true,
                        _ => {
                            return Err(ApiError::invalid_query(
                                "sortOrder",
                                "sortOrder must be asc or desc",
                            ))
                        }
                    }
                }
                _ => {
                    if let Some(key) = k.strip_prefix("metadata[").and_then(|r| r.strip_suffix(']'))
                    {
                        f.metadata.push((key.to_owned(), v.clone()));
                    }
                }
            }
        }
        Ok(f)
    }

    fn matches(&self, v: &VideoRecord) -> bool {
        self.title.as_ref().is_none_or(|t| v.title.to_lowercase().contains(t))
            && self.description.as_ref().is_none_or(|d| v.description.to_lowercase().contains(d))
            && self.tags.iter().all(|t| v.tags.contains(t))
            && self.metadata.iter().all(|(k, val)| {
                v.metadata.iter().any(|m| self.metadata_match.matches(k, val, &m.key, &m.value))
            })
            // No video here comes from a live stream.
            && self.live_stream.is_none()
    }

    /// What a record is sorted by; only a title is copied.
    fn sort_key(&self, v: &VideoRecord) -> SortKey {
        let primary = match self.sort_by {
            SortBy::Title => Primary::Title(v.title.clone()),
            SortBy::CreatedAt => Primary::Time(v.created_at),
            SortBy::PublishedAt => Primary::Time(v.published_at),
            SortBy::UpdatedAt => Primary::Time(v.updated_at),
        };
        SortKey { primary, seq: v.seq }
    }

    fn compare(&self, a: &SortKey, b: &SortKey) -> Ordering {
        let ord = a.cmp(b);
        if self.desc {
            ord.reverse()
        } else {
            ord
        }
    }
}

/// The field a list is sorted by, then creation order for ties.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct SortKey {
    primary: Primary,
    seq: u64,
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum Primary {
    Title(String),
    Time(chrono::DateTime<Utc>),
}

/// `GET /videos` with filters, sorting and pagination.
pub async fn list(State(app): State<Arc<App>>, uri: Uri) -> Result<Response, ApiError> {
    let pairs = query_pairs(&uri);
    let filter = Filter::from_query(&pairs, app.faults.config().metadata_match)?;
    let (page, size) = page_params(&pairs)?;
    // Sorted by keys, and only the page's videos turned into JSON: a list of the newest videos
    // among thousands costs one page, not a copy of every record.
    let mut found: Vec<(SortKey, Arc<VideoSlot>)> =
        app.store.slots_where(|v| filter.matches(v).then(|| filter.sort_key(v)));
    found.sort_by(|a, b| filter.compare(&a.0, &b.0));
    let render = |(_, slot): &(SortKey, Arc<VideoSlot>)| app.video(&slot.lock().record);
    Ok(json_response(StatusCode::OK, &paginate(&found, page, size, "/videos", &pairs, render)))
}
