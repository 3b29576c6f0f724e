//! The command line: clap definitions and [`parse`]. Nothing here runs a command
//! ([`crate::commands`] does) or prints ([`crate::output`] does).
//!
//! Flags read `AVBATCH_*` environment variables too; secret ones never show their values in
//! `--help`. Every numeric flag is held to a range ([`crate::bounds`]).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::bounds;
pub use crate::output::LogFormat;
use crate::server::{ExistingTracks, MetadataMatch, RateLimits, Storm};

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
        Some(("upload", m)) if from_command_line(m, "upload_token") => {
            vec!["--upload-token puts the token where every local user can read it (`ps`); set \
                  AVBATCH_UPLOAD_TOKEN or pass --upload-token-file FILE instead"
                .to_owned()]
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
/// [`crate::excerpt::quoted`] does, so a pasted file does not fill the terminal.
fn shorten_values(mut error: clap::Error) -> clap::Error {
    use clap::error::ContextValue;
    let cut = |s: &String| crate::excerpt::cut(s).into_owned();
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
    /// from the cloud's own variables: AWS_*, GOOGLE_*, AZURE_*). api.video then pulls it from
    /// its URL (a bucket's presigned for 24 h), or with --relay it is read here and sent.
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
    /// (extras); and the keys held by more than one video. The manifest is checked as `upload`
    /// checks it first. A table on stdout (or --json), a summary on stderr, --report FILE (CSV,
    /// or JSON by extension).
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
    Serve(ServeArgs),
}

fn parse_metadata_match(s: &str) -> Result<MetadataMatch, String> {
    s.parse().map_err(|e: crate::server::config::ParseMetadataMatchError| e.to_string())
}

fn parse_existing_tracks(s: &str) -> Result<ExistingTracks, String> {
    s.parse().map_err(|e: crate::server::config::ParseExistingTracksError| e.to_string())
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

/// `avbatch upload` flags.
#[derive(Debug, Args)]
pub struct UploadArgs {
    /// The CSV manifest: one row per video.
    #[arg(value_name = "MANIFEST")]
    pub manifest: PathBuf,

    /// Which api.video: production, sandbox, or local (an embedded server).
    #[arg(long, value_enum, default_value = "production", env = "AVBATCH_ENV")]
    pub env: Target,

    /// Another API base URL (e.g. a running `avbatch serve`); overrides --env.
    #[arg(long, value_name = "URL", env = "AVBATCH_BASE_URL")]
    pub base_url: Option<String>,

    /// File holding the API key (surrounding white space is ignored); when given, it is used
    /// instead of AVBATCH_API_KEY and APIVIDEO_API_KEY.
    #[arg(long, value_name = "FILE")]
    pub api_key_file: Option<PathBuf>,

    /// Delegated upload token: parts go to /upload?token=. Prefer AVBATCH_UPLOAD_TOKEN or
    /// --upload-token-file: a token given here is visible to every local user (`ps`).
    #[arg(long, value_name = "TOKEN", env = "AVBATCH_UPLOAD_TOKEN", hide_env_values = true)]
    pub upload_token: Option<String>,

    /// File holding the delegated upload token (surrounding white space is ignored); instead of
    /// --upload-token and AVBATCH_UPLOAD_TOKEN, not with them.
    #[arg(long, value_name = "FILE")]
    pub upload_token_file: Option<PathBuf>,

    /// Videos uploaded at once, from 1 to 1024 (each sends its parts in order, one at a time);
    /// as many more are prepared ahead (video looked up or created), so no connection waits on
    /// those round trips. On a long link each connection is held back by its round trips, so
    /// more connections fill it. Parts are mapped, not copied: the process's own memory barely
    /// grows with N, while the file pages in flight (at most 12 MiB per video) count in its
    /// resident size until they are sent. [default: 16; 64 when the files average under 8 MiB,
    /// where each video costs round trips rather than bandwidth]
    #[arg(
        short = 'c',
        long,
        value_name = "N",
        value_parser = bounds::whole(bounds::CONCURRENCY),
        help_heading = "Speed"
    )]
    pub concurrency: Option<usize>,

    /// Requests per second across all videos (e.g. 10 or 2.5/s), from 0.001 to 1000000;
    /// default: as fast as the server's rate-limit headers allow.
    #[arg(long, value_name = "REQ/S", value_parser = bounds::rate, help_heading = "Speed")]
    pub rate: Option<f64>,

    /// With --dry-run: the link's rate for the estimate of how long the run takes, in bits
    /// (`200Mbit`, `1Gbit`) or bytes (`25MiB`) a second; default: a fixed --bandwidth, else none.
    #[arg(
        long,
        value_name = "RATE",
        value_parser = bounds::link_rate,
        help_heading = "Speed"
    )]
    pub assume_bandwidth: Option<u64>,

    /// Bytes per second across all videos (e.g. 50MiB), from 1KiB to 100GiB; default: unlimited.
    /// Or a timetable in local time, as rclone's --bwlimit: "08:00,10MiB 19:00,off" (HH:MM,RATE
    /// entries, RATE a size or `off`); the entry in force is the last one begun (before the
    /// day's first, the day's last), followed as the run goes, and said on stderr when it moves.
    #[arg(
        long,
        value_name = "BYTES/S|TIMETABLE",
        value_parser = bounds::bandwidth,
        help_heading = "Speed"
    )]
    pub bandwidth: Option<crate::limit::timetable::Bandwidth>,

    /// Bytes per part, from 5MiB to 200MiB. Each part is one request against api.video's
    /// per-minute upload limit, so larger parts move more per minute. The default, 128 MiB, is
    /// the largest part every official api.video uploader sends, and leaves a whole request (file
    /// bytes, multipart envelope, headers) far under the 200 MiB a request may carry, however a
    /// proxy in front of the API counts it, and under 200 MB too: 12.5 GiB a minute within the
    /// production quota.
    #[arg(
        long,
        value_name = "SIZE",
        default_value = "128MiB",
        value_parser = bounds::size(bounds::CHUNK_SIZE),
        help_heading = "Speed"
    )]
    pub chunk_size: u64,

    /// How parts are numbered: `bytes` (Content-Range: bytes A-B/T) or `parts` (part N/M).
    #[arg(long, value_enum, default_value = "bytes", help_heading = "Speed")]
    pub mode: crate::engine::Mode,

    /// Retries per request for transient failures (connection errors, timeouts, 408, 429, 5xx),
    /// from 0 to 1000.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 10,
        value_parser = bounds::whole(bounds::RETRIES),
        help_heading = "Speed"
    )]
    pub retries: u32,

    /// How long a request may go without progress before it is cut and tried again, from 100ms
    /// to 1h: no body bytes taken by the connection, or no answer after the body (plus the time
    /// the last 4 MiB of a body may need to drain at 64 KiB/s). Requests are never cut for
    /// taking long while they move, so a large part on a slow uplink completes.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "60s",
        value_parser = bounds::duration(bounds::TIMEOUT),
        help_heading = "Speed"
    )]
    pub timeout: Duration,

    /// Report file, CSV or JSON by extension [default: MANIFEST's name with .report.csv].
    #[arg(long, value_name = "FILE", help_heading = "Output")]
    pub report: Option<PathBuf>,

    /// Check the manifest, print the plan (rows, bytes, parts, and what the run would do with
    /// each row: upload, resume, retry or skip, per the journal) and stop; with --json, as JSON.
    #[arg(short = 'n', long, help_heading = "Output")]
    pub dry_run: bool,

    /// A trial run: upload only the first N rows (of this shard) of the manifest, from 1 to
    /// 18446744073709551615. Every row is still checked first; the report lists the N rows only,
    /// and a later run without --limit uploads the others (the journal skips those done).
    #[arg(
        long,
        value_name = "N",
        value_parser = bounds::whole(bounds::LIMIT),
        help_heading = "Output"
    )]
    pub limit: Option<u64>,

    /// No progress on stderr.
    #[arg(short = 'q', long, help_heading = "Output")]
    pub quiet: bool,

    /// Print the report as JSON on stdout.
    #[arg(long, help_heading = "Output")]
    pub json: bool,

    /// Ignore manifest columns avbatch does not know (default: they are an error).
    #[arg(long)]
    pub allow_unknown_columns: bool,

    /// Journal recording each row's progress, so a re-run resumes where this one stopped
    /// [default: MANIFEST's name with .journal.sqlite, beside it].
    #[arg(long, value_name = "FILE", help_heading = "Resume")]
    pub journal: Option<PathBuf>,

    /// Run without a journal (a re-run still finds finished videos by their key on the server).
    #[arg(long, conflicts_with = "journal", help_heading = "Resume")]
    pub no_journal: bool,

    /// Upload rows whose file changed since the journal recorded them again, as new videos
    /// that replace the old: each old video is deleted once its replacement is complete.
    #[arg(long, help_heading = "Resume")]
    pub force: bool,

    /// With --force, keep the old file's video beside the new one (its key moves to the
    /// `avbatch_replaced_key` metadata) instead of deleting it.
    #[arg(long, requires = "force", help_heading = "Resume")]
    pub keep_old: bool,

    /// Identify files by a fingerprint of their contents (XXH3-128) too, not only size and time:
    /// a touched or copied file is not uploaded again, a rewritten one of the same size and
    /// time is. Costs one extra read of every file per run.
    #[arg(long, help_heading = "Resume")]
    pub checksum: bool,

    /// Rows whose `path` is a URL (`https://`, `s3://`, `gs://`, `az://`): read each object here
    /// with ranged GETs and send it as parts, as a local file is, instead of letting api.video
    /// pull it from its URL (the default: a presigned one for a bucket, valid 24 h). For sources
    /// api.video cannot reach (a private network, credentials that expire first); memory stays
    /// at a few pieces per video whatever the object's size.
    #[arg(long)]
    pub relay: bool,

    /// Data folder of the embedded server with --env local [default: a temporary folder].
    #[arg(long, value_name = "DIR")]
    pub local_data: Option<PathBuf>,

    /// Upload only shard K of N (K from 0): the rows whose key hashes to K. N runs with
    /// 0/N .. N-1/N over one manifest upload every row exactly once between them; each keeps
    /// its own journal and report (`NAME.shard-K-of-N.*`) and takes 1/N of --rate. Default: from
    /// a Kubernetes Indexed Job (JOB_COMPLETION_INDEX + AVBATCH_SHARD_COUNT) or a Slurm array
    /// (SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_COUNT, SLURM_ARRAY_TASK_MIN), else the whole
    /// manifest.
    #[arg(long, value_name = "K/N", env = "AVBATCH_SHARD", help_heading = "Shards")]
    pub shard: Option<crate::shard::Shard>,

    /// Start no new video this long after the run began (e.g. 6h, 30m), from 1s to 30days: the
    /// videos under way finish (all their parts), the rows not started stay `pending` in the
    /// report, and the run exits 5. The next run (same journal) takes them up.
    #[arg(
        long,
        value_name = "DURATION",
        value_parser = bounds::duration(bounds::MAX_DURATION),
        help_heading = "Schedule"
    )]
    pub max_duration: Option<Duration>,

    /// When the run ends (exit 0, 1, 3, 4, 5 or 130; not on exit 2, when nothing was sent, nor
    /// after --dry-run), POST its summary as JSON to URL (http or https): the report's summary
    /// plus `exitCode`, `manifest`, `report` and a one-line `text` that chat webhooks (Slack,
    /// Mattermost) show. Tried 3 times with backoff within --notify-timeout; a failure is a
    /// warning on stderr and never changes the exit code. The API key is never sent.
    #[arg(long, value_name = "URL", help_heading = "Schedule")]
    pub notify: Option<String>,

    /// How long --notify may take in all, tries and backoff included, from 1s to 10m.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "30s",
        value_parser = bounds::duration(bounds::NOTIFY_TIMEOUT),
        help_heading = "Schedule"
    )]
    pub notify_timeout: Duration,

    /// --wait, --wait-timeout, --wait-poll, --max-processing.
    #[command(flatten)]
    pub encoding: EncodingArgs,
}

/// `avbatch upload`'s flags about the videos' encoding (issue #15).
#[derive(Debug, Clone, Args)]
pub struct EncodingArgs {
    /// After a row's source and assets are sent (or found complete), poll its video's status
    /// until it is `playable` (one quality plays) or fully `encoded`. A quality that fails, or
    /// the --wait-timeout passing, fails the row. Other rows keep uploading meanwhile. The
    /// report's `encoding` and `encodingSeconds` say how it went.
    #[arg(long, value_name = "WHAT", value_enum, help_heading = "Encoding")]
    pub wait: Option<crate::engine::WaitFor>,

    /// How long --wait waits for one video, from 0s to 7days.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "2h",
        value_parser = bounds::duration(bounds::ENCODING_TIME),
        help_heading = "Encoding"
    )]
    pub wait_timeout: Duration,

    /// First pause between two status polls of a video, from 0s to 7days; it doubles after each
    /// poll, up to 30s.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "2s",
        value_parser = bounds::duration(bounds::ENCODING_TIME),
        help_heading = "Encoding"
    )]
    pub wait_poll: Duration,

    /// Start no new row's source while N of this run's videos are still encoding (uploaded, not
    /// yet playable or failed); their status is polled as with --wait. The rows held are not
    /// failed: the status line says they wait.
    #[arg(
        long,
        value_name = "N",
        value_parser = bounds::whole(bounds::CONCURRENCY),
        help_heading = "Encoding"
    )]
    pub max_processing: Option<usize>,
}

/// `avbatch clean` flags.
#[derive(Debug, Args)]
pub struct CleanArgs {
    /// The manifest whose rows' videos to look at.
    #[arg(value_name = "MANIFEST", required_unless_present = "all", conflicts_with = "all")]
    pub manifest: Option<PathBuf>,

    /// Look at every video of the account that carries an avbatch key, instead of a manifest's.
    #[arg(long)]
    pub all: bool,

    /// Only videos created more than this long ago, from 0s to 1year (0s: every one, a run
    /// under way included). api.video deletes an unfinished upload itself after 7 days.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "24h",
        value_parser = bounds::duration(bounds::OLDER_THAN)
    )]
    pub older_than: Duration,

    /// Delete the leftovers (default: only list them).
    #[arg(long)]
    pub delete: bool,

    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,

    /// Which api.video: production, sandbox, or local (an embedded server on --local-data).
    #[arg(long, value_enum, default_value = "production", env = "AVBATCH_ENV")]
    pub env: Target,

    /// Another API base URL (e.g. a running `avbatch serve`); overrides --env.
    #[arg(long, value_name = "URL", env = "AVBATCH_BASE_URL")]
    pub base_url: Option<String>,

    /// File holding the API key (when AVBATCH_API_KEY and APIVIDEO_API_KEY are unset).
    #[arg(long, value_name = "FILE")]
    pub api_key_file: Option<PathBuf>,

    /// Data folder of the embedded server with --env local (required with it).
    #[arg(long, value_name = "DIR")]
    pub local_data: Option<PathBuf>,

    /// Retries per request for transient failures (connection errors, timeouts, 408, 429, 5xx),
    /// from 0 to 1000.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 10,
        value_parser = bounds::whole(bounds::RETRIES)
    )]
    pub retries: u32,

    /// How long a request may go without progress before it is cut and tried again, from 100ms
    /// to 1h.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "60s",
        value_parser = bounds::duration(bounds::TIMEOUT)
    )]
    pub timeout: Duration,
}

/// `avbatch check` flags.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The manifest to compare with the account.
    #[arg(value_name = "MANIFEST")]
    pub manifest: PathBuf,

    /// Write the findings to FILE: JSON when it ends in `.json`, CSV otherwise.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,

    /// Print the findings as one JSON document on stdout.
    #[arg(long)]
    pub json: bool,

    /// Ignore columns avbatch does not know instead of refusing the manifest.
    #[arg(long)]
    pub allow_unknown_columns: bool,

    /// Which api.video: production, sandbox, or local (an embedded server on --local-data).
    #[arg(long, value_enum, default_value = "production", env = "AVBATCH_ENV")]
    pub env: Target,

    /// Another API base URL (e.g. a running `avbatch serve`); overrides --env.
    #[arg(long, value_name = "URL", env = "AVBATCH_BASE_URL")]
    pub base_url: Option<String>,

    /// File holding the API key (when AVBATCH_API_KEY and APIVIDEO_API_KEY are unset).
    #[arg(long, value_name = "FILE")]
    pub api_key_file: Option<PathBuf>,

    /// Data folder of the embedded server with --env local (required with it).
    #[arg(long, value_name = "DIR")]
    pub local_data: Option<PathBuf>,

    /// Retries per request for transient failures (connection errors, timeouts, 408, 429, 5xx),
    /// from 0 to 1000.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 10,
        value_parser = bounds::whole(bounds::RETRIES)
    )]
    pub retries: u32,

    /// How long a request may go without progress before it is cut and tried again, from 100ms
    /// to 1h.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "60s",
        value_parser = bounds::duration(bounds::TIMEOUT)
    )]
    pub timeout: Duration,
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
    pub title_from: crate::manifest::scan::TitleFrom,

    /// Write the manifest here (paths relative to its folder when the videos are under it)
    /// instead of stdout (absolute paths).
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Follow symbolic links.
    #[arg(long)]
    pub follow_links: bool,
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
    pub shard: Option<crate::shard::Shard>,

    /// List the failed rows: line (with MANIFEST), path, videoId and error.
    #[arg(long)]
    pub failed: bool,

    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `avbatch serve` flags.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free port (printed at start).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0", env = "AVBATCH_SERVE_ADDR")]
    pub addr: SocketAddr,

    /// Folder for videos, sources, upload tokens and auth state; created if missing.
    #[arg(long, value_name = "DIR", default_value = "avbatch-data", env = "AVBATCH_SERVE_DATA")]
    pub data: PathBuf,

    /// An accepted API key (repeatable; comma-separated in AVBATCH_SERVE_API_KEYS). Prefer the
    /// variable or --api-key-file: a key given here is visible to every local user (`ps`). With
    /// none, a key is generated, kept in DIR/api-key and printed.
    #[arg(
        long = "api-key",
        value_name = "KEY",
        env = "AVBATCH_SERVE_API_KEYS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub api_keys: Vec<String>,

    /// File holding the accepted API keys, one per line (surrounding white space is ignored);
    /// instead of --api-key and AVBATCH_SERVE_API_KEYS, not with them.
    #[arg(long, value_name = "FILE")]
    pub api_key_file: Option<PathBuf>,

    /// Lifetime of access tokens from /auth/api-key and /auth/refresh, from 1s to 7days.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "1h",
        value_parser = bounds::duration(bounds::TOKEN_TTL)
    )]
    pub token_ttl: Duration,

    /// Request quotas: `production` (100 uploads, 200 writes, 500 reads a minute), `sandbox`
    /// (40/40/100), `off`, or a list like `uploads=10/1s,writes=50/60s,reads=100/60s`
    /// (`all=N/W` sets the three); each bucket from 1 to 1000000 requests in a window from 1ms
    /// to 1day.
    #[arg(
        long,
        value_name = "LIMITS",
        default_value = "production",
        value_parser = bounds::rate_limits
    )]
    pub rate_limit: RateLimits,

    /// Discard source bytes after checking and counting them (throughput runs); assets then
    /// answer 404.
    #[arg(long)]
    pub discard: bool,

    /// Append one JSON line to FILE per API request that got past the credentials check and
    /// the injected 503s and storms: `{"method", "path", "status", "answered"}` (`answered`
    /// false when --lose-rate dropped the answer), so tests and people can see which requests a
    /// client made. The query string and credentials are left out.
    #[arg(long, value_name = "FILE")]
    pub request_log: Option<std::path::PathBuf>,

    /// Base URL written into asset links (default: the listening address).
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,

    /// Most connections held at once, from 1 to 1000000 [default: from the open-file limit,
    /// raised to its hard limit at start, less a quarter kept for files]. At the limit, the
    /// connection idle the longest is closed to make room; one with a request in flight never is.
    #[arg(
        long,
        value_name = "N",
        value_parser = bounds::whole(bounds::CONNECTIONS),
        help_heading = "Connections"
    )]
    pub max_connections: Option<usize>,

    /// A request head must be complete this long after its first byte, and a new connection
    /// must send its first head this long after it is accepted; else it is closed. From 100ms
    /// to 1h.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "10s",
        value_parser = bounds::duration(bounds::CONNECTION_TIMEOUT),
        help_heading = "Connections"
    )]
    pub head_timeout: Duration,

    /// An idle keep-alive connection (its last answer sent, no new request begun) is closed after
    /// this long, from 100ms to 1h.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "60s",
        value_parser = bounds::duration(bounds::CONNECTION_TIMEOUT),
        help_heading = "Connections"
    )]
    pub idle_timeout: Duration,

    /// A request whose body brings no byte for this long while the server waits for it is cut
    /// (a body arriving slowly, at any rate, is not); from 100ms to 1h.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "60s",
        value_parser = bounds::duration(bounds::CONNECTION_TIMEOUT),
        help_heading = "Connections"
    )]
    pub body_timeout: Duration,

    /// On SIGTERM or Ctrl-C: how long requests in flight may take to finish before every
    /// connection still open is closed and the server exits; from 0s to 1h.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "3s",
        value_parser = bounds::duration(bounds::SHUTDOWN_GRACE),
        help_heading = "Connections"
    )]
    pub shutdown_grace: Duration,

    /// Delay added before every request is handled, from 0s to 1h.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "0ms",
        value_parser = bounds::duration(bounds::LATENCY),
        help_heading = "Fault injection"
    )]
    pub latency: Duration,

    /// Cap on each connection, each way, in bytes per second (e.g. 10MiB), from 1KiB to 100GiB.
    #[arg(
        long,
        value_name = "BYTES",
        value_parser = bounds::size(bounds::BANDWIDTH),
        help_heading = "Fault injection"
    )]
    pub bandwidth: Option<u64>,

    /// Probability (from 0 to 1) that an API request is answered 503 without effect.
    #[arg(
        long,
        value_name = "P",
        default_value = "0",
        value_parser = bounds::probability,
        help_heading = "Fault injection"
    )]
    pub fail_rate: f64,

    /// Probability (from 0 to 1) that an upload's connection is dropped part-way through its
    /// body.
    #[arg(
        long,
        value_name = "P",
        default_value = "0",
        value_parser = bounds::probability,
        help_heading = "Fault injection"
    )]
    pub reset_rate: f64,

    /// Probability (from 0 to 1) that an API request takes effect but its answer is lost (the
    /// connection drops instead), so the client cannot tell whether it worked.
    #[arg(
        long,
        value_name = "P",
        default_value = "0",
        value_parser = bounds::probability,
        help_heading = "Fault injection"
    )]
    pub lose_rate: f64,

    /// Probability (from 0 to 1) that an API request (not the /vod/ asset host) takes effect and
    /// its answer is then replaced by a gateway error, 502 or 504 at random, as a load balancer
    /// in front of api.video would send: a text/html nginx page, no X-RateLimit-* headers.
    #[arg(
        long,
        value_name = "P",
        default_value = "0",
        value_parser = bounds::probability,
        help_heading = "Fault injection"
    )]
    pub gateway_error_rate: f64,

    /// Probability (from 0 to 1) that an upload (POST /videos/{id}/source or POST /upload) stops
    /// being read part-way through its body and is never answered: the connection stays open
    /// (for up to 10 minutes) until the client gives up; nothing of it is stored.
    #[arg(
        long,
        value_name = "P",
        default_value = "0",
        value_parser = bounds::probability,
        help_heading = "Fault injection"
    )]
    pub stall_rate: f64,

    /// How GET /videos?metadata[KEY]=VALUE matches: `exact` (KEY and VALUE equal a pair of the
    /// video's) or `contains` (KEY equal, VALUE a case-insensitive substring of the pair's value).
    /// api.video does not document which (its title filter matches substrings).
    #[arg(
        long,
        value_name = "MODE",
        default_value = "exact",
        value_parser = parse_metadata_match,
        help_heading = "Fault injection"
    )]
    pub metadata_match: MetadataMatch,

    /// What a caption or chapters upload does when the video already has a track in that
    /// language: `replace` it (a caption keeps its default flag), or `refuse` with 400
    /// invalid-attribute naming `language`. api.video does not document which it does.
    #[arg(
        long,
        value_name = "MODE",
        default_value = "replace",
        value_parser = parse_existing_tracks,
        help_heading = "Fault injection"
    )]
    pub existing_tracks: ExistingTracks,

    /// Age at which a video whose source is not complete (and that was not created from a source
    /// URL) is deleted, from 1s to 365days: afterwards it answers 404 and is absent from lists,
    /// its chunks removed. api.video's rule is 7 days. Checked when the video is looked up or
    /// listed, against its createdAt (also as edited in DIR/videos/{id}/video.json before a
    /// restart).
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "7d",
        value_parser = bounds::duration(bounds::UNFINISHED_TTL),
        help_heading = "Fault injection"
    )]
    pub unfinished_ttl: Duration,

    /// Check the credentials of a request with a body once its body has arrived, as a proxy that
    /// reads whole requests first would: a bearer token valid when a long upload began is then
    /// refused at its end if it expired meanwhile. api.video does not document which it does.
    #[arg(long, help_heading = "Fault injection")]
    pub auth_after_body: bool,

    /// 429 storms: every EVERY, all API requests get 429 for FOR (e.g. 30s:3s); FOR at least
    /// 1ms, EVERY at most 1day.
    #[arg(
        long,
        value_name = "EVERY:FOR",
        value_parser = bounds::storm,
        help_heading = "Fault injection"
    )]
    pub storm: Option<Storm>,

    /// Seed for the fault dice, for repeatable runs (any 64-bit number).
    #[arg(
        long,
        value_name = "N",
        value_parser = bounds::whole(bounds::SEED),
        help_heading = "Fault injection"
    )]
    pub seed: Option<u64>,

    /// Time a video takes to encode once its source is complete, from 0s to 7days: its qualities
    /// go waiting, encoding, encoded; it is playable halfway through. 0s: playable at once.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "0s",
        value_parser = bounds::duration(bounds::ENCODING_TIME),
        help_heading = "Encoding"
    )]
    pub encoding_time: Duration,

    /// Encoding time added per GiB of source, from 0s to 7days.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "0s",
        value_parser = bounds::duration(bounds::ENCODING_TIME),
        help_heading = "Encoding"
    )]
    pub encoding_per_gb: Duration,

    /// Fraction (from 0 to 1) of videos whose encoding fails: their qualities end `failed` and
    /// they never become playable. Which ones follows --seed and the video id.
    #[arg(
        long,
        value_name = "P",
        default_value = "0",
        value_parser = bounds::probability,
        help_heading = "Encoding"
    )]
    pub encoding_fail_rate: f64,

    /// Largest source a video created with a `source` URL may fetch, from 1B to 1TiB; a larger
    /// one fails its ingest. Such URLs are fetched only from loopback addresses.
    #[arg(
        long,
        value_name = "BYTES",
        default_value = "64GiB",
        value_parser = bounds::size(crate::server::config::SOURCE_MAX_BYTES),
        help_heading = "Source URLs"
    )]
    pub source_max_bytes: u64,

    /// Longest the fetch of a `source` URL may take, from 100ms to 1day; a slower one fails its
    /// ingest.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "10m",
        value_parser = bounds::duration(crate::server::config::SOURCE_TIMEOUT),
        help_heading = "Source URLs"
    )]
    pub source_timeout: Duration,
}

/// A network and server setting to measure under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// No added latency, no limits, the server discards what it checked: the client's ceiling.
    Loopback,
    /// A long-haul link: 50 ms per request and 10 MiB/s per connection.
    Wan,
    /// Many small files under a server limit of 100 requests/s per bucket.
    Ratelimited,
    /// Thousands of tiny files, no limits: what each video costs in requests and round trips.
    Small,
}

/// What the synthetic files contain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Content {
    /// Holes: instant to make, no disk reads (the kernel supplies zeros).
    Sparse,
    /// Pseudo-random bytes from the seed: real page-cache traffic.
    Random,
}

/// `avbatch bench` flags.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// The network and server profile.
    #[arg(long, value_enum, default_value = "loopback")]
    pub profile: Profile,

    /// Files in the library, from 1 to 1000000 [default: loopback 8, wan 16, ratelimited 1000,
    /// small 2000].
    #[arg(long, value_name = "N", value_parser = bounds::whole(bounds::BENCH_FILES))]
    pub files: Option<usize>,

    /// Size of the smallest file, from 1 byte to 30GiB [default: loopback 256MiB, wan 32MiB,
    /// ratelimited 100KiB, small 10KiB].
    #[arg(long, value_name = "SIZE", value_parser = bounds::size(bounds::BENCH_SIZE))]
    pub size: Option<u64>,

    /// Size of the largest file, from 1 byte to 30GiB; sizes spread evenly (by the seed) between
    /// --size and this [default: --size].
    #[arg(long, value_name = "SIZE", value_parser = bounds::size(bounds::BENCH_SIZE))]
    pub max_size: Option<u64>,

    /// File contents.
    #[arg(long, value_enum, default_value = "sparse")]
    pub content: Content,

    /// Seed for sizes and random contents (any 64-bit number).
    #[arg(long, default_value_t = 1, value_parser = bounds::whole(bounds::SEED))]
    pub seed: u64,

    /// Where generated libraries are kept between runs [default: the user's cache folder,
    /// e.g. ~/.cache/avbatch/bench].
    #[arg(long, value_name = "DIR")]
    pub cache: Option<PathBuf>,

    /// Videos uploaded at once, from 1 to 1024 [default: upload's, for the library's sizes].
    #[arg(short = 'c', long, value_name = "N", value_parser = bounds::whole(bounds::CONCURRENCY))]
    pub concurrency: Option<usize>,

    /// Bytes per part, from 5MiB to 200MiB.
    #[arg(
        long,
        value_name = "SIZE",
        default_value = "128MiB",
        value_parser = bounds::size(bounds::CHUNK_SIZE)
    )]
    pub chunk_size: u64,

    /// Override the profile's per-request latency (from 0s to 1h).
    #[arg(long, value_name = "DURATION", value_parser = bounds::duration(bounds::LATENCY))]
    pub latency: Option<Duration>,

    /// Override the profile's per-connection bandwidth, in bytes/s (from 1KiB to 100GiB).
    #[arg(long, value_name = "BYTES", value_parser = bounds::size(bounds::BANDWIDTH))]
    pub bandwidth: Option<u64>,

    /// Override the profile's server rate limits (as `avbatch serve --rate-limit`, with its
    /// bounds).
    #[arg(long, value_name = "LIMITS", value_parser = bounds::rate_limits_text)]
    pub rate_limit: Option<String>,

    /// Store what the server receives instead of discarding it (measures the disk too).
    #[arg(long)]
    pub store: bool,

    /// Print the result as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    /// The help text of `--flag` of `command`.
    fn help_of(command: &str, flag: &str) -> String {
        let cli = Cli::command();
        let sub = cli.find_subcommand(command).unwrap_or_else(|| panic!("no `{command}`"));
        let arg = sub
            .get_arguments()
            .find(|a| a.get_long() == Some(flag))
            .unwrap_or_else(|| panic!("no `{command} --{flag}`"));
        arg.get_long_help().or(arg.get_help()).map(|h| h.to_string()).unwrap_or_default()
    }

    #[test]
    fn issue_11_every_bounded_flag_states_its_range_in_help() {
        use crate::bounds::*;
        let whole =
            |r: &std::ops::RangeInclusive<usize>| format!("from {} to {}", r.start(), r.end());
        let sizes = |r: &std::ops::RangeInclusive<u64>| {
            format!("from {} to {}", show_size(*r.start()), show_size(*r.end()))
        };
        let times = |r: &std::ops::RangeInclusive<Duration>| {
            format!("from {} to {}", show_duration(*r.start()), show_duration(*r.end()))
        };
        let quota = format!(
            "from {} to {} requests in a window {}",
            QUOTA_COUNT.start(),
            QUOTA_COUNT.end(),
            times(&QUOTA_WINDOW)
        );
        let storm = format!(
            "at least {}, EVERY at most {}",
            show_duration(*STORM.start()),
            show_duration(*STORM.end())
        );
        let cases = [
            ("upload", "concurrency", whole(&CONCURRENCY)),
            ("upload", "rate", format!("from {} to {}", RATE.start(), RATE.end())),
            ("upload", "bandwidth", sizes(&BANDWIDTH)),
            ("upload", "chunk-size", sizes(&CHUNK_SIZE)),
            ("upload", "retries", format!("from {} to {}", RETRIES.start(), RETRIES.end())),
            ("upload", "timeout", times(&TIMEOUT)),
            ("upload", "notify-timeout", times(&NOTIFY_TIMEOUT)),
            ("upload", "max-duration", times(&MAX_DURATION)),
            ("clean", "older-than", times(&OLDER_THAN)),
            ("clean", "retries", format!("from {} to {}", RETRIES.start(), RETRIES.end())),
            ("clean", "timeout", times(&TIMEOUT)),
            ("serve", "token-ttl", times(&TOKEN_TTL)),
            ("serve", "rate-limit", quota),
            ("serve", "latency", times(&LATENCY)),
            ("serve", "bandwidth", sizes(&BANDWIDTH)),
            ("serve", "storm", storm),
            ("serve", "seed", "any 64-bit number".to_owned()),
            ("serve", "fail-rate", "from 0 to 1".to_owned()),
            ("serve", "reset-rate", "from 0 to 1".to_owned()),
            ("serve", "lose-rate", "from 0 to 1".to_owned()),
            ("bench", "files", whole(&BENCH_FILES)),
            ("bench", "size", sizes(&BENCH_SIZE)),
            ("bench", "max-size", sizes(&BENCH_SIZE)),
            ("bench", "concurrency", whole(&CONCURRENCY)),
            ("bench", "chunk-size", sizes(&CHUNK_SIZE)),
            ("bench", "latency", times(&LATENCY)),
            ("bench", "bandwidth", sizes(&BANDWIDTH)),
            ("bench", "seed", "any 64-bit number".to_owned()),
        ];
        for (command, flag, range) in cases {
            let help = help_of(command, flag);
            assert!(
                help.to_lowercase().contains(&range.to_lowercase()),
                "`{command} --{flag}` help does not say `{range}`: {help}"
            );
        }
    }

    #[test]
    fn issue_11_secrets_on_the_command_line_are_noted_and_others_not() {
        let warnings =
            |argv: &[&str]| secret_warnings(&Cli::command().try_get_matches_from(argv).unwrap());
        let upload = warnings(&["avbatch", "upload", "m.csv", "--upload-token", "to-secret"]);
        assert_eq!(upload.len(), 1);
        assert!(
            upload[0].contains("AVBATCH_UPLOAD_TOKEN") && !upload[0].contains("to-secret"),
            "{upload:?}"
        );
        let serve = warnings(&["avbatch", "serve", "--api-key", "k-secret"]);
        assert!(serve[0].contains("--api-key-file") && !serve[0].contains("k-secret"), "{serve:?}");
        assert!(warnings(&["avbatch", "upload", "m.csv", "--upload-token-file", "t"]).is_empty());
        assert!(warnings(&["avbatch", "serve", "--api-key-file", "k"]).is_empty());
    }
}
