//! A manifest cell read as its column's kind: a path or URL, an action, a language, a clip's
//! ends, a watermark's placement, summary attributes, a boolean, metadata; each problem said
//! with the row's line and the column's name.

use std::path::{Path, PathBuf};

use super::{Problem, ProblemKind, Row, RowAction, TrackFile};
use crate::excerpt::quoted;
use avbatch_api::{clip_seconds, valid_placement, Clip, Watermark, LANGUAGES, SUMMARY_ATTRIBUTES};

/// One cell of a row: its trimmed text, the row's line, the column's name, and the folder
/// relative paths start from.
pub(super) struct Cell<'a> {
    pub(super) text: &'a str,
    pub(super) line: u64,
    pub(super) name: &'a str,
    pub(super) dir: &'a Path,
}

impl Cell<'_> {
    fn problem(&self, problems: &mut Vec<Problem>, kind: ProblemKind, message: String) {
        problems.push(Problem::new(self.line, Some(self.name), kind, message));
    }

    /// `path`: a file relative to the manifest's folder, or a URL avbatch can read from.
    pub(super) fn path(&self, row: &mut Row, problems: &mut Vec<Problem>) {
        match crate::remote::is_remote(self.text) {
            Ok(true) => {
                row.remote = true;
                row.path = PathBuf::from(self.text);
            }
            Ok(false) => row.path = self.dir.join(self.text),
            // The cell itself is not shown: a URL may hold a secret.
            Err(e) => self.problem(
                problems,
                ProblemKind::BadUrl,
                format!("`path` is not a URL avbatch can read from: {e}"),
            ),
        }
        row.path_text = self.text.to_owned();
    }

    /// `action`: create, upsert, update or delete; a near miss in case is named.
    pub(super) fn action(&self, row: &mut Row, problems: &mut Vec<Problem>) {
        if let Some(action) = RowAction::ALL.iter().find(|a| a.as_str() == self.text) {
            row.action = *action;
            return;
        }
        let lower = self.text.trim().to_ascii_lowercase();
        let hint = match RowAction::ALL.iter().find(|a| a.as_str() == lower) {
            Some(a) => format!(": did you mean `{}`?", a.as_str()),
            None => String::new(),
        };
        let message = format!(
            "unknown action {} (expected create, upsert, update or delete; empty is \
             create){hint}",
            quoted(self.text)
        );
        self.problem(problems, ProblemKind::BadAction, message);
    }

    /// `language`: one of the languages api.video documents.
    pub(super) fn language(&self, row: &mut Row, problems: &mut Vec<Problem>) {
        if LANGUAGES.contains(&self.text) {
            row.language = Some(self.text.to_owned());
            return;
        }
        let message = format!(
            "invalid language {} (expected one of {})",
            quoted(self.text),
            LANGUAGES.join(", ")
        );
        self.problem(problems, ProblemKind::InvalidLanguage, message);
    }

    /// `clip_start` or `clip_end` (`end`): a timecode.
    pub(super) fn clip(&self, end: bool, row: &mut Row, problems: &mut Vec<Problem>) {
        if clip_seconds(self.text).is_none() {
            self.bad_timecode(problems);
        }
        let clip = row.clip.get_or_insert_with(Clip::default);
        let slot = if end { &mut clip.end_timecode } else { &mut clip.start_timecode };
        *slot = Some(self.text.to_owned());
    }

    /// `watermark.PLACE`: a length, or a percentage for the opacity.
    pub(super) fn watermark_place(&self, place: &str, row: &mut Row, problems: &mut Vec<Problem>) {
        if !valid_placement(place, self.text) {
            let unit = match place {
                "opacity" => "a percentage, as in `70%`",
                "width" | "height" => "`px` or `%`, as in `120px` or `20%`, or `initial`",
                _ => "`px` or `%`, as in `10px` or `5%`",
            };
            let message = format!("bad watermark {place} {} (expected {unit})", quoted(self.text));
            self.problem(problems, ProblemKind::BadWatermark, message);
        }
        row.watermark.get_or_insert_with(Watermark::default).set(place, self.text.to_owned());
    }

    /// `transcript_summary_attributes`: `;`-separated, each once.
    pub(super) fn summary_attributes(&self, row: &mut Row, problems: &mut Vec<Problem>) {
        for item in self.text.split(';').map(str::trim).filter(|i| !i.is_empty()) {
            if !SUMMARY_ATTRIBUTES.contains(&item) {
                let message = format!(
                    "unknown summary attribute {} (expected {}, `;`-separated)",
                    quoted(item),
                    SUMMARY_ATTRIBUTES.join(", ")
                );
                self.problem(problems, ProblemKind::BadSummaryAttribute, message);
            } else if !row.transcript_summary_attributes.iter().any(|a| a == item) {
                row.transcript_summary_attributes.push(item.to_owned());
            }
        }
    }

    /// `captions.LANG` or `chapters.LANG`: a file relative to the manifest's folder.
    pub(super) fn track(&self, language: &str) -> TrackFile {
        TrackFile {
            language: language.to_owned(),
            path: self.dir.join(self.text),
            path_text: self.text.to_owned(),
        }
    }

    /// A clip or thumbnail timecode api.video would refuse.
    pub(super) fn bad_timecode(&self, problems: &mut Vec<Problem>) {
        bad_timecode(self.text, self.line, self.name, problems);
    }

    /// A boolean; empty means not set.
    pub(super) fn boolean(&self, problems: &mut Vec<Problem>) -> Option<bool> {
        parse_bool(self.text, self.line, self.name, problems)
    }
}

/// A clip or thumbnail timecode api.video would refuse.
fn bad_timecode(cell: &str, line: u64, column: &str, problems: &mut Vec<Problem>) {
    let message = format!(
        "bad timecode {} (expected `HH:MM:SS`, `HH:MM:SS.mmm`, `HH:MM:SS:FF` or whole seconds)",
        quoted(cell)
    );
    problems.push(Problem::new(line, Some(column), ProblemKind::BadTimecode, message));
}

pub(super) fn non_empty(cell: &str) -> Option<String> {
    (!cell.is_empty()).then(|| cell.to_owned())
}

/// Parses a boolean cell; empty means not set.
fn parse_bool(cell: &str, line: u64, column: &str, problems: &mut Vec<Problem>) -> Option<bool> {
    const TRUE: [&str; 3] = ["true", "yes", "1"];
    const FALSE: [&str; 3] = ["false", "no", "0"];
    if cell.is_empty() {
        None
    } else if TRUE.iter().any(|t| cell.eq_ignore_ascii_case(t)) {
        Some(true)
    } else if FALSE.iter().any(|f| cell.eq_ignore_ascii_case(f)) {
        Some(false)
    } else {
        let message = format!("bad boolean {} (expected true/false/yes/no/1/0)", quoted(cell));
        problems.push(Problem::new(line, Some(column), ProblemKind::BadBoolean, message));
        None
    }
}

/// Parses `key=value;key=value`, splitting each item on its first `=`.
pub(super) fn parse_metadata(
    cell: &str,
    line: u64,
    column: &str,
    out: &mut Vec<(String, String)>,
    problems: &mut Vec<Problem>,
) {
    for item in cell.split(';').map(str::trim).filter(|i| !i.is_empty()) {
        match item.split_once('=') {
            Some((key, value)) if !key.trim().is_empty() => {
                add_metadata(out, key.trim(), value.trim(), line, column, problems)
            }
            Some(_) => {
                let message = format!("malformed metadata {} (the key is empty)", quoted(item));
                problems.push(Problem::new(
                    line,
                    Some(column),
                    ProblemKind::MalformedMetadata,
                    message,
                ));
            }
            None => {
                let message = format!("malformed metadata {} (expected `key=value`)", quoted(item));
                problems.push(Problem::new(
                    line,
                    Some(column),
                    ProblemKind::MalformedMetadata,
                    message,
                ));
            }
        }
    }
}

pub(super) fn add_metadata(
    out: &mut Vec<(String, String)>,
    key: &str,
    value: &str,
    line: u64,
    column: &str,
    problems: &mut Vec<Problem>,
) {
    if crate::marks::OWN_METADATA.contains(&key) {
        let message = format!(
            "metadata key {} is avbatch's own (each video carries its row's key and its assets' \
             record under the keys {}): rename it in the manifest",
            quoted(key),
            crate::marks::OWN_METADATA.map(|k| format!("`{k}`")).join(", ")
        );
        problems.push(Problem::new(line, Some(column), ProblemKind::ReservedMetadataKey, message));
    } else if out.iter().any(|(k, _)| k == key) {
        let message = format!("metadata key {} is given twice", quoted(key));
        problems.push(Problem::new(line, Some(column), ProblemKind::DuplicateMetadataKey, message));
    } else {
        out.push((key.to_owned(), value.to_owned()));
    }
}
