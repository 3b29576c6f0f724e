//! Rows whose `path` is a URL (issue #16): each object looked at up front, many at once, as
//! local files are: there, readable, of a size api.video takes. One `HEAD` a row, at most
//! [`HEADS_AT_ONCE`] in flight; the object's size and time then stand for the file's (the key of
//! a row without an `id`, the plan's bytes, the check the run makes before sending).

use std::time::SystemTime;

use futures::stream::{self, StreamExt};

use super::{Problem, ProblemKind, Row};
use crate::chunk::MAX_VIDEO_SIZE;
use crate::remote::{RemoteError, Stores};

/// Objects looked at at once: stores answer a `HEAD` in tens of milliseconds, so a batch of a
/// few thousand rows takes a few seconds.
pub const HEADS_AT_ONCE: usize = 64;

/// Looks at the object of every row of `rows` whose `path` is a URL and which needs it (see
/// [`Row::needs_file`]), filling in its size and time; a problem for each that cannot be used.
/// Blocks: called from the check, which runs off the async runtime (on a runtime's blocking
/// thread, whose runtime then makes the requests; else on one of its own).
pub(crate) fn head_all(rows: &mut [Row], stores: &Stores) -> Vec<Problem> {
    let wanted: Vec<usize> = (0..rows.len())
        .filter(|&i| rows[i].remote && rows[i].needs_file() && !rows[i].path_text.is_empty())
        .collect();
    if wanted.is_empty() {
        return Vec::new();
    }
    let targets: Vec<(usize, String)> =
        wanted.iter().map(|&i| (i, rows[i].path_text.clone())).collect();
    let heads = async {
        stream::iter(targets)
            .map(|(i, text)| async move {
                match stores.parse(&text) {
                    Ok(Some(remote)) => (i, remote.shown(), remote.head().await),
                    Ok(None) => (i, text, Err(RemoteError::Unsupported("not a URL".into()))),
                    Err(e) => (i, "the row's URL".to_owned(), Err(e)),
                }
            })
            .buffer_unordered(HEADS_AT_ONCE)
            .collect::<Vec<_>>()
            .await
    };
    let looked = match tokio::runtime::Handle::try_current() {
        Ok(handle) => handle.block_on(heads),
        Err(_) => match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(runtime) => runtime.block_on(heads),
            Err(e) => {
                let message = format!("cannot look at the objects: {e}");
                let line = rows[wanted[0]].line;
                return vec![Problem::new(line, Some("path"), ProblemKind::Unreadable, message)];
            }
        },
    };
    let mut problems = Vec::new();
    for (i, shown, looked) in looked {
        let row = &mut rows[i];
        let problem = |kind, message: String| Problem::new(row.line, Some("path"), kind, message);
        match looked {
            Ok(info) if info.size == 0 => {
                problems.push(problem(ProblemKind::EmptyFile, format!("empty object `{shown}`")))
            }
            Ok(info) if info.size > MAX_VIDEO_SIZE => problems.push(problem(
                ProblemKind::FileTooLarge,
                format!(
                    "`{shown}` is {} bytes, over the 30 GiB ({MAX_VIDEO_SIZE} bytes) api.video \
                     documents as the most one video may be",
                    info.size
                ),
            )),
            Ok(info) => {
                row.size = info.size;
                row.mtime = info.last_modified.map(SystemTime::from);
            }
            Err(RemoteError::NotFound) => problems.push(problem(
                ProblemKind::MissingFile,
                format!("missing object `{shown}`: {}", RemoteError::NotFound),
            )),
            Err(e) => problems
                .push(problem(ProblemKind::Unreadable, format!("cannot read `{shown}`: {e}"))),
        }
    }
    problems.sort_by_key(|p| p.line);
    problems
}
