//! The keys of a manifest's rows, streamed: what `avbatch clean` matches videos against.
//!
//! A row with an `id` is keyed by its cells alone. A row without one is keyed by its file's size
//! and time, so its file is looked at as the check does ([`check_file`], a batch of files at a
//! time in parallel; an object, with a `HEAD`); a row whose file cannot be read then has no key,
//! and says why. Nothing is held but a batch: a manifest of any length streams through.

use std::collections::VecDeque;
use std::path::Path;

use rayon::prelude::*;

use super::{check_file, read_rows, ManifestError, PlainRows, Problem, ProblemKind, Row};
use crate::remote::Stores;

/// Rows whose files are looked at together.
const BATCH: usize = 256;

/// What a row's videos carry in their metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowKeys {
    /// The line where the row starts.
    pub line: u64,
    /// Its key ([`Row::key`]), as avbatch stores it now.
    pub key: String,
    /// The raw key avbatch 0.1 stored ([`Row::identity`]).
    pub legacy: String,
}

/// A row, keyed or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Keyed {
    /// The row's keys.
    Row(RowKeys),
    /// A row without an `id` whose file cannot be read: its key is unknown.
    Unknown(Problem),
}

/// The rows of the manifest at `path`, in order, each with its keys: the same keys an upload of
/// that manifest gives its videos. An unbalanced quote (which changes what the rows are) ends
/// the rows with an error, as the check would; other problems of the cells are not news here.
pub fn row_keys(path: &Path) -> Result<KeyedRows, ManifestError> {
    Ok(KeyedRows { rows: read_rows(path)?, ready: VecDeque::new(), stores: None })
}

/// The rows of [`row_keys`].
pub struct KeyedRows {
    rows: PlainRows,
    ready: VecDeque<Result<Keyed, ManifestError>>,
    /// Opened at the first row whose `path` is a URL (its object's size and time key it).
    stores: Option<Stores>,
}

impl KeyedRows {
    /// Reads the next batch, and looks at the files of its rows without an `id`.
    fn fill(&mut self) {
        let mut batch: Vec<Row> = Vec::with_capacity(BATCH);
        let mut failed = None;
        while batch.len() < BATCH {
            match self.rows.next() {
                Some(Ok(row)) => batch.push(row),
                Some(Err(e)) => {
                    failed = Some(e);
                    break;
                }
                None => break,
            }
        }
        let mut problems: Vec<Option<Problem>> = batch
            .par_iter_mut()
            .map(|row| match (&row.id, row.path_text.is_empty()) {
                (Some(_), _) => None,
                (None, true) => Some(Problem::new(
                    row.line,
                    Some("path"),
                    ProblemKind::MissingPath,
                    "empty `path`".into(),
                )),
                (None, false) => check_file(row),
            })
            .collect();
        // Objects are looked at together; only rows without an `id` need theirs.
        if batch.iter().any(|row| row.remote && row.id.is_none()) {
            let stores = self.stores.get_or_insert_with(Stores::from_env);
            let mut unkeyed: Vec<Row> =
                batch.iter().filter(|r| r.remote && r.id.is_none()).cloned().collect();
            let found = super::objects::head_all(&mut unkeyed, stores);
            for looked in unkeyed {
                if let Some(row) = batch.iter_mut().find(|r| r.line == looked.line) {
                    (row.size, row.mtime) = (looked.size, looked.mtime);
                }
            }
            for problem in found {
                if let Some(i) = batch.iter().position(|r| r.line == problem.line) {
                    problems[i] = Some(problem);
                }
            }
        }
        for (row, problem) in batch.into_iter().zip(problems) {
            self.ready.push_back(Ok(match problem {
                Some(problem) => Keyed::Unknown(problem),
                None => {
                    Keyed::Row(RowKeys { line: row.line, key: row.key(), legacy: row.identity() })
                }
            }));
        }
        if let Some(e) = failed {
            self.ready.push_back(Err(e));
        }
    }
}

impl Iterator for KeyedRows {
    type Item = Result<Keyed, ManifestError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.ready.is_empty() {
            self.fill();
        }
        self.ready.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_the_uploads_and_unreadable_files_say_why() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.mp4"), b"abc").unwrap();
        let manifest = dir.path().join("m.csv");
        std::fs::write(&manifest, "path,id\na.mp4,one\na.mp4,\ngone.mp4,\ngone.mp4,two\n").unwrap();
        let keyed: Vec<Keyed> = row_keys(&manifest).unwrap().map(Result::unwrap).collect();
        let mut file_row = Row::new(3);
        file_row.path_text = "a.mp4".into();
        file_row.path = dir.path().join("a.mp4");
        assert!(check_file(&mut file_row).is_none());
        assert_eq!(
            keyed[..2],
            [
                Keyed::Row(RowKeys {
                    line: 2,
                    key: crate::manifest::id_key("one"),
                    legacy: "one".into()
                }),
                Keyed::Row(RowKeys { line: 3, key: file_row.key(), legacy: file_row.identity() }),
            ]
        );
        assert!(
            matches!(&keyed[2], Keyed::Unknown(p) if p.line == 4 && p.message.contains("missing")),
            "{:?}",
            keyed[2]
        );
        assert_eq!(
            keyed[3],
            Keyed::Row(RowKeys {
                line: 5,
                key: crate::manifest::id_key("two"),
                legacy: "two".into()
            }),
            "a row with an id needs no file"
        );
        assert_eq!(keyed.len(), 4);
    }

    #[test]
    fn an_unbalanced_quote_ends_the_rows_with_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = dir.path().join("m.csv");
        std::fs::write(&manifest, "path,id\na.mp4,one\n\"b.mp4,two\nc.mp4,three\n").unwrap();
        let last = row_keys(&manifest).unwrap().last().unwrap();
        assert!(matches!(last, Err(ManifestError::Invalid { .. })), "{last:?}");
    }
}
