//! The `avbatch` binary: parse, set up logging and the runtime, run; errors are said once, by
//! `commands::finish`.

use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = avbatch::cli::parse();
    avbatch::output::init_logging(cli.global.log_format, cli.global.verbose, cli.command.serves());
    let outcome = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime.block_on(avbatch::run(cli)),
        Err(e) => Err(anyhow::Error::new(e).context("cannot start the async runtime").into()),
    };
    avbatch::commands::finish(outcome)
}
