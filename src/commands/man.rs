//! `avbatch man`: one man page (roff) with every command and its flags, the manifest format and
//! the exit codes, made from the clap definitions so it cannot fall behind them.

use clap::{Arg, Command, CommandFactory};

use super::Exit;
use crate::cli::Cli;
use avbatch_core::manifest::{COLUMNS, META_PREFIX};

/// The manifest format, one paragraph a line.
const MANIFEST_FORMAT: &[&str] = &[
    "A manifest is a CSV file (comma-separated; UTF-8, with or without a BOM; LF or CRLF; quoted \
     fields may hold commas and line breaks) whose first record is a header naming the columns. \
     There is one row per video.",
    "path (required): the video file; a relative path is relative to the manifest's folder.",
    "id: your own id for the row, unique in the manifest: the idempotency key. Without it, the \
     key is the path with the file's size and modification time, so two rows without an id may \
     not name the same path.",
    "title (default: the file name without its extension), description, tags (a;b;c), metadata \
     (k=v;k2=v2) and any number of meta.KEY columns (one metadata key each), public, panoramic, \
     mp4_support (true/false/yes/no/1/0), player_id, language.",
    "Every row and file is checked before the first request, and every problem is listed with its \
     line and column. A column avbatch does not know is an error (the nearest known name is \
     suggested) unless --allow-unknown-columns is given.",
];

/// The whole page.
pub fn page() -> String {
    let mut root = Cli::command();
    root.build();
    let mut page = Page::default();
    let version = root.get_version().unwrap_or_default().to_owned();
    page.control(&format!("TH avbatch 1 \"\" \"avbatch {version}\" \"User Commands\""));
    page.section("NAME");
    page.raw("avbatch \\-");
    page.text(&text_of(root.get_about()));
    page.section("SYNOPSIS");
    page.raw("\\fBavbatch\\fR [\\fIOPTIONS\\fR] \\fICOMMAND\\fR [\\fIARGS\\fR]");
    page.section("DESCRIPTION");
    page.paragraphs(&text_of(root.get_long_about().or(root.get_about())));
    page.section("GLOBAL OPTIONS");
    for arg in root.get_arguments().filter(|a| shown(a)) {
        page.argument(arg);
    }
    page.section("COMMANDS");
    let names: Vec<String> =
        root.get_subcommands().map(|c| c.get_name().to_owned()).filter(|n| n != "help").collect();
    for name in names {
        if let Some(sub) = root.find_subcommand_mut(&name) {
            command(&mut page, sub, &format!("avbatch {name}"));
        }
    }
    page.section("MANIFEST FORMAT");
    for paragraph in MANIFEST_FORMAT {
        page.control("PP");
        page.text(paragraph);
    }
    page.control("PP");
    page.text(&format!("Known columns: {}, and {META_PREFIX}KEY.", COLUMNS.join(", ")));
    page.section("EXIT STATUS");
    for exit in Exit::ALL {
        page.control("TP");
        page.raw(&format!("\\fB{}\\fR", exit as u8));
        page.text(&format!("{exit:?}: {}", exit.meaning()));
    }
    page.section("ENVIRONMENT");
    page.text(
        "AVBATCH_API_KEY, APIVIDEO_API_KEY: the API key (--api-key-file wins over both). \
         AVBATCH_UPLOAD_TOKEN: a delegated upload token. AVBATCH_NOTIFY_URL: where --notify \
         POSTs (--notify-file instead keeps it in a file). AVBATCH_ENV, AVBATCH_BASE_URL, \
         AVBATCH_SHARD, AVBATCH_LOG_FORMAT: as their flags. JOB_COMPLETION_INDEX with \
         AVBATCH_SHARD_COUNT, or SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_COUNT and \
         SLURM_ARRAY_TASK_MIN: the shard. AVBATCH_SERVE_ADDR, AVBATCH_SERVE_DATA, \
         AVBATCH_SERVE_API_KEYS: avbatch serve. TMPDIR: where the check keeps what it spills.",
    );
    page.0
}

/// A command's subsection, then its own commands' (`avbatch report merge`).
fn command(page: &mut Page, cmd: &mut Command, path: &str) {
    let subs: Vec<String> =
        cmd.get_subcommands().map(|c| c.get_name().to_owned()).filter(|n| n != "help").collect();
    if subs.is_empty() {
        page.control(&format!("SS \"{path}\""));
        let usage = cmd.render_usage().to_string();
        page.control("nf");
        page.text(usage.trim().trim_start_matches("Usage: "));
        page.control("fi");
        page.paragraphs(&text_of(cmd.get_long_about().or(cmd.get_about())));
        for arg in cmd.get_arguments().filter(|a| shown(a)) {
            page.argument(arg);
        }
        return;
    }
    for name in subs {
        if let Some(sub) = cmd.find_subcommand_mut(&name) {
            command(page, sub, &format!("{path} {name}"));
        }
    }
}

/// Whether an argument belongs on the page (not hidden, not the built-in help or version).
fn shown(arg: &Arg) -> bool {
    !arg.is_hide_set() && !matches!(arg.get_id().as_str(), "help" | "version")
}

fn text_of(s: Option<&clap::builder::StyledStr>) -> String {
    s.map(|s| s.to_string()).unwrap_or_default()
}

/// Roff, built line by line.
#[derive(Default)]
struct Page(String);

impl Page {
    fn control(&mut self, request: &str) {
        self.0.push('.');
        self.0.push_str(request);
        self.0.push('\n');
    }

    fn section(&mut self, name: &str) {
        self.control(&format!("SH \"{name}\""));
    }

    /// A line already in roff.
    fn raw(&mut self, line: &str) {
        self.0.push_str(line);
        self.0.push('\n');
    }

    /// Plain text, escaped; one output line per input line.
    fn text(&mut self, text: &str) {
        for line in text.lines() {
            let escaped = line.replace('\\', "\\e").replace('-', "\\-");
            if escaped.starts_with('.') || escaped.starts_with('\'') {
                self.0.push_str("\\&");
            }
            self.raw(&escaped);
        }
    }

    /// Text whose blank lines part paragraphs.
    fn paragraphs(&mut self, text: &str) {
        for paragraph in text.split("\n\n").filter(|p| !p.trim().is_empty()) {
            self.control("PP");
            self.text(paragraph.trim());
        }
    }

    /// A flag or positional argument: its names and value, then its help.
    fn argument(&mut self, arg: &Arg) {
        let value = arg
            .get_value_names()
            .map(|names| names.iter().map(|n| format!("\\fI{n}\\fR")).collect::<Vec<_>>())
            .unwrap_or_default()
            .join(" ");
        let takes_value = arg.get_num_args().is_some_and(|n| n.takes_values());
        let mut names = Vec::new();
        if let Some(s) = arg.get_short() {
            names.push(format!("\\fB\\-{s}\\fR"));
        }
        if let Some(l) = arg.get_long() {
            names.push(format!("\\fB\\-\\-{}\\fR", l.replace('-', "\\-")));
        }
        let head = match (names.is_empty(), takes_value) {
            (true, _) => value,
            (false, true) if !value.is_empty() => format!("{} {value}", names.join(", ")),
            (false, _) => names.join(", "),
        };
        self.control("TP");
        self.raw(&head);
        let help = text_of(arg.get_long_help().or(arg.get_help()));
        self.text(&help);
        let defaults: Vec<String> =
            arg.get_default_values().iter().map(|v| v.to_string_lossy().into_owned()).collect();
        if takes_value && !defaults.is_empty() {
            self.text(&format!("[default: {}]", defaults.join(", ")));
        }
        if let Some(env) = arg.get_env() {
            self.text(&format!("[env: {}]", env.to_string_lossy()));
        }
    }
}
