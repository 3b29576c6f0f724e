//! The `avbatch` binary: parse, set up logging and the runtime, run, report errors.

use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = avbatch::cli::parse();
    avbatch::output::init_logging(
        cli.global.log_format,
        cli.global.verbose,
        matches!(cli.command, avbatch::cli::Command::Serve(_)),
    );
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(avbatch::run(cli)) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("  Caused by: {cause}");
            }
            ExitCode::from(2)
        }
    }
}
