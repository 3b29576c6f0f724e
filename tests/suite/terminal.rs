//! What the person running a migration sees (issue #13): the real binary on a pseudo-terminal
//! (portable-pty), its screen read back through a terminal emulator (vt100), against a real
//! server on 127.0.0.1; and the messages and exit codes a scheduler reads.

use crate::common;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use avbatch_serve::Quota;
use common::batch::{avbatch, run, Batch};
use common::{spawn_server_with, TestServer, KEY, MIB};
use portable_pty::{native_pty_system, CommandBuilder, PtySize};

const ROWS: u16 = 40;
const COLS: u16 = 150;

/// `avbatch ARGS` on a terminal of [`ROWS`] x [`COLS`], its output fed to an emulator.
pub(crate) struct Terminal {
    screen: Arc<Mutex<vt100::Parser>>,
    child: Box<dyn portable_pty::Child + Send + Sync>,
    keys: Box<dyn Write + Send>,
    _master: Box<dyn portable_pty::MasterPty + Send>,
}

impl Terminal {
    pub(crate) fn start(dir: &Path, args: &[String], env: &[(&str, &str)]) -> Terminal {
        let pair = native_pty_system()
            .openpty(PtySize { rows: ROWS, cols: COLS, pixel_width: 0, pixel_height: 0 })
            .expect("a pseudo-terminal");
        let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_avbatch"));
        cmd.args(args);
        cmd.cwd(dir);
        for var in ["RUST_LOG", "AVBATCH_API_KEY", "APIVIDEO_API_KEY", "AVBATCH_UPLOAD_TOKEN"] {
            cmd.env_remove(var);
        }
        cmd.env("TERM", "xterm-256color");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = pair.slave.spawn_command(cmd).expect("spawn avbatch on the terminal");
        drop(pair.slave);
        let screen = Arc::new(Mutex::new(vt100::Parser::new(
            ROWS.try_into().unwrap(),
            COLS.try_into().unwrap(),
            0,
        )));
        let mut output = pair.master.try_clone_reader().unwrap();
        let fed = screen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = output.read(&mut buf) {
                if n == 0 {
                    break;
                }
                fed.lock().unwrap().process(&buf[..n]);
            }
        });
        let keys = pair.master.take_writer().unwrap();
        Terminal { screen, child, keys, _master: pair.master }
    }

    /// What the screen shows now, line by line.
    pub(crate) fn screen(&self) -> String {
        self.screen.lock().unwrap().screen().contents()
    }

    /// Samples the screen every 100 ms until `done` says so of a screen, or `limit` passes;
    /// every screen seen, in order.
    pub(crate) fn watch(&mut self, limit: Duration, done: impl Fn(&str) -> bool) -> Vec<String> {
        let deadline = Instant::now() + limit;
        let mut seen = Vec::new();
        while Instant::now() < deadline {
            let now = self.screen();
            let stop = done(&now);
            seen.push(now);
            if stop {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        seen
    }

    /// Waits for the exit code, at most `limit`.
    pub(crate) fn exit(&mut self, limit: Duration) -> Option<u32> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                // The last output drains into the emulator.
                std::thread::sleep(Duration::from_millis(300));
                return Some(status.exit_code());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        None
    }

    fn ctrl_c(&mut self) {
        self.keys.write_all(b"\x03").unwrap();
        self.keys.flush().unwrap();
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

fn upload_args(batch: &Batch, server: &TestServer, extra: &[&str]) -> Vec<String> {
    let report = batch.dir.path().join("report.csv");
    let mut args: Vec<String> = vec![
        "upload".into(),
        batch.manifest().to_string_lossy().into_owned(),
        "--base-url".into(),
        server.url.clone(),
        "--report".into(),
        report.to_string_lossy().into_owned(),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    args
}

/// The totals the overall bar showed (`10.00` of its `MiB/10.00 MiB`), from lines drawn whole:
/// a screen sampled while a line is being redrawn may hold its first half only.
pub(crate) fn overall_totals(screens: &[String]) -> BTreeSet<String> {
    screens
        .iter()
        .filter_map(|s| {
            s.lines().find(|l| l.contains("[00:") && l.trim_end().ends_with(['s', 'm']))
        })
        .filter_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            let at = words.iter().position(|w| w.starts_with("MiB/") && !w.ends_with("/s"))?;
            (words.get(at + 1) == Some(&"MiB")).then(|| words[at][4..].to_owned())
        })
        .collect()
}

/// `[00:00:07]`: the run's clock on the overall bar.
fn clock(screen: &str) -> Option<&str> {
    let at = screen.find("[00:")?;
    screen.get(at..at + 10)
}

/// The percentage shown on the line of `name`, if it is on the screen.
fn percent_of(screen: &str, name: &str) -> Option<u32> {
    let line = screen.lines().find(|l| l.contains(name) && l.contains('%'))?;
    let before = line.find('%')?;
    line[..before].rsplit(' ').next()?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn progress_moves_while_a_quota_holds_the_run_and_says_so() {
    // Four requests per bucket every 6 s: twelve small rows wait for their quotas.
    let server = spawn_server_with(|c| {
        let quota = Some(Quota { limit: 4, window: Duration::from_secs(6) });
        (c.rate_limits.uploads, c.rate_limits.writes, c.rate_limits.reads) = (quota, quota, quota);
    })
    .await;
    let batch = Batch::new(12, |i| 1000 + i);
    let args = upload_args(&batch, &server, &["--no-journal", "-c", "4"]);
    let mut term = Terminal::start(batch.dir.path(), &args, &[("AVBATCH_API_KEY", KEY)]);
    let screens = term.watch(Duration::from_secs(150), |s| s.contains("rows uploaded"));
    let code = term.exit(Duration::from_secs(30));
    let last = term.screen();
    assert_eq!(code, Some(0), "the run ends well\n{last}");
    let waiting: Vec<&String> = screens.iter().filter(|s| s.contains("quota: ")).collect();
    assert!(
        waiting.iter().any(|s| ["writes", "reads", "uploads"]
            .iter()
            .any(|b| s.contains(&format!("waiting for the {b} quota: ")))),
        "a wait for a quota is said on screen, naming the bucket\n{last}"
    );
    let clocks: BTreeSet<&str> = waiting.iter().filter_map(|s| clock(s)).collect();
    assert!(clocks.len() >= 2, "the clock moves while the quota holds the run: {clocks:?}");
    assert!(screens.iter().any(|s| s.contains("files/s")), "files/s is shown\n{last}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_file_shows_its_bytes_as_they_go_not_once_per_part() {
    // One 32 MiB part per file at 4 MiB/s: about 8 s each, far more than the socket buffers
    // take at once.
    let server = spawn_server_with(|c| c.faults.bandwidth = Some(4 * MIB as u64)).await;
    let batch = Batch::new(2, |_| 32 * MIB);
    let args = upload_args(&batch, &server, &["--no-journal", "-c", "2", "--chunk-size", "32MiB"]);
    let mut term = Terminal::start(batch.dir.path(), &args, &[("AVBATCH_API_KEY", KEY)]);
    let screens = term.watch(Duration::from_secs(120), |s| s.contains("rows uploaded"));
    assert_eq!(term.exit(Duration::from_secs(30)), Some(0), "{}", term.screen());
    let shown: BTreeSet<u32> = screens
        .iter()
        .filter_map(|s| percent_of(s, "f0.mp4"))
        .filter(|p| *p > 0 && *p < 100)
        .collect();
    assert!(
        shown.len() >= 3,
        "f0.mp4's one part shows its bytes as they go: {shown:?}\n{}",
        screens.iter().find(|s| s.contains("f0.mp4")).map_or("never on screen", |s| s)
    );
    assert!(
        screens.iter().any(|s| s.lines().any(|l| l.contains("f0.mp4") && l.contains("/s, ETA"))),
        "with its own pace and ETA"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_resumed_run_says_what_it_resumes_and_measures_only_its_own_work() {
    let server = spawn_server_with(|c| c.faults.bandwidth = Some(4 * MIB as u64)).await;
    let batch = Batch::new(6, |_| MIB);
    let journal = batch.path("journal.db");
    let journal_arg = ["--journal", journal.to_str().unwrap()];
    let first = run(batch.upload(&server.url, &journal_arg), Duration::from_secs(60)).await;
    assert_eq!(first.code, Some(0), "{}", first.text());

    // Two new rows of 5 MiB each: 10 MiB is this run's work, not 16.
    let mut csv = std::fs::read_to_string(batch.manifest()).unwrap();
    for i in 6..8 {
        std::fs::write(batch.path(&format!("f{i}.mp4")), common::pattern(5 * MIB, i as u8))
            .unwrap();
        csv.push_str(&format!("row-{i},f{i}.mp4,New video {i}\n"));
    }
    std::fs::write(batch.manifest(), csv).unwrap();
    let mut args = upload_args(&batch, &server, &["--chunk-size", "5MiB"]);
    args.extend(journal_arg.iter().map(|a| a.to_string()));
    let mut term = Terminal::start(batch.dir.path(), &args, &[("AVBATCH_API_KEY", KEY)]);
    let screens = term.watch(Duration::from_secs(90), |s| s.contains("rows uploaded"));
    assert_eq!(term.exit(Duration::from_secs(30)), Some(0), "{}", term.screen());
    let last = term.screen();
    assert!(
        last.contains("resuming: 6 done, 0 partial (0 B held), 2 new"),
        "a banner says what the run resumes\n{last}"
    );
    let totals = overall_totals(&screens);
    assert!(!totals.is_empty(), "the overall bar was drawn\n{last}");
    assert!(
        totals.iter().all(|t| *t == "10.00"),
        "the overall total is this run's 10 MiB from the start, never the manifest's 16: {totals:?}"
    );
    assert!(
        last.contains("2 of 8 rows uploaded, 6 already done") && last.contains("10.00 MiB sent"),
        "the summary counts only what this run sent\n{last}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ctrl_c_stays_on_screen_with_what_the_run_waits_for() {
    let server = spawn_server_with(|c| c.faults.bandwidth = Some(MIB as u64)).await;
    let batch = Batch::new(4, |_| 12 * MIB);
    let args = upload_args(&batch, &server, &["--no-journal", "-c", "2", "--chunk-size", "6MiB"]);
    let mut term = Terminal::start(batch.dir.path(), &args, &[("AVBATCH_API_KEY", KEY)]);
    let moving = term.watch(Duration::from_secs(30), |s| {
        percent_of(s, "f0.mp4").is_some_and(|p| p > 0)
            || percent_of(s, "f1.mp4").is_some_and(|p| p > 0)
    });
    assert!(
        moving.last().is_some_and(|s| s.contains("f0.mp4") || s.contains("f1.mp4")),
        "the upload got going\n{}",
        term.screen()
    );
    term.ctrl_c();
    let stopping = term.watch(Duration::from_secs(3), |s| s.contains("stopping: waiting for"));
    let now = stopping.last().unwrap();
    assert!(
        now.contains("stopping: no new videos or parts") && now.contains("stopping: waiting for"),
        "within 3 s of Ctrl-C the screen says the run is stopping and what it waits for\n{now}"
    );
    // A second later, still there: not drawn over by the bars.
    std::thread::sleep(Duration::from_secs(1));
    let later = term.screen();
    assert!(later.contains("stopping: no new videos or parts"), "the message stays\n{later}");
    assert_eq!(term.exit(Duration::from_secs(60)), Some(130), "{}", term.screen());
    assert!(term.screen().contains("stopping: no new videos or parts"), "{}", term.screen());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_told_by_manifest_line_as_they_happen() {
    let server = spawn_server_with(|_| {}).await;
    let batch = Batch::new(3, |_| 1000);
    // Paths and ids only, as a token alone can apply nothing else.
    let rows = "id,path\nrow-0,f0.mp4\nrow-1,f1.mp4\nrow-2,f2.mp4\n";
    std::fs::write(batch.manifest(), rows).unwrap();
    // A token the server never issued: every row fails, each said by its line in the manifest.
    let mut cmd = avbatch();
    cmd.args(["upload", batch.manifest().to_str().unwrap(), "--base-url", &server.url]);
    cmd.args(["--report", batch.report().to_str().unwrap(), "--no-journal", "--retries", "0"]);
    cmd.env("AVBATCH_UPLOAD_TOKEN", "to-never-issued");
    let done = run(cmd, Duration::from_secs(60)).await;
    assert_ne!(done.code, Some(0), "{}", done.text());
    for line in 2..=4 {
        assert!(
            done.stderr.contains(&format!("line {line} failed: ")),
            "line {line} is named as it fails\n{}",
            done.text()
        );
    }
    assert!(!done.stderr.contains("row 1 failed"), "no row index\n{}", done.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_that_cannot_be_reached_is_said_from_the_first_retry_and_exits_4() {
    let batch = Batch::new(2, |_| 1000);
    // Paths and ids only, as a token alone can apply nothing else.
    std::fs::write(batch.manifest(), "id,path\nrow-0,f0.mp4\nrow-1,f1.mp4\n").unwrap();
    std::fs::write(batch.path("token.txt"), "to-x\n").unwrap();
    // Nothing listens on port 1 of 127.0.0.1.
    let closed = "http://127.0.0.1:1";
    for (what, extra, key) in [
        ("with a key", vec!["--retries", "2"], Some(KEY)),
        ("with a token alone", vec!["--retries", "2", "--upload-token-file", "token.txt"], None),
    ] {
        let mut cmd = avbatch();
        cmd.args(["upload", batch.manifest().to_str().unwrap(), "--base-url", closed]);
        cmd.args(["--report", batch.report().to_str().unwrap(), "--no-journal"]);
        cmd.args(&extra);
        if let Some(k) = key {
            cmd.env("AVBATCH_API_KEY", k);
        }
        cmd.current_dir(batch.dir.path());
        let done = run(cmd, Duration::from_secs(60)).await;
        assert_eq!(done.code, Some(4), "{what}: exit 4, its own code\n{}", done.text());
        assert!(
            done.stderr.contains("retrying (") && done.stderr.contains("of 2 retries, next in"),
            "{what}: the first retry is said, with why\n{}",
            done.text()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_name_fields_as_the_report_does() {
    let server = spawn_server_with(|_| {}).await;
    let batch = Batch::new(2, |_| 1000);
    std::fs::write(batch.manifest(), "id,path\nrow-0,f0.mp4\nrow-1,f1.mp4\n").unwrap();
    let mut cmd = avbatch();
    cmd.args(["upload", batch.manifest().to_str().unwrap(), "--base-url", &server.url]);
    cmd.args(["--report", batch.report().to_str().unwrap(), "--no-journal", "--retries", "0"]);
    cmd.args(["--log-format", "json"]);
    cmd.env("AVBATCH_UPLOAD_TOKEN", "to-never-issued");
    let done = run(cmd, Duration::from_secs(60)).await;
    let events: Vec<serde_json::Value> =
        done.stderr.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let failed = events.iter().find(|e| e["message"] == "row failed").expect("a row failed event");
    let summary = events.iter().find(|e| e["message"] == "summary").expect("a summary event");
    assert!(failed.get("line").is_some() && failed.get("video_id").is_none(), "{failed}");
    assert!(summary.get("mbPerS").is_some() && summary.get("mb_per_s").is_none(), "{summary}");
    // The report's own names, camelCase, as in the JSON report.
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(batch.report()).unwrap()).unwrap();
    assert!(report["summary"].get("mbPerS").is_some(), "{report}");
}
