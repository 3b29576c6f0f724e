//! What the account holds under avbatch keys, kept in memory so that finding a row's video, and
//! noticing another run's, costs no request per row.
//!
//! A small video is one request to create and one to upload; looking its key up first and
//! listing it again after the create ([`super::video`]) would more than double that. So when the
//! account is small next to the run (its pages of 100 videos fewer than half the rows to look
//! up, and at most [`MAX_INDEX_PAGES`]), the run reads every video once and answers lookups from
//! that index, for the digest keys and the raw keys of avbatch 0.1 alike. After creates, one
//! listing of the newest videos serves every create that finished before it began: other runs'
//! videos made meanwhile show up there, so runs at once still converge on one video per row.
//! Rows keep asking the server one by one when the account is large (a nightly run of a few new
//! rows into a big library): reading it all would cost more than it saves.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::Mutex;

use super::KEY_METADATA;
use crate::api::Video;
use crate::client::{ApiError, Client};

/// The most pages (of 100 videos) read to index an account: 200 000 videos, a few tens of MiB.
pub const MAX_INDEX_PAGES: u32 = 2000;

/// api.video's timestamps are to the second, and a run's clock is not the server's: a refresh
/// lists back to this much before the newest video it saw last time.
const TIMESTAMP_SLACK: TimeDelta = TimeDelta::seconds(2);

/// Whether lookups use the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Not decided: nothing was looked up yet.
    Unknown,
    /// Every keyed video of the account is in memory, and kept current by refreshes.
    Indexed,
    /// The account is too large for this run: rows ask the server one by one.
    PerRow,
}

#[derive(Debug)]
struct State {
    mode: Mode,
    /// Key value (digest or raw) → its videos, in the server's order.
    by_key: HashMap<String, Vec<Video>>,
    /// Videos already indexed.
    seen: HashSet<String>,
    /// The newest creation time listed so far.
    newest: Option<DateTime<Utc>>,
    /// Creates finished when the last refresh began: they are all in the index.
    refreshed: u64,
}

/// The index of one run.
#[derive(Debug)]
pub(super) struct Keys {
    client: Client,
    /// Rows that may need a lookup: what an index saves.
    rows: u64,
    state: Mutex<State>,
    /// Creates finished so far.
    created: AtomicU64,
}

impl Keys {
    /// An index for a run of `rows` rows; nothing is read until the first lookup.
    pub(super) fn new(client: Client, rows: u64) -> Keys {
        let state = State { mode: Mode::Unknown, by_key: HashMap::new(), seen: HashSet::new(), newest: None, refreshed: 0 };
        Keys { client, rows, state: Mutex::new(state), created: AtomicU64::new(0) }
    }

    /// The videos under `key` or, for avbatch 0.1's videos, `legacy`, in the server's order;
    /// `None` when rows must ask the server themselves.
    pub(super) async fn find(&self, key: &str, legacy: &str) -> Result<Option<Vec<Video>>, ApiError> {
        let mut state = self.state.lock().await;
        if state.mode == Mode::Unknown {
            self.decide(&mut state).await?;
        }
        if state.mode != Mode::Indexed {
            return Ok(None);
        }
        let found = state.by_key.get(key).or_else(|| state.by_key.get(legacy)).cloned().unwrap_or_default();
        Ok(Some(found))
    }

    /// After this run made `own`: every video now under its key (`own` included); `None` when
    /// the row must list its key itself.
    pub(super) async fn after_create(&self, own: &Video) -> Result<Option<Vec<Video>>, ApiError> {
        let epoch = self.created.fetch_add(1, Ordering::SeqCst) + 1;
        let mut state = self.state.lock().await;
        if state.mode != Mode::Indexed {
            return Ok(None);
        }
        if state.refreshed < epoch {
            // One listing for every create that finished before it starts: those waiting on
            // the lock behind this one find theirs done.
            let started = self.created.load(Ordering::SeqCst);
            self.refresh(&mut state).await?;
            state.refreshed = started;
        }
        let key = own.metadata_value(KEY_METADATA).unwrap_or_default();
        let mut under = state.by_key.get(key).cloned().unwrap_or_default();
        if !under.iter().any(|v| v.video_id == own.video_id) {
            // A list that lags behind a create: the video exists all the same.
            under.push(own.clone());
        }
        Ok(Some(under))
    }

    /// Reads the whole account if it is small enough next to the run, else settles on asking
    /// row by row.
    async fn decide(&self, state: &mut State) -> Result<(), ApiError> {
        let (first, pages) = self.client.videos_page(1, false).await?;
        let worth = u64::from(pages) <= (self.rows / 2).max(1);
        if !worth || pages > MAX_INDEX_PAGES {
            tracing::debug!(pages, rows = self.rows, "the account is large next to the run: rows look their keys up one by one");
            state.mode = Mode::PerRow;
            return Ok(());
        }
        state.absorb(first);
        for page in 2..=pages {
            let (videos, _) = self.client.videos_page(page, false).await?;
            state.absorb(videos);
        }
        tracing::debug!(pages, keys = state.by_key.len(), "the account's keyed videos are indexed");
        state.mode = Mode::Indexed;
        Ok(())
    }

    /// Lists the newest videos, back to a little before the newest one seen last time, and adds
    /// them oldest first, so each key's videos stay in the server's order (which breaks ties
    /// between videos made in the same second, as every run must break them alike).
    async fn refresh(&self, state: &mut State) -> Result<(), ApiError> {
        let back_to = state.newest.map(|t| t - TIMESTAMP_SLACK);
        let mut newest_first = Vec::new();
        let mut page = 1;
        loop {
            let (videos, pages) = self.client.videos_page(page, true).await?;
            let reached = videos.iter().any(|v| matches!((v.created_at, back_to), (Some(t), Some(b)) if t < b));
            newest_first.extend(videos);
            if reached || page >= pages {
                break;
            }
            page += 1;
        }
        newest_first.reverse();
        state.absorb(newest_first);
        Ok(())
    }
}

impl State {
    fn absorb(&mut self, videos: Vec<Video>) {
        for video in videos {
            if let Some(t) = video.created_at {
                self.newest = Some(self.newest.map_or(t, |n| n.max(t)));
            }
            let Some(key) = video.metadata_value(KEY_METADATA).map(str::to_owned) else { continue };
            if self.seen.insert(video.video_id.clone()) {
                self.by_key.entry(key).or_default().push(video);
            }
        }
    }
}
