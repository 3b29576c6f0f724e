//! Why the journal cannot be used, and what the person running avbatch can do about it.

use std::path::PathBuf;

use super::{lock, lock_path, Holder};

/// Why the journal cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// Another avbatch run holds the lock.
    #[error(
        "the journal `{}` is in use by another avbatch run{}",
        path.display(),
        holder.as_deref().map(describe).unwrap_or_default()
    )]
    Locked {
        /// The journal.
        path: PathBuf,
        /// The run holding it, as its lock file says (boxed: errors stay small).
        holder: Option<Box<Holder>>,
    },
    /// The journal's filesystem takes no locks, so nothing would keep two runs apart.
    #[error("cannot lock the journal `{}`: its filesystem takes no locks", path.display())]
    LocksUnsupported {
        /// The journal.
        path: PathBuf,
        /// What the filesystem answered.
        #[source]
        source: std::io::Error,
    },
    /// The journal or its lock file cannot be opened or created (missing or read-only folder,
    /// full disk).
    #[error("cannot open the journal `{}`", path.display())]
    Open {
        /// The journal.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The journal records uploads to another API.
    #[error("the journal `{}` records uploads to `{recorded}`, not `{now}`", path.display())]
    OtherDestination {
        /// The journal.
        path: PathBuf,
        /// Where its rows went.
        recorded: String,
        /// Where this run goes.
        now: String,
    },
    /// SQLite refused an operation.
    #[error("journal `{}`", path.display())]
    Sql {
        /// The journal.
        path: PathBuf,
        /// Why.
        #[source]
        source: rusqlite::Error,
    },
}

fn describe(h: &Holder) -> String {
    format!(" (pid {} on `{}`, since {})", h.pid, h.host, h.since)
}

impl JournalError {
    /// What the person running avbatch can do about it.
    pub fn hint(&self) -> String {
        match self {
            JournalError::Locked { path, holder: Some(h) } if h.host != lock::hostname() => {
                format!(
                    "wait for that run to end; if `{}` is gone for good, its file server may keep \
                     its lock (NFSv4 until the host's lease lapses, about 90 s; NFSv3 until that \
                     host restarts): then delete `{}` and run again (each video carries its row's \
                     key, so even a run still alive there makes no duplicate)",
                    h.host,
                    lock_path(path).display()
                )
            }
            JournalError::Locked { .. } => {
                "wait for the other run to finish, or give this one its own --journal".to_owned()
            }
            JournalError::LocksUnsupported { .. } => {
                "mount it with locking (NFS with its lock service, Lustre with -o flock), or keep \
                 the journal on a local disk with --journal PATH (a run elsewhere finds its videos \
                 by their keys), or run with --no-journal"
                    .to_owned()
            }
            JournalError::OtherDestination { .. } => {
                "give each destination its own journal with --journal FILE".to_owned()
            }
            JournalError::Open { .. } | JournalError::Sql { .. } => {
                "choose a writable place with --journal PATH (or run with --no-journal)".to_owned()
            }
        }
    }
}
