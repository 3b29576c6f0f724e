//! `avbatch check`: the manifest compared with the account by key, reading only (`GET`s: the
//! video list, then each found video's status; never a POST, PATCH or DELETE, not even the
//! `/auth/api-key` exchange, since every call carries the key).
//!
//! The manifest is checked first as `upload` checks it (a bad one reads nothing). Then the
//! account's videos carrying an avbatch key are read, page by page
//! ([`avbatch_core::leftovers::keyed_videos`]), and the manifest's rows are read again, one at a
//! time: each row takes its videos out (under its key, and the raw key avbatch 0.1 stored),
//! which are compared with it and their status read, a few at a time within the rate limits;
//! whatever is left when the rows end is owned by no row: an extra, unless a row of a manifest
//! sharing the account (`--shared-with`, its rows keyed as `clean` keys them) owns it.
//!
//! What grows with what: memory holds the account's keyed videos (with the fields compared) and
//! the findings, never the manifest's rows; the check keeps about 50 bytes a row on disk
//! (`TMPDIR`), as `upload`'s does.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::Context;
use futures::stream::{self, StreamExt};
use tokio::sync::mpsc;

use super::clean::reach;
use super::{Exit, Outcome, Stop};
use crate::cli::CheckArgs;
use crate::config;
use crate::output::check::{show, summarize, write_report, Compared, Finding, Kind};
use crate::output::say_warning;
use avbatch_api::{differences, Difference, NewVideo, Progress, Video};
use avbatch_core::client::{error_chain, ApiError, Client, ClientConfig};
use avbatch_core::engine::{new_video, KEY_METADATA, OWN_METADATA, REPLACED_KEY_METADATA};
use avbatch_core::leftovers::keyed_videos;
use avbatch_core::manifest::{self, Keyed, KeyedRows, LoadOptions, ManifestError};
use avbatch_core::retry::RetryConfig;

/// Rows read ahead of the comparison.
const ROWS_AHEAD: usize = 1024;

/// Rows whose videos' statuses are read at once.
const STATUSES_AT_ONCE: usize = 8;

/// What a row wants of its video: its keys and the creation payload an upload would send.
struct Wanted {
    line: u64,
    id: Option<String>,
    key: String,
    legacy: String,
    video: NewVideo,
    /// The row's file's (or object's) size; 0 when not known.
    size: u64,
    /// The languages of the row's captions and chapters tracks.
    captions: Vec<String>,
    chapters: Vec<String>,
}

/// The keyed videos of the account, by metadata field and key.
type Index = HashMap<(&'static str, String), Vec<Video>>;

/// Runs `avbatch check`.
pub async fn run(args: &CheckArgs) -> Outcome {
    let destination = config::destination(
        args.account.base_url.as_deref(),
        args.account.env,
        &args.account.local_data,
    )?;
    let options = LoadOptions { allow_unknown_columns: args.allow_unknown_columns };
    let path = args.manifest.clone();
    let checked = tokio::task::spawn_blocking(move || manifest::check(&path, &options, |_| {}))
        .await
        .context("checking the manifest panicked")?;
    let checked = checked.map_err(|e| manifest_refused(&e))?;
    // The manifests sharing the account, opened before any call too.
    let shared = args
        .shared_with
        .iter()
        .map(|path| Ok((path.clone(), manifest::row_keys(path)?)))
        .collect::<Result<Vec<_>, ManifestError>>()
        .map_err(|e| Stop::invalid(error_chain(&e)))?;
    let (base_url, api_key, _server) =
        reach(destination, args.account.api_key_file.as_deref()).await?;
    let mut client_config = ClientConfig::new(&base_url, api_key);
    client_config.retry =
        RetryConfig { max_retries: args.account.retries, ..RetryConfig::default() };
    client_config.timeout = args.account.timeout;
    let client = Client::new(client_config);

    let mut index = keyed_videos(&client, None)
        .await
        .map_err(|e| super::clean::account_failed("cannot list the videos", &e, &client))?;
    let mut compared = Compared {
        manifest: args.manifest.display().to_string(),
        keyed_videos: index.values().map(|v| v.len() as u64).sum(),
        ..Compared::default()
    };

    let (wanted, mut taken) = mpsc::channel(ROWS_AHEAD);
    let reader = tokio::task::spawn_blocking(move || -> Result<(), ManifestError> {
        for row in checked.rows()? {
            // A check that refuses a manifest with problems leaves no row out.
            let row = row?.into_row();
            let want = Wanted {
                line: row.line,
                id: row.id.clone(),
                key: row.key(),
                legacy: row.identity(),
                video: new_video(&row),
                size: row.size,
                captions: row.captions.iter().map(|t| t.language.clone()).collect(),
                chapters: row.chapters.iter().map(|t| t.language.clone()).collect(),
            };
            if wanted.blocking_send(want).is_err() {
                break;
            }
        }
        Ok(())
    });
    let rows = stream::poll_fn(|cx| taken.poll_recv(cx));
    let mut rows_seen = 0u64;
    let mut replaced = 0u64;
    let per_row: Vec<Vec<Finding>> = rows
        .map(|want| {
            rows_seen += 1;
            let (mine, gone) = take(&mut index, &want);
            replaced += gone;
            let client = &client;
            async move { judge_row(client, want, mine).await }
        })
        .buffered(STATUSES_AT_ONCE)
        .collect()
        .await;
    reader.await.context("reading the manifest panicked")?.map_err(|e| manifest_refused(&e))?;
    compared.rows = rows_seen;
    let mut findings: Vec<Finding> = per_row.into_iter().flatten().collect();
    let (index, theirs) = tokio::task::spawn_blocking(move || theirs(index, shared))
        .await
        .context("reading the manifests sharing the account panicked")??;
    compared.shared = theirs;
    let (extras, replaced_extras) = extras(index);
    compared.replaced = replaced;
    findings.extend(extras);
    if replaced_extras > 0 {
        say_warning(&format!(
            "{replaced_extras} video(s) a `--force` run is replacing carry a key no row owns: \
             listed as extras"
        ));
    }

    show(&compared, &findings, args.json);
    if let Some(path) = &args.report {
        if let Err(e) = write_report(path, &compared, &findings) {
            summarize(&compared, &findings);
            let message = format!("cannot write the report `{}`: {e}", path.display());
            return Err(Stop::new(Exit::SomeFailed, message));
        }
    }
    summarize(&compared, &findings);
    Ok(if findings.is_empty() { Exit::Done } else { Exit::SomeFailed })
}

/// Why the manifest is refused: exit 2.
fn manifest_refused(e: &ManifestError) -> Stop {
    let mut text = error_chain(e);
    for problem in e.problems() {
        text.push_str(&format!("\n  {problem}"));
    }
    Stop::invalid(text)
}

/// Takes a row's videos out of the index: those carrying its key, or its raw key, and (only
/// counted) those a `--force` run is replacing under its key.
fn take(index: &mut Index, want: &Wanted) -> (Vec<Video>, u64) {
    let mut mine = index.remove(&(KEY_METADATA, want.key.clone())).unwrap_or_default();
    if want.legacy != want.key {
        mine.extend(index.remove(&(KEY_METADATA, want.legacy.clone())).unwrap_or_default());
    }
    let replaced = index.remove(&(REPLACED_KEY_METADATA, want.key.clone())).map_or(0, |v| v.len());
    (mine, replaced as u64)
}

/// What is out of step with one row: no video, several, and for each video its differences
/// and its source's state (read from the server).
async fn judge_row(client: &Client, want: Wanted, videos: Vec<Video>) -> Vec<Finding> {
    let finding = |kind: Kind, video_ids: Vec<String>| Finding {
        kind,
        line: Some(want.line),
        id: want.id.clone(),
        key: want.key.clone(),
        video_ids,
        title: want.video.title.clone(),
        fields: Vec::new(),
        detail: String::new(),
    };
    if videos.is_empty() {
        return vec![finding(Kind::Missing, Vec::new())];
    }
    let mut findings = Vec::new();
    if videos.len() > 1 {
        findings
            .push(finding(Kind::Duplicate, videos.iter().map(|v| v.video_id.clone()).collect()));
    }
    let statuses = futures::future::join_all(videos.iter().map(|v| client.status(&v.video_id)));
    for (video, status) in videos.iter().zip(statuses.await) {
        let mut fields = differences(&want.video, video, &OWN_METADATA);
        if let Some(held) = status.as_ref().ok().and_then(|s| s.source_size()) {
            if want.size > 0 && held != want.size {
                // Another file under the row's key (two folders giving one `id`).
                let bytes = |n: u64| format!("{n} bytes");
                let (wanted, held) = (bytes(want.size), bytes(held));
                fields.push(Difference { field: "source size", wanted, held });
            }
        }
        if !fields.is_empty() {
            findings
                .push(Finding { fields, ..finding(Kind::Differs, vec![video.video_id.clone()]) });
        }
        let (kind, detail) = match status {
            Ok(status) => match status.progress() {
                Progress::Complete => {
                    let tracks = track_differences(client, &want, &video.video_id).await;
                    if !tracks.is_empty() {
                        let fields = tracks;
                        let id = vec![video.video_id.clone()];
                        findings.push(Finding { fields, ..finding(Kind::Differs, id) });
                    }
                    let failed = status.encoding.as_ref().map(|e| e.failed()).unwrap_or_default();
                    if !failed.is_empty() {
                        // It will never play: the row's file must go again (`--force`).
                        let detail =
                            format!("complete, its encoding failed ({})", failed.join(", "));
                        findings.push(Finding {
                            detail,
                            ..finding(Kind::Incomplete, vec![video.video_id.clone()])
                        });
                    }
                    continue;
                }
                Progress::Partial => (Kind::Incomplete, "partial"),
                Progress::Empty => (Kind::Incomplete, "empty"),
            },
            Err(e) if e.status().map(|s| s.as_u16()) == Some(404) => {
                (Kind::Unknown, "gone since the videos were listed")
            }
            Err(e) => {
                let detail = error_chain(&e);
                findings.push(Finding {
                    detail,
                    ..finding(Kind::Unknown, vec![video.video_id.clone()])
                });
                continue;
            }
        };
        findings.push(Finding {
            detail: detail.to_owned(),
            ..finding(kind, vec![video.video_id.clone()])
        });
    }
    findings
}

/// The row's captions and chapters tracks the video lacks (deleted by hand, say), as a
/// difference per kind: the languages the manifest names, and those the video holds. A list
/// that cannot be read is a difference too, saying why.
async fn track_differences(client: &Client, want: &Wanted, video_id: &str) -> Vec<Difference> {
    let mut out = Vec::new();
    if !want.captions.is_empty() {
        let held = client.captions(video_id).await;
        let held = held.map(|list| list.into_iter().map(|c| c.srclang).collect());
        out.extend(track_difference("captions", &want.captions, held));
    }
    if !want.chapters.is_empty() {
        let held = client.chapters(video_id).await;
        let held = held.map(|list| list.into_iter().map(|c| c.language).collect());
        out.extend(track_difference("chapters", &want.chapters, held));
    }
    out
}

/// One kind's tracks compared: `None` when the video holds every language wanted (tags
/// compared without regard to case).
fn track_difference(
    field: &'static str,
    wanted: &[String],
    held: Result<Vec<String>, ApiError>,
) -> Option<Difference> {
    let held = match held {
        Ok(held) if wanted.iter().all(|w| held.iter().any(|h| h.eq_ignore_ascii_case(w))) => {
            return None
        }
        Ok(held) => held.join(", "),
        Err(e) => format!("not read: {}", error_chain(&e)),
    };
    Some(Difference { field, wanted: wanted.join(", "), held })
}

/// Takes out of the index the videos the rows of the manifests sharing the account own
/// (`--shared-with`): theirs, not extras. Returns the index and how many it took. A row of
/// theirs whose key cannot be known (no `id`, and its file unreadable) is said in a warning: a
/// video of it would be listed as an extra.
fn theirs(mut index: Index, shared: Vec<(PathBuf, KeyedRows)>) -> Result<(Index, u64), Stop> {
    let mut taken = 0u64;
    for (path, rows) in shared {
        let mut unkeyed: Vec<String> = Vec::new();
        for row in rows {
            let row = row.map_err(|e| Stop::invalid(error_chain(&e)))?;
            let keys = match row {
                Keyed::Row(keys) => keys,
                Keyed::Unknown(problem) => {
                    unkeyed.push(problem.to_string());
                    continue;
                }
            };
            for field in [KEY_METADATA, REPLACED_KEY_METADATA] {
                let videos = index.remove(&(field, keys.key.clone()));
                taken += videos.map_or(0, |v| v.len() as u64);
            }
            if keys.legacy != keys.key {
                let videos = index.remove(&(KEY_METADATA, keys.legacy));
                taken += videos.map_or(0, |v| v.len() as u64);
            }
        }
        if let Some(first) = unkeyed.first() {
            say_warning(&format!(
                "{} row(s) of `{}` have no key (their file cannot be read), so a video of theirs \
                 would be listed as an extra; the first: {first}",
                unkeyed.len(),
                path.display()
            ));
        }
    }
    Ok((index, taken))
}

/// The videos no row took: each an extra, and each key still held by several a duplicate.
/// Also answers how many of them carry only `avbatch_replaced_key`.
fn extras(index: Index) -> (Vec<Finding>, u64) {
    let mut left: Vec<((&'static str, String), Vec<Video>)> = index.into_iter().collect();
    left.sort_by(|a, b| {
        let first = |v: &Vec<Video>| v.first().map(|v| (v.created_at, v.video_id.clone()));
        first(&a.1).cmp(&first(&b.1))
    });
    let (mut findings, mut replaced) = (Vec::new(), 0u64);
    for ((field, key), videos) in left {
        if field == REPLACED_KEY_METADATA {
            replaced += videos.len() as u64;
        }
        let finding = |kind, video_ids, title: &str| Finding {
            kind,
            line: None,
            id: None,
            key: key.clone(),
            video_ids,
            title: title.to_owned(),
            fields: Vec::new(),
            detail: String::new(),
        };
        if videos.len() > 1 {
            let ids = videos.iter().map(|v| v.video_id.clone()).collect();
            findings.push(finding(Kind::Duplicate, ids, &videos[0].title));
        }
        for video in &videos {
            findings.push(finding(Kind::Extra, vec![video.video_id.clone()], &video.title));
        }
    }
    (findings, replaced)
}
