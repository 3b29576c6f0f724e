//! avbatch's product: everything between a manifest and api.video, with no command line and no
//! terminal (the `avbatch` binary owns those) and no knowledge of the local double
//! (`avbatch-serve`): it speaks api.video through [`avbatch_api`] alone.
//!
//! # Layout
//! Data flows one way: manifest → plan → engine → report (what a person sees of each is the
//! binary's).
//! - [`manifest`]: the CSV manifest, every row and file checked before anything is sent (a
//!   scanner of records, the header's schema, a parser per column kind); and manifests written
//!   from folders.
//! - [`plan`]: which rows a run covers and how they are cut, counted as the check reads them,
//!   and what each costs under the account's quotas; the run and `--dry-run` share it.
//! - [`chunk`] (with `sigbus`): memory-mapped files cut into zero-copy parts; [`remote`]: the
//!   objects and URLs a row's video is read from when it is not on the local disk (`https://`,
//!   `s3://`, `gs://`, `az://`), with keys found where each cloud's own tools find them.
//! - [`engine`]: many video sessions at once, each row's video found or made exactly once, its
//!   parts in order, then its thumbnail, captions and chapters once each, or (by the row's
//!   `action`) its fields brought in step or its videos deleted; [`journal`]: the SQLite record
//!   that lets a killed run resume; [`shard`]: a stable share of the rows per machine;
//!   [`leftovers`]: the unfinished videos runs left behind, found for `avbatch clean`.
//! - [`report`]: every row mapped to its video, written in manifest order as CSV or JSON (each
//!   row shown to a sink the binary draws with), and shards' reports merged.
//! - [`client`]: the api.video client (auth, calls, chunk framing, progress time-outs), paced by
//!   [`limit`] and retried by [`retry`].
//! - [`texttrack`]: captions and chapters files (WebVTT, SRT) checked and made into the WebVTT
//!   api.video takes.
//! - [`marks`]: the metadata keys avbatch keeps on its videos, which a manifest may not set.
//! - [`excerpt`]: user values cut for messages; [`spill`]: records sorted or kept on disk, so
//!   memory does not grow with the manifest.
//!
//! `tests/layout.rs` (at the workspace's root) fails on an import circle between these modules.

pub mod chunk;
pub mod client;
pub mod engine;
pub mod excerpt;
pub mod journal;
pub mod leftovers;
pub mod limit;
pub mod manifest;
pub mod marks;
pub mod plan;
pub mod remote;
pub mod report;
pub mod retry;
pub mod shard;
#[cfg(target_os = "linux")]
pub mod sigbus;
pub mod spill;
pub mod texttrack;
