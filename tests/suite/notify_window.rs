//! Issue #15, a library kept in step night after night: `upload --notify URL` (the summary
//! POSTed when a run ends), `--max-duration` (no new video past a time, exit 5) and a
//! `--bandwidth` timetable. Everything through the real binary; the receiver is a raw HTTP
//! listener on 127.0.0.1 that records each body and answers as the test scripts it.

use crate::common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::batch::*;
use common::{spawn_server, KEY};
use serde_json::Value;

/// How the receiver answers the n-th request (from 0).
#[derive(Clone, Copy)]
enum Answer {
    Status(u16),
    /// Reads the request and never answers (the connection stays open).
    Never,
}

/// A raw HTTP receiver: the bodies POSTed to it, in order.
struct Receiver {
    url: String,
    bodies: Arc<Mutex<Vec<Value>>>,
}

impl Receiver {
    /// Answers the requests as `script` says, then 200.
    fn start(script: Vec<Answer>) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hooks/T0/secret-path", listener.local_addr().unwrap());
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let kept = bodies.clone();
        std::thread::spawn(move || {
            for (n, stream) in listener.incoming().enumerate() {
                let Ok(mut stream) = stream else { return };
                let answer = script.get(n).copied().unwrap_or(Answer::Status(200));
                let kept = kept.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut length = 0;
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let lower = line.to_ascii_lowercase();
                        if let Some(v) = lower.strip_prefix("content-length:") {
                            length = v.trim().parse().unwrap();
                        }
                        if line == "\r\n" {
                            break;
                        }
                    }
                    let mut body = vec![0; length];
                    reader.read_exact(&mut body).unwrap();
                    kept.lock().unwrap().push(serde_json::from_slice(&body).expect("JSON body"));
                    match answer {
                        Answer::Status(code) => {
                            let head = format!(
                                "HTTP/1.1 {code} X\r\nContent-Length: 0\r\n\
                                 Connection: close\r\n\r\n"
                            );
                            let _ = stream.write_all(head.as_bytes());
                        }
                        Answer::Never => std::thread::sleep(Duration::from_secs(600)),
                    }
                });
            }
        });
        Receiver { url, bodies }
    }

    fn bodies(&self) -> Vec<Value> {
        self.bodies.lock().unwrap().clone()
    }
}

const LIMIT: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread")]
async fn notify_posts_the_summary_of_a_run_that_succeeds_without_the_key() {
    let server = spawn_server().await;
    let batch = Batch::new(3, |i| 1000 + i);
    let hook = Receiver::start(vec![]);
    let done = run(batch.upload(&server.url, &["--notify", &hook.url]), LIMIT).await;
    assert_eq!(done.code, Some(0), "{}", done.text());
    let bodies = hook.bodies();
    assert_eq!(bodies.len(), 1, "one post: {bodies:?}");
    let b = &bodies[0];
    assert_eq!((b["exitCode"].as_u64(), b["rows"].as_u64()), (Some(0), Some(3)), "{b}");
    assert_eq!((b["uploaded"].as_u64(), b["failed"].as_u64()), (Some(3), Some(0)), "{b}");
    assert_eq!(b["report"], batch.report().display().to_string());
    assert_eq!(b["manifest"], batch.manifest().display().to_string());
    let text = b["text"].as_str().unwrap();
    assert!(text.contains("manifest.csv") && text.contains("3 of 3 rows uploaded"), "{text}");
    assert!(!b.to_string().contains(KEY), "the API key is never sent: {b}");
    // The summary is the report's.
    assert_eq!(b["runId"], batch.read_report()["summary"]["runId"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn notify_posts_a_run_with_failed_rows_and_retries_a_failing_receiver() {
    let server = spawn_server().await;
    let batch = Batch::new(2, |i| 1000 + i);
    // A third row names a watermark the server does not have: the create is refused, the row
    // fails, the others go on.
    std::fs::write(batch.path("w.mp4"), b"not really a video").unwrap();
    let csv = std::fs::read_to_string(batch.manifest()).unwrap();
    let csv = csv.replace("id,path,title\n", "id,path,title,watermark\n").replace('\n', ",\n");
    let csv = csv.replacen("watermark,\n", "watermark\n", 1) + "row-w,w.mp4,Marked,no-such-wm\n";
    std::fs::write(batch.manifest(), csv).unwrap();
    let hook = Receiver::start(vec![Answer::Status(500), Answer::Status(500)]);
    let done = run(batch.upload(&server.url, &["--notify", &hook.url]), LIMIT).await;
    assert_eq!(done.code, Some(1), "{}", done.text());
    let bodies = hook.bodies();
    assert_eq!(bodies.len(), 3, "500, 500, then 200: three posts: {bodies:?}");
    assert!(bodies.iter().all(|b| *b == bodies[0]), "the same body each time");
    let b = &bodies[0];
    assert_eq!((b["exitCode"].as_u64(), b["failed"].as_u64()), (Some(1), Some(1)), "{b}");
    assert_eq!(b["uploaded"].as_u64(), Some(2), "{b}");
    assert!(!done.stderr.contains("cannot notify"), "{}", done.text());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_receiver_that_never_answers_costs_the_bound_and_not_the_exit_code() {
    let server = spawn_server().await;
    let batch = Batch::new(1, |_| 1000);
    let hook = Receiver::start(vec![Answer::Never; 10]);
    let started = Instant::now();
    let args = ["--notify", &hook.url, "--notify-timeout", "2s"];
    let done = run(batch.upload(&server.url, &args), LIMIT).await;
    let took = started.elapsed();
    assert_eq!(done.code, Some(0), "the run's code, not the notification's: {}", done.text());
    assert!(took < Duration::from_secs(30), "bounded: took {took:?}");
    assert!(done.stderr.contains("warning: cannot notify"), "{}", done.text());
    assert!(!done.stderr.contains("secret-path"), "the webhook's path is not shown");
    assert!(!hook.bodies().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_notify_url_is_exit_2_before_anything_is_sent() {
    let server = spawn_server().await;
    let batch = Batch::new(1, |_| 1000);
    for bad in ["ftp://example.com/x", "not a url", "http://"] {
        let done = run(batch.upload(&server.url, &["--notify", bad]), LIMIT).await;
        assert_eq!(done.code, Some(2), "{bad}: {}", done.text());
        assert!(done.stderr.contains("--notify"), "{}", done.text());
    }
    assert!(list_videos(&server.url).await.is_empty(), "nothing sent");
}

/// Issue #25, point 15: a webhook's URL is its secret, and a command line is seen by every local
/// user (`ps`): it is taken from `AVBATCH_NOTIFY_URL` or `--notify-file` as keys are, once, and
/// never printed, not even when it is refused.
#[tokio::test(flavor = "multi_thread")]
async fn notify_takes_its_url_from_the_environment_or_a_file() {
    let server = spawn_server().await;
    let batch = Batch::new(1, |_| 1000);
    let hook = Receiver::start(vec![]);
    let mut from_env = batch.upload(&server.url, &[]);
    from_env.env("AVBATCH_NOTIFY_URL", &hook.url);
    let done = run(from_env, LIMIT).await;
    assert_eq!(done.code, Some(0), "{}", done.text());
    assert_eq!(hook.bodies().len(), 1, "AVBATCH_NOTIFY_URL is notified: {}", done.text());

    let file = batch.path("hook.url");
    std::fs::write(&file, format!("{}\n", hook.url)).unwrap();
    let file = file.to_str().unwrap();
    let done = run(batch.upload(&server.url, &["--notify-file", file]), LIMIT).await;
    assert_eq!(done.code, Some(0), "{}", done.text());
    assert_eq!(hook.bodies().len(), 2, "--notify-file is notified: {}", done.text());
    assert!(!done.stderr.contains("secret-path"), "{}", done.text());

    let twice =
        run(batch.upload(&server.url, &["--notify-file", file, "--notify", &hook.url]), LIMIT);
    let twice = twice.await;
    assert_eq!(twice.code, Some(2), "{}", twice.text());
    assert!(twice.stderr.contains("given twice"), "{}", twice.text());
    assert!(!twice.stderr.contains("secret-path"), "{}", twice.text());

    std::fs::write(batch.path("hook.url"), "ftp://hooks.example.com/T0/secret-path\n").unwrap();
    let bad = run(batch.upload(&server.url, &["--notify-file", file]), LIMIT).await;
    assert_eq!(bad.code, Some(2), "{}", bad.text());
    assert!(!bad.stderr.contains("secret-path"), "a refused URL is not shown: {}", bad.text());
    assert_eq!(hook.bodies().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn max_duration_finishes_the_videos_under_way_and_leaves_the_rest_for_the_next_run() {
    let data = tempfile::tempdir().unwrap();
    // Two parts a file at 8 MiB/s: each video takes most of a second, the batch several.
    let batch = Batch::new(8, |i| 6 * common::MIB + i);
    let server = serve_on("127.0.0.1:0", data.path(), &["--bandwidth", "8MiB"]).await;
    let done = run(batch.upload(&server.url, &["--max-duration", "1s", "-c", "1"]), LIMIT).await;
    assert_eq!(done.code, Some(5), "stopped at --max-duration: {}", done.text());
    let report = batch.read_report();
    let s = &report["summary"];
    let (uploaded, pending) = (s["uploaded"].as_u64().unwrap(), s["pending"].as_u64().unwrap());
    assert!(uploaded >= 1 && pending >= 1 && uploaded + pending == 8, "{s}");
    assert_eq!((s["interrupted"].as_u64(), s["failed"].as_u64()), (Some(0), Some(0)), "{s}");
    // Every video started is complete: as many videos as uploaded rows, each holding its file.
    let videos = list_videos(&server.url).await;
    assert_eq!(videos.len() as u64, uploaded, "no video left half-sent: {s}");
    for (i, row) in report["rows"].as_array().unwrap().iter().enumerate() {
        match row["status"].as_str().unwrap() {
            "uploaded" => {
                let id = row["videoId"].as_str().unwrap();
                let held = held_bytes(&server.url, id).await;
                assert_eq!(held, batch.sources[i].len() as u64, "{row}");
            }
            status => assert_eq!(status, "pending", "{row}"),
        }
    }
    let left = format!("{pending} row(s) not started are left for the next run");
    assert!(done.stderr.contains(&left), "{}", done.text());

    // The next night, without the flag: the rest, each exactly once.
    let done = run(batch.upload(&server.url, &[]), LIMIT).await;
    assert_eq!(done.code, Some(0), "{}", done.text());
    let s = &batch.read_report()["summary"];
    assert_eq!((s["uploaded"].as_u64(), s["skipped"].as_u64()), (Some(pending), Some(uploaded)));
    assert_exactly_once(&server.url, &batch).await;
}

/// `HH:MM` of `minute` after midnight, wrapped into the day.
fn hhmm(minute: i64) -> String {
    let m = minute.rem_euclid(24 * 60);
    format!("{:02}:{:02}", m / 60, m % 60)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bandwidth_timetable_follows_the_entry_in_force() {
    use chrono::Timelike;
    let now = chrono::Local::now();
    let minute = i64::from(now.hour() * 60 + now.minute());
    // The entry begun two minutes ago is in force for three more: `off`, then a small rate.
    let (begun, next) = (hhmm(minute - 2), hhmm(minute + 3));
    for (table, said, slow) in [
        (format!("{begun},off {next},1MiB"), "--bandwidth timetable: off (no limit)", false),
        (format!("{next},off {begun},1MiB"), "--bandwidth timetable: 1.00 MiB/s", true),
    ] {
        // A server each: the same row on the same server would be found done.
        let server = spawn_server().await;
        let batch = Batch::new(1, |_| 3 * common::MIB);
        let started = Instant::now();
        let done = run(batch.upload(&server.url, &["--bandwidth", &table]), LIMIT).await;
        let took = started.elapsed();
        assert_eq!(done.code, Some(0), "{}", done.text());
        assert!(done.stderr.contains(said), "{table}: {}", done.text());
        let until = format!("until {next}");
        assert!(done.stderr.contains(&until), "{table}: {}", done.text());
        if slow {
            // 3 MiB at 1 MiB/s (a quarter second's burst): well over a second and a half.
            assert!(took > Duration::from_millis(1500), "{table}: took {took:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_bandwidth_timetable_is_exit_2_with_what_is_wrong() {
    let batch = Batch::new(1, |_| 1000);
    let done =
        run(batch.upload("http://127.0.0.1:9", &["--bandwidth", "08:00,10MiB 25:00,off"]), LIMIT)
            .await;
    assert_eq!(done.code, Some(2), "{}", done.text());
    assert!(done.stderr.contains("`25:00` in `25:00,off` is not a time"), "{}", done.text());
}
