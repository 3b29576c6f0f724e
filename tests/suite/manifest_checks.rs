//! Issue #11: manifests that used to upload the wrong thing, hang, or flood the terminal are
//! refused up front (exit 2, nothing sent), each problem named by line and column. The real
//! binary against an in-process `avbatch serve` on 127.0.0.1.

use crate::common;
use crate::common::text;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::{run_bounded, spawn_server, KEY};

/// Runs avbatch with the test key, waiting at most `limit`.
fn avbatch_within(args: &[&str], limit: Duration) -> Output {
    let mut cmd = common::batch::avbatch();
    cmd.args(args).env("AVBATCH_API_KEY", KEY);
    run_bounded(cmd, limit)
}

fn avbatch(args: &[&str]) -> Output {
    avbatch_within(args, Duration::from_secs(60))
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A folder with the named files (a few bytes each) and a manifest.
fn library(files: &[&str], manifest: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    for (i, name) in files.iter().enumerate() {
        std::fs::write(dir.path().join(name), format!("video {i}")).expect("write a video");
    }
    let path = dir.path().join("manifest.csv");
    std::fs::write(&path, manifest).expect("write the manifest");
    (dir, path)
}

fn upload(manifest: &Path, url: &str, extra: &[&str]) -> Output {
    let mut args = vec!["upload", manifest.to_str().unwrap(), "--base-url", url, "--no-journal"];
    args.extend_from_slice(extra);
    avbatch(&args)
}

/// Exit 2, and the answer that nothing was sent.
fn assert_refused(out: &Output) {
    assert_eq!(out.status.code(), Some(2), "{}", text(out));
    assert!(stderr(out).contains("nothing was uploaded"), "{}", text(out));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unclosed_quote_is_refused_with_its_line_and_column() {
    let server = spawn_server().await;
    let files = ["q1.mp4", "q2.mp4", "q3.mp4", "q4.mp4"];
    // The issue's manifest: the quote opens in the last column, so the swallowed record still
    // has the header's three fields.
    let (_dir, manifest) = library(
        &files,
        "path,title,description\nq1.mp4,ok,fine\nq2.mp4,ok,\"oops unbalanced\nq3.mp4,t3,d3\n\
         q4.mp4,t4,d4\n",
    );
    let out = upload(&manifest, &server.url, &[]);
    assert_refused(&out);
    let err = stderr(&out);
    assert!(
        err.contains("line 3, column `description`: unbalanced quote: the quote at character 11 "),
        "{err}"
    );
    assert!(err.contains("through line 5"), "{err}");
    let out = upload(&manifest, &server.url, &["--dry-run"]);
    assert_refused(&out);
    assert!(server.all_videos().await.is_empty(), "nothing may be sent");

    // In a middle column: the quote is named, not a field count.
    let (_dir, manifest) = library(
        &files,
        "path,title,description\nq1.mp4,ok,fine\nq2.mp4,\"oops,d2\nq3.mp4,t3,d3\nq4.mp4,t4,d4\n",
    );
    let out = upload(&manifest, &server.url, &[]);
    assert_refused(&out);
    let err = stderr(&out);
    assert!(
        err.contains("line 3, column `title`: unbalanced quote: the quote at character 8 "),
        "{err}"
    );
    assert!(!err.contains("wrong number of fields"), "{err}");
    assert!(server.all_videos().await.is_empty(), "nothing may be sent");
}

#[tokio::test(flavor = "multi_thread")]
async fn report_merge_checks_the_manifest_s_quotes_too() {
    let server = spawn_server().await;
    let files = ["q1.mp4", "q2.mp4", "q3.mp4"];
    let (dir, good) = library(&files, "path,title\nq1.mp4,one\nq2.mp4,two\nq3.mp4,three\n");
    let report = dir.path().join("part.csv");
    let out = upload(&good, &server.url, &["--report", report.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let merged = dir.path().join("all.csv");
    let merge = |manifest: &Path| {
        avbatch(&[
            "report",
            "merge",
            "-o",
            merged.to_str().unwrap(),
            "--manifest",
            manifest.to_str().unwrap(),
            report.to_str().unwrap(),
        ])
    };
    assert!(merge(&good).status.success());

    // The stray quote hides line 4 from a lenient reader, so "every row is in a report" held.
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "path,title\nq1.mp4,one\nq2.mp4,\"two\nq3.mp4,three\n").unwrap();
    let out = merge(&bad);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = stderr(&out);
    assert!(
        err.contains("line 3, column `title`: unbalanced quote: the quote at character 8 "),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn two_rows_without_an_id_may_not_share_a_path() {
    let server = spawn_server().await;
    let (_dir, manifest) =
        library(&["a.mp4", "b.mp4"], "path,title\na.mp4,first\nb.mp4,x\na.mp4,second\n");
    let out = upload(&manifest, &server.url, &[]);
    assert_refused(&out);
    let err = stderr(&out);
    assert!(
        err.contains(
            "line 4, column `path`: duplicate path `a.mp4` in a row without an `id` (first used \
             on line 2, column `path`)"
        ),
        "{err}"
    );
    assert!(server.all_videos().await.is_empty(), "nothing may be sent");

    // With ids, one file may be two videos, each with its own fields.
    let (_dir, manifest) = library(&["a.mp4"], "path,id,title\na.mp4,1,first\na.mp4,2,second\n");
    let out = upload(&manifest, &server.url, &[]);
    assert!(out.status.success(), "{}", text(&out));
    let mut titles: Vec<String> =
        server.all_videos().await.iter().map(|v| v["title"].as_str().unwrap().to_owned()).collect();
    titles.sort();
    assert_eq!(titles, ["first", "second"]);
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn fifos_and_devices_are_refused_without_hanging() {
    let server = spawn_server().await;
    let (dir, manifest) = library(&["ok.mp4"], "path\nok.mp4\npipe.mp4\n/dev/null\n");
    let made =
        Command::new("mkfifo").arg(dir.path().join("pipe.mp4")).status().expect("run mkfifo");
    assert!(made.success());
    for extra in [&["--dry-run"][..], &[]] {
        let out = avbatch_within(
            &[
                &["upload", manifest.to_str().unwrap(), "--base-url", &server.url, "--no-journal"]
                    [..],
                extra,
            ]
            .concat(),
            Duration::from_secs(30),
        );
        assert_refused(&out);
        let err = stderr(&out);
        assert!(
            err.contains("line 3, column `path`: `")
                && err.contains("pipe.mp4` is a FIFO (named pipe), not a regular file"),
            "{err}"
        );
        assert!(
            err.contains(
                "line 4, column `path`: `/dev/null` is a character device, not a regular file"
            ),
            "{err}"
        );
    }
    assert!(server.all_videos().await.is_empty(), "nothing may be sent");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_over_the_documented_30_gib_is_refused_before_any_video_is_made() {
    let server = spawn_server().await;
    let (dir, manifest) = library(&["small.mp4"], "path\nsmall.mp4\nhuge.mp4\n");
    // 53 GB of holes: over both the documented 30 GiB and the API's 52 428 800 000 bytes.
    std::fs::File::create(dir.path().join("huge.mp4")).unwrap().set_len(53_000_000_000).unwrap();
    for extra in [&["--dry-run"][..], &[]] {
        let out = upload(&manifest, &server.url, extra);
        assert_refused(&out);
        let err = stderr(&out);
        assert!(
            err.contains("line 3, column `path`: `")
                && err.contains("huge.mp4` is 53000000000 bytes, over the 30 GiB"),
            "{err}"
        );
        assert!(err.contains("api.video documents as the most one video may be"), "{err}");
    }
    assert!(server.all_videos().await.is_empty(), "no empty video may be left behind");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_10_mib_path_or_id_is_cut_in_messages() {
    let server = spawn_server().await;
    let long = "a".repeat(10 << 20);
    let (_dir, manifest) =
        library(&["ok.mp4"], &format!("id,path\n{long},ok.mp4\n{long},ok.mp4\nx,{long}.mp4\n"));
    let out = upload(&manifest, &server.url, &[]);
    assert_refused(&out);
    let err = stderr(&out);
    assert!(
        err.len() < 4096,
        "stderr is {} bytes; it starts: {}",
        err.len(),
        err.chars().take(500).collect::<String>()
    );
    assert!(
        err.contains("line 3, column `id`: duplicate id `aaaa")
            && err.contains("…` (10485760 bytes) (first used on line 2)"),
        "{err}"
    );
    assert!(err.contains("line 4, column `path`: cannot open `"), "{err}");
    assert!(server.all_videos().await.is_empty(), "nothing may be sent");
}

/// Issue #25, point 11: a URL longer than an HTTP request line may carry reached the object
/// store's client, which panicked building the request (`InvalidUri(TooLong)`): the check died
/// without naming the row. It is a bad cell like any other.
#[tokio::test(flavor = "multi_thread")]
async fn a_70_000_character_url_is_a_problem_of_its_line_and_column() {
    let server = spawn_server().await;
    let long = format!("https://videos.example.com/{}.mp4", "a".repeat(70_000));
    let (_dir, manifest) = library(&["ok.mp4"], &format!("path,title\nok.mp4,fine\n{long},long\n"));
    let path = manifest.to_str().unwrap();
    for args in [
        vec!["upload", path, "--base-url", &server.url, "--no-journal", "--dry-run"],
        vec!["check", path, "--base-url", &server.url],
    ] {
        let out = avbatch(&args);
        let err = stderr(&out);
        assert_ne!(out.status.code(), Some(101), "{}: {err}", args[0]);
        assert!(!err.contains("panicked"), "{}: {err}", args[0]);
        assert_eq!(out.status.code(), Some(2), "{}: {err}", args[0]);
        assert!(
            err.contains("line 3, column `path`: `path` is not a URL avbatch can read from"),
            "{}: {err}",
            args[0]
        );
        assert!(err.contains("8192 bytes"), "{}: {err}", args[0]);
        // Its one problem: not a `missing file ``` too, for a path that names no file.
        assert!(err.contains("has 1 problem(s)") && !err.contains("missing file"), "{err}");
    }
    assert!(server.all_videos().await.is_empty(), "nothing may be sent");
}
