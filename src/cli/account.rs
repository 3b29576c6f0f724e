//! `avbatch clean` and `avbatch check` flags: the commands that read the account by key.

use super::*;

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

    /// The account: which api.video, its key, and how requests are retried.
    #[command(flatten)]
    pub account: AccountArgs,
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

    /// Another manifest uploading to the same account (repeat the flag for each): the videos
    /// under its rows' keys are its own, counted and not listed as extras. Without it, every
    /// video carrying an avbatch key no row of MANIFEST owns is an extra. Its rows are keyed as
    /// `avbatch clean` keys them (a row without an `id` by its file); it is not checked further.
    #[arg(long, value_name = "MANIFEST")]
    pub shared_with: Vec<PathBuf>,

    /// The account: which api.video, its key, and how requests are retried.
    #[command(flatten)]
    pub account: AccountArgs,
}

/// The account `clean` and `check` read: which api.video, its key, and how requests are retried.
#[derive(Debug, Args)]
pub struct AccountArgs {
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
