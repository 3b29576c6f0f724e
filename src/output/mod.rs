//! Everything the person running avbatch, or their log shipper, sees: messages and logs
//! ([`say`], [`init_logging`]), live progress ([`progress`]), the report as it is written and the
//! run's summary ([`report`]; the report's data and file are `avbatch_core::report`'s), what
//! `avbatch clean` found and did ([`clean`]), and how an account is out of step with a manifest
//! ([`check`]). Nothing else prints: library code reports through events and results.

pub mod check;
pub mod clean;
pub mod plan;
pub mod progress;
pub mod report;
pub mod status;

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use indicatif::MultiProgress;

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Lines for people.
    Text,
    /// One JSON object per line.
    Json,
}

static JSON_LOGS: AtomicBool = AtomicBool::new(false);

/// Whether stderr carries JSON events (`--log-format json`).
pub fn json_logs() -> bool {
    JSON_LOGS.load(Ordering::Relaxed)
}

/// The live display while one is drawn: lines then go above its bars instead of under them,
/// where the next redraw would wipe them.
static SCREEN: Mutex<Option<MultiProgress>> = Mutex::new(None);

/// Sets (or, with `None`, ends) the live display that lines go above.
pub(crate) fn screen_to(display: Option<MultiProgress>) {
    *SCREEN.lock().unwrap_or_else(|p| p.into_inner()) = display;
}

/// Writes one line to stderr, above the live display if there is one.
fn line(text: &str) {
    let screen = SCREEN.lock().unwrap_or_else(|p| p.into_inner());
    match screen.as_ref() {
        Some(display) => {
            let _ = display.println(text);
        }
        None => {
            let _ = writeln!(std::io::stderr(), "{text}");
        }
    }
}

/// A log event's text, written through [`line`] when it is complete.
#[derive(Default)]
struct LogLine(Vec<u8>);

impl Write for LogLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LogLine {
    fn drop(&mut self) {
        if !self.0.is_empty() {
            line(String::from_utf8_lossy(&self.0).trim_end_matches('\n'));
        }
    }
}

/// A message for the person running avbatch: a plain stderr line, or an info event with
/// `--log-format json`.
pub fn say(message: &str) {
    if json_logs() {
        tracing::info!(target: "avbatch", "{message}");
    } else {
        line(message);
    }
}

/// A warning for the person running avbatch: a `warning: …` line, or a warn event with
/// `--log-format json`.
pub fn say_warning(message: &str) {
    if json_logs() {
        tracing::warn!(target: "avbatch", "{message}");
    } else {
        line(&format!("warning: {message}"));
    }
}

/// An error (and a hint) for the person running avbatch: `error: …` / `hint: …` lines, or one
/// error event with `--log-format json`.
pub fn say_error(message: &str, hint: Option<&str>) {
    if json_logs() {
        tracing::error!(target: "avbatch", hint, "{message}");
    } else {
        line(&format!("error: {message}"));
        if let Some(h) = hint {
            line(&format!("hint: {h}"));
        }
    }
}

/// Sends logs to stderr: `serve` logs at info, other commands only warnings (their progress and
/// summary are shown by the reporter); `-v` adds debug, `-vv` trace; `RUST_LOG` overrides.
pub fn init_logging(format: LogFormat, verbose: u8, serving: bool) {
    let quiet_default = if serving { "avbatch=info" } else { "avbatch=warn" };
    let default = match verbose {
        0 => quiet_default,
        1 => "avbatch=debug",
        _ => "avbatch=trace",
    };
    // JSON logs are for shippers: progress and the summary are events, so info is the floor.
    let json = format == LogFormat::Json;
    let default = if json && verbose == 0 { "avbatch=info" } else { default };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    if json {
        JSON_LOGS.store(true, Ordering::Relaxed);
        tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_env_filter(filter)
            .with_writer(LogLine::default)
            .init();
    } else {
        let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(ansi)
            .with_writer(LogLine::default)
            .init();
    }
}
