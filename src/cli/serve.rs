//! `avbatch serve` flags: the local api.video's address and keys here; everything else it is
//! told (data folder, quotas, faults, connections, encoding, source URLs) is its own
//! [`ServerConfig`](avbatch_serve::ServerConfig), flattened in, declared once in `avbatch-serve`.

use super::*;

/// `avbatch serve` flags.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free port (printed at start). An address other
    /// machines can reach (0.0.0.0, [::], a network's) is said on stderr at start: the server is
    /// for tests, without TLS, and whoever reaches it with its key reads and writes its videos.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0", env = "AVBATCH_SERVE_ADDR")]
    pub addr: SocketAddr,

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

    /// The server's settings: its data folder, quotas, faults, connections, encoding and source
    /// URLs.
    #[command(flatten)]
    pub server: avbatch_serve::ServerConfig,
}
