//! Faults avbatch must survive, and the server's hardening (issue #5): the real `avbatch` binary
//! against servers on 127.0.0.1 that crash, reset connections, fail, expire tokens and stall; a
//! SIGTERM mid-batch; journals that cannot be written; secrets in every artefact; path traversal
//! and size caps on `avbatch serve`.
//!
//! Every batch is checked byte for byte at the end: one video per row (by the `avbatch_key`
//! metadata too), each source identical to its file. Timing is never assumed: the tests poll the
//! journal (`avbatch status --json`) or the server with deadlines.

use crate::common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::batch::*;
use common::{basic_auth, create_video_at, pattern, spawn_server, spawn_server_with, KEY, MIB};
use serde_json::json;

// ---------------------------------------------------------------------------------------------
// Raw HTTP, for requests reqwest would normalise (dot segments) or that must not be cut short
// ---------------------------------------------------------------------------------------------

#[derive(Debug)]
struct RawAnswer {
    status: u16,
    head: String,
    body: Vec<u8>,
}

/// Sends `head` (request line and headers, without the blank line; `Connection: close` and
/// `Content-Length` are added) and `body` on a new connection, writing from another thread so a
/// server that answers early is heard. `None` if the connection closed without an answer.
fn raw_http(addr: &str, head: &str, body: Vec<u8>) -> Option<RawAnswer> {
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let request = format!("{head}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n", body.len());
    let sender = std::thread::spawn(move || {
        if writer.write_all(request.as_bytes()).is_ok() {
            for piece in body.chunks(64 * 1024) {
                if writer.write_all(piece).is_err() {
                    break;
                }
            }
        }
    });
    let mut reader = stream;
    let mut got = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) => break, // reset after (or instead of) the answer
        }
    }
    let _ = sender.join();
    let end = got.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&got[..end]).into_owned();
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some(RawAnswer { status, head: head.to_ascii_lowercase(), body: got[end + 4..].to_vec() })
}

fn raw_get(addr: &str, target: &str) -> Option<RawAnswer> {
    raw_http(
        addr,
        &format!("GET {target} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {}", basic_auth(KEY)),
        Vec::new(),
    )
}

/// The server at `addr` still answers `GET /videos` with 200.
fn assert_still_serving(addr: &str, after: &str) {
    let a = raw_get(addr, "/videos")
        .unwrap_or_else(|| panic!("the server stopped answering after {after}"));
    assert_eq!(a.status, 200, "GET /videos after {after}: {}", a.head);
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

// =============================================================================================
// a. kill -9 of the server mid-batch, restarted on the same data folder and port
// =============================================================================================

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn server_killed_9_and_restarted_mid_batch_the_run_rides_it_out() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    // 4 MiB/s per connection: an 11 MiB file takes about 3 s, the batch over 10 s.
    let slow = ["--bandwidth", "4MiB"];
    let mut server = serve_on("127.0.0.1:0", &data, &slow).await;
    let addr = server.addr();
    let url = server.url.clone();
    let batch = Batch::new(8, |i| 11 * MIB + i * 4099);
    let mut upload =
        Running::start(batch.upload(&url, &["-c", "2", "--retries", "10", "--timeout", "20s"]));

    let mut restarts = 0;
    let mut mark = 0;
    for round in 0..2 {
        // Kill once the journal shows real progress since the last restart.
        let want = mark + 5 * MIB as u64;
        let seen = batch.wait_for_progress(&mut upload, want, Duration::from_secs(25)).await;
        if !upload.running() {
            break;
        }
        server.kill9();
        // Down long enough for avbatch to see refused connections.
        tokio::time::sleep(Duration::from_millis(400 + round * 300)).await;
        server = serve_on(&addr, &data, &slow).await;
        assert_eq!(server.url, url, "restarted on the same address");
        restarts += 1;
        mark = seen;
    }
    assert_eq!(restarts, 2, "both server kills landed while avbatch ran");
    let done = upload.finish(Duration::from_secs(90)).await;
    assert_eq!(done.code, Some(0), "the run rides out two server crashes\n{}", done.text());
    let rep = batch.read_report();
    assert_eq!(rep["summary"]["uploaded"], 8, "{rep}");
    assert!(rep["summary"]["retries"].as_u64().unwrap() > 0, "the crashes cost retries: {rep}");

    // Once more after a crash, without the bandwidth cap, to read everything back quickly.
    server.kill9();
    let server = serve_on(&addr, &data, &[]).await;
    assert_exactly_once(&server.url, &batch).await;
}

// =============================================================================================
// b. connection resets mid-body and 10 % 503 in one batch
// =============================================================================================

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn resets_mid_body_and_10_percent_503_still_end_byte_exact() {
    let server = spawn_server_with(|c| {
        c.faults.reset_rate = 0.25;
        c.faults.fail_rate = 0.1;
        c.faults.seed = Some(55);
    })
    .await;
    let batch = Batch::new(8, |i| 11 * MIB + i * 31);
    let done = run(batch.upload(&server.url, &["-c", "4"]), Duration::from_secs(120)).await;
    assert_eq!(done.code, Some(0), "{}", done.text());
    let rep = batch.read_report();
    assert_eq!(rep["summary"]["uploaded"], 8, "{rep}");
    // 24 parts at a 25 % reset rate and every call at 10 % 503: without retries this cannot pass.
    assert!(
        rep["summary"]["retries"].as_u64().unwrap() >= 3,
        "faults were injected, so there were retries: {rep}"
    );
    assert_exactly_once(&server.url, &batch).await;
    assert_eq!(
        server.server.received_bytes(),
        batch.total(),
        "no part was stored twice, none lost"
    );
}

// =============================================================================================
// c. access tokens expire mid-upload
// =============================================================================================

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_run_outliving_many_access_tokens_is_never_refused() {
    // Tokens live 2 s; at 2 MiB/s per connection each 5 MiB part takes 2.5 s, so the run
    // outlives many tokens. avbatch authenticates every call with the key itself (issue #11),
    // so nothing expires: no part is refused or sent twice.
    let server = spawn_server_with(|c| {
        c.token_ttl = Duration::from_secs(2);
        c.faults.bandwidth = Some(2 * MIB as u64);
    })
    .await;
    let batch = Batch::new(2, |i| 11 * MIB + i);
    let done = run(batch.upload(&server.url, &["-c", "2", "-v"]), Duration::from_secs(120)).await;
    assert_eq!(done.code, Some(0), "{}", done.text());
    let rep = batch.read_report();
    let secs = rep["summary"]["seconds"].as_f64().unwrap();
    assert!(secs > 4.0, "the run must outlive several tokens ({secs} s): {rep}");
    assert_eq!(rep["summary"]["retries"], 0, "nothing was refused and sent again: {rep}");
    assert_exactly_once(&server.url, &batch).await;
    assert_eq!(server.server.received_bytes(), batch.total());
}

// =============================================================================================
// d. very slow responses: a latency beyond --timeout fails clearly; a longer timeout succeeds
// =============================================================================================

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn answers_slower_than_the_timeout_fail_clearly_and_a_longer_timeout_succeeds() {
    let server = spawn_server_with(|c| c.faults.latency = Duration::from_millis(1500)).await;
    // Small files: the timeout allows each body time at 256 KiB/s on top of --timeout, so the
    // bodies must not stretch it past the latency.
    let batch = Batch::new(3, |i| 16 * 1024 + i);

    // With the API key: even the token request times out. No hang, a clear message, and exit 4:
    // not one answer came back (issue #13).
    let started = Instant::now();
    let done = run(
        batch.upload(&server.url, &["--timeout", "300ms", "--retries", "1"]),
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(done.code, Some(4), "a run that got no answer at all exits 4\n{}", done.text());
    assert!(
        done.stderr.contains("timed out"),
        "the message says the calls timed out\n{}",
        done.text()
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "gave up in bounded time: {:?}",
        started.elapsed()
    );
    assert!(list_videos(&server.url).await.is_empty());
    let rep = batch.read_report();
    assert_eq!(rep["summary"]["pending"], 3, "the report says no row started: {rep}");
    assert!(rep["rows"][0]["error"].as_str().unwrap().contains("timed out"), "{rep}");

    // With an upload token (no auth call first): every row fails with a timeout, in the report.
    let other = spawn_server_with(|c| c.faults.latency = Duration::from_millis(1500)).await;
    let token = other.post_json("/upload-tokens", &json!({"ttl": 0})).await;
    let token = token["token"].as_str().unwrap().to_owned();
    // A token alone cannot set titles: the same files without the title column.
    let plain = batch.path("plain.csv");
    std::fs::write(
        &plain,
        (0..3).fold("id,path\n".to_owned(), |csv, i| csv + &format!("row-{i},f{i}.mp4\n")),
    )
    .unwrap();
    let mut cmd = avbatch();
    cmd.args([
        "upload",
        plain.to_str().unwrap(),
        "--base-url",
        &other.url,
        "--chunk-size",
        "5MiB",
        "-q",
        "--report",
    ])
    .arg(batch.report())
    .args(["--timeout", "300ms", "--retries", "1", "--no-journal", "--upload-token", &token]);
    let started = Instant::now();
    let done = run(cmd, Duration::from_secs(60)).await;
    // Not one answer came back: exit 4 (issue #13), not "some rows failed".
    let why = "rows that got no answer at all end the run with exit 4";
    assert_eq!(done.code, Some(4), "{why}\n{}", done.text());
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "gave up in bounded time: {:?}",
        started.elapsed()
    );
    let rep = batch.read_report();
    assert_eq!(rep["summary"]["failed"], 3, "{rep}");
    for row in rep["rows"].as_array().unwrap() {
        let err = row["error"].as_str().unwrap_or_default();
        assert!(err.contains("timed out"), "the row's error names the timeout: {row}");
    }

    // A timeout above the latency: the same batch goes through, exactly once.
    let done =
        run(batch.upload(&server.url, &["--timeout", "10s", "-c", "3"]), Duration::from_secs(90))
            .await;
    assert_eq!(done.code, Some(0), "{}", done.text());
    assert_exactly_once(&server.url, &batch).await;
}

// =============================================================================================
// e. SIGTERM mid-batch
// =============================================================================================

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_mid_batch_exits_130_with_a_consistent_journal_and_a_rerun_finishes() {
    // 2 MiB/s per connection: a 5 MiB part takes 2.5 s, so SIGTERM lands mid-part.
    let server = spawn_server_with(|c| c.faults.bandwidth = Some(2 * MIB as u64)).await;
    let batch = Batch::new(6, |i| 6 * MIB + i * 3);
    let mut upload = Running::start(batch.upload(&server.url, &["-c", "2"]));
    let seen = batch.wait_for_progress(&mut upload, 1, Duration::from_secs(25)).await;
    assert!(upload.running(), "the run was still going when SIGTERM was sent ({seen} bytes done)");
    upload.signal("-TERM");
    let done = upload.finish(Duration::from_secs(30)).await;
    assert_eq!(done.code, Some(130), "SIGTERM exits 130 (documented)\n{}", done.text());

    // The report: nothing failed, something left for later, every row listed.
    let rep = batch.read_report();
    let s = &rep["summary"];
    assert_eq!(s["failed"], 0, "an interruption is not a failure: {rep}");
    assert_eq!(s["rows"], 6);
    assert!(s["pending"].as_u64().unwrap() + s["interrupted"].as_u64().unwrap() > 0, "{rep}");

    // The journal agrees with the report and with the server, byte for byte.
    let st = batch.status().expect("avbatch status reads the journal after SIGTERM");
    assert_eq!(st["failed"], 0, "{st}");
    assert_eq!(st["manifestRows"], 6, "{st}");
    assert_eq!(
        st["bytesDone"].as_u64(),
        Some(server.server.received_bytes()),
        "journal bytes = bytes the server holds: {st}"
    );
    assert_eq!(st["bytesDone"], s["bytes"], "journal bytes = report bytes: {st} {rep}");
    for row in rep["rows"].as_array().unwrap() {
        if let Some(id) = row["videoId"].as_str() {
            assert_eq!(
                held_bytes(&server.url, id).await,
                row["bytes"].as_u64().unwrap(),
                "report = server for {row}"
            );
        }
    }

    let done = run(batch.upload(&server.url, &["-c", "3"]), Duration::from_secs(90)).await;
    assert_eq!(done.code, Some(0), "{}", done.text());
    assert_exactly_once(&server.url, &batch).await;
    assert_eq!(
        server.server.received_bytes(),
        batch.total(),
        "no byte was sent twice across the two runs"
    );
    let st = batch.status().unwrap();
    assert_eq!((st["done"].as_u64(), st["notStarted"].as_u64()), (Some(6), Some(0)), "{st}");
}

// =============================================================================================
// f. a journal that cannot be written: exit 2 before anything is sent
// =============================================================================================

/// Runs the batch with `--journal journal` (through `sh -c PRELUDE` when given) and checks the
/// run stopped before sending anything, with a clear message.
async fn assert_refused_before_sending(
    batch: &Batch,
    server: &common::TestServer,
    journal: &Path,
    prelude: Option<&str>,
    what: &str,
) {
    let mut cmd = batch.upload(&server.url, &["--journal", journal.to_str().unwrap()]);
    if let Some(prelude) = prelude {
        // Same program and arguments, behind a shell that sets limits first.
        let mut shell = Command::new("sh");
        shell
            .arg("-c")
            .arg(format!("{prelude}; exec \"$0\" \"$@\""))
            .arg(cmd.get_program())
            .args(cmd.get_args());
        shell.env("AVBATCH_API_KEY", KEY).env_remove("RUST_LOG").stdin(Stdio::null());
        cmd = shell;
    }
    let done = run(cmd, Duration::from_secs(60)).await;
    assert_eq!(done.code, Some(2), "{what}: exit 2\n{}", done.text());
    assert!(
        done.stderr.contains("error:")
            && done.stderr.contains("journal")
            && done.stderr.contains(&journal.display().to_string()),
        "{what}: the error names the journal\n{}",
        done.text()
    );
    assert!(done.stderr.contains("hint:"), "{what}: a hint says what to do\n{}", done.text());
    assert!(server.all_videos().await.is_empty(), "{what}: no video was created");
    assert_eq!(server.server.received_bytes(), 0, "{what}: no byte was sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unwritable_journal_stops_the_run_before_anything_is_sent() {
    let server = spawn_server().await;
    let batch = Batch::new(2, |i| 6 * MIB + i);

    // A read-only folder. Root writes through mode 0555, so this case only means something when
    // the folder really refuses a file.
    let ro = batch.path("read-only");
    std::fs::create_dir(&ro).unwrap();
    std::fs::set_permissions(&ro, std::os::unix::fs::PermissionsExt::from_mode(0o555)).unwrap();
    if std::fs::File::create(ro.join("probe")).is_err() {
        assert_refused_before_sending(
            &batch,
            &server,
            &ro.join("x.sqlite"),
            None,
            "read-only folder",
        )
        .await;
    } else {
        let _ = std::fs::remove_file(ro.join("probe"));
        eprintln!(
            "running as root: mode 0555 does not stop writes; the read-only folder case is \
             covered by the paths below"
        );
    }
    std::fs::set_permissions(&ro, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();

    // Paths that cannot be created by anyone, root included.
    let under_a_file = batch.path("f0.mp4").join("x.sqlite");
    assert_refused_before_sending(
        &batch,
        &server,
        &under_a_file,
        None,
        "a journal under a regular file",
    )
    .await;
    assert_refused_before_sending(
        &batch,
        &server,
        Path::new("/proc/avbatch-no-such-dir/x.sqlite"),
        None,
        "a journal under /proc",
    )
    .await;
    assert_refused_before_sending(
        &batch,
        &server,
        Path::new("/proc/avbatch-x.sqlite"),
        None,
        "a journal in /proc",
    )
    .await;

    // A full disk, as the process sees it: no file may grow (RLIMIT_FSIZE 0; SIGXFSZ ignored so
    // writes fail with EFBIG instead of killing the process).
    let journal = batch.path("fsize").join("x.sqlite");
    std::fs::create_dir(journal.parent().unwrap()).unwrap();
    assert_refused_before_sending(
        &batch,
        &server,
        &journal,
        Some("trap '' XFSZ; ulimit -f 0"),
        "a disk that takes no more bytes",
    )
    .await;

    // A really full file system, when this test may mount a tiny tmpfs (root only).
    let mnt = batch.path("full-fs");
    std::fs::create_dir(&mnt).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "avbatch-full", mnt.to_str().unwrap()])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if mounted {
        struct Unmount(PathBuf);
        impl Drop for Unmount {
            fn drop(&mut self) {
                let _ = Command::new("umount").arg("-l").arg(&self.0).status();
            }
        }
        let _guard = Unmount(mnt.clone());
        let mut filler = std::fs::File::create(mnt.join("filler")).unwrap();
        while filler.write_all(&[7u8; 4096]).and_then(|()| filler.sync_all()).is_ok() {}
        drop(filler);
        assert_refused_before_sending(
            &batch,
            &server,
            &mnt.join("x.sqlite"),
            None,
            "a full file system",
        )
        .await;
    } else {
        crate::common::cannot_run_here("the real full file system: mounting a tmpfs needs root");
    }

    // And the same batch with a writable journal goes through.
    let done = run(batch.upload(&server.url, &[]), Duration::from_secs(60)).await;
    assert_eq!(done.code, Some(0), "{}", done.text());
    assert_exactly_once(&server.url, &batch).await;
}

// =============================================================================================
// g. secrets: the key and every token stay out of every artefact
// =============================================================================================

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_key_and_tokens_appear_in_no_artefact_even_at_trace_level() {
    let secret = "FaultSecret-key-9d8c7b6a5f4e";
    let server = spawn_server_with(|c| {
        // The test key too, so the checks at the end can list the videos.
        c.api_keys =
            vec![avbatch_api::secret::ApiKey::new(secret), avbatch_api::secret::ApiKey::new(KEY)];
        c.token_ttl = Duration::from_secs(2);
        c.faults.bandwidth = Some(4 * MIB as u64);
    })
    .await;
    let batch = Batch::new(3, |i| 11 * MIB + i);
    let with_secret = |mut cmd: Command| {
        cmd.env("AVBATCH_API_KEY", secret).env("RUST_LOG", "trace");
        cmd
    };
    let mut outputs: Vec<(String, Vec<u8>)> = Vec::new();

    // Run 1, killed -9 mid-batch so the journal's WAL is left as it was.
    let mut first = Running::start(with_secret(batch.upload(&server.url, &["-vv", "-c", "2"])));
    batch.wait_for_progress(&mut first, 5 * MIB as u64, Duration::from_secs(25)).await;
    let done = first.kill9();
    outputs.push(("run 1 stdout".into(), done.stdout.into_bytes()));
    outputs.push(("run 1 stderr".into(), done.stderr.into_bytes()));
    let killed_files: Vec<PathBuf> = files_under(batch.dir.path())
        .into_iter()
        .filter(|p| p.extension().is_none_or(|e| e != "mp4"))
        .collect();
    assert!(
        killed_files.iter().any(|p| p.to_string_lossy().ends_with(".sqlite-wal")),
        "the killed run left its WAL: {killed_files:?}"
    );
    for p in killed_files {
        outputs.push((format!("after kill -9: {}", p.display()), std::fs::read(&p).unwrap()));
    }

    // Run 2 to the end, CSV report; run 3 (all done), JSON report and --json on stdout.
    let csv = batch.path("report.csv");
    let done = run(
        with_secret(batch.upload_reporting(&server.url, &csv, &["-vv", "-c", "2"])),
        Duration::from_secs(90),
    )
    .await;
    assert_eq!(done.code, Some(0), "{}", done.text());
    outputs.push(("run 2 stdout".into(), done.stdout.into_bytes()));
    outputs.push(("run 2 stderr".into(), done.stderr.into_bytes()));
    let done =
        run(with_secret(batch.upload(&server.url, &["-vv", "--json"])), Duration::from_secs(60))
            .await;
    assert_eq!(done.code, Some(0), "{}", done.text());
    assert_eq!(batch.read_report()["summary"]["skipped"], 3);
    outputs.push(("run 3 stdout".into(), done.stdout.into_bytes()));
    outputs.push(("run 3 stderr".into(), done.stderr.into_bytes()));
    // `avbatch status`, too.
    let status = avbatch().args(["status", batch.manifest().to_str().unwrap()]).output().unwrap();
    outputs.push(("status".into(), [status.stdout, status.stderr].concat()));
    for p in files_under(batch.dir.path())
        .into_iter()
        .filter(|p| p.extension().is_none_or(|e| e != "mp4"))
    {
        outputs.push((p.display().to_string(), std::fs::read(&p).unwrap()));
    }
    let names: Vec<&str> = outputs.iter().map(|(n, _)| n.as_str()).collect();
    assert!(
        names.iter().any(|n| n.ends_with("report.csv"))
            && names.iter().any(|n| n.ends_with("report.json")),
        "{names:?}"
    );
    assert!(names.iter().any(|n| n.ends_with(".sqlite")), "{names:?}");

    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{secret}:"));
    // The key, its Basic header, the JWT shape of access tokens and the prefix of refresh tokens.
    let needles = [secret.as_bytes(), basic.as_bytes(), b"eyJ".as_slice(), b"def50200".as_slice()];
    for (name, bytes) in &outputs {
        for needle in needles {
            let found = bytes.windows(needle.len()).position(|w| w == needle);
            if let Some(at) = found {
                let ctx = String::from_utf8_lossy(
                    &bytes[at.saturating_sub(80)..(at + 80).min(bytes.len())],
                )
                .into_owned();
                panic!("`{}` found in {name}: …{ctx}…", String::from_utf8_lossy(needle));
            }
        }
    }
    assert_exactly_once(&server.url, &batch).await;
}

// =============================================================================================
// h. server hardening
// =============================================================================================

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serve_binds_loopback_by_default() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let server = ServeProcess::start(
        &["--data", data.to_str().unwrap(), "--api-key", KEY],
        &root.path().join("serve.log"),
    )
    .unwrap_or_else(|log| panic!("avbatch serve did not start:\n{log}"));
    assert!(
        server.url.starts_with("http://127.0.0.1:"),
        "binds 127.0.0.1 unless told otherwise: {}",
        server.url
    );
    let port: u16 = server.url.rsplit(':').next().unwrap().parse().unwrap();
    assert_ne!(port, 0);
    assert_still_serving(&server.addr(), "start");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serve_refuses_path_traversal_in_ids() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let server = serve_on("127.0.0.1:0", &data, &[]).await;
    let addr = server.addr();
    // Canaries where `..` out of `videos/`, `tokens/` or the data folder would land.
    std::fs::write(root.path().join("canary.json"), "{}").unwrap();
    std::fs::write(data.join("canary.json"), "{}").unwrap();
    let before: Vec<PathBuf> = files_under(root.path());
    let climbs = ["/etc/escape", "/escape", "/tmp/escape", "/etc/escape.mp4", "/tmp/escape.mp4"];
    let existed: Vec<bool> = climbs.iter().map(|p| Path::new(p).exists()).collect();

    let long = "a".repeat(8000);
    let targets = [
        "/videos/..%2F..%2Fetc%2Fpasswd".to_owned(),
        "/videos/..%2F..%2Fcanary".to_owned(),
        "/videos/../../x".to_owned(),
        "/videos/..%2F..%2Fcanary/status".to_owned(),
        "/videos/%2e%2e%2f%2e%2e%2fcanary/status".to_owned(),
        "/videos/..%5C..%5Ccanary".to_owned(),
        "/videos/vi%00abc".to_owned(),
        "/videos/vi%00..%2F..%2Fcanary/status".to_owned(),
        "/upload-tokens/..%2F..%2Fcanary".to_owned(),
        "/upload-tokens/..%2Fcanary".to_owned(),
        "/vod/..%2F..%2Fcanary/mp4/source.mp4".to_owned(),
        "/vod/..%2F..%2Fcanary".to_owned(),
        format!("/videos/{long}"),
        format!("/videos/{long}/status"),
        format!("/vod/{long}/mp4/source.mp4"),
    ];
    let auth = basic_auth(KEY);
    let mut requests: Vec<(String, String, Vec<u8>)> = Vec::new();
    for t in &targets {
        requests.push((
            format!("GET {t} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {auth}"),
            t.clone(),
            Vec::new(),
        ));
    }
    for t in [
        "/videos/..%2F..%2Fcanary",
        "/upload-tokens/..%2F..%2Fcanary",
        "/upload-tokens/..%2Fcanary",
        "/videos/vi%00x",
    ] {
        requests.push((
            format!("DELETE {t} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {auth}"),
            format!("DELETE {t}"),
            Vec::new(),
        ));
    }
    let patch = br#"{"title":"escaped"}"#.to_vec();
    requests.push((
        format!(
            "PATCH /videos/..%2F..%2Fcanary HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {auth}\r\n\
             Content-Type: application/json"
        ),
        "PATCH /videos/..%2F..%2Fcanary".into(),
        patch,
    ));
    let (ct, body) = common::multipart_file("file", "../../escape.mp4", &pattern(1000, 1));
    for t in ["/videos/..%2F..%2Fescape/source", "/videos/..%2F..%2F..%2Fescape/source"] {
        requests.push((
            format!(
                "POST {t} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {auth}\r\nContent-Type: {ct}"
            ),
            format!("POST {t}"),
            body.clone(),
        ));
    }
    // A chunk for an existing video whose file name tries to climb out.
    let id = create_video_at(&http(), &server.url, "target").await;
    requests.push((
        format!(
            "POST /videos/{id}/source HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {auth}\r\n\
             Content-Type: {ct}"
        ),
        "POST source with file name ../../escape.mp4".into(),
        body.clone(),
    ));

    for (head, what, body) in requests {
        let escaped_name = what.contains("escape.mp4");
        let a = tokio::task::spawn_blocking({
            let addr = addr.clone();
            move || raw_http(&addr, &head, body)
        })
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{what}: no answer"));
        if escaped_name {
            // The upload itself is legitimate; the name is only a label.
            assert_eq!(a.status, 201, "{what}: {} {}", a.head, String::from_utf8_lossy(&a.body));
            continue;
        }
        assert!(
            a.status == 404 || a.status == 400,
            "{what}: answered {} (want 404 or 400)\n{}",
            a.status,
            a.head
        );
        assert!(
            a.head.contains("content-type: application/problem+json"),
            "{what}: a problem+json error\n{}",
            a.head
        );
    }

    // Nothing appeared or vanished outside the data folder's own bookkeeping, the canaries are
    // intact, and no file anywhere is named after the climbing names.
    assert!(
        root.path().join("canary.json").exists() && data.join("canary.json").exists(),
        "a canary was deleted"
    );
    assert_eq!(
        std::fs::read_to_string(root.path().join("canary.json")).unwrap(),
        "{}",
        "a canary was written"
    );
    let after = files_under(root.path());
    let outside: Vec<&PathBuf> = after
        .iter()
        .filter(|p| !p.starts_with(&data) && !before.contains(p) && !p.ends_with("data.log"))
        .collect();
    assert!(outside.is_empty(), "files created outside the data folder: {outside:?}");
    let strange: Vec<&PathBuf> = after
        .iter()
        .filter(|p| {
            ["escape", "passwd", "canary"].iter().any(|n| p.to_string_lossy().contains(n))
                && !before.contains(p)
        })
        .collect();
    assert!(strange.is_empty(), "files named after a traversal attempt: {strange:?}");
    for (p, existed) in climbs.iter().zip(existed) {
        assert!(existed || !Path::new(p).exists(), "{p} was created");
    }
    let dir = data.join("videos").join(&id);
    assert!(dir.is_dir(), "the legitimate chunk went under its video");
    assert_still_serving(&addr, "the traversal attempts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serve_caps_header_and_json_body_sizes() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let server = serve_on("127.0.0.1:0", &data, &[]).await;
    let addr = server.addr();
    let auth = basic_auth(KEY);
    // Every cap is tried; what is missing is listed at the end.
    let mut missing: Vec<String> = Vec::new();
    let send = |head: String, body: Vec<u8>| {
        let a = addr.clone();
        tokio::task::spawn_blocking(move || raw_http(&a, &head, body))
    };

    // A 10 MiB JSON body on JSON routes: 413, as api.video's problem+json, and nothing created.
    let mut big = br#"{"title":""#.to_vec();
    big.extend(std::iter::repeat_n(b'a', 10 * MIB));
    big.extend_from_slice(br#""}"#);
    for route in ["/videos", "/auth/api-key", "/upload-tokens"] {
        let head = format!(
            "POST {route} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {auth}\r\n\
             Content-Type: application/json"
        );
        match send(head, big.clone()).await.unwrap() {
            None => missing.push(format!(
                "POST {route} with a 10 MiB body: connection closed without an answer (want 413)"
            )),
            Some(a) if a.status != 413 => missing
                .push(format!("POST {route} with a 10 MiB body: answered {} (want 413)", a.status)),
            Some(a) if !a.head.contains("content-type: application/problem+json") => {
                missing.push(format!(
                    "POST {route} with a 10 MiB body: the 413 is not problem+json \
                     (docs/server-contract.md: every error is): {:?} {:?}",
                    a.head
                        .lines()
                        .find(|l| l.starts_with("content-type"))
                        .unwrap_or("no content-type"),
                    String::from_utf8_lossy(&a.body)
                ))
            }
            Some(_) => {}
        }
        assert_still_serving(&addr, &format!("a 10 MiB POST {route}"));
    }
    assert!(list_videos(&server.url).await.is_empty(), "the oversized create made no video");

    // A 100 KiB header: refused with 431, or the connection closed; the server keeps serving.
    let head = format!(
        "GET /videos HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {auth}\r\nX-Big: {}",
        "b".repeat(100 * 1024)
    );
    if let Some(a) = send(head, Vec::new()).await.unwrap() {
        if a.status != 431 {
            missing.push(format!(
                "GET /videos with a 100 KiB header: answered {} (want 431 or a closed connection)",
                a.status
            ));
        }
    }
    assert_still_serving(&addr, "a 100 KiB header");

    // 500 small headers: capped as well.
    let many: String = (0..500).map(|i| format!("\r\nX-H{i}: v")).collect();
    let head = format!("GET /videos HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {auth}{many}");
    if let Some(a) = send(head, Vec::new()).await.unwrap() {
        if a.status != 431 {
            missing.push(format!(
                "GET /videos with 500 headers: answered {} (want 431 or a closed connection)",
                a.status
            ));
        }
    }
    assert_still_serving(&addr, "500 headers");
    // Expired upload tokens are refused:
    // tests/suite/upload_modes.rs `expired_upload_token_is_refused`.
    assert!(
        missing.is_empty(),
        "size caps missing from avbatch serve:\n  {}",
        missing.join("\n  ")
    );
}
