//! The `avbatch` binary: parse, set up logging and the runtime, run; errors are said once, by
//! `commands::finish`.

use std::process::ExitCode;

fn main() -> ExitCode {
    give_large_buffers_back();
    let cli = avbatch::cli::parse();
    avbatch::output::init_logging(cli.global.log_format, cli.global.verbose, cli.command.serves());
    let outcome = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime.block_on(avbatch::run(cli)),
        Err(e) => Err(anyhow::Error::new(e).context("cannot start the async runtime").into()),
    };
    avbatch::commands::finish(outcome)
}

/// Large buffers (a caption track of up to 16 MiB being sent, a thumbnail) go back to the system
/// when freed. glibc's malloc raises its threshold for mapping a buffer of its own after each
/// such buffer is freed, up to 32 MiB, so later tracks came from its per-thread heaps, which keep
/// what they held: 64 rows of two 13 MB tracks peaked at 400 MB though four tracks at most are
/// held at once (issue #25, point 13). A fixed threshold stops that raise.
fn give_large_buffers_back() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a parameter of the allocator, before any thread is started.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}
