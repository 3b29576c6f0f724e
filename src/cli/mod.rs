//! The command line: clap definitions and [`parse`]. Nothing here runs a command
//! ([`crate::commands`] does) or prints ([`crate::output`] does).
//!
//! Flags read `AVBATCH_*` environment variables too; secret ones never show their values in
//! `--help`. Every numeric flag is held to a range ([`crate::bounds`]).

#[cfg(feature = "serve")]
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};

mod account;
#[cfg(feature = "serve")]
mod bench;
#[cfg(feature = "serve")]
mod serve;
#[cfg(test)]
mod tests;
mod upload;

use crate::bounds;
pub use crate::output::LogFormat;
pub use account::{CheckArgs, CleanArgs};
#[cfg(feature = "serve")]
pub use bench::{BenchArgs, Content, Profile};
#[cfg(feature = "serve")]
pub use serve::ServeArgs;
pub use upload::{EncodingArgs, UploadArgs};

/// Move whole video libraries into api.video: fast, within the rate limits, never losing or
/// duplicating a video.
#[derive(Debug, Parser)]
#[command(name = "avbatch", version, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
    /// Warnings about how the command line was given (a secret as an argument), found by
    /// [`parse`] and printed by [`crate::commands::run`].
    #[arg(skip)]
    pub warnings: Vec<String>,
}

/// Parses the process's arguments as `Cli::parse` does (usage errors exit 2), with two
/// additions: values in error messages are cut to a readable length, and a secret given as an
/// argument, where every local user can read it (`ps`, `/proc/PID/cmdline`), is noted in
/// [`Cli::warnings`].
pub fn parse() -> Cli {
    let mut command = Cli::command();
    let parsed = command.try_get_matches_from_mut(std::env::args_os()).and_then(|matches| {
        let mut cli = Cli::from_arg_matches(&matches)?;
        cli.warnings = secret_warnings(&matches);
        Ok(cli)
    });
    parsed.unwrap_or_else(|e| shorten_values(e).format(&mut command).exit())
}

/// One warning per secret that came from the command line rather than the environment or a
/// file; it names the safer ways, never the value.
fn secret_warnings(matches: &ArgMatches) -> Vec<String> {
    let from_command_line =
        |m: &ArgMatches, id: &str| m.value_source(id) == Some(ValueSource::CommandLine);
    match matches.subcommand() {
        Some(("upload", m)) => {
            let mut warnings = Vec::new();
            if from_command_line(m, "upload_token") {
                warnings.push(
                    "--upload-token puts the token where every local user can read it (`ps`); \
                     set AVBATCH_UPLOAD_TOKEN or pass --upload-token-file FILE instead"
                        .to_owned(),
                );
            }
            if from_command_line(m, "notify") {
                warnings.push(
                    "--notify puts the webhook's URL, its secret, where every local user can read \
                     it (`ps`); set AVBATCH_NOTIFY_URL or pass --notify-file FILE instead"
                        .to_owned(),
                );
            }
            warnings
        }
        Some(("serve", m)) if from_command_line(m, "api_keys") => {
            vec!["--api-key puts the key where every local user can read it (`ps`); set \
                  AVBATCH_SERVE_API_KEYS or pass --api-key-file FILE instead"
                .to_owned()]
        }
        _ => Vec::new(),
    }
}

/// Cuts the values a clap error quotes (an invalid value, an unknown argument) as
/// [`avbatch_core::excerpt::quoted`] does, so a pasted file does not fill the terminal.
fn shorten_values(mut error: clap::Error) -> clap::Error {
    use clap::error::ContextValue;
    let cut = |s: &String| avbatch_core::excerpt::cut(s).into_owned();
    let shortened: Vec<_> = error
        .context()
        .filter_map(|(kind, value)| match value {
            ContextValue::String(s) => Some((kind, ContextValue::String(cut(s)))),
            ContextValue::Strings(v) => {
                Some((kind, ContextValue::Strings(v.iter().map(cut).collect())))
            }
            _ => None,
        })
        .collect();
    for (kind, value) in shortened {
        error.insert(kind, value);
    }
    error
}

/// Flags every command takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// More log output on stderr (-v: debug, -vv: trace). `RUST_LOG` overrides.
    #[arg(short = 'v', long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    /// Log format on stderr: `text` for people, `json` (one object per line) for log shippers.
    /// With `json`, progress, errors and the final summary are JSON events too.
    #[arg(long, value_enum, default_value = "text", global = true, env = "AVBATCH_LOG_FORMAT")]
    pub log_format: LogFormat,
}

/// What to do.
// Parsed once per process: the size of its largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Upload every video of a CSV manifest to api.video.
    ///
    /// Reads MANIFEST (one row per video: `path` plus optional `id`, `action`, `title`,
    /// `description`, `tags`, `metadata`, `meta.KEY`, `public`, `panoramic`, `mp4_support`,
    /// `player_id`, `language`, and the thumbnail, captions and chapters columns), checks every
    /// row and file before sending anything, then uploads many videos at once, each video's parts
    /// strictly in order, within the rate limits. Ends with a report mapping every row to its
    /// videoId.
    ///
    /// A `path` may be a URL: `https://…`, `s3://bucket/key`, `gs://…`, `az://…` (credentials
    /// from the cloud's own variables: AWS_*, GOOGLE_*, AZURE_*; an S3-compatible store at an
    /// http:// AWS_ENDPOINT_URL also needs AWS_ALLOW_HTTP=true). api.video then pulls it from
    /// its URL (a bucket's presigned for as long as --pull-timeout waits), and the row is done
    /// once api.video holds it; or with --relay it is read here and sent.
    /// `action` is `create` (the default), `upsert`, `update` or `delete`.
    ///
    /// The API key comes from AVBATCH_API_KEY or APIVIDEO_API_KEY, or --api-key-file; it is never
    /// printed. `--env local` needs none: it uploads to an embedded `avbatch serve`. An upload
    /// token is best given the same ways (AVBATCH_UPLOAD_TOKEN, --upload-token-file): command-line
    /// arguments are visible to every local user.
    ///
    /// Exit codes: 0 every row uploaded; 1 some rows failed (see the report); 2 bad flags or
    /// manifest, nothing sent; 3 the API key or token was refused; 4 the API could not be
    /// reached at all (not one answer); 5 stopped at --max-duration, the rows not started left
    /// for the next run; 130 interrupted (Ctrl-C, SIGTERM).
    Upload(UploadArgs),

    /// Show how far an upload run got, from its journal (safe while the run goes on).
    ///
    /// Reads the journal of MANIFEST (or --journal FILE), without locking or writing it, and
    /// prints whether a run holds it now, the rows done, failed, in progress and not started, and
    /// the bytes acknowledged out of the manifest's; --failed lists the failed rows, --json for
    /// machines. After a sharded run, MANIFEST shows each shard's journal and their total.
    Status(StatusArgs),
    /// List, and with --delete delete, the unfinished videos avbatch left behind.
    ///
    /// A run creates videos ahead of their upload, so an interrupted run leaves empty videos, and
    /// a failed row a partial one. Each carries its row's key in its metadata (`avbatch_key`, or
    /// `avbatch_replaced_key`), so they are found: with MANIFEST, the videos under the keys of
    /// its rows (computed as the upload computes them); with --all, every video carrying a key
    /// in the account. A video is a leftover when its source is not complete (empty or partial,
    /// per its upload status) and it was created more than --older-than ago, so a run still
    /// going is left alone. A complete video is never one: the video of a finished row stays,
    /// and an unfinished duplicate under its key goes. Deleting an unfinished row's partial
    /// video costs the next run that row's bytes again, never a duplicate.
    ///
    /// Lists by default (a table, or --json); --delete deletes them, checking each one's status
    /// again just before. The API key comes from AVBATCH_API_KEY or APIVIDEO_API_KEY, or
    /// --api-key-file; it is never printed.
    ///
    /// Exit codes: 0 listed, or every leftover deleted; 1 a call failed or a leftover could not
    /// be deleted (those deleted are listed); 2 bad flags or manifest, nothing deleted; 3 the API
    /// key was refused; 4 the API could not be reached at all; 130 interrupted (Ctrl-C, SIGTERM).
    Clean(CleanArgs),
    /// Compare a manifest with the account, by key, without changing anything.
    ///
    /// Reads every video of the account (one `reads` call a page) and the status of each video
    /// found under a row's key, and never sends a POST, PATCH or DELETE. Reports the rows with no
    /// video; the videos that differ from their row (title, and description, tags, metadata,
    /// public, panoramic, mp4_support, player_id, language when the row sets them; avbatch's own
    /// metadata is not compared) or whose source is not complete; the videos whose status could
    /// not be read (unknown, never taken as fine); the videos carrying an avbatch key no row owns
    /// (extras; with --shared-with OTHER, the videos of OTHER's rows are not: several manifests
    /// uploading to one account); and the keys held by more than one video. The manifest is
    /// checked as `upload` checks it first. A table on stdout (or --json), a summary on stderr,
    /// --report FILE (CSV, or JSON by extension).
    ///
    /// Exit codes: 0 the account is in step with the manifest; 1 it is not, or a call failed;
    /// 2 bad flags or manifest, nothing read; 3 the API key was refused; 4 the API could not be
    /// reached at all.
    Check(CheckArgs),
    /// Work with upload reports: `avbatch report merge` joins the reports of a manifest's shards.
    #[command(subcommand)]
    Report(ReportCommand),
    /// Measure the upload engine against a local server with a network profile.
    ///
    /// Makes (once, then cached) a synthetic library, starts `avbatch serve` as a child process
    /// with the profile's latency, bandwidth and rate limits, uploads the library with the real
    /// engine, and prints MB/s, files/s, requests/s, 429s, CPU seconds and peak memory of the
    /// uploading process. Profiles: loopback (nothing added, the server discards), wan (50 ms,
    /// 10 MiB/s per connection), ratelimited (1000 × 100 KiB under 100 requests/s), small
    /// (2000 × 10 KiB, no limits: files/s and requests per video).
    #[cfg(feature = "serve")]
    Bench(BenchArgs),
    /// Write a manifest of the videos under a folder (for drop folders and nightly jobs).
    ///
    /// Walks DIR (hidden files and folders skipped), keeps the files matching --glob (default:
    /// common video extensions, any case), and writes `path,id,title` rows sorted by path: `id`
    /// is the path under DIR, so with the journal a nightly run uploads only what is new.
    Manifest(ManifestArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) on stdout.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) on stdout: `avbatch man > avbatch.1`.
    Man,
    /// Run a local api.video-compatible server.
    ///
    /// Same routes, JSON, errors, rate-limit headers and chunk rules as api.video, storing what it
    /// receives under --data so a restart loses nothing. Use it to rehearse a migration offline,
    /// to test, and to benchmark. The official api.video clients upload to it unchanged.
    ///
    /// Prints `listening on http://ADDR` on stdout once it accepts connections (and `api key: KEY`
    /// when it generated a key). Stops cleanly on Ctrl-C or SIGTERM.
    #[cfg(feature = "serve")]
    Serve(ServeArgs),
}

impl Command {
    /// Whether this is `avbatch serve`, whose logs go to stderr at info level.
    pub fn serves(&self) -> bool {
        #[cfg(feature = "serve")]
        return matches!(self, Command::Serve(_));
        #[cfg(not(feature = "serve"))]
        false
    }
}

/// Which api.video to talk to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    /// https://ws.api.video
    Production,
    /// https://sandbox.api.video
    Sandbox,
    /// An embedded `avbatch serve` on 127.0.0.1, started for this run.
    Local,
}

/// `avbatch manifest` flags.
#[derive(Debug, Args)]
pub struct ManifestArgs {
    /// The folder to scan.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,

    /// Files to take, e.g. `*.mp4` (a name at any depth) or `2024/**/*.mov` (a path under DIR);
    /// repeatable [default: common video extensions].
    #[arg(long, value_name = "PATTERN")]
    pub glob: Vec<String>,

    /// Where titles come from: the file name's stem, or the path under DIR.
    #[arg(long, value_enum, default_value = "stem")]
    pub title_from: avbatch_core::manifest::scan::TitleFrom,

    /// Write the manifest here (paths relative to its folder when the videos are under it)
    /// instead of stdout (absolute paths).
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Follow symbolic links.
    #[arg(long)]
    pub follow_links: bool,

    /// Put PREFIX before each video's path under DIR to make its `id` (e.g. `east/`), so that
    /// several folders feeding one account never give two files one id (two `intro.mp4`).
    #[arg(long, value_name = "PREFIX")]
    pub id_prefix: Option<String>,
}

/// `avbatch report` commands.
#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Join the reports of a manifest's shards into one, sorted by manifest line.
    ///
    /// Fails (exit 2) when a manifest line is in two reports, and with --manifest when a row of
    /// the manifest is in none. Exit 1 when the merged report has rows that are not uploaded.
    Merge(MergeArgs),
}

/// `avbatch report merge` flags.
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The shards' reports (CSV or JSON, by extension).
    #[arg(value_name = "REPORT", required = true)]
    pub reports: Vec<PathBuf>,

    /// Where to write the merged report (CSV or JSON, by extension).
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: PathBuf,

    /// Check that every row of this manifest is in exactly one report.
    #[arg(long, value_name = "MANIFEST")]
    pub manifest: Option<PathBuf>,
}

/// `avbatch status` flags.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The manifest whose run to show (its journal is beside it unless --journal says otherwise).
    #[arg(value_name = "MANIFEST", required_unless_present = "journal")]
    pub manifest: Option<PathBuf>,

    /// The journal to read.
    #[arg(long, value_name = "FILE")]
    pub journal: Option<PathBuf>,

    /// The shard whose run to show (its journal is `NAME.shard-K-of-N.journal.sqlite`).
    /// Without it, when MANIFEST has no journal of its own but shard journals beside it, each
    /// shard is shown, then their total.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<avbatch_core::shard::Shard>,

    /// List the failed rows: line (with MANIFEST), path, videoId and error.
    #[arg(long)]
    pub failed: bool,

    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
}
