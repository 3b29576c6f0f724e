//! `avbatch upload` flags turned into a checked [`UploadConfig`], once; nothing below sees clap.
//! Where the API is and its key are read alike by every command that calls it ([`destination`],
//! [`api_key`]).

use std::path::PathBuf;
use std::time::Duration;

use crate::cli::{Target, UploadArgs};
use avbatch_api::secret::{ApiKey, Token};
use avbatch_core::chunk::check_chunk_size;
use avbatch_core::engine::Mode;
use avbatch_core::excerpt::quoted;
use avbatch_core::shard::Shard;

/// A configuration problem: exit 2, with a hint.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ConfigError {
    /// What is wrong.
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
}

fn config_error(message: impl Into<String>, hint: Option<&str>) -> ConfigError {
    ConfigError { message: message.into(), hint: hint.map(str::to_owned) }
}

/// Where uploads go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// A remote API at this base URL.
    Remote(String),
    /// The embedded server, started in-process with this data folder (`None`: a temporary one).
    Local(Option<PathBuf>),
}

/// Everything `avbatch upload` needs, checked.
#[derive(Debug, Clone)]
pub struct UploadConfig {
    /// The manifest.
    pub manifest: PathBuf,
    /// Where to.
    pub destination: Destination,
    /// The API key (`None` for token-only uploads and `--env local`, which makes its own).
    pub api_key: Option<ApiKey>,
    /// Delegated upload token.
    pub upload_token: Option<Token>,
    /// Videos at once.
    /// `--concurrency`, when given; see [`default_concurrency`].
    pub concurrency: Option<usize>,
    /// Requests per second.
    pub rate: Option<f64>,
    /// Bytes per second, or a timetable of them.
    pub bandwidth: Option<avbatch_core::limit::timetable::Bandwidth>,
    /// Bytes per part.
    pub chunk_size: u64,
    /// Content-Range style.
    pub mode: Mode,
    /// Report file.
    pub report: PathBuf,
    /// Print the plan and stop.
    pub dry_run: bool,
    /// Upload only the first this many rows of the run (`--limit`); every row is still checked.
    pub limit: Option<u64>,
    /// No progress output.
    pub quiet: bool,
    /// Machine-readable report on stdout.
    pub json: bool,
    /// Ignore unknown manifest columns.
    pub allow_unknown_columns: bool,
    /// Leave rows with problems of their own out of the run (reported failed) instead of
    /// refusing the manifest.
    pub skip_invalid_rows: bool,
    /// Retries per request.
    pub retries: u32,
    /// Base timeout per request.
    pub timeout: Duration,
    /// The journal; `None` with `--no-journal`.
    pub journal: Option<PathBuf>,
    /// Re-upload rows whose file changed since the journal recorded them.
    pub force: bool,
    /// With `force`, keep the old file's video instead of deleting it.
    pub keep_old: bool,
    /// Identify files by content hash too.
    pub checksum: bool,
    /// `--relay`: objects read here and sent as parts, not pulled by api.video.
    pub relay: bool,
    /// `--pull-timeout`: how long api.video is given to fetch a pulled source.
    pub pull_timeout: Duration,
    /// This run's shard of the manifest; `None` for all of it.
    pub shard: Option<Shard>,
    /// The quotas `--dry-run` estimates with, and whose they are: `--env`'s (the embedded
    /// server's are production's).
    pub quotas: (avbatch_api::Quotas, &'static str),
    /// `--assume-bandwidth`: the link's rate for `--dry-run`'s estimate.
    pub assume_bandwidth: Option<u64>,
    /// `--max-duration`: no video starts this long after the run began.
    pub max_duration: Option<Duration>,
    /// `--notify`: where the summary is POSTed when the run ends.
    pub notify: Option<reqwest::Url>,
    /// `--notify-timeout`: how long notifying may take in all.
    pub notify_timeout: Duration,
    /// `--wait`, `--wait-timeout`, `--wait-poll`, `--max-processing`.
    pub encoding: crate::cli::EncodingArgs,
}

/// `--notify URL`: an absolute http(s) URL with a host; a bad one is exit 2, before anything is
/// sent. The message never shows it: a webhook's URL is its secret.
pub fn notify_url(text: &str) -> Result<reqwest::Url, ConfigError> {
    let bad = |why: &str| {
        config_error(
            format!("the --notify URL is not an http(s) URL: {why}"),
            Some("give the full address, such as https://hooks.example.com/T0/B0/x"),
        )
    };
    let url = reqwest::Url::parse(text.trim()).map_err(|e| bad(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad(&format!("the scheme is `{}`", url.scheme())));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("no host"));
    }
    Ok(url)
}

/// Reads a file holding a secret (`what`: "API key", "upload token"), trimmed of surrounding
/// white space (the newline an editor or `echo` leaves). An unreadable or empty file is a
/// configuration error; neither message shows the contents.
pub fn read_secret_file(path: &std::path::Path, what: &str) -> Result<String, ConfigError> {
    let shown = quoted(&path.display().to_string());
    let text = std::fs::read_to_string(path)
        .map_err(|e| config_error(format!("cannot read the {what} file {shown}: {e}"), None))?;
    let text = text.trim();
    if text.is_empty() {
        return Err(config_error(format!("the {what} file {shown} is empty"), None));
    }
    Ok(text.to_owned())
}

/// Reads the API key: `--api-key-file` (`file`) when given (an explicit flag wins over the
/// environment a shell or a scheduler may have left set), else `AVBATCH_API_KEY`, then
/// `APIVIDEO_API_KEY`; for every command that calls the API.
pub fn api_key(
    file: Option<&std::path::Path>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<ApiKey>, ConfigError> {
    if let Some(path) = file {
        return read_secret_file(path, "API key").map(|key| Some(ApiKey::new(key)));
    }
    Ok(["AVBATCH_API_KEY", "APIVIDEO_API_KEY"]
        .into_iter()
        .find_map(|var| env(var).map(ApiKey::new).filter(|k| !k.is_empty())))
}

/// Where the API is: `--base-url` (checked to be an http(s) URL a request can be built to), else
/// `--env`; `local_data` is the embedded server's folder with `--env local`.
pub fn destination(
    base_url: Option<&str>,
    target: Target,
    local_data: &Option<PathBuf>,
) -> Result<Destination, ConfigError> {
    Ok(match (base_url, target) {
        (Some(url), _) => {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                let message = format!("{} is not an http(s) URL", quoted(url));
                return Err(config_error(
                    message,
                    Some("pass e.g. --base-url http://127.0.0.1:8080"),
                ));
            }
            // Checked now: a URL the HTTP client cannot build a request to would otherwise
            // fail every call, after the check of the manifest.
            if let Err(e) = reqwest::Url::parse(url) {
                let message = format!("{} is not a valid URL ({e})", quoted(url));
                return Err(config_error(
                    message,
                    Some("pass e.g. --base-url http://127.0.0.1:8080"),
                ));
            }
            Destination::Remote(url.trim_end_matches('/').to_owned())
        }
        (None, Target::Production) => Destination::Remote("https://ws.api.video".into()),
        (None, Target::Sandbox) => Destination::Remote("https://sandbox.api.video".into()),
        (None, Target::Local) => Destination::Local(local_data.clone()),
    })
}

/// Where `--notify` POSTs: `--notify` (or `AVBATCH_NOTIFY_URL`; empty is unset) or the URL in
/// `--notify-file`, not both, as the upload token is read.
fn notify(args: &UploadArgs) -> Result<Option<reqwest::Url>, ConfigError> {
    let given = args.notify.as_deref().filter(|url| !url.trim().is_empty());
    let text = match (given, &args.notify_file) {
        (Some(_), Some(_)) => {
            return Err(config_error(
                "the --notify URL is given twice: by --notify (or AVBATCH_NOTIFY_URL) and by \
                 --notify-file",
                Some("keep one of them"),
            ))
        }
        (Some(url), None) => url.to_owned(),
        (None, Some(path)) => read_secret_file(path, "--notify URL")?,
        (None, None) => return Ok(None),
    };
    notify_url(&text).map(Some)
}

/// The upload token, from `--upload-token` (or `AVBATCH_UPLOAD_TOKEN`) or its file. Checked
/// here rather than by clap, whose message would name --upload-token even when the token came
/// from the environment.
fn upload_token(args: &UploadArgs) -> Result<Option<Token>, ConfigError> {
    Ok(match (&args.upload_token, &args.upload_token_file) {
        (Some(_), Some(_)) => {
            return Err(config_error(
                "the upload token is given twice: by --upload-token (or AVBATCH_UPLOAD_TOKEN) \
                 and by --upload-token-file",
                Some("keep one of them"),
            ))
        }
        (Some(token), None) => Some(Token::new(token)),
        (None, Some(path)) => Some(Token::new(read_secret_file(path, "upload token")?)),
        (None, None) => None,
    })
}

impl UploadConfig {
    /// Checks the flags against each other and the environment (`env` reads a variable).
    pub fn from_args(
        args: &UploadArgs,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<UploadConfig, ConfigError> {
        let destination = destination(args.base_url.as_deref(), args.env, &args.local_data)?;
        let upload_token = upload_token(args)?;
        let api_key = match destination {
            Destination::Local(_) => None,
            Destination::Remote(_) => api_key(args.api_key_file.as_deref(), env)?,
        };
        if matches!(destination, Destination::Remote(_))
            && api_key.is_none()
            && upload_token.is_none()
            && !args.dry_run
        {
            return Err(config_error(
                "no API key",
                Some(
                    "set AVBATCH_API_KEY (or APIVIDEO_API_KEY) or pass --api-key-file FILE, or \
                     give an upload token (AVBATCH_UPLOAD_TOKEN or --upload-token-file FILE); \
                     --env local needs none",
                ),
            ));
        }
        let chunk_size = check_chunk_size(args.chunk_size).map_err(|e| {
            config_error(e.to_string(), Some("api.video takes parts of 5 MiB to 200 MiB"))
        })?;
        if args.concurrency == Some(0) {
            return Err(config_error("--concurrency must be at least 1", None));
        }
        let shard = match args.shard {
            Some(s) => Some(s),
            None => Shard::from_env(env).map_err(|e| {
                config_error(e.to_string(), Some("pass --shard K/N to choose the shard yourself"))
            })?,
        }
        .filter(|s| s.count > 1);
        let report = args
            .report
            .clone()
            .unwrap_or_else(|| avbatch_core::shard::beside(&args.manifest, shard, "report.csv"));
        // A temporary local server forgets its videos at exit, so a journal of them would only
        // mislead the next run: none unless asked for.
        let journal = match (&args.journal, args.no_journal, &destination) {
            (_, true, _) => None,
            (Some(path), false, _) => Some(path.clone()),
            (None, false, Destination::Local(None)) => None,
            (None, false, _) => Some(avbatch_core::journal::default_path(&args.manifest, shard)),
        };
        Ok(UploadConfig {
            manifest: args.manifest.clone(),
            destination,
            api_key,
            upload_token,
            concurrency: args.concurrency,
            // --rate is the fleet's: each of N shards takes its share.
            rate: args.rate.map(|r| r / f64::from(shard.map_or(1, |s| s.count))),
            bandwidth: args.bandwidth.clone(),
            chunk_size,
            mode: args.mode,
            report,
            dry_run: args.dry_run,
            limit: args.limit,
            quiet: args.quiet,
            json: args.json,
            allow_unknown_columns: args.allow_unknown_columns,
            skip_invalid_rows: args.skip_invalid_rows,
            retries: args.retries,
            timeout: args.timeout,
            journal,
            force: args.force,
            keep_old: args.keep_old,
            checksum: args.checksum,
            relay: args.relay,
            pull_timeout: args.pull_timeout,
            shard,
            quotas: match args.env {
                crate::cli::Target::Sandbox => {
                    (avbatch_api::Quotas::SANDBOX, "api.video's sandbox")
                }
                _ => (avbatch_api::Quotas::PRODUCTION, "api.video's production"),
            },
            assume_bandwidth: args.assume_bandwidth,
            max_duration: args.max_duration,
            notify: notify(args)?,
            notify_timeout: args.notify_timeout,
            encoding: args.encoding.clone(),
        })
    }
}

/// Videos at once when `--concurrency` is not given: 16, or 64 when the files average under
/// [`SMALL_FILES`]. A small video costs two round trips and next to no bandwidth, so more of them
/// at once fill the link (2000 x 10 KiB on loopback: 970 files/s at 16, 1990 at 64).
pub fn default_concurrency(rows: u64, bytes: u64) -> usize {
    if rows > 0 && bytes / rows < SMALL_FILES {
        64
    } else {
        16
    }
}

/// Files under this size on average are small: see [`default_concurrency`].
pub const SMALL_FILES: u64 = 8 << 20;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn args(extra: &[&str]) -> UploadArgs {
        let mut argv = vec!["avbatch", "upload", "lib/manifest.csv"];
        argv.extend_from_slice(extra);
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Upload(a) => a,
            _ => unreachable!("parsed an upload"),
        }
    }

    #[test]
    fn key_sources_and_defaults() {
        let none = |_: &str| None;
        let err = UploadConfig::from_args(&args(&[]), &none).unwrap_err();
        assert_eq!(err.message, "no API key");
        let env = |v: &str| (v == "APIVIDEO_API_KEY").then(|| "k2".to_owned());
        let c = UploadConfig::from_args(&args(&["--env", "sandbox"]), &env).unwrap();
        assert_eq!(c.api_key.unwrap().expose(), "k2");
        assert_eq!(c.destination, Destination::Remote("https://sandbox.api.video".into()));
        assert_eq!(c.report, PathBuf::from("lib/manifest.report.csv"));
        assert_eq!(c.chunk_size, 128 * 1024 * 1024);
        let local = UploadConfig::from_args(&args(&["--env", "local"]), &none).unwrap();
        assert_eq!(local.destination, Destination::Local(None));
        assert!(
            Cli::try_parse_from(["avbatch", "upload", "m.csv", "--chunk-size", "1MiB"]).is_err(),
            "held to 5MiB..=200MiB by clap"
        );
        assert!(UploadConfig::from_args(&args(&["--base-url", "ftp://x"]), &env).is_err());
        let err = UploadConfig::from_args(&args(&["--base-url", "http://exa mple.com"]), &env)
            .unwrap_err();
        assert!(err.message.contains("is not a valid URL"), "{}", err.message);
    }
}
