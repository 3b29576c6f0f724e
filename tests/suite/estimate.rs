//! Issue #15.5: `--dry-run` tells what a run will cost in requests, bucket by bucket, and the
//! least time the account's quotas allow. The estimate is checked against the requests a real
//! run then makes, as `avbatch serve --request-log` records them: uploads and writes exactly,
//! reads within the range it gives.

use crate::common;

use std::path::Path;
use std::time::Duration;

use common::batch::{avbatch, run, serve_on, ServeProcess};
use common::{pattern, KEY, MIB};
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(120);

/// Requests in the server's log since line `from`, by bucket: (uploads, writes, reads).
fn by_bucket(log: &Path, from: usize) -> ((u64, u64, u64), usize) {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut counts = (0, 0, 0);
    let lines: Vec<&str> = text.lines().collect();
    for line in &lines[from..] {
        let e: Value = serde_json::from_str(line).unwrap();
        let (method, path) = (e["method"].as_str().unwrap(), e["path"].as_str().unwrap());
        if path.starts_with("/auth/") {
            continue;
        }
        match method {
            "GET" => counts.2 += 1,
            "POST" if path.ends_with("/source") => counts.0 += 1,
            _ => counts.1 += 1,
        }
    }
    (counts, lines.len())
}

fn estimate(dir: &Path, url: &str) -> Value {
    let out = avbatch()
        .args(["upload", "manifest.csv", "--base-url", url, "--chunk-size", "5MiB"])
        .args(["--dry-run", "--json", "--assume-bandwidth", "80Mbit"])
        .current_dir(dir)
        .env("AVBATCH_API_KEY", KEY)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    plan["estimate"].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_estimate_counts_the_requests_a_run_makes() {
    let dir = tempfile::tempdir().unwrap();
    let at = |name: &str| dir.path().join(name);
    let fixture = |name: &str| {
        std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/texttrack").join(name),
        )
        .unwrap()
    };
    std::fs::write(at("en.vtt"), fixture("sample.en.vtt")).unwrap();
    std::fs::write(at("fr.srt"), fixture("sample.fr.srt")).unwrap();
    let mut csv = String::from("id,path,captions.en,captions.fr,captions_default,thumbnail_time\n");
    for i in 0..6 {
        // 1, 2 and 3 parts of 5 MiB, twice.
        std::fs::write(at(&format!("v{i}.mp4")), pattern((i % 3 + 1) * 5 * MIB - 7, i as u8))
            .unwrap();
        let assets = match i % 3 {
            0 => "en.vtt,fr.srt,fr,00:00:01",
            1 => "en.vtt,,,",
            _ => ",,,",
        };
        csv.push_str(&format!("row-{i},v{i}.mp4,{assets}\n"));
    }
    std::fs::write(at("manifest.csv"), csv).unwrap();
    let data = tempfile::tempdir().unwrap();
    let log = data.path().join("requests.jsonl");
    let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let serve = serve_on(
        &addr.to_string(),
        &data.path().join("d"),
        &["--request-log", log.to_str().unwrap()],
    )
    .await;

    let guess = estimate(dir.path(), &serve.url);
    let requests = &guess["requests"];
    // 2 × (1 + 2 + 3) parts; 6 creates, then per row of the first kind 4 assets and the
    // record, of the second 1 asset and the record.
    assert_eq!(requests["uploads"], 12, "{guess}");
    assert_eq!(requests["writes"], 6 + 2 * 5 + 2 * 2, "{guess}");
    assert_eq!(guess["quotas"]["uploadsPerMinute"], 100, "production's, by default");
    assert_eq!(guess["bytesPerSecond"], 10_000_000);
    // The dry run changed nothing: one read, for the account's rate limits (this server sends
    // none: `--rate-limit off`, so the estimate is production's).
    let (dry, dry_lines) = by_bucket(&log, 0);
    assert_eq!(dry, (0, 0, 1));
    assert!(guess["quotas"]["of"].as_str().unwrap().contains("no rate-limit headers"), "{guess}");

    let upload = |extra: &[&str]| {
        let mut cmd = avbatch();
        cmd.args(["upload", "manifest.csv", "--base-url", &serve.url, "--chunk-size", "5MiB"])
            .args(["-q", "-c", "2"])
            .args(extra)
            .current_dir(dir.path())
            .env("AVBATCH_API_KEY", KEY);
        cmd
    };
    let done = run(upload(&[]), LIMIT).await;
    assert_eq!(done.code, Some(0), "{}", done.text());
    let ((uploads, writes, reads), seen) = by_bucket(&log, dry_lines);
    assert_eq!(uploads, requests["uploads"].as_u64().unwrap(), "uploads");
    assert_eq!(writes, requests["writes"].as_u64().unwrap(), "writes");
    let (least, most) =
        (requests["readsAtLeast"].as_u64().unwrap(), requests["readsAtMost"].as_u64().unwrap());
    assert!((least..=most).contains(&reads), "{reads} reads, estimated {least} to {most}");

    // Once done, the estimate is nothing, and so is the run.
    let guess = estimate(dir.path(), &serve.url);
    assert_eq!(guess["requests"]["uploads"], 0, "{guess}");
    assert_eq!(guess["requests"]["writes"], 0, "{guess}");
    assert_eq!(guess["secondsAtLeast"], 0.0, "{guess}");
    let (_, seen) = by_bucket(&log, seen);
    let done = run(upload(&[]), LIMIT).await;
    assert_eq!(done.code, Some(0), "{}", done.text());
    let ((uploads, writes, _), _) = by_bucket(&log, seen);
    assert_eq!((uploads, writes), (0, 0));
}

#[test]
fn the_estimate_reads_as_time_under_the_quotas() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("path\n");
    // 150 files of 11 MiB: 450 parts of 5 MiB, over 4 minutes at the sandbox's 40 a minute.
    for i in 0..150 {
        let name = format!("v{i}.mp4");
        let f = std::fs::File::create(dir.path().join(&name)).unwrap();
        f.set_len(11 * MIB as u64).unwrap();
        csv.push_str(&name);
        csv.push('\n');
    }
    std::fs::write(dir.path().join("manifest.csv"), csv).unwrap();
    let out = avbatch()
        .args(["upload", "manifest.csv", "--env", "sandbox", "--chunk-size", "5MiB", "--dry-run"])
        .args(["--assume-bandwidth", "100Mbit"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(
            "estimate at api.video's sandbox quotas (40 uploads, 40 writes, 100 reads a minute):"
        ),
        "{text}"
    );
    // 410 parts past the first minute's 40, at 40 a minute: 10.25 minutes.
    assert!(text.contains("  450 upload requests: at least 11 min at 40 a minute"), "{text}");
    assert!(text.contains("  150 write requests: at least 3 min at 40 a minute"), "{text}");
    // 1.61 GiB at 12.5 MB/s: 138 s.
    assert!(text.contains("1.61 GiB at 11.92 MiB/s (100 Mbit/s): 3 min"), "{text}");
    assert!(text.contains("  at least 11 min in all"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_estimate_uses_the_quotas_the_account_answers_with() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("v.mp4"), pattern(3 * MIB, 7)).unwrap();
    std::fs::write(dir.path().join("manifest.csv"), "path\nv.mp4\n").unwrap();
    let data = tempfile::tempdir().unwrap();
    let serve = |name: &str, limits: &str| {
        let dir = data.path().join(name);
        let args = ["--addr", "127.0.0.1:0", "--api-key", KEY, "--rate-limit", limits];
        let mut args: Vec<&str> = args.to_vec();
        args.extend(["--data", dir.to_str().unwrap()]);
        ServeProcess::start(&args, &data.path().join(format!("{name}.log"))).unwrap()
    };
    let quotas = |of: &Value| {
        let q = &of["quotas"];
        let n = |k: &str| q[k].as_u64();
        (n("uploadsPerMinute"), n("writesPerMinute"), n("readsPerMinute"))
    };
    // A sandbox account, although the run says nothing of --env: its answers say so.
    let sandbox = serve("a", "sandbox");
    let guess = estimate(dir.path(), &sandbox.url);
    assert_eq!(quotas(&guess), (Some(40), Some(40), Some(100)), "{guess}");
    assert_eq!(guess["quotas"]["of"], "the account's sandbox (its X-RateLimit-Limit)");
    drop(sandbox);
    // A plan of its own: 250 reads a minute, the other buckets in production's proportions.
    let custom = serve("b", "uploads=10/60s,writes=20/60s,reads=250/60s");
    let guess = estimate(dir.path(), &custom.url);
    assert_eq!(quotas(&guess), (Some(50), Some(100), Some(250)), "{guess}");
}
