//! The nightly schedule (issue #7): a manifest from a drop folder, re-runs that upload only what
//! is new, JSON logs for shippers with a final machine-readable summary, completions, man page.

use crate::common;
use crate::common::text;

use std::path::Path;
use std::process::{Command, Output};

use common::{pattern, spawn_server_with, TestServer, KEY};
use serde_json::Value;

fn avbatch(args: &[&str]) -> Command {
    let mut cmd = crate::common::batch::avbatch();
    cmd.args(args).env("AVBATCH_API_KEY", KEY);
    cmd
}

fn put(dir: &Path, rel: &str, data: &[u8]) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, data).unwrap();
}

fn nightly(drop: &Path, server: &TestServer) -> (Output, Value) {
    let manifest = drop.join("manifest.csv");
    let out = avbatch(&["manifest", drop.to_str().unwrap(), "-o", manifest.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let report = drop.join("report.json");
    let out = avbatch(&[
        "--log-format",
        "json",
        "upload",
        manifest.to_str().unwrap(),
        "--base-url",
        &server.url,
        "--chunk-size",
        "5MiB",
        "--report",
        report.to_str().unwrap(),
    ])
    .output()
    .unwrap();
    let rep = serde_json::from_slice(&std::fs::read(report).unwrap()).unwrap();
    (out, rep)
}

/// Every stderr line is a JSON object; returns them.
fn events(o: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&o.stderr)
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}\n{}", text(o)))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_drop_folder_night_after_night_uploads_only_what_is_new() {
    let server = spawn_server_with(|_| {}).await;
    let drop = tempfile::tempdir().unwrap();
    let d = drop.path();
    put(d, "a.mp4", &pattern(70_000, 1));
    put(d, "2025/b.MOV", &pattern(80_000, 2));
    put(d, "notes.txt", b"not a video");
    put(d, ".c.mp4.part", b"a copy in progress");

    // Night 1.
    let (out, rep) = nightly(d, &server);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        std::fs::read_to_string(d.join("manifest.csv")).unwrap(),
        "path,id,title\n2025/b.MOV,2025/b.MOV,b\na.mp4,a.mp4,a\n"
    );
    assert_eq!(rep["summary"]["uploaded"], 2, "{rep}");
    let evs = events(&out);
    let summary = evs
        .iter()
        .find(|e| e["message"] == "summary")
        .unwrap_or_else(|| panic!("no summary event: {evs:?}"));
    assert_eq!(
        (summary["uploaded"].as_u64(), summary["rows"].as_u64(), summary["failed"].as_u64()),
        (Some(2), Some(2), Some(0))
    );
    assert!(evs.iter().all(|e| e["level"].is_string() && e["timestamp"].is_string()));

    // Night 2: one new file arrives; only it is sent.
    put(d, "2025/new.mp4", &pattern(90_000, 3));
    let before = server.server.received_bytes();
    let (out, rep) = nightly(d, &server);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        (rep["summary"]["uploaded"].as_u64(), rep["summary"]["skipped"].as_u64()),
        (Some(1), Some(2)),
        "{rep}"
    );
    assert_eq!(server.server.received_bytes() - before, 90_000);
    let videos = server.all_videos().await;
    assert_eq!(videos.len(), 3);
    let titles: Vec<&str> = {
        let mut t: Vec<&str> = videos.iter().map(|v| v["title"].as_str().unwrap()).collect();
        t.sort();
        t
    };
    assert_eq!(titles, ["a", "b", "new"]);

    // Night 3: a file replaced under its name is refused and named in a JSON event, exit 1.
    put(d, "a.mp4", &pattern(70_001, 9));
    let (out, _) = nightly(d, &server);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let evs = events(&out);
    let failed =
        evs.iter().find(|e| e["message"] == "row failed").unwrap_or_else(|| panic!("{evs:?}"));
    assert_eq!(failed["path"], "a.mp4");
    assert!(failed["error"].as_str().unwrap().contains("--force"));
}

#[test]
fn completions_and_man_page_come_from_the_cli_definition() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = avbatch(&["completions", shell]).output().unwrap();
        assert!(out.status.success(), "{shell}: {}", text(&out));
        let script = String::from_utf8_lossy(&out.stdout);
        for word in ["upload", "serve", "manifest", "chunk-size", "shard"] {
            assert!(script.contains(word), "{shell} completions lack `{word}`");
        }
    }
    let out = avbatch(&["man"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let man = String::from_utf8_lossy(&out.stdout);
    assert!(man.starts_with(".ie") || man.contains(".TH avbatch 1"), "{man}");
    assert!(man.contains("upload") && man.contains("serve"));
    let bad = avbatch(&["completions", "tcsh"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

/// Issue #25, point 14: a drop-folder file whose name is not UTF-8 was written into the manifest
/// with U+FFFD, without a word, and `upload` then refused the whole manifest every night. It is
/// skipped with a warning naming it (its bytes escaped), counted in the summary, and the rest of
/// the folder uploads.
#[tokio::test(flavor = "multi_thread")]
async fn a_file_name_that_is_not_utf8_is_skipped_with_a_warning() {
    use std::os::unix::ffi::OsStrExt;
    let drop = tempfile::tempdir().unwrap();
    let d = drop.path();
    put(d, "good.mp4", &pattern(70_000, 1));
    let bad = d.join(std::ffi::OsStr::from_bytes(b"bad\xff.mp4"));
    std::fs::write(&bad, pattern(60_000, 2)).unwrap();
    let manifest = d.join("manifest.csv");
    let out = avbatch(&["manifest", d.to_str().unwrap(), "-o", manifest.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stderr);
    let warning = format!(r"warning: skipped `{}/bad\xff.mp4`: its name is not UTF-8", d.display());
    assert!(said.contains(&warning), "{}", text(&out));
    assert!(said.contains("1 video(s)") && said.contains("1 file(s) skipped"), "{}", text(&out));
    let written = std::fs::read_to_string(&manifest).expect("the manifest is UTF-8");
    assert_eq!(written, "path,id,title\ngood.mp4,good.mp4,good\n");

    let data = tempfile::tempdir().unwrap();
    let serve = crate::common::batch::serve_on("127.0.0.1:0", &data.path().join("d"), &[]).await;
    let report = data.path().join("report.json");
    let out = avbatch(&["upload", manifest.to_str().unwrap(), "--base-url", &serve.url])
        .args(["--report", report.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let videos = crate::common::batch::list_videos(&serve.url).await;
    assert_eq!(videos.len(), 1, "{videos:?}");
    assert_eq!(videos[0]["title"], "good");
}

/// Two drop folders feeding one account, both holding `intro.mp4` (#25, point 3): `avbatch
/// manifest` gives both the id `intro.mp4`, so the second folder's file finds the first one's
/// video under its key. It is a clash, said naming both, never reported done; `check` sees it;
/// `--force` replaces the video; and `--id-prefix` gives each folder's files their own ids.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_folders_giving_one_id_clash_instead_of_sharing_a_video() {
    let server = spawn_server_with(|_| {}).await;
    let (east, west) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    put(east.path(), "intro.mp4", &pattern(3000, 1));
    let west_intro = pattern(5000, 2);
    put(west.path(), "intro.mp4", &west_intro);
    let (first, _) = nightly(east.path(), &server);
    assert!(first.status.success(), "{}", text(&first));
    let (second, rep) = nightly(west.path(), &server);
    assert_eq!(second.status.code(), Some(1), "{}", text(&second));
    let row = &rep["rows"][0];
    assert_eq!(row["status"], "failed", "{row}");
    let error = row["error"].as_str().unwrap_or_default();
    assert!(error.contains("holds a source of 3000 bytes, not the 5000 bytes"), "{row}");
    assert!(error.contains("--id-prefix"), "{row}");
    let videos = server.all_videos().await;
    assert_eq!(videos.len(), 1, "nothing made for the clash");
    let east_video = videos[0]["videoId"].as_str().unwrap().to_owned();

    // `check` of the west folder's manifest compares sizes: not in step.
    let manifest = west.path().join("manifest.csv");
    let check = avbatch(&["check", manifest.to_str().unwrap(), "--base-url", &server.url])
        .output()
        .unwrap();
    assert_eq!(check.status.code(), Some(1), "{}", text(&check));
    let said = String::from_utf8_lossy(&check.stdout);
    assert!(said.contains("3000") && said.contains("5000"), "{}", text(&check));

    // Ids unique across folders: the west folder's intro gets a video of its own.
    let prefixed = west.path().join("prefixed.csv");
    let out = avbatch(&[
        "manifest",
        west.path().to_str().unwrap(),
        "--id-prefix",
        "west/",
        "-o",
        prefixed.to_str().unwrap(),
    ])
    .output()
    .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(std::fs::read_to_string(&prefixed).unwrap().contains("west/intro.mp4"));
    let out = avbatch(&["upload", prefixed.to_str().unwrap(), "--base-url", &server.url, "-q"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let videos = server.all_videos().await;
    assert_eq!(videos.len(), 2, "one video per folder's intro");
    let west_video = videos.iter().find(|v| v["videoId"] != east_video.as_str()).unwrap();
    assert!(server.source_of(west_video["videoId"].as_str().unwrap()).await == west_intro);
}
