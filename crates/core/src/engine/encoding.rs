//! Waiting for a video's encoding (`--wait`, `--max-processing`): its status polled, through the
//! client's rate limiter, with a backoff, until it plays (or is fully encoded), fails, or the
//! bound passes.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::Ctx;

/// Rows of this process holding back their source for `--max-processing`.
static HELD: AtomicUsize = AtomicUsize::new(0);
/// Videos of this process counted against `--max-processing`.
static ENCODING: AtomicUsize = AtomicUsize::new(0);

/// While rows hold back their source for `--max-processing`: how many rows, and how many videos
/// are encoding (for the status line).
pub fn held_for_encoding() -> Option<(usize, usize)> {
    let held = HELD.load(Ordering::Relaxed);
    (held > 0).then(|| (held, ENCODING.load(Ordering::Relaxed)))
}

/// One video of this run counted against `--max-processing`, from its source's start to the end
/// of its encoding.
#[derive(Debug)]
pub struct Encoding {
    _permit: OwnedSemaphorePermit,
}

struct Holding;

impl Drop for Holding {
    fn drop(&mut self) {
        HELD.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Encoding {
    /// Waits until fewer than `--max-processing` videos are encoding.
    pub(super) async fn start(processing: &Arc<Semaphore>) -> Encoding {
        HELD.fetch_add(1, Ordering::Relaxed);
        let _holding = Holding;
        let permit =
            processing.clone().acquire_owned().await.expect("the semaphore is never closed");
        ENCODING.fetch_add(1, Ordering::Relaxed);
        Encoding { _permit: permit }
    }
}

impl Drop for Encoding {
    fn drop(&mut self) {
        ENCODING.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Longest pause between two polls of one video.
const MAX_POLL: Duration = Duration::from_secs(30);

/// What `--wait` waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum WaitFor {
    /// `encoding.playable`: at least one quality plays.
    Playable,
    /// Every quality is `encoded`.
    Encoded,
}

/// How a wait ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Waited {
    /// What was waited for happened: `playable` or `encoded`.
    Done(&'static str),
    /// A quality failed (the message names them).
    Failed(String),
    /// Still encoding at the bound.
    Timeout(String),
    /// The status could not be read.
    Unknown(String),
    /// The run was asked to stop.
    Stopped,
}

impl Waited {
    /// The report's `encoding` value.
    pub fn column(&self) -> Option<&'static str> {
        match self {
            Waited::Done(what) => Some(what),
            Waited::Failed(_) | Waited::Unknown(_) => Some("failed"),
            Waited::Timeout(_) => Some("timeout"),
            Waited::Stopped => None,
        }
    }
}

/// Polls `video_id` until `what` holds, a quality fails, `timeout` passes or the run stops.
pub(super) async fn wait(ctx: &Ctx, video_id: &str, what: WaitFor) -> Waited {
    let start = Instant::now();
    let timeout = ctx.config.wait_timeout;
    let mut pause = ctx.config.wait_poll.max(Duration::from_millis(10));
    loop {
        let status = tokio::select! {
            s = ctx.client.status(video_id) => s,
            () = ctx.stop.cancelled() => return Waited::Stopped,
        };
        let encoding = match status {
            Ok(s) => s.encoding.unwrap_or_default(),
            Err(e) => {
                return Waited::Unknown(format!(
                    "encoding status unknown: {}",
                    super::error_chain(&e)
                ))
            }
        };
        let failed = encoding.failed();
        if !failed.is_empty() {
            return Waited::Failed(format!("encoding failed: {}", failed.join(", ")));
        }
        match what {
            WaitFor::Playable if encoding.playable => return Waited::Done("playable"),
            WaitFor::Encoded if encoding.all_encoded() => return Waited::Done("encoded"),
            _ => {}
        }
        let left = timeout.saturating_sub(start.elapsed());
        if left.is_zero() {
            let what = match what {
                WaitFor::Playable => "not playable",
                WaitFor::Encoded => "not fully encoded",
            };
            return Waited::Timeout(format!(
                "still encoding after {} ({what})",
                humantime::format_duration(timeout)
            ));
        }
        tokio::select! {
            () = tokio::time::sleep(pause.min(left)) => {}
            () = ctx.stop.cancelled() => return Waited::Stopped,
        }
        pause = (pause * 2).min(MAX_POLL);
    }
}
