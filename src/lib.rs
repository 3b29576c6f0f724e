//! avbatch: move whole video libraries into api.video, fast, within the rate limits, and without
//! losing or duplicating a video.
//!
//! # Layout
//! Data flows one way: manifest → plan → engine → report.
//! - [`cli`]: the command line (clap); [`run`] dispatches a parsed command.
//! - [`bounds`]: the range every numeric flag accepts.
//! - [`config`]: `avbatch upload` flags checked once into an [`config::UploadConfig`].
//! - [`manifest`]: the CSV manifest, every row and file checked before anything is sent.
//! - [`chunk`]: memory-mapped files cut into zero-copy parts.
//! - [`api`]: the api.video client (auth, videos, chunked upload, problem+json errors).
//! - [`limit`], [`retry`]: request/byte rates and which failures are retried, how soon.
//! - [`engine`]: many video sessions at once, parts in order within each.
//! - [`journal`]: SQLite record of every row's progress, so a killed run resumes.
//! - [`report`]: progress on stderr, the report file, the summary.
//! - [`upload`]: the `avbatch upload` command, tying the above together.
//! - [`secret`]: API keys and tokens that never print.
//! - [`excerpt`]: long values the user supplied, cut to a bounded length in messages.
//! - [`server`]: `avbatch serve`, the local api.video-compatible server every test and benchmark
//!   runs against.

pub mod api;
pub mod bench;
pub mod bounds;
pub mod chunk;
pub mod cli;
pub mod client;
pub mod config;
pub mod engine;
pub mod excerpt;
pub mod journal;
pub mod limit;
pub mod manifest;
pub mod report;
pub mod retry;
pub mod scan;
pub mod secret;
pub mod server;
pub mod shard;
#[cfg(target_os = "linux")]
pub mod sigbus;
pub mod upload;

pub use cli::{run, Cli};
