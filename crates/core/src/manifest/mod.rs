//! The CSV manifest of `avbatch upload`: one row per video, parsed and validated in full before
//! anything is sent.
//!
//! The first record is the header. `path` is required; the other known columns are listed in
//! [`COLUMNS`], plus any number of `meta.KEY` columns. Surrounding whitespace in header names and
//! cells is ignored. Relative paths resolve from the manifest's folder.
//!
//! Every problem is found, never just the first: each names the line the user sees in an
//! editor, and the column and file when they apply; the first [`PROBLEMS_KEPT`] by line are
//! kept and all are counted. A manifest of any length is checked in bounded memory ([`check`]):
//! records are parsed sequentially as they stream in (the `csv` crate is fast), the per-file
//! checks (stat, open, size) run in parallel with rayon a batch at a time, and what outlives a
//! row is a digest of its key and its file's identity, spilled to disk. The run then reads the
//! rows again ([`Checked::rows`]) as it needs them.
//!
//! A manifest with any problem is refused whole ([`check`]), unless the run leaves out the rows
//! with problems of their own ([`check_skipping`], `--skip-invalid-rows`): those are read again
//! as [`RowRead::Invalid`] with all their problems ([`LeftOut`]), and only what puts the rows
//! themselves in doubt (the header, a quote, a record's number of fields) still refuses it.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

mod assets;
mod cells;
mod check;
mod keys;
mod left_out;
mod near;
mod objects;
mod records;
pub mod scan;
mod schema;

pub use assets::{load_image, Image, Thumbnail, TrackFile, TRACK_MAX_BYTES};
pub use check::{check, check_skipping, Checked, CheckedRows, RowRead, PROBLEMS_KEPT};
pub use keys::{row_keys, Keyed, KeyedRows, RowKeys};
pub use left_out::LeftOut;

use check::Problems;
use records::{read_header, Records, RowReader, Source};

use crate::chunk::{open_regular, special_kind, MAX_VIDEO_SIZE};
use crate::excerpt::quoted;
use avbatch_api::{Clip, Watermark};

/// The known column names, in the order the documentation lists them (`meta.KEY` aside).
pub const COLUMNS: &[&str] = &[
    "path",
    "id",
    "action",
    "title",
    "description",
    "tags",
    "metadata",
    "public",
    "panoramic",
    "mp4_support",
    "player_id",
    "language",
    "clip_start",
    "clip_end",
    "watermark",
    "transcript",
    "transcript_summary",
    "transcript_summary_attributes",
    "thumbnail",
    "thumbnail_time",
    "captions_default",
];

/// The prefix of a column that names a caption file in one language, as in `captions.fr-CA`.
pub const CAPTIONS_PREFIX: &str = "captions.";

/// The prefix of a column that names a chapters file in one language, as in `chapters.en`.
pub const CHAPTERS_PREFIX: &str = "chapters.";

/// The prefix of a column that places the watermark, as in `watermark.top`.
pub const WATERMARK_PREFIX: &str = "watermark.";

/// The prefix of a column that adds one metadata key, as in `meta.genre`.
pub const META_PREFIX: &str = "meta.";

/// The fewest threads for the file checks. They mostly wait on the file system (a NAS answers a
/// stat in milliseconds, not microseconds), so there are more of them than cores.
pub const MIN_CHECK_THREADS: usize = 32;

/// The threads the file checks run on: one per core, and at least [`MIN_CHECK_THREADS`].
pub fn check_threads() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from).max(MIN_CHECK_THREADS)
}

/// How strictly [`load`] reads a manifest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// Ignore columns avbatch does not know instead of reporting them.
    pub allow_unknown_columns: bool,
}

/// What a row asks of its video: the `action` column.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RowAction {
    /// Upload the file to a new video, once: a video its key already has is kept as it is.
    #[default]
    Create,
    /// Create and upload when the key has no video (or, per the journal, the file changed, as
    /// with `--force`); otherwise change the video's fields where they differ from the row.
    Upsert,
    /// Change the fields of the key's video where they differ from the row; never upload.
    Update,
    /// Delete every video carrying the row's key.
    Delete,
}

impl RowAction {
    /// Every action, as the `action` column spells them.
    pub const ALL: [RowAction; 4] =
        [RowAction::Create, RowAction::Upsert, RowAction::Update, RowAction::Delete];

    /// How the `action` column spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            RowAction::Create => "create",
            RowAction::Upsert => "upsert",
            RowAction::Update => "update",
            RowAction::Delete => "delete",
        }
    }

    /// Whether the row's file is uploaded (so must be readable): not for `update` and `delete`.
    pub fn uploads(self) -> bool {
        matches!(self, RowAction::Create | RowAction::Upsert)
    }
}

/// One video to upload: a validated manifest row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The line where the record starts in the manifest, 1-based (the header is line 1).
    pub line: u64,
    /// The user's own id (the `id` column): the idempotency key when present.
    pub id: Option<String>,
    /// What the row asks of its video (the `action` column).
    pub action: RowAction,
    /// The file, resolved against the manifest's folder (a URL as written, when `remote`).
    pub path: PathBuf,
    /// Whether `path` is a URL (`https://`, `s3://`, `gs://`, `az://`: [`crate::remote`])
    /// rather than a local file.
    pub remote: bool,
    /// The path as written in the manifest.
    pub path_text: String,
    /// The file's size in bytes, when validated.
    pub size: u64,
    /// The file's modification time, when the platform reports one.
    pub mtime: Option<SystemTime>,
    /// The video title: the `title` cell, or the file stem.
    pub title: String,
    /// The video description.
    pub description: Option<String>,
    /// The tags, trimmed, without empty items.
    pub tags: Vec<String>,
    /// Metadata pairs: the `metadata` column's items first, then the `meta.KEY` columns in header
    /// order.
    pub metadata: Vec<(String, String)>,
    /// Whether the video is public; `None` leaves the server's default.
    pub public: Option<bool>,
    /// Whether the video is a 360° video; `None` leaves the server's default.
    pub panoramic: Option<bool>,
    /// Whether an mp4 asset is made; `None` leaves the server's default.
    pub mp4_support: Option<bool>,
    /// The player to attach.
    pub player_id: Option<String>,
    /// The spoken language, one of [`LANGUAGES`].
    pub language: Option<String>,
    /// The part of the source to keep (`clip_start`, `clip_end`).
    pub clip: Option<Clip>,
    /// A watermark to burn in (`watermark`, `watermark.PLACEMENT`).
    pub watermark: Option<Watermark>,
    /// Whether api.video makes a transcript (`transcript`).
    pub transcript: Option<bool>,
    /// Whether api.video summarizes it (`transcript_summary`).
    pub transcript_summary: Option<bool>,
    /// What the summary holds (`transcript_summary_attributes`).
    pub transcript_summary_attributes: Vec<String>,
    /// The thumbnail: an image (`thumbnail`) or a frame of the video (`thumbnail_time`).
    pub thumbnail: Option<Thumbnail>,
    /// Caption tracks (`captions.LANGUAGE`), in header order.
    pub captions: Vec<TrackFile>,
    /// The caption language players show by default (`captions_default`).
    pub default_captions: Option<String>,
    /// Chapters tracks (`chapters.LANGUAGE`), in header order.
    pub chapters: Vec<TrackFile>,
}

/// Length of an idempotency key: 32 hex digits, 128 bits of SHA-256.
pub const KEY_LEN: usize = 32;

/// The idempotency key of a row whose `id` is `id`.
pub fn id_key(id: &str) -> String {
    digest_key("id", id)
}

/// A fixed-length key from what identifies a row; `kind` keeps an id from ever meeting a file
/// identity that happens to be spelled the same.
fn digest_key(kind: &str, identity: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for piece in ["avbatch-key-1", kind, identity] {
        hasher.update(piece.as_bytes());
        hasher.update([0]);
    }
    hex::encode(hasher.finalize())[..KEY_LEN].to_owned()
}

/// The title of a row without one: its file's name without the extension (`clip.mp4` →
/// `clip`); for a URL, the decoded name at the end of its path, never its query string (a
/// presigned URL's signature must not become a title).
pub fn default_title(path: &str) -> String {
    let name = crate::remote::file_name(path);
    let name = name.as_deref().unwrap_or(path);
    std::path::Path::new(name)
        .file_stem()
        .map_or_else(String::new, |s| s.to_string_lossy().into_owned())
}

impl Row {
    /// The idempotency key, stored on the video as `avbatch_key` and in the journal: a
    /// fixed-length digest ([`KEY_LEN`] hex digits) of [`Row::identity`], whatever the length of
    /// the path or id behind it.
    pub fn key(&self) -> String {
        match &self.id {
            Some(id) => id_key(id),
            None => digest_key("file", &self.identity()),
        }
    }

    /// What identifies the row: the `id` when present, else `{path_text}:{size}:{mtime}` with
    /// the mtime in nanoseconds since the Unix epoch (0 when unknown). avbatch 0.1 stored this
    /// itself as the key, so it still finds videos tagged that way, and shards by it so a row
    /// stays in its shard across versions.
    pub fn identity(&self) -> String {
        match &self.id {
            Some(id) => id.clone(),
            None => {
                let nanos = self
                    .mtime
                    .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_nanos());
                format!("{}:{}:{}", self.path_text, self.size, nanos)
            }
        }
    }

    /// Whether this machine sends the row's bytes: a file, or with `--relay` (`relay`) an
    /// object, or one api.video cannot be handed a URL for ([`crate::remote::pullable`]); not
    /// an object api.video pulls from its URL, nor a row that uploads nothing.
    pub fn sent_here(&self, relay: bool) -> bool {
        self.action.uploads()
            && (!self.remote || relay || !crate::remote::pullable(&self.path_text))
    }

    /// Whether the row's file must be readable: to be uploaded, or to make the key of a row
    /// without an `id`. An `update` or `delete` row with an `id` may name a file that is gone,
    /// or none.
    pub fn needs_file(&self) -> bool {
        self.action.uploads() || self.id.is_none()
    }

    pub fn new(line: u64) -> Self {
        Row {
            line,
            id: None,
            action: RowAction::Create,
            path: PathBuf::new(),
            remote: false,
            path_text: String::new(),
            size: 0,
            mtime: None,
            title: String::new(),
            description: None,
            tags: Vec::new(),
            metadata: Vec::new(),
            public: None,
            panoramic: None,
            mp4_support: None,
            player_id: None,
            language: None,
            clip: None,
            watermark: None,
            transcript: None,
            transcript_summary: None,
            transcript_summary_attributes: Vec::new(),
            thumbnail: None,
            captions: Vec::new(),
            default_captions: None,
            chapters: Vec::new(),
        }
    }
}

/// A validated manifest.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// The manifest file as given.
    pub path: PathBuf,
    /// The rows, in file order.
    pub rows: Vec<Row>,
}

impl Manifest {
    /// The sum of all rows' file sizes.
    pub fn total_bytes(&self) -> u64 {
        self.rows.iter().map(|r| r.size).sum()
    }
}

/// What is wrong with one manifest line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ProblemKind {
    /// The row's file does not exist.
    MissingFile,
    /// The row's path names a directory.
    IsDirectory,
    /// The row's file cannot be stat'ed or opened (permissions, for one).
    Unreadable,
    /// The row's file has no bytes.
    EmptyFile,
    /// A header names a column avbatch does not know.
    UnknownColumn,
    /// A header names the same column twice.
    DuplicateColumn,
    /// The header has no `path` column.
    MissingPathColumn,
    /// A row's `path` cell is empty.
    MissingPath,
    /// A boolean cell is not true/false/yes/no/1/0.
    BadBoolean,
    /// An `id` is used by an earlier row.
    DuplicateId,
    /// A `metadata` item is not `key=value` with a non-empty key.
    MalformedMetadata,
    /// A row sets one metadata key twice.
    DuplicateMetadataKey,
    /// A row sets a metadata key avbatch keeps for itself ([`crate::marks`]).
    ReservedMetadataKey,
    /// A `language` cell is not a supported language.
    InvalidLanguage,
    /// A cell is not valid UTF-8.
    NotUtf8,
    /// A row has more or fewer fields than the header.
    WrongFieldCount,
    /// A quote opens a field and is never closed (so the field would take in the rest of the
    /// manifest), or closes it while the field goes on. The line is the quote's.
    UnbalancedQuote,
    /// Two rows without an `id` name the same path, so they would share one idempotency key:
    /// one video, the second row's fields never sent.
    DuplicatePath,
    /// The row's path names a FIFO, a socket or a device, not a regular file.
    SpecialFile,
    /// The row's file is larger than api.video takes for one video.
    FileTooLarge,
    /// A clip or thumbnail timecode api.video would refuse, or a clip that ends before it
    /// starts.
    BadTimecode,
    /// A watermark placement api.video would refuse, or one without a watermark id.
    BadWatermark,
    /// A transcript summary attribute api.video does not have.
    BadSummaryAttribute,
    /// Cells that contradict each other (a thumbnail image and a time; a default caption
    /// language the row has no captions for).
    ConflictingCells,
    /// A thumbnail, caption or chapters file that is missing, not a file, of the wrong kind or
    /// size, or that does not parse.
    BadAsset,
    /// An `action` avbatch does not have.
    BadAction,
    /// A `path` that is a URL avbatch cannot read from (another scheme, malformed, no bucket).
    BadUrl,
}

impl ProblemKind {
    /// Whether a problem of this kind puts the manifest's rows themselves in doubt, so that no
    /// row can be left out for it ([`check_skipping`]): the header's (what each cell means), a
    /// bad quote (which rows there are), a record whose number of fields is not the header's
    /// (which cell is its `id` or its `path`). A header name that is not UTF-8 is one too, though
    /// its kind is a cell's.
    pub fn puts_rows_in_doubt(self) -> bool {
        matches!(
            self,
            ProblemKind::UnknownColumn
                | ProblemKind::DuplicateColumn
                | ProblemKind::MissingPathColumn
                | ProblemKind::UnbalancedQuote
                | ProblemKind::WrongFieldCount
        )
    }
}

/// One problem found in a manifest, with where it is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Problem {
    /// The line where the offending record starts, 1-based (the header is line 1).
    pub line: u64,
    /// The column, when the problem is in one cell or header name.
    pub column: Option<String>,
    /// The resolved file path, when the problem is about the file.
    pub path: Option<String>,
    /// What kind of problem it is.
    pub kind: ProblemKind,
    /// What is wrong, for a person; without the line and column, which `Display` adds.
    pub message: String,
}

impl Problem {
    pub(crate) fn new(line: u64, column: Option<&str>, kind: ProblemKind, message: String) -> Self {
        Problem { line, column: column.map(str::to_owned), path: None, kind, message }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}", self.line)?;
        if let Some(column) = &self.column {
            write!(f, ", column {}", quoted(column))?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Why a manifest could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The manifest file itself could not be read.
    #[error("cannot read the manifest {}", quoted(&path.display().to_string()))]
    Read {
        /// The manifest.
        path: PathBuf,
        /// The I/O failure.
        #[source]
        source: io::Error,
    },
    /// The manifest was read but has problems: the first [`PROBLEMS_KEPT`] by line are listed,
    /// sorted, and all are counted. The message names the first, for callers that show only the
    /// message.
    #[error(
        "the manifest {} has {} problem(s), the first: {}",
        quoted(&path.display().to_string()),
        total,
        first(problems)
    )]
    Invalid {
        /// The manifest.
        path: PathBuf,
        /// The first problems by line, at most [`PROBLEMS_KEPT`], sorted by line.
        problems: Vec<Problem>,
        /// How many problems there are in all.
        total: usize,
    },
    /// What the check keeps of a long manifest could not be written to the temporary folder.
    #[error(
        "cannot keep the check of the manifest {} in the temporary folder {} (set TMPDIR to a \
         folder with room)",
        quoted(&path.display().to_string()),
        quoted(&std::env::temp_dir().display().to_string())
    )]
    Spill {
        /// The manifest.
        path: PathBuf,
        /// The I/O failure.
        #[source]
        source: io::Error,
    },
    /// The manifest is not the file that was checked: rewritten since.
    #[error("the manifest {} changed since it was checked", quoted(&path.display().to_string()))]
    Changed {
        /// The manifest.
        path: PathBuf,
    },
}

fn first(problems: &[Problem]) -> String {
    problems.first().map_or_else(String::new, Problem::to_string)
}

impl ManifestError {
    /// The problems kept (the first [`PROBLEMS_KEPT`] by line), empty for a read failure.
    pub fn problems(&self) -> &[Problem] {
        match self {
            ManifestError::Read { .. }
            | ManifestError::Spill { .. }
            | ManifestError::Changed { .. } => &[],
            ManifestError::Invalid { problems, .. } => problems,
        }
    }
}

/// The manifest's rows as written, one at a time, without looking at their files: enough for
/// line numbers and `id` columns (not for keys made of a file's size and time, which stay unset).
/// Problems with the cells are ignored (the check reports them); an unbalanced quote is not,
/// since it changes which rows there are: the last item is then an error naming every one.
pub fn read_rows(path: &Path) -> Result<PlainRows, ManifestError> {
    let read_error = |source| ManifestError::Read { path: path.to_owned(), source };
    let source = Source::open(path).map_err(read_error)?;
    let mut records = Records::new(&source);
    let mut problems = Problems::default();
    let (mut ignored, mut quotes) = (Vec::new(), Vec::new());
    let header = read_header(
        &mut records,
        &LoadOptions { allow_unknown_columns: true },
        &mut ignored,
        &mut quotes,
    )
    .map_err(read_error)?;
    problems.quotes(quotes);
    let dir = path.parent().unwrap_or(Path::new(""));
    Ok(PlainRows {
        path: path.to_owned(),
        rows: header.map(|h| RowReader::new(records, h, dir)),
        problems: Some(problems),
    })
}

/// The rows of [`read_rows`].
pub struct PlainRows {
    path: PathBuf,
    rows: Option<RowReader>,
    /// The bad quotes found so far; taken when the error is given.
    problems: Option<Problems>,
}

impl Iterator for PlainRows {
    type Item = Result<Row, ManifestError>;

    fn next(&mut self) -> Option<Self::Item> {
        let (mut ignored, mut quotes) = (Vec::new(), Vec::new());
        let row = match &mut self.rows {
            Some(rows) => match rows.next(&mut ignored, &mut quotes) {
                Ok(row) => row,
                Err(source) => {
                    return Some(Err(ManifestError::Read { path: self.path.clone(), source }))
                }
            },
            None => None,
        };
        let problems = self.problems.as_mut()?;
        problems.quotes(quotes);
        match row {
            Some(row) => Some(Ok(row)),
            None => {
                let problems = self.problems.take()?;
                let total = problems.total();
                (total > 0).then(|| {
                    Err(ManifestError::Invalid {
                        path: self.path.clone(),
                        problems: problems.sorted(),
                        total,
                    })
                })
            }
        }
    }
}

/// Checks the manifest at `path` like [`check`], and returns every row: for tests and small
/// manifests only, since it holds them all (`avbatch upload` reads them again as it goes).
pub fn load(path: &Path, options: &LoadOptions) -> Result<Manifest, ManifestError> {
    let checked = check(path, options, |_| {})?;
    // A check that refuses a manifest with problems leaves no row out: every row is valid.
    let rows = checked.rows()?.map(|r| r.map(RowRead::into_row)).collect::<Result<_, _>>()?;
    Ok(Manifest { path: path.to_owned(), rows })
}

/// Stats the row's file, then opens it and stats the open handle, filling in its size and
/// mtime; `Some` when the file is unusable.
///
/// The `stat` comes first although it walks the path once more: opening a FIFO waits for a
/// writer (for ever, in a dry run), and opening a device can do something (a tape rewinds, a
/// watchdog arms). The open then proves the file readable, without blocking should the path
/// have become a FIFO in between (see [`open_regular`]).
pub(crate) fn check_file(row: &mut Row) -> Option<Problem> {
    // An object is looked at with the others of its batch, at once ([`objects`]). A `path`
    // refused as a URL names no file: its problem is said, not a "missing file ``" after it.
    if !row.needs_file() || row.remote || row.path.as_os_str().is_empty() {
        return None;
    }
    let problem = |kind, describe: &dyn Fn(&str) -> String| {
        let shown = row.path.display().to_string();
        let message = describe(&quoted(&shown));
        Some(Problem {
            line: row.line,
            column: Some("path".into()),
            path: Some(shown),
            kind,
            message,
        })
    };
    let unusable = |e: &io::Error| match e.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory => {
            problem(ProblemKind::MissingFile, &|p| format!("missing file {p}"))
        }
        _ => problem(ProblemKind::Unreadable, &|p| format!("cannot open {p} ({e})")),
    };
    let metadata = match fs::metadata(&row.path) {
        Ok(metadata) => metadata,
        Err(e) => return unusable(&e),
    };
    if metadata.is_dir() {
        return problem(ProblemKind::IsDirectory, &|p| format!("{p} is a directory, not a file"));
    }
    if let Some(kind) = special_kind(metadata.file_type()) {
        return problem(ProblemKind::SpecialFile, &|p| {
            format!("{p} is {kind}, not a regular file")
        });
    }
    let metadata = match open_regular(&row.path) {
        Ok((_, metadata)) => metadata,
        Err(e) => return unusable(&e),
    };
    if metadata.len() == 0 {
        return problem(ProblemKind::EmptyFile, &|p| format!("empty file {p}"));
    }
    if metadata.len() > MAX_VIDEO_SIZE {
        let len = metadata.len();
        return problem(ProblemKind::FileTooLarge, &|p| {
            format!(
                "{p} is {len} bytes, over the 30 GiB ({MAX_VIDEO_SIZE} bytes) api.video documents \
                 as the most one video may be (its API refuses any upload over 52 428 800 000 \
                 bytes)"
            )
        });
    }
    row.size = metadata.len();
    row.mtime = metadata.modified().ok();
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::fs::File;

    use tempfile::TempDir;

    #[test]
    fn a_default_title_is_the_file_name_without_a_url_query() {
        assert_eq!(default_title("media/Intro take.mp4"), "Intro take");
        assert_eq!(default_title("https://cdn.example.com/v/My%20Show.mp4?sig=a.b"), "My Show");
        assert_eq!(default_title("s3://bucket/2024/ep-001.mp4"), "ep-001");
    }

    /// A temp folder with `a.mp4` (3 bytes), `b.mov` (5 bytes), `empty.mp4` and `dir/`.
    fn folder() -> TempDir {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("a.mp4"), b"abc").unwrap();
        fs::write(dir.path().join("b.mov"), b"12345").unwrap();
        fs::write(dir.path().join("empty.mp4"), b"").unwrap();
        fs::create_dir(dir.path().join("dir")).unwrap();
        dir
    }

    fn write(dir: &TempDir, text: impl AsRef<[u8]>) -> PathBuf {
        let path = dir.path().join("manifest.csv");
        fs::write(&path, text).unwrap();
        path
    }

    fn load_ok(dir: &TempDir, text: impl AsRef<[u8]>) -> Manifest {
        let path = write(dir, text);
        match load(&path, &LoadOptions::default()) {
            Ok(manifest) => manifest,
            Err(e) => panic!("{e}: {:#?}", e.problems()),
        }
    }

    fn problems(dir: &TempDir, text: impl AsRef<[u8]>, options: &LoadOptions) -> Vec<Problem> {
        match load(&write(dir, text), options) {
            Ok(m) => panic!("expected problems, got {} rows", m.rows.len()),
            Err(ManifestError::Invalid { problems, .. }) => problems,
            Err(e) => panic!("{e}"),
        }
    }

    /// Every row [`read_rows`] gives, or its error.
    fn read_all(path: &Path) -> Result<Vec<Row>, ManifestError> {
        read_rows(path)?.collect()
    }

    fn only(dir: &TempDir, text: &str) -> Problem {
        let mut all = problems(dir, text, &LoadOptions::default());
        assert_eq!(all.len(), 1, "{all:#?}");
        all.remove(0)
    }

    #[test]
    fn reads_all_columns() {
        let dir = folder();
        let m = load_ok(
            &dir,
            "path,id,title,description,tags,metadata,meta.genre,public,panoramic,mp4_support,\
             player_id,language\n\
             a.mp4,x1,Hello,Some text, a ; b;;c ,k=v;n=1=2,jazz,Yes,0,TRUE,pl1,fr\n",
        );
        assert_eq!(m.path, dir.path().join("manifest.csv"));
        let row = &m.rows[0];
        assert_eq!(row.line, 2);
        assert_eq!(row.id.as_deref(), Some("x1"));
        assert_eq!(row.path, dir.path().join("a.mp4"));
        assert_eq!(row.path_text, "a.mp4");
        assert_eq!(row.size, 3);
        assert!(row.mtime.is_some());
        assert_eq!(row.title, "Hello");
        assert_eq!(row.description.as_deref(), Some("Some text"));
        assert_eq!(row.tags, ["a", "b", "c"]);
        let pairs = [("k", "v"), ("n", "1=2"), ("genre", "jazz")]
            .map(|(k, v)| (k.to_owned(), v.to_owned()));
        assert_eq!(row.metadata, pairs);
        assert_eq!(
            (row.public, row.panoramic, row.mp4_support),
            (Some(true), Some(false), Some(true))
        );
        assert_eq!(row.player_id.as_deref(), Some("pl1"));
        assert_eq!(row.language.as_deref(), Some("fr"));
        assert_eq!(m.total_bytes(), 3);
    }

    #[test]
    fn defaults_when_cells_are_empty_or_absent() {
        let dir = folder();
        let m = load_ok(&dir, "path,title,public,language\na.mp4,,,\nb.mov, ,no,\n");
        let row = &m.rows[0];
        assert_eq!(row.title, "a");
        assert_eq!(
            (
                row.id.as_ref(),
                row.description.as_ref(),
                row.player_id.as_ref(),
                row.language.as_ref()
            ),
            (None, None, None, None)
        );
        assert!(row.tags.is_empty() && row.metadata.is_empty());
        assert_eq!(row.public, None);
        assert_eq!(m.rows[1].title, "b");
        assert_eq!(m.rows[1].public, Some(false));
        assert_eq!(m.total_bytes(), 8);
    }

    #[test]
    fn metadata_column_comes_before_meta_columns() {
        let dir = folder();
        let m = load_ok(&dir, "meta.z,path,metadata,meta.a\n1,a.mp4,m=x;;,2\n");
        let pairs: Vec<_> = m.rows[0].metadata.iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(pairs, ["m=x", "z=1", "a=2"]);
    }

    #[test]
    fn malformed_metadata() {
        let dir = folder();
        let all = problems(
            &dir,
            "path,metadata\na.mp4,ok=1;novalue\nb.mov, = v\n",
            &LoadOptions::default(),
        );
        assert_eq!(all.len(), 2);
        for (p, line) in all.iter().zip([2, 3]) {
            assert_eq!(
                (p.line, p.column.as_deref(), p.kind),
                (line, Some("metadata"), ProblemKind::MalformedMetadata)
            );
        }
        assert!(all[0].message.contains("`novalue`"), "{}", all[0]);
    }

    #[test]
    fn duplicate_metadata_key() {
        let dir = folder();
        let p = only(&dir, "path,metadata,meta.k\na.mp4,k=1,2\n");
        assert_eq!(
            (p.line, p.column.as_deref(), p.kind),
            (2, Some("meta.k"), ProblemKind::DuplicateMetadataKey)
        );
        let p = only(&dir, "path,metadata\na.mp4,k=1;k=2\n");
        assert_eq!(
            (p.line, p.column.as_deref(), p.kind),
            (2, Some("metadata"), ProblemKind::DuplicateMetadataKey)
        );
        // An empty `meta.KEY` cell adds nothing, so it cannot clash.
        load_ok(&dir, "path,metadata,meta.k\na.mp4,k=1,\n");
    }

    #[test]
    fn key_is_the_id_or_the_file_identity() {
        let dir = folder();
        let m = load_ok(&dir, "path,id\na.mp4,src-7\nb.mov,\n");
        assert_eq!(m.rows[0].identity(), "src-7");
        let nanos = m.rows[1].mtime.unwrap().duration_since(UNIX_EPOCH).unwrap().as_nanos();
        assert_eq!(m.rows[1].identity(), format!("b.mov:5:{nanos}"));
        let row = Row { mtime: None, ..m.rows[1].clone() };
        assert_eq!(row.identity(), "b.mov:5:0");
        // Keys are fixed-length digests, apart for ids and files, whatever the input's length.
        assert_eq!(m.rows[0].key(), id_key("src-7"));
        // Pinned: a key that changed between versions would upload a library twice.
        assert_eq!(id_key("src-7"), "9ec062405aef08bc1645d4827b343b97");
        for k in [m.rows[0].key(), m.rows[1].key(), row.key(), id_key(&"x".repeat(10 << 20))] {
            assert!(k.len() == KEY_LEN && k.bytes().all(|b| b.is_ascii_hexdigit()), "{k}");
        }
        assert_ne!(row.key(), m.rows[1].key(), "another mtime is another key");
        let spelled_alike = Row { id: Some(row.identity()), ..row.clone() };
        assert_ne!(spelled_alike.key(), row.key(), "an id never meets a file identity");
    }

    #[test]
    fn relative_paths_resolve_from_the_manifest_folder() {
        let dir = folder();
        fs::create_dir(dir.path().join("sub")).unwrap();
        let absolute = dir.path().join("b.mov");
        let path = dir.path().join("sub").join("m.csv");
        fs::write(&path, format!("path\n../a.mp4\n{}\n", absolute.display())).unwrap();
        let m = load(&path, &LoadOptions::default()).unwrap();
        assert_eq!(m.rows[0].path, dir.path().join("sub").join("../a.mp4"));
        assert_eq!(m.rows[0].path_text, "../a.mp4");
        assert_eq!(m.rows[1].path, absolute);
        assert_eq!(m.total_bytes(), 8);
    }

    #[test]
    fn quoted_fields_with_commas_and_newlines_keep_line_numbers() {
        let dir = folder();
        fs::write(dir.path().join("c.mp4"), b"c").unwrap();
        fs::write(dir.path().join("d.mp4"), b"d").unwrap();
        let text = "path,title,description\n\
                    a.mp4,\"Hello, world\",\"line one\nline two\n\nline four\"\n\
                    \n\
                    b.mov,\"say \"\"hi\"\"\",x\n\
                    c.mp4,t,\"multi\nline\"\n";
        let m = load_ok(&dir, text);
        assert_eq!(m.rows.iter().map(|r| r.line).collect::<Vec<_>>(), [2, 7, 8]);
        assert_eq!(m.rows[0].title, "Hello, world");
        assert_eq!(m.rows[0].description.as_deref(), Some("line one\nline two\n\nline four"));
        assert_eq!(m.rows[1].title, "say \"hi\"");
        let p = only(&dir, &format!("{text}d.mp4,t,\"x\ny\"\nnope.mp4,,\n"));
        assert_eq!((p.line, p.kind), (12, ProblemKind::MissingFile));
    }

    #[test]
    fn bom_and_crlf() {
        let dir = folder();
        let m = load_ok(&dir, "\u{feff}path,title\r\na.mp4,\"x\r\ny\"\r\n\r\nb.mov,B\r\n");
        assert_eq!(m.rows.iter().map(|r| r.line).collect::<Vec<_>>(), [2, 5]);
        assert_eq!(m.rows[0].title, "x\r\ny");
        assert_eq!(m.rows[1].title, "B");
        let p = only(&dir, "\u{feff}path,public\r\na.mp4,\r\nb.mov,maybe\r\n");
        assert_eq!(
            (p.line, p.column.as_deref(), p.kind),
            (3, Some("public"), ProblemKind::BadBoolean)
        );
        assert_eq!(
            p.to_string(),
            "line 3, column `public`: bad boolean `maybe` (expected true/false/yes/no/1/0)"
        );
    }

    #[test]
    fn leading_blank_lines_move_the_header() {
        let dir = folder();
        let m = load_ok(&dir, "\n\npath\na.mp4\n");
        assert_eq!(m.rows[0].line, 4);
        let p = only(&dir, "\n\npath,bogus\na.mp4,1\n");
        assert_eq!((p.line, p.kind), (3, ProblemKind::UnknownColumn));
    }

    #[test]
    fn file_problems() {
        let dir = folder();
        let text = "path\na.mp4\nnope.mp4\ndir\nempty.mp4\n";
        let all = problems(&dir, text, &LoadOptions::default());
        let got: Vec<_> = all.iter().map(|p| (p.line, p.column.as_deref(), p.kind)).collect();
        assert_eq!(
            got,
            [
                (3, Some("path"), ProblemKind::MissingFile),
                (4, Some("path"), ProblemKind::IsDirectory),
                (5, Some("path"), ProblemKind::EmptyFile)
            ]
        );
        assert_eq!(all[0].path, Some(dir.path().join("nope.mp4").display().to_string()));
        assert!(all[0].message.contains("nope.mp4"));
    }

    #[cfg(unix)]
    #[test]
    fn unreadable_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = folder();
        let locked = dir.path().join("locked.mp4");
        fs::write(&locked, b"x").unwrap();
        fs::set_permissions(&locked, fs::Permissions::from_mode(0o000)).unwrap();
        // A symlink loop fails to stat even for root, who ignores permissions.
        std::os::unix::fs::symlink("loop2", dir.path().join("loop1")).unwrap();
        std::os::unix::fs::symlink("loop1", dir.path().join("loop2")).unwrap();
        let p = only(&dir, "path\nloop1\n");
        assert_eq!(
            (p.line, p.column.as_deref(), p.kind),
            (2, Some("path"), ProblemKind::Unreadable)
        );
        if File::open(&locked).is_err() {
            let p = only(&dir, "path\nlocked.mp4\n");
            assert_eq!(
                (p.line, p.column.as_deref(), p.kind),
                (2, Some("path"), ProblemKind::Unreadable)
            );
        }
    }

    #[test]
    fn header_problems() {
        let dir = folder();
        let p = only(&dir, "path,colour\na.mp4,red\n");
        assert_eq!(
            (p.line, p.column.as_deref(), p.kind),
            (1, Some("colour"), ProblemKind::UnknownColumn)
        );
        let allow = LoadOptions { allow_unknown_columns: true };
        let path = write(&dir, "path, colour \na.mp4,red\n");
        assert_eq!(load(&path, &allow).unwrap().rows.len(), 1);

        let p = only(&dir, " path ,title,title\na.mp4,x,y\n");
        assert_eq!(
            (p.line, p.column.as_deref(), p.kind),
            (1, Some("title"), ProblemKind::DuplicateColumn)
        );
        // Names are case-sensitive.
        assert_eq!(
            all_kinds(&dir, "Path\na.mp4\n"),
            [ProblemKind::UnknownColumn, ProblemKind::MissingPathColumn]
        );
        assert_eq!(all_kinds(&dir, "path,meta.\na.mp4,x\n"), [ProblemKind::UnknownColumn]);
        let all = problems(&dir, "title\nx\n", &LoadOptions::default());
        assert_eq!(
            all.iter().map(|p| (p.line, p.kind)).collect::<Vec<_>>(),
            [(1, ProblemKind::MissingPathColumn)]
        );
        let all = problems(&dir, "", &LoadOptions::default());
        assert_eq!(
            all.iter().map(|p| (p.line, p.kind)).collect::<Vec<_>>(),
            [(1, ProblemKind::MissingPathColumn)]
        );
    }

    fn all_kinds(dir: &TempDir, text: &str) -> Vec<ProblemKind> {
        problems(dir, text, &LoadOptions::default()).iter().map(|p| p.kind).collect()
    }

    #[test]
    fn missing_path_and_wrong_field_count() {
        let dir = folder();
        let p = only(&dir, "path,title\n ,x\n");
        assert_eq!(
            (p.line, p.column.as_deref(), p.kind),
            (2, Some("path"), ProblemKind::MissingPath)
        );
        let p = only(&dir, "path,title\na.mp4\n");
        assert_eq!((p.line, p.column.as_deref(), p.kind), (2, None, ProblemKind::WrongFieldCount));
        let p = only(&dir, "path,title\na.mp4,x,y\n");
        assert_eq!((p.line, p.kind), (2, ProblemKind::WrongFieldCount));
    }

    #[test]
    fn bad_values() {
        let dir = folder();
        let p = only(&dir, "path,language\na.mp4,en\nb.mov,klingon\n");
        assert_eq!(
            (p.line, p.column.as_deref(), p.kind),
            (3, Some("language"), ProblemKind::InvalidLanguage)
        );
        for cell in ["maybe", "y", "2", "tru"] {
            let p = only(&dir, &format!("path,mp4_support\na.mp4,{cell}\n"));
            assert_eq!(
                (p.column.as_deref(), p.kind),
                (Some("mp4_support"), ProblemKind::BadBoolean)
            );
        }
        let m =
            load_ok(&dir, "id,path,panoramic\n1,a.mp4,YES\n2,a.mp4,False\n3,a.mp4,1\n4,a.mp4,No\n");
        assert_eq!(
            m.rows.iter().map(|r| r.panoramic).collect::<Vec<_>>(),
            [Some(true), Some(false), Some(true), Some(false)]
        );
    }

    #[test]
    fn duplicate_id_names_both_lines() {
        let dir = folder();
        let p = only(&dir, "path,id\na.mp4,x\nb.mov,y\na.mp4,x\n");
        assert_eq!(
            (p.line, p.column.as_deref(), p.kind),
            (4, Some("id"), ProblemKind::DuplicateId)
        );
        assert_eq!(p.message, "duplicate id `x` (first used on line 2)");
    }

    #[test]
    fn non_utf8_names_the_column() {
        let dir = folder();
        let p = only_bytes(&dir, b"path,title\na.mp4,caf\xe9\n");
        assert_eq!((p.line, p.column.as_deref(), p.kind), (2, Some("title"), ProblemKind::NotUtf8));
    }

    fn only_bytes(dir: &TempDir, text: &[u8]) -> Problem {
        let mut all = problems(dir, text, &LoadOptions::default());
        assert_eq!(all.len(), 1, "{all:#?}");
        all.remove(0)
    }

    #[test]
    fn reports_all_problems_at_once_sorted_by_line() {
        let dir = folder();
        let text = "path,id,public,language,metadata\n\
                    a.mp4,1,,,\n\
                    nope.mp4,2,,,\n\
                    a.mp4,3,perhaps,,\n\
                    a.mp4,1,,,\n\
                    a.mp4,5,,xx,\n\
                    a.mp4,6,,,bad\n";
        let all = problems(&dir, text, &LoadOptions::default());
        let kinds: Vec<_> = all.iter().map(|p| (p.line, p.kind)).collect();
        assert_eq!(
            kinds,
            [
                (3, ProblemKind::MissingFile),
                (4, ProblemKind::BadBoolean),
                (5, ProblemKind::DuplicateId),
                (6, ProblemKind::InvalidLanguage),
                (7, ProblemKind::MalformedMetadata),
            ]
        );
    }

    #[test]
    fn an_unclosed_quote_is_reported_where_it_opens() {
        let dir = folder();
        // The quote opens in the last column: the record keeps the header's field count.
        let text = "path,title,description\na.mp4,ok,fine\nb.mov,ok,\"oops unbalanced\n\
                    a.mp4,t3,d3\nb.mov,t4,d4\n";
        let p = only(&dir, text);
        assert_eq!(
            (p.line, p.column.as_deref(), p.kind),
            (3, Some("description"), ProblemKind::UnbalancedQuote)
        );
        assert!(p.message.contains("character 10") && p.message.contains("through line 5"), "{p}");
        // In a middle column: the swallowed record's field count is not reported, the quote is.
        let p = only(&dir, "path,title,description\na.mp4,ok,fine\nb.mov,\"oops,d2\na.mp4,t3,d3\n");
        assert_eq!(
            (p.line, p.column.as_deref(), p.kind),
            (3, Some("title"), ProblemKind::UnbalancedQuote)
        );
        assert!(
            p.to_string()
                .starts_with("line 3, column `title`: unbalanced quote: the quote at character 7 "),
            "{p}"
        );
        // Characters, not bytes, after a BOM and a multi-byte title; no final newline.
        let p = only(&dir, "\u{feff}path,title,description\nb.mov,héé,\"x");
        assert_eq!((p.line, p.column.as_deref()), (2, Some("description")));
        assert!(p.message.contains("character 11") && p.message.contains("through line 2"), "{p}");
        // In the header: only the quote is reported.
        let p = only(&dir, "path,\"title\na.mp4,x\n");
        assert_eq!((p.line, p.column.as_deref(), p.kind), (1, None, ProblemKind::UnbalancedQuote));
        assert!(p.message.starts_with("in the header, field 2: "), "{p}");
    }

    #[test]
    fn a_quote_closed_inside_its_field_is_reported() {
        let dir = folder();
        // The stray quote pairs with the next quote, two lines on, and text follows it.
        let text = "path,title,description\na.mp4,\"oops,d2\nb.mov,t3,d3\na.mp4,\"Hello\", world\n";
        let all = problems(&dir, text, &LoadOptions::default());
        assert_eq!(all.len(), 1, "{all:#?}");
        assert_eq!(
            (all[0].line, all[0].column.as_deref(), all[0].kind),
            (2, Some("title"), ProblemKind::UnbalancedQuote)
        );
        assert!(all[0].message.contains("the quote at line 4, character 7 closes"), "{}", all[0]);
        let p = only(&dir, "path,title\na.mp4,\"a\"b\n");
        assert!(p.message.contains("at character 9 closes"), "{p}");
        // Balanced quoting of every kind is fine, and leaves read_rows alone.
        let text = "path,title,description\r\na.mp4,\"a \"\"b\"\" c\",\"x\r\ny\"\r\n\r\n\
                    b.mov,5\" screen,\"\"\r\n";
        let m = load_ok(&dir, text);
        assert_eq!(m.rows[0].title, "a \"b\" c");
        assert_eq!(m.rows[1].title, "5\" screen");
        assert_eq!(read_all(&write(&dir, text)).unwrap().len(), 2);
    }

    #[test]
    fn read_rows_refuses_an_unbalanced_quote_and_nothing_else() {
        let dir = folder();
        let rows = read_all(&write(&dir, "path,public\nnope.mp4,maybe\na.mp4,\n")).unwrap();
        assert_eq!(rows.iter().map(|r| r.line).collect::<Vec<_>>(), [2, 3]);
        let err =
            read_all(&write(&dir, "path,title\na.mp4,ok\nb.mov,\"oops\na.mp4,t\n")).unwrap_err();
        assert_eq!(
            err.problems().iter().map(|p| (p.line, p.kind)).collect::<Vec<_>>(),
            [(3, ProblemKind::UnbalancedQuote)]
        );
        let shown = err.to_string();
        assert!(
            shown.contains("has 1 problem(s), the first: line 3, column `title`: unbalanced quote"),
            "{shown}"
        );
    }

    #[test]
    fn rows_without_an_id_must_not_share_a_path() {
        let dir = folder();
        let p = only(&dir, "path,title\na.mp4,one\nb.mov,x\na.mp4,two\n");
        assert_eq!(
            (p.line, p.column.as_deref(), p.kind),
            (4, Some("path"), ProblemKind::DuplicatePath)
        );
        let first =
            "duplicate path `a.mp4` in a row without an `id` (first used on line 2, column \
                     `path`)";
        assert!(p.message.starts_with(first), "{p}");
        // Rows with an id are each their own video; an id and no id never clash.
        load_ok(&dir, "path,id\na.mp4,x\na.mp4,y\na.mp4,\n");
        // Another spelling of the path is another key (and another video).
        load_ok(&dir, "path\na.mp4\n./a.mp4\n");
    }

    #[cfg(unix)]
    #[test]
    fn fifos_sockets_and_devices_are_refused() {
        let dir = folder();
        let made =
            std::process::Command::new("mkfifo").arg(dir.path().join("pipe.mp4")).status().unwrap();
        assert!(made.success());
        let _socket = std::os::unix::net::UnixListener::bind(dir.path().join("sock.mp4")).unwrap();
        let all =
            problems(&dir, "path\npipe.mp4\nsock.mp4\n/dev/null\na.mp4\n", &LoadOptions::default());
        let got: Vec<_> = all.iter().map(|p| (p.line, p.column.as_deref(), p.kind)).collect();
        assert_eq!(got, [2, 3, 4].map(|line| (line, Some("path"), ProblemKind::SpecialFile)));
        assert!(
            all[0].message.ends_with("pipe.mp4` is a FIFO (named pipe), not a regular file"),
            "{}",
            all[0]
        );
        assert!(all[1].message.contains("is a socket"), "{}", all[1]);
        assert_eq!(all[2].message, "`/dev/null` is a character device, not a regular file");
    }

    #[test]
    fn files_over_the_documented_30_gib_are_refused() {
        let dir = folder();
        for (name, len) in [("cap.mp4", MAX_VIDEO_SIZE), ("over.mp4", MAX_VIDEO_SIZE + 1)] {
            File::create(dir.path().join(name)).unwrap().set_len(len).unwrap();
        }
        let p = only(&dir, "path\ncap.mp4\nover.mp4\n");
        assert_eq!(
            (p.line, p.column.as_deref(), p.kind),
            (3, Some("path"), ProblemKind::FileTooLarge)
        );
        let end = "over.mp4` is 32212254721 bytes, over the 30 GiB (32212254720 bytes) api.video \
                   documents as the most one video may be (its API refuses any upload over 52 428 \
                   800 000 bytes)";
        assert!(p.message.ends_with(end), "{p}");
        assert_eq!(load_ok(&dir, "path\ncap.mp4\n").total_bytes(), MAX_VIDEO_SIZE);
    }

    #[test]
    fn long_values_are_cut_in_problems() {
        let dir = folder();
        let long = "x".repeat(1 << 20);
        let text = format!("path,id,public,{long}\na.mp4,{long},{long},\nb.mov,{long},,\n");
        let all = problems(&dir, text, &LoadOptions::default());
        assert_eq!(
            all.iter().map(|p| p.kind).collect::<Vec<_>>(),
            [ProblemKind::UnknownColumn, ProblemKind::BadBoolean, ProblemKind::DuplicateId]
        );
        for p in &all {
            let shown = p.to_string();
            assert!(shown.len() < 1500, "{} bytes: {}", shown.len(), &shown[..300]);
            assert!(shown.contains("…` (1048576 bytes)"), "{shown}");
        }
    }

    #[test]
    fn unreadable_manifest_is_a_read_error() {
        let dir = folder();
        let err = load(&dir.path().join("absent.csv"), &LoadOptions::default()).unwrap_err();
        assert!(matches!(err, ManifestError::Read { .. }));
        assert!(err.to_string().starts_with("cannot read the manifest `"));
        let err = load(&write(&dir, "path\nnope\n"), &LoadOptions::default()).unwrap_err();
        assert!(
            err.to_string().contains(
                "manifest.csv` has 1 problem(s), the first: line 2, column `path`: missing file `"
            ),
            "{err}"
        );
    }
}
