//! The metadata avbatch keeps on each video for itself, under keys a manifest may not set: the
//! row's key (how a video is found again, exactly once), the run that made it (how a run knows
//! its own videos among others' under one key), the record of its assets, and the key a
//! replaced video gives up (for its replacement's time, or for good with `--keep-old`). A
//! manifest that set one would merge rows into one video or mislead the next run, so the
//! manifest check refuses them ([`crate::manifest`]).

/// Under which each video carries its row's idempotency key.
pub const KEY_METADATA: &str = "avbatch_key";

/// Under which each video carries the mark of the run that made it: a run whose create's
/// answer was lost knows the video it made among those other runs made for the same row.
pub const RUN_METADATA: &str = "avbatch_run";

/// Under which each video carries the digests of the assets sent to it.
pub const ASSETS_METADATA: &str = "avbatch_assets";

/// To which a replaced video's key moves.
pub const REPLACED_KEY_METADATA: &str = "avbatch_replaced_key";

/// To which the key of a video replaced with `--keep-old` moves: kept for good, where a video
/// under [`REPLACED_KEY_METADATA`] is one whose replacement has not finished, which any run
/// completing the row's new video deletes.
pub const KEPT_KEY_METADATA: &str = "avbatch_kept_key";

/// Every key avbatch keeps for itself: never the row's to set, compare or change.
pub const OWN_METADATA: [&str; 5] =
    [KEY_METADATA, RUN_METADATA, ASSETS_METADATA, REPLACED_KEY_METADATA, KEPT_KEY_METADATA];

/// A new run's mark: when it started, to the second, and 32 random bits, so that runs started
/// in the same second on any machine do not share one.
pub fn run_mark() -> String {
    format!("{}-{:08x}", chrono::Utc::now().format("%Y%m%dT%H%M%SZ"), rand::random::<u32>())
}
