//! `avbatch check`: the manifest compared with the account by key, reading only (`GET`s: the
//! video list, then each found video's status; never a POST, PATCH or DELETE, not even the
//! `/auth/api-key` exchange, since every call carries the key).
//!
//! The manifest is checked first as `upload` checks it (a bad one reads nothing). Then the
//! account's videos carrying an avbatch key are read, page by page
//! ([`crate::leftovers::keyed_videos`]), and the manifest's rows are read again, one at a time:
//! each row takes its videos out (under its key, and the raw key avbatch 0.1 stored), which are
//! compared with it and their status read, a few at a time within the rate limits; whatever is
//! left when the rows end is owned by no row.
//!
//! What grows with what: memory holds the account's keyed videos (with the fields compared) and
//! the findings, never the manifest's rows; the check keeps about 50 bytes a row on disk
//! (`TMPDIR`), as `upload`'s does.

use std::collections::HashMap;
use std::process::ExitCode;

use anyhow::Context;
use futures::stream::{self, StreamExt};
use tokio::sync::mpsc;

use super::clean::reach;
use super::{invalid, Exit};
use crate::api::{NewVideo, Progress, Video};
use crate::cli::CheckArgs;
use crate::client::{error_chain, Client, ClientConfig};
use crate::config;
use crate::engine::{new_video, ASSETS_METADATA, KEY_METADATA, REPLACED_KEY_METADATA};
use crate::leftovers::keyed_videos;
use crate::manifest::{self, LoadOptions, ManifestError};
use crate::output::check::{show, summarize, write_report, Compared, Difference, Finding, Kind};
use crate::output::{say_error, say_warning};
use crate::retry::RetryConfig;

/// Rows read ahead of the comparison.
const ROWS_AHEAD: usize = 1024;

/// Rows whose videos' statuses are read at once.
const STATUSES_AT_ONCE: usize = 8;

/// Metadata avbatch writes for itself: not the user's, never compared.
const OWN_METADATA: [&str; 3] = [KEY_METADATA, ASSETS_METADATA, REPLACED_KEY_METADATA];

/// What a row wants of its video: its keys and the creation payload an upload would send.
struct Wanted {
    line: u64,
    id: Option<String>,
    key: String,
    legacy: String,
    video: NewVideo,
}

/// The keyed videos of the account, by metadata field and key.
type Index = HashMap<(&'static str, String), Vec<Video>>;

/// Runs `avbatch check`.
pub async fn run(args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let destination =
        match config::destination(args.base_url.as_deref(), args.env, &args.local_data) {
            Ok(d) => d,
            Err(e) => return Ok(invalid(&e.message, e.hint.as_deref())),
        };
    let options = LoadOptions { allow_unknown_columns: args.allow_unknown_columns };
    let path = args.manifest.clone();
    let checked = tokio::task::spawn_blocking(move || manifest::check(&path, &options, |_| {}))
        .await
        .context("checking the manifest panicked")?;
    let checked = match checked {
        Ok(checked) => checked,
        Err(e) => return Ok(manifest_refused(&e)),
    };
    let (base_url, api_key, _server) =
        match reach(destination, args.api_key_file.as_deref()).await? {
            Ok(reached) => reached,
            Err(code) => return Ok(code),
        };
    let mut client_config = ClientConfig::new(&base_url, api_key);
    client_config.retry = RetryConfig { max_retries: args.retries, ..RetryConfig::default() };
    client_config.timeout = args.timeout;
    let client = Client::new(client_config);

    let mut index = match keyed_videos(&client, None).await {
        Ok(index) => index,
        Err(e) => return Ok(super::clean::account_failed("cannot list the videos", &e, &client)),
    };
    let mut compared = Compared {
        manifest: args.manifest.display().to_string(),
        keyed_videos: index.values().map(|v| v.len() as u64).sum(),
        ..Compared::default()
    };

    let (wanted, mut taken) = mpsc::channel(ROWS_AHEAD);
    let reader = tokio::task::spawn_blocking(move || -> Result<(), ManifestError> {
        for row in checked.rows()? {
            let row = row?;
            let want = Wanted {
                line: row.line,
                id: row.id.clone(),
                key: row.key(),
                legacy: row.identity(),
                video: new_video(&row),
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
    match reader.await.context("reading the manifest panicked")? {
        Ok(()) => {}
        Err(e) => return Ok(manifest_refused(&e)),
    }
    compared.rows = rows_seen;
    let mut findings: Vec<Finding> = per_row.into_iter().flatten().collect();
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
            say_error(&format!("cannot write the report `{}`: {e}", path.display()), None);
            summarize(&compared, &findings);
            return Ok(Exit::SomeFailed.into());
        }
    }
    summarize(&compared, &findings);
    Ok(if findings.is_empty() { Exit::Done } else { Exit::SomeFailed }.into())
}

/// Says why the manifest is refused, and answers exit 2.
fn manifest_refused(e: &ManifestError) -> ExitCode {
    let mut text = error_chain(e);
    for problem in e.problems() {
        text.push_str(&format!("\n  {problem}"));
    }
    invalid(&text, None)
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
        let fields = differences(&want.video, video);
        if !fields.is_empty() {
            findings
                .push(Finding { fields, ..finding(Kind::Differs, vec![video.video_id.clone()]) });
        }
        let (kind, detail) = match status {
            Ok(status) => match status.progress() {
                Progress::Complete => continue,
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

/// The fields the row sets whose value on the server is another, as api.video stores them: the
/// title always; the rest only when the row sets them (api.video answers `public`, `panoramic`
/// and `mp4Support` with their defaults, true, false and true, when they were never set). Tags
/// are compared as a set, the user's metadata as a set of pairs, avbatch's own left out.
pub(crate) fn differences(want: &NewVideo, video: &Video) -> Vec<Difference> {
    let mut out = Vec::new();
    let mut differ = |field: &'static str, manifest: String, server: String| {
        if manifest != server {
            out.push(Difference { field, manifest, server });
        }
    };
    differ("title", want.title.clone(), video.title.clone());
    if let Some(d) = &want.description {
        differ("description", d.clone(), video.description.clone().unwrap_or_default());
    }
    if !want.tags.is_empty() {
        let set = |tags: &[String]| {
            let mut tags: Vec<&str> = tags.iter().map(String::as_str).collect();
            tags.sort_unstable();
            tags.dedup();
            tags.join(";")
        };
        differ("tags", set(&want.tags), set(video.tags.as_deref().unwrap_or_default()));
    }
    let pairs = |pairs: &mut dyn Iterator<Item = (&str, &str)>| {
        let mut pairs: Vec<String> = pairs
            .filter(|(k, _)| !OWN_METADATA.contains(k))
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        pairs.sort_unstable();
        pairs.join(";")
    };
    let wanted = pairs(&mut want.metadata.iter().map(|m| (m.key.as_str(), m.value.as_str())));
    if !wanted.is_empty() {
        let held = pairs(&mut video.metadata.iter().map(|m| (m.key.as_str(), m.value.as_str())));
        differ("metadata", wanted, held);
    }
    for (field, wanted, held, default) in [
        ("public", want.public, video.public, true),
        ("panoramic", want.panoramic, video.panoramic, false),
        ("mp4Support", want.mp4_support, video.mp4_support, true),
    ] {
        if let Some(wanted) = wanted {
            differ(field, wanted.to_string(), held.unwrap_or(default).to_string());
        }
    }
    for (field, wanted, held) in [
        ("playerId", &want.player_id, &video.player_id),
        ("language", &want.language, &video.language),
    ] {
        if let Some(wanted) = wanted {
            differ(field, wanted.clone(), held.clone().unwrap_or_default());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Metadata;

    fn meta(pairs: &[(&str, &str)]) -> Vec<Metadata> {
        pairs.iter().map(|(k, v)| Metadata { key: (*k).into(), value: (*v).into() }).collect()
    }

    #[test]
    fn only_the_fields_a_row_sets_are_compared() {
        let want = NewVideo {
            tags: vec!["b".into(), "a".into()],
            metadata: meta(&[("genre", "x"), ("avbatch_key", "k")]),
            ..NewVideo::titled("T")
        };
        let video = Video {
            title: "T".into(),
            description: Some("server's own".into()),
            tags: Some(vec!["a".into(), "b".into(), "a".into()]),
            metadata: meta(&[("avbatch_assets", "d"), ("genre", "x"), ("avbatch_key", "k")]),
            public: Some(false),
            ..Video::default()
        };
        assert_eq!(differences(&want, &video), []);
        let want = NewVideo {
            description: Some("mine".into()),
            public: Some(true),
            panoramic: Some(false),
            mp4_support: Some(true),
            language: Some("fr".into()),
            tags: vec!["a".into()],
            ..want
        };
        let fields: Vec<&str> =
            differences(&want, &video).iter().map(|d| d.field).collect::<Vec<_>>();
        assert_eq!(fields, ["description", "tags", "public", "language"]);
    }

    #[test]
    fn unset_booleans_are_the_api_defaults() {
        let video = Video { title: "T".into(), ..Video::default() };
        let want = NewVideo {
            public: Some(true),
            panoramic: Some(false),
            mp4_support: Some(true),
            ..NewVideo::titled("T")
        };
        assert_eq!(differences(&want, &video), []);
        let want = NewVideo { panoramic: Some(true), ..want };
        assert_eq!(
            differences(&want, &video),
            [Difference { field: "panoramic", manifest: "true".into(), server: "false".into() }]
        );
    }

    #[test]
    fn user_metadata_is_compared_as_a_set_of_pairs() {
        let want = NewVideo { metadata: meta(&[("a", "1"), ("b", "2")]), ..NewVideo::titled("T") };
        let video = Video {
            title: "T".into(),
            metadata: meta(&[("b", "2"), ("a", "1"), ("avbatch_key", "k")]),
            ..Video::default()
        };
        assert_eq!(differences(&want, &video), []);
        let video = Video { metadata: meta(&[("a", "1"), ("b", "3")]), ..video };
        assert_eq!(differences(&want, &video)[0].server, "a=1;b=3");
    }
}
