//! Files that change while avbatch uploads them (issue #5): truncated, grown, rewritten or
//! replaced. The row fails with a clear error, its video is never completed with wrong bytes,
//! the process survives (no SIGBUS), the other rows go on, and `--force` uploads the new file.

use crate::common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{pattern, spawn_server_with, KEY, MIB};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread")]
async fn files_changed_mid_upload_fail_their_row_and_never_complete_a_video() {
    // 4 MiB/s per connection: a 16 MiB file takes about 4 s, time enough to change it.
    let server = spawn_server_with(|c| c.faults.bandwidth = Some(4 * MIB as u64)).await;
    let dir = tempfile::tempdir().unwrap();
    let names = ["truncated", "grown", "rewritten", "replaced", "untouched"];
    let mut csv = String::from("id,path,title\n");
    let mut sources = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let data = pattern(16 * MIB + i, i as u8);
        std::fs::write(dir.path().join(format!("{name}.mp4")), &data).unwrap();
        csv.push_str(&format!("{name},{name}.mp4,{name}\n"));
        sources.push(data);
    }
    let manifest = dir.path().join("manifest.csv");
    std::fs::write(&manifest, csv).unwrap();
    let report = dir.path().join("report.json");
    let run = |extra: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_avbatch"));
        cmd.args([
            "upload",
            manifest.to_str().unwrap(),
            "--base-url",
            &server.url,
            "--chunk-size",
            "5MiB",
            "-c",
            "5",
            "-q",
        ])
        .args(["--report", report.to_str().unwrap()])
        .args(extra)
        .env("AVBATCH_API_KEY", KEY)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        cmd
    };
    let child = run(&[]).spawn().unwrap();

    // Wait until every video has its first part, then change four of the files.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < deadline, "the five uploads did not get going");
        tokio::time::sleep(Duration::from_millis(50)).await;
        let videos = server.all_videos().await;
        let mut started = 0;
        for v in &videos {
            let st = server.status_of(v["videoId"].as_str().unwrap()).await;
            started += usize::from(
                st["ingest"]["receivedBytes"].as_array().is_some_and(|r| !r.is_empty()),
            );
        }
        if videos.len() == 5 && started == 5 {
            break;
        }
    }
    let path = |name: &str| dir.path().join(format!("{name}.mp4"));
    std::fs::File::options()
        .write(true)
        .open(path("truncated"))
        .unwrap()
        .set_len(MIB as u64)
        .unwrap();
    std::fs::File::options()
        .append(true)
        .open(path("grown"))
        .unwrap()
        .write_all(b"appended")
        .unwrap();
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::File::options().write(true).open(path("rewritten")).unwrap();
        f.write_all_at(&[0xEE; 4096], 15 * MIB as u64).unwrap();
    }
    let new_file = dir.path().join("new.tmp");
    std::fs::write(&new_file, pattern(16 * MIB + 3, 77)).unwrap();
    std::fs::rename(&new_file, path("replaced")).unwrap();

    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap()).await.unwrap();
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1), "a failed row exits 1, never a signal:\n{text}");
    let rep: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let rows = rep["rows"].as_array().unwrap();
    for (i, what) in ["was truncated", "grew from", "was modified", "was replaced by another file"]
        .iter()
        .enumerate()
    {
        assert_eq!(rows[i]["status"], "failed", "{}", rows[i]);
        let error = rows[i]["error"].as_str().unwrap();
        assert!(error.contains(what) && error.contains("--force"), "row {i}: {error}");
        let id = rows[i]["videoId"].as_str().unwrap();
        let st = server.status_of(id).await;
        assert_ne!(st["ingest"]["status"], "uploaded", "row {i} must not be completed: {st}");
        let received: u64 = st["ingest"]["receivedBytes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["to"].as_u64().unwrap() + 1 - r["from"].as_u64().unwrap())
            .sum();
        assert!(
            received < 16 * MIB as u64,
            "row {i}: the server holds {received} bytes, so the last part never went in"
        );
    }
    assert_eq!(rows[4]["status"], "uploaded");
    let back = server.source_of(rows[4]["videoId"].as_str().unwrap()).await;
    assert!(back == sources[4], "the untouched row is byte-exact");

    // A plain re-run refuses the changed files; --force uploads them as they are now.
    let out = run(&[]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let out = run(&["--force"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rep: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    // Read back in parallel: the bandwidth cap is per connection.
    let backs = futures::future::join_all(
        (0..names.len()).map(|i| server.source_of(rep["rows"][i]["videoId"].as_str().unwrap())),
    )
    .await;
    for (name, back) in names.iter().zip(backs) {
        assert!(back == std::fs::read(path(name)).unwrap(), "`{name}` went up as it is now");
    }
}
