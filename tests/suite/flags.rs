//! Issue #11: the command line itself. Absurd numbers are usage errors (exit 2, never a panic),
//! long values are cut in messages, and secrets are best kept off the command line: the real
//! binary, against in-process or child `avbatch serve`s on 127.0.0.1 only.

use crate::common;
use crate::common::text;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use common::{basic_auth, kill_group, run_bounded, spawn_server};

use crate::common::batch::avbatch;

// ---------------------------------------------------------------------------------------------
// Bounds
// ---------------------------------------------------------------------------------------------

fn with<'a>(command: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
    [command, extra].concat()
}

#[test]
fn absurd_flag_values_are_usage_errors_that_say_the_range() {
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
        (
            with(&upload, &["--chunk-size", "18446744073709551615"]),
            "--chunk-size",
            "from 5MiB to 200MiB",
        ),
        (with(&upload, &["--chunk-size", "1MiB"]), "--chunk-size", "from 5MiB to 200MiB"),
        (with(&upload, &["--retries", "4294967295"]), "--retries", "from 0 to 1000"),
        (with(&upload, &["--retries=-1"]), "--retries", "from 0 to 1000"),
        (with(&upload, &["--shard", "0/99999999999"]), "--shard", "N from 1 to 4294967295"),
        (with(&serve, &["--latency", "18446744073709551615s"]), "--latency", "from 0s to 1h"),
        (
            with(&serve, &["--token-ttl", "18446744073709551615s"]),
            "--token-ttl",
            "from 1s to 7days",
        ),
        (with(&serve, &["--token-ttl", "0s"]), "--token-ttl", "from 1s to 7days"),
        (with(&serve, &["--bandwidth", "18446744073709551615"]), "--bandwidth", bw),
        (with(&serve, &["--storm", "18446744073709551615s:1s"]), "--storm", storm),
        (with(&serve, &["--storm", "2s:1ns"]), "--storm", storm),
        (with(&serve, &["--rate-limit", "all=4294967295/1s"]), "--rate-limit", quota),
        (with(&serve, &["--rate-limit", "uploads=1/18446744073709551615s"]), "--rate-limit", quota),
        (with(&serve, &["--fail-rate", "NaN"]), "--fail-rate", "from 0 to 1"),
        (
            with(&serve, &["--seed", "18446744073709551616"]),
            "--seed",
            "from 0 to 18446744073709551615",
        ),
        (with(&bench, &["--files", "18446744073709551615"]), "--files", "from 1 to 1000000"),
        (with(&bench, &["--files", "0"]), "--files", "from 1 to 1000000"),
        (with(&bench, &["--size", "0"]), "--size", "from 1 byte to 30GiB"),
        (with(&bench, &["--max-size", "1TiB"]), "--max-size", "from 1 byte to 30GiB"),
        (with(&bench, &["-c", "0"]), "--concurrency", conc),
        (with(&bench, &["--chunk-size", "1GiB"]), "--chunk-size", "from 5MiB to 200MiB"),
        (with(&bench, &["--latency", "18446744073709551615s"]), "--latency", "from 0s to 1h"),
        (with(&bench, &["--bandwidth", "18446744073709551615"]), "--bandwidth", bw),
        (
            with(&bench, &["--rate-limit", "all=0/1s"]),
            "--rate-limit",
            "the count must be at least 1",
        ),
        (with(&bench, &["--rate-limit", "all=1/1ns"]), "--rate-limit", quota),
        (with(&bench, &["--seed=-1"]), "--seed", "from 0 to 18446744073709551615"),
        (vec!["status", m, "--shard", "0/99999999999"], "--shard", "N from 1 to 4294967295"),
        (
            vec!["status", "--journal", journal, "--shard", "2/1"],
            "--shard",
            "shards are numbered from 0 to 0",
        ),
    ];
    let mut wrong = Vec::new();
    for (args, flag, range) in &cases {
        let mut cmd = avbatch();
        cmd.args(args);
        let out = run_bounded(cmd, Duration::from_secs(20));
        let err = String::from_utf8_lossy(&out.stderr);
        if out.status.code() != Some(2)
            || !err.contains(flag)
            || !err.contains(range)
            || err.contains("panicked")
        {
            wrong.push(format!(
                "{args:?}: exit {:?}, expected 2 naming `{flag}` and `{range}`:\n{}",
                out.status.code(),
                text(&out)
            ));
        }
    }
    assert!(wrong.is_empty(), "{} of {} cases:\n{}", wrong.len(), cases.len(), wrong.join("\n"));
    assert!(
        !Path::new(cache).exists() || std::fs::read_dir(cache).unwrap().next().is_none(),
        "no bench library may be made"
    );
}

#[test]
fn long_flag_values_are_cut_in_messages() {
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
        assert!(
            err.contains("… (102400 bytes)") || err.contains("…` (102400 bytes)"),
            "{:?}: {err}",
            &args[..2]
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Secrets
// ---------------------------------------------------------------------------------------------

/// A delegated upload token made on `server`.
async fn upload_token(server: &common::TestServer) -> String {
    let v = server.post_json("/upload-tokens", &serde_json::json!({"ttl": 3600})).await;
    v["token"].as_str().expect("a token").to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upload_token_on_the_command_line_warns_and_the_env_or_a_file_do_not() {
    let server = spawn_server().await;
    let token = upload_token(&server).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.mp4"), b"some video bytes").unwrap();
    let manifest = dir.path().join("m.csv");
    std::fs::write(&manifest, "path\na.mp4\n").unwrap();
    let upload = |extra: &[&str], env: Option<&str>| {
        let mut cmd = avbatch();
        cmd.args([
            "upload",
            manifest.to_str().unwrap(),
            "--base-url",
            &server.url,
            "--no-journal",
            "-q",
        ])
        .args(extra);
        if let Some(t) = env {
            cmd.env("AVBATCH_UPLOAD_TOKEN", t);
        }
        run_bounded(cmd, Duration::from_secs(60))
    };
    let warning = "warning: --upload-token puts the token where every local user can read it \
                   (`ps`); set AVBATCH_UPLOAD_TOKEN or pass --upload-token-file FILE instead\n";
    let check = |out: &Output, code: i32, warned: bool| {
        assert_eq!(out.status.code(), Some(code), "{}", text(out));
        let all = text(out);
        assert_eq!(all.contains(warning), warned, "warning expected: {warned}\n{all}");
        assert!(!all.contains(&token), "the token leaked:\n{all}");
    };

    check(&upload(&["--upload-token", &token], None), 0, true);
    check(&upload(&[], Some(&token)), 0, false);
    let file = dir.path().join("token");
    std::fs::write(&file, format!("{token}\n")).unwrap();
    check(&upload(&["--upload-token-file", file.to_str().unwrap()], None), 0, false);
    assert_eq!(server.all_videos().await.len(), 3, "each run uploaded its row with the token");
    // The file is read, not ignored: a refused token is exit 3.
    std::fs::write(&file, "toNOTaTOKENatALL000000000\n").unwrap();
    let out = upload(&["--upload-token-file", file.to_str().unwrap()], None);
    check(&out, 3, false);

    std::fs::write(&file, " \n").unwrap();
    let out = upload(&["--upload-token-file", file.to_str().unwrap()], None);
    check(&out, 2, false);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("the upload token file `"),
        "{}",
        text(&out)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("token` is empty"), "{}", text(&out));
    // Two sources for one secret are a usage error.
    let out = upload(&["--upload-token-file", file.to_str().unwrap()], Some(&token));
    check(&out, 2, false);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("the upload token is given twice"),
        "{}",
        text(&out)
    );
    assert_eq!(server.all_videos().await.len(), 3);
}

/// `avbatch serve` as a child process: started, asked for a token with `key`, stopped; returns
/// whether the key was accepted and everything it printed.
async fn serve_with(args: &[&str], env: Option<&str>, key: &str) -> (bool, Output) {
    let data = tempfile::tempdir().unwrap();
    let mut cmd = avbatch();
    cmd.args(["serve", "--addr", "127.0.0.1:0", "--data", data.path().to_str().unwrap()])
        .args(args);
    if let Some(keys) = env {
        cmd.env("AVBATCH_SERVE_API_KEYS", keys);
    }
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = cmd.spawn().expect("start avbatch serve");
    let stdout = child.stdout.take().expect("piped stdout");
    // The address comes from a reader thread, so a server that never listens fails the test
    // within the bound instead of blocking it.
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut seen = Vec::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("listening on ") {
                let _ = tx.send(url.trim().to_owned());
            }
            seen.push(line);
        }
        seen
    });
    let accepted = match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(url) => {
            let resp = reqwest::Client::new()
                .post(format!("{url}/auth/api-key"))
                .json(&serde_json::json!({ "apiKey": key }))
                .send()
                .await
                .expect("the server answers");
            let by_basic = reqwest::Client::new()
                .get(format!("{url}/videos"))
                .header("Authorization", basic_auth(key))
                .send()
                .await;
            resp.status().as_u16() == 200
                && by_basic.expect("the server answers").status().as_u16() == 200
        }
        Err(_) => false,
    };
    kill_group(child.id());
    let mut out = child.wait_with_output().expect("collect the server's output");
    out.stdout = reader.join().expect("stdout reader").join("\n").into_bytes();
    (accepted, out)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_serve_key_on_the_command_line_warns_and_the_env_or_a_file_do_not() {
    let warning = "warning: --api-key puts the key where every local user can read it (`ps`); set \
                   AVBATCH_SERVE_API_KEYS or pass --api-key-file FILE instead";
    let key = "local-key-5f1e2d3c4b5a";
    let check = |(accepted, out): &(bool, Output), warned: bool| {
        assert!(accepted, "the key was refused:\n{}", text(out));
        let all = text(out);
        assert_eq!(all.contains(warning), warned, "warning expected: {warned}\n{all}");
        assert!(!all.contains(key), "the key leaked:\n{all}");
    };
    check(&serve_with(&["--api-key", key], None, key).await, true);
    check(&serve_with(&[], Some(key), key).await, false);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("keys");
    std::fs::write(&file, format!("other-key\n{key}\n")).unwrap();
    check(&serve_with(&["--api-key-file", file.to_str().unwrap()], None, key).await, false);

    // An empty key file stops the server before it listens.
    std::fs::write(&file, "\n").unwrap();
    let mut cmd = avbatch();
    cmd.args([
        "serve",
        "--addr",
        "127.0.0.1:0",
        "--data",
        dir.path().join("d").to_str().unwrap(),
        "--api-key-file",
    ])
    .arg(&file);
    let out = run_bounded(cmd, Duration::from_secs(20));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("the API key file `"), "{}", text(&out));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("listening on"), "{}", text(&out));
}
