//! What keeps a journal's secrets (issue #25, point 15): recipes put journals on volumes other
//! people read, so its files are the owner's alone, and a URL's credentials are never written.
//!
//! A row's `path` is kept as [`kept`] makes it: a URL's user, password, query string and
//! fragment (what [`crate::remote::shown`] hides; a presigned URL's signature, a `?token=`) are
//! replaced by a digest of the whole URL, so two URLs that differ only there stay two and the
//! same URL is found again, while what names the object (scheme, host, path) stays readable. The
//! database, its `-wal`, `-shm` and `-journal` files and the run's lock file are mode 0600,
//! set whatever the umask, also on the files an earlier avbatch left readable; SQLite gives the
//! files it creates beside the database the database's mode. A journal an earlier avbatch
//! wrote has its rows' secrets taken out when a run opens it ([`scrub`]), erased from the
//! file, not only unlinked from the table.

use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rusqlite::{params, Connection};
use sha2::{Digest, Sha256};

/// Owner read and write, nothing for anyone else.
const OWNER_ONLY: u32 = 0o600;

/// A row's `path` as the journal keeps it: as written, unless it holds a secret ([`shown`
/// hides something](crate::remote::shown)); then as shown, followed by a digest of the whole
/// text in parentheses: `https://host/v.mp4?… (3f2a9c1b7d5e8a40)`.
pub(super) fn kept(path: &str) -> String {
    let shown = crate::remote::shown(path);
    if shown == path {
        return shown;
    }
    let mut hasher = Sha256::new();
    for piece in ["avbatch-path-1", path] {
        hasher.update(piece.as_bytes());
        hasher.update([0]);
    }
    format!("{shown} ({})", &hex::encode(hasher.finalize())[..16])
}

/// The files of the journal at `path` other than the database: what SQLite keeps beside it, and
/// the run's lock.
fn beside(path: &Path, lock: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = ["-wal", "-shm", "-journal"]
        .iter()
        .map(|suffix| {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            PathBuf::from(name)
        })
        .collect();
    files.push(lock.to_owned());
    files
}

/// Makes the journal at `path` and the files beside it ([`beside`]) the owner's alone,
/// creating the database so when it is missing. Files are changed by name, never opened: closing
/// a descriptor of a database this process has open would drop SQLite's locks on it. A file of
/// another user's is left as it is (its owner chose).
pub(super) fn make_private(path: &Path, lock: &Path) -> io::Result<()> {
    match std::fs::OpenOptions::new().write(true).create_new(true).mode(OWNER_ONLY).open(path) {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    for file in std::iter::once(path.to_owned()).chain(beside(path, lock)) {
        let mode = match std::fs::metadata(&file) {
            Ok(meta) => meta.permissions().mode() & 0o777,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if mode == OWNER_ONLY {
            continue;
        }
        match std::fs::set_permissions(&file, std::fs::Permissions::from_mode(OWNER_ONLY)) {
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {}
            other => other?,
        }
    }
    Ok(())
}

/// Takes the secrets out of a journal an earlier avbatch wrote: each row's `path` becomes what
/// [`kept`] keeps, also where its error quoted it. `secure_delete` (on for every run's
/// connection) zeroes what the old text occupied, and a checkpoint moves the rewritten pages
/// into the database at once, so the file holds the secret no longer than this call.
pub(super) fn scrub(conn: &Connection) -> rusqlite::Result<()> {
    let rows: Vec<(String, String, Option<String>)> = {
        let mut statement =
            conn.prepare("SELECT key, path, error FROM rows WHERE path LIKE '%:%'")?;
        let found = statement.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        found.collect::<rusqlite::Result<_>>()?
    };
    let mut scrubbed = 0;
    for (key, path, error) in rows {
        let kept = kept(&path);
        if kept == path {
            continue;
        }
        let error = error.map(|e| e.replace(&path, &kept));
        conn.execute(
            "UPDATE rows SET path = ?2, error = ?3 WHERE key = ?1",
            params![key, kept, error],
        )?;
        scrubbed += 1;
    }
    if scrubbed > 0 {
        // In rollback mode this answers `-1`s and does nothing: the rows went straight to the
        // database.
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_keeps_what_names_it_and_loses_its_secrets() {
        assert_eq!(kept("films/a b.mp4"), "films/a b.mp4");
        assert_eq!(kept("https://media.example/a.mp4"), "https://media.example/a.mp4");
        assert_eq!(kept("s3://bucket/key/a.mp4"), "s3://bucket/key/a.mp4");
        let token = kept("https://media.example/a.mp4?token=s3cret");
        assert!(token.starts_with("https://media.example/a.mp4?… ("), "{token}");
        assert!(!token.contains("s3cret"));
        let user = kept("http://alice:pw-s3cret@media.example:8080/a.mp4");
        assert!(user.starts_with("http://media.example:8080/a.mp4 ("), "{user}");
        assert!(!user.contains("pw-s3cret") && !user.contains("alice"), "{user}");
        // Stable, and two URLs that differ only in their secrets stay two.
        assert_eq!(token, kept("https://media.example/a.mp4?token=s3cret"));
        assert_ne!(token, kept("https://media.example/a.mp4?token=other"));
    }

    #[test]
    fn a_journal_and_the_files_beside_it_become_the_owners_alone() {
        let dir = tempfile::tempdir().unwrap();
        let (path, lock) = (dir.path().join("j.sqlite"), dir.path().join("j.sqlite.lock"));
        let wal = dir.path().join("j.sqlite-wal");
        std::fs::write(&wal, b"").unwrap();
        std::fs::set_permissions(&wal, std::fs::Permissions::from_mode(0o644)).unwrap();
        make_private(&path, &lock).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!((mode(&path), mode(&wal)), (0o600, 0o600));
        assert!(!lock.exists() && !dir.path().join("j.sqlite-shm").exists(), "none made");
    }
}
