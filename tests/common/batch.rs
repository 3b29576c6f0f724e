//! Running the real `avbatch` binary on a batch of files and looking at the result through the
//! server's API: the helpers of the fault and real-service tests.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use avbatch_core::manifest::id_key;
use serde_json::{json, Value};

use super::{basic_auth, multipart_file, pattern, KEY};

// ---------------------------------------------------------------------------------------------
// Running the binary
// ---------------------------------------------------------------------------------------------

/// `avbatch` with none of the environment that could change what a test means.
pub fn avbatch() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_avbatch"));
    for var in [
        "RUST_LOG",
        "AVBATCH_API_KEY",
        "APIVIDEO_API_KEY",
        "AVBATCH_BASE_URL",
        "AVBATCH_ENV",
        "AVBATCH_UPLOAD_TOKEN",
        "AVBATCH_SERVE_ADDR",
        "AVBATCH_SERVE_DATA",
        "AVBATCH_SERVE_API_KEYS",
        "AVBATCH_NOTIFY_URL",
    ] {
        cmd.env_remove(var);
    }
    cmd.stdin(Stdio::null());
    cmd
}

/// How a process ended, with everything it printed.
#[derive(Debug)]
pub struct Done {
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Done {
    pub fn text(&self) -> String {
        format!(
            "exit {:?} signal {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.signal, self.stdout, self.stderr
        )
    }
}

/// A child whose stdout and stderr are drained by threads, so it never blocks on a full pipe.
pub struct Running {
    pub child: Child,
    pub out: std::thread::JoinHandle<Vec<u8>>,
    pub err: std::thread::JoinHandle<Vec<u8>>,
}

impl Running {
    pub fn start(mut cmd: Command) -> Running {
        let mut child =
            cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn avbatch");
        let mut so = child.stdout.take().unwrap();
        let mut se = child.stderr.take().unwrap();
        let out = std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = so.read_to_end(&mut v);
            v
        });
        let err = std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = se.read_to_end(&mut v);
            v
        });
        Running { child, out, err }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    pub fn collect(self, status: std::process::ExitStatus) -> Done {
        let stdout = String::from_utf8_lossy(&self.out.join().unwrap()).into_owned();
        let stderr = String::from_utf8_lossy(&self.err.join().unwrap()).into_owned();
        Done { code: status.code(), signal: status.signal(), stdout, stderr }
    }

    /// Waits for the exit, at most `limit`; past it the child is killed and the test fails.
    pub async fn finish(mut self, limit: Duration) -> Done {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return self.collect(status);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let status = self.child.wait().unwrap();
                let done = self.collect(status);
                panic!("avbatch did not finish within {limit:?} (killed)\n{}", done.text());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL, then what it printed so far.
    pub fn kill9(mut self) -> Done {
        let _ = self.child.kill();
        let status = self.child.wait().unwrap();
        self.collect(status)
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.pid().to_string()])
            .status()
            .expect("run kill")
            .success();
        assert!(ok, "kill {sig} {} failed", self.pid());
    }
}

/// Runs a command to its end (at most `limit`).
pub async fn run(cmd: Command, limit: Duration) -> Done {
    Running::start(cmd).finish(limit).await
}

// ---------------------------------------------------------------------------------------------
// A batch: files, manifest, report, journal
// ---------------------------------------------------------------------------------------------

pub struct Batch {
    pub dir: tempfile::TempDir,
    pub sources: Vec<Vec<u8>>,
}

impl Batch {
    /// `n` files `f{i}.mp4` of `size(i)` bytes and a manifest with ids `row-{i}`.
    pub fn new(n: usize, size: impl Fn(usize) -> usize) -> Batch {
        let dir = tempfile::tempdir().unwrap();
        let mut csv = String::from("id,path,title\n");
        let mut sources = Vec::new();
        for i in 0..n {
            let data = pattern(size(i), 40 + i as u8);
            std::fs::write(dir.path().join(format!("f{i}.mp4")), &data).unwrap();
            csv.push_str(&format!("row-{i},f{i}.mp4,Fault video {i}\n"));
            sources.push(data);
        }
        std::fs::write(dir.path().join("manifest.csv"), csv).unwrap();
        Batch { dir, sources }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn manifest(&self) -> PathBuf {
        self.path("manifest.csv")
    }

    pub fn report(&self) -> PathBuf {
        self.path("report.json")
    }

    pub fn total(&self) -> u64 {
        self.sources.iter().map(|s| s.len() as u64).sum()
    }

    /// `avbatch upload MANIFEST --base-url URL --chunk-size 5MiB -q --report report.json EXTRA`
    /// with the test key.
    pub fn upload(&self, url: &str, extra: &[&str]) -> Command {
        self.upload_reporting(url, &self.report(), extra)
    }

    /// The same with another report file.
    pub fn upload_reporting(&self, url: &str, report: &Path, extra: &[&str]) -> Command {
        self.command(url, report, "5MiB", extra)
    }

    /// The same with parts of `chunk` bytes.
    pub fn upload_cut(&self, url: &str, chunk: &str, extra: &[&str]) -> Command {
        self.command(url, &self.report(), chunk, extra)
    }

    fn command(&self, url: &str, report: &Path, chunk: &str, extra: &[&str]) -> Command {
        let mut cmd = avbatch();
        cmd.args([
            "upload",
            self.manifest().to_str().unwrap(),
            "--base-url",
            url,
            "--chunk-size",
            chunk,
            "-q",
            "--report",
        ])
        .arg(report)
        .args(extra)
        .env("AVBATCH_API_KEY", KEY);
        cmd
    }

    pub fn read_report(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.report()).expect("the report was written"))
            .expect("the report is JSON")
    }

    /// `avbatch status MANIFEST --json`; `None` while there is no journal yet.
    pub fn status(&self) -> Option<Value> {
        let out = avbatch()
            .args(["status", self.manifest().to_str().unwrap(), "--json"])
            .output()
            .unwrap();
        if !out.status.success() {
            return None;
        }
        serde_json::from_slice(&out.stdout).ok()
    }

    /// Bytes the journal records as acknowledged.
    pub fn journal_bytes(&self) -> u64 {
        self.status().and_then(|s| s["bytesDone"].as_u64()).unwrap_or(0)
    }

    /// Waits until the journal records at least `bytes` acknowledged bytes (or the run ends).
    pub async fn wait_for_progress(&self, run: &mut Running, bytes: u64, limit: Duration) -> u64 {
        let deadline = Instant::now() + limit;
        loop {
            let done = self.journal_bytes();
            if done >= bytes || !run.running() {
                return done;
            }
            assert!(
                Instant::now() < deadline,
                "the journal never reached {bytes} bytes (at {done})"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Looking at a server through its API
// ---------------------------------------------------------------------------------------------

pub fn http() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap()
}

/// An authenticated GET of the API, tried again while the server's injected faults (503s,
/// storms, gateway errors, lost answers) refuse it: the checks look at the server, not at its
/// dice.
pub async fn get_api(url: String) -> reqwest::Response {
    for _ in 0..100 {
        match http().get(&url).header("Authorization", basic_auth(KEY)).send().await {
            Ok(resp) if !matches!(resp.status().as_u16(), 429 | 502 | 503 | 504) => return resp,
            Ok(_) => {}
            // `--lose-rate` drops the connection instead of answering.
            Err(e) if e.is_request() || e.is_body() => {}
            Err(e) => panic!("GET {url}: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("GET {url} kept failing");
}

/// Every video on the server at `url` (the batches here stay under one page of 100).
pub async fn list_videos(url: &str) -> Vec<Value> {
    let mut all = Vec::new();
    for page in 1.. {
        let resp = get_api(format!("{url}/videos?pageSize=100&currentPage={page}")).await;
        assert_eq!(resp.status().as_u16(), 200, "GET /videos");
        let v: Value = resp.json().await.unwrap();
        all.extend(v["data"].as_array().unwrap().iter().cloned());
        if page >= v["pagination"]["pagesTotal"].as_u64().unwrap() {
            break;
        }
    }
    all
}

/// A video's source, through the asset host: a private video's through the token a GET of it
/// gives, as a player reads it.
pub async fn source_of(url: &str, id: &str) -> Vec<u8> {
    let mut resp =
        http().get(format!("{url}/vod/{id}/mp4/source.mp4")).send().await.expect("GET source");
    if resp.status().as_u16() == 403 {
        let video: Value = get_api(format!("{url}/videos/{id}")).await.json().await.unwrap();
        let private = super::private_source_url(url, id, &video).expect("a private video's token");
        resp = http().get(private).send().await.expect("GET source");
    }
    assert_eq!(resp.status().as_u16(), 200, "the source of {id} is served");
    resp.bytes().await.expect("source bytes").to_vec()
}

/// The server's own record of the bytes it holds for a video.
pub async fn held_bytes(url: &str, id: &str) -> u64 {
    let resp = get_api(format!("{url}/videos/{id}/status")).await;
    assert_eq!(resp.status().as_u16(), 200);
    let status: Value = resp.json().await.unwrap();
    status["ingest"]["receivedBytes"]
        .as_array()
        .map(|a| {
            a.iter().map(|r| r["to"].as_u64().unwrap() - r["from"].as_u64().unwrap() + 1).sum()
        })
        .unwrap_or(0)
}

/// Every row exactly once on the server (by count, by key and by the report's videoIds), and
/// every source byte for byte identical to its file. Sources are fetched in parallel, since a
/// bandwidth-capped server caps each connection.
pub async fn assert_exactly_once(url: &str, batch: &Batch) {
    assert_exactly_once_besides(url, batch, 0).await
}

/// The same on a server that also holds `others` videos no row made (they carry no key).
pub async fn assert_exactly_once_besides(url: &str, batch: &Batch, others: usize) {
    let all = list_videos(url).await;
    let n = batch.sources.len();
    assert_eq!(
        all.len(),
        n + others,
        "one video per row, no duplicates: {}",
        json!(all.iter().map(|v| &v["videoId"]).collect::<Vec<_>>())
    );
    let keyed = |v: &&Value| {
        v["metadata"].as_array().is_some_and(|m| m.iter().any(|m| m["key"] == "avbatch_key"))
    };
    let videos: Vec<Value> = all.iter().filter(keyed).cloned().collect();
    assert_eq!(videos.len(), n, "{others} videos without a key besides the rows'");
    let mut by_key: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for v in &videos {
        let key = v["metadata"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["key"] == "avbatch_key")
            .and_then(|m| m["value"].as_str())
            .unwrap_or_else(|| panic!("video without an avbatch_key: {v}"))
            .to_owned();
        by_key.entry(key).or_default().push(v["videoId"].as_str().unwrap().to_owned());
    }
    let keys: BTreeSet<String> = (0..n).map(|i| id_key(&format!("row-{i}"))).collect();
    assert_eq!(by_key.keys().cloned().collect::<BTreeSet<_>>(), keys, "one video per row key");
    assert!(by_key.values().all(|ids| ids.len() == 1), "a key has several videos: {by_key:?}");

    let rep = batch.read_report();
    let rows = rep["rows"].as_array().unwrap();
    assert_eq!(rows.len(), n);
    let mut ids = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        assert!(
            row["status"] == "uploaded" || row["status"] == "skipped",
            "row {i} is not done: {row}"
        );
        let id = row["videoId"]
            .as_str()
            .unwrap_or_else(|| panic!("row {i} has no videoId: {row}"))
            .to_owned();
        assert_eq!(
            by_key[&id_key(&format!("row-{i}"))],
            vec![id.clone()],
            "the report's video of row {i} is the one made for its key"
        );
        ids.push(id);
    }
    let fetches = ids.iter().map(|id| source_of(url, id));
    let backs = futures::future::join_all(fetches).await;
    for (i, back) in backs.iter().enumerate() {
        assert_eq!(back.len(), batch.sources[i].len(), "row {i}: the source length differs");
        assert!(back == &batch.sources[i], "row {i}: the source differs from its file");
    }
}

// ---------------------------------------------------------------------------------------------
// `avbatch serve` as a process, on a chosen address
// ---------------------------------------------------------------------------------------------

/// `avbatch serve` as a child process; killed (SIGKILL) on drop.
pub struct ServeProcess {
    pub child: Child,
    pub url: String,
}

impl ServeProcess {
    /// Starts `avbatch serve ARGS` and waits (at most 15 s) for its `listening on` line. `Err`
    /// holds what it printed when it exits first (e.g. the port is still taken).
    pub fn start(args: &[&str], log: &Path) -> Result<ServeProcess, String> {
        let log_file = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
        let mut child = avbatch()
            .arg("serve")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file))
            .spawn()
            .expect("spawn avbatch serve");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let (false, Some(rest)) = (sent, line.strip_prefix("listening on ")) {
                    let _ = tx.send(rest.trim().to_owned());
                    sent = true;
                }
            }
        });
        match rx.recv_timeout(Duration::from_secs(15)) {
            Ok(url) => Ok(ServeProcess { child, url }),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(std::fs::read_to_string(log).unwrap_or_default())
            }
        }
    }

    /// `host:port` of the listening socket.
    pub fn addr(&self) -> String {
        self.url.strip_prefix("http://").unwrap().to_owned()
    }

    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `avbatch serve --addr ADDR --data DATA --api-key KEY --rate-limit off EXTRA`, retried for up to
/// 15 s while the address is not free yet.
pub async fn serve_on(addr: &str, data: &Path, extra: &[&str]) -> ServeProcess {
    let log = data.with_extension("log");
    let mut args = vec![
        "--addr",
        addr,
        "--api-key",
        KEY,
        "--rate-limit",
        "off",
        "--data",
        data.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match ServeProcess::start(&args, &log) {
            Ok(s) => return s,
            Err(log) if Instant::now() < deadline => {
                eprintln!(
                    "serve on {addr} did not start yet, retrying: {}",
                    log.lines().last().unwrap_or("")
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(log) => panic!("avbatch serve never started on {addr}:\n{log}"),
        }
    }
}

/// Makes a video carrying `key` under metadata `field` on the server at `url`, holding the first
/// `upto` bytes of `data` (0: none, `data.len()`: all). Returns its id.
pub async fn video_holding_under(
    url: &str,
    field: &str,
    key: &str,
    data: &[u8],
    upto: usize,
) -> String {
    let http = http();
    let created: Value = http
        .post(format!("{url}/videos"))
        .header("Authorization", basic_auth(KEY))
        .json(&json!({"title": format!("held {upto}"), "metadata": [{"key": field, "value": key}]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["videoId"].as_str().unwrap().to_owned();
    if upto > 0 {
        let (ctype, body) = multipart_file("file", "f.mp4", &data[..upto]);
        let resp = http
            .post(format!("{url}/videos/{id}/source"))
            .header("Authorization", basic_auth(KEY))
            .header("Content-Type", ctype)
            .header("Content-Range", format!("bytes 0-{}/{}", upto - 1, data.len()))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 201, "{}", resp.text().await.unwrap());
    }
    id
}
