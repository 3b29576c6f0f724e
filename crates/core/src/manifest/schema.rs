//! The manifest's header understood ([`Schema`]: what each column means, and the names it
//! refuses), and each record made into a [`Row`] by its columns' kinds ([`super::cells`]).

use std::path::Path;

use csv::ByteRecord;

use super::cells::{add_metadata, non_empty, parse_metadata, Cell};
use super::{
    LoadOptions, Problem, ProblemKind, Row, RowAction, Thumbnail, CAPTIONS_PREFIX, CHAPTERS_PREFIX,
    COLUMNS, META_PREFIX, WATERMARK_PREFIX,
};
use crate::excerpt::quoted;
use avbatch_api::{
    caption_language, caption_languages, clip_seconds, valid_thumbnail_timecode, Clip, Watermark,
    WATERMARK_PLACEMENT,
};

/// The documented language nearest to `tag`, a language api.video does not take: the same tag
/// written otherwise (`en_us`, `EN-us` → `en-US`), else the closest by spelling if one is close
/// (`fr-CAA` → `fr-CA`), else its primary language (`en-XX` → `en`).
fn nearest_language(tag: &str) -> Option<&'static str> {
    let written = |a: &str, b: &str| a.replace('_', "-").eq_ignore_ascii_case(b);
    let all = caption_languages();
    if let Some(l) = all.iter().find(|l| written(tag, l.tag)) {
        return Some(l.tag);
    }
    let lower = tag.to_ascii_lowercase();
    let spelled = all
        .iter()
        .map(|l| (strsim::damerau_levenshtein(&lower, &l.tag.to_ascii_lowercase()), l.tag))
        .filter(|(distance, _)| *distance <= 2 && distance * 3 <= tag.len())
        .min();
    if let Some((_, near)) = spelled {
        return Some(near);
    }
    let primary = tag.split(['-', '_']).next().unwrap_or(tag);
    all.iter().find(|l| written(primary, l.tag)).map(|l| l.tag)
}

/// What one header column means.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Column {
    Path,
    Id,
    Action,
    Title,
    Description,
    Tags,
    Metadata,
    Meta(String),
    Public,
    Panoramic,
    Mp4Support,
    PlayerId,
    Language,
    ClipStart,
    ClipEnd,
    Watermark,
    WatermarkPlace(String),
    Transcript,
    TranscriptSummary,
    TranscriptSummaryAttributes,
    Thumbnail,
    ThumbnailTime,
    Captions(String),
    CaptionsDefault,
    Chapters(String),
    Ignored,
}

impl Column {
    fn from_name(name: &str) -> Option<Column> {
        Some(match name {
            "path" => Column::Path,
            "id" => Column::Id,
            "action" => Column::Action,
            "title" => Column::Title,
            "description" => Column::Description,
            "tags" => Column::Tags,
            "metadata" => Column::Metadata,
            "public" => Column::Public,
            "panoramic" => Column::Panoramic,
            "mp4_support" => Column::Mp4Support,
            "player_id" => Column::PlayerId,
            "language" => Column::Language,
            "clip_start" => Column::ClipStart,
            "clip_end" => Column::ClipEnd,
            "watermark" => Column::Watermark,
            "transcript" => Column::Transcript,
            "transcript_summary" => Column::TranscriptSummary,
            "transcript_summary_attributes" => Column::TranscriptSummaryAttributes,
            "thumbnail" => Column::Thumbnail,
            "thumbnail_time" => Column::ThumbnailTime,
            "captions_default" => Column::CaptionsDefault,
            _ => {
                let suffix = |prefix: &str| name.strip_prefix(prefix).map(str::to_owned);
                if let Some(key) = suffix(META_PREFIX) {
                    return (!key.is_empty()).then_some(Column::Meta(key));
                }
                if let Some(place) = suffix(WATERMARK_PREFIX) {
                    return Some(Column::WatermarkPlace(place));
                }
                if let Some(language) = suffix(CAPTIONS_PREFIX) {
                    return Some(Column::Captions(language));
                }
                return suffix(CHAPTERS_PREFIX).map(Column::Chapters);
            }
        })
    }

    /// Why a known column's name is wrong (a language api.video does not take, a watermark
    /// placement it does not have), if it is.
    fn refused(&self, name: &str) -> Option<String> {
        match self {
            Column::Captions(tag) | Column::Chapters(tag) if caption_language(tag).is_none() => {
                let prefix = &name[..name.len() - tag.len()];
                let hint = nearest_language(tag)
                    .map(|near| format!(": did you mean `{prefix}{near}`?"))
                    .unwrap_or_default();
                Some(format!(
                    "column {}: {} is not a language api.video takes for captions and chapters \
                     (one of the {} tags it documents, as `en`, `fr-CA`, `es-419`){hint}",
                    quoted(name),
                    quoted(tag),
                    caption_languages().len()
                ))
            }
            Column::WatermarkPlace(place) if !WATERMARK_PLACEMENT.contains(&place.as_str()) => {
                Some(format!(
                    "unknown column {}: a watermark's placement is one of {}",
                    quoted(name),
                    WATERMARK_PLACEMENT
                        .iter()
                        .map(|p| format!("`{WATERMARK_PREFIX}{p}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            }
            _ => None,
        }
    }

    /// The name two columns share when they would set the same thing: track languages compare
    /// without regard to case (`captions.en` and `captions.EN`).
    fn same_as(&self, other: &Column) -> bool {
        match (self, other) {
            (Column::Captions(a), Column::Captions(b))
            | (Column::Chapters(a), Column::Chapters(b)) => a.eq_ignore_ascii_case(b),
            _ => false,
        }
    }
}

/// Why a header name is refused, with the column it likely meant, and what to do.
fn unknown_column(name: &str, columns: usize) -> String {
    let shown = quoted(name);
    let how = "or pass --allow-unknown-columns to ignore columns avbatch does not know";
    if columns == 1 && name.contains(';') {
        return format!(
            "unknown column {shown}: the header looks `;`-separated, and the manifest must be \
             comma-separated (export it as CSV with `,` between fields)"
        );
    }
    match super::near::near_column(name) {
        Some(near) => format!("unknown column {shown}: did you mean `{near}`? ({how})"),
        None => format!(
            "unknown column {shown} (expected {}, or `meta.KEY`; {how})",
            COLUMNS.join(", ")
        ),
    }
}

/// The header, understood: what each field index means.
pub(crate) struct Schema {
    columns: Vec<Column>,
    pub(crate) names: Vec<String>,
    has_path: bool,
}

impl Schema {
    pub(crate) fn parse(
        header: &ByteRecord,
        line: u64,
        options: &LoadOptions,
        problems: &mut Vec<Problem>,
    ) -> Schema {
        let mut columns = Vec::with_capacity(header.len());
        let mut names: Vec<String> = Vec::with_capacity(header.len());
        for field in header {
            let name = match std::str::from_utf8(field) {
                Ok(name) => name.trim().to_owned(),
                Err(_) => {
                    let name = String::from_utf8_lossy(field).trim().to_owned();
                    problems.push(Problem::new(
                        line,
                        Some(&name),
                        ProblemKind::NotUtf8,
                        "column name is not valid UTF-8".into(),
                    ));
                    columns.push(Column::Ignored);
                    names.push(name);
                    continue;
                }
            };
            let column = if names.contains(&name) {
                problems.push(Problem::new(
                    line,
                    Some(&name),
                    ProblemKind::DuplicateColumn,
                    format!("duplicate column {}", quoted(&name)),
                ));
                Column::Ignored
            } else if let Some(column) = Column::from_name(&name) {
                if let Some(message) = column.refused(&name) {
                    problems.push(Problem::new(
                        line,
                        Some(&name),
                        ProblemKind::UnknownColumn,
                        message,
                    ));
                    Column::Ignored
                } else if let Some(i) = columns.iter().position(|c: &Column| c.same_as(&column)) {
                    let message = format!(
                        "column {} sets the same track as column {}",
                        quoted(&name),
                        quoted(&names[i])
                    );
                    problems.push(Problem::new(
                        line,
                        Some(&name),
                        ProblemKind::DuplicateColumn,
                        message,
                    ));
                    Column::Ignored
                } else {
                    column
                }
            } else {
                if !options.allow_unknown_columns {
                    let message = unknown_column(&name, header.len());
                    problems.push(Problem::new(
                        line,
                        Some(&name),
                        ProblemKind::UnknownColumn,
                        message,
                    ));
                }
                Column::Ignored
            };
            columns.push(column);
            names.push(name);
        }
        let has_path = columns.contains(&Column::Path);
        if !has_path {
            problems.push(Problem::new(
                line,
                None,
                ProblemKind::MissingPathColumn,
                match names.as_slice() {
                    [one] if one.contains(';') => "missing the required column `path` (the header \
                                                   looks `;`-separated: the manifest must be \
                                                   comma-separated)"
                        .into(),
                    _ => "missing the required column `path`".into(),
                },
            ));
        }
        Schema { columns, names, has_path }
    }

    /// Parses one record; `None` when its field count does not match the header.
    pub(crate) fn row(
        &self,
        record: &ByteRecord,
        line: u64,
        dir: &Path,
        problems: &mut Vec<Problem>,
    ) -> Option<Row> {
        if record.len() != self.columns.len() {
            let message = format!(
                "wrong number of fields: `{}` (the header has `{}`)",
                record.len(),
                self.columns.len()
            );
            problems.push(Problem::new(line, None, ProblemKind::WrongFieldCount, message));
            return None;
        }
        let mut row = Row::new(line);
        let mut across = AcrossCells::default();
        for (index, column) in self.columns.iter().enumerate() {
            if matches!(column, Column::Ignored) {
                continue;
            }
            if matches!(column, Column::Meta(_)) {
                across.has_meta_columns = true;
                continue;
            }
            let Some(text) = self.cell(record, index, line, problems) else { continue };
            let cell = Cell { text, line, name: &self.names[index], dir };
            fill(column, &cell, &mut row, &mut across, problems);
        }
        self.settle_assets(&mut row, across.thumbnail_time, line, problems);
        // A second pass so the `metadata` column's items come first wherever it sits.
        if across.has_meta_columns {
            for (index, column) in self.columns.iter().enumerate() {
                let Column::Meta(key) = column else { continue };
                let Some(value) = self.cell(record, index, line, problems) else { continue };
                if !value.is_empty() {
                    add_metadata(&mut row.metadata, key, value, line, &self.names[index], problems);
                }
            }
        }
        row.title = across.title.unwrap_or_else(|| super::default_title(&row.path_text));
        if !self.has_path {
            // Already reported once, on the header.
            row.path_text.clear();
        } else if row.path_text.is_empty() && row.needs_file() {
            let message = match row.action {
                RowAction::Create | RowAction::Upsert => "empty `path`".to_owned(),
                action => format!(
                    "empty `path` in a row without an `id` (action `{}`): its key is made of \
                     one or the other",
                    action.as_str()
                ),
            };
            problems.push(Problem::new(line, Some("path"), ProblemKind::MissingPath, message));
        }
        Some(row)
    }

    /// The checks across a row's cells: one thumbnail, a default caption the row has, a clip
    /// that ends after it starts, a watermark with its id.
    fn settle_assets(
        &self,
        row: &mut Row,
        thumbnail_time: Option<String>,
        line: u64,
        problems: &mut Vec<Problem>,
    ) {
        let mut problem = |column: &str, kind, message: String| {
            problems.push(Problem::new(line, Some(column), kind, message))
        };
        if let Some(time) = thumbnail_time {
            if row.thumbnail.is_some() {
                problem(
                    "thumbnail_time",
                    ProblemKind::ConflictingCells,
                    "a row takes a `thumbnail` image or a `thumbnail_time`, not both".into(),
                );
            } else {
                row.thumbnail = Some(Thumbnail::Frame(time));
            }
        }
        if let Some(default) = &row.default_captions {
            let has = row.captions.iter().find(|t| t.language.eq_ignore_ascii_case(default));
            match has {
                Some(track) => row.default_captions = Some(track.language.clone()),
                None => {
                    let languages: Vec<String> =
                        row.captions.iter().map(|t| format!("`{}`", t.language)).collect();
                    let have = if languages.is_empty() {
                        "the row has no captions".to_owned()
                    } else {
                        format!("the row's captions are {}", languages.join(", "))
                    };
                    problem(
                        "captions_default",
                        ProblemKind::ConflictingCells,
                        format!(
                            "default captions {} are not among the row's: {have}",
                            quoted(default)
                        ),
                    );
                }
            }
        }
        if let Some(Clip { start_timecode: Some(start), end_timecode: Some(end) }) = &row.clip {
            if let (Some(a), Some(b)) = (clip_seconds(start), clip_seconds(end)) {
                if b <= a {
                    problem(
                        "clip_end",
                        ProblemKind::BadTimecode,
                        format!("the clip ends at {} but starts at {}", quoted(end), quoted(start)),
                    );
                }
            }
        }
        if row.watermark.as_ref().is_some_and(|w| w.id.is_empty()) {
            problem(
                "watermark",
                ProblemKind::BadWatermark,
                "a watermark placement without a `watermark` id".into(),
            );
        }
    }

    /// The trimmed cell, or `None` (with a problem) when it is not UTF-8.
    fn cell<'r>(
        &self,
        record: &'r ByteRecord,
        index: usize,
        line: u64,
        problems: &mut Vec<Problem>,
    ) -> Option<&'r str> {
        match std::str::from_utf8(&record[index]) {
            Ok(cell) => Some(cell.trim()),
            Err(_) => {
                problems.push(Problem::new(
                    line,
                    Some(&self.names[index]),
                    ProblemKind::NotUtf8,
                    "not valid UTF-8".into(),
                ));
                None
            }
        }
    }
}

/// What a row's cells decide together, once all are read.
#[derive(Default)]
struct AcrossCells {
    title: Option<String>,
    thumbnail_time: Option<String>,
    has_meta_columns: bool,
}

/// Reads one cell into the row, as its column's kind.
fn fill(
    column: &Column,
    cell: &Cell,
    row: &mut Row,
    across: &mut AcrossCells,
    problems: &mut Vec<Problem>,
) {
    let text = cell.text;
    match column {
        // Whether an empty path is a problem depends on the row's action and id.
        Column::Path if text.is_empty() => {}
        Column::Path => cell.path(row, problems),
        Column::Id => row.id = non_empty(text),
        Column::Action if text.is_empty() => {}
        Column::Action => cell.action(row, problems),
        Column::Title => across.title = non_empty(text),
        Column::Description => row.description = non_empty(text),
        Column::Tags => {
            row.tags = text
                .split(';')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
                .collect()
        }
        Column::Metadata => parse_metadata(text, cell.line, cell.name, &mut row.metadata, problems),
        Column::Public => row.public = cell.boolean(problems),
        Column::Panoramic => row.panoramic = cell.boolean(problems),
        Column::Mp4Support => row.mp4_support = cell.boolean(problems),
        Column::PlayerId => row.player_id = non_empty(text),
        Column::Language if text.is_empty() => {}
        Column::Language => cell.language(row, problems),
        Column::ClipStart | Column::ClipEnd if text.is_empty() => {}
        Column::ClipStart => cell.clip(false, row, problems),
        Column::ClipEnd => cell.clip(true, row, problems),
        Column::Watermark if text.is_empty() => {}
        Column::Watermark => row.watermark.get_or_insert_with(Watermark::default).id = text.into(),
        Column::WatermarkPlace(_) if text.is_empty() => {}
        Column::WatermarkPlace(place) => cell.watermark_place(place, row, problems),
        Column::Transcript => row.transcript = cell.boolean(problems),
        Column::TranscriptSummary => row.transcript_summary = cell.boolean(problems),
        Column::TranscriptSummaryAttributes => cell.summary_attributes(row, problems),
        Column::Thumbnail if text.is_empty() => {}
        Column::Thumbnail => {
            let path_text = text.to_owned();
            row.thumbnail = Some(Thumbnail::Image { path: cell.dir.join(text), path_text })
        }
        Column::ThumbnailTime if text.is_empty() => {}
        Column::ThumbnailTime => {
            if !valid_thumbnail_timecode(text) {
                cell.bad_timecode(problems);
            }
            across.thumbnail_time = Some(text.to_owned());
        }
        Column::Captions(_) | Column::Chapters(_) if text.is_empty() => {}
        Column::Captions(language) => row.captions.push(cell.track(language)),
        Column::Chapters(language) => row.chapters.push(cell.track(language)),
        Column::CaptionsDefault => row.default_captions = non_empty(text),
        Column::Meta(_) | Column::Ignored => {}
    }
}
