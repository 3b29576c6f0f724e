//! The commands: each turns its parsed flags into a checked configuration and runs it. The only
//! place that wires the pieces together; [`run`] dispatches, and the exit codes are here.

#[cfg(feature = "serve")]
pub mod bench;
pub mod check;
pub mod clean;
mod dry_run;
mod local;
pub mod man;
pub mod manifest;
pub mod notify;
mod preflight;
pub mod report;
pub mod schedule;
#[cfg(feature = "serve")]
pub mod serve;
pub mod status;
mod stop;
pub mod upload;

use std::process::ExitCode;

use crate::cli::{Cli, Command, ReportCommand};
pub use stop::{Outcome, Stop};

/// Exit codes, documented in `--help` and the README.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Every row uploaded (or the dry run found nothing wrong).
    Done = 0,
    /// Some rows failed; the others are uploaded. See the report.
    SomeFailed = 1,
    /// Bad flags, configuration or manifest: nothing was sent. Or a journal that could not be
    /// written mid-run: no video was started after that.
    Invalid = 2,
    /// The API key or token was refused: nothing was uploaded.
    Auth = 3,
    /// The API could not be reached at all (not one answer: the network, the address, a proxy
    /// or a firewall): nothing was uploaded; a re-run resumes.
    Unreachable = 4,
    /// Stopped starting videos at `--max-duration`: the videos under way finished, the rows not
    /// started are left for the next run.
    OutOfTime = 5,
    /// Stopped by Ctrl-C or SIGTERM; a re-run resumes.
    Interrupted = 130,
}

impl Exit {
    /// Every exit code, in order.
    pub const ALL: [Exit; 7] = [
        Exit::Done,
        Exit::SomeFailed,
        Exit::Invalid,
        Exit::Auth,
        Exit::Unreachable,
        Exit::OutOfTime,
        Exit::Interrupted,
    ];

    /// What the code means, for the man page.
    pub fn meaning(self) -> &'static str {
        match self {
            Exit::Done => {
                "every row uploaded, now or by an earlier run (or the dry run, the \
                           status, the merge found nothing wrong)"
            }
            Exit::SomeFailed => "some rows failed; the others are uploaded: see the report",
            Exit::Invalid => {
                "bad flags, configuration, manifest or journal (in use, not \
                              writable): nothing was sent; or the journal could not be written \
                              mid-run (a full disk): no video was started after that"
            }
            Exit::Auth => "the API key or upload token was refused: nothing was uploaded",
            Exit::Unreachable => {
                "the API could not be reached at all (not one answer: the \
                                  network, the address, a proxy or a firewall): nothing was \
                                  uploaded, and a re-run resumes"
            }
            Exit::OutOfTime => {
                "stopped at --max-duration: the videos under way finished, the rows not started \
                 are left for the next run (failed rows, if any, are in the report)"
            }
            Exit::Interrupted => "interrupted by Ctrl-C or SIGTERM; a re-run resumes",
        }
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(e: Exit) -> Self {
        std::process::ExitCode::from(e as u8)
    }
}

/// The exit code of a command's outcome; a [`Stop`] is said here, the one place errors print.
pub fn finish(outcome: Outcome) -> ExitCode {
    match outcome {
        Ok(exit) => exit.into(),
        Err(stop) => stop.say().into(),
    }
}

/// Carries out a parsed command, after printing its [`Cli::warnings`].
pub async fn run(cli: Cli) -> Outcome {
    for warning in &cli.warnings {
        crate::output::say_warning(warning);
    }
    match cli.command {
        #[cfg(feature = "serve")]
        Command::Serve(args) => serve::run(args).await,
        Command::Upload(args) => upload::run(&args).await,
        // Reading the journal blocks, and the manifest's check looks at URL rows' objects on
        // this runtime: both off its async threads.
        Command::Status(args) => tokio::task::block_in_place(|| status::run(&args)),
        Command::Clean(args) => clean::run(&args).await,
        Command::Check(args) => check::run(&args).await,
        Command::Report(ReportCommand::Merge(args)) => report::run(&args),
        Command::Manifest(args) => manifest::run(&args),
        #[cfg(feature = "serve")]
        Command::Bench(args) => bench::run(&args).await,
        Command::Completions { shell } => {
            let mut out = Vec::new();
            clap_complete::generate(
                shell,
                &mut <Cli as clap::CommandFactory>::command(),
                "avbatch",
                &mut out,
            );
            print_all(&out)
        }
        Command::Man => print_all(man::page().as_bytes()),
    }
}

/// Writes `bytes` to stdout; a reader that stops early (`| head`) is not an error.
fn print_all(bytes: &[u8]) -> Outcome {
    use std::io::Write;
    match std::io::stdout().lock().write_all(bytes) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(anyhow::Error::new(e).context("writing to stdout").into())
        }
        _ => Ok(Exit::Done),
    }
}

/// Completes on Ctrl-C or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
