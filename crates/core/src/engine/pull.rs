//! A pulled row's source: api.video fetches it from its URL, and the row is done only once
//! api.video holds it (`ingested`), never when the create is answered.
//!
//! api.video documents no state and no webhook for a source it could not fetch (a wrong URL, an
//! expired signature, a server that refused it): such a video reads `ingesting` for ever, or in
//! some other way that is not `ingested`. So the wait is bounded by a time that follows the
//! source's size ([`bound`]); past it the row fails with the reason, and the next run replaces
//! the video ([`super::video::resolve`]). The presigned URL of a bucket's object lives as long as
//! that bound ([`url_lifetime`]), so a slow fetch is never cut off by its own signature.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{error_chain, Ctx, SessionEnd};

/// The rate a pull is given at least, on top of `--pull-timeout`: a MiB a second.
const FLOOR_RATE: u64 = 1024 * 1024;

/// Longest pause between two polls of a pulled video's status.
const MAX_POLL: Duration = Duration::from_secs(30);

/// The most a bucket's presigned URL may live (S3's limit, the strictest of the three clouds).
const MOST_URL_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

/// Rows of this process waiting for api.video to fetch their source.
static FETCHING: AtomicUsize = AtomicUsize::new(0);

/// How many rows wait for api.video to fetch their source now (for the status line).
pub fn fetching() -> usize {
    FETCHING.load(Ordering::Relaxed)
}

/// A row counted in [`fetching`] until dropped.
struct Fetching;

impl Fetching {
    fn start() -> Fetching {
        FETCHING.fetch_add(1, Ordering::Relaxed);
        Fetching
    }
}

impl Drop for Fetching {
    fn drop(&mut self) {
        FETCHING.fetch_sub(1, Ordering::Relaxed);
    }
}

/// How long api.video is given to fetch a source of `size` bytes: `--pull-timeout`, and a second
/// more for every MiB of it.
pub(super) fn bound(pull_timeout: Duration, size: u64) -> Duration {
    pull_timeout.saturating_add(Duration::from_secs(size / FLOOR_RATE))
}

/// How long the presigned URL of a source of `size` bytes lives: the whole of its [`bound`] and
/// an hour more (a create that waits for its turn, clocks apart), within S3's seven days. It
/// still cannot outlive the credentials that sign it.
pub(super) fn url_lifetime(pull_timeout: Duration, size: u64) -> Duration {
    bound(pull_timeout, size).saturating_add(Duration::from_secs(3600)).min(MOST_URL_LIFETIME)
}

/// How long ago a video was made (none for a video whose creation time is not known).
pub(super) fn age(created_at: Option<DateTime<Utc>>) -> Duration {
    created_at.map_or(Duration::ZERO, |t| {
        Utc::now().signed_duration_since(t).to_std().unwrap_or(Duration::ZERO)
    })
}

/// Waits until api.video holds the source of `video_id` (made `age` ago), polling its status
/// with a backoff through the client's limiter. Fails the row once the source's [`bound`] has
/// passed since the video was made.
pub(super) async fn arrival(
    ctx: &Ctx,
    video_id: &str,
    size: u64,
    age: Duration,
) -> Result<(), SessionEnd> {
    let _counted = Fetching::start();
    let limit = bound(ctx.config.pull_timeout, size);
    let left = limit.saturating_sub(age);
    let deadline = tokio::time::Instant::now() + left;
    let mut pause = ctx.config.wait_poll.clamp(Duration::from_millis(10), MAX_POLL);
    loop {
        let status = tokio::select! {
            s = ctx.client.status(video_id) => s,
            () = ctx.stop.cancelled() => return Err(SessionEnd::Stopped),
        };
        let status = status.map_err(|e| {
            SessionEnd::failed(format!(
                "cannot tell whether api.video fetched the source: {}",
                error_chain(&e)
            ))
        })?;
        if status.is_uploaded() {
            return Ok(());
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            let state = status
                .ingest_state()
                .map_or_else(|| "no ingest state".into(), |s| format!("`{s}`"));
            return Err(SessionEnd::failed(format!(
                "api.video has not fetched the source from its URL within {} of making video \
                 `{video_id}` (its status says {state}): check that the URL answers from the \
                 internet and has not expired; the next run replaces the video (or --relay \
                 sends the source from here)",
                humantime::format_duration(limit)
            )));
        }
        tokio::select! {
            () = tokio::time::sleep(pause.min(deadline - now)) => {}
            () = ctx.stop.cancelled() => return Err(SessionEnd::Stopped),
        }
        pause = (pause * 2).min(MAX_POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bound_grows_a_second_a_mib_and_the_url_outlives_it_within_seven_days() {
        let base = Duration::from_secs(3600);
        assert_eq!(bound(base, 0), base);
        assert_eq!(bound(base, 600 * FLOOR_RATE), base + Duration::from_secs(600));
        assert_eq!(url_lifetime(base, 0), Duration::from_secs(7200));
        assert_eq!(url_lifetime(base, u64::MAX), MOST_URL_LIFETIME);
    }
}
