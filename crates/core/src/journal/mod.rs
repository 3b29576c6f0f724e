//! The journal: what each row of a manifest has reached, kept in SQLite so a killed run resumes.
//!
//! One table, one row per manifest row (by its idempotency key): the file's identity when it was
//! uploaded (path, size, mtime, and the SHA-256 of the bytes sent once the row is done), the
//! video it went to, the videos it replaces, the parts and bytes the server acknowledged, the
//! state, the last error, and when, by which run and how it was done ([`History`]). The video
//! task writes it after each acknowledged part and before reporting that part, with
//! `synchronous=FULL`, so a `kill -9` loses at most the parts in flight: in WAL mode on a local
//! disk, in rollback-journal mode on a network or FUSE filesystem, where WAL's shared memory
//! does not work ([`fs`]). A lock file next to the journal keeps two runs from sharing it,
//! across hosts too, and is taken over from a run of this host that died ([`lock`]). The files
//! are the owner's alone, and a URL's credentials are never written ([`private`]). This is the
//! only module that knows SQL.

mod error;
pub mod fs;
mod history;
mod lock;
mod private;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use rusqlite::{params, Connection, OptionalExtension};

pub use error::JournalError;
pub use fs::{Filesystem, JournalMode};
pub use history::History;
pub use lock::{Holder, RunState};

/// Where a row stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Video created (or found), parts under way.
    Uploading,
    /// Every byte acknowledged and the video complete.
    Done,
    /// Ended in an error; a re-run tries again.
    Failed,
}

impl State {
    fn as_str(self) -> &'static str {
        match self {
            State::Uploading => "uploading",
            State::Done => "done",
            State::Failed => "failed",
        }
    }

    fn parse(s: &str) -> State {
        match s {
            "done" => State::Done,
            "failed" => State::Failed,
            _ => State::Uploading,
        }
    }
}

/// The identity of a file when it was uploaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileIdentity {
    /// Path as written in the manifest; read from the journal, as it keeps it: a URL without
    /// its secrets ([`private::kept`]).
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, nanoseconds since the epoch (0 when unknown).
    pub mtime_ns: i64,
    /// The contents' fingerprint (`chunk::ContentHash`; a SHA-256 in journals of earlier
    /// versions): taken before the upload with `--checksum`, else of the bytes as they were
    /// sent, recorded when the row is done.
    pub sha256: Option<String>,
}

impl FileIdentity {
    /// Whether `now` is the file this identity was taken of. With a checksum on both sides the
    /// contents decide (a file touched or copied with a new mtime is the same file); otherwise
    /// size and modification time do. The path may differ: a moved file is the same file.
    pub fn same_file(&self, now: &FileIdentity) -> bool {
        let kind = crate::chunk::is_fingerprint;
        match (&self.sha256, &now.sha256) {
            (Some(a), Some(b)) if kind(a) == kind(b) => self.size == now.size && a == b,
            _ => self.size == now.size && self.mtime_ns == now.mtime_ns,
        }
    }
}

/// One journal entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The row's idempotency key.
    pub key: String,
    /// The file as it was.
    pub file: FileIdentity,
    /// The video, once created.
    pub video_id: Option<String>,
    /// Part size the video was cut with.
    pub chunk_size: u64,
    /// Parts acknowledged.
    pub parts_done: u64,
    /// Bytes acknowledged.
    pub bytes_done: u64,
    /// Where it stands.
    pub state: State,
    /// The last error.
    pub error: Option<String>,
    /// Videos of the file as it was before `--force`, to delete once this row's video is
    /// complete.
    pub replaces: Vec<String>,
}

/// Totals for `avbatch status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Totals {
    /// Rows with an entry.
    pub rows: u64,
    /// Rows done.
    pub done: u64,
    /// Rows failed.
    pub failed: u64,
    /// Rows started but not finished.
    pub uploading: u64,
    /// Bytes acknowledged.
    pub bytes_done: u64,
    /// Bytes of every file in the journal.
    pub bytes_total: u64,
    /// Bytes of the rows done.
    pub bytes_of_done: u64,
}

/// An open journal, locked for this run.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    filesystem: Filesystem,
    conn: Mutex<Connection>,
    lock: Option<lock::RunLock>,
    /// The run writing it, as its report names it: recorded with each row it completes.
    run: std::sync::OnceLock<String>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS rows (
    key        TEXT PRIMARY KEY,
    path       TEXT NOT NULL,
    size       INTEGER NOT NULL,
    mtime_ns   INTEGER NOT NULL,
    sha256     TEXT,
    video_id   TEXT,
    chunk_size INTEGER NOT NULL,
    parts_done INTEGER NOT NULL DEFAULT 0,
    bytes_done INTEGER NOT NULL DEFAULT 0,
    state      TEXT NOT NULL,
    error      TEXT,
    updated_at INTEGER NOT NULL DEFAULT (unixepoch()),
    replaces   TEXT,
    done_at    TEXT,
    done_run   TEXT,
    transfer   TEXT
);
CREATE INDEX IF NOT EXISTS rows_by_path ON rows (path);
CREATE TABLE IF NOT EXISTS meta (
    k TEXT PRIMARY KEY,
    v TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS assets (
    key      TEXT NOT NULL,
    video_id TEXT NOT NULL,
    name     TEXT NOT NULL,
    digest   TEXT NOT NULL,
    PRIMARY KEY (key, name)
);
CREATE TABLE IF NOT EXISTS actions (
    key      TEXT PRIMARY KEY,
    action   TEXT NOT NULL,
    videos   TEXT NOT NULL,
    digest   TEXT
);";

/// How long a run waits for a journal another process holds (SQLite's busy timeout).
const WRITE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);
/// How long `avbatch status` waits for a journal a run holds.
const READ_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

const ENTRY_COLUMNS: &str = "key, path, size, mtime_ns, video_id, chunk_size, parts_done, \
                             bytes_done, state, error, sha256, replaces";

fn entry(r: &rusqlite::Row<'_>) -> rusqlite::Result<Entry> {
    Ok(Entry {
        key: r.get(0)?,
        file: FileIdentity {
            path: r.get(1)?,
            size: r.get::<_, i64>(2)? as u64,
            mtime_ns: r.get(3)?,
            sha256: r.get(10)?,
        },
        video_id: r.get(4)?,
        chunk_size: r.get::<_, i64>(5)? as u64,
        parts_done: r.get::<_, i64>(6)? as u64,
        bytes_done: r.get::<_, i64>(7)? as u64,
        state: State::parse(&r.get::<_, String>(8)?),
        error: r.get(9)?,
        replaces: r
            .get::<_, Option<String>>(11)?
            .map(|ids| ids.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default(),
    })
}

/// The default journal for a manifest: `NAME.journal.sqlite` beside it
/// (`NAME.shard-K-of-N.journal.sqlite` for a shard).
pub fn default_path(manifest: &Path, shard: Option<crate::shard::Shard>) -> PathBuf {
    crate::shard::beside(manifest, shard, "journal.sqlite")
}

/// Whether a database file is in WAL mode: its header's write version (byte 18) is 2.
fn is_wal(path: &Path) -> bool {
    let mut header = [0u8; 20];
    std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut header))
        .is_ok()
        && header[18] == 2
}

fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".lock");
    path.with_file_name(name)
}

/// Adds the columns of `rows` a journal written by an earlier avbatch lacks: before
/// `--checksum` (`sha256`), before `--force` replaced videos (`replaces`), before the report
/// carried each row's history (`done_at`, `done_run`, `transfer`).
fn add_missing_columns(conn: &Connection) -> rusqlite::Result<()> {
    for column in ["sha256", "replaces", "done_at", "done_run", "transfer"] {
        let has: bool = conn.query_row(
            "SELECT count(*) FROM pragma_table_info('rows') WHERE name = ?1",
            [column],
            |r| r.get(0),
        )?;
        if !has {
            conn.execute_batch(&format!("ALTER TABLE rows ADD COLUMN {column} TEXT"))?;
        }
    }
    Ok(())
}

impl Journal {
    /// Opens (creating if needed) and locks the journal for a run, in the journal mode its
    /// filesystem needs. Blocks: call before the runtime is busy or from `spawn_blocking`.
    pub fn open(path: &Path) -> Result<Journal, JournalError> {
        Self::open_on(path, fs::of(path))
    }

    fn open_on(path: &Path, filesystem: Filesystem) -> Result<Journal, JournalError> {
        let lock = lock::RunLock::acquire(&lock_path(path)).map_err(|e| match e {
            lock::LockFailure::Held(holder) => {
                JournalError::Locked { path: path.to_owned(), holder: holder.map(Box::new) }
            }
            lock::LockFailure::Unsupported(source) => {
                JournalError::LocksUnsupported { path: path.to_owned(), source }
            }
            lock::LockFailure::Io(source) => JournalError::Open { path: path.to_owned(), source },
        })?;
        private::make_private(path, &lock_path(path))
            .map_err(|source| JournalError::Open { path: path.to_owned(), source })?;
        let journal = Self::connect(path, false, filesystem)?;
        Ok(Journal { lock: Some(lock), ..journal })
    }

    /// Opens the journal without the lock, for `avbatch status` while a run goes on. It changes
    /// no row. A rollback journal is opened writable, so that, as any SQLite reader allowed to
    /// write there does, it rolls back a transaction a killed run left half-written (read-only,
    /// SQLite refuses to read until the next run does it).
    pub fn open_read_only(path: &Path) -> Result<Journal, JournalError> {
        if !path.exists() {
            return Err(JournalError::Open {
                path: path.to_owned(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such journal"),
            });
        }
        Self::connect(path, true, fs::of(path))
    }

    /// Whether a run holds the journal at `path` now, found without taking its lock or writing
    /// anything (see [`lock`]), so the run goes on undisturbed.
    pub fn run_state(path: &Path) -> Result<RunState, JournalError> {
        lock::probe(&lock_path(path))
            .map_err(|source| JournalError::Open { path: path.to_owned(), source })
    }

    /// The rows that failed, oldest update first, at most `most`.
    pub fn failed(&self, most: usize) -> Result<Vec<Entry>, JournalError> {
        let conn = self.conn();
        let mut statement = conn
            .prepare(&format!(
                "SELECT {ENTRY_COLUMNS} FROM rows WHERE state = 'failed' ORDER BY updated_at, \
                 rowid LIMIT ?1"
            ))
            .map_err(|e| self.sql(e))?;
        let rows = statement
            .query_map(params![i64::try_from(most).unwrap_or(i64::MAX)], entry)
            .map_err(|e| self.sql(e))?;
        rows.collect::<Result<Vec<Entry>, _>>().map_err(|e| self.sql(e))
    }

    /// What the person running avbatch should know about this journal: its filesystem's mode,
    /// a lock taken over from a dead run. Each is said once, when the run starts.
    pub fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        if let Filesystem::Network(kind) = self.filesystem {
            notes.push(format!(
                "journal `{}` is on a network filesystem ({kind}): SQLite's rollback journal, not \
                 WAL, whose shared memory does not work there",
                self.path.display()
            ));
        }
        if let Some(h) = self.lock.as_ref().and_then(|l| l.took_over.as_ref()) {
            notes.push(format!(
                "took over the lock of `{}` from pid {} of this host (since {}), which is no \
                 longer running",
                self.path.display(),
                h.pid,
                h.since
            ));
        }
        notes
    }

    fn connect(
        path: &Path,
        read_only: bool,
        filesystem: Filesystem,
    ) -> Result<Journal, JournalError> {
        let sql = |source| JournalError::Sql { path: path.to_owned(), source };
        let mode = filesystem.journal_mode();
        let open = |flags| {
            Connection::open_with_flags(path, flags | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX)
        };
        let wal_file = read_only && is_wal(path);
        let conn = match (read_only, wal_file, mode) {
            (false, ..) => open(
                rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE
                    | rusqlite::OpenFlags::SQLITE_OPEN_CREATE,
            ),
            // A WAL journal on a local disk: read-only, as a reader needs no more.
            (true, true, JournalMode::Wal) => open(rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY),
            // A rollback journal: writable too (never created), so SQLite rolls back what a
            // killed run left half-written, which read-only it refuses to read past. A WAL
            // journal on a network filesystem: so it can be read without shared memory (below).
            // Without the right to write there, SQLite opens it read-only by itself.
            (true, ..) => open(rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE),
        }
        .map_err(sql)?;
        // A reader waits longer than a run: on a loaded network filesystem a run's commit (its
        // fsyncs) can hold the journal for seconds, and `avbatch status` has nothing to hurry.
        let busy = if read_only { READ_WAIT } else { WRITE_WAIT };
        conn.busy_timeout(busy).map_err(sql)?;
        if mode == JournalMode::Rollback {
            // Memory-mapped reads see another host's writes no sooner than the kernel's cache
            // does; plain reads after each lock do (sqlite.org/mmap.html).
            conn.pragma_update(None, "mmap_size", 0).map_err(sql)?;
            if wal_file {
                // Not yet turned into a rollback journal by a run: read it without the
                // shared-memory index, as below, holding it only while `avbatch status` reads.
                conn.pragma_update(None, "locking_mode", "EXCLUSIVE").map_err(sql)?;
            }
        }
        if !read_only {
            let wanted = match mode {
                JournalMode::Wal => "wal",
                JournalMode::Rollback => {
                    // A journal left in WAL mode (by an earlier avbatch, or copied from a local
                    // disk) is read without the shared-memory index when the first access is
                    // exclusive (sqlite.org/wal.html#noshm), then turned into a rollback journal.
                    // The run lock is held, so no other run is writing.
                    conn.pragma_update(None, "locking_mode", "EXCLUSIVE").map_err(sql)?;
                    "delete"
                }
            };
            let now: String = conn
                .pragma_update_and_check(None, "journal_mode", wanted, |r| r.get(0))
                .map_err(sql)?;
            if !now.eq_ignore_ascii_case(wanted) {
                return Err(sql(rusqlite::Error::InvalidParameterName(format!(
                    "journal_mode stayed `{now}`, not `{wanted}`"
                ))));
            }
            if mode == JournalMode::Rollback {
                // Back to locking per transaction, so `avbatch status` can read between them;
                // the exclusive lock goes with the next transaction's end.
                conn.pragma_update(None, "locking_mode", "NORMAL").map_err(sql)?;
                // The WAL's shared-memory file, which SQLite removes only in WAL mode, means
                // nothing to a rollback journal: no one mapped it while the conversion held the
                // database exclusively, and no one will.
                let mut shm = path.as_os_str().to_owned();
                shm.push("-shm");
                let _ = std::fs::remove_file(shm);
            }
            // Every acknowledged part must survive a crash of the machine, not only of the
            // process; one fsync per part is nothing next to a part's upload.
            conn.pragma_update(None, "synchronous", "FULL").map_err(sql)?;
            // What a row's update replaces is zeroed, not left in the page's free space.
            conn.pragma_update(None, "secure_delete", "ON").map_err(sql)?;
            conn.execute_batch(SCHEMA).map_err(sql)?;
            add_missing_columns(&conn).map_err(sql)?;
            private::scrub(&conn).map_err(sql)?;
            // Prove the folder takes writes now (read-only folder, full disk), before uploading.
            conn.execute_batch(
                "BEGIN IMMEDIATE; CREATE TABLE IF NOT EXISTS probe (x); DROP TABLE probe; COMMIT;",
            )
            .map_err(sql)?;
        }
        let (conn, run) = (Mutex::new(conn), std::sync::OnceLock::new());
        Ok(Journal { path: path.to_owned(), filesystem, conn, lock: None, run })
    }

    /// The journal's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (each statement is atomic).
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn sql(&self, source: rusqlite::Error) -> JournalError {
        JournalError::Sql { path: self.path.clone(), source }
    }

    /// Ties the journal to one destination (an API base URL, or a local server's data folder):
    /// the first run records it, later runs must match, so rows done in the sandbox are never
    /// taken as done in production.
    pub fn bind_destination(&self, destination: &str) -> Result<(), JournalError> {
        let conn = self.conn();
        let recorded: Option<String> = conn
            .query_row("SELECT v FROM meta WHERE k = 'destination'", [], |r| r.get(0))
            .optional()
            .map_err(|e| self.sql(e))?;
        match recorded {
            Some(r) if r == destination => Ok(()),
            Some(recorded) => Err(JournalError::OtherDestination {
                path: self.path.clone(),
                recorded,
                now: destination.to_owned(),
            }),
            None => conn
                .execute("INSERT INTO meta (k, v) VALUES ('destination', ?1)", params![destination])
                .map(drop)
                .map_err(|e| self.sql(e)),
        }
    }

    /// The entry of a row, if any.
    pub fn get(&self, key: &str) -> Result<Option<Entry>, JournalError> {
        self.conn()
            .query_row(
                &format!("SELECT {ENTRY_COLUMNS} FROM rows WHERE key = ?1"),
                params![key],
                entry,
            )
            .optional()
            .map_err(|e| self.sql(e))
    }

    /// The entry of a row under its key, or under the key avbatch 0.1 gave it (its raw
    /// identity), which is then moved to the new key.
    pub fn get_or_migrate(
        &self,
        key: &str,
        legacy_key: &str,
    ) -> Result<Option<Entry>, JournalError> {
        if let Some(e) = self.get(key)? {
            return Ok(Some(e));
        }
        if legacy_key == key {
            return Ok(None);
        }
        let moved = self
            .conn()
            .execute(
                "UPDATE rows SET key = ?1 WHERE key = ?2 AND NOT EXISTS (SELECT 1 FROM rows WHERE \
                 key = ?1)",
                params![key, legacy_key],
            )
            .map_err(|e| self.sql(e))?;
        if moved == 0 {
            return Ok(None);
        }
        self.get(key)
    }

    /// The newest entry for a path under another key: a row keyed by path, size and mtime gets
    /// a new key when its file changes, and this finds what was uploaded from that path before.
    pub fn latest_for_path(
        &self,
        path: &str,
        other_than: &str,
    ) -> Result<Option<Entry>, JournalError> {
        self.conn()
            .query_row(
                &format!(
                    "SELECT {ENTRY_COLUMNS} FROM rows WHERE path = ?1 AND key <> ?2 ORDER BY \
                     updated_at DESC, rowid DESC LIMIT 1"
                ),
                params![private::kept(path), other_than],
                entry,
            )
            .optional()
            .map_err(|e| self.sql(e))
    }

    /// The row's file is the same as when it was recorded, with a new identity (touched: its
    /// modification time moved, its contents did not): the entry under `old_key` takes the new
    /// identity and moves to `key` (the same key for a row with an `id`).
    pub fn retouch(
        &self,
        old_key: &str,
        key: &str,
        file: &FileIdentity,
    ) -> Result<(), JournalError> {
        let conn = self.conn();
        conn.execute(
            "UPDATE rows SET key = ?2, path = ?3, size = ?4, mtime_ns = ?5, \
              sha256 = COALESCE(?6, sha256), updated_at = unixepoch()
             WHERE key = ?1 AND (?1 = ?2 OR NOT EXISTS (SELECT 1 FROM rows WHERE key = ?2))",
            params![
                old_key,
                key,
                private::kept(&file.path),
                file.size as i64,
                file.mtime_ns,
                file.sha256
            ],
        )
        .and_then(|_| {
            // The row's assets follow it to its new key.
            conn.execute(
                "UPDATE OR REPLACE assets SET key = ?2 WHERE key = ?1",
                params![old_key, key],
            )
        })
        .map(drop)
        .map_err(|e| self.sql(e))
    }

    /// Records the videos a row replaces (deleted once its own video is complete), or none.
    pub fn set_replaces(&self, key: &str, videos: &[String]) -> Result<(), JournalError> {
        let ids = (!videos.is_empty()).then(|| videos.join(" "));
        self.conn()
            .execute("UPDATE rows SET replaces = ?2 WHERE key = ?1", params![key, ids])
            .map(drop)
            .map_err(|e| self.sql(e))
    }

    /// Names the run writing the journal (its report's `runId`), recorded with each row it
    /// completes. The first name given holds.
    pub fn set_run(&self, run_id: &str) {
        let _ = self.run.set(run_id.to_owned());
    }

    /// Marks a row done, with the SHA-256 of its bytes when it is known (an earlier one stays
    /// otherwise), and how its source went; the first time since it started, when and by which
    /// run.
    pub fn done(
        &self,
        key: &str,
        sha256: Option<&str>,
        transfer: Option<&str>,
    ) -> Result<(), JournalError> {
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        self.conn()
            .execute(
                "UPDATE rows SET state = 'done', error = NULL, sha256 = COALESCE(?2, sha256), \
                  updated_at = unixepoch(), done_at = COALESCE(done_at, ?3), \
                  done_run = COALESCE(done_run, ?4), transfer = COALESCE(?5, transfer) \
                  WHERE key = ?1",
                params![key, sha256, now, self.run.get(), transfer],
            )
            .map(drop)
            .map_err(|e| self.sql(e))
    }

    /// Starts (or restarts) a row: its file, its video, nothing acknowledged yet. A deletion
    /// recorded for its key no longer holds: the key has a video again.
    pub fn start(
        &self,
        key: &str,
        file: &FileIdentity,
        video_id: &str,
        chunk_size: u64,
    ) -> Result<(), JournalError> {
        let conn = self.conn();
        conn.execute("DELETE FROM actions WHERE key = ?1 AND action = 'deleted'", params![key])
            .map_err(|e| self.sql(e))?;
        conn.execute(
            "INSERT INTO rows (key, path, size, mtime_ns, sha256, video_id, chunk_size, \
                  parts_done, bytes_done, state, error, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?7, ?5, ?6, 0, 0, 'uploading', NULL, unixepoch())
                 ON CONFLICT(key) DO UPDATE SET path = ?2, size = ?3, mtime_ns = ?4, sha256 = ?7, \
                  video_id = ?5, chunk_size = ?6,
                   parts_done = 0, bytes_done = 0, state = 'uploading', error = NULL, \
                    updated_at = unixepoch(), done_at = NULL, done_run = NULL, transfer = NULL",
            params![
                key,
                private::kept(&file.path),
                file.size as i64,
                file.mtime_ns,
                video_id,
                chunk_size as i64,
                file.sha256
            ],
        )
        .map(drop)
        .map_err(|e| self.sql(e))
    }

    /// The video of row `key` whose fields were last set (by a create or an update), and the
    /// digest of those fields, if the journal has them.
    pub fn fields_set_on(&self, key: &str) -> Result<Option<(String, String)>, JournalError> {
        self.conn()
            .query_row(
                "SELECT videos, digest FROM actions WHERE key = ?1 AND action = 'fields'",
                params![key],
                |r| Ok((r.get(0)?, r.get::<_, Option<String>>(1)?)),
            )
            .optional()
            .map(|found| found.and_then(|(video, digest)| Some((video, digest?))))
            .map_err(|e| self.sql(e))
    }

    /// Records that video `video_id` of row `key` holds the fields whose digest is `digest`.
    pub fn fields_set(&self, key: &str, video_id: &str, digest: &str) -> Result<(), JournalError> {
        self.conn()
            .execute(
                "INSERT INTO actions (key, action, videos, digest) VALUES (?1, 'fields', ?2, ?3)
                 ON CONFLICT(key) DO UPDATE SET action = 'fields', videos = ?2, digest = ?3",
                params![key, video_id, digest],
            )
            .map(drop)
            .map_err(|e| self.sql(e))
    }

    /// The videos deleted for row `key`, when the journal records its deletion.
    pub fn deleted(&self, key: &str) -> Result<Option<Vec<String>>, JournalError> {
        self.conn()
            .query_row(
                "SELECT videos FROM actions WHERE key = ?1 AND action = 'deleted'",
                params![key],
                |r| r.get::<_, String>(0),
            )
            .optional()
            .map(|ids| ids.map(|ids| ids.split_whitespace().map(str::to_owned).collect()))
            .map_err(|e| self.sql(e))
    }

    /// Records that row `key`'s videos `video_ids` are deleted (none: there were none), and
    /// forgets its upload and assets, so a later row with the key uploads anew.
    pub fn record_deleted(&self, key: &str, video_ids: &[String]) -> Result<(), JournalError> {
        let mut conn = self.conn();
        let sql = |e| self.sql(e);
        let tx = conn.transaction().map_err(sql)?;
        tx.execute("DELETE FROM rows WHERE key = ?1", params![key]).map_err(sql)?;
        tx.execute("DELETE FROM assets WHERE key = ?1", params![key]).map_err(sql)?;
        tx.execute(
            "INSERT INTO actions (key, action, videos, digest) VALUES (?1, 'deleted', ?2, NULL)
             ON CONFLICT(key) DO UPDATE SET action = 'deleted', videos = ?2, digest = NULL",
            params![key, video_ids.join(" ")],
        )
        .map_err(sql)?;
        tx.commit().map_err(sql)
    }

    /// Records the parts and bytes the server has acknowledged so far.
    pub fn acknowledged(
        &self,
        key: &str,
        parts_done: u64,
        bytes_done: u64,
    ) -> Result<(), JournalError> {
        self.conn()
            .execute(
                "UPDATE rows SET parts_done = ?2, bytes_done = ?3, updated_at = unixepoch() WHERE \
                 key = ?1",
                params![key, parts_done as i64, bytes_done as i64],
            )
            .map(drop)
            .map_err(|e| self.sql(e))
    }

    /// Marks a row done or failed.
    pub fn finish(&self, key: &str, state: State, error: Option<&str>) -> Result<(), JournalError> {
        self.conn()
            .execute(
                "UPDATE rows SET state = ?2, error = ?3, updated_at = unixepoch() WHERE key = ?1",
                params![key, state.as_str(), error],
            )
            .map(drop)
            .map_err(|e| self.sql(e))
    }

    /// The assets (thumbnail, tracks) the server acknowledged for row `key` on video
    /// `video_id`, by name, with their digests; `None` when the journal has no word on that
    /// video for the row (no entry, or one for another video).
    pub fn assets(
        &self,
        key: &str,
        video_id: &str,
    ) -> Result<Option<std::collections::HashMap<String, String>>, JournalError> {
        let conn = self.conn();
        let known: bool = conn
            .query_row(
                "SELECT count(*) FROM rows WHERE key = ?1 AND video_id = ?2",
                params![key, video_id],
                |r| r.get(0),
            )
            .map_err(|e| self.sql(e))?;
        if !known {
            return Ok(None);
        }
        let mut statement = conn
            .prepare_cached("SELECT name, digest FROM assets WHERE key = ?1 AND video_id = ?2")
            .map_err(|e| self.sql(e))?;
        let held = statement
            .query_map(params![key, video_id], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(|e| self.sql(e))?
            .collect::<Result<_, _>>()
            .map_err(|e| self.sql(e))?;
        Ok(Some(held))
    }

    /// Records that the server acknowledged asset `name` of row `key`, with `digest`, on video
    /// `video_id` (replacing what the row's asset of that name was before).
    pub fn asset_sent(
        &self,
        key: &str,
        video_id: &str,
        name: &str,
        digest: &str,
    ) -> Result<(), JournalError> {
        self.conn()
            .execute(
                "INSERT INTO assets (key, video_id, name, digest) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(key, name) DO UPDATE SET video_id = ?2, digest = ?4",
                params![key, video_id, name, digest],
            )
            .map(drop)
            .map_err(|e| self.sql(e))
    }

    /// Totals over every entry.
    pub fn totals(&self) -> Result<Totals, JournalError> {
        self.conn()
            .query_row(
                "SELECT COUNT(*),
                        COALESCE(SUM(state = 'done'), 0), COALESCE(SUM(state = 'failed'), 0),
                        COALESCE(SUM(state = 'uploading'), 0),
                        COALESCE(SUM(bytes_done), 0), COALESCE(SUM(size), 0),
                        COALESCE(SUM(CASE WHEN state = 'done' THEN bytes_done ELSE 0 END), 0)
                 FROM rows",
                [],
                |r| {
                    let n = |i| r.get::<_, i64>(i).map(|v| v as u64);
                    Ok(Totals {
                        rows: n(0)?,
                        done: n(1)?,
                        failed: n(2)?,
                        uploading: n(3)?,
                        bytes_done: n(4)?,
                        bytes_total: n(5)?,
                        bytes_of_done: n(6)?,
                    })
                },
            )
            .map_err(|e| self.sql(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checksum_on_both_sides_decides_sameness() {
        let f = file();
        assert!(
            f.same_file(&FileIdentity { path: "moved/a.mp4".into(), ..file() }),
            "a moved file is the same file"
        );
        assert!(!f.same_file(&FileIdentity { mtime_ns: 8, ..file() }));
        assert!(!f.same_file(&FileIdentity { size: 101, ..file() }));
        let hashed = |h: &str, t| FileIdentity { sha256: Some(h.into()), mtime_ns: t, ..file() };
        assert!(hashed("ab", 7).same_file(&hashed("ab", 9)), "touched: same contents");
        assert!(!hashed("ab", 7).same_file(&hashed("cd", 7)), "rewritten with the old mtime");
        assert!(
            !hashed("ab", 7).same_file(&FileIdentity { mtime_ns: 9, ..file() }),
            "one side without a hash: size and mtime"
        );
    }

    fn file() -> FileIdentity {
        FileIdentity { path: "a.mp4".into(), size: 100, mtime_ns: 7, sha256: None }
    }

    #[test]
    fn entries_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.sqlite");
        {
            let j = Journal::open(&path).unwrap();
            assert_eq!(j.get("k").unwrap(), None);
            j.start("k", &file(), "vi1", 50).unwrap();
            j.acknowledged("k", 1, 50).unwrap();
        }
        let j = Journal::open(&path).unwrap();
        let e = j.get("k").unwrap().unwrap();
        assert_eq!(
            (e.video_id.as_deref(), e.parts_done, e.bytes_done, e.state, e.chunk_size),
            (Some("vi1"), 1, 50, State::Uploading, 50)
        );
        j.finish("k", State::Done, None).unwrap();
        j.start("k2", &file(), "vi2", 50).unwrap();
        j.finish("k2", State::Failed, Some("boom")).unwrap();
        assert_eq!(j.get("k2").unwrap().unwrap().error.as_deref(), Some("boom"));
        let t = j.totals().unwrap();
        assert_eq!(
            (t.rows, t.done, t.failed, t.uploading, t.bytes_done, t.bytes_total),
            (2, 1, 1, 0, 50, 200)
        );
        // Restarting a row clears what it had acknowledged.
        j.start("k", &FileIdentity { size: 200, ..file() }, "vi3", 50).unwrap();
        let e = j.get("k").unwrap().unwrap();
        assert_eq!(
            (e.video_id.as_deref(), e.parts_done, e.state, e.file.size),
            (Some("vi3"), 0, State::Uploading, 200)
        );
    }

    #[test]
    fn an_entry_under_an_old_key_moves_to_the_new_one() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(&dir.path().join("j.sqlite")).unwrap();
        j.start("a.mp4:100:7", &file(), "vi1", 50).unwrap();
        assert_eq!(
            j.get_or_migrate("digest", "a.mp4:100:7").unwrap().unwrap().video_id.as_deref(),
            Some("vi1")
        );
        assert_eq!(j.get("a.mp4:100:7").unwrap(), None, "moved, not copied");
        assert_eq!(j.get_or_migrate("digest", "a.mp4:100:7").unwrap().unwrap().key, "digest");
        assert_eq!(j.get_or_migrate("other", "none").unwrap(), None);
    }

    #[test]
    fn a_journal_belongs_to_one_destination() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.sqlite");
        let j = Journal::open(&path).unwrap();
        j.bind_destination("https://sandbox.api.video").unwrap();
        j.bind_destination("https://sandbox.api.video").unwrap();
        assert!(matches!(
            j.bind_destination("https://ws.api.video"),
            Err(JournalError::OtherDestination { .. })
        ));
    }

    #[test]
    fn a_second_run_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.sqlite");
        let _first = Journal::open(&path).unwrap();
        assert!(matches!(Journal::open(&path), Err(JournalError::Locked { .. })));
        // Reading for `avbatch status` does not need the lock.
        assert_eq!(Journal::open_read_only(&path).unwrap().totals().unwrap().rows, 0);
    }

    fn pragma(j: &Journal, name: &str) -> String {
        j.conn()
            .query_row(&format!("PRAGMA {name}"), [], |r| r.get::<_, rusqlite::types::Value>(0))
            .map(|v| format!("{v:?}"))
            .unwrap()
    }

    #[test]
    fn a_journal_on_a_network_filesystem_keeps_a_rollback_journal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.sqlite");
        let side = |suffix: &str| dir.path().join(format!("j.sqlite{suffix}"));
        let j = Journal::open_on(&path, Filesystem::Network("nfs")).unwrap();
        assert_eq!(pragma(&j, "journal_mode"), r#"Text("delete")"#);
        assert_eq!(pragma(&j, "synchronous"), "Integer(2)", "FULL: each commit fsynced");
        assert_eq!(pragma(&j, "mmap_size"), "Integer(0)");
        assert_eq!(pragma(&j, "locking_mode"), r#"Text("normal")"#);
        j.start("k", &file(), "vi1", 50).unwrap();
        j.acknowledged("k", 1, 50).unwrap();
        assert!(
            !side("-wal").exists() && !side("-shm").exists(),
            "no WAL and no shared memory beside it"
        );
        // `avbatch status` reads between the run's transactions.
        let reader = Journal::connect(&path, true, Filesystem::Network("nfs")).unwrap();
        assert_eq!(reader.totals().unwrap().bytes_done, 50);
        assert_eq!(j.notes().len(), 1);
        assert!(j.notes()[0].contains("network filesystem (nfs)"), "{:?}", j.notes());
        drop((j, reader));
        // On a local disk, WAL as before, and nothing to say.
        let local = Journal::open_on(&dir.path().join("l.sqlite"), Filesystem::Local).unwrap();
        assert_eq!(pragma(&local, "journal_mode"), r#"Text("wal")"#);
        assert!(local.notes().is_empty());
    }

    #[test]
    fn a_wal_journal_found_on_a_network_filesystem_is_read_and_converted_with_every_row() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.sqlite");
        let wal = dir.path().join("j.sqlite-wal");
        let j = Journal::open_on(&path, Filesystem::Local).unwrap();
        j.start("k", &file(), "vi1", 50).unwrap();
        j.acknowledged("k", 2, 100).unwrap();
        // What a killed run leaves, carried to a network filesystem: the rows only in the WAL,
        // never checkpointed, and no shared memory beside it.
        assert!(std::fs::metadata(&wal).unwrap().len() > 0, "the rows are in the WAL");
        let carried = |name: &str| {
            let to = dir.path().join(name);
            std::fs::copy(&path, &to).unwrap();
            std::fs::copy(&wal, dir.path().join(format!("{name}-wal"))).unwrap();
            std::fs::copy(dir.path().join("j.sqlite-shm"), dir.path().join(format!("{name}-shm")))
                .unwrap();
            assert!(is_wal(&to));
            to
        };
        let (read, converted) = (carried("read.sqlite"), carried("converted.sqlite"));
        drop(j);

        // `avbatch status` reads it before any run converts it.
        let reader = Journal::connect(&read, true, Filesystem::Network("fuse")).unwrap();
        assert_eq!(reader.totals().unwrap().bytes_done, 100);

        let j = Journal::open_on(&converted, Filesystem::Network("fuse")).unwrap();
        assert!(!is_wal(&converted));
        assert_eq!(pragma(&j, "journal_mode"), r#"Text("delete")"#);
        let e = j.get("k").unwrap().unwrap();
        assert_eq!((e.parts_done, e.bytes_done), (2, 100));
        assert!(
            !dir.path().join("converted.sqlite-wal").exists(),
            "checkpointed into the database and removed"
        );
        assert!(
            !dir.path().join("converted.sqlite-shm").exists(),
            "no longer anyone's shared memory"
        );
    }

    #[test]
    fn status_reads_a_rollback_journal_that_a_killed_run_left_half_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.sqlite");
        let j = Journal::open_on(&path, Filesystem::Network("nfs")).unwrap();
        j.start("done", &file(), "vi1", 50).unwrap();
        j.finish("done", State::Done, None).unwrap();
        // A transaction larger than the page cache writes into the database before its commit;
        // copying the files then gives what a `kill -9` at that moment leaves on the disk.
        let conn = j.conn();
        conn.execute_batch("PRAGMA cache_size = 1; BEGIN;").unwrap();
        for i in 0..300 {
            conn.execute(
                "INSERT INTO rows (key, path, size, mtime_ns, chunk_size, state) VALUES (?1, 'p', \
                 1, 0, 1, 'done')",
                params![format!("{i:0>200}")],
            )
            .unwrap();
        }
        let crashed = |name: &str| {
            let copy = dir.path().join(name);
            std::fs::copy(&path, &copy).unwrap();
            std::fs::copy(
                dir.path().join("j.sqlite-journal"),
                dir.path().join(format!("{name}-journal")),
            )
            .unwrap();
            copy
        };
        let (a, b) = (crashed("a.sqlite"), crashed("b.sqlite"));
        conn.execute_batch("ROLLBACK").unwrap();
        drop(conn);
        let t = Journal::open_read_only(&a)
            .unwrap_or_else(|e| panic!("{}", crate::engine::error_chain(&e)))
            .totals();
        assert_eq!(t.unwrap().done, 1, "the committed row, not the half-written transaction");
        // Opened read-only, SQLite cannot roll the transaction back and refuses to read.
        let read_only =
            Connection::open_with_flags(&b, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        assert!(read_only
            .query_row("SELECT count(*) FROM rows", [], |r| r.get::<_, i64>(0))
            .is_err());
    }

    #[test]
    fn a_run_lock_held_elsewhere_says_who_holds_it_and_how_to_clear_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.sqlite");
        let here = Journal::open(&path).unwrap();
        let err = Journal::open(&path).unwrap_err();
        let JournalError::Locked { holder: Some(h), .. } = &err else { panic!("{err:?}") };
        assert_eq!(h.pid, std::process::id());
        assert!(err.to_string().contains(&format!("pid {} on `{}`", h.pid, h.host)), "{err}");
        assert!(err.hint().contains("wait for the other run"), "{}", err.hint());
        drop(here);
        let mut gone = h.clone();
        gone.host = "node-7".into();
        let elsewhere = JournalError::Locked { path: path.clone(), holder: Some(gone) };
        let hint = elsewhere.hint();
        assert!(
            hint.contains("`node-7` is gone for good") && hint.contains("j.sqlite.lock"),
            "{hint}"
        );
    }

    #[test]
    fn a_read_only_folder_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no-such-folder").join("j.sqlite");
        assert!(matches!(Journal::open(&missing), Err(JournalError::Open { .. })));
    }
}
