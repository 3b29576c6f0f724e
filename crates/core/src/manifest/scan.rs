//! `avbatch manifest DIR`: a manifest from a folder tree, so a nightly job can ingest a drop
//! folder. Each video's `id` is its path under DIR (after `--id-prefix`, for several folders
//! feeding one account), so with the journal a nightly run uploads only what is new, and a file
//! replaced under the same name needs `--force` like any change.
//! A file whose path is not UTF-8 cannot be written into a CSV manifest as it is: it is skipped
//! and named ([`Scan::skipped`]), so the rest of the folder still uploads (issue #25).

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

/// Video file names taken when no `--glob` is given (case-insensitive).
pub const DEFAULT_GLOBS: &[&str] = &[
    "*.mp4", "*.mov", "*.m4v", "*.mkv", "*.webm", "*.avi", "*.wmv", "*.flv", "*.mpg", "*.mpeg",
    "*.ts", "*.mts", "*.3gp", "*.ogv",
];

/// Where a video's title comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TitleFrom {
    /// The file name without its extension: `holiday.mp4` → `holiday`.
    Stem,
    /// The path under DIR without the extension: `2024/holiday.mp4` → `2024/holiday`.
    Path,
}

/// What to scan and how to write it.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// Patterns matched against the path under the folder (`*` does not cross `/`, `**` does);
    /// a pattern without `/` matches file names at any depth.
    pub globs: Vec<String>,
    /// Title source.
    pub title_from: TitleFrom,
    /// Follow symbolic links.
    pub follow_links: bool,
    /// Put before each video's path under the folder to make its `id` (e.g. `east/`): ids
    /// unique across several folders feeding one account.
    pub id_prefix: String,
}

/// Why a folder cannot be scanned.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// A pattern that is not a glob.
    #[error("`{pattern}` is not a glob pattern: {source}")]
    Glob {
        /// The pattern.
        pattern: String,
        /// The parser's complaint.
        source: globset::Error,
    },
    /// The folder, or a part of it, cannot be read.
    #[error("cannot read `{}`: {source}", path.display())]
    Walk {
        /// Where.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
}

/// One video found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Path under the folder, `/`-separated.
    pub relative: String,
    /// Its `id`: the path under the folder, after the prefix asked for.
    pub id: String,
    /// The path to write in the manifest.
    pub path: PathBuf,
    /// Its title.
    pub title: String,
}

/// What a scan found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scan {
    /// The videos, sorted by path.
    pub found: Vec<Found>,
    /// Files the globs took whose path is not UTF-8, which a manifest cannot carry, as the
    /// folder given joined with their path under it; show them with [`escaped`].
    pub skipped: Vec<PathBuf>,
}

/// A path for messages, byte for byte: what is not UTF-8 as `\xNN` (`bad\xff.mp4`) and control
/// characters escaped, where `Path::display` would print U+FFFD.
pub fn escaped(path: &Path) -> String {
    let mut shown = String::new();
    for chunk in path.as_os_str().as_encoded_bytes().utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_control() {
                shown.extend(c.escape_default());
            } else {
                shown.push(c);
            }
        }
        shown.push_str(&chunk.invalid().escape_ascii().to_string());
    }
    shown
}

fn glob_set(patterns: &[String]) -> Result<GlobSet, ScanError> {
    let mut set = GlobSetBuilder::new();
    let defaults: Vec<String> = DEFAULT_GLOBS.iter().map(|s| s.to_string()).collect();
    for pattern in if patterns.is_empty() { &defaults } else { patterns } {
        // A bare name pattern matches at any depth, like a shell user expects of `*.mp4`.
        let full = if pattern.contains('/') { pattern.clone() } else { format!("**/{pattern}") };
        let glob = GlobBuilder::new(&full)
            .case_insensitive(true)
            .literal_separator(true)
            .build()
            .map_err(|source| ScanError::Glob { pattern: pattern.clone(), source })?;
        set.add(glob);
    }
    set.build().map_err(|source| ScanError::Glob { pattern: patterns.join(" "), source })
}

/// Finds the videos under `dir`, sorted by path. Hidden files and folders (a name starting with
/// `.`, e.g. a copy in progress) are skipped, and so are files whose path is not UTF-8
/// ([`Scan::skipped`]). Paths are written relative to `manifest_dir` when the videos are under
/// it, absolute otherwise.
pub fn scan(
    dir: &Path,
    manifest_dir: Option<&Path>,
    options: &ScanOptions,
) -> Result<Scan, ScanError> {
    let set = glob_set(&options.globs)?;
    let root = std::path::absolute(dir)
        .map_err(|source| ScanError::Walk { path: dir.to_owned(), source })?;
    let base = manifest_dir.and_then(|d| std::path::absolute(d).ok());
    let mut scan = Scan::default();
    let walker = walkdir::WalkDir::new(&root)
        .follow_links(options.follow_links)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.'));
    for entry in walker {
        let entry = entry.map_err(|e| {
            let path = e.path().map(Path::to_owned).unwrap_or_else(|| root.clone());
            ScanError::Walk {
                path,
                source: e
                    .into_io_error()
                    .unwrap_or_else(|| io::Error::other("a symbolic link loop")),
            }
        })?;
        if !entry.file_type().is_file() {
            continue;
        }
        let under = entry.path().strip_prefix(&root).expect("walkdir yields paths under its root");
        let relative = under
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        if !set.is_match(&relative) {
            continue;
        }
        let path = match base.as_deref().and_then(|b| entry.path().strip_prefix(b).ok()) {
            Some(p) => p.to_owned(),
            None => entry.path().to_owned(),
        };
        // Checked after the globs, so only a video is named; the path written must be UTF-8
        // too (the folder's own name, when the manifest is elsewhere).
        if under.to_str().is_none() || path.to_str().is_none() {
            scan.skipped.push(dir.join(under));
            continue;
        }
        let title = match options.title_from {
            TitleFrom::Stem => {
                under.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
            }
            TitleFrom::Path => {
                relative.rsplit_once('.').map_or(relative.as_str(), |(p, _)| p).to_owned()
            }
        };
        let id = format!("{}{relative}", options.id_prefix);
        scan.found.push(Found { relative, id, path, title });
    }
    Ok(scan)
}

/// Writes a manifest (`path,id,title`) of `found`.
pub fn write_manifest(out: impl Write, found: &[Found]) -> io::Result<()> {
    let mut csv = csv::Writer::from_writer(out);
    csv.write_record(["path", "id", "title"])?;
    for f in found {
        csv.write_record([f.path.to_string_lossy().as_ref(), &f.id, &f.title])?;
    }
    csv.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for p in [
            "a.mp4",
            "B.MOV",
            "notes.txt",
            "2024/x/deep.mkv",
            "2024/clip.webm",
            ".hidden.mp4",
            ".partial/c.mp4",
            "2024/readme.md",
        ] {
            let path = dir.path().join(p);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, b"v").unwrap();
        }
        dir
    }

    fn opts(globs: &[&str], title_from: TitleFrom) -> ScanOptions {
        ScanOptions {
            globs: globs.iter().map(|s| s.to_string()).collect(),
            title_from,
            follow_links: false,
            id_prefix: String::new(),
        }
    }

    #[test]
    fn finds_videos_at_any_depth_sorted_skipping_hidden_and_other_files() {
        let dir = tree();
        let found = scan(dir.path(), Some(dir.path()), &opts(&[], TitleFrom::Stem)).unwrap().found;
        let rel: Vec<&str> = found.iter().map(|f| f.relative.as_str()).collect();
        assert_eq!(rel, ["2024/clip.webm", "2024/x/deep.mkv", "B.MOV", "a.mp4"]);
        assert_eq!(
            found[1].path,
            PathBuf::from("2024/x/deep.mkv"),
            "relative to the manifest's folder"
        );
        assert_eq!(found[1].title, "deep");
        let elsewhere = tempfile::tempdir().unwrap();
        let found =
            scan(dir.path(), Some(elsewhere.path()), &opts(&[], TitleFrom::Path)).unwrap().found;
        assert!(found[1].path.is_absolute());
        assert_eq!(found[1].title, "2024/x/deep");
    }

    #[test]
    fn globs_match_names_anywhere_or_paths_from_the_root() {
        let dir = tree();
        let names = |g: &[&str]| {
            scan(dir.path(), None, &opts(g, TitleFrom::Stem))
                .unwrap()
                .found
                .into_iter()
                .map(|f| f.relative)
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&["*.mp4"]), ["a.mp4"]);
        assert_eq!(names(&["2024/*"]), ["2024/clip.webm", "2024/readme.md"]);
        assert_eq!(names(&["2024/**/*.mkv", "*.txt"]), ["2024/x/deep.mkv", "notes.txt"]);
        assert!(matches!(
            scan(dir.path(), None, &opts(&["a[.mp4"], TitleFrom::Stem)),
            Err(ScanError::Glob { .. })
        ));
    }

    #[cfg(unix)]
    #[test]
    fn a_path_that_is_not_utf8_is_skipped_and_shown_byte_for_byte() {
        use std::os::unix::ffi::OsStrExt;
        let dir = tree();
        let name = |bytes: &[u8]| PathBuf::from(std::ffi::OsStr::from_bytes(bytes));
        std::fs::write(dir.path().join(name(b"bad\xff.mp4")), b"v").unwrap();
        std::fs::write(dir.path().join(name(b"bad\xfe.txt")), b"v").unwrap();
        std::fs::create_dir(dir.path().join(name(b"f\xc3"))).unwrap();
        std::fs::write(dir.path().join(name(b"f\xc3/in.mp4")), b"v").unwrap();
        let scan = scan(dir.path(), Some(dir.path()), &opts(&[], TitleFrom::Stem)).unwrap();
        let rel: Vec<&str> = scan.found.iter().map(|f| f.relative.as_str()).collect();
        assert_eq!(rel, ["2024/clip.webm", "2024/x/deep.mkv", "B.MOV", "a.mp4"]);
        let skipped: Vec<String> =
            scan.skipped.iter().map(|p| escaped(p.strip_prefix(dir.path()).unwrap())).collect();
        assert_eq!(skipped, [r"bad\xff.mp4", r"f\xc3/in.mp4"], "videos only, by the globs");
        assert_eq!(escaped(Path::new("café\n.mp4")), r"café\n.mp4");
    }

    #[test]
    fn the_manifest_quotes_what_needs_it() {
        let found = vec![Found {
            relative: "a,b.mp4".into(),
            id: "a,b.mp4".into(),
            path: "a,b.mp4".into(),
            title: "a \"b\"".into(),
        }];
        let mut out = Vec::new();
        write_manifest(&mut out, &found).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "path,id,title\n\"a,b.mp4\",\"a,b.mp4\",\"a \"\"b\"\"\"\n"
        );
    }
}
