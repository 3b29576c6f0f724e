//! Issue #16: rows whose `path` is a URL, through the real binary, a real `avbatch serve`
//! process, a real S3 server (moto, `common/s3.rs`) and a small web server (`common/web.rs`),
//! all on 127.0.0.1. Pulled (api.video, here the double, fetches the URL) and relayed
//! (`--relay`: read here, sent as parts) sources arrive byte for byte; a relay killed midway
//! resumes and sends each part once; an object that disappears or changes mid-relay fails its
//! row; bad credentials and a missing object are refused before anything is sent.

use crate::common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::batch::*;
use common::s3::{self, Moto};
use common::web::{web_server, WebObject};
use common::{KEY, MIB};
use rand::RngCore;
use serde_json::Value;

fn random(len: usize) -> Vec<u8> {
    let mut bytes = vec![0; len];
    rand::rng().fill_bytes(&mut bytes);
    bytes
}

/// `avbatch upload MANIFEST --base-url URL --chunk-size 5MiB -q --report REPORT EXTRA` with the
/// test key and `env` (the S3 server's).
fn upload(url: &str, dir: &Path, env: &[(String, String)], extra: &[&str]) -> Command {
    let mut cmd = avbatch();
    cmd.args(["upload", "manifest.csv", "--base-url", url, "--chunk-size", "5MiB", "-q"])
        .args(["--report", "report.json"])
        .args(extra)
        .current_dir(dir)
        .env("AVBATCH_API_KEY", KEY)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    cmd
}

fn report(dir: &Path) -> Vec<Value> {
    let text = std::fs::read(dir.join("report.json")).expect("the report was written");
    let doc: Value = serde_json::from_slice(&text).unwrap();
    doc["rows"].as_array().unwrap().clone()
}

/// `(status, transfer, sent)` of a report row.
fn said(row: &Value) -> (String, String, u64) {
    let text = |k: &str| row[k].as_str().unwrap_or("").to_owned();
    (text("status"), text("transfer"), row["sent"].as_u64().unwrap())
}

/// The request log's lines.
fn logged(log: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

async fn moto_with(objects: &[(&str, &[u8])]) -> Moto {
    let moto = s3::start();
    moto.create_bucket("lib").await;
    for (key, bytes) in objects {
        moto.put("lib", key, bytes.to_vec()).await;
    }
    moto
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pulled_and_relayed_sources_arrive_byte_for_byte() {
    let (a, b, c) = (random(7 * MIB + 11), random(300_000), random(2 * MIB + 3));
    let moto = moto_with(&[("media/a.mp4", &a), ("media/b.mp4", &b)]).await;
    let web = WebObject::new(c.clone(), None);
    let site = web_server(web.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let log = dir.path().join("requests.jsonl");
    let serve = serve_on("127.0.0.1:0", &data, &["--request-log", log.to_str().unwrap()]).await;
    let url = serve.url.clone();
    let manifest = format!(
        "id,path,title\n\
         a,s3://lib/media/a.mp4,From a bucket\n\
         b,s3://lib/media/b.mp4,\n\
         c,{site}/site/c.mp4,From a web server\n"
    );
    std::fs::write(dir.path().join("manifest.csv"), &manifest).unwrap();

    // The dry run: three pulls, one write each, no part to send.
    let env = moto.env();
    let dry = run(upload(&url, dir.path(), &env, &["--dry-run", "--json"]), LIMIT).await;
    assert_eq!(dry.code, Some(0), "{}", dry.text());
    let plan: Value = serde_json::from_str(&dry.stdout).unwrap();
    let actions: Vec<&str> =
        plan["plan"].as_array().unwrap().iter().map(|r| r["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["pull", "pull", "pull"]);
    let requests = &plan["estimate"]["requests"];
    assert_eq!((requests["uploads"].as_u64(), requests["writes"].as_u64()), (Some(0), Some(3)));

    // Pulled: the video made with a presigned URL (the bucket's) or the URL itself.
    let done = run(upload(&url, dir.path(), &env, &["--wait", "playable"]), LIMIT).await;
    assert_eq!(done.code, Some(0), "{}", done.text());
    let rows = report(dir.path());
    for row in &rows {
        assert_eq!(said(row), ("uploaded".into(), "pull".into(), 0), "{row:#}");
        assert_eq!(row["encoding"], "playable", "{row:#}");
    }
    assert_eq!(rows[1]["title"], "b", "the title from the object's name");
    for (row, bytes) in rows.iter().zip([&a, &b, &c]) {
        assert_eq!(row["bytes"].as_u64(), Some(bytes.len() as u64));
        let source = source_of(&url, row["videoId"].as_str().unwrap()).await;
        assert!(source == *bytes, "{} arrived whole", row["id"]);
    }
    let sent: Vec<Value> = logged(&log)
        .into_iter()
        .filter(|l| l["method"] == "POST" && l["path"].as_str().unwrap().ends_with("/source"))
        .collect();
    assert!(sent.is_empty(), "nothing was uploaded: {sent:#?}");
    let creates =
        logged(&log).iter().filter(|l| l["method"] == "POST" && l["path"] == "/videos").count();
    assert_eq!(creates, 3, "the estimate's writes: one create a row");
    // The presigned URL's signature never shows.
    assert!(!done.stderr.contains("X-Amz-Signature"), "{}", done.stderr);

    // Again: nothing to do.
    let again = run(upload(&url, dir.path(), &env, &[]), LIMIT).await;
    assert_eq!(again.code, Some(0), "{}", again.text());
    assert!(report(dir.path()).iter().all(|r| r["status"] == "skipped"));
    assert_eq!(list_videos(&url).await.len(), 3);

    // Relayed, as new rows: read here in ranges, sent as 5 MiB parts.
    let relayed = manifest.replace("a,", "ra,").replace("b,s3", "rb,s3").replace("c,", "rc,");
    std::fs::write(dir.path().join("manifest.csv"), relayed).unwrap();
    let heads = web.heads();
    let done = run(upload(&url, dir.path(), &env, &["--relay"]), LIMIT).await;
    assert_eq!(done.code, Some(0), "{}", done.text());
    // The web server's object: looked at up front and when its row starts, not before its part
    // (the ranged read asks for its version itself, `If-Match`).
    assert_eq!(web.heads() - heads, 2, "HEADs of the relayed web object");
    let rows = report(dir.path());
    for (row, bytes) in rows.iter().zip([&a, &b, &c]) {
        assert_eq!(said(row), ("uploaded".into(), "relay".into(), bytes.len() as u64));
        let parts = bytes.len().div_ceil(5 * MIB) as u64;
        assert_eq!(row["parts"].as_u64(), Some(parts), "{row:#}");
        let source = source_of(&url, row["videoId"].as_str().unwrap()).await;
        assert!(source == *bytes, "{} relayed whole", row["id"]);
    }
    assert_eq!(list_videos(&url).await.len(), 6);
}

const LIMIT: Duration = Duration::from_secs(120);

/// The video the server holds some but not all of, once it holds at least `least` bytes.
async fn partly_held(url: &str, least: u64) -> String {
    let started = Instant::now();
    loop {
        for v in list_videos(url).await {
            let id = v["videoId"].as_str().unwrap().to_owned();
            if held_bytes(url, &id).await >= least {
                return id;
            }
        }
        assert!(started.elapsed() < Duration::from_secs(60), "no video got {least} bytes");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A 16 MiB object in moto, `s3://lib/big.mp4`, half relayed: a `--relay` run of `manifest`
/// killed (kill -9) once the server holds a part of it, at 4 MiB/s. Bind `_moto` and `_serve`
/// by name: dropped, they stop their servers.
struct HalfRelayed {
    object: Vec<u8>,
    _moto: Moto,
    env: Vec<(String, String)>,
    dir: tempfile::TempDir,
    _serve: ServeProcess,
    url: String,
    video: String,
    held: u64,
}

async fn half_relayed(manifest: &str) -> HalfRelayed {
    let object = random(16 * MIB + 99);
    let moto = moto_with(&[("big.mp4", &object)]).await;
    let dir = tempfile::tempdir().unwrap();
    // 4 MiB/s: the first part in about a second, the whole in about four.
    let serve = serve_on("127.0.0.1:0", &dir.path().join("data"), &["--bandwidth", "4MiB"]).await;
    let url = serve.url.clone();
    std::fs::write(dir.path().join("manifest.csv"), manifest).unwrap();
    let env = moto.env();
    let first = Running::start(upload(&url, dir.path(), &env, &["--relay"]));
    let video = partly_held(&url, 5 * MIB as u64).await;
    // Time for the journal to record the part the server holds (milliseconds), not for the
    // next to arrive (1.25 s at 4 MiB/s): a resumed run's total then takes it off up front.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = first.kill9();
    let held = held_bytes(&url, &video).await;
    assert!(held < object.len() as u64, "killed before the end ({held} bytes held)");
    HalfRelayed { object, _moto: moto, env, dir, _serve: serve, url, video, held }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_relay_resumes_and_sends_each_part_once() {
    // No `id`: the row's key is made of its object's URL, size and time.
    let HalfRelayed { object: bytes, env, dir, url, video, held, _moto, _serve } =
        half_relayed("path\ns3://lib/big.mp4\n").await;

    // `avbatch clean` keys the row as the run did, by its object: the partial video is listed.
    let mut clean = avbatch();
    clean
        .args(["clean", "manifest.csv", "--base-url", &url, "--older-than", "0s", "--json"])
        .current_dir(dir.path())
        .env("AVBATCH_API_KEY", KEY)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let listed = run(clean, LIMIT).await;
    assert_eq!(listed.code, Some(0), "{}", listed.text());
    let doc: Value = serde_json::from_str(&listed.stdout).unwrap();
    let leftovers: Vec<&str> = doc["leftovers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["videoId"].as_str().unwrap())
        .collect();
    assert_eq!(leftovers, [video.as_str()], "{doc:#}");

    let done = run(upload(&url, dir.path(), &env, &["--relay"]), LIMIT).await;
    assert_eq!(done.code, Some(0), "{}", done.text());
    let row = report(dir.path())[0].clone();
    assert_eq!(row["videoId"], video.as_str(), "the same video, continued");
    let sent = row["sent"].as_u64().unwrap();
    assert_eq!(sent, bytes.len() as u64 - held, "only what the server lacked: {row:#}");
    assert!(source_of(&url, &video).await == bytes, "the relayed source is whole");
    assert_eq!(list_videos(&url).await.len(), 1, "one video");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_object_that_goes_or_changes_mid_relay_fails_its_row() {
    let (gone, changing) = (random(16 * MIB), random(16 * MIB));
    let moto = moto_with(&[("gone.mp4", &gone), ("changing.mp4", &changing)]).await;
    let dir = tempfile::tempdir().unwrap();
    let serve = serve_on("127.0.0.1:0", &dir.path().join("data"), &["--bandwidth", "4MiB"]).await;
    let url = serve.url.clone();
    std::fs::write(
        dir.path().join("manifest.csv"),
        "id,path\ngone,s3://lib/gone.mp4\nchanging,s3://lib/changing.mp4\n",
    )
    .unwrap();
    let env = moto.env();
    let running = Running::start(upload(&url, dir.path(), &env, &["--relay", "-c", "2"]));
    // Both under way: then one object goes, the other is replaced by a longer one.
    let started = Instant::now();
    loop {
        let mut under_way = 0;
        for v in list_videos(&url).await {
            if held_bytes(&url, v["videoId"].as_str().unwrap()).await > 0 {
                under_way += 1;
            }
        }
        if under_way == 2 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "both relays start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    moto.delete("lib", "gone.mp4").await;
    moto.put("lib", "changing.mp4", random(17 * MIB)).await;
    let done = running.finish(LIMIT).await;
    assert_eq!(done.code, Some(1), "{}", done.text());
    let rows = report(dir.path());
    let error = |i: usize| rows[i]["error"].as_str().unwrap_or("").to_owned();
    assert_eq!(
        (rows[0]["status"].as_str(), rows[1]["status"].as_str()),
        (Some("failed"), Some("failed"))
    );
    assert!(
        error(0).contains("s3://lib/gone.mp4") && error(0).contains("no such object"),
        "{}",
        error(0)
    );
    assert!(error(1).contains("changed since it was first read"), "{}", error(1));
    for row in &rows {
        let id = row["videoId"].as_str().expect("the video made is kept");
        assert!(held_bytes(&url, id).await < 16 * MIB as u64, "never completed with a mix");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_credentials_and_missing_objects_are_refused_before_anything_is_sent() {
    let bytes = random(MIB);
    let moto = moto_with(&[("v.mp4", &bytes)]).await;
    let (key_id, secret) = moto.check_credentials().await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("requests.jsonl");
    let serve = serve_on(
        "127.0.0.1:0",
        &dir.path().join("data"),
        &["--request-log", log.to_str().unwrap()],
    )
    .await;
    let url = serve.url.clone();
    std::fs::write(dir.path().join("manifest.csv"), "id,path\nv,s3://lib/v.mp4\n").unwrap();

    let wrong = moto.env_with(&key_id, "not-the-secret");
    let refused = run(upload(&url, dir.path(), &wrong, &["--relay"]), LIMIT).await;
    assert_eq!(refused.code, Some(2), "{}", refused.text());
    assert!(refused.stderr.contains("line 2, column `path`"), "{}", refused.stderr);
    assert!(refused.stderr.contains("access denied"), "{}", refused.stderr);
    assert!(refused.stderr.contains("AWS_SECRET_ACCESS_KEY"), "{}", refused.stderr);
    assert!(!refused.stderr.contains("not-the-secret"), "{}", refused.stderr);
    assert!(logged(&log).is_empty(), "nothing reached the API");

    // A missing object too, with its line.
    std::fs::write(
        dir.path().join("manifest.csv"),
        "id,path\nv,s3://lib/v.mp4\nw,s3://lib/nowhere.mp4\n",
    )
    .unwrap();
    let right = moto.env_with(&key_id, &secret);
    let refused = run(upload(&url, dir.path(), &right, &["--relay"]), LIMIT).await;
    assert_eq!(refused.code, Some(2), "{}", refused.text());
    assert!(refused.stderr.contains("line 3, column `path`: missing object"), "{}", refused.stderr);
    assert!(!refused.stderr.contains(&secret), "{}", refused.stderr);

    // With the right keys and the object there, it goes.
    std::fs::write(dir.path().join("manifest.csv"), "id,path\nv,s3://lib/v.mp4\n").unwrap();
    let done = run(upload(&url, dir.path(), &right, &["--relay"]), LIMIT).await;
    assert_eq!(done.code, Some(0), "{}", done.text());
    let id = report(dir.path())[0]["videoId"].as_str().unwrap().to_owned();
    assert!(source_of(&url, &id).await == bytes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_relay_keeps_to_the_bandwidth_limit() {
    let bytes = random(MIB);
    let moto = moto_with(&[("paced.mp4", &bytes)]).await;
    let dir = tempfile::tempdir().unwrap();
    let serve = serve_on("127.0.0.1:0", &dir.path().join("data"), &[]).await;
    std::fs::write(dir.path().join("manifest.csv"), "id,path\np,s3://lib/paced.mp4\n").unwrap();
    // The store sends its pieces as large as it likes; the limit holds all the same. A lower
    // bound only: a slow machine takes longer, never shorter.
    let started = Instant::now();
    // 128 KiB/s paces in bursts of a quarter second, 32 KiB: smaller than a store's pieces.
    let args = ["--relay", "--bandwidth", "128KiB"];
    let done = run(upload(&serve.url, dir.path(), &moto.env(), &args), LIMIT).await;
    assert_eq!(done.code, Some(0), "{}", done.text());
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(7000), "1 MiB at 128 KiB/s took {took:?}");
    let id = report(dir.path())[0]["videoId"].as_str().unwrap().to_owned();
    assert!(source_of(&serve.url, &id).await == bytes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_relay_through_lost_answers_sends_each_part_once() {
    let objects: Vec<Vec<u8>> = (0..3).map(|_| random(11 * MIB)).collect();
    let moto =
        moto_with(&[("0.mp4", &objects[0]), ("1.mp4", &objects[1]), ("2.mp4", &objects[2])]).await;
    let dir = tempfile::tempdir().unwrap();
    // A third of the answers never come, although the request took effect.
    let lossy = ["--lose-rate", "0.33", "--seed", "16"];
    let serve = serve_on("127.0.0.1:0", &dir.path().join("data"), &lossy).await;
    let csv = "id,path\nr0,s3://lib/0.mp4\nr1,s3://lib/1.mp4\nr2,s3://lib/2.mp4\n";
    std::fs::write(dir.path().join("manifest.csv"), csv).unwrap();
    let done = run(upload(&serve.url, dir.path(), &moto.env(), &["--relay"]), LIMIT).await;
    assert_eq!(done.code, Some(0), "{}", done.text());
    let rows = report(dir.path());
    for (row, bytes) in rows.iter().zip(&objects) {
        assert_eq!(said(row), ("uploaded".into(), "relay".into(), bytes.len() as u64));
        let source = source_of(&serve.url, row["videoId"].as_str().unwrap()).await;
        assert!(source == *bytes, "{} relayed whole", row["id"]);
    }
    assert_eq!(list_videos(&serve.url).await.len(), 3, "one video a row");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_url_with_a_token_is_read_but_never_written_whole() {
    let bytes = random(MIB + 17);
    let token = "s3cr3t-t0ken";
    let web = WebObject::new(bytes.clone(), Some(token));
    let site = web_server(web).await;
    let dir = tempfile::tempdir().unwrap();
    let serve = serve_on("127.0.0.1:0", &dir.path().join("data"), &[]).await;
    let url = serve.url.clone();
    let manifest = |id: &str| format!("id,path\n{id},{site}/media/v.mp4?token={token}\n");
    let seen = |done: &Done, what: &str| {
        let report = std::fs::read_to_string(dir.path().join("report.json")).unwrap_or_default();
        for (text, name) in
            [(&done.stdout, "stdout"), (&done.stderr, "stderr"), (&report, "report")]
        {
            assert!(!text.contains(token), "{what}: the token is in the {name}:\n{text}");
        }
    };
    std::fs::write(dir.path().join("manifest.csv"), manifest("pulled")).unwrap();
    let dry = run(upload(&url, dir.path(), &[], &["--dry-run"]), LIMIT).await;
    assert_eq!(dry.code, Some(0), "{}", dry.text());
    seen(&dry, "the dry run");
    assert!(dry.stdout.contains("/media/v.mp4?…"), "{}", dry.stdout);
    for (id, extra) in [("pulled", &[][..]), ("relayed", &["--relay"][..])] {
        std::fs::write(dir.path().join("manifest.csv"), manifest(id)).unwrap();
        let done = run(upload(&url, dir.path(), &[], extra), LIMIT).await;
        assert_eq!(done.code, Some(0), "{}", done.text());
        seen(&done, id);
        let row = report(dir.path())[0].clone();
        assert_eq!(row["path"], format!("{site}/media/v.mp4?…"));
        let video = row["videoId"].as_str().unwrap().to_owned();
        assert!(source_of(&url, &video).await == bytes, "{id}: read with the token");
    }
}

/// `upload` with no AWS keys of this process's own: `HOME` is `home` and `env` the rest.
fn upload_as(url: &str, dir: &Path, home: &Path, env: &[(&str, &str)]) -> Command {
    let mut cmd = upload(url, dir, &[], &["--relay"]);
    for (name, _) in std::env::vars().filter(|(k, _)| k.starts_with("AWS_")) {
        cmd.env_remove(name);
    }
    cmd.env("HOME", home).envs(env.iter().copied());
    cmd
}

/// Keys found where the AWS CLI finds them (point 1): a profile in `~/.aws/credentials` when
/// the environment has none (`AWS_PROFILE` picks one), else the instance metadata service. Each
/// source is shown to be the one used: moto first takes any keys, then only its IAM user's.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn keys_come_from_a_profile_or_the_instance_metadata_as_the_aws_cli_finds_them() {
    let bytes = random(MIB + 5);
    let moto = moto_with(&[("v.mp4", &bytes)]).await;
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let serve = serve_on("127.0.0.1:0", &dir.path().join("data"), &[]).await;
    let url = serve.url.clone();
    std::fs::write(dir.path().join("manifest.csv"), "id,path\nv,s3://lib/v.mp4\n").unwrap();
    let endpoint = moto.endpoint.clone();
    let base = [
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("AWS_ALLOW_HTTP", "true"),
        ("AWS_REGION", "us-east-1"),
    ];

    // No keys anywhere, and no instance metadata service at its address: a clear refusal.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let nowhere = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let mut env = base.to_vec();
    env.push(("AWS_EC2_METADATA_SERVICE_ENDPOINT", &nowhere));
    let refused = run(upload_as(&url, dir.path(), home.path(), &env), LIMIT).await;
    assert_eq!(refused.code, Some(2), "{}", refused.text());
    assert!(refused.stderr.contains("line 2, column `path`"), "{}", refused.stderr);
    assert!(
        refused.stderr.contains("nor in profile `default`")
            && refused.stderr.contains("instance metadata service gave none"),
        "{}",
        refused.stderr
    );

    // moto answers as an instance's metadata service (IMDSv2) with a role's keys: they are used.
    let mut env = base.to_vec();
    env.push(("AWS_EC2_METADATA_SERVICE_ENDPOINT", &endpoint));
    let done = run(upload_as(&url, dir.path(), home.path(), &env), LIMIT).await;
    assert_eq!(done.code, Some(0), "{}", done.text());
    let first = report(dir.path())[0]["videoId"].as_str().unwrap().to_owned();
    assert!(source_of(&url, &first).await == bytes);

    // From here moto checks keys: the metadata service's are not its IAM user's, and are refused.
    let (key_id, secret) = moto.check_credentials().await;
    std::fs::remove_file(dir.path().join("manifest.csv")).unwrap();
    std::fs::write(dir.path().join("manifest.csv"), "id,path\nw,s3://lib/v.mp4\n").unwrap();
    let refused = run(upload_as(&url, dir.path(), home.path(), &env), LIMIT).await;
    assert_eq!(refused.code, Some(2), "{}", refused.text());
    assert!(refused.stderr.contains("check this machine's role"), "{}", refused.stderr);

    // A profile's keys win over the instance's: the default profile's wrong secret is refused,
    // naming the file; `AWS_PROFILE=migration` picks the right keys.
    std::fs::create_dir(home.path().join(".aws")).unwrap();
    let credentials = home.path().join(".aws/credentials");
    std::fs::write(
        &credentials,
        format!(
            "[default]\naws_access_key_id = {key_id}\naws_secret_access_key = not-it\n\n\
             [migration]\naws_access_key_id = {key_id}\naws_secret_access_key = {secret}\n"
        ),
    )
    .unwrap();
    std::fs::write(home.path().join(".aws/config"), "[profile migration]\nregion = us-east-1\n")
        .unwrap();
    let refused = run(upload_as(&url, dir.path(), home.path(), &env), LIMIT).await;
    assert_eq!(refused.code, Some(2), "{}", refused.text());
    let named = format!("check the keys of profile `default` in {}", credentials.display());
    assert!(refused.stderr.contains(&named), "{}", refused.stderr);
    assert!(!refused.text().contains("not-it"), "{}", refused.text());

    env.push(("AWS_PROFILE", "migration"));
    let done = run(upload_as(&url, dir.path(), home.path(), &env), LIMIT).await;
    assert_eq!(done.code, Some(0), "{}", done.text());
    let second = report(dir.path())[0]["videoId"].as_str().unwrap().to_owned();
    assert_ne!(first, second);
    assert!(source_of(&url, &second).await == bytes);
    assert!(!done.text().contains(&secret));

    // A profile that is not there is an error, not a fall back to other keys.
    env.pop();
    env.push(("AWS_PROFILE", "migraton"));
    let refused = run(upload_as(&url, dir.path(), home.path(), &env), LIMIT).await;
    assert_eq!(refused.code, Some(2), "{}", refused.text());
    assert!(refused.stderr.contains("names the profile `migraton`"), "{}", refused.stderr);
}

/// A row to be pulled whose video an earlier `--relay` run began is finished by relaying its
/// rest (api.video cannot pull into a video that holds parts): the progress's total, which left
/// the pulled row out, takes in those bytes and keeps the other rows', as the screen shows.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pull_row_found_half_relayed_is_counted_in_the_progress_total() {
    let HalfRelayed { object, env, dir, url, video, held, _moto, _serve } =
        half_relayed("id,path\nbig,s3://lib/big.mp4\n").await;

    // This run pulls by default, and has a file of its own to send, after the object's rest
    // (`-c 1`): the journal's held part, taken off the total at the start, is the pulled row's.
    std::fs::write(dir.path().join("local.mp4"), random(4 * MIB)).unwrap();
    std::fs::write(
        dir.path().join("manifest.csv"),
        "id,path\nbig,s3://lib/big.mp4\nlocal,local.mp4\n",
    )
    .unwrap();
    let args: Vec<String> =
        ["upload", "manifest.csv", "--base-url", &url, "--chunk-size", "5MiB", "-c", "1"]
            .iter()
            .map(|a| a.to_string())
            .collect();
    let mut vars = vec![("AVBATCH_API_KEY", KEY)];
    vars.extend(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let mut term = crate::terminal::Terminal::start(dir.path(), &args, &vars);
    let screens = term.watch(Duration::from_secs(90), |s| s.contains("rows uploaded"));
    assert_eq!(term.exit(Duration::from_secs(30)), Some(0), "{}", term.screen());
    let rest = object.len() as u64 - held;
    let whole = format!("{:.2}", (4 * MIB as u64 + rest) as f64 / MIB as f64);
    let file_only = format!("{:.2}", 4.0);
    let totals = crate::terminal::overall_totals(&screens);
    assert!(totals.contains(&whole), "the total took in the relayed rest: {totals:?}");
    assert!(
        totals.iter().all(|t| *t == whole || *t == file_only),
        "the total was never short of what the run sends ({whole} MiB): {totals:?}"
    );
    assert!(source_of(&url, &video).await == object, "the relayed source is whole");
}

/// `az://container/blob` against Azure's own emulator (Azurite): pulled through a SAS URL the
/// double fetches (so the signature is checked by the store, not by us), relayed in ranges, a
/// missing blob and a wrong account key refused before anything is sent. A blob whose name
/// needs percent-encoding is relayed even without `--relay`: object_store signs its encoded
/// name where Azure signs it as it is, so Azure refused the pull (this test found it).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn azure_blobs_are_pulled_and_relayed_byte_for_byte() {
    let Some(azurite) = common::azurite::start() else { return };
    azurite.create_container("lib").await;
    let (a, s, b) = (random(6 * MIB + 7), random(2 * MIB + 1), random(300_001));
    azurite.put("lib", "show/ep1.mp4", a.clone()).await;
    azurite.put("lib", "show/ep 2.mp4", s.clone()).await;
    azurite.put("lib", "b.mp4", b.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("requests.jsonl");
    let data = dir.path().join("data");
    let serve = serve_on("127.0.0.1:0", &data, &["--request-log", log.to_str().unwrap()]).await;
    let url = serve.url.clone();
    let env = azurite.env();
    let manifest = "id,path\na,az://lib/show/ep1.mp4\ns,az://lib/show/ep%202.mp4\n";

    // A wrong key, then a missing blob: refused up front with the line, nothing sent.
    std::fs::write(dir.path().join("manifest.csv"), manifest).unwrap();
    let wrong = azurite.env_with("d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXk=");
    let refused = run(upload(&url, dir.path(), &wrong, &[]), LIMIT).await;
    assert_eq!(refused.code, Some(2), "{}", refused.text());
    assert!(refused.stderr.contains("access denied"), "{}", refused.stderr);
    assert!(refused.stderr.contains("AZURE_STORAGE_ACCOUNT_KEY"), "{}", refused.stderr);
    std::fs::write(dir.path().join("manifest.csv"), "id,path\nz,az://lib/nowhere.mp4\n").unwrap();
    let refused = run(upload(&url, dir.path(), &env, &[]), LIMIT).await;
    assert_eq!(refused.code, Some(2), "{}", refused.text());
    assert!(refused.stderr.contains("line 2, column `path`: missing object"), "{}", refused.stderr);
    assert!(logged(&log).is_empty(), "nothing reached the API");

    // The dry run plans one pull and one relayed upload.
    std::fs::write(dir.path().join("manifest.csv"), manifest).unwrap();
    let dry = run(upload(&url, dir.path(), &env, &["--dry-run", "--json"]), LIMIT).await;
    assert_eq!(dry.code, Some(0), "{}", dry.text());
    let plan: Value = serde_json::from_str(&dry.stdout).unwrap();
    let actions: Vec<&str> =
        plan["plan"].as_array().unwrap().iter().map(|r| r["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["pull", "upload"]);

    // Pulled: a SAS URL, made here with the account key and checked by Azurite; the blob with
    // a space in its name relayed.
    let done = run(upload(&url, dir.path(), &env, &["--wait", "playable"]), LIMIT).await;
    let serve_log = std::fs::read_to_string(data.with_extension("log")).unwrap_or_default();
    assert_eq!(done.code, Some(0), "{}\n{serve_log}", done.text());
    let rows = report(dir.path());
    assert_eq!(said(&rows[0]), ("uploaded".into(), "pull".into(), 0), "{:#}", rows[0]);
    let relayed = ("uploaded".into(), "relay".into(), s.len() as u64);
    assert_eq!(said(&rows[1]), relayed, "{:#}", rows[1]);
    assert_eq!(rows[1]["title"], "ep 2", "the title from the blob's decoded name");
    for (row, bytes) in rows.iter().zip([&a, &s]) {
        let source = source_of(&url, row["videoId"].as_str().unwrap()).await;
        assert!(source == *bytes, "{} arrived whole", row["id"]);
    }
    assert!(!done.text().contains("sig="), "the SAS signature never shows: {}", done.text());

    // Relayed: read here in ranges and sent as parts; then the blob goes, and a run says so.
    std::fs::write(dir.path().join("manifest.csv"), "id,path\nb,az://lib/b.mp4\n").unwrap();
    let done = run(upload(&url, dir.path(), &env, &["--relay"]), LIMIT).await;
    assert_eq!(done.code, Some(0), "{}", done.text());
    let row = report(dir.path())[0].clone();
    assert_eq!(said(&row), ("uploaded".into(), "relay".into(), b.len() as u64), "{row:#}");
    assert!(source_of(&url, row["videoId"].as_str().unwrap()).await == b, "relayed whole");
    azurite.delete("lib", "b.mp4").await;
    std::fs::write(dir.path().join("manifest.csv"), "id,path\nb2,az://lib/b.mp4\n").unwrap();
    let refused = run(upload(&url, dir.path(), &env, &["--relay"]), LIMIT).await;
    assert_eq!(refused.code, Some(2), "{}", refused.text());
    assert!(refused.stderr.contains("missing object"), "{}", refused.stderr);
    assert_eq!(list_videos(&url).await.len(), 3);
}

/// A metadata service that takes connections and never answers (an instance's, one network hop
/// too far for IMDSv2) costs a few seconds, not the 300 s a part's read may take a try.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_metadata_service_that_never_answers_is_given_up_on_in_seconds() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metadata = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("manifest.csv"), "id,path\nv,s3://lib/v.mp4\n").unwrap();
    let env = [
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
        ("AWS_ALLOW_HTTP", "true"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_EC2_METADATA_SERVICE_ENDPOINT", metadata.as_str()),
    ];
    let refused = run(upload_as("http://127.0.0.1:9", dir.path(), home.path(), &env), LIMIT).await;
    assert_eq!(refused.code, Some(2), "within {LIMIT:?}: {}", refused.text());
    assert!(refused.stderr.contains("instance metadata service gave none"), "{}", refused.stderr);
}

/// With no keys in the environment or a profile, a bucket's first object is looked at alone:
/// when the instance metadata service gives no keys, every other row is refused at once with
/// its answer, not after asking again for itself (object_store forgets a failed fetch, and on a
/// machine where the metadata address does not answer each try takes seconds).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_keys_the_metadata_service_is_asked_once_not_once_a_row() {
    const ROWS: usize = 40;
    // A metadata service that hangs up on every connection, counting them.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metadata = format!("http://{}", listener.local_addr().unwrap());
    let asked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = asked.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            drop(socket);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let mut manifest = String::from("id,path\n");
    for i in 0..ROWS {
        manifest.push_str(&format!("v{i},s3://lib/v{i}.mp4\n"));
    }
    std::fs::write(dir.path().join("manifest.csv"), manifest).unwrap();
    let env = [
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
        ("AWS_ALLOW_HTTP", "true"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_EC2_METADATA_SERVICE_ENDPOINT", metadata.as_str()),
    ];
    let refused = run(upload_as("http://127.0.0.1:9", dir.path(), home.path(), &env), LIMIT).await;
    assert_eq!(refused.code, Some(2), "{}", refused.text());
    let lines = refused.stderr.matches("instance metadata service gave none").count();
    assert!(lines >= 10, "every row says why (up to the problems shown): {}", refused.stderr);
    let asked = asked.load(std::sync::atomic::Ordering::SeqCst);
    assert!(asked < ROWS, "the metadata service was asked {asked} times for {ROWS} rows");
}

/// `PUT /bucket/key` as written, unsigned (moto takes an unsigned write of a new key), over a
/// bare socket: object_store cannot name a key with `..` segments, and reqwest resolves them.
async fn put_verbatim(moto: &Moto, bucket: &str, key: &str, bytes: &[u8]) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = moto.endpoint.trim_start_matches("http://");
    let mut socket = tokio::net::TcpStream::connect(host).await.expect("connect to moto");
    let head = format!(
        "PUT /{bucket}/{key} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\n\
         Content-Type: application/octet-stream\r\nConnection: close\r\n\r\n",
        bytes.len()
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    socket.write_all(bytes).await.unwrap();
    let mut answer = String::new();
    socket.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "put {bucket}/{key}: {answer}");
}

/// Issue #25, point 12: `s3://lib/dots/../o1.mp4` names the key `dots/../o1.mp4` (an object
/// store has no folders), which avbatch's client cannot address: URL parsing resolved the `..`
/// and the row silently relayed `o1.mp4`, another object. The row is refused by line, pulled or
/// relayed, and nothing is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_key_with_dot_segments_is_never_read_as_another_object() {
    let (dotted, plain) = (random(300_000), random(200_000));
    let moto = moto_with(&[("o1.mp4", &plain)]).await;
    put_verbatim(&moto, "lib", "dots/../o1.mp4", &dotted).await;
    let dir = tempfile::tempdir().unwrap();
    let serve = serve_on("127.0.0.1:0", &dir.path().join("data"), &[]).await;
    let url = serve.url.clone();
    for key in ["dots/../o1.mp4", "dots/%2E%2E/o1.mp4", "./o1.mp4"] {
        let manifest = format!("id,path\nd,s3://lib/{key}\n");
        std::fs::write(dir.path().join("manifest.csv"), manifest).unwrap();
        for extra in [&["--relay"][..], &[]] {
            let done = run(upload(&url, dir.path(), &moto.env(), extra), LIMIT).await;
            if done.code == Some(0) {
                let id = report(dir.path())[0]["videoId"].as_str().unwrap().to_owned();
                let source = source_of(&url, &id).await;
                panic!(
                    "{key} {extra:?} was sent as the object `o1.mp4`: {}\n{}",
                    source == plain,
                    done.text()
                );
            }
            assert_eq!(done.code, Some(2), "{key} {extra:?}: {}", done.text());
            let said = &done.stderr;
            assert!(said.contains("line 2, column `path`"), "{key}: {said}");
            assert!(said.contains("segment"), "{key}: {said}");
        }
    }
    assert!(list_videos(&url).await.is_empty(), "nothing was sent");
}

/// Issue #25, point 17: an S3-compatible server over plain http (MinIO, moto, a test double)
/// needs `AWS_ALLOW_HTTP=true`, as object_store wants, which nothing said: the refusal says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_s3_endpoint_over_http_without_allow_http_says_to_set_it() {
    let bytes = random(300_000);
    let moto = moto_with(&[("v.mp4", &bytes)]).await;
    let dir = tempfile::tempdir().unwrap();
    let serve = serve_on("127.0.0.1:0", &dir.path().join("data"), &[]).await;
    std::fs::write(dir.path().join("manifest.csv"), "id,path\nv,s3://lib/v.mp4\n").unwrap();
    let without: Vec<(String, String)> =
        moto.env().into_iter().filter(|(k, _)| k != "AWS_ALLOW_HTTP").collect();
    for extra in [&["--dry-run"][..], &[][..]] {
        let refused = run(upload(&serve.url, dir.path(), &without, extra), LIMIT).await;
        assert_eq!(refused.code, Some(2), "{extra:?}: {}", refused.text());
        assert!(refused.stderr.contains("line 2, column `path`"), "{}", refused.stderr);
        assert!(refused.stderr.contains("AWS_ALLOW_HTTP=true"), "{extra:?}: {}", refused.stderr);
    }
    let done = run(upload(&serve.url, dir.path(), &moto.env(), &["--relay"]), LIMIT).await;
    assert_eq!(done.code, Some(0), "{}", done.text());
    let video = report(dir.path())[0]["videoId"].as_str().unwrap().to_owned();
    assert!(source_of(&serve.url, &video).await == bytes);
}
