//! How a command ends: with the exit code its error carries, the error said once and last (as
//! cargo says its errors), in the log format asked for, and never an error followed by success.

use std::process::Output;

use crate::common::batch::avbatch;
use crate::common::{spawn_server, text};
use serde_json::Value;

/// The JSON objects on stderr; fails on a line that is not one.
fn json_lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}\n{}", text(out)))
        })
        .collect()
}

fn is_error(line: &Value) -> bool {
    line["level"].as_str().is_some_and(|l| l.eq_ignore_ascii_case("error"))
}

#[test]
fn an_unforeseen_error_is_exit_2_said_as_a_json_log_line_when_logs_are_json() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.mp4"), b"video").unwrap();
    // The manifest cannot be written: a folder that does not exist.
    let output = dir.path().join("no-such-folder").join("manifest.csv");
    let out = avbatch()
        .args(["--log-format", "json", "manifest"])
        .arg(dir.path())
        .arg("-o")
        .arg(&output)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let lines = json_lines(&out);
    let errors: Vec<&Value> = lines.iter().filter(|l| is_error(l)).collect();
    assert_eq!(errors.len(), 1, "one error, said once: {}", text(&out));
    let said = errors[0].to_string();
    assert!(said.contains("cannot write") && said.contains("no-such-folder"), "{said}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_key_is_said_once_after_the_report_and_exits_3() {
    let server = spawn_server().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.mp4"), b"a small video").unwrap();
    let manifest = dir.path().join("m.csv");
    std::fs::write(&manifest, "path,title\na.mp4,A\n").unwrap();
    let report = dir.path().join("report.json");
    let out = avbatch()
        .arg("upload")
        .arg(&manifest)
        .args(["--base-url", &server.url, "--report"])
        .arg(&report)
        .env("AVBATCH_API_KEY", "a-key-the-server-does-not-know")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "said once: {}", text(&out));
    assert!(errors[0].contains("cannot authenticate"), "{}", text(&out));
    // Last, as cargo says its errors: after where the report is, then its hint.
    let lines: Vec<&str> = stderr.lines().collect();
    let at = lines.iter().position(|l| l.starts_with("error:")).unwrap();
    assert!(lines[..at].iter().any(|l| l.starts_with("report: ")), "{}", text(&out));
    assert!(lines[at + 1..].iter().all(|l| l.starts_with("hint: ")), "{}", text(&out));
    let report: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(report["summary"]["rows"], 1, "every row accounted for: {report}");
}
