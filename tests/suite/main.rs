//! The integration tests, one binary: each module is what was once a test file of its own.
//! One binary links the crate once instead of once per file, which took most of a cold
//! `cargo test --release` (a minute per 3 files on 2 cores).

#[path = "../common/mod.rs"]
mod common;

mod actions;
mod asset_checks;
mod assets;
mod assets_the_video_lacks;
mod caption_conformance;
mod changing_files;
mod check;
mod clean;
mod client_calls;
mod deploy;
mod endings;
mod estimate;
mod exactly_once;
mod faults;
mod fields_after_creation;
mod flags;
mod invalid_rows;
mod manifest_checks;
mod network_journal;
mod nightly;
mod notify_window;
mod own_keys;
mod plan_agrees;
mod pulls;
mod racing_creates;
mod regressions;
mod remote;
mod report_record;
mod resume;
mod secrets;
mod serve_exposure;
mod server_multipart_bounds;
mod server_restart;
mod server_source;
mod server_switches;
mod shards;
mod sources;
mod status_and_trial_runs;
mod streaming;
mod terminal;
mod touched;
mod upload_cli;
mod upload_encoding;
mod upload_modes;
mod upload_rules;
