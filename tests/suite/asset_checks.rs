//! Issue #14: a row's thumbnail, captions, chapters and creation fields are checked before
//! anything is sent. Each bad input is refused up front (exit 2, nothing sent), named by line,
//! column and file; a track that does not parse says where in its own file, and shows the line.
//! The real binary against an in-process `avbatch serve` on 127.0.0.1.

use crate::common;
use crate::common::text;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use common::{run_bounded, spawn_server, KEY};

fn avbatch(args: &[&str]) -> Output {
    let mut cmd = common::batch::avbatch();
    cmd.args(args).env("AVBATCH_API_KEY", KEY);
    run_bounded(cmd, Duration::from_secs(60))
}

/// A real PNG's first bytes and a few more: what the check reads of an image.
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x02\0\0\0";

const VTT: &str = "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nHello\n";

/// A folder with `v.mp4`, the named extra files, and a manifest.
fn library(files: &[(&str, &[u8])], manifest: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("v.mp4"), b"a video").unwrap();
    for (name, bytes) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
    let path = dir.path().join("manifest.csv");
    std::fs::write(&path, manifest).expect("write the manifest");
    (dir, path)
}

/// Runs the upload (and its dry run) of `manifest`: both refused, nothing sent; the stderr.
async fn refused(manifest: &Path) -> String {
    let server = spawn_server().await;
    let mut err = String::new();
    for dry in [true, false] {
        let mut args =
            vec!["upload", manifest.to_str().unwrap(), "--base-url", &server.url, "--no-journal"];
        if dry {
            args.push("--dry-run");
        }
        let out = avbatch(&args);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(err.contains("nothing was uploaded"), "{}", text(&out));
    }
    assert!(server.all_videos().await.is_empty(), "nothing may be sent");
    err
}

#[tokio::test(flavor = "multi_thread")]
async fn thumbnails_are_images_api_video_takes() {
    let big = {
        let mut b = PNG.to_vec();
        b.resize(8 * 1024 * 1024 + 1, 0);
        b
    };
    let (dir, manifest) = library(
        &[
            ("gif.gif", b"GIF89a\x01\0\x01\0"),
            ("big.png", &big),
            ("empty.png", b""),
            ("ok.png", PNG),
            ("folder/x", b""),
        ],
        "path,thumbnail,thumbnail_time\n\
         v.mp4,gif.gif,\n\
         v.mp4,big.png,\n\
         v.mp4,empty.png,\n\
         v.mp4,missing.jpg,\n\
         v.mp4,folder,\n\
         v.mp4,ok.png,00:00:01\n\
         v.mp4,,1:00\n",
    );
    let err = refused(&manifest).await;
    let at = |name: &str| dir.path().join(name).display().to_string();
    for expected in [
        format!(
            "line 2, column `thumbnail`: `{}` is not a JPEG, PNG or WebP image (it starts with \
             `GIF89a",
            at("gif.gif")
        ),
        format!(
            "line 3, column `thumbnail`: `{}` is 8388609 bytes, over the 8 MB (8 000 000 bytes) \
             api.video takes",
            at("big.png")
        ),
        format!("line 4, column `thumbnail`: empty file `{}`", at("empty.png")),
        format!("line 5, column `thumbnail`: missing file `{}`", at("missing.jpg")),
        format!("line 6, column `thumbnail`: `{}` is a directory, not a file", at("folder")),
        "line 7, column `thumbnail_time`: a row takes a `thumbnail` image or a `thumbnail_time`, \
         not both"
            .to_owned(),
        "line 8, column `thumbnail_time`: bad timecode `1:00`".to_owned(),
    ] {
        assert!(err.contains(&expected), "missing {expected:?} in\n{err}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn captions_and_chapters_parse_or_say_where_they_do_not() {
    let (dir, manifest) = library(
        &[
            ("ok.vtt", VTT.as_bytes()),
            (
                "late.vtt",
                b"WEBVTT\n\n00:00:05.000 --> 00:00:06.000\nB\n\n00:00:01.000 --> 00:00:02.000\nA\n",
            ),
            ("arrow.srt", b"1\n00:00:01,000 -> 00:00:02,000\nHi\n"),
            ("latin1.vtt", b"WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nD\xe9j\xe0 vu\n"),
            ("untitled.vtt", b"WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n\n"),
        ],
        "path,captions.en,captions.fr,chapters.en,captions_default\n\
         v.mp4,ok.vtt,late.vtt,,\n\
         v.mp4,arrow.srt,,,\n\
         v.mp4,latin1.vtt,,,\n\
         v.mp4,ok.vtt,,untitled.vtt,\n\
         v.mp4,ok.vtt,,,de\n\
         v.mp4,nothere.vtt,,,\n",
    );
    let err = refused(&manifest).await;
    let at = |name: &str| dir.path().join(name).display().to_string();
    for expected in [
        format!(
            "line 2, column `captions.fr`: `{}` does not parse as captions: line 6",
            at("late.vtt")
        ),
        format!(
            "line 3, column `captions.en`: `{}` does not parse as captions: line 2",
            at("arrow.srt")
        ),
        format!(
            "line 4, column `captions.en`: `{}` does not parse as captions: line 4",
            at("latin1.vtt")
        ),
        format!(
            "line 5, column `chapters.en`: `{}` does not parse as chapters: line 3",
            at("untitled.vtt")
        ),
        "line 6, column `captions_default`: default captions `de` are not among the row's: the \
         row's captions are `en`"
            .to_owned(),
        format!("line 7, column `captions.en`: missing file `{}`", at("nothere.vtt")),
    ] {
        assert!(err.contains(&expected), "missing {expected:?} in\n{err}");
    }
    // The failing line of the track itself is shown.
    assert!(err.contains("`00:00:01,000 -> 00:00:02,000`"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn track_languages_are_the_tags_api_video_documents() {
    let (_dir, manifest) = library(
        &[("ok.vtt", VTT.as_bytes())],
        "path,captions.fr_CA,chapters.english,captions.en,captions.EN,captions.zz,\
         captions.en-XX,captions.es-419,chapters.ja-JP-TRADITIONAL,captions.fr-CAA,\
         captions.en-Latn-QQ\n\
         v.mp4,ok.vtt,ok.vtt,ok.vtt,,,,ok.vtt,ok.vtt,,\n",
    );
    let err = refused(&manifest).await;
    let not_taken = |column: &str, tag: &str, hint: &str| {
        format!(
            "line 1, column `{column}`: column `{column}`: `{tag}` is not a language api.video \
             takes for captions and chapters (one of the 672 tags it documents, as `en`, \
             `fr-CA`, `es-419`){hint}\n"
        )
    };
    for expected in [
        not_taken("captions.fr_CA", "fr_CA", ": did you mean `captions.fr-CA`?"),
        not_taken("chapters.english", "english", ""),
        not_taken("captions.EN", "EN", ": did you mean `captions.en`?"),
        not_taken("captions.zz", "zz", ""),
        not_taken("captions.en-XX", "en-XX", ": did you mean `captions.en-CX`?"),
        not_taken("captions.en-Latn-QQ", "en-Latn-QQ", ": did you mean `captions.en`?"),
        not_taken("captions.fr-CAA", "fr-CAA", ": did you mean `captions.fr-CA`?"),
    ] {
        assert!(err.contains(&expected), "missing {expected:?} in\n{err}");
    }
    // Documented tags with digits or a long subtag are taken: the list decides, not a shape.
    assert!(!err.contains("es-419`: column") && !err.contains("TRADITIONAL`: column"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn creation_fields_are_checked_against_the_api_s_rules() {
    let (_dir, manifest) = library(
        &[],
        "path,clip_start,clip_end,watermark,watermark.top,watermark.opacity,transcript,\
         transcript_summary,transcript_summary_attributes\n\
         v.mp4,00:00:10,00:00:05,,,,,,\n\
         v.mp4,00:00:1,,,,,,,\n\
         v.mp4,,,,10px,,,,\n\
         v.mp4,,,wm1,10,70px,,,\n\
         v.mp4,,,,,,maybe,,\n\
         v.mp4,,,,,,,yes,abstract;summary\n",
    );
    let err = refused(&manifest).await;
    for expected in [
        "line 2, column `clip_end`: the clip ends at `00:00:05` but starts at `00:00:10`",
        "line 3, column `clip_start`: bad timecode `00:00:1`",
        "line 4, column `watermark`: a watermark placement without a `watermark` id",
        "line 5, column `watermark.top`: bad watermark top `10` (expected `px` or `%`",
        "line 5, column `watermark.opacity`: bad watermark opacity `70px` (expected a percentage",
        "line 6, column `transcript`: bad boolean `maybe`",
        "line 7, column `transcript_summary_attributes`: unknown summary attribute `summary` \
         (expected abstract, takeaways",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in\n{err}");
    }
    let (_dir, manifest) = library(&[], "path,watermark.middle\nv.mp4,1px\n");
    let err = refused(&manifest).await;
    assert!(
        err.contains(
            "line 1, column `watermark.middle`: unknown column `watermark.middle`: a \
                      watermark's placement is one of `watermark.top`"
        ),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn documented_languages_and_a_misnamed_image_go_up_as_api_video_takes_them() {
    // `es-419` and `ja-JP-TRADITIONAL` are in api.video's list though not letters and dashes
    // alone; `cover.img` holds a PNG and goes up as `cover.png` (the double, as api.video,
    // refuses an image whose extension says another type).
    let (dir, manifest) = library(
        &[("ok.vtt", VTT.as_bytes()), ("cover.img", PNG)],
        "path,thumbnail,captions.es-419,chapters.ja-JP-TRADITIONAL\n\
         v.mp4,cover.img,ok.vtt,ok.vtt\n",
    );
    let server = spawn_server().await;
    let report = dir.path().join("report.json");
    let out = avbatch(&[
        "upload",
        manifest.to_str().unwrap(),
        "--base-url",
        &server.url,
        "--no-journal",
        "--report",
        report.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let id = doc["rows"][0]["videoId"].as_str().unwrap();
    let caption = server.get_json(&format!("/videos/{id}/captions/es-419")).await;
    assert_eq!(caption["languageName"], "Español", "{caption}");
    let chapters = server.get_json(&format!("/videos/{id}/chapters")).await;
    assert_eq!(chapters["data"][0]["language"], "ja-JP-TRADITIONAL", "{chapters}");
    let thumbnail = server.http.get(format!("{}/vod/{id}/thumbnail.jpg", server.url));
    let bytes = thumbnail.send().await.unwrap().bytes().await.unwrap();
    assert_eq!(bytes.as_ref(), PNG);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_track_over_the_limit_the_double_keeps_is_refused_before_the_run() {
    // 17 000 cues of a KiB: 17 MiB of WebVTT, over the 16 MiB both halves state once.
    let mut big = String::from("WEBVTT\n\n");
    let text = "x".repeat(1000);
    for i in 0..17_000u64 {
        let at = |s: u64| format!("{:02}:{:02}:{:02}.000", s / 3600, s / 60 % 60, s % 60);
        big.push_str(&format!("{} --> {}\n{text}\n\n", at(i), at(i + 1)));
    }
    let (dir, manifest) =
        library(&[("big.vtt", big.as_bytes())], "path,captions.en\nv.mp4,big.vtt\n");
    let err = refused(&manifest).await;
    let shown = dir.path().join("big.vtt").display().to_string();
    let expected = format!(
        "line 2, column `captions.en`: `{shown}` makes {} bytes of WebVTT, over the 16 MiB a \
         caption or chapters file may be",
        big.len()
    );
    assert!(err.contains(&expected), "missing {expected:?} in\n{err}");
}

/// `text` in UTF-16 (little-endian, after its byte order mark).
fn utf16(text: &str) -> Vec<u8> {
    let mut bytes = vec![0xff, 0xfe];
    bytes.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
    bytes
}

/// A WebVTT track of cues a second apart, `bytes` long or a little less in UTF-16 (which is
/// WebVTT of half that in UTF-8: under the 16 MiB sent), saying `language` in each cue.
fn long_track(bytes: usize, language: &str) -> String {
    let mut text = String::from("WEBVTT\n\n");
    for n in 0u64.. {
        let time = |ms: u64| {
            let (h, m, s, t) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
            format!("{h:02}:{m:02}:{s:02}.{t:03}")
        };
        let cue =
            format!("{} --> {}\nLine {n} in {language}\n\n", time(n * 1000), time(n * 1000 + 900));
        if 2 * (text.len() + cue.len()) + 2 > bytes {
            break;
        }
        text.push_str(&cue);
    }
    text
}

/// Issue #25, point 13: the check read every caption file whole, on its 32 threads at once
/// (with the lines found, and a copy for what it makes of the file): 64 rows with two 26 MB
/// caption files each peaked at 2 to 2.3 GB, past the deploy recipes' 512 MiB. It reads them as
/// they stream in, a line at a time, a few files at once.
///
/// 16 rows of two 26 MB UTF-16 WebVTT files (13 MB of WebVTT each, under the 16 MiB sent): the
/// caption paths are hard links to one file per language, 52 MB on disk for 832 MB of captions
/// read, where memory is the same as for files apart (read, not mapped: the page cache is not the
/// process's). Before the fix this peaked near 1 GB; 256 MiB is what the issue allows. The run
/// that then sends them all stays under half that (it peaked at 276 MiB before glibc's threshold
/// for mapping large buffers was fixed, `give_large_buffers_back` in `src/main.rs`).
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread")]
async fn captions_of_26_mb_are_checked_in_bounded_memory_and_found_broken_deep_inside() {
    const ROWS: usize = 16;
    let server = spawn_server().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let english = long_track(26_000_000, "en");
    std::fs::write(dir.path().join("en.vtt"), utf16(&english)).unwrap();
    std::fs::write(dir.path().join("fr.vtt"), utf16(&long_track(26_000_000, "fr"))).unwrap();
    // Cue 200 000 starts at 200 000 s: its timing line is line 3 + 3 × 200 000.
    let broken = english.replacen("55:33:20.000 --> ", "55:33:20.000 -> ", 1);
    assert_ne!(broken, english, "the track has a cue 200 000");
    std::fs::write(dir.path().join("broken.vtt"), utf16(&broken)).unwrap();
    let mut csv = String::from("path,title,captions.en,captions.fr\n");
    for row in 0..ROWS {
        std::fs::write(dir.path().join(format!("v{row}.mp4")), format!("video {row}")).unwrap();
        for language in ["en", "fr"] {
            let link = dir.path().join(format!("c{row}.{language}.vtt"));
            std::fs::hard_link(dir.path().join(format!("{language}.vtt")), link).unwrap();
        }
        csv.push_str(&format!("v{row}.mp4,Video {row},c{row}.en.vtt,c{row}.fr.vtt\n"));
    }
    let manifest = dir.path().join("manifest.csv");
    std::fs::write(&manifest, &csv).unwrap();
    let path = manifest.to_str().unwrap().to_owned();
    let dry_run = |path: &str| {
        let mut cmd = common::batch::avbatch();
        cmd.args(["upload", path, "--dry-run", "--no-journal", "--base-url", &server.url]);
        cmd.env("AVBATCH_API_KEY", KEY);
        cmd
    };

    let cmd = dry_run(&path);
    let stderr = dir.path().join("stderr");
    let (code, kib) = tokio::task::block_in_place(|| common::peak_rss_kib(&cmd, &stderr));
    let err = std::fs::read_to_string(&stderr).unwrap();
    eprintln!("dry run over {ROWS} rows of two 26 MB captions: peak RSS {} MiB", kib / 1024);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains(&format!("{ROWS} rows")), "{err}");
    assert!(kib <= 256 * 1024, "peak RSS {kib} KiB over 256 MiB");
    // The plan counts both tracks of every row: a create, two captions and the assets' record.
    let out = avbatch(&[
        "upload",
        &path,
        "--dry-run",
        "--no-journal",
        "--json",
        "--base-url",
        &server.url,
    ]);
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).expect("the plan as JSON");
    assert_eq!(plan["estimate"]["requests"]["writes"], ROWS as u64 * 4, "{plan}");

    // The run itself holds four tracks at most at once (16 MiB of WebVTT each, at most): 64 MiB
    // by design, beside the process's own. Before glibc's threshold for mapping large buffers
    // was fixed, freed tracks stayed in its per-thread heaps: 16 rows peaked at 196 to 247 MB,
    // 64 rows at 376 to 402 MB; now 69 and 84 MB.
    let mut cmd = common::batch::avbatch();
    cmd.args(["upload", &path, "--no-journal", "-q", "--base-url", &server.url]);
    cmd.env("AVBATCH_API_KEY", KEY);
    let (code, kib) = tokio::task::block_in_place(|| common::peak_rss_kib(&cmd, &stderr));
    let err = std::fs::read_to_string(&stderr).unwrap();
    eprintln!("upload of {ROWS} rows of two 26 MB captions: peak RSS {} MiB", kib / 1024);
    assert_eq!(code, Some(0), "{err}");
    assert!(kib <= 128 * 1024, "peak RSS {kib} KiB over 128 MiB");
    let videos = server.all_videos().await;
    assert_eq!(videos.len(), ROWS);
    for video in videos {
        let id = video["videoId"].as_str().unwrap();
        let captions = server.get_json(&format!("/videos/{id}/captions")).await;
        let listed = captions["data"].as_array().unwrap().iter();
        let mut languages: Vec<&str> = listed.filter_map(|c| c["srclang"].as_str()).collect();
        languages.sort_unstable();
        assert_eq!(languages, ["en", "fr"], "{video}");
    }

    // One row's French captions broken 600 000 lines in: found, on their line.
    let broken_csv = csv.replace("c9.fr.vtt", "broken.vtt");
    std::fs::write(&manifest, broken_csv).unwrap();
    let out = avbatch(&["upload", &path, "--dry-run", "--no-journal", "--base-url", &server.url]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    let expected = format!(
        "line 11, column `captions.fr`: `{}` does not parse as captions: line 600003, column 14: \
         expected `-->` between the cue's start and end",
        dir.path().join("broken.vtt").display()
    );
    assert!(err.contains(&expected), "missing {expected:?} in\n{err}");
    assert_eq!(server.all_videos().await.len(), ROWS, "nothing more may be sent");
}
