//! The server's durable state: videos, their received chunks, and upload tokens.
//!
//! Layout of the data folder:
//! ```text
//! videos/{videoId}/video.json        the record, replaced atomically on every change
//! videos/{videoId}/<chunk>.chunk     one file per accepted chunk, named by its ChunkKey
//! tokens/{token}.json                upload tokens
//! incoming/                          bodies being received; emptied at start
//! ```
//! plus a video's thumbnail, captions and chapters in its folder, and `watermarks/`: see
//! [`super::assets`].
//! A chunk is streamed into `incoming/`, fsynced, then renamed into its video's folder and the
//! folder fsynced, all before the `2xx` goes out. The upload state is rebuilt from the chunk file
//! names at start, so what was acknowledged before a `kill -9` is exactly what is there after it.
//! The folder is its owner's alone (0700), and every record is written 0600: tokens, keys and a
//! video's source URL are secrets ([`write_atomic`]).
//! All functions here block: handlers call them through `spawn_blocking`.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use rand::distr::{Alphanumeric, SampleString};
use serde::{Deserialize, Serialize};

use super::assets::WatermarkRecord;
use super::dirsync::DirSync;
use super::problem::ApiError;
use super::pull::{self, Ingest};
use super::upload::{ChunkKey, ContentRange, UploadState};
use super::video::VideoRecord;

/// A fresh id: `prefix` and 22 base62 characters, like api.video's (`vi…`, `to…`).
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}{}", Alphanumeric.sample_string(&mut rand::rng(), 22))
}

/// Writes `bytes` to `path` so that a crash leaves either the old or the new content, readable
/// by the owner alone (0600, whatever the umask): the records written this way hold secrets
/// (keys, tokens, the credentials in a source URL).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().ok_or_else(|| io::Error::other("path has no parent"))?;
    let tmp = dir.join(format!(".{}.tmp", new_id("w")));
    let result = (|| {
        let mut f = owner_only(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        fsync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// A new file at `path` that only its owner may read or write, whatever the umask.
fn owner_only(path: &Path) -> io::Result<fs::File> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let file = fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
        Ok(file)
    }
    #[cfg(not(unix))]
    fs::File::create(path)
}

/// Makes `dir`, and the folders up to it, exist, `dir` itself (new or not) its owner's alone:
/// 0700 on Unix.
pub fn private_dir(dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if fs::metadata(dir)?.permissions().mode() & 0o777 != 0o700 {
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
        }
    }
    Ok(())
}

/// Makes a rename or unlink in `dir` durable.
pub fn fsync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

/// What one video holds in memory.
#[derive(Debug)]
pub struct VideoState {
    /// The record.
    pub record: VideoRecord,
    /// Chunks received.
    pub upload: UploadState,
    /// Set once the video is deleted, so an upload racing the delete is refused.
    pub deleted: bool,
}

/// One video: its folder and its state behind a lock that is never held across an `.await`.
#[derive(Debug)]
pub struct VideoSlot {
    dir: PathBuf,
    state: Mutex<VideoState>,
}

impl VideoSlot {
    /// Locks the state. A poisoned lock only means another request panicked mid-update of
    /// in-memory data that is rebuilt from disk on restart; the state itself stays usable.
    pub fn lock(&self) -> MutexGuard<'_, VideoState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The video's folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Moves the received `file` to `rel` in the video folder `dir` (making its sub-folder if need
/// be), replacing what is there, durably.
pub fn place_file(file: &Path, dir: &Path, rel: &str) -> io::Result<()> {
    let target = dir.join(rel);
    let parent = target.parent().ok_or_else(|| io::Error::other("path has no parent"))?;
    if !parent.exists() {
        fs::create_dir(parent)?;
        fsync_dir(dir)?;
    }
    fs::rename(file, &target)?;
    fsync_dir(parent)
}

/// A fetch or copy of a creation `source` that was under way when the last process stopped.
/// Its partial body was in `incoming/` and is gone; the ingest is marked failed rather than
/// started again (see [`super::pull`]), so no video claims a source it does not have. Only if the
/// stop fell between the source's rename into the folder and the record's update is the source
/// whole, and then the ingest is finished.
fn settle_interrupted_ingest(dir: &Path, state: &mut VideoState) -> io::Result<()> {
    if state.upload.is_complete() {
        state.record.ingest = Some(Ingest::Ingested);
        state.record.source_completed_at.get_or_insert_with(Utc::now);
    } else {
        state.upload = UploadState::default();
        state.record.ingest = Some(Ingest::Failed {
            reason: "the server stopped while the source was being fetched".into(),
        });
    }
    tracing::info!(video = %state.record.video_id, ingest = ?state.record.ingest, "ingest settled");
    write_atomic(&dir.join("video.json"), &serde_json::to_vec_pretty(&state.record)?)
}

/// An upload token as stored and sent.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadToken {
    /// `to…`.
    pub token: String,
    /// Lifetime in seconds; 0 never expires.
    pub ttl: u64,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Expiry, when ttl > 0.
    pub expires_at: Option<DateTime<Utc>>,
}

impl UploadToken {
    /// Whether the token may still be used at `now`.
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_none_or(|e| now < e)
    }
}

/// The server's state, in memory and on disk.
#[derive(Debug)]
pub struct Store {
    root: PathBuf,
    discard: bool,
    /// Age past which a video without its whole source is deleted.
    unfinished_ttl: Option<chrono::Duration>,
    videos: Mutex<HashMap<String, Arc<VideoSlot>>>,
    /// Fsyncs of `videos/`, shared by the creates under way.
    videos_sync: DirSync,
    tokens: Mutex<HashMap<String, UploadToken>>,
    watermarks: Mutex<HashMap<String, WatermarkRecord>>,
    seq: AtomicU64,
    received_bytes: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Store {
    /// Opens (or creates) the data folder and loads everything in it.
    pub fn open(root: &Path, discard: bool) -> io::Result<Store> {
        for sub in ["videos", "tokens", "incoming", "watermarks"] {
            fs::create_dir_all(root.join(sub))?;
        }
        // Bodies that were still arriving when the last process stopped were never acknowledged.
        for entry in fs::read_dir(root.join("incoming"))? {
            let _ = fs::remove_file(entry?.path());
        }
        let mut videos = HashMap::new();
        let mut max_seq = 0;
        for entry in fs::read_dir(root.join("videos"))? {
            let dir = entry?.path();
            let record: VideoRecord = match fs::read(dir.join("video.json"))
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
            {
                Some(r) => r,
                None => {
                    // A folder whose record never became durable: the create was not acknowledged.
                    tracing::warn!(
                        dir = %dir.display(),
                        "removing a video folder without a record"
                    );
                    let _ = fs::remove_dir_all(&dir);
                    continue;
                }
            };
            let mut chunks = Vec::new();
            for file in fs::read_dir(&dir)? {
                let file = file?;
                let name = file.file_name();
                if let Some(key) = name.to_str().and_then(ChunkKey::from_file_name) {
                    chunks.push((key, file.metadata()?.len()));
                } else if name.to_str().is_some_and(|n| n.ends_with(".tmp")) {
                    let _ = fs::remove_file(file.path());
                }
            }
            max_seq = max_seq.max(record.seq);
            let mut state =
                VideoState { upload: UploadState::from_chunks(chunks), record, deleted: false };
            if state.record.ingest == Some(Ingest::Ingesting) {
                settle_interrupted_ingest(&dir, &mut state)?;
            }
            videos.insert(
                state.record.video_id.clone(),
                Arc::new(VideoSlot { dir, state: Mutex::new(state) }),
            );
        }
        let mut tokens = HashMap::new();
        for entry in fs::read_dir(root.join("tokens"))? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "json") {
                if let Some(t) = fs::read(&path)
                    .ok()
                    .and_then(|b| serde_json::from_slice::<UploadToken>(&b).ok())
                {
                    tokens.insert(t.token.clone(), t);
                }
            }
        }
        let mut watermarks = HashMap::new();
        for entry in fs::read_dir(root.join("watermarks"))? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "json") {
                if let Some(w) = fs::read(&path)
                    .ok()
                    .and_then(|b| serde_json::from_slice::<WatermarkRecord>(&b).ok())
                {
                    watermarks.insert(w.watermark_id.clone(), w);
                }
            }
        }
        tracing::info!(
            videos = videos.len(),
            tokens = tokens.len(),
            root = %root.display(),
            "data folder loaded"
        );
        Ok(Store {
            root: root.to_owned(),
            discard,
            unfinished_ttl: chrono::Duration::from_std(super::config::UNFINISHED_TTL).ok(),
            videos: Mutex::new(videos),
            videos_sync: DirSync::new(root.join("videos")),
            tokens: Mutex::new(tokens),
            watermarks: Mutex::new(watermarks),
            seq: AtomicU64::new(max_seq + 1),
            received_bytes: AtomicU64::new(0),
        })
    }

    /// Deletes videos whose source is not complete once they are older than `ttl` (api.video's
    /// rule is 7 days, the default); a `ttl` too large to add to a date never deletes any.
    pub fn with_unfinished_ttl(mut self, ttl: std::time::Duration) -> Store {
        self.unfinished_ttl = chrono::Duration::from_std(ttl).ok();
        self
    }

    /// Whether a video is past the age at which an unfinished upload is deleted. A video created
    /// with a `source` gets its source that way ([`super::pull`]), so it is not an unfinished
    /// upload.
    fn is_expired(&self, state: &VideoState, now: DateTime<Utc>) -> bool {
        let Some(ttl) = self.unfinished_ttl else { return false };
        !state.upload.is_complete()
            && state.record.source.is_none()
            && state
                .record
                .created_at
                .checked_add_signed(ttl)
                .is_some_and(|deadline| deadline <= now)
    }

    /// Deletes an expired video: out of memory at once, then its folder. Called from handlers on
    /// the runtime: it is one `remove_dir_all`, once per expired video. Unlike
    /// [`Self::delete_video`] nothing is fsynced: should a crash undo the removal, the video is
    /// still expired at the next look and is removed again.
    fn expire(&self, id: &str, slot: &Arc<VideoSlot>) {
        slot.lock().deleted = true;
        {
            let mut videos = lock(&self.videos);
            if videos.get(id).is_some_and(|s| Arc::ptr_eq(s, slot)) {
                videos.remove(id);
            }
        }
        tracing::info!(
            video = id,
            "deleting a video whose upload was not finished in time (--unfinished-ttl)"
        );
        if let Err(e) = fs::remove_dir_all(&slot.dir) {
            tracing::warn!(video = id, error = %e, "cannot remove the folder of an expired video");
        }
    }

    /// The data folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether source bytes are dropped instead of stored.
    pub fn discards(&self) -> bool {
        self.discard
    }

    /// Source bytes accepted since start (stored or discarded).
    pub fn received_bytes(&self) -> u64 {
        self.received_bytes.load(Ordering::Relaxed)
    }

    /// The next creation sequence number.
    pub fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::Relaxed)
    }

    /// Makes a video durable and visible.
    pub fn insert_video(&self, record: VideoRecord) -> io::Result<Arc<VideoSlot>> {
        let dir = self.root.join("videos").join(&record.video_id);
        fs::create_dir(&dir)?;
        write_atomic(&dir.join("video.json"), &serde_json::to_vec_pretty(&record)?)?;
        self.videos_sync.sync()?;
        let id = record.video_id.clone();
        let slot = Arc::new(VideoSlot {
            dir,
            state: Mutex::new(VideoState {
                record,
                upload: UploadState::default(),
                deleted: false,
            }),
        });
        lock(&self.videos).insert(id, slot.clone());
        Ok(slot)
    }

    /// The video with this id; an unfinished upload past its time is deleted instead.
    pub fn video(&self, id: &str) -> Option<Arc<VideoSlot>> {
        let slot = lock(&self.videos).get(id).cloned()?;
        let expired = self.is_expired(&slot.lock(), Utc::now());
        if expired {
            self.expire(id, &slot);
            return None;
        }
        Some(slot)
    }

    /// The videos whose record `pick` takes, each with what `pick` took from it (a sort key, say):
    /// no record is copied. Unfinished uploads past their time are deleted on the way.
    pub fn slots_where<K>(
        &self,
        pick: impl Fn(&VideoRecord) -> Option<K>,
    ) -> Vec<(K, Arc<VideoSlot>)> {
        // Only the slots are copied out of the index (no ids), so the index is not held while
        // each video is locked in turn.
        let slots: Vec<Arc<VideoSlot>> = lock(&self.videos).values().cloned().collect();
        let now = Utc::now();
        let mut expired = Vec::new();
        let mut records = Vec::with_capacity(slots.len());
        for slot in slots {
            let state = slot.lock();
            if self.is_expired(&state, now) {
                let id = state.record.video_id.clone();
                drop(state);
                expired.push((id, slot));
            } else if let Some(k) = pick(&state.record) {
                drop(state);
                records.push((k, slot));
            }
        }
        for (id, slot) in expired {
            self.expire(&id, &slot);
        }
        records
    }

    /// Writes a changed record.
    pub fn save_record(&self, slot: &VideoSlot, record: &VideoRecord) -> io::Result<()> {
        write_atomic(&slot.dir.join("video.json"), &serde_json::to_vec_pretty(record)?)
    }

    /// Changes a video's record with `change` (given the record and the video's folder, where
    /// it may place files first), under the video's lock, and saves it; returns what `change`
    /// returned and the new record. A deleted video answers 404.
    pub fn change_record<T>(
        &self,
        slot: &VideoSlot,
        change: impl FnOnce(&mut VideoRecord, &Path) -> Result<T, ApiError>,
    ) -> Result<(T, VideoRecord), ApiError> {
        let mut state = slot.lock();
        if state.deleted {
            return Err(ApiError::not_found("videoId"));
        }
        let mut record = state.record.clone();
        let out = change(&mut record, &slot.dir)?;
        self.save_record(slot, &record).map_err(|e| ApiError::internal("storing the video", e))?;
        state.record = record.clone();
        Ok((out, record))
    }

    /// Keeps a received watermark image (`file`, fsynced) of `kind`; returns its record.
    pub fn create_watermark(
        &self,
        file: &Path,
        kind: avbatch_api::ImageKind,
        now: DateTime<Utc>,
    ) -> io::Result<WatermarkRecord> {
        let id = new_id("watermark_");
        let dir = self.root.join("watermarks");
        let image = format!("{id}.{}", kind.extension());
        fs::rename(file, dir.join(&image))?;
        let record = WatermarkRecord { watermark_id: id.clone(), created_at: now, file: image };
        write_atomic(&dir.join(format!("{id}.json")), &serde_json::to_vec_pretty(&record)?)?;
        lock(&self.watermarks).insert(id, record.clone());
        Ok(record)
    }

    /// Every watermark.
    pub fn watermarks(&self) -> Vec<WatermarkRecord> {
        lock(&self.watermarks).values().cloned().collect()
    }

    /// Whether a watermark with this id exists.
    pub fn watermark_exists(&self, id: &str) -> bool {
        lock(&self.watermarks).contains_key(id)
    }

    /// Deletes a watermark; `false` if there was none. Videos made with it keep their record.
    pub fn delete_watermark(&self, id: &str) -> io::Result<bool> {
        let Some(record) = lock(&self.watermarks).remove(id) else { return Ok(false) };
        let dir = self.root.join("watermarks");
        fs::remove_file(dir.join(format!("{id}.json")))?;
        let _ = fs::remove_file(dir.join(&record.file));
        fsync_dir(&dir)?;
        Ok(true)
    }

    /// Deletes a video and its chunks. `false` if there was none.
    pub fn delete_video(&self, id: &str) -> io::Result<bool> {
        let Some(slot) = lock(&self.videos).remove(id) else { return Ok(false) };
        slot.lock().deleted = true;
        // Unlink the record first: a crash part-way leaves a folder without a record, which
        // `open` removes.
        fs::remove_file(slot.dir.join("video.json"))?;
        fsync_dir(&slot.dir)?;
        fs::remove_dir_all(&slot.dir)?;
        Ok(true)
    }

    /// A fresh path in `incoming/` for a body being received.
    pub fn incoming_path(&self) -> PathBuf {
        self.root.join("incoming").join(format!("{}.tmp", new_id("in")))
    }

    /// Admits a received chunk of `len` bytes (already fsynced at `file`, or discarded when
    /// `file` is `None`) and makes it part of the video. Returns whether the source is complete.
    pub fn commit_chunk(
        &self,
        slot: &VideoSlot,
        range: Option<ContentRange>,
        file: Option<&Path>,
        len: u64,
    ) -> Result<bool, ApiError> {
        let mut state = slot.lock();
        if state.deleted {
            return Err(ApiError::not_found("videoId"));
        }
        if let Some(refusal) = pull::upload_refusal(&state.record) {
            return Err(refusal);
        }
        let key = state.upload.admit(range, len)?;
        if let Some(file) = file {
            fs::rename(file, slot.dir.join(key.file_name()))
                .map_err(|e| ApiError::internal("storing the chunk", e))?;
            fsync_dir(&slot.dir).map_err(|e| ApiError::internal("storing the chunk", e))?;
        }
        state.upload.apply(key, len);
        self.received_bytes.fetch_add(len, Ordering::Relaxed);
        let complete = state.upload.is_complete();
        if complete {
            // Encoding starts now (see [`super::encoding`]); kept so a restart resumes it.
            let mut record = state.record.clone();
            record.source_completed_at = Some(Utc::now());
            match self.save_record(slot, &record) {
                Ok(()) => state.record = record,
                Err(e) => tracing::warn!(%e, "cannot store when the source completed"),
            }
        }
        Ok(complete)
    }

    /// Makes a fetched or copied source of `len` bytes (fsynced at `file`, or discarded when
    /// `file` is `None`) the video's single chunk, as if it had been uploaded in one request,
    /// and starts its encoding. A video deleted meanwhile keeps nothing.
    pub fn finish_ingest(&self, slot: &VideoSlot, file: Option<&Path>, len: u64) -> io::Result<()> {
        let mut state = slot.lock();
        if state.deleted {
            if let Some(file) = file {
                let _ = fs::remove_file(file);
            }
            return Ok(());
        }
        if let Some(file) = file {
            fs::rename(file, slot.dir.join(ChunkKey::Single.file_name()))?;
            fsync_dir(&slot.dir)?;
        }
        state.upload.apply(ChunkKey::Single, len);
        self.received_bytes.fetch_add(len, Ordering::Relaxed);
        let mut record = state.record.clone();
        record.ingest = Some(Ingest::Ingested);
        record.source_completed_at = Some(Utc::now());
        self.save_record(slot, &record)?;
        state.record = record;
        Ok(())
    }

    /// Records that a creation `source` could not be fetched or copied, and why.
    pub fn fail_ingest(&self, slot: &VideoSlot, reason: String) -> io::Result<()> {
        let mut state = slot.lock();
        if state.deleted {
            return Ok(());
        }
        let mut record = state.record.clone();
        record.ingest = Some(Ingest::Failed { reason });
        self.save_record(slot, &record)?;
        state.record = record;
        Ok(())
    }

    /// The files of a complete source, in order, with their lengths; `None` while incomplete or
    /// when bytes are discarded.
    pub fn source_files(&self, slot: &VideoSlot) -> Option<Vec<(PathBuf, u64)>> {
        let state = slot.lock();
        if self.discard || !state.upload.is_complete() {
            return None;
        }
        Some(
            state
                .upload
                .segments()
                .into_iter()
                .map(|(key, len)| (slot.dir.join(key.file_name()), len))
                .collect(),
        )
    }

    /// Creates and stores an upload token.
    pub fn create_token(&self, ttl: u64, now: DateTime<Utc>) -> io::Result<UploadToken> {
        let expires_at = (ttl > 0)
            .then(|| now + chrono::Duration::seconds(ttl.min(i64::MAX as u64 / 1000) as i64));
        let token = UploadToken { token: new_id("to"), ttl, created_at: now, expires_at };
        write_atomic(&self.token_path(&token.token), &serde_json::to_vec_pretty(&token)?)?;
        lock(&self.tokens).insert(token.token.clone(), token.clone());
        Ok(token)
    }

    fn token_path(&self, token: &str) -> PathBuf {
        self.root.join("tokens").join(format!("{token}.json"))
    }

    /// The token, if it exists and has not expired at `now`.
    pub fn active_token(&self, token: &str, now: DateTime<Utc>) -> Option<UploadToken> {
        lock(&self.tokens).get(token).filter(|t| t.is_active(now)).cloned()
    }

    /// Every token still active at `now`.
    pub fn active_tokens(&self, now: DateTime<Utc>) -> Vec<UploadToken> {
        lock(&self.tokens).values().filter(|t| t.is_active(now)).cloned().collect()
    }

    /// Deletes a token; `false` if there was none.
    pub fn delete_token(&self, token: &str) -> io::Result<bool> {
        if lock(&self.tokens).remove(token).is_none() {
            return Ok(false);
        }
        fs::remove_file(self.token_path(token))?;
        fsync_dir(&self.root.join("tokens"))?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), false).unwrap();
        let record =
            VideoRecord::create(new_id("vi"), store.next_seq(), Utc::now(), br#"{"title":"a"}"#)
                .unwrap();
        let id = record.video_id.clone();
        let slot = store.insert_video(record).unwrap();
        let f = store.incoming_path();
        fs::write(&f, vec![7u8; 6 * 1024 * 1024]).unwrap();
        let complete = store
            .commit_chunk(
                &slot,
                Some(ContentRange::Part { part: 1, total: Some(2) }),
                Some(&f),
                6 * 1024 * 1024,
            )
            .unwrap();
        assert!(!complete);
        let token = store.create_token(0, Utc::now()).unwrap();
        fs::write(store.incoming_path(), b"half a body").unwrap();
        drop(store);

        let store = Store::open(dir.path(), false).unwrap();
        let slot = store.video(&id).expect("video reloaded");
        let parts = slot.lock().upload.ingest().received_parts.unwrap_or_default().parts;
        assert_eq!(parts, [1]);
        assert!(store.active_token(&token.token, Utc::now()).is_some());
        assert_eq!(
            fs::read_dir(dir.path().join("incoming")).unwrap().count(),
            0,
            "unacknowledged bodies are dropped"
        );
        assert!(store.next_seq() > 1);
    }
}
