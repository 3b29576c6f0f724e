//! What the account holds under avbatch keys, kept in memory so that finding a row's video, and
//! noticing another run's, costs no request per row.
//!
//! A small video is one request to create and one to upload; looking its key up first and
//! listing it again after the create ([`super::video`]) would more than double that. So when the
//! account is small next to the run (its pages of 100 videos fewer than half the rows, and at
//! most [`MAX_INDEX_PAGES`]), the run reads every video once and answers lookups from that
//! index, for the digest keys and the raw keys of avbatch 0.1 alike. After creates, one listing
//! of the newest videos serves every create that finished before it began (and waits a few
//! milliseconds for those under way): other runs' videos made meanwhile show up there, so runs
//! at once still converge on one video per row. Rows keep asking the server one by one when the
//! account is large (a nightly run of a few new rows into a big library): reading it all would
//! cost more than it saves.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{Mutex, OnceCell};
use tokio::time::Instant;

use super::KEY_METADATA;
use crate::client::{ApiError, Client};
use crate::marks::{REPLACED_KEY_METADATA, RUN_METADATA};
use avbatch_api::Video;

/// The most pages (of 100 videos) read to index an account: 200 000 videos, a few tens of MiB.
pub const MAX_INDEX_PAGES: u32 = 2000;

/// How long a listing after creates waits for the creates still under way.
const GATHER: Duration = Duration::from_millis(25);

/// Whether lookups use the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Every keyed video of the account is in memory, and kept current by refreshes.
    Indexed,
    /// The account is too large for this run: rows ask the server one by one.
    PerRow,
}

/// What a run keeps of a video under a key: what finding a row's video and ranking the videos
/// under one key read. The rest of a video (its title, description, links, a few hundred bytes)
/// is not held for every video of an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Listed {
    pub video_id: String,
    pub created_at: Option<DateTime<Utc>>,
    /// Made by this run: it carries the run's mark ([`crate::marks::RUN_METADATA`]).
    pub ours: bool,
}

impl Listed {
    /// What a run keeps of `video`, whose mark is compared with the run's `mark`.
    pub(super) fn of(video: &Video, mark: &str) -> Listed {
        Listed {
            video_id: video.video_id.clone(),
            created_at: video.created_at,
            ours: video.metadata_value(RUN_METADATA) == Some(mark),
        }
    }
}

/// The index itself; never locked across a request.
#[derive(Debug, Default)]
struct Index {
    /// Key value (digest or raw) → its videos, in the server's order.
    by_key: HashMap<String, Vec<Listed>>,
    /// Key value → the videos that gave it up for a replacement not finished yet.
    replaced: HashMap<String, Vec<String>>,
    /// Videos already indexed.
    seen: HashSet<String>,
    /// The newest creation time listed so far.
    newest: Option<DateTime<Utc>>,
}

/// The index of one run.
#[derive(Debug)]
pub(super) struct Keys {
    client: Client,
    /// The run's mark, which tells its own videos.
    mark: String,
    /// Rows that may need a lookup: what an index saves.
    rows: u64,
    mode: OnceCell<Mode>,
    index: RwLock<Index>,
    /// One refresh at a time; holds the count of creates finished when the last one began.
    refreshed: Mutex<u64>,
    /// Creates finished so far.
    created: AtomicU64,
    /// Creates under way.
    creating: AtomicU64,
    /// Keys whose create failed in a way that may have taken effect (see [`Keys::unsure`]).
    unsure: std::sync::Mutex<HashSet<String>>,
}

/// A create under way, counted until dropped.
pub(super) struct Creating<'a>(&'a Keys);

impl Drop for Creating<'_> {
    fn drop(&mut self) {
        self.0.creating.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Keys {
    /// An index for a run of `rows` rows; nothing is read until the first lookup.
    pub(super) fn new(client: Client, mark: String, rows: u64) -> Keys {
        Keys {
            client,
            mark,
            rows,
            mode: OnceCell::new(),
            index: RwLock::new(Index::default()),
            refreshed: Mutex::new(0),
            created: AtomicU64::new(0),
            creating: AtomicU64::new(0),
            unsure: std::sync::Mutex::default(),
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, Index> {
        self.index.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Index> {
        self.index.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The index, once the run settled on keeping one; `None` when rows must ask the server
    /// themselves. Not to be held across a request.
    async fn indexed(&self) -> Result<Option<RwLockReadGuard<'_, Index>>, ApiError> {
        let mode = *self.mode.get_or_try_init(|| self.decide()).await?;
        Ok((mode == Mode::Indexed).then(|| self.read()))
    }

    /// The videos under `key` or, for avbatch 0.1's videos, `legacy`, in the server's order;
    /// `None` when rows must ask the server themselves.
    pub(super) async fn find(
        &self,
        key: &str,
        legacy: &str,
    ) -> Result<Option<Vec<Listed>>, ApiError> {
        Ok(self.indexed().await?.map(|index| {
            index.by_key.get(key).or_else(|| index.by_key.get(legacy)).cloned().unwrap_or_default()
        }))
    }

    /// The videos under `key` and under `legacy`; `None` when rows must ask the server.
    pub(super) async fn find_every(
        &self,
        key: &str,
        legacy: &str,
    ) -> Result<Option<Vec<Listed>>, ApiError> {
        let legacy = Some(legacy).filter(|l| *l != key);
        Ok(self.indexed().await?.map(|index| {
            let keys = [Some(key), legacy].into_iter().flatten();
            keys.filter_map(|k| index.by_key.get(k)).flatten().cloned().collect()
        }))
    }

    /// Marks a create under way until the guard goes to [`Keys::after_create`] (or is dropped).
    pub(super) fn creating(&self) -> Creating<'_> {
        self.creating.fetch_add(1, Ordering::SeqCst);
        Creating(self)
    }

    /// After this run made `own`: every video now under its key (`own` included); `None` when
    /// the row must list its key itself.
    pub(super) async fn after_create(
        &self,
        own: &Video,
        creating: Creating<'_>,
    ) -> Result<Option<Vec<Listed>>, ApiError> {
        let epoch = self.created.fetch_add(1, Ordering::SeqCst) + 1;
        drop(creating);
        if self.mode.get() != Some(&Mode::Indexed) {
            return Ok(None);
        }
        let mut refreshed = self.refreshed.lock().await;
        if *refreshed < epoch {
            // One listing for every create that finished before it starts: those waiting
            // behind this one find theirs done. The creates still under way (the rows prepared
            // alongside) are worth a few milliseconds' wait, to be served by it too.
            let deadline = Instant::now() + GATHER;
            while self.creating.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            let started = self.created.load(Ordering::SeqCst);
            self.refresh().await?;
            *refreshed = started;
        }
        drop(refreshed);
        let key = own.metadata_value(KEY_METADATA).unwrap_or_default();
        let mut under = self.read().by_key.get(key).cloned().unwrap_or_default();
        if !under.iter().any(|v| v.video_id == own.video_id) {
            // A list that lags behind a create: the video exists all the same.
            under.push(Listed::of(own, &self.mark));
        }
        Ok(Some(under))
    }

    /// The videos that gave `key` up for a replacement not finished yet; `None` when rows must
    /// ask the server themselves.
    pub(super) async fn replaced(&self, key: &str) -> Result<Option<Vec<String>>, ApiError> {
        Ok(self.indexed().await?.map(|index| index.replaced.get(key).cloned().unwrap_or_default()))
    }

    /// This run took `video_id` out from under `key` (it gave the key up, or was deleted): later
    /// lookups and convergences in this run no longer see it there. A listing does not bring it
    /// back: a video is absorbed once.
    pub(super) fn forget(&self, key: &str, video_id: &str) {
        let mut index = self.write();
        if let Some(under) = index.by_key.get_mut(key) {
            under.retain(|v| v.video_id != video_id);
        }
        if let Some(under) = index.replaced.get_mut(key) {
            under.retain(|v| v != video_id);
        }
    }

    /// A create under `key` failed in a way that may have taken effect, and may yet: the row's
    /// key is listed again once the row ends ([`super::video::sweep_late_creates`]).
    pub(super) fn unsure(&self, key: &str) {
        self.unsure.lock().unwrap_or_else(|p| p.into_inner()).insert(key.to_owned());
    }

    /// Whether a create under `key` was [`Keys::unsure`]; asked once.
    pub(super) fn take_unsure(&self, key: &str) -> bool {
        self.unsure.lock().unwrap_or_else(|p| p.into_inner()).remove(key)
    }

    /// This run moved `video` from under `old` to under `new` (a touched file's new key).
    pub(super) fn moved(&self, video: &Video, old: &str, new: &str) {
        self.forget(old, &video.video_id);
        let mut index = self.write();
        let under = index.by_key.entry(new.to_owned()).or_default();
        if !under.iter().any(|v| v.video_id == video.video_id) {
            under.push(Listed::of(video, &self.mark));
        }
    }

    /// Reads the whole account if it is small enough next to the run, else settles on asking
    /// row by row.
    async fn decide(&self) -> Result<Mode, ApiError> {
        let (first, pages) = self.client.videos_page(1, false).await?;
        let worth = u64::from(pages) <= (self.rows / 2).max(1);
        if !worth || pages > MAX_INDEX_PAGES {
            tracing::debug!(
                pages,
                rows = self.rows,
                "the account is large next to the run: rows look their keys up one by one"
            );
            return Ok(Mode::PerRow);
        }
        self.write().absorb(first, &self.mark);
        for page in 2..=pages {
            let (videos, _) = self.client.videos_page(page, false).await?;
            self.write().absorb(videos, &self.mark);
        }
        tracing::debug!(
            pages,
            keys = self.read().by_key.len(),
            "the account's keyed videos are indexed"
        );
        Ok(Mode::Indexed)
    }

    /// Lists the newest videos, back past the second of the newest one seen last time, and adds
    /// them oldest first, so each key's videos stay in the server's order (which breaks ties
    /// between videos made in the same second, as every run must break them alike).
    ///
    /// api.video's timestamps are to the second and how it orders videos made in the same second
    /// is not documented, so the whole second of the newest known video is listed again: a
    /// video made after that listing, in that second, may sort below one already known.
    async fn refresh(&self) -> Result<(), ApiError> {
        let back_to = self.read().newest;
        let mut newest_first = Vec::new();
        let mut page = 1;
        loop {
            let (videos, pages) = self.client.videos_page(page, true).await?;
            let reached = videos
                .iter()
                .any(|v| matches!((v.created_at, back_to), (Some(t), Some(b)) if t < b));
            newest_first.extend(videos);
            if reached || page >= pages {
                break;
            }
            page += 1;
        }
        newest_first.reverse();
        self.write().absorb(newest_first, &self.mark);
        Ok(())
    }
}

impl Index {
    fn absorb(&mut self, videos: Vec<Video>, mark: &str) {
        for video in videos {
            if let Some(t) = video.created_at {
                self.newest = Some(self.newest.map_or(t, |n| n.max(t)));
            }
            if !self.seen.insert(video.video_id.clone()) {
                continue;
            }
            // Under each key value it carries: a manifest of an earlier avbatch may have set
            // one of its own beside the key avbatch added.
            for key in video.metadata_values(KEY_METADATA) {
                self.by_key.entry(key.to_owned()).or_default().push(Listed::of(&video, mark));
            }
            for key in video.metadata_values(REPLACED_KEY_METADATA) {
                self.replaced.entry(key.to_owned()).or_default().push(video.video_id.clone());
            }
        }
    }
}
