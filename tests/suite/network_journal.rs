//! Journals where fleets keep them (issue #12, point 4): a journal on a FUSE filesystem, the
//! kind of folder a Kubernetes ReadWriteMany volume or a Slurm home folder is, killed with
//! `kill -9` mid-upload again and again and read by `avbatch status` all along.
//!
//! The filesystem is bindfs (Debian's `bindfs`) mounted with `direct_io`: the kernel keeps no
//! page cache for it and so refuses to share memory maps of its files, as FUSE network
//! filesystems that promise coherence between clients do. SQLite's WAL needs such a map for its
//! shared-memory index; before avbatch chose the rollback journal there, opening the journal
//! failed with "I/O error within the xShmMap method". This machine's kernel has no NFS client, so
//! NFS itself cannot be mounted here. The test needs root (or a setuid fusermount) and
//! `/dev/fuse`: without them it says so on stderr and skips, unless AVBATCH_REQUIRE_FUSE is set
//! (as `.ci/run` does), when it fails.

use crate::common;
use crate::common::text;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{pattern, spawn_server_with, TestServer, KEY, MIB};
use serde_json::Value;

/// A bindfs mount of a temporary folder, unmounted on drop.
struct FuseMount {
    daemon: Child,
    mountpoint: PathBuf,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

impl FuseMount {
    fn new() -> Result<FuseMount, String> {
        if !Path::new("/dev/fuse").exists() {
            return Err("/dev/fuse is missing".into());
        }
        let backing = tempfile::tempdir().map_err(|e| e.to_string())?;
        let mount = tempfile::tempdir().map_err(|e| e.to_string())?;
        let mountpoint = mount.path().to_owned();
        // In the foreground, so the daemon is this test's child and ends with it.
        let mut daemon = Command::new("bindfs")
            .args(["-f", "-o", "direct_io"])
            .arg(backing.path())
            .arg(&mountpoint)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run bindfs ({e}); install Debian's `bindfs`"))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while !is_fuse_mount(&mountpoint) {
            if let Some(status) = daemon.try_wait().map_err(|e| e.to_string())? {
                let mut why = String::new();
                let _ = std::io::Read::read_to_string(
                    &mut daemon.stderr.take().expect("piped"),
                    &mut why,
                );
                return Err(format!("bindfs exited with {status}: {}", why.trim()));
            }
            if Instant::now() > deadline {
                let _ = daemon.kill();
                let _ = daemon.wait();
                return Err("bindfs did not mount within 10 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(FuseMount { daemon, mountpoint, _dirs: (backing, mount) })
    }

    fn path(&self) -> &Path {
        &self.mountpoint
    }
}

impl Drop for FuseMount {
    fn drop(&mut self) {
        let unmounted = Command::new("fusermount")
            .arg("-u")
            .arg(&self.mountpoint)
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            // Busy (a killed avbatch's files not yet closed): detach it now, gone once idle.
            let _ = Command::new("fusermount").arg("-uz").arg(&self.mountpoint).status();
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.daemon.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

fn is_fuse_mount(path: &Path) -> bool {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    mounts.lines().any(|l| {
        let mut f = l.split(' ');
        let (_, at, kind) = (f.next(), f.next(), f.next().unwrap_or(""));
        at == path.to_str() && kind.starts_with("fuse")
    })
}

/// The mount, or `None` after saying on stderr why this machine has none.
fn fuse_or_skip(test: &str) -> Option<FuseMount> {
    match FuseMount::new() {
        Ok(m) => Some(m),
        Err(why) if std::env::var_os("AVBATCH_REQUIRE_FUSE").is_some() => {
            panic!("AVBATCH_REQUIRE_FUSE is set, but: {why}")
        }
        Err(why) => {
            // Straight to the file descriptor: the test harness hides what `eprintln!` prints
            // from a test that passes.
            let _ =
                writeln!(std::io::stderr(), "SKIPPED {test}: no FUSE filesystem to test on: {why}");
            None
        }
    }
}

/// `n` files of about 11 MiB (3 parts of 5 MiB) on the local disk, as the videos of a fleet may
/// be anywhere; the manifest (absolute paths), its journal and its report on `shared`.
struct Batch {
    _videos: tempfile::TempDir,
    shared: PathBuf,
    sources: Vec<Vec<u8>>,
}

impl Batch {
    fn new(n: usize, shared: &Path) -> Batch {
        let videos = tempfile::tempdir().unwrap();
        let mut csv = String::from("id,path\n");
        let mut sources = Vec::new();
        for i in 0..n {
            let data = pattern(11 * MIB + i * 13, i as u8);
            let file = videos.path().join(format!("f{i}.mp4"));
            std::fs::write(&file, &data).unwrap();
            csv.push_str(&format!("row-{i},{}\n", file.display()));
            sources.push(data);
        }
        std::fs::write(shared.join("manifest.csv"), csv).unwrap();
        Batch { _videos: videos, shared: shared.to_owned(), sources }
    }

    fn manifest(&self) -> PathBuf {
        self.shared.join("manifest.csv")
    }

    fn journal(&self) -> PathBuf {
        self.shared.join("manifest.journal.sqlite")
    }

    fn report(&self) -> PathBuf {
        self.shared.join("report.json")
    }

    fn command(&self, server: &TestServer, extra: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_avbatch"));
        cmd.args([
            "upload",
            self.manifest().to_str().unwrap(),
            "--base-url",
            &server.url,
            "--chunk-size",
            "5MiB",
            "-q",
            "-c",
            "3",
        ])
        .args(["--report", self.report().to_str().unwrap()])
        .args(extra)
        .env("AVBATCH_API_KEY", KEY)
        .env_remove("RUST_LOG")
        .env_remove("AVBATCH_LOG_FORMAT")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
        cmd
    }

    /// `avbatch status --json` on the journal; it must succeed.
    fn status(&self) -> Value {
        status_of(&self.journal())
    }
}

/// `avbatch status --json --journal JOURNAL`; it must succeed.
fn status_of(journal: &Path) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_avbatch"))
        .args(["status", "--json", "--journal", journal.to_str().unwrap()])
        .env_remove("AVBATCH_LOG_FORMAT")
        .output()
        .unwrap();
    assert!(out.status.success(), "avbatch status: {}", text(&out));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("status prints JSON ({e}): {}", text(&out)))
}

/// What the run said on stderr (it has ended).
fn stderr_of(child: &mut Child) -> String {
    let mut s = String::new();
    let _ = std::io::Read::read_to_string(&mut child.stderr.take().expect("piped"), &mut s);
    s
}

#[tokio::test(flavor = "multi_thread")]
async fn a_journal_on_a_fuse_filesystem_survives_kill_9_and_is_read_by_status_meanwhile() {
    let Some(mount) = fuse_or_skip(
        "a_journal_on_a_fuse_filesystem_survives_kill_9_and_is_read_by_status_meanwhile",
    ) else {
        return;
    };
    let started = Instant::now();
    // 8 MiB/s per connection: an 11 MiB file takes over a second, so each kill lands mid-video.
    let server = spawn_server_with(|c| c.faults.bandwidth = Some(8 * MIB as u64)).await;
    let batch = Batch::new(8, mount.path());
    let total: u64 = batch.sources.iter().map(|s| s.len() as u64).sum();

    // Round 0, as an avbatch before this change left things: its journal in WAL mode, killed
    // mid-upload on a local disk, then found on the shared folder with its -wal (and -shm).
    let local = tempfile::tempdir().unwrap();
    let local_journal = local.path().join("j.sqlite");
    let mut child =
        batch.command(&server, &["--journal", local_journal.to_str().unwrap()]).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !local_journal.exists() || status_of(&local_journal)["bytesDone"] == 0 {
        assert!(
            Instant::now() < deadline && child.try_wait().unwrap().is_none(),
            "round 0 records a part"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child.kill().unwrap();
    let _ = child.wait();
    assert!(local.path().join("j.sqlite-wal").exists(), "a WAL journal");
    for suffix in ["", "-wal", "-shm"] {
        let from = local.path().join(format!("j.sqlite{suffix}"));
        if from.exists() {
            std::fs::copy(&from, format!("{}{suffix}", batch.journal().display())).unwrap();
        }
    }

    // `avbatch status` reads that WAL journal before a run has turned it into a rollback one.
    let mut recorded = batch.status()["bytesDone"].as_u64().unwrap();
    assert!(recorded > 0, "round 0 recorded a part");
    // Rounds 1 and 2 on the FUSE folder: each is killed once `avbatch status`, polled while it
    // runs, shows it has recorded a part more than the round before.
    for round in 1..=2 {
        let mut child = batch.command(&server, &[]).spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            assert!(
                Instant::now() < deadline,
                "round {round}: no progress in the journal within 60 s"
            );
            if let Some(status) = child.try_wait().unwrap() {
                panic!(
                    "round {round} ended before it was killed: {status}\n{}",
                    stderr_of(&mut child)
                );
            }
            let s = batch.status();
            let done = s["bytesDone"].as_u64().unwrap();
            assert!(
                done <= s["bytesTotal"].as_u64().unwrap()
                    && s["bytesTotal"].as_u64().unwrap() <= total,
                "{s}"
            );
            if done > recorded {
                recorded = done;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if round == 1 {
            // The run lock holds on this filesystem, and names its holder.
            let second = batch.command(&server, &[]).output().unwrap();
            assert_eq!(second.status.code(), Some(2), "{}", text(&second));
            let said = String::from_utf8_lossy(&second.stderr);
            assert!(
                said.contains(&format!("in use by another avbatch run (pid {} on `", child.id())),
                "{said}"
            );
        }
        assert!(child.try_wait().unwrap().is_none(), "round {round}: killed while running");
        child.kill().unwrap(); // SIGKILL
        let _ = child.wait();
        let said = stderr_of(&mut child);
        assert!(
            said.contains("is on a network filesystem (fuse): SQLite's rollback journal"),
            "said once at start: {said}"
        );
        // Right after the kill, a transaction may be left half-written: status still reads.
        let s = batch.status();
        assert!(s["bytesDone"].as_u64().unwrap() >= recorded, "nothing acknowledged is lost: {s}");
    }
    assert!(recorded < total, "the kills landed before the batch was done");

    let out = batch.command(&server, &[]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).matches("network filesystem").count(),
        1,
        "said once: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Every row exactly once, byte for byte.
    let all = server.all_videos().await;
    assert_eq!(all.len(), batch.sources.len(), "one video per row, no duplicates");
    let rep: Value = serde_json::from_slice(&std::fs::read(batch.report()).unwrap()).unwrap();
    for (i, row) in rep["rows"].as_array().unwrap().iter().enumerate() {
        assert!(row["status"] == "uploaded" || row["status"] == "skipped", "row {i}: {row}");
        let back = server.source_of(row["videoId"].as_str().unwrap()).await;
        assert!(back == batch.sources[i].as_slice(), "video of row {i} differs");
    }

    // The journal is a rollback journal now, with nothing of WAL left beside it, and records
    // every row done, so a re-run sends nothing.
    let db = rusqlite::Connection::open_with_flags(
        batch.journal(),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE,
    )
    .unwrap();
    let mode: String = db.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "delete");
    drop(db);
    for suffix in ["-wal", "-shm"] {
        assert!(
            !mount.path().join(format!("manifest.journal.sqlite{suffix}")).exists(),
            "{suffix} is gone"
        );
    }
    let s = batch.status();
    assert_eq!((s["done"].as_u64(), s["bytesDone"].as_u64()), (Some(8), Some(total)), "{s}");
    let before = server.server.received_bytes();
    let out = batch.command(&server, &[]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(server.server.received_bytes(), before, "nothing is sent again");
    let _ = writeln!(
        std::io::stderr(),
        "issue 12: 8 rows ({total} bytes), 1 kill on a local WAL journal + 2 on the FUSE one, \
         done in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// A journal whose disk fills mid-run (#25, point 5): no video is started after its first
/// failed write, the run exits 2 saying so, and a run on a disk with room finishes every row
/// exactly once. The disk is filled by a cap on the size of any file the process writes
/// (RLIMIT_FSIZE, with SIGXFSZ ignored, so a write past it fails as on a full disk); the report,
/// a fraction of the cap, is written under it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_journal_that_cannot_be_written_starts_no_more_videos() {
    use common::batch::{assert_exactly_once, list_videos, run, Batch};
    use std::os::unix::process::CommandExt;
    let server = spawn_server_with(|_| {}).await;
    let rows = 120;
    let batch = Batch::new(rows, |i| 2000 + i);
    let mut capped = batch.upload(&server.url, &["-c", "4"]);
    unsafe {
        capped.pre_exec(|| {
            let cap = libc::rlimit { rlim_cur: 96 * 1024, rlim_max: 96 * 1024 };
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            if libc::setrlimit(libc::RLIMIT_FSIZE, &cap) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let full = run(capped, Duration::from_secs(120)).await;
    assert_eq!(full.code, Some(2), "as for a configuration problem: {}", full.text());
    assert!(full.stderr.contains("the journal cannot be written"), "{}", full.stderr);
    let report = batch.read_report();
    let summary = &report["summary"];
    let (uploaded, pending) =
        (summary["uploaded"].as_u64().unwrap(), summary["pending"].as_u64().unwrap());
    assert!(pending > rows as u64 / 2, "most rows were never started: {summary}");
    let made = list_videos(&server.url).await.len() as u64;
    // The rows under way when the journal broke (at most the lanes and the rows prepared
    // ahead of them) are all that may have made a video besides those uploaded.
    assert!(made <= uploaded + 8, "{made} videos for {uploaded} rows uploaded: {summary}");

    let again = run(batch.upload(&server.url, &["-c", "4"]), Duration::from_secs(120)).await;
    assert_eq!(again.code, Some(0), "{}", again.text());
    assert_exactly_once(&server.url, &batch).await;
}
