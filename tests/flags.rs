//! Issue #11: the command line itself. Absurd numbers are usage errors (exit 2, never a panic)
//! and long values are cut in messages: the real binary, which must stop before it could reach
//! any network.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::run_bounded;

/// avbatch with no credentials or log settings from the environment running the tests.
fn avbatch() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_avbatch"));
    for var in ["AVBATCH_API_KEY", "APIVIDEO_API_KEY", "AVBATCH_UPLOAD_TOKEN", "AVBATCH_SERVE_API_KEYS", "RUST_LOG"] {
        cmd.env_remove(var);
    }
    cmd.stdin(Stdio::null());
    cmd
}

fn text(o: &Output) -> String {
    format!("--- stdout\n{}\n--- stderr\n{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

// ---------------------------------------------------------------------------------------------
// Bounds
// ---------------------------------------------------------------------------------------------

fn with<'a>(command: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
    [command, extra].concat()
}

#[test]
fn issue_11_absurd_flag_values_are_usage_errors_that_say_the_range() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ok.mp4"), b"video").unwrap();
    let manifest = dir.path().join("m.csv");
    std::fs::write(&manifest, "path\nok.mp4\n").unwrap();
    let m = manifest.to_str().unwrap();
    let cache = dir.path().join("bench-cache");
    let cache = cache.to_str().unwrap();
    let journal = dir.path().join("j.sqlite");
    let journal = journal.to_str().unwrap();
    let conc = "from 1 to 1024";
    let bw = "from 1KiB to 100GiB";
    // (arguments, the flag the message names, the range it states). An upload goes to
    // `--env local`, so whatever slipped through would run against a server of its own.
    let upload = ["upload", m, "--env", "local"];
    let serve = ["serve", "--addr", "127.0.0.1:0", "--data", cache];
    let bench = ["bench", "--cache", cache];
    let rate = "from 0.001 to 1000000";
    let timeout = "from 100ms to 1h";
    let quota = "from 1 to 1000000 requests in a window from 1ms to 1day";
    let storm = "at least 1ms and starts at most every 1day";
    let cases: Vec<(Vec<&str>, &str, &str)> = vec![
        (with(&upload, &["--rate", "1e300"]), "--rate", rate),
        (with(&upload, &["--rate", "1e-300"]), "--rate", rate),
        (with(&upload, &["--rate", "0"]), "--rate", rate),
        (with(&upload, &["--rate", "NaN"]), "--rate", rate),
        (with(&upload, &["--concurrency", "18446744073709551615"]), "--concurrency", conc),
        (with(&upload, &["-c", "0"]), "--concurrency", conc),
        (with(&upload, &["-c", "99999999999999999999999"]), "--concurrency", conc),
        (with(&upload, &["--timeout", "18446744073709551615s"]), "--timeout", timeout),
        (with(&upload, &["--timeout", "0s"]), "--timeout", timeout),
        (with(&upload, &["--bandwidth", "18446744073709551615"]), "--bandwidth", bw),
        (with(&upload, &["--bandwidth", "0"]), "--bandwidth", bw),
        (with(&upload, &["--chunk-size", "18446744073709551615"]), "--chunk-size", "from 5MiB to 200MiB"),
        (with(&upload, &["--chunk-size", "1MiB"]), "--chunk-size", "from 5MiB to 200MiB"),
        (with(&upload, &["--retries", "4294967295"]), "--retries", "from 0 to 1000"),
        (with(&upload, &["--retries=-1"]), "--retries", "from 0 to 1000"),
        (with(&upload, &["--shard", "0/99999999999"]), "--shard", "N from 1 to 4294967295"),
        (with(&serve, &["--latency", "18446744073709551615s"]), "--latency", "from 0s to 1h"),
        (with(&serve, &["--token-ttl", "18446744073709551615s"]), "--token-ttl", "from 1s to 7days"),
        (with(&serve, &["--token-ttl", "0s"]), "--token-ttl", "from 1s to 7days"),
        (with(&serve, &["--bandwidth", "18446744073709551615"]), "--bandwidth", bw),
        (with(&serve, &["--storm", "18446744073709551615s:1s"]), "--storm", storm),
        (with(&serve, &["--storm", "2s:1ns"]), "--storm", storm),
        (with(&serve, &["--rate-limit", "all=4294967295/1s"]), "--rate-limit", quota),
        (with(&serve, &["--rate-limit", "uploads=1/18446744073709551615s"]), "--rate-limit", quota),
        (with(&serve, &["--fail-rate", "NaN"]), "--fail-rate", "from 0 to 1"),
        (with(&serve, &["--seed", "18446744073709551616"]), "--seed", "from 0 to 18446744073709551615"),
        (with(&bench, &["--files", "18446744073709551615"]), "--files", "from 1 to 1000000"),
        (with(&bench, &["--files", "0"]), "--files", "from 1 to 1000000"),
        (with(&bench, &["--size", "0"]), "--size", "from 1 byte to 30GiB"),
        (with(&bench, &["--max-size", "1TiB"]), "--max-size", "from 1 byte to 30GiB"),
        (with(&bench, &["-c", "0"]), "--concurrency", conc),
        (with(&bench, &["--chunk-size", "1GiB"]), "--chunk-size", "from 5MiB to 200MiB"),
        (with(&bench, &["--latency", "18446744073709551615s"]), "--latency", "from 0s to 1h"),
        (with(&bench, &["--bandwidth", "18446744073709551615"]), "--bandwidth", bw),
        (with(&bench, &["--rate-limit", "all=0/1s"]), "--rate-limit", "the count must be at least 1"),
        (with(&bench, &["--rate-limit", "all=1/1ns"]), "--rate-limit", quota),
        (with(&bench, &["--seed=-1"]), "--seed", "from 0 to 18446744073709551615"),
        (vec!["status", m, "--shard", "0/99999999999"], "--shard", "N from 1 to 4294967295"),
        (vec!["status", "--journal", journal, "--shard", "2/1"], "--shard", "shards are numbered from 0 to 0"),
    ];
    let mut wrong = Vec::new();
    for (args, flag, range) in &cases {
        let mut cmd = avbatch();
        cmd.args(args);
        let out = run_bounded(cmd, Duration::from_secs(20));
        let err = String::from_utf8_lossy(&out.stderr);
        if out.status.code() != Some(2) || !err.contains(flag) || !err.contains(range) || err.contains("panicked") {
            wrong.push(format!("{args:?}: exit {:?}, expected 2 naming `{flag}` and `{range}`:\n{}", out.status.code(), text(&out)));
        }
    }
    assert!(wrong.is_empty(), "{} of {} cases:\n{}", wrong.len(), cases.len(), wrong.join("\n"));
    assert!(!Path::new(cache).exists() || std::fs::read_dir(cache).unwrap().next().is_none(), "no bench library may be made");
}

#[test]
fn issue_11_long_flag_values_are_cut_in_messages() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("m.csv");
    std::fs::write(&manifest, "path\n").unwrap();
    let m = manifest.to_str().unwrap();
    // Under the 128 KiB Linux allows one argument.
    let long = "9".repeat(100 * 1024);
    let cases: [&[&str]; 5] = [
        &["upload", m, "--rate", &long],
        &["upload", m, "--base-url", &long],
        &["upload", m, "--base-url", "http://127.0.0.1:9", "--api-key-file", &long],
        &["serve", "--storm", &long],
        &["upload", m, &long],
    ];
    for args in cases {
        let mut cmd = avbatch();
        cmd.args(args);
        let out = run_bounded(cmd, Duration::from_secs(20));
        let err = String::from_utf8_lossy(&out.stderr);
        let start: String = err.chars().take(600).collect();
        assert_eq!(out.status.code(), Some(2), "{:?}: {start}", &args[..2]);
        assert!(err.len() < 4096, "{:?}: stderr is {} bytes: {start}", &args[..2], err.len());
        assert!(err.contains("… (102400 bytes)") || err.contains("…` (102400 bytes)"), "{:?}: {err}", &args[..2]);
    }
}
