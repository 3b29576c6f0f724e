//! Live progress on stderr: the only consumer of the engine's events and the only code that
//! draws on the terminal. An indicatif display on a TTY, a plain line (or a JSON event) every
//! few seconds otherwise (cron, Kubernetes, CI logs), nothing with `--quiet`.

use std::collections::BTreeMap;
use std::io::{self, IsTerminal};
use std::time::Duration;

use indicatif::{
    HumanBytes, HumanDuration, MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle,
};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::engine::{Event, RowStatus};

/// Where progress goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Bars on a terminal.
    Bars,
    /// A line every `interval`.
    Lines(Duration),
    /// Nothing.
    Quiet,
}

impl Progress {
    /// Bars when stderr is a terminal, lines every 10 s otherwise; nothing when `quiet`.
    pub fn detect(quiet: bool) -> Progress {
        if quiet {
            Progress::Quiet
        } else if io::stderr().is_terminal() {
            Progress::Bars
        } else {
            Progress::Lines(Duration::from_secs(10))
        }
    }
}

#[derive(Default)]
struct Tally {
    /// Bytes this run sent.
    bytes: u64,
    /// Bytes this run has to send: the rows' sizes, less what the server already held.
    total: u64,
    done: usize,
    failed: usize,
    skipped: usize,
}

impl Tally {
    fn line(&self, rows: usize, rate: f64) -> String {
        let eta = if rate > 0.0 {
            HumanDuration(Duration::from_secs_f64(
                (self.total.saturating_sub(self.bytes)) as f64 / rate,
            ))
            .to_string()
        } else {
            "-".into()
        };
        format!(
            "{}/{} rows ({} already done, {} failed), {} of {}, {}/s, ETA {eta}",
            self.done,
            rows,
            self.skipped,
            self.failed,
            HumanBytes(self.bytes),
            HumanBytes(self.total),
            HumanBytes(rate as u64)
        )
    }

    /// Bytes the server already held: not this run's to send.
    fn held(&mut self, bytes: u64, overall: &ProgressBar) {
        self.total = self.total.saturating_sub(bytes);
        overall.set_length(self.total);
    }
}

/// Consumes events until the engine drops its sender, drawing progress on stderr.
pub async fn show_progress(
    mut events: mpsc::Receiver<Event>,
    rows: usize,
    total_bytes: u64,
    mode: Progress,
) {
    let started = Instant::now();
    let mut tally = Tally { total: total_bytes, ..Tally::default() };
    let multi = MultiProgress::with_draw_target(if mode == Progress::Bars {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    });
    let overall = multi.add(ProgressBar::new(total_bytes));
    overall.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} \
             {binary_bytes_per_sec} ETA {eta} {msg}",
        )
        .expect("a valid template")
        .progress_chars("=> "),
    );
    let video_style = ProgressStyle::with_template("  {msg:40!} {bar:20} {bytes}/{total_bytes}")
        .expect("a valid template")
        .progress_chars("=> ");
    let mut active: BTreeMap<usize, ProgressBar> = BTreeMap::new();
    let mut ticker = tokio::time::interval(match mode {
        Progress::Lines(every) => every,
        _ => Duration::from_millis(200),
    });
    ticker.tick().await;
    loop {
        tokio::select! {
            event = events.recv() => {
                let Some(event) = event else { break };
                match event {
                    Event::Started { index, name, bytes, parts } => {
                        let bar = multi.add(ProgressBar::new(bytes));
                        bar.set_style(video_style.clone());
                        bar.set_message(format!(
                            "{name} ({parts} part{})",
                            if parts == 1 { "" } else { "s" }
                        ));
                        active.insert(index, bar);
                    }
                    Event::Held { index, bytes } => {
                        tally.held(bytes, &overall);
                        if let Some(bar) = active.get(&index) {
                            bar.inc(bytes);
                        }
                    }
                    Event::PartDone { index, bytes } => {
                        tally.bytes += bytes;
                        overall.inc(bytes);
                        if let Some(bar) = active.get(&index) {
                            bar.inc(bytes);
                        }
                    }
                    Event::Finished(result) => {
                        tally.done += 1;
                        match result.status {
                            RowStatus::Failed => tally.failed += 1,
                            RowStatus::Skipped => {
                                tally.skipped += 1;
                                tally.held(result.bytes, &overall);
                            }
                            _ => {}
                        }
                        if let Some(bar) = active.remove(&result.index) {
                            bar.finish_and_clear();
                            multi.remove(&bar);
                        }
                        if result.status == RowStatus::Failed && mode != Progress::Quiet {
                            let msg = format!(
                                "row {} failed: {}",
                                result.index + 1,
                                result.error.as_deref().unwrap_or("unknown error")
                            );
                            let _ = multi.println(&msg);
                            if mode != Progress::Bars {
                                super::say(&msg);
                            }
                        }
                        overall.set_message(format!(
                            "rows {}/{rows}, {} already done, {} failed",
                            tally.done, tally.skipped, tally.failed
                        ));
                    }
                }
            }
            _ = ticker.tick() => {
                if let Progress::Lines(_) = mode {
                    let rate = tally.bytes as f64 / started.elapsed().as_secs_f64().max(1e-3);
                    if super::json_logs() {
                        tracing::info!(
                            target: "avbatch::progress",
                            rows_done = tally.done,
                            rows,
                            skipped = tally.skipped,
                            failed = tally.failed,
                            bytes = tally.bytes,
                            total_bytes = tally.total,
                            bytes_per_s = rate as u64,
                            "progress"
                        );
                    } else {
                        eprintln!("progress: {}", tally.line(rows, rate));
                    }
                }
            }
        }
    }
    overall.finish_and_clear();
    let _ = multi.clear();
}
