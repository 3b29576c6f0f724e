//! The asset host: `/vod/{id}/mp4/source.mp4` (the stored source, with Range), `/vod/{id}`,
//! and the files of [`crate::assets`]: `/vod/{id}/thumbnail.jpg` (whatever kind the
//! uploaded image is, with its own Content-Type), `/vod/{id}/captions/{language}.vtt` and
//! `/vod/{id}/chapters/{language}.vtt` (the bytes as sent). A private video's source, thumbnail
//! and player are served only with a token it was given ([`crate::private`]):
//! `/vod/{id}/token/{token}/mp4/source.mp4`, `…/thumbnail.jpg`, `/vod/{id}?token=` and
//! `…/session`.

use std::io::SeekFrom;
use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Response};
use futures::{StreamExt, TryStreamExt};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

use crate::assets::{track_file, Thumbnail, TrackKind};
use crate::private::{refused, session_of};
use crate::problem::ApiError;
use crate::App;

/// A request let at a private video's assets: its session, and whether the request opened it.
struct Admitted {
    session: String,
    opened: bool,
}

/// Lets a request at `id`'s source, thumbnail or player: a public video's without a token, a
/// private one's only with a token a GET of it gave ([`crate::private`]). `None`: public, no
/// token asked.
fn admit(
    app: &App,
    id: &str,
    token: Option<&str>,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<Option<Admitted>, ApiError> {
    let slot = app.store.video(id).ok_or_else(|| ApiError::not_found("videoId"))?;
    let public = slot.lock().record.public;
    let Some(token) = token else {
        return match public {
            true => Ok(None),
            false => Err(refused(
                "its assets are served with the private token a GET of the video gives, at \
                 the URLs of its `assets`",
            )),
        };
    };
    let session = session_of(uri.query(), headers);
    let (session, opened) = app.private.admit(id, token, session.as_deref())?;
    Ok(Some(Admitted { session, opened }))
}

/// `resp`, with the session cookie when this request opened the session, so that a browser
/// (or a player's next range request) keeps it.
fn with_session(mut resp: Response, id: &str, admitted: Option<Admitted>) -> Response {
    if let Some(Admitted { session, opened: true }) = admitted {
        let max_age = crate::private::SESSION_TTL.as_secs();
        let cookie = format!("avh={session}; Path=/vod/{id}; Max-Age={max_age}; HttpOnly");
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            resp.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    resp
}

/// The token in a player URL's query (`/vod/{id}?token=T`).
fn token_in(uri: &Uri) -> Option<String> {
    form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
}

/// A stored file answered whole with `content_type`; 404 when it is gone.
async fn file(path: PathBuf, content_type: String) -> Result<Response, ApiError> {
    let bytes = tokio::fs::read(&path).await.map_err(|_| ApiError::not_found("file"))?;
    let mut resp = bytes.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&content_type).unwrap_or(HeaderValue::from_static("image/jpeg")),
    );
    Ok(resp)
}

/// The uploaded thumbnail image of a public video. A picked frame has no image here (the
/// double renders none).
pub async fn thumbnail(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let admitted = admit(&app, &id, None, &uri, &headers)?;
    Ok(with_session(thumbnail_of(&app, &id).await?, &id, admitted))
}

/// The thumbnail image through a private token.
pub async fn private_thumbnail(
    State(app): State<Arc<App>>,
    Path((id, token)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let admitted = admit(&app, &id, Some(&token), &uri, &headers)?;
    Ok(with_session(thumbnail_of(&app, &id).await?, &id, admitted))
}

async fn thumbnail_of(app: &App, id: &str) -> Result<Response, ApiError> {
    let slot = app.store.video(id).ok_or_else(|| ApiError::not_found("videoId"))?;
    let thumbnail = slot.lock().record.thumbnail.clone();
    let (path, mime) = match thumbnail {
        Some(Thumbnail::Uploaded { file, mime, .. }) => (slot.dir().join(file), mime),
        Some(Thumbnail::Picked { timecode }) => {
            return Err(ApiError::not_found("thumbnail").detail(format!(
                "the thumbnail is the frame at {timecode}, and this server renders no frames"
            )))
        }
        None => return Err(ApiError::not_found("thumbnail")),
    };
    file(path, mime).await
}

async fn track(
    app: Arc<App>,
    id: String,
    name: String,
    kind: TrackKind,
) -> Result<Response, ApiError> {
    let slot = app.store.video(&id).ok_or_else(|| ApiError::not_found("videoId"))?;
    let language = name.strip_suffix(".vtt").ok_or_else(|| ApiError::not_found("language"))?;
    let known = {
        let state = slot.lock();
        match kind {
            TrackKind::Captions => state.record.captions.contains_key(language),
            TrackKind::Chapters => state.record.chapters.contains(language),
        }
    };
    if !known {
        return Err(ApiError::not_found("language"));
    }
    let path = slot.dir().join(track_file(kind, language));
    file(path, "text/vtt; charset=utf-8".to_owned()).await
}

/// A caption file, as sent.
pub async fn caption(
    State(app): State<Arc<App>>,
    Path((id, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    track(app, id, name, TrackKind::Captions).await
}

/// A chapters file, as sent.
pub async fn chapters(
    State(app): State<Arc<App>>,
    Path((id, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    track(app, id, name, TrackKind::Chapters).await
}

/// A minimal page that plays the source, so `assets.player` leads somewhere real; a private
/// video's with its token, the page's source in the token's session.
pub async fn player(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let token = token_in(&uri);
    let admitted = admit(&app, &id, token.as_deref(), &uri, &headers)?;
    let slot = app.store.video(&id).ok_or_else(|| ApiError::not_found("videoId"))?;
    let title = slot.lock().record.title.replace('&', "&amp;").replace('<', "&lt;");
    let source = match (&token, &admitted) {
        (Some(t), Some(a)) => format!("/vod/{id}/token/{t}/mp4/source.mp4?avh={}", a.session),
        _ => format!("/vod/{id}/mp4/source.mp4"),
    };
    let page = Html(format!(
        "<!doctype html><meta charset=utf-8><title>{title}</title>\
         <video controls style=\"width:100%;height:100%\" src=\"{source}\"></video>"
    ));
    Ok(with_session(page.into_response(), &id, admitted))
}

/// `/vod/{id}/token/{token}/session`: the session token of a private token, opening its session
/// on the token's first use, as `{"session_token": …}`.
pub async fn session(
    State(app): State<Arc<App>>,
    Path((id, token)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let admitted = admit(&app, &id, Some(&token), &uri, &headers)?;
    let session = admitted.as_ref().map(|a| a.session.clone()).unwrap_or_default();
    let body = super::json_response(StatusCode::OK, &serde_json::json!({"session_token": session}));
    Ok(with_session(body, &id, admitted))
}

/// The pieces of the source files that cover `start..=end`.
fn pieces(files: &[(PathBuf, u64)], start: u64, end: u64) -> Vec<(PathBuf, u64, u64)> {
    let mut out = Vec::new();
    let mut offset = 0;
    for (path, len) in files {
        let (lo, hi) = (offset, offset + len);
        offset = hi;
        if hi <= start || lo > end {
            continue;
        }
        let from = start.max(lo) - lo;
        let to = (end + 1).min(hi) - lo;
        out.push((path.clone(), from, to - from));
    }
    out
}

/// A public video's source ([`source`]).
pub async fn mp4(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let admitted = admit(&app, &id, None, &uri, &headers)?;
    Ok(with_session(source(&app, &id, method, &headers).await?, &id, admitted))
}

/// The source through a private token ([`source`]).
pub async fn private_mp4(
    State(app): State<Arc<App>>,
    Path((id, token)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let admitted = admit(&app, &id, Some(&token), &uri, &headers)?;
    Ok(with_session(source(&app, &id, method, &headers).await?, &id, admitted))
}

/// The reassembled source, streamed from the chunk files; honours a single `Range`.
async fn source(
    app: &App,
    id: &str,
    method: Method,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let slot = app.store.video(id).ok_or_else(|| ApiError::not_found("videoId"))?;
    let files = app.store.source_files(&slot).ok_or_else(|| {
        ApiError::not_found("videoId")
            .detail("the source has not been fully uploaded (or the server discards sources)")
    })?;
    let size: u64 = files.iter().map(|(_, l)| l).sum();
    let mut status = StatusCode::OK;
    let (mut start, mut end) = (0, size.saturating_sub(1));
    let mut resp_headers = HeaderMap::new();
    if let Some(range) = headers.get(header::RANGE).and_then(|r| r.to_str().ok()) {
        match http_range_header::parse_range_header(range).and_then(|r| r.validate(size)) {
            Ok(ranges) if ranges.len() == 1 => {
                (start, end) = (*ranges[0].start(), *ranges[0].end());
                status = StatusCode::PARTIAL_CONTENT;
                resp_headers.insert(
                    header::CONTENT_RANGE,
                    HeaderValue::from_str(&format!("bytes {start}-{end}/{size}")).expect("ascii"),
                );
            }
            // Several ranges: answering with the whole file is allowed (RFC 9110 §14.2).
            Ok(_) => {}
            Err(_) => {
                let mut resp = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
                resp.headers_mut().insert(
                    header::CONTENT_RANGE,
                    HeaderValue::from_str(&format!("bytes */{size}")).expect("ascii"),
                );
                return Ok(resp);
            }
        }
    }
    let len = if size == 0 { 0 } else { end - start + 1 };
    resp_headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("video/mp4"));
    resp_headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    resp_headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    let body = if method == Method::HEAD || len == 0 {
        Body::empty()
    } else {
        let stream = futures::stream::iter(pieces(&files, start, end))
            .then(|(path, offset, len)| async move {
                let mut file = tokio::fs::File::open(&path).await?;
                file.seek(SeekFrom::Start(offset)).await?;
                Ok::<_, std::io::Error>(ReaderStream::with_capacity(file.take(len), 256 * 1024))
            })
            .try_flatten();
        Body::from_stream(stream)
    };
    Ok((status, resp_headers, body).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_cover_the_range() {
        let files = vec![(PathBuf::from("a"), 5), (PathBuf::from("b"), 5), (PathBuf::from("c"), 2)];
        assert_eq!(pieces(&files, 0, 11).iter().map(|p| p.2).sum::<u64>(), 12);
        assert_eq!(
            pieces(&files, 4, 5),
            vec![(PathBuf::from("a"), 4, 1), (PathBuf::from("b"), 0, 1)]
        );
        assert_eq!(pieces(&files, 10, 11), vec![(PathBuf::from("c"), 0, 2)]);
    }
}
