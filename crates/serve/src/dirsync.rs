//! Group commit for one folder: entries added to it by concurrent requests share one fsync.
//!
//! Each caller needs an fsync of the folder that starts after its own change. Syncs run one at a
//! time; a caller that finds one under way waits for it to end and then for the next one, which
//! it starts itself unless another waiter did. Under load one fsync covers many changes; alone,
//! a caller pays exactly the one fsync it paid before.

use std::io;
use std::path::PathBuf;
use std::sync::{Condvar, Mutex, MutexGuard};

/// Numbers of the syncs started, finished and finished well; they run one after the other.
#[derive(Debug, Default)]
struct Progress {
    started: u64,
    finished: u64,
    succeeded: u64,
    running: bool,
}

/// Shared fsyncs of one folder.
#[derive(Debug)]
pub struct DirSync {
    dir: PathBuf,
    progress: Mutex<Progress>,
    ended: Condvar,
}

impl DirSync {
    /// Syncs of `dir`.
    pub fn new(dir: PathBuf) -> DirSync {
        DirSync { dir, progress: Mutex::new(Progress::default()), ended: Condvar::new() }
    }

    fn lock(&self) -> MutexGuard<'_, Progress> {
        self.progress.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes durable every change made in the folder before this call. Blocks.
    pub fn sync(&self) -> io::Result<()> {
        let mut progress = self.lock();
        // The first sync to start from now on covers this caller's change.
        let needed = progress.started + 1;
        loop {
            if progress.succeeded >= needed {
                return Ok(());
            }
            if progress.finished >= needed {
                // The sync that covered this change failed: try again alone, and report.
                drop(progress);
                return super::store::fsync_dir(&self.dir);
            }
            if !progress.running {
                progress.running = true;
                progress.started += 1;
                let mine = progress.started;
                drop(progress);
                let result = super::store::fsync_dir(&self.dir);
                let mut progress = self.lock();
                progress.running = false;
                progress.finished = mine;
                if result.is_ok() {
                    progress.succeeded = mine;
                }
                self.ended.notify_all();
                return result;
            }
            progress = self.ended.wait(progress).unwrap_or_else(|p| p.into_inner());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn concurrent_callers_all_return_synced() {
        let dir = tempfile::tempdir().unwrap();
        let sync = Arc::new(DirSync::new(dir.path().to_owned()));
        let threads: Vec<_> = (0..16)
            .map(|i| {
                let (sync, path) = (sync.clone(), dir.path().join(format!("d{i}")));
                std::thread::spawn(move || {
                    std::fs::create_dir(&path).unwrap();
                    sync.sync()
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap().unwrap();
        }
        let p = sync.lock();
        assert!(!p.running);
        assert!((1..=16).contains(&p.started), "{p:?}");
        assert_eq!((p.finished, p.succeeded), (p.started, p.started));
    }

    #[test]
    fn a_missing_folder_is_an_error_for_every_caller() {
        let dir = tempfile::tempdir().unwrap();
        let sync = DirSync::new(dir.path().join("gone"));
        assert!(sync.sync().is_err());
        assert!(sync.sync().is_err());
    }
}
