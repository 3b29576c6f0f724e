//! avbatch: move whole video libraries into api.video, fast, within the rate limits, and without
//! losing or duplicating a video.
//!
//! # Layout
//! - [`cli`]: the command line (clap); [`run`] dispatches a parsed command.
//! - [`secret`]: API keys and tokens that never print.
//! - [`server`]: `avbatch serve`, the local api.video-compatible server every test and benchmark
//!   runs against.

pub mod cli;
pub mod secret;
pub mod server;

pub use cli::{run, Cli};
