//! Issue #11, item 17: connections that cannot take the `avbatch serve` process down.
//!
//! The number of connections follows the open-file limit, so 20 000 idle sockets against a
//! server limited to 1 024 descriptors do not stop it answering, and accept running out of
//! descriptors closes an idle connection; SIGTERM ends the server within seconds whatever its
//! clients do. Each test talks raw HTTP to the real binary, started here on 127.0.0.1 with its
//! own limits, and bounds every wait. The connection limit and the time-outs, in-process: the
//! double's `connections` tests.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{
    basic_auth, closed_within, get_videos, multipart_file, pattern, read_answer, upload_head, KEY,
    MIB,
};
use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// `avbatch serve` as a child process with its own open-file limit; killed on drop.
struct Serve {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

impl Serve {
    /// Starts the binary on 127.0.0.1:0 with `data` and `extra` flags, under `RLIMIT_NOFILE`
    /// `nofile` (soft and hard) when given; stderr goes to `DATA.log`.
    fn start(data: &Path, extra: &[&str], nofile: Option<u64>) -> Serve {
        let log = data.with_extension("log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_avbatch"));
        cmd.args([
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--api-key",
            KEY,
            "--rate-limit",
            "off",
            "--data",
        ])
        .arg(data)
        .args(extra)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(std::fs::File::create(&log).expect("create the server log")));
        if let Some(n) = nofile {
            // SAFETY: between fork and exec the child only calls `setrlimit`, which is
            // async-signal-safe, on a value it owns; it allocates nothing and takes no lock.
            unsafe {
                cmd.pre_exec(move || {
                    let lim = libc::rlimit { rlim_cur: n, rlim_max: n };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let mut child = cmd.spawn().expect("spawn avbatch serve");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let url = loop {
            let line = lines.next().expect("the server printed its address").expect("read stdout");
            if let Some(rest) = line.strip_prefix("listening on ") {
                break rest.trim().to_owned();
            }
        };
        std::thread::spawn(move || for _ in lines {});
        let addr = url.strip_prefix("http://").expect("an http URL").parse().expect("host:port");
        Serve { child, addr, log }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits (at most `limit`) for the process to exit; its exit code and how long it took.
    fn wait_exit(&mut self, limit: Duration) -> Option<(Option<i32>, Duration)> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some((status.code(), start.elapsed()));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }

    fn signal(&self, sig: libc::c_int) {
        // SAFETY: `kill` on our own child's pid; it is still our child (not yet waited for).
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, sig) };
        assert_eq!(rc, 0, "kill({}, {sig})", self.child.id());
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A new connection and one `GET /videos` on it, within `limit`; the status and the time taken.
async fn timed_get(addr: SocketAddr, limit: Duration) -> (u16, Duration) {
    let start = Instant::now();
    let answer = tokio::time::timeout(limit, async {
        let mut s = TcpStream::connect(addr).await?;
        get_videos(&mut s).await
    })
    .await;
    match answer {
        Ok(Ok(status)) => (status, start.elapsed()),
        Ok(Err(e)) => panic!("GET /videos failed after {:?}: {e}", start.elapsed()),
        Err(_) => panic!("GET /videos was not answered within {limit:?}"),
    }
}

/// Raises this process's open-file limit to at least `want`; `false` when that is impossible.
fn raise_own_nofile(want: u64) -> bool {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return false;
    }
    if lim.rlim_cur >= want {
        return true;
    }
    let max = lim.rlim_max.max(want);
    let raised = libc::rlimit { rlim_cur: want, rlim_max: max };
    // SAFETY: setrlimit reads the struct we own. Raising the hard limit needs CAP_SYS_RESOURCE.
    unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 }
}

// ---------------------------------------------------------------------------------------------
// The connection limit
// ---------------------------------------------------------------------------------------------

/// Opens `count` sockets to `addr` that send nothing, 256 handshakes at a time, calling
/// `progress` with the number open so far every 500; returns them, to be held open.
async fn open_idle(
    addr: SocketAddr,
    count: usize,
    mut progress: impl FnMut(usize),
) -> Vec<TcpStream> {
    let mut idle = Vec::with_capacity(count);
    let mut opening = futures::stream::iter(0..count)
        .map(|_| async move {
            tokio::time::timeout(Duration::from_secs(30), TcpStream::connect(addr)).await
        })
        .buffer_unordered(256);
    while let Some(connected) = opening.next().await {
        idle.push(connected.expect("a connect within 30 s").expect("connect to the server"));
        if idle.len() % 500 == 0 || idle.len() == count {
            progress(idle.len());
        }
    }
    idle
}

/// The environment variable that turns this test binary into a holder of idle sockets.
const HOLD_VAR: &str = "AVBATCH_TEST_HOLD_IDLE";

/// Not a test on its own: the helper process of
/// `a_request_is_answered_promptly_while_20000_idle_sockets_are_open`, which runs this
/// binary again with `AVBATCH_TEST_HOLD_IDLE=ADDR,COUNT` when one process may not hold all the
/// sockets (an open-file hard limit this process cannot raise). It opens COUNT idle sockets to
/// ADDR, reports `opened N` as it goes and `held N` at the end on stdout, and holds them until its
/// stdin closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
#[ignore = "a helper process of \
            a_request_is_answered_promptly_while_20000_idle_sockets_are_open"]
async fn hold_idle_sockets_for_the_20000_sockets_test() {
    let Ok(spec) = std::env::var(HOLD_VAR) else {
        eprintln!("nothing to do without {HOLD_VAR}=ADDR,COUNT");
        return;
    };
    let (addr, count) = spec.split_once(',').expect("ADDR,COUNT");
    let addr: SocketAddr = addr.parse().expect("an address");
    let count: usize = count.parse().expect("a count");
    assert!(
        raise_own_nofile(count as u64 + 100),
        "the parent sized COUNT to this process's hard limit"
    );
    let idle = open_idle(addr, count, |n| println!("opened {n}")).await;
    println!("held {}", idle.len());
    // Hold them until the parent closes our stdin (or kills us).
    tokio::task::spawn_blocking(|| {
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut Vec::new())
    })
    .await
    .unwrap()
    .ok();
    drop(idle);
}

/// This process's hard open-file limit.
fn own_hard_nofile() -> u64 {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return 0;
    }
    lim.rlim_max
}

/// A helper process holding idle sockets; killed on drop.
struct Holder {
    child: Child,
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_is_answered_promptly_while_20000_idle_sockets_are_open() {
    const IDLE: usize = 20_000;
    let test_start = Instant::now();
    let data = tempfile::tempdir().unwrap();
    let server = Serve::start(&data.path().join("data"), &[], Some(1024));
    let addr = server.addr;
    let (status, alone) = timed_get(addr, Duration::from_secs(10)).await;
    assert_eq!(status, 200);

    // The sockets are held by this process when its open-file limit can be raised to hold them,
    // else spread over helper processes (this binary again), each within the hard limit.
    let (progress_tx, progress) = std::sync::mpsc::channel::<(usize, usize)>();
    let mut holders = Vec::new();
    let mut local = None;
    let mut how = String::new();
    if raise_own_nofile(IDLE as u64 + 1_000) {
        how.push_str("held by the test process");
        let tx = progress_tx.clone();
        local = Some(tokio::spawn(open_idle(addr, IDLE, move |n| {
            let _ = tx.send((0, n));
        })));
    } else {
        let per_process = (own_hard_nofile().saturating_sub(200) as usize).min(IDLE / 2);
        if per_process < 1_000 {
            common::cannot_run_here(&format!(
                "RLIMIT_NOFILE cannot be raised to {} here, and the hard limit ({}) is too low to \
                 spread {IDLE} sockets over a few processes",
                IDLE + 1_000,
                own_hard_nofile()
            ));
            return;
        }
        let n = IDLE.div_ceil(per_process);
        how = format!(
            "spread over {n} helper processes: the test process cannot raise RLIMIT_NOFILE above \
             its hard limit {}",
            own_hard_nofile()
        );
        for i in 0..n {
            let count = per_process.min(IDLE - i * per_process);
            let mut child = Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "hold_idle_sockets_for_the_20000_sockets_test",
                    "--ignored",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(HOLD_VAR, format!("{addr},{count}"))
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("start a helper process");
            let stdout = child.stdout.take().unwrap();
            let tx = progress_tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    if let Some(n) = line.strip_prefix("opened ").and_then(|n| n.parse().ok()) {
                        let _ = tx.send((i, n));
                    }
                }
            });
            holders.push(Holder { child });
        }
    }
    drop(progress_tx);

    // Wait for all of them, sending one request half-way.
    let mut open = vec![0usize; holders.len().max(1)];
    let mut during = None;
    while open.iter().sum::<usize>() < IDLE {
        assert!(
            test_start.elapsed() < Duration::from_secs(120),
            "opening {IDLE} sockets took over 120 s ({} open)",
            open.iter().sum::<usize>()
        );
        match progress.recv_timeout(Duration::from_millis(100)) {
            Ok((i, n)) => open[i] = n,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => continue,
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                panic!("the socket holders stopped at {open:?} of {IDLE}")
            }
        }
        if during.is_none() && open.iter().sum::<usize>() >= IDLE / 2 {
            during = Some(timed_get(addr, Duration::from_secs(10)).await);
        }
    }
    let opened_in = test_start.elapsed();

    let mut times = Vec::new();
    for _ in 0..5 {
        let (status, took) = timed_get(addr, Duration::from_secs(10)).await;
        assert_eq!(status, 200, "GET /videos with {IDLE} idle sockets open");
        times.push(took);
    }
    let (during_status, during_took) = during.expect("a request was sent half-way");
    println!(
        "GET /videos against `avbatch serve` under ulimit -n 1024: {alone:?} alone; \
         {during_took:?} while {IDLE} idle sockets were being opened (half-way); with {IDLE} idle \
         sockets open ({how}): {times:?} (max {:?}); opening them took {opened_in:?}",
        times.iter().max().unwrap()
    );
    assert_eq!(during_status, 200);
    assert!(times.iter().all(|t| *t < Duration::from_secs(1)), "answered promptly: {times:?}");
    let log = server.stderr();
    let tail = log.lines().rev().take(20).collect::<Vec<_>>().join("\n");
    assert!(!log.contains("Too many open files"), "the server ran out of descriptors:\n{tail}");
    assert!(
        log.contains("accepting connections max_connections=768"),
        "1024 descriptors less a quarter for files:\n{tail}"
    );
    // Every socket was still held while the requests were answered.
    match local {
        Some(task) => assert_eq!(task.await.unwrap().len(), IDLE),
        None => {
            for h in &mut holders {
                assert!(
                    h.child.try_wait().unwrap().is_none(),
                    "a helper process stopped holding its sockets"
                );
            }
        }
    }
    drop(holders);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_accept_runs_out_of_descriptors_it_closes_an_idle_connection_and_retries() {
    // More connections allowed than descriptors: accept itself fails with EMFILE once the 64
    // descriptors are used, the case the reserve for files is there to prevent.
    let data = tempfile::tempdir().unwrap();
    let server = Serve::start(&data.path().join("data"), &["--max-connections", "1000"], Some(64));
    let addr = server.addr;
    let mut idle = Vec::new();
    for _ in 0..100 {
        idle.push(TcpStream::connect(addr).await.unwrap());
    }
    // Each of these needs a descriptor the server no longer has; the head timeout (10 s) would
    // free some eventually, the EMFILE path frees them at once.
    for round in 0..3 {
        let (status, took) = timed_get(addr, Duration::from_secs(5)).await;
        assert_eq!(status, 200, "round {round}");
        assert!(took < Duration::from_secs(2), "round {round} waited {took:?} for a descriptor");
    }
    let log = server.stderr();
    assert!(
        log.contains("accept failed: closing an idle connection to make room"),
        "accept did hit EMFILE:\n{log}"
    );
    drop(idle);
}

// ---------------------------------------------------------------------------------------------
// Shutdown
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_the_server_within_seconds_whatever_its_clients_hold_open() {
    let root = tempfile::tempdir().unwrap();
    // 512 KiB/s each way: the in-flight upload below ends about 1 s after SIGTERM.
    let mut server = Serve::start(&root.path().join("data"), &["--bandwidth", "512KiB"], None);
    let addr = server.addr;
    let http = reqwest::Client::new();
    let url = format!("http://{addr}");
    let stalled_id = common::create_video_at(&http, &url, "stalled").await;
    let busy_id = common::create_video_at(&http, &url, "busy").await;

    // Idle keep-alive connections, a connection with no head, a client stalled mid-body.
    let mut kept = Vec::new();
    for _ in 0..3 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        assert_eq!(get_videos(&mut s).await.unwrap(), 200);
        kept.push(s);
    }
    let mut headless = TcpStream::connect(addr).await.unwrap();
    headless.write_all(b"GET /vid").await.unwrap();
    let (ct, body) = multipart_file("file", "stalled.mp4", &pattern(MIB, 6));
    let mut stalled = TcpStream::connect(addr).await.unwrap();
    stalled.write_all(upload_head(&stalled_id, &ct, body.len()).as_bytes()).await.unwrap();
    stalled.write_all(&body[..64 * 1024]).await.unwrap();
    // And a request in flight that finishes within the grace period.
    let data = pattern(MIB, 7);
    let (ct, body) = multipart_file("file", "busy.mp4", &data);
    let mut busy = TcpStream::connect(addr).await.unwrap();
    busy.write_all(upload_head(&busy_id, &ct, body.len()).as_bytes()).await.unwrap();
    let sending = tokio::spawn(async move {
        let _ = busy.write_all(&body).await;
        read_answer(&mut busy).await
    });
    tokio::time::sleep(Duration::from_millis(800)).await;

    server.signal(libc::SIGTERM);
    let exited = tokio::task::spawn_blocking(move || {
        let exit = server.wait_exit(Duration::from_secs(10));
        (exit, server)
    });
    let (exit, server) = exited.await.unwrap();
    let (code, took) =
        exit.unwrap_or_else(|| panic!("the server did not exit within 10 s of SIGTERM"));
    println!(
        "avbatch serve exited {took:?} after SIGTERM with 3 idle keep-alive connections, a \
         header-less one and a stalled body open"
    );
    assert_eq!(code, Some(0), "a clean exit:\n{}", server.stderr());
    assert!(took < Duration::from_secs(5), "exit within 5 s of SIGTERM, took {took:?}");
    let answered = tokio::time::timeout(Duration::from_secs(5), sending)
        .await
        .expect("the in-flight upload ends")
        .unwrap();
    assert_eq!(answered.expect("the in-flight upload was answered before the exit"), 201);
    for (what, s) in [("headless", &mut headless), ("stalled", &mut stalled)]
        .into_iter()
        .chain(kept.iter_mut().map(|s| ("kept", s)))
    {
        assert!(closed_within(s, Duration::from_millis(500)).await, "{what} was closed");
    }
    // The upload that finished is on disk; the stalled one left nothing.
    let restarted = Serve::start(&root.path().join("data"), &[], None);
    let url = format!("http://{}", restarted.addr);
    let back = http
        .get(format!("{url}/vod/{busy_id}/mp4/source.mp4"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(
        back.as_ref() == data.as_slice(),
        "the upload that finished during the grace period is stored"
    );
    let st: serde_json::Value = http
        .get(format!("{url}/videos/{stalled_id}/status"))
        .header("Authorization", basic_auth(KEY))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(st["ingest"].get("status"), None, "nothing of the stalled upload: {st}");
}
