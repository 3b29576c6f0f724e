//! `avbatch bench`: the real upload engine against a local `avbatch serve` with a network
//! profile, on a synthetic library, measured from the inside: throughput, requests, 429s, CPU
//! seconds and peak memory of the uploading process alone (the server runs as a child process).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use indicatif::HumanBytes;
use rand::{RngCore, SeedableRng};
use serde::Serialize;

use crate::cli::{BenchArgs, Content, Profile};

/// One benchmark's result.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BenchResult {
    /// Profile measured.
    pub profile: Profile,
    /// Files in the library.
    pub files: usize,
    /// Bytes in the library.
    pub bytes: u64,
    /// Content kind.
    pub content: Content,
    /// Videos at once.
    pub concurrency: usize,
    /// Part size.
    pub chunk_size: u64,
    /// The server's flags.
    pub server_flags: Vec<String>,
    /// Rows uploaded.
    pub uploaded: usize,
    /// Rows failed.
    pub failed: usize,
    /// Wall seconds of the upload.
    pub seconds: f64,
    /// 10^6 bytes per second.
    pub mb_per_s: f64,
    /// Files per second.
    pub files_per_s: f64,
    /// Requests sent.
    pub requests: u64,
    /// Requests per second.
    pub requests_per_s: f64,
    /// Requests per file uploaded (the key check included).
    pub requests_per_file: f64,
    /// Uploads (`POST …/source`) per second: what a rate-limited run sustains.
    pub uploads_per_s: f64,
    /// Answers 429.
    pub throttled: u64,
    /// Retries.
    pub retries: u64,
    /// CPU seconds of this process during the upload (user + sys).
    pub cpu_seconds: f64,
    /// User CPU seconds.
    pub cpu_user: f64,
    /// System CPU seconds.
    pub cpu_sys: f64,
    /// Peak resident set during the upload, bytes (VmHWM, mapped file pages included).
    pub peak_rss: u64,
    /// Peak anonymous resident memory during the upload, bytes (sampled every 10 ms).
    pub peak_anon_rss: u64,
}

struct ServerChild(Child);

impl Drop for ServerChild {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn defaults(profile: Profile) -> (usize, u64) {
    match profile {
        Profile::Loopback => (8, 256 << 20),
        Profile::Wan => (16, 32 << 20),
        Profile::Ratelimited => (1000, 100 << 10),
        Profile::Small => (2000, 10 << 10),
    }
}

fn server_flags(args: &BenchArgs) -> Vec<String> {
    let (latency, bandwidth, limits) = match args.profile {
        Profile::Loopback | Profile::Small => (None, None, "off".to_owned()),
        Profile::Wan => (Some(Duration::from_millis(50)), Some(10 << 20), "off".to_owned()),
        Profile::Ratelimited => (None, None, "all=100/1s".to_owned()),
    };
    let mut flags = vec!["--rate-limit".to_owned(), args.rate_limit.clone().unwrap_or(limits)];
    if let Some(l) = args.latency.or(latency) {
        flags.extend(["--latency".to_owned(), format!("{}ms", l.as_millis())]);
    }
    if let Some(b) = args.bandwidth.or(bandwidth) {
        flags.extend(["--bandwidth".to_owned(), b.to_string()]);
    }
    if !args.store {
        flags.push("--discard".to_owned());
    }
    flags
}

fn cache_root(args: &BenchArgs) -> PathBuf {
    if let Some(c) = &args.cache {
        return c.clone();
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("avbatch").join("bench")
}

/// The library's folder with its manifest, made once per set of parameters.
fn library(args: &BenchArgs, files: usize, min: u64, max: u64) -> anyhow::Result<(PathBuf, u64)> {
    let content = match args.content {
        Content::Sparse => "sparse",
        Content::Random => "random",
    };
    let dir = cache_root(args).join(format!("{files}x{min}-{max}-{content}-seed{}", args.seed));
    let mut rng = rand::rngs::SmallRng::seed_from_u64(args.seed);
    let sizes: Vec<u64> = (0..files)
        .map(|_| if max > min { min + rng.next_u64() % (max - min + 1) } else { min })
        .collect();
    let total = sizes.iter().sum();
    if dir.join("complete").exists() {
        return Ok((dir, total));
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
    let mut manifest = String::from("path,id,title\n");
    let mut buf = vec![0u8; 1 << 20];
    for (i, size) in sizes.iter().enumerate() {
        let name = format!("v{i:06}.mp4");
        let path = dir.join(&name);
        let file = std::fs::File::create(&path)
            .with_context(|| format!("cannot create `{}`", path.display()))?;
        match args.content {
            Content::Sparse => file.set_len(*size)?,
            Content::Random => {
                let mut out = std::io::BufWriter::new(file);
                let mut fill = rand::rngs::SmallRng::seed_from_u64(
                    args.seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
                );
                let mut left = *size;
                while left > 0 {
                    let n = left.min(buf.len() as u64) as usize;
                    fill.fill_bytes(&mut buf[..n]);
                    out.write_all(&buf[..n])?;
                    left -= n as u64;
                }
                out.flush()?;
            }
        }
        manifest.push_str(&format!("{name},bench-{i},{name}\n"));
    }
    std::fs::write(dir.join("manifest.csv"), manifest)?;
    std::fs::write(dir.join("complete"), b"")?;
    Ok((dir, total))
}

fn start_server(flags: &[String], data: &Path, key: &str) -> anyhow::Result<(ServerChild, String)> {
    let exe = std::env::current_exe().context("cannot find the avbatch binary")?;
    let mut child = Command::new(exe)
        .args(["serve", "--addr", "127.0.0.1:0", "--data"])
        .arg(data)
        .args(flags)
        .env("AVBATCH_SERVE_API_KEYS", key)
        .env("RUST_LOG", "avbatch=warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("cannot start avbatch serve")?;
    let stdout = child.stdout.take().expect("piped stdout");
    let guard = ServerChild(child);
    let mut lines = BufReader::new(stdout).lines();
    let url = loop {
        match lines.next() {
            Some(Ok(line)) => {
                if let Some(url) = line.strip_prefix("listening on ") {
                    break url.trim().to_owned();
                }
            }
            _ => bail!("avbatch serve stopped before listening"),
        }
    };
    // Keep draining its stdout so it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Ok((guard, url))
}

#[cfg(target_os = "linux")]
fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

#[cfg(not(target_os = "linux"))]
fn status_kib(_field: &str) -> u64 {
    0
}

fn cpu_times() -> (f64, f64) {
    // SAFETY: getrusage writes into the zeroed struct it is given.
    let usage = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut u);
        u
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (secs(usage.ru_utime), secs(usage.ru_stime))
}

/// Runs the benchmark; prints the result.
pub async fn run(args: &BenchArgs) -> super::Outcome {
    Ok(bench(args).await?)
}

async fn bench(args: &BenchArgs) -> anyhow::Result<super::Exit> {
    let (files, size) = defaults(args.profile);
    let files = args.files.unwrap_or(files);
    let min = args.size.unwrap_or(size);
    let max = args.max_size.unwrap_or(min).max(min);
    if files == 0 {
        bail!("--files must be at least 1");
    }
    let generated = Instant::now();
    let (dir, total) = tokio::task::spawn_blocking({
        let (a, f) = (args.clone(), files);
        move || library(&a, f, min, max)
    })
    .await??;
    tracing::info!(
        dir = %dir.display(),
        seconds = generated.elapsed().as_secs_f64(),
        "library ready"
    );

    let concurrency =
        args.concurrency.unwrap_or_else(|| crate::config::default_concurrency(files as u64, total));
    let flags = server_flags(args);
    // The test server's records go to memory (/dev/shm) where there is one: a server that
    // makes two inodes a video on the machine's disk would measure that disk, not the client.
    let shm = Path::new("/dev/shm");
    let data = match shm.is_dir() {
        true => tempfile::Builder::new().prefix("avbatch-bench-").tempdir_in(shm),
        false => tempfile::Builder::new().prefix("avbatch-bench-").tempdir(),
    }?;
    let key = format!("bench-{:016x}", rand::random::<u64>());
    let (server, url) = start_server(&flags, data.path(), &key)?;
    let report = data.path().join("report.json");
    let config = upload_config(args, &dir.join("manifest.csv"), &url, &key, concurrency, &report)?;
    let (measured, report) = measure(&config).await?;
    drop(server);
    let report = report.context("the upload stopped before it started")?;
    let s = &report.summary;
    let seconds = measured.seconds;
    let result = BenchResult {
        profile: args.profile,
        files,
        bytes: total,
        content: args.content,
        concurrency,
        chunk_size: args.chunk_size,
        server_flags: flags,
        uploaded: s.uploaded,
        failed: s.failed,
        seconds: round3(seconds),
        mb_per_s: round3(s.bytes as f64 / 1e6 / seconds),
        files_per_s: round3(s.uploaded as f64 / seconds),
        requests: s.requests,
        requests_per_s: round3(s.requests as f64 / seconds),
        requests_per_file: round3(s.requests as f64 / s.uploaded.max(1) as f64),
        uploads_per_s: round3(report.parts as f64 / seconds),
        throttled: s.throttled,
        retries: s.retries,
        cpu_seconds: round3(measured.cpu_user + measured.cpu_sys),
        cpu_user: round3(measured.cpu_user),
        cpu_sys: round3(measured.cpu_sys),
        peak_rss: measured.peak_rss,
        peak_anon_rss: measured.peak_anon_rss,
    };
    match args.json {
        true => println!("{}", serde_json::to_string_pretty(&result)?),
        false => result.print(),
    }
    Ok(if result.failed == 0 && result.uploaded == files {
        super::Exit::Done
    } else {
        super::Exit::SomeFailed
    })
}

/// The upload the benchmark measures, made as `avbatch upload` makes it from its flags.
fn upload_config(
    args: &BenchArgs,
    manifest: &Path,
    url: &str,
    key: &str,
    concurrency: usize,
    report: &Path,
) -> anyhow::Result<crate::config::UploadConfig> {
    let argv = [
        "avbatch".to_owned(),
        "upload".to_owned(),
        manifest.display().to_string(),
        "--base-url".to_owned(),
        url.to_owned(),
        "--no-journal".to_owned(),
        "-q".to_owned(),
        "-c".to_owned(),
        concurrency.to_string(),
        "--chunk-size".to_owned(),
        args.chunk_size.to_string(),
        "--report".to_owned(),
        report.display().to_string(),
    ];
    let cli =
        <crate::cli::Cli as clap::Parser>::try_parse_from(argv).context("building the upload")?;
    let crate::cli::Command::Upload(upload) = cli.command else { unreachable!("parsed an upload") };
    crate::config::UploadConfig::from_args(&upload, &|v| {
        (v == "AVBATCH_API_KEY").then(|| key.to_owned())
    })
    .map_err(|e| anyhow::anyhow!(e.message))
}

/// What the upload cost this process: time, CPU and memory.
struct Measured {
    seconds: f64,
    cpu_user: f64,
    cpu_sys: f64,
    peak_rss: u64,
    peak_anon_rss: u64,
}

/// Runs the upload alone under measurement: the peak reset, anonymous memory sampled, the CPU
/// timed.
async fn measure(
    config: &crate::config::UploadConfig,
) -> anyhow::Result<(Measured, Option<crate::output::report::RunTotals>)> {
    #[cfg(target_os = "linux")]
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let sampling = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let sampling = sampling.clone();
        std::thread::spawn(move || {
            let mut peak = 0;
            while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(status_kib("RssAnon:"));
                std::thread::sleep(Duration::from_millis(10));
            }
            peak.max(status_kib("RssAnon:"))
        })
    };
    let (user0, sys0) = cpu_times();
    let started = Instant::now();
    let report = crate::commands::upload::execute(config, false).await?.totals;
    let seconds = started.elapsed().as_secs_f64();
    let (user1, sys1) = cpu_times();
    sampling.store(false, std::sync::atomic::Ordering::Relaxed);
    let peak_anon_rss = sampler.join().unwrap_or(0) * 1024;
    let peak_rss = status_kib("VmHWM:") * 1024;
    let (cpu_user, cpu_sys) = (user1 - user0, sys1 - sys0);
    Ok((Measured { seconds, cpu_user, cpu_sys, peak_rss, peak_anon_rss }, report))
}

impl BenchResult {
    /// The result in three lines, for a person.
    fn print(&self) {
        let r = self;
        println!(
            "profile {}: {} files, {} ({} content), concurrency {}, parts of {}; server {}",
            value_name(r.profile),
            r.files,
            HumanBytes(r.bytes),
            value_name(r.content),
            r.concurrency,
            HumanBytes(r.chunk_size),
            r.server_flags.join(" ")
        );
        println!(
            "uploaded {}/{} in {:.2} s: {}/s, {:.1} files/s, {:.1} requests/s ({:.1} uploads/s, \
             {:.2} requests per file), {} answered 429, {} retries",
            r.uploaded,
            r.files,
            r.seconds,
            HumanBytes((r.bytes as f64 / r.seconds.max(1e-3)) as u64),
            r.files_per_s,
            r.requests_per_s,
            r.uploads_per_s,
            r.requests_per_file,
            r.throttled,
            r.retries
        );
        println!(
            "client CPU {:.2} s (user {:.2} + sys {:.2}), peak RSS {}, peak anonymous RSS {}",
            r.cpu_seconds,
            r.cpu_user,
            r.cpu_sys,
            HumanBytes(r.peak_rss),
            HumanBytes(r.peak_anon_rss)
        );
    }
}

fn round3(x: f64) -> f64 {
    if x.is_finite() {
        (x * 1000.0).round() / 1000.0
    } else {
        0.0
    }
}

/// The name a value has on the command line (`loopback`, `sparse`).
fn value_name(value: impl clap::ValueEnum) -> String {
    value.to_possible_value().map_or_else(String::new, |v| v.get_name().to_owned())
}
