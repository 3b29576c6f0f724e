//! `avbatch upload` end to end: the real binary against `avbatch serve` on 127.0.0.1 (issue #4).

use crate::common;
use crate::common::text;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{pattern, spawn_server, spawn_server_with, KEY, MIB};
use serde_json::Value;

/// A folder of files and a manifest describing them.
struct Library {
    dir: tempfile::TempDir,
}

impl Library {
    fn new() -> Library {
        Library { dir: tempfile::tempdir().expect("temp dir") }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn file(&self, name: &str, len: usize, seed: u8) -> Vec<u8> {
        let data = pattern(len, seed);
        let p = self.path(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, &data).unwrap();
        data
    }

    /// `n` files `f{i}.mp4` of `size(i)` bytes and a manifest of them with ids `id-{i}`.
    /// Returns the manifest and the files' contents.
    fn batch(&self, n: usize, size: impl Fn(usize) -> usize) -> (PathBuf, Vec<Vec<u8>>) {
        let mut csv = String::from("id,path\n");
        let mut sources = Vec::new();
        for i in 0..n {
            sources.push(self.file(&format!("f{i}.mp4"), size(i), i as u8));
            csv.push_str(&format!("id-{i},f{i}.mp4\n"));
        }
        (self.manifest(&csv), sources)
    }

    fn manifest(&self, text: &str) -> PathBuf {
        let p = self.path("manifest.csv");
        std::fs::write(&p, text).unwrap();
        p
    }
}

fn avbatch(args: &[&str], key: Option<&str>) -> Output {
    let mut cmd = crate::common::batch::avbatch();
    cmd.args(args);
    if let Some(k) = key {
        cmd.env("AVBATCH_API_KEY", k);
    }
    cmd.output().expect("run avbatch")
}

fn report(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).expect("report written")).expect("report is JSON")
}

/// The sizes at the edges of the 5 MiB part rule, and a file over 100 MiB.
fn edge_sizes() -> Vec<usize> {
    let mut sizes =
        vec![1, 5 * MIB - 1, 5 * MIB, 5 * MIB + 1, 3 * 5 * MIB + 7, 101 * MIB + 3, 10 * MIB, 2];
    let mut x: u64 = 0x9e3779b97f4a7c15;
    while sizes.len() < 32 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        sizes.push(1 + (x % (12 * MIB as u64)) as usize);
    }
    sizes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_batch_of_edge_sizes_arrives_byte_exact_with_every_field() {
    let server = spawn_server().await;
    let lib = Library::new();
    let mut csv = String::from(
        "id,path,title,description,tags,metadata,meta.shelf,public,panoramic,mp4_support,\
         player_id,language\n",
    );
    let mut sources = Vec::new();
    for (i, size) in edge_sizes().into_iter().enumerate() {
        let name = format!("media/v{i:02}.mp4");
        sources.push(lib.file(&name, size, i as u8));
        let public = if i % 2 == 0 { "true" } else { "false" };
        csv.push_str(&format!(
            "row-{i},{name},\"Video {i}, size {size}\",\"Description of {i}\",\
             tag{i};all,origin=test;n={i},shelf-{i},{public},{},true,pt{i},{}\n",
            i % 3 == 0,
            if i % 2 == 0 { "en" } else { "fr" }
        ));
    }
    let manifest = lib.manifest(&csv);
    let report_path = lib.path("report.json");
    let out = avbatch(
        &[
            "upload",
            manifest.to_str().unwrap(),
            "--base-url",
            &server.url,
            "-c",
            "8",
            "--chunk-size",
            "5MiB",
            "--report",
            report_path.to_str().unwrap(),
            "-q",
        ],
        Some(KEY),
    );
    assert!(out.status.success(), "exit {:?}\n{}", out.status.code(), text(&out));
    let rep = report(&report_path);
    assert_eq!(rep["summary"]["uploaded"], 32, "{rep}");

    let videos = server.all_videos().await;
    assert_eq!(videos.len(), 32, "one video per row, no duplicates");
    for (i, row) in rep["rows"].as_array().unwrap().iter().enumerate() {
        assert_eq!(row["status"], "uploaded");
        assert_eq!(row["id"], format!("row-{i}"));
        let id = row["videoId"].as_str().expect("videoId in the report");
        let video = server.get_json(&format!("/videos/{id}")).await;
        let size = sources[i].len();
        assert_eq!(video["title"], format!("Video {i}, size {size}"));
        assert_eq!(video["description"], format!("Description of {i}"));
        assert_eq!(video["tags"], serde_json::json!([format!("tag{i}"), "all"]));
        assert_eq!(video["public"], i % 2 == 0);
        assert_eq!(video["panoramic"], i % 3 == 0);
        assert_eq!(video["mp4Support"], true);
        assert_eq!(video["playerId"], format!("pt{i}"));
        assert_eq!(video["language"], if i % 2 == 0 { "en" } else { "fr" });
        let meta: Vec<(String, String)> = video["metadata"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (m["key"].as_str().unwrap().to_owned(), m["value"].as_str().unwrap().to_owned())
            })
            .collect();
        for want in
            [("origin", "test".to_owned()), ("n", i.to_string()), ("shelf", format!("shelf-{i}"))]
        {
            assert!(
                meta.contains(&(want.0.to_owned(), want.1.clone())),
                "video {i} metadata {meta:?} lacks {want:?}"
            );
        }
        let back = server
            .http
            .get(video["assets"]["mp4"].as_str().unwrap())
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert!(
            back == sources[i].as_slice(),
            "video {i} ({size} bytes) differs through assets.mp4 ({} bytes back)",
            back.len()
        );

        // Parts arrived strictly in order: each chunk file was written after the one before it.
        let dir = server.data.path().join("videos").join(id);
        let mut chunks: Vec<(u64, std::time::SystemTime)> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| {
                let e = e.unwrap();
                let name = e.file_name().into_string().unwrap();
                let from = name.strip_prefix("bytes-")?.split('-').next()?.parse().ok()?;
                Some((from, e.metadata().unwrap().modified().unwrap()))
            })
            .collect();
        chunks.sort();
        assert_eq!(chunks.len() as u64, row["parts"].as_u64().unwrap());
        assert_eq!(chunks.len(), size.div_ceil(5 * MIB).max(1), "video {i}: parts of {size} bytes");
        for pair in chunks.windows(2) {
            assert!(
                pair[0].1 <= pair[1].1,
                "video {i}: the part at byte {} was stored before the part at byte {}",
                pair[1].0,
                pair[0].0
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_manifest_problem_is_reported_with_its_line_and_nothing_is_sent() {
    let server = spawn_server().await;
    let lib = Library::new();
    lib.file("ok.mp4", 100, 1);
    lib.file("empty.mp4", 0, 1);
    std::fs::create_dir_all(lib.path("adir")).unwrap();
    let mut csv = b"id,path,public,metadata\n".to_vec(); // line 1
    csv.extend_from_slice(b"a,ok.mp4,true,k=v\n"); // 2: fine
    csv.extend_from_slice(b"b,missing.mp4,,\n"); // 3: missing file
    csv.extend_from_slice(b"c,adir,,\n"); // 4: directory
    csv.extend_from_slice(b"d,empty.mp4,,\n"); // 5: empty file
    csv.extend_from_slice(b"e,ok.mp4,maybe,\n"); // 6: bad boolean
    csv.extend_from_slice(b"a,ok.mp4,,\n"); // 7: duplicate id
    csv.extend_from_slice(b"g,ok.mp4,,novalue\n"); // 8: malformed metadata
    csv.extend_from_slice(b"h,ok\xff.mp4,,\n"); // 9: not UTF-8
    let manifest = lib.path("manifest.csv");
    std::fs::write(&manifest, &csv).unwrap();
    let out =
        avbatch(&["upload", manifest.to_str().unwrap(), "--base-url", &server.url], Some(KEY));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    for line in 3..=9 {
        assert!(
            err.contains(&format!("line {line}")),
            "no problem reported for line {line}:\n{err}"
        );
    }
    assert!(err.contains("`public`"), "the bad boolean names its column:\n{err}");
    assert!(server.all_videos().await.is_empty(), "nothing may be sent for an invalid manifest");

    let unknown = lib.manifest("path,colour\nok.mp4,red\n");
    let out = avbatch(&["upload", unknown.to_str().unwrap(), "--base-url", &server.url], Some(KEY));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("colour"), "{}", text(&out));
    assert!(server.all_videos().await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn dry_run_prints_the_plan_and_sends_nothing() {
    let server = spawn_server().await;
    let lib = Library::new();
    lib.file("a.mp4", 12 * MIB, 1);
    lib.file("b.mp4", 10, 2);
    let manifest = lib.manifest("path\na.mp4\nb.mp4\n");
    let out = avbatch(
        &[
            "upload",
            manifest.to_str().unwrap(),
            "--base-url",
            &server.url,
            "--chunk-size",
            "5MiB",
            "--dry-run",
        ],
        Some(KEY),
    );
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("2 rows")
            && stdout.contains("4 parts")
            && stdout.contains(&(12 * MIB + 10).to_string()),
        "{stdout}"
    );
    assert!(server.all_videos().await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn client_rate_keeps_the_server_under_rate_plus_burst() {
    // --rate 10 with a burst of 10: at most 20 requests in any 1 s window, which the server
    // enforces per bucket. Zero 429s means the client never exceeded it.
    let server = spawn_server_with(|c| c.rate_limits = "all=20/1s".parse().unwrap()).await;
    let lib = Library::new();
    let (manifest, _) = lib.batch(40, |i| 1000 + i);
    let report_path = lib.path("r.json");
    let started = Instant::now();
    let out = avbatch(
        &[
            "upload",
            manifest.to_str().unwrap(),
            "--base-url",
            &server.url,
            "--rate",
            "10",
            "-c",
            "16",
            "--report",
            report_path.to_str().unwrap(),
        ],
        Some(KEY),
    );
    assert!(out.status.success(), "{}", text(&out));
    let rep = report(&report_path);
    assert_eq!(rep["summary"]["uploaded"], 40);
    assert_eq!(
        rep["summary"]["throttled"], 0,
        "the server answered 429: the client exceeded rate + burst\n{rep}"
    );
    // 80 limited requests at 10/s after a burst of 10 cannot take less than 7 s.
    assert!(
        started.elapsed() >= Duration::from_secs(6),
        "the rate was not applied: {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn storms_and_503s_still_end_byte_exact() {
    let server = spawn_server_with(|c| {
        c.faults.fail_rate = 0.1;
        c.faults.storm = Some("3s:500ms".parse().unwrap());
        c.faults.seed = Some(4);
    })
    .await;
    let lib = Library::new();
    let (manifest, sources) = lib.batch(8, |i| 11 * MIB + i * 7);
    let report_path = lib.path("r.json");
    let out = avbatch(
        &[
            "upload",
            manifest.to_str().unwrap(),
            "--base-url",
            &server.url,
            "--chunk-size",
            "5MiB",
            "-c",
            "4",
            "--report",
            report_path.to_str().unwrap(),
        ],
        Some(KEY),
    );
    assert!(out.status.success(), "{}", text(&out));
    let rep = report(&report_path);
    assert!(
        rep["summary"]["retries"].as_u64().unwrap() > 0,
        "faults were injected, so there must be retries: {rep}"
    );
    let videos = server.all_videos().await;
    assert_eq!(videos.len(), 8, "no duplicates after retried creates");
    for (i, row) in rep["rows"].as_array().unwrap().iter().enumerate() {
        let id = row["videoId"].as_str().unwrap();
        let back = server.source_of(id).await;
        assert!(back == sources[i].as_slice(), "video {i} differs");
    }
}

/// Peak `RssAnon` and `VmHWM` (kB) of a child, polled until it exits.
fn run_measuring_rss(mut cmd: Command) -> (Output, u64, u64) {
    let child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    let sampler = std::thread::spawn(move || {
        let mut peak_anon = 0;
        let mut hwm = 0;
        while rx.try_recv().is_err() {
            if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
                for line in status.lines() {
                    let kb = |l: &str| {
                        l.split_whitespace().nth(1).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
                    };
                    if line.starts_with("RssAnon:") {
                        peak_anon = peak_anon.max(kb(line));
                    } else if line.starts_with("VmHWM:") {
                        hwm = hwm.max(kb(line));
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        (peak_anon, hwm)
    });
    let out = child.wait_with_output().expect("wait");
    tx.send(()).unwrap();
    let (anon, hwm) = sampler.join().unwrap();
    (out, anon, hwm)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_2_gib_sparse_file_uploads_in_bounded_memory() {
    let server = spawn_server_with(|c| c.discard = true).await;
    let lib = Library::new();
    let big = lib.path("sparse.bin");
    let f = std::fs::File::create(&big).unwrap();
    f.set_len(2 * 1024 * 1024 * 1024).unwrap();
    drop(f);
    let manifest = lib.manifest("path\nsparse.bin\n");
    let report_path = lib.path("r.json");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_avbatch"));
    cmd.args([
        "upload",
        manifest.to_str().unwrap(),
        "--base-url",
        &server.url,
        "-q",
        "--report",
        report_path.to_str().unwrap(),
    ])
    .env("AVBATCH_API_KEY", KEY);
    let (out, anon_kb, hwm_kb) = run_measuring_rss(cmd);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(report(&report_path)["summary"]["bytes"], 2u64 * 1024 * 1024 * 1024);
    assert_eq!(server.server.received_bytes(), 2 * 1024 * 1024 * 1024);
    assert!(anon_kb < 100 * 1024, "peak RssAnon {anon_kb} kB over 100 MiB");
    // Pages of parts already sent are released: total RSS stays far below the file's 2 GiB.
    assert!(hwm_kb < 256 * 1024, "peak RSS {hwm_kb} kB: mapped pages were not released");
    eprintln!(
        "2 GiB sparse upload: peak RssAnon {} MiB, peak RSS {} MiB",
        anon_kb / 1024,
        hwm_kb / 1024
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_key_appears_nowhere() {
    let secret = "SUPER-secret-key-4f1c9e2b";
    let server =
        spawn_server_with(|c| c.api_keys = vec![avbatch_api::secret::ApiKey::new(secret)]).await;
    let lib = Library::new();
    lib.file("a.mp4", 6 * MIB, 1);
    lib.file("b.mp4", 10, 2);
    let manifest = lib.manifest("path\na.mp4\nb.mp4\nmissing-later.mp4\n");
    std::fs::write(lib.path("missing-later.mp4"), b"x").unwrap();
    let report_csv = lib.path("r.csv");
    let mut outputs = Vec::new();
    for verbosity in [None, Some("-v"), Some("-vv")] {
        let mut args = vec![
            "upload",
            manifest.to_str().unwrap(),
            "--base-url",
            &server.url,
            "--chunk-size",
            "5MiB",
            "--report",
            report_csv.to_str().unwrap(),
        ];
        args.extend(verbosity);
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_avbatch"));
        cmd.args(&args)
            .env("AVBATCH_API_KEY", secret)
            .env("RUST_LOG", if verbosity.is_some() { "trace" } else { "info" });
        let out = cmd.output().unwrap();
        outputs.push(text(&out));
        outputs.push(std::fs::read_to_string(&report_csv).unwrap_or_default());
    }
    // A wrong key must not be echoed either.
    let out = avbatch(
        &["upload", manifest.to_str().unwrap(), "--base-url", &server.url, "-vv"],
        Some("WRONG-secret-key-77aa"),
    );
    assert_eq!(out.status.code(), Some(3), "a refused key exits 3: {}", text(&out));
    outputs.push(text(&out));
    for o in &outputs {
        assert!(
            !o.contains(secret) && !o.contains("WRONG-secret-key-77aa"),
            "the API key leaked:\n{o}"
        );
    }
    assert!(outputs[0].contains("uploaded"), "the run itself worked: {}", outputs[0]);
}

#[tokio::test(flavor = "multi_thread")]
async fn parts_mode_and_local_env() {
    // `--env local` starts its own server: the README's quick start, on the example library.
    let lib = Library::new();
    let data = pattern(11 * MIB, 9);
    std::fs::write(lib.path("x.mp4"), &data).unwrap();
    let manifest = lib.manifest("path,title\nx.mp4,Local\n");
    let report_path = lib.path("r.json");
    let local = lib.path("local-data");
    let out = avbatch(
        &[
            "upload",
            manifest.to_str().unwrap(),
            "--env",
            "local",
            "--local-data",
            local.to_str().unwrap(),
            "--mode",
            "parts",
            "--chunk-size",
            "5MiB",
            "--report",
            report_path.to_str().unwrap(),
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out));
    let rep = report(&report_path);
    assert_eq!(rep["rows"][0]["parts"], 3);
    let id = rep["rows"][0]["videoId"].as_str().unwrap();
    let stored: Vec<String> = std::fs::read_dir(local.join("videos").join(id))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    for part in ["part-1-of-3.chunk", "part-2-of-3.chunk", "part-3-of-3.chunk"] {
        assert!(stored.contains(&part.to_owned()), "{part} missing from {stored:?}");
    }
    let mut joined = Vec::new();
    for part in 1..=3 {
        joined.extend(
            std::fs::read(local.join("videos").join(id).join(format!("part-{part}-of-3.chunk")))
                .unwrap(),
        );
    }
    assert!(joined == data, "the parts reassemble to the file");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(id),
        "stdout maps the row to its videoId"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_refresh_before_expiry_and_after_a_401() {
    // Access tokens live 1 s and every request waits 300 ms at the server before its token is
    // checked, so tokens expire both between calls and in flight during this run.
    let server = spawn_server_with(|c| {
        c.token_ttl = Duration::from_secs(1);
        c.faults.latency = Duration::from_millis(300);
    })
    .await;
    let lib = Library::new();
    let (manifest, sources) = lib.batch(3, |_| 16 * MIB);
    let report_path = lib.path("r.json");
    let out = avbatch(
        &[
            "upload",
            manifest.to_str().unwrap(),
            "--base-url",
            &server.url,
            "--chunk-size",
            "5MiB",
            "-c",
            "1",
            "--report",
            report_path.to_str().unwrap(),
        ],
        Some(KEY),
    );
    assert!(out.status.success(), "{}", text(&out));
    let rep = report(&report_path);
    assert!(
        rep["summary"]["seconds"].as_f64().unwrap() > 3.0,
        "the run must outlive several tokens: {rep}"
    );
    for (i, row) in rep["rows"].as_array().unwrap().iter().enumerate() {
        let id = row["videoId"].as_str().unwrap();
        let back = server.source_of(id).await;
        assert!(back == sources[i].as_slice(), "video {i} differs");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn delegated_upload_with_an_upload_token() {
    let server = spawn_server().await;
    let token: Value = server
        .http
        .post(format!("{}/upload-tokens", server.url))
        .header("Authorization", server.basic())
        .json(&serde_json::json!({"ttl": 3600}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["token"].as_str().unwrap().to_owned();
    let lib = Library::new();
    let a = lib.file("delegated.mp4", 12 * MIB + 5, 3);
    let b = lib.file("small.mp4", 1000, 4);
    let manifest = lib.manifest("path,title,tags\ndelegated.mp4,Delegated,x\nsmall.mp4,Small,y\n");
    let report_path = lib.path("r.json");
    // No API key at all: the token alone cannot give a video its row's fields (issue #11), so a
    // manifest that sets them is refused before anything is sent.
    let token_only = |manifest: &std::path::Path| {
        avbatch(
            &[
                "upload",
                manifest.to_str().unwrap(),
                "--base-url",
                &server.url,
                "--upload-token",
                &token,
                "--chunk-size",
                "5MiB",
                "--report",
                report_path.to_str().unwrap(),
            ],
            None,
        )
    };
    let out = token_only(&manifest);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 2: title, tags")
            && err.contains("line 3: title, tags")
            && err.contains("AVBATCH_API_KEY"),
        "{err}"
    );
    assert!(server.all_videos().await.is_empty(), "nothing was sent");
    let plain = lib.path("plain.csv");
    std::fs::write(&plain, "path\ndelegated.mp4\nsmall.mp4\n").unwrap();
    let out = token_only(&plain);
    assert!(out.status.success(), "{}", text(&out));
    let rep = report(&report_path);
    assert_eq!(server.all_videos().await.len(), 2, "chained chunks go to one video each");
    for (row, source) in rep["rows"].as_array().unwrap().iter().zip([&a, &b]) {
        let id = row["videoId"].as_str().expect("the first chunk's answer names the video");
        let back = server.source_of(id).await;
        assert!(back == source.as_slice());
    }
    // With a key too, the video is created with the row's fields and the parts go through the
    // token.
    let out = avbatch(
        &[
            "upload",
            manifest.to_str().unwrap(),
            "--base-url",
            &server.url,
            "--upload-token",
            &token,
            "--chunk-size",
            "5MiB",
            "--report",
            report_path.to_str().unwrap(),
            "--no-journal",
        ],
        Some(KEY),
    );
    assert!(out.status.success(), "{}", text(&out));
    let rep = report(&report_path);
    let id = rep["rows"][0]["videoId"].as_str().unwrap();
    let video = server.get_json(&format!("/videos/{id}")).await;
    assert_eq!(
        (video["title"].as_str(), video["tags"][0].as_str()),
        (Some("Delegated"), Some("x"))
    );

    // A refused token: exit 3, and the token itself is printed nowhere.
    let bogus = "toBOGUStokenBOGUStoken00";
    let out = avbatch(
        &[
            "upload",
            plain.to_str().unwrap(),
            "--base-url",
            &server.url,
            "--upload-token",
            bogus,
            "-vv",
            "--report",
            report_path.to_str().unwrap(),
            "--no-journal",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let all = format!("{}{}", text(&out), std::fs::read_to_string(&report_path).unwrap());
    assert!(all.contains("authentication-invalid-upload-token"), "{all}");
    assert!(!all.contains(bogus), "the upload token leaked:\n{all}");
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_stops_cleanly_with_the_summary_so_far() {
    // 2 MiB/s per connection: each 6 MiB file takes about 3 s, so SIGINT lands mid-batch.
    let server = spawn_server_with(|c| c.faults.bandwidth = Some(2 * MIB as u64)).await;
    let lib = Library::new();
    let (manifest, _) = lib.batch(6, |_| 6 * MIB);
    let report_path = lib.path("r.json");
    let child = Command::new(env!("CARGO_BIN_EXE_avbatch"))
        .args([
            "upload",
            manifest.to_str().unwrap(),
            "--base-url",
            &server.url,
            "--chunk-size",
            "5MiB",
            "-c",
            "2",
            "--report",
            report_path.to_str().unwrap(),
        ])
        .env("AVBATCH_API_KEY", KEY)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap()).await.unwrap();
    assert_eq!(out.status.code(), Some(130), "interrupted exits 130\n{}", text(&out));
    let rep = report(&report_path);
    let s = &rep["summary"];
    assert_eq!(s["failed"], 0, "an interruption is not a failure: {rep}");
    assert!(s["pending"].as_u64().unwrap() + s["interrupted"].as_u64().unwrap() > 0, "{rep}");
    assert_eq!(s["rows"], 6);
    // Parts in flight were allowed to finish: every acknowledged byte is on the server.
    for row in rep["rows"].as_array().unwrap() {
        if let Some(id) = row["videoId"].as_str() {
            let status = server.get_json(&format!("/videos/{id}/status")).await;
            let received: u64 = status["ingest"]["receivedBytes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["to"].as_u64().unwrap() - r["from"].as_u64().unwrap() + 1)
                .sum();
            assert_eq!(
                received,
                row["bytes"].as_u64().unwrap(),
                "the report matches what the server holds: {row}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn lost_answers_never_duplicate_a_video_or_a_part() {
    // A third of all answers are lost after the request took effect: creates must be found by
    // their key, parts confirmed through /status, never sent twice.
    let server = spawn_server_with(|c| {
        c.faults.lose_rate = 0.3;
        c.faults.seed = Some(11);
    })
    .await;
    let lib = Library::new();
    let (manifest, sources) = lib.batch(8, |i| 11 * MIB + i * 3);
    let report_path = lib.path("r.json");
    let out = avbatch(
        &[
            "upload",
            manifest.to_str().unwrap(),
            "--base-url",
            &server.url,
            "--chunk-size",
            "5MiB",
            "-c",
            "4",
            "--report",
            report_path.to_str().unwrap(),
        ],
        Some(KEY),
    );
    assert!(out.status.success(), "{}", text(&out));
    let rep = report(&report_path);
    assert!(
        rep["summary"]["retries"].as_u64().unwrap() > 0,
        "answers were lost, so there were retries: {rep}"
    );
    // Other requests' answers get lost too, so read the list until one answer arrives.
    let videos = loop {
        if let Ok(r) = server
            .http
            .get(format!("{}/videos?pageSize=100", server.url))
            .header("Authorization", server.basic())
            .send()
            .await
        {
            if let Ok(v) = r.json::<Value>().await {
                break v["data"].as_array().unwrap().clone();
            }
        }
    };
    assert_eq!(videos.len(), 8, "exactly one video per row");
    for (i, row) in rep["rows"].as_array().unwrap().iter().enumerate() {
        let id = row["videoId"].as_str().unwrap();
        let back = server.source_of(id).await;
        assert!(back == sources[i].as_slice(), "video {i} differs");
        assert_eq!(row["parts"], 3);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_row_does_not_stop_the_batch_and_exits_1() {
    // 1 MiB/s per connection and one video at a time: while the first file uploads, the third is
    // rewritten with another size, so its row fails and the others still upload.
    let server = spawn_server_with(|c| c.faults.bandwidth = Some(MIB as u64)).await;
    let lib = Library::new();
    lib.file("a.mp4", 2 * MIB, 1);
    let b = lib.file("b.mp4", 1000, 2);
    lib.file("c.mp4", 1000, 3);
    let manifest = lib.manifest("path\na.mp4\nb.mp4\nc.mp4\n");
    let report_path = lib.path("r.json");
    let child = Command::new(env!("CARGO_BIN_EXE_avbatch"))
        .args([
            "upload",
            manifest.to_str().unwrap(),
            "--base-url",
            &server.url,
            "-c",
            "1",
            "--report",
            report_path.to_str().unwrap(),
        ])
        .env("AVBATCH_API_KEY", KEY)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    std::fs::write(lib.path("c.mp4"), pattern(2000, 3)).unwrap();
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap()).await.unwrap();
    assert_eq!(out.status.code(), Some(1), "some rows failed: exit 1\n{}", text(&out));
    let rep = report(&report_path);
    let statuses: Vec<&str> =
        rep["rows"].as_array().unwrap().iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["uploaded", "uploaded", "failed"], "{rep}");
    assert!(
        rep["rows"][2]["error"]
            .as_str()
            .unwrap()
            .contains("changed since the manifest was checked"),
        "{rep}"
    );
    let id = rep["rows"][1]["videoId"].as_str().unwrap();
    let back = server.source_of(id).await;
    assert!(back == b.as_slice());
}

#[tokio::test(flavor = "multi_thread")]
async fn bandwidth_caps_the_whole_run() {
    let server = spawn_server().await;
    let lib = Library::new();
    lib.file("a.mp4", 6 * MIB, 1);
    lib.file("b.mp4", 6 * MIB, 2);
    let manifest = lib.manifest("path\na.mp4\nb.mp4\n");
    let started = Instant::now();
    let out = avbatch(
        &[
            "upload",
            manifest.to_str().unwrap(),
            "--base-url",
            &server.url,
            "--bandwidth",
            "4MiB",
            "-c",
            "2",
            "-q",
        ],
        Some(KEY),
    );
    assert!(out.status.success(), "{}", text(&out));
    // 12 MiB at 4 MiB/s across both sessions, after a burst of a quarter second: at least 2.5 s.
    assert!(
        started.elapsed() >= Duration::from_millis(2500),
        "--bandwidth was not applied: {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_next_video_is_made_while_the_lane_still_uploads() {
    // One lane (`-c 1`), each request held 100 ms and each 1 MiB body taking a second: the next
    // row's lookup and create run while this row's part is on the wire, so its video exists
    // before this row ends, and the lane spends no round trip of its own on them.
    let server = spawn_server_with(|c| {
        c.faults.latency = Duration::from_millis(100);
        c.faults.bandwidth = Some(MIB as u64);
    })
    .await;
    let lib = Library::new();
    let (manifest, sources) = lib.batch(3, |_| MIB);
    let report_path = lib.path("report.json");
    let out = avbatch(
        &[
            "upload",
            manifest.to_str().unwrap(),
            "--base-url",
            &server.url,
            "--no-journal",
            "-c",
            "1",
            "-vv",
            "--log-format",
            "json",
            "--report",
            report_path.to_str().unwrap(),
        ],
        Some(KEY),
    );
    assert!(out.status.success(), "{}", text(&out));
    let events: Vec<Value> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let at = |message: &str, key: &str| {
        events
            .iter()
            .position(|e| e["message"] == message && e["key"] == key)
            .unwrap_or_else(|| panic!("no `{message}` event for {key}: {}", text(&out)))
    };
    for i in 0..2 {
        let (this, next) = (
            avbatch_core::manifest::id_key(&format!("id-{i}")),
            avbatch_core::manifest::id_key(&format!("id-{}", i + 1)),
        );
        assert!(
            at("journal: row started", &next) < at("row ended", &this),
            "row {next} was prepared only after {this} ended"
        );
    }
    let rep = report(&report_path);
    for (i, source) in sources.iter().enumerate() {
        let id = rep["rows"][i]["videoId"].as_str().unwrap();
        assert!(server.source_of(id).await == source.as_slice(), "row {i} differs on the server");
    }
}
