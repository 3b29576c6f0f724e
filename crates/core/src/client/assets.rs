//! The calls on a video's other assets: its thumbnail (`POST|PATCH /videos/{id}/thumbnail`),
//! captions and chapters (`/videos/{id}/captions/{language}`, `/videos/{id}/chapters/…`), and
//! reading a track back from the asset host ([`Client::download`]).
//!
//! Uploads, PATCH and DELETE count in [`Bucket::Writes`], GETs in [`Bucket::Reads`], as the
//! server double classifies them; all go through [`Client::execute`] with its limiter and
//! retries. Bodies are in memory (an image of at most 8 MiB, a WebVTT file), sent as a
//! multipart body with one part named `file`, in slices so the progress time-out sees them move.

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use futures::stream::{self, StreamExt};
use rand::RngCore;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE};
use reqwest::{Method, RequestBuilder, StatusCode};
use tokio::time::Instant;

use super::{no_body, ApiError, Call, CallSite, Client, Watch};
use crate::retry::{classify, Outcome, Verdict};
use avbatch_api::{Bucket, Caption, CaptionUpdate, Chapter, Page, Problem, ThumbnailPick};

/// Slices a body goes out in, each reported to the progress watch.
const SLICE: usize = 64 * 1024;
/// Pages of a track list read at most: 100 pages of 100 tracks.
const MAX_TRACK_PAGES: u32 = 100;

fn encode(s: &str) -> String {
    // Path segments: every byte outside the unreserved set is percent-encoded (`+` too, which
    // form encoding would leave for a space).
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A file name safe inside a quoted `filename="…"`.
fn quoted(name: &str) -> String {
    name.replace('"', "%22").replace('\r', "%0D").replace('\n', "%0A")
}

/// A multipart body with one file part `file`: (content type, preamble, epilogue).
fn framing(file_name: &str, mime: &str) -> (String, Bytes, Bytes) {
    let mut raw = [0u8; 16];
    rand::rng().fill_bytes(&mut raw);
    let boundary = format!("avbatch-{}", hex::encode(raw));
    let mime = if mime.contains(['\r', '\n']) { "application/octet-stream" } else { mime };
    let preamble = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{}\"\r\n\
         Content-Type: {mime}\r\n\r\n",
        quoted(file_name)
    );
    let epilogue = format!("\r\n--{boundary}--\r\n");
    (
        format!("multipart/form-data; boundary={boundary}"),
        Bytes::from(preamble),
        Bytes::from(epilogue),
    )
}

/// The multipart body around `file`, in slices that tell `watch` as they are taken.
fn body(pre: &Bytes, file: &Bytes, post: &Bytes, watch: &Arc<Watch>) -> reqwest::Body {
    let mut pieces = vec![pre.clone()];
    let mut at = 0;
    while at < file.len() {
        let end = (at + SLICE).min(file.len());
        pieces.push(file.slice(at..end));
        at = end;
    }
    pieces.push(post.clone());
    let (moving, done) = (watch.clone(), watch.clone());
    let slices = stream::iter(pieces).map(move |b| {
        moving.progress(b.len() as u64);
        Ok::<_, std::io::Error>(b)
    });
    let end = stream::once(async move { done.finish_body() }).filter_map(|()| async { None });
    reqwest::Body::wrap_stream(slices.chain(end))
}

fn is_404(e: &ApiError) -> bool {
    e.status() == Some(StatusCode::NOT_FOUND)
}

impl Client {
    /// POSTs one file as multipart to `path` (Writes bucket) and returns the answer's JSON.
    async fn post_file<T: serde::de::DeserializeOwned>(
        &self,
        path: String,
        file: &Bytes,
        file_name: &str,
        mime: &str,
    ) -> Result<T, ApiError> {
        let (content_type, pre, post) = framing(file_name, mime);
        let length = (pre.len() + file.len() + post.len()) as u64;
        let build = |r: RequestBuilder, watch: &Arc<Watch>| {
            r.header(CONTENT_TYPE, content_type.as_str())
                .header(CONTENT_LENGTH, length)
                .body(body(&pre, file, &post, watch))
        };
        let call = Call {
            method: Method::POST,
            route: path.clone(),
            path,
            bucket: Some(Bucket::Writes),
            authenticated: true,
            idempotent: true,
            body_len: length,
            build: &build,
        };
        let answer = self.execute(&call).await?;
        self.json(&call, &answer)
    }

    /// `POST /videos/{id}/thumbnail` with `image` (JPEG, PNG or WebP, at most 8 MiB) as the
    /// part `file` named `file_name` of type `mime`.
    ///
    /// Retried after a failure that may have taken effect: a second upload of the same image
    /// replaces the first with the same bytes, so repeating it changes nothing.
    pub async fn upload_thumbnail(
        &self,
        video_id: &str,
        image: Bytes,
        file_name: &str,
        mime: &str,
    ) -> Result<(), ApiError> {
        let path = format!("/videos/{}/thumbnail", encode(video_id));
        self.post_file::<serde_json::Value>(path, &image, file_name, mime).await.map(drop)
    }

    /// `PATCH /videos/{id}/thumbnail` `{"timecode": …}`: the frame at `timecode` becomes the
    /// thumbnail (setting the same frame twice is harmless, so it is retried).
    pub async fn pick_thumbnail(&self, video_id: &str, timecode: &str) -> Result<(), ApiError> {
        let path = format!("/videos/{}/thumbnail", encode(video_id));
        let pick = ThumbnailPick { timecode: timecode.to_owned() };
        self.send_json::<_, serde_json::Value>(Method::PATCH, path, &pick).await.map(drop)
    }

    /// `POST /videos/{id}/captions/{language}` with `vtt` as the part `file` named
    /// `{language}.vtt`, type `text/vtt`.
    ///
    /// Retried after a failure that may have taken effect: api.video does not document a second
    /// track in the same language; a server that replaces it gets the same bytes again, and one
    /// that refuses it answers 400, which the caller handles by deleting the track and sending
    /// it again.
    pub async fn upload_caption(
        &self,
        video_id: &str,
        language: &str,
        vtt: Bytes,
    ) -> Result<Caption, ApiError> {
        let path = format!("/videos/{}/captions/{}", encode(video_id), encode(language));
        self.post_file(path, &vtt, &format!("{language}.vtt"), "text/vtt").await
    }

    /// `PATCH /videos/{id}/captions/{language}` `{"default": …}`: with `true`, this caption
    /// becomes the video's only default.
    pub async fn set_default_caption(
        &self,
        video_id: &str,
        language: &str,
        default: bool,
    ) -> Result<Caption, ApiError> {
        let path = format!("/videos/{}/captions/{}", encode(video_id), encode(language));
        let update = CaptionUpdate { default: Some(default) };
        self.send_json(Method::PATCH, path, &update).await
    }

    /// `DELETE /videos/{id}/captions/{language}`. Ok(false) when there was none (404).
    pub async fn delete_caption(&self, video_id: &str, language: &str) -> Result<bool, ApiError> {
        let path = format!("/videos/{}/captions/{}", encode(video_id), encode(language));
        self.delete_track(path).await
    }

    /// `GET /videos/{id}/captions`: every page.
    pub async fn captions(&self, video_id: &str) -> Result<Vec<Caption>, ApiError> {
        self.all_pages(format!("/videos/{}/captions", encode(video_id))).await
    }

    /// `POST /videos/{id}/chapters/{language}` with `vtt` as the part `file` named
    /// `{language}.vtt`, type `text/vtt`. Retried as [`Client::upload_caption`] is, for the
    /// same reasons.
    pub async fn upload_chapter(
        &self,
        video_id: &str,
        language: &str,
        vtt: Bytes,
    ) -> Result<Chapter, ApiError> {
        let path = format!("/videos/{}/chapters/{}", encode(video_id), encode(language));
        self.post_file(path, &vtt, &format!("{language}.vtt"), "text/vtt").await
    }

    /// `DELETE /videos/{id}/chapters/{language}`. Ok(false) when there was none (404).
    pub async fn delete_chapter(&self, video_id: &str, language: &str) -> Result<bool, ApiError> {
        let path = format!("/videos/{}/chapters/{}", encode(video_id), encode(language));
        self.delete_track(path).await
    }

    /// `GET /videos/{id}/chapters`: every page.
    pub async fn chapters(&self, video_id: &str) -> Result<Vec<Chapter>, ApiError> {
        self.all_pages(format!("/videos/{}/chapters", encode(video_id))).await
    }

    async fn delete_track(&self, path: String) -> Result<bool, ApiError> {
        let call = Call {
            method: Method::DELETE,
            route: path.clone(),
            path,
            bucket: Some(Bucket::Writes),
            authenticated: true,
            idempotent: true,
            body_len: 0,
            build: &no_body,
        };
        match self.execute(&call).await {
            Ok(_) => Ok(true),
            Err(e) if is_404(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Every item of a paginated list at `base`, 100 a page.
    async fn all_pages<T: serde::de::DeserializeOwned>(
        &self,
        base: String,
    ) -> Result<Vec<T>, ApiError> {
        let mut all = Vec::new();
        for page in 1..=MAX_TRACK_PAGES {
            let path = format!("{base}?currentPage={page}&pageSize=100");
            let call = Call::read(path, base.clone());
            let answer = self.execute(&call).await?;
            let listed: Page<T> = self.json(&call, &answer)?;
            let last = listed.is_last(page, 100);
            all.extend(listed.data);
            if last {
                break;
            }
        }
        Ok(all)
    }

    /// GETs an asset URL (a track's `src`, a thumbnail): no credentials sent (it is on the asset
    /// host, which may not be the API's), not counted in any rate-limit bucket. At most `max`
    /// bytes (more is an error); Ok(None) on 404. Broken connections, time-outs, 408, 429 and
    /// 5xx are tried again as API calls are.
    pub async fn download(&self, url: &str, max: u64) -> Result<Option<Bytes>, ApiError> {
        let route = url.split(['?', '#']).next().unwrap_or(url).to_owned();
        let site = || CallSite { method: Method::GET, route: route.clone() };
        let started = SystemTime::now();
        let t0 = Instant::now();
        let timeout = self.config.timeout;
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            self.stats.requests.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let attempt = async {
                let sent = tokio::time::timeout(timeout, self.http.get(url).send()).await;
                let Ok(sent) = sent else { return Ok(None) };
                let mut resp = sent?;
                self.stats.answers.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let status = resp.status();
                let mut body = Vec::new();
                let mut over = false;
                if status.is_success() && resp.content_length().is_some_and(|n| n > max) {
                    over = true;
                } else {
                    loop {
                        let next = tokio::time::timeout(timeout, resp.chunk()).await;
                        let Ok(next) = next else { return Ok(None) };
                        let Some(chunk) = next? else { break };
                        if (body.len() + chunk.len()) as u64 > max {
                            over = true;
                            break;
                        }
                        body.extend_from_slice(&chunk);
                    }
                }
                Ok::<_, reqwest::Error>(Some((status, over, Bytes::from(body))))
            };
            let outcome = tokio::select! {
                r = attempt => r.transpose(),
                () = self.config.abort.cancelled() => {
                    return Err(ApiError::Cancelled { site: site() })
                }
            };
            let failure = match outcome {
                Some(Ok((status, over, body))) => {
                    if status == StatusCode::NOT_FOUND {
                        return Ok(None);
                    }
                    if status.is_success() && over {
                        return Err(ApiError::Unexpected {
                            site: site(),
                            what: format!("the file is larger than {max} bytes"),
                        });
                    }
                    if status.is_success() {
                        return Ok(Some(body));
                    }
                    let problem = serde_json::from_slice::<Problem>(&body).ok().map(Box::new);
                    let err = ApiError::Status {
                        site: site(),
                        status,
                        problem,
                        attempts,
                        elapsed: t0.elapsed(),
                    };
                    if classify(Outcome::Status(status)) != Verdict::Retry {
                        return Err(err);
                    }
                    err
                }
                Some(Err(source)) => ApiError::Transport {
                    site: site(),
                    attempts,
                    elapsed: t0.elapsed(),
                    maybe_sent: !source.is_connect(),
                    source: source.without_url(),
                },
                None => ApiError::TimedOut {
                    site: site(),
                    attempts,
                    elapsed: t0.elapsed(),
                    idle: timeout,
                    body_sent: true,
                },
            };
            if self.config.stop.is_cancelled() {
                return Err(ApiError::Cancelled { site: site() });
            }
            let Some(wait) = self.config.retry.backoff(started, attempts - 1) else {
                return Err(failure);
            };
            tracing::debug!(error = %failure, wait = ?wait, "retrying a download");
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = self.config.abort.cancelled() => {
                    return Err(ApiError::Cancelled { site: site() })
                }
                () = self.config.stop.cancelled() => {
                    return Err(ApiError::Cancelled { site: site() })
                }
            }
        }
    }
}
