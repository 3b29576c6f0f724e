//! avbatch: move whole video libraries into api.video, fast, within the rate limits, and without
//! losing or duplicating a video.
//!
//! # Layout
//! Two halves, and the command line over them. Data flows one way through the product:
//! manifest → engine → report.
//!
//! **The command line** (the only place that wires pieces together)
//! - [`cli`]: clap definitions only; [`bounds`]: the range each numeric flag takes.
//! - [`commands`]: one file per command (`upload`, `status`, `clean`, `check`, `report merge`,
//!   `manifest`, `bench`, `serve`), [`run`] to dispatch, and the exit codes; [`config`]:
//!   `upload`'s flags checked once into an [`config::UploadConfig`], and the API's address and
//!   key as every command reads them.
//! - [`output`]: everything a person or a log shipper sees: messages, logs, live progress, the
//!   report and its summary.
//!
//! **The product**
//! - [`manifest`]: the CSV manifest, every row and file checked before anything is sent; and
//!   manifests written from folders.
//! - [`chunk`] (with [`sigbus`]): memory-mapped files cut into zero-copy parts; [`remote`]: the
//!   objects and URLs a row's video is read from when it is not on the local disk (`https://`,
//!   `s3://`, `gs://`, `az://`), with keys found where each cloud's own tools find them.
//! - [`engine`]: many video sessions at once, each row's video found or made exactly once, its
//!   parts in order, then its thumbnail, captions and chapters once each, or (by the row's
//!   `action`) its fields brought in step or its videos deleted; [`journal`]: the
//!   SQLite record that lets a killed run resume; [`shard`]: a stable share of the rows per
//!   machine; [`leftovers`]: the unfinished videos runs left behind, found for `avbatch clean`.
//! - [`client`]: the api.video client (auth, calls, chunk framing, progress time-outs), paced by
//!   [`limit`] and retried by [`retry`].
//! - [`api`]: api.video on the wire (video, thumbnail and track shapes, what a PATCH changes,
//!   problem+json, rate-limit buckets, languages), shared with the server double, which depends
//!   on it and never the other way round.
//! - [`texttrack`]: captions and chapters files (WebVTT, SRT) checked and made into the WebVTT
//!   api.video takes.
//! - [`secret`]: keys and tokens that never print; [`excerpt`]: user values cut for messages;
//!   [`spill`]: records sorted or kept on disk, so memory does not grow with the manifest.
//!
//! **The test double**
//! - [`server`]: `avbatch serve`, the local api.video every test and benchmark runs against.
//!
//! `tests/layout.rs` fails on an import circle between these modules, or on product code that
//! reaches the server.

pub mod api;
pub mod bounds;
pub mod chunk;
pub mod cli;
pub mod client;
pub mod commands;
pub mod config;
pub mod engine;
pub mod excerpt;
pub mod journal;
pub mod leftovers;
pub mod limit;
pub mod manifest;
pub mod output;
pub mod remote;
pub mod retry;
pub mod secret;
pub mod server;
pub mod shard;
#[cfg(target_os = "linux")]
pub mod sigbus;
pub mod spill;
pub mod texttrack;

pub use cli::Cli;
pub use commands::run;
