//! What the journal keeps of a row once done, for the report of every later run: when and by
//! which run it was completed, how its source went, and the assets on its video.

use rusqlite::{params, OptionalExtension};

use super::{Journal, JournalError};

/// What the journal knows of a row once done: when it was completed and by which run (as their
/// reports name it), how its source went, and the assets acknowledged on its video. None of it
/// for a row done by an avbatch that did not keep it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct History {
    /// When the row was completed (RFC 3339, UTC).
    pub done_at: Option<String>,
    /// The run that completed it: when that run started (RFC 3339, UTC).
    pub done_run: Option<String>,
    /// How its source went: `file`, `relay` or `pull`.
    pub transfer: Option<String>,
    /// The assets acknowledged on its video, by name, sorted.
    pub assets: Vec<String>,
}

impl Journal {
    /// What the journal knows of row `key`'s completion ([`History`]); `None` without an entry.
    pub fn history(&self, key: &str) -> Result<Option<History>, JournalError> {
        let conn = self.conn();
        let row = conn
            .query_row(
                "SELECT done_at, done_run, transfer, video_id FROM rows WHERE key = ?1",
                params![key],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get::<_, Option<String>>(3)?)),
            )
            .optional()
            .map_err(|e| self.sql(e))?;
        let Some((done_at, done_run, transfer, video_id)) = row else { return Ok(None) };
        let mut statement = conn
            .prepare_cached(
                "SELECT name FROM assets WHERE key = ?1 AND video_id = ?2 ORDER BY name",
            )
            .map_err(|e| self.sql(e))?;
        let assets = statement
            .query_map(params![key, video_id], |r| r.get(0))
            .map_err(|e| self.sql(e))?
            .collect::<Result<_, _>>()
            .map_err(|e| self.sql(e))?;
        Ok(Some(History { done_at, done_run, transfer, assets }))
    }
}
