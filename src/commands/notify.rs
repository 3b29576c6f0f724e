//! `upload --notify URL`: when a run ends, its summary is POSTed as JSON, tried a few times with
//! backoff within `--notify-timeout`. A failure is a warning on stderr: the exit code is the
//! run's, whatever the receiver does.
//!
//! The body is the report's summary (camelCase, as in the JSON report) plus `exitCode`,
//! `outcome` (the exit code's meaning), `manifest`, `report` and `text`, one line for chat
//! webhooks that show a `text` field. It is made from the summary and paths alone: no key, no
//! token, no header of the API's.

use std::path::Path;
use std::time::{Duration, SystemTime};

use serde_json::Value;

use super::Exit;
use crate::output::report::Summary;
use avbatch_core::retry::RetryConfig;

/// Tries of one notification: the first and two retries.
pub const TRIES: u32 = 3;

/// The JSON body of a run's notification.
pub fn body(summary: &Summary, exit: Exit, manifest: &Path, report: &Path) -> Value {
    let mut body = match serde_json::to_value(summary) {
        Ok(Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    let text = text(summary, exit, manifest);
    body.insert("exitCode".into(), (exit as u8).into());
    body.insert("outcome".into(), exit.meaning().into());
    body.insert("manifest".into(), manifest.display().to_string().into());
    body.insert("report".into(), report.display().to_string().into());
    body.insert("text".into(), text.into());
    Value::Object(body)
}

/// One line: `avbatch upload manifest.csv: exit 5 (…): 3 of 8 rows uploaded, …`.
pub fn text(s: &Summary, exit: Exit, manifest: &Path) -> String {
    let name = manifest.file_name().unwrap_or(manifest.as_os_str()).to_string_lossy();
    let shard = s.shard.as_deref().map(|k| format!(" (shard {k})")).unwrap_or_default();
    format!(
        "avbatch upload {name}{shard}: exit {} ({}): {} (left for the next run); {} in {:.0} s",
        exit as u8,
        exit.meaning(),
        s.rows_text(),
        indicatif::HumanBytes(s.bytes),
        s.seconds
    )
}

/// The receiver's address as warnings show it: scheme, host and port only (a webhook's path is
/// often its secret).
pub fn shown(url: &reqwest::Url) -> String {
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    format!("{}://{}{port}/…", url.scheme(), url.host_str().unwrap_or_default())
}

/// POSTs `body` to `url`: up to [`TRIES`] tries, retrying connection errors, time-outs, 408,
/// 429 and 5xx with backoff, all within `bound`. Returns the tries made, or why it failed.
pub async fn send(url: &reqwest::Url, body: &Value, bound: Duration) -> Result<u32, String> {
    let client = reqwest::Client::builder()
        .user_agent(concat!("avbatch/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot make an HTTP client: {e}"))?;
    let retry = RetryConfig {
        max_retries: TRIES - 1,
        retry_timeout: bound,
        min_backoff: Duration::from_millis(500),
        max_backoff: Duration::from_secs(5),
    };
    let started = SystemTime::now();
    let deadline = tokio::time::Instant::now() + bound;
    let mut tries = 0;
    let mut last = String::from("no try made");
    let work = async {
        loop {
            tries += 1;
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let sent = client.post(url.clone()).json(body).timeout(left).send().await;
            let retryable = match sent {
                Ok(answer) if answer.status().is_success() => return Ok(tries),
                Ok(answer) => {
                    let status = answer.status();
                    last = format!("the receiver answered {status}");
                    status.is_server_error() || matches!(status.as_u16(), 408 | 429)
                }
                Err(e) => {
                    last = avbatch_core::client::error_chain(&e.without_url());
                    true
                }
            };
            match retry.backoff(started, tries - 1) {
                Some(wait) if retryable => tokio::time::sleep(wait).await,
                _ => return Err(format!("{last} (after {tries} tries)")),
            }
        }
    };
    match tokio::time::timeout(bound, work).await {
        Ok(done) => done,
        Err(_) => Err(format!(
            "no success within --notify-timeout {} ({last}, {tries} tries)",
            humantime::format_duration(bound)
        )),
    }
}
