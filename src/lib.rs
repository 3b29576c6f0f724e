//! avbatch: move whole video libraries into api.video, fast, within the rate limits, and without
//! losing or duplicating a video.
//!
//! # Layout
//! This crate is the `avbatch` binary's: the command line and what a person sees, over four
//! library crates.
//! - `avbatch-api` ([`avbatch_api`]): api.video on the wire, every type either side reads or
//!   writes, and secrets that never print.
//! - `avbatch-core` ([`avbatch_core`]): the product, manifest → engine → report, the client, the
//!   journal, remote sources.
//! - `avbatch-serve` ([`avbatch_serve`]): `avbatch serve`, the local api.video every test and
//!   benchmark runs against; its settings are its flags, flattened into `avbatch serve`'s; it
//!   depends on `avbatch-api` (and `avbatch-syntax`) alone, never on the product.
//! - `avbatch-syntax` ([`avbatch_syntax`]): how flag values are written and held to a range.
//!
//! Here, the only place that wires those pieces together:
//! - [`cli`]: clap definitions only; [`bounds`]: the range each numeric flag takes.
//! - [`commands`]: one file per command (`upload`, `status`, `clean`, `check`, `report merge`,
//!   `manifest`, `bench`, `serve`), [`run`] to dispatch, and the exit codes; a command that
//!   cannot go on returns a [`commands::Stop`] (its exit code, message and hint), said once by
//!   [`commands::finish`]; [`config`]:
//!   `upload`'s flags checked once into an [`config::UploadConfig`], and the API's address and
//!   key as every command reads them.
//! - [`output`]: everything a person or a log shipper sees: messages, logs, live progress, the
//!   report's table as it is written (its data is `avbatch_core::report`'s) and the summary.
//!
//! `tests/layout.rs` fails on an import circle between modules, or on a crate that reaches one it
//! must not.

pub mod bounds;
pub mod cli;
pub mod commands;
pub mod config;
pub mod output;

pub use cli::Cli;
pub use commands::run;
