//! Shared test helpers: start `avbatch serve` in-process or as a real process on 127.0.0.1:0.
#![allow(dead_code)]

pub mod azurite;
pub mod batch;
pub mod s3;
pub mod web;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use avbatch_api::secret::ApiKey;
use avbatch_serve::{RateLimits, Server, ServerConfig};

/// How a finished process ended and everything it printed, for an assertion's message.
pub fn text(o: &Output) -> String {
    format!(
        "{:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A test that cannot run on this machine says so: under CI (`CI` set, as CI runs `.ci/run`)
/// that fails the test, never a silent pass; elsewhere it prints `SKIPPED` and the test returns.
pub fn cannot_run_here(why: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("this test cannot run here, and CI requires it: {why}");
    }
    eprintln!("SKIPPED: {why}");
}

/// The API key every test server accepts.
pub const KEY: &str = "test-key-0123456789";
pub const MIB: usize = 1024 * 1024;

/// An in-process server on 127.0.0.1:0 with its own temporary data folder; shuts down on drop.
pub struct TestServer {
    pub server: Server,
    pub url: String,
    pub data: tempfile::TempDir,
    pub http: reqwest::Client,
}

/// A server with no rate limits and no faults.
pub async fn spawn_server() -> TestServer {
    spawn_server_with(|_| {}).await
}

/// A server whose config the caller adjusts (rate limits, faults, token ttl, …).
pub async fn spawn_server_with(adjust: impl FnOnce(&mut ServerConfig)) -> TestServer {
    let data = tempfile::tempdir().expect("temp dir");
    let mut config = ServerConfig::new(data.path());
    config.api_keys = vec![ApiKey::new(KEY)];
    config.rate_limits = RateLimits::off();
    adjust(&mut config);
    let server =
        Server::start(config, "127.0.0.1:0".parse().unwrap()).await.expect("server starts");
    let url = server.url().to_owned();
    TestServer { server, url, data, http: reqwest::Client::new() }
}

impl TestServer {
    /// `Authorization` value for Basic auth with the test key.
    pub fn basic(&self) -> String {
        basic_auth(KEY)
    }

    /// `GET path` with Basic auth; the answer must be 200 JSON. Tried again while the server's
    /// injected faults (503s, 429 storms) refuse it: the checks look at the server, not its dice.
    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        for _ in 0..100 {
            let resp = self
                .http
                .get(format!("{}{path}", self.url))
                .header("Authorization", self.basic())
                .send()
                .await
                .expect("GET reaches the server");
            if matches!(resp.status().as_u16(), 429 | 503) {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                continue;
            }
            assert_eq!(resp.status().as_u16(), 200, "GET {path} must answer 200");
            return resp.json().await.expect("GET answers JSON");
        }
        panic!("GET {path} kept answering 503/429")
    }

    /// `GET /videos/{id}/status`.
    pub async fn status_of(&self, id: &str) -> serde_json::Value {
        self.get_json(&format!("/videos/{id}/status")).await
    }

    /// Every video (first 100).
    pub async fn all_videos(&self) -> Vec<serde_json::Value> {
        self.get_json("/videos?pageSize=100").await["data"]
            .as_array()
            .expect("a data array")
            .clone()
    }

    /// A POST of `body` as JSON with Basic auth; the answer's JSON (whatever the status).
    pub async fn post_json(&self, path: &str, body: &serde_json::Value) -> serde_json::Value {
        let resp = self
            .http
            .post(format!("{}{path}", self.url))
            .header("Authorization", self.basic())
            .json(body)
            .send()
            .await;
        resp.unwrap_or_else(|e| panic!("POST {path} reaches the server: {e}"))
            .json()
            .await
            .unwrap_or_else(|e| panic!("POST {path} answers JSON: {e}"))
    }

    /// `POST /videos` with a title; returns the new video's id.
    pub async fn create_video(&self, title: &str) -> String {
        create_video_at(&self.http, &self.url, title).await
    }

    /// The stored source of a video, through the asset host.
    pub async fn source_of(&self, id: &str) -> Vec<u8> {
        self.http
            .get(format!("{}/vod/{id}/mp4/source.mp4", self.url))
            .send()
            .await
            .expect("GET source")
            .bytes()
            .await
            .expect("source bytes")
            .to_vec()
    }
}

/// `POST /videos` with a title on any server taking the test key (in-process or a child
/// process); returns the new video's id.
pub async fn create_video_at(http: &reqwest::Client, url: &str, title: &str) -> String {
    let resp = http
        .post(format!("{url}/videos"))
        .header("Authorization", basic_auth(KEY))
        .json(&serde_json::json!({ "title": title }))
        .send()
        .await
        .expect("POST /videos reaches the server");
    assert_eq!(resp.status().as_u16(), 201, "POST /videos {{title:{title:?}}} must answer 201");
    let v: serde_json::Value = resp.json().await.expect("POST /videos answers JSON");
    v["videoId"]
        .as_str()
        .unwrap_or_else(|| panic!("POST /videos answer has no videoId: {v}"))
        .to_owned()
}

pub fn basic_auth(key: &str) -> String {
    use base64::Engine;
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{key}:")))
}

/// Deterministic test content: `len` bytes that differ at every offset and between seeds.
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((i as u64).wrapping_mul(2654435761) >> 7) as u8 ^ seed ^ (i / 4093) as u8)
        .collect()
}

/// A multipart/form-data body with one file part (field `name`, file name `filename`).
/// Returns (content type, body).
pub fn multipart_file(name: &str, filename: &str, data: &[u8]) -> (String, Vec<u8>) {
    multipart(&[], Some((name, filename, data)), &[])
}

/// A multipart body: text fields before the file, an optional file, text fields after it.
pub fn multipart(
    before: &[(&str, &str)],
    file: Option<(&str, &str, &[u8])>,
    after: &[(&str, &str)],
) -> (String, Vec<u8>) {
    let boundary = "avbatchtestboundary7c1e0f";
    let mut body = Vec::new();
    let text = |body: &mut Vec<u8>, name: &str, value: &str| {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n\
                 {value}\r\n"
            )
            .as_bytes(),
        );
    };
    for (n, v) in before {
        text(&mut body, n, v);
    }
    if let Some((name, filename, data)) = file {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; \
                 filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    for (n, v) in after {
        text(&mut body, n, v);
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// `avbatch serve` as a real child process, so tests can `kill -9` it.
pub struct ServerProcess {
    pub child: Child,
    pub url: String,
}

/// Starts the binary on 127.0.0.1:0 with `data` and `extra` flags and waits for its address line.
pub fn spawn_server_process(data: &Path, extra: &[&str]) -> ServerProcess {
    let mut child = Command::new(env!("CARGO_BIN_EXE_avbatch"))
        .args(["serve", "--addr", "127.0.0.1:0", "--rate-limit", "off", "--data"])
        .arg(data)
        // The environment, not `--api-key`: the way the help recommends, with no warning.
        .env("AVBATCH_SERVE_API_KEYS", KEY)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn avbatch serve");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let url = loop {
        let line = lines.next().expect("server printed its address").expect("read stdout");
        if let Some(rest) = line.strip_prefix("listening on ") {
            break rest.trim().to_owned();
        }
    };
    // Keep draining stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    ServerProcess { child, url }
}

impl ServerProcess {
    /// SIGKILL: no shutdown code runs, exactly like a crash.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn data_dir_of(server: &TestServer) -> PathBuf {
    server.data.path().to_path_buf()
}

/// Runs `cmd` with its output collected, waiting at most `limit`: a hang fails the test instead
/// of stalling the suite. The child leads a process group of its own, and on overrun the whole
/// group (servers it started too) is killed. Output is drained as it comes, so a chatty child
/// never blocks on a full pipe.
pub fn run_bounded(mut cmd: Command, limit: std::time::Duration) -> std::process::Output {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let group = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output()));
    match rx.recv_timeout(limit) {
        Ok(out) => out.expect("collect the child's output"),
        Err(_) => {
            kill_group(group);
            let out =
                rx.recv().expect("the waiting thread answers").expect("collect the child's output");
            panic!(
                "{cmd:?} still ran after {limit:?}\n--- stdout\n{}\n--- stderr\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

/// SIGKILL to every process of the group `group` leads (see [`run_bounded`]).
pub fn kill_group(group: u32) {
    #[cfg(unix)]
    // SAFETY: kill(2) with a negated process-group id signals only that group, which a test
    // started with `process_group(0)`; no memory is involved.
    unsafe {
        libc::kill(-(group as i32), libc::SIGKILL);
    }
}

/// Runs `cmd` to its end, its stdout discarded and its stderr into `stderr`, and returns its
/// exit code and peak resident memory in KiB, from the kernel's own accounting (no sampling can
/// miss the peak).
///
/// Through a small Python parent: Linux charges a process with the peak of the memory it was
/// forked or spawned from too (exec keeps the old address space's high-water mark), and the test
/// process, which runs the whole suite, may be hundreds of MiB. Python's children start from
/// its own (about 10 MiB), and `RUSAGE_CHILDREN` is theirs alone.
pub fn peak_rss_kib(cmd: &Command, stderr: &Path) -> (Option<i32>, u64) {
    const PARENT: &str = "import resource, subprocess, sys\n\
        code = subprocess.call(sys.argv[2:])\n\
        with open(sys.argv[1], 'w') as f:\n\
        \x20   f.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))\n\
        sys.exit(code if code >= 0 else 128 - code)\n";
    let report = tempfile::NamedTempFile::new().unwrap();
    let mut through = Command::new("python3");
    through.arg("-c").arg(PARENT).arg(report.path()).arg(cmd.get_program()).args(cmd.get_args());
    for (name, value) in cmd.get_envs() {
        match value {
            Some(value) => through.env(name, value),
            None => through.env_remove(name),
        };
    }
    if let Some(dir) = cmd.get_current_dir() {
        through.current_dir(dir);
    }
    let status = through
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(stderr).unwrap())
        .status()
        .expect("run python3");
    let kib = std::fs::read_to_string(report.path()).unwrap_or_default();
    let kib = kib.trim().parse().unwrap_or_else(|_| panic!("python3 reported no peak: {status}"));
    (status.code(), kib)
}
