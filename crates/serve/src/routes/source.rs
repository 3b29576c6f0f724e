//! Receiving sources: `POST /videos/{id}/source` and `POST /upload?token=`.
//!
//! The body is parsed as it streams (multer) and the file part goes straight to a file in
//! `incoming/`, never whole into memory. Header rules are checked before the body is read, all
//! rules again once its length is known, and only then is the chunk renamed into the video.
//! Every refusal reads the body to the end first (up to a bound), so the client gets the error
//! instead of a broken pipe.

use std::collections::HashMap;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use avbatch_api::VideoId;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::Response;
use chrono::Utc;
use futures::{Stream, StreamExt};
use tokio::io::{AsyncWriteExt, BufWriter};

use super::{blocking, json_response, query_pairs};
use crate::config::{MAX_CHUNK_BYTES, MIN_CHUNK_BYTES, MULTIPART_OVERHEAD};
use crate::net::ConnMeta;
use crate::problem::ApiError;
use crate::store::{new_id, VideoSlot};
use crate::upload::{self, parse_content_range, ContentRange, UploadState};
use crate::video::VideoRecord;
use crate::{drain, App};

/// Most text fields (parts other than the file) one upload request may carry. The official
/// clients send at most one, `videoId` (API.md §3.5); 16 leaves room for clients that add a title
/// or tags, while one request can no longer hold thousands of fields (issue #11, item 18).
pub const MAX_TEXT_FIELDS: usize = 16;
/// Most bytes of text-field values in one upload request, all fields together: a `videoId` is 24
/// bytes, so 64 KiB is generous, and ten requests at once hold at most 640 KiB of them.
pub const MAX_TEXT_BYTES: usize = 64 * 1024;
/// Most body bytes the multipart parser may hold that are neither file data nor text values:
/// boundaries and part headers (a few hundred bytes per part), plus the one read from the socket
/// it has not parsed yet (hyper reads at most about 400 KiB at once). The parser buffers a part's
/// header block whole until it ends, so without this bound one part "header" could hold the
/// 264 MiB a request may carry in memory.
pub const MAX_MULTIPART_FRAMING: u64 = 1024 * 1024;

/// Answers `err` after reading the body, so the client can read the answer.
pub(crate) async fn refuse(err: ApiError, body: Body) -> Result<Response, ApiError> {
    drain(body).await;
    Err(err)
}

fn content_range(headers: &HeaderMap) -> Result<Option<ContentRange>, ApiError> {
    match headers.get(header::CONTENT_RANGE) {
        None => Ok(None),
        Some(v) => parse_content_range(v.to_str().unwrap_or("\u{fffd}")).map(Some),
    }
}

/// A received file part, deleted on drop unless it was committed.
pub(crate) struct Incoming {
    /// Where it was written (taken when it is committed).
    pub path: Option<PathBuf>,
    /// Its length.
    pub len: u64,
    /// The name it was sent under, without its folders.
    pub file_name: Option<String>,
    fields: HashMap<String, String>,
}

impl Drop for Incoming {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// How long an upload stalled by `--stall-rate` is held before its connection is reset: far longer
/// than any client's progress time-out, so that is what ends it. The body time-out does not apply,
/// since the server stops asking for the body.
const STALL_HOLD: std::time::Duration = std::time::Duration::from_secs(600);

/// What happens to a body as it streams in.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// `--reset-rate`.
    Reset,
    /// `--stall-rate`.
    Stall,
}

/// Feeds the multipart parser one chunk per poll and refuses the body once the parser holds more
/// than [`MAX_MULTIPART_FRAMING`] bytes that did not come out as file data or text values.
///
/// The parser pulls every chunk that is ready before it parses any, so it is made to parse each
/// chunk before it gets the next: what it still holds when it asks again is framing (and the few
/// bytes that might start a boundary), never data merely not parsed yet.
struct FramingLimit<S> {
    inner: Pin<Box<S>>,
    /// Body bytes handed to the parser.
    fed: u64,
    /// Body bytes that came out of it (counted by the reader of its fields).
    taken: Arc<AtomicU64>,
    just_fed: bool,
}

impl<S: Stream<Item = Result<Bytes, axum::Error>>> Stream for FramingLimit<S> {
    type Item = Result<Bytes, axum::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.just_fed {
            // Let the parser work through the chunk it just got; it asks again right away.
            this.just_fed = false;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        if this.fed.saturating_sub(this.taken.load(Ordering::Relaxed)) > MAX_MULTIPART_FRAMING {
            let detail =
                format!("more than {MAX_MULTIPART_FRAMING} bytes of boundaries and part headers");
            return Poll::Ready(Some(Err(axum::Error::new(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                detail,
            )))));
        }
        let next = this.inner.as_mut().poll_next(cx);
        if let Poll::Ready(Some(Ok(chunk))) = &next {
            this.fed += chunk.len() as u64;
            this.just_fed = true;
        }
        next
    }
}

/// `--stall-rate`: the body is no longer read (the client's writes block once the socket buffers
/// are full) and no answer comes, until the client gives up or [`STALL_HOLD`] passes.
async fn stall() {
    tracing::debug!("injected stall (--stall-rate): this upload is no longer read");
    tokio::time::sleep(STALL_HOLD).await;
}

fn malformed_body(e: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request("uploaded-file-invalid-file", "The uploaded file is invalid.")
        .detail(format!("the multipart body cannot be read: {e}"))
}

/// How [`receive`] treats a body.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Receiving {
    /// Most bytes the file may have (more: `uploaded-file-too-large`).
    pub max_file: u64,
    /// Whether `--reset-rate` and `--stall-rate` apply (source uploads only).
    pub faults: bool,
    /// Whether the file is written to `incoming/` (not with `--discard` for sources).
    pub keep: bool,
}

impl Receiving {
    /// A source upload.
    fn source(app: &App) -> Receiving {
        Receiving { max_file: MAX_CHUNK_BYTES, faults: true, keep: !app.store.discards() }
    }

    /// A thumbnail, track or watermark: kept whatever `--discard` says, no injected body faults.
    pub(crate) fn asset(max_file: u64) -> Receiving {
        Receiving { max_file, faults: false, keep: true }
    }
}

/// Streams the multipart body: the file part to disk (or nowhere with `--discard`), the text
/// fields into memory.
pub(crate) async fn receive(app: &App, req: Request, how: Receiving) -> Result<Incoming, ApiError> {
    let conn = req.extensions().get::<ConnectInfo<ConnMeta>>().map(|c| c.0.clone());
    let expected = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .unwrap_or(MIN_CHUNK_BYTES);
    let boundary = match req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(multer::parse_boundary)
    {
        Some(Ok(b)) => b,
        _ => {
            drain(req.into_body()).await;
            return Err(upload::no_file().detail("the request is not multipart/form-data"));
        }
    };
    let body = with_faults(app, &how, expected, conn, req.into_body());
    // Past this the connection is closed rather than drained.
    let hard_cap = MAX_CHUNK_BYTES + MULTIPART_OVERHEAD + 64 * 1024 * 1024;
    let constraints =
        multer::Constraints::new().size_limit(multer::SizeLimit::new().whole_stream(hard_cap));
    // Body bytes that came out of the parser as file data or text values.
    let taken = Arc::new(AtomicU64::new(0));
    let body =
        FramingLimit { inner: Box::pin(body), fed: 0, taken: taken.clone(), just_fed: false };
    let mut multipart = multer::Multipart::with_constraints(body, boundary, constraints);

    let mut incoming = Incoming { path: None, len: 0, file_name: None, fields: HashMap::new() };
    let (mut files, mut too_large) = (0, false);
    let mut text = TextFields::default();
    while let Some(mut field) = multipart.next_field().await.map_err(malformed_body)? {
        let is_file = field.file_name().is_some() || field.name() == Some("file");
        if !is_file {
            match text.read(field, &taken).await? {
                Ok((name, value)) => incoming.fields.insert(name, value),
                Err(refusal) => {
                    drain_multipart(multipart, &taken).await;
                    return Err(refusal);
                }
            };
            continue;
        }
        files += 1;
        if files > 1 {
            // Read on to the end so the refusal can be sent.
            while let Some(chunk) = field.chunk().await.map_err(malformed_body)? {
                taken.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            }
            continue;
        }
        too_large |= write_file(app, &how, field, &mut incoming, &taken).await?;
    }
    if too_large {
        return Err(upload::too_large()
            .detail(format!("a request may carry at most {} bytes", how.max_file)));
    }
    match files {
        0 => Err(upload::no_file()),
        1 => Ok(incoming),
        _ => Err(upload::multiple_files()),
    }
}

/// The request's body with `--reset-rate` and `--stall-rate` applied: the connection cut, or
/// reading stopped, once the drawn number of body bytes has arrived.
fn with_faults(
    app: &App,
    how: &Receiving,
    expected: u64,
    conn: Option<ConnMeta>,
    body: Body,
) -> impl Stream<Item = Result<Bytes, axum::Error>> {
    let reset_at = how.faults.then(|| app.faults.reset_point(expected)).flatten();
    let stall_at = how.faults.then(|| app.faults.stall_point(expected)).flatten();
    let mut seen = 0u64;
    body.into_data_stream().then(move |chunk| {
        let mut fault = None;
        if let Ok(c) = &chunk {
            seen += c.len() as u64;
            if reset_at.is_some_and(|limit| seen > limit) {
                fault = Some(Fault::Reset);
            } else if stall_at.is_some_and(|limit| seen > limit) {
                fault = Some(Fault::Stall);
            }
        }
        let conn = conn.clone();
        async move {
            let Some(fault) = fault else { return chunk };
            if fault == Fault::Stall {
                stall().await;
            }
            if let Some(conn) = &conn {
                conn.kill();
            }
            Err(axum::Error::new(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "connection reset (injected fault)",
            )))
        }
    })
}

/// The text fields of an upload so far, within their bounds.
#[derive(Default)]
struct TextFields {
    count: usize,
    bytes: usize,
}

impl TextFields {
    /// Reads a text field: its name and value, or the refusal of one past the bounds (the
    /// caller drains the rest of the body before sending it).
    async fn read(
        &mut self,
        mut field: multer::Field<'_>,
        taken: &AtomicU64,
    ) -> Result<Result<(String, String), ApiError>, ApiError> {
        let name = field.name().unwrap_or_default().to_owned();
        self.count += 1;
        if self.count > MAX_TEXT_FIELDS {
            let why =
                format!("an upload carries at most {MAX_TEXT_FIELDS} form fields besides the file");
            return Ok(Err(ApiError::invalid_attribute(&name, why)));
        }
        let mut value = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(malformed_body)? {
            taken.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            self.bytes += chunk.len();
            if self.bytes > MAX_TEXT_BYTES {
                let why = "the form fields besides the file are limited to 64 KiB in all";
                return Ok(Err(ApiError::invalid_attribute(&name, why)));
            }
            value.extend_from_slice(&chunk);
        }
        Ok(Ok((name, String::from_utf8_lossy(&value).into_owned())))
    }
}

/// Receives the file part: to `incoming/` (unless not kept), durable before it is
/// acknowledged. Returns whether it was larger than the request may carry (then read on, not
/// kept).
async fn write_file(
    app: &App,
    how: &Receiving,
    mut field: multer::Field<'_>,
    incoming: &mut Incoming,
    taken: &AtomicU64,
) -> Result<bool, ApiError> {
    let failed = |e| ApiError::internal("receiving the file", e);
    incoming.file_name =
        field.file_name().map(|n| n.rsplit(['/', '\\']).next().unwrap_or(n).to_owned());
    let mut writer = None;
    if how.keep {
        let path = app.store.incoming_path();
        let file = tokio::fs::File::create(&path).await.map_err(failed)?;
        incoming.path = Some(path);
        writer = Some(BufWriter::with_capacity(1 << 20, file));
    }
    let mut too_large = false;
    while let Some(chunk) = field.chunk().await.map_err(malformed_body)? {
        taken.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        incoming.len += chunk.len() as u64;
        if incoming.len > how.max_file {
            too_large = true;
            writer = None;
            continue;
        }
        if let Some(w) = writer.as_mut() {
            w.write_all(&chunk).await.map_err(failed)?;
        }
    }
    if let Some(mut w) = writer {
        w.flush().await.map_err(failed)?;
        // Durable before it is acknowledged.
        w.into_inner().sync_all().await.map_err(failed)?;
    }
    Ok(too_large)
}

/// Reads the rest of a refused multipart body without keeping any of it, so the client reads the
/// refusal instead of a reset. Bounded by the stream limit the parser was built with; a body that
/// stops parsing ends the drain (the connection is then closed after the answer).
async fn drain_multipart(mut multipart: multer::Multipart<'_>, taken: &AtomicU64) {
    while let Ok(Some(mut field)) = multipart.next_field().await {
        while let Ok(Some(chunk)) = field.chunk().await {
            taken.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        }
    }
}

/// Commits a received chunk to `slot` and answers: the full Video when it completed the source,
/// `{"videoId"}` otherwise.
async fn commit(
    app: Arc<App>,
    slot: Arc<VideoSlot>,
    range: Option<ContentRange>,
    mut incoming: Incoming,
) -> Result<Response, ApiError> {
    // From here the file is either renamed into the video or removed below, not by the guard.
    let path = incoming.path.take();
    let len = incoming.len;
    let complete = match path {
        // Nothing to store (`--discard`): admitting the chunk touches memory only.
        None => app.store.commit_chunk(&slot, range, None, len)?,
        Some(path) => {
            let (app, slot) = (app.clone(), slot.clone());
            blocking(move || {
                let committed = app.store.commit_chunk(&slot, range, Some(&path), len);
                if committed.is_err() {
                    let _ = std::fs::remove_file(&path);
                }
                committed
            })
            .await?
        }
    };
    let state = slot.lock();
    let response = if complete {
        json_response(StatusCode::CREATED, &app.video(&state.record))
    } else {
        json_response(StatusCode::CREATED, &VideoId { video_id: state.record.video_id.clone() })
    };
    drop(state);
    Ok(response)
}

/// `POST /videos/{id}/source`.
pub async fn upload_source(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    req: Request,
) -> Result<Response, ApiError> {
    let range = match content_range(req.headers()) {
        Ok(r) => r,
        Err(e) => return refuse(e, req.into_body()).await,
    };
    let Some(slot) = app.store.video(&id) else {
        return refuse(ApiError::not_found("videoId"), req.into_body()).await;
    };
    let checked = {
        let state = slot.lock();
        match crate::pull::upload_refusal(&state.record) {
            Some(refusal) => Err(refusal),
            None => state.upload.precheck(range),
        }
    };
    if let Err(e) = checked {
        return refuse(e, req.into_body()).await;
    }
    let incoming = receive(&app, req, Receiving::source(&app)).await?;
    commit(app, slot, range, incoming).await
}

/// `POST /upload?token=`: delegated upload; a chunk without `videoId` starts a new video.
pub async fn upload_with_token(
    State(app): State<Arc<App>>,
    uri: Uri,
    req: Request,
) -> Result<Response, ApiError> {
    let token = query_pairs(&uri)
        .into_iter()
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v)
        .filter(|t| !t.is_empty());
    let Some(token) = token else {
        let e = ApiError::new(
            StatusCode::UNAUTHORIZED,
            "authentication-missing-upload-token",
            "The upload token is missing.",
        );
        return refuse(e, req.into_body()).await;
    };
    if app.store.active_token(&token, Utc::now()).is_none() {
        let e = ApiError::new(
            StatusCode::UNAUTHORIZED,
            "authentication-invalid-upload-token",
            "The upload token is invalid or expired.",
        );
        return refuse(e, req.into_body()).await;
    }
    let range = match content_range(req.headers()) {
        Ok(r) => r,
        Err(e) => return refuse(e, req.into_body()).await,
    };
    let incoming = receive(&app, req, Receiving::source(&app)).await?;
    let slot = match incoming.fields.get("videoId").map(|s| s.trim()).filter(|s| !s.is_empty()) {
        Some(id) => app.store.video(id).ok_or_else(|| ApiError::not_found("videoId"))?,
        None => {
            // Check the chunk against a fresh video before making one, so a refused first chunk
            // leaves no empty video behind.
            UploadState::default().admit(range, incoming.len)?;
            let title = incoming
                .file_name
                .clone()
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| "file".to_owned());
            let record =
                VideoRecord::from_upload(new_id("vi"), app.store.next_seq(), Utc::now(), title);
            let app2 = app.clone();
            blocking(move || {
                app2.store
                    .insert_video(record)
                    .map_err(|e| ApiError::internal("storing the video", e))
            })
            .await?
        }
    };
    commit(app, slot, range, incoming).await
}
