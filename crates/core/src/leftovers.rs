//! Videos avbatch made and left unfinished: what `avbatch clean` lists and deletes.
//!
//! Every video avbatch makes carries its row's key in its metadata (`avbatch_key`: the digest
//! key, or the raw key avbatch 0.1 stored; `avbatch_replaced_key` once `--force` gave the key to
//! a new video). A run creates videos ahead of their upload, so one that is interrupted leaves
//! empty videos behind, and a row that fails leaves a partial one. A **leftover** is such a video:
//! keyed, its source not complete (empty or partial, per `/videos/{id}/status`), and created more
//! than a given age ago, so that a run still under way is left alone.
//!
//! A row that finished owns a complete video, and the engine always keeps the one furthest along
//! ([`crate::engine`]), so a row's chosen video is never a leftover once the row is done; an
//! unfinished duplicate under the same key is. An unfinished row's partial video is a leftover
//! too: deleting it costs the next run that row's bytes again, never a duplicate.
//!
//! [`Finder::account`] looks at every keyed video; [`Finder::manifest`] at those of a manifest's
//! rows, by reading the account once when it is small next to the manifest, else by looking each
//! row's keys up (three lookups a row). Memory holds the account's keyed videos old enough to be
//! leftovers, never the manifest.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt, TryStreamExt};
use tokio::sync::mpsc;

use crate::client::{ApiError, Client};
use crate::engine::{KEY_METADATA, REPLACED_KEY_METADATA};
use crate::manifest::RowKeys;
use avbatch_api::{Progress, Video, VideoStatus};

/// Calls on videos at once (statuses, lookups), within the client's rate limiting.
const AT_ONCE: usize = 8;

/// Lookups a row costs when rows look their keys up one by one: its key, its raw key, and its
/// key as a replaced video carries it.
const LOOKUPS_PER_ROW: u64 = 3;

/// Raw keys longer than this were never stored by avbatch 0.1 (its lookup URL would not have
/// been accepted), so they are not looked up, as the engine does not look them up either.
const MAX_LEGACY_KEY: usize = 1024;

/// A video avbatch left unfinished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leftover {
    /// `vi…`.
    pub video_id: String,
    /// Its title.
    pub title: String,
    /// The metadata it carries the key under: `avbatch_key` or `avbatch_replaced_key`.
    pub field: &'static str,
    /// The key's value.
    pub key: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// Empty or partial.
    pub progress: Progress,
    /// Bytes the server holds of its source (uploads by byte range).
    pub held_bytes: u64,
    /// Parts the server holds of its source (uploads by part number).
    pub held_parts: usize,
    /// The manifest line of the row whose key it carries (per manifest only).
    pub line: Option<u64>,
}

/// What a search found.
#[derive(Debug, Default)]
pub struct Found {
    /// The leftovers, by manifest line (per manifest), then by creation.
    pub leftovers: Vec<Leftover>,
    /// Keyed videos looked at (the manifest's, per manifest).
    pub keyed: u64,
    /// Of those, videos younger than the age asked for: left alone, whatever their state.
    pub young: u64,
    /// Of those, videos whose source is complete.
    pub complete: u64,
}

/// Which metadata of a video names its key, and the key.
fn key_of(video: &Video) -> Option<(&'static str, &str)> {
    if let Some(key) = video.metadata_value(KEY_METADATA) {
        return Some((KEY_METADATA, key));
    }
    video.metadata_value(REPLACED_KEY_METADATA).map(|key| (REPLACED_KEY_METADATA, key))
}

/// The account's videos that carry an avbatch key, by the field that names it
/// (`avbatch_key` or `avbatch_replaced_key`) and the key, each video once, in the order listed
/// (oldest first): every page read once, one `reads` call a page. `first` is the first page and
/// the page count when already read. Memory holds the keyed videos, never the others.
pub async fn keyed_videos(
    client: &Client,
    first: Option<(Vec<Video>, u32)>,
) -> Result<HashMap<(&'static str, String), Vec<Video>>, ApiError> {
    let mut by_key: HashMap<(&'static str, String), Vec<Video>> = HashMap::new();
    let mut seen = HashSet::new();
    let mut keep = |videos: Vec<Video>| {
        for video in videos {
            let Some((field, key)) = key_of(&video) else { continue };
            let key = (field, key.to_owned());
            if seen.insert(video.video_id.clone()) {
                by_key.entry(key).or_default().push(video);
            }
        }
    };
    let (first, pages) = match first {
        Some(read) => read,
        None => client.videos_page(1, false).await?,
    };
    keep(first);
    for page in 2..=pages {
        keep(client.videos_page(page, false).await?.0);
    }
    Ok(by_key)
}

/// Looks for leftovers through one client.
#[derive(Debug, Clone)]
pub struct Finder {
    client: Client,
    /// Videos created at or before this are old enough.
    cutoff: DateTime<Utc>,
}

impl Finder {
    /// A finder of videos created more than `older_than` ago (from now).
    pub fn new(client: Client, older_than: Duration) -> Finder {
        let age = chrono::TimeDelta::from_std(older_than).unwrap_or(chrono::TimeDelta::MAX);
        let cutoff = Utc::now().checked_sub_signed(age).unwrap_or(DateTime::<Utc>::MIN_UTC);
        Finder { client, cutoff }
    }

    /// Whether a video is old enough to be a leftover; one without a creation time is not.
    fn old_enough(&self, video: &Video) -> bool {
        video.created_at.is_some_and(|t| t <= self.cutoff)
    }

    /// Every leftover of the account.
    pub async fn account(&self) -> Result<Found, ApiError> {
        let mut found = Found::default();
        let mut seen = HashSet::new();
        let mut page = 1;
        loop {
            let (videos, pages) = self.client.videos_page(page, false).await?;
            let mut old = Vec::new();
            for video in videos {
                if key_of(&video).is_none() || !seen.insert(video.video_id.clone()) {
                    continue;
                }
                found.keyed += 1;
                if self.old_enough(&video) {
                    old.push((video, None));
                } else {
                    found.young += 1;
                }
            }
            self.judge(old, &mut found).await?;
            if page >= pages {
                break;
            }
            page += 1;
        }
        found.leftovers.sort_by_key(|l| l.created_at);
        Ok(found)
    }

    /// The leftovers of the rows whose keys come through `rows` (all of a manifest's rows; the
    /// sender drops when the manifest ends).
    pub async fn manifest(&self, mut rows: mpsc::Receiver<RowKeys>) -> Result<Found, ApiError> {
        let (first, pages) = self.client.videos_page(1, false).await?;
        // Rows looking their keys up one by one cost LOOKUPS_PER_ROW calls each, reading the
        // account one call a page: read rows until it is clear which costs less.
        let mut ahead = Vec::new();
        let mut ended = false;
        while !ended && (ahead.len() as u64) * LOOKUPS_PER_ROW < u64::from(pages) {
            match rows.recv().await {
                Some(row) => ahead.push(row),
                None => ended = true,
            }
        }
        let mut found = Found::default();
        let matched = if ended {
            tracing::debug!(rows = ahead.len(), pages, "rows look their keys up one by one");
            self.look_up(ahead).await?
        } else {
            tracing::debug!(pages, "reading the account once");
            self.read_account(first, pages, ahead, rows).await?
        };
        let mut old = Vec::new();
        for (video, line) in matched {
            found.keyed += 1;
            if self.old_enough(&video) {
                old.push((video, Some(line)));
            } else {
                found.young += 1;
            }
        }
        self.judge(old, &mut found).await?;
        found.leftovers.sort_by_key(|l| (l.line, l.created_at));
        Ok(found)
    }

    /// The videos under each row's keys, asked of the server row by row.
    async fn look_up(&self, rows: Vec<RowKeys>) -> Result<Vec<(Video, u64)>, ApiError> {
        let lists: Vec<Vec<(Video, u64)>> = stream::iter(rows)
            .map(|row| async move {
                let mut videos = self.client.find_by_metadata(KEY_METADATA, &row.key).await?;
                if row.legacy != row.key && row.legacy.len() <= MAX_LEGACY_KEY {
                    videos.extend(self.client.find_by_metadata(KEY_METADATA, &row.legacy).await?);
                }
                videos.extend(self.client.find_by_metadata(REPLACED_KEY_METADATA, &row.key).await?);
                Ok::<_, ApiError>(videos.into_iter().map(|v| (v, row.line)).collect())
            })
            .buffered(AT_ONCE)
            .try_collect()
            .await?;
        let mut seen = HashSet::new();
        Ok(lists.into_iter().flatten().filter(|(v, _)| seen.insert(v.video_id.clone())).collect())
    }

    /// The videos under each row's keys, from one reading of the account (`first` is its first
    /// page of `pages`): only keyed videos are kept, and each row takes its own out.
    async fn read_account(
        &self,
        first: Vec<Video>,
        pages: u32,
        ahead: Vec<RowKeys>,
        mut rows: mpsc::Receiver<RowKeys>,
    ) -> Result<Vec<(Video, u64)>, ApiError> {
        let mut by_key = keyed_videos(&self.client, Some((first, pages))).await?;
        let mut matched = Vec::new();
        let mut take = |row: RowKeys| {
            for key in [
                (KEY_METADATA, row.key.clone()),
                (KEY_METADATA, row.legacy),
                (REPLACED_KEY_METADATA, row.key),
            ] {
                if let Some(videos) = by_key.remove(&key) {
                    matched.extend(videos.into_iter().map(|v| (v, row.line)));
                }
            }
        };
        ahead.into_iter().for_each(&mut take);
        while let Some(row) = rows.recv().await {
            take(row);
        }
        Ok(matched)
    }

    /// Reads the status of each old video and adds those not complete to `found`. A video gone
    /// meanwhile (deleted by a run converging, or by api.video) is no leftover.
    async fn judge(
        &self,
        videos: Vec<(Video, Option<u64>)>,
        found: &mut Found,
    ) -> Result<(), ApiError> {
        let judged: Vec<Option<(Video, Option<u64>, VideoStatus)>> = stream::iter(videos)
            .map(|(video, line)| async move {
                match self.client.status(&video.video_id).await {
                    Ok(status) => Ok(Some((video, line, status))),
                    Err(e) if e.status().map(|s| s.as_u16()) == Some(404) => Ok(None),
                    Err(e) => Err(e),
                }
            })
            .buffered(AT_ONCE)
            .try_collect()
            .await?;
        for (video, line, status) in judged.into_iter().flatten() {
            if status.progress() == Progress::Complete {
                found.complete += 1;
                continue;
            }
            if let Some(leftover) = leftover(video, line, &status) {
                found.leftovers.push(leftover);
            }
        }
        Ok(())
    }

    /// Whether a leftover is still one, asked again just before it is deleted: `false` when its
    /// upload completed since it was listed, or it is gone.
    pub async fn still_unfinished(&self, leftover: &Leftover) -> Result<bool, ApiError> {
        match self.client.status(&leftover.video_id).await {
            Ok(status) => Ok(status.progress() != Progress::Complete),
            Err(e) if e.status().map(|s| s.as_u16()) == Some(404) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Deletes a leftover (`DELETE /videos/{id}`; one already gone counts as deleted).
    pub async fn delete(&self, leftover: &Leftover) -> Result<(), ApiError> {
        self.client.delete_video(&leftover.video_id).await
    }
}

/// A keyed, unfinished video as a leftover; `None` without a key or creation time.
fn leftover(video: Video, line: Option<u64>, status: &VideoStatus) -> Option<Leftover> {
    let (field, key) = key_of(&video)?;
    let (field, key) = (field, key.to_owned());
    let ingest = status.ingest.as_ref();
    let held_bytes = ingest.map_or(0, |i| i.received_bytes.iter().map(|r| r.to - r.from + 1).sum());
    let held_parts = ingest.and_then(|i| i.received_parts.as_ref()).map_or(0, |p| p.parts.len());
    Some(Leftover {
        created_at: video.created_at?,
        video_id: video.video_id,
        title: video.title,
        field,
        key,
        progress: status.progress(),
        held_bytes,
        held_parts,
        line,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use avbatch_api::{BytesRange, Ingest, Metadata};

    fn video(id: &str, metadata: &[(&str, &str)], created: Option<&str>) -> Video {
        Video {
            video_id: id.into(),
            title: format!("title {id}"),
            metadata: metadata
                .iter()
                .map(|(k, v)| Metadata { key: (*k).into(), value: (*v).into() })
                .collect(),
            created_at: created.map(|t| DateTime::parse_from_rfc3339(t).unwrap().to_utc()),
            ..Video::default()
        }
    }

    #[test]
    fn the_key_is_read_from_either_field() {
        let v = video("a", &[("genre", "x"), ("avbatch_key", "k1")], None);
        assert_eq!(key_of(&v), Some((KEY_METADATA, "k1")));
        let v = video("b", &[("avbatch_replaced_key", "k2")], None);
        assert_eq!(key_of(&v), Some((REPLACED_KEY_METADATA, "k2")));
        assert_eq!(key_of(&video("c", &[("genre", "x")], None)), None);
    }

    #[test]
    fn a_leftover_says_what_the_server_holds() {
        let t = "2026-01-02T03:04:05+00:00";
        let status = VideoStatus {
            ingest: Some(Ingest {
                status: Some("uploading".into()),
                filesize: Some(300),
                received_bytes: vec![
                    BytesRange { from: 0, to: 99, total: 300 },
                    BytesRange { from: 100, to: 149, total: 300 },
                ],
                received_parts: None,
            }),
            ..Default::default()
        };
        let l = leftover(video("a", &[("avbatch_key", "k")], Some(t)), Some(7), &status).unwrap();
        assert_eq!((l.progress, l.held_bytes, l.held_parts), (Progress::Partial, 150, 0));
        assert_eq!((l.line, l.key.as_str(), l.field), (Some(7), "k", KEY_METADATA));
        let empty = VideoStatus::default();
        let l = leftover(video("b", &[("avbatch_key", "k")], Some(t)), None, &empty).unwrap();
        assert_eq!((l.progress, l.held_bytes), (Progress::Empty, 0));
        assert!(leftover(video("c", &[("avbatch_key", "k")], None), None, &empty).is_none());
    }

    #[test]
    fn only_videos_past_the_age_are_old_enough() {
        let client = Client::new(crate::client::ClientConfig::new("http://127.0.0.1:9", None));
        let finder = Finder::new(client.clone(), Duration::from_secs(3600));
        let at = |ago: chrono::TimeDelta| (Utc::now() - ago).to_rfc3339();
        let old = video("a", &[], Some(&at(chrono::TimeDelta::hours(2))));
        let young = video("b", &[], Some(&at(chrono::TimeDelta::minutes(30))));
        assert!(finder.old_enough(&old));
        assert!(!finder.old_enough(&young));
        assert!(!finder.old_enough(&video("c", &[], None)), "no creation time, no grounds");
        let every = Finder::new(client, Duration::ZERO);
        assert!(every.old_enough(&young));
        let never = Finder::new(
            Client::new(crate::client::ClientConfig::new("http://127.0.0.1:9", None)),
            Duration::MAX,
        );
        assert!(!never.old_enough(&old), "an age past any date takes nothing");
    }
}
