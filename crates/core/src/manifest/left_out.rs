//! The rows a check leaves out of the run instead of refusing the manifest
//! (`--skip-invalid-rows`, [`super::check_skipping`]): every problem of their own, kept in
//! memory that does not grow with them (sorted externally by line, then put on a tape), and
//! read back beside the rows so each is reported with all of its problems.

use std::io::{self, BufRead, Write};
use std::iter::Peekable;

use serde::{Deserialize, Serialize};

use super::Problem;
use crate::spill::{Record, Recorded, Sorter, Tape, TapeReader};

/// Problems sorted in memory before a run of them goes to disk.
const PROBLEMS_IN_MEMORY: usize = 1 << 14;

/// A row's problem, with its place among the row's problems: its phase in the check (cells
/// before duplicates before files, as the check of a whole manifest lists them), then the order
/// found.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Flagged {
    line: u64,
    phase: u8,
    seq: u64,
    problem: Problem,
}

impl Flagged {
    fn rank(&self) -> (u64, u8, u64) {
        (self.line, self.phase, self.seq)
    }
}

impl PartialEq for Flagged {
    fn eq(&self, other: &Self) -> bool {
        self.rank() == other.rank()
    }
}

impl Eq for Flagged {}

impl PartialOrd for Flagged {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Flagged {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.rank().cmp(&other.rank())
    }
}

/// One JSON document a line: problems carry free text.
impl Record for Flagged {
    fn write_to(&self, out: &mut impl Write) -> io::Result<()> {
        serde_json::to_writer(&mut *out, self)?;
        out.write_all(b"\n")
    }

    fn read_from(input: &mut impl BufRead) -> io::Result<Option<Self>> {
        let mut line = String::new();
        if input.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        Ok(Some(serde_json::from_str(&line)?))
    }
}

/// The problems of the rows left out, as the check finds them (a batch's cells, then its
/// files; duplicates at the end). The first failure to keep one is kept for [`Self::finish`],
/// so the check's many call sites stay plain.
pub(super) struct Collector {
    sorter: Sorter<Flagged>,
    seq: u64,
    failed: Option<io::Error>,
}

impl Collector {
    pub(super) fn new() -> Collector {
        Collector { sorter: Sorter::new(PROBLEMS_IN_MEMORY), seq: 0, failed: None }
    }

    /// Keeps `problem`, found in `phase` of the check.
    pub(super) fn add(&mut self, phase: u8, problem: Problem) {
        self.seq += 1;
        let flagged = Flagged { line: problem.line, phase, seq: self.seq, problem };
        if let (Err(e), None) = (self.sorter.push(flagged), &self.failed) {
            self.failed = Some(e);
        }
    }

    /// The problems in line order, on a tape every later pass reads again, and their rows
    /// counted.
    pub(super) fn finish(self) -> io::Result<LeftOut> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        let mut tape = Tape::new();
        let (mut rows, mut last) = (0, None);
        for flagged in self.sorter.finish()? {
            let flagged = flagged?;
            if last != Some(flagged.line) {
                (rows, last) = (rows + 1, Some(flagged.line));
            }
            tape.push(&flagged)?;
        }
        Ok(LeftOut { problems: Some(tape.finish()?), rows })
    }
}

/// The rows a check left out of the run, and their problems by line: none for a check that
/// refuses a manifest with any problem.
#[derive(Debug, Clone, Default)]
pub struct LeftOut {
    problems: Option<Recorded<Flagged>>,
    rows: u64,
}

impl LeftOut {
    /// How many rows were left out.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// How many problems they have in all.
    pub fn problems(&self) -> u64 {
        self.problems.as_ref().map_or(0, Recorded::len)
    }

    /// The first `n` problems by line.
    pub fn first(&self, n: usize) -> io::Result<Vec<Problem>> {
        match &self.problems {
            Some(tape) => tape.reader()?.take(n).map(|f| f.map(|f| f.problem)).collect(),
            None => Ok(Vec::new()),
        }
    }

    /// A reader of the problems that hands each row its own as the rows are read again; `None`
    /// when no row was left out.
    pub(super) fn by_line(&self) -> io::Result<Option<ByLine>> {
        match &self.problems {
            Some(tape) if !tape.is_empty() => Ok(Some(ByLine(tape.reader()?.peekable()))),
            _ => Ok(None),
        }
    }
}

/// The problems of the rows left out, read in line order beside the rows.
pub(super) struct ByLine(Peekable<TapeReader<Flagged>>);

impl ByLine {
    /// The problems of the row on `line`: every one not handed out yet up to that line (a
    /// problem whose line starts no row, which the check never makes, would leave the next row
    /// out rather than be lost).
    pub(super) fn through(&mut self, line: u64) -> io::Result<Vec<Problem>> {
        let mut problems = Vec::new();
        while let Some(next) = self.0.next_if(|f| f.as_ref().map_or(true, |f| f.line <= line)) {
            problems.push(next?.problem);
        }
        Ok(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{check_skipping, LoadOptions, ManifestError, ProblemKind, RowRead};

    fn problem(line: u64, message: &str) -> Problem {
        Problem::new(line, Some("path"), ProblemKind::MissingFile, message.into())
    }

    #[test]
    fn problems_come_back_by_line_then_phase_then_order_found() {
        let mut collector = Collector::new();
        collector.add(4, problem(7, "a file"));
        collector.add(2, problem(3, "a cell"));
        collector.add(3, problem(7, "a duplicate"));
        collector.add(4, problem(3, "a file"));
        collector.add(2, problem(7, "a cell"));
        collector.add(2, problem(7, "another cell"));
        let left_out = collector.finish().unwrap();
        assert_eq!((left_out.rows(), left_out.problems()), (2, 6));
        let first: Vec<String> = left_out
            .first(3)
            .unwrap()
            .iter()
            .map(|p| format!("{}:{}", p.line, p.message))
            .collect();
        assert_eq!(first, ["3:a cell", "3:a file", "7:a cell"]);
        let mut by_line = left_out.by_line().unwrap().expect("rows were left out");
        assert!(by_line.through(2).unwrap().is_empty());
        assert_eq!(by_line.through(3).unwrap().len(), 2);
        let seven: Vec<String> =
            by_line.through(9).unwrap().into_iter().map(|p| p.message).collect();
        assert_eq!(seven, ["a cell", "another cell", "a duplicate", "a file"]);
        assert!(by_line.through(u64::MAX).unwrap().is_empty());
    }

    /// What a check that leaves rows out reads again: (line, left out, its problems' columns).
    fn read_again(text: &str) -> Result<Vec<(u64, bool, Vec<String>)>, ManifestError> {
        let dir = tempfile::tempdir().unwrap();
        for name in ["a.mp4", "b.mp4", "c.mp4"] {
            std::fs::write(dir.path().join(name), b"video").unwrap();
        }
        let path = dir.path().join("manifest.csv");
        std::fs::write(&path, text).unwrap();
        let checked = check_skipping(&path, &LoadOptions::default(), |_| {})?;
        let rows = checked.rows()?.collect::<Result<Vec<_>, _>>()?;
        Ok(rows
            .into_iter()
            .map(|r| match r {
                RowRead::Valid(row) => (row.line, false, Vec::new()),
                RowRead::Invalid(row, problems) => {
                    let columns = problems.into_iter().filter_map(|p| p.column).collect();
                    (row.line, true, columns)
                }
            })
            .collect())
    }

    #[test]
    fn rows_with_problems_of_their_own_are_read_again_with_all_of_them() {
        let read = read_again(
            "path,public,captions.fr\n\
             a.mp4,,\n\
             gone.mp4,maybe,nope.vtt\n\
             b.mp4,,\n\
             b.mp4,,\n\
             c.mp4,yes,\n",
        )
        .unwrap();
        let columns = |c: &[&str]| c.iter().map(|c| (*c).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            read,
            [
                (2, false, vec![]),
                // Cells, then the files, as a refused manifest lists them.
                (3, true, columns(&["public", "path", "captions.fr"])),
                // Two rows without an `id` on one path would be one video: neither goes.
                (4, true, columns(&["path"])),
                (5, true, columns(&["path"])),
                (6, false, vec![]),
            ]
        );
    }

    #[test]
    fn what_puts_the_rows_in_doubt_still_refuses_the_manifest() {
        for text in ["path,colour\na.mp4,red\n", "path,title\na.mp4,A,extra\nb.mp4,\"B\n"] {
            match read_again(text) {
                Err(ManifestError::Invalid { problems, .. }) => {
                    assert!(problems.iter().all(|p| p.kind.puts_rows_in_doubt()), "{problems:#?}")
                }
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_check_that_left_nothing_out_reads_no_problems() {
        let none = LeftOut::default();
        assert_eq!((none.rows(), none.problems()), (0, 0));
        assert!(none.first(10).unwrap().is_empty() && none.by_line().unwrap().is_none());
        assert!(Collector::new().finish().unwrap().by_line().unwrap().is_none());
    }
}
