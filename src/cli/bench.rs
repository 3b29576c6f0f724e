//! `avbatch bench` flags.

use super::*;

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
