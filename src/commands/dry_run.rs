//! `avbatch upload --dry-run`: what a run would do with each row, and how long its requests
//! take under the account's quotas; nothing is sent.
//!
//! `create` rows are planned from the journal alone: the server, which is then not asked, may
//! still hold a video for a row the journal has never seen (the run would find it). Rows with
//! another `action` depend on what the account holds, so when the manifest has any, the
//! account's keyed videos are read first (GETs only, page by page, as `avbatch check` reads
//! them) and each such row compared with its key's video: the plan names the fields an
//! update would change and the videos a delete would remove, by the run's own rules
//! ([`avbatch_core::engine::field_changes`], [`avbatch_core::engine::to_delete`]). A fresh
//! embedded server (`--env local` without `--local-data`) holds nothing, and is not started
//! for that.
//!
//! A row an earlier run failed has its video's status read, as the run reads it: a failed
//! encoding is planned as the failure the run reports (`fail`, naming `--force`), or with
//! `--force` as the new upload. A done row whose thumbnail, captions or chapters were added or
//! changed since (their digests against the journal's) is planned `assets`: those are sent. A
//! started upload costs the bytes it has left.
//!
//! With `--skip-invalid-rows`, a row with problems of its own is planned `invalid`, with each
//! of them, and costs nothing: the run sends nothing for it.
//!
//! The estimate paces the requests to the account's own quotas when the API can be asked: its
//! answers carry `X-RateLimit-Limit` ([`account_quotas`]). Offline (no API key), `--env`'s
//! documented quotas.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use super::local::Local;
use super::{Exit, Outcome, Stop};
use crate::config::{Destination, UploadConfig};
use crate::output::plan::{Action, Estimate, PlanHeader, PlanPrinter, PlanRow};
use crate::output::{say, say_warning};
use avbatch_api::{Bucket, Quotas, Video};
use avbatch_core::chunk::plan_parts;
use avbatch_core::client::{Client, ClientConfig};
use avbatch_core::engine::{
    asset_digests, asset_names, assets_marked, field_changes, fields_held, journaled_for_delete,
    replaces_unusable, to_delete, unusable, Journaled, KEY_METADATA,
};
use avbatch_core::journal::{FileIdentity, Journal, State};
use avbatch_core::leftovers::keyed_videos;
use avbatch_core::manifest::{Checked, Problem, Row, RowAction, RowRead};
use avbatch_core::plan::cost::{self, Cost};
use avbatch_core::plan::RunShape;
use avbatch_core::retry::RetryConfig;

/// The account's keyed videos, by metadata field and key.
type Index = HashMap<(&'static str, String), Vec<Video>>;

/// Prints the plan of a run of `checked` (the rows `shape` covers) and its estimate.
/// `acting`: whether some row has an action other than `create` (the account is then read).
pub(super) async fn print(
    config: &UploadConfig,
    checked: &Checked,
    shape: RunShape,
    acting: bool,
    check_time: Duration,
) -> Outcome {
    let api = connect(config, acting).await?;
    let client = api.as_ref().map(|(client, _)| client);
    let index = read_account(client, acting).await?;
    let (quotas, quotas_of) = match client {
        Some(client) => account_quotas(client, config.quotas).await,
        None => (config.quotas.0, config.quotas.1.to_owned()),
    };
    let manifest_rows = checked.len();
    let header = PlanHeader {
        manifest: config.manifest.display().to_string(),
        journal: config.journal.as_ref().map(|j| j.display().to_string()),
        shard: config.shard.map(|s| s.to_string()),
        limit: config.limit,
        chunk_size: config.chunk_size,
        manifest_rows,
    };
    // A timetable's rate changes with the hour: only a fixed --bandwidth says the link's.
    let fixed = match &config.bandwidth {
        Some(avbatch_core::limit::timetable::Bandwidth::Fixed(rate)) => Some(*rate),
        _ => None,
    };
    let rows = Rows {
        checked: checked.clone(),
        shape,
        force: config.force,
        journal: config.journal.clone().filter(|j| j.exists()),
        index: index.unwrap_or_default(),
        client: client.cloned(),
        runtime: tokio::runtime::Handle::current(),
    };
    let estimate = Estimate {
        cost: Cost::default(),
        quotas,
        quotas_of,
        bytes: 0,
        bytes_per_s: config.assume_bandwidth.or(fixed),
    };
    let json = config.json;
    let printed = tokio::task::spawn_blocking(move || rows.print(header, json, estimate))
        .await
        .context("printing the plan panicked")?;
    printed?;
    let secs = check_time.as_secs_f64();
    say(&format!(
        "manifest checked in {secs:.2} s: {manifest_rows} rows, {:.0} rows/s on {}",
        manifest_rows as f64 / secs.max(1e-9),
        super::upload::check_threads()
    ));
    Ok(Exit::Done)
}

/// The account's keyed videos, when the rows' actions depend on what it holds: read from the
/// API, or none on a fresh embedded server. A failed read ends the dry run.
async fn read_account(client: Option<&Client>, acting: bool) -> Result<Option<Index>, Stop> {
    match (client, acting) {
        (Some(client), true) => {
            say("reading the account's videos: the rows' actions depend on what it holds");
            match keyed_videos(client, None).await {
                Ok(index) => Ok(Some(index)),
                Err(e) => Err(super::clean::account_failed("cannot list the videos", &e, client)),
            }
        }
        // A fresh embedded server: nothing under any key.
        (None, true) => Ok(Some(Index::new())),
        (_, false) => Ok(None),
    }
}

/// The rows of the run, and what the plan of each is read against.
struct Rows {
    checked: Checked,
    shape: RunShape,
    force: bool,
    /// The journal of earlier runs, if there is one.
    journal: Option<PathBuf>,
    /// The account's keyed videos, when read.
    index: Index,
    /// The API, when there is one to read: the status of a video an earlier run failed on.
    client: Option<Client>,
    /// The runtime its reads are made on, from the thread the plan is printed on.
    runtime: tokio::runtime::Handle,
}

impl Rows {
    /// Prints each row's plan as it is read, then the estimate of them all.
    fn print(self, header: PlanHeader, json: bool, mut estimate: Estimate) -> anyhow::Result<()> {
        // What earlier runs did, read without the lock: a run may be going on.
        let journal = match &self.journal {
            Some(path) => Some(Journal::open_read_only(path)?),
            None => None,
        };
        let mut printer = PlanPrinter::start(header, json);
        let mut creating = false;
        for row in self.shape.rows(&self.checked)? {
            let row = match row? {
                RowRead::Valid(row) => row,
                RowRead::Invalid(row, problems) => {
                    print_invalid(&mut printer, &row, &problems);
                    continue;
                }
            };
            // api.video pulls an object from its URL, unless `--relay` (or it cannot be handed
            // one, `remote::pullable`): no part is sent.
            let pulls = row.remote && !row.sent_here(self.shape.relay);
            let parts = match row.sent_here(self.shape.relay) {
                true => plan_parts(row.size, self.shape.chunk_size).map_or(0, |p| p.len() as u64),
                false => 0,
            };
            let mut planned = self.plan_row(&row, journal.as_ref())?;
            if pulls && planned.action == Action::Upload {
                planned.action = Action::Pull;
            }
            if let Some((source, to_send)) = self.source(&row, &planned, pulls, parts) {
                let held = held_assets(journal.as_ref(), &row, &planned, source)?;
                planned.assets =
                    asset_names(&row).into_iter().filter(|n| !held.contains(n)).collect();
                if planned.action == Action::Skip && !planned.assets.is_empty() {
                    planned.action = Action::Assets;
                }
                estimate.cost += cost::of_row(&row, source, to_send, &held);
                creating |= matches!(source, cost::Source::New | cost::Source::Pull);
                // A pull crosses api.video's link, not this machine's; a started upload sends
                // what it has left.
                estimate.bytes += match (source, &planned.entry) {
                    (cost::Source::New, _) => row.size,
                    (cost::Source::Started, Some(e)) => row.size.saturating_sub(e.bytes_done),
                    (cost::Source::Started, None) => row.size,
                    _ => 0,
                };
            }
            if let Some(held) = update_assets(journal.as_ref(), &row, &mut planned)? {
                estimate.cost += cost::of_row(&row, cost::Source::Done, 0, &held);
            }
            match (row.action, planned.action) {
                (_, Action::Delete) => {
                    estimate.cost += cost::of_delete(planned.videos.len() as u64)
                }
                (RowAction::Update, _) | (RowAction::Upsert, Action::Update) => {
                    estimate.cost += cost::of_update(!planned.fields.is_empty())
                }
                _ => {}
            }
            let path = avbatch_core::remote::shown(&row.path_text);
            printer.row(&PlanRow {
                line: row.line,
                id: row.id.as_deref(),
                path: &path,
                bytes: if row.action.uploads() { row.size } else { 0 },
                parts,
                action: planned.action,
                fields: &planned.fields,
                videos: &planned.videos,
                problems: &[],
                assets: &planned.assets,
                error: planned.error.as_deref(),
            });
        }
        if creating {
            estimate.cost += cost::CREATING_RUN;
        }
        printer.finish(&estimate);
        Ok(())
    }

    /// What the run would do of a row's source, and how many parts it would send; `None` for
    /// a row that sends none (an update, a delete).
    fn source(
        &self,
        row: &Row,
        planned: &Planned,
        pulls: bool,
        parts: u64,
    ) -> Option<(cost::Source, u64)> {
        let replaces = self.force || row.action == RowAction::Upsert;
        match (planned.action, &planned.entry) {
            _ if !row.action.uploads() => None,
            // The run fails it before it sends anything.
            (Action::Fail, _) => None,
            (Action::Pull, _) => Some((cost::Source::Pull, 0)),
            (Action::Changed, _) if pulls && replaces => Some((cost::Source::Pull, 0)),
            (Action::Upload, _) => Some((cost::Source::New, parts)),
            (Action::Changed, _) if replaces => Some((cost::Source::New, parts)),
            (Action::Resume | Action::Retry, Some(e)) => {
                Some((cost::Source::Started, parts.saturating_sub(e.parts_done)))
            }
            (Action::Resume | Action::Retry, _) => Some((cost::Source::Started, parts)),
            _ => Some((cost::Source::Done, 0)),
        }
    }
}

/// A row left out for its `problems` (`--skip-invalid-rows`): planned `invalid`, with them; it
/// costs nothing, as the run sends nothing for it.
fn print_invalid(printer: &mut PlanPrinter, row: &Row, problems: &[Problem]) {
    let problems: Vec<String> = problems.iter().map(ToString::to_string).collect();
    printer.row(&PlanRow {
        line: row.line,
        id: row.id.as_deref(),
        path: &avbatch_core::remote::shown(&row.path_text),
        bytes: 0,
        parts: 0,
        action: Action::Invalid,
        fields: &[],
        videos: &[],
        problems: &problems,
        assets: &[],
        error: None,
    });
}

/// The assets the journal records the row's video holding as the row has them now (the same
/// digest), which a run would not send again; none for a video not made yet.
fn held_assets(
    journal: Option<&Journal>,
    row: &Row,
    planned: &Planned,
    source: cost::Source,
) -> anyhow::Result<HashSet<String>> {
    let recorded = match (journal, &planned.entry) {
        _ if asset_names(row).is_empty() => None,
        (Some(j), Some(e)) if !matches!(source, cost::Source::New | cost::Source::Pull) => {
            e.video_id.as_deref().map(|v| j.assets(&e.key, v)).transpose()?.flatten()
        }
        _ => None,
    };
    Ok(recorded.map(|r| same_digest(row, &r)).unwrap_or_default())
}

/// An `update` row's assets, as the run settles them on its video: those the journal records
/// it holding, else its own record in its metadata, with the row's digest are not sent; the
/// others are the row's `assets`, and planned (`assets`, when its fields are in step). Returns
/// those held, for the estimate; `None` for a row that sends none.
fn update_assets(
    journal: Option<&Journal>,
    row: &Row,
    planned: &mut Planned,
) -> anyhow::Result<Option<HashSet<String>>> {
    let names = asset_names(row);
    let Some(video) = planned.video.as_ref().filter(|_| row.action == RowAction::Update) else {
        return Ok(None);
    };
    if names.is_empty() || !matches!(planned.action, Action::Skip | Action::Update) {
        return Ok(None);
    }
    let recorded = journal.map(|j| j.assets(&row.key(), &video.video_id)).transpose()?.flatten();
    let recorded = recorded.or_else(|| assets_marked(video)).unwrap_or_default();
    let held = same_digest(row, &recorded);
    planned.assets = names.into_iter().filter(|n| !held.contains(n)).collect();
    if planned.action == Action::Skip && !planned.assets.is_empty() {
        planned.action = Action::Assets;
    }
    Ok(Some(held))
}

/// The row's assets whose digest, their files read as the run reads them, is the one
/// `recorded` holds. A file the run cannot read fails the row: nothing is held of it.
fn same_digest(row: &Row, recorded: &HashMap<String, String>) -> HashSet<String> {
    let now = asset_digests(row).unwrap_or_default();
    now.into_iter()
        .filter(|(name, digest)| recorded.get(name) == Some(digest))
        .map(|(name, _)| name)
        .collect()
}

/// The API the dry run reads, with the embedded server serving `--local-data` when that is
/// the destination; `None` when there is none to read: a fresh embedded server, or no API key
/// (then the estimate uses `--env`'s documented quotas, and rows with an action other than
/// `create` cannot be planned).
async fn connect(
    config: &UploadConfig,
    acting: bool,
) -> Result<Option<(Client, Option<Local>)>, Stop> {
    let (url, key, server) = match &config.destination {
        Destination::Local(None) => return Ok(None),
        Destination::Remote(url) => match &config.api_key {
            Some(key) => (url.clone(), Some(key.clone()), None),
            None if !acting => return Ok(None),
            None => {
                let hint = "set AVBATCH_API_KEY (or pass --api-key-file FILE): a dry run of \
                            `upsert`, `update` and `delete` rows reads the account's videos";
                return Err(Stop::invalid("no API key").hint(hint));
            }
        },
        local => super::clean::reach(local.clone(), None).await?,
    };
    let mut client_config = ClientConfig::new(&url, key);
    client_config.timeout = config.timeout;
    client_config.retry = RetryConfig { max_retries: config.retries, ..RetryConfig::default() };
    Ok(Some((Client::new(client_config), server)))
}

/// The quotas the estimate uses: the account's, as the API's `X-RateLimit-Limit` says of the
/// reads bucket (one read, unless the videos were read already); the other buckets, which a
/// read cannot show, in the proportions of the documented plan with that reads quota, else of
/// `preset` (`--env`'s). Without the header, or when the read fails, `preset` itself.
async fn account_quotas(client: &Client, preset: (Quotas, &'static str)) -> (Quotas, String) {
    if client.quota(Bucket::Reads).is_none() {
        if let Err(e) = client.videos_page(1, false).await {
            say_warning(&format!(
                "cannot read the account's rate limits ({}): the estimate uses {} quotas",
                avbatch_core::client::error_chain(&e),
                preset.1
            ));
            return (preset.0, preset.1.to_owned());
        }
    }
    let Some(reads) = client.quota(Bucket::Reads) else {
        let of = format!("{} (the API's answer carried no rate-limit headers)", preset.1);
        return (preset.0, of);
    };
    let plans =
        [(Quotas::PRODUCTION, "api.video's production"), (Quotas::SANDBOX, "api.video's sandbox")];
    if let Some((quotas, name)) = plans.iter().find(|(q, _)| q.reads == reads) {
        let plan = name.trim_start_matches("api.video's ");
        return (*quotas, format!("the account's {plan} (its X-RateLimit-Limit)"));
    }
    let scale = |n: u64| (n * reads / preset.0.reads.max(1)).max(1);
    let quotas = Quotas { uploads: scale(preset.0.uploads), writes: scale(preset.0.writes), reads };
    let plan = preset.1.trim_start_matches("api.video's ");
    let of = format!(
        "the account's (reads from its X-RateLimit-Limit; uploads and writes in {plan}'s \
         proportions)"
    );
    (quotas, of)
}

/// What the run would do with one row.
struct Planned {
    action: Action,
    /// The journal's entry for the row's upload, when it has one.
    entry: Option<avbatch_core::journal::Entry>,
    fields: Vec<&'static str>,
    videos: Vec<String>,
    /// The assets it would send.
    assets: Vec<String>,
    /// With [`Action::Fail`]: the run's error.
    error: Option<String>,
    /// The video an `update` row's fields and assets are settled on, when found.
    video: Option<Video>,
}

impl Rows {
    /// Plans a row: its upload from the journal (and, for one an earlier run failed, its
    /// video's status); for other actions, what its key's videos in the index make of it, as
    /// the run's own rules do ([`field_changes`], [`to_delete`]).
    fn plan_row(&self, row: &Row, journal: Option<&Journal>) -> anyhow::Result<Planned> {
        let (action, entry) = match journal {
            Some(j) if row.action.uploads() => planned_action(j, row)?,
            _ => (Action::Upload, None),
        };
        let mut planned = Planned {
            action,
            entry,
            fields: Vec::new(),
            videos: Vec::new(),
            assets: Vec::new(),
            error: None,
            video: None,
        };
        if planned.action == Action::Retry {
            self.weigh_failed(row, &mut planned);
        }
        if row.action == RowAction::Create || planned.action == Action::Fail {
            return Ok(planned);
        }
        let key = row.key();
        // The run's lookup: the videos under the row's key, else under avbatch 0.1's.
        let under = |k: String| self.index.get(&(KEY_METADATA, k)).filter(|v| !v.is_empty());
        let videos: Vec<&Video> =
            under(key.clone()).or_else(|| under(row.identity())).into_iter().flatten().collect();
        let recorded = journal.map(|j| j.fields_set_on(&key)).transpose()?.flatten();
        // The video the run settles the fields of: the journal's, else the one found.
        let journaled = planned.entry.as_ref().and_then(|e| e.video_id.clone());
        let journaled = journaled.or_else(|| recorded.as_ref().map(|(v, _)| v.clone()));
        let video = journaled
            .and_then(|id| videos.iter().find(|v| v.video_id == id))
            .or(videos.first())
            .copied();
        match row.action {
            RowAction::Create => {}
            RowAction::Upsert => match (planned.action, video) {
                // A changed file goes up again, as with --force.
                (Action::Changed, _) | (Action::Upload, None) => {}
                // Found by its key (or done per the journal): its fields compared.
                (Action::Upload | Action::Skip | Action::Compare, Some(video)) => {
                    self.compare(row, &mut planned, video, recorded.as_ref())
                }
                _ => {}
            },
            RowAction::Update => match video {
                Some(video) => {
                    self.compare(row, &mut planned, video, recorded.as_ref());
                    planned.video = Some(video.clone());
                }
                None => planned.action = Action::Missing,
            },
            RowAction::Delete => {
                let said = match journal {
                    Some(j) => journaled_for_delete(j, row, false)?,
                    None => Journaled::default(),
                };
                // Every video the row owns: under its key and under avbatch 0.1's.
                let legacy = Some(row.identity()).filter(|l| *l != key);
                let owned = under(key.clone()).into_iter().chain(legacy.and_then(under)).flatten();
                planned.videos = match said.deleted {
                    Some(_) => Vec::new(),
                    None => to_delete(&said.uploaded, owned.map(|v| v.video_id.clone())),
                };
                planned.action =
                    if planned.videos.is_empty() { Action::Skip } else { Action::Delete };
            }
        }
        Ok(planned)
    }

    /// The row's fields against its video's, as the run weighs them: nothing read when the
    /// journal records them set on it; a field set only when a video is made fails the row,
    /// or with --force makes an `upsert` row's new video.
    fn compare(
        &self,
        row: &Row,
        planned: &mut Planned,
        video: &Video,
        recorded: Option<&(String, String)>,
    ) {
        if fields_held(row, &video.video_id, recorded) {
            planned.action = Action::Skip;
            return;
        }
        let (fields, fixed) = field_changes(row, video);
        planned.fields = fields;
        planned.action = match fixed {
            Some(_) if self.force && row.action == RowAction::Upsert => Action::Upload,
            Some(why) => {
                planned.error = Some(why);
                Action::Fail
            }
            None if planned.fields.is_empty() => Action::Skip,
            None => Action::Update,
        };
    }

    /// A row an earlier run failed: as the run does, its video's status read. A video that
    /// cannot be the row's (its encoding failed, it holds another file) fails the row, unless
    /// the run replaces it with a new one (`--force`, `upsert`): then all of the file goes.
    /// Without an API to ask, or when the read fails, the plan stays `retry`.
    fn weigh_failed(&self, row: &Row, planned: &mut Planned) {
        let video_id = planned.entry.as_ref().and_then(|e| e.video_id.clone());
        let (Some(client), Some(video_id)) = (&self.client, video_id) else { return };
        let Ok(status) = self.runtime.block_on(client.status(&video_id)) else { return };
        let Some((why, hint)) = unusable(row, row.size, Some(&video_id), Some(&status)) else {
            return;
        };
        if replaces_unusable(row, self.force) {
            // A new video, sent whole: nothing of the old one is resumed.
            (planned.action, planned.entry) = (Action::Upload, None);
        } else {
            planned.action = Action::Fail;
            planned.error = Some(format!("{why}; {hint}"));
        }
    }
}

/// What a run would do with `row`'s upload, as the journal records it.
fn planned_action(
    journal: &Journal,
    row: &Row,
) -> anyhow::Result<(Action, Option<avbatch_core::journal::Entry>)> {
    let key = row.key();
    let entry = match journal.get(&key)? {
        Some(e) => e,
        // Without an `id` the key moves with the file's time: the run finds the path's
        // earlier upload and compares.
        None if row.id.is_none() => match journal.latest_for_path(&row.path_text, &key)? {
            Some(e) if e.state == State::Done => e,
            _ => return Ok((Action::Upload, None)),
        },
        None => return Ok((Action::Upload, None)),
    };
    let now = file_identity(row);
    let fingerprinted =
        entry.file.sha256.as_deref().is_some_and(avbatch_core::chunk::is_fingerprint);
    let action = match entry.state {
        State::Uploading => Action::Resume,
        State::Failed => Action::Retry,
        State::Done if entry.file.same_file(&now) => Action::Skip,
        // Its time moved, not its size: the run reads it and compares the contents.
        State::Done if entry.file.size == now.size && fingerprinted => Action::Compare,
        State::Done => Action::Changed,
    };
    Ok((action, Some(entry)))
}

/// The identity of a row's file as the check found it (no checksum: a dry run reads no file).
fn file_identity(row: &Row) -> FileIdentity {
    let mtime_ns = row
        .mtime
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
    FileIdentity { path: row.path_text.clone(), size: row.size, mtime_ns, sha256: None }
}
