//! Live progress on stderr: the only consumer of the engine's events and the only code that
//! draws on the terminal. An indicatif display on a TTY, a plain line (or a JSON event) every
//! few seconds otherwise (cron, Kubernetes, CI logs), nothing with `--quiet`.
//!
//! It measures only this run's work: bytes the server already held (per the journal before a
//! row comes up, per the server once it does) are neither to send nor sent. It redraws on a
//! clock, so a run held by a quota, by retries or by a stop says so instead of freezing.

use std::collections::BTreeMap;
use std::io::{self, IsTerminal};
use std::sync::Arc;
use std::time::Duration;

use indicatif::{
    HumanBytes, HumanDuration, MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle,
};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use avbatch_core::client::Client;
use avbatch_core::engine::{Event, RowResult, RowStatus};
use avbatch_core::limit::Limiter;

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

/// The run's work as known before it starts.
#[derive(Debug, Clone, Copy, Default)]
pub struct Plan {
    /// Rows in this run.
    pub rows: usize,
    /// Bytes of their files.
    pub bytes: u64,
    /// Bytes the journal says the server already holds, of every row it knows: a row the total
    /// leaves out (an object to be pulled) may be among them; each row's share is given back
    /// as it comes up.
    pub held: u64,
}

/// What the display watches besides the engine's events: the quota waits, the client's retries
/// and the run's stop.
#[derive(Debug, Clone)]
pub struct Watched {
    /// The client, for its retries.
    pub client: Client,
    /// The limiter, for quota waits.
    pub limiter: Arc<Limiter>,
    /// Cancelled when the run is asked to stop.
    pub stop: CancellationToken,
}

/// A row being sent.
struct Live {
    bar: ProgressBar,
    since: Instant,
    size: u64,
    held: u64,
    /// Acknowledged by this run.
    acked: u64,
    /// Of the part in flight, taken by the connection.
    sending: u64,
    /// What this row adds to the bytes to send.
    expected: u64,
}

impl Live {
    /// `3.20 MiB/s, ETA 4s`: this run's mean pace on the row since it started, by what the
    /// connection took (bytes held before are not counted).
    fn pace(&self) -> String {
        let moved = self.acked + self.sending;
        let seconds = self.since.elapsed().as_secs_f64();
        if moved == 0 || seconds < 0.5 {
            return String::new();
        }
        let rate = moved as f64 / seconds;
        let left = self.size.saturating_sub(self.held + moved) as f64 / rate;
        format!(
            "{}/s, ETA {}",
            HumanBytes(rate as u64),
            HumanDuration(Duration::from_secs_f64(left))
        )
    }
}

/// This run's counts.
struct Tally {
    rows: usize,
    /// Bytes to send in this run, as known so far. Below zero for a while when the journal's
    /// held bytes, all taken off at the start, include those of a row the total left out
    /// (`Event::Started::planned`); what is shown is never below what was sent.
    to_send: i64,
    /// Bytes acknowledged in this run.
    sent: u64,
    ended: usize,
    uploaded: usize,
    skipped: usize,
    updated: usize,
    deleted: usize,
    failed: usize,
    started: Instant,
}

impl Tally {
    fn rate(&self, position: u64) -> f64 {
        position as f64 / self.started.elapsed().as_secs_f64().max(1e-3)
    }

    fn files_per_s(&self) -> f64 {
        self.uploaded as f64 / self.started.elapsed().as_secs_f64().max(1e-3)
    }

    /// `12/40 rows (3 already done, 1 failed), 2.4 files/s`.
    fn rows_line(&self) -> String {
        let mut changed = String::new();
        for (n, what) in [(self.updated, "updated"), (self.deleted, "deleted")] {
            if n > 0 {
                changed.push_str(&format!(", {n} {what}"));
            }
        }
        format!(
            "{}/{} rows ({} already done{changed}, {} failed), {:.1} files/s",
            self.ended,
            self.rows,
            self.skipped,
            self.failed,
            self.files_per_s()
        )
    }

    /// The whole state on one line, for logs.
    fn line(&self, position: u64, to_send: u64) -> String {
        let rate = self.rate(position);
        let eta = if rate > 0.0 {
            let left = to_send.saturating_sub(position) as f64 / rate;
            HumanDuration(Duration::from_secs_f64(left)).to_string()
        } else {
            "-".into()
        };
        format!(
            "{}, {} of {} sent, {}/s, ETA {eta}",
            self.rows_line(),
            HumanBytes(position),
            HumanBytes(to_send),
            HumanBytes(rate as u64)
        )
    }
}

/// The display's state between events.
struct Screen {
    mode: Progress,
    multi: MultiProgress,
    overall: ProgressBar,
    /// The rows, files/s, and what holds the run, under the overall bar.
    status: ProgressBar,
    video_style: ProgressStyle,
    active: BTreeMap<usize, Live>,
    tally: Tally,
    watched: Watched,
    /// The last retry said, and when.
    retry_said: Option<(String, Instant)>,
}

/// How long the same kind of retry goes unsaid after it was said.
const RETRY_REPEAT: Duration = Duration::from_secs(10);

impl Screen {
    fn position(&self) -> u64 {
        self.tally.sent + self.active.values().map(|l| l.sending).sum::<u64>()
    }

    fn to_send(&self) -> u64 {
        (self.tally.to_send.max(0) as u64).max(self.position())
    }

    #[allow(clippy::too_many_arguments)] // Event::Started's fields, one by one
    fn started(
        &mut self,
        index: usize,
        name: String,
        size: u64,
        parts: u64,
        held: u64,
        counted: u64,
        planned: bool,
    ) {
        let expected = size - held.min(size);
        match self.active.remove(&index) {
            // The row starts over (its video went away): what it sent stays sent.
            Some(old) => {
                self.tally.to_send += old.acked as i64 + expected as i64 - old.expected as i64;
                self.multi.remove(&old.bar);
            }
            None => {
                // What the total counted of it gives way to what it now expects to send.
                self.came_up(if planned { size } else { 0 }, counted);
                self.tally.to_send += expected as i64;
            }
        }
        let bar = self.multi.add(ProgressBar::new(size));
        bar.set_style(self.video_style.clone());
        bar.set_message(format!("{name} ({parts} part{})", if parts == 1 { "" } else { "s" }));
        bar.set_position(held.min(size));
        bar.reset_eta();
        let since = Instant::now();
        self.active.insert(index, Live { bar, since, size, held, acked: 0, sending: 0, expected });
    }

    /// A row came up: what the total counted of it goes, its size (`planned`, else 0) less
    /// what the journal said the server held of it.
    fn came_up(&mut self, planned: u64, journal_held: u64) {
        self.tally.to_send -= planned as i64 - journal_held as i64;
    }

    fn sending(&mut self, index: usize, bytes: u64) {
        if let Some(live) = self.active.get_mut(&index) {
            live.sending = bytes;
            live.bar.set_position((live.held + live.acked + bytes).min(live.size));
        }
    }

    fn part_done(&mut self, index: usize, bytes: u64) {
        self.tally.sent += bytes;
        if let Some(live) = self.active.get_mut(&index) {
            live.acked += bytes;
            live.sending = 0;
            live.bar.set_position((live.held + live.acked).min(live.size));
        }
    }

    fn finished(&mut self, result: &RowResult, line: u64) {
        self.tally.ended += 1;
        match result.status {
            RowStatus::Uploaded => self.tally.uploaded += 1,
            RowStatus::Skipped => self.tally.skipped += 1,
            RowStatus::Failed => self.tally.failed += 1,
            RowStatus::Updated => self.tally.updated += 1,
            RowStatus::Deleted => self.tally.deleted += 1,
            RowStatus::Interrupted | RowStatus::Pending => {}
        }
        if let Some(live) = self.active.remove(&result.index) {
            // What it did not send is no longer to send.
            self.tally.to_send += live.acked as i64 - live.expected as i64;
            live.bar.finish_and_clear();
            self.multi.remove(&live.bar);
        }
        if result.status == RowStatus::Failed && self.mode != Progress::Quiet {
            let error = result.error.as_deref().unwrap_or("unknown error");
            self.println(&format!("line {line} failed: {error}"));
        }
    }

    /// A line above the bars (or on its own without them).
    fn println(&self, text: &str) {
        if self.mode == Progress::Bars {
            let _ = self.multi.println(text);
        } else {
            super::say(text);
        }
    }

    /// What holds the run, if anything: a stop, a quota, retries.
    fn holding(&mut self) -> Option<String> {
        if self.watched.stop.is_cancelled() {
            let parts = self.active.values().filter(|l| l.sending > 0).count();
            return Some(if parts == 0 {
                "stopping: ending the rows under way (a re-run resumes them)".to_owned()
            } else {
                format!(
                    "stopping: waiting for {parts} part{} in flight (Ctrl-C again aborts; a \
                     re-run resumes)",
                    if parts == 1 { "" } else { "s" }
                )
            });
        }
        if let Some((bucket, left)) = self.watched.limiter.waiting() {
            return Some(format!("waiting for the {} quota: {}", bucket.name(), short(left)));
        }
        if let Some((rows, videos)) = avbatch_core::engine::held_for_encoding() {
            if videos > 0 {
                let s = if rows == 1 { "" } else { "s" };
                return Some(format!("waiting: {videos} videos encoding ({rows} row{s} held)"));
            }
        }
        let fetching = avbatch_core::engine::pulls_being_fetched();
        if fetching > 0 && self.active.values().all(|l| l.sending == 0) {
            let (sources, urls) =
                if fetching == 1 { ("source", "its URL") } else { ("sources", "their URLs") };
            return Some(format!(
                "waiting: api.video is fetching {fetching} {sources} from {urls} (a row is done \
                 once api.video holds its source)"
            ));
        }
        let retry = self.watched.client.stats().last_retry()?;
        let recent = retry.at.elapsed() < retry.wait + Duration::from_secs(2);
        let text = format!(
            "retrying ({} of {} retries, next in {}): {}",
            retry.attempt,
            retry.max_retries,
            short(retry.wait),
            retry.error
        );
        self.say_retry(&retry.error, &text);
        recent.then_some(text)
    }

    /// Says a retry on its own line the first time, and again when its error changes, at most
    /// every [`RETRY_REPEAT`].
    fn say_retry(&mut self, error: &str, text: &str) {
        let due = match &self.retry_said {
            None => true,
            Some((said, at)) => said != error && at.elapsed() >= RETRY_REPEAT,
        };
        if due && self.mode != Progress::Quiet {
            self.println(text);
            self.retry_said = Some((error.to_owned(), Instant::now()));
        }
    }

    /// Redraws the overall bar (on a terminal) or writes a line (in logs).
    fn tick(&mut self, log_line: bool) {
        let (position, to_send) = (self.position(), self.to_send());
        let holding = self.holding();
        match self.mode {
            Progress::Bars => {
                self.overall.set_length(to_send);
                self.overall.set_position(position);
                let rows = self.tally.rows_line();
                self.status.set_message(match &holding {
                    Some(h) => format!("{rows}; {h}"),
                    None => rows,
                });
                for live in self.active.values() {
                    live.bar.set_prefix(live.pace());
                }
                self.overall.tick();
            }
            Progress::Lines(_) if log_line => {
                if super::json_logs() {
                    let t = &self.tally;
                    tracing::info!(
                        target: "avbatch::progress",
                        rows = t.rows,
                        "rowsDone" = t.ended,
                        skipped = t.skipped,
                        failed = t.failed,
                        bytes = position,
                        "totalBytes" = to_send,
                        "bytesPerS" = t.rate(position) as u64,
                        "filesPerS" = (t.files_per_s() * 10.0).round() / 10.0,
                        holding = holding.as_deref(),
                        "progress"
                    );
                } else {
                    let mut line = format!("progress: {}", self.tally.line(position, to_send));
                    if let Some(h) = holding {
                        line = format!("{line}; {h}");
                    }
                    eprintln!("{line}");
                }
            }
            _ => {}
        }
    }
}

/// `0.4 s`, `12 s`, `3 minutes`.
fn short(d: Duration) -> String {
    match d.as_secs_f64() {
        s if s < 10.0 => format!("{s:.1} s"),
        s if s < 60.0 => format!("{s:.0} s"),
        _ => HumanDuration(d).to_string(),
    }
}

/// Consumes events until the engine drops its sender, drawing progress on stderr.
pub async fn show_progress(
    mut events: mpsc::Receiver<Event>,
    plan: Plan,
    mode: Progress,
    watched: Watched,
) {
    let multi = MultiProgress::with_draw_target(if mode == Progress::Bars {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    });
    let to_send = plan.bytes as i64 - plan.held as i64;
    let overall = multi.add(ProgressBar::new(to_send.max(0) as u64));
    overall.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} \
             {binary_bytes_per_sec} ETA {eta}",
        )
        .expect("a valid template")
        .progress_chars("=> "),
    );
    let status = multi.add(ProgressBar::new(0));
    status.set_style(ProgressStyle::with_template("  {wide_msg}").expect("a valid template"));
    let video_style = ProgressStyle::with_template(
        "  {msg:32!} {bar:20} {percent:>3}% {bytes:>10}/{total_bytes:<10} {prefix}",
    )
    .expect("a valid template")
    .progress_chars("=> ");
    if mode == Progress::Bars {
        super::screen_to(Some(multi.clone()));
    }
    let tally = Tally {
        rows: plan.rows,
        to_send,
        sent: 0,
        ended: 0,
        uploaded: 0,
        skipped: 0,
        updated: 0,
        deleted: 0,
        failed: 0,
        started: Instant::now(),
    };
    let mut screen = Screen {
        mode,
        multi,
        overall,
        status,
        video_style,
        active: BTreeMap::new(),
        tally,
        watched,
        retry_said: None,
    };
    let redraw = Duration::from_millis(200);
    let log_every = match mode {
        Progress::Lines(every) => every,
        _ => Duration::MAX,
    };
    let mut logged = Instant::now();
    let mut ticker = tokio::time::interval(redraw);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        tokio::select! {
            event = events.recv() => {
                let Some(event) = event else { break };
                match event {
                    Event::Started { index, name, bytes, parts, held, counted, planned } => {
                        screen.started(index, name, bytes, parts, held, counted, planned);
                    }
                    Event::Sending { index, bytes } => screen.sending(index, bytes),
                    Event::PartDone { index, bytes } => screen.part_done(index, bytes),
                    Event::Finished { result, line, size } => {
                        if !screen.active.contains_key(&result.index) {
                            screen.came_up(size, result.journal_held);
                        }
                        screen.finished(&result, line);
                    }
                }
            }
            _ = ticker.tick() => {
                let due = logged.elapsed() >= log_every;
                if due {
                    logged = Instant::now();
                }
                screen.tick(due);
            }
        }
    }
    // A retry since the last tick is still said.
    let _ = screen.holding();
    super::screen_to(None);
    screen.status.finish_and_clear();
    screen.overall.finish_and_clear();
    let _ = screen.multi.clear();
}
