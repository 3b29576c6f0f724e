//! `avbatch upload` flags.

use super::*;

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
    pub bandwidth: Option<avbatch_core::limit::timetable::Bandwidth>,

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
    pub mode: avbatch_core::engine::Mode,

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

    /// Upload the valid rows of a manifest that has invalid ones; report those failed.
    ///
    /// By default a manifest with any problem is refused whole (exit 2, nothing sent). With this
    /// flag the whole manifest is still checked first, but a row with problems of its own (a
    /// missing or empty file, a caption or chapters file that does not parse, a bad cell, a
    /// language api.video does not take, a key another row has: every row with it) is never
    /// started: the report lists it `failed`, each problem by line and column, and the run then
    /// exits 1. The journal records nothing of it, so a run after it is fixed uploads it. What
    /// puts the rows themselves in doubt still refuses the manifest: the header, an unbalanced
    /// quote, a record whose number of fields is not the header's. With --dry-run, such rows are
    /// planned `invalid`.
    #[arg(long)]
    pub skip_invalid_rows: bool,

    /// Journal recording each row's progress, so a re-run resumes where this one stopped
    /// [default: MANIFEST's name with .journal.sqlite, beside it].
    #[arg(long, value_name = "FILE", help_heading = "Resume")]
    pub journal: Option<PathBuf>,

    /// Run without a journal (a re-run still finds finished videos by their key on the server).
    #[arg(long, conflicts_with = "journal", help_heading = "Resume")]
    pub no_journal: bool,

    /// Upload rows whose file changed since the journal recorded them again, as new videos
    /// that replace the old: each old video is deleted once its replacement is complete. An
    /// `upsert` row whose video holds another `clip` or `watermark` (which api.video takes only
    /// when a video is made) goes to a new video the same way.
    #[arg(long, help_heading = "Resume")]
    pub force: bool,

    /// With --force, keep the old file's video beside the new one (its key moves to the
    /// `avbatch_kept_key` metadata, for good) instead of deleting it.
    #[arg(long, requires = "force", help_heading = "Resume")]
    pub keep_old: bool,

    /// Identify files by a fingerprint of their contents (XXH3-128) too, not only size and time:
    /// a touched or copied file is not uploaded again, a rewritten one of the same size and
    /// time is. Costs one extra read of every file per run.
    #[arg(long, help_heading = "Resume")]
    pub checksum: bool,

    /// Rows whose `path` is a URL (`https://`, `s3://`, `gs://`, `az://`): read each object here
    /// with ranged GETs and send it as parts, as a local file is, instead of letting api.video
    /// pull it from its URL (the default: a presigned one for a bucket, valid as long as
    /// --pull-timeout allows). For sources api.video cannot reach (a private network,
    /// credentials that expire first); memory stays at a few pieces per video whatever the
    /// object's size.
    #[arg(long)]
    pub relay: bool,

    /// How long api.video is given to fetch a pulled row's source, from 1s to 7days, plus a
    /// second for every MiB of it. A pulled row is done once api.video holds its source, never
    /// when the video is made; one not there in time fails, and the next run replaces its
    /// video. A bucket's presigned URL lives that long and an hour more.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "1h",
        value_parser = bounds::duration(bounds::PULL_TIMEOUT)
    )]
    pub pull_timeout: Duration,

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
    pub shard: Option<avbatch_core::shard::Shard>,

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
    /// warning on stderr and never changes the exit code. The API key is never sent, and the URL
    /// never printed (only its scheme and host). A webhook's URL is its secret, and a command
    /// line is visible to every local user (`ps`): prefer AVBATCH_NOTIFY_URL or --notify-file.
    #[arg(
        long,
        value_name = "URL",
        env = "AVBATCH_NOTIFY_URL",
        hide_env_values = true,
        help_heading = "Schedule"
    )]
    pub notify: Option<String>,

    /// File holding the --notify URL (surrounding white space is ignored); instead of --notify
    /// and AVBATCH_NOTIFY_URL, not with them.
    #[arg(long, value_name = "FILE", help_heading = "Schedule")]
    pub notify_file: Option<PathBuf>,

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
    pub wait: Option<avbatch_core::engine::WaitFor>,

    /// How long --wait waits for one video, from 0s to 7days.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "2h",
        value_parser = bounds::duration(bounds::ENCODING_WAIT),
        help_heading = "Encoding"
    )]
    pub wait_timeout: Duration,

    /// First pause between two status polls of a video, from 0s to 7days; it doubles after each
    /// poll, up to 30s.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "2s",
        value_parser = bounds::duration(bounds::ENCODING_WAIT),
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
