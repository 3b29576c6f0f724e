//! `avbatch bench` (issue #6) on a tiny library: it runs the real engine against a child
//! `avbatch serve` and reports its measurements. Speed is never asserted here.

use std::process::Command;

use serde_json::Value;

fn bench(cache: &std::path::Path, args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_avbatch"))
        .args(["bench", "--json", "--cache", cache.to_str().unwrap()])
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn bench_runs_each_profile_on_a_tiny_library_and_reports_its_measures() {
    let cache = tempfile::tempdir().unwrap();
    let r = bench(
        cache.path(),
        &[
            "--profile",
            "loopback",
            "--files",
            "3",
            "--size",
            "6MiB",
            "--max-size",
            "7MiB",
            "--chunk-size",
            "5MiB",
        ],
    );
    assert_eq!(
        (r["profile"].as_str(), r["files"].as_u64(), r["uploaded"].as_u64(), r["failed"].as_u64()),
        (Some("loopback"), Some(3), Some(3), Some(0))
    );
    let bytes = r["bytes"].as_u64().unwrap();
    assert!((18 << 20..=21 << 20).contains(&bytes), "{r}");
    // Per file: 2 parts and the create; for the run: the key check, one page indexing the
    // (empty) account, and one to three listings of the newest videos after creates.
    let requests = r["requests"].as_u64().unwrap();
    assert!(
        (3 * (2 + 1) + 1 + 1 + 1..=3 * (2 + 1) + 1 + 1 + 3).contains(&requests),
        "{requests} requests: {r}"
    );
    for field in ["mbPerS", "filesPerS", "requestsPerS", "cpuSeconds", "peakRss", "peakAnonRss"] {
        assert!(r[field].as_f64().is_some_and(|v| v > 0.0), "{field} measured: {r}");
    }
    assert!(r["serverFlags"].as_array().unwrap().iter().any(|f| f == "--discard"));

    // The library is cached: a second run reuses it (same files, same modification times).
    let files = || {
        let mut v: Vec<_> =
            std::fs::read_dir(cache.path()).unwrap().map(|e| e.unwrap().path()).collect();
        v.sort();
        v
    };
    let before = files();
    let lib = before[0].join("v000000.mp4");
    let mtime = std::fs::metadata(&lib).unwrap().modified().unwrap();
    bench(
        cache.path(),
        &[
            "--profile",
            "wan",
            "--files",
            "3",
            "--size",
            "6MiB",
            "--max-size",
            "7MiB",
            "--chunk-size",
            "5MiB",
            "--latency",
            "5ms",
            "--bandwidth",
            "64MiB",
        ],
    );
    assert_eq!(files(), before);
    assert_eq!(std::fs::metadata(&lib).unwrap().modified().unwrap(), mtime);

    let r =
        bench(cache.path(), &["--profile", "ratelimited", "--files", "20", "--content", "random"]);
    assert_eq!(r["uploaded"].as_u64(), Some(20));
    assert!(r["serverFlags"].as_array().unwrap().iter().any(|f| f == "all=100/1s"), "{r}");

    // Small files (issue #12): a create and an upload each, and the run's few listings.
    let r = bench(cache.path(), &["--profile", "small", "--files", "200"]);
    assert_eq!(
        (r["uploaded"].as_u64(), r["bytes"].as_u64()),
        (Some(200), Some(200 * 10 * 1024)),
        "{r}"
    );
    let per_file = r["requestsPerFile"].as_f64().unwrap();
    assert!((2.0..2.5).contains(&per_file), "about 2 requests per small file: {r}");
}

#[test]
fn bench_speaks_the_command_line_s_names_and_binary_units() {
    let cache = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_avbatch"))
        .args([
            "bench",
            "--cache",
            cache.path().to_str().unwrap(),
            "--profile",
            "small",
            "--files",
            "20",
        ])
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("profile small: 20 files") && text.contains("(sparse content)"),
        "{text}"
    );
    assert!(!text.contains("Small") && !text.contains("Sparse"), "no Rust names: {text}");
    assert!(text.contains("MiB/s") && !text.contains("MB/s"), "one unit convention: {text}");
}
