//! The plan: which rows of a checked manifest a run covers, how they are cut, and what they add
//! up to, counted as the check reads them; the run and `--dry-run` both take it from here.
//!
//! [`RunShape`] decides the rows (the shard's, the first `--limit`) and the part size; [`Plan`]
//! counts them as the manifest check goes, in constant memory; [`cost`] tells what each row costs
//! in requests under the account's quotas.

pub mod cost;

use crate::chunk::plan_parts;
use crate::manifest::{
    default_title, Checked, ManifestError, Row, RowAction, RowRead, PROBLEMS_KEPT,
};
use crate::shard::Shard;

/// A row of the run read again, or why it could not be.
type Read = Result<RowRead, ManifestError>;

/// What decides which rows a run covers and how they are cut.
#[derive(Debug, Clone, Copy)]
pub struct RunShape {
    /// `--shard K/N`: the rows whose key falls in this machine's share.
    pub shard: Option<Shard>,
    /// The size of a part, the last aside.
    pub chunk_size: u64,
    /// A delegated upload without an API key: each video is made from its first chunk alone.
    pub token_only: bool,
    /// `--limit`: only the first this many rows of the shard.
    pub limit: Option<u64>,
    /// `--relay`: objects are sent from here, not pulled by api.video.
    pub relay: bool,
}

impl RunShape {
    fn covers(&self, row: &Row) -> bool {
        self.shard.is_none_or(|s| s.contains(&row.identity()))
    }

    /// The rows of the run, in manifest order, read again from the checked manifest: the
    /// shard's, and of those the first `--limit` (a row left out counts, as one of the run
    /// reported failed).
    pub fn rows(
        self,
        checked: &Checked,
    ) -> Result<impl Iterator<Item = Read> + Send + 'static, ManifestError> {
        let limit = self.limit.map_or(usize::MAX, |n| usize::try_from(n).unwrap_or(usize::MAX));
        Ok(checked
            .rows()?
            .filter(move |row| row.as_ref().map_or(true, |r| self.covers(r.row())))
            .take(limit))
    }
}

/// What the check counts of the rows a run covers (its shard's), as it goes.
#[derive(Debug, Default)]
pub struct Plan {
    /// Rows the run covers.
    pub rows: u64,
    /// Bytes this machine sends: an object api.video pulls is not counted.
    pub bytes: u64,
    /// Parts this machine sends.
    pub parts: u64,
    /// Rows of the run past `--limit`: checked, not uploaded.
    pub beyond_limit: u64,
    /// The first row whose file cannot be cut into parts.
    pub unplannable: Option<String>,
    /// Rows whose `action` is not `create`.
    pub acting: u64,
    /// Rows setting fields a token alone cannot apply: the first few, and how many.
    pub refused: Vec<String>,
    /// How many rows set such fields.
    pub refused_count: usize,
    /// Rows of the run left out for problems of their own (`--skip-invalid-rows`): counted in
    /// `rows`, as they are reported (failed), and nowhere else, as nothing is done with them.
    pub left_out: u64,
}

impl Plan {
    /// The plan of the rows of `checked` that the run covers, each counted as [`Plan::add`] and
    /// [`Plan::add_left_out`] do: for a check that left rows out, which it knows only at its
    /// end (a duplicate key), so the plan its visits counted is not the run's.
    pub fn of(checked: &Checked, shape: &RunShape) -> Result<Plan, ManifestError> {
        let mut plan = Plan::default();
        for row in checked.rows()? {
            match row? {
                RowRead::Valid(row) => plan.add(&row, shape),
                RowRead::Invalid(row, _) => plan.add_left_out(&row, shape),
            }
        }
        Ok(plan)
    }

    /// Whether the run covers `row` (its shard's, within `--limit`), counting it if it does.
    fn counts(&mut self, row: &Row, shape: &RunShape) -> bool {
        if !shape.covers(row) {
            return false;
        }
        if shape.limit.is_some_and(|n| self.rows >= n) {
            self.beyond_limit += 1;
            return false;
        }
        self.rows += 1;
        true
    }

    /// Counts `row`, left out for problems of its own, when the run covers it: a row of the
    /// run, and nothing it would send or need.
    pub fn add_left_out(&mut self, row: &Row, shape: &RunShape) {
        if self.counts(row, shape) {
            self.left_out += 1;
        }
    }

    /// Counts `row`, when the run covers it.
    pub fn add(&mut self, row: &Row, shape: &RunShape) {
        if !self.counts(row, shape) {
            return;
        }
        if row.action != RowAction::Create {
            self.acting += 1;
        }
        // What this machine sends: an object api.video pulls is not the progress's to count.
        if row.sent_here(shape.relay) {
            self.bytes += row.size;
        }
        match plan_parts(row.size, shape.chunk_size) {
            _ if !row.sent_here(shape.relay) => {}
            Ok(p) => self.parts += p.len() as u64,
            Err(e) => {
                let path = crate::remote::shown(&row.path_text);
                self.unplannable.get_or_insert_with(|| format!("line {}: `{path}`: {e}", row.line));
            }
        }
        if shape.token_only {
            let columns = columns_needing_a_key(row);
            if !columns.is_empty() {
                self.refused_count += 1;
                if self.refused.len() < PROBLEMS_KEPT {
                    self.refused.push(format!("line {}: {}", row.line, columns.join(", ")));
                }
            }
        }
    }
}

/// The columns of a row that only an API key can apply (`title` counts when it differs from
/// the file's stem, the default).
fn columns_needing_a_key(row: &Row) -> Vec<&'static str> {
    let stem = default_title(&row.path_text);
    [
        ("title", row.title != stem),
        ("description", row.description.is_some()),
        ("tags", !row.tags.is_empty()),
        ("metadata", !row.metadata.is_empty()),
        ("public", row.public.is_some()),
        ("panoramic", row.panoramic.is_some()),
        ("mp4_support", row.mp4_support.is_some()),
        ("player_id", row.player_id.is_some()),
        ("language", row.language.is_some()),
        ("clip_start/clip_end", row.clip.is_some()),
        ("watermark", row.watermark.is_some()),
        ("transcript", row.transcript.is_some()),
        ("transcript_summary", row.transcript_summary.is_some()),
        ("transcript_summary_attributes", !row.transcript_summary_attributes.is_empty()),
        ("thumbnail", row.thumbnail.is_some()),
        ("captions", !row.captions.is_empty()),
        ("chapters", !row.chapters.is_empty()),
        ("action", row.action != RowAction::Create),
    ]
    .into_iter()
    .filter_map(|(name, set)| set.then_some(name))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The progress counts the bytes this machine sends: not an object api.video pulls.
    #[test]
    fn the_plan_counts_only_the_bytes_sent_from_here() {
        let row = |line, remote, action| {
            let mut row = Row::new(line);
            (row.remote, row.action, row.size) = (remote, action, 1000);
            row.path_text = if remote { "s3://b/v.mp4".into() } else { "v.mp4".into() };
            row
        };
        let shape = |relay| RunShape {
            shard: None,
            chunk_size: 5 << 20,
            token_only: false,
            limit: None,
            relay,
        };
        for (relay, bytes, parts) in [(false, 1000, 1), (true, 2000, 2)] {
            let mut plan = Plan::default();
            for r in [
                row(2, false, RowAction::Create),
                row(3, true, RowAction::Upsert),
                row(4, false, RowAction::Update),
                row(5, true, RowAction::Delete),
            ] {
                plan.add(&r, &shape(relay));
            }
            assert_eq!((plan.rows, plan.bytes, plan.parts), (4, bytes, parts), "relay {relay}");
        }
    }
}
