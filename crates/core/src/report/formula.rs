//! CSV cells a spreadsheet would run as a formula (issue #25): a title `=1+1`, an id
//! `@SUM(A1)`, a path `-c.mp4`. Every CSV avbatch writes for people (the run's report, `check`'s
//! findings) passes its text cells through [`neutralised`], and every CSV report avbatch reads
//! back passes them through [`restored`], so a round trip is exact. JSON keeps values as they are.
//!
//! OWASP's advice (<https://owasp.org/www-community/attacks/CSV_Injection>): a cell beginning
//! with `=`, `+`, `-`, `@`, a tab or a carriage return is prefixed with a single quote, which a
//! spreadsheet shows as text and does not display. Only text cells pass through: numbers
//! (`bytes`, `seconds`, …) are written from numbers and stay numbers. A text cell that looks like
//! a number (`-5` as an id) is prefixed all the same: it is text, and a spreadsheet then shows
//! it as written; an exception for "plain numbers" would need every spreadsheet's number grammar
//! (`-5%`, `-1,5`, `-$5`), and a miss is a formula.

use std::borrow::Cow;

/// What makes a spreadsheet read a cell as a formula, when it comes first.
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// Whether `text` is some single quotes (none or more), then a character that starts a formula.
fn quotes_then_formula(text: &str) -> bool {
    text.trim_start_matches('\'').starts_with(FORMULA_STARTS)
}

/// `text` as a CSV cell no spreadsheet runs: `'` before a cell that starts a formula (`=1+1` →
/// `'=1+1`). A cell that already starts with quotes before one (`'=1+1`) gets one more, so
/// [`restored`] gives back exactly what was written; other cells are left as they are.
pub fn neutralised(text: &str) -> Cow<'_, str> {
    if quotes_then_formula(text) {
        Cow::Owned(format!("'{text}"))
    } else {
        Cow::Borrowed(text)
    }
}

/// A CSV cell read back as the value [`neutralised`] was given: one leading `'` dropped where
/// quotes come before a formula's first character; any other cell as it is (a report written
/// before cells were neutralised reads as it did).
pub fn restored(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if quotes_then_formula(rest) => rest,
        _ => cell,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_that_start_a_formula_are_prefixed() {
        for (value, cell) in [
            ("=1+1", "'=1+1"),
            ("+1+1", "'+1+1"),
            ("-1+1", "'-1+1"),
            ("-5", "'-5"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\t=1+1", "'\t=1+1"),
            ("\r=1+1", "'\r=1+1"),
            ("'=1+1", "''=1+1"),
            ("''-x", "'''-x"),
            ("title", "title"),
            ("'quoted'", "'quoted'"),
            ("a=b", "a=b"),
            (" =1", " =1"),
            ("", ""),
            ("'", "'"),
        ] {
            assert_eq!(neutralised(value), cell, "{value:?}");
        }
    }

    #[test]
    fn every_value_comes_back_exactly() {
        for value in [
            "=1+1", "+1", "-5", "@x", "\t=1", "\r", "'=1", "''=1", "'", "''", "'a", "a", "", "=",
            "'\t", "x'=1",
        ] {
            assert_eq!(restored(&neutralised(value)), value, "{value:?}");
        }
    }

    #[test]
    fn cells_written_before_neutralising_read_as_they_did() {
        for cell in ["=1+1", "-5", "'plain", "plain", ""] {
            assert_eq!(restored(cell), cell);
        }
    }
}
