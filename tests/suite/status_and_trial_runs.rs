//! The command line: `avbatch status` (a run active now, the failed rows, bytes over
//! the manifest's, a sharded run's journals), and the smaller items of `avbatch upload`
//! (`--dry-run --json`, `-n`, `--limit`, `--api-key-file` over the environment, near column
//! names, the check's threads, the temporary data folder of `--env local`) and `avbatch man`.
//! The real binary, against servers on 127.0.0.1 the tests start.

use crate::common;

use std::process::Command;
use std::time::Duration;

use common::batch::{assert_exactly_once, avbatch, list_videos, run, Batch, Done, Running};
use common::{spawn_server_with, KEY, MIB};
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(120);

/// `avbatch status ARGS` to its end.
async fn status(args: &[&str]) -> Done {
    let mut cmd = avbatch();
    cmd.arg("status").args(args);
    run(cmd, LIMIT).await
}

fn json(done: &Done) -> Value {
    serde_json::from_str(&done.stdout).unwrap_or_else(|e| panic!("{e}: {}", done.text()))
}

#[tokio::test(flavor = "multi_thread")]
async fn status_tells_an_active_run_lists_its_failed_rows_and_counts_rows_not_started() {
    // 4 MiB/s a connection and one video at a time: the run lasts a few seconds a row.
    let server = spawn_server_with(|c| c.faults.bandwidth = Some(4 * MIB as u64)).await;
    let batch = Batch::new(4, |i| if i == 0 { 12 * MIB } else { 6 * MIB });
    let manifest = batch.manifest();
    let manifest = manifest.to_str().unwrap();
    let mut running = Running::start(batch.upload(&server.url, &["-c", "1"]));
    // The first part of row 0 acknowledged; its second on the wire.
    let held = batch.wait_for_progress(&mut running, 5 * MIB as u64, LIMIT).await;
    assert!(running.running(), "the run goes on ({held} bytes)");
    // Row 0's file shrinks under its upload: the row fails, with its video, the others go on.
    std::fs::File::options()
        .write(true)
        .open(batch.path("f0.mp4"))
        .unwrap()
        .set_len(MIB as u64)
        .unwrap();

    let now = status(&[manifest, "--json"]).await;
    assert_eq!(now.code, Some(0), "{}", now.text());
    let v = json(&now);
    assert_eq!(v["active"], true, "{v}");
    assert_eq!(v["holder"]["pid"], running.pid(), "{v}");
    assert_eq!(v["manifestRows"], 4, "{v}");
    assert_eq!(v["manifestBytes"], batch.total() - 11 * MIB as u64, "row 0 as it is now: {v}");
    assert!(v["notStarted"].as_u64().unwrap() >= 1, "row 3 waits its turn: {v}");
    assert!(v["bytesNotStarted"].as_u64().unwrap() >= 6 * MIB as u64, "{v}");
    assert!(v["percent"].as_f64().unwrap() < 100.0, "{v}");
    let text = status(&[manifest]).await;
    assert!(text.stdout.contains("run: active now (pid "), "{}", text.text());
    assert!(text.stdout.contains("not started"), "{}", text.text());

    let done = running.finish(LIMIT).await;
    assert_eq!(done.code, Some(1), "row 0 failed, the others went up: {}", done.text());
    let report = batch.read_report();
    let video = report["rows"][0]["videoId"].as_str().expect("the failed row keeps its video");

    let after = status(&[manifest, "--failed"]).await;
    assert_eq!(after.code, Some(0), "{}", after.text());
    assert!(after.stdout.contains("run: not running"), "{}", after.text());
    assert!(after.stdout.contains("rows: 3 done, 1 failed, 0 in progress, 0 not started"));
    let listed = after.stdout.lines().find(|l| l.contains("f0.mp4")).unwrap_or_default();
    assert!(
        listed.contains("line 2") && listed.contains(video) && listed.contains("truncated"),
        "line, path, videoId and error of the failed row: {}",
        after.text()
    );
    let v = json(&status(&[manifest, "--failed", "--json"]).await);
    assert_eq!(v["active"], false, "{v}");
    assert_eq!(v["failedRows"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["failedRows"][0]["line"], 2, "{v}");
    assert_eq!(v["failedRows"][0]["videoId"], video, "{v}");
    // Without the manifest, the journal's failed rows, without their lines.
    let journal = batch.path("manifest.journal.sqlite");
    let v = json(&status(&["--journal", journal.to_str().unwrap(), "--failed", "--json"]).await);
    assert_eq!(v["failedRows"][0]["path"], "f0.mp4", "{v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_trial_run_uploads_the_first_rows_and_status_counts_the_rest() {
    let server = spawn_server_with(|_| {}).await;
    let batch = Batch::new(4, |_| 100_000);
    let manifest = batch.manifest();
    let manifest = manifest.to_str().unwrap();
    let mut trial = batch.upload(&server.url, &["--limit", "2"]);
    trial.arg("--json");
    let done = run(trial, LIMIT).await;
    assert_eq!(done.code, Some(0), "the trial's rows went up: {}", done.text());
    assert!(
        done.stderr.contains("--limit 2: a trial run of the first 2 of 4 rows"),
        "{}",
        done.text()
    );
    let rows = batch.read_report()["rows"].as_array().unwrap().clone();
    assert_eq!(rows.len(), 2, "the report lists the trial's rows only");
    assert_eq!((rows[0]["line"].as_u64(), rows[1]["line"].as_u64()), (Some(2), Some(3)));
    assert_eq!(list_videos(&server.url).await.len(), 2);

    // Half the manifest's bytes went up, not all of the journal's.
    let v = json(&status(&[manifest, "--json"]).await);
    assert_eq!((v["done"].as_u64(), v["notStarted"].as_u64()), (Some(2), Some(2)), "{v}");
    assert_eq!(v["percent"], 50.0, "{v}");
    let text = status(&[manifest]).await;
    assert!(text.stdout.contains("(50.0 %)"), "{}", text.text());

    // A run without --limit uploads the others.
    let rest = run(batch.upload(&server.url, &[]), LIMIT).await;
    assert_eq!(rest.code, Some(0), "{}", rest.text());
    assert_exactly_once(&server.url, &batch).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn status_of_a_sharded_run_shows_each_shard_and_their_total() {
    let server = spawn_server_with(|_| {}).await;
    let batch = Batch::new(8, |i| 10_000 + i);
    let manifest = batch.manifest();
    let manifest = manifest.to_str().unwrap();
    // Shard 0 of 2 runs; shard 1 never started.
    let done = run(batch.upload(&server.url, &["--shard", "0/2"]), LIMIT).await;
    assert_eq!(done.code, Some(0), "{}", done.text());
    let shard0 = batch.read_report()["rows"].as_array().unwrap().len() as u64;
    assert!((1..8).contains(&shard0), "both shards have rows: {shard0}");

    let text = status(&[manifest]).await;
    assert_eq!(text.code, Some(0), "the shard journals are found: {}", text.text());
    assert!(text.stdout.contains("shard 0/2: "), "{}", text.text());
    assert!(text.stdout.contains("shard 1/2: "), "{}", text.text());
    assert!(text.stdout.contains("total of 2 shards (0 running now):"), "{}", text.text());

    let v = json(&status(&[manifest, "--json"]).await);
    let shards = v["shards"].as_array().unwrap();
    assert_eq!(shards.len(), 2, "{v}");
    assert_eq!(
        (shards[0]["done"].as_u64(), shards[0]["notStarted"].as_u64()),
        (Some(shard0), Some(0))
    );
    assert_eq!(shards[1]["exists"], false, "{v}");
    assert_eq!(shards[1]["notStarted"].as_u64(), Some(8 - shard0), "{v}");
    assert_eq!(v["total"]["manifestRows"], 8, "{v}");
    assert_eq!(v["total"]["done"].as_u64(), Some(shard0), "{v}");
    assert_eq!(v["total"]["notStarted"].as_u64(), Some(8 - shard0), "{v}");
    // One shard alone, as before.
    let one = json(&status(&[manifest, "--shard", "0/2", "--json"]).await);
    assert_eq!(one["done"].as_u64(), Some(shard0), "{one}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dry_run_prints_its_plan_as_json_and_n_is_short_for_it() {
    let server = spawn_server_with(|_| {}).await;
    let batch = Batch::new(3, |i| if i == 0 { 12 * MIB } else { 10 });
    let plan = |short: bool| {
        let mut cmd = batch.upload(&server.url, &[if short { "-n" } else { "--dry-run" }]);
        cmd.arg("--json");
        run(cmd, LIMIT)
    };
    let done = plan(true).await;
    assert_eq!(done.code, Some(0), "{}", done.text());
    let v = json(&done);
    assert_eq!((v["rows"].as_u64(), v["parts"].as_u64()), (Some(3), Some(5)), "{v}");
    assert_eq!(v["bytes"], batch.total(), "{v}");
    assert_eq!(v["dryRun"], true, "{v}");
    assert_eq!(v["plan"].as_array().unwrap().len(), 3, "{v}");
    assert_eq!(v["plan"][0]["parts"], 3, "{v}");
    assert_eq!(v["plan"][0]["action"], "upload", "{v}");
    assert_eq!(v["actions"]["upload"], 3, "{v}");
    assert!(list_videos(&server.url).await.is_empty(), "a dry run sends nothing");

    // After one row went up, the plan says the run would skip it.
    let first = run(batch.upload(&server.url, &["--limit", "1"]), LIMIT).await;
    assert_eq!(first.code, Some(0), "{}", first.text());
    let v = json(&plan(false).await);
    let actions: Vec<&str> =
        v["plan"].as_array().unwrap().iter().map(|r| r["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["skip", "upload", "upload"], "{v}");
    let text = run(batch.upload(&server.url, &["-n"]), LIMIT).await;
    assert!(text.stdout.contains("(2 upload, 1 skip)"), "{}", text.text());
    // The manifest check says what its threads are for.
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    assert!(
        text.stderr.contains(&format!("threads (waiting on files, {cores} cores)"))
            || text.stderr.contains(&format!("threads ({cores} cores)")),
        "{}",
        text.text()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_explicit_api_key_file_wins_over_the_environment() {
    let server = spawn_server_with(|_| {}).await;
    let batch = Batch::new(1, |_| 1000);
    let key_file = batch.path("api-key");
    std::fs::write(&key_file, format!("{KEY}\n")).unwrap();
    let mut cmd = batch.upload(&server.url, &["--api-key-file", key_file.to_str().unwrap()]);
    cmd.env("AVBATCH_API_KEY", "a-stale-key").env("APIVIDEO_API_KEY", "another-stale-key");
    let done = run(cmd, LIMIT).await;
    assert_eq!(done.code, Some(0), "the file's key was used: {}", done.text());
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_columns_name_the_near_column_and_a_semicolon_header_is_explained() {
    let batch = Batch::new(1, |_| 1000);
    let check = |csv: &str| {
        std::fs::write(batch.manifest(), csv).unwrap();
        let mut cmd = avbatch();
        cmd.args(["upload", batch.manifest().to_str().unwrap(), "-n", "--env", "local"]);
        cmd
    };
    let done = run(check("Path,titel,colour\nf0.mp4,a,b\n"), LIMIT).await;
    assert_eq!(done.code, Some(2), "{}", done.text());
    assert!(done.stderr.contains("unknown column `Path`: did you mean `path`?"), "{}", done.text());
    assert!(done.stderr.contains("unknown column `titel`: did you mean `title`?"));
    assert!(done.stderr.contains("--allow-unknown-columns"), "{}", done.text());
    let done = run(check("path;title\nf0.mp4;a\n"), LIMIT).await;
    assert_eq!(done.code, Some(2), "{}", done.text());
    assert!(done.stderr.contains("the manifest must be comma-separated"), "{}", done.text());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_temporary_data_folder_of_env_local_is_said_to_be_temporary() {
    let batch = Batch::new(1, |_| 1000);
    let mut cmd = avbatch();
    cmd.args(["upload", batch.manifest().to_str().unwrap(), "--env", "local", "-q"]);
    let done = run(cmd, LIMIT).await;
    assert_eq!(done.code, Some(0), "{}", done.text());
    let said = done.stderr.lines().find(|l| l.contains("local api.video at")).unwrap_or_default();
    assert!(
        said.contains("temporary folder") && said.contains("--local-data DIR keeps it"),
        "{}",
        done.text()
    );
}

#[test]
fn the_man_page_covers_every_command_the_manifest_and_the_exit_codes() {
    use clap::CommandFactory;
    let out = Command::new(env!("CARGO_BIN_EXE_avbatch")).arg("man").output().unwrap();
    assert!(out.status.success());
    let page = String::from_utf8(out.stdout).unwrap();
    let mut commands = vec![(String::from("avbatch"), avbatch::Cli::command())];
    while let Some((path, cmd)) = commands.pop() {
        let subs: Vec<_> = cmd.get_subcommands().filter(|s| s.get_name() != "help").collect();
        if subs.is_empty() {
            assert!(page.contains(&format!(".SS \"{path}\"")), "no section for `{path}`");
            for long in cmd.get_arguments().filter_map(|a| a.get_long()) {
                if long != "help" && long != "version" {
                    let shown = format!("\\-\\-{}", long.replace('-', "\\-"));
                    assert!(page.contains(&shown), "`{path} --{long}` is not on the page");
                }
            }
        }
        for sub in subs {
            commands.push((format!("{path} {}", sub.get_name()), sub.clone()));
        }
    }
    assert!(page.contains(".SH \"MANIFEST FORMAT\"") && page.contains("meta.KEY"), "{page}");
    assert!(page.contains(".SH \"EXIT STATUS\""), "{page}");
    for code in [0, 1, 2, 3, 4, 130] {
        assert!(page.contains(&format!(".TP\n\\fB{code}\\fR\n")), "exit code {code}: {page}");
    }
    assert!(page.contains("Unreachable: the API could not be reached"), "{page}");
}

/// Holds an exclusive lock on a journal turned into a rollback journal (as a run on a network
/// filesystem keeps it) for `seconds`, from another process; returns once the lock is held.
fn hold_journal(journal: &std::path::Path, seconds: u32) -> std::process::Child {
    let script = "import sqlite3, sys, time\n\
                  c = sqlite3.connect(sys.argv[1], isolation_level=None)\n\
                  c.execute('PRAGMA journal_mode=DELETE')\n\
                  c.execute('BEGIN EXCLUSIVE')\n\
                  print('held', flush=True)\n\
                  time.sleep(float(sys.argv[2]))\n\
                  c.execute('COMMIT')\n";
    let mut child = Command::new("python3")
        .args(["-c", script, journal.to_str().unwrap(), &seconds.to_string()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), "held", "python holds the journal");
    child
}

#[tokio::test(flavor = "multi_thread")]
async fn status_waits_out_a_run_that_holds_a_rollback_journal_for_seconds() {
    // On a loaded network filesystem a run's commit (its fsyncs) can hold the journal for
    // seconds; status waits for it rather than failing with "database is locked".
    let server = spawn_server_with(|_| {}).await;
    let batch = Batch::new(2, |_| MIB);
    let done = run(batch.upload(&server.url, &[]), LIMIT).await;
    assert_eq!(done.code, Some(0), "{}", done.text());
    let journal = batch.path("manifest.journal.sqlite");
    let mut holder = hold_journal(&journal, 7);
    let now = status(&["--journal", journal.to_str().unwrap(), "--json"]).await;
    assert!(holder.wait().unwrap().success());
    assert_eq!(now.code, Some(0), "{}", now.text());
    assert_eq!(json(&now)["done"], 2, "{}", now.text());
}

#[tokio::test(flavor = "multi_thread")]
async fn status_of_a_manifest_with_url_rows_counts_them() {
    // It panicked: "Cannot start a runtime from within a runtime" (exit 101).
    let server = spawn_server_with(|_| {}).await;
    let origin = common::web::web_server(common::web::WebObject::new(vec![7; 300_000], None)).await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("manifest.csv");
    std::fs::write(&manifest, format!("id,path,title\nrow-0,{origin}/a.mp4,Pulled\n")).unwrap();
    let mut upload = avbatch();
    upload
        .args(["upload", manifest.to_str().unwrap(), "--base-url", &server.url])
        .env("AVBATCH_API_KEY", KEY);
    let done = run(upload, LIMIT).await;
    assert_eq!(done.code, Some(0), "{}", done.text());
    let now = status(&[manifest.to_str().unwrap(), "--json"]).await;
    assert_eq!(now.code, Some(0), "{}", now.text());
    let v = json(&now);
    assert_eq!((v["manifestRows"].as_u64(), v["done"].as_u64()), (Some(1), Some(1)), "{v}");
}

/// A run stopped between a row's source and its assets (#25, point 8): its journal has the row
/// done, and `status` counted it done where the report said interrupted. The state such a stop
/// leaves is made here by taking the assets' records out of a finished run's journal.
#[tokio::test(flavor = "multi_thread")]
async fn status_does_not_count_a_row_whose_assets_were_never_sent_as_done() {
    let server = spawn_server_with(|_| {}).await;
    let batch = Batch::new(3, |i| 2000 + i);
    let track = "WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nHello.\n";
    std::fs::write(batch.path("en.vtt"), track).unwrap();
    std::fs::write(
        batch.manifest(),
        "id,path,title,captions.en\n\
         row-0,f0.mp4,A,en.vtt\nrow-1,f1.mp4,B,en.vtt\nrow-2,f2.mp4,C,\n",
    )
    .unwrap();
    let up = run(batch.upload(&server.url, &[]), LIMIT).await;
    assert_eq!(up.code, Some(0), "{}", up.text());
    let journal = batch.path("manifest.journal.sqlite");
    let key = avbatch_core::manifest::id_key("row-1");
    let db = rusqlite::Connection::open(&journal).unwrap();
    let gone = db.execute("DELETE FROM assets WHERE key = ?1", [&key]).unwrap();
    assert_eq!(gone, 1, "row 1's caption was recorded");
    drop(db);

    let manifest = batch.manifest();
    let shown = status(&[manifest.to_str().unwrap()]).await;
    assert_eq!(shown.code, Some(0), "{}", shown.text());
    assert!(
        shown.stdout.contains("rows: 2 done, 1 waiting for their assets, 0 failed"),
        "{}",
        shown.text()
    );
    let shown = status(&[manifest.to_str().unwrap(), "--json"]).await;
    let doc = json(&shown);
    assert_eq!((doc["done"].as_u64(), doc["assetsPending"].as_u64()), (Some(2), Some(1)));

    // The next run sends it, and then it is done.
    let again = run(batch.upload(&server.url, &[]), LIMIT).await;
    assert_eq!(again.code, Some(0), "{}", again.text());
    let shown = status(&[manifest.to_str().unwrap()]).await;
    assert!(shown.stdout.contains("rows: 3 done, 0 failed"), "{}", shown.text());
}
