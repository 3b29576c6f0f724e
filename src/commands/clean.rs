//! `avbatch clean`: the unfinished videos avbatch left behind ([`avbatch_core::leftovers`]), listed
//! and, with `--delete`, deleted; per manifest or across the account.

use std::sync::atomic::Ordering;

use anyhow::Context;
use futures::stream::{self, StreamExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::local::Local;
use super::{Exit, Stop};
use crate::cli::CleanArgs;
use crate::config::{self, Destination};
use crate::output::clean::{show, summarize, Outcome, Scope};
use crate::output::{say, say_warning};
use avbatch_api::secret::ApiKey;
use avbatch_core::client::{error_chain, ApiError, Client, ClientConfig};
use avbatch_core::leftovers::{Finder, Found, Leftover};
use avbatch_core::manifest::{self, Keyed, KeyedRows, ManifestError};
use avbatch_core::retry::RetryConfig;

/// Row keys read ahead of the search.
const ROWS_AHEAD: usize = 1024;

/// Leftovers deleted at once (each is a status check, then a delete).
const DELETES_AT_ONCE: usize = 8;

/// Rows without a key named in the warning; the rest are counted.
const UNKEYED_SHOWN: usize = 5;

/// Runs `avbatch clean`.
pub async fn run(args: &CleanArgs) -> super::Outcome {
    let destination = config::destination(
        args.account.base_url.as_deref(),
        args.account.env,
        &args.account.local_data,
    )?;
    // The manifest first: one that cannot be read stops the command before any call.
    let rows = match &args.manifest {
        Some(path) => Some(manifest::row_keys(path).map_err(|e| Stop::invalid(error_chain(&e)))?),
        None => None,
    };
    let (base_url, api_key, _server) =
        reach(destination, args.account.api_key_file.as_deref()).await?;

    let (stop, abort) = (CancellationToken::new(), CancellationToken::new());
    let mut client_config = ClientConfig::new(&base_url, api_key);
    client_config.retry =
        RetryConfig { max_retries: args.account.retries, ..RetryConfig::default() };
    client_config.timeout = args.account.timeout;
    client_config.stop = stop.clone();
    client_config.abort = abort.clone();
    let client = Client::new(client_config);
    let signals = tokio::spawn(watch_signals(stop.clone(), abort.clone()));
    if let Err(e) = client.authenticate().await {
        return Err(failed("cannot authenticate", &e, &client, &stop));
    }

    let finder = Finder::new(client.clone(), args.older_than);
    let found = match rows {
        Some(rows) => match in_manifest(&finder, rows).await? {
            Ok(found) => found,
            Err(Failure::Manifest(e)) => return Err(Stop::invalid(error_chain(&e))),
            Err(Failure::Api(e)) => {
                return Err(failed("cannot list the videos", &e, &client, &stop))
            }
        },
        None => match finder.account().await {
            Ok(found) => found,
            Err(e) => return Err(failed("cannot list the videos", &e, &client, &stop)),
        },
    };

    let outcomes = if args.delete {
        delete(&finder, &found.leftovers, &stop).await
    } else {
        vec![Outcome::Listed; found.leftovers.len()]
    };
    signals.abort();
    let scope = Scope {
        manifest: args.manifest.as_ref().map(|m| m.display().to_string()),
        older_than: crate::bounds::show_duration(args.older_than),
        delete: args.delete,
    };
    show(&scope, &found, &outcomes, args.json);
    summarize(&scope, &found, &outcomes);
    Ok(if outcomes.iter().any(|o| matches!(o, Outcome::NotTried)) {
        Exit::Interrupted
    } else if outcomes.iter().any(|o| matches!(o, Outcome::Failed(_))) {
        Exit::SomeFailed
    } else {
        Exit::Done
    })
}

/// The API a command talks to: its base URL, the API key, and the embedded server it started
/// for `--env local --local-data DIR` (dropped when the command ends), or why the command
/// cannot go on.
pub(super) async fn reach(
    destination: Destination,
    api_key_file: Option<&std::path::Path>,
) -> Result<(String, Option<ApiKey>, Option<Local>), Stop> {
    Ok(match destination {
        Destination::Remote(url) => {
            match config::api_key(api_key_file, &|v| std::env::var(v).ok())? {
                Some(key) => (url, Some(key), None),
                None => {
                    let hint =
                        "set AVBATCH_API_KEY (or APIVIDEO_API_KEY) or pass --api-key-file FILE";
                    return Err(Stop::invalid("no API key").hint(hint));
                }
            }
        }
        Destination::Local(None) => {
            let hint = "pass the folder an earlier `avbatch upload --env local --local-data DIR` \
                        used";
            return Err(Stop::invalid("--env local needs --local-data DIR").hint(hint));
        }
        Destination::Local(Some(dir)) => {
            if !dir.is_dir() {
                let message = format!("the local data folder `{}` does not exist", dir.display());
                return Err(Stop::invalid(message));
            }
            let server = Local::start(&dir).await?;
            (server.url().to_owned(), server.generated_key().cloned(), Some(server))
        }
    })
}

/// Why the search of a manifest's videos stopped.
enum Failure {
    Manifest(ManifestError),
    Api(ApiError),
}

/// The leftovers under the keys of the manifest's rows, read as the search takes them. Rows
/// whose key cannot be known are said in a warning; a manifest that fails part way fails the
/// whole search, so nothing is deleted on the strength of half a manifest.
async fn in_manifest(finder: &Finder, rows: KeyedRows) -> anyhow::Result<Result<Found, Failure>> {
    let (keys, taken) = mpsc::channel(ROWS_AHEAD);
    let reader = tokio::task::spawn_blocking(move || -> Result<_, ManifestError> {
        let (mut unkeyed, mut shown) = (0usize, Vec::new());
        for row in rows {
            match row? {
                Keyed::Row(k) => {
                    if keys.blocking_send(k).is_err() {
                        // The search stopped (an API failure): nothing more to read.
                        break;
                    }
                }
                Keyed::Unknown(problem) => {
                    unkeyed += 1;
                    if shown.len() < UNKEYED_SHOWN {
                        shown.push(problem.to_string());
                    }
                }
            }
        }
        Ok((unkeyed, shown))
    });
    let found = finder.manifest(taken).await;
    let read = reader.await.context("reading the manifest panicked")?;
    let (unkeyed, shown) = match read {
        Ok(read) => read,
        Err(e) => return Ok(Err(Failure::Manifest(e))),
    };
    if unkeyed > 0 {
        let mut text = format!(
            "{unkeyed} row(s) without an `id` whose file cannot be read: their key is made of \
             the file's size and time, so their videos cannot be told (`avbatch clean --all` \
             looks at every video with an avbatch key)"
        );
        for problem in shown {
            text.push_str(&format!("\n  {problem}"));
        }
        if unkeyed > UNKEYED_SHOWN {
            text.push_str(&format!("\n  … and {} more", unkeyed - UNKEYED_SHOWN));
        }
        say_warning(&text);
    }
    Ok(found.map_err(Failure::Api))
}

/// Deletes each leftover still unfinished, a few at a time; after a stop, those not begun are
/// not tried.
async fn delete(finder: &Finder, leftovers: &[Leftover], stop: &CancellationToken) -> Vec<Outcome> {
    stream::iter(leftovers)
        .map(|leftover| async move {
            if stop.is_cancelled() {
                return Outcome::NotTried;
            }
            let deleted = match finder.still_unfinished(leftover).await {
                Ok(false) => return Outcome::Kept,
                Ok(true) => finder.delete(leftover).await,
                Err(e) => Err(e),
            };
            match deleted {
                Ok(()) => Outcome::Deleted,
                Err(ApiError::Cancelled { .. }) => Outcome::NotTried,
                Err(e) => Outcome::Failed(error_chain(&e)),
            }
        })
        .buffered(DELETES_AT_ONCE)
        .collect()
        .await
}

/// Why the command could not go on: 3 for a refused key, 4 when the API never answered, 130
/// after a stop, else 1.
fn failed(what: &str, e: &ApiError, client: &Client, stop: &CancellationToken) -> Stop {
    if stop.is_cancelled() {
        return Stop::asked(Exit::Interrupted, "stopped; nothing was deleted");
    }
    account_failed(what, e, client)
}

/// Why the account could not be read (`what` failed): 3 for a refused key, 4 when the API
/// never answered, else 1. `clean`, `check` and the dry run alike.
pub(super) fn account_failed(what: &str, e: &ApiError, client: &Client) -> Stop {
    let hint = "check AVBATCH_API_KEY / --api-key-file, and that the key belongs to this \
                environment";
    let exit = if e.is_auth() {
        Exit::Auth
    } else if client.stats().answers.load(Ordering::Relaxed) == 0 {
        Exit::Unreachable
    } else {
        Exit::SomeFailed
    };
    let message = format!("{what} at `{}`: {}", client.base_url(), error_chain(e));
    Stop::new(exit, message).maybe_hint(e.is_auth().then_some(hint))
}

/// First Ctrl-C or SIGTERM: no new calls (deletes under way finish). Second: abort them.
async fn watch_signals(stop: CancellationToken, abort: CancellationToken) {
    super::shutdown_signal().await;
    say("stopping: no more deletes; finishing those under way (press Ctrl-C again to abort them)");
    stop.cancel();
    super::shutdown_signal().await;
    abort.cancel();
}
