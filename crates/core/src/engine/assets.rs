//! A row's other assets: its thumbnail, caption and chapters tracks, sent once its source is
//! complete, each exactly once.
//!
//! **After the source, not before.** api.video would take captions and chapters on an empty
//! container, but a frame can only be picked from a source, and sending assets first would
//! leave them on containers whose upload then fails (and which api.video deletes after 7
//! days). So a row's assets are the last steps of its session, on the video it settled on.
//!
//! **Exactly once.** Each asset has a digest: of the bytes sent (a caption converted from SRT:
//! of the WebVTT sent), of the timecode picked, or, for the default caption, of its language and
//! that caption's digest. An asset is sent when the video does not hold it with that digest:
//! - the journal records each asset as the server acknowledges it, so a killed run sends only
//!   what is missing, and a changed file (a new digest) is sent again, replacing the old one;
//! - without the journal's word on this video (no journal, another machine's, a lost one, or
//!   one that records no asset of it: a fresh journal that found the video on the server), the
//!   video itself says: once all its assets are in, the run writes their digests to the
//!   video's metadata (`avbatch_assets`). That marker is taken for what the server confirms:
//!   the video's caption and chapters lists are read (one read per kind the row has), and a
//!   track they lack (deleted by hand) is sent again, with the default caption's flag. Without
//!   a marker, the lists are read and each track's file fetched and compared. Only a thumbnail
//!   cannot be read back (api.video serves it re-encoded): without the journal or the metadata
//!   it is sent again, which replaces it with the same image.
//!
//! **Replacing a track.** api.video does not document what a second track for one language
//! does. A track the video is known to hold is deleted, then sent. When an upload is refused
//! while the video's list shows the language (a server that refuses second tracks, after the
//! answer to the first upload was lost and the retry refused), the track held is fetched: the
//! bytes sent mean it went in; anything else is deleted and sent again. Right whether the server
//! replaces or refuses (`avbatch serve --existing-tracks`).

use std::collections::HashMap;

use bytes::Bytes;
use tokio::sync::Semaphore;
use xxhash_rust::xxh3::Xxh3;

use super::{journal, Ctx, SessionEnd};
use crate::client::{error_chain, ApiError};
use crate::manifest::{load_image, Row, Thumbnail, TrackFile, TRACK_MAX_BYTES};
use crate::texttrack::Kind;
use avbatch_api::{Metadata, Video};

/// Metadata key under which a video carries the digests of the assets a run gave it.
pub use crate::marks::ASSETS_METADATA;

/// Name of the default-caption asset.
const DEFAULT_CAPTIONS: &str = "captions.default";

/// One asset a row wants its video to hold.
struct Wanted {
    /// `thumbnail`, `captions.LANG`, `chapters.LANG`, [`DEFAULT_CAPTIONS`].
    name: String,
    digest: String,
    what: What,
}

/// What sending it takes. A track's file is read again when it is sent, rather than held from
/// the start: a row's tracks may be many, and rows many at once (issue #25, point 13).
enum What {
    Image { bytes: Bytes, file_name: String, mime: &'static str },
    Frame(String),
    Track { kind: Kind, file: TrackFile },
    DefaultCaptions(String),
}

/// A short digest: 64 bits of XXH3-128, in hex (in metadata, several per video). Each part is
/// hashed after its length, as it is (no copy of a track is made to hash it).
pub(super) fn digest(parts: &[&[u8]]) -> String {
    let mut hasher = Xxh3::new();
    for part in parts {
        hasher.update(&(part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    format!("{:016x}", (hasher.digest128() >> 64) as u64)
}

/// The digest of a track whose WebVTT is `vtt`.
fn track_digest(vtt: &[u8]) -> String {
    digest(&[&b"track"[..], vtt])
}

/// The names of the row's assets, in the order they are sent (without reading their files).
pub fn names(row: &Row) -> Vec<String> {
    let mut names: Vec<String> = row.thumbnail.iter().map(|_| "thumbnail".to_owned()).collect();
    names.extend(row.captions.iter().map(|t| format!("captions.{}", t.language)));
    names.extend(row.chapters.iter().map(|t| format!("chapters.{}", t.language)));
    if row.default_captions.is_some() {
        names.push(DEFAULT_CAPTIONS.to_owned());
    }
    names
}

/// The row's assets as `(name, digest)`, in the order they are sent, their files read as a run
/// reads them: an asset the video holds with another digest (or not at all) is sent. What a
/// dry run compares with the journal's record.
pub fn digests(row: &Row) -> Result<Vec<(String, String)>, String> {
    Ok(wanted(row)?.into_iter().map(|w| (w.name, w.digest)).collect())
}

/// The assets `video` says it holds, by name and digest: the record a run writes to its
/// metadata once all of them are in ([`ASSETS_METADATA`]); `None` without one.
pub fn marked(video: &avbatch_api::Video) -> Option<HashMap<String, String>> {
    video.metadata_value(ASSETS_METADATA).map(parse_marker)
}

/// Whether the row has any asset to send.
pub(super) fn any(row: &Row) -> bool {
    row.thumbnail.is_some() || !row.captions.is_empty() || !row.chapters.is_empty()
}

/// The name an image is sent under: its file's, with an extension that says its type (api.video
/// checks the type or the extension, its documentation says): `cover.img` holding a PNG goes as
/// `cover.png`, `photo.JPEG` as it is.
fn image_file_name(path: &std::path::Path, kind: avbatch_api::ImageKind) -> String {
    let stem = path.file_stem().map_or_else(|| "thumbnail".into(), |s| s.to_string_lossy());
    let fits = path.extension().is_some_and(|e| kind.named_by(&e.to_string_lossy()));
    match (fits, path.file_name()) {
        (true, Some(name)) => name.to_string_lossy().into_owned(),
        _ => format!("{stem}.{}", kind.extension()),
    }
}

/// Reads and checks the row's asset files again (they may have changed since the manifest
/// check), in the order they are sent: thumbnail, captions, chapters, the default caption.
fn wanted(row: &Row) -> Result<Vec<Wanted>, String> {
    let mut out = Vec::new();
    match &row.thumbnail {
        Some(Thumbnail::Image { path, .. }) => {
            let image = load_image(path).map_err(|e| format!("thumbnail: {e}"))?;
            let file_name = image_file_name(path, image.kind);
            out.push(Wanted {
                name: "thumbnail".into(),
                digest: digest(&[&b"image"[..], &image.bytes]),
                what: What::Image {
                    bytes: Bytes::from(image.bytes),
                    file_name,
                    mime: image.kind.mime(),
                },
            });
        }
        Some(Thumbnail::Frame(timecode)) => out.push(Wanted {
            name: "thumbnail".into(),
            digest: digest(&[&b"frame"[..], timecode.as_bytes()]),
            what: What::Frame(timecode.clone()),
        }),
        None => {}
    }
    let mut default = None;
    for (tracks, kind, prefix) in
        [(&row.captions, Kind::Captions, "captions"), (&row.chapters, Kind::Chapters, "chapters")]
    {
        for file in tracks {
            let name = format!("{prefix}.{}", file.language);
            // Read for its digest, then let go: it is read again if it is sent.
            let track = file.load(kind).map_err(|e| format!("{name}: {e}"))?;
            let wanted = Wanted {
                digest: track_digest(&track.vtt),
                name,
                what: What::Track { kind, file: file.clone() },
            };
            if kind == Kind::Captions && row.default_captions.as_ref() == Some(&file.language) {
                default = Some(digest(&[
                    &b"default"[..],
                    file.language.as_bytes(),
                    wanted.digest.as_bytes(),
                ]));
            }
            out.push(wanted);
        }
    }
    if let (Some(language), Some(digest)) = (&row.default_captions, default) {
        out.push(Wanted {
            name: DEFAULT_CAPTIONS.into(),
            digest,
            what: What::DefaultCaptions(language.clone()),
        });
    }
    Ok(out)
}

/// The marker's text: `name=digest` pairs, `;`-separated, in the order given.
fn marker(held: &[(String, String)]) -> String {
    held.iter().map(|(n, d)| format!("{n}={d}")).collect::<Vec<_>>().join(";")
}

/// The marker read back.
fn parse_marker(text: &str) -> HashMap<String, String> {
    text.split(';')
        .filter_map(|pair| pair.split_once('='))
        .map(|(n, d)| (n.to_owned(), d.to_owned()))
        .collect()
}

/// Sends what the row's video `video_id` lacks of the row's assets. Returns the names of the
/// assets sent. A failure names the asset; what was sent before it stays, recorded.
pub(super) async fn settle(
    ctx: &Ctx,
    row: &Row,
    key: &str,
    video_id: &str,
) -> Result<Vec<String>, SessionEnd> {
    if !any(row) {
        return Ok(Vec::new());
    }
    if !ctx.client.has_api_key() {
        return Err(SessionEnd::failed(
            "a thumbnail, captions and chapters take an API key: an upload token only uploads \
             sources",
        ));
    }
    let r = row.clone();
    let mut wanted = tokio::task::spawn_blocking(move || wanted(&r))
        .await
        .map_err(|e| SessionEnd::failed(format!("reading the row's assets failed: {e}")))?
        .map_err(SessionEnd::failed)?;

    let Holding { mut held, journaled, video } = holding(ctx, key, video_id, &wanted).await?;
    let mut sent = Vec::new();
    for asset in &mut wanted {
        if held.get(&asset.name) == Some(&asset.digest) {
            if !journaled {
                // The video's word, recorded: a later run with this journal asks nothing.
                let (k, v, n, d) =
                    (key.to_owned(), video_id.to_owned(), asset.name.clone(), asset.digest.clone());
                journal(ctx, move |j| j.asset_sent(&k, &v, &n, &d)).await?;
            }
            continue;
        }
        if ctx.stop.is_cancelled() {
            return Err(SessionEnd::Stopped);
        }
        let known = held.contains_key(&asset.name);
        deliver(ctx, video_id, asset, known).await?;
        let (k, v, n, d) =
            (key.to_owned(), video_id.to_owned(), asset.name.clone(), asset.digest.clone());
        journal(ctx, move |j| j.asset_sent(&k, &v, &n, &d)).await?;
        held.insert(asset.name.clone(), asset.digest.clone());
        sent.push(asset.name.clone());
    }

    // The video's own record of what it holds, for runs without this journal.
    let all: Vec<(String, String)> =
        wanted.iter().map(|a| (a.name.clone(), a.digest.clone())).collect();
    let text = marker(&all);
    let video = match video {
        Some(v) => Some(v),
        None if !sent.is_empty() => ctx.client.video(video_id).await?,
        None => None,
    };
    if let Some(video) = video.filter(|v| v.metadata_value(ASSETS_METADATA) != Some(&text)) {
        let mut metadata: Vec<Metadata> =
            video.metadata.into_iter().filter(|m| m.key != ASSETS_METADATA).collect();
        metadata.push(Metadata { key: ASSETS_METADATA.into(), value: text });
        ctx.client.set_metadata(video_id, &metadata).await?;
    }
    Ok(sent)
}

/// What a row's video holds of its assets, by name, with their digests.
struct Holding {
    held: HashMap<String, String>,
    /// Said by the journal (else by the video: what of it the row wants is then journaled).
    journaled: bool,
    /// The video, when it was read for its marker.
    video: Option<Video>,
}

/// What the video holds: by the journal's word, else by its own. A journal that records no
/// asset of the video has no word either: a fresh one that found the video on the server has
/// not seen what another run gave it. The video is then read before the assets are sent rather
/// than after (for its marker): no request more.
async fn holding(
    ctx: &Ctx,
    key: &str,
    video_id: &str,
    wanted: &[Wanted],
) -> Result<Holding, SessionEnd> {
    let (k, v) = (key.to_owned(), video_id.to_owned());
    let recorded = journal(ctx, move |j| j.assets(&k, &v)).await?.flatten();
    let recorded = match recorded {
        Some(held) if !held.is_empty() => {
            return Ok(Holding { held, journaled: true, video: None })
        }
        none => none,
    };
    let video = ctx.client.video(video_id).await?;
    let held = match (video.as_ref().and_then(marked), recorded) {
        (Some(marked), _) => confirmed(ctx, video_id, wanted, marked).await?,
        (None, Some(none)) => none,
        (None, None) => read_back(ctx, video_id, wanted).await?,
    };
    Ok(Holding { held, journaled: false, video })
}

/// The marker's word, for what the server confirms: a track its list lacks (deleted by hand)
/// is not held, nor the default caption while its track is not the default. One list read per
/// kind of track the row has.
async fn confirmed(
    ctx: &Ctx,
    video_id: &str,
    wanted: &[Wanted],
    mut held: HashMap<String, String>,
) -> Result<HashMap<String, String>, SessionEnd> {
    let want = |kind: Kind| {
        wanted.iter().any(|w| matches!(&w.what, What::Track { kind: k, .. } if *k == kind))
    };
    let mut listed: Vec<String> = Vec::new();
    if want(Kind::Captions) {
        let default = wanted.iter().find_map(|w| match &w.what {
            What::DefaultCaptions(language) => Some(language.as_str()),
            _ => None,
        });
        let captions = ctx.client.captions(video_id).await?;
        let is_default =
            |l: &str| captions.iter().any(|c| c.default && c.srclang.eq_ignore_ascii_case(l));
        if default.is_some_and(|l| !is_default(l)) {
            held.remove(DEFAULT_CAPTIONS);
        }
        listed.extend(captions.into_iter().map(|c| format!("captions.{}", c.srclang)));
    }
    if want(Kind::Chapters) {
        let chapters = ctx.client.chapters(video_id).await?;
        listed.extend(chapters.into_iter().map(|c| format!("chapters.{}", c.language)));
    }
    held.retain(|name, _| {
        let track = name != DEFAULT_CAPTIONS
            && ["captions.", "chapters."].iter().any(|p| name.starts_with(p));
        !track || listed.iter().any(|l| l.eq_ignore_ascii_case(name))
    });
    Ok(held)
}

/// Without a record: the digests of the tracks the video holds, read from its lists and
/// their files; and of the default caption, from the list's flag.
async fn read_back(
    ctx: &Ctx,
    video_id: &str,
    wanted: &[Wanted],
) -> Result<HashMap<String, String>, SessionEnd> {
    let mut held = HashMap::new();
    let want = |kind: Kind| {
        wanted.iter().any(|w| matches!(&w.what, What::Track { kind: k, .. } if *k == kind))
    };
    let mut sources: Vec<(String, String)> = Vec::new();
    let mut default_language = None;
    if want(Kind::Captions) {
        for caption in ctx.client.captions(video_id).await? {
            if caption.default {
                default_language = Some(caption.srclang.clone());
            }
            sources.push((format!("captions.{}", caption.srclang), caption.src));
        }
    }
    if want(Kind::Chapters) {
        for chapter in ctx.client.chapters(video_id).await? {
            sources.push((format!("chapters.{}", chapter.language), chapter.src));
        }
    }
    for (name, src) in sources {
        if !wanted.iter().any(|w| w.name == name) {
            continue;
        }
        // A track that cannot be fetched is sent again: held, with a digest nothing matches.
        let fetched = match ctx.client.download(&src, TRACK_MAX_BYTES).await {
            Ok(Some(bytes)) => digest(&[&b"track"[..], &bytes]),
            Ok(None) | Err(_) => String::new(),
        };
        held.insert(name, fetched);
    }
    if let Some(language) = default_language {
        let track = held.get(&format!("captions.{language}")).cloned().unwrap_or_default();
        held.insert(
            DEFAULT_CAPTIONS.into(),
            digest(&[&b"default"[..], language.as_bytes(), track.as_bytes()]),
        );
    }
    Ok(held)
}

/// Sends one asset (a track as its file holds it now: should the file have changed since its
/// digest was taken, under its new digest). `known`: the video holds a version of it (a track
/// is then deleted first). A failure names the asset.
async fn deliver(
    ctx: &Ctx,
    video_id: &str,
    asset: &mut Wanted,
    known: bool,
) -> Result<(), SessionEnd> {
    let client = &ctx.client;
    let sent = match &asset.what {
        What::Image { bytes, file_name, mime } => {
            client.upload_thumbnail(video_id, bytes.clone(), file_name, mime).await
        }
        What::Frame(timecode) => client.pick_thumbnail(video_id, timecode).await,
        What::DefaultCaptions(language) => {
            client.set_default_caption(video_id, language, true).await.map(drop)
        }
        What::Track { kind, file } => {
            // Its place among the tracks held is kept until it is sent (SENDING is never
            // closed: acquiring fails for nothing else).
            let _place = SENDING.acquire().await.map_err(|_| SessionEnd::Stopped)?;
            let (kind, name) = (*kind, &asset.name);
            let vtt = read_track(kind, file, name).await?;
            asset.digest = track_digest(&vtt);
            let track = Track { kind, video_id, language: &file.language };
            send_track(ctx, &track, known, vtt).await
        }
    };
    sent.map_err(|e| match e {
        ApiError::Cancelled { .. } => SessionEnd::Stopped,
        e => SessionEnd::Failed {
            message: format!("{}: {}", asset.name, error_chain(&e)),
            auth: e.is_auth(),
        },
    })
}

/// Tracks held to be sent at once, at most, in this process: a row's tracks are read when they
/// are sent, one at a time, but rows are many at once (64 by default for small files: rows of
/// two 13 MB tracks peaked at 4.4 GB when each row held its tracks from the start). A place is
/// waited for without a thread, so waiting rows hold none of the blocking threads that those
/// sending may need.
static SENDING: Semaphore = Semaphore::const_new(TRACKS_SENT_AT_ONCE);

/// See [`SENDING`]: about 64 MiB of WebVTT at most.
const TRACKS_SENT_AT_ONCE: usize = 4;

/// Reads a track again to send it: its WebVTT.
async fn read_track(kind: Kind, file: &TrackFile, name: &str) -> Result<Bytes, SessionEnd> {
    let (file, name) = (file.clone(), name.to_owned());
    let track = tokio::task::spawn_blocking(move || file.load(kind))
        .await
        .map_err(|e| SessionEnd::failed(format!("reading the row's assets failed: {e}")))?
        .map_err(|e| SessionEnd::failed(format!("{name}: {e}")))?;
    Ok(Bytes::from(track.vtt))
}

/// Sends a track of WebVTT `vtt`. `known`: the video holds a version of it, deleted first.
async fn send_track(ctx: &Ctx, track: &Track<'_>, known: bool, vtt: Bytes) -> Result<(), ApiError> {
    if known {
        track.delete(ctx).await?;
    }
    let mut tries = 0;
    loop {
        tries += 1;
        let refusal = match track.upload(ctx, vtt.clone()).await {
            Err(e) if refused(&e) && tries < MAX_TRACK_TRIES => e,
            other => return other,
        };
        // The server holds a track in that language and will not take a second: this one, if
        // the answer to an upload was lost and the retry refused, else another.
        match track.src(ctx).await? {
            None => return Err(refusal),
            Some(src) => {
                let held = ctx.client.download(&src, TRACK_MAX_BYTES).await.ok().flatten();
                if held.as_deref() == Some(&vtt[..]) {
                    return Ok(());
                }
            }
        }
        let (video_id, language) = (track.video_id, track.language);
        tracing::debug!(video_id, language, "a track the server refused to replace");
        track.delete(ctx).await?;
    }
}

/// Uploads of one track refused before the row fails (each after deleting what was held).
const MAX_TRACK_TRIES: u32 = 3;

/// One track of a video.
struct Track<'a> {
    kind: Kind,
    video_id: &'a str,
    language: &'a str,
}

impl Track<'_> {
    async fn upload(&self, ctx: &Ctx, vtt: Bytes) -> Result<(), ApiError> {
        let (id, language) = (self.video_id, self.language);
        match self.kind {
            Kind::Captions => ctx.client.upload_caption(id, language, vtt).await.map(drop),
            Kind::Chapters => ctx.client.upload_chapter(id, language, vtt).await.map(drop),
        }
    }

    /// Deletes it; none held is fine.
    async fn delete(&self, ctx: &Ctx) -> Result<(), ApiError> {
        let (id, language) = (self.video_id, self.language);
        match self.kind {
            Kind::Captions => ctx.client.delete_caption(id, language).await.map(drop),
            Kind::Chapters => ctx.client.delete_chapter(id, language).await.map(drop),
        }
    }

    /// Where the video's list says its file is, if the video has it.
    async fn src(&self, ctx: &Ctx) -> Result<Option<String>, ApiError> {
        let (id, language) = (self.video_id, self.language);
        Ok(match self.kind {
            Kind::Captions => ctx
                .client
                .captions(id)
                .await?
                .into_iter()
                .find(|c| c.srclang == language)
                .map(|c| c.src),
            Kind::Chapters => ctx
                .client
                .chapters(id)
                .await?
                .into_iter()
                .find(|c| c.language == language)
                .map(|c| c.src),
        })
    }
}

/// A 4xx that is not about credentials, quotas or a missing video: what a server that
/// refuses a second track for a language answers.
fn refused(e: &ApiError) -> bool {
    e.status().is_some_and(|s| {
        s.is_client_error() && !e.is_auth() && s.as_u16() != 404 && s.as_u16() != 429
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_marker_reads_back() {
        let held =
            vec![("thumbnail".to_owned(), digest(&[b"a"])), ("captions.en".into(), "x".into())];
        let back = parse_marker(&marker(&held));
        assert_eq!(back.len(), 2);
        assert_eq!(back["captions.en"], "x");
        assert_ne!(digest(&[&b"a"[..], b"b"]), digest(&[b"ab"]));
    }

    #[test]
    fn the_digest_is_the_one_journals_and_videos_already_hold() {
        // Hashed as it streams, each part after its length: what hashing a copy of them laid
        // end to end gave, and what journals and `avbatch_assets` metadata already record.
        let vtt = "WEBVTT\n\n00:01.000 --> 00:02.000\nHi\n".repeat(1000);
        let parts: [&[u8]; 2] = [b"track", vtt.as_bytes()];
        let mut all = Vec::new();
        for part in parts {
            all.extend_from_slice(&(part.len() as u64).to_le_bytes());
            all.extend_from_slice(part);
        }
        let laid_end_to_end = xxhash_rust::xxh3::xxh3_128(&all);
        assert_eq!(digest(&parts), format!("{:016x}", (laid_end_to_end >> 64) as u64));
    }
}
