//! Issue #25, point 15: secrets at rest. A URL row's credentials (`user:pass@`, `?token=`) never
//! reach the journal or the report, the journal keeps what identifies the object without them,
//! and the journal's files (database, `-wal`, `-shm`, lock) are the owner's alone (0600),
//! created so whatever the umask, also when an earlier avbatch left them readable. The double's
//! data folder is its owner's alone (0700), and every file in it holding a secret 0600.
//! Everything through the real binary, run with umask 000 so no mode comes from the umask.

use crate::common;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use avbatch_core::manifest::id_key;
use common::batch::*;
use common::web::{web_server, WebObject};
use common::{basic_auth, pattern, spawn_server, KEY};

const LIMIT: Duration = Duration::from_secs(120);
const TOKEN: &str = "t0ken-5ecret-q";
const PASSWORD: &str = "pa55-5ecret-w";

/// `cmd` run by `sh` after `umask 000`, so every mode its files get is one it chose.
fn with_umask_0(cmd: Command) -> Command {
    let mut sh = Command::new("sh");
    sh.arg("-c").arg("umask 000 && exec \"$0\" \"$@\"").arg(cmd.get_program());
    sh.args(cmd.get_args()).stdin(Stdio::null());
    for (name, value) in cmd.get_envs() {
        match value {
            Some(value) => sh.env(name, value),
            None => sh.env_remove(name),
        };
    }
    if let Some(dir) = cmd.get_current_dir() {
        sh.current_dir(dir);
    }
    sh
}

/// The permission bits of `path`.
fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Asserts that neither secret is in the bytes of `path` (when it exists).
fn holds_no_secret(path: &Path) {
    let Ok(bytes) = std::fs::read(path) else { return };
    let text = String::from_utf8_lossy(&bytes);
    for secret in [TOKEN, PASSWORD] {
        assert!(!text.contains(secret), "`{secret}` is in {}", path.display());
    }
}

/// The journal's files beside `dir/manifest.csv`: database, `-wal`, `-shm`, lock.
fn journal_files(dir: &Path) -> [std::path::PathBuf; 4] {
    ["", "-wal", "-shm", ".lock"].map(|suffix| dir.join(format!("manifest.journal.sqlite{suffix}")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_journal_keeps_no_url_credentials_and_is_its_owners_alone() {
    let server = spawn_server().await;
    let web = WebObject::new(pattern(300_000, 5), Some(TOKEN));
    let site = web_server(web).await.replacen("http://", &format!("http://alice:{PASSWORD}@"), 1);
    let (a, b) =
        (format!("{site}/films/a.mp4?token={TOKEN}"), format!("{site}/films/b.mp4?token={TOKEN}"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("manifest.csv"),
        format!("id,path,title\npulled,{a},A\n,{b},B\n"),
    )
    .unwrap();
    let upload = || {
        let mut cmd = avbatch();
        cmd.args(["upload", "manifest.csv", "--base-url", &server.url, "--report", "report.json"])
            .args(["--wait-poll", "100ms"])
            .current_dir(dir.path())
            .env("AVBATCH_API_KEY", KEY);
        with_umask_0(cmd)
    };
    let [journal, wal, shm, lock] = journal_files(dir.path());

    let first = run(upload(), LIMIT).await;
    assert_eq!(first.code, Some(0), "{}", first.text());
    for text in [&first.stdout, &first.stderr] {
        assert!(!text.contains(TOKEN) && !text.contains(PASSWORD), "{}", first.text());
    }
    for path in [&journal, &wal, &dir.path().join("report.json")] {
        holds_no_secret(path);
    }
    let kept = String::from_utf8_lossy(&std::fs::read(&journal).unwrap()).into_owned();
    assert!(kept.contains("/films/a.mp4") && kept.contains("/films/b.mp4"), "what names them");
    for path in [&journal, &lock] {
        assert_eq!(format!("{:o}", mode(path)), "600", "{} after the first run", path.display());
    }

    // An older avbatch's journal: readable by all, its rows holding the URLs whole (and one
    // error naming one). A reader keeps its -wal and -shm, so they outlive the next run.
    for path in [&journal, &lock] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let old = rusqlite::Connection::open(&journal).unwrap();
    old.execute(
        "UPDATE rows SET path = ?1, error = ?2 WHERE key = ?3",
        [a.as_str(), &format!("`{a}`: refused"), &id_key("pulled")],
    )
    .unwrap();
    old.execute("UPDATE rows SET path = ?1 WHERE key <> ?2", [b.as_str(), &id_key("pulled")])
        .unwrap();
    let _: i64 = old.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0)).unwrap();
    for path in [&wal, &shm] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
    }

    let second = run(upload(), LIMIT).await;
    assert_eq!(second.code, Some(0), "{}", second.text());
    for path in [&journal, &wal, &shm, &dir.path().join("report.json")] {
        holds_no_secret(path);
    }
    for path in [&journal, &wal, &shm, &lock] {
        let after = format!("{:o}", mode(path));
        assert_eq!(after, "600", "{} after a run on an older journal", path.display());
    }
    drop(old);
}

/// `avbatch serve --data DATA ARGS` under umask 000, until its `listening on` line: its URL.
fn serve(data: &Path, args: &[&str]) -> (std::process::Child, String) {
    let mut cmd = avbatch();
    cmd.arg("serve").args(["--addr", "127.0.0.1:0", "--rate-limit", "off", "--data"]).arg(data);
    cmd.args(args);
    let mut child = with_umask_0(cmd).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    // Read to the end, so the server never writes to a closed pipe.
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("listening on ") {
                let _ = tx.send(url.to_owned());
            }
        }
    });
    let url =
        rx.recv_timeout(Duration::from_secs(15)).expect("avbatch serve says where it listens");
    (child, url)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_doubles_data_folder_is_its_owners_alone() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // A folder an earlier version left open to every local user.
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (mut child, url) = serve(&data, &[]);
    let key = std::fs::read_to_string(data.join("api-key")).expect("a generated key");
    let http = http();
    let post = |path: &str, body: serde_json::Value| {
        http.post(format!("{url}{path}"))
            .header("Authorization", basic_auth(key.trim()))
            .json(&body)
    };
    let auth = post("/auth/api-key", serde_json::json!({"apiKey": key.trim()}));
    assert_eq!(auth.send().await.unwrap().status().as_u16(), 200);
    let token = post("/upload-tokens", serde_json::json!({"ttl": 0})).send().await.unwrap();
    assert_eq!(token.status().as_u16(), 200);
    let source = format!("http://alice:{PASSWORD}@127.0.0.1:9/a.mp4?token={TOKEN}");
    let video = post("/videos", serde_json::json!({"title": "t", "source": source}));
    assert!(video.send().await.unwrap().status().is_success());
    let _ = child.kill();
    let _ = child.wait();

    let mut unprivate = Vec::new();
    if mode(&data) != 0o700 {
        unprivate.push(format!("{} {:o} (the data folder)", data.display(), mode(&data)));
    }
    let mut files = 0;
    let mut walk = vec![data.clone()];
    while let Some(folder) = walk.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk.push(path);
            } else if path.extension().is_none_or(|e| e == "json") {
                // Keys, secrets, refresh and upload tokens, video records (a source's URL).
                files += 1;
                if mode(&path) != 0o600 {
                    unprivate.push(format!("{} {:o}", path.display(), mode(&path)));
                }
            }
        }
    }
    assert!(files >= 5, "the key, the secret, a refresh token, an upload token, a video");
    assert!(unprivate.is_empty(), "others can read: {unprivate:#?}");
}
