//! Sending one part: its body as a paced stream of slices of the map, and what a refusal means.

use std::sync::Arc;

use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt};

use tokio::sync::mpsc;

use super::body::Body;
use super::fingerprint::{PartHash, PartStart};
use super::{Ctx, Event, Mode, SessionEnd};
use crate::chunk::{FileChanged, MappedFile, PartPlan};
use crate::client::{ApiError, UploadTarget};
use crate::limit::Limiter;
use avbatch_api::{slug, VideoStatus};

/// Pages are handed back to the kernel in slices of this size, two slices behind the one being
/// sent, so at most three slices (12 MiB) of a video's file are resident at once (the body goes
/// out in smaller pieces, [`YIELD_SLICE`], but is released in these). 8 MiB slices
/// held 60 MiB at `-c 4`, 4 MiB hold 41 MiB; 2 MiB held 25 MiB but cost one stream of 4 GiB
/// about a tenth of its speed on loopback.
const RELEASE_SLICE: u64 = 4 * 1024 * 1024;
/// The body goes to the connection in slices of at most this size. Each slice the connection
/// takes is progress ([`crate::client::Watch`]), so a slice must go in well under the time-out on
/// the slowest link that should keep working: 256 KiB take 4 s at 64 KiB/s, and a link has to
/// fall under 4.3 KiB/s before 60 s pass without one.
const YIELD_SLICE: u64 = 256 * 1024;
/// The short last slice of a part, sent after the file is checked one last time.
const CHECK_TAIL: u64 = 64 * 1024;

/// A refusal that may only mean "these bytes are already there": an earlier attempt of this run
/// got through before its connection broke, or a killed run's last request was still in the
/// kernel's buffers and the server finished receiving it after that run died (and after this
/// run asked what the server holds). With an API key the server's own record decides, not the
/// slug; without one (an upload token only) the refusal is the only record there is.
fn already_received(e: &ApiError) -> bool {
    let received = [slug::PART_ALREADY_SENT, slug::RANGE_OVERLAP, slug::SOURCE_ALREADY_UPLOADED];
    e.slug().is_some_and(|s| received.contains(&s))
}

/// The row's end when its file changed under a part.
fn file_changed(e: FileChanged, target: &UploadTarget, part: &PartPlan) -> SessionEnd {
    let video = match target {
        UploadTarget::Video(id) | UploadTarget::Token { video_id: Some(id), .. } => {
            format!("video `{id}`")
        }
        UploadTarget::Token { video_id: None, .. } => "no video".to_owned(),
    };
    SessionEnd::failed(format!(
        "{e}: part {} was broken off, so {video} stays incomplete and never plays; re-run with \
         --force to upload the file as it is now as a new video",
        part.number
    ))
}

/// Sends one part (with the client's retries), each attempt's body hashed from `hash` as it
/// goes out. Returns whether the server called the source complete.
#[allow(clippy::too_many_arguments)]
pub(super) async fn part(
    ctx: &Ctx,
    index: usize,
    source: &Body,
    target: &mut UploadTarget,
    part: &PartPlan,
    total: u64,
    count: u64,
    name: &str,
    mode: Mode,
    hash: Option<PartStart>,
) -> Result<bool, SessionEnd> {
    let range = part.range.clone();
    match source {
        Body::File(file) => file.check().map_err(|e| file_changed(e, target, part))?,
        Body::Object(object) => object.before_part().await?,
    }
    let header = match mode {
        Mode::Bytes => format!("bytes {}-{}/{}", range.start, range.end - 1, total),
        Mode::Parts => format!("part {}/{}", part.number, count),
    };
    let read = reader(source, range.clone(), ctx.limiter.clone(), hash);
    let events = ctx.events.clone();
    let body = move || told(read(), index, events.clone());
    let file = source.file();
    let video_id = match &*target {
        UploadTarget::Video(id) | UploadTarget::Token { video_id: Some(id), .. } => {
            Some(id.clone())
        }
        UploadTarget::Token { video_id: None, .. } => None,
    };
    let sent =
        ctx.client.upload_chunk(target, Some(&header), name, range.end - range.start, &body).await;
    // A relayed part that failed: the object gone or replaced says why better than the broken
    // body does; an object still as it was leaves the failure to the arms below.
    let object_end = match (source, &sent) {
        (Body::Object(object), Err(_)) => object.check().await.err(),
        _ => None,
    };
    match sent {
        Ok(answer) => {
            if let UploadTarget::Token { video_id, .. } = target {
                video_id.get_or_insert(answer.video_id);
            }
            Ok(answer.complete)
        }
        Err(e) if file.is_some_and(|f| f.check().is_err()) => {
            tracing::debug!(error = %e, "the part failed because its file changed");
            let file = file.expect("a file");
            Err(file.check().map_err(|e| file_changed(e, target, part)).unwrap_err())
        }
        Err(_) if object_end.is_some() => Err(object_end.expect("an end")),
        Err(e) if video_id.is_none() && e.maybe_applied() => Err(SessionEnd::failed(format!(
            "{}: this first part makes the video on a delegated upload, and its answer never \
             came, so api.video may hold a video for this row that this run cannot look for \
             without an API key; it was not sent again, so there is at most one. Check the \
             account (a video titled `{name}`) before running this row again, or run with an API \
             key too, so the video is made and found by its key",
            super::error_chain(&e)
        ))),
        Err(e)
            if e.status().map(|s| s.as_u16()) == Some(404)
                && e.slug() == Some(slug::RESOURCE_NOT_FOUND) =>
        {
            Err(SessionEnd::Gone { video_id: video_id.unwrap_or_default() })
        }
        Err(e) if already_received(&e) => {
            let Some(id) = video_id else { return Err(e.into()) };
            confirm_received(ctx, e, &id, &header, mode, part).await
        }
        Err(e) => Err(e.into()),
    }
}

/// What makes each attempt's body: a file's slice, paced and hashed as the connection takes it,
/// or an object's range read from its store anew.
type Reader = Box<dyn Fn() -> BoxStream<'static, Result<Bytes, std::io::Error>> + Send + Sync>;

fn reader(
    source: &Body,
    range: std::ops::Range<u64>,
    limiter: Arc<Limiter>,
    hash: Option<PartStart>,
) -> Reader {
    match source {
        Body::File(file) => {
            let (bytes, map, start) = (file.slice(range.clone()), file.clone(), range.start);
            Box::new(move || {
                let hash = hash.as_ref().map(PartStart::attempt);
                paced(bytes.clone(), start, limiter.clone(), map.clone(), hash)
            })
        }
        // Each attempt reads the range from the store anew, as the connection takes it.
        Body::Object(object) => {
            let object = object.clone();
            Box::new(move || object.stream(range.clone(), limiter.clone()))
        }
    }
}

/// A part the server refused as already received (its answer to an earlier attempt was lost):
/// confirmed from the server's own record rather than trusted. Returns whether the source is
/// complete.
async fn confirm_received(
    ctx: &Ctx,
    e: ApiError,
    id: &str,
    header: &str,
    mode: Mode,
    part: &PartPlan,
) -> Result<bool, SessionEnd> {
    if !ctx.client.has_api_key() {
        // A delegated upload cannot read /status: the server's refusal says the bytes are
        // there, and that the source is complete when it says so.
        let slug = e.slug();
        tracing::debug!(video = %id, header, slug, "part confirmed by the server's refusal");
        return Ok(e.slug() == Some(slug::SOURCE_ALREADY_UPLOADED));
    }
    let status: VideoStatus = ctx.client.status(id).await?;
    let range = &part.range;
    let there = match mode {
        Mode::Bytes => status.has_range(range.start, range.end - 1),
        Mode::Parts => status.has_part(part.number),
    };
    if there || status.is_uploaded() {
        tracing::debug!(video = %id, header, "part confirmed by status after a retry");
        Ok(status.is_uploaded())
    } else {
        Err(e.into())
    }
}

/// Tells the progress display, slice by slice, how much of this attempt's body the connection
/// took. Only when the channel has room: the display is told, never waited for, and the part's
/// acknowledgement settles what a dropped event left out.
fn told(
    stream: BoxStream<'static, Result<Bytes, std::io::Error>>,
    index: usize,
    events: mpsc::Sender<Event>,
) -> BoxStream<'static, Result<Bytes, std::io::Error>> {
    let mut taken = 0u64;
    stream
        .inspect(move |slice| {
            if let Ok(b) = slice {
                taken += b.len() as u64;
                if events.capacity() > events.max_capacity() / 4 {
                    let _ = events.try_send(Event::Sending { index, bytes: taken });
                }
            }
        })
        .boxed()
}

/// What the body stream of one part keeps between slices.
struct Pacing {
    bytes: Bytes,
    file_offset: u64,
    limiter: Arc<Limiter>,
    map: Arc<MappedFile>,
    slice: u64,
    /// Next byte of the part to go out.
    at: u64,
    /// Pages of the part before this offset were handed back.
    released: u64,
    /// This attempt's hash of the body, told it is complete once the last slice goes out.
    hash: Option<PartHash>,
}

/// The part's bytes as a stream of slices: paced by the byte limiter when there is one, hashed
/// into `hash` as they go, and handing pages back to the kernel two release slices behind the
/// one being sent.
fn paced(
    bytes: Bytes,
    file_offset: u64,
    limiter: Arc<Limiter>,
    map: Arc<MappedFile>,
    hash: Option<PartHash>,
) -> BoxStream<'static, Result<Bytes, std::io::Error>> {
    let slice = limiter.byte_slice().unwrap_or(YIELD_SLICE).clamp(1, YIELD_SLICE);
    let state = Pacing { bytes, file_offset, limiter, map, slice, at: 0, released: 0, hash };
    stream::unfold(state, |mut s| async move {
        let len = s.bytes.len() as u64;
        if s.at >= len {
            return None;
        }
        let first = s.at == 0;
        // The last check comes before a short last slice, so what leaves after it is that
        // slice and what the HTTP stack still holds of earlier ones (a few hundred KiB at most).
        let tail = len.saturating_sub(CHECK_TAIL);
        let end = if s.at < tail { (s.at + s.slice).min(tail) } else { len };
        // Before the first and the last slice: a part read from a file that changed must never
        // be completed, so its body breaks off and the server drops it.
        if first || end == len {
            if let Err(e) = s.map.check() {
                let broken = Pacing { at: len, hash: None, ..s };
                return Some((Err(std::io::Error::other(e)), broken));
            }
        }
        // Everything before the release slice ahead of the one being sent goes back.
        let keep_from = (s.at / RELEASE_SLICE * RELEASE_SLICE).saturating_sub(RELEASE_SLICE);
        if keep_from > s.released {
            s.map.release(s.file_offset + s.released..s.file_offset + keep_from);
            s.released = keep_from;
        }
        s.limiter.take_bytes(end - s.at).await;
        let out = s.bytes.slice(s.at as usize..end as usize);
        if let Some(hash) = s.hash.as_mut() {
            hash.update(&out);
        }
        if let Some(hash) = s.hash.take_if(|_| end == len) {
            // The whole body was read out of the map: what it hashed is this part's bytes.
            hash.complete();
        }
        s.at = end;
        Some((Ok(out), s))
    })
    .boxed()
}
